//! Incidents from events: opened on a confirmed outage or congestion, closed with their
//! measured length, and reconciled with the store after a restart.

use chrono::{DateTime, Utc};

use super::outbox::with_db;
use super::{Notifier, monitor};
use crate::config::Config;
use crate::model::event::Event;
use crate::store::notices::{IncidentKind, IncidentRow};

impl Notifier {
    /// Takes back what the store knows: open incidents, closed ones with something untold, the
    /// batching windows, and what the intervals say that the incidents do not (a crash between
    /// the two).
    pub(super) async fn restore(&mut self) {
        match with_db(&self.db, |d| {
            Ok::<_, crate::store::StoreError>((d.open_incidents()?, d.untold_closed()?, d.meta("notify.windows")?))
        })
        .await
        {
            Some(Ok((open, closed, windows))) => {
                self.open.extend(open.into_iter().map(|r| (r.id, r)));
                self.closed.extend(closed.into_iter().map(|r| (r.id, r)));
                self.windows = windows.and_then(|w| serde_json::from_str(&w).ok()).unwrap_or_default();
                if !self.open.is_empty() || !self.closed.is_empty() {
                    tracing::info!(
                        open = self.open.len(),
                        untold_closed = self.closed.len(),
                        "incidents restored from the store"
                    );
                }
            }
            Some(Err(e)) => tracing::error!("cannot restore incidents: {e}"),
            None => {}
        }
        let run_started = self.run_started;
        let (missing, ended) = match with_db(&self.db, move |d| d.unreconciled(run_started)).await {
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                tracing::error!("cannot compare incidents with the store's intervals: {e}");
                return;
            }
            None => return,
        };
        let config = self.config.borrow().clone();
        let now = Utc::now();
        for (id, end) in ended {
            let Some(row) = self.open.get(&id) else { continue };
            tracing::warn!(target = %row.target, incident = id, "incident ended while the notifier did not hear of it: closed from the store");
            let since = row.since_ms;
            self.close_incident_id(&config, id, since, end).await;
        }
        for m in missing {
            tracing::warn!(target = %m.target, since = m.since_ms, "an outage or congestion the notifier did not hear of: incident opened from the store");
            let since = DateTime::<Utc>::from_timestamp_millis(m.since_ms).unwrap_or(now);
            self.open_incident(&config, &m.group, &m.target, m.kind, since, now, m.reason, m.detail).await;
        }
    }

    pub(super) async fn on_event(&mut self, ev: Event) {
        let config = self.config.borrow().clone();
        let now = Utc::now();
        match ev {
            Event::Down { target, group, since, failure } => {
                let reason = failure.as_ref().map(|f| f.kind.label().to_string());
                let detail = failure.as_ref().map(|f| f.detail.clone());
                tracing::warn!(%target, %group, since = %since.to_rfc3339(), reason = %failure.as_ref().map(|f| f.to_string()).unwrap_or_default(), "target DOWN");
                self.open_incident(&config, &group, &target, IncidentKind::Outage, since, now, reason, detail).await;
            }
            Event::Degraded { target, group, since, reason } => {
                let (k, r) = (IncidentKind::Degraded, Some("congestion".to_string()));
                self.open_incident(&config, &group, &target, k, since, now, r, Some(reason)).await;
            }
            Event::Up { target, group, since, until } => {
                // Wall clock from its start: the observed downtime is the ledger's (reports, e-mails).
                let secs = (until - since).num_milliseconds() as f64 / 1000.0;
                tracing::info!(%target, %group, since_start_seconds = secs, "target UP again");
                self.close_incident(
                    &config,
                    &target,
                    IncidentKind::Outage,
                    since.timestamp_millis(),
                    until.timestamp_millis(),
                )
                .await;
            }
            Event::MonitorFault { target, group, since, fault, detail } => {
                self.monitor.push(monitor::Notice {
                    target,
                    group,
                    since_ms: since.timestamp_millis(),
                    until_ms: None,
                    why: format!("{fault}: {detail}"),
                });
            }
            Event::MonitorRestored { target, group, since, until } => {
                self.monitor.push(monitor::Notice {
                    target,
                    group,
                    since_ms: since.timestamp_millis(),
                    until_ms: Some(until.timestamp_millis()),
                    why: String::new(),
                });
            }
            Event::Recovered { target, group: _, since, until } => {
                self.close_incident(
                    &config,
                    &target,
                    IncidentKind::Degraded,
                    since.timestamp_millis(),
                    until.timestamp_millis(),
                )
                .await;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn open_incident(
        &mut self,
        config: &Config,
        group: &str,
        target: &str,
        kind: IncidentKind,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        reason: Option<String>,
        detail: Option<String>,
    ) {
        let silenced = config.in_maintenance(target, group, now);
        let at = now.timestamp_millis();
        let since_ms = since.timestamp_millis();
        let (g, t, r, d) = (group.to_string(), target.to_string(), reason.clone(), detail.clone());
        let id = match with_db(&self.db, move |db| {
            db.open_incident(&g, &t, kind, since_ms, at, r.as_deref(), d.as_deref(), silenced)
        })
        .await
        {
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                tracing::error!("cannot record incident for {target}: {e}");
                return;
            }
            None => return,
        };
        self.open.insert(
            id,
            IncidentRow {
                id,
                group: group.to_string(),
                target: target.to_string(),
                kind,
                since_ms,
                opened_ms: at,
                closed_ms: None,
                reason,
                detail,
                acked_ms: None,
                acked_by: None,
                notified_ms: None,
                escalated_ms: None,
                silenced,
                resolved_told_ms: None,
            },
        );
        if silenced {
            tracing::info!(%target, %group, "incident opened during maintenance: no notification");
            return;
        }
        self.tell(config, false).await;
    }

    pub(super) async fn close_incident(
        &mut self,
        config: &Config,
        target: &str,
        kind: IncidentKind,
        since: i64,
        until: i64,
    ) {
        let Some(id) = self.open.values().find(|i| i.target == target && i.kind == kind).map(|i| i.id) else { return };
        self.close_incident_id(config, id, since, until).await;
    }

    pub(super) async fn close_incident_id(&mut self, config: &Config, id: i64, since: i64, until: i64) {
        let target = self.open.get(&id).map(|i| i.target.clone()).unwrap_or_default();
        match with_db(&self.db, move |d| d.close_incident(id, until)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::error!("cannot record the end of incident {id} of {target}: {e}");
                return;
            }
            None => return,
        }
        let Some(mut row) = self.open.remove(&id) else { return };
        self.announced.remove(&id);
        row.closed_ms = Some(until);
        // The measured outage runs from its backdated start, as the state machine says.
        row.since_ms = since;
        if row.silenced {
            return;
        }
        self.closed.insert(id, row);
        self.tell(config, false).await;
    }
}
