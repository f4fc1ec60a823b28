//! The report as CSV: one row per target, for spreadsheets.

use std::fmt::Write as _;

use chrono_tz::Tz;

use crate::report::Report;
use crate::text::local as local_t;

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub(super) fn render(r: &Report, tz: Tz) -> String {
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
