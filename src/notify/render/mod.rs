//! E-mail content: subjects, plain text and HTML, in Vietnamese or English. Every breach
//! e-mail says what, where, since when, how long, the SLA impact in the current period, the
//! group's contingency plan and links to the status page and dashboard.

mod summary;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Language;
use crate::text::dur;
use crate::text::words::{MAIL_EN as EN, MAIL_VI as VI, MailWords as Words};
use crate::text::{esc, local_ms as full};
pub use summary::summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// The first incident of a group: sent at once.
    Breach,
    /// Incidents of the same group that opened within `group_interval`, in one e-mail.
    FollowUp,
    /// Still open after `repeat_interval`.
    Repeat,
    /// Unresolved after `escalate_after`, to the escalation contacts.
    Escalation,
    Resolved,
    /// `thongsuot test-email`.
    Test,
    /// The daily summary to contacts with `daily_summary`.
    Summary,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Breach => "breach",
            MailKind::FollowUp => "followup",
            MailKind::Repeat => "repeat",
            MailKind::Escalation => "escalation",
            MailKind::Resolved => "resolved",
            MailKind::Test => "test",
            MailKind::Summary => "summary",
        }
    }
}

/// One incident as an e-mail shows it.
#[derive(Debug, Clone)]
pub struct Item {
    pub target: String,
    pub description: Option<String>,
    /// An outage (down) or a congestion episode.
    pub degraded: bool,
    /// Outage start (backdated to the first failed probe).
    pub since_ms: i64,
    pub until_ms: Option<i64>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// Availability of the target so far in the current period, and whether it is breached.
    pub availability: Option<f64>,
    /// Downtime and observed time behind that availability (ms).
    pub downtime_ms: i64,
    pub observed_ms: i64,
    pub breach: bool,
    pub ack_link: Option<String>,
    /// The outage's observed length and the part of it nobody observed (ms), from the ledger;
    /// None when the ledger has no row for it (a congestion episode, a store that cannot be read).
    pub lengths: Option<(i64, i64)>,
}

impl Item {
    /// How long it lasted (or has lasted so far): observed time, the unobserved part beside it.
    fn length(&self, now_ms: i64, w: &Words) -> String {
        match self.lengths {
            Some((observed, unobserved)) if unobserved > 0 => {
                format!("{} (+ {} {})", dur(observed), dur(unobserved), w.not_observed)
            }
            Some((observed, _)) => dur(observed),
            None => dur(self.until_ms.unwrap_or(now_ms) - self.since_ms),
        }
    }
}

/// What is the same for every item of one e-mail.
#[derive(Debug, Clone)]
pub struct Context {
    pub group: String,
    pub group_display: Option<String>,
    pub contingency: Option<String>,
    pub runbook_url: Option<String>,
    pub vantage: String,
    /// The period the SLA impact is computed over (`last-24h` outside periods).
    pub period: String,
    pub status_url: Option<String>,
    pub grafana_url: Option<String>,
    pub tz: Tz,
    pub now_ms: i64,
}

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::En => &EN,
        Language::Vi => &VI,
    }
}

fn hm(ms: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
        .unwrap_or_default()
}

/// The subject line: severity, group, what and where, the period.
pub fn subject(kind: MailKind, items: &[Item], cx: &Context, lang: Language) -> String {
    let w = words(lang);
    let first = items.first();
    let what = match (kind, first) {
        (MailKind::Resolved, Some(i)) if items.len() == 1 => {
            format!("{} {} {}", i.target, w.up_again_after, i.length(cx.now_ms, w))
        }
        (MailKind::Resolved, _) => format!("{} {}", items.len(), w.resolved_n),
        (MailKind::FollowUp, _) if items.len() == 1 => format!("1 {}", w.more_down_one),
        (MailKind::FollowUp, _) => format!("{} {}", items.len(), w.more_down),
        (MailKind::Repeat, _) if items.len() > 1 => format!("{} {}", items.len(), w.still_open),
        (MailKind::Escalation, _) if items.len() > 1 => format!("{} {}", items.len(), w.unresolved),
        (_, Some(i)) => format!(
            "{} {} {}",
            i.target,
            if i.degraded { w.congested_since } else { w.down_since },
            hm(i.since_ms, cx.tz)
        ),
        (_, None) => String::new(),
    };
    let tag = match kind {
        MailKind::Breach | MailKind::FollowUp if items.iter().all(|i| i.degraded) => w.tag_congestion,
        MailKind::Breach | MailKind::FollowUp => w.tag_breach,
        MailKind::Repeat if items.iter().all(|i| i.degraded) => w.tag_still_congested,
        MailKind::Repeat => w.tag_repeat,
        MailKind::Escalation => w.tag_escalation,
        MailKind::Resolved => w.tag_resolved,
        MailKind::Test => w.tag_test,
        MailKind::Summary => "[SUMMARY]",
    };
    format!("{tag} {}: {what} ({})", cx.group, cx.period)
}

/// (subject, plain text, HTML).
pub fn render(kind: MailKind, items: &[Item], cx: &Context, lang: Language) -> (String, String, String) {
    let w = words(lang);
    let subject = subject(kind, items, cx, lang);
    let congestion_only = items.iter().all(|i| i.degraded);
    let intro = match kind {
        MailKind::Breach if congestion_only => w.intro_congestion,
        MailKind::Breach => w.intro_breach,
        MailKind::FollowUp => w.intro_followup,
        MailKind::Repeat => w.intro_repeat,
        MailKind::Escalation => w.intro_escalation,
        MailKind::Resolved => w.intro_resolved,
        MailKind::Test | MailKind::Summary => w.intro_test,
    };
    let group_title = match &cx.group_display {
        Some(d) => format!("{} ({d})", cx.group),
        None => cx.group.clone(),
    };

    let mut text = String::new();
    let _ = writeln!(text, "{intro}\n");
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif;color:#1f2328\">\
         <p>{}</p><h2 style=\"margin:.2em 0\">{}</h2>",
        if lang == Language::Vi { "vi" } else { "en" },
        esc(intro),
        esc(&group_title)
    );
    let _ = writeln!(text, "== {group_title}");
    for i in items {
        let state = if kind == MailKind::Resolved || i.until_ms.is_some() {
            w.resolved
        } else if i.degraded {
            w.congested
        } else {
            w.down
        };
        let length = if i.until_ms.is_some() {
            i.length(cx.now_ms, w)
        } else {
            format!("{} {}", i.length(cx.now_ms, w), w.so_far)
        };
        // In Vietnamese, the reason in words, the stable label beside it.
        let word = |r: &str| match (lang, crate::text::reason_vi(r)) {
            (Language::Vi, Some(vi)) => format!("{vi} ({r})"),
            _ => r.to_string(),
        };
        let reason = match (&i.reason, &i.detail) {
            (Some(r), Some(d)) => format!("{} — {d}", word(r)),
            (Some(r), None) => word(r),
            (None, Some(d)) => d.clone(),
            (None, None) => String::new(),
        };
        let sla = match i.availability {
            Some(a) => format!(
                "{} {}: {:.3} % ({} {} {}) — {}",
                w.availability_in,
                cx.period,
                a * 100.0,
                dur(i.downtime_ms),
                w.down_of_observed,
                dur(i.observed_ms),
                if i.breach { w.breached } else { w.not_breached }
            ),
            None => String::new(),
        };
        let _ = writeln!(
            text,
            "\n{}: {}{}",
            w.target,
            i.target,
            i.description.as_ref().map(|d| format!(" — {d}")).unwrap_or_default()
        );
        let _ = writeln!(text, "  {}: {state}", w.state);
        let _ = writeln!(text, "  {}: {}", w.since, full(i.since_ms, cx.tz));
        let _ = writeln!(text, "  {}: {length}", w.duration);
        if !reason.is_empty() {
            let _ = writeln!(text, "  {}: {reason}", w.reason);
        }
        let _ = writeln!(text, "  {}: {}", w.vantage, cx.vantage);
        if !sla.is_empty() {
            let _ = writeln!(text, "  {}: {sla}", w.sla);
        }
        if let Some(link) = &i.ack_link {
            let _ = writeln!(text, "  {}: {link}", w.ack);
        }

        let color = if kind == MailKind::Resolved {
            "#1a7f37"
        } else if i.degraded {
            "#9a6700"
        } else {
            "#cf222e"
        };
        let _ = write!(
            html,
            "<table style=\"border-collapse:collapse;margin:.8em 0\"><tr><th colspan=\"2\" style=\"text-align:left;font-size:1.1em\">{}{}</th></tr>\
             <tr><td>{}</td><td style=\"color:{color};font-weight:bold\">{}</td></tr>\
             <tr><td>{}</td><td>{}</td></tr><tr><td>{}</td><td>{}</td></tr>",
            esc(&i.target),
            i.description.as_ref().map(|d| format!(" — {}", esc(d))).unwrap_or_default(),
            esc(w.state),
            esc(state),
            esc(w.since),
            full(i.since_ms, cx.tz),
            esc(w.duration),
            esc(&length),
        );
        if !reason.is_empty() {
            let _ = write!(html, "<tr><td>{}</td><td>{}</td></tr>", esc(w.reason), esc(&reason));
        }
        let _ = write!(html, "<tr><td>{}</td><td>{}</td></tr>", esc(w.vantage), esc(&cx.vantage));
        if !sla.is_empty() {
            let _ = write!(html, "<tr><td>{}</td><td>{}</td></tr>", esc(w.sla), esc(&sla));
        }
        if let Some(link) = &i.ack_link {
            let _ = write!(html, "<tr><td colspan=\"2\"><a href=\"{}\">{}</a></td></tr>", esc(link), esc(w.ack));
        }
        html.push_str("</table>");
    }
    if kind != MailKind::Resolved {
        if let Some(c) = &cx.contingency {
            let _ = writeln!(text, "\n{}: {c}", w.contingency);
            let _ = write!(html, "<p><b>{}:</b> {}</p>", esc(w.contingency), esc(c));
        }
        if let Some(r) = &cx.runbook_url {
            let _ = writeln!(text, "{}: {r}", w.runbook);
            let _ = write!(html, "<p>{}: <a href=\"{}\">{}</a></p>", esc(w.runbook), esc(r), esc(r));
        }
    }
    let mut links = Vec::new();
    if let Some(u) = &cx.status_url {
        links.push((w.status_page, u.clone()));
    }
    if let Some(u) = &cx.grafana_url {
        links.push((w.dashboard, u.clone()));
    }
    if !links.is_empty() {
        let _ = writeln!(text);
        html.push_str("<p>");
        for (label, url) in &links {
            let _ = writeln!(text, "{label}: {url}");
            let _ = write!(html, "<a href=\"{}\">{}</a> &nbsp; ", esc(url), esc(label));
        }
        html.push_str("</p>");
    }
    let footer = format!("{} ({}).", w.footer, cx.tz);
    let _ = writeln!(text, "\n-- \n{footer}");
    let _ = write!(html, "<p style=\"color:#656d76;font-size:.9em\">{}</p></body></html>", esc(&footer));
    (subject, text, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context {
        Context {
            group: "vnpt".into(),
            group_display: Some("VNPT Vĩnh Phúc".into()),
            contingency: Some("Switch exam sites to the backup leased line".into()),
            runbook_url: None,
            vantage: "vinhphuc-1".into(),
            period: "exam-day-1".into(),
            status_url: Some("http://127.0.0.1:9798/".into()),
            grafana_url: None,
            tz: chrono_tz::Asia::Ho_Chi_Minh,
            // 2021-07-07 07:50 local.
            now_ms: 1_625_619_000_000,
        }
    }

    fn item() -> Item {
        Item {
            target: "vnpt-dns".into(),
            description: None,
            degraded: false,
            // 07:42 local.
            since_ms: 1_625_618_520_000,
            until_ms: None,
            reason: Some("timeout".into()),
            detail: Some("no answer within 3s".into()),
            availability: Some(0.9876),
            downtime_ms: 480_000,
            observed_ms: 38_880_000,
            breach: true,
            ack_link: Some("http://127.0.0.1:9798/api/v1/incidents/7/ack?expires=1&sig=ab".into()),
            lengths: None,
        }
    }

    #[test]
    fn vietnamese_mails_say_the_reason_in_words_with_its_label() {
        let (_, text, html) = render(MailKind::Breach, &[item()], &cx(), Language::Vi);
        assert!(text.contains("hết thời gian chờ (timeout) — no answer within 3s"), "{text}");
        assert!(html.contains("hết thời gian chờ (timeout)"), "{html}");
        let (_, text, _) = render(MailKind::Breach, &[item()], &cx(), Language::En);
        assert!(text.contains(": timeout — no answer within 3s"), "{text}");
    }

    #[test]
    fn an_outage_across_unobserved_time_states_both_parts() {
        let i = Item { until_ms: Some(1_625_618_539_000), lengths: Some((8_000, 11_000)), ..item() };
        let s = subject(MailKind::Resolved, std::slice::from_ref(&i), &cx(), Language::En);
        assert!(s.contains("back after 8s (+ 11s not observed)"), "{s}");
        let (_, text, _) = render(MailKind::Resolved, &[i], &cx(), Language::Vi);
        assert!(text.contains("8s (+ 11s không giám sát)"), "{text}");
    }

    #[test]
    fn subjects_follow_the_contract() {
        assert_eq!(
            subject(MailKind::Breach, &[item()], &cx(), Language::En),
            "[BREACH] vnpt: vnpt-dns down since 07:42 (exam-day-1)"
        );
        assert_eq!(
            subject(MailKind::Breach, &[item()], &cx(), Language::Vi),
            "[VI PHẠM] vnpt: vnpt-dns mất kết nối từ 07:42 (exam-day-1)"
        );
        let mut done = item();
        done.until_ms = Some(done.since_ms + 252_000);
        assert_eq!(
            subject(MailKind::Resolved, &[done], &cx(), Language::En),
            "[RESOLVED] vnpt: vnpt-dns back after 4m 12s (exam-day-1)"
        );
    }

    #[test]
    fn body_says_what_where_since_how_long_impact_plan_links() {
        let (_, text, html) = render(MailKind::Breach, &[item()], &cx(), Language::En);
        for needle in [
            "vnpt-dns",
            "2021-07-07 07:42:00",
            "8m 00s so far",
            "timeout — no answer within 3s",
            "vinhphuc-1",
            "98.760 % (8m 00s down of 10h 48m 00s) — objective BREACHED",
            "Switch exam sites",
            "http://127.0.0.1:9798/",
            "/api/v1/incidents/7/ack",
        ] {
            assert!(text.contains(needle), "text lacks {needle:?}:\n{text}");
        }
        assert!(html.contains("charset=\"utf-8\"") && html.contains("VNPT Vĩnh Phúc"));
    }
}
