//! Which e-mails the incidents call for now: a pure function of what the store says was told,
//! the groups' batching windows and the clock. The notifier runs it after every event and on
//! every tick, and records what it returns — the e-mails queued, the incidents marked told and
//! the windows moved — in one transaction, so a crash at any moment neither loses a notice nor
//! repeats one.
//!
//! Per group: the first incident is told at once (a first report); incidents that open within
//! `group_interval` after an e-mail wait for the window's end and go out together in one
//! follow-up (a window in which something waited is followed by the next one, so a flap storm
//! gives one e-mail per window). Resolutions are gathered the same way in their own window.
//! An incident resolved before it was told is told in its first report or follow-up, as
//! resolved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the plan needs to know of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: i64,
    pub group: String,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    /// Its opening was told (in a first report or a follow-up).
    pub open_told: bool,
    /// Its resolution was told (in a resolution, or in the report that first told it).
    pub close_told: bool,
    /// Opened during maintenance: not told while silenced (and never, if it closes silenced).
    pub silenced: bool,
}

/// A group's batching windows: until when new incidents and resolutions wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub open_until: i64,
    pub resolved_until: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first report of a window: told at once.
    Breach,
    /// Incidents that waited for the end of a window.
    FollowUp,
    /// Resolutions of incidents already told.
    Resolved,
}

/// One e-mail to queue (per recipient, by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub group: String,
    pub kind: Kind,
    /// Incidents whose opening it tells (some may be resolved already: see `resolved`).
    pub opened: Vec<i64>,
    /// Incidents whose resolution it tells.
    pub resolved: Vec<i64>,
}

/// The e-mails due at `now`, in the order to queue them, moving `windows` as they go out.
/// `group_interval` gives each group's window (ms); a group it does not know is not told.
/// With `flush` (the daemon stopping), every window counts as ended.
pub fn plan(
    incidents: &[Incident],
    windows: &mut BTreeMap<String, Window>,
    now: i64,
    group_interval: impl Fn(&str) -> Option<i64>,
    flush: bool,
) -> Vec<Mail> {
    let mut by_group: BTreeMap<&str, Vec<&Incident>> = BTreeMap::new();
    for i in incidents.iter().filter(|i| !i.silenced) {
        by_group.entry(i.group.as_str()).or_default().push(i);
    }
    let mut mails = Vec::new();
    for (group, mut incs) in by_group {
        let Some(gi) = group_interval(group) else { continue };
        incs.sort_by_key(|i| i.id);
        let w = windows.entry(group.to_string()).or_default();
        let untold: Vec<&Incident> = incs.iter().copied().filter(|i| !i.open_told).collect();
        if !untold.is_empty() && (flush || now >= w.open_until) {
            // Anything that waited through the window makes this its follow-up, and takes the
            // newcomers along: a due follow-up is never pushed back by a new first report.
            let waited = untold.iter().any(|i| i.opened_ms < w.open_until);
            mails.push(Mail {
                group: group.to_string(),
                kind: if waited { Kind::FollowUp } else { Kind::Breach },
                opened: untold.iter().map(|i| i.id).collect(),
                resolved: untold.iter().filter(|i| i.closed_ms.is_some()).map(|i| i.id).collect(),
            });
            w.open_until = now + gi;
        }
        let resolved: Vec<i64> =
            incs.iter().filter(|i| i.open_told && i.closed_ms.is_some() && !i.close_told).map(|i| i.id).collect();
        if !resolved.is_empty() && (flush || now >= w.resolved_until) {
            mails.push(Mail { group: group.to_string(), kind: Kind::Resolved, opened: Vec::new(), resolved });
            w.resolved_until = now + gi;
        }
    }
    mails
}

/// What queueing `mails` makes true of the incidents: marks them told (the caller records the
/// same in the store, in the transaction that queues the e-mails).
pub fn apply(incidents: &mut [Incident], mails: &[Mail]) {
    for m in mails {
        for i in incidents.iter_mut() {
            if m.opened.contains(&i.id) {
                i.open_told = true;
            }
            if m.resolved.contains(&i.id) {
                i.close_told = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(id: i64, group: &str, opened_ms: i64) -> Incident {
        Incident {
            id,
            group: group.into(),
            opened_ms,
            closed_ms: None,
            open_told: false,
            close_told: false,
            silenced: false,
        }
    }

    const GI: i64 = 30_000;

    fn gi(_: &str) -> Option<i64> {
        Some(GI)
    }

    #[test]
    fn first_at_once_then_one_follow_up_then_resolutions() {
        let mut w = BTreeMap::new();
        let mut incs = vec![inc(1, "vnpt", 0)];
        let m = plan(&incs, &mut w, 0, gi, false);
        assert_eq!(m, vec![Mail { group: "vnpt".into(), kind: Kind::Breach, opened: vec![1], resolved: vec![] }]);
        apply(&mut incs, &m);
        incs.push(inc(2, "vnpt", 1_000));
        incs.push(inc(3, "vnpt", 2_000));
        assert!(plan(&incs, &mut w, 2_000, gi, false).is_empty(), "others wait for the window");
        let m = plan(&incs, &mut w, GI, gi, false);
        assert_eq!(m, vec![Mail { group: "vnpt".into(), kind: Kind::FollowUp, opened: vec![2, 3], resolved: vec![] }]);
        apply(&mut incs, &m);
        incs[0].closed_ms = Some(GI + 1);
        let m = plan(&incs, &mut w, GI + 1, gi, false);
        assert_eq!(m, vec![Mail { group: "vnpt".into(), kind: Kind::Resolved, opened: vec![], resolved: vec![1] }]);
    }

    #[test]
    fn a_due_follow_up_takes_a_newcomer_along_instead_of_a_new_first_report() {
        let mut w = BTreeMap::new();
        let mut incs = vec![inc(1, "g", 0)];
        let m = plan(&incs, &mut w, 0, gi, false);
        apply(&mut incs, &m);
        incs.push(inc(2, "g", 10_000));
        // The window has ended and a third incident opens before the tick.
        incs.push(inc(3, "g", GI + 5));
        let m = plan(&incs, &mut w, GI + 10, gi, false);
        assert_eq!(m, vec![Mail { group: "g".into(), kind: Kind::FollowUp, opened: vec![2, 3], resolved: vec![] }]);
    }

    /// A small deterministic generator: the property tests need no crate and replay by seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Random sequences of opens, closes, acknowledgements (no effect on first reports and
    /// resolutions) and clock ticks over three groups, checked against the contract.
    #[test]
    fn property_every_incident_told_once_opened_and_once_resolved() {
        let groups = ["a", "b", "c"];
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut w = BTreeMap::new();
            let mut incs: Vec<Incident> = Vec::new();
            let mut told_open: BTreeMap<i64, usize> = BTreeMap::new();
            let mut told_closed: BTreeMap<i64, usize> = BTreeMap::new();
            // Per group, the times of first reports and follow-ups.
            let mut sent: BTreeMap<String, Vec<(i64, Kind)>> = BTreeMap::new();
            let mut now = 0i64;
            let mut next_id = 1;
            for _ in 0..400 {
                now += rng.below(4_000) as i64;
                match rng.below(4) {
                    0 => {
                        let g = groups[rng.below(3) as usize];
                        incs.push(inc(next_id, g, now));
                        next_id += 1;
                    }
                    1 => {
                        let open: Vec<usize> = (0..incs.len()).filter(|&k| incs[k].closed_ms.is_none()).collect();
                        if !open.is_empty() {
                            let k = open[rng.below(open.len() as u64) as usize];
                            incs[k].closed_ms = Some(now);
                        }
                    }
                    // An acknowledgement or a plain tick: nothing the plan reads changes.
                    _ => {}
                }
                let before: Vec<Incident> = incs.clone();
                let mails = plan(&incs, &mut w, now, gi, false);
                for m in &mails {
                    for id in &m.opened {
                        *told_open.entry(*id).or_default() += 1;
                        let i = before.iter().find(|i| i.id == *id).expect("told incident exists");
                        assert!(!i.open_told, "seed {seed}: {id} told open twice");
                    }
                    for id in &m.resolved {
                        *told_closed.entry(*id).or_default() += 1;
                        let i = before.iter().find(|i| i.id == *id).expect("told incident exists");
                        assert!(i.closed_ms.is_some(), "seed {seed}: {id} told resolved while open");
                    }
                    if m.kind != Kind::Resolved {
                        sent.entry(m.group.clone()).or_default().push((now, m.kind));
                    }
                    if m.kind == Kind::Breach {
                        // A first report never jumps a follow-up that was due.
                        let waiting =
                            before.iter().any(|i| i.group == m.group && !i.open_told && !m.opened.contains(&i.id));
                        assert!(!waiting, "seed {seed}: a first report left incidents waiting");
                    }
                }
                apply(&mut incs, &mails);
            }
            // Drain: time passes with no new events; every window ends.
            for _ in 0..4 {
                now += GI;
                let mails = plan(&incs, &mut w, now, gi, false);
                for m in &mails {
                    for id in &m.opened {
                        *told_open.entry(*id).or_default() += 1;
                    }
                    for id in &m.resolved {
                        *told_closed.entry(*id).or_default() += 1;
                    }
                    if m.kind != Kind::Resolved {
                        sent.entry(m.group.clone()).or_default().push((now, m.kind));
                    }
                }
                apply(&mut incs, &mails);
            }
            for i in &incs {
                assert_eq!(told_open.get(&i.id), Some(&1), "seed {seed}: incident {} told open", i.id);
                let closed = told_closed.get(&i.id).copied().unwrap_or(0);
                assert_eq!(closed, usize::from(i.closed_ms.is_some()), "seed {seed}: incident {} resolutions", i.id);
            }
            // At most one first report or follow-up per group per window.
            for (g, times) in &sent {
                for pair in times.windows(2) {
                    assert!(
                        pair[1].0 - pair[0].0 >= GI,
                        "seed {seed}: group {g} e-mailed twice within a window: {pair:?}"
                    );
                }
            }
        }
    }
}
