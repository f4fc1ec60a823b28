//! Incidents and queued e-mails as the store keeps them: what the notifier opens, tells and
//! closes, and what the sender delivers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    Outage,
    Degraded,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Outage => "outage",
            IncidentKind::Degraded => "degraded",
        }
    }

    pub fn parse(s: &str) -> IncidentKind {
        if s == "degraded" { IncidentKind::Degraded } else { IncidentKind::Outage }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    pub id: i64,
    pub group: String,
    pub target: String,
    #[serde(serialize_with = "kind_str")]
    pub kind: IncidentKind,
    /// Start of the outage or congestion (backdated to the first failed probe).
    pub since_ms: i64,
    /// When the incident was opened (confirmed).
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub acked_ms: Option<i64>,
    pub acked_by: Option<String>,
    pub notified_ms: Option<i64>,
    pub escalated_ms: Option<i64>,
    pub silenced: bool,
    /// When its resolution was queued to be told (the notifier's bookkeeping, not in the API).
    #[serde(skip)]
    pub resolved_told_ms: Option<i64>,
}

fn kind_str<S: serde::Serializer>(k: &IncidentKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// One e-mail as queued: rendered, with its recipients.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: &'static str,
    /// When the incident was opened (confirmed), for the latency metric.
    pub incident_opened_ms: Option<i64>,
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub incident_opened_ms: Option<i64>,
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: i64,
}

/// Intervals open with no incident, and (incident id, end) of open incidents that ended.
pub type Reconcile = (Vec<Unreconciled>, Vec<(i64, i64)>);

/// An outage or congestion interval open in the store with no incident (see
/// [`NotifyDb::unreconciled`]).
#[derive(Debug, Clone)]
pub struct Unreconciled {
    pub target: String,
    pub group: String,
    pub kind: IncidentKind,
    pub since_ms: i64,
    pub reason: Option<String>,
    pub detail: Option<String>,
}
