//! Consignment e-mails: one per operator and recipient for what changed in an evaluation round,
//! breaches (overdue, delivered late, failed) before early warnings (stale, at risk), then what
//! was delivered after a warning. Vietnamese or English.

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::{Consignment, SlaState, Warning};
use crate::config::Language;
use crate::text::dur;
use crate::text::{esc, local_ms};

/// What an e-mail says about one consignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum News {
    Breach,
    /// Still overdue, `repeat_interval` after the last e-mail about it.
    Reminder,
    Warning,
    /// Delivered on time after a warning was sent about it.
    Cleared,
}

pub struct Ctx<'a> {
    pub operator: &'a str,
    pub group_display: Option<&'a str>,
    pub contingency: Option<&'a str>,
    pub status_url: Option<&'a str>,
    pub grafana_url: Option<&'a str>,
    pub tz: Tz,
    pub now_ms: i64,
}

pub fn state_word(s: SlaState, lang: Language) -> &'static str {
    match (lang, s) {
        (Language::En, SlaState::OnTrack) => "on track",
        (Language::En, SlaState::DeliveredOnTime) => "delivered on time",
        (Language::En, SlaState::DeliveredLate) => "DELIVERED LATE",
        (Language::En, SlaState::Overdue) => "OVERDUE",
        (Language::En, SlaState::Failed) => "FAILED (lost/returned/damaged)",
        (Language::En, SlaState::Unknown) => "unknown",
        (Language::Vi, SlaState::OnTrack) => "đúng tiến độ",
        (Language::Vi, SlaState::DeliveredOnTime) => "đã phát đúng hạn",
        (Language::Vi, SlaState::DeliveredLate) => "PHÁT TRỄ HẠN",
        (Language::Vi, SlaState::Overdue) => "QUÁ HẠN CHƯA PHÁT",
        (Language::Vi, SlaState::Failed) => "THẤT LẠC / CHUYỂN HOÀN / HƯ HỎNG",
        (Language::Vi, SlaState::Unknown) => "chưa rõ",
    }
}

pub fn warning_word(w: Warning, lang: Language) -> &'static str {
    match (lang, w) {
        (Language::En, Warning::Stale) => "no tracking event for too long",
        (Language::En, Warning::AtRisk) => "deadline near, not out for delivery",
        (Language::Vi, Warning::Stale) => "quá lâu không có cập nhật hành trình",
        (Language::Vi, Warning::AtRisk) => "sắp đến hạn mà chưa đi phát",
    }
}

/// (subject, text, HTML) for `items` of one operator.
pub fn render(items: &[(News, &Consignment)], cx: &Ctx<'_>, lang: Language) -> (String, String, String) {
    let en = lang == Language::En;
    let breaches = items.iter().filter(|(n, _)| *n == News::Breach).count();
    let reminders = items.iter().filter(|(n, _)| *n == News::Reminder).count();
    let warnings = items.iter().filter(|(n, _)| *n == News::Warning).count();
    let cleared = items.len() - breaches - reminders - warnings;
    let tag = match (breaches, reminders, warnings, en) {
        (1.., _, _, true) => "[POSTAL BREACH]",
        (1.., _, _, false) => "[VI PHẠM BƯU CHÍNH]",
        (0, 1.., _, true) => "[STILL OVERDUE]",
        (0, 1.., _, false) => "[VẪN QUÁ HẠN]",
        (0, 0, 1.., true) => "[POSTAL WARNING]",
        (0, 0, 1.., false) => "[CẢNH BÁO BƯU CHÍNH]",
        (0, 0, 0, true) => "[POSTAL CLEARED]",
        (0, 0, 0, false) => "[BƯU CHÍNH ĐÃ ỔN]",
    };
    let mut parts = Vec::new();
    let count = |state: SlaState| items.iter().filter(|(n, c)| *n == News::Breach && c.state == state).count();
    for s in [SlaState::Overdue, SlaState::DeliveredLate, SlaState::Failed] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {}", state_word(s, lang).to_lowercase()));
        }
    }
    if reminders > 0 {
        parts.push(if en {
            format!("{reminders} still overdue")
        } else {
            format!("{reminders} vẫn quá hạn chưa phát")
        });
    }
    if warnings > 0 {
        parts.push(if en { format!("{warnings} at risk") } else { format!("{warnings} có nguy cơ trễ") });
    }
    if cleared > 0 {
        parts.push(if en { format!("{cleared} cleared") } else { format!("{cleared} đã ổn") });
    }
    let subject = format!("{tag} {}: {}", cx.operator, parts.join(", "));

    let intro = match (breaches + reminders > 0, en) {
        (true, true) if breaches == 0 => {
            "Reminder: the promise \"100 % of exam papers and admission notices delivered safely and on time\" is still broken: these consignments are past their deadline and not delivered yet:"
        }
        (true, false) if breaches == 0 => {
            "Nhắc lại: cam kết \"100% đề thi, giấy báo được phát an toàn, đúng hạn\" vẫn đang bị vi phạm: các bưu gửi sau đã quá hạn mà vẫn chưa được phát:"
        }
        (true, true) => {
            "The promise \"100 % of exam papers and admission notices delivered safely and on time\" is broken for these consignments:"
        }
        (true, false) => {
            "Cam kết \"100% đề thi, giấy báo được phát an toàn, đúng hạn\" bị vi phạm đối với các bưu gửi sau:"
        }
        (false, true) => "Early warning: these consignments may miss their deadline.",
        (false, false) => "Cảnh báo sớm: các bưu gửi sau có nguy cơ không kịp hạn phát.",
    };
    let title = match cx.group_display {
        Some(d) => format!("{} ({d})", cx.operator),
        None => cx.operator.to_string(),
    };
    let h = |en_s: &'static str, vi_s: &'static str| if en { en_s } else { vi_s };
    let cols = [
        h("Tracking", "Số hiệu"),
        h("Kind", "Loại"),
        h("State", "Trạng thái"),
        h("Deadline", "Hạn phát"),
        h("Last tracking", "Hành trình gần nhất"),
        h("Route", "Tuyến"),
    ];
    let mut text = format!("{intro}\n\n== {title}\n");
    let mut html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif;color:#1f2328\">\
         <p>{}</p><h2 style=\"margin:.2em 0\">{}</h2><table style=\"border-collapse:collapse\" cellpadding=\"4\" border=\"1\"><tr>",
        if en { "en" } else { "vi" },
        esc(intro),
        esc(&title)
    );
    for c in cols {
        let _ = write!(html, "<th>{}</th>", esc(c));
    }
    html.push_str("</tr>");
    let mut sorted: Vec<&(News, &Consignment)> = items.iter().collect();
    sorted.sort_by_key(|(n, c)| (*n, c.deadline_ms, c.tracking.clone()));
    for (news, c) in sorted {
        let state = match (news, c.warning) {
            (News::Warning, Some(w)) => format!("{} — {}", state_word(c.state, lang), warning_word(w, lang)),
            _ => state_word(c.state, lang).to_string(),
        };
        let late = match c.state {
            SlaState::Overdue => format!(" ({} {})", dur(cx.now_ms - c.deadline_ms), h("past the deadline", "quá hạn")),
            SlaState::DeliveredLate => format!(
                " ({} {})",
                dur(c.delivered_ms.unwrap_or(cx.now_ms) - c.deadline_ms),
                h("after the deadline", "sau hạn")
            ),
            _ => String::new(),
        };
        let last = match (c.last_event_ms, &c.status_raw) {
            (Some(t), Some(raw)) => format!(
                "{} {} {}",
                local_ms(t, cx.tz),
                raw,
                c.location.as_deref().map(|l| format!("@ {l}")).unwrap_or_default()
            ),
            _ => c.error.clone().unwrap_or_else(|| h("no tracking event yet", "chưa có hành trình").to_string()),
        };
        let route = format!("{} → {}", c.origin.as_deref().unwrap_or("?"), c.destination.as_deref().unwrap_or("?"));
        let what = match &c.description {
            Some(d) => format!("{} — {d}", c.kind),
            None => c.kind.clone(),
        };
        let _ = writeln!(
            text,
            "- {}  [{what}]\n  {}: {state}{late}\n  {}: {}\n  {}: {}\n  {}: {route}",
            c.tracking,
            cols[2],
            cols[3],
            local_ms(c.deadline_ms, cx.tz),
            cols[4],
            last.trim(),
            cols[5]
        );
        let color = match news {
            News::Breach | News::Reminder => "#cf222e",
            News::Warning => "#9a6700",
            News::Cleared => "#1a7f37",
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td style=\"color:{color};font-weight:bold\">{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.tracking),
            esc(&what),
            esc(&state),
            esc(&late),
            esc(&local_ms(c.deadline_ms, cx.tz)),
            esc(last.trim()),
            esc(&route)
        );
    }
    html.push_str("</table>");
    if let Some(plan) = cx.contingency {
        let label = h("Contingency plan", "Phương án dự phòng");
        let _ = writeln!(text, "\n{label}: {plan}");
        let _ = write!(html, "<p><b>{}</b>: {}</p>", esc(label), esc(plan));
    }
    for (label, url) in
        [(h("Status page", "Trang trạng thái"), cx.status_url), (h("Dashboard", "Bảng theo dõi"), cx.grafana_url)]
    {
        if let Some(u) = url {
            let _ = writeln!(text, "{label}: {u}");
            let _ = write!(html, "<p>{}: <a href=\"{}\">{}</a></p>", esc(label), esc(u), esc(u));
        }
    }
    let footer = format!(
        "{} ({}).",
        h("Sent by thongsuot. Times are local", "Gửi từ hệ thống giám sát thongsuot. Giờ địa phương"),
        cx.tz.name()
    );
    let _ = writeln!(text, "\n-- \n{footer}");
    let _ = write!(html, "<hr><p style=\"color:#57606a;font-size:small\">{}</p></body></html>", esc(&footer));
    (subject, text, html)
}
