//! The closed set of probe kinds, as a type: what `ProbeSpec::kind()` labels metrics with and
//! what a `[[target]]`'s `kind = "…"` names. One enum, so that adding a kind is a compile error
//! everywhere a kind is matched (the config's key lists and validators, the labels) instead of a
//! string that some `match` silently sends to `_`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Icmp,
    Tcp,
    Http,
    Dns,
    Tls,
    Sip,
    Call,
    Sms,
    Heartbeat,
    /// A postal operator's tracking API: made by `config` for each `[[postal.operator]]`, never
    /// written as a `[[target]]`.
    Postal,
}

impl Kind {
    /// Every kind, in the order the docs and the "supported kinds" message list them.
    pub const ALL: [Kind; 10] = [
        Kind::Icmp,
        Kind::Tcp,
        Kind::Http,
        Kind::Dns,
        Kind::Tls,
        Kind::Sip,
        Kind::Call,
        Kind::Sms,
        Kind::Heartbeat,
        Kind::Postal,
    ];

    /// The name written in `kind = "…"` and used as the `kind` metric label.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Icmp => "icmp",
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Dns => "dns",
            Kind::Tls => "tls",
            Kind::Sip => "sip",
            Kind::Call => "call",
            Kind::Sms => "sms",
            Kind::Heartbeat => "heartbeat",
            Kind::Postal => "postal",
        }
    }

    /// The kind of that name, exactly as [`Kind::name`] spells it (lower case).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Kind {
    /// The kind after this one in [`Kind::ALL`]. An exhaustive `match`, so a new variant must be
    /// placed here (the test build fails until it is), and the test below then fails until
    /// `ALL` lists it too.
    #[cfg(test)]
    fn next(self) -> Option<Kind> {
        match self {
            Kind::Icmp => Some(Kind::Tcp),
            Kind::Tcp => Some(Kind::Http),
            Kind::Http => Some(Kind::Dns),
            Kind::Dns => Some(Kind::Tls),
            Kind::Tls => Some(Kind::Sip),
            Kind::Sip => Some(Kind::Call),
            Kind::Call => Some(Kind::Sms),
            Kind::Sms => Some(Kind::Heartbeat),
            Kind::Heartbeat => Some(Kind::Postal),
            Kind::Postal => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn all_lists_every_kind() {
        let chain: Vec<Kind> = std::iter::successors(Some(Kind::Icmp), |k| k.next()).collect();
        assert_eq!(chain, Kind::ALL, "Kind::ALL and Kind::next disagree: a kind is missing from one");
    }
}
