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
use crate::text::esc;

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
    pub incidents: Arc<std::sync::Mutex<crate::store::notices::NotifyDb>>,
    pub heartbeats: Arc<crate::probe::heartbeat::Heartbeats>,
    pub sla: crate::daemon::SlaCache,
    pub store_path: std::path::PathBuf,
    pub run_started: i64,
    pub postal: Arc<crate::postal::tracker::Tracker>,
    pub health: Arc<crate::daemon::SelfHealth>,
    pub sms: Arc<crate::probe::sms::SmsHub>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/targets/{name}", get(target_page))
        .route("/api/v1/targets", get(api_targets))
        .route("/api/v1/targets/{name}", get(api_target))
        .route("/api/v1/incidents/{id}", get(api_incident))
        .route("/api/v1/periods", get(api_periods))
        .route("/api/v1/report", get(api_report))
        .route("/api/v1/openapi.json", get(|| async { axum::Json(crate::openapi::document()) }))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .route("/-/reload", post(reload))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/heartbeat/{target}", post(heartbeat))
        .route("/api/v1/sms/dlr/{id}", get(sms_dlr).post(sms_dlr))
        .route("/api/v1/sms/inbound", get(sms_inbound).post(sms_inbound))
        .route("/api/v1/incidents/{id}/ack", get(ack_by_link).post(ack_post))
        .route(
            "/api/v1/consignments",
            get(crate::postal::api::list)
                .post(crate::postal::api::register)
                .layer(DefaultBodyLimit::max(crate::postal::api::MAX_BODY)),
        )
        .route("/api/v1/consignments/{tracking}", get(crate::postal::api::one).delete(crate::postal::api::remove))
        .route(
            "/api/v1/postal/{operator}/events",
            post(crate::postal::api::push).layer(DefaultBodyLimit::max(crate::postal::api::MAX_BODY)),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // A request (body included) that takes longer than this is answered 408 and dropped.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .layer(axum::middleware::from_fn(limit_auth_failures))
        .with_state(state)
}

/// Wrong tokens and signatures allowed per client address and minute before it is refused.
const AUTH_FAILURES_PER_MINUTE: u32 = 20;

/// Failed authentications per client address: (minute it started, count). Bounded.
static AUTH_FAILURES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (i64, u32)>>> =
    std::sync::LazyLock::new(Default::default);

/// Guessing the token (or a push signature) is slowed to a crawl: after
/// [`AUTH_FAILURES_PER_MINUTE`] answers 401 to one address within a minute, that address gets 429
/// for the rest of the minute, on every path but `/healthz`, `/readyz` and `/metrics` (its
/// monitoring keeps working). Requests without a client address (the router called directly) are
/// not counted.
async fn limit_auth_failures(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let ip = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let minute = chrono::Utc::now().timestamp() / 60;
    if let Some(ip) = ip {
        let map = AUTH_FAILURES.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut map = AUTH_FAILURES.lock().unwrap_or_else(|p| p.into_inner());
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

/// The longest any request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Request bodies above this are refused (413) before any handler runs.
const MAX_BODY: usize = 64 * 1024;

/// Refuses a declared body larger than [`MAX_BODY`] even on routes that do not read one.
async fn refuse_large_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let path = req.uri().path();
    let limit = if path.starts_with("/api/v1/consignments") || path.starts_with("/api/v1/postal/") {
        crate::postal::api::MAX_BODY
    } else {
        MAX_BODY
    };
    if declared.is_some_and(|n| n > limit) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    next.run(req).await
}

/// How long a scrape may keep the renderer waiting for it to read the next chunk.
const SCRAPE_STALL: std::time::Duration = std::time::Duration::from_secs(30);

async fn metrics(State(s): State<AppState>) -> Response {
    // Rendering a large fleet takes CPU time: off the runtime, so probes keep their cadence. The
    // text goes out in chunks as it is written, so a large scrape is never held whole.
    let m = s.metrics.clone();
    let (tx, rx) = mpsc::channel::<String>(2);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = crate::metrics::Out::chunked(move |chunk| {
            // A reader that went away or stalled ends the rendering.
            matches!(handle.block_on(tokio::time::timeout(SCRAPE_STALL, tx.send(chunk))), Ok(Ok(())))
        });
        m.render_into(&mut out);
        out.finish();
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], axum::body::Body::from_stream(chunks))
        .into_response()
}

/// How long a pending e-mail may wait before `/readyz` calls the outbox stuck.
const OUTBOX_STUCK_MS: i64 = 15 * 60 * 1000;

/// 200 "ready", or 503 with one line per problem: starting or stopping, the store not writable,
/// the scheduler overloaded, targets the monitor cannot observe, e-mails stuck in the outbox.
async fn readyz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n").into_response();
    }
    let mut problems = Vec::new();
    if let Some((since, error)) = s.health.writer.failing() {
        problems.push(format!(
            "store: cannot write since {} (events are kept in memory and retried): {error}",
            crate::text::local_ms(since, s.config.borrow().daemon.timezone)
        ));
    }
    if let Some(o) = s.health.overloaded() {
        problems.push(format!("scheduler {o}"));
    }
    let faults = s.board.faults();
    if !faults.is_empty() {
        let tz = s.config.borrow().daemon.timezone;
        let shown: Vec<String> = faults
            .iter()
            .take(10)
            .map(|(t, why, since)| format!("{t} since {}: {why}", crate::text::local_ms(since.timestamp_millis(), tz)))
            .collect();
        let more = if faults.len() > 10 { format!("; and {} more", faults.len() - 10) } else { String::new() };
        problems.push(format!(
            "monitor faults: {} target(s) not observed (the monitor's trouble, not the target's): {}{more}",
            faults.len(),
            shown.join("; ")
        ));
    }
    let oldest =
        crate::notify::outbox::with_db(&s.incidents, |d| d.oldest_pending()).await.and_then(Result::ok).flatten();
    if let Some((created, n)) = oldest
        && chrono::Utc::now().timestamp_millis() - created > OUTBOX_STUCK_MS
    {
        problems.push(format!(
            "outbox: {n} e-mail(s) waiting, the oldest since {} (check the SMTP server)",
            crate::text::local_ms(created, s.config.borrow().daemon.timezone)
        ));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n").into_response()
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

async fn status(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    axum::Json(status_body(&s)).into_response()
}

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    lang: Option<String>,
    /// `1`: only the refreshable part (the page's script asks for it every 15 s).
    fragment: Option<u8>,
    token: Option<String>,
    /// One group, every target of it (the page lists at most 200 per group otherwise).
    group: Option<String>,
}

/// Read-only pages and API: public unless `daemon.public_status = false`, then the token is
/// needed (bearer header, or `?token=` for a browser bookmark).
pub(crate) fn readable(
    s: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), (StatusCode, &'static str)> {
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
fn query_token_ok(config: &Config, token: Option<&str>) -> bool {
    match (token, config.daemon.api_token.as_deref()) {
        (Some(t), Some(expected)) => bool::from(t.as_bytes().ct_eq(expected.as_bytes())),
        _ => false,
    }
}

type PageData = (
    Arc<Config>,
    Vec<crate::status::TargetStatus>,
    Arc<Vec<crate::report::Report>>,
    Vec<crate::model::notice::IncidentRow>,
);

/// `&token=…` for the links and refresh of a page opened with `?token=`.
fn suffix(q: &PageQuery) -> String {
    q.token.as_deref().map(|t| format!("&token={}", crate::text::url_encode(t))).unwrap_or_default()
}

async fn page_input(s: &AppState) -> PageData {
    let config = s.config.borrow().clone();
    let targets = s.board.snapshot();
    let reports = s.sla.read().unwrap_or_else(|p| p.into_inner()).clone();
    let incidents = crate::notify::outbox::with_db(&s.incidents, |d| d.open_incidents())
        .await
        .and_then(Result::ok)
        .unwrap_or_default();
    (config, targets, reports, incidents)
}

async fn index(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    let (config, targets, reports, incidents) = page_input(&s).await;
    let (postal, consignments) = (s.postal.summaries(), s.postal.noteworthy(50));
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = crate::web::language(q.lang.as_deref(), accept, config.daemon.language);
    let input = crate::web::PageInput {
        config: &config,
        targets: &targets,
        reports: &reports,
        incidents: &incidents,
        lang,
        now: chrono::Utc::now(),
        link_suffix: suffix(&q),
        postal: &postal,
        consignments: &consignments,
        group: q.group.as_deref(),
    };
    let body = crate::web::status_body(&input);
    if q.fragment == Some(1) {
        return Html(body).into_response();
    }
    let l = if lang == crate::config::Language::Vi { "vi" } else { "en" };
    let group = q.group.as_deref().map(|g| format!("&group={}", crate::text::url_encode(g))).unwrap_or_default();
    let refresh = format!("?lang={l}&fragment=1{group}{}", suffix(&q));
    Html(crate::web::page(&format!("thongsuot — {}", config.daemon.vantage), lang, &body, &refresh)).into_response()
}

async fn target_page(
    State(s): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    let (config, targets, reports, incidents) = page_input(&s).await;
    let Some(t) = targets.iter().find(|t| *t.name == *name) else {
        return (StatusCode::NOT_FOUND, "no such target\n").into_response();
    };
    let (postal, consignments) = (Vec::new(), Vec::new());
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = crate::web::language(q.lang.as_deref(), accept, config.daemon.language);
    let input = crate::web::PageInput {
        config: &config,
        targets: &targets,
        reports: &reports,
        incidents: &incidents,
        lang,
        now: chrono::Utc::now(),
        link_suffix: suffix(&q),
        postal: &postal,
        consignments: &consignments,
        group: None,
    };
    let body = crate::web::target_body(&input, t);
    if q.fragment == Some(1) {
        return Html(body).into_response();
    }
    let l = if lang == crate::config::Language::Vi { "vi" } else { "en" };
    Html(crate::web::page(&format!("thongsuot — {name}"), lang, &body, &format!("?lang={l}&fragment=1{}", suffix(&q))))
        .into_response()
}

#[derive(serde::Deserialize)]
struct TargetsQuery {
    token: Option<String>,
    /// Only this group's targets.
    group: Option<String>,
    /// Only targets in this state: `up`, `down`, `unknown`, or `degraded` (congested now).
    state: Option<String>,
    /// Only targets of this probe kind (`http`, `tcp`, `icmp`, …).
    kind: Option<String>,
    /// Skip this many of the matching targets (name order).
    offset: Option<usize>,
    /// At most this many targets (default: all of them).
    limit: Option<usize>,
}

#[derive(serde::Serialize)]
struct TargetsPage {
    /// How many targets match the filters, whatever the page.
    total: usize,
    offset: usize,
    /// The `offset` of the next page, or `null` when this page is the last.
    next_offset: Option<usize>,
    targets: Vec<crate::status::TargetStatus>,
}

/// Every target, or a page of those that match `group`, `state` and `kind`, in name order.
async fn api_targets(
    State(s): State<AppState>,
    q: Result<axum::extract::Query<TargetsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let bad =
        |what: String| (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": what }))).into_response();
    // A malformed query (`limit=abc`) gets the same JSON error as the other refusals.
    let q = match q {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    let state = q.state.as_deref().map(str::to_ascii_lowercase);
    let state = state.as_deref();
    if let Some(st) = state
        && !["up", "down", "unknown", "degraded"].contains(&st)
    {
        return bad(format!("unknown state {st:?}: one of up, down, unknown, degraded"));
    }
    if q.limit == Some(0) {
        return bad("limit must be at least 1".into());
    }
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(usize::MAX);
    let board = s.board.clone();
    let (group, kind, state) = (q.group, q.kind, state.map(str::to_owned));
    // Copying and encoding 100,000 targets takes a good part of a second: not on a worker
    // that serves the other requests.
    let page = tokio::task::spawn_blocking(move || {
        let keep = |t: &crate::status::TargetStatus| {
            group.as_deref().is_none_or(|g| &*t.group == g)
                && kind.as_deref().is_none_or(|k| t.kind == k)
                && match state.as_deref() {
                    None => true,
                    Some("degraded") => t.degraded_since.is_some(),
                    Some(st) => t.state == st,
                }
        };
        let (total, targets) = board.select(keep, offset, limit);
        let end = offset.saturating_add(targets.len());
        let page = TargetsPage { total, offset, next_offset: (end < total).then_some(end), targets };
        serde_json::to_vec(&page).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match page {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn api_target(
    State(s): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    let Some(status) = s.board.get(&name) else {
        return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "no such target" }))).into_response();
    };
    let reports = s.sla.read().unwrap_or_else(|p| p.into_inner()).clone();
    let sla: Vec<serde_json::Value> = reports
        .iter()
        .filter_map(|r| {
            match r.groups.iter().flat_map(|g| g.targets.iter()).find(|t| t.name == name) {
                Some(t) => Some(serde_json::json!({ "window": r.window_name, "from": r.from, "to": r.to, "figures": t.figures })),
                // A past period keeps only its targets with something to report.
                None if r.clean_targets_omitted > 0 => Some(serde_json::json!({
                    "window": r.window_name, "from": r.from, "to": r.to, "figures": null,
                    "note": format!(
                        "nothing to report in this past period (no outage, congestion or breach: availability 100 % or not observed); full figures: GET /api/v1/report?period={}",
                        r.window_name
                    ),
                })),
                None => None,
            }
        })
        .collect();
    axum::Json(serde_json::json!({ "target": status, "sla": sla })).into_response()
}

async fn api_incident(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    match crate::notify::outbox::with_db(&s.incidents, move |d| d.incident(id)).await {
        Some(Ok(Some(i))) => axum::Json(i).into_response(),
        Some(Ok(None)) => {
            (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "no such incident" }))).into_response()
        }
        Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

async fn api_periods(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    let config = s.config.borrow().clone();
    let now = chrono::Utc::now();
    let periods: Vec<serde_json::Value> = config
        .periods
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name, "start": p.start, "end": p.end, "active": p.contains(now),
                "seconds_left": if p.contains(now) { Some((p.end - now).num_seconds()) } else { None },
                "interval_seconds": p.interval.map(|i| i.as_secs_f64()), "objective": p.objective, "description": p.description,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "periods": periods })).into_response()
}

#[derive(serde::Deserialize)]
struct ReportQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    token: Option<String>,
}

/// The same data as `thongsuot report --format json`.
async fn api_report(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ReportQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
    let config = s.config.borrow().clone();
    let now = chrono::Utc::now();
    let tz = config.daemon.timezone;
    let bad = |m: String| (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": m }))).into_response();
    let (name, window) = match (&q.period, &q.from, &q.to) {
        (Some(p), None, None) => match config.periods.iter().find(|x| &x.name == p) {
            Some(x) => {
                (x.name.clone(), crate::sla::spans::Span::new(x.start.timestamp_millis(), x.end.timestamp_millis()))
            }
            None => return bad(format!("no period {p:?}")),
        },
        (None, Some(f), Some(t)) => {
            let parse = |v: &str| crate::config::units::parse_time_str(v, tz);
            match (parse(f), parse(t)) {
                (Ok(f), Ok(t)) if t > f => {
                    ("custom".to_string(), crate::sla::spans::Span::new(f.timestamp_millis(), t.timestamp_millis()))
                }
                (Ok(_), Ok(_)) => return bad("to must be after from".into()),
                (Err(e), _) | (_, Err(e)) => return bad(e),
            }
        }
        (None, None, None) => (
            "last-24h".to_string(),
            crate::sla::spans::Span::new(now.timestamp_millis() - 86_400_000, now.timestamp_millis()),
        ),
        _ => return bad("use period=NAME, or from=…&to=…".into()),
    };
    if window.len() > 400 * 86_400_000 {
        return bad("the window is longer than 400 days".into());
    }
    // Reports are heavy: at most two at a time, so a burst of requests cannot crowd out the
    // blocking threads that probes and the notifier need.
    static REPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(_permit) = REPORTS.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    };
    let (path, live) = (s.store_path.clone(), s.run_started);
    let built = tokio::task::spawn_blocking(move || {
        let period = config.periods.iter().find(|p| p.name == name);
        crate::store::Store::open_read_only(&path)
            .and_then(|store| crate::report::build(&config, &store, &name, window, period, now, Some(live)))
    })
    .await;
    match built {
        Ok(Ok(r)) => axum::Json(r).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "report failed\n").into_response(),
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
    token: Option<String>,
}

async fn incidents(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<IncidentQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = readable(&s, &headers, q.token.as_deref()) {
        return r.into_response();
    }
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

/// The acknowledgement pages' frame: the status page's look, no external assets.
fn ack_frame(inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>thongsuot</title><style>body{{font-family:system-ui,sans-serif;margin:0;background:#f6f8fa;color:#1f2328}}\
         main{{max-width:40em;margin:2em auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5em 2em}}\
         h1{{font-size:1.4em;margin-top:0}}.who{{font-size:1.1em;font-weight:600}}.small{{color:#656d76;font-size:.9em}}\
         button{{font-size:1.1em;padding:.5em 1.5em;border-radius:6px;border:1px solid #1a7f37;background:#1f883d;color:#fff;cursor:pointer}}\
         </style></head><body><main>{inner}</main></body></html>"
    )
}

fn ack_page(status: StatusCode, vi: &str, en: &str) -> Response {
    (status, Html(ack_frame(&format!("<h1>{}</h1><p>{}</p>", esc(vi), esc(en))))).into_response()
}

/// What an incident is about, for the acknowledgement page: target, group, since when, state.
fn incident_line(i: &crate::model::notice::IncidentRow, tz: chrono_tz::Tz) -> String {
    let state = match i.closed_ms {
        Some(c) => {
            format!("đã khôi phục lúc {} / resolved at {}", crate::text::local_ms(c, tz), crate::text::local_ms(c, tz))
        }
        None => "đang diễn ra / ongoing".to_string(),
    };
    format!(
        "<p class=\"who\">{} — {}</p><p>{} · {} {} · {}</p>",
        esc(&i.target),
        esc(&i.group),
        esc(i.kind.as_str()),
        "từ / since",
        crate::text::local_ms(i.since_ms, tz),
        esc(&state)
    )
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
    let tz = s.config.borrow().daemon.timezone;
    let about = match crate::notify::outbox::with_db(&s.incidents, move |d| d.incident(id)).await {
        Some(Ok(Some(i))) => incident_line(&i, tz),
        Some(Ok(None)) => return ack_page(StatusCode::NOT_FOUND, "Không tìm thấy sự cố.", "No such incident."),
        _ => String::new(),
    };
    let inner = format!(
        "<h1>Xác nhận tiếp nhận sự cố #{id}?</h1>{about}<p class=\"small\">Acknowledge incident #{id}? Reminders and escalation stop; \
         you are still told when it is resolved. / Nhắc lại và báo cáo cấp trên dừng; khi khôi phục vẫn có thông báo.</p>\
         <form method=\"post\" action=\"?expires={}&amp;sig={}\"><button type=\"submit\">Xác nhận / Acknowledge</button></form>",
        q.expires,
        esc(&q.sig)
    );
    Html(ack_frame(&inner)).into_response()
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

#[derive(serde::Deserialize, Default)]
struct SmsQuery {
    status: Option<i64>,
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    token: Option<String>,
}

/// A gateway's delivery report for test message `id` (Kannel calls `dlr-url` with `%d`). The id
/// is an unguessable nonce of the probe: it is the credential. Always 200, so gateways do not
/// retry reports that came too late.
async fn sms_dlr(
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
async fn sms_inbound(
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
