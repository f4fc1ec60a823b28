//! E-mail alerting against a real SMTP server (aiosmtpd): breach and resolved notices in both
//! languages, grouping of a 20-target outage, repeats, escalation and acknowledgement, an SMTP
//! outage, `kill -9` with a pending outbox, STARTTLS with AUTH, and `.eml` files without SMTP.

use std::time::Duration;

use chrono::Utc;

use crate::support::*;

const TOKEN: &str = "email-test-token-0123456789";

/// A config with one group `vnpt`; `targets` and `extra` are appended as TOML.
fn config(smtp_port: u16, group_extra: &str, targets: &str, extra: &str) -> String {
    format!(
        r#"
[daemon]
listen = "127.0.0.1:{{port}}"
state_dir = "state"
vantage = "vinhphuc-1"
api_token_env = "THONGSUOT_API_TOKEN"
public_url = "http://127.0.0.1:{{port}}"
grafana_url = "http://grafana.example.vn/d/thongsuot"

[defaults]
interval = "1s"
timeout = "500ms"
confirm = 2
recover = 1

[[group]]
name = "vnpt"
display_name = "VNPT Vĩnh Phúc"
contacts = ["noc", "so"]
contingency = "Chuyển sang đường truyền dự phòng; NOC 0211 000 000"
{group_extra}

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "thongsuot@vinhphuc.example.vn"
timeout = "3s"

[[contact]]
name = "noc"
emails = ["noc@vnpt.example.vn"]
language = "en"

[[contact]]
name = "so"
emails = ["sotttt@vinhphuc.example.vn"]
language = "vi"

[[contact]]
name = "boss"
emails = ["giamdoc@vinhphuc.example.vn"]
language = "vi"

{targets}
{extra}
"#
    )
}

fn tcp_target(name: &str, port: u16) -> String {
    format!("[[target]]\nname = \"{name}\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n")
}

#[test]
fn breach_and_resolved_reach_the_smtp_server_in_both_languages() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut sw = Switch::new();
    sw.on();
    let d =
        Daemon::start(&config(smtp.port, "", &tcp_target("vnpt-dns", sw.port), ""), &[("THONGSUOT_API_TOKEN", TOKEN)]);
    d.wait_until("target up", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "vnpt-dns")]) == Some(1.0)
    });

    let cut = sw.off();
    let msgs = smtp.wait_for("breach e-mails", Duration::from_secs(15), |m| m.len() >= 2);
    let en = with_subject(&msgs, "[BREACH] vnpt: vnpt-dns down since ", "noc@vnpt.example.vn");
    let vi = with_subject(&msgs, "[VI PHẠM] vnpt: vnpt-dns mất kết nối từ ", "sotttt@vinhphuc.example.vn");
    assert_eq!((en.len(), vi.len()), (1, 1), "one e-mail per language: {msgs:?}");
    let latency = en[0]["accepted_at"].as_f64().expect("time") - epoch(cut);
    eprintln!("outage → e-mail accepted: {latency:.2} s (interval 1 s, confirm 2)");
    assert!(latency < 2.0 + 1.0 + 1.5, "breach e-mail took {latency:.2} s");
    let text = en[0]["text"].as_str().expect("text part");
    for needle in [
        "vnpt-dns",
        "DOWN",
        "refused",
        "vinhphuc-1",
        "Chuyển sang đường truyền dự phòng",
        "/api/v1/incidents/",
        "grafana.example.vn",
        "availability in last-24h",
    ] {
        assert!(text.contains(needle), "breach text lacks {needle:?}:\n{text}");
    }
    assert!(en[0]["html"].as_str().is_some_and(|h| h.contains("VNPT Vĩnh Phúc")), "HTML part");
    assert_eq!(en[0]["content_type"], "multipart/alternative");
    let vi_text = vi[0]["text"].as_str().expect("text");
    assert!(vi_text.contains("GIÁN ĐOẠN") && vi_text.contains("Phương án dự phòng"), "{vi_text}");
    assert!(vi_text.contains("bị từ chối kết nối (refused)"), "the reason in Vietnamese words: {vi_text}");

    // The signed acknowledgement link works without a token, once, and stops reminders.
    let link = text
        .lines()
        .find_map(|l| l.split_once(": ").map(|(_, u)| u).filter(|u| u.contains("/ack?")))
        .expect("ack link");
    // A GET (what a mail scanner does) only shows the confirmation button; the POST acts.
    let (code, page) = blocking_request("GET", link, None, None).expect("ack page");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<form method=\"post\"") && !page.contains("Đã xác nhận tiếp nhận sự cố #"), "{page}");
    // It says which target the incident is about, and looks like the status page.
    assert!(page.contains("vnpt-dns — vnpt") && page.contains("đang diễn ra / ongoing"), "{page}");
    assert!(page.contains("<style>"), "unstyled: {page}");
    let listed = d.get("/api/v1/incidents").expect("incidents");
    assert!(listed.contains("\"acked_ms\":null"), "GET must not acknowledge: {listed}");
    let (code, page) = blocking_request("POST", link, None, None).expect("ack post");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Đã xác nhận"), "{page}");
    let tampered = link.replace("sig=", "sig=00");
    assert_eq!(blocking_request("POST", &tampered, None, None).map(|r| r.0), Some(403));

    std::thread::sleep(Duration::from_secs(2));
    let back = sw.on();
    let msgs = smtp.wait_for("resolved e-mails", Duration::from_secs(15), |m| m.len() >= 4);
    let resolved = with_subject(&msgs, "[RESOLVED] vnpt: vnpt-dns back after ", "noc@vnpt.example.vn");
    assert_eq!(resolved.len(), 1, "{msgs:?}");
    let true_down = (back - cut).num_milliseconds() as f64 / 1000.0;
    eprintln!("resolved subject: {} (true downtime {true_down:.1} s)", resolved[0]["subject"]);
    assert_eq!(
        with_subject(&msgs, "[ĐÃ KHÔI PHỤC] vnpt: vnpt-dns đã khôi phục sau ", "sotttt@vinhphuc.example.vn").len(),
        1
    );
    let m = d.metrics();
    assert_eq!(sample(&m, "thongsuot_notifications_total", &[("result", "sent")]), Some(4.0), "{m}");
    assert_eq!(sample(&m, "thongsuot_outbox_pending", &[]), Some(0.0));
    assert!(sample(&m, "thongsuot_notification_latency_seconds_count", &[]).is_some_and(|n| n >= 2.0));
    assert!(d.stop().success());
}

#[test]
fn a_20_target_carrier_outage_is_two_emails_not_twenty() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    // Twenty targets on ports where nothing listens: all down within a second or two.
    let targets: String = (0..20).map(|i| tcp_target(&format!("site-{i:02}"), free_port())).collect();
    let d = Daemon::start(&config(smtp.port, "group_interval = \"4s\"", &targets, ""), &[]);
    d.wait_until("all 20 down", Duration::from_secs(20), || {
        let m = d.metrics();
        (0..20).all(|i| sample(&m, "thongsuot_target_up", &[("target", &format!("site-{i:02}"))]) == Some(0.0))
    });
    std::thread::sleep(Duration::from_secs(6));
    let msgs = smtp.messages();
    let noc: Vec<_> = msgs
        .iter()
        .filter(|m| m["rcpt_tos"].as_array().is_some_and(|r| r.iter().any(|x| x == "noc@vnpt.example.vn")))
        .collect();
    let subjects: Vec<&str> = noc.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert_eq!(noc.len(), 2, "expected a breach and one follow-up: {subjects:?}");
    assert!(subjects[0].starts_with("[BREACH] vnpt: site-"), "{subjects:?}");
    assert_eq!(subjects[1], "[BREACH] vnpt: 19 more incidents (last-24h)", "{subjects:?}");
    let listed = noc[1]["text"].as_str().expect("text").matches("Target: site-").count();
    assert_eq!(listed, 19, "the follow-up lists every other target");
    assert!(d.stop().success());
}

#[test]
fn repeats_escalate_and_stop_when_acknowledged() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let group = "repeat_interval = \"2s\"\nescalate_after = \"3s\"\nescalate_to = [\"boss\"]";
    let d = Daemon::start(
        &config(smtp.port, group, &tcp_target("vnpt-core", free_port()), ""),
        &[("THONGSUOT_API_TOKEN", TOKEN)],
    );
    let msgs = smtp.wait_for("a repeat and an escalation", Duration::from_secs(20), |m| {
        !with_subject(m, "[STILL DOWN] vnpt: vnpt-core", "noc@vnpt.example.vn").is_empty()
            && !with_subject(m, "[BÁO CÁO CẤP TRÊN] vnpt: vnpt-core", "giamdoc@vinhphuc.example.vn").is_empty()
    });
    // Escalation goes to the escalation contact only, once.
    assert!(with_subject(&msgs, "[BÁO CÁO CẤP TRÊN]", "noc@vnpt.example.vn").is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(with_subject(&smtp.messages(), "[BÁO CÁO CẤP TRÊN]", "giamdoc@vinhphuc.example.vn").len(), 1);

    // Acknowledge through the API: reminders stop.
    let list = d.get("/api/v1/incidents").expect("incidents");
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    let id = v["incidents"][0]["id"].as_i64().expect("incident id");
    assert_eq!(
        blocking_request("POST", &d.url(&format!("/api/v1/incidents/{id}/ack")), None, None).map(|r| r.0),
        Some(401)
    );
    let (code, body) =
        blocking_request("POST", &d.url(&format!("/api/v1/incidents/{id}/ack")), Some(TOKEN), None).expect("ack");
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(Duration::from_millis(1500));
    let before = with_subject(&smtp.messages(), "[STILL DOWN]", "noc@vnpt.example.vn").len();
    std::thread::sleep(Duration::from_secs(5));
    let after = with_subject(&smtp.messages(), "[STILL DOWN]", "noc@vnpt.example.vn").len();
    assert_eq!(before, after, "reminders continued after the acknowledgement");
    assert!(d.stop().success());
}

#[test]
fn mail_survives_an_smtp_outage_and_a_kill_9() {
    let Some(mut smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    smtp.down();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut sw = Switch::new();
    sw.on();
    let d = Daemon::start(&config(smtp.port, "", &tcp_target("viettel-smsc", sw.port), ""), &[]);
    d.wait_until("up", Duration::from_secs(15), || {
        sample(&d.metrics(), "thongsuot_target_up", &[("target", "viettel-smsc")]) == Some(1.0)
    });

    // 1. The SMTP server is down when the outage happens: the mail waits, retried.
    sw.off();
    d.wait_until("retries while SMTP is down", Duration::from_secs(20), || {
        let m = d.metrics();
        sample(&m, "thongsuot_notifications_total", &[("result", "retry")]).is_some_and(|n| n >= 1.0)
            && sample(&m, "thongsuot_outbox_pending", &[]).is_some_and(|n| n >= 1.0)
    });
    // 2. The daemon is killed with mail still pending.
    let parts = d.kill9();
    // 3. SMTP comes back, then the daemon: the queued mail is delivered.
    smtp.up();
    let d = Daemon::restart(parts, &[]);
    let msgs = smtp.wait_for("the queued breach e-mails", Duration::from_secs(30), |m| m.len() >= 2);
    assert_eq!(
        with_subject(&msgs, "[BREACH] vnpt: viettel-smsc down since", "noc@vnpt.example.vn").len(),
        1,
        "{msgs:?}"
    );
    assert_eq!(with_subject(&msgs, "[VI PHẠM] vnpt: viettel-smsc", "sotttt@vinhphuc.example.vn").len(), 1, "{msgs:?}");

    // 4. The incident stayed open across the restart: its resolution is announced.
    sw.on();
    let msgs = smtp.wait_for("resolved after restart", Duration::from_secs(15), |m| {
        !with_subject(m, "[RESOLVED] vnpt: viettel-smsc back after", "noc@vnpt.example.vn").is_empty()
    });
    // The outage spans the kill: its observed length, and the time the daemon was dead beside it.
    let resolved = with_subject(&msgs, "[RESOLVED] vnpt: viettel-smsc back after", "noc@vnpt.example.vn");
    assert!(resolved[0]["subject"].as_str().is_some_and(|s| s.contains(" not observed)")), "{resolved:?}");
    assert!(d.stop().success());
}

#[test]
fn starttls_with_auth_and_a_permanent_refusal() {
    // A self-signed certificate for the SMTP server, trusted through smtp.ca_file.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("cert");
    let (cert, pkey) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).expect("cert");
    std::fs::write(&pkey, key.signing_key.serialize_pem()).expect("key");
    let opts = SmtpOptions {
        tls: Some((cert.clone(), pkey)),
        auth: Some("alerts:s3cret-pass".into()),
        reject_domain: Some("closed.example.vn".into()),
    };
    let Some(smtp) = SmtpServer::start(opts) else { return };
    let cfg = |password_env: &str| {
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nfrom = \"thongsuot@example.vn\"\nusername = \"alerts\"\npassword_env = \"{password_env}\"\nca_file = \"{}\"\n[[group]]\nname = \"vnpt\"\n[[target]]\nname = \"t\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
            smtp.port,
            cert.display()
        )
    };
    let file = dir.path().join("c.toml");
    std::fs::write(&file, cfg("SMTP_PW")).expect("config");
    let run = |to: &str, pw: &str| {
        std::process::Command::new(binary())
            .args(["test-email", "--lang", "vi", "--to", to, "--config"])
            .arg(&file)
            .env("SMTP_PW", pw)
            .output()
            .expect("test-email")
    };
    let ok = run("noc@vnpt.example.vn", "s3cret-pass");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let msgs = smtp.wait_for("the test e-mail", Duration::from_secs(10), |m| !m.is_empty());
    assert_eq!(msgs[0]["tls"], true);
    assert_eq!(msgs[0]["authenticated"], true);
    assert!(
        msgs[0]["subject"].as_str().is_some_and(|s| s.starts_with("[THỬ NGHIỆM] vnpt: t mất kết nối từ")),
        "{}",
        msgs[0]["subject"]
    );

    let bad = run("noc@vnpt.example.vn", "wrong");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("permanent"), "{}", String::from_utf8_lossy(&bad.stderr));
    let refused = run("x@closed.example.vn", "s3cret-pass");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("550"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn without_smtp_mail_is_written_as_eml_files_and_maintenance_silences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Utc::now();
    let local = |t: chrono::DateTime<Utc>| {
        t.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh).format("%Y-%m-%dT%H:%M:%S").to_string()
    };
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nconfirm = 2\n\
         [[group]]\nname = \"vnpt\"\ncontacts = [\"noc\"]\n[[group]]\nname = \"quiet\"\ncontacts = [\"noc\"]\n\
         [[contact]]\nname = \"noc\"\nemails = [\"noc@vnpt.example.vn\"]\n\
         [[target]]\nname = \"loud\"\ngroup = \"vnpt\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{p1}\"\n\
         [[target]]\nname = \"in-maintenance\"\ngroup = \"quiet\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{p2}\"\n\
         [[maintenance]]\nname = \"fibre work\"\ngroups = [\"quiet\"]\nstart = \"{start}\"\nend = \"{end}\"\n",
        port = "{port}",
        p1 = free_port(),
        p2 = free_port(),
        start = local(now - chrono::Duration::hours(1)),
        end = local(now + chrono::Duration::hours(1)),
    );
    let d = Daemon::start(&text, &[]);
    let mail_dir = d.dir.path().join("state/mail");
    d.wait_until("an .eml file", Duration::from_secs(20), || {
        std::fs::read_dir(&mail_dir).is_ok_and(|r| r.count() >= 1)
    });
    std::thread::sleep(Duration::from_secs(3));
    let files: Vec<_> = std::fs::read_dir(&mail_dir).expect("mail dir").filter_map(|e| e.ok()).collect();
    assert_eq!(files.len(), 1, "only the target outside maintenance is notified");
    let eml = std::fs::read_to_string(files[0].path()).expect("eml");
    assert!(eml.contains("To: noc@vnpt.example.vn") && eml.contains("multipart/alternative"), "{eml}");
    assert!(d.log_text().contains("written as .eml files"), "start-up must say where mail goes");
    let _ = dir;
    assert!(d.stop().success());
}

#[test]
fn daily_summary_goes_to_contacts_who_opt_in() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let now = Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh).format("%H:%M").to_string();
    let extra = format!(
        "[[contact]]\nname = \"daily\"\nemails = [\"tonghop@vinhphuc.example.vn\"]\nlanguage = \"vi\"\ndaily_summary = \"{now}\"\n"
    );
    let d = Daemon::start(&config(smtp.port, "", &tcp_target("vnpt-dns", free_port()), &extra), &[]);
    let msgs = smtp.wait_for("the daily summary", Duration::from_secs(20), |m| {
        !with_subject(m, "[TỔNG HỢP NGÀY]", "tonghop@vinhphuc.example.vn").is_empty()
    });
    let s = with_subject(&msgs, "[TỔNG HỢP NGÀY]", "tonghop@vinhphuc.example.vn");
    assert!(
        s[0]["text"].as_str().is_some_and(|t| t.contains("vnpt") && t.contains("Sự cố trong ngày")),
        "{}",
        s[0]["text"]
    );
    // Once a day, not once a tick.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(with_subject(&smtp.messages(), "[TỔNG HỢP NGÀY]", "tonghop@vinhphuc.example.vn").len(), 1);
    assert!(d.stop().success());
}

/// A clean stop delivers what was waiting for the end of a window, within the shutdown grace,
/// rather than leaving it for the next start.
#[test]
fn a_clean_stop_delivers_the_waiting_follow_up() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let (mut a, mut b) = (Switch::new(), Switch::new());
    a.on();
    b.on();
    let targets = tcp_target("vnpt-a", a.port) + &tcp_target("vnpt-b", b.port);
    let d = Daemon::start(&config(smtp.port, "group_interval = \"1m\"", &targets, ""), &[]);
    let up = |d: &Daemon, t: &str| sample(&d.metrics(), "thongsuot_target_up", &[("target", t)]);
    d.wait_until("both up", Duration::from_secs(15), || up(&d, "vnpt-a") == Some(1.0) && up(&d, "vnpt-b") == Some(1.0));
    a.off();
    smtp.wait_for("the first report", Duration::from_secs(15), |m| {
        !with_subject(m, "[BREACH] vnpt: vnpt-a down since", "noc@vnpt.example.vn").is_empty()
    });
    b.off();
    d.wait_until("the second down", Duration::from_secs(15), || up(&d, "vnpt-b") == Some(0.0));
    // Its report waits for the window's end, a minute away: the stop sends it.
    assert!(d.stop().success());
    let msgs = smtp.wait_for("the follow-up, sent during the stop", Duration::from_secs(5), |m| {
        !with_subject(m, "[BREACH] vnpt: 1 more incident", "noc@vnpt.example.vn").is_empty()
    });
    assert_eq!(with_subject(&msgs, "[BREACH] vnpt: 1 more incident", "noc@vnpt.example.vn").len(), 1);
}

/// `[smtp]` without `tls` against a plain server (no STARTTLS): `check` warns, and `test-email`
/// fails as permanent, saying to set `tls = "none"` — not as a transient failure retried for days.
#[test]
fn a_plain_server_without_tls_set_is_named_by_check_and_test_email() {
    let Some(smtp) = SmtpServer::start(SmtpOptions::default()) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"thongsuot@example.vn\"\n[[group]]\nname = \"g\"\n\
             [[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
            smtp.port
        ),
    )
    .expect("config");
    let check = std::process::Command::new(binary()).args(["check", "--config"]).arg(&file).output().expect("check");
    let said = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "a warning is not an error: {said}");
    assert!(said.contains("smtp.tls is not set") && said.contains("tls = \"none\""), "{said}");
    let out = std::process::Command::new(binary())
        .args(["test-email", "--to", "noc@example.vn", "--config"])
        .arg(&file)
        .output()
        .expect("test-email");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("set tls = \"none\"") && err.contains("(permanent"), "{err}");
}
