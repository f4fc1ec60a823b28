//! Report formats: text (terminal), Markdown, CSV, JSON and a self-contained HTML document with
//! an inline SVG timeline, in Vietnamese or English.

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::{GroupReport, Report};
use crate::config::Language;
use crate::sla::ledger::Figures;
use crate::text::{dur, esc, local as local_t, local_ms as local, outage_length};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Md,
    Csv,
    Json,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "md" => Ok(Format::Md),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!("unknown format {other:?}: text, md, csv, json or html")),
        }
    }
}

/// The words of a report, in one language.
struct Words {
    title: &'static str,
    window: &'static str,
    generated: &'static str,
    vantage: &'static str,
    group: &'static str,
    target: &'static str,
    kind: &'static str,
    availability: &'static str,
    coverage: &'static str,
    downtime: &'static str,
    outages: &'static str,
    longest: &'static str,
    mttr: &'static str,
    degraded: &'static str,
    breach: &'static str,
    yes: &'static str,
    no: &'static str,
    outage_list: &'static str,
    start: &'static str,
    end: &'static str,
    duration: &'static str,
    reason: &'static str,
    ongoing: &'static str,
    none: &'static str,
    total: &'static str,
    timeline: &'static str,
    legend_up: &'static str,
    legend_down: &'static str,
    legend_degraded: &'static str,
    legend_unobserved: &'static str,
    contingency: &'static str,
    removed: &'static str,
    coverage_note: &'static str,
    /// (label, "entry", how to check)
    ledger: (&'static str, &'static str, &'static str),
    /// Title, "left out of observed time", "counted in the SLA", "all targets".
    maintenance: (&'static str, &'static str, &'static str, &'static str),
}

const EN: Words = Words {
    title: "Connectivity compliance report",
    window: "Period",
    generated: "Generated",
    vantage: "Vantage point",
    group: "Group",
    target: "Target",
    kind: "Kind",
    availability: "Availability",
    coverage: "Coverage",
    downtime: "Downtime",
    outages: "Outages",
    longest: "Longest",
    mttr: "MTTR",
    degraded: "Congested",
    breach: "Breach",
    yes: "YES",
    no: "no",
    outage_list: "Outages",
    start: "Start",
    end: "End",
    duration: "Duration",
    reason: "Reason",
    ongoing: "ongoing",
    none: "none",
    total: "All targets",
    timeline: "Timeline",
    legend_up: "up",
    legend_down: "down",
    legend_degraded: "congested",
    legend_unobserved: "not observed",
    contingency: "Contingency plan",
    removed: "no longer configured",
    coverage_note: "Availability is computed over observed time; coverage is the share of the period the monitor was running.",
    ledger: ("Ledger", "built from entry", "check with `thongsuot verify`"),
    maintenance: ("Maintenance windows", "left out of observed time", "counted in the SLA", "all targets"),
};

const VI: Words = Words {
    title: "Báo cáo bảo đảm thông tin liên lạc thông suốt",
    window: "Giai đoạn",
    generated: "Lập lúc",
    vantage: "Điểm đo",
    group: "Đơn vị",
    target: "Điểm kiểm tra",
    kind: "Loại",
    availability: "Tỷ lệ sẵn sàng",
    coverage: "Thời gian giám sát",
    downtime: "Thời gian gián đoạn",
    outages: "Số lần gián đoạn",
    longest: "Dài nhất",
    mttr: "Khôi phục TB",
    degraded: "Nghẽn mạng",
    breach: "Vi phạm",
    yes: "CÓ",
    no: "không",
    outage_list: "Danh sách gián đoạn",
    start: "Bắt đầu",
    end: "Kết thúc",
    duration: "Thời lượng",
    reason: "Nguyên nhân",
    ongoing: "đang diễn ra",
    none: "không có",
    total: "Tất cả",
    timeline: "Diễn biến",
    legend_up: "thông suốt",
    legend_down: "gián đoạn",
    legend_degraded: "nghẽn",
    legend_unobserved: "không giám sát",
    contingency: "Phương án dự phòng",
    removed: "không còn trong cấu hình",
    coverage_note: "Tỷ lệ sẵn sàng tính trên thời gian được giám sát; thời gian giám sát là tỷ lệ thời gian của giai đoạn mà hệ thống giám sát hoạt động.",
    ledger: ("Sổ ghi chống sửa đổi", "lập từ mục", "kiểm tra bằng `thongsuot verify`"),
    maintenance: ("Các đợt bảo trì", "không tính vào thời gian giám sát", "có tính vào SLA", "mọi điểm kiểm tra"),
};

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::En => &EN,
        Language::Vi => &VI,
    }
}

pub fn render(report: &Report, format: Format, lang: Language, tz: Tz) -> String {
    match format {
        Format::Text => {
            let mut o = text(report, words(lang), tz);
            if !report.kpis.is_empty() {
                o.push_str(&super::kpi::text(&report.kpis, lang));
            }
            if let Some(p) = &report.postal {
                o.push_str(&super::postal::text(p, lang, tz, report.generated_at.timestamp_millis()));
            }
            o
        }
        Format::Md => {
            let mut o = markdown(report, words(lang), tz);
            if !report.kpis.is_empty() {
                o.push_str(&super::kpi::markdown(&report.kpis, lang));
            }
            if let Some(p) = &report.postal {
                o.push_str(&super::postal::markdown(p, lang, tz, report.generated_at.timestamp_millis()));
            }
            o
        }
        Format::Csv => csv(report, tz),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
        Format::Html => html(report, words(lang), lang, tz),
    }
}

/// Rows as aligned text columns, each as wide as its widest cell in characters (Vietnamese
/// headers are longer than fixed widths allowed); the first `left` columns are aligned left, the
/// others right, and the last left, unpadded.
fn columns(rows: &[Vec<String>], left: usize) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|x| x.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push(' ');
            }
            let pad = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
            if c + 1 == r.len() {
                line.push_str(cell);
            } else if c < left {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Each maintenance window of the report on one line: name, span, what it covers, and whether
/// it counts.
fn maintenance_lines(r: &Report, w: &Words, tz: Tz) -> Vec<String> {
    r.maintenance
        .iter()
        .map(|m| {
            let covers: Vec<&str> = m.groups.iter().chain(m.targets.iter()).map(String::as_str).collect();
            format!(
                "{}{} → {} ({}; {})",
                m.name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default(),
                local_t(m.start, tz),
                local_t(m.end, tz),
                if covers.is_empty() { w.maintenance.3.to_string() } else { covers.join(", ") },
                if m.count_in_sla { w.maintenance.2 } else { w.maintenance.1 }
            )
        })
        .collect()
}

/// `a` `b` in (already escaped) HTML text as <code> elements: the words are written once, with
/// Markdown's backticks, for every format.
fn code_spans(html: &str) -> String {
    let mut out = String::new();
    for (i, part) in html.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn pct(x: Option<f64>) -> String {
    match x {
        Some(v) if v >= 0.999_999_5 => "100 %".to_string(),
        Some(v) => format!("{:.3} %", v * 100.0),
        None => "—".to_string(),
    }
}

fn breach_word(f: &Figures, w: &Words) -> &'static str {
    if f.breach { w.yes } else { w.no }
}

fn text(r: &Report, w: &Words, tz: Tz) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} — {}", w.title, r.window_name);
    let _ = writeln!(o, "{}: {} → {} ({})", w.window, local_t(r.from, tz), local_t(r.to, tz), r.timezone);
    let _ = writeln!(o, "{}: {}   {}: {}", w.vantage, r.vantage, w.generated, local_t(r.generated_at, tz));
    let _ = writeln!(
        o,
        "{}: {}   {}: {}   {}: {}",
        w.availability,
        pct(r.total.availability),
        w.coverage,
        pct(Some(r.total.coverage)),
        w.breach,
        breach_word(&r.total, w)
    );
    let _ = writeln!(o);
    let header: Vec<String> = [w.target, w.availability, w.coverage, w.downtime, "#", w.longest, w.degraded, w.breach]
        .map(String::from)
        .into();
    for g in &r.groups {
        let _ = writeln!(
            o,
            "== {} {}— {} {}, {} {}, {} {}",
            g.name,
            g.display_name.as_ref().map(|d| format!("({d}) ")).unwrap_or_default(),
            w.availability,
            pct(g.figures.availability),
            w.coverage,
            pct(Some(g.figures.coverage)),
            w.breach,
            breach_word(&g.figures, w)
        );
        let mut rows = vec![header.clone()];
        for t in &g.targets {
            let f = &t.figures;
            let name = if t.in_config { t.name.clone() } else { format!("{}*", t.name) };
            rows.push(vec![
                name,
                pct(f.availability),
                pct(Some(f.coverage)),
                dur(f.downtime_ms),
                f.outages.to_string(),
                dur(f.longest_outage_ms),
                dur(f.degraded_ms),
                breach_word(f, w).to_string(),
            ]);
        }
        o.push_str(&columns(&rows, 1));
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "{}:", w.outage_list);
    let mut rows = Vec::new();
    for g in &r.groups {
        for t in &g.targets {
            for row in &t.figures.outage_rows {
                let end = row.end.map_or_else(|| w.ongoing.to_string(), |e| local(e, tz));
                rows.push(vec![
                    format!("  {}", t.name),
                    format!("{}  →", local(row.start, tz)),
                    end,
                    outage_length(row.observed_ms, row.unobserved_ms, w.legend_unobserved),
                    row.reason.clone().unwrap_or_default(),
                ]);
            }
        }
    }
    let any = !rows.is_empty();
    o.push_str(&columns(&rows, 3));
    if !any {
        let _ = writeln!(o, "  {}", w.none);
    }
    if !r.maintenance.is_empty() {
        let _ = writeln!(o, "\n{}:", w.maintenance.0);
        for m in maintenance_lines(r, w, tz) {
            let _ = writeln!(o, "  {m}");
        }
    }
    let _ = writeln!(o, "\n{}", w.coverage_note);
    if let Some(h) = &r.ledger {
        let _ = writeln!(o, "{}: {} #{} {} ({})", w.ledger.0, w.ledger.1, h.seq, h.hash, w.ledger.2);
    }
    o
}

fn markdown(r: &Report, w: &Words, tz: Tz) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {} — {}\n", w.title, r.window_name);
    let _ = writeln!(o, "- {}: {} → {} ({})", w.window, local_t(r.from, tz), local_t(r.to, tz), r.timezone);
    let _ = writeln!(o, "- {}: {}", w.vantage, r.vantage);
    let _ = writeln!(o, "- {}: {}", w.generated, local_t(r.generated_at, tz));
    let _ = writeln!(
        o,
        "- {}: **{}**, {}: {}, {}: **{}**\n",
        w.availability,
        pct(r.total.availability),
        w.coverage,
        pct(Some(r.total.coverage)),
        w.breach,
        breach_word(&r.total, w)
    );
    for g in &r.groups {
        let _ =
            writeln!(o, "## {}{}\n", g.name, g.display_name.as_ref().map(|d| format!(" — {d}")).unwrap_or_default());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
            w.target, w.availability, w.coverage, w.downtime, w.outages, w.longest, w.mttr, w.degraded, w.breach
        );
        for t in &g.targets {
            let f = &t.figures;
            let _ = writeln!(
                o,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} |",
                t.name,
                if t.in_config { "" } else { " *" },
                pct(f.availability),
                pct(Some(f.coverage)),
                dur(f.downtime_ms),
                f.outages,
                dur(f.longest_outage_ms),
                f.mttr_ms.map_or_else(|| "—".to_string(), dur),
                dur(f.degraded_ms),
                breach_word(f, w)
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "## {}\n\n| {} | {} | {} | {} | {} |\n|---|---|---|---:|---|",
        w.outage_list, w.target, w.start, w.end, w.duration, w.reason
    );
    for g in &r.groups {
        for t in &g.targets {
            for row in &t.figures.outage_rows {
                let end = row.end.map_or_else(|| w.ongoing.to_string(), |e| local(e, tz));
                let len = outage_length(row.observed_ms, row.unobserved_ms, w.legend_unobserved);
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} |",
                    t.name,
                    local(row.start, tz),
                    end,
                    len,
                    row.reason.as_deref().unwrap_or("")
                );
            }
        }
    }
    if !r.maintenance.is_empty() {
        let _ = writeln!(o, "\n### {}\n", w.maintenance.0);
        for m in maintenance_lines(r, w, tz) {
            let _ = writeln!(o, "- {m}");
        }
    }
    let _ = writeln!(o, "\n_{}_", w.coverage_note);
    if let Some(h) = &r.ledger {
        let _ = writeln!(o, "\n{}: {} #{} `{}` ({})", w.ledger.0, w.ledger.1, h.seq, h.hash, w.ledger.2);
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn csv(r: &Report, tz: Tz) -> String {
    let mut o = String::from(
        "window,group,target,kind,availability,coverage,observed_seconds,downtime_seconds,outages,longest_outage_seconds,mttr_seconds,degraded_seconds,objective,breach,from,to\n",
    );
    for g in &r.groups {
        for t in &g.targets {
            let f = &t.figures;
            let _ = writeln!(
                o,
                "{},{},{},{},{},{:.6},{:.3},{:.3},{},{:.3},{},{:.3},{},{},{},{}",
                csv_field(&r.window_name),
                csv_field(&g.name),
                csv_field(&t.name),
                t.kind,
                f.availability.map_or_else(String::new, |a| format!("{a:.6}")),
                f.coverage,
                f.observed_ms as f64 / 1000.0,
                f.downtime_ms as f64 / 1000.0,
                f.outages,
                f.longest_outage_ms as f64 / 1000.0,
                f.mttr_ms.map_or_else(String::new, |m| format!("{:.3}", m as f64 / 1000.0)),
                f.degraded_ms as f64 / 1000.0,
                f.objective,
                f.breach,
                local_t(r.from, tz),
                local_t(r.to, tz),
            );
        }
    }
    o
}

/// One SVG timeline per group: a row per target over the window.
fn timeline(r: &Report, g: &GroupReport, w: &Words, tz: Tz) -> String {
    let (x0, width, row_h, label_w) = (0.0_f64, 640.0_f64, 18.0_f64, 220.0_f64);
    let span = (r.to.timestamp_millis() - r.from.timestamp_millis()).max(1) as f64;
    let x = |ms: i64| label_w + x0 + ((ms - r.from.timestamp_millis()) as f64 / span).clamp(0.0, 1.0) * width;
    let height = row_h * g.targets.len() as f64 + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{} {}\" font-family=\"sans-serif\" font-size=\"11\">",
        label_w + width + 10.0,
        esc(w.timeline),
        esc(&g.name)
    );
    for (i, t) in g.targets.iter().enumerate() {
        let y = i as f64 * row_h;
        let _ = write!(s, "<text x=\"0\" y=\"{}\">{}</text>", y + 13.0, esc(&t.name));
        // Unobserved background up to now (what has not happened yet is left blank), observed in
        // green on top.
        let _ = write!(
            s,
            "<rect x=\"{label_w}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#d0d7de\"/>",
            y + 2.0,
            x(r.generated_at.timestamp_millis().min(r.to.timestamp_millis())) - label_w,
            row_h - 4.0
        );
        for o in &r.observed {
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#2da44e\"/>",
                x(o.start),
                y + 2.0,
                (x(o.end) - x(o.start)).max(0.5),
                row_h - 4.0
            );
        }
        for d in &t.degradations {
            let end = d.end.unwrap_or(r.generated_at.timestamp_millis());
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#d4a72c\"><title>{} {}</title></rect>",
                x(d.start),
                y + 2.0,
                (x(end) - x(d.start)).max(3.0),
                row_h - 4.0,
                esc(w.legend_degraded),
                local(d.start, tz)
            );
        }
        for o in &t.figures.outage_rows {
            let end = o.end.unwrap_or(r.generated_at.timestamp_millis());
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#cf222e\"><title>{} {} → {} {}</title></rect>",
                x(o.start),
                y + 2.0,
                // A one-minute outage in a month is a fact, not a hairline.
                (x(end) - x(o.start)).max(3.0),
                row_h - 4.0,
                esc(w.legend_down),
                local(o.start, tz),
                o.end.map_or_else(|| w.ongoing.to_string(), |e| local(e, tz)),
                esc(o.reason.as_deref().unwrap_or(""))
            );
        }
    }
    let y = row_h * g.targets.len() as f64 + 14.0;
    let _ = write!(s, "<text x=\"{label_w}\" y=\"{y}\">{}</text>", local_t(r.from, tz));
    let _ = write!(s, "<text x=\"{}\" y=\"{y}\" text-anchor=\"end\">{}</text>", label_w + width, local_t(r.to, tz));
    s.push_str("</svg>");
    s
}

fn html(r: &Report, w: &Words, lang: Language, tz: Tz) -> String {
    let mut o = String::new();
    let lang_code = if lang == Language::Vi { "vi" } else { "en" };
    let _ = write!(
        o,
        "<!doctype html><html lang=\"{lang_code}\"><head><meta charset=\"utf-8\"><title>{} — {}</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#1f2328}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #d0d7de;padding:.3em .6em;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .breach{{color:#cf222e;font-weight:bold}}.ok{{color:#1a7f37}}.legend span{{display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;vertical-align:middle}}\
         @media print{{body{{margin:1cm}}}}</style></head><body>",
        esc(w.title),
        esc(&r.window_name)
    );
    let _ = write!(
        o,
        "<h1>{}</h1><p>{}: <b>{}</b> ({} → {}, {})<br>{}: {} · {}: {}</p>",
        esc(w.title),
        esc(w.window),
        esc(&r.window_name),
        local_t(r.from, tz),
        local_t(r.to, tz),
        esc(&r.timezone),
        esc(w.vantage),
        esc(&r.vantage),
        esc(w.generated),
        local_t(r.generated_at, tz)
    );
    let class = |f: &Figures| if f.breach { "breach" } else { "ok" };
    let _ = write!(
        o,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(w.group),
        esc(w.availability),
        esc(w.coverage),
        esc(w.downtime),
        esc(w.outages),
        esc(w.breach)
    );
    for g in &r.groups {
        let f = &g.figures;
        let _ = write!(
            o,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&g.name),
            g.display_name.as_ref().map(|d| format!(" — {}", esc(d))).unwrap_or_default(),
            pct(f.availability),
            pct(Some(f.coverage)),
            dur(f.downtime_ms),
            f.outages,
            class(f),
            breach_word(f, w)
        );
    }
    let f = &r.total;
    let _ = write!(
        o,
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th class=\"{}\">{}</th></tr></table>",
        esc(w.total),
        pct(f.availability),
        pct(Some(f.coverage)),
        dur(f.downtime_ms),
        f.outages,
        class(f),
        breach_word(f, w)
    );
    let _ = write!(
        o,
        "<p class=\"legend\"><span style=\"background:#2da44e\"></span>{}<span style=\"background:#cf222e\"></span>{}<span style=\"background:#d4a72c\"></span>{}<span style=\"background:#d0d7de\"></span>{}</p>",
        esc(w.legend_up),
        esc(w.legend_down),
        esc(w.legend_degraded),
        esc(w.legend_unobserved)
    );
    for g in &r.groups {
        let _ = write!(
            o,
            "<h2>{}{}</h2>",
            esc(&g.name),
            g.display_name.as_ref().map(|d| format!(" — {}", esc(d))).unwrap_or_default()
        );
        if let Some(c) = &g.contingency {
            let _ = write!(o, "<p><b>{}:</b> {}</p>", esc(w.contingency), esc(c));
        }
        o.push_str(&timeline(r, g, w, tz));
        let _ = write!(
            o,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(w.target),
            esc(w.kind),
            esc(w.availability),
            esc(w.coverage),
            esc(w.downtime),
            esc(w.outages),
            esc(w.longest),
            esc(w.mttr),
            esc(w.degraded),
            esc(w.breach)
        );
        for t in &g.targets {
            let f = &t.figures;
            let _ = write!(
                o,
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                esc(&t.name),
                if t.in_config { String::new() } else { format!(" <i>({})</i>", esc(w.removed)) },
                esc(&t.kind),
                pct(f.availability),
                pct(Some(f.coverage)),
                dur(f.downtime_ms),
                f.outages,
                dur(f.longest_outage_ms),
                f.mttr_ms.map_or_else(|| "—".to_string(), dur),
                dur(f.degraded_ms),
                class(f),
                breach_word(f, w)
            );
        }
        o.push_str("</table>");
        let rows: Vec<_> = g.targets.iter().flat_map(|t| t.figures.outage_rows.iter().map(move |r| (t, r))).collect();
        if !rows.is_empty() {
            let _ = write!(
                o,
                "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
                esc(w.target),
                esc(w.start),
                esc(w.end),
                esc(w.duration),
                esc(w.reason)
            );
            for (t, row) in rows {
                let end = row.end.map_or_else(|| w.ongoing.to_string(), |e| local(e, tz));
                let len = outage_length(row.observed_ms, row.unobserved_ms, w.legend_unobserved);
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&t.name),
                    local(row.start, tz),
                    end,
                    len,
                    esc(row.reason.as_deref().unwrap_or(""))
                );
            }
            o.push_str("</table>");
        }
    }
    if !r.kpis.is_empty() {
        o.push_str(&super::kpi::html(&r.kpis, lang));
    }
    if let Some(p) = &r.postal {
        o.push_str(&super::postal::html(p, lang, tz, r.generated_at.timestamp_millis()));
    }
    if !r.maintenance.is_empty() {
        let _ = write!(o, "<h2>{}</h2><ul>", esc(w.maintenance.0));
        for m in maintenance_lines(r, w, tz) {
            let _ = write!(o, "<li>{}</li>", esc(&m));
        }
        o.push_str("</ul>");
    }
    let _ = write!(o, "<p><small>{}</small></p>", esc(w.coverage_note));
    if let Some(h) = &r.ledger {
        let _ = write!(
            o,
            "<p><small>{}: {} #{} <code>{}</code> ({})</small></p>",
            esc(w.ledger.0),
            esc(w.ledger.1),
            h.seq,
            esc(&h.hash),
            code_spans(&esc(w.ledger.2))
        );
    }
    o.push_str("</body></html>");
    o
}

#[cfg(test)]
mod tests {
    use super::{code_spans, columns};
    use crate::text::dur;

    #[test]
    fn backticks_become_code_in_html() {
        assert_eq!(code_spans("check with `thongsuot verify`"), "check with <code>thongsuot verify</code>");
        assert_eq!(code_spans("none"), "none");
    }

    #[test]
    fn columns_align_by_characters_whatever_the_header() {
        let rows = vec![
            vec!["Điểm kiểm tra".to_string(), "Tỷ lệ sẵn sàng".into(), "Thời gian gián đoạn".into()],
            vec!["vnpt-dns".into(), "99.9 %".into(), "4m 12s".into()],
            vec!["viettel-smsc-rất-dài".into(), "100.000 %".into(), "8s (+ 11s không giám sát)".into()],
        ];
        let text = columns(&rows, 1);
        let lines: Vec<&str> = text.lines().collect();
        let at = |l: &str, needle: &str| l.find(needle).map(|b| l[..b].chars().count());
        // The right-aligned column ends at the same character on every line...
        let end = |l: &str, needle: &str| at(l, needle).map(|c| c + needle.chars().count());
        assert_eq!(end(lines[0], "sẵn sàng"), end(lines[1], "99.9 %"), "{text}");
        assert_eq!(end(lines[1], "99.9 %"), end(lines[2], "100.000 %"), "{text}");
        // ... and the last starts at the same character.
        assert_eq!(at(lines[0], "Thời gian"), at(lines[1], "4m 12s"), "{text}");
        assert_eq!(at(lines[1], "4m 12s"), at(lines[2], "8s (+"), "{text}");
    }

    #[test]
    fn durations() {
        assert_eq!(dur(0), "0s");
        assert_eq!(dur(1500), "1.5s");
        assert_eq!(dur(43_001), "43s");
        assert_eq!(dur(44_000), "44s");
        assert_eq!(dur(61_000), "1m 01s");
        assert_eq!(dur(3_723_000), "1h 02m 03s");
    }
}
