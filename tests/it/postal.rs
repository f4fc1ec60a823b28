//! Postal consignments end to end: a local tracking API answering realistic payloads (delivered,
//! in transit, lost, returned, malformed, 500, slow, batch), consignments from a CSV file (with
//! bad rows) and from the API, deadlines from `J+N` around midnight and weekends, an HMAC-signed
//! push, breach and warning e-mails at a real SMTP server, metrics, the report's postal section,
//! and the tracking API's own outage as a connectivity breach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, TimeZone, Utc, Weekday};
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "postal-test-token-0123456789";
const SECRET: &str = "vnpost-webhook-secret";
const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

/// What the fake tracking API answers for a tracking number.
#[derive(Clone)]
enum Answer {
    Json(Value),
    Raw(u16, &'static str),
    Slow,
}

#[derive(Default)]
struct Api {
    answers: HashMap<String, Answer>,
    /// Requests per path prefix ("track", "batch").
    hits: HashMap<&'static str, usize>,
    in_flight: usize,
    max_in_flight: usize,
    /// The most tracking numbers one batch request asked for.
    max_batch: usize,
}

type Shared = Arc<Mutex<Api>>;

async fn track(
    State(api): State<Shared>,
    Path(t): Path<String>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    // The tracking API target's own health request is not part of the polling.
    let health = headers.get("user-agent").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("health check"));
    let answer = {
        let mut a = api.lock().expect("lock");
        *a.hits.entry(if health { "health" } else { "track" }).or_default() += 1;
        if !health {
            a.in_flight += 1;
            a.max_in_flight = a.max_in_flight.max(a.in_flight);
        }
        a.answers.get(&t).cloned()
    };
    // Hold every request a little so concurrency can be observed.
    tokio::time::sleep(Duration::from_millis(150)).await;
    if !health {
        api.lock().expect("lock").in_flight -= 1;
    }
    match answer {
        None => (StatusCode::NOT_FOUND, "{\"error\":\"not found\"}").into_response(),
        Some(Answer::Json(v)) => axum::Json(v).into_response(),
        Some(Answer::Raw(code, body)) => (StatusCode::from_u16(code).expect("code"), body).into_response(),
        Some(Answer::Slow) => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "late".into_response()
        }
    }
}

async fn batch(State(api): State<Shared>, Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    let mut a = api.lock().expect("lock");
    *a.hits.entry("batch").or_default() += 1;
    let n = q.get("ids").map_or(0, |ids| ids.split(',').count());
    a.max_batch = a.max_batch.max(n);
    let items: Vec<Value> = q
        .get("ids")
        .map(|ids| ids.split(',').filter_map(|id| a.answers.get(id).map(|x| (id, x))).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, x)| match x {
            Answer::Json(v) => Some(json!({"code": id, "state": v["data"]["status"]})),
            _ => None,
        })
        .collect();
    axum::Json(json!({"result": {"items": items}})).into_response()
}

/// The fake tracking API (`/track/{t}`, `/batch?ids=`) on a loopback port of its own.
fn serve_api(rt: &tokio::runtime::Runtime, api: &Shared) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/track/{t}", axum::routing::get(track))
        .route("/batch", axum::routing::get(batch))
        .with_state(api.clone());
    let server = rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

fn local(s: &str) -> DateTime<Utc> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").expect("time");
    HCM.from_local_datetime(&t).single().expect("local").with_timezone(&Utc)
}

fn fmt_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&HCM).format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn in_transit(events: &[(&str, DateTime<Utc>)], status: &str) -> Answer {
    let ev: Vec<Value> = events
        .iter()
        .map(|(s, t)| json!({"status": s, "time": fmt_local(*t), "location": "Bưu cục Vĩnh Yên"}))
        .collect();
    Answer::Json(json!({"data": {"status": status, "events": ev}}))
}

fn config(smtp_port: u16, api: std::net::SocketAddr, csv: &str) -> String {
    format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "vinhphuc-1"
api_token_env = "THONGSUOT_API_TOKEN"
timezone = "Asia/Ho_Chi_Minh"
public_url = "http://127.0.0.1:{{port}}"

[defaults]
interval = "1s"
timeout = "800ms"
confirm = 2
recover = 1

[[group]]
name = "vnpost"
kind = "postal"
display_name = "Bưu điện tỉnh Vĩnh Phúc"
contacts = ["postal-noc"]
contingency = "Chuyển phát bằng xe chuyên dụng của Sở; đường dây nóng 0211 111 111"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "thongsuot@vinhphuc.example.vn"

[[contact]]
name = "postal-noc"
emails = ["noc@vnpost.example.vn"]
language = "en"

[[contact]]
name = "so"
emails = ["sogd@vinhphuc.example.vn"]
language = "vi"

[postal]
consignments = "{csv}"
stale_after = "1d"
at_risk_before = "6h"

[[postal.operator]]
name = "vnpost"
group = "vnpost"
track_url = "http://{api}/track/{{tracking}}"
poll = "2s"
timeout = "1s"
health_interval = "1500ms"
status_pointer = "/data/status"
events_pointer = "/data/events"
standard = "J+1"
concurrency = 2
rate_limit = 50
webhook_secret_env = "VNPOST_WEBHOOK_SECRET"
[postal.operator.status_map]
"DELIVERED" = "delivered"
"IN_TRANSIT" = "in_transit"
"LOST" = "lost"
"RETURNED" = "returned"
"PRE" = "pre_transit"

[[postal.operator]]
name = "viettelpost"
track_url = "http://{api}/batch?ids={{tracking}}"
poll = "2s"
timeout = "1s"
status_pointer = "/state"
batch_size = 10
items_pointer = "/result/items"
item_tracking_pointer = "/code"
standard = "J+2"
[postal.operator.status_map]
"DELIVERED" = "delivered"
"IN_TRANSIT" = "in_transit"
"#
    )
}

fn sign(body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, body.as_bytes());
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The next `weekday` strictly after today (local).
fn next(weekday: Weekday) -> NaiveDate {
    let mut d = Utc::now().with_timezone(&HCM).date_naive() + Days::days(1);
    while d.weekday() != weekday {
        d += Days::days(1);
    }
    d
}

#[test]
fn consignments_are_tracked_against_their_deadlines_end_to_end() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let now = Utc::now();
    let h = Days::hours;
    let api: Shared = Arc::default();
    {
        let mut a = api.lock().expect("lock");
        let ins = |a: &mut Api, t: &str, x: Answer| {
            a.answers.insert(t.to_string(), x);
        };
        // Delivered 2 h before its deadline; delivered 3 h after it.
        ins(&mut a, "EMS-ONTIME", in_transit(&[("IN_TRANSIT", now - h(30)), ("DELIVERED", now - h(26))], "DELIVERED"));
        ins(&mut a, "EMS-LATE", in_transit(&[("IN_TRANSIT", now - h(40)), ("DELIVERED", now - h(21))], "DELIVERED"));
        ins(&mut a, "EMS-TRANSIT", in_transit(&[("IN_TRANSIT", now - h(2))], "IN_TRANSIT"));
        ins(&mut a, "EMS-LOST", in_transit(&[("IN_TRANSIT", now - h(20)), ("LOST", now - h(5))], "LOST"));
        ins(&mut a, "EMS-RETURNED", in_transit(&[("RETURNED", now - h(3))], "RETURNED"));
        ins(&mut a, "EMS-OVERDUE", in_transit(&[("IN_TRANSIT", now - h(30))], "IN_TRANSIT"));
        ins(&mut a, "EMS-STALE", in_transit(&[("IN_TRANSIT", now - h(50))], "IN_TRANSIT"));
        ins(&mut a, "EMS-RISK", in_transit(&[("IN_TRANSIT", now - h(1))], "IN_TRANSIT"));
        ins(&mut a, "EMS-GARBAGE", Answer::Raw(200, "<html>Hệ thống đang bảo trì</html>"));
        ins(&mut a, "EMS-500", Answer::Raw(500, "internal error"));
        ins(&mut a, "EMS-SLOW", Answer::Slow);
        ins(&mut a, "EMS-PUSHED", in_transit(&[("PRE", now - h(1))], "PRE"));
        for i in 0..25 {
            ins(&mut a, &format!("VTP{i:03}"), in_transit(&[], if i < 20 { "DELIVERED" } else { "IN_TRANSIT" }));
        }
    }
    let (api_addr, server) = serve_api(&rt, &api);

    // The CSV: realistic rows, two bad ones. Deadlines are explicit or from J+1 (vnpost).
    let dl = |t: DateTime<Utc>| fmt_local(t);
    let rows = [
        format!(
            "EMS-ONTIME,vnpost,exam_paper,Đề thi Toán,Sở GD&ĐT,Điểm thi Vĩnh Yên,{},{},",
            dl(now - h(48)),
            dl(now - h(24))
        ),
        format!(
            "EMS-LATE,vnpost,exam_paper,Đề thi Văn,Sở GD&ĐT,Điểm thi Phúc Yên,{},{},",
            dl(now - h(48)),
            dl(now - h(24))
        ),
        format!(
            "EMS-TRANSIT,vnpost,admission_notice,Giấy báo,ĐH Bách khoa,Tam Dương,{},{},",
            dl(now - h(3)),
            dl(now + h(48))
        ),
        format!("EMS-LOST,vnpost,exam_paper,,Sở GD&ĐT,Lập Thạch,{},{},", dl(now - h(24)), dl(now + h(24))),
        format!("EMS-RETURNED,vnpost,dossier,,Sở GD&ĐT,Sông Lô,{},{},", dl(now - h(24)), dl(now + h(24))),
        format!("EMS-OVERDUE,vnpost,exam_paper,Đề thi Anh,Sở GD&ĐT,Yên Lạc,{},{},so", dl(now - h(48)), dl(now - h(1))),
        format!("EMS-STALE,vnpost,admission_notice,,ĐH Y Hà Nội,Vĩnh Tường,{},{},", dl(now - h(60)), dl(now + h(48))),
        format!("EMS-RISK,vnpost,admission_notice,,ĐH Sư phạm,Bình Xuyên,{},{},", dl(now - h(20)), dl(now + h(2))),
        format!("EMS-GARBAGE,vnpost,dossier,,,,{},{},", dl(now - h(2)), dl(now + h(48))),
        format!("EMS-500,vnpost,dossier,,,,{},{},", dl(now - h(2)), dl(now + h(48))),
        format!("EMS-SLOW,vnpost,dossier,,,,{},{},", dl(now - h(2)), dl(now + h(48))),
        format!("EMS-BAD-OP,ghn,exam_paper,,,,{},,", dl(now - h(2))),
        "EMS-BAD-TIME,vnpost,exam_paper,,,,yesterday,,".to_string(),
    ];
    let mut csv = String::from("tracking,operator,kind,description,origin,destination,accepted_at,deadline,contacts\n");
    for r in &rows {
        csv.push_str(r);
        csv.push('\n');
    }
    for i in 0..25 {
        csv.push_str(&format!("VTP{i:03},viettelpost,admission_notice,,,,{},{},\n", dl(now - h(5)), dl(now + h(40))));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let csv_path = dir.path().join("consignments.csv");
    std::fs::write(&csv_path, &csv).expect("write csv");

    let cfg = config(smtp.port, api_addr, &csv_path.display().to_string());
    let env = [("THONGSUOT_API_TOKEN", TOKEN), ("VNPOST_WEBHOOK_SECRET", SECRET)];
    let d = Daemon::start(&cfg, &env);

    // `check` reads the CSV too and names the bad rows by line.
    let out = std::process::Command::new(binary())
        .args(["check", "--config"])
        .arg(&d.config)
        .envs(env)
        .output()
        .expect("check");
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("consignments.csv:13: unknown operator \"ghn\""), "{said}");
    assert!(said.contains("consignments.csv:14: accepted_at: \"yesterday\" is not a timestamp"), "{said}");

    // API registration: one good, one bad (reported by index); a J+1 deadline from a Friday
    // 23:59 and a Saturday 00:01 acceptance both fall on Monday 23:59:59 local.
    let fri = next(Weekday::Fri);
    let body = json!([
        {"tracking": "EMS-PUSHED", "operator": "vnpost", "kind": "exam_paper", "accepted_at": dl(now - h(1)),
         "deadline": dl(now + h(30)), "contacts": ["so"]},
        {"tracking": "EMS-FRI", "operator": "vnpost", "accepted_at": format!("{fri}T23:59:00")},
        {"tracking": "EMS-SAT", "operator": "vnpost", "accepted_at": format!("{}T00:01:00", fri + Days::days(1))},
        {"tracking": "EMS-THU", "operator": "vnpost", "accepted_at": format!("{}T23:59:00", fri - Days::days(1))},
        {"tracking": "bad number!", "operator": "vnpost"},
    ])
    .to_string();
    let url = d.url("/api/v1/consignments");
    assert_eq!(blocking_request("POST", &url, None, Some(&body)).map(|r| r.0), Some(401), "token required");
    let (code, answer) = blocking_request("POST", &url, Some(TOKEN), Some(&body)).expect("register");
    assert_eq!(code, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(answer["registered"].as_array().map(Vec::len), Some(4), "{answer}");
    assert_eq!(answer["errors"][0]["index"], 4, "{answer}");
    let monday = fri + Days::days(3);
    let get = |d: &Daemon, t: &str| -> Value {
        serde_json::from_str(&d.get(&format!("/api/v1/consignments/{t}")).expect("consignment")).expect("json")
    };
    let want_monday = local(&format!("{monday}T23:59:59"));
    for t in ["EMS-FRI", "EMS-SAT"] {
        let dl = get(&d, t)["deadline"]
            .as_str()
            .map(|s| DateTime::parse_from_rfc3339(s).expect("rfc3339"))
            .expect("deadline");
        assert_eq!(dl, want_monday, "{t}");
    }
    let thu =
        get(&d, "EMS-THU")["deadline"].as_str().map(|s| DateTime::parse_from_rfc3339(s).expect("t")).expect("deadline");
    assert_eq!(thu, local(&format!("{fri}T23:59:59")), "J+1 from Thursday 23:59 is Friday");

    // Wait for every consignment with an answer to be tracked.
    let states = |d: &Daemon| -> HashMap<String, Value> {
        let v: Value =
            serde_json::from_str(&d.get("/api/v1/consignments?limit=1000").unwrap_or_default()).unwrap_or_default();
        v["consignments"]
            .as_array()
            .map(|a| a.iter().map(|c| (c["tracking"].as_str().unwrap_or("").to_string(), c.clone())).collect())
            .unwrap_or_default()
    };
    let expected = [
        ("EMS-ONTIME", "delivered_on_time", None),
        ("EMS-LATE", "delivered_late", None),
        ("EMS-TRANSIT", "on_track", None),
        ("EMS-LOST", "failed", None),
        ("EMS-RETURNED", "failed", None),
        ("EMS-OVERDUE", "overdue", None),
        ("EMS-STALE", "on_track", Some("stale")),
        ("EMS-RISK", "on_track", Some("at_risk")),
        ("EMS-GARBAGE", "unknown", None),
        ("EMS-500", "unknown", None),
        ("EMS-SLOW", "unknown", None),
        ("EMS-PUSHED", "on_track", None),
        ("VTP000", "delivered_on_time", None),
        ("VTP024", "on_track", None),
    ];
    d.wait_until("every consignment evaluated", Duration::from_secs(40), || {
        let s = states(&d);
        expected.iter().all(|(t, st, w)| {
            s.get(*t).is_some_and(|c| c["state"] == *st && c["warning"].as_str() == *w)
                && (*st != "unknown" || s.get(*t).is_some_and(|c| c["error"].is_string()))
        })
    });
    let s = states(&d);
    eprintln!("consignment state table (end-to-end run):");
    eprintln!("{:<14} {:<18} {:<8} {:<16} reason", "tracking", "state", "warning", "tracking status");
    for (t, _, _) in &expected {
        let c = &s[*t];
        eprintln!(
            "{:<14} {:<18} {:<8} {:<16} {}",
            t,
            c["state"].as_str().unwrap_or(""),
            c["warning"].as_str().unwrap_or("-"),
            c["tracking_status"].as_str().unwrap_or(""),
            c["unknown_reason"].as_str().unwrap_or("")
        );
    }
    let reason = |t: &str| s[t]["unknown_reason"].as_str().unwrap_or("").to_string();
    assert!(reason("EMS-GARBAGE").contains("not JSON"), "{}", reason("EMS-GARBAGE"));
    assert!(reason("EMS-500").contains("status 500"), "{}", reason("EMS-500"));
    assert!(
        reason("EMS-SLOW").contains("timed out") || reason("EMS-SLOW").contains("timeout"),
        "{}",
        reason("EMS-SLOW")
    );
    assert!(reason("EMS-FRI").contains("does not know"), "{}", reason("EMS-FRI"));
    let hist: Value = serde_json::from_str(&d.get("/api/v1/consignments/EMS-LOST").expect("one")).expect("json");
    // Both answers are as the OpenAPI document says.
    let doc: Value = serde_json::from_str(&d.get("/api/v1/openapi.json").expect("openapi")).expect("json");
    let mut errors = Vec::new();
    let all: Value = serde_json::from_str(&d.get("/api/v1/consignments").expect("list")).expect("json");
    for (value, path) in [(&all, "/api/v1/consignments"), (&hist, "/api/v1/consignments/{tracking}")] {
        let schema = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        crate::web::validate(&doc, schema, value, path, &mut errors);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(hist["events"].as_array().map(Vec::len), Some(2), "{hist}");
    assert_eq!(hist["events"][1]["status"], "lost");
    let listing: Value =
        serde_json::from_str(&d.get("/api/v1/consignments?state=failed").expect("list")).expect("json");
    assert_eq!(listing["total"], 2, "{listing}");
    assert_eq!(listing["csv_errors"].as_array().map(Vec::len), Some(2), "{listing}");
    assert_eq!(blocking_request("GET", &d.url("/api/v1/consignments?state=late"), None, None).map(|r| r.0), Some(400));

    // The CSV file is re-read when it changes: a new row appears, the bad rows are still reported.
    std::fs::write(&csv_path, format!("{csv}EMS-NEW,vnpost,dossier,,,,{},,\n", dl(now))).expect("append");
    d.wait_until("the new CSV row registered", Duration::from_secs(20), || states(&d).contains_key("EMS-NEW"));
    // A mistaken registration can be removed (token required).
    let del = d.url("/api/v1/consignments/EMS-FRI");
    assert_eq!(blocking_request("DELETE", &del, None, None).map(|r| r.0), Some(401));
    assert_eq!(blocking_request("DELETE", &del, Some(TOKEN), None).map(|r| r.0), Some(200));
    assert_eq!(blocking_request("DELETE", &del, Some(TOKEN), None).map(|r| r.0), Some(404));
    assert!(!states(&d).contains_key("EMS-FRI"));

    // Batch mode: 25 numbers in batches of 10 is 3 requests per round, not 25.
    let (batch_hits, track_hits, max_conc, max_batch) = {
        let a = api.lock().expect("lock");
        let hits = |k| a.hits.get(k).copied().unwrap_or(0);
        (hits("batch"), hits("track"), a.max_in_flight, a.max_batch)
    };
    eprintln!(
        "tracking requests: {track_hits} single, {batch_hits} batch (up to {max_batch} numbers); most in flight at once: {max_conc}"
    );
    assert_eq!(max_batch, 10, "batch_size = 10");
    assert!(batch_hits >= 3, "batch requests: {batch_hits}");
    assert!(max_conc <= 2, "concurrency = 2 was exceeded: {max_conc}");

    // Metrics.
    let m = d.metrics();
    let pc = |state: &str| sample(&m, "thongsuot_postal_consignments", &[("operator", "vnpost"), ("state", state)]);
    assert_eq!(pc("failed"), Some(2.0), "{m}");
    assert_eq!(pc("overdue"), Some(1.0));
    assert_eq!(pc("delivered_late"), Some(1.0));
    // On time: 1 of (1 on time + 1 late + 2 failed + 1 overdue).
    let ratio = sample(&m, "thongsuot_postal_on_time_ratio", &[("operator", "vnpost")]).expect("ratio");
    assert!((ratio - 0.2).abs() < 1e-9, "{ratio}");
    assert_eq!(sample(&m, "thongsuot_postal_on_time_ratio", &[("operator", "viettelpost")]), Some(1.0));
    assert_eq!(sample(&m, "thongsuot_postal_warnings", &[("operator", "vnpost"), ("warning", "stale")]), Some(1.0));
    assert_eq!(sample(&m, "thongsuot_postal_csv_errors", &[]), Some(2.0));
    assert!(
        sample(&m, "thongsuot_postal_delivery_seconds_count", &[("operator", "viettelpost")])
            .is_some_and(|n| n >= 20.0)
    );
    assert!(
        sample(&m, "thongsuot_postal_tracking_requests_total", &[("operator", "vnpost"), ("result", "ok")]).is_some()
    );
    assert_eq!(
        sample(&m, "thongsuot_target_up", &[("target", "vnpost-tracking-api"), ("kind", "postal")]),
        Some(1.0),
        "{m}"
    );
    if let Some(r) = promtool_check_metrics(&m) {
        r.expect("promtool check metrics");
    }

    // E-mails: one breach e-mail to the group contact listing the breaches, one to the
    // consignment's own contact (Vietnamese) about its consignment only.
    let msgs = smtp.wait_for("postal e-mails", Duration::from_secs(20), |m| {
        !with_subject(m, "[POSTAL BREACH] vnpost", "noc@vnpost.example.vn").is_empty()
            && !with_subject(m, "[VI PHẠM BƯU CHÍNH] vnpost", "sogd@vinhphuc.example.vn").is_empty()
    });
    let en = with_subject(&msgs, "[POSTAL BREACH] vnpost", "noc@vnpost.example.vn");
    assert_eq!(en.len(), 1, "one grouped e-mail: {:?}", msgs.iter().map(|m| &m["subject"]).collect::<Vec<_>>());
    let text = en[0]["text"].as_str().expect("text");
    for needle in [
        "EMS-OVERDUE",
        "EMS-LATE",
        "EMS-LOST",
        "EMS-RETURNED",
        "EMS-STALE",
        "EMS-RISK",
        "OVERDUE",
        "Chuyển phát bằng xe",
    ] {
        assert!(
            text.contains(needle),
            "breach e-mail lacks {needle:?}:\n{text}\nall: {:?}",
            msgs.iter().map(|m| (&m["subject"], &m["rcpt_tos"])).collect::<Vec<_>>()
        );
    }
    assert!(!text.contains("EMS-ONTIME") && !text.contains("EMS-TRANSIT"), "{text}");
    let vi = with_subject(&msgs, "[VI PHẠM BƯU CHÍNH] vnpost", "sogd@vinhphuc.example.vn");
    let vi_text = vi[0]["text"].as_str().expect("text");
    assert!(
        vi_text.contains("EMS-OVERDUE") && vi_text.contains("QUÁ HẠN") && !vi_text.contains("EMS-LOST"),
        "{vi_text}"
    );

    // The status page shows the operators' counts and the consignments in breach.
    let page = d.get("/?lang=en").expect("status page");
    for needle in ["Postal consignments", "EMS-OVERDUE", "EMS-RISK", "deadline near, not out for delivery", "20.0 %"] {
        assert!(page.contains(needle), "status page lacks {needle:?}");
    }

    // kill -9 and restart: what was told is in the store, so nothing is told twice.
    let told = smtp.messages().len();
    let d = Daemon::restart(d.kill9(), &env);
    std::thread::sleep(Duration::from_secs(6)); // three polling rounds
    let after = smtp.messages();
    assert_eq!(
        after.len(),
        told,
        "e-mails after restart: {:?}",
        after.iter().map(|m| &m["subject"]).collect::<Vec<_>>()
    );
    assert_eq!(states(&d)["EMS-OVERDUE"]["state"], "overdue", "state restored from the store");

    // The signed webhook: wrong signature refused, right one accepted; delivery is on time.
    let push = json!([{"tracking": "EMS-PUSHED", "status": "DELIVERED", "time": fmt_local(now), "location": "Tam Đảo"},
                      {"tracking": "EMS-NOBODY", "status": "DELIVERED", "time": fmt_local(now)}])
    .to_string();
    thongsuot::tls::ensure_crypto_provider();
    let client = reqwest::Client::new();
    let purl = d.url("/api/v1/postal/vnpost/events");
    let send = |sig: &str| {
        rt.block_on(client.post(&purl).header("X-Signature-256", sig).body(push.clone()).send())
            .map(|r| r.status().as_u16())
            .expect("push")
    };
    assert_eq!(send("sha256=0000"), 401);
    assert_eq!(send(&sign(&(push.clone() + " "))), 401, "signature over another body");
    assert_eq!(send(&sign(&push)), 200);
    // The store cannot save it (another process holds the file locked past the busy timeout):
    // 503 with Retry-After, so that the operator sends it again; not a 400 that says "do not".
    {
        let db = rusqlite::Connection::open(d.dir.path().join("state").join("thongsuot.db")).expect("store");
        db.execute_batch("BEGIN EXCLUSIVE").expect("lock the store");
        let again =
            json!([{"tracking": "EMS-PUSHED", "status": "DELIVERED", "time": fmt_local(now), "location": "Tam Đảo 2"}])
                .to_string();
        let r = rt
            .block_on(client.post(&purl).header("X-Signature-256", sign(&again)).body(again.clone()).send())
            .expect("push");
        let code = r.status().as_u16();
        let retry = r.headers().contains_key("retry-after");
        db.execute_batch("ROLLBACK").expect("unlock the store");
        assert_eq!(code, 503, "a push the store could not save");
        assert!(retry, "503 without Retry-After");
    }
    d.wait_until("pushed delivery evaluated", Duration::from_secs(15), || {
        states(&d).get("EMS-PUSHED").is_some_and(|c| c["state"] == "delivered_on_time")
    });
    let pushed = get(&d, "EMS-PUSHED");
    assert_eq!(pushed["events"].as_array().map(|e| e.iter().any(|x| x["source"] == "push")), Some(true), "{pushed}");

    // The report has a postal section.
    let out =
        d.command(&["report", "--format", "json", "--from", &fmt_local(now - h(72)), "--to", &fmt_local(now + h(72))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report json");
    let vn = report["postal"]["operators"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["operator"] == "vnpost"))
        .cloned()
        .expect("vnpost in the report");
    assert_eq!(vn["failed"], 2, "{vn}");
    assert_eq!(vn["delivered_late"], 1, "{vn}");
    let text = d.command(&["report", "--from", &fmt_local(now - h(72)), "--to", &fmt_local(now + h(72))]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("EMS-OVERDUE") && text.contains("EMS-LOST"), "{text}");

    // The tracking API goes away: its target goes down (a connectivity breach of vnpost) and
    // consignments still in transit become unknown with the reason kept.
    server.abort();
    d.wait_until("tracking API down", Duration::from_secs(20), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpost-tracking-api")]) == Some(0.0)
    });
    d.wait_until("in-transit consignment unknown", Duration::from_secs(20), || {
        states(&d).get("EMS-TRANSIT").is_some_and(|c| c["state"] == "unknown")
    });
    let r = states(&d)["EMS-TRANSIT"]["unknown_reason"].as_str().unwrap_or("").to_string();
    assert!(r.contains("tracking API"), "{r}");
    let incidents = d.get("/api/v1/incidents").expect("incidents");
    assert!(incidents.contains("vnpost-tracking-api"), "{incidents}");
    assert!(d.stop().success());
}

/// Exam papers still missing are not told once and forgotten: an overdue consignment is
/// reminded of every `repeat_interval` of its operator's group, in each recipient's language,
/// until it is delivered.
#[test]
fn overdue_consignments_are_reminded_until_delivered() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let now = Utc::now();
    let h = Days::hours;
    let api: Shared = Arc::default();
    api.lock()
        .expect("lock")
        .answers
        .insert("EMS-MISSING".into(), in_transit(&[("IN_TRANSIT", now - h(30))], "IN_TRANSIT"));
    let (api_addr, _server) = serve_api(&rt, &api);
    let dir = tempfile::tempdir().expect("tempdir");
    let csv_path = dir.path().join("consignments.csv");
    std::fs::write(
        &csv_path,
        format!(
            "tracking,operator,kind,description,origin,destination,accepted_at,deadline,contacts\n\
             EMS-MISSING,vnpost,exam_paper,Đề thi Sử,Sở GD&ĐT,Yên Lạc,{},{},so\n",
            fmt_local(now - h(48)),
            fmt_local(now - h(2))
        ),
    )
    .expect("write csv");
    let cfg = config(smtp.port, api_addr, &csv_path.display().to_string())
        .replace("contacts = [\"postal-noc\"]\n", "contacts = [\"postal-noc\"]\nrepeat_interval = \"4s\"\n");
    assert!(cfg.contains("repeat_interval = \"4s\""));
    let d = Daemon::start(&cfg, &[("THONGSUOT_API_TOKEN", TOKEN), ("VNPOST_WEBHOOK_SECRET", SECRET)]);

    let msgs = smtp.wait_for("breach, then two reminders", Duration::from_secs(40), |m| {
        with_subject(m, "[STILL OVERDUE] vnpost", "noc@vnpost.example.vn").len() >= 2
    });
    let breach = with_subject(&msgs, "[POSTAL BREACH] vnpost", "noc@vnpost.example.vn");
    assert_eq!(breach.len(), 1, "{:?}", msgs.iter().map(|m| &m["subject"]).collect::<Vec<_>>());
    let reminders = with_subject(&msgs, "[STILL OVERDUE] vnpost", "noc@vnpost.example.vn");
    let text = reminders[0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains("EMS-MISSING") && text.contains("still broken") && text.contains("past the deadline"),
        "{text}"
    );
    // Spaced by the group's repeat_interval (4 s), not sent at every evaluation.
    let at = |m: &Value| m["accepted_at"].as_f64().unwrap_or(0.0);
    let gaps = [at(reminders[0]) - at(breach[0]), at(reminders[1]) - at(reminders[0])];
    assert!(gaps.iter().all(|g| *g >= 2.5), "reminders too close: {gaps:?}");
    // The consignment's own contact hears it in Vietnamese.
    let vi = smtp.wait_for("Vietnamese reminder", Duration::from_secs(20), |m| {
        !with_subject(m, "[VẪN QUÁ HẠN] vnpost", "sogd@vinhphuc.example.vn").is_empty()
    });
    let vi = with_subject(&vi, "[VẪN QUÁ HẠN] vnpost", "sogd@vinhphuc.example.vn");
    assert!(vi[0]["text"].as_str().is_some_and(|t| t.contains("Nhắc lại") && t.contains("EMS-MISSING")));

    // Delivered at last (late): the reminders stop.
    api.lock().expect("lock").answers.insert(
        "EMS-MISSING".into(),
        in_transit(&[("IN_TRANSIT", now - h(30)), ("DELIVERED", Utc::now())], "DELIVERED"),
    );
    d.wait_until("delivered late", Duration::from_secs(20), || {
        d.get("/api/v1/consignments/EMS-MISSING").is_some_and(|b| b.contains("\"delivered_late\""))
    });
    std::thread::sleep(Duration::from_secs(2));
    let count = |m: &[Value]| with_subject(m, "[STILL OVERDUE] vnpost", "noc@vnpost.example.vn").len();
    let before = count(&smtp.messages());
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(count(&smtp.messages()), before, "reminders go on after the delivery");
    assert!(d.stop().success());
}
