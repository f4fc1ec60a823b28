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
mod incidents;
pub mod monitor;
pub mod outbox;
pub mod plan;
mod recipients;
pub mod render;
mod summary;
mod tell;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::model::event::Event;
use crate::store::notices::{IncidentRow, NotifyDb};
use ack::AckKey;
use outbox::with_db;
use recipients::per_address;
pub use recipients::{by_language, recipients};
use render::MailKind;

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
}
