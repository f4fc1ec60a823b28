//! Typed values written as strings in the config: durations (`"30s"`), times (RFC 3339 or
//! local time in the daemon's zone) and the postal delivery standard (`"J+2"`).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Parses `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"2d"` and sums like `"1h30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: expected a number followed by ms, s, m, h or d (e.g. \"30s\", \"1h30m\")");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(d);
    }
    Ok(total)
}

/// Parses a time: RFC 3339 with an offset, or a local `YYYY-MM-DDTHH:MM[:SS]` read in `tz`.
/// TOML datetime literals (unquoted) are accepted the same way.
pub fn parse_time(v: &toml::Value, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => {
            return Err(format!("expected a time such as \"2021-07-07T07:30:00\", found {}", other.type_str()));
        }
    };
    parse_time_str(&s, tz)
}

pub fn parse_time_str(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return match tz.from_local_datetime(&naive) {
                chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(early, _) => Ok(early.with_timezone(&Utc)),
                chrono::LocalResult::None => Err(format!("{s} does not exist in time zone {tz} (clock change)")),
            };
        }
    }
    Err(format!(
        "invalid time {s:?}: expected RFC 3339 (\"2021-07-07T07:30:00+07:00\") or local time (\"2021-07-07T07:30:00\")"
    ))
}

/// `"J+2"`: delivery within N business days after acceptance (Vietnamese postal usage).
pub fn parse_standard(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let n =
        t.strip_prefix("J+").or_else(|| t.strip_prefix("j+")).and_then(|n| n.parse::<u32>().ok()).filter(|n| *n <= 60);
    n.ok_or_else(|| format!("invalid standard {s:?}: expected \"J+N\" (N business days, e.g. \"J+2\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "30", "s", "5x", "1.5s", "-1s", "5 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn local_time_is_read_in_the_daemon_zone() {
        let t = parse_time_str("2021-07-07T07:30:00", chrono_tz::Asia::Ho_Chi_Minh).unwrap();
        assert_eq!(t.to_rfc3339(), "2021-07-07T00:30:00+00:00");
        let t = parse_time_str("2021-07-07T07:30:00+07:00", chrono_tz::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2021-07-07T00:30:00+00:00");
        assert!(parse_time_str("07/07/2021", chrono_tz::UTC).is_err());
        // A local time skipped by a clock change is an error, not a guess.
        assert!(parse_time_str("2021-03-28T02:30:00", chrono_tz::Europe::Paris).is_err());
    }

    #[test]
    fn standards() {
        assert_eq!(parse_standard("J+2"), Ok(2));
        assert!(parse_standard("2 days").is_err());
    }
}
