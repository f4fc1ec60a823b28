//! E-mails about the monitor itself: targets it cannot observe (a setup failure, a caught
//! panic), for whoever runs it (`daemon.monitor_contacts`), never the carriers' contacts. One
//! e-mail gathers what happened since the notifier's last tick.

use std::fmt::Write as _;

use chrono_tz::Tz;

use crate::config::{Config, Language};
use crate::text::dur;
use crate::text::words::{MONITOR_EN as EN, MONITOR_VI as VI};
use crate::text::{esc, local_ms};

/// One target's fault, begun (`until_ms` None) or over.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub target: String,
    pub group: String,
    pub since_ms: i64,
    pub until_ms: Option<i64>,
    /// `setup: cannot bind 198.18.64.1: …`, or empty for an end.
    pub why: String,
}

/// The monitor contacts' addresses, by language.
pub fn recipients(config: &Config) -> Vec<(Language, Vec<String>)> {
    super::by_language(config.contacts.iter().filter(|c| config.daemon.monitor_contacts.contains(&c.name)))
}

/// Subject, text and HTML of one e-mail about `notices` (faults begun and ended).
pub fn render(notices: &[Notice], vantage: &str, tz: Tz, lang: Language) -> (String, String, String) {
    let w = match lang {
        Language::Vi => &VI,
        Language::En => &EN,
    };
    let begun: Vec<&Notice> = notices.iter().filter(|n| n.until_ms.is_none()).collect();
    let ended: Vec<&Notice> = notices.iter().filter(|n| n.until_ms.is_some()).collect();
    let tag = if begun.is_empty() { w.restored } else { w.fault };
    let what = match (begun.as_slice(), ended.as_slice()) {
        ([one], []) => format!("{} {}", one.target, w.not_observed),
        ([], [one]) => format!("{} {}", one.target, w.observed_again),
        (b, []) => format!("{} {}", b.len(), w.not_observed),
        ([], e) => format!("{} {}", e.len(), w.observed_again),
        (b, e) => format!("{} {}, {} {}", b.len(), w.not_observed, e.len(), w.observed_again),
    };
    let subject = format!("{tag} {vantage}: {what}");
    let mut text = String::new();
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif;color:#1f2328\"><h2>{}</h2><ul>",
        match lang {
            Language::Vi => "vi",
            Language::En => "en",
        },
        esc(&subject)
    );
    for n in &begun {
        let line = format!(
            "{} ({}) — {} {} {}; {}: {}",
            n.target,
            n.group,
            w.not_observed,
            w.since,
            local_ms(n.since_ms, tz),
            w.why,
            n.why
        );
        let _ = writeln!(text, "{line}");
        let _ = write!(html, "<li>{}</li>", esc(&line));
    }
    for n in &ended {
        let until = n.until_ms.unwrap_or(n.since_ms);
        let line = format!(
            "{} ({}) — {} {} {} {} {}",
            n.target,
            n.group,
            w.observed_again,
            local_ms(until, tz),
            w.after,
            dur(until - n.since_ms),
            w.not_observed
        );
        let _ = writeln!(text, "{line}");
        let _ = write!(html, "<li>{}</li>", esc(&line));
    }
    let explain = if begun.is_empty() { w.explain_ok } else { w.explain };
    let _ = writeln!(text, "\n{explain}");
    let _ = write!(html, "</ul><p>{}</p></body></html>", esc(explain));
    (subject, text, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_and_its_end_say_what_and_why_in_both_languages() {
        let begun = Notice {
            target: "via-uplink".into(),
            group: "vnpt".into(),
            since_ms: 1_625_618_520_000,
            until_ms: None,
            why: "setup: cannot bind 198.18.64.1".into(),
        };
        let (s, t, h) = render(std::slice::from_ref(&begun), "office", chrono_tz::Asia::Ho_Chi_Minh, Language::Vi);
        assert_eq!(s, "[LỖI GIÁM SÁT] office: via-uplink không giám sát được");
        assert!(t.contains("từ 2021-07-07 07:42:00; nguyên nhân: setup: cannot bind 198.18.64.1"), "{t}");
        assert!(h.contains("không phải của doanh nghiệp"), "{h}");
        let ended = Notice { until_ms: Some(1_625_618_580_000), why: String::new(), ..begun };
        let (s, t, _) = render(&[ended], "office", chrono_tz::Asia::Ho_Chi_Minh, Language::En);
        assert_eq!(s, "[MONITOR OK] office: via-uplink observed again");
        assert!(t.contains("observed again 2021-07-07 07:43:00 after 1m 00s not observed"), "{t}");
    }
}
