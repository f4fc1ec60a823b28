//! SLA reports: per group and per target, over a period or any window, built from the store
//! and the config with the pure ledger. Used by `thongsuot report`, the SLA metrics and (later)
//! the status page and e-mails.

pub mod kpi;
pub mod postal;
pub mod render;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, GroupKind, Period, Target};
use crate::sla::ledger::{self, Figures, LedgerInput, Objective};
use crate::sla::spans::{Span, SpanSet};
use crate::store::{Store, StoreError, TargetHistory};

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// One copy per group, shared by its targets.
    pub group: Arc<str>,
    pub kind: Cow<'static, str>,
    pub description: Option<String>,
    /// False for a target that has history in the store but is no longer configured.
    pub in_config: bool,
    /// Shared by the targets that had nothing in the window and were observed alike (most of
    /// them): a pointer a target instead of a copy of the figures each.
    pub figures: Arc<Figures>,
    /// Degradation intervals in the window (for the timeline).
    pub degradations: Vec<ledger::Interval>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    pub name: String,
    pub display_name: Option<String>,
    pub kind: &'static str,
    pub contingency: Option<String>,
    pub figures: Figures,
    pub targets: Vec<TargetReport>,
}

/// A `[[maintenance]]` window as a report states it.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceRow {
    pub name: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub count_in_sla: bool,
    /// Empty both: every target.
    pub groups: Vec<String>,
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Period name, or `custom` / `last-24h`.
    pub window_name: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub vantage: String,
    pub timezone: String,
    /// When the daemon was running within the window.
    pub observed: Vec<Span>,
    pub groups: Vec<GroupReport>,
    pub total: Figures,
    /// Consignments of the window, with a `[postal]` section in the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal: Option<postal::PostalReport>,
    /// Test calls and messages of the window: success ratios and times, per target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kpis: Vec<kpi::Kpi>,
    /// The newest ledger entry when the report was built (`thongsuot verify` checks the ledger).
    pub ledger: Option<crate::store::chain::Head>,
    /// Maintenance windows overlapping the window (those with `count_in_sla = false` are left out
    /// of observed time).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<MaintenanceRow>,
    /// Targets left out of `groups[].targets` because nothing happened to them (see
    /// [`Report::omit_clean_targets`]); their groups' figures still count them.
    #[serde(skip_serializing_if = "is_zero")]
    pub clean_targets_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl TargetReport {
    /// Something to report: an outage, congestion, a breach, or availability below 100 %. The
    /// others were at 100 % or not observed at all (the group's coverage says how much).
    pub fn noteworthy(&self) -> bool {
        let f = &self.figures;
        f.outages > 0 || f.degradations > 0 || f.breach || f.availability.is_some_and(|a| a < 1.0) || !self.in_config
    }
}

impl Report {
    /// Drops the targets with nothing to report, keeping group and total figures: what the
    /// daemon holds of a period that has ended (its figures no longer change). A full report
    /// kept for every past period would grow memory by the size of a report with each period
    /// that ends.
    pub fn omit_clean_targets(&mut self) {
        for g in &mut self.groups {
            let before = g.targets.len();
            g.targets.retain(TargetReport::noteworthy);
            g.targets.shrink_to_fit();
            self.clean_targets_omitted += before - g.targets.len();
        }
    }
}

/// The objective in force for a target: the target's own, else its group's, else the period's,
/// else the default (most specific wins).
/// The window of a report asked for without one, the same for the CLI and the API: the period
/// in force at `now`, else the last 24 hours.
pub fn default_window(config: &Config, now: DateTime<Utc>) -> (String, Span, Option<&Period>) {
    match config.periods.iter().find(|p| p.contains(now)) {
        Some(p) => (p.name.clone(), Span::new(p.start.timestamp_millis(), p.end.timestamp_millis()), Some(p)),
        None => {
            let now_ms = now.timestamp_millis();
            ("last-24h".to_string(), Span::new(now_ms - 86_400_000, now_ms), None)
        }
    }
}

pub fn objective_for(config: &Config, target: &Target, period: Option<&Period>) -> Objective {
    let group = config.group(&target.group);
    let availability = target
        .objective
        .or_else(|| group.and_then(|g| g.objective))
        .or_else(|| period.and_then(|p| p.objective))
        .unwrap_or(config.defaults.objective);
    let max_outage = target
        .max_outage
        .or_else(|| group.and_then(|g| g.max_outage))
        .or(config.defaults.max_outage)
        .map(|d| d.as_millis() as i64);
    Objective { availability, max_outage_ms: max_outage }
}

/// Maintenance windows of `target` that do not count in the SLA.
pub fn excluded_for(config: &Config, name: &str, group: &str) -> Vec<Span> {
    config
        .maintenance
        .iter()
        .filter(|m| !m.count_in_sla)
        .filter(|m| {
            (m.groups.is_empty() && m.targets.is_empty())
                || m.groups.iter().any(|g| g == group)
                || m.targets.iter().any(|t| t == name)
        })
        .map(|m| Span::new(m.start.timestamp_millis(), m.end.timestamp_millis()))
        .collect()
}

fn group_kind(k: GroupKind) -> &'static str {
    match k {
        GroupKind::Carrier => "carrier",
        GroupKind::Postal => "postal",
        GroupKind::Portal => "portal",
    }
}

/// Builds the report for `window` (named `window_name`; `period` gives its objectives).
/// `live_since`: start of the calling daemon's own run, which is observing until `now`.
pub fn build(
    config: &Config,
    store: &Store,
    window_name: &str,
    window: Span,
    period: Option<&Period>,
    now: DateTime<Utc>,
    live_since: Option<i64>,
) -> Result<Report, StoreError> {
    let now_ms = now.timestamp_millis();
    let mut histories = store.histories(window)?;
    // Runs from the start of the earliest outage in the window: an outage is stated with its
    // whole observed length, also when it began before the window.
    let earliest = histories.with_intervals.values().flat_map(|h| h.outages.first()).map(|o| o.start).min();
    let mut runs = store.runs(Span::new(earliest.map_or(window.start, |e| e.min(window.start)), window.end))?;
    // The daemon asking about itself: its run is observing up to this instant, not only up
    // to its last heartbeat.
    if let Some(since) = live_since {
        runs.push(Span::new(since, now_ms));
    }
    let observed_all = SpanSet::new(runs).clip(Span::new(i64::MIN / 4, window.end.min(now_ms)));

    // Figures of targets with no interval in the window depend only on these: computed once.
    type CleanKey = (i64, u64, Option<i64>, Vec<Span>);
    let mut clean: HashMap<CleanKey, Arc<Figures>> = HashMap::new();
    let compute = |h: &TargetHistory, since: i64, excluded: &[Span], objective: Objective| {
        ledger::compute(&LedgerInput {
            window,
            observed: observed_all.clip(Span::new(since, i64::MAX)).spans(),
            outages: &h.outages,
            degradations: &h.degradations,
            unobserved: &h.unobserved,
            excluded,
            objective,
            now: now_ms,
        })
    };
    let mut figures_for = |name: &str, group: &str, h: &TargetHistory, objective: Objective| {
        let since = h.first_seen.unwrap_or(i64::MAX);
        let excluded = excluded_for(config, name, group);
        if !h.outages.is_empty() || !h.degradations.is_empty() || !h.unobserved.is_empty() {
            return Arc::new(compute(h, since, &excluded, objective));
        }
        let key = (since.max(window.start), objective.availability.to_bits(), objective.max_outage_ms, excluded);
        clean.entry(key).or_insert_with_key(|k| Arc::new(compute(h, since, &k.3, objective))).clone()
    };

    // Targets by group in one pass (not one pass per group), each list sized exactly: a large
    // fleet's report is big, and a doubling Vec can leave up to half of its capacity unused.
    let mut by_group: HashMap<&str, Vec<&Target>> = HashMap::new();
    for t in &config.targets {
        by_group.entry(t.group.as_str()).or_default().push(t);
    }
    let mut groups = Vec::new();
    for g in &config.groups {
        let members = by_group.remove(g.name.as_str()).unwrap_or_default();
        let mut targets = Vec::with_capacity(members.len());
        let group: Arc<str> = g.name.as_str().into();
        for t in members {
            let h = histories.take(&t.name);
            let figures = figures_for(&t.name, &g.name, &h, objective_for(config, t, period));
            targets.push(TargetReport {
                name: t.name.clone(),
                group: group.clone(),
                kind: Cow::Borrowed(t.spec.kind()),
                description: t.description.clone(),
                in_config: true,
                figures,
                degradations: h.degradations,
            });
        }
        groups.push(GroupReport {
            name: g.name.clone(),
            display_name: g.display_name.clone(),
            kind: group_kind(g.kind),
            contingency: g.contingency.clone(),
            figures: Figures::default_for(window.len()),
            targets,
        });
    }
    // History of targets that left the config is still evidence: list it under its group.
    let mut leftovers: Vec<(String, TargetHistory)> = histories
        .with_intervals
        .into_iter()
        .filter(|(_, h)| !h.outages.is_empty() || !h.degradations.is_empty() || !h.unobserved.is_empty())
        .collect();
    leftovers.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, h) in leftovers {
        let objective = Objective {
            availability: config.group(&h.group).and_then(|g| g.objective).unwrap_or(config.defaults.objective),
            max_outage_ms: None,
        };
        let figures = figures_for(&name, &h.group, &h, objective);
        let report = TargetReport {
            name,
            group: h.group.as_str().into(),
            kind: Cow::Owned(h.kind.clone()),
            description: None,
            in_config: false,
            figures,
            degradations: h.degradations,
        };
        match groups.iter_mut().find(|g| g.name == h.group) {
            Some(g) => g.targets.push(report),
            None => groups.push(GroupReport {
                name: h.group.clone(),
                display_name: None,
                kind: "carrier",
                contingency: None,
                figures: Figures::default_for(window.len()),
                targets: vec![report],
            }),
        }
    }
    for g in &mut groups {
        let objective = config
            .group(&g.name)
            .and_then(|c| c.objective)
            .or_else(|| period.and_then(|p| p.objective))
            .unwrap_or(config.defaults.objective);
        let parts: Vec<&Figures> = g.targets.iter().map(|t| &*t.figures).collect();
        g.figures = ledger::aggregate(&parts, objective);
    }
    let parts: Vec<&Figures> = groups.iter().flat_map(|g| g.targets.iter().map(|t| &*t.figures)).collect();
    let total = ledger::aggregate(&parts, config.defaults.objective);
    let postal = match config.postal {
        Some(_) => postal::build(config, store.consignments()?, window, now_ms),
        None => None,
    };
    Ok(Report {
        window_name: window_name.to_string(),
        from: DateTime::from_timestamp_millis(window.start).unwrap_or_default(),
        to: DateTime::from_timestamp_millis(window.end).unwrap_or_default(),
        generated_at: now,
        vantage: config.daemon.vantage.clone(),
        timezone: config.daemon.timezone.to_string(),
        // Within the window (the runs read from before it serve whole outage lengths only).
        observed: observed_all.clip(window).spans().to_vec(),
        groups,
        maintenance: config
            .maintenance
            .iter()
            .filter(|m| m.start.timestamp_millis() < window.end && m.end.timestamp_millis() > window.start)
            .map(|m| MaintenanceRow {
                name: m.name.clone(),
                start: m.start,
                end: m.end,
                count_in_sla: m.count_in_sla,
                groups: m.groups.clone(),
                targets: m.targets.clone(),
            })
            .collect(),
        total,
        postal,
        kpis: kpi::build(config, store.kpi_events(window)?),
        ledger: store.chain_head()?,
        clean_targets_omitted: 0,
    })
}

impl Figures {
    /// Empty figures, before aggregation.
    pub fn default_for(window_ms: i64) -> Figures {
        ledger::aggregate(&[], 1.0).with_window(window_ms)
    }

    fn with_window(mut self, window_ms: i64) -> Figures {
        self.window_ms = window_ms;
        self
    }
}

/// The windows the daemon keeps SLA metrics for at `now`: every period that has started, and
/// the last 24 hours.
pub fn metric_windows(config: &Config, now: DateTime<Utc>) -> Vec<(String, Span, Option<&Period>)> {
    let now_ms = now.timestamp_millis();
    let mut v: Vec<(String, Span, Option<&Period>)> = config
        .periods
        .iter()
        .filter(|p| p.start <= now)
        .map(|p| (p.name.clone(), Span::new(p.start.timestamp_millis(), p.end.timestamp_millis()), Some(p)))
        .collect();
    v.push(("last-24h".to_string(), Span::new(now_ms - 86_400_000, now_ms), None));
    v
}
