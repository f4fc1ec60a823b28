//! ICMP echo: `count` echoes through one shared raw (or unprivileged datagram) socket per
//! address family and binding, giving loss ratio and RTT.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use std::net::IpAddr;

use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};

use super::{Binding, EchoStats, Failure, FailureKind, Outcome, Phase, resolve_one};

#[derive(Debug, Clone, PartialEq)]
pub struct IcmpSpec {
    /// IP literal or host name (resolved at each probe).
    pub host: String,
    /// Echo requests per probe.
    pub count: u16,
    /// Pause between two echo requests of one probe.
    pub spacing: Duration,
    /// Loss ratio above which the target is congested (sliding window, SLA engine).
    pub max_loss: f64,
    /// p95 RTT above which the target is congested (sliding window, SLA engine).
    pub max_rtt: Duration,
}

const PAYLOAD: [u8; 56] = [0x74; 56];

/// A client and its sequence counter.
type SharedClient = (Client, std::sync::Arc<AtomicU16>);

/// One client (socket + receive task) per (thread, family, binding), created on first use and
/// shared by every target probed from that thread. Per thread: the client's receive task runs on
/// the runtime that created it and stamps the replies' arrival, so each probe engine has its
/// own — another engine's busy moment never adds to an RTT, and an engine that stops takes
/// only its own socket with it. The sequence counter is per client so that two targets pinging
/// the same host never wait for the same (host, seq) reply.
#[derive(Default)]
pub struct IcmpClients {
    clients: Mutex<HashMap<(std::thread::ThreadId, bool, Binding), SharedClient>>,
}

impl IcmpClients {
    fn get(&self, v6: bool, binding: &Binding) -> Result<(Client, std::sync::Arc<AtomicU16>), std::io::Error> {
        let key = (std::thread::current().id(), v6, binding.clone());
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, seq)) = map.get(&key) {
            return Ok((c.clone(), seq.clone()));
        }
        let client = Client::new(&client_config(v6, binding))?;
        let seq = std::sync::Arc::new(AtomicU16::new(0));
        map.insert(key, (client.clone(), seq.clone()));
        Ok((client, seq))
    }
}

fn client_config(v6: bool, binding: &Binding) -> Config {
    let mut b = Config::builder().kind(if v6 { ICMP::V6 } else { ICMP::V4 });
    if let Some(src) = binding.source {
        b = b.bind(std::net::SocketAddr::new(src, 0));
    }
    if let Some(dev) = &binding.interface {
        b = b.interface(dev);
    }
    b.build()
}

/// What a reply takes of a socket's receive buffer (an skb's true size), generously.
const REPLY_BYTES: f64 = 1024.0;

/// Advice when the kernel's default socket receive buffer (`net.core.rmem_default`, which the
/// ICMP socket keeps) cannot hold 50 ms of the replies planned: past that, a moment in which the
/// receive task is held up drops replies, and each reads as a timeout (the raw socket's drop
/// counter in `/proc/net/raw` climbs). `None` when it is large enough (or cannot be read).
pub fn buffer_advice(echoes_per_s: f64) -> Option<String> {
    let rmem: f64 = std::fs::read_to_string("/proc/sys/net/core/rmem_default").ok()?.trim().parse().ok()?;
    let holds = rmem / REPLY_BYTES / 0.05;
    (echoes_per_s > holds).then(|| {
        format!(
            "{echoes_per_s:.0} ICMP echoes/s planned, but the kernel's default socket receive buffer \
             (net.core.rmem_default = {rmem:.0} bytes) holds only about {:.0} ms of their replies: replies \
             dropped in a busy moment would read as timeouts. Raise it before starting: \
             `sysctl -w net.core.rmem_default=4194304` (persist it in /etc/sysctl.d/, see deploy/sysctl.d/)",
            rmem / REPLY_BYTES / echoes_per_s * 1000.0
        )
    })
}

/// Checks at start-up that an ICMP socket of this family can be opened, and says exactly what
/// to do when it cannot.
pub fn check_permission(v6: bool) -> Result<(), String> {
    // Must run inside a tokio runtime: the client spawns its receive task.
    match Client::new(&client_config(v6, &Binding::default())) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "cannot open an ICMPv{} socket: permission denied. ICMP probes need one of: \
             run as root; grant the binary CAP_NET_RAW (`setcap cap_net_raw+ep $(which thongsuot)`, \
             or `AmbientCapabilities=CAP_NET_RAW` in the systemd unit); or allow unprivileged \
             ICMP for your group (`sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`)",
            if v6 { 6 } else { 4 }
        )),
        Err(e) => Err(format!("cannot open an ICMPv{} socket: {e}", if v6 { 6 } else { 4 })),
    }
}

pub async fn probe(
    spec: &IcmpSpec,
    binding: &Binding,
    clients: &IcmpClients,
    ident: u16,
    timeout: Duration,
) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let addr = match resolve_one(&spec.host, 0, binding).await {
        Ok(a) => a.ip(),
        Err(f) => {
            out.failure = Some(f);
            out.elapsed = start.elapsed();
            return out;
        }
    };
    out.phases.set(Phase::Resolve, start.elapsed());

    let setup_start = Instant::now();
    let (client, seq) = match clients.get(addr.is_ipv6(), binding) {
        Ok(c) => c,
        Err(e) => {
            let mut f = Failure::io("cannot open ICMP socket", &e);
            f.kind = FailureKind::Setup;
            out.failure = Some(f);
            out.elapsed = start.elapsed();
            return out;
        }
    };
    out.phases.set(Phase::Setup, setup_start.elapsed());

    // Every echo must be answered before the probe's deadline: the last one is sent at
    // (count-1)*spacing, so each waits at most until the deadline.
    let deadline = start + timeout;
    let count = spec.count.max(1);
    let mut echoes = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let send_at = start + spec.spacing * u32::from(i);
        let client = client.clone();
        let seq = PingSequence(seq.fetch_add(1, Ordering::Relaxed));
        echoes.push(async move {
            // The first echo goes at once: no timer for it.
            if i > 0 {
                tokio::time::sleep_until(send_at.into()).await;
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Err(SurgeError::Timeout { seq });
            }
            let mut pinger = client.pinger(addr, PingIdentifier(ident)).await;
            pinger.timeout(wait);
            pinger.ping(seq, &PAYLOAD).await.map(|(packet, rtt)| classify(&packet, addr, rtt))
        });
    }
    let results = futures_util::future::join_all(echoes).await;

    let mut stats = EchoStats { sent: u32::from(count), ..EchoStats::default() };
    let mut total = Duration::ZERO;
    let mut last_err: Option<SurgeError> = None;
    // The first ICMP error quoting one of our echoes: it says why the target is not reached.
    let mut icmp_error: Option<Failure> = None;
    for r in results {
        match r {
            Ok(Echo::Reply(rtt)) => {
                stats.received += 1;
                total += rtt;
                stats.rtt_min = Some(stats.rtt_min.map_or(rtt, |m| m.min(rtt)));
                stats.rtt_max = Some(stats.rtt_max.map_or(rtt, |m| m.max(rtt)));
            }
            Ok(Echo::Error(f)) => {
                icmp_error.get_or_insert(f);
            }
            Ok(Echo::NotAReply) => {}
            Err(e) => last_err = Some(e),
        }
    }
    if stats.received > 0 {
        stats.rtt_avg = Some(total / stats.received);
        out.phases.set(Phase::Rtt, total / stats.received);
    }
    out.echo = Some(stats);
    if stats.received == 0 {
        out.failure = Some(match (icmp_error, last_err) {
            (Some(f), _) => f,
            (None, Some(SurgeError::Timeout { .. }) | None) => Failure::new(
                FailureKind::Timeout,
                format!("no echo reply from {addr} ({count} sent, timeout {})", super::fmt_duration(timeout)),
            ),
            (None, Some(SurgeError::IOError(e))) => Failure::io(&format!("ping {addr}"), &e),
            (None, Some(e)) => Failure::new(FailureKind::Io, format!("ping {addr}: {e}")),
        });
    }
    out.elapsed = start.elapsed();
    out
}

/// What came back for one echo request.
#[derive(Debug)]
enum Echo {
    /// An echo reply from the probed address, with our identifier, sequence and payload size.
    Reply(Duration),
    /// An ICMP error quoting our request: the echo ends there, unanswered.
    Error(Failure),
    /// Something else matched our request (a redirect, a reply of the wrong size): the echo is
    /// lost, not answered.
    NotAReply,
}

/// Bytes of an echo reply to our request: the 8-byte ICMP header and our payload. surge-ping does
/// not hand the payload over, so its length is what can be checked of it.
const REPLY_SIZE: usize = 8 + PAYLOAD.len();

/// Reads what surge-ping matched to one of our requests (by the address, identifier and sequence
/// it carries or quotes). Only an echo reply is a reply: surge-ping hands ICMP errors to the same
/// waiter, and taking them for replies read an unreachable host as up with a microsecond RTT.
fn classify(packet: &IcmpPacket, probed: IpAddr, rtt: Duration) -> Echo {
    // The ICMPv4 and ICMPv6 numbers of the three messages that matter here (RFC 792, RFC 4443).
    let (ty, code, from, size, real_dest, v6) = match packet {
        IcmpPacket::V4(p) => {
            let ty = match p.get_icmp_type().0 {
                0 => Type::EchoReply,
                3 => Type::Unreachable,
                11 => Type::TimeExceeded,
                other => Type::Other(other),
            };
            (ty, p.get_icmp_code().0, IpAddr::V4(p.get_source()), p.get_size(), IpAddr::V4(p.get_real_dest()), false)
        }
        IcmpPacket::V6(p) => {
            let ty = match p.get_icmpv6_type().0 {
                129 => Type::EchoReply,
                1 => Type::Unreachable,
                3 => Type::TimeExceeded,
                other => Type::Other(other),
            };
            (ty, p.get_icmpv6_code().0, IpAddr::V6(p.get_source()), p.get_size(), IpAddr::V6(p.get_real_dest()), true)
        }
    };
    if real_dest != probed {
        tracing::debug!(%probed, %real_dest, "ICMP packet about another address");
        return Echo::NotAReply;
    }
    match ty {
        Type::EchoReply if size == REPLY_SIZE => Echo::Reply(rtt),
        Type::EchoReply => {
            tracing::debug!(%probed, size, "echo reply of the wrong size: not ours");
            Echo::NotAReply
        }
        Type::Unreachable => Echo::Error(Failure::new(
            FailureKind::Unreachable,
            format!("{} (code {code}) from {from}", unreachable_name(v6, code)),
        )),
        Type::TimeExceeded => {
            let what = match (code, v6) {
                (0, false) => "time to live exceeded in transit",
                (0, true) => "hop limit exceeded in transit",
                _ => "fragment reassembly time exceeded",
            };
            Echo::Error(Failure::new(FailureKind::TtlExceeded, format!("{what} (code {code}) from {from}")))
        }
        Type::Other(ty) => {
            tracing::debug!(%probed, %from, ty, code, "ICMP message quoting our echo is neither a reply nor an error");
            Echo::NotAReply
        }
    }
}

enum Type {
    EchoReply,
    Unreachable,
    TimeExceeded,
    Other(u8),
}

/// The name of a destination-unreachable code (RFC 792 and RFC 1812 for v4, RFC 4443 for v6).
fn unreachable_name(v6: bool, code: u8) -> &'static str {
    if v6 {
        return match code {
            0 => "no route to destination",
            1 => "communication administratively prohibited",
            2 => "beyond scope of source address",
            3 => "address unreachable",
            4 => "port unreachable",
            5 => "source address failed ingress/egress policy",
            6 => "reject route to destination",
            _ => "destination unreachable",
        };
    }
    match code {
        0 => "network unreachable",
        1 => "host unreachable",
        2 => "protocol unreachable",
        3 => "port unreachable",
        4 => "fragmentation needed",
        5 => "source route failed",
        6 | 7 => "destination unknown",
        9 | 10 | 13 => "communication administratively prohibited",
        11 | 12 => "unreachable for type of service",
        _ => "destination unreachable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_advice_names_the_setting_only_past_what_the_buffer_holds() {
        // Whatever the host's setting, a handful of echoes a second fits, and a billion does not.
        assert_eq!(buffer_advice(10.0), None);
        let advice = buffer_advice(1e9).expect("advice at 10^9 echoes/s");
        assert!(advice.contains("net.core.rmem_default") && advice.contains("sysctl -w"), "{advice}");
    }
}
