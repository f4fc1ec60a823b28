//! The notifier: turns state events into incidents and e-mails. Grouping without delaying the
//! first word: the first incident of a group is sent at once; others of that group opening
//! within `group_interval` go out together in one follow-up. What is told and when is planned
//! by `plan` (a pure function) from what the store says is untold, and recorded as told in the
//! transaction that queues the e-mails: a crash loses nothing and repeats at most an e-mail the
//! SMTP server accepted just before it. Open incidents are repeated every
//! `repeat_interval` until acknowledged, escalated after `escalate_after`, and resolved with
//! their measured downtime. Maintenance windows silence them. Every e-mail is written to the
//! outbox before anything tries to send it.

pub mod ack;
pub mod monitor;
pub mod outbox;
pub mod plan;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Group, Language, Severity};
use crate::model::event::Event;
use crate::store::notices::{IncidentKind, IncidentRow, NotifyDb, Outgoing};
use ack::AckKey;
use outbox::with_db;
use render::{Context, Item, MailKind};

/// A target's SLA figures in the period in force, as e-mails quote them.
#[derive(Debug, Clone, Default)]
struct Impact {
    availability: Option<f64>,
    breach: bool,
    downtime_ms: i64,
    observed_ms: i64,
    /// (start, observed length, unobserved part) of each outage in the period.
    outages: Vec<(i64, i64, i64)>,
}

/// Commands from the HTTP API.
pub enum Command {
    Ack { id: i64, by: String, reply: oneshot::Sender<Result<bool, String>> },
}

#[derive(Clone)]
pub struct NotifyHandle {
    tx: mpsc::Sender<Command>,
}

impl NotifyHandle {
    /// Acknowledges an incident: no more reminders or escalations for it.
    pub async fn ack(&self, id: i64, by: &str) -> Result<bool, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Ack { id, by: by.to_string(), reply })
            .await
            .map_err(|_| "notifier stopped".to_string())?;
        rx.await.map_err(|_| "notifier stopped".to_string())?
    }
}

pub fn channel() -> (NotifyHandle, mpsc::Receiver<Command>) {
    let (tx, rx) = mpsc::channel(64);
    (NotifyHandle { tx }, rx)
}

pub struct Notifier {
    config: watch::Receiver<Arc<Config>>,
    db: Arc<Mutex<NotifyDb>>,
    key: Arc<AckKey>,
    wake_sender: Arc<tokio::sync::Notify>,
    store_path: std::path::PathBuf,
    run_started: i64,
    open: HashMap<i64, IncidentRow>,
    /// Closed incidents with something still to tell (their opening or resolution).
    closed: HashMap<i64, IncidentRow>,
    /// Per group, until when new incidents and resolutions wait (kept in the store's meta).
    windows: BTreeMap<String, plan::Window>,
    /// Last local day a summary was queued per contact (mirrors the store's meta table).
    summaries: HashMap<String, chrono::NaiveDate>,
    /// When each open incident was first announced: `escalate_after` counts from here, so an
    /// incident announced when a maintenance window ends is not escalated in the same breath.
    announced: HashMap<i64, i64>,
    /// Monitor faults begun or ended since the last tick, for the monitor's own contacts.
    monitor: Vec<monitor::Notice>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Contacts' addresses for a group, by language. Escalations go to `escalate_to` only.
pub fn recipients(
    config: &Config,
    group: &Group,
    severity: Severity,
    now: DateTime<Utc>,
    escalation: bool,
) -> Vec<(Language, Vec<String>)> {
    let mut names: Vec<&str> = Vec::new();
    if escalation {
        names.extend(group.escalate_to.iter().map(String::as_str));
    } else {
        names.extend(group.contacts.iter().map(String::as_str));
        for p in config.periods.iter().filter(|p| p.contains(now)) {
            names.extend(p.notify.iter().map(String::as_str));
        }
    }
    by_language(config.contacts.iter().filter(|c| names.contains(&c.name.as_str()) && severity >= c.min_severity))
}

/// The addresses of `contacts` by language, each address once per language.
pub fn by_language<'a>(contacts: impl Iterator<Item = &'a crate::config::Contact>) -> Vec<(Language, Vec<String>)> {
    let mut by_lang: BTreeMap<u8, (Language, Vec<String>)> = BTreeMap::new();
    for c in contacts {
        let entry = by_lang.entry(c.language as u8).or_insert_with(|| (c.language, Vec::new()));
        for e in &c.emails {
            if !entry.1.contains(e) {
                entry.1.push(e.clone());
            }
        }
    }
    by_lang.into_values().filter(|(_, v)| !v.is_empty()).collect()
}

/// One e-mail per address (a refused address cannot hold back the others).
fn per_address(
    kind: &'static str,
    incident_opened_ms: Option<i64>,
    addresses: Vec<String>,
    (subject, text, html): (String, String, String),
) -> Vec<Outgoing> {
    addresses
        .into_iter()
        .map(|address| Outgoing {
            kind,
            incident_opened_ms,
            recipients: vec![address],
            subject: subject.clone(),
            text: text.clone(),
            html: html.clone(),
        })
        .collect()
}

impl Notifier {
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        db: Arc<Mutex<NotifyDb>>,
        key: Arc<AckKey>,
        wake_sender: Arc<tokio::sync::Notify>,
        store_path: std::path::PathBuf,
        run_started: i64,
    ) -> Notifier {
        Notifier {
            config,
            db,
            key,
            wake_sender,
            store_path,
            run_started,
            open: HashMap::new(),
            closed: HashMap::new(),
            windows: BTreeMap::new(),
            summaries: HashMap::new(),
            announced: HashMap::new(),
            monitor: Vec::new(),
        }
    }

    /// Runs until cancelled: events from the scheduler, commands from the API, and a tick for
    /// batches, reminders and escalations.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) {
        self.restore().await;
        let config = self.config.borrow().clone();
        self.tell(&config, false).await;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => break,
                },
                Some(cmd) = commands.recv() => self.on_command(cmd).await,
                _ = tick.tick() => self.on_tick().await,
            }
        }
        // Stopping: what waits for a window's end goes out now (it would after a restart too,
        // but a daemon may be stopped for good).
        let config = self.config.borrow().clone();
        self.tell_monitor_contacts(&config).await;
        self.tell(&config, true).await;
    }

    /// Takes back what the store knows: open incidents, closed ones with something untold, the
    /// batching windows, and what the intervals say that the incidents do not (a crash between
    /// the two).
    async fn restore(&mut self) {
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

    /// Queues what the plan says is due now (everything untold, with `flush`), and records it as
    /// told in the same transaction.
    async fn tell(&mut self, config: &Config, flush: bool) {
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

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Ack { id, by, reply } => {
                let at = now_ms();
                let by2 = by.clone();
                let r = match with_db(&self.db, move |d| d.ack(id, at, &by2)).await {
                    Some(Ok(found)) => {
                        if let Some(i) = self.open.get_mut(&id) {
                            i.acked_ms.get_or_insert(at);
                            i.acked_by.get_or_insert(by.clone());
                        }
                        if found {
                            tracing::info!(incident = id, by = %by, "incident acknowledged");
                        }
                        Ok(found)
                    }
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("store unavailable".into()),
                };
                let _ = reply.send(r);
            }
        }
    }

    async fn on_event(&mut self, ev: Event) {
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
    async fn open_incident(
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

    async fn close_incident(&mut self, config: &Config, target: &str, kind: IncidentKind, since: i64, until: i64) {
        let Some(id) = self.open.values().find(|i| i.target == target && i.kind == kind).map(|i| i.id) else { return };
        self.close_incident_id(config, id, since, until).await;
    }

    async fn close_incident_id(&mut self, config: &Config, id: i64, since: i64, until: i64) {
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

    /// Queues one e-mail per language to the monitor's contacts about the faults gathered since
    /// the last tick.
    async fn tell_monitor_contacts(&mut self, config: &Config) {
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

    async fn on_tick(&mut self) {
        let config = self.config.borrow().clone();
        self.tell_monitor_contacts(&config).await;
        let now = now_ms();
        // Follow-ups and gathered resolutions whose window has passed.
        self.tell(&config, false).await;

        // A maintenance window that ended while its incidents are still open: announce them now.
        let nowt = Utc::now();
        let unsilence: Vec<i64> = self
            .open
            .values()
            .filter(|i| i.silenced && !config.in_maintenance(&i.target, &i.group, nowt))
            .map(|i| i.id)
            .collect();
        if !unsilence.is_empty() {
            for id in &unsilence {
                if let Some(i) = self.open.get_mut(id) {
                    i.silenced = false;
                }
            }
            let _ = with_db(&self.db, move |d| d.unsilence(&unsilence)).await;
            self.tell(&config, false).await;
        }

        // Reminders and escalations, grouped per group.
        let mut repeats: HashMap<String, Vec<i64>> = HashMap::new();
        let mut escalations: HashMap<String, Vec<i64>> = HashMap::new();
        for i in self.open.values() {
            if i.silenced || i.acked_ms.is_some() || config.in_maintenance(&i.target, &i.group, nowt) {
                continue;
            }
            let Some(g) = config.group(&i.group) else { continue };
            if let Some(n) = i.notified_ms
                && now - n >= g.repeat_interval.as_millis() as i64
            {
                repeats.entry(i.group.clone()).or_default().push(i.id);
            }
            if i.escalated_ms.is_none()
                && !g.escalate_to.is_empty()
                && now - self.announced.get(&i.id).copied().or(i.notified_ms).unwrap_or(i.opened_ms)
                    >= g.escalate_after.as_millis() as i64
            {
                escalations.entry(i.group.clone()).or_default().push(i.id);
            }
        }
        self.daily_summaries(&config).await;
        for (group, ids) in repeats {
            self.send(&config, &group, MailKind::Repeat, &ids).await;
        }
        for (group, ids) in escalations {
            self.send(&config, &group, MailKind::Escalation, &ids).await;
            let at = now_ms();
            for id in &ids {
                if let Some(i) = self.open.get_mut(id) {
                    i.escalated_ms = Some(at);
                }
            }
            let ids2 = ids.clone();
            let _ = with_db(&self.db, move |d| d.mark_escalated(&ids2, at)).await;
        }
    }

    /// Queues a reminder or an escalation about `open_ids`, then wakes the sender.
    async fn send(&mut self, config: &Config, group: &str, kind: MailKind, open_ids: &[i64]) {
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
    fn compose(
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

    /// Sends each contact's daily summary once a day, at its local `daily_summary` time (and
    /// within the hour after it, so a daemon started late in the evening does not send one).
    async fn daily_summaries(&mut self, config: &Config) {
        let tz = config.daemon.timezone;
        let now = Utc::now();
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        for c in config.contacts.iter() {
            let Some(at) = c.daily_summary else { continue };
            let Some(due) = today.and_time(at).and_local_timezone(tz).earliest() else { continue };
            let late = local.signed_duration_since(due);
            if late < chrono::Duration::zero() || late > chrono::Duration::hours(1) {
                continue;
            }
            if self.summaries.get(&c.name) == Some(&today) {
                continue;
            }
            let key = format!("summary:{}", c.name);
            let day = today.to_string();
            let (k, d2) = (key.clone(), day.clone());
            if with_db(&self.db, move |db| db.meta(&k)).await.and_then(Result::ok).flatten().as_deref()
                == Some(day.as_str())
            {
                self.summaries.insert(c.name.clone(), today);
                continue;
            }
            // The 24 hours before the summary time: a 07:00 summary covers yesterday's day too.
            let midnight = due.with_timezone(&Utc) - chrono::Duration::hours(24);
            let (cfg, path, live) = (config.clone(), self.store_path.clone(), self.run_started);
            let window = crate::sla::spans::Span::new(midnight.timestamp_millis(), now.timestamp_millis());
            let report = tokio::task::spawn_blocking(move || {
                let store = crate::store::Store::open_read_only(&path).ok()?;
                crate::report::build(&cfg, &store, "24h", window, None, now, Some(live)).ok()
            })
            .await
            .ok()
            .flatten();
            let Some(report) = report else { continue };
            let (from, to) = (window.start, window.end + 1);
            let incidents = with_db(&self.db, move |db| db.incidents_between(from, to))
                .await
                .and_then(Result::ok)
                .unwrap_or_default();
            let (subject, text, html) = render::summary(&report, &incidents, c.language, tz);
            let mail = Outgoing {
                kind: MailKind::Summary.as_str(),
                incident_opened_ms: None,
                recipients: c.emails.clone(),
                subject,
                text,
                html,
            };
            let at = now.timestamp_millis();
            let queued = with_db(&self.db, move |db| db.enqueue(&mail, at).and_then(|_| db.set_meta(&key, &d2))).await;
            match queued {
                Some(Ok(())) => {
                    self.summaries.insert(c.name.clone(), today);
                }
                Some(Err(e)) => tracing::error!("cannot queue the daily summary: {e}"),
                None => {}
            }
            self.wake_sender.notify_one();
        }
    }

    /// Availability so far and breach per target in the period in force (else the last 24 h).
    async fn impact(&self, config: &Config, now: DateTime<Utc>) -> (String, HashMap<String, Impact>) {
        let cfg = config.clone();
        let path = self.store_path.clone();
        let live = self.run_started;
        let r = tokio::task::spawn_blocking(move || {
            let store = crate::store::Store::open_read_only(&path).ok()?;
            let now_ms = now.timestamp_millis();
            let (name, window, period) = match cfg.periods.iter().find(|p| p.contains(now)) {
                Some(p) => (
                    p.name.clone(),
                    crate::sla::spans::Span::new(p.start.timestamp_millis(), p.end.timestamp_millis()),
                    Some(p),
                ),
                None => ("last-24h".to_string(), crate::sla::spans::Span::new(now_ms - 86_400_000, now_ms), None),
            };
            let report = crate::report::build(&cfg, &store, &name, window, period, now, Some(live)).ok()?;
            let map = report
                .groups
                .iter()
                .flat_map(|g| {
                    g.targets.iter().map(|t| {
                        let f = &t.figures;
                        (
                            t.name.clone(),
                            Impact {
                                availability: f.availability,
                                breach: f.breach,
                                downtime_ms: f.downtime_ms,
                                observed_ms: f.observed_ms,
                                outages: f
                                    .outage_rows
                                    .iter()
                                    .map(|o| (o.start, o.observed_ms, o.unobserved_ms))
                                    .collect(),
                            },
                        )
                    })
                })
                .collect();
            Some((name, map))
        })
        .await
        .ok()
        .flatten();
        r.unwrap_or_else(|| ("last-24h".to_string(), HashMap::new()))
    }
}
