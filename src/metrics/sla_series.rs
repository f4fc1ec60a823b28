//! The SLA series per target and period (`thongsuot_sla_*`): replaced whole by each SLA
//! evaluation, rendered with the per-target table.

use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use super::out::{Esc, Out, num};
use crate::report::Report;
use crate::sla::ledger::Figures;

/// The SLA families, written straight from the latest SLA reports (the same ones the status page
/// and API serve), replaced as a whole at each evaluation (every 30 s).
#[derive(Default)]
pub struct SlaSeries {
    reports: RwLock<(Arc<Vec<Report>>, Box<str>)>,
}

/// One series set: a target's figures, or a group's (`target=""`, `kind=""`), in one window.
struct SlaRow<'a> {
    target: &'a str,
    group: &'a str,
    kind: &'a str,
    period: &'a str,
    figures: &'a Figures,
}

impl SlaSeries {
    pub fn replace(&self, reports: Arc<Vec<Report>>, vantage: &str) {
        *self.reports.write().unwrap_or_else(|p| p.into_inner()) = (reports, vantage.into());
    }

    pub fn render(&self, out: &mut Out) {
        let (reports, vantage) = self.reports.read().unwrap_or_else(|p| p.into_inner()).clone();
        let rows = || {
            reports.iter().flat_map(|r| {
                r.groups.iter().flat_map(move |g| {
                    let row = |target, kind, figures| SlaRow {
                        target,
                        group: &g.name,
                        kind,
                        period: &r.window_name,
                        figures,
                    };
                    std::iter::once(row("", "", &g.figures))
                        .chain(g.targets.iter().filter(|t| t.in_config).map(move |t| row(&t.name, &t.kind, &t.figures)))
                })
            })
        };
        let series = |out: &mut Out, name: &str, help: &str, value: &dyn Fn(&Figures) -> Option<f64>| {
            out.family(name, help, "gauge", |out: &mut Out| {
                for r in rows() {
                    if let Some(v) = value(r.figures) {
                        let _ = write!(
                            out,
                            "{name}{{target=\"{}\",group=\"{}\",kind=\"{}\",vantage=\"{}\",period=\"{}\"}} ",
                            Esc(r.target),
                            Esc(r.group),
                            Esc(r.kind),
                            Esc(&vantage),
                            Esc(r.period)
                        );
                        num(out, v);
                    }
                }
            });
        };
        series(
            out,
            "thongsuot_sla_availability_ratio",
            "Availability over observed time in the period (group series have target=\"\").",
            &|f| f.availability,
        );
        series(
            out,
            "thongsuot_sla_coverage_ratio",
            "Observed time / elapsed time of the period: time the monitor was not running is unobserved.",
            &|f| Some(f.coverage),
        );
        series(
            out,
            "thongsuot_sla_breach",
            "1 if the objective of the period is breached (availability, max outage, or congestion at 100 %).",
            &|f| Some(if f.breach { 1.0 } else { 0.0 }),
        );
        series(
            out,
            "thongsuot_sla_error_budget_remaining_ratio",
            "Share of the error budget left in the period (objectives below 100 % only).",
            &|f| f.error_budget_remaining,
        );
    }
}
