//! The SLA ledger end to end: a real TCP target cut for a measured time, the reported downtime
//! against the truth, and a `kill -9` mid-outage: the outage survives the restart and the gap
//! is reported as unobserved (coverage below 100 %).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::support::*;

fn config(port: u16) -> String {
    format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "sla-test"
language = "en"

[defaults]
interval = "1s"
timeout = "500ms"
confirm = 2
recover = 1

[[group]]
name = "viettel"

[[target]]
name = "smsc"
group = "viettel"
kind = "tcp"
address = "127.0.0.1:{port}"
"#
    )
}

fn target<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["groups"]
        .as_array()
        .and_then(|g| g.iter().flat_map(|g| g["targets"].as_array().into_iter().flatten()).find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in report: {report}"))
}

fn up(d: &Daemon) -> Option<f64> {
    sample(&d.metrics(), "thongsuot_target_up", &[("target", "smsc")])
}

#[test]
fn measured_downtime_matches_the_truth_and_survives_kill_9() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut sw = Switch::new();
    let test_start = Utc::now();
    sw.on();
    let d = Daemon::start(&config(sw.port), &[]);
    d.wait_until("smsc up", Duration::from_secs(15), || up(&d) == Some(1.0));

    // 1. An outage of a known length.
    let cut = sw.off();
    d.wait_until("smsc confirmed down", Duration::from_secs(10), || up(&d) == Some(0.0));
    std::thread::sleep(Duration::from_secs(3));
    let back = sw.on();
    d.wait_until("smsc up again", Duration::from_secs(10), || up(&d) == Some(1.0));
    let truth = (back - cut).num_milliseconds();

    // 2. A second outage, with the daemon killed in the middle of it.
    let cut2 = sw.off();
    d.wait_until("smsc down again", Duration::from_secs(10), || up(&d) == Some(0.0));
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Utc::now();
    let parts = d.kill9();
    std::thread::sleep(Duration::from_secs(4));
    let d = Daemon::restart(parts, &[]);
    let restarted = Utc::now();
    // Restored as down from the previous run, before any new verdict.
    let status: serde_json::Value = serde_json::from_str(&d.get("/api/v1/status").expect("status")).expect("json");
    let smsc = status["targets"].as_array().and_then(|t| t.iter().find(|t| t["name"] == "smsc")).expect("smsc");
    assert_eq!(smsc["state"], "down", "open outage not restored: {smsc}");
    std::thread::sleep(Duration::from_secs(2));
    let back2 = sw.on();
    d.wait_until("smsc up after restart", Duration::from_secs(10), || up(&d) == Some(1.0));
    // The downtime counter continued from the store: both outages, not only the second part.
    let counted =
        sample(&d.metrics(), "thongsuot_target_downtime_seconds_total", &[("target", "smsc")]).expect("downtime");
    assert!(counted >= truth as f64 / 1000.0, "downtime counter restarted from zero: {counted}");
    let (status, _dir, config_path) = d.stop_keep();
    assert!(status.success(), "{status:?}");

    let report = report_json(&config_path, test_start - chrono::Duration::seconds(1), Utc::now());
    let t = target(&report, "smsc");
    let rows = t["figures"]["outage_rows"].as_array().expect("outage rows");
    assert_eq!(rows.len(), 2, "two outages expected: {t}");
    let ms = |v: &serde_json::Value| v.as_i64().expect("ms");
    let (s1, e1) = (ms(&rows[0]["start"]), ms(&rows[0]["end"]));
    let (s2, e2) = (ms(&rows[1]["start"]), ms(&rows[1]["end"]));
    let interval = 1000;
    let slack = 700;

    // Outage 1: backdated to the first failed probe after the cut, ended at the first good one.
    let measured = e1 - s1;
    eprintln!("outage 1: true {truth} ms, measured {measured} ms");
    assert!((measured - truth).abs() <= interval + slack, "measured {measured} ms vs true {truth} ms");
    assert!(
        s1 >= cut.timestamp_millis() - 100 && s1 <= cut.timestamp_millis() + interval + slack,
        "start {s1} vs cut {cut}"
    );

    // Outage 2 spans the kill: one outage from the second cut to the recovery after restart.
    let true2 = (back2 - cut2).num_milliseconds();
    eprintln!("outage 2: true {true2} ms, recorded {} ms, counted {} ms", e2 - s2, ms(&rows[1]["counted_ms"]));
    assert!(((e2 - s2) - true2).abs() <= interval + slack, "outage 2 recorded {} ms vs true {true2} ms", e2 - s2);
    // The time the daemon was dead is unobserved: not counted as downtime.
    let gap = (restarted - killed).num_milliseconds();
    assert!(ms(&rows[1]["counted_ms"]) <= (e2 - s2) - gap + slack, "the unobserved gap was counted as down: {t}");
    // One length per outage: the observed part and the unobserved part, stated apart.
    let (seen, unseen) = (ms(&rows[1]["observed_ms"]), ms(&rows[1]["unobserved_ms"]));
    assert_eq!(seen + unseen, e2 - s2, "{t}");
    // At least the time it was dead; at most that and the heartbeat (2 s) lost by the crash.
    assert!(
        unseen >= gap - slack && unseen <= gap + 2000 + 2 * slack,
        "unobserved {unseen} ms vs the {gap} ms the daemon was dead: {t}"
    );
    assert_eq!(ms(&rows[0]["unobserved_ms"]), 0, "{t}");
    assert_eq!(t["figures"]["longest_outage_ms"], rows.iter().map(|r| ms(&r["observed_ms"])).max().expect("rows"));
    let coverage = t["figures"]["coverage"].as_f64().expect("coverage");
    eprintln!("coverage after kill -9: {coverage:.4}");
    assert!(coverage < 0.95 && coverage > 0.3, "coverage {coverage}");
    assert_eq!(t["figures"]["breach"], true);

    // The text report names the outages and the coverage.
    let out = std::process::Command::new(binary())
        .args([
            "report",
            "--lang",
            "vi",
            "--from",
            &(test_start - chrono::Duration::seconds(1)).to_rfc3339(),
            "--to",
            &Utc::now().to_rfc3339(),
            "--config",
        ])
        .arg(&config_path)
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Danh sách gián đoạn") && text.contains("smsc") && text.contains("refused"), "{text}");
    assert!(text.contains("không giám sát)"), "the outage across the kill states its unobserved part: {text}");

    // Every other format renders the same facts.
    let dir = tempfile::tempdir().expect("tempdir");
    for format in ["html", "md", "csv"] {
        let file = dir.path().join(format!("report.{format}"));
        let out = std::process::Command::new(binary())
            .args([
                "report",
                "--format",
                format,
                "--from",
                &(test_start - chrono::Duration::seconds(1)).to_rfc3339(),
                "--to",
                &Utc::now().to_rfc3339(),
                "-o",
            ])
            .arg(&file)
            .arg("--config")
            .arg(&config_path)
            .output()
            .expect("report");
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let body = std::fs::read_to_string(&file).expect("report file");
        assert!(body.contains("smsc"), "{format}: {body}");
        match format {
            "html" => assert!(
                body.contains("<svg") && body.contains("charset=\"utf-8\"") && body.contains("#cf222e"),
                "{body}"
            ),
            "csv" => assert!(body.lines().count() == 2 && body.contains(",viettel,smsc,tcp,"), "{body}"),
            _ => assert!(body.contains("| smsc |"), "{body}"),
        }
    }
}

/// A period that has ended keeps, in memory and in `/metrics`, only its targets with
/// something to report; its group figures, the API and `report` still cover every target.
#[test]
fn a_past_period_keeps_only_its_noteworthy_targets() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(TcpServer::start(None));
    let now = Utc::now();
    let local = |t: DateTime<Utc>| (t + chrono::Duration::hours(7)).format("%Y-%m-%dT%H:%M:%S").to_string();
    let text = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "sla-test"
api_token_env = "SLA_TEST_TOKEN"

[defaults]
interval = "1s"
timeout = "500ms"

[[period]]
name = "past"
start = "{}"
end = "{}"

[[period]]
name = "now"
start = "{}"
end = "{}"

[[group]]
name = "vnpost"

{}"#,
        local(now - chrono::Duration::hours(3)),
        local(now - chrono::Duration::hours(2)),
        local(now - chrono::Duration::hours(1)),
        local(now + chrono::Duration::hours(1)),
        ["a", "b", "c"]
            .iter()
            .map(|n| format!(
                "[[target]]\nname = \"{n}\"\ngroup = \"vnpost\"\nkind = \"tcp\"\naddress = \"{}\"\n",
                server.addr
            ))
            .collect::<String>()
    );
    let env = [("SLA_TEST_TOKEN", "t0k3n")];
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("thongsuot.toml");
    std::fs::write(&config, text.replace("{port}", &port.to_string())).expect("config");
    // History of the past period, in the store before the daemon starts: a run that saw it
    // whole, and a 6-minute outage of b.
    {
        std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
        let path = thongsuot::store::Store::path_in(&dir.path().join("state"));
        let mut store = thongsuot::store::Store::open(&path).expect("store");
        let ms = |t: DateTime<Utc>| t.timestamp_millis();
        let run = store.begin_run(ms(now - chrono::Duration::minutes(190)), "sla-test").expect("run");
        let t = |n: &str| (n.to_string(), "vnpost".to_string(), "tcp".to_string());
        let start = ms(now - chrono::Duration::minutes(170));
        use thongsuot::store::{IntervalKind, Op};
        store
            .apply(&[
                Op::Targets { at: ms(now - chrono::Duration::minutes(190)), targets: vec![t("a"), t("b"), t("c")] },
                Op::Open {
                    target: "b".into(),
                    group: "vnpost".into(),
                    kind: IntervalKind::Outage,
                    start,
                    reason: Some("refused".into()),
                    detail: None,
                },
                Op::Close { target: "b".into(), kind: IntervalKind::Outage, end: start + 360_000 },
                Op::Heartbeat { run, at: ms(now - chrono::Duration::minutes(100)) },
            ])
            .expect("history");
    }
    let d = Daemon::restart((dir, config, port), &env);
    let series = |m: &str, period: &str, target: &str| {
        sample(m, "thongsuot_sla_availability_ratio", &[("period", period), ("target", target)])
    };
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        last = d.metrics();
        if series(&last, "past", "").is_some() && series(&last, "now", "c").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let sla: Vec<&str> = last.lines().filter(|l| l.starts_with("thongsuot_sla_availability_ratio")).collect();
    assert!(series(&last, "past", "").is_some() && series(&last, "now", "c").is_some(), "{sla:#?}\n{}", d.log_text());
    let m = d.metrics();
    let b = series(&m, "past", "b").expect("b had an outage in the past period");
    assert!((b - (1.0 - 6.0 / 60.0)).abs() < 0.01, "b: {b}");
    assert_eq!(series(&m, "past", "a"), None, "a was clean in the past period: no series of its own");
    assert_eq!(series(&m, "past", "c"), None);
    let group = series(&m, "past", "").expect("group series");
    assert!((group - (1.0 - 6.0 / 180.0)).abs() < 0.01, "the group counts all three targets: {group}");
    for t in ["a", "b", "c"] {
        assert!(series(&m, "now", t).is_some(), "{t} in the running period");
    }

    // The API says a had nothing to report in the past period; the report has all three targets.
    let (code, body) = blocking_request("GET", &d.url("/api/v1/targets/a"), Some("t0k3n"), None).expect("api");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let past = v["sla"].as_array().and_then(|a| a.iter().find(|w| w["window"] == "past")).cloned();
    assert!(past.as_ref().is_some_and(|p| p["figures"].is_null() && p["note"].is_string()), "{v}");
    let (code, body) = blocking_request("GET", &d.url("/api/v1/report?period=past"), Some("t0k3n"), None).expect("api");
    assert_eq!(code, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).expect("json");
    for t in ["a", "b", "c"] {
        target(&r, t);
    }
    // The target's page says so too.
    let (code, page) = blocking_request("GET", &d.url("/targets/a?lang=en&token=t0k3n"), None, None).expect("page");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("past — Outages: none"), "{page}");
    d.stop();
}
