//! What the outside pushes: heartbeats of exam sites, SMS gateways' delivery reports and the
//! messages test SIMs received.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{authorized, query_token_ok};
use super::{AppState, Write};

#[derive(serde::Deserialize, Default)]
pub(crate) struct SmsQuery {
    status: Option<i64>,
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    token: Option<String>,
}

/// A gateway's delivery report for test message `id` (Kannel calls `dlr-url` with `%d`). The id
/// is an unguessable nonce of the probe: it is the credential. Always 200, so gateways do not
/// retry reports that came too late.
pub(crate) async fn sms_dlr(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<SmsQuery>,
) -> Response {
    let Some(status) = q.status else {
        return (StatusCode::BAD_REQUEST, "status missing (?status=%d)\n").into_response();
    };
    if !s.sms.dlr(&id, status) {
        tracing::debug!(%id, status, "delivery report for no waiting test message (late or unknown)");
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// A message received by a test SIM, forwarded by its modem or gateway (Kannel smsbox `get-url`
/// with `from=%p&to=%P&text=%a`): bearer token or `?token=`.
pub(crate) async fn sms_inbound(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<SmsQuery>,
    headers: HeaderMap,
) -> Response {
    let config = s.config.borrow().clone();
    if !query_token_ok(&config, q.token.as_deref())
        && let Err(e) = authorized(&config, &headers)
    {
        return e.into_response();
    }
    let text = q.text.unwrap_or_default();
    match s.sms.inbound(&text) {
        Some(id) => tracing::debug!(%id, from = q.from.as_deref().unwrap_or(""), "test message received"),
        None => tracing::debug!(
            from = q.from.as_deref().unwrap_or(""),
            to = q.to.as_deref().unwrap_or(""),
            "inbound message matches no test message"
        ),
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// A push from a heartbeat target (an exam site behind NAT): bearer token required.
pub(crate) async fn heartbeat(
    State(s): State<AppState>,
    _: Write,
    axum::extract::Path(target): axum::extract::Path<String>,
) -> Response {
    let config = s.config.borrow().clone();
    let known =
        config.targets.iter().any(|t| t.name == target && matches!(t.spec, crate::probe::ProbeSpec::Heartbeat(_)));
    if !known {
        return (StatusCode::NOT_FOUND, "no heartbeat target of that name\n").into_response();
    }
    s.heartbeats.record(&target);
    (StatusCode::OK, "ok\n").into_response()
}
