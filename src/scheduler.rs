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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Target};
use crate::metrics::{Metrics, TargetMetrics};
use crate::probe::{self, Failure, FailureKind, Outcome, Probers};
use crate::sla::window::{Change, CongestionWindow, Thresholds};
use crate::sla::{Health, StateMachine, Transition};
use crate::status::{Board, Entry, TargetStatus};
use crate::store::{IntervalKind, Op, Restored, StoreHandle};

mod calendar;
use calendar::{Calendar, Due};

/// A change of a target's state, for the ledger, the notifier and the log.
#[derive(Debug, Clone)]
pub enum Event {
    Down {
        target: String,
        group: String,
        since: DateTime<Utc>,
        failure: Option<Failure>,
    },
    Up {
        target: String,
        group: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Congestion started (loss or latency over thresholds in the window).
    Degraded {
        target: String,
        group: String,
        since: DateTime<Utc>,
        reason: String,
    },
    Recovered {
        target: String,
        group: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// The monitor itself cannot observe the target (`fault`: setup, panic). For whoever runs
    /// the monitor, never the carrier's contacts.
    MonitorFault {
        target: String,
        group: String,
        since: DateTime<Utc>,
        fault: &'static str,
        detail: String,
    },
    /// The monitor observes the target again.
    MonitorRestored {
        target: String,
        group: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

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
    /// a context switch (dear in a VM): measured at 2,000 probes/s, one engine spends 15-25 %
    /// less CPU per probe than two.
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
        for kind in ["icmp", "tcp", "http", "dns", "tls", "sip", "heartbeat", "postal", "call", "sms"] {
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
                        state: health.label(),
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

/// The engine's wake-up grid: a probe starts at most this late because of it.
const TICK_MS: u64 = 5;

/// The load one engine takes before another starts: a quarter of a core at the CPU cost per
/// probe measured at saturation, which leaves room for the dearer probes of a low rate (cold
/// caches, a wake-up per tick) and for bursts.
const ENGINE_BUDGET_US: f64 = 250_000.0;

/// Estimated CPU µs of one probe of `target` (bench/results: tcp 30, icmp 25 an echo, dns 24,
/// http 85 on a fresh connection; a TLS handshake verifies a certificate chain).
fn probe_cost_us(target: &Target) -> f64 {
    match &target.spec {
        probe::ProbeSpec::Icmp(s) => 25.0 * f64::from(s.count.max(1)),
        probe::ProbeSpec::Tcp(_) | probe::ProbeSpec::Dns(_) => 30.0,
        probe::ProbeSpec::Http(s) if s.url.scheme() == "https" => 400.0,
        probe::ProbeSpec::Http(_) => 90.0,
        probe::ProbeSpec::Tls(_) => 400.0,
        probe::ProbeSpec::Sip(_) => 60.0,
        probe::ProbeSpec::Heartbeat(_) => 5.0,
        probe::ProbeSpec::Postal(_) | probe::ProbeSpec::Call(_) | probe::ProbeSpec::Sms(_) => 500.0,
    }
}

/// An engine running on its own thread.
struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// Fires when the engine has stopped (its probes in flight done).
    stopped: Option<oneshot::Receiver<()>>,
    /// Estimated load of its targets (CPU µs per second, from [`probe_cost_us`]).
    load: f64,
}

impl EngineHandle {
    /// Runs `engine` on a thread of its own with a single-threaded runtime: its probe tasks,
    /// their sockets and timers stay on that thread, with no wake-ups across threads. Without a
    /// thread, it runs as a task of the caller's runtime.
    fn start(i: usize, engine: Engine, cancel: CancellationToken, hard: CancellationToken) -> EngineHandle {
        let (commands, rx) = mpsc::unbounded_channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let run = async move {
            engine.run(rx, cancel, hard).await;
            let _ = stopped_tx.send(());
        };
        // Shared with the thread: if it or its runtime cannot start, the loop is still here.
        let pending = Arc::new(std::sync::Mutex::new(Some(Box::pin(run))));
        let take = |p: &std::sync::Mutex<Option<_>>| p.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = {
            let pending = pending.clone();
            std::thread::Builder::new().name(format!("thongsuot-probe-{i}")).spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(()));
                // Spawned, not polled by `block_on` itself: wake-ups between the loop and its
                // probe tasks then stay in the runtime's own queue (no eventfd write for each).
                // Dropping the runtime at the end drops any probe task left after a hard stop.
                if let Some(run) = take(&pending) {
                    let _ = rt.block_on(async move { tokio::spawn(run).await });
                }
            })
        };
        let started = match thread {
            Ok(_) => started_rx.recv().unwrap_or_else(|_| Err("the thread ended".into())),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = started {
            tracing::warn!("probe thread {i} not started ({e}): probing from the main runtime");
            if let Some(run) = take(&pending) {
                tokio::spawn(run);
            }
        }
        EngineHandle { commands, stopped: Some(stopped), load: 0.0 }
    }
}

/// The loop that starts the probes of its targets: a queue of slots ordered by due time and one
/// timer for its head. A due slot is handed to a short-lived probe task, which hands it back
/// when done.
struct Engine {
    shared: Arc<Shared>,
    clock: Clock,
    /// Every target by id; `None` while a probe task has it.
    slots: HashMap<u64, Option<Box<Slot>>>,
    /// `(due, id)` by tick; entries of stopped slots are skipped when they come up.
    queue: Calendar,
    /// The entries of the tick being started (kept for its capacity).
    due_now: Vec<Due>,
    /// Stops asked while the target was being probed, answered when its probe ends.
    stopping: HashMap<u64, oneshot::Sender<Box<Slot>>>,
    /// New copies of targets being probed, taken when their probe ends.
    adopting: HashMap<u64, Arc<Target>>,
    in_flight: usize,
    done_tx: mpsc::UnboundedSender<Back>,
    done_rx: mpsc::UnboundedReceiver<Back>,
}

impl Engine {
    fn new(shared: Arc<Shared>, clock: Clock) -> Engine {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Engine {
            shared,
            clock,
            slots: HashMap::new(),
            queue: Calendar::new(TICK_MS),
            due_now: Vec::new(),
            stopping: HashMap::new(),
            adopting: HashMap::new(),
            in_flight: 0,
            done_tx,
            done_rx,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
        hard: CancellationToken,
    ) {
        let sleep = tokio::time::sleep_until(self.clock.instant(0));
        tokio::pin!(sleep);
        // Never polled, always one tick after `sleep`: when `sleep` fires, this is the earliest
        // timer left, and tokio's timer then knows it will wake by it. A timer registered
        // earlier than the earliest one known (none known once `sleep` fired alone) makes tokio
        // wake its own thread through an eventfd write and a spurious `epoll_wait` return: that
        // was the next tick's timer and every probe's timeout, 2.4 writes an HTTP probe.
        let after = tokio::time::sleep_until(self.clock.instant(TICK_MS));
        tokio::pin!(after);
        let mut armed = None;
        loop {
            // Woken on a grid of TICK ms: the probes due within one tick start together, one
            // wake-up for many (each costs a context switch, dear in a VM).
            let head = self.queue.head().map(|tick| tick * TICK_MS);
            if head != armed {
                if let Some(due) = head {
                    sleep.as_mut().reset(self.clock.instant(due));
                    // A fresh timer, registered at once: one moved later keeps its place in
                    // tokio's wheel (only its deadline changes) and wakes the thread there.
                    let after_due = self.clock.instant(due + TICK_MS);
                    after.set(tokio::time::sleep_until(after_due));
                    after.as_mut().reset(after_due);
                }
                armed = head;
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(back) = self.done_rx.recv() => match back {
                    Back::Slot(slot) => self.finished(slot),
                    Back::Lost(id) => self.lost(id),
                },
                Some(command) = commands.recv() => self.command(command),
                _ = &mut sleep, if armed.is_some() => {
                    // What was due by the tick starts now, even if the clock reads a
                    // millisecond short of it (else the loop would spin until it does not).
                    let tick = armed.take().unwrap_or(0).max(self.clock.now_ms().div_ceil(TICK_MS) * TICK_MS);
                    if !self.start_due(tick, &cancel).await {
                        break;
                    }
                }
            }
        }
        // Probes in flight end on their own timeouts, or are dropped when the grace is over.
        while self.in_flight > 0 {
            tokio::select! {
                _ = hard.cancelled() => break,
                back = self.done_rx.recv() => match back {
                    Some(_) => self.in_flight -= 1,
                    None => break,
                },
            }
        }
    }

    fn lost(&mut self, id: u64) {
        self.in_flight -= 1;
        self.slots.remove(&id);
        self.adopting.remove(&id);
        // A reload waiting for this target gets nothing back and starts it afresh.
        self.stopping.remove(&id);
        tracing::error!(id, "a probe task panicked: its target is not probed until a reload changes it");
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Start(slot) => {
                self.queue.push(slot.due, slot.id);
                self.slots.insert(slot.id, Some(slot));
            }
            Command::Stop(id, reply) => match self.slots.get(&id) {
                Some(Some(_)) => {
                    if let Some(Some(slot)) = self.slots.remove(&id) {
                        let _ = reply.send(slot);
                    }
                }
                Some(None) => {
                    self.stopping.insert(id, reply);
                }
                None => {}
            },
            Command::Adopt(id, target) => match self.slots.get_mut(&id) {
                Some(Some(slot)) => slot.target = target,
                Some(None) => {
                    self.adopting.insert(id, target);
                }
                None => {}
            },
        }
    }

    fn finished(&mut self, mut slot: Box<Slot>) {
        self.in_flight -= 1;
        if let Some(target) = self.adopting.remove(&slot.id) {
            slot.target = target;
        }
        if let Some(reply) = self.stopping.remove(&slot.id) {
            self.slots.remove(&slot.id);
            let _ = reply.send(slot);
            return;
        }
        self.queue.push(slot.due, slot.id);
        if let Some(entry) = self.slots.get_mut(&slot.id) {
            *entry = Some(slot);
        }
    }

    /// Starts every slot that is due, tick by tick (in the order they were queued within a
    /// tick); waits for a permit when `max_in_flight`
    /// probes are running (later slots then start late: counted, never failures).
    async fn start_due(&mut self, now: u64, cancel: &CancellationToken) -> bool {
        let mut due_now = std::mem::take(&mut self.due_now);
        self.queue.take_until(now / TICK_MS, &mut due_now);
        let mut running = true;
        for (due, id) in due_now.drain(..) {
            if !self.start_one(due, id, cancel).await {
                // The engine is stopping: the rest of the tick is dropped with the drain.
                running = false;
                break;
            }
        }
        self.due_now = due_now;
        running
    }

    /// Starts the slot `id` if it is still due at `due`; false when the engine is stopping.
    async fn start_one(&mut self, due: u64, id: u64, cancel: &CancellationToken) -> bool {
        let Some(entry) = self.slots.get_mut(&id) else { return true };
        if !matches!(entry, Some(s) if s.due == due) {
            return true;
        }
        let permit = match self.shared.semaphore.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                _ = cancel.cancelled() => return false,
                p = self.shared.semaphore.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return false,
                },
            },
        };
        let Some(slot) = entry.take() else { return true };
        self.in_flight += 1;
        let guard = LostGuard { id, done: Some(self.done_tx.clone()) };
        tokio::spawn(probe_slot(slot, self.shared.clone(), self.clock, permit, guard));
        true
    }
}

/// A target leaves the config while down or congested: its open intervals end now, and the
/// notifier hears of it (its incidents close instead of reminding forever).
async fn close_open(shared: &Shared, target: &Target, carried: &Carried) {
    let now = Utc::now();
    if let Some(since) = carried.sm.down_since() {
        shared.store.send(Op::Close { target: target.name.clone(), kind: IntervalKind::Outage, end: ms(now) });
        let ev = Event::Up { target: target.name.clone(), group: target.group.clone(), since, until: now };
        let _ = shared.events.send(ev).await;
    }
    if let Some(since) = carried.window.as_ref().and_then(|w| w.degraded_since()) {
        shared.store.send(Op::Close { target: target.name.clone(), kind: IntervalKind::Degraded, end: ms(now) });
        let ev = Event::Recovered {
            target: target.name.clone(),
            group: target.group.clone(),
            since: from_ms(since),
            until: now,
        };
        let _ = shared.events.send(ev).await;
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Stable offset within any interval of a target whose name hashes to `hash` (`name_hash`).
fn phase_of(hash: u64, interval_ms: u64) -> u64 {
    hash % interval_ms.max(1)
}

/// The first slot `offset + k*interval` strictly after `after_ms`.
fn next_slot(after_ms: u64, interval_ms: u64, offset_ms: u64) -> u64 {
    let i = interval_ms.max(1);
    if after_ms < offset_ms {
        return offset_ms;
    }
    let base = after_ms - offset_ms;
    offset_ms + (base / i + 1) * i
}

/// The slot after `due`, now that the probe of `due` has ended at `now_ms`. A probe that ran into
/// the next slot (one that timed out with a timeout as long as the interval, plus the moment it
/// takes to record) makes that slot start at once, late, never skipped: a silent target is probed
/// as often as a live one. Only a stall that lost whole slots beyond that (the engine could not
/// start the probe in time: overload) skips them, counted in `skipped`, rather than bursting.
fn following_slot(due: u64, iv: u64, offset: u64, now_ms: u64, skipped: &prometheus::IntCounter) -> u64 {
    let next = next_slot(due, iv, offset);
    if now_ms < next.saturating_add(iv) {
        return next;
    }
    let fresh = next_slot(now_ms, iv, offset);
    skipped.inc_by((fresh - next) / iv.max(1));
    fresh
}

/// Probes one target once, records the result and hands the slot back with its next due time.
async fn probe_slot(
    mut slot: Box<Slot>,
    shared: Arc<Shared>,
    clock: Clock,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut guard: LostGuard,
) {
    let Slot { target, carried, tm, prepared, ident, interval, due, hash, .. } = &mut *slot;
    let ident = *ident;
    let started_ms = clock.now_ms();
    let lag = Duration::from_millis(started_ms.saturating_sub(*due));
    shared.metrics.scheduler_lag.observe(lag.as_secs_f64());
    if lag > Duration::from_secs(1) {
        shared.metrics.probes_late.inc();
    }
    let at = Utc::now();

    shared.metrics.probes_in_flight.inc();
    let probed = std::panic::AssertUnwindSafe(async {
        let paths = paths(target);
        // A setup that failed (an unreadable ca_file, say) is tried again at every slot.
        for (b, p) in paths.iter().zip(prepared.iter_mut()) {
            if p.is_err() {
                *p = probe::prepare(&target.spec, b, &shared.probers);
            }
        }
        if let ([binding], [prepared]) = (paths, prepared.as_slice()) {
            // One path (nearly every target): no join, no vector of futures.
            run_path(target, &shared, binding, prepared, ident).await
        } else {
            let runs = paths.iter().zip(prepared.iter()).map(|(b, p)| run_path(target, &shared, b, p, ident));
            let outcomes = Box::pin(futures_util::future::join_all(runs)).await;
            for (b, o) in paths.iter().zip(&outcomes) {
                let source = b.source.map(|s| s.to_string()).unwrap_or_default();
                shared.metrics.observe_uplink(tm, &source, o.ok());
            }
            quorum_outcome(paths, outcomes, target.quorum)
        }
    });
    let probed = futures_util::FutureExt::catch_unwind(probed).await;
    shared.metrics.probes_in_flight.dec();
    drop(permit);

    match probed {
        // The monitor could not make the probe here (no permission, a source address gone, an
        // unreadable ca_file): the monitor's trouble, not the carrier's failure.
        Ok(outcome) if outcome.failure.as_ref().is_some_and(|f| f.kind == FailureKind::Setup) => {
            let detail = outcome.failure.as_ref().map(|f| f.detail.clone()).unwrap_or_default();
            monitor_fault(target, &shared, carried, tm, "setup", detail, at).await;
        }
        Ok(outcome) => {
            monitor_restored(target, &shared, carried, at).await;
            record(target, &shared, carried, tm, &outcome, at, *interval).await;
        }
        // A bug of ours, not the target's failure: the slot is unobserved, and the target keeps
        // its place in the schedule (a panic in a probe used to leave it unprobed until a reload).
        Err(panic) => {
            shared.metrics.probe_panics.inc();
            let text = panic_text(&*panic).to_string();
            tracing::error!(
                target = %target.name,
                panic = %text,
                "a probe ended in an internal error (a bug of thongsuot, please report it): this slot is \
                 unobserved, not counted against the target"
            );
            monitor_fault(target, &shared, carried, tm, "panic", format!("internal error: {text}"), at).await;
        }
    }

    *interval = shared.config.borrow().interval_for(target, Utc::now());
    let iv = interval.as_millis() as u64;
    *due = following_slot(*due, iv, phase_of(*hash, iv), clock.now_ms(), &shared.metrics.probes_skipped);
    if let Some(done) = guard.done.take() {
        let _ = done.send(Back::Slot(slot));
    }
}

/// The slot at `at` could not observe the target: it is unobserved, not a result. Counted, shown
/// on the board and in `/readyz`, an unobserved interval opened in the store, and the monitor's
/// own contacts told (by the notifier) when the fault begins.
async fn monitor_fault(
    target: &Target,
    shared: &Shared,
    carried: &mut Carried,
    tm: &mut TargetMetrics,
    fault: &'static str,
    detail: String,
    at: DateTime<Utc>,
) {
    shared.metrics.monitor_fault(tm, fault);
    let downtime = carried.sm.unobserved(at);
    shared.metrics.observe_state(tm, None, downtime, false);
    // A bind error names the destination; the operator needs the local address that is gone.
    let detail = match target.binding.source {
        Some(src) if !detail.contains(&src.to_string()) => format!("{detail} (probing from {src})"),
        _ => detail,
    };
    let why = format!("{fault}: {detail}");
    let since = *carried.fault_since.get_or_insert(at);
    let name = {
        let mut s = carried.status.lock().unwrap_or_else(|p| p.into_inner());
        s.downtime_seconds += downtime.as_secs_f64();
        s.last_probe = Some(at);
        s.monitor_fault = Some(why.clone());
        s.monitor_fault_since = Some(since);
        s.name.clone()
    };
    shared.board.set_fault(&name, Some((why.clone(), since)));
    if since != at {
        return;
    }
    tracing::error!(target = %target.name, %fault, %detail, "MONITOR FAULT: the target cannot be observed from here; its slots are unobserved, not counted against it");
    shared.store.send(Op::Open {
        target: target.name.clone(),
        group: target.group.clone(),
        kind: IntervalKind::Unobserved,
        start: ms(at),
        reason: Some(fault.to_string()),
        detail: Some(detail.clone()),
    });
    let ev = Event::MonitorFault { target: target.name.clone(), group: target.group.clone(), since: at, fault, detail };
    if shared.events.send(ev).await.is_err() {
        shared.metrics.events_dropped.inc();
    }
}

/// A probe observed the target again at `at`: a monitor fault, if one was open, ends there.
async fn monitor_restored(target: &Target, shared: &Shared, carried: &mut Carried, at: DateTime<Utc>) {
    let Some(since) = carried.fault_since.take() else { return };
    let name = {
        let mut s = carried.status.lock().unwrap_or_else(|p| p.into_inner());
        s.monitor_fault = None;
        s.monitor_fault_since = None;
        s.name.clone()
    };
    shared.board.set_fault(&name, None);
    tracing::info!(target = %target.name, unobserved_seconds = (at - since).num_seconds(), "the target is observed again");
    shared.store.send(Op::Close { target: target.name.clone(), kind: IntervalKind::Unobserved, end: ms(at) });
    let ev = Event::MonitorRestored { target: target.name.clone(), group: target.group.clone(), since, until: at };
    if shared.events.send(ev).await.is_err() {
        shared.metrics.events_dropped.inc();
    }
}

/// The message of a panic, as `panic!` was given it.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "(no message)",
    }
}

/// One probe of `target` through one path, cut by a safety net just past its own timeout.
async fn run_path(
    target: &Target,
    shared: &Shared,
    binding: &probe::Binding,
    prepared: &Result<probe::Prepared, Failure>,
    ident: u16,
) -> Outcome {
    match prepared {
        Ok(p) => {
            let fut = probe::run(&target.spec, p, binding, &shared.probers, ident, target.timeout);
            match tokio::time::timeout(target.timeout + Duration::from_secs(1), fut).await {
                Ok(o) => o,
                Err(_) => Outcome {
                    failure: Some(Failure::timeout(probe::Phase::Processing, target.timeout)),
                    elapsed: target.timeout,
                    ..Outcome::default()
                },
            }
        }
        Err(f) => Outcome { failure: Some(f.clone()), ..Outcome::default() },
    }
}

/// Combines the outcomes of several uplinks: the target fails only when at least `quorum` of
/// them failed; the failure says which.
fn quorum_outcome(paths: &[probe::Binding], outcomes: Vec<Outcome>, quorum: u32) -> Outcome {
    let failed: Vec<(String, Failure)> = paths
        .iter()
        .zip(&outcomes)
        .filter_map(|(b, o)| o.failure.clone().map(|f| (b.source.map(|s| s.to_string()).unwrap_or_default(), f)))
        .collect();
    // An uplink the monitor could not use (its source address gone, say) does not vote: when
    // the verdict hangs on it, the slot is unobserved (a setup fault), neither up nor down.
    let blind = failed.iter().filter(|(_, f)| f.kind == probe::FailureKind::Setup).count() as u32;
    let real = failed.len() as u32 - blind;
    if real < quorum && real + blind >= quorum {
        let detail = failed
            .iter()
            .filter(|(_, f)| f.kind == probe::FailureKind::Setup)
            .map(|(s, f)| format!("via {s}: {}", f.detail))
            .collect::<Vec<_>>()
            .join("; ");
        let mut out = outcomes.into_iter().find(|o| !o.ok()).unwrap_or_default();
        out.failure = Some(Failure::new(
            probe::FailureKind::Setup,
            format!("{blind} of {} uplinks cannot be used, {real} failed ({quorum} needed): {detail}", paths.len()),
        ));
        return out;
    }
    if real < quorum {
        let mut ok = outcomes.iter().find(|o| o.ok()).cloned().unwrap_or_default();
        ok.failure = None;
        return ok;
    }
    let failed: Vec<_> = failed.into_iter().filter(|(_, f)| f.kind != probe::FailureKind::Setup).collect();
    let detail = failed.iter().map(|(s, f)| format!("via {s}: {f}")).collect::<Vec<_>>().join("; ");
    let mut out = outcomes.into_iter().find(|o| !o.ok()).unwrap_or_default();
    let kind = failed.first().map_or(probe::FailureKind::Io, |(_, f)| f.kind);
    out.failure = Some(Failure::new(kind, format!("down from {} of {} uplinks: {detail}", failed.len(), paths.len())));
    out
}

async fn record(
    target: &Target,
    shared: &Shared,
    carried: &mut Carried,
    tm: &mut TargetMetrics,
    outcome: &Outcome,
    at: DateTime<Utc>,
    interval: Duration,
) {
    shared.metrics.observe(tm, outcome);
    let obs = carried.sm.observe(outcome.ok(), at);
    let health = carried.sm.health();
    let up = match health {
        Health::Up => Some(true),
        Health::Down => Some(false),
        Health::Unknown => None,
    };
    shared.metrics.observe_state(tm, up, obs.downtime, obs.flap);

    // Congestion is judged while the target is not down; an outage supersedes it.
    let degr_change = match carried.window.as_mut() {
        Some(w) if health == Health::Down => w.reset(ms(at)),
        Some(w) => {
            let (sent, received) = outcome.echo.map_or((0, 0), |e| (e.sent, e.received));
            let latency = match &outcome.echo {
                Some(e) => e.rtt_avg,
                None => outcome.ok().then_some(outcome.elapsed),
            };
            w.observe(ms(at), sent, received, latency)
        }
        None => None,
    };
    if let Some(w) = &carried.window {
        shared.metrics.set_degraded(tm, w.degraded_since().is_some());
    }
    match &degr_change {
        Some(Change::Started { at, reason }) => {
            tracing::warn!(target = %target.name, group = %target.group, %reason, "target DEGRADED (congestion)");
            let ev = Event::Degraded {
                target: target.name.clone(),
                group: target.group.clone(),
                since: from_ms(*at),
                reason: reason.clone(),
            };
            if shared.events.send(ev).await.is_err() {
                shared.metrics.events_dropped.inc();
            }
            shared.store.send(Op::Open {
                target: target.name.clone(),
                group: target.group.clone(),
                kind: IntervalKind::Degraded,
                start: *at,
                reason: Some("congestion".into()),
                detail: Some(reason.clone()),
            });
        }
        Some(Change::Ended { since, until }) => {
            tracing::info!(target = %target.name, degraded_seconds = (until - since) / 1000, "congestion over");
            let ev = Event::Recovered {
                target: target.name.clone(),
                group: target.group.clone(),
                since: from_ms(*since),
                until: from_ms(*until),
            };
            if shared.events.send(ev).await.is_err() {
                shared.metrics.events_dropped.inc();
            }
            shared.store.send(Op::Close { target: target.name.clone(), kind: IntervalKind::Degraded, end: *until });
        }
        None => {}
    }
    // Test calls and messages are counted one by one: the report's KPIs (call setup success,
    // SMS completion, times) come from these.
    let kpi = match (&outcome.call, &outcome.sms) {
        (Some(c), _) => Some((c.setup, c.post_dial_delay)),
        (_, Some(s)) => Some((s.delivered, None)),
        _ => None,
    };
    if let Some((time, pdd)) = kpi {
        let ms_of = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        let detail = serde_json::json!({
            "kind": target.spec.kind(),
            "ok": outcome.ok(),
            "ms": ms_of(time).filter(|_| outcome.ok()),
            "pdd_ms": ms_of(pdd),
            "reason": outcome.failure.as_ref().map(|f| f.kind.label()),
        });
        shared.store.send(Op::Event {
            at: ms(at),
            target: target.name.clone(),
            event: "kpi",
            detail: Some(detail.to_string()),
        });
    }
    if obs.flap {
        shared.store.send(Op::Event {
            at: ms(at),
            target: target.name.clone(),
            event: "flap",
            detail: outcome.failure.as_ref().map(|f| f.to_string()),
        });
    }
    {
        let mut s = carried.status.lock().unwrap_or_else(|p| p.into_inner());
        if s.state != health.label() {
            s.since = match &obs.transition {
                Some(Transition::Down { since }) => Some(*since),
                Some(Transition::Up { until, .. }) => Some(*until),
                None => Some(at),
            };
        }
        s.state = health.label();
        s.last_probe = Some(at);
        s.last_ok = Some(outcome.ok());
        s.last_duration_seconds = Some(outcome.elapsed.as_secs_f64());
        if let Some(f) = &outcome.failure {
            s.last_failure = Some(f.detail.clone());
            s.last_failure_reason = Some(f.kind.label());
        }
        s.consecutive_failures = if outcome.ok() { 0 } else { s.consecutive_failures + 1 };
        s.downtime_seconds += obs.downtime.as_secs_f64();
        s.flaps += u64::from(obs.flap);
        s.interval_seconds = interval.as_secs_f64();
        s.packet_loss_ratio = outcome.echo.map(|e| e.loss_ratio());
        s.rtt_seconds = outcome.echo.and_then(|e| e.rtt_avg).map(|r| r.as_secs_f64());
        s.degraded_since = carried.window.as_ref().and_then(|w| w.degraded_since()).map(from_ms);
    }
    if obs.transition.is_some() || degr_change.is_some() {
        shared.sla_now.notify_one();
    }
    if let Some(tr) = obs.transition {
        match &tr {
            Transition::Down { since } => {
                shared.store.send(Op::Open {
                    target: target.name.clone(),
                    group: target.group.clone(),
                    kind: IntervalKind::Outage,
                    start: ms(*since),
                    reason: outcome.failure.as_ref().map(|f| f.kind.label().to_string()),
                    detail: outcome.failure.as_ref().map(|f| f.detail.clone()),
                });
                shared.store.send(Op::Event {
                    at: ms(at),
                    target: target.name.clone(),
                    event: "down",
                    detail: outcome.failure.as_ref().map(|f| f.to_string()),
                });
            }
            Transition::Up { until, .. } => {
                shared.store.send(Op::Close {
                    target: target.name.clone(),
                    kind: IntervalKind::Outage,
                    end: ms(*until),
                });
                shared.store.send(Op::Event { at: ms(at), target: target.name.clone(), event: "up", detail: None });
            }
        }
        let ev = match tr {
            Transition::Down { since } => Event::Down {
                target: target.name.clone(),
                group: target.group.clone(),
                since,
                failure: outcome.failure.clone(),
            },
            Transition::Up { since, until } => {
                Event::Up { target: target.name.clone(), group: target.group.clone(), since, until }
            }
        };
        // Awaited, not dropped: a slow notifier delays this target's next probe rather than
        // losing an outage or a recovery.
        if shared.events.send(ev).await.is_err() {
            shared.metrics.events_dropped.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_and_strictly_after() {
        assert_eq!(next_slot(0, 1000, 250), 250);
        assert_eq!(next_slot(1249, 1000, 250), 1250);
        assert_eq!(next_slot(1250, 1000, 250), 2250);
        // Phases spread targets across the interval.
        let phases: std::collections::HashSet<u64> =
            (0..100).map(|i| phase_of(crate::config::name_hash(&format!("t{i}")), 10_000) / 1000).collect();
        assert!(phases.len() >= 8, "phases cluster: {phases:?}");
    }

    #[test]
    fn a_probe_that_runs_into_the_next_slot_delays_it_and_a_stall_skips() {
        let skipped = prometheus::IntCounter::new("s", "s").expect("counter");
        // Slot 1250 probed, ended at 2251 (a 1 s timeout plus recording): 2250 starts late.
        assert_eq!(following_slot(1250, 1000, 250, 2251, &skipped), 2250);
        assert_eq!(following_slot(1250, 1000, 250, 3249, &skipped), 2250);
        assert_eq!(skipped.get(), 0);
        // Ended at 3250: slot 2250 passed whole and 3250 is starting; both are lost to a stall.
        assert_eq!(following_slot(1250, 1000, 250, 3250, &skipped), 4250);
        assert_eq!(skipped.get(), 2);
    }
    #[tokio::test]
    async fn a_panicking_probe_is_caught_with_its_message() {
        let caught = |f: fn() -> u32| async move {
            futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async move { f() })).await
        };
        assert_eq!(caught(|| 7).await.ok(), Some(7));
        let p = caught(|| panic!("index {} out of range", 3)).await.expect_err("caught");
        assert_eq!(panic_text(&*p), "index 3 out of range");
        let p = caught(|| panic!("plain")).await.expect_err("caught");
        assert_eq!(panic_text(&*p), "plain");
    }
}
