//! HTTP(S) targets: the spec and the content checks. `client` probes with reqwest (https, and
//! API calls of other kinds); `plain` probes `http://` URLs itself so that it can tell a reset
//! from a refused connection and time each phase.

mod client;
mod plain;

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use super::{Failure, FailureKind};

pub(crate) use client::classify;
pub use client::{ApiClient, HttpClients, PreparedHttp, prepare, probe};

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
