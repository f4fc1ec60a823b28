//! The live board: each target's current state as last seen by its scheduler task, read by the
//! HTTP server (status page, JSON API). Each entry has its own lock, taken briefly by one
//! writer (the target's task) and by readers.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// Shared with the board's key (and the group with every target of the group) rather than
    /// copied: over a large fleet, a copy per target adds up.
    pub name: Arc<str>,
    pub group: Arc<str>,
    pub kind: &'static str,
    pub description: Option<String>,
    /// unknown | up | down
    pub state: crate::sla::Health,
    /// Start of the current state (outage start when down, backdated).
    pub since: Option<DateTime<Utc>>,
    pub last_probe: Option<DateTime<Utc>>,
    pub last_ok: Option<bool>,
    pub last_duration_seconds: Option<f64>,
    pub last_failure: Option<String>,
    pub last_failure_reason: Option<&'static str>,
    pub consecutive_failures: u32,
    pub downtime_seconds: f64,
    pub flaps: u64,
    pub interval_seconds: f64,
    pub packet_loss_ratio: Option<f64>,
    /// ICMP: the mean round trip of the last probe's echoes.
    pub rtt_seconds: Option<f64>,
    /// Start of the current congestion episode, if any.
    pub degraded_since: Option<DateTime<Utc>>,
    /// The monitor cannot observe this target (a setup failure, a caught panic): why, and since
    /// when. Its state is then the last verdict, not a new one.
    pub monitor_fault: Option<String>,
    pub monitor_fault_since: Option<DateTime<Utc>>,
}

pub type Entry = Arc<Mutex<TargetStatus>>;

/// Why the monitor cannot observe a target, and since when.
pub type Fault = (String, DateTime<Utc>);

#[derive(Default)]
pub struct Board {
    targets: RwLock<BTreeMap<Arc<str>, Entry>>,
    /// One copy of each group name.
    groups: Mutex<HashSet<Arc<str>>>,
    /// Targets the monitor cannot observe now: why, and since when (for `/readyz`, without a
    /// pass over every target).
    faults: Mutex<BTreeMap<Arc<str>, Fault>>,
}

impl Board {
    /// The board's copy of a group name, to put in a [`TargetStatus`].
    pub fn group(&self, name: &str) -> Arc<str> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = groups.get(name) {
            return g.clone();
        }
        let g: Arc<str> = name.into();
        groups.insert(g.clone());
        g
    }

    pub fn insert(&self, status: TargetStatus) -> Entry {
        let name = status.name.clone();
        let entry = Arc::new(Mutex::new(status));
        self.targets.write().unwrap_or_else(|p| p.into_inner()).insert(name, entry.clone());
        entry
    }

    pub fn remove(&self, name: &str) {
        self.targets.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// Records that the monitor cannot observe `name` (or clears it, with `None`).
    pub fn set_fault(&self, name: &Arc<str>, fault: Option<Fault>) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            Some(f) => faults.insert(name.clone(), f),
            None => faults.remove(name),
        };
    }

    /// The targets the monitor cannot observe now, in name order.
    pub fn faults(&self) -> Vec<(Arc<str>, String, DateTime<Utc>)> {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.iter().map(|(n, (why, since))| (n.clone(), why.clone(), *since)).collect()
    }

    /// A consistent-enough copy of every target, in name order.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        self.select(|_| true, 0, usize::MAX).1
    }

    /// The targets that pass `keep`, in name order: how many pass, and a copy of those from
    /// `offset` on, at most `limit` of them. Only the copies asked for are made.
    pub fn select(
        &self,
        keep: impl Fn(&TargetStatus) -> bool,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<TargetStatus>) {
        let map = self.targets.read().unwrap_or_else(|p| p.into_inner());
        let mut total = 0;
        let mut page = Vec::new();
        for e in map.values() {
            let t = e.lock().unwrap_or_else(|p| p.into_inner());
            if !keep(&t) {
                continue;
            }
            if total >= offset && page.len() < limit {
                page.push(t.clone());
            }
            total += 1;
        }
        (total, page)
    }

    pub fn get(&self, name: &str) -> Option<TargetStatus> {
        let map = self.targets.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).map(|e| e.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}
