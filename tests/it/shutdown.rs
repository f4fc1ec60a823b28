//! One shutdown deadline: with a probe that hangs and an SMTP server that never answers, the
//! daemon exits within `shutdown_grace` (not a grace per stage) and names what overran.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::*;

/// A listener that accepts and then says nothing, holding every connection until dropped.
struct Mute {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Mute {
    fn start() -> Mute {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            // Bounded: at most a minute, or until dropped.
            let start = Instant::now();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                if let Ok((mut s, _)) = l.accept() {
                    let _ = s.set_nonblocking(true);
                    let mut buf = [0u8; 256];
                    let _ = s.read(&mut buf);
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Mute { port, stop }
    }
}

impl Drop for Mute {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn shutdown_grace_bounds_the_whole_shutdown_and_names_who_overran() {
    let (smtp, web) = (Mute::start(), Mute::start());
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
shutdown_grace = "3s"
[defaults]
confirm = 1
[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "thongsuot@example.vn"
timeout = "20s"
[[contact]]
name = "noc"
emails = ["noc@example.vn"]
[[group]]
name = "g"
contacts = ["noc"]
[[target]]
name = "closed"
group = "g"
kind = "tcp"
address = "127.0.0.1:1"
interval = "1s"
[[target]]
name = "hung"
group = "g"
kind = "http"
url = "http://127.0.0.1:{web}/"
interval = "16s"
timeout = "15s"
"#,
        smtp = smtp.port,
        web = web.port,
    );
    let d = Daemon::start(&config, &[]);
    // The breach e-mail is being sent to a server that never answers, and the HTTP probe hangs.
    // (The HTTP probe's first slot is somewhere in its 16 s interval; it then hangs 15 s of 16.)
    // The breach of "closed" is queued at once and the sender then waits on the mute server.
    d.wait_until("closed down and the HTTP probe hanging", Duration::from_secs(40), || {
        let m = d.metrics();
        sample(&m, "thongsuot_target_up", &[("target", "closed")]) == Some(0.0)
            && sample(&m, "thongsuot_probes_in_flight", &[]).is_some_and(|n| n >= 1.0)
    });
    std::thread::sleep(Duration::from_millis(1000));
    let asked = Instant::now();
    let (status, dir, _) = d.stop_keep();
    let took = asked.elapsed();
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(status.success(), "{status:?}\n{log}");
    // 3 s of grace and 2.5 s for a busy machine: each of the two stages that overrun had its own
    // 3 s before, which took at least 6 s.
    assert!(took < Duration::from_millis(5500), "shutdown took {took:?} with a 3 s grace:\n{log}");
    assert!(log.contains("shutdown: probes were still running"), "the hung probe is not named:\n{log}");
    assert!(log.contains("shutdown: the e-mail sender did not finish"), "the hung sender is not named:\n{log}");
}
