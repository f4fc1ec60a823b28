//! Who is told: a group's contacts by severity, their addresses grouped by language, and
//! one e-mail per address.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{Config, Group, Language, Severity};
use crate::store::notices::Outgoing;

/// Contacts' addresses for a group, by language. Escalations go to `escalate_to` only.
pub fn recipients(
    config: &Config,
    group: &Group,
    severity: Severity,
    now: DateTime<Utc>,
    escalation: bool,
) -> Vec<(Language, Vec<String>)> {
    let mut names: Vec<&str> = Vec::new();
    if escalation {
        names.extend(group.escalate_to.iter().map(String::as_str));
    } else {
        names.extend(group.contacts.iter().map(String::as_str));
        for p in config.periods.iter().filter(|p| p.contains(now)) {
            names.extend(p.notify.iter().map(String::as_str));
        }
    }
    by_language(config.contacts.iter().filter(|c| names.contains(&c.name.as_str()) && severity >= c.min_severity))
}

/// The addresses of `contacts` by language, each address once per language.
pub fn by_language<'a>(contacts: impl Iterator<Item = &'a crate::config::Contact>) -> Vec<(Language, Vec<String>)> {
    let mut by_lang: BTreeMap<u8, (Language, Vec<String>)> = BTreeMap::new();
    for c in contacts {
        let entry = by_lang.entry(c.language as u8).or_insert_with(|| (c.language, Vec::new()));
        for e in &c.emails {
            if !entry.1.contains(e) {
                entry.1.push(e.clone());
            }
        }
    }
    by_lang.into_values().filter(|(_, v)| !v.is_empty()).collect()
}

/// One e-mail per address (a refused address cannot hold back the others).
pub(super) fn per_address(
    kind: &'static str,
    incident_opened_ms: Option<i64>,
    addresses: Vec<String>,
    (subject, text, html): (String, String, String),
) -> Vec<Outgoing> {
    addresses
        .into_iter()
        .map(|address| Outgoing {
            kind,
            incident_opened_ms,
            recipients: vec![address],
            subject: subject.clone(),
            text: text.clone(),
            html: html.clone(),
        })
        .collect()
}
