//! Who may call what: read-only pages and API (public unless `daemon.public_status = false`),
//! state-changing calls (the bearer token), and the slowing down of token guessing.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::config::Config;

/// Wrong tokens and signatures allowed per client address and minute before it is refused.
const AUTH_FAILURES_PER_MINUTE: u32 = 20;

/// Guessing the token (or a push signature) is slowed to a crawl: after
/// [`AUTH_FAILURES_PER_MINUTE`] answers 401 to one address within a minute, that address gets 429
/// for the rest of the minute, on every path but `/healthz`, `/readyz` and `/metrics` (its
/// monitoring keeps working). Requests without a client address (the router called directly) are
/// not counted.
pub(super) async fn limit_auth_failures(
    axum::extract::State(s): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let ip = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let minute = chrono::Utc::now().timestamp() / 60;
    if let Some(ip) = ip {
        let map = s.auth_failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&ip).is_some_and(|(m, n)| *m == minute && *n >= AUTH_FAILURES_PER_MINUTE) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications from this address; wait a minute\n",
            )
                .into_response();
        }
    }
    let resp = next.run(req).await;
    if let (Some(ip), StatusCode::UNAUTHORIZED) = (ip, resp.status()) {
        let mut map = s.auth_failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (m, _)| *m == minute);
        }
        let e = map.entry(ip).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        e.1 += 1;
        if e.1 == AUTH_FAILURES_PER_MINUTE {
            tracing::warn!(%ip, "{AUTH_FAILURES_PER_MINUTE} failed authentications in a minute: refusing this address until the minute ends");
        }
    }
    resp
}

/// Read-only pages and API: public unless `daemon.public_status = false`, then the token is
/// needed (bearer header, or `?token=` for a browser bookmark).
pub fn readable(s: &AppState, headers: &HeaderMap, token: Option<&str>) -> Result<(), (StatusCode, &'static str)> {
    let config = s.config.borrow().clone();
    if config.daemon.public_status {
        return Ok(());
    }
    if query_token_ok(&config, token) {
        return Ok(());
    }
    authorized(&config, headers)
}

/// A `?token=` (for bookmarks and gateways that cannot set headers), compared in constant time.
pub(super) fn query_token_ok(config: &Config, token: Option<&str>) -> bool {
    match (token, config.daemon.api_token.as_deref()) {
        (Some(t), Some(expected)) => bool::from(t.as_bytes().ct_eq(expected.as_bytes())),
        _ => false,
    }
}

/// Checks `Authorization: Bearer <token>` in constant time. No token configured means every
/// state-changing call is refused.
pub fn authorized(config: &Config, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
    let Some(expected) = config.daemon.api_token.as_deref() else {
        return Err((
            StatusCode::FORBIDDEN,
            "no API token configured (daemon.api_token_env): state-changing calls are disabled\n",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or((StatusCode::UNAUTHORIZED, "missing bearer token\n"))?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, "wrong bearer token\n"))
    }
}

/// The `?token=` of a request's query, if any (other parameters are the handler's).
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// A caller who may read (see [`readable`]): an extractor, so a handler that takes it cannot
/// forget the check. It runs before the handler's own query is parsed.
pub struct Read;

impl axum::extract::FromRequestParts<AppState> for Read {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, s: &AppState) -> Result<Read, Response> {
        let token = axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri).ok().and_then(|q| q.0.token);
        readable(s, &parts.headers, token.as_deref()).map(|()| Read).map_err(IntoResponse::into_response)
    }
}

/// A caller with the bearer token (see [`authorized`]): for state-changing calls.
pub struct Write;

impl axum::extract::FromRequestParts<AppState> for Write {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, s: &AppState) -> Result<Write, Response> {
        let config = s.config.borrow().clone();
        authorized(&config, &parts.headers).map(|()| Write).map_err(IntoResponse::into_response)
    }
}
