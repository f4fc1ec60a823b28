//! The consignment tracker: keeps the registered consignments in memory (and in the store),
//! re-reads the CSV file when it changes, polls each operator's tracking API for consignments
//! not yet delivered (every `poll`, within the operator's rate limit and concurrency), takes
//! pushed events, evaluates SLA states, and turns what changed into e-mails and metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::adapter::{self, MAX_BODY, Parsed};
use super::intake::{self, Registration};
use super::mail::{self, News};
use super::{Consignment, SlaState, TrackEvent, Tracking, Warning};
use crate::config::{Config, Language, PostalOperator, Severity};
use crate::metrics::Metrics;
use crate::model::notice::Outgoing;
use crate::probe::postal::ApiHealth;
use crate::probe::{Failure, FailureKind};
use crate::store::consignments::PostalDb;

/// How often the CSV file's size and modification time are checked.
const CSV_CHECK: Duration = Duration::from_secs(5);
/// How often states are evaluated (and e-mails about changes queued).
const EVALUATE_EVERY: Duration = Duration::from_secs(5);
/// The most consignments one polling round of an operator takes on.
const ROUND_MAX: usize = 20_000;

#[derive(Default)]
struct State {
    items: HashMap<String, Consignment>,
    csv_errors: Vec<String>,
    /// Size and modification time at the last reading (`Some(None)`: the file was missing).
    csv_stamp: Option<Option<(SystemTime, u64)>>,
    /// Operators with a polling round in flight.
    polling: HashSet<String>,
    /// Something changed since the last evaluation.
    dirty: bool,
}

/// Counts per operator, for the status page and the API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OperatorSummary {
    pub operator: String,
    pub total: usize,
    pub states: BTreeMap<&'static str, usize>,
    pub warnings: usize,
    pub on_time_ratio: Option<f64>,
}

/// What a push of events did.
#[derive(Debug, Default, Serialize)]
pub struct PushResult {
    pub accepted: usize,
    pub unknown_tracking: Vec<String>,
    pub errors: Vec<String>,
}

pub struct Tracker {
    config: watch::Receiver<Arc<Config>>,
    db: Arc<Mutex<PostalDb>>,
    state: Mutex<State>,
    health: Arc<ApiHealth>,
    metrics: Arc<Metrics>,
    wake_sender: Arc<tokio::sync::Notify>,
    client: crate::probe::http::ApiClient,
    vantage: String,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Why a push was not taken: the operator's request (400: do not retry as is), or our store
/// (503: retry later).
#[derive(Debug)]
pub enum PushError {
    Invalid(String),
    Store(String),
}

async fn blocking<T: Send + 'static>(
    db: &Arc<Mutex<PostalDb>>,
    f: impl FnOnce(&mut PostalDb) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("store task failed: {e}"))?
}

/// A copy with its state and warning as of `clock` (the stored ones lag by up to a second).
fn fresh(c: &Consignment, (now, stale, risk): (i64, i64, i64)) -> Consignment {
    let mut c = c.clone();
    (c.state, c.warning) = c.evaluate(now, stale, risk);
    c
}

/// Sets the registered fields of `new` on `old`, keeping what tracking found.
fn reregister(old: &mut Consignment, new: Consignment) {
    old.operator = new.operator;
    old.kind = new.kind;
    old.description = new.description;
    old.origin = new.origin;
    old.destination = new.destination;
    old.accepted_ms = new.accepted_ms;
    old.deadline_ms = new.deadline_ms;
    old.contacts = new.contacts;
    old.source = new.source;
}

/// Applies a usable tracking answer. An answer whose newest event is older than what is already
/// known (a pushed event, say) does not set the status back.
fn apply_parsed(c: &mut Consignment, p: &Parsed, now: i64) {
    let current = p.last_event().is_none_or(|e| c.last_event_ms.is_none_or(|t| e.at_ms >= t));
    if current {
        c.status = p.status;
        c.status_raw = Some(p.raw.clone());
    }
    if let Some(e) = p.last_event() {
        c.last_event_ms = Some(c.last_event_ms.map_or(e.at_ms, |t| t.max(e.at_ms)));
        if current && e.location.is_some() {
            c.location = e.location.clone();
        }
    }
    if c.status == Tracking::Delivered && c.delivered_ms.is_none() {
        // The delivery event's time; without events, the first answer that said delivered.
        c.delivered_ms = Some(p.delivered_ms().or(c.last_event_ms).unwrap_or(now));
    }
    c.last_ok_ms = Some(now);
    c.error = None;
}

/// Applies one pushed event: the newest event sets the status.
fn apply_event(c: &mut Consignment, e: &TrackEvent, now: i64) {
    if c.last_event_ms.is_none_or(|t| e.at_ms >= t) {
        c.status = e.status;
        c.status_raw = Some(e.raw.clone());
        c.last_event_ms = Some(e.at_ms);
        if e.location.is_some() {
            c.location = e.location.clone();
        }
    }
    if e.status == Tracking::Delivered {
        c.delivered_ms = Some(c.delivered_ms.map_or(e.at_ms, |t| t.min(e.at_ms)));
    }
    c.last_ok_ms = Some(now);
    c.error = None;
}

impl Tracker {
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        db: PostalDb,
        health: Arc<ApiHealth>,
        metrics: Arc<Metrics>,
        wake_sender: Arc<tokio::sync::Notify>,
    ) -> Result<Arc<Tracker>, crate::store::StoreError> {
        let items = db.all()?;
        let vantage = config.borrow().daemon.vantage.clone();
        let state = State {
            items: items.into_iter().map(|c| (c.tracking.clone(), c)).collect(),
            dirty: true,
            ..State::default()
        };
        Ok(Arc::new(Tracker {
            config,
            db: Arc::new(Mutex::new(db)),
            state: Mutex::new(state),
            health,
            metrics,
            wake_sender,
            client: crate::probe::http::ApiClient::default(),
            vantage,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_csv = Instant::now() - CSV_CHECK;
        let mut last_eval = Instant::now() - EVALUATE_EVERY;
        let mut seen_config: Option<Arc<Config>> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let config = self.config.borrow().clone();
            if !config.tracks_postal() {
                continue;
            }
            // A new config (operators, standards, holidays) re-reads the file even if unchanged.
            if !seen_config.as_ref().is_some_and(|c| Arc::ptr_eq(c, &config)) {
                seen_config = Some(config);
                self.lock().csv_stamp = None;
                last_csv = Instant::now() - CSV_CHECK;
            }
            if last_csv.elapsed() >= CSV_CHECK {
                last_csv = Instant::now();
                self.check_csv().await;
            }
            // Evaluate before starting new rounds: an operator whose round just ended is idle now,
            // and its news goes out in one e-mail.
            let dirty = self.lock().dirty;
            if dirty || last_eval.elapsed() >= EVALUATE_EVERY {
                last_eval = Instant::now();
                self.evaluate().await;
            }
            self.start_rounds(&cancel);
        }
    }

    /// Re-reads the CSV file when its size or modification time changed.
    async fn check_csv(&self) {
        let config = self.config.borrow().clone();
        let Some(path) = config.postal.as_ref().and_then(|p| p.consignments.clone()) else { return };
        let stamp = std::fs::metadata(&path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if Some(stamp) == self.lock().csv_stamp {
            return;
        }
        let (cfg, p) = (config.clone(), path.clone());
        let read = tokio::task::spawn_blocking(move || intake::load_csv(&p, &cfg, Utc::now())).await;
        let Ok((items, errors)) = read else { return };
        for e in &errors {
            tracing::warn!("consignments: {e}");
        }
        self.metrics.postal_csv_errors.set(errors.len() as i64);
        let n = items.len();
        match self.register(items).await {
            Ok(new) => {
                tracing::info!(file = %path.display(), rows = n, new, errors = errors.len(), "consignments loaded")
            }
            Err(e) => {
                tracing::error!("cannot store consignments from {}: {e}", path.display());
                return;
            }
        }
        let mut st = self.lock();
        st.csv_errors = errors;
        st.csv_stamp = Some(stamp);
    }

    /// Stores and adopts registrations; returns how many were new.
    async fn register(&self, items: Vec<Consignment>) -> Result<usize, String> {
        if items.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        // Known ones keep their tracking; only registered fields change.
        let changed: Vec<Consignment> = {
            let st = self.lock();
            items
                .into_iter()
                .filter(|c| {
                    st.items.get(&c.tracking).is_none_or(|o| {
                        (
                            o.operator.as_str(),
                            o.kind.as_str(),
                            o.accepted_ms,
                            o.deadline_ms,
                            &o.contacts,
                            &o.description,
                        ) != (
                            c.operator.as_str(),
                            c.kind.as_str(),
                            c.accepted_ms,
                            c.deadline_ms,
                            &c.contacts,
                            &c.description,
                        ) || (&o.origin, &o.destination) != (&c.origin, &c.destination)
                    })
                })
                .collect()
        };
        if changed.is_empty() {
            return Ok(0);
        }
        let to_store = changed.clone();
        blocking(&self.db, move |db| db.register(&to_store, now)).await?;
        let mut st = self.lock();
        let mut new = 0;
        for c in changed {
            match st.items.get_mut(&c.tracking) {
                Some(old) => reregister(old, c),
                None => {
                    new += 1;
                    st.items.insert(c.tracking.clone(), c);
                }
            }
        }
        st.dirty = true;
        Ok(new)
    }

    /// `POST /api/v1/consignments`: registers what is valid, reports the rest by index. `Err`:
    /// the store could not save them (nothing registered; the caller should retry).
    pub async fn register_api(&self, regs: Vec<Registration>) -> Result<(Vec<String>, Vec<(usize, String)>), String> {
        let config = self.config.borrow().clone();
        let now = Utc::now();
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for (i, r) in regs.iter().enumerate() {
            match intake::validate(r, &config, "api", now) {
                Ok(c) => ok.push(c),
                Err(e) => errors.push((i, e)),
            }
        }
        let names: Vec<String> = ok.iter().map(|c| c.tracking.clone()).collect();
        if let Err(e) = self.register(ok).await {
            return Err(format!("store: {e}"));
        }
        Ok((names, errors))
    }

    /// (now, stale_after, at_risk_before) in ms, to show states as of now.
    fn clock(&self) -> (i64, i64, i64) {
        let config = self.config.borrow().clone();
        let (stale, risk) = config
            .postal
            .as_ref()
            .map_or((i64::MAX, 0), |p| (p.stale_after.as_millis() as i64, p.at_risk_before.as_millis() as i64));
        (now_ms(), stale, risk)
    }

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

    /// Forgets a consignment (a mistaken registration): memory and store, events included.
    pub async fn remove(&self, tracking: &str) -> Result<bool, String> {
        let t = tracking.to_string();
        let found = blocking(&self.db, move |db| db.delete(&t)).await?;
        let was = self.lock().items.remove(tracking).is_some();
        self.lock().dirty = true;
        Ok(found || was)
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

    /// Starts a polling round for each operator that has consignments due and none in flight.
    fn start_rounds(self: &Arc<Self>, cancel: &CancellationToken) {
        let config = self.config.borrow().clone();
        let Some(postal) = config.postal.as_ref() else { return };
        let now = now_ms();
        for op in &postal.operators {
            let due: Vec<String> = {
                let mut st = self.lock();
                if st.polling.contains(&op.name) {
                    continue;
                }
                let poll = op.poll.as_millis() as i64;
                let mut due: Vec<(i64, String)> = st
                    .items
                    .values()
                    .filter(|c| c.operator == op.name && c.wants_polling(now))
                    .filter(|c| c.last_poll_ms.is_none_or(|t| now - t >= poll))
                    .map(|c| (c.last_poll_ms.unwrap_or(0), c.tracking.clone()))
                    .collect();
                if due.is_empty() {
                    continue;
                }
                due.sort();
                due.truncate(ROUND_MAX);
                st.polling.insert(op.name.clone());
                due.into_iter().map(|(_, t)| t).collect()
            };
            let me = self.clone();
            let op = op.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let name = op.name.clone();
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = me.round(&op, due) => {}
                }
                let mut st = me.lock();
                st.polling.remove(&name);
                st.dirty = true;
            });
        }
    }

    /// One polling round: batches of `batch_size`, at most `concurrency` in flight, request
    /// starts spaced by the rate limit.
    async fn round(self: &Arc<Self>, op: &PostalOperator, due: Vec<String>) {
        let client = match self.client.get("") {
            Ok(c) => c,
            Err(f) => {
                tracing::error!(operator = %op.name, "cannot build the tracking client: {}", f.detail);
                return;
            }
        };
        let gap = op.rate_limit.map(|r| Duration::from_secs_f64(1.0 / r));
        let sem = Arc::new(tokio::sync::Semaphore::new(op.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        let mut next_start = tokio::time::Instant::now();
        for chunk in due.chunks(op.batch_size.max(1)) {
            if let Some(g) = gap {
                tokio::time::sleep_until(next_start).await;
                next_start = tokio::time::Instant::now() + g;
            }
            let Ok(permit) = sem.clone().acquire_owned().await else { break };
            let (me, op, client, chunk) = (self.clone(), op.clone(), client.clone(), chunk.to_vec());
            set.spawn(async move {
                let _permit = permit;
                let started = Instant::now();
                let result = fetch(&client, &op, &chunk).await;
                me.apply_poll(&op, &chunk, result, started.elapsed()).await;
            });
            // Reap finished requests as we go: a long round must not hold every result.
            while set.try_join_next().is_some() {}
        }
        while set.join_next().await.is_some() {}
    }

    async fn apply_poll(
        &self,
        op: &PostalOperator,
        chunk: &[String],
        result: Result<Vec<u8>, Failure>,
        took: Duration,
    ) {
        let tz = self.config.borrow().daemon.timezone;
        let now = now_ms();
        // Per tracking number: a parsed answer, or the reason there is none.
        let (answers, health): (Vec<adapter::Answer>, Result<(), Failure>) = match result {
            Err(f) => {
                let reason = format!("tracking API: {}", f.detail);
                (chunk.iter().map(|t| (t.clone(), Err(reason.clone()))).collect(), Err(f))
            }
            Ok(body) if op.batch_size > 1 => match adapter::parse_batch(op, &body, tz) {
                Ok(items) => {
                    let mut by: HashMap<String, Result<Parsed, String>> = items.into_iter().collect();
                    let answers = chunk
                        .iter()
                        .map(|t| {
                            let r = by.remove(t).unwrap_or_else(|| Err("not in the batch answer".into()));
                            (t.clone(), r)
                        })
                        .collect();
                    (answers, Ok(()))
                }
                Err(e) => {
                    let f = Failure::new(FailureKind::Body, e.clone());
                    (chunk.iter().map(|t| (t.clone(), Err(e.clone()))).collect(), Err(f))
                }
            },
            Ok(body) => {
                let t = chunk.first().cloned().unwrap_or_default();
                match adapter::parse(op, &body, tz) {
                    Ok(p) => (vec![(t, Ok(p))], Ok(())),
                    Err(e) => (vec![(t, Err(e.clone()))], Err(Failure::new(FailureKind::Body, e))),
                }
            }
        };
        let label = match &health {
            Ok(()) => "ok",
            Err(f) => f.kind.label(),
        };
        self.metrics.postal_requests.with_label_values(&[op.name.as_str(), label, self.vantage.as_str()]).inc();
        if let Err(f) = &health {
            tracing::debug!(operator = %op.name, "tracking request failed: {f}");
        }
        // A number the operator does not know is not the API's failure.
        let health = match health {
            Err(f) if f.kind == FailureKind::Answer => Ok(()),
            h => h,
        };
        self.health.record(&op.name, chunk.first().map_or("", String::as_str), took, health);

        let mut saves = Vec::new();
        {
            let mut st = self.lock();
            for (t, r) in &answers {
                let Some(c) = st.items.get_mut(t) else { continue };
                c.last_poll_ms = Some(now);
                let events = match r {
                    Ok(p) => {
                        let was_delivered = c.delivered_ms.is_some();
                        apply_parsed(c, p, now);
                        if !was_delivered && let Some(d) = c.delivered_ms {
                            self.observe_delivery(c, d);
                        }
                        p.events.clone()
                    }
                    Err(e) => {
                        c.error = Some(e.clone());
                        Vec::new()
                    }
                };
                saves.push((c.clone(), events));
            }
            st.dirty = true;
        }
        if let Err(e) = blocking(&self.db, move |db| {
            for (c, events) in &saves {
                db.save_tracking(c, events, "poll", now)?;
            }
            Ok(())
        })
        .await
        {
            self.metrics.store_errors.inc();
            tracing::error!("cannot store tracking results: {e}");
        }
    }

    fn observe_delivery(&self, c: &Consignment, delivered_ms: i64) {
        let secs = (delivered_ms - c.accepted_ms).max(0) as f64 / 1000.0;
        self.metrics.postal_delivery.with_label_values(&[c.operator.as_str(), self.vantage.as_str()]).observe(secs);
    }

    /// `POST /api/v1/postal/{operator}/events` (signature already checked).
    pub async fn push(&self, operator: &str, body: &[u8]) -> Result<PushResult, PushError> {
        let config = self.config.borrow().clone();
        let op = config
            .postal
            .as_ref()
            .and_then(|p| p.operator(operator))
            .ok_or_else(|| PushError::Invalid("unknown operator".into()))?;
        let parsed = adapter::parse_push(op, body, config.daemon.timezone).map_err(PushError::Invalid)?;
        let now = now_ms();
        let mut out = PushResult::default();
        let mut saves: Vec<(Consignment, Vec<TrackEvent>)> = Vec::new();
        {
            let mut st = self.lock();
            for (t, r) in parsed {
                let e = match r {
                    Ok(e) => e,
                    Err(e) => {
                        out.errors.push(format!("{t}: {e}"));
                        continue;
                    }
                };
                let Some(c) = st.items.get_mut(&t).filter(|c| c.operator == operator) else {
                    out.unknown_tracking.push(t);
                    continue;
                };
                let was_delivered = c.delivered_ms.is_some();
                apply_event(c, &e, now);
                if !was_delivered && let Some(d) = c.delivered_ms {
                    self.observe_delivery(c, d);
                }
                out.accepted += 1;
                match saves.iter_mut().find(|(x, _)| x.tracking == t) {
                    Some((x, evs)) => {
                        *x = c.clone();
                        evs.push(e);
                    }
                    None => saves.push((c.clone(), vec![e])),
                }
            }
            st.dirty = true;
        }
        blocking(&self.db, move |db| {
            for (c, events) in &saves {
                db.save_tracking(c, events, "push", now)?;
            }
            Ok(())
        })
        .await
        .map_err(PushError::Store)?;
        Ok(out)
    }

    /// Evaluates every consignment, updates the metrics, and queues e-mails about what changed.
    async fn evaluate(&self) {
        let config = self.config.borrow().clone();
        let Some(postal) = config.postal.as_ref() else { return };
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let (stale, risk) = (postal.stale_after.as_millis() as i64, postal.at_risk_before.as_millis() as i64);
        // (tracking, state, warning, notified, notified_ms) to store; news per operator.
        let mut updates = Vec::new();
        let mut news: BTreeMap<String, Vec<(News, Consignment)>> = BTreeMap::new();
        {
            let mut st = self.lock();
            st.dirty = false;
            // An operator's news waits for the end of its polling round: one e-mail per round.
            let busy = st.polling.clone();
            for c in st.items.values_mut() {
                let (state, warning) = c.evaluate(now_ms, stale, risk);
                let changed_state = (state, warning) != (c.state, c.warning);
                c.state = state;
                c.warning = warning;
                let key = c.news_key();
                let mut notified = c.notified.clone();
                let mut notified_ms = c.notified_ms;
                let group = postal.operator(&c.operator).map_or(c.operator.as_str(), |o| o.group.as_str());
                // Not tracked yet: its first answer may change the news (and joins its round's e-mail).
                let untracked = c.last_poll_ms.is_none() && c.last_ok_ms.is_none();
                let silenced = || config.in_maintenance("", group, now) || busy.contains(&c.operator) || untracked;
                if notified.as_deref() != Some(key.as_str()) {
                    let previous_news = notified.as_deref().is_some_and(|k| k != "on_track" && k != "unknown");
                    let item = if state.is_breach() {
                        Some(News::Breach)
                    } else if warning.is_some() {
                        Some(News::Warning)
                    } else if previous_news && state == SlaState::DeliveredOnTime {
                        Some(News::Cleared)
                    } else {
                        None
                    };
                    match item {
                        Some(_) if silenced() => {}
                        Some(n) => {
                            news.entry(c.operator.clone()).or_default().push((n, c.clone()));
                            notified = Some(key);
                            notified_ms = Some(now_ms);
                        }
                        // Nothing to tell (on track, unknown): remember quietly, except that an
                        // unknown spell does not erase what was told.
                        None if state != SlaState::Unknown => notified = Some(key),
                        None => {}
                    }
                } else if state == SlaState::Overdue && c.wants_polling(now_ms) {
                    // Told already, and still not delivered: the papers are still missing, and
                    // the e-mail is repeated every `repeat_interval` until they are (or until it
                    // is no longer tracked, a month past its deadline).
                    let repeat = config.group(group).map_or(config.defaults.repeat_interval, |g| g.repeat_interval);
                    match notified_ms {
                        // Told by a version that did not keep the time: counted from now.
                        None => notified_ms = Some(now_ms),
                        Some(t) if now_ms - t >= repeat.as_millis() as i64 && !silenced() => {
                            news.entry(c.operator.clone()).or_default().push((News::Reminder, c.clone()));
                            notified_ms = Some(now_ms);
                        }
                        Some(_) => {}
                    }
                }
                if changed_state || notified != c.notified || notified_ms != c.notified_ms {
                    c.notified = notified.clone();
                    c.notified_ms = notified_ms;
                    updates.push((c.tracking.clone(), state, warning, notified, notified_ms));
                }
            }
        }
        self.update_metrics(&config);
        if updates.is_empty() {
            return;
        }
        let mails = self.compose(&config, &news, now);
        let n_mails = mails.len();
        match blocking(&self.db, move |db| db.save_states(&updates, &mails, now_ms)).await {
            Ok(()) => {
                if n_mails > 0 {
                    for (op, items) in &news {
                        tracing::warn!(operator = %op, consignments = items.len(), e_mails = n_mails, "postal breaches/warnings queued");
                    }
                    self.wake_sender.notify_one();
                }
            }
            Err(e) => {
                // Not marked told either: the next evaluation tries again.
                self.metrics.store_errors.inc();
                let mut st = self.lock();
                for items in news.values() {
                    for (_, c) in items {
                        // Back to what was told before (the copy was taken then): the same news
                        // (a breach, a reminder) is tried again.
                        if let Some(x) = st.items.get_mut(&c.tracking) {
                            x.notified = c.notified.clone();
                            x.notified_ms = c.notified_ms;
                        }
                    }
                }
                tracing::error!("cannot store consignment states: {e}");
            }
        }
    }

    fn update_metrics(&self, config: &Config) {
        let v = self.vantage.as_str();
        for s in self.summaries() {
            for state in SlaState::ALL {
                let n = s.states.get(state.as_str()).copied().unwrap_or(0);
                self.metrics
                    .postal_consignments
                    .with_label_values(&[s.operator.as_str(), state.as_str(), v])
                    .set(n as i64);
            }
            match s.on_time_ratio {
                Some(r) => self.metrics.postal_on_time.with_label_values(&[s.operator.as_str(), v]).set(r),
                None => {
                    let _ = self.metrics.postal_on_time.remove_label_values(&[s.operator.as_str(), v]);
                }
            }
        }
        let st = self.lock();
        for o in config.postal.iter().flat_map(|p| &p.operators) {
            for w in [Warning::Stale, Warning::AtRisk] {
                let n = st.items.values().filter(|c| c.operator == o.name && c.warning == Some(w)).count();
                self.metrics.postal_warnings.with_label_values(&[o.name.as_str(), w.as_str(), v]).set(n as i64);
            }
        }
    }

    /// One e-mail per operator and recipient, in the recipient's language.
    fn compose(
        &self,
        config: &Config,
        news: &BTreeMap<String, Vec<(News, Consignment)>>,
        now: DateTime<Utc>,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let Some(postal) = config.postal.as_ref() else { return out };
        for (operator, items) in news {
            let group_name = postal.operator(operator).map_or(operator.as_str(), |o| o.group.as_str());
            let group = config.group(group_name);
            // address -> (language, severity the address accepts, consignments it concerns (None: all))
            let mut to: BTreeMap<String, (Language, Severity, Option<HashSet<&str>>)> = BTreeMap::new();
            if let Some(g) = group {
                // Those who take warnings first: they get everything; the others breaches only.
                for sev in [Severity::Warning, Severity::Breach] {
                    for (lang, addrs) in crate::notify::recipients(config, g, sev, now, false) {
                        for a in addrs {
                            to.entry(a).or_insert((lang, sev, None));
                        }
                    }
                }
            }
            for (_, c) in items {
                for name in &c.contacts {
                    let found: Vec<(String, Language, Severity)> = if name.contains('@') {
                        vec![(name.clone(), config.daemon.language, Severity::Warning)]
                    } else {
                        config
                            .contacts
                            .iter()
                            .filter(|x| x.name == *name)
                            .flat_map(|x| x.emails.iter().map(move |e| (e.clone(), x.language, x.min_severity)))
                            .collect()
                    };
                    for (addr, lang, sev) in found {
                        let entry = to.entry(addr).or_insert((lang, sev, Some(HashSet::new())));
                        if let Some(set) = entry.2.as_mut() {
                            set.insert(c.tracking.as_str());
                        }
                    }
                }
            }
            if to.is_empty() {
                tracing::warn!(%operator, "postal news but no contact to tell (set contacts on the operator's group or the consignments)");
                continue;
            }
            let cx = mail::Ctx {
                operator,
                group_display: group.and_then(|g| g.display_name.as_deref()),
                contingency: group.and_then(|g| g.contingency.as_deref()),
                status_url: config.daemon.public_url.as_deref(),
                grafana_url: config.daemon.grafana_url.as_deref(),
                tz: config.daemon.timezone,
                now_ms: now.timestamp_millis(),
            };
            for (addr, (lang, sev, only)) in to {
                let mine: Vec<(News, &Consignment)> = items
                    .iter()
                    // Warnings, and the all-clear after them, only to those who take warnings.
                    .filter(|(n, _)| matches!(n, News::Breach | News::Reminder) || sev == Severity::Warning)
                    .filter(|(_, c)| only.as_ref().is_none_or(|s| s.contains(c.tracking.as_str())))
                    .map(|(n, c)| (*n, c))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let (subject, text, html) = mail::render(&mine, &cx, lang);
                out.push(Outgoing {
                    kind: "postal",
                    incident_opened_ms: None,
                    recipients: vec![addr],
                    subject,
                    text,
                    html,
                });
            }
        }
        out
    }
}

/// One tracking request: the body of a 2xx answer (at most [`MAX_BODY`]), else a failure.
async fn fetch(client: &reqwest::Client, op: &PostalOperator, chunk: &[String]) -> Result<Vec<u8>, Failure> {
    let numbers: Vec<String> = chunk.iter().map(|t| crate::text::url_encode(t)).collect();
    let url = op.track_url.replace("{tracking}", &numbers.join(&op.batch_separator));
    let mut req = client.request(op.method.clone(), url).timeout(op.timeout);
    for (k, v) in &op.headers {
        req = req.header(k, v);
    }
    let mut resp = req.send().await.map_err(crate::probe::http::classify)?;
    let status = resp.status().as_u16();
    if status == 404 && op.batch_size == 1 {
        // The API works; it does not know this number (yet).
        return Err(Failure::new(FailureKind::Answer, "the operator does not know this tracking number (404)"));
    }
    if !(200..300).contains(&status) {
        return Err(Failure::new(FailureKind::Status, format!("status {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(crate::probe::http::classify)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::new(FailureKind::TooLarge, format!("answer larger than {} KiB", MAX_BODY / 1024)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
