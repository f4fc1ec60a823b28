//! Test networks in namespaces: a host at the end of a veth ([`Netns`]), and a router between
//! the host and its targets ([`Lab`]) whose nftables rules make the failures of real paths.
//!
//! Every test takes its own block 198.18.B.0/24 (B unique in the suite: grep for `claim_block`
//! before picking one) and checks first that nothing on the machine uses it, so a leftover from
//! another run or another program fails the test with a clear message instead of a wrong verdict.

use std::process::Command;

pub fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn sh_out(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Panics, saying what holds it, when any address, route or rule of this machine is in
/// 198.18.`block`.0/24: the test would otherwise measure someone else's network.
pub fn claim_block(block: u8, test: &str) {
    claim_prefix(&format!("198.18.{block}."), test);
    // The IPv6 side of a lab: 2001:db8:B::/48 (documentation prefix).
    claim_prefix(&format!("2001:db8:{block:x}:"), test);
}

fn claim_prefix(prefix: &str, test: &str) {
    let mut found = Vec::new();
    for (what, args) in [
        ("address", &["ip", "-o", "addr", "show"][..]),
        ("route", &["ip", "route", "show", "table", "all"][..]),
        ("rule", &["ip", "rule", "show"][..]),
        ("route", &["ip", "-6", "route", "show", "table", "all"][..]),
    ] {
        for line in sh_out(args).lines().filter(|l| l.contains(prefix)) {
            found.push(format!("{what}: {}", line.trim()));
        }
    }
    assert!(
        found.is_empty(),
        "test {test} needs {prefix}*, but this machine already uses it (another run of the suite, or \
         a leftover namespace: `ip netns list`):\n  {}",
        found.join("\n  ")
    );
}

fn pid_tag() -> u32 {
    std::process::id() % 10_000
}

fn run_all(steps: &[Vec<String>], what: &str) {
    for s in steps {
        let args: Vec<&str> = s.iter().map(String::as_str).collect();
        sh(&args).unwrap_or_else(|e| panic!("{what} setup failed: {e}"));
    }
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// A host in a namespace at the end of a veth: 198.18.`block`.1 here, .2 there.
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_ip: String,
    pub ns_ip: String,
}

impl Netns {
    /// `block` picks 198.18.block.0/30; use a different one per test.
    pub fn create(tag: &str, block: u8) -> Netns {
        let id = pid_tag();
        let n = Netns {
            name: format!("ts-{tag}-{id}"),
            host_if: format!("th{tag}{id}"),
            ns_if: format!("tn{tag}{id}"),
            host_ip: format!("198.18.{block}.1"),
            ns_ip: format!("198.18.{block}.2"),
        };
        let _ = sh(&["ip", "netns", "del", &n.name]);
        let _ = sh(&["ip", "link", "del", &n.host_if]);
        claim_block(block, tag);
        let (ns, h, t) = (&n.name, &n.host_if, &n.ns_if);
        let steps = [
            format!("ip netns add {ns}"),
            format!("ip link add {h} type veth peer name {t}"),
            format!("ip link set {t} netns {ns}"),
            format!("ip addr add {}/30 dev {h}", n.host_ip),
            format!("ip link set {h} up"),
            format!("ip -n {ns} addr add {}/30 dev {t}", n.ns_ip),
            format!("ip -n {ns} link set {t} up"),
            format!("ip -n {ns} link set lo up"),
        ];
        run_all(&steps.iter().map(|l| words(l)).collect::<Vec<_>>(), "namespace");
        n
    }

    /// Cuts the link from inside the namespace (like a carrier's line going down).
    pub fn cut(&self) {
        sh(&["ip", "netns", "exec", &self.name, "ip", "link", "set", &self.ns_if, "down"]).expect("link down");
    }

    pub fn restore(&self) {
        sh(&["ip", "netns", "exec", &self.name, "ip", "link", "set", &self.ns_if, "up"]).expect("link up");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.name]);
        let _ = sh(&["ip", "link", "del", &self.host_if]);
    }
}

/// host --veth-- router --veth-- targets, in 198.18.`block`.0/24:
///
/// - host 198.18.B.1, router 198.18.B.2 (the router's address seen from the host);
/// - router 198.18.B.5, target namespace 198.18.B.6;
/// - target addresses 198.18.B.17 to .30 on the target namespace's loopback ([`Lab::target`]);
/// - the same in IPv6: host 2001:db8:B::1, router 2001:db8:B::2 and 2001:db8:B:1::1, target
///   namespace 2001:db8:B:1::2, targets 2001:db8:B:2::17 to ::30 ([`Lab::target6`]; B in hex).
///
/// The router forwards, answers with every ICMP error it is told to (no rate limit unless
/// [`Lab::rate_limit_icmp`]), and filters with the nftables rules given to [`Lab::rules`].
pub struct Lab {
    pub router: String,
    pub targets: String,
    host_if: String,
    block: u8,
}

impl Lab {
    pub fn create(tag: &str, block: u8) -> Lab {
        let id = pid_tag();
        let lab = Lab {
            router: format!("ts-{tag}-r-{id}"),
            targets: format!("ts-{tag}-t-{id}"),
            host_if: format!("lh{tag}{id}"),
            block,
        };
        lab.cleanup();
        claim_block(block, tag);
        let (r, t, h, b) = (&lab.router, &lab.targets, &lab.host_if, block);
        let mut steps = vec![
            format!("ip netns add {r}"),
            format!("ip netns add {t}"),
            format!("ip -n {r} link set lo up"),
            format!("ip -n {t} link set lo up"),
            format!("ip link add {h} type veth peer name r0 netns {r}"),
            format!("ip -n {r} link add r1 type veth peer name t0 netns {t}"),
            format!("ip addr add 198.18.{b}.1/30 dev {h}"),
            format!("ip link set {h} up"),
            format!("ip netns exec {r} sysctl -qw net.ipv4.ip_forward=1"),
            format!("ip netns exec {r} sysctl -qw net.ipv4.icmp_ratelimit=0"),
            format!("ip netns exec {r} sysctl -qw net.ipv6.conf.all.forwarding=1"),
            format!("ip netns exec {r} sysctl -qw net.ipv6.icmp.ratelimit=0"),
            format!("ip -n {r} addr add 198.18.{b}.2/30 dev r0"),
            format!("ip -n {r} link set r0 up"),
            format!("ip -n {r} addr add 198.18.{b}.5/30 dev r1"),
            format!("ip -n {r} link set r1 up"),
            format!("ip -n {r} route add 198.18.{b}.16/28 via 198.18.{b}.6"),
            format!("ip -n {t} addr add 198.18.{b}.6/30 dev t0"),
            format!("ip -n {t} link set t0 up"),
            format!("ip -n {t} route add default via 198.18.{b}.5"),
            // Reaches the router's far side and the targets through the router.
            format!("ip route add 198.18.{b}.0/24 via 198.18.{b}.2"),
            // IPv6, without duplicate address detection (addresses usable at once).
            format!("ip -6 addr add 2001:db8:{b:x}::1/64 dev {h} nodad"),
            format!("ip -n {r} -6 addr add 2001:db8:{b:x}::2/64 dev r0 nodad"),
            format!("ip -n {r} -6 addr add 2001:db8:{b:x}:1::1/64 dev r1 nodad"),
            format!("ip -n {t} -6 addr add 2001:db8:{b:x}:1::2/64 dev t0 nodad"),
            format!("ip -n {r} -6 route add 2001:db8:{b:x}:2::/64 via 2001:db8:{b:x}:1::2"),
            format!("ip -n {t} -6 route add default via 2001:db8:{b:x}:1::1"),
            format!("ip -6 route add 2001:db8:{b:x}::/48 via 2001:db8:{b:x}::2"),
        ];
        for i in 17..=30 {
            steps.push(format!("ip -n {t} addr add 198.18.{b}.{i}/32 dev lo"));
            steps.push(format!("ip -n {t} -6 addr add 2001:db8:{b:x}:2::{i}/128 dev lo nodad"));
        }
        run_all(&steps.iter().map(|l| words(l)).collect::<Vec<_>>(), "router lab");
        lab
    }

    /// Target address number `n` (17 to 30).
    pub fn target(&self, n: u8) -> String {
        assert!((17..=30).contains(&n), "lab targets are .17 to .30");
        format!("198.18.{}.{n}", self.block)
    }

    /// The router's address as the host sees it (the source of its ICMP errors).
    pub fn router_ip(&self) -> String {
        format!("198.18.{}.2", self.block)
    }

    /// IPv6 target address number `n` (17 to 30).
    pub fn target6(&self, n: u8) -> String {
        assert!((17..=30).contains(&n), "lab targets are ::17 to ::30");
        format!("2001:db8:{:x}:2::{n}", self.block)
    }

    /// The router's IPv6 address as the host sees it.
    pub fn router_ip6(&self) -> String {
        format!("2001:db8:{:x}::2", self.block)
    }

    /// Loads nftables `rules` (the body of `table ip lab { … }`) into the router.
    pub fn rules(&self, rules: &str) {
        self.load("ip lab", rules);
    }

    /// Loads nftables `rules` (the body of `table ip6 lab6 { … }`) into the router.
    pub fn rules6(&self, rules: &str) {
        self.load("ip6 lab6", rules);
    }

    fn load(&self, table: &str, rules: &str) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), format!("table {table} {{\n{rules}\n}}\n")).expect("write rules");
        let path = file.path().to_string_lossy().into_owned();
        sh(&["ip", "netns", "exec", &self.router, "nft", "-f", &path]).unwrap_or_else(|e| panic!("nft rules: {e}"));
    }

    /// The kernel's default ICMP rate limit on the router (1 error per second per destination).
    pub fn rate_limit_icmp(&self) {
        sh(&["ip", "netns", "exec", &self.router, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=1000"]).expect("sysctl");
    }

    /// Starts `cmd` inside the target namespace (a server on a target address).
    pub fn spawn_in_targets(&self, cmd: &[&str]) -> super::Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.targets])
            .args(cmd)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?} in the target namespace: {e}"));
        super::Proc(child)
    }

    fn cleanup(&self) {
        let _ = sh(&["ip", "route", "del", &format!("198.18.{}.0/24", self.block)]);
        let _ = sh(&["ip", "-6", "route", "del", &format!("2001:db8:{:x}::/48", self.block)]);
        let _ = sh(&["ip", "netns", "del", &self.router]);
        let _ = sh(&["ip", "netns", "del", &self.targets]);
        let _ = sh(&["ip", "link", "del", &self.host_if]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A link (one end of a veth pair: this kernel may lack the dummy module) holding one local address, for probes with a `source` that the test takes away
/// (an uplink's address gone) and gives back.
pub struct Dummy {
    pub link: String,
    pub addr: String,
}

impl Dummy {
    /// 198.18.`block`.1 on a new dummy link.
    pub fn create(tag: &str, block: u8) -> Dummy {
        let d = Dummy { link: format!("td{tag}{}", pid_tag()), addr: format!("198.18.{block}.1") };
        let _ = sh(&["ip", "link", "del", &d.link]);
        claim_block(block, tag);
        let steps = [
            format!("ip link add {0} type veth peer name {0}p", d.link),
            format!("ip link set {} up", d.link),
            format!("ip link set {}p up", d.link),
        ];
        run_all(&steps.iter().map(|l| words(l)).collect::<Vec<_>>(), "dummy link");
        d.add_addr();
        d
    }

    pub fn add_addr(&self) {
        sh(&["ip", "addr", "add", &format!("{}/32", self.addr), "dev", &self.link]).expect("add address");
    }

    pub fn del_addr(&self) {
        sh(&["ip", "addr", "del", &format!("{}/32", self.addr), "dev", &self.link]).expect("remove address");
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", &self.link]);
    }
}
