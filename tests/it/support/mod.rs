//! Real peers for the tests, on loopback or in namespaces the tests create: HTTP(S) and TCP
//! servers in-process, dnsmasq and Prometheus tools as child processes, the daemon binary.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use tokio::net::TcpListener;

mod net;
mod probe;
mod rng;
pub use net::{Dummy, Lab, Netns, claim_block, sh};
pub use probe::{kind, run, run_with, target};
pub use rng::Rng;

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

/// The routes every test HTTP server answers.
fn routes() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok\n" }))
        .route("/json", get(|| async { axum::Json(serde_json::json!({"data": {"status": "DELIVERED", "code": 200}})) }))
        .route("/not-json", get(|| async { "<html>maintenance</html>" }))
        .route("/fail", get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down\n") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late\n"
            }),
        )
        .route("/redirect", get(|| async { axum::response::Redirect::temporary("/ok") }))
        .route("/loop", get(|| async { axum::response::Redirect::temporary("/loop") }))
        // What arrived: method, headers the probes set, body.
        .route(
            "/echo",
            axum::routing::any(|method: axum::http::Method, headers: axum::http::HeaderMap, body: String| async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                format!(
                    "{method} host={} ua={} x-exam={} connection={} body={body}",
                    h("host"),
                    h("user-agent"),
                    h("x-exam"),
                    h("connection")
                )
            }),
        )
        // A POST answered with 303 is followed with a GET, without the body.
        .route("/form", axum::routing::post(|| async { axum::response::Redirect::to("/echo") }))
        .route(
            "/endless",
            get(|| async {
                // A hostile body that never ends: 64 KiB chunks forever.
                let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
                let stream = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                Body::from_stream(stream)
            }),
        )
}

/// An in-process HTTP server on 127.0.0.1:0.
pub struct HttpServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, routes()).await;
        });
        HttpServer { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An in-process HTTPS server with a self-signed certificate for `localhost` and 127.0.0.1.
pub struct HttpsServer {
    pub addr: SocketAddr,
    /// PEM of the self-signed certificate, to use as `ca_file`.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsServer {
    pub async fn start() -> HttpsServer {
        thongsuot::tls::ensure_crypto_provider();
        let key =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("cert");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, key.cert.pem()).expect("write ca");
        let cert_der = key.cert.der().clone();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).expect("key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    break;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper_util::service::TowerToHyperService::new(routes());
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        HttpsServer { addr, ca_file, _dir: dir, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.addr.port(), path)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP listener that accepts, optionally writes a banner, then holds the connection open
/// (or, with `banner = None` and `silent`, never writes anything).
pub struct TcpServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TcpServer {
    pub async fn start(banner: Option<&'static str>) -> TcpServer {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    break;
                };
                tokio::spawn(async move {
                    if let Some(b) = banner {
                        let _ = s.write_all(b.as_bytes()).await;
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        TcpServer { addr, task }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A child process killed on drop.
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
        // A group leader's pgid is its pid; for any other child there is no such group and
        // this does nothing.
        let pgid = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// A network namespace with a veth pair: the host side `198.18.N.1/30`, the namespace side
/// `198.18.N.2/30`. Deleted on drop.
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

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A TCP service on a fixed loopback port that the test switches off (listener closed: connects
/// are refused) and on again.
pub struct Switch {
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Switch {
    pub fn new() -> Switch {
        Switch { port: free_port(), task: None }
    }

    /// Must be called inside the test runtime.
    pub fn on(&mut self) -> DateTime<Utc> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("bind switch port");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
        self.task = Some(tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        }));
        Utc::now()
    }

    pub fn off(&mut self) -> DateTime<Utc> {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        // Let the abort land so the port is closed when we take the time.
        std::thread::sleep(Duration::from_millis(50));
        Utc::now()
    }
}

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

/// A TLS server (accepts the handshake, then holds the connection) whose self-signed
/// certificate for `localhost` expires in `days` days. Returns (address, CA file, dir guard).
pub async fn tls_server_expiring_in(
    days: i64,
) -> (SocketAddr, PathBuf, tempfile::TempDir, tokio::task::JoinHandle<()>) {
    thongsuot::tls::ensure_crypto_provider();
    let end = Utc::now() + chrono::Duration::days(days);
    use chrono::Datelike;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).expect("write ca");
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(s) = acceptor.accept(tcp).await {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    drop(s);
                }
            });
        }
    });
    (addr, ca, dir, task)
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
