//! The failures of real paths, made for real: a router namespace between this host and its
//! targets answers with ICMP errors, lets TTLs run out, resets and drops (see `support::Lab`).
//! Each test owns one 198.18.B.0/24 block (B: 60 and up here).

use std::time::Duration;

use thongsuot::probe::{FailureKind, Probers};

use crate::support::*;

fn lab_ready() -> bool {
    require_root("network namespaces") && require_tool("ip", "iproute2") && require_tool("nft", "nftables")
}

fn detail(o: &thongsuot::probe::Outcome) -> String {
    o.failure.as_ref().map(|f| f.detail.clone()).unwrap_or_default()
}

/// Pings each host (3 echoes): the failure is of the kind given, its reason the text given and the
/// router, and no echo counts as received.
async fn errors_read_as_failures(probers: &Probers, router: &str, cases: &[(&String, FailureKind, &str)]) {
    for &(host, want, text) in cases {
        let t = target(&format!("kind = \"icmp\"\nhost = \"{host}\"\ncount = 3\nspacing = \"100ms\""));
        let o = run_with(&t, probers).await;
        assert_eq!(kind(&o), Some(want), "{host}: {o:?}");
        assert_eq!(detail(&o), format!("{text} from {router}"), "{host}: {o:?}");
        let echo = o.echo.expect("echo stats");
        assert_eq!((echo.sent, echo.received), (3, 0), "{host}: {o:?}");
        assert_eq!(echo.loss_ratio(), 1.0, "{host}");
        assert!(echo.rtt_avg.is_none(), "an error has no round trip: {o:?}");
    }
}

#[tokio::test]
async fn icmp_errors_from_a_router_are_failures_not_replies() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::create("icmp", 60);
    let (clean, ttl, prohibited, host_unreach, dropped) =
        (lab.target(17), lab.target(18), lab.target(19), lab.target(20), lab.target(21));
    lab.rules(&format!(
        "chain pre {{ type filter hook prerouting priority -300; policy accept;
           ip daddr {ttl} ip ttl set 1
         }}
         chain forwardc {{ type filter hook forward priority 0; policy accept;
           ip daddr {prohibited} reject with icmp type admin-prohibited
           ip daddr {host_unreach} reject with icmp type host-unreachable
           ip daddr {dropped} drop
         }}"
    ));
    let router = lab.router_ip();
    let probers = Probers::new();
    let icmp = |host: &str| target(&format!("kind = \"icmp\"\nhost = \"{host}\"\ncount = 3\nspacing = \"100ms\""));

    // The control: a clean path through the same router answers every echo.
    let o = run_with(&icmp(&clean), &probers).await;
    assert!(o.ok(), "clean path: {o:?}");
    assert_eq!(o.echo.map(|e| e.received), Some(3), "{o:?}");

    // Each error is a failure of its own kind, naming the router; no echo counts as received.
    errors_read_as_failures(
        &probers,
        &router,
        &[
            (&ttl, FailureKind::TtlExceeded, "time to live exceeded in transit (code 0)"),
            (&prohibited, FailureKind::Unreachable, "communication administratively prohibited (code 13)"),
            (&host_unreach, FailureKind::Unreachable, "host unreachable (code 1)"),
        ],
    )
    .await;
    let o = run_with(&icmp(&dropped), &probers).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "dropped: {o:?}");

    // The kernel's default rate limit lets one error through per second: the other echoes are
    // silent. Still down (the error says why), not "congested" with one echo in three.
    lab.rate_limit_icmp();
    for _ in 0..2 {
        let o = run_with(&icmp(&host_unreach), &probers).await;
        assert!(!o.ok(), "rate-limited errors: {o:?}");
        assert_eq!(o.echo.map(|e| e.received), Some(0), "{o:?}");
        assert!(matches!(kind(&o), Some(FailureKind::Unreachable | FailureKind::Timeout)), "{o:?}");
    }
}

#[tokio::test]
async fn icmpv6_errors_from_a_router_are_failures_not_replies() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::create("icmp6", 65);
    let (clean, hops, prohibited, addr_unreach) = (lab.target6(17), lab.target6(18), lab.target6(19), lab.target6(20));
    lab.rules6(&format!(
        "chain pre {{ type filter hook prerouting priority -300; policy accept;
           ip6 daddr {hops} ip6 hoplimit set 1
         }}
         chain forwardc {{ type filter hook forward priority 0; policy accept;
           ip6 daddr {prohibited} reject with icmpv6 type admin-prohibited
           ip6 daddr {addr_unreach} reject with icmpv6 type addr-unreachable
         }}"
    ));
    let router = lab.router_ip6();
    let probers = Probers::new();
    let icmp = |host: &str| target(&format!("kind = \"icmp\"\nhost = \"{host}\"\ncount = 3\nspacing = \"100ms\""));
    // Neighbour discovery on fresh links can take a moment: bounded retries for the control.
    let mut o = run_with(&icmp(&clean), &probers).await;
    for _ in 0..20 {
        if o.ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        o = run_with(&icmp(&clean), &probers).await;
    }
    assert!(o.ok(), "clean IPv6 path: {o:?}");
    errors_read_as_failures(
        &probers,
        &router,
        &[
            (&hops, FailureKind::TtlExceeded, "hop limit exceeded in transit (code 0)"),
            (&prohibited, FailureKind::Unreachable, "communication administratively prohibited (code 1)"),
            (&addr_unreach, FailureKind::Unreachable, "address unreachable (code 3)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn tcp_through_a_router_that_rejects_resets_and_drops() {
    if !lab_ready() || !require_tool("python3", "python3") {
        return;
    }
    let lab = Lab::create("tcp", 61);
    let (open, port_unreach, reset, host_unreach, dropped) =
        (lab.target(17), lab.target(18), lab.target(19), lab.target(20), lab.target(21));
    lab.rules(&format!(
        "chain forwardc {{ type filter hook forward priority 0; policy accept;
           ip daddr {port_unreach} tcp dport 8080 reject with icmp type port-unreachable
           ip daddr {reset} tcp dport 8080 reject with tcp reset
           ip daddr {host_unreach} tcp dport 8080 reject with icmp type host-unreachable
           ip daddr {dropped} tcp dport 8080 drop
         }}"
    ));
    // One listener on every target address (0.0.0.0 in the target namespace).
    let _server = lab.spawn_in_targets(&["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"]);
    let tcp = |host: &str| target(&format!("kind = \"tcp\"\naddress = \"{host}:8080\"\ntimeout = \"1s\""));
    let probers = Probers::new();
    let mut up = false;
    for _ in 0..50 {
        if run_with(&tcp(&open), &probers).await.ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the listener in the target namespace never answered");

    for (host, want) in [
        (&port_unreach, FailureKind::Refused),
        (&reset, FailureKind::Refused),
        (&host_unreach, FailureKind::Unreachable),
        (&dropped, FailureKind::Timeout),
    ] {
        let o = run_with(&tcp(host), &probers).await;
        assert_eq!(kind(&o), Some(want), "{host}: {o:?}");
    }
}

/// A target that never answers, probed every second: one probe per slot, none skipped, and the
/// daemon does not call itself overloaded. Its ICMP errors make it down, not congested.
#[test]
fn a_silent_target_keeps_its_cadence_and_errors_read_down() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::create("cad", 62);
    let (dropped, unreach) = (lab.target(17), lab.target(18));
    lab.rules(&format!(
        "chain forwardc {{ type filter hook forward priority 0; policy accept;
           ip daddr {dropped} drop
           ip daddr {unreach} reject with icmp type host-unreachable
         }}"
    ));
    // Default rate limit: most echoes to the unreachable host get no error at all.
    lab.rate_limit_icmp();
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
[defaults]
interval = "1s"
confirm = 2
[[group]]
name = "lab"
[[target]]
name = "silent"
group = "lab"
kind = "icmp"
host = "{dropped}"
[[target]]
name = "unreachable"
group = "lab"
kind = "icmp"
host = "{unreach}"
"#
    );
    let d = Daemon::start(&config, &[]);
    let labels = |t: &'static str| [("target", t)];
    let probes = |m: &str, t: &'static str| {
        ["timeout", "unreachable", "success"]
            .iter()
            .filter_map(|r| sample(m, "thongsuot_probes_total", &[("target", t), ("result", r)]))
            .sum::<f64>()
    };
    d.wait_until("10 probes of the silent target", Duration::from_secs(40), || probes(&d.metrics(), "silent") >= 10.0);
    let m0 = d.metrics();
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let m1 = d.metrics();
    let secs = t0.elapsed().as_secs_f64();
    let n = probes(&m1, "silent") - probes(&m0, "silent");
    // One probe a second; generous bounds for a shared machine (it was one in two before).
    assert!(n >= secs - 2.0 && n <= secs + 2.0, "{n} probes of a silent target in {secs:.1} s");
    assert_eq!(sample(&m1, "thongsuot_probes_skipped_total", &[]), Some(0.0), "slots skipped");
    let ready = blocking_request("GET", &format!("http://127.0.0.1:{}/readyz", d.port), None, None);
    assert!(ready.as_ref().is_some_and(|(code, _)| *code == 200), "/readyz: {ready:?}");

    for t in ["silent", "unreachable"] {
        assert_eq!(sample(&m1, "thongsuot_target_up", &labels(t)), Some(0.0), "{t} must read down");
        assert_eq!(sample(&m1, "thongsuot_target_degraded", &labels(t)), Some(0.0), "{t} is down, not congested");
    }
    assert!(
        sample(&m1, "thongsuot_probes_total", &[("target", "unreachable"), ("result", "unreachable")])
            .is_some_and(|v| v >= 1.0),
        "the router's errors are counted as unreachable"
    );
    assert_eq!(
        sample(&m1, "thongsuot_probes_total", &[("target", "unreachable"), ("result", "success")]).unwrap_or(0.0),
        0.0,
        "no ICMP error counts as a reply"
    );
}

/// The monitor's own trouble — here the local address a target is probed from disappears — is
/// not the carrier's outage: the slots are unobserved, counted as monitor faults, shown on
/// `/readyz`, the API and the status page, and told to the monitor's contacts only.
#[test]
fn a_monitor_fault_is_unobserved_time_told_to_the_monitor_contacts_only() {
    if !require_root("network namespaces") || !require_tool("ip", "iproute2") {
        return;
    }
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let uplink = Dummy::create("fault", 64);
    let mut sw = Switch::new();
    sw.on();
    let config = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "office"
monitor_contacts = ["ops"]
[defaults]
interval = "1s"
confirm = 2
recover = 1
[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "thongsuot@example.vn"
[[contact]]
name = "noc"
emails = ["noc@carrier.example.vn"]
language = "en"
[[contact]]
name = "ops"
emails = ["ops@monitor.example.vn"]
language = "en"
[[group]]
name = "carrier"
contacts = ["noc"]
[[target]]
name = "via-uplink"
group = "carrier"
kind = "tcp"
address = "127.0.0.1:{port}"
source = "{source}"
"#,
        smtp = smtp.port,
        port = sw.port,
        source = uplink.addr,
    );
    let started = chrono::Utc::now();
    let d = Daemon::start(&config, &[]);
    let labels = [("target", "via-uplink")];
    let up = |d: &Daemon| sample(&d.metrics(), "thongsuot_target_up", &labels);
    d.wait_until("up through the uplink", Duration::from_secs(20), || up(&d) == Some(1.0));

    uplink.del_addr();
    let faults = |d: &Daemon| {
        sample(&d.metrics(), "thongsuot_monitor_faults_total", &[("target", "via-uplink"), ("fault", "setup")])
    };
    d.wait_until("monitor faults counted", Duration::from_secs(20), || faults(&d).is_some_and(|n| n >= 4.0));
    assert_eq!(up(&d), Some(1.0), "the monitor's fault made the target down");
    let (code, body) = blocking_request("GET", &d.url("/readyz"), None, None).expect("readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("monitor faults: 1 target(s) not observed") && body.contains("via-uplink"), "{body}");
    let status: serde_json::Value = serde_json::from_str(&d.get("/api/v1/status").expect("status")).expect("json");
    let t = status["targets"].as_array().and_then(|t| t.iter().find(|t| t["name"] == "via-uplink")).expect("target");
    assert!(t["monitor_fault"].as_str().is_some_and(|f| f.starts_with("setup: ")), "{t}");
    assert_eq!(t["state"], "up", "{t}");
    let page = d.get("/?lang=en").expect("status page");
    assert!(page.contains("monitor fault: not observed"), "status page does not show the fault");
    smtp.wait_for("the monitor fault e-mail", Duration::from_secs(20), |m| {
        !with_subject(m, "[MONITOR FAULT] office: via-uplink not observed", "ops@monitor.example.vn").is_empty()
    });

    uplink.add_addr();
    d.wait_until("observed again", Duration::from_secs(20), || {
        blocking_request("GET", &d.url("/readyz"), None, None).is_some_and(|(c, _)| c == 200)
    });
    let msgs = smtp.wait_for("the monitor OK e-mail", Duration::from_secs(20), |m| {
        !with_subject(m, "[MONITOR OK] office: via-uplink observed again", "ops@monitor.example.vn").is_empty()
    });
    let to_noc: Vec<_> = msgs.iter().filter(|m| m.to_string().contains("noc@carrier.example.vn")).collect();
    assert!(to_noc.is_empty(), "the carrier's contacts were told of the monitor's fault: {to_noc:?}");
    let (status, _dir, config_path) = d.stop_keep();
    assert!(status.success(), "{status:?}");

    // The report: no outage, and the faulted time is not observed time.
    let report = report_json(&config_path, started, chrono::Utc::now());
    let t = report["groups"][0]["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "via-uplink"))
        .expect("target in report");
    let f = &t["figures"];
    assert_eq!(f["outages"], 0, "{t}");
    assert_eq!(f["downtime_ms"], 0, "{t}");
    let (window, observed) = (f["window_ms"].as_i64().expect("window"), f["observed_ms"].as_i64().expect("observed"));
    assert!(window - observed >= 3000, "the faulted slots counted as observed: {f}");
}
