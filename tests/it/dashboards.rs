//! Grafana dashboards: valid JSON of a current schema, every variable defined, every panel on the
//! `${datasource}` variable — and every query, run against a real Prometheus that scrapes a real
//! daemon (with an outage and an SLA breach), returns data.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn dashboards() -> Vec<(PathBuf, serde_json::Value)> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_path("dashboards"))
        .expect("dashboards/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, json)
        })
        .collect()
}

/// Every PromQL expression of a dashboard: panel targets and variable queries (Grafana's
/// `label_values(m, l)` becomes `count by (l) (m)`).
fn queries(d: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((p["title"].as_str().unwrap_or("?").to_string(), t["expr"].as_str().unwrap_or("").to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')).expect("label_values query");
            let (metric, label) = inner.rsplit_once(',').expect("metric, label");
            out.push((format!("variable {}", v["name"]), format!("count by ({}) ({})", label.trim(), metric.trim())));
        }
    }
    out
}

fn substitute(expr: &str) -> String {
    expr.replace("${datasource}", "")
        .replace("$__rate_interval", "20s")
        .replace("$__range", "1m")
        .replace("$group", ".*")
        .replace("$target", ".*")
        .replace("$vantage", ".*")
        .replace("$period", ".*")
        .replace("$operator", ".*")
}

#[test]
fn dashboards_are_well_formed() {
    let all = dashboards();
    assert!(all.len() >= 3, "dashboards missing");
    for (path, d) in &all {
        let name = path.display();
        assert!(d["schemaVersion"].as_i64().is_some_and(|v| v >= 36), "{name}: schemaVersion");
        assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "{name}: uid");
        let vars: Vec<&str> =
            d["templating"]["list"].as_array().expect("templating").iter().filter_map(|v| v["name"].as_str()).collect();
        assert!(vars.contains(&"datasource"), "{name}: no datasource variable");
        for p in d["panels"].as_array().expect("panels") {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{name}: panel {} not on ${{datasource}}", p["title"]);
            for t in p["targets"].as_array().expect("targets") {
                let expr = t["expr"].as_str().expect("expr");
                for word in
                    expr.split(|c: char| !(c.is_alphanumeric() || c == '$' || c == '_')).filter(|w| w.starts_with('$'))
                {
                    let var = word.trim_start_matches('$');
                    assert!(
                        var.starts_with("__") || vars.contains(&var),
                        "{name}: {word} in {expr:?} is not a variable"
                    );
                }
            }
        }
    }
}

#[test]
fn every_dashboard_query_returns_data_from_a_live_prometheus() {
    if !require_tool("prometheus", "prometheus") || !require_root("ICMP in the dashboard data") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt.block_on(TcpServer::start(None));
    // A tracking API (`/json` answers DELIVERED) and consignments for the postal dashboard.
    let tracking = rt.block_on(HttpServer::start());
    let csv_dir = tempfile::tempdir().expect("tempdir");
    let csv = csv_dir.path().join("consignments.csv");
    let accepted = (chrono::Utc::now() - chrono::Duration::hours(20)).to_rfc3339();
    std::fs::write(
        &csv,
        format!("tracking,operator,kind,accepted_at\nEMS1,vnpost,exam_paper,{accepted}\nEMS2,vnpost,admission_notice,{accepted}\n"),
    )
    .expect("csv");
    let _guard = rt.enter();
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "dash"
api_token_env = "THONGSUOT_API_TOKEN"
[defaults]
interval = "1s"
timeout = "800ms"
confirm = 2
[[group]]
name = "vnpt"
contacts = ["noc"]
[[contact]]
name = "noc"
emails = ["noc@vnpt.example.vn"]
[[period]]
name = "exam-day"
start = "{start}"
end = "{end}"
[[target]]
name = "smsc"
group = "vnpt"
kind = "tcp"
address = "{up}"
[[target]]
name = "smsc-down"
group = "vnpt"
kind = "tcp"
address = "127.0.0.1:{down}"
[[target]]
name = "core-ping"
group = "vnpt"
kind = "icmp"
host = "127.0.0.1"
count = 2
spacing = "50ms"
[postal]
consignments = "{csv}"
[[postal.operator]]
name = "vnpost"
track_url = "{tracking}?t={{tracking}}"
poll = "2s"
health_interval = "1s"
timeout = "800ms"
status_pointer = "/data/status"
standard = "J+2"
"#,
        csv = csv.display(),
        tracking = tracking.url("/json"),
        start = (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S"),
        end = (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S"),
        up = listener.addr,
        down = free_port(),
    );
    let token = "dashboard-test-token-123456";
    let d = Daemon::start(&config, &[("THONGSUOT_API_TOKEN", token)]);
    d.wait_until("the outage confirmed", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "smsc-down")]) == Some(0.0)
    });
    // A reload re-evaluates the SLA now rather than in 30 s.
    assert_eq!(blocking_request("POST", &d.url("/-/reload"), Some(token), None).map(|r| r.0), Some(200));

    let prom = Prometheus::start(d.port);
    d.wait_until("prometheus ready", Duration::from_secs(30), || prom.ready());
    // Enough samples for rate() windows and the breach series.
    let query = |q: &str| prom.query(q);
    d.wait_until("breach series in Prometheus", Duration::from_secs(30), || {
        query("thongsuot_sla_breach{target=\"smsc-down\"} == 1")
            .is_some_and(|v| v["data"]["result"].as_array().is_some_and(|r| !r.is_empty()))
    });
    std::thread::sleep(Duration::from_secs(6));

    let mut empty = Vec::new();
    let mut checked = 0;
    let start = Instant::now();
    // The calls-and-messages dashboard needs a SIP peer and an SMS gateway: checked by the call
    // and SMS tests (`check_live`).
    for (path, dash) in dashboards().into_iter().filter(|(p, _)| !p.ends_with(CALLS)) {
        for (title, expr) in queries(&dash) {
            let q = substitute(&expr);
            let v = query(&q).unwrap_or_else(|| panic!("{}: {title}: query failed: {q}", path.display()));
            assert_eq!(v["status"], "success", "{title}: {v}");
            checked += 1;
            if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
                empty.push(format!(
                    "{}: {title}: {q}",
                    path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default()
                ));
            }
        }
    }
    eprintln!("{checked} dashboard queries checked against live data in {:?}", start.elapsed());
    assert!(empty.is_empty(), "queries without data:\n{}", empty.join("\n"));
    drop(prom);
    assert!(d.stop().success());
}

/// A real Prometheus scraping one daemon every second, on a free loopback port.
struct Prometheus {
    api: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(daemon_port: u16) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: thongsuot\n    static_configs:\n      - targets: ['127.0.0.1:{daemon_port}']\n"),
        )
        .expect("prometheus.yml");
        let proc = Proc(
            Command::new("prometheus")
                .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus"),
        );
        Prometheus { api: format!("http://127.0.0.1:{port}"), _proc: proc, _dir: dir }
    }

    fn ready(&self) -> bool {
        blocking_get(&format!("{}/-/ready", self.api)).is_some()
    }

    /// An instant query's answer, `None` when Prometheus does not answer (yet).
    fn query(&self, q: &str) -> Option<serde_json::Value> {
        blocking_get(&format!("{}/api/v1/query?query={}", self.api, urlencode(q)))
            .and_then(|b| serde_json::from_str(&b).ok())
    }
}

/// The dashboard of test calls and messages.
pub const CALLS: &str = "thongsuot-calls.json";

/// Runs the queries of dashboard `file` that `wanted` selects against a Prometheus scraping the
/// daemon on `port` (once a second), and fails on any without data. `ready` is a query that has
/// data once the series the dashboard needs are scraped.
pub fn check_live(port: u16, file: &str, wanted: impl Fn(&str) -> bool, ready: &str) {
    if !require_tool("prometheus", "prometheus") {
        return;
    }
    let (path, dash) = dashboards().into_iter().find(|(p, _)| p.ends_with(file)).expect("dashboard file");
    let prom = Prometheus::start(port);
    let query = |q: &str| prom.query(q);
    let has_data = |q: &str| query(q).is_some_and(|v| v["data"]["result"].as_array().is_some_and(|r| !r.is_empty()));
    let start = Instant::now();
    while !has_data(ready) {
        assert!(start.elapsed() < Duration::from_secs(60), "{ready}: no data in Prometheus after 60 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut empty = Vec::new();
    let mut checked = 0;
    for (title, expr) in queries(&dash).into_iter().filter(|(_, e)| wanted(e)) {
        let q = substitute(&expr);
        let v = query(&q).unwrap_or_else(|| panic!("{}: {title}: query failed: {q}", path.display()));
        assert_eq!(v["status"], "success", "{title}: {v}");
        checked += 1;
        if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            empty.push(format!("{title}: {q}"));
        }
    }
    assert!(checked > 0, "no query of {file} selected");
    eprintln!("{checked} queries of {file} checked against live data");
    assert!(empty.is_empty(), "{file}: queries without data:\n{}", empty.join("\n"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
