//! The report as Markdown (for tickets and wikis).

use std::fmt::Write as _;

use chrono_tz::Tz;

use super::{Words, breach_word, maintenance_lines, pct};
use crate::report::Report;
use crate::text::{dur, local as local_t, local_ms as local, outage_length};

pub(super) fn render(r: &Report, w: &Words, tz: Tz) -> String {
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
