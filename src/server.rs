//! The HTTP server (axum): `/metrics`, `/healthz`, `/readyz`, a minimal status page, the
//! status JSON and `POST /-/reload`. State-changing endpoints need the bearer token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::Applied;
use crate::status::Board;

/// A request to re-read the config file; the answer says what changed or why it was refused.
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Result<Applied, Vec<String>>>>,
}

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub board: Arc<Board>,
    pub config: watch::Receiver<Arc<Config>>,
    pub reload: mpsc::Sender<ReloadRequest>,
    pub ready: Arc<AtomicBool>,
    pub notify: crate::notify::NotifyHandle,
    pub ack_key: Arc<crate::notify::ack::AckKey>,
    pub incidents: Arc<std::sync::Mutex<crate::notify::db::NotifyDb>>,
    pub heartbeats: Arc<crate::probe::heartbeat::Heartbeats>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .route("/-/reload", post(reload))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/heartbeat/{target}", post(heartbeat))
        .route("/api/v1/incidents/{id}/ack", get(ack_by_link).post(ack_post))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    // Rendering a large fleet takes CPU time: off the runtime, so probes keep their cadence.
    let m = s.metrics.clone();
    let body = match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "metrics rendering failed\n").into_response(),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

#[derive(serde::Serialize)]
struct StatusBody {
    vantage: String,
    version: &'static str,
    generated_at: chrono::DateTime<chrono::Utc>,
    up: usize,
    down: usize,
    unknown: usize,
    targets: Vec<crate::status::TargetStatus>,
}

fn status_body(s: &AppState) -> StatusBody {
    let targets = s.board.snapshot();
    let count = |st: &str| targets.iter().filter(|t| t.state == st).count();
    StatusBody {
        vantage: s.config.borrow().daemon.vantage.clone(),
        version: env!("CARGO_PKG_VERSION"),
        generated_at: chrono::Utc::now(),
        up: count("up"),
        down: count("down"),
        unknown: count("unknown"),
        targets,
    }
}

async fn status(State(s): State<AppState>) -> Response {
    axum::Json(status_body(&s)).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A plain server-rendered table until the full status page lands.
async fn index(State(s): State<AppState>) -> Html<String> {
    let b = status_body(&s);
    let tz = s.config.borrow().daemon.timezone;
    let mut rows = String::new();
    for t in &b.targets {
        let since = t.since.map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
        rows.push_str(&format!(
            "<tr class=\"{st}\"><td>{name}</td><td>{group}</td><td>{kind}</td><td>{st}</td><td>{since}</td><td>{reason}</td></tr>\n",
            st = t.state,
            name = esc(&t.name),
            group = esc(&t.group),
            kind = t.kind,
            reason = esc(t.last_failure.as_deref().filter(|_| t.last_ok == Some(false)).unwrap_or("")),
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>thongsuot — {vantage}</title>\
         <style>body{{font-family:sans-serif;margin:1em}}td,th{{padding:.3em .6em;text-align:left}}\
         .up td:nth-child(4){{color:#1a7f37}}.down td:nth-child(4){{color:#cf222e;font-weight:bold}}</style></head>\
         <body><h1>Thông suốt — {vantage}</h1><p>{up} up · {down} down · {unknown} unknown</p>\
         <table><tr><th>target</th><th>group</th><th>kind</th><th>state</th><th>since</th><th>last failure</th></tr>\n{rows}</table>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/status\">/api/v1/status</a></p></body></html>",
        vantage = esc(&b.vantage),
        up = b.up,
        down = b.down,
        unknown = b.unknown,
    ))
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

async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let auth = authorized(&s.config.borrow(), &headers);
    if let Err(e) = auth {
        return e.into_response();
    }
    let (tx, rx) = oneshot::channel();
    if s.reload.send(ReloadRequest { reply: Some(tx) }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(applied)) => axum::Json(applied).into_response(),
        Ok(Err(errors)) => {
            (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "errors": errors }))).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct IncidentQuery {
    /// `open` (default) or `all` (the last `days` days).
    state: Option<String>,
    days: Option<u32>,
}

async fn incidents(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<IncidentQuery>,
) -> Response {
    let all = q.state.as_deref() == Some("all");
    let days = i64::from(q.days.unwrap_or(7).min(366));
    let now = chrono::Utc::now().timestamp_millis();
    let rows = crate::notify::outbox::with_db(&s.incidents, move |d| {
        if all { d.incidents_between(now - days * 86_400_000, now + 1) } else { d.open_incidents() }
    })
    .await;
    match rows {
        Some(Ok(r)) => axum::Json(serde_json::json!({ "incidents": r })).into_response(),
        Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct AckLink {
    expires: i64,
    sig: String,
}

fn ack_page(status: StatusCode, vi: &str, en: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>thongsuot</title></head><body style=\"font-family:sans-serif;margin:2em\"><h1>{}</h1><p>{}</p></body></html>",
        esc(vi),
        esc(en)
    );
    (status, Html(body)).into_response()
}

/// The signed link from an e-mail opens a confirmation page: a GET changes nothing, so mail
/// scanners that follow links cannot acknowledge incidents. The button POSTs the same link.
async fn ack_by_link(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    axum::extract::Query(q): axum::extract::Query<AckLink>,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = s.ack_key.verify(id, q.expires, &q.sig, now) {
        return ack_page(StatusCode::FORBIDDEN, "Liên kết không hợp lệ hoặc đã hết hạn.", why);
    }
    let body = format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>thongsuot</title></head><body style=\"font-family:sans-serif;margin:2em\">\
         <h1>Xác nhận tiếp nhận sự cố #{id}?</h1><p>Acknowledge incident #{id}? Reminders and escalation stop; you are still told when it is resolved.</p>\
         <form method=\"post\" action=\"?expires={}&amp;sig={}\"><button type=\"submit\" style=\"font-size:1.2em;padding:.5em 1.5em\">Xác nhận / Acknowledge</button></form></body></html>",
        q.expires,
        esc(&q.sig)
    );
    Html(body).into_response()
}

/// POST: with a valid signed link (the confirmation page's button) or with the bearer token.
async fn ack_post(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let link = q.get("expires").and_then(|e| e.parse().ok()).zip(q.get("sig"));
    match link {
        Some((expires, sig)) => ack_signed(s, id, AckLink { expires, sig: sig.clone() }).await,
        None => ack_by_token(s, id, headers).await,
    }
}

async fn ack_signed(s: AppState, id: i64, q: AckLink) -> Response {
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = s.ack_key.verify(id, q.expires, &q.sig, now) {
        return ack_page(StatusCode::FORBIDDEN, "Liên kết không hợp lệ hoặc đã hết hạn.", why);
    }
    match s.notify.ack(id, "e-mail link").await {
        Ok(true) => ack_page(
            StatusCode::OK,
            &format!("Đã xác nhận tiếp nhận sự cố #{id}."),
            &format!(
                "Incident #{id} acknowledged: reminders and escalations stop. You will still be told when it is resolved."
            ),
        ),
        Ok(false) => ack_page(StatusCode::NOT_FOUND, "Không tìm thấy sự cố.", "No such incident."),
        Err(e) => ack_page(StatusCode::SERVICE_UNAVAILABLE, "Lỗi hệ thống.", &e),
    }
}

async fn ack_by_token(s: AppState, id: i64, headers: HeaderMap) -> Response {
    let auth = authorized(&s.config.borrow(), &headers);
    if let Err(e) = auth {
        return e.into_response();
    }
    match s.notify.ack(id, "api").await {
        Ok(true) => axum::Json(serde_json::json!({ "id": id, "acknowledged": true })).into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "no such incident\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

/// A push from a heartbeat target (an exam site behind NAT): bearer token required.
async fn heartbeat(
    State(s): State<AppState>,
    axum::extract::Path(target): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let config = s.config.borrow().clone();
    if let Err(e) = authorized(&config, &headers) {
        return e.into_response();
    }
    let known =
        config.targets.iter().any(|t| t.name == target && matches!(t.spec, crate::probe::ProbeSpec::Heartbeat(_)));
    if !known {
        return (StatusCode::NOT_FOUND, "no heartbeat target of that name\n").into_response();
    }
    s.heartbeats.record(&target);
    (StatusCode::OK, "ok\n").into_response()
}
