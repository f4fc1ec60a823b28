//! A bounded soak: flapping targets (a listener switched on and off every few seconds, so
//! outages open and close, incidents and e-mails follow), hostile HTTP peers (endless bodies,
//! answers slower than the timeout) and ICMP, for `THONGSUOT_SOAK_SECS` (default 45 s; run it
//! for hours locally). Memory and file descriptors must stay flat after warm-up.

use std::time::{Duration, Instant};

use crate::support::*;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn memory_and_descriptors_stay_flat_under_flapping_and_hostile_peers() {
    let secs: u64 = std::env::var("THONGSUOT_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(45);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let http = rt.block_on(HttpServer::start());
    let mut sw = Switch::new();
    sw.on();
    let mut config = String::from(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n[defaults]\ninterval = \"500ms\"\ntimeout = \"400ms\"\nconfirm = 2\nrecover = 1\n\
         group_interval = \"2s\"\nrepeat_interval = \"5s\"\n[[group]]\nname = \"g\"\ncontacts = [\"noc\"]\n[[contact]]\nname = \"noc\"\nemails = [\"noc@example.vn\"]\n",
    );
    for i in 0..40 {
        config.push_str(&format!(
            "[[target]]\nname = \"flap{i}\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
            sw.port
        ));
    }
    for (i, path) in ["/endless", "/slow", "/ok", "/not-json"].iter().enumerate() {
        config.push_str(&format!(
            "[[target]]\nname = \"http{i}\"\ngroup = \"g\"\nkind = \"http\"\nurl = \"{}\"\nmax_body_bytes = 65536\n",
            http.url(path)
        ));
    }
    if rt.block_on(async { surge_ping::Client::new(&surge_ping::Config::default()) }).is_ok() {
        config
            .push_str("[[target]]\nname = \"icmp\"\ngroup = \"g\"\nkind = \"icmp\"\nhost = \"127.0.0.1\"\ncount = 3\n");
    }
    let d = Daemon::start(&config, &[]);
    let pid = d.proc.0.id();
    let start = Instant::now();
    let mut on = true;
    let mut flips = 0;
    let mut baseline = None;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(3));
        if on {
            sw.off();
        } else {
            sw.on();
        }
        on = !on;
        flips += 1;
        // After warm-up (one flip cycle with e-mails and incidents), take the baseline.
        if baseline.is_none() && start.elapsed() >= Duration::from_secs(12) {
            baseline = Some((rss_kb(pid), fds(pid)));
        }
    }
    if !on {
        sw.on();
    }
    let (rss0, fd0) = baseline.expect("soak shorter than its warm-up: set THONGSUOT_SOAK_SECS >= 15");
    let (rss1, fd1) = (rss_kb(pid), fds(pid));
    let m = d.metrics();
    let downtime = sample(&m, "thongsuot_target_downtime_seconds_total", &[("target", "flap0")]).unwrap_or(0.0);
    let incidents: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/incidents?state=all").unwrap_or_default()).unwrap_or_default();
    let n_incidents = incidents["incidents"].as_array().map_or(0, Vec::len);
    let mails = std::fs::read_dir(d.dir.path().join("state/mail")).map(|r| r.count()).unwrap_or(0);
    eprintln!(
        "soak {secs}s: {flips} flips, {n_incidents} incidents, {mails} e-mails; RSS {rss0} → {rss1} KB, FDs {fd0} → {fd1}"
    );
    assert!(n_incidents >= 40 && downtime > 0.0, "the flapping produced outages");
    assert!(rss1 <= rss0 + rss0 / 5 + 10_240, "RSS grew from {rss0} KB to {rss1} KB");
    assert!(fd1 <= fd0 + 8, "file descriptors grew from {fd0} to {fd1}");
    assert!(d.stop().success());
}
