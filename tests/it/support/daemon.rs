//! The real `thongsuot` binary on a config written to a temp dir, and what tests read of it:
//! HTTP answers, metric samples, reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::*;

/// The real `thongsuot` binary running a config written to a temp dir.
pub struct Daemon {
    pub proc: Proc,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_thongsuot")
}

impl Daemon {
    /// Writes `config` (with `{port}` and `{state}` substituted) and starts `thongsuot run`.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let path = dir.path().join("thongsuot.toml");
        std::fs::write(&path, config.replace("{port}", &port.to_string())).expect("write config");
        Daemon::spawn(dir, path, port, env)
    }

    /// Starts the binary on an existing config file (restarts keep the dir, store and port).
    fn spawn(dir: tempfile::TempDir, path: PathBuf, port: u16, env: &[(&str, &str)]) -> Daemon {
        let log = dir.path().join("daemon.log");
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let child = Command::new(binary())
            .args(["run", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn thongsuot");
        let d = Daemon { proc: Proc(child), port, dir, config: path, log };
        d.wait_until("HTTP server up", Duration::from_secs(20), || d.get("/healthz").is_some());
        d
    }

    /// `kill -9`: no shutdown, no last heartbeat. Returns the parts to restart with.
    pub fn kill9(mut self) -> (tempfile::TempDir, PathBuf, u16) {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (dir, self.config.clone(), self.port)
    }

    /// Starts again after [`Daemon::kill9`], same config, store and port.
    pub fn restart(parts: (tempfile::TempDir, PathBuf, u16), env: &[(&str, &str)]) -> Daemon {
        let (dir, path, port) = parts;
        Daemon::spawn(dir, path, port, env)
    }

    /// Runs another command of the binary (e.g. `report`) on this daemon's config.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary()).args(args).arg("--config").arg(&self.config).output().expect("run thongsuot")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Blocking GET with a short timeout; None when the daemon does not answer.
    pub fn get(&self, path: &str) -> Option<String> {
        blocking_get(&self.url(path))
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `cond` every 100 ms until it holds or `limit` passes (then panics with the log).
    pub fn wait_until(&self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {limit:?} waiting for {what}; daemon log:\n{}", self.log_text());
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.proc.0.id().to_string();
        sh(&["kill", &format!("-{sig}"), &pid]).expect("kill");
    }

    /// Sends SIGTERM, waits for the exit and keeps the state dir: (status, dir, config path).
    pub fn stop_keep(mut self) -> (std::process::ExitStatus, tempfile::TempDir, PathBuf) {
        let status = self.wait_exit();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (status, dir, self.config.clone())
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.proc.0.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not exit within 15 s of SIGTERM; log:\n{}", self.log_text());
    }
}

/// A minimal HTTP/1.0 GET over std sockets (the tests' own client must not share code with
/// the daemon's probes).
pub fn blocking_get(url: &str) -> Option<String> {
    blocking_request("GET", url, None, None).and_then(|(status, body)| (status == 200).then_some(body))
}

/// Returns (status, body).
pub fn blocking_request(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}")))?;
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\nContent-Type: application/json\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The value of the first sample of `name` whose labels include every `label="value"` given.
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            return None;
        }
        if !labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))) {
            return None;
        }
        l.rsplit(' ').next()?.parse().ok()
    })
}

/// `thongsuot report --format json` over [from, to] of the daemon config at `config`.
pub fn report_json(config: &Path, from: DateTime<Utc>, to: DateTime<Utc>) -> serde_json::Value {
    let out = Command::new(binary())
        .args(["report", "--format", "json", "--from", &from.to_rfc3339(), "--to", &to.to_rfc3339(), "--config"])
        .arg(config)
        .output()
        .expect("report");
    assert!(out.status.success(), "report failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("report JSON")
}
