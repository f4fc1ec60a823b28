//! The SLA ledger: from outage and degradation intervals, observed time and maintenance
//! windows, the figures a report and the metrics give for one target over one window. Pure.
//!
//! Definitions (all over the window `[from, to)`):
//! - *observed*: time the daemon was running and the target configured, minus maintenance
//!   that does not count in the SLA; *coverage* = observed / window.
//! - *downtime*: outage time within observed time; *availability* = 1 − downtime / observed.
//! - *breach*: availability below the objective, or one outage longer than `max_outage`, or —
//!   with a 100 % objective — any degradation.

use serde::Serialize;

use super::spans::{Span, SpanSet};

/// One recorded outage or degradation interval (`end = None`: still open).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub start: i64,
    pub end: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Objective {
    pub availability: f64,
    pub max_outage_ms: Option<i64>,
}

/// What goes into one target's figures.
pub struct LedgerInput<'a> {
    pub window: Span,
    /// When the daemon ran with this target (already merged or not). Not only the window: an
    /// outage that began before it is stated with its whole observed length.
    pub observed: &'a [Span],
    pub outages: &'a [Interval],
    pub degradations: &'a [Interval],
    /// Monitor faults: the daemon ran but could not observe this target.
    pub unobserved: &'a [Interval],
    /// Maintenance windows that do not count in the SLA.
    pub excluded: &'a [Span],
    pub objective: Objective,
    /// "Now" for open intervals: they are counted up to here (and no further than the window).
    pub now: i64,
}

/// An outage as the report lists it: clipped to the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutageRow {
    pub start: i64,
    pub end: Option<i64>,
    /// Length within observed time in the window (ms): what the SLA counts.
    pub counted_ms: i64,
    /// The whole outage's observed length (ms), in the window or not: the length stated in
    /// e-mails and reports and judged against `max_outage`.
    pub observed_ms: i64,
    /// The part of the outage nobody observed (the daemon not running, a monitor fault), ms:
    /// stated beside the observed length, never added to it.
    pub unobserved_ms: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub window_ms: i64,
    pub observed_ms: i64,
    pub coverage: f64,
    pub downtime_ms: i64,
    /// None when nothing was observed.
    pub availability: Option<f64>,
    pub outages: usize,
    pub longest_outage_ms: i64,
    /// Mean time to recover over outages that ended in the window.
    pub mttr_ms: Option<i64>,
    pub degraded_ms: i64,
    pub degradations: usize,
    pub objective: f64,
    pub breach: bool,
    pub breach_reasons: Vec<String>,
    /// With an objective below 100 %: share of the error budget left (may go negative).
    pub error_budget_remaining: Option<f64>,
    /// With an objective below 100 %: how fast the budget burns (1 = exactly at the objective).
    pub burn_rate: Option<f64>,
    pub outage_rows: Vec<OutageRow>,
    /// Summed length and count of the outages that ended in the window (for group MTTR).
    #[serde(skip)]
    pub recovered_ms: i64,
    #[serde(skip)]
    pub recoveries: i64,
}

fn to_set(intervals: &[Interval], now: i64) -> SpanSet {
    SpanSet::new(intervals.iter().map(|i| Span::new(i.start, i.end.unwrap_or(now))).collect())
}

pub fn compute(input: &LedgerInput<'_>) -> Figures {
    let w = Span::new(input.window.start, input.window.end.min(input.now.max(input.window.start)));
    // Coverage is over the elapsed part of the window: a period in progress is not "unobserved" in its future.
    let window_ms = w.len();
    let excluded = SpanSet::new(input.excluded.to_vec());
    // What was watched, at any time: the daemon ran, and could observe this target.
    let watched = SpanSet::new(input.observed.to_vec()).subtract(&to_set(input.unobserved, input.now));
    let observed = watched.clip(w).subtract(&excluded);
    let observed_ms = observed.total();

    let down = to_set(input.outages, input.now).intersect(&observed);
    let downtime_ms = down.total();
    let degraded = to_set(input.degradations, input.now).intersect(&observed).subtract(&down);
    let degraded_ms = degraded.total();

    let mut rows = Vec::new();
    let mut longest = 0;
    let mut closed_total = 0;
    let mut closed_n = 0;
    // An outage still open is known to last only as long as someone watched it.
    let watched_until = watched.spans().last().map_or(input.now, |sp| sp.end.min(input.now));
    for o in input.outages {
        let span = Span::new(o.start, o.end.unwrap_or(watched_until.max(o.start)));
        let Some(in_window) = span.clip(w) else {
            continue;
        };
        let counted = SpanSet::new(vec![in_window]).intersect(&observed).total();
        // An outage has one length wherever it is stated: the time it was watched being down.
        // The unobserved part (a crash of the daemon in the middle, say) is stated beside it.
        let seen = SpanSet::new(vec![span]).intersect(&watched);
        let observed_len = seen.total();
        // The longest outage is judged on its whole observed length (one long outage is a breach
        // even if it started before the window), less maintenance that does not count.
        let countable = seen.subtract(&excluded).total();
        // An outage wholly inside maintenance that does not count is not listed.
        if SpanSet::new(vec![span]).subtract(&excluded).total() == 0 {
            continue;
        }
        longest = longest.max(countable);
        if let Some(end) = o.end
            && end > w.start
            && end <= w.end
        {
            closed_total += observed_len;
            closed_n += 1;
        }
        rows.push(OutageRow {
            start: o.start,
            end: o.end,
            counted_ms: counted,
            observed_ms: observed_len,
            unobserved_ms: span.len() - observed_len,
            reason: o.reason.clone(),
        });
    }
    let degradations =
        input.degradations.iter().filter(|d| Span::new(d.start, d.end.unwrap_or(input.now)).clip(w).is_some()).count();

    let availability = (observed_ms > 0).then(|| 1.0 - downtime_ms as f64 / observed_ms as f64);
    let objective = input.objective.availability;
    let mut reasons = Vec::new();
    if let Some(a) = availability
        && a < objective
    {
        reasons.push(format!("availability {:.4} % below objective {:.4} %", a * 100.0, objective * 100.0));
    }
    if let Some(max) = input.objective.max_outage_ms
        && longest > max
    {
        reasons.push(format!("an outage lasted {} s, more than the {} s allowed", longest / 1000, max / 1000));
    }
    if objective >= 1.0 && degraded_ms > 0 {
        reasons.push(format!("degraded (congestion) for {} s with a 100 % objective", degraded_ms / 1000));
    }
    let (budget, burn) = if objective < 1.0 && observed_ms > 0 {
        let allowed = (1.0 - objective) * observed_ms as f64;
        let rate = (downtime_ms as f64 / observed_ms as f64) / (1.0 - objective);
        (Some(1.0 - downtime_ms as f64 / allowed), Some(rate))
    } else {
        (None, None)
    };
    Figures {
        window_ms,
        observed_ms,
        coverage: if window_ms > 0 { observed_ms as f64 / window_ms as f64 } else { 0.0 },
        downtime_ms,
        availability,
        outages: rows.len(),
        longest_outage_ms: longest,
        mttr_ms: (closed_n > 0).then(|| closed_total / closed_n),
        recovered_ms: closed_total,
        recoveries: closed_n,
        degraded_ms,
        degradations,
        objective,
        breach: !reasons.is_empty(),
        breach_reasons: reasons,
        error_budget_remaining: budget,
        burn_rate: burn,
        outage_rows: rows,
    }
}

/// Group figures: target-time weighted (1 − Σ downtime / Σ observed); breached if any target is.
pub fn aggregate(parts: &[&Figures], objective: f64) -> Figures {
    let observed: i64 = parts.iter().map(|f| f.observed_ms).sum();
    let down: i64 = parts.iter().map(|f| f.downtime_ms).sum();
    let window: i64 = parts.iter().map(|f| f.window_ms).sum();
    // Group MTTR: all recovered time over all recoveries (not a mean of per-target means).
    let recovered_ms: i64 = parts.iter().map(|f| f.recovered_ms).sum();
    let recoveries: i64 = parts.iter().map(|f| f.recoveries).sum();
    let availability = (observed > 0).then(|| 1.0 - down as f64 / observed as f64);
    let mut reasons: Vec<String> = Vec::new();
    let breached = parts.iter().filter(|f| f.breach).count();
    if breached > 0 {
        reasons.push(format!("{breached} of {} targets in breach", parts.len()));
    }
    let (budget, burn) = if objective < 1.0 && observed > 0 {
        let rate = (down as f64 / observed as f64) / (1.0 - objective);
        (Some(1.0 - rate), Some(rate))
    } else {
        (None, None)
    };
    Figures {
        window_ms: window,
        observed_ms: observed,
        coverage: if window > 0 { observed as f64 / window as f64 } else { 0.0 },
        downtime_ms: down,
        availability,
        outages: parts.iter().map(|f| f.outages).sum(),
        longest_outage_ms: parts.iter().map(|f| f.longest_outage_ms).max().unwrap_or(0),
        mttr_ms: (recoveries > 0).then(|| recovered_ms / recoveries),
        recovered_ms,
        recoveries,
        degraded_ms: parts.iter().map(|f| f.degraded_ms).sum(),
        degradations: parts.iter().map(|f| f.degradations).sum(),
        objective,
        breach: breached > 0,
        breach_reasons: reasons,
        error_budget_remaining: budget,
        burn_rate: burn,
        outage_rows: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn iv(start: i64, end: Option<i64>) -> Interval {
        Interval { start, end, reason: Some("timeout".into()) }
    }

    fn figures(
        observed: &[Span],
        outages: &[Interval],
        degr: &[Interval],
        excluded: &[Span],
        obj: f64,
        max: Option<i64>,
    ) -> Figures {
        compute(&LedgerInput {
            window: Span::new(0, 10 * H),
            observed,
            outages,
            degradations: degr,
            unobserved: &[],
            excluded,
            objective: Objective { availability: obj, max_outage_ms: max },
            now: 10 * H,
        })
    }

    #[test]
    fn an_outage_across_unobserved_time_has_its_observed_length_and_the_rest_beside_it() {
        // Down from 1 h to 3 h; the daemon was not running from 1.5 h to 2 h, and a monitor
        // fault kept the target unobserved from 2.5 h to 2.75 h: 1.25 h watched being down.
        let observed = [Span::new(0, 3 * H / 2), Span::new(2 * H, 10 * H)];
        let outages = [iv(H, Some(3 * H))];
        let unobserved = [iv(5 * H / 2, Some(11 * H / 4))];
        let f = compute(&LedgerInput {
            window: Span::new(0, 10 * H),
            observed: &observed,
            outages: &outages,
            degradations: &[],
            unobserved: &unobserved,
            excluded: &[],
            objective: Objective { availability: 0.5, max_outage_ms: Some(3 * H / 2) },
            now: 10 * H,
        });
        let row = &f.outage_rows[0];
        assert_eq!((row.observed_ms, row.unobserved_ms, row.counted_ms), (5 * H / 4, 3 * H / 4, 5 * H / 4));
        assert_eq!(f.downtime_ms, 5 * H / 4);
        assert_eq!(f.observed_ms, 10 * H - H / 2 - H / 4);
        // max_outage (1.5 h) judges the observed 1.25 h, not the 2 h of wall clock.
        assert_eq!(f.longest_outage_ms, 5 * H / 4);
        assert!(!f.breach, "{:?}", f.breach_reasons);
        assert_eq!(f.mttr_ms, Some(5 * H / 4));

        // An outage that began before the window is stated with its whole observed length.
        let f = compute(&LedgerInput {
            window: Span::new(2 * H, 10 * H),
            observed: &observed,
            outages: &outages,
            degradations: &[],
            unobserved: &unobserved,
            excluded: &[],
            objective: Objective { availability: 0.5, max_outage_ms: Some(H) },
            now: 10 * H,
        });
        let row = &f.outage_rows[0];
        assert_eq!((row.observed_ms, row.counted_ms), (5 * H / 4, 3 * H / 4));
        assert!(f.breach, "1.25 h observed is longer than the 1 h allowed");
    }

    #[test]
    fn table() {
        let full = [Span::new(0, 10 * H)];
        // (name, observed, outages, degradations, excluded, objective, max_outage,
        //  expected availability, coverage, downtime, breach)
        struct C<'a> {
            name: &'a str,
            observed: Vec<Span>,
            outages: Vec<Interval>,
            degr: Vec<Interval>,
            excluded: Vec<Span>,
            obj: f64,
            max: Option<i64>,
            avail: Option<f64>,
            coverage: f64,
            down: i64,
            breach: bool,
        }
        let cases = vec![
            C {
                name: "clean",
                observed: full.to_vec(),
                outages: vec![],
                degr: vec![],
                excluded: vec![],
                obj: 1.0,
                max: None,
                avail: Some(1.0),
                coverage: 1.0,
                down: 0,
                breach: false,
            },
            C {
                name: "one hour down",
                observed: full.to_vec(),
                outages: vec![iv(H, Some(2 * H))],
                degr: vec![],
                excluded: vec![],
                obj: 1.0,
                max: None,
                avail: Some(0.9),
                coverage: 1.0,
                down: H,
                breach: true,
            },
            C {
                name: "within a 90 % objective",
                observed: full.to_vec(),
                outages: vec![iv(H, Some(2 * H))],
                degr: vec![],
                excluded: vec![],
                obj: 0.9,
                max: None,
                avail: Some(0.9),
                coverage: 1.0,
                down: H,
                breach: false,
            },
            C {
                name: "max outage exceeded",
                observed: full.to_vec(),
                outages: vec![iv(H, Some(2 * H))],
                degr: vec![],
                excluded: vec![],
                obj: 0.5,
                max: Some(H / 2),
                avail: Some(0.9),
                coverage: 1.0,
                down: H,
                breach: true,
            },
            C {
                name: "unobserved gap is neither up nor down",
                observed: vec![Span::new(0, 4 * H), Span::new(6 * H, 10 * H)],
                outages: vec![iv(3 * H, Some(7 * H))],
                degr: vec![],
                excluded: vec![],
                obj: 1.0,
                max: None,
                avail: Some(0.75),
                coverage: 0.8,
                down: 2 * H,
                breach: true,
            },
            C {
                name: "maintenance excluded from the SLA",
                observed: full.to_vec(),
                outages: vec![iv(H, Some(2 * H))],
                degr: vec![],
                excluded: vec![Span::new(H, 2 * H)],
                obj: 1.0,
                max: None,
                avail: Some(1.0),
                coverage: 0.9,
                down: 0,
                breach: false,
            },
            C {
                name: "degradation breaches a 100 % objective",
                observed: full.to_vec(),
                outages: vec![],
                degr: vec![iv(H, Some(H + 60_000))],
                excluded: vec![],
                obj: 1.0,
                max: None,
                avail: Some(1.0),
                coverage: 1.0,
                down: 0,
                breach: true,
            },
            C {
                name: "open outage counted up to now",
                observed: full.to_vec(),
                outages: vec![iv(9 * H, None)],
                degr: vec![],
                excluded: vec![],
                obj: 1.0,
                max: None,
                avail: Some(0.9),
                coverage: 1.0,
                down: H,
                breach: true,
            },
            C {
                name: "nothing observed",
                observed: vec![],
                outages: vec![],
                degr: vec![],
                excluded: vec![],
                obj: 1.0,
                max: None,
                avail: None,
                coverage: 0.0,
                down: 0,
                breach: false,
            },
        ];
        for c in cases {
            let f = figures(&c.observed, &c.outages, &c.degr, &c.excluded, c.obj, c.max);
            assert_eq!(f.availability.map(|a| (a * 1e6).round() / 1e6), c.avail, "{}", c.name);
            assert!((f.coverage - c.coverage).abs() < 1e-9, "{}: coverage {}", c.name, f.coverage);
            assert_eq!(f.downtime_ms, c.down, "{}", c.name);
            assert_eq!(f.breach, c.breach, "{}: {:?}", c.name, f.breach_reasons);
        }
    }

    #[test]
    fn group_mttr_weighs_every_recovery() {
        let long = figures(&[Span::new(0, 10 * H)], &[iv(0, Some(5 * H))], &[], &[], 1.0, None);
        let short: Vec<Interval> =
            (0..10).map(|i| iv(6 * H + i * 120_000, Some(6 * H + i * 120_000 + 60_000))).collect();
        let many = figures(&[Span::new(0, 10 * H)], &short, &[], &[], 1.0, None);
        let g = aggregate(&[&long, &many], 1.0);
        // (5 h + 10 × 1 min) / 11 recoveries, not the mean of 5 h and 1 min.
        assert_eq!(g.mttr_ms, Some((5 * H + 10 * 60_000) / 11));
    }

    #[test]
    fn budget_and_burn() {
        let f = figures(&[Span::new(0, 10 * H)], &[iv(0, Some(H / 2))], &[], &[], 0.9, None);
        // 5 % down against a 10 % budget: half the budget left, burning at 0.5.
        assert!((f.error_budget_remaining.unwrap() - 0.5).abs() < 1e-9);
        assert!((f.burn_rate.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(f.mttr_ms, Some(H / 2));
    }
}
