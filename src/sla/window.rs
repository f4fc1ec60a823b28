//! Congestion ("nghẽn mạng"): packet loss and p95 latency over a sliding window, turned into
//! degraded intervals with their own start and end. Pure: times come in as Unix milliseconds.

use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Loss ratio above which the target is congested (ICMP).
    pub max_loss: Option<f64>,
    /// p95 latency above which the target is congested.
    pub max_latency: Option<Duration>,
}

impl Thresholds {
    pub fn any(&self) -> bool {
        self.max_loss.is_some() || self.max_latency.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Started { at: i64, reason: String },
    Ended { since: i64, until: i64 },
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: i64,
    sent: u32,
    lost: u32,
    latency_ms: Option<f64>,
}

/// Fewer samples than this in the window give no verdict (no congestion from one probe).
const MIN_SAMPLES: usize = 3;

#[derive(Debug, Clone)]
pub struct CongestionWindow {
    window_ms: i64,
    thresholds: Thresholds,
    samples: VecDeque<Sample>,
    degraded_since: Option<i64>,
}

impl CongestionWindow {
    pub fn new(window: Duration, thresholds: Thresholds) -> CongestionWindow {
        CongestionWindow {
            window_ms: window.as_millis() as i64,
            thresholds,
            samples: VecDeque::new(),
            degraded_since: None,
        }
    }

    /// Whether this window was built with these settings (a reload may change them).
    pub fn same_settings(&self, window: Duration, thresholds: Thresholds) -> bool {
        self.window_ms == window.as_millis() as i64 && self.thresholds == thresholds
    }

    pub fn degraded_since(&self) -> Option<i64> {
        self.degraded_since
    }

    /// Restores an open degradation after a restart.
    pub fn restore(&mut self, since: i64) {
        self.degraded_since = Some(since);
    }

    /// Feeds one probe: `sent`/`received` echoes (0/0 for non-ICMP) and its latency when it
    /// succeeded.
    pub fn observe(&mut self, at: i64, sent: u32, received: u32, latency: Option<Duration>) -> Option<Change> {
        self.samples.push_back(Sample {
            at,
            sent,
            lost: sent.saturating_sub(received),
            latency_ms: latency.map(|d| d.as_secs_f64() * 1000.0),
        });
        while self.samples.front().is_some_and(|s| s.at <= at - self.window_ms) {
            self.samples.pop_front();
        }
        let verdict = self.verdict();
        match (self.degraded_since, verdict) {
            (None, Some(reason)) => {
                self.degraded_since = Some(at);
                Some(Change::Started { at, reason })
            }
            (Some(since), None) if self.samples.len() >= MIN_SAMPLES => {
                self.degraded_since = None;
                Some(Change::Ended { since, until: at })
            }
            _ => None,
        }
    }

    /// The target went down: an outage supersedes congestion; the window starts afresh.
    pub fn reset(&mut self, at: i64) -> Option<Change> {
        self.samples.clear();
        self.degraded_since.take().map(|since| Change::Ended { since, until: at })
    }

    /// Current loss ratio over the window, if any echo was sent.
    pub fn loss(&self) -> Option<f64> {
        let sent: u64 = self.samples.iter().map(|s| u64::from(s.sent)).sum();
        let lost: u64 = self.samples.iter().map(|s| u64::from(s.lost)).sum();
        (sent > 0).then(|| lost as f64 / sent as f64)
    }

    /// p95 latency over the window (nearest rank), in milliseconds.
    pub fn p95_ms(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.samples.iter().filter_map(|s| s.latency_ms).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }

    fn verdict(&self) -> Option<String> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        if let (Some(max), Some(loss)) = (self.thresholds.max_loss, self.loss())
            && loss > max
        {
            return Some(format!("packet loss {:.1} % > {:.1} %", loss * 100.0, max * 100.0));
        }
        if let (Some(max), Some(p95)) = (self.thresholds.max_latency, self.p95_ms())
            && p95 > max.as_secs_f64() * 1000.0
        {
            return Some(format!("p95 latency {p95:.0} ms > {:.0} ms", max.as_secs_f64() * 1000.0));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icmp() -> CongestionWindow {
        CongestionWindow::new(
            Duration::from_secs(60),
            Thresholds { max_loss: Some(0.02), max_latency: Some(Duration::from_millis(300)) },
        )
    }

    #[test]
    fn loss_over_the_window_starts_and_ends_degradation() {
        let mut w = icmp();
        let ms = Duration::from_millis;
        assert_eq!(w.observe(0, 10, 10, Some(ms(5))), None);
        assert_eq!(w.observe(10_000, 10, 10, Some(ms(5))), None);
        // 4 of 30 lost = 13 %: degraded from this probe.
        match w.observe(20_000, 10, 6, Some(ms(5))) {
            Some(Change::Started { at, reason }) => {
                assert_eq!(at, 20_000);
                assert!(reason.contains("packet loss"), "{reason}");
            }
            other => panic!("expected start, got {other:?}"),
        }
        // Clean probes until the lossy one leaves the 60 s window.
        for t in [30_000, 40_000, 50_000, 60_000, 70_000] {
            assert_eq!(w.observe(t, 10, 10, Some(ms(5))), None, "at {t}");
        }
        assert_eq!(w.observe(80_000, 10, 10, Some(ms(5))), Some(Change::Ended { since: 20_000, until: 80_000 }));
    }

    #[test]
    fn p95_latency() {
        let mut w = icmp();
        let ms = Duration::from_millis;
        let mut started = None;
        for (i, lat) in [10, 10, 500, 500, 500].iter().enumerate() {
            if let Some(Change::Started { at, reason }) = w.observe(i as i64 * 1000, 1, 1, Some(ms(*lat))) {
                assert!(reason.contains("p95"));
                started = Some(at);
            }
        }
        assert_eq!(started, Some(2000));
        assert_eq!(w.reset(9000), Some(Change::Ended { since: 2000, until: 9000 }));
    }

    #[test]
    fn too_few_samples_give_no_verdict() {
        let mut w = icmp();
        assert_eq!(w.observe(0, 3, 0, None), None);
        assert_eq!(w.observe(1000, 3, 0, None), None);
    }
}
