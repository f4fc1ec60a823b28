//! Test messages: an SMS carrying a unique nonce is submitted through a carrier's SMS gateway
//! (Kannel's `sendsms`, or a templated HTTP request), then confirmed by the gateway's delivery
//! report (a callback to `/api/v1/sms/dlr/{id}`) and/or by the message itself arriving at the test
//! SIM, whose modem forwards it to `/api/v1/sms/inbound`. Measures the submit time, the delivery
//! report time and the end-to-end delivery time (ETSI TS 102 250 style).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::text::{nonce, url_encode};

use super::{Failure, FailureKind, Outcome, Phase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// Kannel's `GET /cgi-bin/sendsms?username=…&password=…&from=…&to=…&text=…&dlr-mask=…&dlr-url=…`.
    Kannel,
    /// `url` (and `body`) with `{to}`, `{from}`, `{text}`, `{dlr_url}` placeholders.
    Http,
}

/// What confirms the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmBy {
    Dlr,
    Inbound,
    Both,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmsSpec {
    pub gateway: Gateway,
    pub url: String,
    pub method: reqwest::Method,
    pub body: Option<String>,
    /// Static headers, then those of `headers_env` (secrets, marked sensitive).
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    pub username: Option<String>,
    pub password: Option<super::Secret>,
    pub from: String,
    pub to: String,
    /// The delivery report and/or the message must come within this, after the submit.
    pub deadline: Duration,
    pub confirm_by: ConfirmBy,
    /// `daemon.public_url`: where the gateway sends delivery reports.
    pub public_url: Option<String>,
}

/// What a test message measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SmsStats {
    pub submit: Option<Duration>,
    /// Submit → the delivery report saying delivered.
    pub dlr: Option<Duration>,
    /// Submit → the message at the test SIM (or the delivery report, when only that confirms).
    pub delivered: Option<Duration>,
}

#[derive(Default)]
struct Pending {
    /// Delivery report statuses, with when they came.
    dlr: Vec<(i64, Instant)>,
    received: Option<Instant>,
}

/// Messages in flight, shared with the HTTP server that takes the callbacks.
#[derive(Default)]
pub struct SmsHub {
    pending: Mutex<HashMap<String, Pending>>,
    wake: tokio::sync::Notify,
    client: super::http::ApiClient,
}

impl SmsHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A delivery report for message `id`; false when no probe waits for it (late or unknown).
    pub fn dlr(&self, id: &str, status: i64) -> bool {
        let found = self.lock().get_mut(id).map(|p| p.dlr.push((status, Instant::now()))).is_some();
        self.wake.notify_waiters();
        found
    }

    /// An inbound message; the id of the test message it carries, if a probe waits for it.
    pub fn inbound(&self, text: &str) -> Option<String> {
        let mut map = self.lock();
        let id = map.keys().find(|id| text.contains(id.as_str()))?.clone();
        if let Some(p) = map.get_mut(&id) {
            p.received.get_or_insert_with(Instant::now);
        }
        drop(map);
        self.wake.notify_waiters();
        Some(id)
    }
}

/// Kannel's words for its delivery report statuses.
pub fn dlr_word(status: i64) -> &'static str {
    match status {
        1 => "delivered to the phone",
        2 => "not delivered to the phone",
        4 => "queued on the SMSC",
        8 => "delivered to the SMSC",
        16 => "not delivered to the SMSC (rejected)",
        _ => "unknown status",
    }
}

/// Removes the pending entry when the probe ends, however it ends.
struct Forget<'a>(&'a SmsHub, String);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

pub async fn probe(spec: &SmsSpec, hub: &SmsHub, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let mut stats = SmsStats::default();
    let r = tokio::time::timeout(timeout, send_and_confirm(spec, hub, &mut stats)).await;
    out.failure = match r {
        Ok(r) => r.err(),
        Err(_) => Some(Failure::timeout(Phase::Processing, timeout)),
    };
    if let Some(s) = stats.submit {
        out.phases.set(Phase::Setup, s);
    }
    if let Some(d) = stats.delivered {
        out.phases.set(Phase::Transfer, d);
    }
    out.elapsed = start.elapsed();
    out.sms = Some(stats);
    out
}

async fn send_and_confirm(spec: &SmsSpec, hub: &SmsHub, stats: &mut SmsStats) -> Result<(), Failure> {
    let id = nonce();
    hub.lock().insert(id.clone(), Pending::default());
    let _forget = Forget(hub, id.clone());
    let text = format!("thongsuot test {id}");
    let dlr_url =
        spec.public_url.as_deref().map(|u| format!("{}/api/v1/sms/dlr/{id}?status=%d", u.trim_end_matches('/')));
    let client = hub.client.get("")?;
    let req = match spec.gateway {
        Gateway::Kannel => {
            let mut url = format!(
                "{}{}username={}&password={}&from={}&to={}&text={}",
                spec.url,
                if spec.url.contains('?') { '&' } else { '?' },
                url_encode(spec.username.as_deref().unwrap_or("")),
                url_encode(spec.password.as_ref().map_or("", super::Secret::expose)),
                url_encode(&spec.from),
                url_encode(&spec.to),
                url_encode(&text)
            );
            if let Some(d) = &dlr_url {
                // 1 delivered, 2 failed, 4 queued, 8 at the SMSC, 16 rejected by the SMSC.
                url.push_str(&format!("&dlr-mask=31&dlr-url={}", url_encode(d)));
            }
            client.get(url)
        }
        Gateway::Http => {
            let fill = |t: &str, encode: bool| {
                let v = |s: &str| if encode { url_encode(s) } else { s.to_string() };
                t.replace("{to}", &v(&spec.to))
                    .replace("{from}", &v(&spec.from))
                    .replace("{text}", &v(&text))
                    .replace("{dlr_url}", &v(dlr_url.as_deref().unwrap_or("")))
            };
            let mut r = client.request(spec.method.clone(), fill(&spec.url, true));
            if let Some(b) = &spec.body {
                r = r.body(fill(b, false));
            }
            for (k, v) in &spec.headers {
                r = r.header(k, v);
            }
            r
        }
    };
    let t0 = Instant::now();
    // The password travels in Kannel's URL: never in a failure reason.
    let redact = |mut f: Failure| {
        if let Some(p) = spec.password.as_ref().map(super::Secret::expose).filter(|p| !p.is_empty()) {
            f.detail = f.detail.replace(&url_encode(p), "***").replace(p, "***");
        }
        f
    };
    let resp = req.timeout(Duration::from_secs(10)).send().await.map_err(|e| redact(super::http::classify(e)))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(200).collect();
    if !(200..300).contains(&status) {
        return Err(Failure::new(FailureKind::Status, format!("gateway refused the message: {status} {body}")));
    }
    stats.submit = Some(t0.elapsed());
    let end = tokio::time::Instant::now() + spec.deadline;
    loop {
        let notified = hub.wake.notified();
        let (delivered, failed, received, last) = {
            let map = hub.lock();
            let p = map.get(&id);
            let dlr = p.map(|p| p.dlr.clone()).unwrap_or_default();
            let delivered = dlr.iter().find(|(s, _)| *s == 1).map(|(_, at)| *at);
            let failed = dlr.iter().find(|(s, _)| *s == 2 || *s == 16).map(|(s, _)| *s);
            (delivered, failed, p.and_then(|p| p.received), dlr.last().map(|(s, _)| *s))
        };
        if let (Some(s), ConfirmBy::Dlr | ConfirmBy::Both) = (failed, spec.confirm_by) {
            return Err(Failure::new(FailureKind::Answer, format!("delivery report {s}: {}", dlr_word(s))));
        }
        if let Some(at) = delivered {
            stats.dlr.get_or_insert(at.duration_since(t0));
        }
        let done = match spec.confirm_by {
            ConfirmBy::Dlr => delivered.is_some(),
            ConfirmBy::Inbound => received.is_some(),
            ConfirmBy::Both => delivered.is_some() && received.is_some(),
        };
        if done {
            let at = match spec.confirm_by {
                ConfirmBy::Dlr => delivered,
                _ => received,
            };
            stats.delivered = at.map(|a| a.duration_since(t0));
            return Ok(());
        }
        if tokio::time::Instant::now() >= end {
            let what = match (spec.confirm_by, delivered, received) {
                (ConfirmBy::Inbound, _, _) | (ConfirmBy::Both, Some(_), None) => {
                    "the message did not arrive at the test SIM".to_string()
                }
                _ => match last {
                    Some(s) => format!("no delivery report saying delivered (last: {s}, {})", dlr_word(s)),
                    None => "no delivery report".to_string(),
                },
            };
            return Err(Failure::new(
                FailureKind::Timeout,
                format!("{what} within {}", super::fmt_duration(spec.deadline)),
            ));
        }
        let _ = tokio::time::timeout_at(end, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_find_their_message() {
        let hub = SmsHub::default();
        hub.lock().insert("abc123".into(), Pending::default());
        assert!(hub.dlr("abc123", 8));
        assert!(!hub.dlr("zzz", 1));
        assert_eq!(hub.inbound("thongsuot test abc123").as_deref(), Some("abc123"));
        assert_eq!(hub.inbound("hello"), None);
        assert_eq!(url_encode("a b&c"), "a%20b%26c");
    }
}
