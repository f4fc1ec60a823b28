//! The status pages (`/`, `/targets/{name}`) and the acknowledgement page; `render` writes
//! their HTML.

pub mod ack;
pub mod render;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::config::Config;
use crate::http::{AppState, Read};

#[derive(serde::Deserialize, Default)]
pub(crate) struct PageQuery {
    pub(crate) lang: Option<String>,
    /// `1`: only the refreshable part (the page's script asks for it every 15 s).
    pub(crate) fragment: Option<u8>,
    pub(crate) token: Option<String>,
    /// One group, every target of it (the page lists at most 200 per group otherwise).
    pub(crate) group: Option<String>,
}

pub(crate) type PageData = (
    Arc<Config>,
    Vec<crate::status::TargetStatus>,
    Arc<Vec<crate::report::Report>>,
    Vec<crate::model::notice::IncidentRow>,
);

/// `&token=…` for the links and refresh of a page opened with `?token=`.
fn suffix(q: &PageQuery) -> String {
    q.token.as_deref().map(|t| format!("&token={}", crate::text::url_encode(t))).unwrap_or_default()
}

pub(crate) async fn page_input(s: &AppState) -> PageData {
    let config = s.config.borrow().clone();
    let targets = s.board.snapshot();
    let reports = s.sla.read().unwrap_or_else(|p| p.into_inner()).clone();
    let incidents = crate::notify::outbox::with_db(&s.incidents, |d| d.open_incidents())
        .await
        .and_then(Result::ok)
        .unwrap_or_default();
    (config, targets, reports, incidents)
}

pub(crate) async fn index(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let (config, targets, reports, incidents) = page_input(&s).await;
    let (postal, consignments) = (s.postal.summaries(), s.postal.noteworthy(50));
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = crate::http::pages::render::language(q.lang.as_deref(), accept, config.daemon.language);
    let input = crate::http::pages::render::PageInput {
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
    let body = crate::http::pages::render::status_body(&input);
    if q.fragment == Some(1) {
        return Html(body).into_response();
    }
    let l = if lang == crate::config::Language::Vi { "vi" } else { "en" };
    let group = q.group.as_deref().map(|g| format!("&group={}", crate::text::url_encode(g))).unwrap_or_default();
    let refresh = format!("?lang={l}&fragment=1{group}{}", suffix(&q));
    Html(crate::http::pages::render::page(&format!("thongsuot — {}", config.daemon.vantage), lang, &body, &refresh))
        .into_response()
}

pub(crate) async fn target_page(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let (config, targets, reports, incidents) = page_input(&s).await;
    let Some(t) = targets.iter().find(|t| *t.name == *name) else {
        return (StatusCode::NOT_FOUND, "no such target\n").into_response();
    };
    let (postal, consignments) = (Vec::new(), Vec::new());
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = crate::http::pages::render::language(q.lang.as_deref(), accept, config.daemon.language);
    let input = crate::http::pages::render::PageInput {
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
    let body = crate::http::pages::render::target_body(&input, t);
    if q.fragment == Some(1) {
        return Html(body).into_response();
    }
    let l = if lang == crate::config::Language::Vi { "vi" } else { "en" };
    Html(crate::http::pages::render::page(
        &format!("thongsuot — {name}"),
        lang,
        &body,
        &format!("?lang={l}&fragment=1{}", suffix(&q)),
    ))
    .into_response()
}
