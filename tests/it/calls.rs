//! Test calls against SIPp (Debian `sip-tester`) as the called party: answered (post-dial delay
//! and setup time measured, ACK, hold, BYE), busy (486), ringing without an answer (cancelled),
//! no response at all, and digest authentication (401 challenge, credentials checked by SIPp).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thongsuot::probe::{self, Binding, FailureKind, Probers};

use crate::support::*;

/// SIPp as a UAS on 127.0.0.1:PORT: the built-in `uas` scenario or a file of tests/peers/sipp.
fn sipp(scenario: &str) -> Option<(Proc, u16)> {
    if !require_tool("sipp", "sip-tester") {
        return None;
    }
    for _ in 0..5 {
        let port = free_udp_port();
        let mut cmd = Command::new("sipp");
        if scenario == "uas" {
            cmd.args(["-sn", "uas"]);
        } else {
            cmd.arg("-sf").arg(repo_path(&format!("tests/peers/sipp/{scenario}.xml")));
        }
        let child = cmd
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin", "-bind_local", "-trace_err"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sipp");
        let mut p = Proc(child);
        // Ready when its port is taken (bounded wait).
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = p.0.try_wait() {
                break;
            }
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
                return Some((p, port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = p.0.kill();
    }
    panic!("sipp did not start");
}

fn call_target(keys: &str, env: &[(&str, &str)]) -> thongsuot::config::Target {
    let text = format!(
        "[defaults]\ninterval = \"30s\"\ntimeout = \"4s\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"c\"\ngroup = \"g\"\nkind = \"call\"\n{keys}\n"
    );
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let c = thongsuot::config::Config::parse(std::path::Path::new("calls.toml"), &text, &|k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (*c.targets.into_iter().next().expect("target")).clone()
}

async fn place(t: &thongsuot::config::Target) -> probe::Outcome {
    let probers = Probers::new();
    let prepared = probe::prepare(&t.spec, &Binding::default(), &probers).expect("prepare");
    probe::run(&t.spec, &prepared, &Binding::default(), &probers, 1, t.timeout).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_calls_against_sipp() {
    // Answered.
    let Some((_uas, port)) = sipp("uas") else { return };
    let t = call_target(&format!("uri = \"sip:1000@127.0.0.1:{port}\"\nhold = \"1s\""), &[]);
    let start = Instant::now();
    let o = place(&t).await;
    assert!(o.ok(), "{o:?}");
    let stats = o.call.expect("call stats");
    let (pdd, setup) = (stats.post_dial_delay.expect("180 seen"), stats.setup.expect("answered"));
    eprintln!("answered call: post-dial delay {pdd:?}, setup {setup:?}, whole probe {:?} (hold 1 s)", start.elapsed());
    assert!(pdd <= setup && setup < Duration::from_secs(2), "{stats:?}");
    assert!(start.elapsed() >= Duration::from_secs(1), "the call was held");

    // Busy.
    let (_busy, port) = sipp("busy").expect("sipp");
    let o = place(&call_target(&format!("uri = \"sip:1001@127.0.0.1:{port}\""), &[])).await;
    let f = o.failure.expect("busy fails");
    eprintln!("busy: {f}");
    assert_eq!(f.kind, FailureKind::Status);
    assert!(f.detail.contains("486") && f.detail.contains("busy"), "{f}");

    // Ringing, never answered: cancelled at the timeout.
    let (_ring, port) = sipp("ringing").expect("sipp");
    let start = Instant::now();
    let o = place(&call_target(&format!("uri = \"sip:1002@127.0.0.1:{port}\"\nhold = \"1s\"\ntimeout = \"3s\""), &[]))
        .await;
    let f = o.failure.expect("unanswered fails");
    eprintln!("ringing: {f} after {:?}", start.elapsed());
    assert_eq!(f.kind, FailureKind::Timeout);
    assert!(f.detail.contains("ringing; cancelled"), "{f}");
    assert!(o.call.and_then(|c| c.post_dial_delay).is_some(), "post-dial delay measured while ringing");
    assert!(start.elapsed() < Duration::from_secs(5));

    // Nobody there at all (a socket that swallows everything).
    let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = black_hole.local_addr().expect("addr").port();
    let o = place(&call_target(&format!("uri = \"sip:1003@127.0.0.1:{port}\"\ntimeout = \"2s\"\nhold = \"1s\""), &[]))
        .await;
    let f = o.failure.expect("no response fails");
    eprintln!("black hole: {f}");
    assert!(f.detail.contains("no response to INVITE"), "{f}");

    // Digest authentication: right credentials get through, wrong ones are refused.
    let (_auth, port) = sipp("auth").expect("sipp");
    let keys = format!(
        "uri = \"sip:1004@127.0.0.1:{port}\"\nhold = \"1s\"\nusername = \"monitor\"\npassword_env = \"SIP_PW\""
    );
    let o = place(&call_target(&keys, &[("SIP_PW", "s3cret-pw")])).await;
    assert!(o.ok(), "digest: {o:?}");
    let o = place(&call_target(&keys, &[("SIP_PW", "wrong")])).await;
    let f = o.failure.expect("wrong password fails");
    eprintln!("wrong password: {f}");
    assert!(f.detail.contains("403"), "{f}");

    // In the daemon: the call target's histograms and state.
    drop(_uas);
    let (_uas, port) = sipp("uas").expect("sipp");
    let d = tokio::task::spawn_blocking(move || {
        let d = Daemon::start(
            &format!(
                "[daemon]\nlisten = \"127.0.0.1:{{port}}\"\nstate_dir = \"state\"\n[defaults]\ninterval = \"2s\"\ntimeout = \"1500ms\"\nconfirm = 2\nrecover = 1\n\
                 [[group]]\nname = \"vnpt\"\n[[target]]\nname = \"vnpt-call\"\ngroup = \"vnpt\"\nkind = \"call\"\nuri = \"sip:1000@127.0.0.1:{port}\"\nhold = \"500ms\"\n"
            ),
            &[],
        );
        d.wait_until("a test call measured", Duration::from_secs(20), || {
            let m = d.metrics();
            sample(&m, "thongsuot_call_setup_seconds_count", &[("target", "vnpt-call")]).is_some_and(|n| n >= 2.0)
                && sample(&m, "thongsuot_target_up", &[("target", "vnpt-call"), ("kind", "call")]) == Some(1.0)
        });
        let m = d.metrics();
        assert!(sample(&m, "thongsuot_call_post_dial_delay_seconds_count", &[("target", "vnpt-call")]).is_some_and(|n| n >= 2.0));
        if let Some(r) = promtool_check_metrics(&m) {
            r.expect("promtool check metrics");
        }
        // The dashboard's call panels, on these calls through a real Prometheus.
        crate::dashboards::check_live(
            d.port,
            crate::dashboards::CALLS,
            |q| !q.contains("thongsuot_sms") && !q.contains("kind=\"sms\""),
            "count_over_time(thongsuot_call_setup_seconds_count[1m]) >= 3",
        );
        d
    })
    .await
    .expect("daemon");
    // The report's KPIs: call setup success and times, from every test call.
    let out = d.command(&["report", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report json");
    let k = report["kpis"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["target"] == "vnpt-call"))
        .cloned()
        .expect("call KPIs");
    eprintln!("call KPIs: {k}");
    assert!(k["attempts"].as_u64().is_some_and(|n| n >= 2) && k["success_ratio"] == 1.0, "{k}");
    assert!(k["p95_ms"].as_u64().is_some() && k["post_dial_p95_ms"].as_u64().is_some(), "{k}");
    let text = String::from_utf8_lossy(&d.command(&["report", "--lang", "en"]).stdout).to_string();
    assert!(text.contains("call setup") && text.contains("100.0 %"), "{text}");
    assert!(d.stop().success());
}
