//! The generic JSON tracking adapter: JSON Pointers into an operator's answer, a status map to
//! the normalised vocabulary. Pure functions over bytes, so they can be tested and fuzzed
//! without a server. Whatever the bytes, the answer is a [`Parsed`] or a reason, never a panic.

use chrono_tz::Tz;
use serde_json::Value;

use super::deadline::{from_epoch, parse_when};
use super::{TrackEvent, Tracking};
use crate::config::PostalOperator;

/// The most a tracking answer may weigh; more is refused, not parsed.
pub const MAX_BODY: usize = 1 << 20;
/// Events kept per answer (the newest); a consignment does not need more history than this.
pub const MAX_EVENTS: usize = 200;

/// One tracking number's answer in a batch: parsed, or the reason it is not usable.
pub type Answer = (String, Result<Parsed, String>);
/// One pushed event for a tracking number, or the reason it was refused.
pub type PushedEvent = (String, Result<TrackEvent, String>);

/// What one consignment's tracking answer says.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub status: Tracking,
    /// The operator's own status word.
    pub raw: String,
    /// Oldest first.
    pub events: Vec<TrackEvent>,
}

impl Parsed {
    /// When it was delivered, per the events (the first `delivered` event).
    pub fn delivered_ms(&self) -> Option<i64> {
        self.events.iter().find(|e| e.status == Tracking::Delivered).map(|e| e.at_ms)
    }

    pub fn last_event(&self) -> Option<&TrackEvent> {
        self.events.last()
    }
}

/// Maps an operator's status word: the status map (exact, then ignoring case), else the word
/// itself when it is already one of the vocabulary.
pub fn map_status(op: &PostalOperator, raw: &str) -> Tracking {
    if let Some(v) = op.status_map.get(raw) {
        return Tracking::parse(v).unwrap_or(Tracking::Unknown);
    }
    if let Some((_, v)) = op.status_map.iter().find(|(k, _)| k.eq_ignore_ascii_case(raw)) {
        return Tracking::parse(v).unwrap_or(Tracking::Unknown);
    }
    Tracking::parse(&raw.to_ascii_lowercase()).unwrap_or(Tracking::Unknown)
}

/// The most a push may weigh (many events in one call).
pub const MAX_PUSH: usize = 8 << 20;

fn decode(body: &[u8]) -> Result<Value, String> {
    decode_at_most(body, MAX_BODY)
}

fn decode_at_most(body: &[u8], limit: usize) -> Result<Value, String> {
    if body.len() > limit {
        return Err(format!("answer larger than {} KiB", limit / 1024));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("empty answer".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))
}

/// A scalar as text: strings as they are, numbers and booleans written out.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses the answer for one consignment (single mode).
pub fn parse(op: &PostalOperator, body: &[u8], tz: Tz) -> Result<Parsed, String> {
    parse_value(op, &decode(body)?, tz)
}

/// Parses one consignment's object: `status_pointer` and `events_pointer` are read in it.
pub fn parse_value(op: &PostalOperator, v: &Value, tz: Tz) -> Result<Parsed, String> {
    let found = v.pointer(&op.status_pointer).ok_or_else(|| format!("no status at {}", op.status_pointer))?;
    let raw =
        scalar(found).ok_or_else(|| format!("status at {} is {}, not a string", op.status_pointer, kind_of(found)))?;
    let mut events = Vec::new();
    if let Some(p) = op.events_pointer.as_deref().filter(|p| !p.is_empty()) {
        match v.pointer(p) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    events.push(event(op, item, tz).map_err(|e| format!("event {} at {p}: {e}", i + 1))?);
                }
            }
            Some(other) => return Err(format!("events at {p} are {}, not an array", kind_of(other))),
        }
    }
    events.sort_by_key(|e| e.at_ms);
    if events.len() > MAX_EVENTS {
        events.drain(..events.len() - MAX_EVENTS);
    }
    Ok(Parsed { status: map_status(op, &raw), raw, events })
}

/// One event object: `event_status_field`, `event_time_field`, `event_location_field`.
pub fn event(op: &PostalOperator, item: &Value, tz: Tz) -> Result<TrackEvent, String> {
    let obj = item.as_object().ok_or_else(|| format!("is {}, not an object", kind_of(item)))?;
    let raw = match obj.get(&op.event_status_field) {
        Some(v) => scalar(v).ok_or_else(|| format!("{} is {}, not a string", op.event_status_field, kind_of(v)))?,
        None => return Err(format!("has no {:?}", op.event_status_field)),
    };
    let at = match obj.get(&op.event_time_field) {
        Some(Value::String(s)) => parse_when(s, tz).map_err(|e| format!("{}: {e}", op.event_time_field))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(from_epoch)
            .ok_or_else(|| format!("{}: {n} is not a plausible Unix time", op.event_time_field))?,
        Some(v) => return Err(format!("{} is {}, not a timestamp", op.event_time_field, kind_of(v))),
        None => return Err(format!("has no {:?}", op.event_time_field)),
    };
    let location = obj.get(&op.event_location_field).and_then(scalar).filter(|s| !s.is_empty());
    Ok(TrackEvent {
        at_ms: at.timestamp_millis(),
        status: map_status(op, &raw),
        raw: clip(&raw),
        location: location.map(|l| clip(&l)),
    })
}

/// Keeps stored words to a sane length whatever an operator sends.
fn clip(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Parses a batch answer: the array at `items_pointer`, each item naming its tracking number
/// at `item_tracking_pointer`. Items that do not parse carry their own reason.
pub fn parse_batch(op: &PostalOperator, body: &[u8], tz: Tz) -> Result<Vec<Answer>, String> {
    let v = decode(body)?;
    let p = op.items_pointer.as_deref().unwrap_or("");
    let items = match v.pointer(p) {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("items at {p:?} are {}, not an array", kind_of(other))),
        None => return Err(format!("no items at {p:?}")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(tracking) = item.pointer(&op.item_tracking_pointer).and_then(scalar) else {
            tracing::debug!(operator = %op.name, item = i, "batch item without a tracking number");
            continue;
        };
        out.push((tracking, parse_value(op, item, tz)));
    }
    Ok(out)
}

/// Pushed events (the webhook): one object or an array of objects, each with the tracking
/// number at `item_tracking_pointer` and the event fields.
pub fn parse_push(op: &PostalOperator, body: &[u8], tz: Tz) -> Result<Vec<PushedEvent>, String> {
    let v = decode_at_most(body, MAX_PUSH)?;
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&v],
        other => return Err(format!("body is {}, expected an object or an array of objects", kind_of(other))),
    };
    if items.len() > 10_000 {
        return Err(format!("{} events in one call; send at most 10000", items.len()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item.pointer(&op.item_tracking_pointer).and_then(scalar) {
            Some(t) => out.push((t, event(op, item, tz))),
            None => out.push((format!("item {i}"), Err(format!("no tracking number at {}", op.item_tracking_pointer)))),
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn operator() -> PostalOperator {
        let mut status_map = std::collections::BTreeMap::new();
        for (k, v) in
            [("DELIVERED", "delivered"), ("IN_TRANSIT", "in_transit"), ("LOST", "lost"), ("RETURNED", "returned")]
        {
            status_map.insert(k.to_string(), v.to_string());
        }
        PostalOperator {
            name: "vnpost".into(),
            group: "vnpost".into(),
            api_target: "vnpost-tracking-api".into(),
            track_url: "http://127.0.0.1:1/track/{tracking}".into(),
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
            batch_size: 1,
            batch_separator: ",".into(),
            items_pointer: None,
            item_tracking_pointer: "/tracking".into(),
        }
    }

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    #[test]
    fn a_realistic_answer() {
        let body = br#"{"data":{"status":"DELIVERED","events":[
            {"status":"IN_TRANSIT","time":"2021-07-05 09:00:00","location":"Vinh Yen"},
            {"status":"DELIVERED","time":"2021-07-06T10:30:00+07:00","location":"Phuc Yen"}]}}"#;
        let p = parse(&operator(), body, HCM).expect("parses");
        assert_eq!(p.status, Tracking::Delivered);
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[0].at_ms, parse_when("2021-07-05T02:00:00Z", HCM).expect("t").timestamp_millis());
        assert_eq!(p.delivered_ms(), Some(parse_when("2021-07-06T03:30:00Z", HCM).expect("t").timestamp_millis()));
    }

    #[test]
    fn hostile_answers_give_reasons() {
        let op = operator();
        let cases: [(&[u8], &str); 9] = [
            (b"", "empty answer"),
            (b"<html>502</html>", "not JSON"),
            (b"{\"data\":{}}", "no status at /data/status"),
            (b"{\"data\":{\"status\":{\"a\":1}}}", "an object, not a string"),
            (b"{\"data\":{\"status\":\"IN_TRANSIT\",\"events\":{}}}", "not an array"),
            (b"{\"data\":{\"status\":\"IN_TRANSIT\",\"events\":[{\"status\":\"X\"}]}}", "has no \"time\""),
            (b"{\"data\":{\"status\":\"IN_TRANSIT\",\"events\":[{\"status\":\"X\",\"time\":\"soon\"}]}}", "not a timestamp"),
            (b"{\"data\":{\"status\":\"IN_TRANSIT\",\"events\":[7]}}", "not an object"),
            (b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "not JSON"),
        ];
        for (body, want) in cases {
            let e = parse(&op, body, HCM).expect_err("must fail");
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(body));
        }
        let huge = vec![b' '; MAX_BODY + 1];
        assert!(parse(&op, &huge, HCM).expect_err("too large").contains("larger"));
        // An unknown status is not an error: it is unknown, with the word kept.
        let p = parse(&op, br#"{"data":{"status":"CHO_PHAT"}}"#, HCM).expect("parses");
        assert_eq!((p.status, p.raw.as_str()), (Tracking::Unknown, "CHO_PHAT"));
        // Statuses in the vocabulary need no map; case is ignored.
        assert_eq!(
            parse(&op, br#"{"data":{"status":"Out_For_Delivery"}}"#, HCM).expect("ok").status,
            Tracking::OutForDelivery
        );
        assert_eq!(parse(&op, br#"{"data":{"status":"delivered"}}"#, HCM).expect("ok").status, Tracking::Delivered);
    }

    #[test]
    fn batch_answers() {
        let mut op = operator();
        op.batch_size = 50;
        op.items_pointer = Some("/items".into());
        op.status_pointer = "/status".into();
        op.events_pointer = None;
        let body = br#"{"items":[{"tracking":"A1","status":"LOST"},{"tracking":"A2"},{"status":"DELIVERED"}]}"#;
        let r = parse_batch(&op, body, HCM).expect("parses");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1.as_ref().map(|p| p.status), Ok(Tracking::Lost));
        assert!(r[1].1.is_err());
        assert!(parse_batch(&op, br#"{"items":5}"#, HCM).is_err());
    }
}
