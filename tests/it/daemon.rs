//! End to end with the real binary: probing real peers, /metrics (checked by promtool), the
//! status JSON, reload by SIGHUP and by API, clean shutdown.

use std::time::Duration;

use crate::support::*;

const TOKEN: &str = "test-token-0123456789abcdef";

fn config(up_addr: &str, http_url: &str, slow_url: &str) -> String {
    format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "it"
api_token_env = "THONGSUOT_API_TOKEN"

[defaults]
interval = "1s"
timeout = "800ms"
confirm = 2
recover = 1

[[group]]
name = "vnpt"

[[target]]
name = "smsc-up"
group = "vnpt"
kind = "tcp"
address = "{up_addr}"

[[target]]
name = "smsc-down"
group = "vnpt"
kind = "tcp"
address = "127.0.0.1:{down_port}"

[[target]]
name = "portal"
group = "vnpt"
kind = "http"
url = "{http_url}"

[[target]]
name = "hanging-portal"
group = "vnpt"
kind = "http"
url = "{slow_url}"
interval = "2s"
timeout = "1500ms"
"#,
        down_port = free_port(),
    )
}

#[test]
fn daemon_probes_exports_metrics_and_stops_cleanly() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (tcp, http) = rt.block_on(async { (TcpServer::start(None).await, HttpServer::start().await) });
    let _guard = rt.enter();
    let d = Daemon::start(
        &config(&tcp.addr.to_string(), &http.url("/ok"), &http.url("/slow")),
        &[("THONGSUOT_API_TOKEN", TOKEN)],
    );

    d.wait_until("smsc-down confirmed down and others up", Duration::from_secs(20), || {
        let m = d.metrics();
        sample(&m, "thongsuot_target_up", &[("target", "smsc-down")]) == Some(0.0)
            && sample(&m, "thongsuot_target_up", &[("target", "smsc-up")]) == Some(1.0)
            && sample(&m, "thongsuot_target_up", &[("target", "portal")]) == Some(1.0)
    });
    let m = d.metrics();
    assert_eq!(
        sample(&m, "thongsuot_probe_success", &[("target", "smsc-down"), ("kind", "tcp"), ("vantage", "it")]),
        Some(0.0)
    );
    assert_eq!(sample(&m, "thongsuot_probe_success", &[("target", "portal"), ("kind", "http")]), Some(1.0));
    assert!(
        sample(&m, "thongsuot_probes_total", &[("target", "smsc-down"), ("result", "refused")])
            .is_some_and(|n| n >= 2.0),
        "{m}"
    );
    assert!(sample(&m, "thongsuot_build_info", &[("vantage", "it")]) == Some(1.0));
    if let Some(r) = promtool_check_metrics(&m) {
        r.unwrap_or_else(|e| panic!("promtool check metrics:\n{e}\n{m}"));
    }

    // A hanging target costs its own timeouts, never the cadence of the others: over 5 s
    // the 1 s targets each run about 5 probes.
    let count = |m: &str, t: &str| {
        sample(m, "thongsuot_probes_total", &[("target", t), ("result", "success")]).unwrap_or(0.0)
            + sample(m, "thongsuot_probes_total", &[("target", t), ("result", "refused")]).unwrap_or(0.0)
    };
    // A fresh sample: `m` was taken before promtool's check, which can take seconds on a busy
    // machine (the probes counted during it read as a burst: 11 in "5 s" once in CI).
    let before = count(&d.metrics(), "smsc-up");
    std::thread::sleep(Duration::from_secs(5));
    let m = d.metrics();
    let ran = count(&m, "smsc-up") - before;
    assert!((3.0..=7.0).contains(&ran), "smsc-up ran {ran} probes in 5 s at a 1 s interval");
    assert!(
        sample(&m, "thongsuot_probes_total", &[("target", "hanging-portal"), ("result", "timeout")])
            .is_some_and(|n| n >= 1.0),
        "{m}"
    );
    assert!(sample(&m, "thongsuot_scheduler_lag_seconds_count", &[]).is_some_and(|n| n > 10.0));
    // Downtime grows while the outage is open, from its backdated start.
    assert!(
        sample(&m, "thongsuot_target_downtime_seconds_total", &[("target", "smsc-down")]).is_some_and(|s| s >= 4.0),
        "{m}"
    );

    let status = d.get("/api/v1/status").expect("status");
    let v: serde_json::Value = serde_json::from_str(&status).expect("json");
    let down = v["targets"].as_array().expect("targets").iter().find(|t| t["name"] == "smsc-down").expect("smsc-down");
    assert_eq!(down["state"], "down");
    assert_eq!(down["last_failure_reason"], "refused");
    assert!(d.get("/").is_some_and(|p| p.contains("smsc-down") && p.contains("charset=\"utf-8\"")));

    let status = d.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn reload_applies_good_configs_and_keeps_the_old_one_on_errors() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (tcp, http) = rt.block_on(async { (TcpServer::start(None).await, HttpServer::start().await) });
    let _guard = rt.enter();
    let base = config(&tcp.addr.to_string(), &http.url("/ok"), &http.url("/slow"));
    let d = Daemon::start(&base, &[("THONGSUOT_API_TOKEN", TOKEN)]);
    d.wait_until("first probes", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "smsc-up")]) == Some(1.0)
    });
    let port_line = format!("listen = \"127.0.0.1:{}\"", d.port);
    let written = |text: &str| text.replace("listen = \"127.0.0.1:{port}\"", &port_line);

    // A broken file: rejected with its location, old targets keep running.
    std::fs::write(
        &d.config,
        written(&format!(
            "{base}\n[[target]]\nname = \"x\"\ngroup = \"nope\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n"
        )),
    )
    .expect("write");
    d.signal("HUP");
    d.wait_until("reload rejected", Duration::from_secs(10), || {
        sample(&d.metrics(), "thongsuot_config_last_reload_success", &[]) == Some(0.0)
    });
    assert!(d.log_text().contains("thongsuot.toml:"), "error must be located: {}", d.log_text());
    assert!(d.log_text().contains("unknown group \"nope\""));
    let m = d.metrics();
    let before = sample(&m, "thongsuot_probes_total", &[("target", "smsc-up"), ("result", "success")]).unwrap_or(0.0);
    std::thread::sleep(Duration::from_millis(2500));
    let after =
        sample(&d.metrics(), "thongsuot_probes_total", &[("target", "smsc-up"), ("result", "success")]).unwrap_or(0.0);
    assert!(after > before, "old config stopped probing after a bad reload");

    // The API reload needs the token.
    let (code, _) = blocking_request("POST", &d.url("/-/reload"), None, None).expect("answer");
    assert_eq!(code, 401);
    let (code, _) =
        blocking_request("POST", &d.url("/-/reload"), Some("wrong-token-wrong-token"), None).expect("answer");
    assert_eq!(code, 401);
    let (code, body) = blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), None).expect("answer");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("unknown group"), "{body}");

    // A good file adding one target and removing another.
    let good = base.replace("name = \"smsc-down\"", "name = \"smsc-down-renamed\"");
    std::fs::write(&d.config, written(&good)).expect("write");
    let (code, body) = blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), None).expect("answer");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["added"], serde_json::json!(["smsc-down-renamed"]));
    assert_eq!(v["removed"], serde_json::json!(["smsc-down"]));
    assert_eq!(v["unchanged"], 3);
    assert_eq!(v["other"], serde_json::json!([]), "nothing but targets changed: {body}");
    // A change elsewhere is said too, by name.
    std::fs::write(
        &d.config,
        written(&format!("{good}\n[[contact]]\nname = \"ops\"\nemails = [\"ops@example.vn\"]\n")),
    )
    .expect("write");
    let (code, body) = blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), None).expect("answer");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["other"], serde_json::json!(["contact \"ops\" added"]), "{body}");
    d.wait_until("renamed target probed, old series gone", Duration::from_secs(10), || {
        let m = d.metrics();
        sample(&m, "thongsuot_probe_success", &[("target", "smsc-down-renamed")]).is_some()
    });
    // The removed target was down: its outage and incident are closed, not left open forever.
    d.wait_until("incident of the removed target closed", Duration::from_secs(10), || {
        d.get("/api/v1/incidents").is_some_and(|b| !b.contains("\"target\":\"smsc-down\""))
    });
    let all = d.get("/api/v1/incidents?state=all").expect("incidents");
    assert!(all.contains("\"target\":\"smsc-down\""), "the closed incident stays on record: {all}");
    let leftover: Vec<String> =
        d.metrics().lines().filter(|l| l.contains("target=\"smsc-down\"")).map(String::from).collect();
    assert!(leftover.is_empty(), "series of the removed target remain: {leftover:?}");
    assert_eq!(sample(&d.metrics(), "thongsuot_config_last_reload_success", &[]), Some(1.0));
    assert!(d.stop().success());
}

/// A CA renewed in place: the config is unchanged, the file is not; a reload reads it again.
#[test]
fn reload_reads_a_rewritten_ca_file() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (right, other) = rt.block_on(async { (HttpsServer::start().await, HttpsServer::start().await) });
    let _guard = rt.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("portal-ca.pem");
    // At first the file holds another server's certificate: verification fails.
    std::fs::copy(&other.ca_file, &ca).expect("copy ca");
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:{{port}}\"\nstate_dir = \"state\"\napi_token_env = \"THONGSUOT_API_TOKEN\"\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"800ms\"\nconfirm = 1\nrecover = 1\n[[group]]\nname = \"vnpt\"\n\
         [[target]]\nname = \"portal\"\ngroup = \"vnpt\"\nkind = \"http\"\nurl = \"{}\"\nca_file = \"{}\"\n\
         [[target]]\nname = \"portal-tls\"\ngroup = \"vnpt\"\nkind = \"tls\"\naddress = \"localhost:{}\"\nca_file = \"{}\"\n",
        right.url("/ok"),
        ca.display(),
        right.addr.port(),
        ca.display()
    );
    let d = Daemon::start(&text, &[("THONGSUOT_API_TOKEN", TOKEN)]);
    d.wait_until("both down on the wrong CA", Duration::from_secs(15), || {
        let m = d.metrics();
        ["portal", "portal-tls"].iter().all(|t| sample(&m, "thongsuot_target_up", &[("target", t)]) == Some(0.0))
    });
    let m = d.metrics();
    assert!(
        sample(&m, "thongsuot_probes_total", &[("target", "portal"), ("result", "tls")]).is_some_and(|n| n >= 1.0),
        "{m}"
    );
    // A reload with nothing changed changes nothing.
    let (code, body) = blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), None).expect("answer");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!((v["changed"].as_array().map(Vec::len), v["unchanged"].as_u64()), (Some(0), Some(2)), "{body}");
    // The CA is renewed in place (the right certificate written over the file), then a reload.
    std::fs::write(&ca, std::fs::read(&right.ca_file).expect("read ca")).expect("rewrite ca");
    let (code, body) = blocking_request("POST", &d.url("/-/reload"), Some(TOKEN), None).expect("answer");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["changed"], serde_json::json!(["portal", "portal-tls"]), "{body}");
    d.wait_until("both up on the renewed CA", Duration::from_secs(15), || {
        let m = d.metrics();
        ["portal", "portal-tls"].iter().all(|t| sample(&m, "thongsuot_target_up", &[("target", t)]) == Some(1.0))
    });
    assert!(d.stop().success());
}

#[test]
fn heartbeat_targets_go_down_when_the_pushes_stop() {
    let config = r#"
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
api_token_env = "THONGSUOT_API_TOKEN"
[defaults]
interval = "1s"
timeout = "500ms"
confirm = 2
recover = 1
[[group]]
name = "exam-sites"
kind = "portal"
[[target]]
name = "site-vinh-yen"
group = "exam-sites"
kind = "heartbeat"
every = "2s"
"#;
    let d = Daemon::start(config, &[("THONGSUOT_API_TOKEN", TOKEN)]);
    let push = |token: Option<&str>, name: &str| {
        blocking_request("POST", &d.url(&format!("/api/v1/heartbeat/{name}")), token, None).map(|r| r.0)
    };
    assert_eq!(push(None, "site-vinh-yen"), Some(401));
    assert_eq!(push(Some(TOKEN), "no-such-site"), Some(404));
    let up = |d: &Daemon| sample(&d.metrics(), "thongsuot_target_up", &[("target", "site-vinh-yen")]);
    for _ in 0..8 {
        assert_eq!(push(Some(TOKEN), "site-vinh-yen"), Some(200));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(up(&d), Some(1.0), "pushing site must be up");
    // Silence: down after `every` plus confirmation (2 s + 2 × 1 s), with the reason.
    d.wait_until("silent site down", Duration::from_secs(10), || up(&d) == Some(0.0));
    let status = d.get("/api/v1/status").expect("status");
    assert!(status.contains("no heartbeat for"), "{status}");
    assert_eq!(push(Some(TOKEN), "site-vinh-yen"), Some(200));
    d.wait_until("site up again", Duration::from_secs(5), || up(&d) == Some(1.0));
    assert!(d.stop().success());
}

/// A carrier host reachable through two uplinks of this machine (two veth pairs into one
/// namespace, policy routing by source address). Removed on drop.
struct TwoUplinks {
    ns: String,
    links: [String; 2],
}

impl TwoUplinks {
    const TARGET: &'static str = "198.18.22.1";
    const SOURCES: [&'static str; 2] = ["198.18.20.1", "198.18.21.1"];

    fn create() -> TwoUplinks {
        let id = std::process::id() % 10_000;
        let t = TwoUplinks { ns: format!("ts-quorum-{id}"), links: [format!("tqa{id}"), format!("tqb{id}")] };
        t.cleanup();
        for block in [20, 21, 22] {
            claim_block(block, "quorum_across_two_uplinks_in_a_namespace");
        }
        let mut steps: Vec<Vec<String>> = vec![vec!["ip".into(), "netns".into(), "add".into(), t.ns.clone()]];
        for (i, (link, net)) in t.links.iter().zip(["20", "21"]).enumerate() {
            let peer = format!("{link}n");
            let table = (1071 + i).to_string();
            let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            steps.push(s(&["ip", "link", "add", link, "type", "veth", "peer", "name", &peer]));
            steps.push(s(&["ip", "link", "set", &peer, "netns", &t.ns]));
            steps.push(s(&["ip", "addr", "add", &format!("198.18.{net}.1/30"), "dev", link]));
            steps.push(s(&["ip", "link", "set", link, "up"]));
            steps.push(s(&[
                "ip",
                "netns",
                "exec",
                &t.ns,
                "ip",
                "addr",
                "add",
                &format!("198.18.{net}.2/30"),
                "dev",
                &peer,
            ]));
            steps.push(s(&["ip", "netns", "exec", &t.ns, "ip", "link", "set", &peer, "up"]));
            steps.push(s(&["ip", "rule", "add", "from", &format!("198.18.{net}.1"), "table", &table]));
            steps.push(s(&[
                "ip",
                "route",
                "add",
                TwoUplinks::TARGET,
                "via",
                &format!("198.18.{net}.2"),
                "table",
                &table,
            ]));
        }
        steps.push(
            ["ip", "netns", "exec", &t.ns, "ip", "link", "set", "lo", "up"].iter().map(|x| x.to_string()).collect(),
        );
        steps.push(
            ["ip", "netns", "exec", &t.ns, "ip", "addr", "add", &format!("{}/32", TwoUplinks::TARGET), "dev", "lo"]
                .iter()
                .map(|x| x.to_string())
                .collect(),
        );
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            sh(&args).unwrap_or_else(|e| panic!("two-uplink setup: {e}"));
        }
        t
    }

    fn cut(&self, i: usize) {
        sh(&["ip", "netns", "exec", &self.ns, "ip", "link", "set", &format!("{}n", self.links[i]), "down"])
            .expect("cut");
    }

    fn cleanup(&self) {
        for (i, net) in ["20", "21"].iter().enumerate() {
            let _ = sh(&["ip", "rule", "del", "from", &format!("198.18.{net}.1"), "table", &(1071 + i).to_string()]);
        }
        let _ = sh(&["ip", "netns", "del", &self.ns]);
        for l in &self.links {
            let _ = sh(&["ip", "link", "del", l]);
        }
    }
}

impl Drop for TwoUplinks {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[test]
fn quorum_across_two_uplinks_in_a_namespace() {
    if !require_root("network namespaces") || !require_tool("ip", "iproute2") {
        return;
    }
    let net = TwoUplinks::create();
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
[defaults]
interval = "1s"
timeout = "800ms"
confirm = 2
recover = 1
[[group]]
name = "viettel"
[[target]]
name = "core"
group = "viettel"
kind = "icmp"
host = "{target}"
count = 1
source = ["{a}", "{b}"]
"#,
        target = TwoUplinks::TARGET,
        a = TwoUplinks::SOURCES[0],
        b = TwoUplinks::SOURCES[1],
    );
    let d = Daemon::start(&config, &[]);
    let up = |d: &Daemon| sample(&d.metrics(), "thongsuot_target_up", &[("target", "core")]);
    let uplink = |d: &Daemon, s: &str| {
        sample(&d.metrics(), "thongsuot_uplink_probe_success", &[("target", "core"), ("source", s)])
    };
    d.wait_until("up through both uplinks", Duration::from_secs(15), || {
        up(&d) == Some(1.0)
            && uplink(&d, TwoUplinks::SOURCES[0]) == Some(1.0)
            && uplink(&d, TwoUplinks::SOURCES[1]) == Some(1.0)
    });

    // One uplink cut: that path fails, the carrier is not down (quorum = all uplinks).
    net.cut(0);
    d.wait_until("uplink A failing", Duration::from_secs(10), || uplink(&d, TwoUplinks::SOURCES[0]) == Some(0.0));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(up(&d), Some(1.0), "one cut uplink must not read as a carrier outage");

    // Both cut: down, with both paths named in the reason.
    net.cut(1);
    d.wait_until("down through both uplinks", Duration::from_secs(10), || up(&d) == Some(0.0));
    let status = d.get("/api/v1/status").expect("status");
    assert!(status.contains("down from 2 of 2 uplinks"), "{status}");
    assert!(d.stop().success());
}

#[test]
fn systemd_readiness_and_watchdog_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let config = "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
    let path = sock_path.to_str().expect("utf-8");
    let d = Daemon::start(config, &[("NOTIFY_SOCKET", path), ("WATCHDOG_USEC", "400000")]);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.iter().filter(|m: &&String| m.as_str() == "WATCHDOG=1").count() < 3 {
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        got.push(String::from_utf8_lossy(&buf[..n]).to_string());
        assert!(got.len() < 50, "{got:?}");
    }
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert!(d.stop().success());
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        if &buf[..n] == b"STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 at shutdown");
}
