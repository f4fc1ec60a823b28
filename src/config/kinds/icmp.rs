//! `kind = "icmp"`: echo requests to a host. Its keys, and their checks (the echoes of one probe
//! must all leave before its timeout).

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;
use crate::probe::icmp::IcmpSpec;

use super::{TargetCx, required};

pub const KEYS: &[&str] = &["host", "count", "spacing", "max_loss", "max_rtt"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let (p, timeout) = (k.p, k.timeout);
    let host = required(cx, &t.host, t, p, "host")?;
    if host.get_ref().trim().is_empty()
        || host.get_ref().contains(':') && host.get_ref().parse::<std::net::IpAddr>().is_err()
    {
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
    let last_send = spacing * u32::from(count.saturating_sub(1));
    if last_send >= timeout {
        let span = t.spacing.as_ref().map(|s| s.span()).or(t.count.as_ref().map(|c| c.span())).unwrap_or(t.kind.span());
        cx.error(span, format!(
            "{p}the last of {count} echoes would be sent after {} but the timeout is {}: lower count or spacing, or raise timeout",
            crate::probe::fmt_duration(last_send), crate::probe::fmt_duration(timeout)));
    }
    Some(ProbeSpec::Icmp(IcmpSpec { host: host.get_ref().trim().to_string(), count, spacing, max_loss, max_rtt }))
}
