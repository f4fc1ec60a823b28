//! A small load guard for CI (the full benchmark is `bench/bench.py`): 1,000 TCP targets at a
//! 1 s interval against one loopback listener. Checks counts and ratios, never absolute times:
//! no false failures, at least 90 % of the scheduled probes run.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_thousand_probes_per_second_without_false_failures() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt.block_on(TcpServer::start(None));
    let _guard = rt.enter();
    let n = 1000;
    let mut text = String::from(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nper_target_histograms = false\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n[[group]]\nname = \"load\"\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[target]]\nname = \"site-{i}\"\ngroup = \"load\"\nkind = \"tcp\"\naddress = \"{}\"\n",
            listener.addr
        ));
    }
    let d = Daemon::start(&text, &[]);
    let total = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("thongsuot_probes_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let ok = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("thongsuot_probes_total{") && l.contains("result=\"success\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    // Skip the first interval (targets start at their phase), then measure 5 s.
    std::thread::sleep(Duration::from_secs(2));
    let a = d.metrics();
    let t = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let b = d.metrics();
    let secs = t.elapsed().as_secs_f64();
    let ran = total(&b) - total(&a);
    let failed = ran - (ok(&b) - ok(&a));
    eprintln!("{ran} probes in {secs:.1} s ({:.0}/s scheduled {n}/s), {failed} failed", ran / secs);
    assert_eq!(failed, 0.0, "healthy targets reported failed under load");
    assert!(ran >= 0.9 * n as f64 * 5.0, "only {ran} probes ran of {} scheduled", n * 5);
    assert!(d.stop().success());
}
