//! Configuration: the TOML file (see `raw`) validated into domain types that the rest of the
//! daemon uses. Only this module knows TOML. Every error is reported, each located as
//! `FILE:LINE:COL: message`; defaults live in [`builtin`].

mod defaults;
mod diagnostics;
mod explain;
mod model;
mod raw;
mod sections;
pub mod units;

/// Built-in defaults, in one place (`defaults.rs`).
pub mod builtin {
    pub use super::defaults::*;
}

pub use diagnostics::{ConfigError, Diagnostic};
pub use model::*;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::probe::dns::{DnsSpec, DnsTransport};
use crate::probe::http::HttpSpec;
use crate::probe::icmp::IcmpSpec;
use crate::probe::tcp::TcpSpec;
use crate::probe::{Binding, ProbeSpec};
use diagnostics::{Cx, Names};
use raw::*;
use units::{parse_standard, parse_time};

impl Config {
    /// Reads and validates a config file, taking secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &|k| std::env::var(k).ok())
    }

    /// As [`Config::load`], for a reload: targets equal to one of `previous` are that target
    /// (the same `Arc`), not a copy. With 100,000 targets, a copy each left 36 MB of the old ones
    /// as heap holes between the new ones: +60 MB of RSS per reload.
    pub fn reload(previous: &Config) -> Result<Config, ConfigError> {
        let text = read(&previous.path)?;
        Config::parse_reusing(&previous.path, &text, &|k| std::env::var(k).ok(), Some(previous))
    }

    /// As [`Config::load`], with the environment passed in (tests).
    pub fn load_with_env(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::parse(path, &read(path)?, env)
    }

    /// Validates config text; `path` names it in messages and anchors relative paths.
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::parse_reusing(path, text, env, None)
    }

    fn parse_reusing(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        previous: Option<&Config>,
    ) -> Result<Config, ConfigError> {
        let mut cx = Cx { file: path.to_path_buf(), src: text, base: 0, errors: Vec::new(), warnings: Vec::new() };
        // Each `[[target]]` section is parsed, deserialized and validated on its own, one after
        // the other (see `sections`): 100,000 targets never exist twice in memory.
        let split = sections::split(text);
        let mut doc = match toml::de::DeTable::parse(&split.rest) {
            Ok(d) => d,
            Err(e) => {
                cx.toml_error(&e);
                return Err(ConfigError::Invalid(cx.errors));
            }
        };
        let inline = doc.get_mut().remove("target");
        if let Some(v) = &inline
            && !split.targets.is_empty()
        {
            cx.error(
                v.span(),
                "`target` keys outside their [[target]]: put a `[target.…]` table right after the [[target]] it belongs to",
            );
        }
        let targets = TargetInput { inline, sections: split.targets, previous };
        let raw = match RawConfig::deserialize(toml::de::Deserializer::from(doc)) {
            Ok(r) => r,
            Err(e) => {
                cx.toml_error(&e);
                return Err(ConfigError::Invalid(cx.errors));
            }
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = validate(&mut cx, raw, targets, &base, path, env);
        if cx.errors.is_empty() {
            let mut config = config;
            cx.warnings.sort_by_key(|d| (d.line, d.col));
            config.warnings = cx.warnings;
            Ok(config)
        } else {
            cx.errors.sort_by_key(|d| (d.line, d.col));
            Err(ConfigError::Invalid(cx.errors))
        }
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

/// The `[[target]]` tables of the document, consumed one by one.
fn target_tables<'i>(
    cx: &mut Cx<'_>,
    v: Option<S<toml::de::DeValue<'i>>>,
) -> impl Iterator<Item = S<toml::de::DeValue<'i>>> + use<'i> {
    let items = match v.map(|v| (v.span(), v.into_inner())) {
        None => None,
        Some((_, toml::de::DeValue::Array(a))) => Some(a),
        Some((span, other)) => {
            cx.error(span, format!("`target` must be [[target]] tables, found {}", other.type_str()));
            None
        }
    };
    items.into_iter().flatten()
}

fn language(cx: &mut Cx<'_>, v: &Opt<String>, default: Language, owner: &str) -> Language {
    match v.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None => default,
        Some(("en", _)) => Language::En,
        Some(("vi", _)) => Language::Vi,
        Some((other, span)) => {
            cx.error(span, format!("{owner}language must be \"en\" or \"vi\", not {other:?}"));
            default
        }
    }
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn default_vantage() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".to_string())
}

/// The targets of a document: its `[[target]]` sections, and a `target = [...]` array if it
/// was written so.
struct TargetInput<'i> {
    inline: Option<S<toml::de::DeValue<'i>>>,
    sections: Vec<Range<usize>>,
    /// The running config, on a reload: its targets are reused when unchanged.
    previous: Option<&'i Config>,
}

fn validate(
    cx: &mut Cx<'_>,
    raw: RawConfig,
    raw_targets: TargetInput<'_>,
    base: &Path,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Config {
    let mut daemon = validate_daemon(cx, raw.daemon.as_ref(), base, env);
    let defaults = validate_defaults(cx, raw.defaults.as_ref());
    let tz = daemon.timezone;

    // Contacts first: groups and periods refer to them.
    let mut contact_names = Names::new("contact");
    let mut contacts = Vec::new();
    for c in &raw.contact {
        contact_names.add(cx, &c.name);
        let name = cx.name(&c.name, "contact");
        let emails = c.emails.get_ref().clone();
        if emails.is_empty() {
            cx.error(c.emails.span(), format!("contact {name:?}: emails must list at least one address"));
        }
        for e in &emails {
            if !looks_like_email(e) {
                cx.error(c.emails.span(), format!("contact {name:?}: {e:?} is not an e-mail address"));
            }
        }
        let daily_summary =
            c.daily_summary.as_ref().and_then(|d| match NaiveTime::parse_from_str(d.get_ref(), "%H:%M") {
                Ok(t) => Some(t),
                Err(_) => {
                    cx.error(
                        d.span(),
                        format!(
                            "contact {name:?}: daily_summary must be a local time \"HH:MM\", not {:?}",
                            d.get_ref()
                        ),
                    );
                    None
                }
            });
        let min_severity = match c.min_severity.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
            None | Some(("warning", _)) => Severity::Warning,
            Some(("breach", _)) => Severity::Breach,
            Some((other, span)) => {
                cx.error(
                    span,
                    format!("contact {name:?}: min_severity must be \"warning\" or \"breach\", not {other:?}"),
                );
                Severity::Warning
            }
        };
        let language = language(cx, &c.language, daemon.language, &format!("contact {name:?}: "));
        contacts.push(Contact { name, emails, language, daily_summary, min_severity });
    }
    let check_contacts = |cx: &mut Cx<'_>, list: &[S<String>], owner: &str| -> Vec<String> {
        list.iter()
            .map(|c| {
                if !contact_names.contains(c.get_ref()) {
                    cx.error(
                        c.span(),
                        format!("{owner}: unknown contact {:?} (no [[contact]] has that name)", c.get_ref()),
                    );
                }
                c.get_ref().clone()
            })
            .collect()
    };

    if let Some(d) = &raw.daemon {
        daemon.monitor_contacts = check_contacts(cx, &d.monitor_contacts, "daemon.monitor_contacts");
    }

    let mut group_names = Names::new("group");
    let mut groups = Vec::new();
    for g in &raw.group {
        group_names.add(cx, &g.name);
        let name = cx.name(&g.name, "group");
        let owner = format!("group {name:?}");
        let kind = match g.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
            None | Some(("carrier", _)) => GroupKind::Carrier,
            Some(("postal", _)) => GroupKind::Postal,
            Some(("portal", _)) => GroupKind::Portal,
            Some((other, span)) => {
                cx.error(span, format!("{owner}: kind must be carrier, postal or portal, not {other:?}"));
                GroupKind::Carrier
            }
        };
        let contacts = check_contacts(cx, &g.contacts, &owner);
        let escalate_to = check_contacts(cx, &g.escalate_to, &owner);
        let prefix = format!("{owner}: ");
        groups.push(Group {
            objective: cx.objective(&g.objective, &prefix),
            max_outage: cx.duration(&g.max_outage, &format!("{prefix}max_outage: ")),
            group_interval: cx
                .duration(&g.group_interval, &format!("{prefix}group_interval: "))
                .unwrap_or(defaults.group_interval),
            repeat_interval: cx
                .duration(&g.repeat_interval, &format!("{prefix}repeat_interval: "))
                .unwrap_or(defaults.repeat_interval),
            escalate_after: cx
                .duration(&g.escalate_after, &format!("{prefix}escalate_after: "))
                .unwrap_or(defaults.escalate_after),
            name,
            kind,
            display_name: g.display_name.as_ref().map(|s| s.get_ref().clone()),
            contacts,
            escalate_to,
            contingency: g.contingency.as_ref().map(|s| s.get_ref().clone()),
            runbook_url: g.runbook_url.as_ref().and_then(|u| match reqwest::Url::parse(u.get_ref()) {
                Ok(_) => Some(u.get_ref().clone()),
                Err(e) => {
                    cx.error(u.span(), format!("{prefix}runbook_url: {}", url_error(&e)));
                    None
                }
            }),
        });
    }

    let mut periods = Vec::new();
    let mut period_names = Names::new("period");
    for p in &raw.period {
        period_names.add(cx, &p.name);
        let name = cx.name(&p.name, "period");
        let owner = format!("period {name:?}: ");
        let start = time(cx, &p.start, tz, &owner);
        let end = time(cx, &p.end, tz, &owner);
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            cx.error(p.end.span(), format!("{owner}end must be after start"));
        }
        let interval = cx.duration(&p.interval, &format!("{owner}interval: "));
        let objective = cx.objective(&p.objective, &owner);
        let notify = check_contacts(cx, &p.notify, &format!("period {name:?}"));
        periods.push(Period {
            name,
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
            interval,
            objective,
            notify,
            description: p.description.as_ref().map(|s| s.get_ref().clone()),
        });
    }

    let mut target_names = Names::new("target");
    let mut targets = Vec::new();
    let mut target_count = 0usize;
    let previous: HashMap<&str, &Arc<Target>> =
        raw_targets.previous.map(|c| c.targets.iter().map(|t| (t.name.as_str(), t)).collect()).unwrap_or_default();
    let mut add_target = |cx: &mut Cx<'_>, item: S<toml::de::DeValue<'_>>| {
        target_count += 1;
        let t = match RawTarget::deserialize(toml::de::ValueDeserializer::from(item)) {
            Ok(t) => t,
            Err(e) => {
                cx.toml_error(&e);
                return;
            }
        };
        let t = &t;
        target_names.add(cx, &t.name);
        if let Some(target) =
            validate_target(cx, t, &group_names, &defaults, &periods, base, env, daemon.public_url.as_deref())
        {
            // Messages forwarded by the test SIM's gateway must carry the API token.
            if let ProbeSpec::Sms(s) = &target.spec
                && s.confirm_by != crate::probe::sms::ConfirmBy::Dlr
                && daemon.api_token.is_none()
            {
                cx.error(
                    t.kind.span(),
                    format!(
                        "target {:?}: confirm_by inbound needs daemon.api_token_env: the test SIM's gateway forwards messages with the token",
                        target.name
                    ),
                );
            }
            targets.push(match previous.get(target.name.as_str()) {
                Some(old) if ***old == target => Arc::clone(old),
                _ => Arc::new(target),
            });
        }
    };
    for item in target_tables(cx, raw_targets.inline) {
        add_target(cx, item);
    }
    for section in raw_targets.sections {
        cx.base = section.start;
        match toml::de::DeTable::parse(&cx.src[section]) {
            Ok(mut doc) => {
                for item in target_tables(cx, doc.get_mut().remove("target")) {
                    add_target(cx, item);
                }
            }
            Err(e) => cx.toml_error(&e),
        }
        cx.base = 0;
    }

    let mut maintenance = Vec::new();
    for m in &raw.maintenance {
        let owner = match &m.name {
            Some(n) => format!("maintenance {:?}: ", n.get_ref()),
            None => "maintenance: ".to_string(),
        };
        let start = time(cx, &m.start, tz, &owner);
        let end = time(cx, &m.end, tz, &owner);
        for g in &m.groups {
            if !group_names.contains(g.get_ref()) {
                cx.error(g.span(), format!("{owner}unknown group {:?}", g.get_ref()));
            }
        }
        for t in &m.targets {
            if !target_names.contains(t.get_ref()) {
                cx.error(t.span(), format!("{owner}unknown target {:?}", t.get_ref()));
            }
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e <= s {
                cx.error(m.end.span(), format!("{owner}end must be after start"));
            }
            for p in &periods {
                if s < p.end && p.start < e {
                    cx.warn(
                        m.start.span(),
                        format!(
                            "{owner}overlaps period {:?}: notifications are silenced during an exam period",
                            p.name
                        ),
                    );
                }
            }
        }
        maintenance.push(Maintenance {
            name: m.name.as_ref().map(|s| s.get_ref().clone()),
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
            groups: m.groups.iter().map(|g| g.get_ref().clone()).collect(),
            targets: m.targets.iter().map(|g| g.get_ref().clone()).collect(),
            count_in_sla: m.count_in_sla.as_ref().is_some_and(|b| *b.get_ref()),
            reason: m.reason.as_ref().map(|s| s.get_ref().clone()),
        });
    }

    let smtp = raw.smtp.as_ref().map(|s| validate_smtp(cx, s, base, env));
    let postal = raw.postal.as_ref().map(|p| {
        let postal = validate_postal(cx, p, base, &group_names, env);
        // Each operator's tracking API is a connectivity target of its group.
        for (o, raw_o) in postal.operators.iter().zip(&p.operator) {
            if !groups.iter().any(|g| g.name == o.group) {
                groups.push(Group {
                    name: o.group.clone(),
                    kind: GroupKind::Postal,
                    display_name: None,
                    contacts: Vec::new(),
                    escalate_to: Vec::new(),
                    contingency: None,
                    runbook_url: None,
                    objective: None,
                    max_outage: None,
                    group_interval: defaults.group_interval,
                    repeat_interval: defaults.repeat_interval,
                    escalate_after: defaults.escalate_after,
                });
            }
            if target_names.contains(&o.api_target) {
                cx.error(
                    raw_o.name.span(),
                    format!(
                        "postal operator {:?}: its tracking API is watched as target {:?}, which is already a [[target]] name",
                        o.name, o.api_target
                    ),
                );
                continue;
            }
            let health_interval = cx
                .duration(&raw_o.health_interval, &format!("postal operator {:?}: health_interval: ", o.name))
                .unwrap_or(builtin::POSTAL_HEALTH);
            if o.timeout >= health_interval {
                let span = raw_o.health_interval.as_ref().map_or_else(|| raw_o.name.span(), |h| h.span());
                cx.error(
                    span,
                    format!(
                        "postal operator {:?}: timeout ({}) must be shorter than health_interval ({}): a probe must end before the next one starts",
                        o.name,
                        crate::probe::fmt_duration(o.timeout),
                        crate::probe::fmt_duration(health_interval)
                    ),
                );
            }
            if o.api_target.len() > 128 {
                cx.error(
                    raw_o.name.span(),
                    format!(
                        "postal operator {:?}: name too long: its target {:?} would exceed 128 characters",
                        o.name, o.api_target
                    ),
                );
            }
            targets.push(Arc::new(Target {
                name: o.api_target.clone(),
                group: o.group.clone(),
                description: Some(format!("tracking API of {}", o.name)),
                spec: ProbeSpec::Postal(Box::new(crate::probe::postal::PostalApiSpec {
                    operator: o.name.clone(),
                    track_url: o.track_url.clone(),
                    method: o.method.clone(),
                    headers: o.headers.clone(),
                })),
                interval: Some(health_interval),
                timeout: o.timeout,
                confirm: defaults.confirm,
                recover: defaults.recover,
                objective: None,
                max_outage: None,
                binding: Binding::default(),
                uplinks: Vec::new(),
                quorum: 1,
            }));
        }
        postal
    });

    if target_count == 0 && postal.as_ref().is_none_or(|p| p.operators.is_empty()) {
        cx.warn(0..0, "no [[target]] and no [[postal.operator]]: nothing will be monitored");
    }

    Config {
        path: path.to_path_buf(),
        daemon,
        defaults,
        periods,
        maintenance,
        groups,
        targets,
        smtp,
        contacts,
        postal,
        warnings: Vec::new(),
    }
}

fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace))
}

fn time(cx: &mut Cx<'_>, v: &S<toml::Value>, tz: Tz, owner: &str) -> Option<DateTime<Utc>> {
    match parse_time(v.get_ref(), tz) {
        Ok(t) => Some(t),
        Err(e) => {
            cx.error(v.span(), format!("{owner}{e}"));
            None
        }
    }
}

fn validate_daemon(
    cx: &mut Cx<'_>,
    d: Option<&RawDaemon>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Daemon {
    let mut out = Daemon {
        listen: builtin::LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9798))),
        state_dir: resolve_path(base, builtin::STATE_DIR),
        vantage: default_vantage(),
        api_token_env: None,
        api_token: None,
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        public_url: None,
        grafana_url: None,
        public_status: true,
        language: Language::Vi,
        max_in_flight: builtin::MAX_IN_FLIGHT,
        per_target_histograms: true,
        shard: None,
        shutdown_grace: builtin::SHUTDOWN_GRACE,
        monitor_contacts: Vec::new(),
    };
    let Some(d) = d else { return out };
    if let Some(l) = &d.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => out.listen = a,
            Err(_) => cx.error(
                l.span(),
                format!("daemon.listen: {:?} is not an address such as \"127.0.0.1:9798\"", l.get_ref()),
            ),
        }
    }
    if let Some(s) = &d.state_dir {
        out.state_dir = resolve_path(base, s.get_ref());
    }
    if let Some(v) = &d.vantage {
        out.vantage = cx.name(v, "daemon.vantage");
    }
    if let Some(e) = &d.api_token_env {
        out.api_token_env = Some(e.get_ref().clone());
        match env(e.get_ref()).filter(|s| !s.is_empty()) {
            Some(tok) => {
                if tok.len() < 16 {
                    cx.warn(e.span(), format!("daemon.api_token_env: the token in {} is shorter than 16 characters", e.get_ref()));
                }
                out.api_token = Some(tok);
            }
            None => cx.warn(
                e.span(),
                format!("daemon.api_token_env: {} is not set, so state-changing API calls (reload, ack, consignments, heartbeats) are refused", e.get_ref()),
            ),
        }
    }
    if let Some(z) = &d.timezone {
        match z.get_ref().parse::<Tz>() {
            Ok(tz) => out.timezone = tz,
            Err(_) => cx.error(
                z.span(),
                format!("daemon.timezone: unknown time zone {:?} (e.g. \"{}\")", z.get_ref(), builtin::TIMEZONE),
            ),
        }
    }
    for (field, v, slot) in
        [("public_url", &d.public_url, &mut out.public_url), ("grafana_url", &d.grafana_url, &mut out.grafana_url)]
    {
        if let Some(u) = v {
            match reqwest::Url::parse(u.get_ref()) {
                Ok(_) => *slot = Some(u.get_ref().trim_end_matches('/').to_string()),
                Err(e) => cx.error(u.span(), format!("daemon.{field}: {}", url_error(&e))),
            }
        }
    }
    if let Some(b) = &d.public_status {
        out.public_status = *b.get_ref();
    }
    out.language = language(cx, &d.language, Language::Vi, "daemon.");
    if let Some(n) = cx.count(&d.max_in_flight, "daemon.max_in_flight: ", 1, 1_000_000) {
        out.max_in_flight = n as usize;
    }
    if let Some(b) = &d.per_target_histograms {
        out.per_target_histograms = *b.get_ref();
    }
    if let Some(s) = &d.shard {
        let parsed = s
            .get_ref()
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
        match parsed {
            Some((i, n)) if n >= 1 && (1..=n).contains(&i) => out.shard = Some((i, n)),
            _ => cx.error(
                s.span(),
                format!("daemon.shard: expected \"i/n\" with 1 <= i <= n (e.g. \"1/3\"), not {:?}", s.get_ref()),
            ),
        }
    }
    if let Some(g) = cx.duration(&d.shutdown_grace, "daemon.shutdown_grace: ") {
        out.shutdown_grace = g;
    }
    out
}

fn validate_defaults(cx: &mut Cx<'_>, d: Option<&RawDefaults>) -> Defaults {
    let mut out = Defaults {
        interval: builtin::INTERVAL,
        timeout: builtin::TIMEOUT,
        confirm: builtin::CONFIRM,
        recover: builtin::RECOVER,
        objective: builtin::OBJECTIVE,
        max_outage: None,
        degraded_window: builtin::DEGRADED_WINDOW,
        group_interval: builtin::GROUP_INTERVAL,
        repeat_interval: builtin::REPEAT_INTERVAL,
        escalate_after: builtin::ESCALATE_AFTER,
    };
    let Some(d) = d else { return out };
    if let Some(v) = cx.duration(&d.interval, "defaults.interval: ") {
        out.interval = v;
    }
    match cx.duration(&d.timeout, "defaults.timeout: ") {
        Some(v) => {
            out.timeout = v;
            if v > out.interval
                && let Some(s) = &d.timeout
            {
                cx.error(
                    s.span(),
                    format!(
                        "defaults.timeout ({}) is longer than defaults.interval ({})",
                        s.get_ref(),
                        crate::probe::fmt_duration(out.interval)
                    ),
                );
            }
        }
        None => out.timeout = builtin::timeout_for(out.interval),
    }
    if let Some(n) = cx.count(&d.confirm, "defaults.confirm: ", 1, 1000) {
        out.confirm = n;
    }
    if let Some(n) = cx.count(&d.recover, "defaults.recover: ", 1, 1000) {
        out.recover = n;
    }
    if let Some(o) = cx.objective(&d.objective, "defaults: ") {
        out.objective = o;
    }
    out.max_outage = cx.duration(&d.max_outage, "defaults.max_outage: ");
    for (v, slot, what) in [
        (&d.degraded_window, &mut out.degraded_window, "defaults.degraded_window: "),
        (&d.group_interval, &mut out.group_interval, "defaults.group_interval: "),
        (&d.repeat_interval, &mut out.repeat_interval, "defaults.repeat_interval: "),
        (&d.escalate_after, &mut out.escalate_after, "defaults.escalate_after: "),
    ] {
        if let Some(x) = cx.duration(v, what) {
            *slot = x;
        }
    }
    out
}

/// Keys each kind accepts, beyond the common ones.
fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "icmp" => &["host", "count", "spacing", "max_loss", "max_rtt"],
        "tcp" => &["address", "send", "expect"],
        "http" => &[
            "url",
            "method",
            "headers",
            "headers_env",
            "body",
            "expect_status",
            "body_contains",
            "body_regex",
            "json_pointer",
            "json_equals",
            "max_latency",
            "tls_verify",
            "ca_file",
            "follow_redirects",
            "max_body_bytes",
        ],
        "dns" => &[
            "server",
            "query",
            "record",
            "transport",
            "expect_rcode",
            "expect_answer",
            "allow_empty",
            "recursion_desired",
        ],
        "tls" => &["address", "server_name", "min_days_left", "tls_verify", "ca_file"],
        "sip" => &["address", "transport", "expect_status", "any_response"],
        "heartbeat" => &["every"],
        "call" => &["uri", "transport", "hold", "username", "password_env"],
        "sms" => &[
            "daily_cap",
            "gateway",
            "url",
            "method",
            "body",
            "headers",
            "headers_env",
            "username",
            "password_env",
            "from",
            "to",
            "deadline",
            "confirm_by",
        ],
        _ => return None,
    })
}

#[allow(clippy::too_many_arguments)]
fn validate_target(
    cx: &mut Cx<'_>,
    t: &RawTarget,
    groups: &Names<'_>,
    defaults: &Defaults,
    periods: &[Period],
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    public_url: Option<&str>,
) -> Option<Target> {
    let name = cx.name(&t.name, "target");
    let p = format!("target {name:?}: ");
    if !groups.contains(t.group.get_ref()) {
        cx.error(t.group.span(), format!("{p}unknown group {:?} (no [[group]] has that name)", t.group.get_ref()));
    }
    let kind = t.kind.get_ref().as_str();
    let Some(allowed) = kind_keys(kind) else {
        cx.error(
            t.kind.span(),
            format!("{p}unknown kind {kind:?}; supported kinds: icmp, tcp, http, dns, tls, sip, call, sms, heartbeat"),
        );
        return None;
    };
    for (key, span) in t.kind_keys() {
        if !allowed.contains(&key) {
            cx.error(span, format!("{p}key `{key}` does not apply to kind {kind}"));
        }
    }

    let interval = cx.duration(&t.interval, &format!("{p}interval: "));
    let explicit_timeout = cx.duration(&t.timeout, &format!("{p}timeout: "));
    // The shortest interval this target may run at: its own, or the default and every
    // period's (the timeout must fit in each).
    let (shortest, source) = match interval {
        Some(i) => (i, "its own interval".to_string()),
        None => periods
            .iter()
            .filter_map(|p| p.interval.map(|i| (i, format!("the interval of period {:?}", p.name))))
            .fold((defaults.interval, "defaults.interval".to_string()), |a, b| if b.0 < a.0 { b } else { a }),
    };
    let mut timeout = match explicit_timeout {
        Some(to) => {
            if to > shortest
                && let Some(s) = &t.timeout
            {
                cx.error(
                    s.span(),
                    format!(
                        "{p}timeout ({}) is longer than {source} ({}): a probe must end before the next one starts",
                        s.get_ref(),
                        crate::probe::fmt_duration(shortest)
                    ),
                );
            }
            to
        }
        None => defaults.timeout.min(builtin::timeout_for(shortest)),
    };
    let confirm = cx.count(&t.confirm, &format!("{p}confirm: "), 1, 1000).unwrap_or(defaults.confirm);
    let recover = cx.count(&t.recover, &format!("{p}recover: "), 1, 1000).unwrap_or(defaults.recover);
    let objective = cx.objective(&t.objective, &p);
    let max_outage = cx.duration(&t.max_outage, &format!("{p}max_outage: "));

    let mut binding = Binding::default();
    let mut sources: Vec<IpAddr> = Vec::new();
    if let Some(s) = &t.source {
        let items: Vec<Option<&str>> = match s.get_ref() {
            toml::Value::String(v) => vec![Some(v.as_str())],
            toml::Value::Array(a) => a.iter().map(|v| v.as_str()).collect(),
            _ => vec![None],
        };
        for item in items {
            match item.map(str::parse::<IpAddr>) {
                Some(Ok(ip)) if !sources.contains(&ip) => sources.push(ip),
                Some(Ok(ip)) => cx.error(s.span(), format!("{p}source {ip} is listed twice")),
                _ => cx.error(
                    s.span(),
                    format!("{p}source must be a local IP address or a list of them (one per uplink)"),
                ),
            }
        }
        if matches!(s.get_ref(), toml::Value::Array(a) if a.is_empty()) {
            cx.error(s.span(), format!("{p}source = [] lists no address"));
        }
    }
    if sources.len() == 1 {
        binding.source = sources.first().copied();
    }
    let quorum = match &t.quorum {
        None => sources.len().max(1) as u32,
        Some(q) if sources.len() < 2 => {
            cx.error(q.span(), format!("{p}quorum needs several uplinks: source = [\"addr1\", \"addr2\"]"));
            1
        }
        Some(_) => {
            cx.count(&t.quorum, &format!("{p}quorum: "), 1, sources.len() as i64).unwrap_or(sources.len() as u32)
        }
    };
    if let Some(i) = &t.interface {
        let dev = i.get_ref();
        if dev.is_empty() || dev.len() > 15 || dev.contains('/') || dev.contains(char::is_whitespace) {
            cx.error(i.span(), format!("{p}interface {dev:?} is not a valid network device name"));
        } else {
            binding.interface = Some(dev.clone());
        }
    }

    let spec = match kind {
        "icmp" => icmp_spec(cx, t, &p, Some(timeout)),
        "tcp" => tcp_spec(cx, t, &p),
        "http" => http_spec(cx, t, &p, base, env),
        "dns" => dns_spec(cx, t, &p),
        "tls" => tls_spec(cx, t, &p, base),
        "sip" => sip_spec(cx, t, &p),
        "call" => call_spec(cx, t, &p, timeout, env),
        "sms" => sms_spec(cx, t, &p, public_url, env),
        "heartbeat" => {
            let every =
                required(cx, &t.every, t, &p, "every").and_then(|_| cx.duration(&t.every, &format!("{p}every: ")));
            every.map(|every| {
                ProbeSpec::Heartbeat(crate::probe::heartbeat::HeartbeatSpec { name: t.name.get_ref().clone(), every })
            })
        }
        _ => None,
    }?;
    // A test message's probe lasts its submit and its deadline.
    if let ProbeSpec::Sms(s) = &spec {
        let needed = s.deadline + Duration::from_secs(15);
        match explicit_timeout {
            None => timeout = needed,
            Some(to) if to < needed => {
                let span = t.timeout.as_ref().map_or_else(|| t.kind.span(), |x| x.span());
                cx.error(
                    span,
                    format!(
                        "{p}timeout ({}) must be at least deadline + 15s ({}): the probe submits, then waits for the confirmation",
                        crate::probe::fmt_duration(to),
                        crate::probe::fmt_duration(needed)
                    ),
                );
            }
            Some(_) => {}
        }
        // Messages cost money: the schedule must stay within the daily cap.
        let cap = cx.count(&t.daily_cap, &format!("{p}daily_cap: "), 1, 100_000).unwrap_or(300);
        let per_day = 86_400 / shortest.as_secs().max(1);
        if per_day > u64::from(cap) {
            cx.error(
                t.daily_cap.as_ref().map_or_else(|| t.kind.span(), |c| c.span()),
                format!(
                    "{p}{source} ({}) sends {per_day} test messages a day, more than daily_cap ({cap}): raise the interval or the cap",
                    crate::probe::fmt_duration(shortest)
                ),
            );
        }
        if timeout > shortest {
            cx.error(
                t.deadline.as_ref().map_or_else(|| t.kind.span(), |d| d.span()),
                format!(
                    "{p}deadline + 15s ({}) is longer than {source} ({}): give the target a longer `interval` (test messages cost money: minutes)",
                    crate::probe::fmt_duration(timeout),
                    crate::probe::fmt_duration(shortest)
                ),
            );
        }
    }
    if let (ProbeSpec::Dns(d), Some(s)) = (&spec, &t.source) {
        for src in sources.iter().filter(|src| src.is_ipv4() != d.server.is_ipv4()) {
            cx.error(s.span(), format!("{p}source {src} and server {} are of different address families", d.server));
        }
    }
    let uplinks = if sources.len() > 1 {
        sources.iter().map(|s| Binding { source: Some(*s), interface: binding.interface.clone() }).collect()
    } else {
        Vec::new()
    };
    Some(Target {
        uplinks,
        quorum,
        name,
        group: t.group.get_ref().clone(),
        description: t.description.as_ref().map(|s| s.get_ref().clone()),
        spec,
        interval,
        timeout,
        confirm,
        recover,
        objective,
        max_outage,
        binding,
    })
}

fn required<'a, T>(cx: &mut Cx<'_>, v: &'a Opt<T>, t: &RawTarget, p: &str, key: &str) -> Option<&'a S<T>> {
    if v.is_none() {
        cx.error(t.kind.span(), format!("{p}kind {} needs `{key}`", t.kind.get_ref()));
    }
    v.as_ref()
}

fn icmp_spec(cx: &mut Cx<'_>, t: &RawTarget, p: &str, timeout: Option<Duration>) -> Option<ProbeSpec> {
    let host = required(cx, &t.host, t, p, "host")?;
    if host.get_ref().trim().is_empty() || host.get_ref().contains(':') && host.get_ref().parse::<IpAddr>().is_err() {
        cx.error(host.span(), format!("{p}host must be an IP address or a host name, without port"));
    }
    let count = cx.count(&t.count, &format!("{p}count: "), 1, 100).map_or(builtin::ICMP_COUNT, |n| n as u16);
    let spacing = cx.duration(&t.spacing, &format!("{p}spacing: ")).unwrap_or(builtin::ICMP_SPACING);
    let max_loss = match &t.max_loss {
        Some(l) if !(0.0..1.0).contains(l.get_ref()) => {
            cx.error(l.span(), format!("{p}max_loss is a ratio in [0, 1): write 0.02 for 2 %"));
            builtin::MAX_LOSS
        }
        Some(l) => *l.get_ref(),
        None => builtin::MAX_LOSS,
    };
    let max_rtt = cx.duration(&t.max_rtt, &format!("{p}max_rtt: ")).unwrap_or(builtin::MAX_RTT);
    if let Some(timeout) = timeout {
        let last_send = spacing * u32::from(count.saturating_sub(1));
        if last_send >= timeout {
            let span =
                t.spacing.as_ref().map(|s| s.span()).or(t.count.as_ref().map(|c| c.span())).unwrap_or(t.kind.span());
            cx.error(span, format!(
                "{p}the last of {count} echoes would be sent after {} but the timeout is {}: lower count or spacing, or raise timeout",
                crate::probe::fmt_duration(last_send), crate::probe::fmt_duration(timeout)));
        }
    }
    Some(ProbeSpec::Icmp(IcmpSpec { host: host.get_ref().trim().to_string(), count, spacing, max_loss, max_rtt }))
}

/// Splits `host:port` / `[v6]:port`.
fn host_port(s: &str) -> Option<(String, u16)> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some((a.ip().to_string(), a.port()));
    }
    let (h, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if h.is_empty() || h.contains(':') || h.contains('/') {
        return None;
    }
    Some((h.to_string(), port))
}

fn tcp_spec(cx: &mut Cx<'_>, t: &RawTarget, p: &str) -> Option<ProbeSpec> {
    let addr = required(cx, &t.address, t, p, "address")?;
    let Some((host, port)) = host_port(addr.get_ref()) else {
        cx.error(
            addr.span(),
            format!("{p}address must be \"host:port\" (e.g. \"127.0.0.1:2775\"), not {:?}", addr.get_ref()),
        );
        return None;
    };
    Some(ProbeSpec::Tcp(TcpSpec {
        host,
        port,
        send: t.send.as_ref().map(|s| unescape(s.get_ref())),
        expect: t.expect.as_ref().map(|s| unescape(s.get_ref())),
    }))
}

/// Lets `send`/`expect` carry `\r\n` written either with TOML escapes or literally.
fn unescape(s: &str) -> String {
    s.replace("\\r", "\r").replace("\\n", "\n")
}

fn http_spec(
    cx: &mut Cx<'_>,
    t: &RawTarget,
    p: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<ProbeSpec> {
    let url_v = required(cx, &t.url, t, p, "url")?;
    let url = match reqwest::Url::parse(url_v.get_ref()) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
        Ok(u) => {
            cx.error(url_v.span(), format!("{p}url scheme must be http or https, not {}", u.scheme()));
            return None;
        }
        Err(e) => {
            cx.error(url_v.span(), format!("{p}url {:?}: {}", url_v.get_ref(), url_error(&e)));
            return None;
        }
    };
    let method = match &t.method {
        None => reqwest::Method::GET,
        Some(m) => match reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                cx.error(m.span(), format!("{p}invalid HTTP method {:?}", m.get_ref()));
                reqwest::Method::GET
            }
        },
    };
    let mut headers = Vec::new();
    if let Some(h) = &t.headers {
        for (k, v) in h.get_ref() {
            match (reqwest::header::HeaderName::from_bytes(k.as_bytes()), reqwest::header::HeaderValue::from_str(v)) {
                (Ok(k), Ok(v)) => headers.push((k, v)),
                _ => cx.error(h.span(), format!("{p}invalid header {k:?}: {v:?}")),
            }
        }
    }
    if let Some(h) = &t.headers_env {
        for (k, var) in h.get_ref() {
            let value = env(var).filter(|v| !v.is_empty());
            match (reqwest::header::HeaderName::from_bytes(k.as_bytes()), value) {
                (Ok(name), Some(v)) => match reqwest::header::HeaderValue::from_str(&v) {
                    Ok(mut v) => {
                        v.set_sensitive(true);
                        headers.push((name, v));
                    }
                    Err(_) => {
                        cx.error(h.span(), format!("{p}headers_env: the value of {var} is not a valid header value"))
                    }
                },
                (Err(_), _) => cx.error(h.span(), format!("{p}headers_env: invalid header name {k:?}")),
                (_, None) => cx
                    .error(h.span(), format!("{p}headers_env: environment variable {var} (for header {k}) is not set")),
            }
        }
    }
    let mut expect_status = Vec::new();
    if let Some(s) = &t.expect_status {
        for code in s.get_ref() {
            match u16::try_from(*code) {
                Ok(c) if (100..600).contains(&c) => expect_status.push(c),
                _ => cx.error(s.span(), format!("{p}expect_status: {code} is not an HTTP status code")),
            }
        }
    }
    let body_regex = t.body_regex.as_ref().and_then(|r| match regex::Regex::new(r.get_ref()) {
        Ok(re) => Some(re),
        Err(e) => {
            cx.error(r.span(), format!("{p}body_regex: {e}"));
            None
        }
    });
    if let Some(ptr) = &t.json_pointer
        && !ptr.get_ref().is_empty()
        && !ptr.get_ref().starts_with('/')
    {
        cx.error(ptr.span(), format!("{p}json_pointer must start with '/' (RFC 6901), e.g. \"/status\""));
    }
    if t.json_equals.is_some()
        && t.json_pointer.is_none()
        && let Some(j) = &t.json_equals
    {
        cx.error(j.span(), format!("{p}json_equals needs json_pointer"));
    }
    let json_equals = t.json_equals.as_ref().and_then(|v| match serde_json::to_value(v.get_ref()) {
        Ok(j) => Some(j),
        Err(e) => {
            cx.error(v.span(), format!("{p}json_equals: {e}"));
            None
        }
    });
    let ca_file = t.ca_file.as_ref().map(|c| {
        let path = resolve_path(base, c.get_ref());
        if !path.is_file() {
            cx.error(c.span(), format!("{p}ca_file {} does not exist", path.display()));
        }
        path
    });
    let max_body_bytes = match &t.max_body_bytes {
        Some(b) if *b.get_ref() < 1 || *b.get_ref() > 1 << 30 => {
            cx.error(b.span(), format!("{p}max_body_bytes must be between 1 and 1073741824"));
            builtin::MAX_BODY_BYTES
        }
        Some(b) => *b.get_ref() as usize,
        None => builtin::MAX_BODY_BYTES,
    };
    Some(ProbeSpec::Http(Box::new(HttpSpec {
        url,
        method,
        headers,
        body: t.body.as_ref().map(|b| b.get_ref().clone()),
        expect_status,
        body_contains: t.body_contains.as_ref().map(|b| b.get_ref().clone()),
        body_regex,
        json_pointer: t.json_pointer.as_ref().map(|b| b.get_ref().clone()),
        json_equals,
        max_latency: cx.duration(&t.max_latency, &format!("{p}max_latency: ")),
        tls_verify: t.tls_verify.as_ref().is_none_or(|b| *b.get_ref()),
        ca_file,
        follow_redirects: t.follow_redirects.as_ref().is_none_or(|b| *b.get_ref()),
        max_body_bytes,
    })))
}

fn sip_spec(cx: &mut Cx<'_>, t: &RawTarget, p: &str) -> Option<ProbeSpec> {
    let addr = required(cx, &t.address, t, p, "address")?;
    let (host, port) = match host_port(addr.get_ref()) {
        Some(hp) => hp,
        None if !addr.get_ref().contains(':') => (addr.get_ref().clone(), 5060),
        None => {
            cx.error(
                addr.span(),
                format!("{p}address must be \"host[:port]\" (e.g. \"127.0.0.1:5060\"), not {:?}", addr.get_ref()),
            );
            return None;
        }
    };
    let transport = match t.transport.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("udp", _)) => crate::probe::sip::SipTransport::Udp,
        Some(("tcp", _)) => crate::probe::sip::SipTransport::Tcp,
        Some((other, span)) => {
            cx.error(span, format!("{p}transport must be udp or tcp, not {other:?}"));
            crate::probe::sip::SipTransport::Udp
        }
    };
    let mut expect_status = Vec::new();
    if let Some(s) = &t.expect_status {
        for code in s.get_ref() {
            match u16::try_from(*code) {
                Ok(c) if (100..700).contains(&c) => expect_status.push(c),
                _ => cx.error(s.span(), format!("{p}expect_status: {code} is not a SIP response code")),
            }
        }
    }
    Some(ProbeSpec::Sip(Box::new(crate::probe::sip::SipSpec {
        host,
        port,
        transport,
        expect_status,
        any_response: t.any_response.as_ref().is_some_and(|b| *b.get_ref()),
    })))
}

fn sms_spec(
    cx: &mut Cx<'_>,
    t: &RawTarget,
    p: &str,
    public_url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<ProbeSpec> {
    use crate::probe::sms::{ConfirmBy, Gateway};
    let gateway = match t.gateway.as_ref().map(|g| (g.get_ref().as_str(), g.span())) {
        None | Some(("kannel", _)) => Gateway::Kannel,
        Some(("http", _)) => Gateway::Http,
        Some((other, span)) => {
            cx.error(span, format!("{p}gateway must be \"kannel\" or \"http\", not {other:?}"));
            return None;
        }
    };
    for (key, set) in
        [("source", t.source.as_ref().map(|s| s.span())), ("interface", t.interface.as_ref().map(|s| s.span()))]
    {
        if let Some(span) = set {
            cx.error(span, format!("{p}`{key}` does not apply to kind sms (the message goes through the gateway)"));
        }
    }
    let url = required(cx, &t.url, t, p, "url")?;
    if let Err(e) = reqwest::Url::parse(&url.get_ref().replace(['{', '}'], "")) {
        cx.error(url.span(), format!("{p}url: {}", url_error(&e)));
    }
    let to = required(cx, &t.to, t, p, "to")?.get_ref().clone();
    let from = t.from.as_ref().map(|f| f.get_ref().clone()).unwrap_or_default();
    if gateway == Gateway::Kannel && from.is_empty() {
        cx.error(
            t.kind.span(),
            format!("{p}gateway \"kannel\" needs `from` (Kannel rejects a message without a sender)"),
        );
    }
    let confirm_by = match t.confirm_by.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
        None | Some(("dlr", _)) => ConfirmBy::Dlr,
        Some(("inbound", _)) => ConfirmBy::Inbound,
        Some(("both", _)) => ConfirmBy::Both,
        Some((other, span)) => {
            cx.error(span, format!("{p}confirm_by must be \"dlr\", \"inbound\" or \"both\", not {other:?}"));
            ConfirmBy::Dlr
        }
    };
    if confirm_by != ConfirmBy::Inbound && public_url.is_none() {
        cx.error(
            t.kind.span(),
            format!("{p}delivery reports come back to daemon.public_url: set it (or confirm_by = \"inbound\")"),
        );
    }
    let deadline = cx.duration(&t.deadline, &format!("{p}deadline: ")).unwrap_or(Duration::from_secs(60));
    let method = match &t.method {
        None => reqwest::Method::GET,
        Some(m) => reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()).unwrap_or_else(|_| {
            cx.error(m.span(), format!("{p}invalid HTTP method {:?}", m.get_ref()));
            reqwest::Method::GET
        }),
    };
    let mut headers: Vec<(String, String)> =
        t.headers.as_ref().map(|h| h.get_ref().clone().into_iter().collect()).unwrap_or_default();
    if let Some(h) = &t.headers_env {
        for (k, var) in h.get_ref() {
            match env(var).filter(|v| !v.is_empty()) {
                Some(v) => headers.push((k.clone(), v)),
                None => cx
                    .error(h.span(), format!("{p}headers_env: environment variable {var} (for header {k}) is not set")),
            }
        }
    }
    Some(ProbeSpec::Sms(Box::new(crate::probe::sms::SmsSpec {
        gateway,
        url: url.get_ref().clone(),
        method,
        body: t.body.as_ref().map(|b| b.get_ref().clone()),
        headers,
        username: t.username.as_ref().map(|u| u.get_ref().clone()),
        password: cx.secret(&t.password_env, env, p).map(crate::probe::Secret),
        from,
        to,
        deadline,
        confirm_by,
        public_url: public_url.map(str::to_string),
    })))
}

fn call_spec(
    cx: &mut Cx<'_>,
    t: &RawTarget,
    p: &str,
    timeout: Duration,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<ProbeSpec> {
    let uri = required(cx, &t.uri, t, p, "uri")?;
    // sip:user@host[:port][;params]
    let parsed = uri.get_ref().strip_prefix("sip:").and_then(|rest| {
        let hostport = rest.split(';').next().unwrap_or(rest);
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        match host_port(hostport) {
            Some(hp) => Some(hp),
            None if !hostport.is_empty() && !hostport.contains(':') => Some((hostport.to_string(), 5060)),
            None => None,
        }
    });
    let Some((host, port)) = parsed else {
        cx.error(
            uri.span(),
            format!("{p}uri must be a SIP URI such as \"sip:1000@127.0.0.1:5080\", not {:?}", uri.get_ref()),
        );
        return None;
    };
    if let Some(tr) = &t.transport
        && tr.get_ref() != "udp"
    {
        cx.error(
            tr.span(),
            format!("{p}test calls support transport = \"udp\" only in this version, not {:?}", tr.get_ref()),
        );
    }
    let hold = cx.duration(&t.hold, &format!("{p}hold: ")).unwrap_or(Duration::from_secs(2));
    if hold >= timeout {
        let span = t.hold.as_ref().map_or_else(|| t.kind.span(), |h| h.span());
        cx.error(
            span,
            format!(
                "{p}hold ({}) must be shorter than the timeout ({}): the call is set up, held and hung up within one probe",
                crate::probe::fmt_duration(hold),
                crate::probe::fmt_duration(timeout)
            ),
        );
    }
    let password = cx.secret(&t.password_env, env, p);
    if t.username.is_some() != t.password_env.is_some() {
        cx.error(t.kind.span(), format!("{p}username and password_env go together (digest authentication)"));
    }
    Some(ProbeSpec::Call(Box::new(crate::probe::sip::call::CallSpec {
        uri: uri.get_ref().clone(),
        host,
        port,
        hold,
        username: t.username.as_ref().map(|u| u.get_ref().clone()),
        password: password.map(crate::probe::Secret),
    })))
}

fn tls_spec(cx: &mut Cx<'_>, t: &RawTarget, p: &str, base: &Path) -> Option<ProbeSpec> {
    let addr = required(cx, &t.address, t, p, "address")?;
    let Some((host, port)) = host_port(addr.get_ref()) else {
        cx.error(
            addr.span(),
            format!("{p}address must be \"host:port\" (e.g. \"portal.example.vn:443\"), not {:?}", addr.get_ref()),
        );
        return None;
    };
    let server_name = t.server_name.as_ref().map_or_else(|| host.clone(), |s| s.get_ref().clone());
    if rustls::pki_types::ServerName::try_from(server_name.clone()).is_err() {
        let span = t.server_name.as_ref().map_or(addr.span(), |s| s.span());
        cx.error(span, format!("{p}server_name {server_name:?} is not a DNS name or IP address"));
    }
    let min_days_left =
        cx.count(&t.min_days_left, &format!("{p}min_days_left: "), 0, 3650).unwrap_or(builtin::MIN_DAYS_LEFT);
    let ca_file = t.ca_file.as_ref().map(|c| {
        let path = resolve_path(base, c.get_ref());
        if !path.is_file() {
            cx.error(c.span(), format!("{p}ca_file {} does not exist", path.display()));
        }
        path
    });
    Some(ProbeSpec::Tls(Box::new(crate::probe::tls::TlsSpec {
        host,
        port,
        server_name,
        min_days_left,
        tls_verify: t.tls_verify.as_ref().is_none_or(|b| *b.get_ref()),
        ca_file,
    })))
}

fn dns_spec(cx: &mut Cx<'_>, t: &RawTarget, p: &str) -> Option<ProbeSpec> {
    let server_v = required(cx, &t.server, t, p, "server");
    let query_v = required(cx, &t.query, t, p, "query");
    let (server_v, query_v) = (server_v?, query_v?);
    let server = match server_v.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => match server_v.get_ref().parse::<IpAddr>() {
            Ok(ip) => Some(SocketAddr::new(ip, 53)),
            Err(_) => {
                cx.error(
                    server_v.span(),
                    format!(
                        "{p}server must be an IP address with optional port (\"127.0.0.1:5353\"), not {:?}",
                        server_v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let query = match hickory_proto::rr::Name::from_ascii(query_v.get_ref()) {
        Ok(mut n) => {
            n.set_fqdn(true);
            Some(n)
        }
        Err(e) => {
            cx.error(query_v.span(), format!("{p}query {:?} is not a domain name: {e}", query_v.get_ref()));
            None
        }
    };
    let record = match &t.record {
        None => Some(hickory_proto::rr::RecordType::A),
        Some(r) => match r.get_ref().to_ascii_uppercase().parse::<hickory_proto::rr::RecordType>() {
            Ok(rt) => Some(rt),
            Err(_) => {
                cx.error(
                    r.span(),
                    format!("{p}unknown record type {:?} (A, AAAA, MX, NS, TXT, CNAME, SOA, SRV, …)", r.get_ref()),
                );
                None
            }
        },
    };
    let transport = match t.transport.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("udp", _)) => DnsTransport::Udp,
        Some(("tcp", _)) => DnsTransport::Tcp,
        Some((other, span)) => {
            cx.error(span, format!("{p}transport must be udp or tcp, not {other:?}"));
            DnsTransport::Udp
        }
    };
    let expect_rcode = match &t.expect_rcode {
        None => Some(hickory_proto::op::ResponseCode::NoError),
        Some(r) => {
            let rc = crate::probe::dns::parse_rcode(r.get_ref());
            if rc.is_none() {
                cx.error(
                    r.span(),
                    format!(
                        "{p}expect_rcode must be NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR or NOTIMP, not {:?}",
                        r.get_ref()
                    ),
                );
            }
            rc
        }
    };
    Some(ProbeSpec::Dns(Box::new(DnsSpec {
        server: server?,
        query: query?,
        record: record?,
        transport,
        expect_rcode: expect_rcode?,
        expect_answer: t.expect_answer.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default(),
        allow_empty: t.allow_empty.as_ref().is_some_and(|b| *b.get_ref()),
        recursion_desired: t.recursion_desired.as_ref().is_none_or(|b| *b.get_ref()),
    })))
}

/// A URL parser's error, with the form expected when the scheme is missing (the parser says only
/// "relative URL without a base").
fn url_error(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    if text == "relative URL without a base" {
        format!("{text}: expected an absolute URL with its scheme, such as \"https://example.vn/path\"")
    } else {
        text
    }
}

fn validate_smtp(cx: &mut Cx<'_>, s: &RawSmtp, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Smtp {
    let tls = match s.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("starttls", _)) => SmtpTls::Starttls,
        Some(("none", _)) => SmtpTls::None,
        Some(("tls", _)) => SmtpTls::Tls,
        Some((other, span)) => {
            cx.error(span, format!("smtp.tls must be none, starttls or tls, not {other:?}"));
            SmtpTls::Starttls
        }
    };
    let default_port = match tls {
        SmtpTls::None => 25,
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
    };
    let port = cx.count(&s.port, "smtp.port: ", 1, 65535).map_or(default_port, |p| p as u16);
    if s.tls.is_none() && port != 587 {
        // A local relay or catcher on 25, 1025, 2525 usually offers no STARTTLS: without this
        // the first e-mail fails only when an outage happens.
        cx.warn(
            s.host.span(),
            format!(
                "smtp.tls is not set, so STARTTLS is required; a server on port {port} often offers none \
                 (a local relay, Mailpit): set tls = \"none\" for a plain server, or check with `thongsuot test-email`"
            ),
        );
    }
    if !looks_like_email(s.from.get_ref()) {
        cx.error(s.from.span(), format!("smtp.from: {:?} is not an e-mail address", s.from.get_ref()));
    }
    if s.host.get_ref().trim().is_empty() {
        cx.error(s.host.span(), "smtp.host is empty");
    }
    let password = cx.secret(&s.password_env, env, "smtp.password_env: ");
    if s.username.is_some()
        && s.password_env.is_none()
        && let Some(u) = &s.username
    {
        cx.warn(u.span(), "smtp.username is set without smtp.password_env: no login will be attempted");
    }
    if tls == SmtpTls::None
        && let Some(span) = s.tls_verify.as_ref().map(|v| v.span()).or(s.ca_file.as_ref().map(|c| c.span()))
    {
        cx.warn(span, "smtp.tls_verify and smtp.ca_file have no effect with tls = \"none\"");
    }
    if tls == SmtpTls::None
        && let Some(p) = &s.password_env
    {
        cx.warn(p.span(), "smtp.password_env with tls = \"none\": the password crosses the network in clear");
    }
    if s.password_env.is_some()
        && s.username.is_none()
        && let Some(p) = &s.password_env
    {
        cx.error(p.span(), "smtp.password_env is set but smtp.username is not");
    }
    Smtp {
        host: s.host.get_ref().clone(),
        port,
        tls,
        from: s.from.get_ref().clone(),
        username: s.username.as_ref().map(|u| u.get_ref().clone()),
        password,
        timeout: cx.duration(&s.timeout, "smtp.timeout: ").unwrap_or(builtin::SMTP_TIMEOUT),
        hello_name: s.hello_name.as_ref().map(|u| u.get_ref().clone()),
        tls_verify: s.tls_verify.as_ref().is_none_or(|b| *b.get_ref()),
        ca_file: s.ca_file.as_ref().map(|c| {
            let path = resolve_path(base, c.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
                Ok(_) => cx.error(c.span(), format!("smtp.ca_file {} holds no PEM certificate", path.display())),
                Err(e) => cx.error(c.span(), format!("smtp.ca_file {}: {e}", path.display())),
            }
            path
        }),
    }
}

fn validate_postal(
    cx: &mut Cx<'_>,
    p: &RawPostal,
    base: &Path,
    groups: &Names<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Postal {
    let mut names = Names::new("postal operator");
    let mut operators = Vec::new();
    for o in &p.operator {
        names.add(cx, &o.name);
        let name = cx.name(&o.name, "postal operator");
        let pre = format!("postal operator {name:?}: ");
        if !o.track_url.get_ref().contains("{tracking}") {
            cx.error(o.track_url.span(), format!("{pre}track_url must contain {{tracking}}"));
        } else if let Err(e) = reqwest::Url::parse(&o.track_url.get_ref().replace("{tracking}", "X")) {
            cx.error(o.track_url.span(), format!("{pre}track_url: {}", url_error(&e)));
        }
        if !o.status_pointer.get_ref().is_empty() && !o.status_pointer.get_ref().starts_with('/') {
            cx.error(o.status_pointer.span(), format!("{pre}status_pointer must start with '/' (RFC 6901)"));
        }
        if let Some(e) = &o.events_pointer
            && !e.get_ref().is_empty()
            && !e.get_ref().starts_with('/')
        {
            cx.error(e.span(), format!("{pre}events_pointer must start with '/' (RFC 6901)"));
        }
        if let Some(g) = &o.group
            && !groups.contains(g.get_ref())
        {
            cx.error(g.span(), format!("{pre}unknown group {:?}", g.get_ref()));
        }
        let method = match &o.method {
            None => reqwest::Method::GET,
            Some(m) => reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()).unwrap_or_else(|_| {
                cx.error(m.span(), format!("{pre}invalid HTTP method {:?}", m.get_ref()));
                reqwest::Method::GET
            }),
        };
        let mut headers: Vec<(String, String)> =
            o.headers.as_ref().map(|h| h.get_ref().clone().into_iter().collect()).unwrap_or_default();
        if let Some(h) = &o.headers_env {
            for (k, var) in h.get_ref() {
                match env(var).filter(|v| !v.is_empty()) {
                    Some(v) => headers.push((k.clone(), v)),
                    None => cx.error(
                        h.span(),
                        format!("{pre}headers_env: environment variable {var} (for header {k}) is not set"),
                    ),
                }
            }
        }
        let mut status_map = BTreeMap::new();
        if let Some(m) = &o.status_map {
            for (k, v) in m.get_ref() {
                if !TRACKING_STATUSES.contains(&v.as_str()) {
                    cx.error(
                        m.span(),
                        format!("{pre}status_map: {v:?} (for {k:?}) is not one of {}", TRACKING_STATUSES.join(", ")),
                    );
                }
                status_map.insert(k.clone(), v.clone());
            }
        }
        let standard_days = o.standard.as_ref().and_then(|s| match parse_standard(s.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                cx.error(s.span(), format!("{pre}{e}"));
                None
            }
        });
        let rate_limit = match &o.rate_limit {
            Some(r) if *r.get_ref() <= 0.0 => {
                cx.error(r.span(), format!("{pre}rate_limit (requests per second) must be positive"));
                None
            }
            r => r.as_ref().map(|r| *r.get_ref()),
        };
        for (key, v) in [("items_pointer", &o.items_pointer), ("item_tracking_pointer", &o.item_tracking_pointer)] {
            if let Some(v) = v
                && !v.get_ref().is_empty()
                && !v.get_ref().starts_with('/')
            {
                cx.error(v.span(), format!("{pre}{key} must start with '/' (RFC 6901)"));
            }
        }
        let batch_size = cx.count(&o.batch_size, &format!("{pre}batch_size: "), 1, 1000).map_or(1, |n| n as usize);
        if batch_size > 1 && o.items_pointer.is_none() {
            cx.error(
                o.name.span(),
                format!("{pre}batch_size > 1 needs items_pointer (the array of per-consignment answers)"),
            );
        }
        operators.push(PostalOperator {
            group: o.group.as_ref().map_or_else(|| name.clone(), |g| g.get_ref().clone()),
            api_target: format!("{name}-tracking-api"),
            batch_size,
            batch_separator: o.batch_separator.as_ref().map_or_else(|| ",".into(), |s| s.get_ref().clone()),
            items_pointer: o.items_pointer.as_ref().map(|s| s.get_ref().clone()),
            item_tracking_pointer: o
                .item_tracking_pointer
                .as_ref()
                .map_or_else(|| "/tracking".into(), |s| s.get_ref().clone()),
            track_url: o.track_url.get_ref().clone(),
            method,
            headers,
            poll: cx.duration(&o.poll, &format!("{pre}poll: ")).unwrap_or(builtin::POSTAL_POLL),
            timeout: cx.duration(&o.timeout, &format!("{pre}timeout: ")).unwrap_or(builtin::POSTAL_TIMEOUT),
            status_pointer: o.status_pointer.get_ref().clone(),
            events_pointer: o.events_pointer.as_ref().map(|e| e.get_ref().clone()),
            event_status_field: o.event_status_field.as_ref().map_or_else(|| "status".into(), |s| s.get_ref().clone()),
            event_time_field: o.event_time_field.as_ref().map_or_else(|| "time".into(), |s| s.get_ref().clone()),
            event_location_field: o
                .event_location_field
                .as_ref()
                .map_or_else(|| "location".into(), |s| s.get_ref().clone()),
            status_map,
            standard_days,
            rate_limit,
            concurrency: cx.count(&o.concurrency, &format!("{pre}concurrency: "), 1, 1000).map_or(4, |n| n as usize),
            webhook_secret: cx.secret(&o.webhook_secret_env, env, &pre),
            name,
        });
    }
    Postal {
        consignments: p.consignments.as_ref().map(|c| resolve_path(base, c.get_ref())),
        stale_after: cx.duration(&p.stale_after, "postal.stale_after: ").unwrap_or(builtin::STALE_AFTER),
        at_risk_before: cx.duration(&p.at_risk_before, "postal.at_risk_before: ").unwrap_or(builtin::AT_RISK_BEFORE),
        weekend: match &p.weekend {
            None => vec![chrono::Weekday::Sat, chrono::Weekday::Sun],
            Some(w) => w
                .get_ref()
                .iter()
                .filter_map(|d| {
                    d.parse::<chrono::Weekday>().ok().or_else(|| {
                        cx.error(w.span(), format!("postal.weekend: {d:?} is not a day of the week (mon … sun)"));
                        None
                    })
                })
                .collect(),
        },
        holidays: p
            .holidays
            .as_ref()
            .map(|h| {
                h.get_ref()
                    .iter()
                    .filter_map(|d| {
                        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok().or_else(|| {
                            cx.error(h.span(), format!("postal.holidays: {d:?} is not a date (YYYY-MM-DD)"));
                            None
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        operators,
    }
}
