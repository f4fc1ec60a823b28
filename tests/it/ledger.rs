//! The tamper-evident ledger: a real run with an outage, its incident and e-mails verifies;
//! shortening the outage in the store, or deleting its incident, is found by `thongsuot verify`
//! and named. Reports print the ledger entry they were built from.

use std::time::Duration;

use crate::support::*;

const CONFIG: &str = r#"
[daemon]
listen = "127.0.0.1:{port}"
state_dir = "state"
[defaults]
interval = "1s"
timeout = "500ms"
confirm = 2
recover = 1
[[group]]
name = "vnpt"
contacts = ["noc"]
[[contact]]
name = "noc"
emails = ["noc@vnpt.example.vn"]
"#;

#[test]
fn verify_finds_a_shortened_outage_and_a_deleted_incident() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut sw = Switch::new();
    sw.on();
    let target = format!(
        "[[target]]\nname = \"vnpt-dns\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
        sw.port
    );
    let d = Daemon::start(&format!("{CONFIG}{target}"), &[]);
    d.wait_until("up", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpt-dns")]) == Some(1.0)
    });
    sw.off();
    d.wait_until("down", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpt-dns")]) == Some(0.0)
    });
    std::thread::sleep(Duration::from_secs(2));
    sw.on();
    d.wait_until("up again", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpt-dns")]) == Some(1.0)
    });
    // The breach and resolved e-mails written as .eml files (no [smtp]): queued and sent.
    d.wait_until("e-mails written", Duration::from_secs(15), || {
        std::fs::read_dir(d.dir.path().join("state/mail")).map(|r| r.count() >= 2).unwrap_or(false)
    });
    let (status, dir, config) = d.stop_keep();
    assert!(status.success());
    let d = Reopened { dir, config };

    let (code, said) = d.verify();
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("ledger OK"), "{said}");
    let report = d.command(&["report", "--lang", "en"]);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("Ledger: built from entry #"), "{text}");

    // Shorten the outage behind the daemon's back.
    let db = rusqlite::Connection::open(d.dir.path().join("state/thongsuot.db")).expect("db");
    let n = db
        .execute("UPDATE intervals SET end_ms = start_ms + 10 WHERE target = 'vnpt-dns' AND kind = 'outage'", [])
        .expect("edit");
    assert_eq!(n, 1);
    let (code, said) = d.verify();
    assert_eq!(code, 3, "{said}");
    assert!(said.contains("its end was changed") && said.contains("vnpt-dns"), "{said}");
    eprintln!("{said}");

    // Delete the incident too.
    let n = db.execute("DELETE FROM incidents WHERE target = 'vnpt-dns'", []).expect("delete");
    assert!(n >= 1);
    let (code, said) = d.verify();
    assert_eq!(code, 3);
    assert!(said.contains("incident") && said.contains("deleted"), "{said}");
}

/// A stopped daemon's directory and config, for the offline commands.
struct Reopened {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Reopened {
    fn command(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(binary())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run thongsuot")
    }

    fn verify(&self) -> (i32, String) {
        let out = self.command(&["verify"]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    }
}
