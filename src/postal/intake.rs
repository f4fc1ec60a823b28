//! Registering consignments: rows of the `[postal] consignments` CSV file and JSON objects
//! posted to `POST /api/v1/consignments` go through the same checks. A bad row is reported with
//! its line number and the others still load.

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::deadline::{Calendar, parse_deadline, parse_when};
use super::{Consignment, SlaState, Tracking};
use crate::config::Config;

/// The most consignments one CSV file or one API call may register.
pub const MAX_ROWS: usize = 200_000;

/// Contacts as a `;`-separated string (CSV) or a JSON array.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Contacts {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

/// One consignment as registered (CSV row or API object).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub tracking: String,
    pub operator: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub accepted_at: Option<String>,
    /// Default: from the operator's `standard`.
    #[serde(default)]
    pub deadline: Option<String>,
    #[serde(default)]
    pub contacts: Contacts,
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|x| x.trim().to_string()).filter(|x| !x.is_empty())
}

/// Checks a registration against the config and makes it a consignment (not tracked yet).
pub fn validate(r: &Registration, config: &Config, source: &str, now: DateTime<Utc>) -> Result<Consignment, String> {
    let tz: Tz = config.daemon.timezone;
    let postal = config.postal.as_ref().ok_or("no [postal] section in the config")?;
    let tracking = r.tracking.trim();
    if tracking.is_empty() {
        return Err("tracking is empty".into());
    }
    if tracking.len() > 64 || !tracking.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(format!("tracking {tracking:?}: use at most 64 letters, digits, '-', '_' or '.'"));
    }
    let operator = r.operator.trim();
    let op = postal.operator(operator).ok_or_else(|| {
        let known: Vec<&str> = postal.operators.iter().map(|o| o.name.as_str()).collect();
        format!("unknown operator {operator:?} (configured: {})", known.join(", "))
    })?;
    let kind = opt(&r.kind).unwrap_or_else(|| "other".into());
    if kind.len() > 40 || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(format!(
            "kind {kind:?}: use lowercase letters, digits and '_' (e.g. exam_paper, admission_notice)"
        ));
    }
    let accepted = match opt(&r.accepted_at) {
        Some(s) => parse_when(&s, tz).map_err(|e| format!("accepted_at: {e}"))?,
        None => now,
    };
    let deadline = match opt(&r.deadline) {
        Some(s) => parse_deadline(&s, tz).map_err(|e| format!("deadline: {e}"))?,
        None => match op.standard_days {
            Some(days) => {
                Calendar { tz, weekend: &postal.weekend, holidays: &postal.holidays }.deadline(accepted, days)
            }
            None => {
                return Err(format!(
                    "no deadline, and operator {operator:?} has no `standard` (e.g. \"J+2\") to derive one"
                ));
            }
        },
    };
    if deadline <= accepted {
        return Err(format!("deadline {} is not after accepted_at {}", deadline.to_rfc3339(), accepted.to_rfc3339()));
    }
    let contacts: Vec<String> = match &r.contacts {
        Contacts::None => Vec::new(),
        Contacts::List(v) => v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Contacts::Text(s) => s.split(';').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    };
    for c in &contacts {
        if !c.contains('@') && !config.contacts.iter().any(|x| x.name == *c) {
            return Err(format!("contact {c:?} is neither a [[contact]] name nor an e-mail address"));
        }
    }
    let clip = |s: Option<String>| s.map(|s| s.chars().take(500).collect::<String>());
    Ok(Consignment {
        tracking: tracking.to_string(),
        operator: operator.to_string(),
        kind,
        description: clip(opt(&r.description)),
        origin: clip(opt(&r.origin)),
        destination: clip(opt(&r.destination)),
        accepted_ms: accepted.timestamp_millis(),
        deadline_ms: deadline.timestamp_millis(),
        contacts,
        source: source.to_string(),
        status: Tracking::Unknown,
        status_raw: None,
        location: None,
        last_event_ms: None,
        delivered_ms: None,
        last_poll_ms: None,
        last_ok_ms: None,
        error: None,
        state: SlaState::Unknown,
        warning: None,
        notified: None,
        notified_ms: None,
    })
}

const COLUMNS: [&str; 9] =
    ["tracking", "operator", "kind", "description", "origin", "destination", "accepted_at", "deadline", "contacts"];

/// Reads CSV text: the consignments of good rows, and `FILE:LINE: message` for each bad one.
pub fn read_csv(text: &[u8], file: &str, config: &Config, now: DateTime<Utc>) -> (Vec<Consignment>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text); // Excel writes a BOM
    let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text);
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => return (ok, vec![format!("{file}:1: cannot read the header row: {e}")]),
    };
    for required in ["tracking", "operator"] {
        if !header.iter().any(|h| h == required) {
            errors
                .push(format!("{file}:1: the header row has no {required:?} column (columns: {})", COLUMNS.join(",")));
        }
    }
    if !errors.is_empty() {
        return (ok, errors);
    }
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            errors.push(format!("{file}:1: unknown column {h:?} ignored (columns: {})", COLUMNS.join(",")));
        }
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let idx: Vec<Option<usize>> = COLUMNS.iter().map(|c| col(c)).collect();
    let mut seen = std::collections::HashMap::new();
    for (n, rec) in rdr.records().enumerate() {
        if n >= MAX_ROWS {
            errors.push(format!("{file}: more than {MAX_ROWS} rows; the rest is ignored"));
            break;
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(format!("{file}:{line}: {e}"));
                continue;
            }
        };
        let line = rec.position().map_or(0, csv::Position::line);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: usize| idx[i].and_then(|c| rec.get(c)).map(str::to_string).filter(|s| !s.is_empty());
        let reg = Registration {
            tracking: get(0).unwrap_or_default(),
            operator: get(1).unwrap_or_default(),
            kind: get(2),
            description: get(3),
            origin: get(4),
            destination: get(5),
            accepted_at: get(6),
            deadline: get(7),
            contacts: get(8).map_or(Contacts::None, Contacts::Text),
        };
        if reg.accepted_at.is_none() {
            errors.push(format!("{file}:{line}: accepted_at is empty"));
            continue;
        }
        match validate(&reg, config, "csv", now) {
            Ok(c) => {
                if let Some(first) = seen.insert(c.tracking.clone(), line) {
                    errors.push(format!(
                        "{file}:{line}: tracking {:?} already on line {first}; this row wins",
                        c.tracking
                    ));
                    ok.retain(|x: &Consignment| x.tracking != c.tracking);
                }
                ok.push(c);
            }
            Err(e) => errors.push(format!("{file}:{line}: {e}")),
        }
    }
    (ok, errors)
}

/// Reads the CSV file named in the config.
pub fn load_csv(path: &Path, config: &Config, now: DateTime<Utc>) -> (Vec<Consignment>, Vec<String>) {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() > 256 << 20 => (Vec::new(), vec![format!("{file}: larger than 256 MiB, not read")]),
        Ok(bytes) => read_csv(&bytes, &file, config, now),
        Err(e) => (Vec::new(), vec![format!("{file}: cannot read: {e}")]),
    }
}
