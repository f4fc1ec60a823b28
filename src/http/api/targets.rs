//! Targets and periods: `/api/v1/status`, `/api/v1/targets`, `/api/v1/targets/{name}`,
//! `/api/v1/periods`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::pages::PageQuery;
use crate::http::{AppState, Read};
use crate::sla::Health;

#[derive(serde::Serialize)]
pub(crate) struct StatusBody {
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
    let count = |st: Health| targets.iter().filter(|t| t.state == st).count();
    StatusBody {
        vantage: s.config.borrow().daemon.vantage.clone(),
        version: env!("CARGO_PKG_VERSION"),
        generated_at: chrono::Utc::now(),
        up: count(Health::Up),
        down: count(Health::Down),
        unknown: count(Health::Unknown),
        targets,
    }
}

pub(crate) async fn status(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Query(_q): axum::extract::Query<PageQuery>,
) -> Response {
    axum::Json(status_body(&s)).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct TargetsQuery {
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
pub(crate) struct TargetsPage {
    /// How many targets match the filters, whatever the page.
    total: usize,
    offset: usize,
    /// The `offset` of the next page, or `null` when this page is the last.
    next_offset: Option<usize>,
    targets: Vec<crate::status::TargetStatus>,
}

/// Every target, or a page of those that match `group`, `state` and `kind`, in name order.
pub(crate) async fn api_targets(
    State(s): State<AppState>,
    _: Read,
    q: Result<axum::extract::Query<TargetsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad =
        |what: String| (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": what }))).into_response();
    // A malformed query (`limit=abc`) gets the same JSON error as the other refusals.
    let q = match q {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => return bad(e.body_text()),
    };
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
    // Copying and encoding every target of a large fleet is long, blocking work: not on a
    // worker that serves the other requests.
    let page = tokio::task::spawn_blocking(move || {
        let keep = |t: &crate::status::TargetStatus| {
            group.as_deref().is_none_or(|g| &*t.group == g)
                && kind.as_deref().is_none_or(|k| t.kind == k)
                && match state.as_deref() {
                    None => true,
                    Some("degraded") => t.degraded_since.is_some(),
                    Some(st) => t.state.label() == st,
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

pub(crate) async fn api_target(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(_q): axum::extract::Query<PageQuery>,
) -> Response {
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

pub(crate) async fn api_periods(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Query(_q): axum::extract::Query<PageQuery>,
) -> Response {
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
