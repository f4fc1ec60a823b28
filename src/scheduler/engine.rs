//! The engine loops: each owns a calendar of its targets' next slots and starts the due ones
//! as probe tasks, within its time budget per tick; a stalled engine skips slots, never bursts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::slot::probe_slot;
use super::{Back, Calendar, Carried, Clock, Command, Due, Event, LostGuard, Shared, Slot, from_ms, ms};
use crate::config::Target;
use crate::probe::{self};
use crate::store::{IntervalKind, Op};

/// The engine's wake-up grid: a probe starts at most this late because of it.
pub(super) const TICK_MS: u64 = 5;

/// The load one engine takes before another starts: a quarter of a core at the CPU cost per
/// probe measured at saturation, which leaves room for the dearer probes of a low rate (cold
/// caches, a wake-up per tick) and for bursts.
pub(super) const ENGINE_BUDGET_US: f64 = 250_000.0;

/// Estimated CPU µs of one probe of `target`, rounded up from the per-kind figures in
/// `bench/results/` where there are some (http on a fresh connection; a TLS handshake verifies
/// a certificate chain).
pub(super) fn probe_cost_us(target: &Target) -> f64 {
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
pub(super) struct EngineHandle {
    pub(super) commands: mpsc::UnboundedSender<Command>,
    /// Fires when the engine has stopped (its probes in flight done).
    pub(super) stopped: Option<oneshot::Receiver<()>>,
    /// Estimated load of its targets (CPU µs per second, from [`probe_cost_us`]).
    pub(super) load: f64,
}

impl EngineHandle {
    /// Runs `engine` on a thread of its own with a single-threaded runtime: its probe tasks,
    /// their sockets and timers stay on that thread, with no wake-ups across threads. Without a
    /// thread, it runs as a task of the caller's runtime.
    pub(super) fn start(i: usize, engine: Engine, cancel: CancellationToken, hard: CancellationToken) -> EngineHandle {
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
pub(super) struct Engine {
    pub(super) shared: Arc<Shared>,
    pub(super) clock: Clock,
    /// Every target by id; `None` while a probe task has it.
    pub(super) slots: HashMap<u64, Option<Box<Slot>>>,
    /// `(due, id)` by tick; entries of stopped slots are skipped when they come up.
    pub(super) queue: Calendar,
    /// The entries of the tick being started (kept for its capacity).
    pub(super) due_now: Vec<Due>,
    /// Stops asked while the target was being probed, answered when its probe ends.
    pub(super) stopping: HashMap<u64, oneshot::Sender<Box<Slot>>>,
    /// New copies of targets being probed, taken when their probe ends.
    pub(super) adopting: HashMap<u64, Arc<Target>>,
    pub(super) in_flight: usize,
    pub(super) done_tx: mpsc::UnboundedSender<Back>,
    pub(super) done_rx: mpsc::UnboundedReceiver<Back>,
}

impl Engine {
    pub(super) fn new(shared: Arc<Shared>, clock: Clock) -> Engine {
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
pub(super) async fn close_open(shared: &Shared, target: &Target, carried: &Carried) {
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

pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
