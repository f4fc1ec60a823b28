//! Per-target series, kept compact and rendered straight to text. At a fleet of tens of
//! thousands of targets the prometheus crate's per-child descriptors and label copies, and the
//! full copy `gather()` makes on every scrape, cost more memory and scrape time than the probes
//! themselves; here a target is one [`Cell`] of atomics and a scrape writes its lines directly
//! into one buffer ([`super::out`]; figures in `bench/results/`).
//!
//! Semantics are those of the families they replace: a series exists from the target's first
//! result (a gauge from its first value), counters only go up, and every series of a target goes
//! when it leaves the config.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::out::{Esc, Out, num};
use crate::probe::{FailureKind, Phase};

/// Buckets of `thongsuot_probe_duration_seconds`.
pub const DURATION_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

struct Hist {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum: F,
}

/// Number of `result` label values: `success` and every failure kind.
const RESULTS: usize = 1 + FailureKind::ALL.len();

fn result_index(kind: FailureKind) -> usize {
    1 + FailureKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

fn result_label(i: usize) -> &'static str {
    if i == 0 { "success" } else { FailureKind::ALL[i - 1].label() }
}

/// One target's series.
pub struct Cell {
    /// `target="…",group="…",kind="…",vantage="…"`, escaped once.
    labels: Box<str>,
    /// target, group, kind and vantage end to end (one allocation), and where each ends.
    values: Box<str>,
    ends: [u32; 4],
    slot: AtomicUsize,
    /// Counters exist from the first result (or from values restored from the store).
    live: AtomicBool,
    success: F,
    last_duration: F,
    hist: Option<Box<Hist>>,
    successes: AtomicU64,
    /// Failure counters and uplinks, made at the first failure or uplink result: most targets
    /// never fail, so most cells never pay for them.
    rare: OnceLock<Box<Rare>>,
    up: AtomicI64,
    downtime: F,
    flaps: AtomicU64,
    degraded: AtomicI64,
    phases: [F; Phase::COUNT],
    icmp_loss: F,
    icmp_rtt: F,
    cert_expiry: F,
}

#[derive(Default)]
struct Rare {
    /// By failure reason, in `FailureKind::ALL` order.
    failures: [AtomicU64; RESULTS - 1],
    uplinks: Mutex<Vec<(Box<str>, F)>>,
}

impl Cell {
    fn new(values: [&str; 4], histogram: bool) -> Cell {
        let [t, g, k, v] = values;
        Cell {
            labels: format!("target=\"{}\",group=\"{}\",kind=\"{}\",vantage=\"{}\"", Esc(t), Esc(g), Esc(k), Esc(v))
                .into_boxed_str(),
            values: values.concat().into_boxed_str(),
            ends: {
                let mut end = 0;
                values.map(|v| {
                    end += v.len() as u32;
                    end
                })
            },
            slot: AtomicUsize::new(usize::MAX),
            live: AtomicBool::new(false),
            success: F::unset(),
            last_duration: F::unset(),
            hist: histogram.then(|| {
                Box::new(Hist {
                    buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                    count: AtomicU64::new(0),
                    sum: F::zero(),
                })
            }),
            successes: AtomicU64::new(0),
            rare: OnceLock::new(),
            up: AtomicI64::new(-1),
            downtime: F::zero(),
            flaps: AtomicU64::new(0),
            degraded: AtomicI64::new(-1),
            phases: std::array::from_fn(|_| F::unset()),
            icmp_loss: F::unset(),
            icmp_rtt: F::unset(),
            cert_expiry: F::unset(),
        }
    }

    /// target, group, kind, vantage.
    pub fn values(&self) -> [&str; 4] {
        let [a, b, c, d] = self.ends.map(|e| e as usize);
        let v = &*self.values;
        [&v[..a], &v[a..b], &v[b..c], &v[c..d]]
    }

    pub fn has_labels(&self, values: [&str; 4]) -> bool {
        self.values() == values
    }

    pub fn probe(&self, ok_or_failure: Option<FailureKind>, seconds: f64) {
        self.live.store(true, Relaxed);
        self.success.set(if ok_or_failure.is_none() { 1.0 } else { 0.0 });
        self.last_duration.set(seconds);
        match ok_or_failure {
            None => self.successes.fetch_add(1, Relaxed),
            Some(kind) => self.rare().failures[result_index(kind) - 1].fetch_add(1, Relaxed),
        };
        if let Some(h) = &self.hist {
            let b = DURATION_BUCKETS.iter().position(|le| seconds <= *le).unwrap_or(DURATION_BUCKETS.len());
            if let Some(bucket) = h.buckets.get(b) {
                bucket.fetch_add(1, Relaxed);
            }
            h.count.fetch_add(1, Relaxed);
            h.sum.add(seconds);
        }
    }

    pub fn phase(&self, p: Phase, seconds: f64) {
        if let Some(i) = Phase::ALL.iter().position(|x| *x == p) {
            self.phases[i].set(seconds);
        }
    }

    pub fn cert_expiry(&self, unix: f64) {
        self.cert_expiry.set(unix);
    }

    pub fn icmp(&self, loss: f64, rtt: Option<f64>) {
        self.icmp_loss.set(loss);
        if let Some(r) = rtt {
            self.icmp_rtt.set(r);
        }
    }

    pub fn up(&self, up: bool) {
        self.up.store(i64::from(up), Relaxed);
    }

    pub fn add_downtime(&self, seconds: f64) {
        self.live.store(true, Relaxed);
        self.downtime.add(seconds);
    }

    pub fn add_flaps(&self, n: u64) {
        self.live.store(true, Relaxed);
        self.flaps.fetch_add(n, Relaxed);
    }

    pub fn degraded(&self, degraded: bool) {
        self.degraded.store(i64::from(degraded), Relaxed);
    }

    fn rare(&self) -> &Rare {
        self.rare.get_or_init(Box::default)
    }

    pub fn uplink(&self, source: &str, ok: bool) {
        let mut u = self.rare().uplinks.lock().unwrap_or_else(|p| p.into_inner());
        match u.iter().find(|(s, _)| &**s == source) {
            Some((_, f)) => f.set(if ok { 1.0 } else { 0.0 }),
            None => {
                let f = F::unset();
                f.set(if ok { 1.0 } else { 0.0 });
                u.push((source.into(), f));
            }
        }
    }
}

/// Cells by slot, and the free slots.
#[derive(Default)]
struct Slots {
    cells: Vec<Option<Arc<Cell>>>,
    free: Vec<usize>,
}

/// Every target's cell, in slots (removal is O(1)).
#[derive(Default)]
pub struct Table {
    slots: RwLock<Slots>,
    /// Text per cell at the last render, to size the next one.
    bytes_per_cell: AtomicUsize,
}

impl Table {
    pub fn add(&self, values: [&str; 4], histogram: bool) -> Arc<Cell> {
        let cell = Arc::new(Cell::new(values, histogram));
        let mut g = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let i = match g.free.pop() {
            Some(i) => i,
            None => {
                g.cells.push(None);
                g.cells.len() - 1
            }
        };
        cell.slot.store(i, Relaxed);
        g.cells[i] = Some(cell.clone());
        cell
    }

    pub fn remove(&self, cell: &Arc<Cell>) {
        let mut g = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let i = cell.slot.load(Relaxed);
        if g.cells.get(i).and_then(|s| s.as_ref()).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            g.cells[i] = None;
            g.free.push(i);
        }
    }

    pub fn len(&self) -> usize {
        let g = self.slots.read().unwrap_or_else(|p| p.into_inner());
        g.cells.len() - g.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the text exposition of every per-target family to `out`.
    pub fn render(&self, out: &mut Out) {
        // A snapshot of the cells: targets may come and go while the text is written.
        let cells: Vec<Arc<Cell>> = {
            let g = self.slots.read().unwrap_or_else(|p| p.into_inner());
            g.cells.iter().flatten().cloned().collect()
        };
        // As long as the last text per cell, and a little more: growing a large fleet's text by
        // doubling would copy it and hold twice the memory at the peak.
        let per_cell = self.bytes_per_cell.load(Relaxed).max(200);
        let start = out.written();
        out.reserve(cells.len() * per_cell * 11 / 10);
        let live = |c: &Cell| c.live.load(Relaxed);
        gauge(out, &cells, "thongsuot_probe_success", "1 if the last probe of the target succeeded, else 0.", |c| {
            c.success.get()
        });
        gauge(out, &cells, "thongsuot_probe_last_duration_seconds", "Duration of the last probe of the target.", |c| {
            c.last_duration.get()
        });
        out.family(
            "thongsuot_probe_duration_seconds",
            "Duration of probes, start to verdict.",
            "histogram",
            |out: &mut Out| {
                for c in &cells {
                    let Some(h) = &c.hist else { continue };
                    let count = h.count.load(Relaxed);
                    if count == 0 {
                        continue;
                    }
                    let mut cum = 0;
                    for (le, b) in DURATION_BUCKETS.iter().zip(&h.buckets) {
                        cum += b.load(Relaxed);
                        let _ =
                            writeln!(out, "thongsuot_probe_duration_seconds_bucket{{{},le=\"{le}\"}} {cum}", c.labels);
                    }
                    let _ =
                        writeln!(out, "thongsuot_probe_duration_seconds_bucket{{{},le=\"+Inf\"}} {count}", c.labels);
                    let _ = write!(out, "thongsuot_probe_duration_seconds_sum{{{}}} ", c.labels);
                    num(out, h.sum.get().unwrap_or(0.0));
                    let _ = writeln!(out, "thongsuot_probe_duration_seconds_count{{{}}} {count}", c.labels);
                }
            },
        );
        out.family(
            "thongsuot_probe_phase_duration_seconds",
            "Duration of each phase of the last probe (resolve, connect, tls, processing, transfer, setup, rtt).",
            "gauge",
            |out: &mut Out| {
                for c in &cells {
                    for (p, f) in Phase::ALL.iter().zip(&c.phases) {
                        if let Some(v) = f.get() {
                            let _ = write!(
                                out,
                                "thongsuot_probe_phase_duration_seconds{{{},phase=\"{}\"}} ",
                                c.labels,
                                p.label()
                            );
                            num(out, v);
                        }
                    }
                }
            },
        );
        out.family(
            "thongsuot_probes_total",
            "Probes run, by result: success or the failure reason.",
            "counter",
            |out: &mut Out| {
                for c in cells.iter().filter(|c| live(c)) {
                    let failures = c.rare.get().map(|r| &r.failures);
                    for i in 0..RESULTS {
                        let n = if i == 0 {
                            c.successes.load(Relaxed)
                        } else {
                            failures.map_or(0, |f| f[i - 1].load(Relaxed))
                        };
                        // `success` from the first result; a failure reason once it happened.
                        if i == 0 || n > 0 {
                            let _ = writeln!(
                                out,
                                "thongsuot_probes_total{{{},result=\"{}\"}} {n}",
                                c.labels,
                                result_label(i)
                            );
                        }
                    }
                }
            },
        );
        int_gauge(
            out,
            &cells,
            "thongsuot_target_up",
            "1 while the target is up, 0 while a confirmed outage is open.",
            |c| Some(c.up.load(Relaxed)).filter(|v| *v >= 0),
        );
        out.family(
            "thongsuot_target_downtime_seconds_total",
            "Confirmed downtime, backdated to the first failed probe of each outage.",
            "counter",
            |out: &mut Out| {
                for c in cells.iter().filter(|c| live(c)) {
                    let _ = write!(out, "thongsuot_target_downtime_seconds_total{{{}}} ", c.labels);
                    num(out, c.downtime.get().unwrap_or(0.0));
                }
            },
        );
        out.family(
            "thongsuot_target_flaps_total",
            "Failure runs shorter than `confirm` (not outages).",
            "counter",
            |out: &mut Out| {
                for c in cells.iter().filter(|c| live(c)) {
                    let _ = writeln!(out, "thongsuot_target_flaps_total{{{}}} {}", c.labels, c.flaps.load(Relaxed));
                }
            },
        );
        int_gauge(
            out,
            &cells,
            "thongsuot_target_degraded",
            "1 while the target is congested: loss or p95 latency over its thresholds in the sliding window.",
            |c| Some(c.degraded.load(Relaxed)).filter(|v| *v >= 0),
        );
        gauge(
            out,
            &cells,
            "thongsuot_icmp_packet_loss_ratio",
            "Share of echo requests of the last ICMP probe left unanswered.",
            |c| c.icmp_loss.get(),
        );
        gauge(
            out,
            &cells,
            "thongsuot_icmp_rtt_seconds",
            "Mean round-trip time of the echo replies of the last ICMP probe.",
            |c| c.icmp_rtt.get(),
        );
        gauge(
            out,
            &cells,
            "thongsuot_tls_cert_expiry_timestamp_seconds",
            "When the peer's leaf certificate expires (tls and https targets).",
            |c| c.cert_expiry.get(),
        );
        out.family(
            "thongsuot_uplink_probe_success",
            "1 if the last probe through this uplink (source address) succeeded.",
            "gauge",
            |out: &mut Out| {
                for c in &cells {
                    let Some(rare) = c.rare.get() else { continue };
                    let u = rare.uplinks.lock().unwrap_or_else(|p| p.into_inner());
                    for (source, f) in u.iter() {
                        if let Some(v) = f.get() {
                            let _ = write!(
                                out,
                                "thongsuot_uplink_probe_success{{{},source=\"{}\"}} ",
                                c.labels,
                                Esc(source)
                            );
                            num(out, v);
                        }
                    }
                }
            },
        );
        if !cells.is_empty() {
            self.bytes_per_cell.store((out.written() - start) / cells.len(), Relaxed);
        }
    }
}

/// An `f64` gauge; NaN means "no value yet" (the series is not rendered).
struct F(AtomicU64);

impl F {
    fn unset() -> F {
        F(AtomicU64::new(f64::NAN.to_bits()))
    }

    fn zero() -> F {
        F(AtomicU64::new(0f64.to_bits()))
    }

    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed);
    }

    fn get(&self) -> Option<f64> {
        let v = f64::from_bits(self.0.load(Relaxed));
        (!v.is_nan()).then_some(v)
    }

    /// Adds to a counter. Each cell has one writer (its target's task), so load + store is exact.
    fn add(&self, v: f64) {
        let old = f64::from_bits(self.0.load(Relaxed));
        self.0.store((if old.is_nan() { 0.0 } else { old } + v).to_bits(), Relaxed);
    }
}

fn gauge(out: &mut Out, cells: &[Arc<Cell>], name: &str, help: &str, value: impl Fn(&Cell) -> Option<f64>) {
    out.family(name, help, "gauge", |out: &mut Out| {
        for c in cells {
            if let Some(v) = value(c) {
                let _ = write!(out, "{name}{{{}}} ", c.labels);
                num(out, v);
            }
        }
    });
}

fn int_gauge(out: &mut Out, cells: &[Arc<Cell>], name: &str, help: &str, value: impl Fn(&Cell) -> Option<i64>) {
    out.family(name, help, "gauge", |out: &mut Out| {
        for c in cells {
            if let Some(v) = value(c) {
                let _ = writeln!(out, "{name}{{{}}} {v}", c.labels);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_appear_with_their_first_value_and_go_with_the_target() {
        let t = Table::default();
        let a = t.add(["a", "g", "tcp", "v"], true);
        let mut o = Out::default();
        t.render(&mut o);
        let s = o.finish();
        assert!(s.is_empty(), "nothing before the first result: {s}");
        a.probe(None, 0.003);
        a.probe(Some(FailureKind::Refused), 0.0001);
        a.phase(Phase::Connect, 0.002);
        a.up(true);
        let mut o = Out::default();
        t.render(&mut o);
        let s = o.finish();
        for line in [
            "thongsuot_probe_success{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\"} 0\n",
            "thongsuot_probes_total{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\",result=\"success\"} 1\n",
            "thongsuot_probes_total{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\",result=\"refused\"} 1\n",
            "thongsuot_probe_duration_seconds_bucket{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\",le=\"0.001\"} 1\n",
            "thongsuot_probe_duration_seconds_bucket{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\",le=\"0.005\"} 2\n",
            "thongsuot_probe_duration_seconds_count{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\"} 2\n",
            "thongsuot_probe_phase_duration_seconds{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\",phase=\"connect\"} 0.002\n",
            "thongsuot_target_up{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\"} 1\n",
            "thongsuot_target_downtime_seconds_total{target=\"a\",group=\"g\",kind=\"tcp\",vantage=\"v\"} 0\n",
            "# TYPE thongsuot_probes_total counter\n",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        assert!(!s.contains("thongsuot_target_degraded"), "no congestion verdict yet: {s}");
        t.remove(&a);
        let mut o = Out::default();
        t.render(&mut o);
        let s = o.finish();
        assert!(s.is_empty(), "{s}");
        // The slot is reused.
        let b = t.add(["b\"x", "g", "http", "v"], false);
        b.probe(None, 0.5);
        let mut o = Out::default();
        t.render(&mut o);
        let s = o.finish();
        assert!(s.contains("target=\"b\\\"x\""), "{s}");
        assert_eq!(t.len(), 1);
    }
}
