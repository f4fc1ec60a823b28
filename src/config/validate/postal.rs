//! `[postal]` and `[[postal.operator]]`: consignment tracking, and each operator's tracking API,
//! which is also watched as a connectivity target of the operator's group (made here: it is
//! not written as a `[[target]]`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::request::request;
use super::{resolve_path, url_error};
use crate::config::builtin;
use crate::config::diagnostics::{Cx, Names};
use crate::config::model::{Defaults, Group, GroupKind, Postal, PostalOperator, TRACKING_STATUSES, Target};
use crate::config::raw::RawPostal;
use crate::config::units::parse_standard;
use crate::probe::{Binding, ProbeSpec};

pub fn postal(
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
        let request = request(cx, &pre, &o.method, &o.headers, &o.headers_env, env);
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
        let batch_size = cx
            .count(&o.batch_size, &format!("{pre}batch_size: "), 1, 1000)
            .map_or(builtin::POSTAL_BATCH_SIZE, |n| n as usize);
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
            batch_separator: o
                .batch_separator
                .as_ref()
                .map_or_else(|| builtin::POSTAL_BATCH_SEPARATOR.into(), |s| s.get_ref().clone()),
            items_pointer: o.items_pointer.as_ref().map(|s| s.get_ref().clone()),
            item_tracking_pointer: o
                .item_tracking_pointer
                .as_ref()
                .map_or_else(|| builtin::POSTAL_ITEM_TRACKING_POINTER.into(), |s| s.get_ref().clone()),
            track_url: o.track_url.get_ref().clone(),
            method: request.method.clone(),
            headers: request.typed(),
            poll: cx.duration(&o.poll, &format!("{pre}poll: ")).unwrap_or(builtin::POSTAL_POLL),
            timeout: cx.duration(&o.timeout, &format!("{pre}timeout: ")).unwrap_or(builtin::POSTAL_TIMEOUT),
            status_pointer: o.status_pointer.get_ref().clone(),
            events_pointer: o.events_pointer.as_ref().map(|e| e.get_ref().clone()),
            event_status_field: o
                .event_status_field
                .as_ref()
                .map_or_else(|| builtin::POSTAL_EVENT_STATUS_FIELD.into(), |s| s.get_ref().clone()),
            event_time_field: o
                .event_time_field
                .as_ref()
                .map_or_else(|| builtin::POSTAL_EVENT_TIME_FIELD.into(), |s| s.get_ref().clone()),
            event_location_field: o
                .event_location_field
                .as_ref()
                .map_or_else(|| builtin::POSTAL_EVENT_LOCATION_FIELD.into(), |s| s.get_ref().clone()),
            status_map,
            standard_days,
            rate_limit,
            concurrency: cx
                .count(&o.concurrency, &format!("{pre}concurrency: "), 1, 1000)
                .map_or(builtin::POSTAL_CONCURRENCY, |n| n as usize),
            webhook_secret: cx.secret(&o.webhook_secret_env, env, &pre),
            name,
        });
    }
    Postal {
        consignments: p.consignments.as_ref().map(|c| resolve_path(base, c.get_ref())),
        stale_after: cx.duration(&p.stale_after, "postal.stale_after: ").unwrap_or(builtin::STALE_AFTER),
        at_risk_before: cx.duration(&p.at_risk_before, "postal.at_risk_before: ").unwrap_or(builtin::AT_RISK_BEFORE),
        weekend: match &p.weekend {
            None => builtin::WEEKEND.to_vec(),
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

/// Each operator's tracking API is a connectivity target of its group: the group (made when
/// the operator names none) and the target are added here.
pub fn api_targets(
    cx: &mut Cx<'_>,
    postal: &Postal,
    p: &RawPostal,
    defaults: &Defaults,
    target_names: &Names<'_>,
    groups: &mut Vec<Group>,
    targets: &mut Vec<Arc<Target>>,
) {
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
}
