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
    for (host, want, text) in [
        (&ttl, FailureKind::TtlExceeded, "time to live exceeded in transit (code 0)"),
        (&prohibited, FailureKind::Unreachable, "communication administratively prohibited (code 13)"),
        (&host_unreach, FailureKind::Unreachable, "host unreachable (code 1)"),
    ] {
        let o = run_with(&icmp(host), &probers).await;
        assert_eq!(kind(&o), Some(want), "{host}: {o:?}");
        assert_eq!(detail(&o), format!("{text} from {router}"), "{host}: {o:?}");
        let echo = o.echo.expect("echo stats");
        assert_eq!((echo.sent, echo.received), (3, 0), "{host}: {o:?}");
        assert_eq!(echo.loss_ratio(), 1.0, "{host}");
        assert!(echo.rtt_avg.is_none(), "an error has no round trip: {o:?}");
    }
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
