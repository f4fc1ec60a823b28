//! The HTTP layer (axum): the status pages, the JSON API, the operators' and gateways' pushes,
//! `/metrics`, `/healthz`, `/readyz` and `POST /-/reload`. It serves the daemon's handles
//! ([`crate::daemon::Handles`]) and is never imported by the daemon: `main` hands
//! [`router`] to [`crate::daemon::run`].

pub mod api;
mod auth;
pub mod openapi;
mod ops;
pub mod pages;
mod push;
mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use api::{consignments, incidents, report, targets};
pub use auth::{Read, Write, authorized, readable};
pub use state::AppState;

/// The whole HTTP surface over the daemon's handles.
pub fn router(handles: crate::daemon::Handles) -> Router {
    let state = AppState::new(handles);
    Router::new()
        .route("/", get(pages::index))
        .route("/targets/{name}", get(pages::target_page))
        .route("/api/v1/targets", get(targets::api_targets))
        .route("/api/v1/targets/{name}", get(targets::api_target))
        .route("/api/v1/incidents/{id}", get(incidents::api_incident))
        .route("/api/v1/periods", get(targets::api_periods))
        .route("/api/v1/report", get(report::api_report))
        .route("/api/v1/openapi.json", get(|| async { axum::Json(crate::http::openapi::document()) }))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ops::readyz))
        .route("/api/v1/status", get(targets::status))
        .route("/-/reload", post(ops::reload))
        .route("/api/v1/incidents", get(incidents::incidents))
        .route("/api/v1/heartbeat/{target}", post(push::heartbeat))
        .route("/api/v1/sms/dlr/{id}", get(push::sms_dlr).post(push::sms_dlr))
        .route("/api/v1/sms/inbound", get(push::sms_inbound).post(push::sms_inbound))
        .route("/api/v1/incidents/{id}/ack", get(pages::ack::ack_by_link).post(pages::ack::ack_post))
        .route(
            "/api/v1/consignments",
            get(consignments::list).post(consignments::register).layer(DefaultBodyLimit::max(consignments::MAX_BODY)),
        )
        .route("/api/v1/consignments/{tracking}", get(consignments::one).delete(consignments::remove))
        .route(
            "/api/v1/postal/{operator}/events",
            post(consignments::push).layer(DefaultBodyLimit::max(consignments::MAX_BODY)),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // A request (body included) that takes longer than this is answered 408 and dropped.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(axum::middleware::from_fn(refuse_large_bodies))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::limit_auth_failures))
        .with_state(state)
}

/// The longest any request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Request bodies above this are refused (413) before any handler runs.
const MAX_BODY: usize = 64 * 1024;

/// Refuses a declared body larger than [`MAX_BODY`] even on routes that do not read one.
pub(crate) async fn refuse_large_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let path = req.uri().path();
    let limit = if path.starts_with("/api/v1/consignments") || path.starts_with("/api/v1/postal/") {
        consignments::MAX_BODY
    } else {
        MAX_BODY
    };
    if declared.is_some_and(|n| n > limit) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    next.run(req).await
}
