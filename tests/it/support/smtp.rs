//! A real SMTP server (aiosmtpd, `tests/peers/smtp_server.py`) that saves every message.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::*;

/// Python with aiosmtpd: Debian's interpreter when it has the module, else the first python3.
fn python_with_aiosmtpd() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py).args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

/// Options of the test SMTP server.
#[derive(Default, Clone)]
pub struct SmtpOptions {
    /// (cert PEM path, key PEM path): STARTTLS required.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// "user:password": AUTH required.
    pub auth: Option<String>,
    /// Recipients at this domain get a permanent 550.
    pub reject_domain: Option<String>,
}

/// A real SMTP server (aiosmtpd) that saves each accepted message as decoded JSON.
pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    opts: SmtpOptions,
    proc: Option<Proc>,
}

impl SmtpServer {
    pub fn start(opts: SmtpOptions) -> Option<SmtpServer> {
        python_with_aiosmtpd().or_else(|| {
            if in_ci() {
                panic!("aiosmtpd is required: apt-get install -y python3-aiosmtpd");
            }
            eprintln!("SKIP: python3 with aiosmtpd not found (apt-get install -y python3-aiosmtpd); skipped because CI is unset");
            None
        })?;
        let mut s = SmtpServer { port: free_port(), dir: tempfile::tempdir().expect("tempdir"), opts, proc: None };
        s.up();
        Some(s)
    }

    /// (Re)starts the server on its port.
    pub fn up(&mut self) {
        let py = python_with_aiosmtpd().expect("python with aiosmtpd");
        let mut cmd = Command::new(py);
        cmd.arg(repo_path("tests/peers/smtp_server.py"))
            .args(["--port", &self.port.to_string(), "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((cert, key)) = &self.opts.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some(a) = &self.opts.auth {
            cmd.args(["--auth", a]);
        }
        if let Some(d) = &self.opts.reject_domain {
            cmd.args(["--reject-domain", d]);
        }
        let mut child = cmd.spawn().expect("spawn smtp server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(15)).unwrap_or_default();
        assert!(line.starts_with("READY"), "SMTP server did not start: {line:?}");
        self.proc = Some(Proc(child));
    }

    /// Kills the server: the port refuses connections until [`SmtpServer::up`].
    pub fn down(&mut self) {
        self.proc = None;
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }

    /// Waits (bounded) until `pred` holds for the messages, then returns them.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if pred(&m) {
                return m;
            }
            if start.elapsed() > limit {
                let subjects: Vec<String> = m.iter().map(|x| x["subject"].to_string()).collect();
                panic!("timed out after {limit:?} waiting for {what}; messages so far: {subjects:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Messages whose subject starts with `tag` and that went to `rcpt`.
pub fn with_subject<'a>(msgs: &'a [serde_json::Value], tag: &str, rcpt: &str) -> Vec<&'a serde_json::Value> {
    msgs.iter()
        .filter(|m| m["subject"].as_str().is_some_and(|s| s.starts_with(tag)))
        .filter(|m| m["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|x| x == rcpt)))
        .collect()
}

/// Seconds since the Unix epoch of a wall-clock time (to compare with `accepted_at`).
pub fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}
