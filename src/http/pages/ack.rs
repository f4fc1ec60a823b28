//! Acknowledging an incident: the signed link of an e-mail opens a confirmation page, its
//! button (or an API call with the bearer token) acknowledges.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::http::{AppState, authorized};
use crate::text::esc;

#[derive(serde::Deserialize)]
pub(crate) struct AckLink {
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
pub(crate) async fn ack_by_link(
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
pub(crate) async fn ack_post(
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

pub(crate) async fn ack_signed(s: AppState, id: i64, q: AckLink) -> Response {
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

pub(crate) async fn ack_by_token(s: AppState, id: i64, headers: HeaderMap) -> Response {
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
