//! `kind = "tcp"`: a connection, optionally a write and an expected answer. Its keys and their
//! checks.

use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;
use crate::probe::tcp::TcpSpec;

use super::{TargetCx, address};

pub const KEYS: &[&str] = &["address", "send", "expect"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let p = k.p;
    let (host, port) = address(cx, t, p, "127.0.0.1:2775")?;
    Some(ProbeSpec::Tcp(TcpSpec {
        host,
        port,
        send: t.send.as_ref().map(|s| unescape(s.get_ref())),
        expect: t.expect.as_ref().map(|s| unescape(s.get_ref())),
    }))
}

/// Lets `send`/`expect` carry `\r\n` written either with TOML escapes or literally.
fn unescape(s: &str) -> String {
    s.replace("\\r", "\r").replace("\\n", "\n")
}
