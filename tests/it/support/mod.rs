//! Real peers for the tests, on loopback or in namespaces the tests create, one file per kind
//! of peer: `servers` (in-process HTTP(S), TCP, TLS), `tools` (dnsmasq, promtool, kamailio),
//! `smtp` (aiosmtpd), `daemon` (the binary itself), `net` (namespaces and a router lab),
//! `probe` (one probe through the library), `rng` (seeded randomness).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod daemon;
mod net;
mod probe;
mod rng;
mod servers;
mod smtp;
mod tools;
pub use daemon::*;
pub use net::{Dummy, Lab, Netns, claim_block, sh};
pub use probe::{kind, run, run_with, target};
pub use rng::Rng;
pub use servers::*;
pub use smtp::*;
pub use tools::*;

/// True when the tests run in CI (`CI` set): missing tools are then failures, not skips.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Whether `tool` is on PATH. Missing in CI: panic with the package to install. Missing
/// locally: say the test is skipped and return false.
pub fn require_tool(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if in_ci() {
        panic!("{tool} is required by this test: apt-get install -y {package}");
    }
    eprintln!("SKIP: {tool} not found (apt-get install -y {package}); skipped because CI is unset");
    false
}

/// Whether we run as root (ICMP raw sockets, namespaces). Not root in CI: panic.
pub fn require_root(what: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if root {
        return true;
    }
    if in_ci() {
        panic!("{what} needs root; CI runs as root");
    }
    eprintln!("SKIP: {what} needs root; skipped because CI is unset");
    false
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind udp 127.0.0.1:0")
}

/// A child process, killed on drop. One started as the leader of its own process group
/// ([`Proc::group`]) is killed with its whole group: kamailio's workers outlived their main
/// process otherwise.
pub struct Proc(pub Child);

impl Proc {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn group(cmd: &mut Command) -> std::io::Result<Proc> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).spawn().map(Proc)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id() as libc::pid_t;
        // SAFETY: plain syscalls on our own child, not reaped yet (so its pid is still ours).
        // A group leader (Proc::group) takes its whole group with it.
        unsafe {
            if libc::getpgid(pid) == pid {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
