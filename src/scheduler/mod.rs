//! The scheduler: engine loops over a calendar of targets by their next slot, each with one
//! timer for the head of its calendar. Each target's slot is a stable phase within its
//! interval (from a hash of its name, so targets do not fire together and keep their cadence
//! across restarts and reloads). A due target is handed to a short-lived probe task, bounded by
//! a semaphore, which records the result and hands the target back; after a stall missed slots
//! are skipped (counted), never burst.
//!
//! An idle target costs one boxed [`Slot`] and a queue entry: no task, no timer of its own. The
//! probe path takes no shared lock but the semaphore and the target's own board entry.
//! Transitions go out as [`Event`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Target};
use crate::metrics::{Metrics, TargetMetrics};
use crate::probe::{self, Failure, Probers};
use crate::sla::StateMachine;
use crate::sla::window::{CongestionWindow, Thresholds};
use crate::status::{Board, Entry, TargetStatus};
use crate::store::{IntervalKind, Op, Restored, StoreHandle};

mod calendar;
mod engine;
mod record;
mod slot;

pub use crate::model::event::Event;
use calendar::{Calendar, Due};
use engine::{ENGINE_BUDGET_US, Engine, EngineHandle, close_open, probe_cost_us, unix_ms};
use slot::{next_slot, phase_of};

/// What the tasks share.
pub struct Shared {
    pub probers: Probers,
    pub metrics: Arc<Metrics>,
    pub board: Arc<Board>,
    pub semaphore: Arc<Semaphore>,
    pub events: mpsc::Sender<Event>,
    pub config: watch::Receiver<Arc<Config>>,
    pub vantage: String,
    pub store: StoreHandle,
    /// What the store kept from the previous run, taken by each target at its first start.
    pub restored: std::sync::Mutex<Restored>,
    /// Wakes the SLA evaluation: figures on screen include a transition at once.
    pub sla_now: Arc<tokio::sync::Notify>,
}

/// The congestion thresholds a target's kind and config give it.
pub fn thresholds(target: &Target) -> Thresholds {
    match &target.spec {
        probe::ProbeSpec::Icmp(s) => Thresholds { max_loss: Some(s.max_loss), max_latency: Some(s.max_rtt) },
        probe::ProbeSpec::Http(s) => Thresholds { max_loss: None, max_latency: s.max_latency },
        probe::ProbeSpec::Tcp(_)
        | probe::ProbeSpec::Dns(_)
        | probe::ProbeSpec::Tls(_)
        | probe::ProbeSpec::Sip(_)
        | probe::ProbeSpec::Heartbeat(_)
        | probe::ProbeSpec::Postal(_)
        | probe::ProbeSpec::Call(_)
        | probe::ProbeSpec::Sms(_) => Thresholds { max_loss: None, max_latency: None },
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// State that survives a target's restart on reload.
pub struct Carried {
    sm: StateMachine,
    status: Entry,
    metrics: Option<TargetMetrics>,
    /// Boxed: only ICMP targets and HTTP targets with `max_latency` have one.
    window: Option<Box<CongestionWindow>>,
    /// Counters from the store to add once the metric handles exist (first start only).
    restored_downtime: Duration,
    restored_flaps: u64,
    /// Since when the monitor cannot observe the target (an open unobserved interval).
    fault_since: Option<DateTime<Utc>>,
}

/// One target between probes: held by the engine while it waits for its slot, by a probe task
/// while it is probed. Nothing of a target lives anywhere else (no task, no timer of its own).
struct Slot {
    id: u64,
    target: Arc<Target>,
    carried: Carried,
    tm: TargetMetrics,
    prepared: Vec<Result<probe::Prepared, Failure>>,
    ident: u16,
    interval: Duration,
    /// The wall-clock slot (ms since the epoch) of its next probe.
    due: u64,
    /// `name_hash` of its name, for its phase in any interval (the name is not read per probe).
    hash: u64,
}

/// The paths a target is probed through: its one binding, or one per uplink.
fn paths(target: &Target) -> &[probe::Binding] {
    if target.uplinks.is_empty() { std::slice::from_ref(&target.binding) } else { &target.uplinks }
}

/// Wall-clock slots mapped onto tokio's clock, which may be paused in tests.
#[derive(Clone, Copy)]
struct Clock {
    wall: u64,
    instant: tokio::time::Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock { wall: unix_ms(SystemTime::now()), instant: tokio::time::Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        self.wall + self.instant.elapsed().as_millis() as u64
    }

    fn instant(&self, ms: u64) -> tokio::time::Instant {
        self.instant + Duration::from_millis(ms.saturating_sub(self.wall))
    }
}

enum Command {
    Start(Box<Slot>),
    /// Hands the slot back once no probe of it is running.
    Stop(u64, oneshot::Sender<Box<Slot>>),
    /// An equal target from a new config, to hold instead of the old one.
    Adopt(u64, Arc<Target>),
}

struct Running {
    /// Shared with the target's slot: one copy besides the config's.
    target: Arc<Target>,
    id: u64,
    /// The engine holding its slot.
    engine: usize,
    /// Its share of that engine's load (estimated CPU µs per second).
    load: f64,
    /// The version of its `ca_file` it was prepared with (HTTP and TLS targets that have one).
    ca_stamp: Option<probe::FileStamp>,
}

/// Applies config changes to the engine, which owns every target's slot.
pub struct Scheduler {
    shared: Arc<Shared>,
    running: HashMap<String, Running>,
    /// Engines, each on a thread of its own, added as the load grows (at most one per core); a
    /// target stays on the one it started on.
    engines: Vec<EngineHandle>,
    max_engines: usize,
    root: CancellationToken,
    /// Cancelled when the grace period is over: the engines drop the probes still running.
    hard: CancellationToken,
    clock: Clock,
    next_id: u64,
    next_ident: u16,
}

/// What a reload changed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Applied {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    /// What changed beyond the targets: `period "exam-day-1" added`, `maintenance "x" changed`,
    /// `contact "noc" removed`, `[smtp] changed (takes effect at the next restart)`…
    pub other: Vec<String>,
}

impl Scheduler {
    /// Starts with one engine; more start as targets are added (must run inside a tokio runtime).
    pub fn new(shared: Arc<Shared>, root: CancellationToken) -> Scheduler {
        let max_engines = std::thread::available_parallelism().map_or(1, |n| n.get());
        Scheduler {
            shared,
            running: HashMap::new(),
            engines: Vec::new(),
            max_engines,
            root,
            hard: CancellationToken::new(),
            clock: Clock::new(),
            next_id: 0,
            next_ident: std::process::id() as u16,
        }
    }

    /// The engine for a new target of `load`, charged with it: the least loaded one, or a new one when every
    /// engine is past its budget and a core is left. One engine wakes once per tick for all
    /// its targets; two engines at a low rate each wake for half of them, and each wake-up is
    /// a context switch (dear in a VM), so one engine spends less CPU per probe than two.
    fn pick_engine(&mut self, load: f64) -> usize {
        let least =
            self.engines.iter().enumerate().min_by(|a, b| a.1.load.total_cmp(&b.1.load)).map(|(i, e)| (i, e.load));
        let i = match least {
            Some((i, l)) if l + load <= ENGINE_BUDGET_US || self.engines.len() >= self.max_engines => i,
            _ => {
                let i = self.engines.len();
                let engine = Engine::new(self.shared.clone(), self.clock);
                self.engines.push(EngineHandle::start(i, engine, self.root.clone(), self.hard.clone()));
                tracing::debug!(engines = i + 1, "probe engine started");
                i
            }
        };
        if let Some(e) = self.engines.get_mut(i) {
            e.load += load;
        }
        i
    }

    /// Sends to engine `engine`.
    fn send(&self, engine: usize, command: Command) -> Result<(), ()> {
        match self.engines.get(engine) {
            Some(e) => e.commands.send(command).map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Takes a target's slot back from its engine, waiting for a probe in flight.
    async fn stop(&mut self, r: &Running) -> Option<Box<Slot>> {
        if let Some(e) = self.engines.get_mut(r.engine) {
            e.load = (e.load - r.load).max(0.0);
        }
        let (tx, rx) = oneshot::channel();
        self.send(r.engine, Command::Stop(r.id, tx)).ok()?;
        rx.await.ok()
    }

    /// Brings the targets in line with `config`: unchanged targets keep their cadence
    /// untouched; changed ones restart with their state; removed ones stop.
    pub async fn apply(&mut self, config: &Config) -> Applied {
        let mut applied = Applied::default();
        let wanted: HashMap<&str, &Arc<Target>> = config.active_targets().map(|t| (t.name.as_str(), t)).collect();

        let gone: Vec<String> = self.running.keys().filter(|n| !wanted.contains_key(n.as_str())).cloned().collect();
        for name in gone {
            if let Some(r) = self.running.remove(&name) {
                if let Some(slot) = self.stop(&r).await {
                    close_open(&self.shared, &slot.target, &slot.carried).await;
                    self.shared.metrics.remove_target(&slot.tm);
                }
                self.shared.board.remove(&name);
                applied.removed.push(name);
            }
        }

        let mut counts: HashMap<&'static str, i64> = HashMap::new();
        // One look at each ca_file, however many targets share it.
        let mut stamps: HashMap<&std::path::Path, Option<probe::FileStamp>> = HashMap::new();
        for t in config.active_targets() {
            *counts.entry(t.spec.kind()).or_default() += 1;
            let ca_stamp =
                probe::ca_file(&t.spec).and_then(|p| *stamps.entry(p).or_insert_with(|| probe::file_stamp(p)));
            let carried = match self.running.get(&t.name) {
                // A ca_file rewritten in place (a CA renewed) restarts the target as a change does.
                Some(r) if *r.target == **t && r.ca_stamp == ca_stamp => {
                    applied.unchanged += 1;
                    // The new config's copy replaces the old one, which then goes with the old
                    // config: one copy of each target, reload after reload.
                    if !Arc::ptr_eq(&r.target, t) {
                        let _ = self.send(r.engine, Command::Adopt(r.id, t.clone()));
                        if let Some(r) = self.running.get_mut(&t.name) {
                            r.target = t.clone();
                        }
                    }
                    continue;
                }
                Some(_) => {
                    applied.changed.push(t.name.clone());
                    match self.running.remove(&t.name) {
                        Some(r) => self.stop(&r).await.map(|s| {
                            let Slot { mut carried, tm, .. } = *s;
                            carried.metrics = Some(tm);
                            carried
                        }),
                        None => None,
                    }
                }
                None => {
                    applied.added.push(t.name.clone());
                    None
                }
            };
            self.start(t.clone(), carried, ca_stamp);
        }
        for kind in probe::kind::Kind::ALL.map(probe::kind::Kind::name) {
            self.shared.metrics.targets.with_label_values(&[kind]).set(counts.get(kind).copied().unwrap_or(0));
        }
        applied
    }

    /// Starts `target`; `ca_stamp` is its `ca_file`'s stamp, taken before the file is read (a file
    /// rewritten in between is read again at the next reload).
    fn start(&mut self, target: Arc<Target>, carried: Option<Carried>, ca_stamp: Option<probe::FileStamp>) {
        self.next_ident = self.next_ident.wrapping_add(1);
        let ident = self.next_ident;
        let shared = self.shared.clone();
        let name = target.name.clone();
        let carried = match carried {
            Some(mut c) => {
                c.sm.set_thresholds(target.confirm, target.recover);
                // New thresholds or window: start a new window, keeping an open episode open.
                let th = thresholds(&target);
                let window_len = shared.config.borrow().defaults.degraded_window;
                if !c.window.as_ref().is_some_and(|w| w.same_settings(window_len, th)) {
                    let open = c.window.as_ref().and_then(|w| w.degraded_since());
                    if let (Some(since), false) = (open, th.any()) {
                        // No thresholds any more: the congestion episode ends here.
                        let now = Utc::now();
                        shared.store.send(Op::Close {
                            target: target.name.clone(),
                            kind: IntervalKind::Degraded,
                            end: ms(now),
                        });
                        let ev = Event::Recovered {
                            target: target.name.clone(),
                            group: target.group.clone(),
                            since: from_ms(since),
                            until: now,
                        };
                        if shared.events.try_send(ev).is_err() {
                            shared.metrics.events_dropped.inc();
                        }
                    }
                    c.window = th.any().then(|| {
                        let mut w = CongestionWindow::new(window_len, th);
                        if let Some(since) = open {
                            w.restore(since);
                        }
                        Box::new(w)
                    });
                }
                {
                    let mut s = c.status.lock().unwrap_or_else(|p| p.into_inner());
                    s.group = shared.board.group(&target.group);
                    s.kind = target.spec.kind();
                    s.description = target.description.clone();
                }
                // Re-register: a removed-then-readded name must be on the board.
                c
            }
            None => {
                let now = Utc::now();
                let mut sm = StateMachine::new(target.confirm, target.recover);
                let (open_outage, open_degr, open_fault, downtime_ms, flaps) = {
                    let mut r = shared.restored.lock().unwrap_or_else(|p| p.into_inner());
                    (
                        r.open_outages.remove(&target.name),
                        r.open_degradations.remove(&target.name),
                        r.open_unobserved.remove(&target.name),
                        r.downtime_ms.remove(&target.name).unwrap_or(0),
                        r.flaps.remove(&target.name).unwrap_or(0),
                    )
                };
                if let Some(since) = open_outage {
                    sm.restore_down(from_ms(since), now);
                    tracing::info!(target = %target.name, since = %from_ms(since).to_rfc3339(), "outage still open from the previous run");
                }
                let th = thresholds(&target);
                let mut window = th
                    .any()
                    .then(|| Box::new(CongestionWindow::new(shared.config.borrow().defaults.degraded_window, th)));
                if let (Some(w), Some(since)) = (window.as_mut(), open_degr) {
                    w.restore(since);
                }
                let health = sm.health();
                Carried {
                    sm,
                    metrics: None,
                    window,
                    restored_downtime: Duration::from_millis(downtime_ms.max(0) as u64),
                    restored_flaps: flaps,
                    // Still open from the previous run: closed at the first probe that observes.
                    fault_since: open_fault.map(from_ms),
                    status: shared.board.insert(TargetStatus {
                        name: target.name.as_str().into(),
                        group: shared.board.group(&target.group),
                        kind: target.spec.kind(),
                        description: target.description.clone(),
                        state: health,
                        since: open_outage.map(from_ms),
                        last_probe: None,
                        last_ok: None,
                        last_duration_seconds: None,
                        last_failure: None,
                        last_failure_reason: None,
                        consecutive_failures: 0,
                        downtime_seconds: downtime_ms.max(0) as f64 / 1000.0,
                        flaps: 0,
                        interval_seconds: shared.config.borrow().interval_for(&target, now).as_secs_f64(),
                        packet_loss_ratio: None,
                        rtt_seconds: None,
                        degraded_since: open_degr.map(from_ms),
                        monitor_fault: None,
                        monitor_fault_since: None,
                    }),
                }
            }
        };
        let kind = target.spec.kind();
        let mut carried = carried;
        // Keep the series of a restarted target when its labels did not change.
        let tm = match carried.metrics.take() {
            Some(tm) if tm.has_labels(&target.name, &target.group, kind, &shared.vantage) => tm,
            Some(old) => {
                shared.metrics.remove_target(&old);
                shared.metrics.target(&target.name, &target.group, kind, &shared.vantage)
            }
            None => shared.metrics.target(&target.name, &target.group, kind, &shared.vantage),
        };
        if !carried.restored_downtime.is_zero() || carried.restored_flaps > 0 {
            shared.metrics.restore_counters(&tm, carried.restored_downtime, carried.restored_flaps);
            carried.restored_downtime = Duration::ZERO;
            carried.restored_flaps = 0;
        }
        let prepared = paths(&target).iter().map(|b| probe::prepare(&target.spec, b, &shared.probers)).collect();
        let interval = shared.config.borrow().interval_for(&target, Utc::now());
        let iv = interval.as_millis() as u64;
        let hash = crate::config::name_hash(&target.name);
        let due = next_slot(self.clock.now_ms(), iv, phase_of(hash, iv));
        self.next_id += 1;
        let id = self.next_id;
        let load = probe_cost_us(&target) * paths(&target).len() as f64 / interval.as_secs_f64().max(0.001);
        let engine = self.pick_engine(load);
        let slot = Slot { id, target: target.clone(), carried, tm, prepared, ident, interval, due, hash };
        if self.send(engine, Command::Start(Box::new(slot))).is_err() {
            tracing::error!(target = %name, "the scheduler has stopped: target not started");
        }
        self.running.insert(name, Running { target, id, engine, load, ca_stamp });
    }

    /// Stops starting probes and waits at most `grace` for those in flight.
    pub async fn shutdown(&mut self, grace: Duration) {
        self.root.cancel();
        let stopped = futures_util::future::join_all(self.engines.iter_mut().filter_map(|e| e.stopped.take()));
        if tokio::time::timeout(grace, stopped).await.is_err() {
            tracing::warn!(
                stage = "probes",
                "shutdown: probes were still running after {grace:?} (half of daemon.shutdown_grace); stopped anyway"
            );
        }
        self.hard.cancel();
        self.running.clear();
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

impl Drop for Scheduler {
    /// Engines do not outlive their scheduler (an error path of the daemon, a test).
    fn drop(&mut self) {
        self.root.cancel();
        self.hard.cancel();
    }
}

/// What a probe task hands back: the slot, or word that it was lost (the task panicked).
enum Back {
    Slot(Box<Slot>),
    Lost(u64),
}

/// Says `Lost` unless the slot was handed back: a panicking probe must not leave its engine
/// waiting for it (a reload or a shutdown would wait forever).
struct LostGuard {
    id: u64,
    done: Option<mpsc::UnboundedSender<Back>>,
}

impl Drop for LostGuard {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(Back::Lost(self.id));
        }
    }
}
