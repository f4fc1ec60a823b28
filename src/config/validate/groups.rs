//! `[[group]]`: a carrier, postal operator or portal, whose targets share contacts, objectives
//! and notification timing.

use super::contacts::refs;
use super::url_error;
use crate::config::diagnostics::{Cx, Names};
use crate::config::model::{Defaults, Group, GroupKind};
use crate::config::raw::RawGroup;

pub fn groups(
    cx: &mut Cx<'_>,
    raw: &[RawGroup],
    contact_names: &Names<'_>,
    defaults: &Defaults,
) -> (Vec<Group>, Names<'static>) {
    let mut group_names = Names::new("group");
    let mut groups = Vec::new();
    for g in raw {
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
        let contacts = refs(cx, contact_names, &g.contacts, &owner);
        let escalate_to = refs(cx, contact_names, &g.escalate_to, &owner);
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
    (groups, group_names)
}
