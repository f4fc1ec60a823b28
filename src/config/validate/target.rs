//! `[[target]]`: the keys every target has (group, interval and timeout, confirm/recover,
//! uplinks), checked here; the kind's own keys are checked by its file in `kinds`. Each
//! `[[target]]` section is parsed, deserialized and validated on its own, one after the other
//! (see `sections`): however large the config, its targets never exist twice in memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::builtin;
use crate::config::diagnostics::{Cx, Names};
use crate::config::kinds::{self, TargetCx};
use crate::config::model::{Config, Defaults, Period, Target};
use crate::config::raw::{RawTarget, S};
use crate::probe::Binding;
use crate::probe::kind::Kind;

/// The targets of a document: its `[[target]]` sections, and a `target = [...]` array if it
/// was written so.
pub struct TargetInput<'i> {
    pub inline: Option<S<toml::de::DeValue<'i>>>,
    pub sections: Vec<Range<usize>>,
    /// The running config, on a reload: its targets are reused when unchanged.
    pub previous: Option<&'i Config>,
}

/// What a target may refer to, and the daemon settings some kinds depend on.
pub struct Scope<'a> {
    pub groups: &'a Names<'a>,
    pub defaults: &'a Defaults,
    pub periods: &'a [Period],
    pub base: &'a Path,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub public_url: Option<&'a str>,
    pub api_token: bool,
}

/// The validated targets, their names (maintenance windows and postal operators check theirs
/// against them) and how many were written.
pub struct Targets {
    pub list: Vec<Arc<Target>>,
    pub names: Names<'static>,
    pub count: usize,
}

pub fn targets(cx: &mut Cx<'_>, input: TargetInput<'_>, scope: &Scope<'_>) -> Targets {
    let mut out = Targets { list: Vec::new(), names: Names::new("target"), count: 0 };
    let previous: HashMap<&str, &Arc<Target>> =
        input.previous.map(|c| c.targets.iter().map(|t| (t.name.as_str(), t)).collect()).unwrap_or_default();
    for item in tables(cx, input.inline) {
        add(cx, item, scope, &previous, &mut out);
    }
    for section in input.sections {
        cx.base = section.start;
        match toml::de::DeTable::parse(&cx.src[section]) {
            Ok(mut doc) => {
                for item in tables(cx, doc.get_mut().remove("target")) {
                    add(cx, item, scope, &previous, &mut out);
                }
            }
            Err(e) => cx.toml_error(&e),
        }
        cx.base = 0;
    }
    out
}

/// The `[[target]]` tables of the document, consumed one by one.
fn tables<'i>(
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

/// One `[[target]]`: validated, then reused from the running config when unchanged.
fn add(
    cx: &mut Cx<'_>,
    item: S<toml::de::DeValue<'_>>,
    scope: &Scope<'_>,
    previous: &HashMap<&str, &Arc<Target>>,
    out: &mut Targets,
) {
    out.count += 1;
    let t = match RawTarget::deserialize(toml::de::ValueDeserializer::from(item)) {
        Ok(t) => t,
        Err(e) => {
            cx.toml_error(&e);
            return;
        }
    };
    out.names.add(cx, &t.name);
    if let Some(target) = target(cx, &t, scope) {
        out.list.push(match previous.get(target.name.as_str()) {
            Some(old) if ***old == target => Arc::clone(old),
            _ => Arc::new(target),
        });
    }
}

fn target(cx: &mut Cx<'_>, t: &RawTarget, scope: &Scope<'_>) -> Option<Target> {
    let name = cx.name(&t.name, "target");
    let p = format!("target {name:?}: ");
    if !scope.groups.contains(t.group.get_ref()) {
        cx.error(t.group.span(), format!("{p}unknown group {:?} (no [[group]] has that name)", t.group.get_ref()));
    }
    let written = t.kind.get_ref().as_str();
    let Some((kind, allowed)) = Kind::from_name(written).and_then(|k| Some((k, kinds::keys(k)?))) else {
        let supported: Vec<&str> = kinds::configurable().map(Kind::name).collect();
        cx.error(t.kind.span(), format!("{p}unknown kind {written:?}; supported kinds: {}", supported.join(", ")));
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
        None => scope
            .periods
            .iter()
            .filter_map(|p| p.interval.map(|i| (i, format!("the interval of period {:?}", p.name))))
            .fold((scope.defaults.interval, "defaults.interval".to_string()), |a, b| if b.0 < a.0 { b } else { a }),
    };
    let timeout = match explicit_timeout {
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
        None => scope.defaults.timeout.min(builtin::timeout_for(shortest)),
    };
    let confirm = cx.count(&t.confirm, &format!("{p}confirm: "), 1, 1000).unwrap_or(scope.defaults.confirm);
    let recover = cx.count(&t.recover, &format!("{p}recover: "), 1, 1000).unwrap_or(scope.defaults.recover);
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

    let mut k = TargetCx {
        p: &p,
        base: scope.base,
        env: scope.env,
        public_url: scope.public_url,
        api_token: scope.api_token,
        timeout,
        explicit_timeout,
        shortest,
        shortest_source: &source,
        sources: &sources,
    };
    let spec = kinds::spec(kind, cx, t, &mut k)?;
    let timeout = k.timeout;
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
