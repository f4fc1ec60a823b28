//! Validation: the raw file (`raw`) checked section by section into the domain types (`model`).
//! Every problem is reported to [`Cx`], located, and validation goes on, so that `check` lists
//! them all at once. The sections come in the order they refer to each other: contacts, then
//! the groups and periods that name them, the targets that name groups, the maintenance windows
//! that name both, and the postal operators that add a target and maybe a group each.

mod contacts;
mod daemon;
mod groups;
mod maintenance;
mod periods;
mod postal;
pub mod request;
mod smtp;
mod target;

pub use target::TargetInput;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::diagnostics::Cx;
use super::model::{Config, Language};
use super::raw::{Opt, RawConfig, S};
use super::units::parse_time;

pub fn validate(
    cx: &mut Cx<'_>,
    raw: RawConfig,
    raw_targets: TargetInput<'_>,
    base: &Path,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Config {
    let mut daemon = daemon::daemon(cx, raw.daemon.as_ref(), base, env);
    let defaults = daemon::defaults(cx, raw.defaults.as_ref());
    let tz = daemon.timezone;

    // Contacts first: groups and periods refer to them.
    let (contacts, contact_names) = contacts::contacts(cx, &raw.contact, daemon.language);
    if let Some(d) = &raw.daemon {
        daemon.monitor_contacts = contacts::refs(cx, &contact_names, &d.monitor_contacts, "daemon.monitor_contacts");
    }
    let (mut groups, group_names) = groups::groups(cx, &raw.group, &contact_names, &defaults);
    let periods = periods::periods(cx, &raw.period, &contact_names, tz);

    let scope = target::Scope {
        groups: &group_names,
        defaults: &defaults,
        periods: &periods,
        base,
        env,
        public_url: daemon.public_url.as_deref(),
        api_token: daemon.api_token.is_some(),
    };
    let target::Targets { list: mut targets, names: target_names, count: target_count } =
        target::targets(cx, raw_targets, &scope);

    let maintenance = maintenance::maintenance(cx, &raw.maintenance, tz, &group_names, &target_names, &periods);
    let smtp = raw.smtp.as_ref().map(|s| smtp::smtp(cx, s, base, env));
    let postal = raw.postal.as_ref().map(|p| {
        let postal = postal::postal(cx, p, base, &group_names, env);
        postal::api_targets(cx, &postal, p, &defaults, &target_names, &mut groups, &mut targets);
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

/// `language = "en" | "vi"`, of the daemon or of a contact.
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

/// A path from the file, relative to the file's directory unless absolute.
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

/// A URL parser's error, with the form expected when the scheme is missing (the parser says only
/// "relative URL without a base").
pub fn url_error(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    if text == "relative URL without a base" {
        format!("{text}: expected an absolute URL with its scheme, such as \"https://example.vn/path\"")
    } else {
        text
    }
}

fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace))
}

/// A period's or a maintenance window's start or end: local time in the daemon's zone.
fn time(cx: &mut Cx<'_>, v: &S<toml::Value>, tz: Tz, owner: &str) -> Option<DateTime<Utc>> {
    match parse_time(v.get_ref(), tz) {
        Ok(t) => Some(t),
        Err(e) => {
            cx.error(v.span(), format!("{owner}{e}"));
            None
        }
    }
}
