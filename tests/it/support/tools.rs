//! Peers that are programs of their own, started as child processes: dnsmasq, promtool,
//! kamailio.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// dnsmasq answering `thi.example.vn A 127.0.0.9` on 127.0.0.1:PORT (UDP and TCP); other
/// names get REFUSED (no upstream).
pub fn start_dnsmasq() -> Option<(Proc, SocketAddr)> {
    if !require_tool("dnsmasq", "dnsmasq-base") {
        return None;
    }
    for _ in 0..5 {
        let port = free_udp_port();
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--keep-in-foreground",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--pid-file",
                "--address=/thi.example.vn/127.0.0.9",
                "--txt-record=txt.example.vn,\"thong suot\"",
                "--host-record=v4only.example.vn,127.0.0.10",
                "--local=/example.vn/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dnsmasq");
        let mut p = Proc(child);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        // Ready when the TCP side accepts (bounded wait).
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = p.0.try_wait() {
                break; // port taken: try another
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                return Some((p, addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = p.0.kill();
    }
    panic!("dnsmasq did not start");
}

/// Runs `promtool check metrics` on an exposition; returns promtool's complaints.
pub fn promtool_check_metrics(exposition: &str) -> Option<Result<(), String>> {
    use std::io::Write;
    if !require_tool("promtool", "prometheus") {
        return None;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    if out.status.success() {
        Some(Ok(()))
    } else {
        Some(Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))))
    }
}

/// kamailio answering OPTIONS with `code reason` on UDP and TCP 127.0.0.1:PORT.
pub fn start_kamailio(code: u16, reason: &str) -> Option<(Proc, u16, tempfile::TempDir)> {
    if !require_tool("kamailio", "kamailio") {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let modules = ["/usr/lib/x86_64-linux-gnu/kamailio/modules/", "/usr/lib/kamailio/modules/"]
        .into_iter()
        .find(|p| Path::new(p).join("sl.so").exists())
        .expect("kamailio modules (sl.so)");
    let mut last_log = String::new();
    for attempt in 0..8 {
        let port = free_udp_port();
        let cfg = dir.path().join("kamailio.cfg");
        std::fs::write(
            &cfg,
            format!(
                "#!KAMAILIO\ndebug=1\nlog_stderror=yes\nfork=no\nchildren=1\nlisten=udp:127.0.0.1:{port}\nlisten=tcp:127.0.0.1:{port}\n\
                 mpath=\"{modules}\"\nloadmodule \"sl.so\"\nloadmodule \"pv.so\"\n\
                 request_route {{\n  if ($rm == \"OPTIONS\") {{ sl_send_reply(\"{code}\", \"{reason}\"); exit; }}\n  sl_send_reply(\"404\", \"Not here\");\n}}\n"
            ),
        )
        .expect("kamailio.cfg");
        let mut p = Proc::group(
            Command::new("kamailio")
                .arg("-f")
                .arg(&cfg)
                .args(["-DD", "-E", "-P"])
                .arg(dir.path().join(format!("kamailio-{attempt}.pid")))
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(dir.path().join("kamailio.log"))
                        .map(Stdio::from)
                        .unwrap_or_else(|_| Stdio::null()),
                ),
        )
        .expect("spawn kamailio");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = p.0.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((p, port, dir));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = p.0.kill();
        let _ = p.0.wait();
        last_log = std::fs::read_to_string(dir.path().join("kamailio.log")).unwrap_or_default();
    }
    panic!("kamailio did not start (8 attempts); its last log:\n{last_log}");
}
