//! What the API and the status page ask of the tracker.

use std::collections::BTreeMap;

use super::{OperatorSummary, Tracker, blocking};
use crate::postal::{Consignment, SlaState, TrackEvent};

impl Tracker {
    pub fn list(&self, state: Option<&str>, operator: Option<&str>) -> Vec<Consignment> {
        let clock = self.clock();
        let st = self.lock();
        let mut v: Vec<Consignment> = st
            .items
            .values()
            .filter(|c| operator.is_none_or(|o| c.operator == o))
            .map(|c| fresh(c, clock))
            .filter(|c| state.is_none_or(|s| c.state.as_str() == s))
            .collect();
        v.sort_by(|a, b| (a.deadline_ms, &a.tracking).cmp(&(b.deadline_ms, &b.tracking)));
        v
    }

    pub async fn get(&self, tracking: &str) -> Option<(Consignment, Vec<(TrackEvent, String)>)> {
        let clock = self.clock();
        let c = self.lock().items.get(tracking).map(|c| fresh(c, clock))?;
        let t = tracking.to_string();
        let events = blocking(&self.db, move |db| db.events(&t)).await.unwrap_or_default();
        Some((c, events))
    }

    pub fn csv_errors(&self) -> Vec<String> {
        self.lock().csv_errors.clone()
    }

    pub fn summaries(&self) -> Vec<OperatorSummary> {
        let config = self.config.borrow().clone();
        let clock = self.clock();
        let st = self.lock();
        let mut out: BTreeMap<String, OperatorSummary> = BTreeMap::new();
        for o in config.postal.iter().flat_map(|p| &p.operators) {
            out.insert(o.name.clone(), OperatorSummary { operator: o.name.clone(), ..OperatorSummary::default() });
        }
        for c in st.items.values() {
            let (state, warning) = c.evaluate(clock.0, clock.1, clock.2);
            let s = out
                .entry(c.operator.clone())
                .or_insert_with(|| OperatorSummary { operator: c.operator.clone(), ..OperatorSummary::default() });
            s.total += 1;
            *s.states.entry(state.as_str()).or_default() += 1;
            s.warnings += usize::from(warning.is_some());
        }
        for s in out.values_mut() {
            let get = |k: SlaState| s.states.get(k.as_str()).copied().unwrap_or(0);
            let decided = get(SlaState::DeliveredOnTime)
                + get(SlaState::DeliveredLate)
                + get(SlaState::Failed)
                + get(SlaState::Overdue);
            s.on_time_ratio = (decided > 0).then(|| get(SlaState::DeliveredOnTime) as f64 / decided as f64);
        }
        out.into_values().collect()
    }

    /// Consignments in breach, then those with an early warning, nearest deadline first.
    pub fn noteworthy(&self, limit: usize) -> Vec<Consignment> {
        let clock = self.clock();
        let st = self.lock();
        let mut v: Vec<Consignment> =
            st.items.values().map(|c| fresh(c, clock)).filter(|c| c.state.is_breach() || c.warning.is_some()).collect();
        v.sort_by_key(|c| (!c.state.is_breach(), c.deadline_ms));
        v.truncate(limit);
        v
    }
}

/// A copy with its state and warning as of `clock` (the stored ones lag by up to a second).
pub(super) fn fresh(c: &Consignment, (now, stale, risk): (i64, i64, i64)) -> Consignment {
    let mut c = c.clone();
    (c.state, c.warning) = c.evaluate(now, stale, risk);
    c
}
