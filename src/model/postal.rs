//! A consignment and its tracking, as the store keeps them and the postal tracker, the API, the
//! e-mails and the report read them. Their SLA logic (`Consignment::evaluate`) is the postal
//! module's; here are the data and their stored names.

use serde::Serialize;

/// The normalised tracking vocabulary (DESIGN.md), what operators' statuses map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tracking {
    PreTransit,
    InTransit,
    OutForDelivery,
    Delivered,
    FailedAttempt,
    Exception,
    Returned,
    Lost,
    Unknown,
}

impl Tracking {
    pub fn as_str(self) -> &'static str {
        match self {
            Tracking::PreTransit => "pre_transit",
            Tracking::InTransit => "in_transit",
            Tracking::OutForDelivery => "out_for_delivery",
            Tracking::Delivered => "delivered",
            Tracking::FailedAttempt => "failed_attempt",
            Tracking::Exception => "exception",
            Tracking::Returned => "returned",
            Tracking::Lost => "lost",
            Tracking::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Tracking> {
        Some(match s {
            "pre_transit" => Tracking::PreTransit,
            "in_transit" => Tracking::InTransit,
            "out_for_delivery" => Tracking::OutForDelivery,
            "delivered" => Tracking::Delivered,
            "failed_attempt" => Tracking::FailedAttempt,
            "exception" => Tracking::Exception,
            "returned" => Tracking::Returned,
            "lost" => Tracking::Lost,
            "unknown" => Tracking::Unknown,
            _ => return None,
        })
    }

    /// Lost, returned or damaged: the consignment will not arrive as promised.
    pub fn is_failure(self) -> bool {
        matches!(self, Tracking::Exception | Tracking::Returned | Tracking::Lost)
    }
}

/// A consignment's SLA state: the `state` label of `thongsuot_postal_consignments` (contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    OnTrack,
    DeliveredOnTime,
    DeliveredLate,
    Overdue,
    Failed,
    Unknown,
}

impl SlaState {
    pub const ALL: [SlaState; 6] = [
        SlaState::OnTrack,
        SlaState::DeliveredOnTime,
        SlaState::DeliveredLate,
        SlaState::Overdue,
        SlaState::Failed,
        SlaState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::OnTrack => "on_track",
            SlaState::DeliveredOnTime => "delivered_on_time",
            SlaState::DeliveredLate => "delivered_late",
            SlaState::Overdue => "overdue",
            SlaState::Failed => "failed",
            SlaState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<SlaState> {
        SlaState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A broken promise: overdue, delivered late, failed.
    pub fn is_breach(self) -> bool {
        matches!(self, SlaState::Overdue | SlaState::DeliveredLate | SlaState::Failed)
    }
}

/// An early warning on a consignment that is still on track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// In transit with no tracking event for `stale_after`.
    Stale,
    /// The deadline is within `at_risk_before` and it is not out for delivery.
    AtRisk,
}

impl Warning {
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::Stale => "stale",
            Warning::AtRisk => "at_risk",
        }
    }

    pub fn parse(s: &str) -> Option<Warning> {
        match s {
            "stale" => Some(Warning::Stale),
            "at_risk" => Some(Warning::AtRisk),
            _ => None,
        }
    }
}

/// One tracking event, normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackEvent {
    pub at_ms: i64,
    pub status: Tracking,
    /// The operator's own word for it.
    pub raw: String,
    pub location: Option<String>,
}

/// A registered consignment and what is known of it.
#[derive(Debug, Clone, Serialize)]
pub struct Consignment {
    pub tracking: String,
    pub operator: String,
    pub kind: String,
    pub description: Option<String>,
    pub origin: Option<String>,
    pub destination: Option<String>,
    pub accepted_ms: i64,
    pub deadline_ms: i64,
    /// Contact names or e-mail addresses told about this consignment besides the operator's group.
    pub contacts: Vec<String>,
    /// `csv` or `api`.
    pub source: String,
    /// The latest tracking status.
    pub status: Tracking,
    pub status_raw: Option<String>,
    pub location: Option<String>,
    pub last_event_ms: Option<i64>,
    pub delivered_ms: Option<i64>,
    pub last_poll_ms: Option<i64>,
    /// Last time the tracking API gave a usable answer for it.
    pub last_ok_ms: Option<i64>,
    /// Why the latest tracking attempt gave nothing usable (kept and shown).
    pub error: Option<String>,
    pub state: SlaState,
    pub warning: Option<Warning>,
    /// The state/warning the last e-mail told about (`state` or `state+warning`).
    #[serde(skip)]
    pub notified: Option<String>,
    /// When the last e-mail about it was queued: an overdue one is reminded of every
    /// `repeat_interval` of its operator's group.
    #[serde(skip)]
    pub notified_ms: Option<i64>,
}
