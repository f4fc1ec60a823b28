//! DNS: one query to a given server (UDP, falling back to TCP on truncation, or TCP only),
//! checking the response code and, optionally, the answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::{Binding, Failure, FailureKind, Outcome, Phase, conclude, deadline};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    pub server: SocketAddr,
    pub query: Name,
    pub record: RecordType,
    pub transport: DnsTransport,
    /// Response code that counts as success (default NOERROR).
    pub expect_rcode: ResponseCode,
    /// Each of these must be the text of one answer record's data (e.g. `"127.0.0.9"`).
    pub expect_answer: Vec<String>,
    /// With NOERROR, an empty answer section fails unless this is set.
    pub allow_empty: bool,
    pub recursion_desired: bool,
}

/// Largest DNS message we accept over UDP (EDNS-sized); TCP answers are bounded by their
/// 16-bit length prefix.
const MAX_UDP: usize = 4096;

pub async fn probe(spec: &DnsSpec, binding: &Binding, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let r = tokio::time::timeout_at(deadline(start, timeout), exchange(spec, binding, &mut out)).await;
    conclude(out, r, start, timeout, &[Phase::Processing])
}

async fn exchange(spec: &DnsSpec, binding: &Binding, out: &mut Outcome) -> Result<(), Failure> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = spec.recursion_desired;
    msg.add_query(Query::query(spec.query.clone(), spec.record));
    let id = msg.metadata.id;
    let wire = msg.to_vec().map_err(|e| Failure::new(FailureKind::Setup, format!("cannot encode query: {e}")))?;

    let t = Instant::now();
    let mut answer = match spec.transport {
        DnsTransport::Udp => udp(spec.server, binding, &wire, id).await?,
        DnsTransport::Tcp => tcp(spec.server, binding, &wire, id).await?,
    };
    if answer.metadata.truncation && spec.transport == DnsTransport::Udp {
        answer = tcp(spec.server, binding, &wire, id).await?;
    }
    out.phases.set(Phase::Processing, t.elapsed());
    check(spec, &answer)
}

/// Checks a decoded answer against the spec. Pure: tested and fuzzed without a server.
pub fn check(spec: &DnsSpec, answer: &Message) -> Result<(), Failure> {
    let rcode = answer.metadata.response_code;
    if rcode != spec.expect_rcode {
        return Err(Failure::new(
            FailureKind::Rcode,
            format!("rcode {}, expected {}", rcode_name(rcode), rcode_name(spec.expect_rcode)),
        ));
    }
    let wanted: Vec<&hickory_proto::rr::Record> =
        answer.answers.iter().filter(|r| r.record_type() == spec.record || spec.record == RecordType::ANY).collect();
    if spec.expect_rcode == ResponseCode::NoError && wanted.is_empty() && !spec.allow_empty {
        return Err(Failure::new(FailureKind::Answer, format!("no {} record for {}", spec.record, spec.query)));
    }
    for expected in &spec.expect_answer {
        let found = wanted.iter().any(|r| r.data.to_string() == *expected);
        if !found {
            let got: Vec<String> = wanted.iter().take(5).map(|r| r.data.to_string()).collect();
            return Err(Failure::new(FailureKind::Answer, format!("answer {expected:?} missing (got {got:?})")));
        }
    }
    Ok(())
}

pub fn rcode_name(r: ResponseCode) -> String {
    match u16::from(r) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// Parses `NOERROR`, `NXDOMAIN`, … (case-insensitive) for the config.
pub fn parse_rcode(s: &str) -> Option<ResponseCode> {
    let n = match s.to_ascii_uppercase().as_str() {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        _ => return None,
    };
    Some(ResponseCode::from_low(n))
}

/// Decodes an answer; `None` when it answers another query (a different id). Public for fuzzing.
pub fn decode(buf: &[u8], id: u16) -> Result<Option<Message>, Failure> {
    let msg = Message::from_vec(buf)
        .map_err(|e| Failure::new(FailureKind::Protocol, format!("malformed DNS answer: {e}")))?;
    if msg.metadata.id != id {
        return Ok(None);
    }
    Ok(Some(msg))
}

async fn udp(server: SocketAddr, binding: &Binding, wire: &[u8], id: u16) -> Result<Message, Failure> {
    let local = match binding.source {
        Some(src) => SocketAddr::new(src, 0),
        None if server.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = UdpSocket::bind(local).await.map_err(|e| Failure::io(&format!("bind {local}"), &e))?;
    if let Some(dev) = &binding.interface {
        sock.bind_device(Some(dev.as_bytes())).map_err(|e| Failure::io(&format!("bind to device {dev}"), &e))?;
    }
    sock.connect(server).await.map_err(|e| Failure::io(&format!("connect {server}"), &e))?;
    sock.send(wire).await.map_err(|e| Failure::io("send query", &e))?;
    let mut buf = vec![0u8; MAX_UDP];
    // Answers with another id (late answers to an earlier query, spoofing) are skipped;
    // the probe's deadline bounds this loop.
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| Failure::io("receive answer", &e))?;
        if let Some(m) = decode(&buf[..n], id)? {
            return Ok(m);
        }
    }
}

async fn tcp(server: SocketAddr, binding: &Binding, wire: &[u8], id: u16) -> Result<Message, Failure> {
    let mut stream =
        super::tcp::connect(server, binding).await.map_err(|e| Failure::io(&format!("connect {server}"), &e))?;
    let len = u16::try_from(wire.len()).map_err(|_| Failure::new(FailureKind::Setup, "query too long for TCP"))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await.map_err(|e| Failure::io("send query", &e))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(|e| Failure::io("read answer length", &e))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.map_err(|e| Failure::io("read answer", &e))?;
    decode(&buf, id)?.ok_or_else(|| Failure::new(FailureKind::Protocol, "answer with another query id"))
}
