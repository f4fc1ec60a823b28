//! `[[maintenance]]`: announced windows that silence notifications, for some groups and
//! targets or all of them; warned about when they overlap an exam period.

use chrono_tz::Tz;

use super::time;
use crate::config::diagnostics::{Cx, Names};
use crate::config::model::{Maintenance, Period};
use crate::config::raw::RawMaintenance;

pub fn maintenance(
    cx: &mut Cx<'_>,
    raw: &[RawMaintenance],
    tz: Tz,
    group_names: &Names<'_>,
    target_names: &Names<'_>,
    periods: &[Period],
) -> Vec<Maintenance> {
    let mut maintenance = Vec::new();
    for m in raw {
        let owner = match &m.name {
            Some(n) => format!("maintenance {:?}: ", n.get_ref()),
            None => "maintenance: ".to_string(),
        };
        let start = time(cx, &m.start, tz, &owner);
        let end = time(cx, &m.end, tz, &owner);
        for g in &m.groups {
            if !group_names.contains(g.get_ref()) {
                cx.error(g.span(), format!("{owner}unknown group {:?}", g.get_ref()));
            }
        }
        for t in &m.targets {
            if !target_names.contains(t.get_ref()) {
                cx.error(t.span(), format!("{owner}unknown target {:?}", t.get_ref()));
            }
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e <= s {
                cx.error(m.end.span(), format!("{owner}end must be after start"));
            }
            for p in periods {
                if s < p.end && p.start < e {
                    cx.warn(
                        m.start.span(),
                        format!(
                            "{owner}overlaps period {:?}: notifications are silenced during an exam period",
                            p.name
                        ),
                    );
                }
            }
        }
        maintenance.push(Maintenance {
            name: m.name.as_ref().map(|s| s.get_ref().clone()),
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
            groups: m.groups.iter().map(|g| g.get_ref().clone()).collect(),
            targets: m.targets.iter().map(|g| g.get_ref().clone()).collect(),
            count_in_sla: m.count_in_sla.as_ref().is_some_and(|b| *b.get_ref()),
            reason: m.reason.as_ref().map(|s| s.get_ref().clone()),
        });
    }
    maintenance
}
