//! One slot of one target: when it is due (a stable phase in its interval), running its probe
//! on each uplink (the quorum), and what a panic or a monitor fault makes of it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::record::record;
use super::{Back, Carried, Clock, Event, LostGuard, Shared, Slot, ms, paths};
use crate::config::Target;
use crate::metrics::TargetMetrics;
use crate::probe::{self, Failure, FailureKind, Outcome};
use crate::store::{IntervalKind, Op};

/// Stable offset within any interval of a target whose name hashes to `hash` (`name_hash`).
pub(super) fn phase_of(hash: u64, interval_ms: u64) -> u64 {
    hash % interval_ms.max(1)
}

/// The first slot `offset + k*interval` strictly after `after_ms`.
pub(super) fn next_slot(after_ms: u64, interval_ms: u64, offset_ms: u64) -> u64 {
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
pub(super) fn following_slot(due: u64, iv: u64, offset: u64, now_ms: u64, skipped: &prometheus::IntCounter) -> u64 {
    let next = next_slot(due, iv, offset);
    if now_ms < next.saturating_add(iv) {
        return next;
    }
    let fresh = next_slot(now_ms, iv, offset);
    skipped.inc_by((fresh - next) / iv.max(1));
    fresh
}

/// Probes one target once, records the result and hands the slot back with its next due time.
pub(super) async fn probe_slot(
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
pub(super) async fn monitor_fault(
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
pub(super) async fn monitor_restored(target: &Target, shared: &Shared, carried: &mut Carried, at: DateTime<Utc>) {
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
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "(no message)",
    }
}

/// One probe of `target` through one path, cut by a safety net just past its own timeout.
pub(super) async fn run_path(
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
pub(super) fn quorum_outcome(paths: &[probe::Binding], outcomes: Vec<Outcome>, quorum: u32) -> Outcome {
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
