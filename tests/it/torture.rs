//! No notice lost, none doubled: outages and recoveries over three groups of real listeners,
//! the daemon killed with `kill -9` at seeded random moments and restarted each time, against
//! a real SMTP server. Every incident's first report and resolution must reach the server;
//! a crash may double at most one notice (an e-mail accepted by the server just before the
//! daemon could record it).
//!
//! `THONGSUOT_TORTURE_CRASHES=N` (default 20) and `THONGSUOT_TORTURE_SEED` choose the run;
//! `bench/torture.sh` runs the long version.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::*;

/// A pause of `lo` to `hi` ms.
fn pause(rng: &mut Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.next() % (hi - lo).max(1))
}

const GROUPS: [&str; 3] = ["vnpt", "viettel", "mobifone"];
const PER_GROUP: usize = 2;

fn config(smtp: u16, ports: &[u16]) -> String {
    let mut c = format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "torture"
timezone = "Asia/Ho_Chi_Minh"
shutdown_grace = "3s"
[defaults]
interval = "500ms"
confirm = 1
recover = 1
group_interval = "2s"
repeat_interval = "1h"
[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "thongsuot@example.vn"
timeout = "3s"
"#
    );
    for (g, group) in GROUPS.iter().enumerate() {
        c.push_str(&format!(
            "[[contact]]\nname = \"noc-{group}\"\nemails = [\"noc@{group}.example.vn\"]\nlanguage = \"en\"\n\
             [[group]]\nname = \"{group}\"\ncontacts = [\"noc-{group}\"]\n"
        ));
        for k in 0..PER_GROUP {
            let port = ports[g * PER_GROUP + k];
            c.push_str(&format!(
                "[[target]]\nname = \"{group}-{k}\"\ngroup = \"{group}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
            ));
        }
    }
    c
}

/// The incidents an e-mail's text tells: (target, since as written, state).
fn told(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for block in text.split("\nTarget: ").skip(1) {
        let mut lines = block.lines();
        let target = lines.next().unwrap_or_default().split(" — ").next().unwrap_or_default().to_string();
        let (mut since, mut state) = (String::new(), String::new());
        for l in lines {
            if let Some(v) = l.trim().strip_prefix("Since: ") {
                since = v.to_string();
            } else if let Some(v) = l.trim().strip_prefix("State: ") {
                state = v.to_string();
            }
        }
        out.push((target, since, state));
    }
    out
}

#[test]
fn no_notice_lost_none_doubled_across_kill_9() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let crashes: usize = std::env::var("THONGSUOT_TORTURE_CRASHES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("THONGSUOT_TORTURE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(2026);
    let mut rng = Rng::new(seed);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut switches: Vec<Switch> = (0..GROUPS.len() * PER_GROUP).map(|_| Switch::new()).collect();
    for s in switches.iter_mut() {
        s.on();
    }
    let mut on = vec![true; switches.len()];
    let ports: Vec<u16> = switches.iter().map(|s| s.port).collect();
    let mut d = Daemon::start(&config(smtp.port, &ports), &[]);
    let up_all = |d: &Daemon| {
        let m = d.metrics();
        GROUPS.iter().all(|g| {
            (0..PER_GROUP).all(|k| {
                let t = format!("{g}-{k}");
                sample(&m, "thongsuot_target_up", &[("target", t.as_str())]) == Some(1.0)
            })
        })
    };
    d.wait_until("every target up", Duration::from_secs(30), || up_all(&d));

    // The script: listeners toggled every 0.4-1.6 s; after a random number of toggles the
    // daemon is killed at a random moment and restarted after a random pause.
    let started = Instant::now();
    let limit = Duration::from_secs(60 + 6 * crashes as u64);
    for crash in 0..crashes {
        assert!(started.elapsed() < limit, "torture did not finish in {limit:?} ({crash} crashes)");
        for _ in 0..(1 + rng.next() % 3) {
            let k = (rng.next() % switches.len() as u64) as usize;
            if on[k] {
                switches[k].off();
            } else {
                switches[k].on();
            }
            on[k] = !on[k];
            std::thread::sleep(pause(&mut rng, 400, 1600));
        }
        std::thread::sleep(pause(&mut rng, 0, 700));
        let parts = d.kill9();
        std::thread::sleep(pause(&mut rng, 50, 800));
        d = Daemon::restart(parts, &[]);
    }
    // Every listener back; wait until all are up, the outbox is empty and windows have passed.
    for (k, s) in switches.iter_mut().enumerate() {
        if !on[k] {
            s.on();
            on[k] = true;
        }
    }
    d.wait_until("every target up at the end", Duration::from_secs(30), || up_all(&d));
    std::thread::sleep(Duration::from_secs(3));
    d.wait_until("the outbox empty", Duration::from_secs(60), || {
        sample(&d.metrics(), "thongsuot_outbox_pending", &[]) == Some(0.0)
    });
    let (status, dir, config_path) = d.stop_keep();
    assert!(status.success(), "{status:?}");

    // What the store says happened, and what the SMTP server received.
    let db = rusqlite::Connection::open(dir.path().join("state").join("thongsuot.db")).expect("store");
    let mut st = db.prepare("SELECT grp, target, since_ms, closed_ms FROM incidents ORDER BY id").expect("query");
    let incidents: Vec<(String, String, i64, Option<i64>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("incidents");
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let local = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let msgs = smtp.messages();
    // (target, since) -> (times told open, times told resolved)
    let mut count: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for m in &msgs {
        let subject = m["subject"].as_str().unwrap_or_default();
        let text = m["text"].as_str().unwrap_or_default();
        let first = subject.starts_with("[BREACH]");
        let resolution = subject.starts_with("[RESOLVED]");
        for (target, since, state) in told(text) {
            let e = count.entry((target, since)).or_default();
            if first {
                e.0 += 1;
                if state == "resolved" {
                    e.1 += 1;
                }
            } else if resolution {
                e.1 += 1;
            }
        }
    }
    let mut lost = Vec::new();
    let mut doubled = 0;
    for (group, target, since, closed) in &incidents {
        let (o, r) = count.get(&(target.clone(), local(*since))).copied().unwrap_or((0, 0));
        if o == 0 {
            lost.push(format!("{group}/{target} since {}: never told", local(*since)));
        }
        if closed.is_some() && r == 0 {
            lost.push(format!("{group}/{target} since {}: resolution never told", local(*since)));
        }
        doubled += o.saturating_sub(1) + r.saturating_sub(1);
    }
    eprintln!(
        "torture: seed {seed}, {crashes} crashes, {} incidents, {} e-mails received, {doubled} notices doubled, {} lost, {:.0} s",
        incidents.len(),
        msgs.len(),
        lost.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(incidents.len() >= crashes / 2, "the script made too few incidents to mean anything: {}", incidents.len());
    assert!(lost.is_empty(), "notices lost:\n{}", lost.join("\n"));
    assert!(doubled <= crashes, "{doubled} notices doubled in {crashes} crashes");

    // The ledger still verifies.
    let out =
        std::process::Command::new(binary()).args(["verify", "--config"]).arg(&config_path).output().expect("verify");
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
