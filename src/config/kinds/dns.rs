//! `kind = "dns"`: one query to one server. Its keys and their checks, including that the
//! target's `source` addresses are of the server's family.

use std::net::{IpAddr, SocketAddr};

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;
use crate::probe::dns::{DnsSpec, DnsTransport};

use super::{TargetCx, required};

pub const KEYS: &[&str] =
    &["server", "query", "record", "transport", "expect_rcode", "expect_answer", "allow_empty", "recursion_desired"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let p = k.p;
    let server_v = required(cx, &t.server, t, p, "server");
    let query_v = required(cx, &t.query, t, p, "query");
    let (server_v, query_v) = (server_v?, query_v?);
    let server = match server_v.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => match server_v.get_ref().parse::<IpAddr>() {
            Ok(ip) => Some(SocketAddr::new(ip, builtin::DNS_PORT)),
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
    let spec = DnsSpec {
        server: server?,
        query: query?,
        record: record?,
        transport,
        expect_rcode: expect_rcode?,
        expect_answer: t.expect_answer.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default(),
        allow_empty: t.allow_empty.as_ref().is_some_and(|b| *b.get_ref()),
        recursion_desired: t.recursion_desired.as_ref().is_none_or(|b| *b.get_ref()),
    };
    if let Some(s) = &t.source {
        for src in k.sources.iter().filter(|src| src.is_ipv4() != spec.server.is_ipv4()) {
            cx.error(s.span(), format!("{p}source {src} and server {} are of different address families", spec.server));
        }
    }
    Some(ProbeSpec::Dns(Box::new(spec)))
}
