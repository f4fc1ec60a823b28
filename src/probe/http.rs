//! HTTP(S) with reqwest: status, body and JSON checks on a fresh connection per probe, with a
//! bounded body read.

use std::error::Error as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use super::{Binding, Failure, FailureKind, Outcome, Phase, conclude, deadline};

#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: reqwest::Url,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<String>,
    /// Empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    pub body_regex: Option<Regex>,
    pub json_pointer: Option<String>,
    pub json_equals: Option<serde_json::Value>,
    /// Latency above which the target counts as congested (SLA engine, sliding window).
    pub max_latency: Option<Duration>,
    pub tls_verify: bool,
    pub ca_file: Option<PathBuf>,
    pub follow_redirects: bool,
    /// A body larger than this fails the probe (`too_large`) and is not read further.
    pub max_body_bytes: usize,
}

impl PartialEq for HttpSpec {
    fn eq(&self, o: &Self) -> bool {
        self.url == o.url
            && self.method == o.method
            && self.headers == o.headers
            && self.body == o.body
            && self.expect_status == o.expect_status
            && self.body_contains == o.body_contains
            && self.body_regex.as_ref().map(Regex::as_str) == o.body_regex.as_ref().map(Regex::as_str)
            && self.json_pointer == o.json_pointer
            && self.json_equals == o.json_equals
            && self.max_latency == o.max_latency
            && self.tls_verify == o.tls_verify
            && self.ca_file == o.ca_file
            && self.follow_redirects == o.follow_redirects
            && self.max_body_bytes == o.max_body_bytes
    }
}

/// The settings that make two HTTP targets need different clients. Targets that agree share
/// one client (a client costs about 100 KB and a TLS root store); the timeout is per request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    tls_verify: bool,
    ca_file: Option<PathBuf>,
    /// The version of `ca_file` the client was built from: a changed file makes a new client.
    ca_stamp: Option<super::FileStamp>,
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
    /// For `http://` URLs, probed without the client (see [`super::http1`]).
    binding: Binding,
}

pub fn prepare(spec: &HttpSpec, binding: &Binding, clients: &HttpClients) -> Result<PreparedHttp, Failure> {
    let key = ClientKey {
        tls_verify: spec.tls_verify,
        ca_file: spec.ca_file.clone(),
        ca_stamp: spec.ca_file.as_deref().and_then(super::file_stamp),
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
        match super::http1::exchange(spec, &p.binding, out, start).await? {
            super::http1::Ended::Response { status, body } => return check(spec, status, &body),
            super::http1::Ended::Handover { url, method, body } => (url, method, body),
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
        out.cert_expiry = info.peer_certificate().and_then(super::tls::not_after);
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

/// The content checks, pure so they can be tested and fuzzed without a server.
pub fn check(spec: &HttpSpec, status: u16, body: &[u8]) -> Result<(), Failure> {
    let status_ok =
        if spec.expect_status.is_empty() { (200..300).contains(&status) } else { spec.expect_status.contains(&status) };
    if !status_ok {
        let expected =
            if spec.expect_status.is_empty() { "2xx".to_string() } else { format!("{:?}", spec.expect_status) };
        return Err(Failure::new(FailureKind::Status, format!("status {status}, expected {expected}")));
    }
    if spec.body_contains.is_none() && spec.body_regex.is_none() && spec.json_pointer.is_none() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &spec.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(Failure::new(FailureKind::Body, format!("body does not contain {needle:?}")));
    }
    if let Some(re) = &spec.body_regex
        && !re.is_match(&text)
    {
        return Err(Failure::new(FailureKind::Body, format!("body does not match /{}/", re.as_str())));
    }
    if let Some(pointer) = &spec.json_pointer {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Failure::new(FailureKind::Body, format!("body is not JSON: {e}")))?;
        let found = value
            .pointer(pointer)
            .ok_or_else(|| Failure::new(FailureKind::Body, format!("JSON has nothing at {pointer}")))?;
        if let Some(want) = &spec.json_equals
            && !json_matches(found, want)
        {
            return Err(Failure::new(
                FailureKind::Body,
                format!("JSON {pointer} is {}, expected {want}", truncate(&found.to_string(), 80)),
            ));
        }
    }
    Ok(())
}

/// Equal values, or a scalar equal to the wanted string (`"200"` matches `200`).
fn json_matches(found: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    if found == want {
        return true;
    }
    match (found, want) {
        (V::Number(n), V::String(s)) => n.to_string() == *s,
        (V::Bool(b), V::String(s)) => b.to_string() == *s,
        (V::Number(a), V::Number(b)) => a.as_f64() == b.as_f64(),
        _ => false,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
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
