//! The report as one self-contained HTML document (no external assets) with an inline SVG
//! timeline per target; printable.

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::{Words, breach_word, code_spans, maintenance_lines, pct};
use crate::config::Language;
use crate::report::{GroupReport, Report};
use crate::sla::ledger::Figures;
use crate::text::{dur, esc, local as local_t, local_ms as local, outage_length};

/// One SVG timeline per group: a row per target over the window.
pub(super) fn timeline(r: &Report, g: &GroupReport, w: &Words, tz: Tz) -> String {
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

pub(super) fn render(r: &Report, w: &Words, lang: Language, tz: Tz) -> String {
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
        o.push_str(&crate::report::kpi::html(&r.kpis, lang));
    }
    if let Some(p) = &r.postal {
        o.push_str(&crate::report::postal::html(p, lang, tz, r.generated_at.timestamp_millis()));
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
