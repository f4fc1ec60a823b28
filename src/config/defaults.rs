//! Built-in defaults, in one place: what a key is when the file does not set it. Re-exported
//! as `config::builtin` (the path the rest of the daemon and the docs use). CONFIGURATION.md
//! states each of these in its tables; change both together.

use std::time::Duration;
pub const LISTEN: &str = "127.0.0.1:9798";
pub const STATE_DIR: &str = "state";
pub const TIMEZONE: &str = "Asia/Ho_Chi_Minh";
pub const INTERVAL: Duration = Duration::from_secs(30);
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The default timeout of a probe run every `interval`: [`TIMEOUT`], or 80 % of a shorter
/// interval. The margin is the time to record the result and start the next probe on its
/// slot; a timeout as long as the interval made every timed-out probe start the next one
/// late.
pub fn timeout_for(interval: Duration) -> Duration {
    TIMEOUT.min(interval.mul_f64(0.8))
}
pub const CONFIRM: u32 = 3;
pub const RECOVER: u32 = 2;
pub const OBJECTIVE: f64 = 1.0;
pub const DEGRADED_WINDOW: Duration = Duration::from_secs(300);
pub const GROUP_INTERVAL: Duration = Duration::from_secs(30);
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(3600);
pub const ESCALATE_AFTER: Duration = Duration::from_secs(1800);
pub const MAX_IN_FLIGHT: usize = 1024;
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
pub const ICMP_COUNT: u16 = 3;
pub const ICMP_SPACING: Duration = Duration::from_millis(100);
pub const MAX_LOSS: f64 = 0.02;
pub const MAX_RTT: Duration = Duration::from_millis(300);
pub const MAX_BODY_BYTES: usize = 1 << 20;
pub const MIN_DAYS_LEFT: u32 = 14;
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
pub const POSTAL_POLL: Duration = Duration::from_secs(300);
pub const POSTAL_TIMEOUT: Duration = Duration::from_secs(10);
pub const POSTAL_HEALTH: Duration = Duration::from_secs(60);
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);
pub const AT_RISK_BEFORE: Duration = Duration::from_secs(6 * 3600);
