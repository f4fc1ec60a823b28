//! `kind = "tls"`: a handshake, to watch a certificate's chain and expiry. Its keys and their
//! checks.

use crate::config::builtin;
use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;

use super::{TargetCx, address, ca_file};

pub const KEYS: &[&str] = &["address", "server_name", "min_days_left", "tls_verify", "ca_file"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let p = k.p;
    let (host, port) = address(cx, t, p, "portal.example.vn:443")?;
    let server_name = t.server_name.as_ref().map_or_else(|| host.clone(), |s| s.get_ref().clone());
    if rustls::pki_types::ServerName::try_from(server_name.clone()).is_err() {
        let span = t.server_name.as_ref().or(t.address.as_ref()).map_or_else(|| t.kind.span(), |s| s.span());
        cx.error(span, format!("{p}server_name {server_name:?} is not a DNS name or IP address"));
    }
    let min_days_left =
        cx.count(&t.min_days_left, &format!("{p}min_days_left: "), 0, 3650).unwrap_or(builtin::MIN_DAYS_LEFT);
    let ca_file = ca_file(cx, t, p, k.base);
    Some(ProbeSpec::Tls(Box::new(crate::probe::tls::TlsSpec {
        host,
        port,
        server_name,
        min_days_left,
        tls_verify: t.tls_verify.as_ref().is_none_or(|b| *b.get_ref()),
        ca_file,
    })))
}
