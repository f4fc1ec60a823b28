//! The status page in headless Chromium (real rendering, Vietnamese text, a screenshot as an
//! artifact) and the JSON API checked against its own OpenAPI document.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const TOKEN: &str = "web-test-token-0123456789abc";

fn config(up: &str, public: bool) -> String {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "vinhphuc-1"
api_token_env = "THONGSUOT_API_TOKEN"
public_status = {public}
language = "vi"
[defaults]
interval = "1s"
timeout = "800ms"
confirm = 2
[[group]]
name = "vnpt"
display_name = "VNPT Vĩnh Phúc"
contacts = ["noc"]
[[contact]]
name = "noc"
emails = ["noc@vnpt.example.vn"]
[[period]]
name = "exam-day-1"
start = "{start}"
end = "{end}"
[[target]]
name = "vnpt-core"
group = "vnpt"
kind = "tcp"
address = "{up}"
[[target]]
name = "vnpt-sms-gateway"
group = "vnpt"
kind = "tcp"
address = "127.0.0.1:{down}"
"#,
        start = (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S"),
        end = (now + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M:%S"),
        down = free_port(),
    )
}

/// Starts the daemon and waits for the outage and a fresh SLA evaluation (forced by a reload).
fn started(rt: &tokio::runtime::Runtime, public: bool) -> (Daemon, TcpServer) {
    let listener = rt.block_on(TcpServer::start(None));
    let d = Daemon::start(&config(&listener.addr.to_string(), public), &[("THONGSUOT_API_TOKEN", TOKEN)]);
    d.wait_until("outage confirmed", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpt-sms-gateway")]) == Some(0.0)
    });
    assert_eq!(blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), None).map(|r| r.0), Some(200));
    std::thread::sleep(Duration::from_millis(800));
    (d, listener)
}

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile");
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium")
}

#[test]
fn status_page_renders_in_chromium_in_vietnamese() {
    if !require_tool("chromium", "chromium") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let (d, _listener) = started(&rt, true);
    let url = d.url("/?lang=vi");
    let out = chromium(&["--virtual-time-budget=3000", "--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Tình trạng thông tin liên lạc",
        "vnpt-core",
        "vnpt-sms-gateway",
        "GIÁN ĐOẠN",
        "thông suốt",
        "VNPT Vĩnh Phúc",
        "exam-day-1",
        "Sự cố đang mở",
        "chưa tiếp nhận",
    ] {
        assert!(dom.contains(needle), "rendered DOM lacks {needle:?}:\n{dom}");
    }
    assert!(dom.contains("class=\"banner bad\""), "one target down: the banner says so");
    assert!(dom.contains("class=\"bar\""), "availability bars");
    // English through Accept-Language-free ?lang=en.
    let out = chromium(&["--virtual-time-budget=2000", "--dump-dom", &d.url("/?lang=en")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 target down"), "one target down, in the singular");
    // The detail page lists the outage.
    let out = chromium(&["--virtual-time-budget=2000", "--dump-dom", &d.url("/targets/vnpt-sms-gateway?lang=vi")]);
    let detail = String::from_utf8_lossy(&out.stdout);
    assert!(detail.contains("Các lần gián đoạn") && detail.contains("refused"), "{detail}");
    // Its outage table has column headers, and the rolling window its name in words.
    assert!(detail.contains("<th>bắt đầu</th><th>kết thúc</th><th>thời lượng</th>"), "{detail}");
    assert!(detail.contains("24 giờ qua") && !detail.contains("last-24h"), "{detail}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(&["--window-size=1100,900", &format!("--screenshot={}", shot.display()), &url]);
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("status page screenshot: {}", shot.display());
    assert!(d.stop().success());
}

/// Checks `value` against an OpenAPI schema (the subset the document uses).
pub fn validate(doc: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or("");
        return validate(doc, &doc["components"]["schemas"][name], value, path, errors);
    }
    if value.is_null() {
        if schema["nullable"] != true {
            errors.push(format!("{path}: null but not nullable"));
        }
        return;
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{path}: expected {}, got {value}", schema["type"]));
        return;
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(value)
    {
        errors.push(format!("{path}: {value} not in {e:?}"));
    }
    for req in schema["required"].as_array().into_iter().flatten() {
        let key = req.as_str().unwrap_or("");
        if value.get(key).is_none() {
            errors.push(format!("{path}: missing {key}"));
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (k, v) in obj {
            match props.get(k) {
                Some(s) => validate(doc, s, v, &format!("{path}.{k}"), errors),
                None => errors.push(format!("{path}: {k} is not in the schema")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(doc, items, v, &format!("{path}[{i}]"), errors);
        }
    }
}

#[test]
fn api_answers_match_the_openapi_document_and_auth_is_enforced() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let (d, _listener) = started(&rt, false);
    let get = |path: &str, token: Option<&str>| blocking_request("GET", &d.url(path), token, None).expect("answer");
    let doc: Value = serde_json::from_str(&get("/api/v1/openapi.json", None).1).expect("openapi json");
    let incidents: Value = serde_json::from_str(&get("/api/v1/incidents", Some(TOKEN)).1).expect("incidents");
    let id = incidents["incidents"][0]["id"].as_i64().expect("an open incident");
    let mut errors = Vec::new();
    let mut checked = 0;
    for (path, spec_path) in [
        ("/api/v1/status".to_string(), "/api/v1/status"),
        ("/api/v1/targets".to_string(), "/api/v1/targets"),
        ("/api/v1/targets/vnpt-sms-gateway".to_string(), "/api/v1/targets/{name}"),
        ("/api/v1/incidents?state=all".to_string(), "/api/v1/incidents"),
        (format!("/api/v1/incidents/{id}"), "/api/v1/incidents/{id}"),
        ("/api/v1/periods".to_string(), "/api/v1/periods"),
        ("/api/v1/report?period=exam-day-1".to_string(), "/api/v1/report"),
        ("/api/v1/report".to_string(), "/api/v1/report"),
    ] {
        // Not public: no token, no data.
        assert_eq!(get(&path, None).0, 401, "{path} without token");
        let (code, body) = get(&path, Some(TOKEN));
        assert_eq!(code, 200, "{path}: {body}");
        let value: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        let schema = &doc["paths"][spec_path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{spec_path} has no 200 schema");
        validate(&doc, schema, &value, &path, &mut errors);
        checked += 1;
    }
    // Without a window the API reports the period in force, as `thongsuot report` does.
    let (_, body) = get("/api/v1/report", Some(TOKEN));
    let report: Value = serde_json::from_str(&body).expect("report json");
    assert_eq!(report["window_name"], "exam-day-1", "the default window is not the period in force");
    // Errors are documented too.
    let (code, body) = get("/api/v1/targets/nope", Some(TOKEN));
    assert_eq!(code, 404);
    validate(
        &doc,
        &doc["components"]["schemas"]["Error"],
        &serde_json::from_str(&body).expect("json"),
        "404",
        &mut errors,
    );
    assert!(errors.is_empty(), "responses differ from the OpenAPI document:\n{}", errors.join("\n"));
    eprintln!("{checked} endpoints validated against the OpenAPI document");
    // The page itself, with the token as a query parameter (a bookmark).
    assert_eq!(get("/", None).0, 401);
    let (code, page) = blocking_request("GET", &d.url(&format!("/?token={TOKEN}")), None, None).expect("page");
    assert_eq!(code, 200);
    // Its links and its refresh carry the token on.
    assert!(page.contains(&format!("targets/vnpt-core?lang=vi&amp;token={TOKEN}")), "{page}");
    assert!(page.contains(&format!("fragment=1&token={TOKEN}")), "{page}");
    assert_eq!(
        blocking_request("GET", &d.url(&format!("/targets/vnpt-core?lang=vi&token={TOKEN}")), None, None).map(|r| r.0),
        Some(200)
    );
    // Oversized bodies are refused before any work.
    let big = "x".repeat(200 * 1024);
    assert_eq!(blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), Some(&big)).map(|r| r.0), Some(413));
    assert!(d.stop().success());
}

/// A long group is cut on the page (200 listed, problems first) with a link to all of it: a page
/// of 100,000 targets was 127 MB of HTML.
#[test]
fn status_page_lists_problems_first_and_cuts_long_groups() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let listener = rt.block_on(TcpServer::start(None));
    let closed = free_port();
    let mut text = String::from(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nvantage = \"t\"\nlanguage = \"en\"\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"800ms\"\nconfirm = 2\n[[group]]\nname = \"vnpt\"\n",
    );
    for i in 0..260 {
        // Two of them, late in name order, are down.
        let address = if i == 250 || i == 255 { format!("127.0.0.1:{closed}") } else { listener.addr.to_string() };
        text.push_str(&format!(
            "[[target]]\nname = \"site-{i:03}\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"{address}\"\n"
        ));
    }
    let d = Daemon::start(&text, &[]);
    d.wait_until("both outages confirmed", Duration::from_secs(20), || {
        let m = d.metrics();
        ["site-250", "site-255"].iter().all(|t| sample(&m, "thongsuot_target_up", &[("target", t)]) == Some(0.0))
    });
    let page = d.get("/?lang=en").expect("status page");
    assert_eq!(page.matches("data-target=").count(), 200, "rows listed");
    for down in ["site-250", "site-255"] {
        assert!(page.contains(&format!("data-target=\"{down}\"")), "{down} (down) must be listed first");
    }
    assert!(page.contains("60 more targets not listed"), "count of the rest: {page}");
    assert!(page.contains("?group=vnpt&amp;lang=en") || page.contains("?group=vnpt&lang=en"), "link to the group");
    let all = d.get("/?group=vnpt&lang=vi").expect("group page");
    assert_eq!(all.matches("data-target=").count(), 260, "every target of the group");
    assert!(!all.contains("chưa hiển thị"), "nothing left out of the group page");

    // The API filters and pages the same list.
    let json = |path: &str| -> Value {
        let body = d.get(path).unwrap_or_else(|| panic!("{path}: no answer"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };
    let names = |v: &Value| -> Vec<String> {
        v["targets"].as_array().expect("targets").iter().map(|t| t["name"].as_str().unwrap_or("").to_string()).collect()
    };
    let down = json("/api/v1/targets?state=down");
    assert_eq!((down["total"].as_u64(), names(&down)), (Some(2), vec!["site-250".to_string(), "site-255".to_string()]));
    let first = json("/api/v1/targets?group=vnpt&kind=tcp&limit=100");
    assert_eq!((first["total"].as_u64(), first["next_offset"].as_u64()), (Some(260), Some(100)));
    assert_eq!(names(&first).len(), 100);
    assert_eq!(names(&first)[0], "site-000");
    let last = json("/api/v1/targets?limit=100&offset=200");
    assert_eq!(names(&last).len(), 60);
    assert_eq!((names(&last)[0].as_str(), last["next_offset"].is_null()), ("site-200", true));
    assert_eq!(json("/api/v1/targets")["targets"].as_array().map(Vec::len), Some(260), "no limit: every target");
    assert_eq!(json("/api/v1/targets?kind=http")["total"].as_u64(), Some(0));
    assert_eq!(json("/api/v1/targets?group=nope")["total"].as_u64(), Some(0));
    assert_eq!(json("/api/v1/targets?state=DOWN")["total"].as_u64(), Some(2), "states in any case");
    for bad in ["/api/v1/targets?state=sideways", "/api/v1/targets?limit=0", "/api/v1/targets?offset=-1"] {
        let (code, body) = blocking_request("GET", &d.url(bad), None, None).expect("answer");
        assert_eq!(code, 400, "{bad}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{bad}: {e}: {body}"));
        assert!(v["error"].is_string(), "{bad}: {body}");
    }
}

/// What the list says: the round trip and loss of an ICMP target (not the probe's duration,
/// mostly the spacing of its echoes), and a target under maintenance as such, out of the
/// banner's count of targets down.
#[test]
fn status_page_shows_icmp_round_trips_and_maintenance_apart() {
    if !require_root("ICMP sockets") {
        return;
    }
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    let (down1, down2) = (free_port(), free_port());
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
language = "en"
[defaults]
interval = "1s"
confirm = 1
[[group]]
name = "vnpt"
[[maintenance]]
name = "router work"
start = "{start}"
end = "{end}"
targets = ["in-works"]
[[target]]
name = "ping"
group = "vnpt"
kind = "icmp"
host = "127.0.0.1"
[[target]]
name = "in-works"
group = "vnpt"
kind = "tcp"
address = "127.0.0.1:{down1}"
[[target]]
name = "broken"
group = "vnpt"
kind = "tcp"
address = "127.0.0.1:{down2}"
"#,
        start = (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S"),
        end = (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S"),
    );
    let d = Daemon::start(&config, &[]);
    d.wait_until("both tcp targets down and the ping up", Duration::from_secs(20), || {
        let m = d.metrics();
        sample(&m, "thongsuot_target_up", &[("target", "broken")]) == Some(0.0)
            && sample(&m, "thongsuot_target_up", &[("target", "in-works")]) == Some(0.0)
            && sample(&m, "thongsuot_target_up", &[("target", "ping")]) == Some(1.0)
    });
    let page = d.get("/?lang=en").expect("status page");
    let row = |name: &str| -> String {
        let at = page.find(&format!("data-target=\"{name}\"")).unwrap_or_else(|| panic!("{name} not listed"));
        page[at..].split("</div>").next().unwrap_or_default().to_string()
    };
    let ping = row("ping");
    assert!(ping.contains("round trip ") && ping.contains(" ms") && ping.contains("loss 0 %"), "{ping}");
    assert!(!ping.contains("last probe"), "ICMP shows the probe's duration: {ping}");
    assert!(row("in-works").contains(">maintenance<"), "{}", row("in-works"));
    assert!(row("broken").contains(">DOWN<") && row("broken").contains("· refused"), "{}", row("broken"));
    assert!(page.contains("1 target down<"), "the banner counts the target under maintenance");
    assert!(page.contains("1 in maintenance (not counted)"), "no maintenance line in the banner");
    // The target page says what is probed and how, and the round trip for ICMP.
    let detail = d.get("/targets/broken?lang=en").expect("target page");
    assert!(detail.contains("kind tcp · probed every 1 s"), "{detail}");
    let detail = d.get("/targets/ping?lang=en").expect("target page");
    assert!(detail.contains("kind icmp") && detail.contains("round trip "), "{detail}");
    let status: Value = serde_json::from_str(&d.get("/api/v1/status").expect("status")).expect("json");
    let t = status["targets"].as_array().and_then(|t| t.iter().find(|t| t["name"] == "ping")).expect("ping");
    assert!(t["rtt_seconds"].as_f64().is_some_and(|r| r > 0.0 && r < 0.5), "{t}");

    // The HTML report over the hour before and after now: the maintenance window is stated, the
    // future is left blank (not painted as unobserved), and the command is code, not backticks.
    let (from, to) = (chrono::Utc::now() - chrono::Duration::hours(1), chrono::Utc::now() + chrono::Duration::hours(1));
    let out = d.command(&[
        "report",
        "--format",
        "html",
        "--lang",
        "en",
        "--from",
        &from.to_rfc3339(),
        "--to",
        &to.to_rfc3339(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        html.contains("<h2>Maintenance windows</h2>") && html.contains("router work: "),
        "no maintenance in the report"
    );
    assert!(html.contains("(in-works; left out of observed time)"), "what the window covers");
    assert!(html.contains("<code>thongsuot verify</code>") && !html.contains("`thongsuot verify`"), "backticks");
    let md = d.command(&[
        "report",
        "--format",
        "md",
        "--lang",
        "en",
        "--from",
        &from.to_rfc3339(),
        "--to",
        &to.to_rfc3339(),
    ]);
    assert!(String::from_utf8_lossy(&md.stdout).contains("### Maintenance windows\n\n- router work: "), "Markdown");
    // The unobserved background of a row stops at now: about half of the 640 px of the window.
    let gray = html
        .split("fill=\"#d0d7de\"")
        .next()
        .and_then(|h| h.rsplit("width=\"").next())
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse::<f64>().ok())
        .expect("the background of a row");
    assert!(gray > 250.0 && gray < 400.0, "the future is painted as unobserved: {gray} px of 640");
    assert!(d.stop().success());
}

/// The figures on screen include an outage as soon as it is confirmed, not at the next periodic
/// SLA evaluation (every 30 s): the page showed "availability 100 %" and "Outages: none" beside a
/// target down.
#[test]
fn figures_on_screen_include_an_outage_at_once() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut sw = Switch::new();
    sw.on();
    let config = format!(
        "[daemon]\nlisten = \"127.0.0.1:{{port}}\"\nstate_dir = \"state\"\nlanguage = \"en\"\n\
         [defaults]\ninterval = \"1s\"\nconfirm = 1\n[[group]]\nname = \"vnpt\"\n\
         [[target]]\nname = \"smsc\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
        sw.port
    );
    let d = Daemon::start(&config, &[]);
    // Past the first evaluation (2 s after start), with the target up.
    d.wait_until("up", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "smsc")]) == Some(1.0)
    });
    std::thread::sleep(Duration::from_secs(4));
    sw.off();
    d.wait_until("down", Duration::from_secs(10), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "smsc")]) == Some(0.0)
    });
    // Well before the next 30 s tick: the outage is in the target page's table.
    d.wait_until("the outage on the target page", Duration::from_secs(8), || {
        d.get("/targets/smsc?lang=en").is_some_and(|p| p.contains("<th>start</th>") && p.contains("ongoing"))
    });
    // The 24 hourly slices are clock hours: the last is the hour in progress, labelled with it.
    let page = d.get("/?lang=en").expect("status page");
    let bar = page.split("class=\"bar\"").nth(1).and_then(|b| b.split("</div>").next()).expect("a bar");
    let last = bar.rsplit("title=\"").next().unwrap_or_default();
    let hour =
        |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh).format("%H:00").to_string();
    let now = chrono::Utc::now();
    assert!(
        last.starts_with(&hour(now)) || last.starts_with(&hour(now - chrono::Duration::seconds(5))),
        "the last slice is not the current hour ({}): {last}",
        hour(now)
    );
    assert!(d.stop().success());
}
