//! Per-target up/down state machine with `confirm`/`recover` thresholds and exact,
//! backdated outage boundaries.
//!
//! Invariants:
//! - an outage starts at the *first* failed probe of the run that reached `confirm`;
//! - it ends at the *first* good probe of the run that reached `recover`;
//! - the downtime deltas returned by [`StateMachine::observe`] (and
//!   [`StateMachine::unobserved`]) add up to exactly `end - start` for every closed outage, less
//!   the gaps the monitor could not observe, and never decrease.

use chrono::{DateTime, Utc};
use std::time::Duration;

pub type Ts = DateTime<Utc>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No verdict yet (just started, or failures fewer than `confirm` since start).
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Confirmed outage, backdated to the first failure.
    Down { since: Ts },
    /// Outage closed: it lasted from `since` to `until` (the first good probe).
    Up { since: Ts, until: Ts },
}

/// What one probe result changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub transition: Option<Transition>,
    /// Downtime to add to the running total because of this result.
    pub downtime: Duration,
    /// A run of failures shorter than `confirm` ended with a success.
    pub flap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachine {
    confirm: u32,
    recover: u32,
    health: Health,
    /// Consecutive failures (while not down) and when the run began.
    fails: u32,
    first_fail: Option<Ts>,
    /// Consecutive successes while down, and when the run began.
    oks: u32,
    first_ok: Option<Ts>,
    /// Start of the open outage.
    outage_since: Option<Ts>,
    /// Up to when downtime of the open outage has been accounted.
    accounted_to: Option<Ts>,
    /// The monitor could not observe the target since the last result (see [`Self::unobserved`]).
    paused: bool,
}

impl StateMachine {
    pub fn new(confirm: u32, recover: u32) -> StateMachine {
        StateMachine {
            confirm: confirm.max(1),
            recover: recover.max(1),
            health: Health::Unknown,
            fails: 0,
            first_fail: None,
            oks: 0,
            first_ok: None,
            outage_since: None,
            accounted_to: None,
            paused: false,
        }
    }

    /// The monitor could not observe the target from `at` on (a setup failure, a caught panic):
    /// not a result. Downtime of an open outage is accounted up to `at` (returned); the time until
    /// the next result is unobserved, not down, and the runs towards `confirm`/`recover` go on.
    pub fn unobserved(&mut self, at: Ts) -> Duration {
        let d = if self.health == Health::Down { self.account(at) } else { Duration::ZERO };
        self.paused = true;
        d
    }

    /// Keeps the state but applies new thresholds (config reload).
    pub fn set_thresholds(&mut self, confirm: u32, recover: u32) {
        self.confirm = confirm.max(1);
        self.recover = recover.max(1);
    }

    /// Restores an outage that was open when the daemon stopped. Downtime is accounted from
    /// `resumed_at` on: the time the daemon was not running is unobserved, not down.
    pub fn restore_down(&mut self, since: Ts, resumed_at: Ts) {
        self.health = Health::Down;
        self.outage_since = Some(since);
        self.accounted_to = Some(resumed_at.max(since));
        self.fails = 0;
        self.first_fail = None;
        self.oks = 0;
        self.first_ok = None;
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Start of the open outage, if down.
    pub fn down_since(&self) -> Option<Ts> {
        self.outage_since
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.fails
    }

    /// Feeds one probe result taken at `at`. Results must come in time order.
    pub fn observe(&mut self, ok: bool, at: Ts) -> Observation {
        let mut obs = Observation::default();
        if std::mem::take(&mut self.paused) && self.accounted_to.is_some() {
            // The gap since the monitor lost sight of the target is not downtime.
            self.accounted_to = Some(at);
        }
        match (self.health, ok) {
            (Health::Down, false) => {
                // A recovery run (if any) is broken: that time was down too.
                self.oks = 0;
                self.first_ok = None;
                obs.downtime = self.account(at);
            }
            (Health::Down, true) => {
                if self.oks == 0 {
                    self.first_ok = Some(at);
                    // The outage (so far) ends here; later successes add nothing.
                    obs.downtime = self.account(at);
                }
                self.oks += 1;
                if self.oks >= self.recover {
                    let since = self.outage_since.take().unwrap_or(at);
                    let until = self.first_ok.take().unwrap_or(at);
                    obs.transition = Some(Transition::Up { since, until });
                    self.health = Health::Up;
                    self.oks = 0;
                    self.accounted_to = None;
                }
            }
            (_, true) => {
                if self.fails > 0 {
                    obs.flap = true;
                }
                self.fails = 0;
                self.first_fail = None;
                self.health = Health::Up;
            }
            (_, false) => {
                if self.fails == 0 {
                    self.first_fail = Some(at);
                }
                self.fails += 1;
                if self.fails >= self.confirm {
                    let since = self.first_fail.take().unwrap_or(at);
                    self.fails = 0;
                    self.health = Health::Down;
                    self.outage_since = Some(since);
                    self.accounted_to = Some(since);
                    obs.downtime = self.account(at);
                    obs.transition = Some(Transition::Down { since });
                }
            }
        }
        obs
    }

    fn account(&mut self, at: Ts) -> Duration {
        let Some(from) = self.accounted_to else {
            return Duration::ZERO;
        };
        if at <= from {
            return Duration::ZERO;
        }
        self.accounted_to = Some(at);
        (at - from).to_std().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> Ts {
        Utc.timestamp_opt(1_625_616_000 + s, 0).unwrap()
    }

    /// Runs a sequence of (second, ok) and returns transitions, total downtime, flaps.
    fn run(confirm: u32, recover: u32, seq: &[(i64, bool)]) -> (Vec<Transition>, Duration, u32, Health) {
        let mut sm = StateMachine::new(confirm, recover);
        let mut tr = Vec::new();
        let mut down = Duration::ZERO;
        let mut flaps = 0;
        for (s, ok) in seq {
            let o = sm.observe(*ok, t(*s));
            tr.extend(o.transition);
            down += o.downtime;
            flaps += u32::from(o.flap);
        }
        (tr, down, flaps, sm.health())
    }

    #[test]
    fn unobserved_slots_are_neither_results_nor_downtime() {
        let mut sm = StateMachine::new(2, 1);
        sm.observe(true, t(0));
        // A fault between two failures does not break the run towards confirm.
        sm.observe(false, t(10));
        assert_eq!(sm.unobserved(t(20)), Duration::ZERO);
        let o = sm.observe(false, t(30));
        assert_eq!(o.transition, Some(Transition::Down { since: t(10) }));
        let mut down = o.downtime;
        // Down from 10 s; unobserved from 40 s to 70 s; up at 80 s: 30 s + 10 s of downtime.
        down += sm.unobserved(t(40));
        assert_eq!(sm.health(), Health::Down);
        down += sm.observe(false, t(70)).downtime;
        let o = sm.observe(true, t(80));
        down += o.downtime;
        assert_eq!(o.transition, Some(Transition::Up { since: t(10), until: t(80) }));
        assert_eq!(down, Duration::from_secs(40));
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            confirm: u32,
            recover: u32,
            seq: &'static [(i64, bool)],
            transitions: Vec<Transition>,
            downtime: u64,
            flaps: u32,
            health: Health,
        }
        let cases = [
            Case {
                name: "all good",
                confirm: 3,
                recover: 2,
                seq: &[(0, true), (10, true), (20, true)],
                transitions: vec![],
                downtime: 0,
                flaps: 0,
                health: Health::Up,
            },
            Case {
                name: "two failures are a flap, not an outage",
                confirm: 3,
                recover: 2,
                seq: &[(0, true), (10, false), (20, false), (30, true)],
                transitions: vec![],
                downtime: 0,
                flaps: 1,
                health: Health::Up,
            },
            Case {
                name: "outage backdated to first failure, ends at first good probe",
                confirm: 3,
                recover: 2,
                seq: &[(0, true), (10, false), (20, false), (30, false), (40, false), (50, true), (60, true)],
                transitions: vec![Transition::Down { since: t(10) }, Transition::Up { since: t(10), until: t(50) }],
                downtime: 40,
                flaps: 0,
                health: Health::Up,
            },
            Case {
                name: "interrupted recovery keeps the outage open and counts that time",
                confirm: 2,
                recover: 2,
                seq: &[(0, false), (10, false), (20, true), (30, false), (40, true), (50, true)],
                transitions: vec![Transition::Down { since: t(0) }, Transition::Up { since: t(0), until: t(40) }],
                downtime: 40,
                flaps: 0,
                health: Health::Up,
            },
            Case {
                name: "confirm = 1 and recover = 1",
                confirm: 1,
                recover: 1,
                seq: &[(0, true), (5, false), (7, true)],
                transitions: vec![Transition::Down { since: t(5) }, Transition::Up { since: t(5), until: t(7) }],
                downtime: 2,
                flaps: 0,
                health: Health::Up,
            },
            Case {
                name: "down from the start, still open",
                confirm: 3,
                recover: 2,
                seq: &[(0, false), (10, false), (20, false), (30, false), (40, true)],
                transitions: vec![Transition::Down { since: t(0) }],
                downtime: 40,
                flaps: 0,
                health: Health::Down,
            },
            Case {
                name: "failures below confirm from start stay unknown",
                confirm: 3,
                recover: 2,
                seq: &[(0, false), (10, false)],
                transitions: vec![],
                downtime: 0,
                flaps: 0,
                health: Health::Unknown,
            },
        ];
        for c in cases {
            let (tr, down, flaps, health) = run(c.confirm, c.recover, c.seq);
            assert_eq!(tr, c.transitions, "{}", c.name);
            assert_eq!(down, Duration::from_secs(c.downtime), "{}", c.name);
            assert_eq!(flaps, c.flaps, "{}", c.name);
            assert_eq!(health, c.health, "{}", c.name);
        }
    }

    #[test]
    fn downtime_deltas_sum_to_outage_length() {
        // Irregular probe times: the sum must still equal until - since.
        let seq = [(0, false), (3, false), (11, false), (12, false), (19, true), (23, false), (31, true), (44, true)];
        let mut sm = StateMachine::new(3, 2);
        let mut total = Duration::ZERO;
        let mut closed = None;
        for (s, ok) in seq {
            let o = sm.observe(ok, t(s));
            total += o.downtime;
            if let Some(Transition::Up { since, until }) = o.transition {
                closed = Some((until - since).to_std().unwrap());
            }
        }
        assert_eq!(closed, Some(Duration::from_secs(31)));
        assert_eq!(total, Duration::from_secs(31));
    }
}
