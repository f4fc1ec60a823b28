//! The status pages (`/`, `/targets/{name}`) and the acknowledgement page; `render` writes
//! their HTML.

pub mod ack;
pub mod render;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::config::Config;
use crate::config::Language;
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

/// What both pages render from: the snapshot, the language and the links' suffix; the status
/// page adds its postal section and group.
fn input<'a>(data: &'a PageData, q: &PageQuery, lang: Language) -> render::PageInput<'a> {
    let (config, targets, reports, incidents) = data;
    render::PageInput {
        config,
        targets,
        reports,
        incidents,
        lang,
        now: chrono::Utc::now(),
        link_suffix: suffix(q),
        postal: &[],
        consignments: &[],
        group: None,
    }
}

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

/// The page's language: `?lang=`, else `Accept-Language`, else `daemon.language`.
fn language(q: &PageQuery, headers: &HeaderMap, config: &Config) -> Language {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    render::language(q.lang.as_deref(), accept, config.daemon.language)
}

/// The whole page around `body`, or the body alone for the page's own refresh (`?fragment=1`,
/// asked for with `refresh_query` appended).
fn framed(q: &PageQuery, lang: Language, title: &str, body: String, refresh_query: &str) -> Response {
    if q.fragment == Some(1) {
        return Html(body).into_response();
    }
    let l = if lang == Language::Vi { "vi" } else { "en" };
    let refresh = format!("?lang={l}&fragment=1{refresh_query}{}", suffix(q));
    Html(render::page(title, lang, &body, &refresh)).into_response()
}

pub(crate) async fn index(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let data = page_input(&s).await;
    let (postal, consignments) = (s.postal.summaries(), s.postal.noteworthy(50));
    let config = &data.0;
    let lang = language(&q, &headers, config);
    let body = render::status_body(&render::PageInput {
        postal: &postal,
        consignments: &consignments,
        group: q.group.as_deref(),
        ..input(&data, &q, lang)
    });
    let group = q.group.as_deref().map(|g| format!("&group={}", crate::text::url_encode(g))).unwrap_or_default();
    framed(&q, lang, &format!("thongsuot — {}", config.daemon.vantage), body, &group)
}

pub(crate) async fn target_page(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let data = page_input(&s).await;
    let Some(t) = data.1.iter().find(|t| *t.name == *name) else {
        return (StatusCode::NOT_FOUND, "no such target\n").into_response();
    };
    let lang = language(&q, &headers, &data.0);
    framed(&q, lang, &format!("thongsuot — {name}"), render::target_body(&input(&data, &q, lang), t), "")
}
