//! The content checks of probes on arbitrary answers: HTTP status/body/JSON checks and DNS
//! answer decoding and checks. A verdict, never a panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use thongsuot::config::Config;
use thongsuot::probe::ProbeSpec;

const CONFIG: &str = r#"
[[group]]
name = "g"
[[target]]
name = "http"
group = "g"
kind = "http"
url = "http://127.0.0.1:1/"
body_regex = "ok|OK [0-9]+"
json_pointer = "/data/status"
json_equals = "200"
[[target]]
name = "dns"
group = "g"
kind = "dns"
server = "127.0.0.1:53"
query = "thi.example.vn"
record = "A"
expect_answer = ["127.0.0.9"]
"#;

fn specs() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::parse(Path::new("fuzz.toml"), CONFIG, &|_| None).expect("fuzz config"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (head, body) = data.split_at(2);
    let status = u16::from_be_bytes([head[0], head[1]]) % 600;
    for t in &specs().targets {
        match &t.spec {
            ProbeSpec::Http(s) => {
                let _ = thongsuot::probe::http::check(s, status, body);
            }
            ProbeSpec::Dns(s) => {
                if let Ok(Some(m)) = thongsuot::probe::dns::decode(data, u16::from_be_bytes([head[0], head[1]])) {
                    let _ = thongsuot::probe::dns::check(s, &m);
                }
            }
            _ => {}
        }
    }
});
