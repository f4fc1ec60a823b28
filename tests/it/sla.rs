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

fn report_json(config: &std::path::Path, from: DateTime<Utc>, to: DateTime<Utc>) -> serde_json::Value {
    let out = std::process::Command::new(binary())
        .args(["report", "--format", "json", "--from", &from.to_rfc3339(), "--to", &to.to_rfc3339(), "--config"])
        .arg(config)
        .output()
        .expect("report");
    assert!(out.status.success(), "report failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("report JSON")
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
