//! A change of a target's state: what the scheduler tells the ledger, the notifier and the log.

use chrono::{DateTime, Utc};

use crate::probe::Failure;

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
