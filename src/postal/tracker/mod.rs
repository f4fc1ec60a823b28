//! The consignment tracker: keeps the registered consignments in memory (and in the store),
//! re-reads the CSV file when it changes, polls each operator's tracking API for consignments
//! not yet delivered (every `poll`, within the operator's rate limit and concurrency), takes
//! pushed events, evaluates SLA states, and turns what changed into e-mails and metrics.

mod evaluate;
mod poll;
mod queries;
mod register;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Consignment;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::probe::postal::ApiHealth;
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

    /// (now, stale_after, at_risk_before) in ms, to show states as of now.
    fn clock(&self) -> (i64, i64, i64) {
        let config = self.config.borrow().clone();
        let (stale, risk) = config
            .postal
            .as_ref()
            .map_or((i64::MAX, 0), |p| (p.stale_after.as_millis() as i64, p.at_risk_before.as_millis() as i64));
        (now_ms(), stale, risk)
    }
}
