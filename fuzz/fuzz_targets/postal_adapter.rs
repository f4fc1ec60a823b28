//! The tracking adapter on arbitrary bytes: single answers, batch answers and pushed events.
//! Whatever the bytes: a parse or a reason, never a panic; parsed events are in time order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thongsuot::config::PostalOperator;
use thongsuot::postal::adapter;

fn operator() -> PostalOperator {
    let mut status_map = std::collections::BTreeMap::new();
    for (k, v) in [("DELIVERED", "delivered"), ("IN_TRANSIT", "in_transit"), ("LOST", "lost")] {
        status_map.insert(k.to_string(), v.to_string());
    }
    PostalOperator {
        name: "vnpost".into(),
        group: "vnpost".into(),
        api_target: "vnpost-tracking-api".into(),
        track_url: "http://127.0.0.1:1/{tracking}".into(),
        method: reqwest::Method::GET,
        headers: Vec::new(),
        poll: std::time::Duration::from_secs(60),
        timeout: std::time::Duration::from_secs(5),
        status_pointer: "/data/status".into(),
        events_pointer: Some("/data/events".into()),
        event_status_field: "status".into(),
        event_time_field: "time".into(),
        event_location_field: "location".into(),
        status_map,
        standard_days: Some(2),
        rate_limit: None,
        concurrency: 2,
        webhook_secret: None,
        batch_size: 10,
        batch_separator: ",".into(),
        items_pointer: Some("/items".into()),
        item_tracking_pointer: "/tracking".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let op = operator();
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    if let Ok(p) = adapter::parse(&op, data, tz) {
        assert!(p.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(p.events.len() <= adapter::MAX_EVENTS);
    }
    if let Ok(items) = adapter::parse_batch(&op, data, tz) {
        for (_, r) in items {
            if let Ok(p) = r {
                assert!(p.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            }
        }
    }
    let _ = adapter::parse_push(&op, data, tz);
});
