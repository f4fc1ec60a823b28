//! The daemon's own health: the store writer's failures, the scheduler's load, sampled
//! for `/readyz` and the self-health metrics.

use std::sync::Arc;

use crate::metrics::Metrics;

/// The daemon's own health, for `/readyz` besides start-up and shutdown.
#[derive(Default)]
pub struct SelfHealth {
    /// Whether the store's writer can commit.
    pub writer: Arc<crate::store::writer::WriterHealth>,
    /// Why the scheduler is overloaded, while it is.
    overloaded: std::sync::Mutex<Option<String>>,
}

impl SelfHealth {
    pub fn overloaded(&self) -> Option<String> {
        self.overloaded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How often the scheduler's load is judged.
const LOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Past saturation the scheduler skips slots and starts probes late: say so in `/readyz` and the
/// log (a late probe is never a failure; time not probed is unobserved).
pub(super) async fn watch_load(metrics: Arc<Metrics>, health: Arc<SelfHealth>) {
    let mut tick = tokio::time::interval(LOAD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (0, 0, 0);
    loop {
        tick.tick().await;
        let now = (metrics.probes_skipped.get(), metrics.probes_late.get(), metrics.scheduler_lag.get_sample_count());
        let (skipped, late, started) = (now.0 - last.0, now.1 - last.1, now.2 - last.2);
        last = now;
        let verdict = (skipped > 0 || late * 100 > started.max(1)).then(|| {
            format!(
                "overloaded: {skipped} probes skipped and {late} of {started} started more than 1 s late in the last {}s; intervals are stretched (lower the number of targets, raise intervals or add a shard)",
                LOAD_EVERY.as_secs()
            )
        });
        let mut g = health.overloaded.lock().unwrap_or_else(|p| p.into_inner());
        match (&*g, &verdict) {
            (None, Some(v)) => tracing::warn!("{v}"),
            (Some(_), None) => tracing::info!("scheduler keeps its cadence again"),
            _ => {}
        }
        *g = verdict;
    }
}
