//! Small text helpers shared by the e-mails, reports, status page and error messages.

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
