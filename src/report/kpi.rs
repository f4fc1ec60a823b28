//! The service KPIs a Department recognises (QCVN / ETSI TS 102 250 style), from every test call
//! and test message of the window: call setup success ratio, setup time and post-dial delay; SMS
//! completion ratio and end-to-end delivery time (p50, p95).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{Config, Language};
use crate::model::event::KpiRecord;
use crate::text::esc;
use crate::text::words::{KPI_EN as EN, KPI_VI as VI, KpiWords as W};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Kpi {
    pub target: String,
    pub group: String,
    /// `call` or `sms`.
    pub kind: String,
    pub attempts: u64,
    pub successes: u64,
    pub success_ratio: Option<f64>,
    /// Call: setup time; SMS: delivery time (successful attempts).
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Calls: post-dial delay p95.
    pub post_dial_p95_ms: Option<u64>,
}

fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// KPIs per call/sms target from the store's per-probe records `(target, detail JSON)`.
pub fn build(config: &Config, events: Vec<(String, String)>) -> Vec<Kpi> {
    let mut by: BTreeMap<String, (u64, u64, Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for (target, detail) in events {
        // A record that does not read (none should) still counts as an attempt, not a success.
        let r: KpiRecord = serde_json::from_str(&detail).unwrap_or_default();
        if !r.kind.is_empty() {
            kinds.insert(target.clone(), r.kind);
        }
        let e = by.entry(target).or_default();
        e.0 += 1;
        if r.ok {
            e.1 += 1;
            e.2.extend(r.ms);
        }
        e.3.extend(r.pdd_ms);
    }
    by.into_iter()
        .map(|(target, (attempts, successes, mut times, mut pdd))| {
            times.sort_unstable();
            pdd.sort_unstable();
            let t = config.targets.iter().find(|t| t.name == target);
            Kpi {
                group: t.map(|t| t.group.clone()).unwrap_or_default(),
                kind: t.map(|t| t.spec.kind().to_string()).or_else(|| kinds.get(&target).cloned()).unwrap_or_default(),
                target,
                attempts,
                successes,
                success_ratio: (attempts > 0).then(|| successes as f64 / attempts as f64),
                p50_ms: quantile(&times, 0.5),
                p95_ms: quantile(&times, 0.95),
                post_dial_p95_ms: quantile(&pdd, 0.95),
            }
        })
        .collect()
}

fn cells(k: &Kpi, w: &W) -> [String; 7] {
    let ms = |v: Option<u64>| v.map_or_else(|| "—".into(), |m| format!("{:.2} s", m as f64 / 1000.0));
    [
        k.target.clone(),
        (if k.kind == "call" { w.call } else { w.sms }).to_string(),
        k.attempts.to_string(),
        k.success_ratio.map_or_else(|| "—".into(), |r| format!("{:.1} % ({}/{})", r * 100.0, k.successes, k.attempts)),
        ms(k.p50_ms),
        ms(k.p95_ms),
        if k.kind == "call" { ms(k.post_dial_p95_ms) } else { "—".into() },
    ]
}

fn words(lang: Language) -> &'static W {
    if lang == Language::Vi { &VI } else { &EN }
}

fn headers(w: &W) -> [&'static str; 7] {
    [w.target, w.measure, w.attempts, w.ratio, w.p50, w.p95, w.pdd]
}

pub fn text(kpis: &[Kpi], lang: Language) -> String {
    let w = words(lang);
    let mut o = format!("\n== {}\n", w.title);
    let line = |o: &mut String, v: [&str; 7]| {
        let _ =
            writeln!(o, "{:<24} {:<20} {:>10} {:>22} {:>10} {:>10} {:>20}", v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    };
    line(&mut o, headers(w));
    for k in kpis {
        let c = cells(k, w);
        line(&mut o, std::array::from_fn(|i| c[i].as_str()));
    }
    o
}

pub fn markdown(kpis: &[Kpi], lang: Language) -> String {
    let w = words(lang);
    let mut o = format!("\n## {}\n\n| {} |\n|---|---|---:|---:|---:|---:|---:|\n", w.title, headers(w).join(" | "));
    for k in kpis {
        let _ = writeln!(o, "| {} |", cells(k, w).join(" | "));
    }
    o
}

pub fn html(kpis: &[Kpi], lang: Language) -> String {
    let w = words(lang);
    let mut o = format!("<h2>{}</h2><table><tr>", esc(w.title));
    for h in headers(w) {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>");
    for k in kpis {
        o.push_str("<tr>");
        let bad = k.success_ratio.is_some_and(|r| r < 1.0);
        for (i, c) in cells(k, w).iter().enumerate() {
            let class = if i == 3 { if bad { " class=\"breach\"" } else { " class=\"ok\"" } } else { "" };
            let _ = write!(o, "<td{class}>{}</td>", esc(c));
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
    o
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((quantile(&v, 0.5), quantile(&v, 0.95)), (Some(50), Some(95)));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
