//! `kind = "call"`: a test call (INVITE, hold, BYE). Its keys and their checks (the call must be
//! held and hung up within the probe's timeout).

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;

use super::{TargetCx, host_port, required};

pub const KEYS: &[&str] = &["uri", "transport", "hold", "username", "password_env"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let (p, timeout, env) = (k.p, k.timeout, k.env);
    let uri = required(cx, &t.uri, t, p, "uri")?;
    // sip:user@host[:port][;params]
    let parsed = uri.get_ref().strip_prefix("sip:").and_then(|rest| {
        let hostport = rest.split(';').next().unwrap_or(rest);
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        match host_port(hostport) {
            Some(hp) => Some(hp),
            None if !hostport.is_empty() && !hostport.contains(':') => Some((hostport.to_string(), builtin::SIP_PORT)),
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
    let hold = cx.duration(&t.hold, &format!("{p}hold: ")).unwrap_or(builtin::CALL_HOLD);
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
