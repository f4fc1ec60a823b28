//! Real network faults made in a namespace the test creates: random packet loss with nftables
//! inside the namespace is congestion (degraded), never an outage, and it clears when the loss
//! stops; cutting the link is an outage.

use std::time::{Duration, Instant};

use crate::support::*;

fn nft(ns: &Netns, args: &[&str]) {
    let mut cmd = vec!["ip", "netns", "exec", ns.name.as_str(), "nft"];
    cmd.extend_from_slice(args);
    sh(&cmd).unwrap_or_else(|e| panic!("nft: {e}"));
}

#[test]
fn packet_loss_is_congestion_not_an_outage_and_a_cut_link_is_an_outage() {
    if !require_root("network namespaces") || !require_tool("nft", "nftables") || !require_tool("ip", "iproute2") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let ns = Netns::create("loss", 41);
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
[defaults]
interval = "1s"
timeout = "900ms"
confirm = 3
recover = 2
degraded_window = "8s"
[[group]]
name = "carrier"
[[target]]
name = "carrier-core"
group = "carrier"
kind = "icmp"
host = "{host}"
count = 10
spacing = "20ms"
max_loss = 0.2
"#,
        host = ns.ns_ip
    );
    let d = Daemon::start(&config, &[]);
    let m = |name: &str| sample(&d.metrics(), name, &[("target", "carrier-core")]);
    d.wait_until("target up", Duration::from_secs(20), || m("thongsuot_target_up") == Some(1.0));

    // 40 % of echo requests dropped inside the namespace.
    nft(&ns, &["add", "table", "inet", "imp"]);
    nft(&ns, &["add", "chain", "inet", "imp", "input", "{ type filter hook input priority 0; }"]);
    nft(
        &ns,
        &[
            "add",
            "rule",
            "inet",
            "imp",
            "input",
            "icmp",
            "type",
            "echo-request",
            "numgen",
            "random",
            "mod",
            "10",
            "<",
            "4",
            "drop",
        ],
    );
    let start = Instant::now();
    let mut ever_down = false;
    let mut degraded_after = None;
    while start.elapsed() < Duration::from_secs(40) {
        ever_down |= m("thongsuot_target_up") == Some(0.0);
        if m("thongsuot_target_degraded") == Some(1.0) {
            degraded_after = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let degraded_after = degraded_after.expect("40 % loss was not reported as congestion within 40 s");
    let loss = m("thongsuot_icmp_packet_loss_ratio").unwrap_or(-1.0);
    eprintln!("40 % loss: congested after {degraded_after:?}, last probe's loss {loss}");
    // Keep the loss a while longer: still no outage.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(6) {
        ever_down |= m("thongsuot_target_up") == Some(0.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!ever_down, "packet loss was reported as an outage");

    // The loss stops: the congestion ends, and there never was an outage.
    nft(&ns, &["delete", "table", "inet", "imp"]);
    d.wait_until("congestion over", Duration::from_secs(30), || m("thongsuot_target_degraded") == Some(0.0));
    let incidents: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/incidents?state=all").expect("incidents")).expect("json");
    let kinds: Vec<&str> = incidents["incidents"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["degraded"], "{incidents}");
    assert_eq!(m("thongsuot_target_downtime_seconds_total"), Some(0.0));

    // The link goes down: that is an outage.
    ns.cut();
    d.wait_until("outage", Duration::from_secs(20), || m("thongsuot_target_up") == Some(0.0));
    ns.restore();
    d.wait_until("back up", Duration::from_secs(20), || m("thongsuot_target_up") == Some(1.0));
    assert!(m("thongsuot_target_downtime_seconds_total").is_some_and(|s| s > 0.0));
    assert!(d.stop().success());
}

#[test]
fn late_echo_replies_are_congestion_and_no_replies_an_outage() {
    if !require_root("network namespaces") || !require_tool("ip", "iproute2") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let ns = Netns::create("delay", 43);
    sh(&["ip", "netns", "exec", &ns.name, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"]).expect("sysctl");
    let dir = tempfile::tempdir().expect("tempdir");
    let control = dir.path().join("delay");
    std::fs::write(&control, "5").expect("control");
    let mut responder = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3"])
        .arg(repo_path("tests/peers/icmp_responder.py"))
        .arg("--control")
        .arg(&control)
        .args(["--jitter-ms", "40", "--max-seconds", "240"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("icmp responder");
    {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(responder.stdout.take().expect("stdout")).read_line(&mut line);
        assert!(line.starts_with("READY"), "responder: {line:?}");
    }
    let _responder = Proc(responder);
    let config = format!(
        "[daemon]\nlisten = \"127.0.0.1:{{port}}\"\nstate_dir = \"state\"\n[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\nconfirm = 3\nrecover = 2\ndegraded_window = \"6s\"\n\
         [[group]]\nname = \"carrier\"\n[[target]]\nname = \"carrier-core\"\ngroup = \"carrier\"\nkind = \"icmp\"\nhost = \"{}\"\ncount = 3\nspacing = \"20ms\"\nmax_rtt = \"150ms\"\n",
        ns.ns_ip
    );
    let d = Daemon::start(&config, &[]);
    let m = |name: &str| sample(&d.metrics(), name, &[("target", "carrier-core")]);
    d.wait_until("up, answered by the responder", Duration::from_secs(20), || m("thongsuot_target_up") == Some(1.0));
    assert_ne!(m("thongsuot_target_degraded"), Some(1.0));

    // Replies 300 ± 40 ms late: congestion (latency), not an outage.
    std::fs::write(&control, "300").expect("control");
    let start = Instant::now();
    let mut ever_down = false;
    while start.elapsed() < Duration::from_secs(30) && m("thongsuot_target_degraded") != Some(1.0) {
        ever_down |= m("thongsuot_target_up") == Some(0.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(m("thongsuot_target_degraded"), Some(1.0), "late replies were not reported as congestion");
    let rtt = m("thongsuot_icmp_rtt_seconds").unwrap_or(0.0);
    eprintln!("300 ms late replies: congested after {:?}, RTT {rtt:.3} s", start.elapsed());
    assert!(rtt > 0.2, "{rtt}");
    assert!(!ever_down, "late replies were reported as an outage");

    // No replies at all: an outage.
    std::fs::write(&control, "drop").expect("control");
    d.wait_until("outage", Duration::from_secs(20), || m("thongsuot_target_up") == Some(0.0));
    // Prompt replies again: up, and the congestion ends.
    std::fs::write(&control, "5").expect("control");
    d.wait_until("back up", Duration::from_secs(20), || m("thongsuot_target_up") == Some(1.0));
    d.wait_until("congestion over", Duration::from_secs(30), || m("thongsuot_target_degraded") != Some(1.0));
    let incidents = d.get("/api/v1/incidents?state=all").expect("incidents");
    assert!(incidents.contains("\"kind\":\"degraded\"") && incidents.contains("\"kind\":\"outage\""), "{incidents}");
    assert!(d.stop().success());
}
