//! Test messages through Debian's Kannel (bearerbox + smsbox, `smsc = fake`) and kannel-extras'
//! fakesmsc as the SMS centre, all on loopback: confirmed by Kannel's delivery report, and by the
//! message arriving back as an MO message (fakesmsc injects it, smsbox `get-url` forwards it to
//! `/api/v1/sms/inbound`); a gateway that refuses (wrong password), and a message that never
//! arrives.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const TOKEN: &str = "sms-test-token-0123456789abcdef";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

struct Kannel {
    _bearer: Proc,
    _smsbox: Proc,
    fake_port: u16,
    _dir: tempfile::TempDir,
}

fn kannel(sendsms: u16, daemon: u16) -> Kannel {
    let dir = tempfile::tempdir().expect("tempdir");
    let (admin, smsbox, fake) = (free_port(), free_port(), free_port());
    let conf = dir.path().join("kannel.conf");
    std::fs::write(
        &conf,
        format!(
            "group = core\nadmin-port = {admin}\nadmin-password = adm\nsmsbox-port = {smsbox}\nadmin-interface = 127.0.0.1\nbox-allow-ip = 127.0.0.1\ndlr-storage = internal\n\
             log-level = 4\n\n\
             group = smsc\nsmsc = fake\nsmsc-id = fake1\nport = {fake}\nconnect-allow-ip = 127.0.0.1\n\n\
             group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {smsbox}\nsendsms-port = {sendsms}\nsendsms-interface = 127.0.0.1\nlog-level = 4\n\n\
             group = sendsms-user\nusername = monitor\npassword = pw\nuser-allow-ip = 127.0.0.1\n\n\
             group = sms-service\nkeyword = default\nget-url = \"http://127.0.0.1:{daemon}/api/v1/sms/inbound?token={TOKEN}&from=%p&to=%P&text=%a\"\ncatch-all = yes\nmax-messages = 0\n"
        ),
    )
    .expect("kannel.conf");
    let spawn = |bin: &str| {
        Proc(
            Command::new(bin)
                .arg(&conf)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{bin}: {e}")),
        )
    };
    let bearer = spawn("bearerbox");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", smsbox)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(15), "bearerbox did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let sms = spawn("smsbox");
    while std::net::TcpStream::connect(("127.0.0.1", sendsms)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "smsbox did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Kannel { _bearer: bearer, _smsbox: sms, fake_port: fake, _dir: dir }
}

/// fakesmsc connected as the SMSC; its output (the MT messages) goes to `log`.
fn fakesmsc(port: u16, log: &Path, args: &[&str]) -> Proc {
    let out = std::fs::File::create(log).expect("log");
    let err = out.try_clone().expect("log");
    Proc(
        Command::new(FAKESMSC)
            .args(["-H", "127.0.0.1", "-r", &port.to_string()])
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("fakesmsc"),
    )
}

/// The nonce of the latest test message to `to` in a fakesmsc log.
fn nonce_for(log: &Path, to: &str) -> Option<String> {
    let f = std::fs::File::open(log).ok()?;
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            if !l.contains(to) {
                return None;
            }
            let i = l.find("thongsuot test ")?;
            l[i + "thongsuot test ".len()..].split(|c: char| !c.is_ascii_hexdigit()).next().map(str::to_string)
        })
        .last()
}

#[test]
fn test_messages_through_kannel() {
    if !require_tool("bearerbox", "kannel") || !require_tool(FAKESMSC, "kannel-extras") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let sendsms = free_port();
    let target = |name: &str, to: &str, extra: &str| {
        format!(
            "[[target]]\nname = \"{name}\"\ngroup = \"viettel\"\nkind = \"sms\"\ngateway = \"kannel\"\nurl = \"http://127.0.0.1:{sendsms}/cgi-bin/sendsms\"\n\
             username = \"monitor\"\nfrom = \"8088\"\nto = \"{to}\"\ndaily_cap = 5000\n{extra}\n"
        )
    };
    // The templated HTTP gateway, here against the same Kannel.
    let http_target = format!(
        "[[target]]\nname = \"sms-http\"\ngroup = \"viettel\"\nkind = \"sms\"\ngateway = \"http\"\nto = \"0912345671\"\ndeadline = \"5s\"\ninterval = \"20s\"\ndaily_cap = 5000\n\
             url = \"http://127.0.0.1:{sendsms}/cgi-bin/sendsms?username=monitor&password=pw&from=8088&to={{to}}&text={{text}}&dlr-mask=31&dlr-url={{dlr_url}}\"\n"
    );
    let config = format!(
        "[daemon]\nlisten = \"127.0.0.1:{{port}}\"\nstate_dir = \"state\"\napi_token_env = \"THONGSUOT_API_TOKEN\"\npublic_url = \"http://127.0.0.1:{{port}}\"\n\
         [defaults]\nconfirm = 1\nrecover = 1\n[[group]]\nname = \"viettel\"\n{}{}{}{}",
        target("sms-dlr", "0912345678", "password_env = \"SMS_PW\"\ndeadline = \"5s\"\ninterval = \"20s\""),
        target(
            "sms-inbound",
            "0912345679",
            "password_env = \"SMS_PW\"\ndeadline = \"8s\"\nconfirm_by = \"inbound\"\ninterval = \"25s\""
        ),
        target("sms-badpw", "0912345670", "password_env = \"SMS_BAD_PW\"\ndeadline = \"5s\"\ninterval = \"20s\""),
        http_target,
    );
    let d = Daemon::start(&config, &[("THONGSUOT_API_TOKEN", TOKEN), ("SMS_PW", "pw"), ("SMS_BAD_PW", "nope")]);
    let k = kannel(sendsms, d.port);
    let logs = tempfile::tempdir().expect("tempdir");
    let mt_log = logs.path().join("mt.log");
    let mt = fakesmsc(k.fake_port, &mt_log, &["-m", "0", "1 2 text x"]);
    let m = |t: &str, result: &str| {
        sample(&d.metrics(), "thongsuot_probes_total", &[("target", t), ("result", result)]).unwrap_or(0.0)
    };

    // Confirmed by Kannel's delivery report.
    d.wait_until("a delivery report", Duration::from_secs(60), || m("sms-dlr", "success") >= 1.0);
    let metrics = d.metrics();
    let dlr = sample(&metrics, "thongsuot_sms_delivery_report_seconds_sum", &[("target", "sms-dlr")]).unwrap_or(-1.0);
    eprintln!("SMS confirmed by delivery report: {dlr:.3} s after submit");
    assert!((0.0..5.0).contains(&dlr));

    d.wait_until("the templated gateway confirmed", Duration::from_secs(60), || m("sms-http", "success") >= 1.0);

    // A wrong password: the gateway refuses.
    d.wait_until("the refusal", Duration::from_secs(60), || m("sms-badpw", "status") >= 1.0);
    let t: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/targets/sms-badpw").expect("target")).expect("json");
    let why = t["target"]["last_failure"].as_str().unwrap_or("").to_string();
    eprintln!("wrong password: {why}");
    assert!(why.contains("gateway refused the message"), "{why}");

    // Confirmed by the message coming back: the test waits for a fresh MT message to the test
    // SIM at the fake SMSC, then injects it as an MO message from the SIM (fakesmsc takes one
    // client at a time) while its probe still waits.
    let old = nonce_for(&mt_log, "0912345679");
    let mut nonce = None;
    let start = Instant::now();
    while nonce.is_none() && start.elapsed() < Duration::from_secs(60) {
        nonce = nonce_for(&mt_log, "0912345679").filter(|n| Some(n) != old.as_ref());
        std::thread::sleep(Duration::from_millis(50));
    }
    let nonce = nonce.expect("the inbound target's message reached the fake SMSC");
    drop(mt);
    let mo_log = logs.path().join("mo.log");
    let mo = fakesmsc(k.fake_port, &mo_log, &["-m", "1", &format!("0912345679 8088 text thongsuot test {nonce}")]);
    let before = m("sms-inbound", "success");
    d.wait_until("the inbound message", Duration::from_secs(30), || m("sms-inbound", "success") > before);
    let e2e = sample(&d.metrics(), "thongsuot_sms_delivery_seconds_sum", &[("target", "sms-inbound")]).unwrap_or(-1.0);
    eprintln!("SMS confirmed by arrival at the test SIM: {e2e:.3} s after submit");
    drop(mo);
    // The dashboard's SMS panels, on these messages through a real Prometheus.
    crate::dashboards::check_live(
        d.port,
        crate::dashboards::CALLS,
        |q| !q.contains("thongsuot_call") && !q.contains("kind=\"call\""),
        "count_over_time(thongsuot_sms_delivery_seconds_count[1m]) >= 3",
    );

    // With no SMSC to deliver and nothing coming back, the next messages are not confirmed.
    d.wait_until("an unconfirmed message", Duration::from_secs(60), || m("sms-inbound", "timeout") >= 1.0);
    let t: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/targets/sms-inbound").expect("target")).expect("json");
    let why = t["target"]["last_failure"].as_str().unwrap_or("").to_string();
    eprintln!("never arrived: {why}");
    assert!(why.contains("did not arrive at the test SIM"), "{why}");
    // And with no SMSC, no delivery report says delivered either.
    d.wait_until("an unreported message", Duration::from_secs(60), || m("sms-dlr", "timeout") >= 1.0);
    let t: serde_json::Value = serde_json::from_str(&d.get("/api/v1/targets/sms-dlr").expect("target")).expect("json");
    let why = t["target"]["last_failure"].as_str().unwrap_or("").to_string();
    eprintln!("no delivery report: {why}");
    assert!(why.contains("delivery report"), "{why}");
    let text = String::from_utf8_lossy(&d.command(&["report", "--lang", "en"]).stdout).to_string();
    let line =
        text.lines().find(|l| l.starts_with("sms-dlr") && l.contains("SMS completion")).unwrap_or_default().to_string();
    eprintln!("report: {line}");
    assert!(line.contains("SMS completion"), "{text}");
    assert!(d.stop().success());
}
