//! In-process servers: HTTP and HTTPS with fixed routes, TCP listeners that hold or switch
//! off, and a TLS server whose certificate expires when the test says.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use tokio::net::TcpListener;

use super::*;

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
