//! `kind = "sip"`: an OPTIONS request to a SIP server. Its keys and their checks.

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;

use super::{TargetCx, host_port, required};

pub const KEYS: &[&str] = &["address", "transport", "expect_status", "any_response"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let p = k.p;
    let addr = required(cx, &t.address, t, p, "address")?;
    let (host, port) = match host_port(addr.get_ref()) {
        Some(hp) => hp,
        None if !addr.get_ref().contains(':') => (addr.get_ref().clone(), builtin::SIP_PORT),
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
