//! Target kinds: one file per kind a `[[target]]` may have, each with the keys it accepts
//! (`KEYS`, beyond the common ones) and its validator (`spec`), which checks those keys and
//! builds the kind's `ProbeSpec`. The one `match` on [`Kind`] below ties a kind to its file: a
//! new `Kind` does not compile until it is given one (or is declared not configurable).

mod call;
mod dns;
mod heartbeat;
mod http;
mod icmp;
mod sip;
mod sms;
mod tcp;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diagnostics::Cx;
use super::raw::{Opt, RawTarget, S};
use super::validate::resolve_path;
use crate::probe::ProbeSpec;
use crate::probe::kind::Kind;

/// What a kind's validator knows of its target besides the raw table: the common keys, already
/// checked, and the daemon settings some kinds depend on.
pub struct TargetCx<'a> {
    /// `target "name": `, the start of every message about this target.
    pub p: &'a str,
    /// The config file's directory, which relative paths are relative to.
    pub base: &'a Path,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub public_url: Option<&'a str>,
    /// Whether `daemon.api_token_env` holds a token.
    pub api_token: bool,
    /// The probe's timeout: the target's own, or derived from its shortest interval. A kind
    /// whose probe lasts a configured time sets it (sms: its deadline).
    pub timeout: Duration,
    /// The `timeout` key, when the target sets it.
    pub explicit_timeout: Option<Duration>,
    /// The shortest interval the target may run at, and what sets it (said in messages).
    pub shortest: Duration,
    pub shortest_source: &'a str,
    /// The target's `source` addresses, one per uplink.
    pub sources: &'a [IpAddr],
}

/// A kind's validator: checks its keys and builds its spec, or reports why not.
pub type SpecFn = fn(&mut Cx<'_>, &RawTarget, &mut TargetCx<'_>) -> Option<ProbeSpec>;

/// What the config knows of a kind it accepts in a `[[target]]`.
#[derive(Clone, Copy)]
pub struct Entry {
    pub keys: &'static [&'static str],
    pub spec: SpecFn,
}

/// The kind's keys and validator; `None` for a kind that is not written as a `[[target]]`.
pub fn entry(kind: Kind) -> Option<Entry> {
    Some(match kind {
        Kind::Icmp => Entry { keys: icmp::KEYS, spec: icmp::spec },
        Kind::Tcp => Entry { keys: tcp::KEYS, spec: tcp::spec },
        Kind::Http => Entry { keys: http::KEYS, spec: http::spec },
        Kind::Dns => Entry { keys: dns::KEYS, spec: dns::spec },
        Kind::Tls => Entry { keys: tls::KEYS, spec: tls::spec },
        Kind::Sip => Entry { keys: sip::KEYS, spec: sip::spec },
        Kind::Call => Entry { keys: call::KEYS, spec: call::spec },
        Kind::Sms => Entry { keys: sms::KEYS, spec: sms::spec },
        Kind::Heartbeat => Entry { keys: heartbeat::KEYS, spec: heartbeat::spec },
        // Made for each `[[postal.operator]]` (its tracking API), never written as a target.
        Kind::Postal => return None,
    })
}

/// Keys a kind accepts beyond the common ones; `None` for a kind not written as a `[[target]]`.
pub fn keys(kind: Kind) -> Option<&'static [&'static str]> {
    entry(kind).map(|e| e.keys)
}

/// Checks the kind's keys and builds its spec; `None` when they do not make one (reported).
pub fn spec(kind: Kind, cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    (entry(kind)?.spec)(cx, t, k)
}

/// The kinds a `[[target]]` may have, in [`Kind::ALL`]'s order (the "supported kinds" message).
pub fn configurable() -> impl Iterator<Item = Kind> {
    Kind::ALL.into_iter().filter(|k| entry(*k).is_some())
}

/// A key the kind cannot do without: reported at `kind` when missing.
pub fn required<'a, T>(cx: &mut Cx<'_>, v: &'a Opt<T>, t: &RawTarget, p: &str, key: &str) -> Option<&'a S<T>> {
    if v.is_none() {
        cx.error(t.kind.span(), format!("{p}kind {} needs `{key}`", t.kind.get_ref()));
    }
    v.as_ref()
}

/// The required `address = "host:port"` of tcp and tls targets, with the error naming an
/// example of the kind's.
pub fn address(cx: &mut Cx<'_>, t: &RawTarget, p: &str, example: &str) -> Option<(String, u16)> {
    let addr = required(cx, &t.address, t, p, "address")?;
    let parsed = host_port(addr.get_ref());
    if parsed.is_none() {
        cx.error(
            addr.span(),
            format!("{p}address must be \"host:port\" (e.g. \"{example}\"), not {:?}", addr.get_ref()),
        );
    }
    parsed
}

/// Splits `host:port` / `[v6]:port`.
pub fn host_port(s: &str) -> Option<(String, u16)> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some((a.ip().to_string(), a.port()));
    }
    let (h, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if h.is_empty() || h.contains(':') || h.contains('/') {
        return None;
    }
    Some((h.to_string(), port))
}

/// `ca_file` (http, tls): relative to the config file, and it must exist when the file is read.
pub fn ca_file(cx: &mut Cx<'_>, t: &RawTarget, p: &str, base: &Path) -> Option<PathBuf> {
    t.ca_file.as_ref().map(|c| {
        let path = resolve_path(base, c.get_ref());
        if !path.is_file() {
            cx.error(c.span(), format!("{p}ca_file {} does not exist", path.display()));
        }
        path
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(Kind::from_name("ICMP"), None);
        assert_eq!(Kind::from_name("ping"), None);
    }

    #[test]
    fn every_target_kind_has_keys_and_postal_is_not_one() {
        let names: Vec<&str> = configurable().map(Kind::name).collect();
        // The list the "unknown kind" message gives, unchanged since kinds were strings.
        assert_eq!(names.join(", "), "icmp, tcp, http, dns, tls, sip, call, sms, heartbeat");
        for k in configurable() {
            assert!(keys(k).is_some_and(|k| !k.is_empty()), "{k} has no keys");
        }
        assert!(keys(Kind::Postal).is_none());
    }

    /// Each key a kind accepts has a row in the tables of its section of CONFIGURATION.md
    /// (`### kind = "…"`, up to the next heading): the first cell names the key, or several
    /// keys documented together (`` `username`, `password_env` ``).
    #[test]
    fn every_key_of_a_kind_is_documented_in_its_section() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/CONFIGURATION.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for kind in configurable() {
            let heading = format!("### kind = \"{kind}\"");
            let Some(start) = doc.find(&heading) else { panic!("CONFIGURATION.md has no section {heading}") };
            let rest = &doc[start + heading.len()..];
            let end = [rest.find("\n## "), rest.find("\n### ")].into_iter().flatten().min().unwrap_or(rest.len());
            let documented: Vec<&str> = rest[..end]
                .lines()
                .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
                .flat_map(|cell| cell.split(", "))
                .filter_map(|k| k.strip_prefix('`')?.strip_suffix('`'))
                .collect();
            for key in keys(kind).unwrap_or_default() {
                assert!(documented.contains(key), "CONFIGURATION.md, {heading}: no row for `{key}`");
            }
        }
    }
}
