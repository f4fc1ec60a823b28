//! Report formats: text (terminal), Markdown, CSV, JSON and a self-contained HTML document with
//! an inline SVG timeline, in Vietnamese or English.

mod csv;
mod html;
mod markdown;
mod text;

use chrono_tz::Tz;

use super::Report;
use crate::config::Language;
use crate::sla::ledger::Figures;
use crate::text::local as local_t;
use crate::text::words::{REPORT_EN as EN, REPORT_VI as VI, ReportWords as Words};

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

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::En => &EN,
        Language::Vi => &VI,
    }
}

pub fn render(report: &Report, format: Format, lang: Language, tz: Tz) -> String {
    match format {
        Format::Text => {
            let mut o = text::render(report, words(lang), tz);
            if !report.kpis.is_empty() {
                o.push_str(&crate::report::kpi::text(&report.kpis, lang));
            }
            if let Some(p) = &report.postal {
                o.push_str(&crate::report::postal::text(p, lang, tz, report.generated_at.timestamp_millis()));
            }
            o
        }
        Format::Md => {
            let mut o = markdown::render(report, words(lang), tz);
            if !report.kpis.is_empty() {
                o.push_str(&crate::report::kpi::markdown(&report.kpis, lang));
            }
            if let Some(p) = &report.postal {
                o.push_str(&crate::report::postal::markdown(p, lang, tz, report.generated_at.timestamp_millis()));
            }
            o
        }
        Format::Csv => csv::render(report, tz),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
        Format::Html => html::render(report, words(lang), lang, tz),
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
