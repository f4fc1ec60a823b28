//! systemd readiness and watchdog notifications (`Type=notify`, `WatchdogSec=`), over the
//! datagram socket named by `NOTIFY_SOCKET`. Without it (not under systemd) every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn send(message: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(()) };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    // An abstract socket is written "@name".
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        sock.send_to(message.as_bytes(), std::path::Path::new(&path))?;
    }
    Ok(())
}

/// Tells systemd the daemon is ready.
pub fn ready() {
    if let Err(e) = send("READY=1") {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

pub fn stopping() {
    let _ = send("STOPPING=1");
}

/// How often to pet the watchdog: half of `WATCHDOG_USEC`, if systemd asked for one.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

pub fn watchdog() {
    let _ = send("WATCHDOG=1");
}
