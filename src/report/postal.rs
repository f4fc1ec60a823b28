//! The postal section of the report: per operator and kind, how many consignments were
//! delivered on time, late, failed or are overdue, the on-time ratio, and the list of breaches.
//! States are as known when the report is made (a consignment delivered after the window's end
//! is counted with what is known of it now).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono_tz::Tz;
use serde::Serialize;

use crate::config::{Config, Language};
use crate::postal::mail::state_word;
use crate::postal::{Consignment, SlaState};
use crate::sla::spans::Span;
use crate::text::dur;
use crate::text::words::{POSTAL_REPORT_EN as EN, POSTAL_REPORT_VI as VI, PostalReportWords as W};
use crate::text::{esc, local_ms};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub operator: String,
    /// Empty on an operator's total row.
    pub kind: String,
    pub total: usize,
    pub delivered_on_time: usize,
    pub delivered_late: usize,
    pub failed: usize,
    pub overdue: usize,
    pub on_track: usize,
    pub unknown: usize,
    /// Delivered on time / (on time + late + failed + overdue); none while nothing is decided.
    pub on_time_ratio: Option<f64>,
}

impl Counts {
    fn add(&mut self, s: SlaState) {
        self.total += 1;
        match s {
            SlaState::DeliveredOnTime => self.delivered_on_time += 1,
            SlaState::DeliveredLate => self.delivered_late += 1,
            SlaState::Failed => self.failed += 1,
            SlaState::Overdue => self.overdue += 1,
            SlaState::OnTrack => self.on_track += 1,
            SlaState::Unknown => self.unknown += 1,
        }
        let decided = self.delivered_on_time + self.delivered_late + self.failed + self.overdue;
        self.on_time_ratio = (decided > 0).then(|| self.delivered_on_time as f64 / decided as f64);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Breach {
    pub tracking: String,
    pub operator: String,
    pub kind: String,
    pub description: Option<String>,
    pub destination: Option<String>,
    pub state: SlaState,
    pub deadline_ms: i64,
    pub delivered_ms: Option<i64>,
    pub operator_status: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PostalReport {
    pub operators: Vec<Counts>,
    pub by_kind: Vec<Counts>,
    pub breaches: Vec<Breach>,
}

/// Consignments of the window: accepted before its end, and either due in or after it, or not
/// delivered before it began (one still overdue is reported in every window until delivered).
pub fn build(config: &Config, all: Vec<Consignment>, window: Span, now_ms: i64) -> Option<PostalReport> {
    let postal = config.postal.as_ref()?;
    let (stale, risk) = (postal.stale_after.as_millis() as i64, postal.at_risk_before.as_millis() as i64);
    let mut ops: BTreeMap<String, Counts> = BTreeMap::new();
    for o in &postal.operators {
        ops.insert(o.name.clone(), Counts { operator: o.name.clone(), ..Counts::default() });
    }
    let mut kinds: BTreeMap<(String, String), Counts> = BTreeMap::new();
    let mut breaches = Vec::new();
    let in_window = |c: &Consignment| {
        c.accepted_ms < window.end
            && (c.deadline_ms >= window.start || c.delivered_ms.is_none_or(|d| d >= window.start))
    };
    for c in all.into_iter().filter(in_window) {
        let (state, _) = c.evaluate(now_ms, stale, risk);
        ops.entry(c.operator.clone())
            .or_insert_with(|| Counts { operator: c.operator.clone(), ..Counts::default() })
            .add(state);
        kinds
            .entry((c.operator.clone(), c.kind.clone()))
            .or_insert_with(|| Counts { operator: c.operator.clone(), kind: c.kind.clone(), ..Counts::default() })
            .add(state);
        if state.is_breach() {
            breaches.push(Breach {
                tracking: c.tracking,
                operator: c.operator,
                kind: c.kind,
                description: c.description,
                destination: c.destination,
                state,
                deadline_ms: c.deadline_ms,
                delivered_ms: c.delivered_ms,
                operator_status: c.status_raw,
            });
        }
    }
    breaches.sort_by(|a, b| (&a.operator, a.deadline_ms, &a.tracking).cmp(&(&b.operator, b.deadline_ms, &b.tracking)));
    Some(PostalReport { operators: ops.into_values().collect(), by_kind: kinds.into_values().collect(), breaches })
}

fn words(lang: Language) -> &'static W {
    if lang == Language::Vi { &VI } else { &EN }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{:.1} %", r * 100.0))
}

fn delay(b: &Breach, now_ms: i64) -> String {
    match b.state {
        SlaState::Overdue => dur(now_ms - b.deadline_ms),
        SlaState::DeliveredLate => b.delivered_ms.map_or_else(|| "—".into(), |d| dur(d - b.deadline_ms)),
        _ => "—".into(),
    }
}

/// The rows of the counts table: each operator's total, then its kinds.
fn rows(p: &PostalReport) -> Vec<&Counts> {
    let mut v = Vec::new();
    for o in &p.operators {
        v.push(o);
        v.extend(p.by_kind.iter().filter(|k| k.operator == o.operator));
    }
    v
}

/// The cells of a counts row: operator (on its total row only), kind (`*` for the total), counts,
/// ratio.
fn cells(c: &Counts) -> [String; 10] {
    let total_row = c.kind.is_empty();
    [
        if total_row { c.operator.clone() } else { String::new() },
        if total_row { "*".to_string() } else { c.kind.clone() },
        c.total.to_string(),
        c.delivered_on_time.to_string(),
        c.delivered_late.to_string(),
        c.failed.to_string(),
        c.overdue.to_string(),
        c.on_track.to_string(),
        c.unknown.to_string(),
        ratio(c.on_time_ratio),
    ]
}

fn headers(w: &W) -> [&'static str; 10] {
    [w.operator, w.kind, w.total, w.on_time, w.late, w.failed, w.overdue, w.on_track, w.unknown, w.ratio]
}

/// The breaches' cells: tracking, operator, kind, state, deadline, how late.
fn breach_cells(b: &Breach, lang: Language, tz: Tz, now_ms: i64) -> [String; 6] {
    [
        b.tracking.clone(),
        b.operator.clone(),
        b.kind.clone(),
        state_word(b.state, lang).to_string(),
        local_ms(b.deadline_ms, tz),
        delay(b, now_ms),
    ]
}

pub fn text(p: &PostalReport, lang: Language, tz: Tz, now_ms: i64) -> String {
    let w = words(lang);
    let mut o = format!("\n== {}\n", w.title);
    let line = |o: &mut String, v: [&str; 10]| {
        let _ = writeln!(
            o,
            "{:<14} {:<18} {:>6} {:>8} {:>8} {:>13} {:>8} {:>9} {:>8} {:>14}",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]
        );
    };
    line(&mut o, headers(w));
    for c in rows(p) {
        let v = cells(c);
        line(&mut o, std::array::from_fn(|i| v[i].as_str()));
    }
    let _ = writeln!(o, "\n{}:", w.breaches);
    if p.breaches.is_empty() {
        let _ = writeln!(o, "  {}", w.none);
    }
    for b in &p.breaches {
        let [t, op, kind, state, deadline, late] = breach_cells(b, lang, tz, now_ms);
        let _ = writeln!(
            o,
            "  {t:<16} {op:<12} {kind:<18} {state:<28} {} {deadline}  {} {late}  {}",
            w.deadline,
            w.delay,
            b.destination.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(o, "\n{}", w.note);
    o
}

pub fn markdown(p: &PostalReport, lang: Language, tz: Tz, now_ms: i64) -> String {
    let w = words(lang);
    let mut o = format!("\n## {}\n\n", w.title);
    let _ = writeln!(o, "| {} |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|", headers(w).join(" | "));
    for c in rows(p) {
        let mut v = cells(c);
        if !v[0].is_empty() {
            v[0] = format!("**{}**", v[0]);
        }
        let _ = writeln!(o, "| {} |", v.join(" | "));
    }
    let _ = writeln!(
        o,
        "\n### {}\n\n| {} | {} | {} | {} | {} | {} |\n|---|---|---|---|---|---:|",
        w.breaches, w.tracking, w.operator, w.kind, w.state, w.deadline, w.delay
    );
    for b in &p.breaches {
        let _ = writeln!(o, "| {} |", breach_cells(b, lang, tz, now_ms).join(" | "));
    }
    let _ = writeln!(o, "\n_{}_", w.note);
    o
}

pub fn html(p: &PostalReport, lang: Language, tz: Tz, now_ms: i64) -> String {
    let w = words(lang);
    let mut o = format!("<h2>{}</h2><table><tr>", esc(w.title));
    for h in headers(w) {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>");
    for c in rows(p) {
        let bad = c.delivered_late + c.failed + c.overdue > 0;
        o.push_str("<tr>");
        let v = cells(c);
        for (i, cell) in v.iter().enumerate() {
            let class = if i == v.len() - 1 { if bad { " class=\"breach\"" } else { " class=\"ok\"" } } else { "" };
            let _ = write!(o, "<td{class}>{}</td>", esc(cell));
        }
        o.push_str("</tr>");
    }
    let _ = write!(o, "</table><h3>{}</h3>", esc(w.breaches));
    if p.breaches.is_empty() {
        let _ = write!(o, "<p>{}</p>", esc(w.none));
    } else {
        let _ = write!(o, "<table><tr>");
        for h in [w.tracking, w.operator, w.kind, w.state, w.deadline, w.delay] {
            let _ = write!(o, "<th>{}</th>", esc(h));
        }
        o.push_str("</tr>");
        for b in &p.breaches {
            o.push_str("<tr>");
            for (i, cell) in breach_cells(b, lang, tz, now_ms).iter().enumerate() {
                let class = if i == 3 { " class=\"breach\"" } else { "" };
                let _ = write!(o, "<td{class}>{}</td>", esc(cell));
            }
            o.push_str("</tr>");
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "<p><small>{}</small></p>", esc(w.note));
    o
}
