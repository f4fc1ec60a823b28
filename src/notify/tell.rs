//! Telling: what `plan` says is untold becomes e-mails, queued in the transaction that
//! records it as told.

use std::collections::HashMap;

use chrono::Utc;

use super::outbox::with_db;
use super::render::{Context, Item, MailKind};
use super::{Impact, Notifier, monitor, now_ms, per_address, plan, recipients, render};
use crate::config::{Config, Severity};
use crate::store::notices::{IncidentKind, IncidentRow, Outgoing};

impl Notifier {
    /// Queues what the plan says is due now (everything untold, with `flush`), and records it as
    /// told in the same transaction.
    pub(super) async fn tell(&mut self, config: &Config, flush: bool) {
        let incidents: Vec<plan::Incident> = self
            .open
            .values()
            .chain(self.closed.values())
            .map(|r| plan::Incident {
                id: r.id,
                group: r.group.clone(),
                opened_ms: r.opened_ms,
                closed_ms: r.closed_ms,
                open_told: r.notified_ms.is_some(),
                close_told: r.resolved_told_ms.is_some(),
                silenced: r.silenced,
            })
            .collect();
        let mut windows = self.windows.clone();
        let now = now_ms();
        let gi = |g: &str| config.group(g).map(|g| g.group_interval.as_millis() as i64);
        let mails = plan::plan(&incidents, &mut windows, now, gi, flush);
        if mails.is_empty() {
            return;
        }
        let impact = self.impact(config, Utc::now()).await;
        let mut outgoing = Vec::new();
        let (mut opened, mut resolved) = (Vec::new(), Vec::new());
        for m in &mails {
            let ids = m.opened.iter().chain(m.resolved.iter().filter(|id| !m.opened.contains(id)));
            let rows: Vec<IncidentRow> =
                ids.filter_map(|id| self.open.get(id).or_else(|| self.closed.get(id)).cloned()).collect();
            let kind = match m.kind {
                plan::Kind::Breach => MailKind::Breach,
                plan::Kind::FollowUp => MailKind::FollowUp,
                plan::Kind::Resolved => MailKind::Resolved,
            };
            outgoing.extend(self.compose(config, &m.group, kind, &rows, &impact));
            opened.extend(m.opened.iter().copied());
            resolved.extend(m.resolved.iter().copied());
        }
        let json = serde_json::to_string(&windows).unwrap_or_default();
        let (o, r) = (opened.clone(), resolved.clone());
        match with_db(&self.db, move |d| d.tell(&outgoing, &o, &r, now, &json)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                // Nothing was recorded: the same is planned again at the next tick.
                tracing::error!("cannot queue e-mails: {e}");
                return;
            }
            None => return,
        }
        self.windows = windows;
        for id in &opened {
            if let Some(i) = self.open.get_mut(id).or_else(|| self.closed.get_mut(id)) {
                i.notified_ms.get_or_insert(now);
            }
            self.announced.entry(*id).or_insert(now);
        }
        for id in &resolved {
            if let Some(i) = self.closed.get_mut(id) {
                i.resolved_told_ms.get_or_insert(now);
            }
        }
        // Closed incidents with nothing left to tell are done with.
        self.closed.retain(|_, i| i.notified_ms.is_none() || i.resolved_told_ms.is_none());
        self.wake_sender.notify_one();
    }

    /// Queues one e-mail per language to the monitor's contacts about the faults gathered since
    /// the last tick.
    pub(super) async fn tell_monitor_contacts(&mut self, config: &Config) {
        if self.monitor.is_empty() {
            return;
        }
        let notices = std::mem::take(&mut self.monitor);
        let to = monitor::recipients(config);
        if to.is_empty() {
            tracing::warn!(
                notices = notices.len(),
                "monitor faults to tell but no daemon.monitor_contacts: see /readyz and thongsuot_monitor_faults_total"
            );
            return;
        }
        let at = now_ms();
        for (lang, addresses) in to {
            let rendered = monitor::render(&notices, &config.daemon.vantage, config.daemon.timezone, lang);
            let mails = per_address("monitor", None, addresses, rendered);
            let queued = with_db(&self.db, move |d| mails.iter().try_for_each(|m| d.enqueue(m, at).map(|_| ()))).await;
            if let Some(Err(e)) = queued {
                tracing::error!("cannot queue the monitor e-mail: {e}");
            }
        }
        self.wake_sender.notify_one();
    }

    /// Queues a reminder or an escalation about `open_ids`, then wakes the sender.
    pub(super) async fn send(&mut self, config: &Config, group: &str, kind: MailKind, open_ids: &[i64]) {
        let rows: Vec<IncidentRow> = open_ids.iter().filter_map(|id| self.open.get(id).cloned()).collect();
        if rows.is_empty() {
            return;
        }
        let at = now_ms();
        // An escalation goes to other people: it does not reset the reminder clock of the contacts.
        if kind != MailKind::Escalation {
            for r in &rows {
                if let Some(i) = self.open.get_mut(&r.id) {
                    i.notified_ms = Some(at);
                    self.announced.entry(r.id).or_insert(at);
                }
            }
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let _ = with_db(&self.db, move |d| d.mark_notified(&ids, at)).await;
        }
        let impact = self.impact(config, Utc::now()).await;
        let mails = self.compose(config, group, kind, &rows, &impact);
        if mails.is_empty() {
            return;
        }
        let queued = with_db(&self.db, move |d| mails.iter().try_for_each(|m| d.enqueue(m, at).map(|_| ()))).await;
        if let Some(Err(e)) = queued {
            tracing::error!("cannot queue e-mail: {e}");
        }
        self.wake_sender.notify_one();
    }

    /// Renders one e-mail per recipient about `rows` (open and resolved incidents of `group`),
    /// with the SLA impact in the period in force.
    pub(super) fn compose(
        &self,
        config: &Config,
        group: &str,
        kind: MailKind,
        rows: &[IncidentRow],
        impact: &(String, HashMap<String, Impact>),
    ) -> Vec<Outgoing> {
        let Some(g) = config.group(group).cloned() else { return Vec::new() };
        if rows.is_empty() {
            return Vec::new();
        }
        // Outages and congestion are both breaches of the promise (DESIGN.md); `warning` is for
        // early warnings that are not breaches yet.
        let severity = Severity::Breach;
        let now = Utc::now();
        let to = recipients(config, &g, severity, now, kind == MailKind::Escalation);
        let at = now.timestamp_millis();
        if to.is_empty() {
            tracing::warn!(%group, kind = kind.as_str(), "no contact to notify (check [[group]] contacts and [[contact]] min_severity)");
            return Vec::new();
        }
        let (period_name, impact) = (impact.0.clone(), &impact.1);
        let public = config.daemon.public_url.clone();
        let cx = Context {
            group: g.name.clone(),
            group_display: g.display_name.clone(),
            contingency: g.contingency.clone(),
            runbook_url: g.runbook_url.clone(),
            vantage: config.daemon.vantage.clone(),
            period: period_name,
            status_url: public.as_ref().map(|u| format!("{u}/")),
            grafana_url: config.daemon.grafana_url.clone(),
            tz: config.daemon.timezone,
            now_ms: at,
        };
        let items: Vec<Item> = rows
            .iter()
            .map(|r| {
                let im = impact.get(&r.target).cloned().unwrap_or_default();
                let lengths = match r.kind {
                    IncidentKind::Outage => {
                        im.outages.iter().find(|o| o.0 == r.since_ms).map(|&(_, seen, unseen)| (seen, unseen))
                    }
                    IncidentKind::Degraded => None,
                };
                Item {
                    target: r.target.clone(),
                    description: config.targets.iter().find(|t| t.name == r.target).and_then(|t| t.description.clone()),
                    degraded: r.kind == IncidentKind::Degraded,
                    since_ms: r.since_ms,
                    until_ms: r.closed_ms,
                    reason: r.reason.clone(),
                    detail: r.detail.clone(),
                    availability: im.availability,
                    downtime_ms: im.downtime_ms,
                    observed_ms: im.observed_ms,
                    breach: im.breach,
                    lengths,
                    ack_link: match (&public, r.closed_ms) {
                        (Some(u), None) if kind != MailKind::Resolved => Some(self.key.link(u, r.id, at / 1000)),
                        _ => None,
                    },
                }
            })
            .collect();
        let opened = rows.iter().map(|r| r.opened_ms).min();
        let mut out = Vec::new();
        for (lang, addresses) in to {
            let opened = matches!(kind, MailKind::Breach | MailKind::FollowUp).then_some(opened).flatten();
            out.extend(per_address(kind.as_str(), opened, addresses, render::render(kind, &items, &cx, lang)));
        }
        out
    }
}
