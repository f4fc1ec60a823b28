//! Small text helpers shared by the e-mails, reports, status page and error messages.

pub mod words;

pub use words::reason_vi;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `2021-07-07 07:42:00` in the daemon's zone.
pub fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// As [`local`], from Unix milliseconds.
pub fn local_ms(ms: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| local(t, tz)).unwrap_or_default()
}

/// `1h 02m 03s`, `4m 10s`, `12s`, `0s`; sub-second precision below a minute.
pub fn dur(ms: i64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h {:02}m {:02}s", s / 3600, (s % 3600) / 60, s % 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if ms < 10_000 && ms % 1000 != 0 {
        // Short outages keep a decimal; from 10 s on, whole seconds (rounded).
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}s", (ms + 500) / 1000)
    }
}

/// Milliseconds for a reader: one decimal from 1 ms on, two significant digits below (a
/// loopback or LAN round trip of 0.055 ms is not "0.0 ms").
pub fn millis(ms: f64) -> String {
    if !ms.is_finite() || ms <= 0.0 {
        return "0".to_string();
    }
    if ms >= 1.0 {
        return format!("{ms:.1}");
    }
    let decimals = (1 - ms.log10().floor() as i32).clamp(1, 6) as usize;
    format!("{ms:.decimals$}")
}

/// An outage's length as every page and e-mail states it: the time it was observed down, and
/// the part nobody observed (the daemon not running, a monitor fault) beside it, never in it.
pub fn outage_length(observed_ms: i64, unobserved_ms: i64, not_observed: &str) -> String {
    if unobserved_ms > 0 {
        format!("{} (+ {} {not_observed})", dur(observed_ms), dur(unobserved_ms))
    } else {
        dur(observed_ms)
    }
}

/// An error and its causes on one line, without repeating a cause already in the text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let c_text = c.to_string();
        if !s.contains(&c_text) {
            s.push_str(": ");
            s.push_str(&c_text);
        }
        source = c.source();
    }
    s
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of lower- or upper-case hex; `None` for anything else (and beyond 64 bytes).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a URL path segment or a
/// query value).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// 16 random hex digits: SIP tags, branches and Call-IDs, test-message ids.
pub fn nonce() -> String {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    hex(&b)
}

#[cfg(test)]
mod tests {
    use super::millis;

    #[test]
    fn millis_keep_two_significant_digits_below_one() {
        assert_eq!(millis(0.055), "0.055");
        assert_eq!(millis(0.5), "0.50");
        assert_eq!(millis(0.0012), "0.0012");
        assert_eq!(millis(1.0), "1.0");
        assert_eq!(millis(12.34), "12.3");
        assert_eq!(millis(0.0), "0");
    }
}
