//! Probe kinds: one module and one `ProbeSpec` variant per kind, one `match` in [`run`].
//!
//! A probe is a measurement, not an error: every call returns an [`Outcome`], whose
//! [`FailureKind`] is a small closed set usable as a metric label. Probes never touch metrics,
//! the SLA ledger or alerts; the scheduler does that with what they return.

pub mod dns;
pub mod heartbeat;
pub mod http;
pub mod icmp;
pub mod kind;
pub mod postal;
pub mod sip;
pub mod sms;
pub mod tcp;
pub mod tls;

/// The test call lives with the SIP code it shares; `probe::call` is the path it always had.
pub use sip::call;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What to probe and how, validated. Built by `config`, run by [`run`].
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    Icmp(icmp::IcmpSpec),
    Tcp(tcp::TcpSpec),
    /// Boxed, as the larger specs are: a target is as large as its largest kind otherwise
    /// (only ICMP and TCP, the most numerous, are inline).
    Http(Box<http::HttpSpec>),
    Dns(Box<dns::DnsSpec>),
    Tls(Box<tls::TlsSpec>),
    Sip(Box<sip::SipSpec>),
    Heartbeat(heartbeat::HeartbeatSpec),
    /// A postal operator's tracking API (made by `config` for each `[[postal.operator]]`).
    Postal(Box<postal::PostalApiSpec>),
    /// A test call (SIP INVITE … BYE).
    Call(Box<sip::call::CallSpec>),
    /// A test message (gateway submit, delivery report, arrival).
    Sms(Box<sms::SmsSpec>),
}

impl ProbeSpec {
    /// The `kind` label value.
    pub fn kind(&self) -> &'static str {
        self.kind_enum().name()
    }

    /// The kind, as the closed set `config` validates against.
    pub fn kind_enum(&self) -> kind::Kind {
        use kind::Kind;
        match self {
            ProbeSpec::Icmp(_) => Kind::Icmp,
            ProbeSpec::Tcp(_) => Kind::Tcp,
            ProbeSpec::Http(_) => Kind::Http,
            ProbeSpec::Dns(_) => Kind::Dns,
            ProbeSpec::Tls(_) => Kind::Tls,
            ProbeSpec::Sip(_) => Kind::Sip,
            ProbeSpec::Heartbeat(_) => Kind::Heartbeat,
            ProbeSpec::Postal(_) => Kind::Postal,
            ProbeSpec::Call(_) => Kind::Call,
            ProbeSpec::Sms(_) => Kind::Sms,
        }
    }
}

/// A password from the environment: compared and used, never printed (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a probe leaves from: a local address and/or a device (per-carrier uplinks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Binding {
    pub source: Option<IpAddr>,
    pub interface: Option<String>,
}

/// Why a probe failed, as a bounded label. The human detail travels beside it in [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No answer within the probe timeout.
    Timeout,
    /// The peer actively refused (TCP RST on connect, ICMP port unreachable).
    Refused,
    /// No route, network or host unreachable, link down.
    Unreachable,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The target's name did not resolve.
    Resolve,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// HTTP status not in `expect_status`.
    Status,
    /// Body, banner or JSON value did not match what was expected.
    Body,
    /// The answer was larger than the configured limit.
    TooLarge,
    /// DNS answered with an unexpected response code.
    Rcode,
    /// DNS answered, but not with the expected records.
    Answer,
    /// The answer was not well-formed for its protocol.
    Protocol,
    /// Answered, but slower than `max_latency` / `max_rtt`.
    Latency,
    /// Echo replies lost beyond what is tolerated.
    Loss,
    /// The probe could not be started here (no permission, bad source address).
    Setup,
    /// The certificate expires sooner than `min_days_left` (or has expired).
    CertExpiry,
    /// Any other I/O error.
    Io,
    /// A router on the path answered "time exceeded": the packet's TTL ran out (a routing loop,
    /// or the target is further than the path allows).
    TtlExceeded,
}

impl FailureKind {
    pub const ALL: [FailureKind; 18] = [
        FailureKind::Timeout,
        FailureKind::Refused,
        FailureKind::Unreachable,
        FailureKind::Reset,
        FailureKind::Resolve,
        FailureKind::Tls,
        FailureKind::Status,
        FailureKind::Body,
        FailureKind::TooLarge,
        FailureKind::Rcode,
        FailureKind::Answer,
        FailureKind::Protocol,
        FailureKind::Latency,
        FailureKind::Loss,
        FailureKind::Setup,
        FailureKind::CertExpiry,
        FailureKind::Io,
        FailureKind::TtlExceeded,
    ];

    /// The metric label and the stable word used in e-mails and the API.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Refused => "refused",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Reset => "reset",
            FailureKind::Resolve => "resolve",
            FailureKind::Tls => "tls",
            FailureKind::Status => "status",
            FailureKind::Body => "body",
            FailureKind::TooLarge => "too_large",
            FailureKind::Rcode => "rcode",
            FailureKind::Answer => "answer",
            FailureKind::Protocol => "protocol",
            FailureKind::Latency => "latency",
            FailureKind::Loss => "loss",
            FailureKind::Setup => "setup",
            FailureKind::CertExpiry => "cert_expiry",
            FailureKind::Io => "io",
            FailureKind::TtlExceeded => "ttl_exceeded",
        }
    }

    /// Classifies an I/O error from connect/read/write.
    pub fn from_io(err: &std::io::Error) -> FailureKind {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::ConnectionRefused => FailureKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => FailureKind::Reset,
            K::TimedOut => FailureKind::Timeout,
            K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => FailureKind::Unreachable,
            K::AddrNotAvailable | K::PermissionDenied | K::AddrInUse => FailureKind::Setup,
            _ => match err.raw_os_error() {
                // EHOSTUNREACH, ENETUNREACH, ENETDOWN on Linux.
                Some(113) | Some(101) | Some(100) => FailureKind::Unreachable,
                _ => FailureKind::Io,
            },
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A failed probe: the bounded kind and a human-readable reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Failure {
        Failure { kind, detail: detail.into() }
    }

    pub fn io(context: &str, err: &std::io::Error) -> Failure {
        Failure::new(FailureKind::from_io(err), format!("{context}: {err}"))
    }

    pub fn timeout(phase: Phase, after: Duration) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!("no answer within {} ({} phase)", fmt_duration(after), phase.label()),
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// Phases of a probe, named as blackbox_exporter names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
    Setup,
    Rtt,
}

impl Phase {
    pub const COUNT: usize = 7;
    pub const ALL: [Phase; Phase::COUNT] =
        [Phase::Resolve, Phase::Connect, Phase::Tls, Phase::Processing, Phase::Transfer, Phase::Setup, Phase::Rtt];

    pub fn label(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
            Phase::Setup => "setup",
            Phase::Rtt => "rtt",
        }
    }
}

/// Phase durations of one probe, without allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases([Option<Duration>; Phase::COUNT]);

impl Phases {
    pub fn set(&mut self, phase: Phase, d: Duration) {
        self.0[phase as usize] = Some(d);
    }

    pub fn get(&self, phase: Phase) -> Option<Duration> {
        self.0[phase as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        Phase::ALL.iter().filter_map(|p| self.get(*p).map(|d| (*p, d)))
    }
}

/// ICMP echo statistics of one probe.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EchoStats {
    pub sent: u32,
    pub received: u32,
    pub rtt_min: Option<Duration>,
    pub rtt_avg: Option<Duration>,
    pub rtt_max: Option<Duration>,
}

impl EchoStats {
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        f64::from(self.sent - self.received.min(self.sent)) / f64::from(self.sent)
    }
}

/// The measurement one probe produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `None` means the probe succeeded.
    pub failure: Option<Failure>,
    /// Wall time from start to verdict.
    pub elapsed: Duration,
    pub phases: Phases,
    /// ICMP only.
    pub echo: Option<EchoStats>,
    /// Expiry of the peer's leaf certificate (Unix seconds): tls and https.
    pub cert_expiry: Option<i64>,
    /// Test calls only: post-dial delay and setup time.
    pub call: Option<sip::call::CallStats>,
    /// Test messages only: submit, delivery report and delivery times.
    pub sms: Option<sms::SmsStats>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn result_label(&self) -> &'static str {
        match &self.failure {
            None => "success",
            Some(f) => f.kind.label(),
        }
    }
}

/// Resources shared by all probes: one ICMP socket per address family and binding, HTTP
/// clients are per target (built by the scheduler from the spec).
pub struct Probers {
    pub icmp: icmp::IcmpClients,
    pub http: http::HttpClients,
    /// Shared with the HTTP server, which records the pushes.
    pub heartbeats: std::sync::Arc<heartbeat::Heartbeats>,
    /// Shared with the consignment poller, which records every tracking request.
    pub postal: std::sync::Arc<postal::ApiHealth>,
    /// Test messages in flight, shared with the HTTP server (delivery reports, inbound SMS).
    pub sms: std::sync::Arc<sms::SmsHub>,
}

impl Probers {
    pub fn new() -> Probers {
        Probers::with_heartbeats(std::sync::Arc::default())
    }

    pub fn with_heartbeats(heartbeats: std::sync::Arc<heartbeat::Heartbeats>) -> Probers {
        Probers {
            icmp: icmp::IcmpClients::default(),
            http: http::HttpClients::default(),
            heartbeats,
            postal: std::sync::Arc::default(),
            sms: std::sync::Arc::default(),
        }
    }
}

impl Default for Probers {
    fn default() -> Self {
        Probers::new()
    }
}

/// Per-target state a probe kind may keep between runs (e.g. an HTTP client).
pub enum Prepared {
    None,
    /// A TCP target's address when it is written as an IP address: no parse at every probe.
    Addr(std::net::SocketAddr),
    Http(http::PreparedHttp),
    Tls(tls::PreparedTls),
}

/// What tells one version of a file from another without reading it: modification time, size,
/// inode (a file replaced by rename has a new one) and change time (which `cp -p` or
/// `rsync -t` cannot set back).
pub type FileStamp = (std::time::SystemTime, u64, u64, i64, i64);

/// The stamp of `path`, `None` if it cannot be read.
pub fn file_stamp(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// The `ca_file` of an HTTP or TLS target: its CA roots are read when the target is prepared,
/// so a reload must prepare it again when the file changed, even if its config did not.
pub fn ca_file(spec: &ProbeSpec) -> Option<&std::path::Path> {
    match spec {
        ProbeSpec::Http(h) => h.ca_file.as_deref(),
        ProbeSpec::Tls(t) => t.ca_file.as_deref(),
        _ => None,
    }
}

/// Builds what a target needs before its first probe; errors are setup failures reported
/// per probe (e.g. an unreadable `ca_file`), never panics.
pub fn prepare(spec: &ProbeSpec, binding: &Binding, probers: &Probers) -> Result<Prepared, Failure> {
    match spec {
        ProbeSpec::Http(h) => http::prepare(h, binding, &probers.http).map(Prepared::Http),
        ProbeSpec::Tls(t) => tls::prepare(t).map(Prepared::Tls),
        ProbeSpec::Tcp(t) => {
            Ok(t.host.parse::<IpAddr>().map_or(Prepared::None, |ip| Prepared::Addr((ip, t.port).into())))
        }
        ProbeSpec::Icmp(_)
        | ProbeSpec::Dns(_)
        | ProbeSpec::Sip(_)
        | ProbeSpec::Heartbeat(_)
        | ProbeSpec::Postal(_)
        | ProbeSpec::Call(_)
        | ProbeSpec::Sms(_) => Ok(Prepared::None),
    }
}

/// Runs one probe. Never takes much longer than `timeout`: the scheduler also wraps it in a
/// hard deadline as a safety net.
pub async fn run(
    spec: &ProbeSpec,
    prepared: &Prepared,
    binding: &Binding,
    probers: &Probers,
    ident: u16,
    timeout: Duration,
) -> Outcome {
    match spec {
        ProbeSpec::Icmp(s) => icmp::probe(s, binding, &probers.icmp, ident, timeout).await,
        ProbeSpec::Tcp(s) => {
            let addr = match prepared {
                Prepared::Addr(a) => Some(*a),
                _ => None,
            };
            tcp::probe(s, addr, binding, timeout).await
        }
        ProbeSpec::Http(s) => match prepared {
            // Boxed, as every kind below but the three cheapest: the future of `run` is as large
            // as its largest arm, and each probe task is allocated at that size.
            Prepared::Http(p) => Box::pin(http::probe(s, p, timeout)).await,
            _ => Outcome {
                failure: Some(Failure::new(FailureKind::Setup, "HTTP client not prepared")),
                ..Outcome::default()
            },
        },
        ProbeSpec::Dns(s) => dns::probe(s, binding, timeout).await,
        ProbeSpec::Sip(s) => Box::pin(sip::probe(s, binding, timeout)).await,
        ProbeSpec::Heartbeat(s) => heartbeat::probe(s, &probers.heartbeats),
        ProbeSpec::Postal(s) => Box::pin(postal::probe(s, &probers.postal, timeout)).await,
        ProbeSpec::Call(s) => Box::pin(sip::call::probe(s, binding, timeout)).await,
        ProbeSpec::Sms(s) => Box::pin(sms::probe(s, &probers.sms, timeout)).await,
        ProbeSpec::Tls(s) => match prepared {
            Prepared::Tls(p) => Box::pin(tls::probe(s, p, binding, timeout)).await,
            _ => Outcome {
                failure: Some(Failure::new(FailureKind::Setup, "TLS client not prepared")),
                ..Outcome::default()
            },
        },
    }
}

/// When a probe started at `start` must have its verdict.
fn deadline(start: Instant, timeout: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(start + timeout)
}

/// Turns a probe's exchange, run under [`deadline`], into its outcome. `out` holds the phases the
/// exchange recorded; on timeout the failure names the first of `phases` not reached.
fn conclude(
    mut out: Outcome,
    r: Result<Result<(), Failure>, tokio::time::error::Elapsed>,
    start: Instant,
    timeout: Duration,
    phases: &[Phase],
) -> Outcome {
    out.failure = match r {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some(f),
        Err(_) => {
            let phase = phases.iter().copied().find(|p| out.phases.get(*p).is_none()).or(phases.last().copied());
            Some(Failure::timeout(phase.unwrap_or(Phase::Processing), timeout))
        }
    };
    out.elapsed = start.elapsed();
    out
}

/// `1.5s`, `250ms`, `2m` — for messages.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) && ms < 60_000 {
        format!("{}s", ms / 1000)
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s >= 3600 {
            format!("{}h{}m", s / 3600, (s % 3600) / 60)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{}m{}s", s / 60, s % 60)
        }
    }
}

/// Resolves `host` (an IP literal or a name) to one address, preferring the family of
/// `source` when one is bound.
pub async fn resolve_one(host: &str, port: u16, binding: &Binding) -> Result<std::net::SocketAddr, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    // Boxed: names are the rare case, and their lookup would otherwise enlarge every probe.
    let addrs = Box::pin(tokio::net::lookup_host((host, port)))
        .await
        .map_err(|e| Failure::new(FailureKind::Resolve, format!("cannot resolve {host}: {e}")))?;
    let mut first = None;
    for a in addrs {
        match binding.source {
            Some(src) if src.is_ipv4() != a.is_ipv4() => {}
            _ => return Ok(a),
        }
        first.get_or_insert(a);
    }
    first.ok_or_else(|| Failure::new(FailureKind::Resolve, format!("{host} has no address")))
}

/// A UDP socket from `binding` connected to `addr`, and its local address (SIP puts it in Via and
/// Contact). Shared by the UDP kinds (DNS, SIP, test calls).
pub async fn udp_socket(addr: SocketAddr, binding: &Binding) -> Result<(tokio::net::UdpSocket, SocketAddr), Failure> {
    let local = match binding.source {
        Some(src) => SocketAddr::new(src, 0),
        None if addr.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = tokio::net::UdpSocket::bind(local).await.map_err(|e| Failure::io(&format!("bind {local}"), &e))?;
    if let Some(dev) = &binding.interface {
        sock.bind_device(Some(dev.as_bytes())).map_err(|e| Failure::io(&format!("bind to device {dev}"), &e))?;
    }
    sock.connect(addr).await.map_err(|e| Failure::io(&format!("connect {addr}"), &e))?;
    let local = sock.local_addr().map_err(|e| Failure::io("local address", &e))?;
    Ok((sock, local))
}
