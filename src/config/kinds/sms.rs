//! `kind = "sms"`: a test message through a gateway, confirmed by delivery report or arrival.
//! Its keys and their checks, including those on the schedule: the probe lasts the deadline,
//! and the messages cost money (`daily_cap`).

use std::time::Duration;

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::config::validate::request::request;
use crate::config::validate::url_error;
use crate::probe::ProbeSpec;
use crate::probe::sms::{ConfirmBy, Gateway};

use super::{TargetCx, required};

pub const KEYS: &[&str] = &[
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
];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let (p, public_url, env) = (k.p, k.public_url, k.env);
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
    let deadline = cx.duration(&t.deadline, &format!("{p}deadline: ")).unwrap_or(builtin::SMS_DEADLINE);
    let request = request(cx, p, &t.method, &t.headers, &t.headers_env, env);
    let spec = crate::probe::sms::SmsSpec {
        gateway,
        url: url.get_ref().clone(),
        method: request.method.clone(),
        body: t.body.as_ref().map(|b| b.get_ref().clone()),
        headers: request.typed(),
        username: t.username.as_ref().map(|u| u.get_ref().clone()),
        password: cx.secret(&t.password_env, env, p).map(crate::probe::Secret),
        from,
        to,
        deadline,
        confirm_by,
        public_url: public_url.map(str::to_string),
    };
    schedule(cx, t, k, spec.deadline);
    // Messages forwarded by the test SIM's gateway must carry the API token.
    if spec.confirm_by != ConfirmBy::Dlr && !k.api_token {
        cx.error(
            t.kind.span(),
            format!(
                "{p}confirm_by inbound needs daemon.api_token_env: the test SIM's gateway forwards messages with the token"
            ),
        );
    }
    Some(ProbeSpec::Sms(Box::new(spec)))
}

/// A test message's probe lasts its submit and its deadline: that sets the timeout, which must
/// fit in the shortest interval; and the schedule must stay within the daily cap.
fn schedule(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>, deadline: Duration) {
    let (p, shortest, source) = (k.p, k.shortest, k.shortest_source);
    let needed = deadline + builtin::SMS_SUBMIT;
    let submit = crate::probe::fmt_duration(builtin::SMS_SUBMIT);
    match k.explicit_timeout {
        None => k.timeout = needed,
        Some(to) if to < needed => {
            let span = t.timeout.as_ref().map_or_else(|| t.kind.span(), |x| x.span());
            cx.error(
                span,
                format!(
                    "{p}timeout ({}) must be at least deadline + {submit} ({}): the probe submits, then waits for the confirmation",
                    crate::probe::fmt_duration(to),
                    crate::probe::fmt_duration(needed)
                ),
            );
        }
        Some(_) => {}
    }
    // Messages cost money: the schedule must stay within the daily cap.
    let cap = cx.count(&t.daily_cap, &format!("{p}daily_cap: "), 1, 100_000).unwrap_or(builtin::SMS_DAILY_CAP);
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
    if k.timeout > shortest {
        cx.error(
            t.deadline.as_ref().map_or_else(|| t.kind.span(), |d| d.span()),
            format!(
                "{p}deadline + {submit} ({}) is longer than {source} ({}): give the target a longer `interval` (test messages cost money: minutes)",
                crate::probe::fmt_duration(k.timeout),
                crate::probe::fmt_duration(shortest)
            ),
        );
    }
}
