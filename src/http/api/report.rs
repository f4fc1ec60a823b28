//! `/api/v1/report`: the compliance report of a period or window, as JSON.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::{AppState, Read};

#[derive(serde::Deserialize)]
pub(crate) struct ReportQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The same data as `thongsuot report --format json`, with the same default window (the
/// period in force, else the last 24 hours).
pub(crate) async fn api_report(
    State(s): State<AppState>,
    _: Read,
    axum::extract::Query(q): axum::extract::Query<ReportQuery>,
) -> Response {
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
        (None, None, None) => {
            let (name, window, _) = crate::report::default_window(&config, now);
            (name, window)
        }
        _ => return bad("use period=NAME, or from=…&to=…".into()),
    };
    if window.len() > 400 * 86_400_000 {
        return bad("the window is longer than 400 days".into());
    }
    let Ok(_permit) = s.reports.acquire().await else {
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
