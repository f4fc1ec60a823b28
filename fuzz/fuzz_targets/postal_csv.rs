//! The consignments CSV loader on arbitrary bytes: rows load or are reported with a line
//! number, never a panic; every loaded consignment has a deadline after its acceptance.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use thongsuot::config::Config;

const CONFIG: &str = r#"
[daemon]
timezone = "Asia/Ho_Chi_Minh"
[[contact]]
name = "so"
emails = ["so@example.vn"]
[postal]
[[postal.operator]]
name = "vnpost"
track_url = "http://127.0.0.1:1/{tracking}"
status_pointer = "/status"
standard = "J+2"
[[postal.operator]]
name = "viettelpost"
track_url = "http://127.0.0.1:1/{tracking}"
status_pointer = "/status"
"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::parse(Path::new("fuzz.toml"), CONFIG, &|_| None).expect("fuzz config"))
}

fuzz_target!(|data: &[u8]| {
    let (ok, errors) = thongsuot::postal::intake::read_csv(data, "fuzz.csv", config(), chrono::Utc::now());
    for c in &ok {
        assert!(c.deadline_ms > c.accepted_ms);
    }
    for e in &errors {
        assert!(e.starts_with("fuzz.csv"));
    }
});
