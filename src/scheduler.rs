//! The scheduler: one task per target, started at a stable phase within its interval (from a
//! hash of its name, so targets do not fire together and keep their cadence across restarts
//! and reloads), bounded by a semaphore, never bursting after a stall.
//!
//! Each task owns its target's state machine and metric handles: the probe path takes no
//! shared lock but the semaphore and its own board entry. Transitions go out as [`Event`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Target};
use crate::metrics::{Metrics, TargetMetrics};
use crate::probe::{self, Failure, Outcome, Probers};
use crate::sla::window::{Change, CongestionWindow, Thresholds};
use crate::sla::{Health, StateMachine, Transition};
use crate::status::{Board, Entry, TargetStatus};
use crate::store::{IntervalKind, Op, Restored, StoreHandle};

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
    window: Option<CongestionWindow>,
    /// Counters from the store to add once the metric handles exist (first start only).
    restored_downtime: Duration,
    restored_flaps: u64,
}

struct Running {
    /// Shared with the target's task: one copy besides the config's.
    target: Arc<Target>,
    cancel: CancellationToken,
    handle: JoinHandle<Carried>,
}

/// Owns the per-target tasks and applies config changes to them.
pub struct Scheduler {
    shared: Arc<Shared>,
    running: HashMap<String, Running>,
    root: CancellationToken,
    next_ident: u16,
}

/// What a reload changed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Applied {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

impl Scheduler {
    pub fn new(shared: Arc<Shared>, root: CancellationToken) -> Scheduler {
        Scheduler { shared, running: HashMap::new(), root, next_ident: std::process::id() as u16 }
    }

    /// Brings the running tasks in line with `config`: unchanged targets keep running
    /// untouched; changed ones restart with their state; removed ones stop.
    pub async fn apply(&mut self, config: &Config) -> Applied {
        let mut applied = Applied::default();
        let wanted: HashMap<&str, &Target> = config.active_targets().map(|t| (t.name.as_str(), t)).collect();

        let gone: Vec<String> = self.running.keys().filter(|n| !wanted.contains_key(n.as_str())).cloned().collect();
        for name in gone {
            if let Some(r) = self.running.remove(&name) {
                r.cancel.cancel();
                if let Ok(carried) = r.handle.await {
                    close_open(&self.shared, &r.target, &carried).await;
                    if let Some(tm) = &carried.metrics {
                        self.shared.metrics.remove_target(tm);
                    }
                }
                self.shared.board.remove(&name);
                applied.removed.push(name);
            }
        }

        let mut counts: HashMap<&'static str, i64> = HashMap::new();
        for t in config.active_targets() {
            *counts.entry(t.spec.kind()).or_default() += 1;
            let carried = match self.running.get(&t.name) {
                Some(r) if *r.target == *t => {
                    applied.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    let r = self.running.remove(&t.name).map(|r| {
                        r.cancel.cancel();
                        r.handle
                    });
                    applied.changed.push(t.name.clone());
                    match r {
                        Some(h) => h.await.ok(),
                        None => None,
                    }
                }
                None => {
                    applied.added.push(t.name.clone());
                    None
                }
            };
            self.spawn(t.clone(), carried);
        }
        for kind in ["icmp", "tcp", "http", "dns", "tls", "sip", "heartbeat", "postal", "call", "sms"] {
            self.shared.metrics.targets.with_label_values(&[kind]).set(counts.get(kind).copied().unwrap_or(0));
        }
        applied
    }

    fn spawn(&mut self, target: Target, carried: Option<Carried>) {
        let target = Arc::new(target);
        self.next_ident = self.next_ident.wrapping_add(1);
        let ident = self.next_ident;
        let cancel = self.root.child_token();
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
                        w
                    });
                }
                {
                    let mut s = c.status.lock().unwrap_or_else(|p| p.into_inner());
                    s.group = target.group.clone();
                    s.kind = target.spec.kind();
                    s.description = target.description.clone();
                }
                // Re-register: a removed-then-readded name must be on the board.
                c
            }
            None => {
                let now = Utc::now();
                let mut sm = StateMachine::new(target.confirm, target.recover);
                let (open_outage, open_degr, downtime_ms, flaps) = {
                    let mut r = shared.restored.lock().unwrap_or_else(|p| p.into_inner());
                    (
                        r.open_outages.remove(&target.name),
                        r.open_degradations.remove(&target.name),
                        r.downtime_ms.remove(&target.name).unwrap_or(0),
                        r.flaps.remove(&target.name).unwrap_or(0),
                    )
                };
                if let Some(since) = open_outage {
                    sm.restore_down(from_ms(since), now);
                    tracing::info!(target = %target.name, since = %from_ms(since).to_rfc3339(), "outage still open from the previous run");
                }
                let th = thresholds(&target);
                let mut window =
                    th.any().then(|| CongestionWindow::new(shared.config.borrow().defaults.degraded_window, th));
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
                    status: shared.board.insert(TargetStatus {
                        name: target.name.clone(),
                        group: target.group.clone(),
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
                        degraded_since: open_degr.map(from_ms),
                    }),
                }
            }
        };
        let handle = tokio::spawn(run_target(target.clone(), shared, carried, ident, cancel.clone()));
        self.running.insert(name, Running { target, cancel, handle });
    }

    /// Stops every task, waiting at most `grace` for probes in flight.
    pub async fn shutdown(&mut self, grace: Duration) {
        self.root.cancel();
        let handles: Vec<_> = self.running.drain().map(|(_, r)| r.handle).collect();
        let all = futures_util::future::join_all(handles);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("some probes were still running after the {grace:?} grace period");
        }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
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

/// Stable offset of a target within any interval, from the hash of its name.
fn phase_ms(name: &str, interval_ms: u64) -> u64 {
    crate::config::name_hash(name) % interval_ms.max(1)
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

async fn run_target(
    target: Arc<Target>,
    shared: Arc<Shared>,
    mut carried: Carried,
    ident: u16,
    cancel: CancellationToken,
) -> Carried {
    let kind = target.spec.kind();
    // Keep the series of a restarted target when its labels did not change.
    let mut tm = match carried.metrics.take() {
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
    // One path, or one per uplink (each needs its own client when the binding matters).
    let paths: Vec<probe::Binding> =
        if target.uplinks.is_empty() { vec![target.binding.clone()] } else { target.uplinks.clone() };
    let mut prepared: Vec<Result<probe::Prepared, Failure>> =
        paths.iter().map(|b| probe::prepare(&target.spec, b, &shared.probers)).collect();
    // Wall-clock slots mapped onto tokio's clock, which may be paused in tests.
    let base_wall = unix_ms(SystemTime::now());
    let base_instant = tokio::time::Instant::now();
    let to_instant = |ms: u64| base_instant + Duration::from_millis(ms.saturating_sub(base_wall));
    let now_ms = || base_wall + base_instant.elapsed().as_millis() as u64;

    let mut interval = shared.config.borrow().interval_for(&target, Utc::now());
    let mut due = next_slot(now_ms(), interval.as_millis() as u64, phase_ms(&target.name, interval.as_millis() as u64));

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(to_instant(due)) => {}
        }
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = shared.semaphore.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let started_ms = now_ms();
        let lag = Duration::from_millis(started_ms.saturating_sub(due));
        shared.metrics.scheduler_lag.observe(lag.as_secs_f64());
        if lag > Duration::from_secs(1) {
            shared.metrics.probes_late.inc();
        }
        let at = Utc::now();

        shared.metrics.probes_in_flight.inc();
        // A setup that failed (an unreadable ca_file, say) is tried again at every slot.
        for (b, p) in paths.iter().zip(prepared.iter_mut()) {
            if p.is_err() {
                *p = probe::prepare(&target.spec, b, &shared.probers);
            }
        }
        let runs = paths.iter().zip(&prepared).map(|(binding, prepared)| {
            let (target, shared) = (&target, &shared);
            async move {
                match prepared {
                    Ok(p) => {
                        // Boxed: the task of every target would otherwise be as large as the
                        // largest probe future (HTTP), idle most of the time.
                        let fut =
                            Box::pin(probe::run(&target.spec, p, binding, &shared.probers, ident, target.timeout));
                        // Safety net: a probe that overruns its own timeout is cut here.
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
        });
        let mut outcomes = futures_util::future::join_all(runs).await;
        let outcome = if outcomes.len() == 1 {
            outcomes.pop().unwrap_or_default()
        } else {
            for (b, o) in paths.iter().zip(&outcomes) {
                let source = b.source.map(|s| s.to_string()).unwrap_or_default();
                shared.metrics.observe_uplink(&mut tm, &source, o.ok());
            }
            quorum_outcome(&paths, outcomes, target.quorum)
        };
        shared.metrics.probes_in_flight.dec();
        drop(permit);

        // Boxed: its state (events, store ops) would otherwise sit in every idle target's task.
        Box::pin(record(&target, &shared, &mut carried, &mut tm, &outcome, at, interval)).await;

        // Next slot; after a stall, skip the missed ones (counted) rather than burst.
        interval = shared.config.borrow().interval_for(&target, Utc::now());
        let iv = interval.as_millis() as u64;
        let offset = phase_ms(&target.name, iv);
        let next = next_slot(due, iv, offset);
        let now = now_ms();
        if next < now {
            let fresh = next_slot(now, iv, offset);
            let missed = (fresh - next) / iv.max(1);
            shared.metrics.probes_skipped.inc_by(missed);
            due = fresh;
        } else {
            due = next;
        }
    }
    carried.metrics = Some(tm);
    carried
}

/// Combines the outcomes of several uplinks: the target fails only when at least `quorum` of
/// them failed; the failure says which.
fn quorum_outcome(paths: &[probe::Binding], outcomes: Vec<Outcome>, quorum: u32) -> Outcome {
    let failed: Vec<(String, Failure)> = paths
        .iter()
        .zip(&outcomes)
        .filter_map(|(b, o)| o.failure.clone().map(|f| (b.source.map(|s| s.to_string()).unwrap_or_default(), f)))
        .collect();
    if (failed.len() as u32) < quorum {
        let mut ok = outcomes.iter().find(|o| o.ok()).cloned().unwrap_or_default();
        ok.failure = None;
        return ok;
    }
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
        s.degraded_since = carried.window.as_ref().and_then(|w| w.degraded_since()).map(from_ms);
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
            (0..100).map(|i| phase_ms(&format!("t{i}"), 10_000) / 1000).collect();
        assert!(phases.len() >= 8, "phases cluster: {phases:?}");
    }
}
