//! The consignment endpoints: `GET/POST /api/v1/consignments`,
//! `GET /api/v1/consignments/{tracking}` and the operators' signed webhook
//! `POST /api/v1/postal/{operator}/events`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::http::{AppState, Read, Write};
use crate::postal::intake::Registration;
use crate::postal::{Consignment, SlaState};

/// Bodies of the consignment endpoints may be this large (registering many at once).
pub const MAX_BODY: usize = 8 << 20;

fn iso(ms: Option<i64>, tz: Tz) -> Value {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or(Value::Null, |t| Value::String(t.with_timezone(&tz).to_rfc3339()))
}

/// A consignment as the API shows it: times in RFC 3339 (local offset), the reason when unknown.
pub fn view(c: &Consignment, tz: Tz) -> Value {
    json!({
        "tracking": c.tracking,
        "operator": c.operator,
        "kind": c.kind,
        "description": c.description,
        "origin": c.origin,
        "destination": c.destination,
        "accepted_at": iso(Some(c.accepted_ms), tz),
        "deadline": iso(Some(c.deadline_ms), tz),
        "contacts": c.contacts,
        "source": c.source,
        "state": c.state,
        "warning": c.warning,
        "tracking_status": c.status,
        "operator_status": c.status_raw,
        "location": c.location,
        "last_event_at": iso(c.last_event_ms, tz),
        "delivered_at": iso(c.delivered_ms, tz),
        "last_poll_at": iso(c.last_poll_ms, tz),
        "last_ok_at": iso(c.last_ok_ms, tz),
        "error": c.error,
        "unknown_reason": c.unknown_reason(),
    })
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    state: Option<String>,
    operator: Option<String>,
    limit: Option<usize>,
}

pub async fn list(State(s): State<AppState>, _: Read, Query(q): Query<ListQuery>) -> Response {
    if let Some(st) = q.state.as_deref()
        && SlaState::parse(st).is_none()
    {
        let all: Vec<&str> = SlaState::ALL.iter().map(|x| x.as_str()).collect();
        return (StatusCode::BAD_REQUEST, format!("unknown state {st:?}; one of {}\n", all.join(", "))).into_response();
    }
    let tz = s.config.borrow().daemon.timezone;
    let items = s.postal.list(q.state.as_deref(), q.operator.as_deref());
    let total = items.len();
    let limit = q.limit.unwrap_or(1000).min(100_000);
    let consignments: Vec<Value> = items.iter().take(limit).map(|c| view(c, tz)).collect();
    axum::Json(json!({
        "generated_at": Utc::now().with_timezone(&tz).to_rfc3339(),
        "operators": s.postal.summaries(),
        "csv_errors": s.postal.csv_errors(),
        "total": total,
        "consignments": consignments,
    }))
    .into_response()
}

pub async fn one(
    State(s): State<AppState>,
    _: Read,
    Path(tracking): Path<String>,
    Query(_q): Query<ListQuery>,
) -> Response {
    let tz = s.config.borrow().daemon.timezone;
    let Some((c, events)) = s.postal.get(&tracking).await else {
        return (StatusCode::NOT_FOUND, "no consignment with that tracking number\n").into_response();
    };
    let mut v = view(&c, tz);
    v["events"] = events
        .iter()
        .map(|(e, source)| {
            json!({
                "at": iso(Some(e.at_ms), tz),
                "status": e.status,
                "operator_status": e.raw,
                "location": e.location,
                "source": source,
            })
        })
        .collect();
    axum::Json(v).into_response()
}

/// Forgets a consignment registered by mistake (bearer token). A row still in the CSV file comes
/// back at the file's next change.
pub async fn remove(State(s): State<AppState>, _: Write, Path(tracking): Path<String>) -> Response {
    match s.postal.remove(&tracking).await {
        Ok(true) => (StatusCode::OK, "removed\n").into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "no consignment with that tracking number\n").into_response(),
        Err(e) => unavailable(&e),
    }
}

/// Registers one consignment (a JSON object) or many (an array). Bearer token required.
pub async fn register(State(s): State<AppState>, _: Write, body: Bytes) -> Response {
    let config = s.config.borrow().clone();
    if config.postal.is_none() {
        return (StatusCode::CONFLICT, "no [postal] section in the config\n").into_response();
    }
    if !config.tracks_postal() {
        return (StatusCode::CONFLICT, "postal tracking runs on the daemon of shard 1: register there\n")
            .into_response();
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}\n")).into_response(),
    };
    let values = match value {
        Value::Array(a) => a,
        v @ Value::Object(_) => vec![v],
        _ => return (StatusCode::BAD_REQUEST, "expected a JSON object or an array of objects\n").into_response(),
    };
    if values.len() > crate::postal::intake::MAX_ROWS {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too many consignments in one call\n").into_response();
    }
    let mut regs = Vec::new();
    let mut index = Vec::new();
    let mut errors = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        match serde_json::from_value::<Registration>(v) {
            Ok(r) => {
                index.push(i);
                regs.push(r);
            }
            Err(e) => errors.push((i, e.to_string())),
        }
    }
    let (registered, bad) = match s.postal.register_api(regs).await {
        Ok(r) => r,
        // Our trouble, not the caller's: it should send the same again later.
        Err(e) => return unavailable(&e),
    };
    errors.extend(bad.into_iter().map(|(j, e)| (index.get(j).copied().unwrap_or(j), e)));
    errors.sort();
    let status =
        if registered.is_empty() && !errors.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let errors: Vec<Value> = errors.into_iter().map(|(i, e)| json!({"index": i, "error": e})).collect();
    (status, axum::Json(json!({"registered": registered, "errors": errors}))).into_response()
}

/// Checks `X-Signature-256: sha256=<hex>` (or `X-Hub-Signature-256`): HMAC-SHA256 of the body.
pub fn signed(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let given = ["x-signature-256", "x-hub-signature-256"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().strip_prefix("sha256=").unwrap_or(v.trim()).to_ascii_lowercase());
    let Some(hex) = given else { return false };
    let Some(tag) = crate::text::unhex(&hex) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// Events pushed by an operator, signed with its `webhook_secret_env`.
pub async fn push(
    State(s): State<AppState>,
    Path(operator): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = s.config.borrow().clone();
    let Some(op) = config.postal.as_ref().and_then(|p| p.operator(&operator)) else {
        return (StatusCode::NOT_FOUND, "no postal operator of that name\n").into_response();
    };
    let Some(secret) = op.webhook_secret.as_deref() else {
        return (StatusCode::FORBIDDEN, "pushes are not enabled for this operator (set webhook_secret_env)\n")
            .into_response();
    };
    if !signed(secret, &headers, &body) {
        tracing::warn!(%operator, "postal push refused: missing or wrong signature");
        return (StatusCode::UNAUTHORIZED, "missing or wrong X-Signature-256 (sha256=HMAC-SHA256 of the body)\n")
            .into_response();
    }
    match s.postal.push(&operator, &body).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(crate::postal::tracker::PushError::Invalid(e)) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Err(crate::postal::tracker::PushError::Store(e)) => unavailable(&e),
    }
}

/// 503 with `Retry-After`: the store failed, the request was fine; retrying it later works.
fn unavailable(error: &str) -> Response {
    tracing::error!(%error, "postal request not saved: answered 503 (retry)");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "30")],
        format!("the store could not save this, retry later: {error}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
        let tag = ring::hmac::sign(&key, b"{}");
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let mut h = HeaderMap::new();
        h.insert("x-signature-256", format!("sha256={hex}").parse().expect("header"));
        assert!(signed("s3cret", &h, b"{}"));
        assert!(!signed("s3cret", &h, b"{ }"));
        assert!(!signed("other", &h, b"{}"));
        h.insert("x-signature-256", "sha256=zz".parse().expect("header"));
        assert!(!signed("s3cret", &h, b"{}"));
        assert!(!signed("s3cret", &HeaderMap::new(), b"{}"));
    }
}
