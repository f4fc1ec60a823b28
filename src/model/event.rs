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

/// One test call or message as the store records it (event `kpi`): what the report's call setup
/// success, SMS completion and their times are computed from. Stored as JSON; the fields are in
/// alphabetical order, as the records written before this type have them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KpiRecord {
    /// `call` or `sms`.
    #[serde(default)]
    pub kind: String,
    /// Setup time (calls) or delivery time (messages) of a successful one.
    #[serde(default)]
    pub ms: Option<u64>,
    #[serde(default)]
    pub ok: bool,
    /// Post-dial delay of a call, successful or not.
    #[serde(default)]
    pub pdd_ms: Option<u64>,
    /// The failure's label when it failed.
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::KpiRecord;

    #[test]
    fn a_kpi_record_is_stored_as_before_and_read_back() {
        let r = KpiRecord { kind: "call".into(), ms: Some(1200), ok: true, pdd_ms: Some(800), reason: None };
        let text = serde_json::to_string(&r).expect("json");
        // The shape written by the json! blob this type replaced (keys sorted, nulls kept).
        assert_eq!(text, r#"{"kind":"call","ms":1200,"ok":true,"pdd_ms":800,"reason":null}"#);
        assert_eq!(serde_json::from_str::<KpiRecord>(&text).expect("read"), r);
        let old = r#"{"kind":"sms","ms":null,"ok":false,"pdd_ms":null,"reason":"timeout"}"#;
        let read: KpiRecord = serde_json::from_str(old).expect("old record");
        assert_eq!((read.ok, read.reason.as_deref()), (false, Some("timeout")));
    }
}
