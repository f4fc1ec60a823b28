//! The reqwest side of HTTP probes: one shared client per set of connection settings, no
//! pooling (every probe measures a fresh connect), a bounded body read; and the shared client
//! of API calls (tracking APIs, SMS gateways).

use std::error::Error as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{HttpSpec, check, plain};
use crate::probe::{Binding, Failure, FailureKind, Outcome, Phase, conclude, deadline};

/// The settings that make two HTTP targets need different clients. Targets that agree share
/// one client (each client carries a connector and a TLS root store of its own, too much to keep
/// one per target); the timeout is per request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    tls_verify: bool,
    ca_file: Option<PathBuf>,
    /// The version of `ca_file` the client was built from: a changed file makes a new client.
    ca_stamp: Option<crate::probe::FileStamp>,
    binding: Binding,
    follow_redirects: bool,
}

/// Shared clients. None keeps idle connections, so every probe measures a fresh connect (and
/// TLS handshake) and pooling cannot hide an outage.
#[derive(Default)]
pub struct HttpClients {
    clients: std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>,
}

pub struct PreparedHttp {
    client: reqwest::Client,
    /// For `http://` URLs, probed without the client (see [`super::plain`]).
    binding: Binding,
}

pub fn prepare(spec: &HttpSpec, binding: &Binding, clients: &HttpClients) -> Result<PreparedHttp, Failure> {
    let key = ClientKey {
        tls_verify: spec.tls_verify,
        ca_file: spec.ca_file.clone(),
        ca_stamp: spec.ca_file.as_deref().and_then(crate::probe::file_stamp),
        binding: binding.clone(),
        follow_redirects: spec.follow_redirects,
    };
    let mut map = clients.clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = map.get(&key) {
        return Ok(PreparedHttp { client: c.clone(), binding: binding.clone() });
    }
    let client = build_client(&key)?;
    if key.ca_file.is_some() {
        // Clients of an older version of the same file are not asked for again.
        map.retain(|k, _| k.ca_file != key.ca_file || k.ca_stamp == key.ca_stamp);
    }
    map.insert(key, client.clone());
    Ok(PreparedHttp { client, binding: binding.clone() })
}

fn build_client(key: &ClientKey) -> Result<reqwest::Client, Failure> {
    crate::tls::ensure_crypto_provider();
    let mut b = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tls_info(true)
        .no_proxy()
        .user_agent(concat!("thongsuot/", env!("CARGO_PKG_VERSION")))
        .redirect(if key.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .local_address(key.binding.source);
    if let Some(dev) = &key.binding.interface {
        b = b.interface(dev);
    }
    if !key.tls_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    if let Some(path) = &key.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Failure::new(FailureKind::Setup, format!("cannot read ca_file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Failure::new(FailureKind::Setup, format!("ca_file {}: {e}", path.display())))?;
        b = b.tls_certs_only(certs);
    }
    b.build().map_err(|e| {
        Failure::new(FailureKind::Setup, format!("cannot build HTTP client: {}", crate::text::error_chain(&e)))
    })
}

/// The client of API calls (tracking APIs, SMS gateways), built at first use and then shared:
/// no proxy, up to 5 redirects, `User-Agent: thongsuot/<version>` and the caller's suffix. Timeouts
/// are set per request.
#[derive(Default)]
pub struct ApiClient(std::sync::Mutex<Option<reqwest::Client>>);

impl ApiClient {
    pub fn get(&self, ua_suffix: &str) -> Result<reqwest::Client, Failure> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        crate::tls::ensure_crypto_provider();
        let c = reqwest::Client::builder()
            .no_proxy()
            .user_agent(format!("thongsuot/{}{ua_suffix}", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Failure::new(FailureKind::Setup, crate::text::error_chain(&e)))?;
        *g = Some(c.clone());
        Ok(c)
    }
}

pub async fn probe(spec: &HttpSpec, prepared: &PreparedHttp, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let r = tokio::time::timeout_at(deadline(start, timeout), exchange(spec, prepared, &mut out, start, timeout)).await;
    conclude(out, r, start, timeout, &[Phase::Processing, Phase::Transfer])
}

async fn exchange(
    spec: &HttpSpec,
    p: &PreparedHttp,
    out: &mut Outcome,
    start: Instant,
    timeout: Duration,
) -> Result<(), Failure> {
    let (url, method, body) = if spec.url.scheme() == "http" {
        match plain::exchange(spec, &p.binding, out, start).await? {
            plain::Ended::Response { status, body } => return check(spec, status, &body),
            plain::Ended::Handover { url, method, body } => (url, method, body),
        }
    } else {
        (spec.url.clone(), spec.method.clone(), spec.body.clone())
    };
    let mut req = p.client.request(method, url).timeout(timeout);
    for (k, v) in &spec.headers {
        req = req.header(k, v);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let mut resp = req.send().await.map_err(classify)?;
    out.phases.set(Phase::Processing, start.elapsed());

    let t = Instant::now();
    let status = resp.status().as_u16();
    if let Some(info) = resp.extensions().get::<reqwest::tls::TlsInfo>() {
        out.cert_expiry = info.peer_certificate().and_then(crate::probe::tls::not_after);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > spec.max_body_bytes {
            return Err(Failure::new(FailureKind::TooLarge, format!("body larger than {} bytes", spec.max_body_bytes)));
        }
        body.extend_from_slice(&chunk);
    }
    out.phases.set(Phase::Transfer, t.elapsed());
    check(spec, status, &body)
}

/// Maps a reqwest error to a bounded kind by walking its source chain.
pub(crate) fn classify(e: reqwest::Error) -> Failure {
    let detail = crate::text::error_chain(&e);
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return Failure::new(FailureKind::Tls, detail);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) {
                return Failure::new(FailureKind::Tls, detail);
            }
            let kind = FailureKind::from_io(io);
            if kind != FailureKind::Io {
                return Failure::new(kind, detail);
            }
        }
        source = s.source();
    }
    // Some layers flatten the rustls error into text; recognise it there too.
    let lower = detail.to_ascii_lowercase();
    let tls_words = ["certificate", "handshake", "tls", "alert"];
    let kind = if tls_words.iter().any(|w| lower.contains(w)) {
        FailureKind::Tls
    } else if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_redirect() || e.is_decode() || e.is_body() {
        FailureKind::Protocol
    } else if e.is_connect() {
        FailureKind::Unreachable
    } else if detail.contains("dns error") {
        FailureKind::Resolve
    } else {
        FailureKind::Protocol
    };
    Failure::new(kind, detail)
}
