//! The command line as an operator uses it: `check` output and exit codes.

use std::process::Command;

use crate::support::{binary, repo_path};

#[test]
fn check_accepts_the_demo_and_rejects_bad_configs_with_exit_1() {
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(repo_path("config/demo.toml"))
        .env_remove("THONGSUOT_API_TOKEN")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // ICMP needs privileges; when not root, check says so with exit 2.
    if out.status.code() == Some(2) {
        assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    } else {
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("OK: 6 targets ("), "{stdout}");
        // The unset token is a warning, not an error.
        assert!(stderr.contains("warning:") && stderr.contains("THONGSUOT_API_TOKEN"), "{stderr}");
    }

    let out = Command::new(binary())
        .current_dir(repo_path(""))
        .args(["check", "--config", "tests/fixtures/bad/many_errors.toml"])
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("tests/fixtures/bad/many_errors.toml:5:11: "), "{stderr}");
    assert!(stderr.trim_end().ends_with("8 errors"), "{stderr}");

    let out = Command::new(binary()).args(["check", "--config", "/nonexistent/thongsuot.toml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/thongsuot.toml"));
}

#[test]
fn run_refuses_an_invalid_config_and_a_taken_port() {
    let out = Command::new(binary())
        .current_dir(repo_path(""))
        .args(["run", "--config", "tests/fixtures/bad/unknown_key.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_key.toml:2:1: unknown key `intervall`"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n"),
    )
    .expect("write");
    let out = Command::new(binary()).args(["run", "--config"]).arg(&cfg).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on 127.0.0.1:{port}")));
}

#[test]
fn a_damaged_store_is_named_with_what_to_do_and_backups_work_online() {
    // A store file that is not a database: a clear error, exit 2, nothing overwritten.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    let db = dir.path().join("state/thongsuot.db");
    std::fs::write(&db, vec![0x42u8; 8192]).expect("garbage");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[daemon]\nlisten = \"127.0.0.1:{}\"\nstate_dir = \"state\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n", crate::support::free_port()),
    )
    .expect("config");
    let out = Command::new(binary()).args(["run", "--config"]).arg(&cfg).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("thongsuot.db") && err.contains("damaged"), "{err}");
    assert_eq!(std::fs::read(&db).expect("db"), vec![0x42u8; 8192], "the damaged file must be left as it was");

    // Online backup of a running daemon's store.
    let d = crate::support::Daemon::start(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        &[],
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let copy = d.dir.path().join("copy.db");
    let out = d.command(&["backup", "--to", copy.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conn = rusqlite::Connection::open(&copy).expect("open copy");
    let runs: i64 = conn.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0)).expect("runs");
    assert_eq!(runs, 1);
    let again = d.command(&["backup", "--to", copy.to_str().expect("utf-8 path")]);
    assert_eq!(again.status.code(), Some(1), "an existing file is not overwritten");
    assert!(d.stop().success());
}
