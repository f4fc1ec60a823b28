//! The tracking adapter on arbitrary bytes: single answers, batch answers and pushed events.
//! Whatever the bytes: a parse or a reason, never a panic; parsed events are in time order.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use thongsuot::config::{Config, PostalOperator};
use thongsuot::postal::adapter;

/// One operator in single mode, one in batch mode, as a config file describes them.
const CONFIG: &str = r#"
[postal]
[[postal.operator]]
name = "vnpost"
track_url = "http://127.0.0.1:1/{tracking}"
status_pointer = "/data/status"
events_pointer = "/data/events"
[postal.operator.status_map]
"DELIVERED" = "delivered"
"IN_TRANSIT" = "in_transit"
"LOST" = "lost"
[[postal.operator]]
name = "batch"
track_url = "http://127.0.0.1:1/?ids={tracking}"
status_pointer = "/status"
events_pointer = "/events"
batch_size = 10
items_pointer = "/items"
"#;

fn operators() -> &'static (PostalOperator, PostalOperator) {
    static O: OnceLock<(PostalOperator, PostalOperator)> = OnceLock::new();
    O.get_or_init(|| {
        let c = Config::parse(Path::new("fuzz.toml"), CONFIG, &|_| None).expect("fuzz config");
        let ops = c.postal.expect("postal").operators;
        (ops[0].clone(), ops[1].clone())
    })
}

fuzz_target!(|data: &[u8]| {
    let (op, batch) = operators();
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    if let Ok(p) = adapter::parse(op, data, tz) {
        assert!(p.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(p.events.len() <= adapter::MAX_EVENTS);
    }
    if let Ok(items) = adapter::parse_batch(batch, data, tz) {
        for (_, r) in items {
            if let Ok(p) = r {
                assert!(p.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            }
        }
    }
    let _ = adapter::parse_push(op, data, tz);
});
