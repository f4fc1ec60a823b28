//! The availability of a postal operator's tracking API, as a connectivity target of its group
//! (`{operator}-tracking-api`, kind `postal`). The consignment poller records the result of every
//! tracking request here; a probe judges the requests made since the previous probe (up while at
//! least one was answered usably). When nothing was polled in between, the probe asks the API
//! itself, for the tracking number polled last: any answer below 500 counts as reachable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Failure, FailureKind, Outcome};

#[derive(Debug, Clone, PartialEq)]
pub struct PostalApiSpec {
    pub operator: String,
    pub track_url: String,
    pub method: reqwest::Method,
    /// Static headers, then those of `headers_env` (secrets, marked sensitive).
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
}

#[derive(Default)]
struct Calls {
    ok: u32,
    failed: u32,
    last_failure: Option<Failure>,
    last_elapsed: Duration,
    /// A tracking number the API knows, for the probe's own request.
    canary: Option<String>,
}

/// Tracking request results per operator, since the last probe.
#[derive(Default)]
pub struct ApiHealth {
    calls: Mutex<HashMap<String, Calls>>,
    client: super::http::ApiClient,
}

impl ApiHealth {
    /// One tracking request's result: `Ok` when the API gave a usable answer.
    pub fn record(&self, operator: &str, tracking: &str, elapsed: Duration, result: Result<(), Failure>) {
        let mut map = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let c = map.entry(operator.to_string()).or_default();
        c.last_elapsed = elapsed;
        match result {
            Ok(()) => {
                c.ok += 1;
                c.canary = Some(tracking.to_string());
            }
            Err(f) => {
                c.failed += 1;
                c.last_failure = Some(f);
            }
        }
    }

    fn take(&self, operator: &str) -> (u32, u32, Option<Failure>, Duration, Option<String>) {
        let mut map = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let c = map.entry(operator.to_string()).or_default();
        let r = (c.ok, c.failed, c.last_failure.take(), c.last_elapsed, c.canary.clone());
        c.ok = 0;
        c.failed = 0;
        r
    }
}

pub async fn probe(spec: &PostalApiSpec, health: &ApiHealth, timeout: Duration) -> Outcome {
    let (ok, failed, last_failure, elapsed, canary) = health.take(&spec.operator);
    if ok > 0 {
        return Outcome { elapsed, ..Outcome::default() };
    }
    if failed > 0 {
        let f = last_failure.unwrap_or_else(|| Failure::new(FailureKind::Protocol, "tracking request failed"));
        // Only broken numbers were asked for since the last probe? One that answered before
        // tells whether the API itself is down.
        if let Some(c) = canary.as_deref() {
            let start = Instant::now();
            if own_request(spec, health, c, timeout).await.is_ok() {
                return Outcome { elapsed: start.elapsed(), ..Outcome::default() };
            }
        }
        let detail = format!("{failed} tracking request(s) failed, none answered: {}", f.detail);
        return Outcome { failure: Some(Failure::new(f.kind, detail)), elapsed, ..Outcome::default() };
    }
    let start = Instant::now();
    let failure = own_request(spec, health, canary.as_deref().unwrap_or("0"), timeout).await.err();
    Outcome { failure, elapsed: start.elapsed(), ..Outcome::default() }
}

async fn own_request(
    spec: &PostalApiSpec,
    health: &ApiHealth,
    tracking: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    // Operators can tell these from the polling of consignments.
    let client = health.client.get(" (health check)")?;
    let url = spec.track_url.replace("{tracking}", &crate::text::url_encode(tracking));
    let mut req = client.request(spec.method.clone(), url).timeout(timeout);
    for (k, v) in &spec.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(super::http::classify)?;
    let status = resp.status().as_u16();
    if status >= 500 {
        return Err(Failure::new(FailureKind::Status, format!("tracking API answered status {status}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_are_encoded() {
        use crate::text::url_encode;
        assert_eq!(url_encode("EMS0001VN"), "EMS0001VN");
        assert_eq!(url_encode("a b/c?d"), "a%20b%2Fc%3Fd");
    }

    #[tokio::test]
    async fn requests_since_the_last_probe_decide() {
        let h = ApiHealth::default();
        let spec = PostalApiSpec {
            operator: "vnpost".into(),
            track_url: "http://127.0.0.1:9/{tracking}".into(),
            method: reqwest::Method::GET,
            headers: Vec::new(),
        };
        h.record("vnpost", "A", Duration::from_millis(5), Err(Failure::new(FailureKind::Body, "garbage")));
        let o = probe(&spec, &h, Duration::from_secs(1)).await;
        assert!(o.failure.as_ref().is_some_and(|f| f.detail.contains("garbage")), "{o:?}");
        h.record("vnpost", "B", Duration::from_millis(5), Err(Failure::new(FailureKind::Body, "garbage")));
        h.record("vnpost", "C", Duration::from_millis(5), Ok(()));
        assert!(probe(&spec, &h, Duration::from_secs(1)).await.failure.is_none());
    }
}
