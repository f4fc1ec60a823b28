//! The SLA task: the figures of the periods in force for the metrics and the status page,
//! re-evaluated on state transitions and every `SLA_EVERY`.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::{SLA_EVERY, SlaCache};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// Recomputes the SLA gauges from the store on a read-only connection, off the runtime.
/// After a transition, how long the SLA evaluation waits: the store writer commits meanwhile.
const WAKE_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

pub(super) async fn sla_metrics(
    path: std::path::PathBuf,
    config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    run_started: i64,
    wake: Arc<tokio::sync::Notify>,
    cache: SlaCache,
) {
    // Every evaluation runs on one long-lived blocking thread. A large fleet's reports are big
    // allocations; built on whichever pool thread was free, each would land in another allocator
    // arena, and resident memory would grow with every arena that held one.
    type Job = (Arc<Config>, oneshot::Sender<Result<(), crate::store::StoreError>>);
    let (jobs, mut queue) = mpsc::channel::<Job>(1);
    tokio::task::spawn_blocking(move || {
        let mut reader: Option<Store> = None;
        let mut ended = EndedPeriods::default();
        // Ends when the loop below (and its sender) goes.
        while let Some((cfg, reply)) = queue.blocking_recv() {
            // A panic costs one evaluation (the reply is dropped: the loop below logs it), not
            // the thread and with it every later SLA update.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &reader {
                Some(store) => evaluate_sla(&cfg, store, &metrics, run_started, &cache, &mut ended),
                None => match Store::open_read_only(&path) {
                    Ok(store) => evaluate_sla(&cfg, reader.insert(store), &metrics, run_started, &cache, &mut ended),
                    Err(e) => Err(e),
                },
            }));
            match result {
                Ok(result) => {
                    let _ = reply.send(result);
                }
                Err(_) => reader = None,
            }
        }
    });
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mut tick = tokio::time::interval(SLA_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut woken_ok = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {
                // A transition (or a reload): the figures on screen must show it now, not at the
                // next tick. Waiting a moment lets the store writer commit it and gathers the
                // transitions of a burst into one evaluation; a flap storm keeps this thread busy
                // a quarter of the time at most.
                tokio::time::sleep_until(woken_ok.max(tokio::time::Instant::now() + WAKE_SETTLE)).await;
            }
        }
        let started = tokio::time::Instant::now();
        let (reply, done) = oneshot::channel();
        let cfg = config.borrow().clone();
        if jobs.send((cfg, reply)).await.is_err() {
            tracing::error!("the SLA evaluation thread has stopped: SLA metrics are no longer updated");
            return;
        }
        match done.await {
            Ok(Err(e)) => tracing::warn!("SLA evaluation failed: {e}"),
            Err(_) => tracing::warn!("SLA evaluation panicked"),
            Ok(Ok(())) => {}
        }
        woken_ok = tokio::time::Instant::now() + started.elapsed() * 3;
    }
}

/// Reports of periods that have ended, built once after their end for the config they were
/// built with: their figures no longer change, and they keep only the targets with something
/// to report.
#[derive(Default)]
struct EndedPeriods {
    config: Option<Arc<Config>>,
    reports: HashMap<String, crate::report::Report>,
}

fn evaluate_sla(
    config: &Arc<Config>,
    store: &Store,
    metrics: &Metrics,
    run_started: i64,
    cache: &SlaCache,
    ended: &mut EndedPeriods,
) -> Result<(), crate::store::StoreError> {
    let started = std::time::Instant::now();
    let now = chrono::Utc::now();
    let vantage = config.daemon.vantage.as_str();
    if !ended.config.as_ref().is_some_and(|c| Arc::ptr_eq(c, config)) {
        *ended = EndedPeriods { config: Some(config.clone()), reports: HashMap::new() };
    }
    let mut reports = Vec::new();
    metrics.period_active.reset();
    for (name, window, period) in crate::report::metric_windows(config, now) {
        let active = window.start <= now.timestamp_millis() && now.timestamp_millis() < window.end;
        metrics.period_active.with_label_values(&[name.as_str(), vantage]).set(i64::from(active));
        let over = period.is_some() && window.end <= now.timestamp_millis();
        if let Some(r) = ended.reports.get(&name).filter(|_| over) {
            reports.push(r.clone());
            continue;
        }
        let mut report = crate::report::build(config, store, &name, window, period, now, Some(run_started))?;
        if over {
            report.omit_clean_targets();
            ended.reports.insert(name, report.clone());
        }
        reports.push(report);
    }
    // One set of reports for the SLA series, the status page and the API.
    let reports = Arc::new(reports);
    metrics.sla.replace(reports.clone(), vantage);
    metrics.sla_eval_seconds.set(started.elapsed().as_secs_f64());
    *cache.write().unwrap_or_else(|p| p.into_inner()) = reports;
    Ok(())
}
