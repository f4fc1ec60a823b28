//! Heartbeat (push) targets: exam sites and post offices behind NAT call
//! `POST /api/v1/heartbeat/{target}`; the probe succeeds while the last call is no older than
//! `every`. Silence becomes an outage through the same confirm/recover state machine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Failure, FailureKind, Outcome, fmt_duration};

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatSpec {
    /// The target's own name: the key pushes arrive under.
    pub name: String,
    pub every: Duration,
}

/// Last push per target name. Before any push, the daemon's start counts as the last one, so a
/// site that never calls goes down after `every` (plus confirmation).
pub struct Heartbeats {
    started: Instant,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats { started: Instant::now(), seen: Mutex::new(HashMap::new()) }
    }
}

impl Heartbeats {
    pub fn record(&self, name: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), Instant::now());
    }

    fn last(&self, name: &str) -> (Instant, bool) {
        match self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            Some(t) => (*t, true),
            None => (self.started, false),
        }
    }
}

pub fn probe(spec: &HeartbeatSpec, heartbeats: &Heartbeats) -> Outcome {
    let (last, pushed) = heartbeats.last(&spec.name);
    let silent = last.elapsed();
    let failure = (silent > spec.every).then(|| {
        Failure::new(
            FailureKind::Timeout,
            if pushed {
                format!("no heartbeat for {} (expected every {})", fmt_duration(silent), fmt_duration(spec.every))
            } else {
                format!(
                    "no heartbeat since the daemon started {} ago (expected every {})",
                    fmt_duration(silent),
                    fmt_duration(spec.every)
                )
            },
        )
    });
    Outcome { failure, elapsed: Duration::ZERO, ..Outcome::default() }
}
