//! The daemon's own health in `/readyz`: a full disk (a small tmpfs the test mounts) makes the
//! store unwritable — reported, survived, and nothing recorded meanwhile is lost once there is
//! room again; past saturation the scheduler says it is overloaded and never fails healthy
//! targets for it.

use std::time::Duration;

use crate::support::*;

fn readyz(d: &Daemon) -> (u16, String) {
    blocking_request("GET", &d.url("/readyz"), None, None).unwrap_or((0, String::new()))
}

#[test]
fn a_full_disk_is_reported_survived_and_loses_nothing() {
    if !require_root("mounting a tmpfs") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let disk = tempfile::tempdir().expect("tempdir");
    let mnt = disk.path().to_string_lossy().to_string();
    if let Err(e) = sh(&["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", &mnt]) {
        assert!(!in_ci(), "cannot mount a tmpfs: {e}");
        eprintln!("SKIP: cannot mount a tmpfs ({e}); skipped because CI is unset");
        return;
    }
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = sh(&["umount", "-l", &self.0]);
        }
    }
    let _unmount = Unmount(mnt.clone());
    let mut sw = Switch::new();
    sw.on();
    let config = format!(
        "[daemon]\nlisten = \"127.0.0.1:{{port}}\"\nstate_dir = \"{mnt}/state\"\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nconfirm = 2\nrecover = 1\n\
         [[group]]\nname = \"vnpt\"\n[[target]]\nname = \"vnpt-dns\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
        sw.port
    );
    let d = Daemon::start(&config, &[]);
    let up = |d: &Daemon| sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpt-dns")]);
    d.wait_until("up", Duration::from_secs(15), || up(&d) == Some(1.0));
    assert_eq!(readyz(&d).0, 200);

    // Fill the disk, then make the daemon write: an outage opens.
    let fill = format!("{mnt}/fill");
    let _ = std::process::Command::new("dd").args(["if=/dev/zero", &format!("of={fill}"), "bs=64k"]).output();
    sw.off();
    d.wait_until("down", Duration::from_secs(15), || up(&d) == Some(0.0));
    d.wait_until("readyz says the store cannot write", Duration::from_secs(20), || {
        let (code, body) = readyz(&d);
        code == 503 && body.contains("store: cannot write")
    });
    let (_, body) = readyz(&d);
    eprintln!("/readyz with a full disk: {}", body.trim());
    assert!(sample(&d.metrics(), "thongsuot_store_errors_total", &[]).is_some_and(|n| n >= 1.0));
    // Still probing and still serving.
    sw.on();
    d.wait_until("up again", Duration::from_secs(15), || up(&d) == Some(1.0));

    // Room again: the retried batch lands and /readyz is green.
    std::fs::remove_file(&fill).expect("free the disk");
    d.wait_until("store writable again", Duration::from_secs(30), || readyz(&d).0 == 200);
    let (status, dir, cfg) = d.stop_keep();
    assert!(status.success());
    let out = std::process::Command::new(binary())
        .args(["report", "--format", "json", "--config"])
        .arg(&cfg)
        .output()
        .expect("report");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report json");
    let rows = report["groups"][0]["targets"][0]["figures"]["outage_rows"].as_array().map(Vec::len);
    assert_eq!(rows, Some(1), "the outage recorded while the disk was full is in the store: {}", report["groups"][0]);
    let verify = std::process::Command::new(binary()).args(["verify", "--config"]).arg(&cfg).output().expect("verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    drop(dir);
}

#[test]
fn past_saturation_the_scheduler_says_so_and_fails_no_healthy_target() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    // Every answer takes 300 ms; 12 targets every second, one probe at a time: 3.6 s of work per second.
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "ok"
        }),
    );
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut config = String::from(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nmax_in_flight = 1\n[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\nconfirm = 2\n[[group]]\nname = \"g\"\n",
    );
    for i in 0..12 {
        config.push_str(&format!(
            "[[target]]\nname = \"t{i}\"\ngroup = \"g\"\nkind = \"http\"\nurl = \"http://{addr}/slow\"\n"
        ));
    }
    let d = Daemon::start(&config, &[]);
    d.wait_until("overload reported", Duration::from_secs(40), || {
        let (code, body) = readyz(&d);
        code == 503 && body.contains("overloaded")
    });
    let (_, body) = readyz(&d);
    eprintln!("/readyz past saturation: {}", body.trim());
    assert!(d.log_text().contains("overloaded"), "the log says so");
    let m = d.metrics();
    assert!(sample(&m, "thongsuot_probes_skipped_total", &[]).is_some_and(|n| n > 0.0), "slots skipped");
    for i in 0..12 {
        let t = format!("t{i}");
        assert_ne!(sample(&m, "thongsuot_target_up", &[("target", &t)]), Some(0.0), "{t} reported down");
        assert_eq!(
            sample(&m, "thongsuot_probes_total", &[("target", &t), ("result", "timeout")]),
            None,
            "{t}: a late probe counted as a failure"
        );
    }
    assert!(d.stop().success());
}

#[test]
fn guessing_the_token_is_refused_after_twenty_tries_a_minute() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let token = "the-right-token-0123456789abcdef";
    let d = Daemon::start(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\napi_token_env = \"THONGSUOT_API_TOKEN\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        &[("THONGSUOT_API_TOKEN", token)],
    );
    // A minute boundary in the middle would reset the count: start early in a minute.
    let s = chrono::Utc::now().timestamp() % 60;
    if s > 45 {
        std::thread::sleep(Duration::from_secs((61 - s) as u64));
    }
    let reload = d.url("/-/reload");
    let codes: Vec<u16> = (0..22)
        .map(|i| blocking_request("POST", &reload, Some(&format!("guess-{i}")), None).map_or(0, |r| r.0))
        .collect();
    assert!(codes[..20].iter().all(|c| *c == 401), "{codes:?}");
    assert_eq!(&codes[20..], &[429, 429], "{codes:?}");
    // The right token does not help from that address for the rest of the minute...
    assert_eq!(blocking_request("POST", &reload, Some(token), None).map(|r| r.0), Some(429));
    // ...but its monitoring endpoints still answer.
    assert_eq!(readyz(&d).0, 200);
    assert!(d.get("/metrics").is_some());
    assert!(d.log_text().contains("failed authentications in a minute"));
    assert!(d.stop().success());
}
