//! The report as terminal text: aligned columns, one block per group.

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::{Words, breach_word, columns, maintenance_lines, pct};
use crate::report::Report;
use crate::text::{dur, local as local_t, local_ms as local, outage_length};

pub(super) fn render(r: &Report, w: &Words, tz: Tz) -> String {
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
