//! The daily summary e-mail: every group's figures in the period in force, the incidents of
//! the day, in one e-mail per language.

use std::fmt::Write as _;

use chrono_tz::Tz;

use crate::config::Language;
use crate::text::dur;
use crate::text::{esc, local_ms as full};

/// The daily summary: the day's availability per group, its incidents, what is still open.
pub fn summary(
    report: &crate::report::Report,
    incidents: &[crate::model::notice::IncidentRow],
    lang: Language,
    tz: Tz,
) -> (String, String, String) {
    let vi = lang == Language::Vi;
    let day = report.from.with_timezone(&tz).format("%Y-%m-%d").to_string();
    let breached = report.groups.iter().filter(|g| g.figures.breach).count();
    let open = incidents.iter().filter(|i| i.closed_ms.is_none()).count();
    let subject = if vi {
        format!("[TỔNG HỢP NGÀY] {day}: {breached}/{} đơn vị vi phạm, {open} sự cố chưa khắc phục", report.groups.len())
    } else {
        format!("[DAILY SUMMARY] {day}: {breached}/{} groups in breach, {open} incidents open", report.groups.len())
    };
    let (h_group, h_avail, h_cov, h_down, h_out, h_breach) = if vi {
        ("Đơn vị", "Tỷ lệ sẵn sàng", "Giám sát", "Gián đoạn", "Số lần", "Vi phạm")
    } else {
        ("Group", "Availability", "Coverage", "Downtime", "Outages", "Breach")
    };
    let pct = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |v| format!("{:.3} %", v * 100.0));
    let yes_no = |b: bool| match (b, vi) {
        (true, true) => "CÓ",
        (false, true) => "không",
        (true, false) => "YES",
        (false, false) => "no",
    };
    let mut text =
        format!("{subject}\n\n{h_group:<24} {h_avail:>14} {h_cov:>10} {h_down:>12} {h_out:>8} {h_breach:>8}\n");
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif\"><h2>{}</h2>\
         <table style=\"border-collapse:collapse\"><tr><th>{h_group}</th><th>{h_avail}</th><th>{h_cov}</th><th>{h_down}</th><th>{h_out}</th><th>{h_breach}</th></tr>",
        if vi { "vi" } else { "en" },
        esc(&subject)
    );
    for g in &report.groups {
        let f = &g.figures;
        let _ = writeln!(
            text,
            "{:<24} {:>14} {:>10} {:>12} {:>8} {:>8}",
            g.name,
            pct(f.availability),
            pct(Some(f.coverage)),
            dur(f.downtime_ms),
            f.outages,
            yes_no(f.breach)
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.name),
            pct(f.availability),
            pct(Some(f.coverage)),
            dur(f.downtime_ms),
            f.outages,
            yes_no(f.breach)
        );
    }
    html.push_str("</table>");
    let _ = writeln!(text, "\n{}:", if vi { "Sự cố trong ngày" } else { "Incidents today" });
    let _ = write!(html, "<h3>{}</h3><ul>", if vi { "Sự cố trong ngày" } else { "Incidents today" });
    for i in incidents {
        // The outage's one length (observed, the unobserved part beside it) when the day's
        // report has it; a congestion episode's wall-clock length otherwise.
        let row = report
            .groups
            .iter()
            .flat_map(|g| g.targets.iter())
            .filter(|t| t.name == i.target && i.kind == crate::model::notice::IncidentKind::Outage)
            .flat_map(|t| t.figures.outage_rows.iter())
            .find(|r| r.start == i.since_ms);
        let state = match (i.closed_ms, vi, row) {
            (Some(_), _, Some(r)) => crate::text::outage_length(
                r.observed_ms,
                r.unobserved_ms,
                if vi { "không giám sát" } else { "not observed" },
            ),
            (Some(c), _, None) => dur(c - i.since_ms),
            (None, true, _) => "chưa khắc phục".to_string(),
            (None, false, _) => "still open".to_string(),
        };
        let line = format!("{} {} {} — {} ({})", full(i.since_ms, tz), i.group, i.target, i.kind.as_str(), state);
        let _ = writeln!(text, "  {line}");
        let _ = write!(html, "<li>{}</li>", esc(&line));
    }
    if incidents.is_empty() {
        let none = if vi { "không có" } else { "none" };
        let _ = writeln!(text, "  {none}");
        let _ = write!(html, "<li>{none}</li>");
    }
    html.push_str("</ul></body></html>");
    (subject, text, html)
}
