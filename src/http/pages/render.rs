//! The status page: server-rendered, self-contained (no external assets), Vietnamese or
//! English, mobile friendly; refreshes its content in place every 15 s without reloading.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::{Config, Language};
use crate::model::notice::IncidentRow;
use crate::report::{Report, TargetReport};
use crate::sla::Health;
use crate::sla::spans::{Span, SpanSet};
use crate::status::TargetStatus;
use crate::text::words::{PAGE_EN as EN, PAGE_VI as VI, PageWords as W};
use crate::text::{esc, local};

fn w(lang: Language) -> &'static W {
    if lang == Language::Vi { &VI } else { &EN }
}

/// Picks the language: `?lang=`, else the first of Accept-Language that we speak, else the
/// configured default.
pub fn language(query: Option<&str>, accept: Option<&str>, default: Language) -> Language {
    match query {
        Some("vi") => return Language::Vi,
        Some("en") => return Language::En,
        _ => {}
    }
    for part in accept.unwrap_or("").split(',') {
        let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if tag.starts_with("vi") {
            return Language::Vi;
        }
        if tag.starts_with("en") {
            return Language::En;
        }
    }
    default
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}\
main{max-width:960px;margin:auto;padding:1em}h1{font-size:1.4em}\
.banner{padding:1em;border-radius:8px;color:#fff;font-size:1.2em;font-weight:bold;margin:1em 0}\
.ok{background:#1a7f37}.bad{background:#cf222e}.warn{background:#9a6700}\
.group{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.6em 1em;margin:1em 0}\
.group h2{font-size:1.1em;margin:.3em 0}.t{display:flex;flex-wrap:wrap;align-items:center;gap:.3em 1em;padding:.4em 0;border-top:1px solid #eaeef2}\
.t a{color:inherit;font-weight:600;min-width:12em}.st{font-weight:bold}.st.up{color:#1a7f37}.st.down{color:#cf222e}.st.unknown{color:#656d76}.st.degraded{color:#9a6700}.st.fault{color:#8250df}.banner.fault{background:#fbefff;color:#8250df}.banner.maint{background:#eef1f4;color:#57606a}.st.maint{color:#57606a}\
.small{color:#656d76;font-size:.85em}.bar{display:flex;gap:1px;height:18px;flex:1 1 240px;min-width:200px}\
.bar span{flex:1;border-radius:2px}.g{background:#2da44e}.o{background:#d4a72c}.r{background:#cf222e}.n{background:#d0d7de}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em;border-top:1px solid #eaeef2}";

/// The page shell; `body` is the part the script refreshes.
pub fn page(title: &str, lang: Language, body: &str, refresh_url: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main id=\"main\">{body}</main>\
         <script>setInterval(function(){{fetch({},{{credentials:'same-origin'}}).then(function(r){{return r.ok?r.text():null}})\
         .then(function(t){{if(t){{document.getElementById('main').innerHTML=t}}}}).catch(function(){{}})}},15000);</script></body></html>",
        if lang == Language::Vi { "vi" } else { "en" },
        esc(title),
        serde_json::to_string(refresh_url).unwrap_or_else(|_| "\"\"".into()),
    )
}

/// Hourly slices of the last 24 h: class and title per slice.
fn slices(report: &Report, t: &TargetReport, now: DateTime<Utc>, tz: Tz) -> Vec<(&'static str, String)> {
    let end = now.timestamp_millis();
    let observed = SpanSet::new(report.observed.clone());
    let down = SpanSet::new(t.figures.outage_rows.iter().map(|o| Span::new(o.start, o.end.unwrap_or(end))).collect());
    let degraded = SpanSet::new(t.degradations.iter().map(|d| Span::new(d.start, d.end.unwrap_or(end))).collect());
    // Clock hours in the daemon's zone, the last one the hour in progress (up to now): a slice
    // labelled "19:00" holds 19:00-20:00, not 19:43-20:43.
    let local = now.with_timezone(&tz);
    let hour = local
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .map_or(end - end % 3_600_000, |t| t.timestamp_millis());
    (0..24)
        .map(|i| {
            let start = hour - (23 - i) * 3_600_000;
            let s = Span::new(start, (start + 3_600_000).min(end));
            let obs = observed.clip(s);
            let seen = obs.total();
            let d = down.intersect(&obs).total();
            let label = DateTime::<Utc>::from_timestamp_millis(s.start)
                .map(|x| x.with_timezone(&tz).format("%H:00").to_string())
                .unwrap_or_default();
            // An outage is a fact however little of the hour was watched; "all good" needs
            // at least half the hour observed.
            if d > 0 {
                ("r", format!("{label}: {:.2} %", 100.0 * (1.0 - d as f64 / seen.max(1) as f64)))
            } else if seen < s.len() / 2 {
                ("n", format!("{label}: —"))
            } else if degraded.intersect(&obs).total() > 0 {
                ("o", format!("{label}: 100 %"))
            } else {
                ("g", format!("{label}: 100 %"))
            }
        })
        .collect()
}

pub struct PageInput<'a> {
    pub config: &'a Config,
    pub targets: &'a [TargetStatus],
    pub reports: &'a [Report],
    pub incidents: &'a [IncidentRow],
    pub lang: Language,
    pub now: DateTime<Utc>,
    /// Appended to every link of the page (`&token=…` when the page needs the token).
    pub link_suffix: String,
    /// Consignment counts per postal operator (empty without `[postal]`).
    pub postal: &'a [crate::postal::tracker::OperatorSummary],
    /// Consignments in breach or with an early warning.
    pub consignments: &'a [crate::postal::Consignment],
    /// `?group=`: that group only, every target of it listed.
    pub group: Option<&'a str>,
}

/// Targets listed per group, and on the whole page, unless one group is asked for: a page
/// listing every target of a large fleet would be far too big for a browser. Targets that are
/// not up are listed first.
const LIST_PER_GROUP: usize = 200;
const LIST_PER_PAGE: usize = 2000;

/// The word and class of a target's state. `maintenance`: a `[[maintenance]]` window covers it
/// now (its outages are silenced, and it is left out of the banner's count).
fn state_word<'a>(t: &TargetStatus, w: &'a W, maintenance: bool) -> (&'static str, &'a str) {
    // The monitor cannot observe it: neither up nor down, whatever the last verdict was.
    if t.monitor_fault.is_some() {
        return ("fault", w.monitor_fault);
    }
    if maintenance && t.state != Health::Up {
        return ("maint", w.maintenance);
    }
    match (t.state, t.degraded_since.is_some()) {
        (Health::Down, _) => ("down", w.down),
        (Health::Up, true) => ("degraded", w.degraded),
        (Health::Up, false) => ("up", w.up),
        (Health::Unknown, _) => ("unknown", w.unknown),
    }
}

/// What the list says of a target's last probe: for ICMP the round trip and loss of its echoes
/// (the probe's own duration is mostly the spacing between them), for the others the duration.
fn latency_text(t: &TargetStatus, w: &W) -> String {
    if t.kind == crate::probe::kind::Kind::Icmp.name() {
        let rtt = t.rtt_seconds.map(|r| format!("{} {} ms", w.rtt, crate::text::millis(r * 1000.0)));
        let loss = t.packet_loss_ratio.map(|l| format!("{} {:.0} %", w.loss, l * 100.0));
        return [rtt, loss].into_iter().flatten().collect::<Vec<_>>().join(" · ");
    }
    t.last_duration_seconds.map(|d| format!("{} {} ms", w.latency, crate::text::millis(d * 1000.0))).unwrap_or_default()
}

/// The refreshable body of `/`.
pub fn status_body(p: &PageInput<'_>) -> String {
    let w = w(p.lang);
    let tz = p.config.daemon.timezone;
    let maint = |t: &TargetStatus| p.config.in_maintenance(&t.name, &t.group, p.now);
    let down = p.targets.iter().filter(|t| t.state == Health::Down && t.monitor_fault.is_none() && !maint(t)).count();
    let faults = p.targets.iter().filter(|t| t.monitor_fault.is_some()).count();
    let in_maint = p.targets.iter().filter(|t| t.state == Health::Down && maint(t)).count();
    let degraded = p.targets.iter().filter(|t| t.state == Health::Up && t.degraded_since.is_some()).count();
    let mut o = format!("<h1>{} — {}</h1>", esc(w.title), esc(&p.config.daemon.vantage));
    let (class, text) = if down > 0 {
        ("bad", format!("{down} {}", if down == 1 { w.n_down_one } else { w.n_down }))
    } else if degraded > 0 {
        ("warn", format!("{degraded} {}", w.n_degraded))
    } else {
        ("ok", w.all_ok.to_string())
    };
    let _ = write!(o, "<div class=\"banner {class}\" id=\"banner\">{}</div>", esc(&text));
    if faults > 0 {
        let _ = write!(o, "<div class=\"banner fault\" id=\"faults\">{faults} {}</div>", esc(w.n_faults));
    }
    if in_maint > 0 {
        let _ = write!(o, "<div class=\"banner maint\" id=\"maintenance\">{in_maint} {}</div>", esc(w.n_maintenance));
    }
    let period = p.config.periods.iter().find(|x| x.contains(p.now));
    match period {
        Some(x) => {
            let left = (x.end - p.now).num_minutes();
            let _ = write!(
                o,
                "<p>{}: <b>{}</b> ({} → {}, {} {}h{:02})</p>",
                w.period,
                esc(&x.name),
                local(x.start, tz),
                local(x.end, tz),
                w.left,
                left / 60,
                left % 60
            );
        }
        None => {
            let _ = write!(o, "<p>{}</p>", w.no_period);
        }
    }
    let report_now = period
        .and_then(|x| p.reports.iter().find(|r| r.window_name == x.name))
        .or_else(|| p.reports.iter().find(|r| r.window_name == "last-24h"));
    let day = p.reports.iter().find(|r| r.window_name == "last-24h");
    // Looked up once: a search per target would be quadratic in the number of targets.
    let day_by_name: HashMap<&str, &TargetReport> = day
        .map(|r| r.groups.iter().flat_map(|g| &g.targets).map(|t| (t.name.as_str(), t)).collect())
        .unwrap_or_default();
    let mut by_group: HashMap<&str, Vec<&TargetStatus>> = HashMap::new();
    for t in p.targets {
        by_group.entry(&t.group).or_default().push(t);
    }
    let mut budget = if p.group.is_some() { usize::MAX } else { LIST_PER_PAGE };
    for g in &p.config.groups {
        if p.group.is_some_and(|x| x != g.name) {
            continue;
        }
        let gr = report_now.and_then(|r| r.groups.iter().find(|x| x.name == g.name));
        let _ = write!(
            o,
            "<section class=\"group\"><h2>{}{}</h2><div class=\"small\">{} {}: {}</div>",
            esc(&g.name),
            g.display_name.as_ref().map(|d| format!(" — {}", esc(d))).unwrap_or_default(),
            w.availability,
            esc(report_now.map_or("", |r| r.window_name.as_str())),
            gr.and_then(|x| x.figures.availability).map_or_else(|| "—".into(), |a| format!("{:.3} %", a * 100.0))
        );
        let mut members = by_group.remove(g.name.as_str()).unwrap_or_default();
        let listed = if p.group.is_some() { members.len() } else { members.len().min(LIST_PER_GROUP).min(budget) };
        budget -= listed;
        if listed < members.len() {
            // Problems first; the order within each state stays by name.
            members.sort_by_key(|t| state_word(t, w, maint(t)).0 == "up");
        }
        let hidden = members.len() - listed;
        for t in members.into_iter().take(listed) {
            let (cls, word) = state_word(t, w, maint(t));
            let since = t.since.map(|s| format!("{} {}", w.since, local(s, tz))).unwrap_or_default();
            let mut latency = latency_text(t, w);
            // A target down says why in the list: the NOC reads the list before any page.
            if let (Some(false), Some(reason)) = (t.last_ok, t.last_failure_reason) {
                let word = match p.lang {
                    Language::Vi => crate::text::reason_vi(reason).unwrap_or(reason),
                    Language::En => reason,
                };
                latency = format!("{latency} · {word}");
            }
            let _ = write!(
                o,
                "<div class=\"t\" data-target=\"{name}\"><a href=\"targets/{name}?lang={l}{sfx}\">{name}</a><span class=\"st {cls}\">{word}</span><span class=\"small\">{since} · {latency}</span>",
                name = esc(&t.name),
                l = if p.lang == Language::Vi { "vi" } else { "en" },
                sfx = esc(&p.link_suffix),
                word = esc(word),
            );
            if let (Some(day), Some(tr)) = (day, day_by_name.get(&*t.name)) {
                o.push_str("<div class=\"bar\" title=\"");
                o.push_str(w.last_24h);
                o.push_str("\">");
                for (c, title) in slices(day, tr, p.now, tz) {
                    let _ = write!(o, "<span class=\"{c}\" title=\"{}\"></span>", esc(&title));
                }
                o.push_str("</div>");
            }
            o.push_str("</div>");
        }
        if hidden > 0 {
            let _ = write!(
                o,
                "<p class=\"small more\">{hidden} {} — <a href=\"?group={}&lang={}{}\">{}</a></p>",
                w.more,
                crate::text::url_encode(&g.name),
                if p.lang == Language::Vi { "vi" } else { "en" },
                esc(&p.link_suffix),
                w.show_all
            );
        }
        o.push_str("</section>");
    }
    postal_section(&mut o, p);
    let _ = write!(o, "<section class=\"group\"><h2>{}</h2>", w.incidents);
    if p.incidents.is_empty() {
        let _ = write!(o, "<p>{}</p>", w.no_incidents);
    } else {
        o.push_str("<table>");
        for i in p.incidents {
            let since = DateTime::<Utc>::from_timestamp_millis(i.since_ms).map(|t| local(t, tz)).unwrap_or_default();
            let _ = write!(
                o,
                "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
                i.id,
                esc(&i.group),
                esc(&i.target),
                w.since,
                since,
                if i.acked_ms.is_some() { w.acked } else { w.not_acked }
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "</section><p class=\"small\">{}: {} ({})</p>", w.updated, local(p.now, tz), tz);
    o
}

/// Consignments per operator, then those in breach or at risk.
fn postal_section(o: &mut String, p: &PageInput<'_>) {
    use crate::postal::mail::{state_word as consignment_state, warning_word};
    if p.postal.is_empty() {
        return;
    }
    let vi = p.lang == Language::Vi;
    let tz = p.config.daemon.timezone;
    let t = |en: &'static str, vi_s: &'static str| if vi { vi_s } else { en };
    let _ = write!(
        o,
        "<section class=\"group\" id=\"postal\"><h2>{}</h2><table>",
        t("Postal consignments", "Bưu gửi đề thi, giấy báo")
    );
    let _ = write!(
        o,
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t("Operator", "Doanh nghiệp"),
        t("Total", "Tổng"),
        t("On time", "Đúng hạn"),
        t("Late", "Trễ hạn"),
        t("Overdue", "Quá hạn"),
        t("Failed", "Thất lạc/hoàn"),
        t("At risk", "Nguy cơ trễ"),
        t("Unknown", "Chưa rõ"),
        t("On-time ratio", "Tỷ lệ đúng hạn"),
    );
    for s in p.postal {
        let n = |k: &str| s.states.get(k).copied().unwrap_or(0);
        let bad = n("overdue") + n("delivered_late") + n("failed") > 0;
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"st {}\">{}</td></tr>",
            esc(&s.operator),
            s.total,
            n("delivered_on_time"),
            n("delivered_late"),
            n("overdue"),
            n("failed"),
            s.warnings,
            n("unknown"),
            if bad { "down" } else { "up" },
            s.on_time_ratio.map_or_else(|| "—".into(), |r| format!("{:.1} %", r * 100.0))
        );
    }
    o.push_str("</table>");
    if !p.consignments.is_empty() {
        o.push_str("<table class=\"consignments\">");
        for c in p.consignments {
            let what = match c.warning {
                Some(w) if !c.state.is_breach() => warning_word(w, p.lang),
                _ => consignment_state(c.state, p.lang),
            };
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"st {}\">{}</td><td class=\"small\">{} {}</td></tr>",
                esc(&c.tracking),
                esc(&c.operator),
                esc(c.destination.as_deref().unwrap_or("")),
                if c.state.is_breach() { "down" } else { "degraded" },
                esc(what),
                t("deadline", "hạn"),
                DateTime::<Utc>::from_timestamp_millis(c.deadline_ms).map(|d| local(d, tz)).unwrap_or_default()
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>");
}

/// The refreshable body of `/targets/{name}`.
pub fn target_body(p: &PageInput<'_>, t: &TargetStatus) -> String {
    let w = w(p.lang);
    let tz = p.config.daemon.timezone;
    let (cls, word) = state_word(t, w, p.config.in_maintenance(&t.name, &t.group, p.now));
    let l = if p.lang == Language::Vi { "vi" } else { "en" };
    let mut o =
        format!("<p><a href=\"../?lang={l}{}\">← {}</a></p><h1>{}</h1>", esc(&p.link_suffix), w.back, esc(&t.name));
    if let Some(d) = &t.description {
        let _ = write!(o, "<p>{}</p>", esc(d));
    }
    let _ = write!(
        o,
        "<p><span class=\"st {cls}\">{}</span> {}</p><p class=\"small\">{} {} · {} {} s · {}</p>",
        esc(word),
        t.since.map(|s| format!("{} {}", w.since, local(s, tz))).unwrap_or_default(),
        w.kind,
        esc(t.kind),
        w.every,
        t.interval_seconds,
        esc(&latency_text(t, w)),
    );
    if let (Some(false), Some(f)) = (t.last_ok, &t.last_failure) {
        let _ = write!(o, "<p class=\"small\">{}: {}</p>", w.reason, esc(f));
    }
    if let (Some(why), Some(since)) = (&t.monitor_fault, t.monitor_fault_since) {
        let _ = write!(
            o,
            "<p><span class=\"st fault\">{}</span> {} {} — {} ({})</p>",
            esc(w.monitor_fault),
            w.since,
            local(since, tz),
            esc(why),
            esc(w.monitor_fault_note)
        );
    }
    for r in p.reports {
        let Some(tr) = r.groups.iter().flat_map(|g| g.targets.iter()).find(|x| *x.name == *t.name) else {
            // A past period keeps only its targets with something to report: not this one (on
            // the board, so configured).
            if r.clean_targets_omitted > 0 {
                let _ = write!(
                    o,
                    "<section class=\"group\"><h2>{} — {}: {}</h2></section>",
                    esc(&r.window_name),
                    w.outages,
                    w.none
                );
            }
            continue;
        };
        let window = if r.window_name == "last-24h" { w.last_24h } else { r.window_name.as_str() };
        let _ = write!(
            o,
            "<section class=\"group\"><h2>{} — {}: {}</h2><h3 class=\"small\">{}</h3>",
            esc(window),
            w.availability,
            tr.figures.availability.map_or_else(|| "—".into(), |a| format!("{:.3} %", a * 100.0)),
            w.outages
        );
        if tr.figures.outage_rows.is_empty() && tr.figures.observed_ms == 0 {
            // Never observed in this window: not "no outage".
            let _ = write!(o, "<p>{}</p>", w.not_observed);
        } else if tr.figures.outage_rows.is_empty() {
            let _ = write!(o, "<p>{}</p>", w.none);
        } else {
            let _ = write!(
                o,
                "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
                w.start, w.end, w.duration, w.reason
            );
            for row in &tr.figures.outage_rows {
                let start = DateTime::<Utc>::from_timestamp_millis(row.start).map(|x| local(x, tz)).unwrap_or_default();
                let end = row
                    .end
                    .and_then(DateTime::<Utc>::from_timestamp_millis)
                    .map_or_else(|| w.ongoing.to_string(), |x| local(x, tz));
                let len = crate::text::outage_length(row.observed_ms, row.unobserved_ms, w.not_observed);
                let _ = write!(
                    o,
                    "<tr><td>{start}</td><td>{end}</td><td>{}</td><td>{}</td></tr>",
                    esc(&len),
                    esc(row.reason.as_deref().unwrap_or(""))
                );
            }
            o.push_str("</table>");
        }
        o.push_str("</section>");
    }
    o
}
