//! `[daemon]` and `[defaults]`: the daemon's own settings, and the defaults of every target and
//! group. Both come first: the time zone reads every local time below, and the defaults fill
//! in what targets and groups leave unset.

use std::net::SocketAddr;
use std::path::Path;

use chrono_tz::Tz;

use super::{language, resolve_path, url_error};
use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::model::{Daemon, Defaults};
use crate::config::raw::{RawDaemon, RawDefaults};

pub fn daemon(cx: &mut Cx<'_>, d: Option<&RawDaemon>, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Daemon {
    let mut out = Daemon {
        listen: builtin::LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9798))),
        state_dir: resolve_path(base, builtin::STATE_DIR),
        vantage: default_vantage(),
        api_token_env: None,
        api_token: None,
        timezone: builtin::TZ,
        public_url: None,
        grafana_url: None,
        public_status: builtin::PUBLIC_STATUS,
        language: builtin::LANGUAGE,
        max_in_flight: builtin::MAX_IN_FLIGHT,
        per_target_histograms: builtin::PER_TARGET_HISTOGRAMS,
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
    out.language = language(cx, &d.language, builtin::LANGUAGE, "daemon.");
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

pub fn defaults(cx: &mut Cx<'_>, d: Option<&RawDefaults>) -> Defaults {
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

fn default_vantage() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".to_string())
}
