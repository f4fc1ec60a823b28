//! Incidents: `/api/v1/incidents`, `/api/v1/incidents/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::pages::PageQuery;
use crate::http::{AppState, Read};

#[derive(serde::Deserialize)]
pub(crate) struct IncidentQuery {
    /// `open` (default) or `all` (the last `days` days).
    state: Option<String>,
    days: Option<u32>,
}

pub(crate) async fn incidents(
    State(s): State<AppState>,
    _: Read,
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

pub(crate) async fn api_incident(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Path(id): axum::extract::Path<i64>,
    axum::extract::Query(_q): axum::extract::Query<PageQuery>,
) -> Response {
    match crate::notify::outbox::with_db(&s.incidents, move |d| d.incident(id)).await {
        Some(Ok(Some(i))) => axum::Json(i).into_response(),
        Some(Ok(None)) => {
            (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "no such incident" }))).into_response()
        }
        Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}
