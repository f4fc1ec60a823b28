//! Postal consignments: the second promise, "100 % of exam papers and admission notices
//! delivered safely and on time". Consignments come from a CSV file and the API
//! ([`intake`]), their tracking from operators' APIs through a configurable JSON adapter
//! ([`adapter`]) polled by the [`tracker`] or pushed to a signed webhook. Each consignment has
//! an SLA state ([`evaluate`]) against its deadline ([`deadline`]); breaches and early warnings
//! become e-mails ([`mail`]), metrics and a section of the report.

pub mod adapter;

pub mod deadline;
pub mod intake;
pub mod mail;
pub mod tracker;

pub use crate::model::postal::{Consignment, SlaState, TrackEvent, Tracking, Warning};

/// How long after its deadline an undelivered consignment is still polled.
pub const POLL_AFTER_DEADLINE_MS: i64 = 30 * 86_400_000;

impl Consignment {
    /// The state and early warning at `now`. Known outcomes (delivered, failed) stand; past
    /// its deadline without a known delivery it is overdue whatever the API says; otherwise it
    /// is unknown until the tracking API gives a usable answer.
    pub fn evaluate(&self, now_ms: i64, stale_after_ms: i64, at_risk_before_ms: i64) -> (SlaState, Option<Warning>) {
        if self.status == Tracking::Delivered {
            let at = self.delivered_ms.or(self.last_event_ms).unwrap_or(now_ms);
            let state = if at <= self.deadline_ms { SlaState::DeliveredOnTime } else { SlaState::DeliveredLate };
            return (state, None);
        }
        if self.status.is_failure() {
            return (SlaState::Failed, None);
        }
        if now_ms > self.deadline_ms {
            return (SlaState::Overdue, None);
        }
        if self.last_ok_ms.is_none() || self.error.is_some() || self.status == Tracking::Unknown {
            return (SlaState::Unknown, None);
        }
        let quiet_since = self.last_event_ms.unwrap_or(self.accepted_ms);
        let warning = if self.status != Tracking::OutForDelivery && self.deadline_ms - now_ms <= at_risk_before_ms {
            Some(Warning::AtRisk)
        } else if matches!(self.status, Tracking::PreTransit | Tracking::InTransit | Tracking::FailedAttempt)
            && now_ms - quiet_since > stale_after_ms
        {
            Some(Warning::Stale)
        } else {
            None
        };
        (SlaState::OnTrack, warning)
    }

    /// The key of what e-mails have told: a change of it is news.
    pub fn news_key(&self) -> String {
        match self.warning {
            Some(w) => format!("{}+{}", self.state.as_str(), w.as_str()),
            None => self.state.as_str().to_string(),
        }
    }

    /// Whether this consignment still needs tracking requests at `now_ms`: not once delivered,
    /// nor a month after its deadline (the ledger keeps what was known).
    pub fn wants_polling(&self, now_ms: i64) -> bool {
        self.status != Tracking::Delivered && now_ms - self.deadline_ms < POLL_AFTER_DEADLINE_MS
    }

    /// Why it is unknown, in words.
    pub fn unknown_reason(&self) -> Option<String> {
        if self.state != SlaState::Unknown {
            return None;
        }
        Some(match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Tracking::Unknown) if self.last_ok_ms.is_some() => match &self.status_raw {
                Some(raw) => format!("unknown status {raw:?} (add it to status_map)"),
                None => "the tracking API gave no status".to_string(),
            },
            _ => "not tracked yet".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: Tracking) -> Consignment {
        Consignment {
            tracking: "EMS1".into(),
            operator: "vnpost".into(),
            kind: "exam_paper".into(),
            description: None,
            origin: None,
            destination: None,
            accepted_ms: 0,
            deadline_ms: 100_000,
            contacts: Vec::new(),
            source: "csv".into(),
            status,
            status_raw: None,
            location: None,
            last_event_ms: Some(1_000),
            delivered_ms: None,
            last_poll_ms: Some(1_000),
            last_ok_ms: Some(1_000),
            error: None,
            state: SlaState::Unknown,
            warning: None,
            notified: None,
            notified_ms: None,
        }
    }

    #[test]
    fn states_follow_the_contract() {
        let (stale, risk) = (50_000, 10_000);
        assert_eq!(c(Tracking::InTransit).evaluate(2_000, stale, risk), (SlaState::OnTrack, None));
        assert_eq!(c(Tracking::InTransit).evaluate(60_000, stale, risk), (SlaState::OnTrack, Some(Warning::Stale)));
        assert_eq!(c(Tracking::InTransit).evaluate(95_000, stale, risk), (SlaState::OnTrack, Some(Warning::AtRisk)));
        assert_eq!(c(Tracking::OutForDelivery).evaluate(95_000, stale, risk), (SlaState::OnTrack, None));
        assert_eq!(c(Tracking::InTransit).evaluate(100_001, stale, risk), (SlaState::Overdue, None));
        let mut d = c(Tracking::Delivered);
        d.delivered_ms = Some(100_000);
        assert_eq!(d.evaluate(200_000, stale, risk).0, SlaState::DeliveredOnTime);
        d.delivered_ms = Some(100_001);
        assert_eq!(d.evaluate(200_000, stale, risk).0, SlaState::DeliveredLate);
        assert_eq!(c(Tracking::Lost).evaluate(2_000, stale, risk).0, SlaState::Failed);
        assert_eq!(c(Tracking::Returned).evaluate(2_000, stale, risk).0, SlaState::Failed);
        let mut u = c(Tracking::InTransit);
        u.error = Some("status 500".into());
        assert_eq!(u.evaluate(2_000, stale, risk).0, SlaState::Unknown);
        // Past the deadline an unreachable API does not hide the breach.
        assert_eq!(u.evaluate(100_001, stale, risk).0, SlaState::Overdue);
    }
}
