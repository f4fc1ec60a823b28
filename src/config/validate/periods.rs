//! `[[period]]`: the exam periods, with their own interval, objective and who is told.

use chrono_tz::Tz;

use super::contacts::refs;
use super::time;
use crate::config::diagnostics::{Cx, Names};
use crate::config::model::Period;
use crate::config::raw::RawPeriod;

pub fn periods(cx: &mut Cx<'_>, raw: &[RawPeriod], contacts: &Names<'_>, tz: Tz) -> Vec<Period> {
    let mut periods = Vec::new();
    let mut period_names = Names::new("period");
    for p in raw {
        period_names.add(cx, &p.name);
        let name = cx.name(&p.name, "period");
        let owner = format!("period {name:?}: ");
        let start = time(cx, &p.start, tz, &owner);
        let end = time(cx, &p.end, tz, &owner);
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            cx.error(p.end.span(), format!("{owner}end must be after start"));
        }
        let interval = cx.duration(&p.interval, &format!("{owner}interval: "));
        let objective = cx.objective(&p.objective, &owner);
        let notify = refs(cx, contacts, &p.notify, &format!("period {name:?}"));
        periods.push(Period {
            name,
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
            interval,
            objective,
            notify,
            description: p.description.as_ref().map(|s| s.get_ref().clone()),
        });
    }
    periods
}
