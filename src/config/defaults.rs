//! Built-in defaults, in one place: what a key is when the file does not set it. Re-exported
//! as `config::builtin` (the path the rest of the daemon and the docs use). CONFIGURATION.md
//! states each of these in its tables; change both together.

use std::time::Duration;

use chrono::Weekday;
use chrono_tz::Tz;

use super::model::Language;

pub const LISTEN: &str = "127.0.0.1:9798";
pub const STATE_DIR: &str = "state";
pub const TIMEZONE: &str = "Asia/Ho_Chi_Minh";
/// The zone [`TIMEZONE`] names.
pub const TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;
/// The daemon's language, and so each contact's unless it sets its own.
pub const LANGUAGE: Language = Language::Vi;
pub const PUBLIC_STATUS: bool = true;
pub const PER_TARGET_HISTOGRAMS: bool = true;
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

/// Ports of an address that names none: SIP (sip, call targets) and DNS servers.
pub const SIP_PORT: u16 = 5060;
pub const DNS_PORT: u16 = 53;
/// How long a test call is held once answered.
pub const CALL_HOLD: Duration = Duration::from_secs(2);
/// How long a test message's confirmation may take after its submit.
pub const SMS_DEADLINE: Duration = Duration::from_secs(60);
/// Added to the deadline to make a test message's timeout: the time to submit it.
pub const SMS_SUBMIT: Duration = Duration::from_secs(15);
/// The most test messages a day one target may send.
pub const SMS_DAILY_CAP: u32 = 300;
/// The SMTP port of each `smtp.tls` setting.
pub const SMTP_PORT_PLAIN: u16 = 25;
pub const SMTP_PORT_STARTTLS: u16 = 587;
pub const SMTP_PORT_TLS: u16 = 465;
/// A postal operator's answers: where its fields are, when it does not say.
pub const POSTAL_BATCH_SIZE: usize = 1;
pub const POSTAL_BATCH_SEPARATOR: &str = ",";
pub const POSTAL_ITEM_TRACKING_POINTER: &str = "/tracking";
pub const POSTAL_EVENT_STATUS_FIELD: &str = "status";
pub const POSTAL_EVENT_TIME_FIELD: &str = "time";
pub const POSTAL_EVENT_LOCATION_FIELD: &str = "location";
pub const POSTAL_CONCURRENCY: usize = 4;
/// Days that are not business days for `J+N` standards.
pub const WEEKEND: [Weekday; 2] = [Weekday::Sat, Weekday::Sun];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_defaults_are_the_typed_ones() {
        assert_eq!(TIMEZONE.parse::<Tz>().ok(), Some(TZ));
        assert!(LISTEN.parse::<std::net::SocketAddr>().is_ok());
        assert_eq!(crate::probe::fmt_duration(SMS_SUBMIT), "15s", "the sms messages say \"deadline + 15s\"");
    }
}
