//! The operator's endpoints: `/metrics`, `/readyz` and `POST /-/reload`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::{AppState, Write};
use crate::daemon::ReloadRequest;

/// How long a scrape may keep the renderer waiting for it to read the next chunk.
const SCRAPE_STALL: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
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
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
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

pub(crate) async fn reload(State(s): State<AppState>, _: Write) -> Response {
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
