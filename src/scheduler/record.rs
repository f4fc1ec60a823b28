//! What a finished probe changes: its metrics, the state machine and congestion window, the
//! KPI record, the store, the board and the events.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Carried, Event, Shared, from_ms, ms};
use crate::config::Target;
use crate::metrics::TargetMetrics;
use crate::probe::Outcome;
use crate::sla::window::Change;
use crate::sla::{Health, Observation, Transition};
use crate::store::{IntervalKind, Op};

/// What a finished probe changes, in this order: its metrics and the state machine, the
/// congestion window (and its interval and event), the KPI record, a flap, the board, then a
/// confirmed transition (its interval, its event).
pub(super) async fn record(
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
    let degr_change = congestion(carried, tm, shared, outcome, health, at);
    if let Some(change) = &degr_change {
        tell_congestion(target, shared, change).await;
    }
    kpi_record(target, shared, outcome, at);
    if obs.flap {
        shared.store.send(Op::Event {
            at: ms(at),
            target: target.name.clone(),
            event: "flap",
            detail: outcome.failure.as_ref().map(|f| f.to_string()),
        });
    }
    update_board(carried, health, &obs, outcome, at, interval);
    if obs.transition.is_some() || degr_change.is_some() {
        shared.sla_now.notify_one();
    }
    if let Some(tr) = obs.transition {
        tell_transition(target, shared, outcome, at, tr).await;
    }
}

/// The congestion window: fed while the target is not down (an outage resets it), and the
/// degraded gauge.
fn congestion(
    carried: &mut Carried,
    tm: &mut TargetMetrics,
    shared: &Shared,
    outcome: &Outcome,
    health: Health,
    at: DateTime<Utc>,
) -> Option<Change> {
    let change = match carried.window.as_mut() {
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
    change
}

/// Congestion begun or ended: its interval in the store and its event.
async fn tell_congestion(target: &Target, shared: &Shared, change: &Change) {
    match change {
        Change::Started { at, reason } => {
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
        Change::Ended { since, until } => {
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
    }
}

/// Test calls and messages are counted one by one: the report's KPIs (call setup success, SMS
/// completion, times) come from these records.
fn kpi_record(target: &Target, shared: &Shared, outcome: &Outcome, at: DateTime<Utc>) {
    let kpi = match (&outcome.call, &outcome.sms) {
        (Some(c), _) => Some((c.setup, c.post_dial_delay)),
        (_, Some(s)) => Some((s.delivered, None)),
        _ => None,
    };
    if let Some((time, pdd)) = kpi {
        let ms_of = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        let detail = crate::model::event::KpiRecord {
            kind: target.spec.kind().to_string(),
            ok: outcome.ok(),
            ms: ms_of(time).filter(|_| outcome.ok()),
            pdd_ms: ms_of(pdd),
            reason: outcome.failure.as_ref().map(|f| f.kind.label().to_string()),
        };
        shared.store.send(Op::Event {
            at: ms(at),
            target: target.name.clone(),
            event: "kpi",
            detail: serde_json::to_string(&detail).ok(),
        });
    }
}

/// The target's entry on the board (pages, API, `/readyz`).
fn update_board(
    carried: &Carried,
    health: Health,
    obs: &Observation,
    outcome: &Outcome,
    at: DateTime<Utc>,
    interval: Duration,
) {
    let mut s = carried.status.lock().unwrap_or_else(|p| p.into_inner());
    if s.state != health {
        s.since = match &obs.transition {
            Some(Transition::Down { since }) => Some(*since),
            Some(Transition::Up { until, .. }) => Some(*until),
            None => Some(at),
        };
    }
    s.state = health;
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

/// A confirmed outage or recovery: its interval and event in the store, then its event to the
/// notifier.
async fn tell_transition(target: &Target, shared: &Shared, outcome: &Outcome, at: DateTime<Utc>, tr: Transition) {
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
            shared.store.send(Op::Close { target: target.name.clone(), kind: IntervalKind::Outage, end: ms(*until) });
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
