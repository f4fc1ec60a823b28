//! DNS: one query to a given server (UDP, falling back to TCP on truncation, or TCP only),
//! checking the response code and, optionally, the answers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let mut skipped = Skipped::default();
    let r = tokio::time::timeout_at(deadline(start, timeout), exchange(spec, binding, &mut out, &mut skipped)).await;
    let mut out = conclude(out, r, start, timeout, &[Phase::Processing]);
    // A bare timeout would hide that the server did send something: say what was skipped.
    if let Some(f) = out.failure.as_mut()
        && f.kind == FailureKind::Timeout
    {
        *f = skipped.on_timeout(f.clone(), timeout);
    }
    out
}

async fn exchange(spec: &DnsSpec, binding: &Binding, out: &mut Outcome, skipped: &mut Skipped) -> Result<(), Failure> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = spec.recursion_desired;
    msg.add_query(Query::query(spec.query.clone(), spec.record));
    let asked = Asked { id: msg.metadata.id, name: spec.query.clone(), record: spec.record, class: DNSClass::IN };
    let wire = msg.to_vec().map_err(|e| Failure::new(FailureKind::Setup, format!("cannot encode query: {e}")))?;

    let t = Instant::now();
    let mut answer = match spec.transport {
        DnsTransport::Udp => udp(spec.server, binding, &wire, &asked, skipped).await?,
        DnsTransport::Tcp => tcp(spec.server, binding, &wire, &asked, skipped).await?,
    };
    if answer.metadata.truncation && spec.transport == DnsTransport::Udp {
        answer = tcp(spec.server, binding, &wire, &asked, skipped).await?;
    }
    out.phases.set(Phase::Processing, t.elapsed());
    check(spec, &answer)
}

/// What we asked: a message is its answer only if it is a response with this id and this one
/// question. The id alone is 16 bits a reflector, a confused middlebox or a spoofer can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub id: u16,
    pub name: Name,
    pub record: RecordType,
    pub class: DNSClass,
}

/// Why a message received is not the answer (logged at debug, counted for the timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAnswer {
    Malformed(String),
    /// QR=0: our own query reflected back, or another client's query.
    NotResponse,
    OtherId(u16),
    /// Our id, another question (or none, or several).
    OtherQuestion(String),
}

impl std::fmt::Display for NotAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAnswer::Malformed(e) => write!(f, "malformed DNS answer: {e}"),
            NotAnswer::NotResponse => f.write_str("a query (QR=0), not a response"),
            NotAnswer::OtherId(id) => write!(f, "a response with id {id}"),
            NotAnswer::OtherQuestion(q) => write!(f, "a response to another question ({q})"),
        }
    }
}

/// Messages received and skipped while waiting for the answer.
#[derive(Debug, Default)]
struct Skipped {
    count: u32,
    malformed: u32,
    /// Some came over TCP (the fallback on truncation, or TCP only): "messages", not "datagrams".
    tcp: bool,
    last: Option<NotAnswer>,
}

impl Skipped {
    fn note(&mut self, why: NotAnswer, server: SocketAddr, tcp: bool) {
        tracing::debug!(%server, tcp, "DNS: skipped a message that is not the answer: {why}");
        self.tcp |= tcp;
        self.count = self.count.saturating_add(1);
        if matches!(why, NotAnswer::Malformed(_)) {
            self.malformed = self.malformed.saturating_add(1);
        }
        self.last = Some(why);
    }

    /// The failure for a probe whose deadline passed (`plain` is the generic timeout).
    fn on_timeout(&self, plain: Failure, timeout: Duration) -> Failure {
        let n = self.count;
        let noun = if self.tcp { "message" } else { "datagram" };
        let what = if n == 1 {
            format!("{noun} that was not the answer")
        } else {
            format!("{noun}s that were not the answer")
        };
        match &self.last {
            None => plain,
            // Only garbage came back: the server is there but broken, which says more than a
            // timeout (and keeps the kind such a server always had).
            Some(last @ NotAnswer::Malformed(_)) if self.malformed == n => Failure::new(
                FailureKind::Protocol,
                format!("{last} (no answer in {}; {n} {what} skipped)", super::fmt_duration(timeout)),
            ),
            Some(last) => Failure::new(
                FailureKind::Timeout,
                format!("no answer in {} ({n} {what} skipped; last: {last})", super::fmt_duration(timeout)),
            ),
        }
    }
}

/// Same name, compared label by label ignoring ASCII case (RFC 4343) and whether either is
/// written fully qualified (ours comes from the config, theirs from the wire).
fn same_name(a: &Name, b: &Name) -> bool {
    a.num_labels() == b.num_labels() && a.iter().zip(b.iter()).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The answer to `asked`, or why `buf` is not it (pure: tested and fuzzed without a server).
pub fn answer_to(buf: &[u8], asked: &Asked) -> Result<Message, NotAnswer> {
    let msg = Message::from_vec(buf).map_err(|e| NotAnswer::Malformed(e.to_string()))?;
    if msg.metadata.message_type != MessageType::Response {
        return Err(NotAnswer::NotResponse);
    }
    if msg.metadata.id != asked.id {
        return Err(NotAnswer::OtherId(msg.metadata.id));
    }
    match msg.queries.as_slice() {
        [q] if same_name(&q.name, &asked.name) && q.query_type == asked.record && q.query_class == asked.class => {
            Ok(msg)
        }
        // A truncated response may leave out the question (RFC 2181 is silent, some servers do);
        // it only sends us to TCP, where the full answer is checked again.
        [] if msg.metadata.truncation => Ok(msg),
        [q] => Err(NotAnswer::OtherQuestion(format!("{} {} {}", q.name, q.query_class, q.query_type))),
        qs => Err(NotAnswer::OtherQuestion(format!("{} questions", qs.len()))),
    }
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

/// Decodes a response to id `id` whatever its question; `None` for another id or a query
/// (QR=0). Kept for the fuzz targets, which have no question to match; the probe uses
/// [`answer_to`].
pub fn decode(buf: &[u8], id: u16) -> Result<Option<Message>, Failure> {
    let msg = Message::from_vec(buf)
        .map_err(|e| Failure::new(FailureKind::Protocol, format!("malformed DNS answer: {e}")))?;
    if msg.metadata.id != id || msg.metadata.message_type != MessageType::Response {
        return Ok(None);
    }
    Ok(Some(msg))
}

async fn udp(
    server: SocketAddr,
    binding: &Binding,
    wire: &[u8],
    asked: &Asked,
    skipped: &mut Skipped,
) -> Result<Message, Failure> {
    let (sock, _) = super::udp_socket(server, binding).await?;
    sock.send(wire).await.map_err(|e| Failure::io("send query", &e))?;
    let mut buf = vec![0u8; MAX_UDP];
    // Anything but the answer (late answers to an earlier query, reflections, spoofing,
    // garbage) is skipped; the probe's deadline bounds this loop.
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| Failure::io("receive answer", &e))?;
        match answer_to(&buf[..n], asked) {
            Ok(m) => return Ok(m),
            Err(why) => skipped.note(why, server, false),
        }
    }
}

async fn tcp(
    server: SocketAddr,
    binding: &Binding,
    wire: &[u8],
    asked: &Asked,
    skipped: &mut Skipped,
) -> Result<Message, Failure> {
    let mut stream =
        super::tcp::connect(server, binding).await.map_err(|e| Failure::io(&format!("connect {server}"), &e))?;
    let len = u16::try_from(wire.len()).map_err(|_| Failure::new(FailureKind::Setup, "query too long for TCP"))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await.map_err(|e| Failure::io("send query", &e))?;
    // Each message is framed by its length, so one that is not the answer is skipped whole and
    // the next is read; the probe's deadline bounds this loop.
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(|e| Failure::io("read answer length", &e))?;
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        stream.read_exact(&mut buf).await.map_err(|e| Failure::io("read answer", &e))?;
        match answer_to(&buf, asked) {
            Ok(m) => return Ok(m),
            Err(why) => skipped.note(why, server, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::OpCode;

    fn asked() -> Asked {
        Asked {
            id: 7,
            name: Name::from_ascii("thi.example.vn").expect("name"),
            record: RecordType::A,
            class: DNSClass::IN,
        }
    }

    fn response(id: u16, name: &str, record: RecordType) -> Vec<u8> {
        let mut m = Message::response(id, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), record));
        m.to_vec().expect("encode")
    }

    #[test]
    fn only_the_response_to_our_question_is_the_answer() {
        assert!(answer_to(&response(7, "THI.example.VN.", RecordType::A), &asked()).is_ok());
        assert_eq!(
            answer_to(&response(8, "thi.example.vn", RecordType::A), &asked()).err(),
            Some(NotAnswer::OtherId(8))
        );
        assert!(matches!(
            answer_to(&response(7, "other.example.vn", RecordType::A), &asked()),
            Err(NotAnswer::OtherQuestion(_))
        ));
        assert!(matches!(
            answer_to(&response(7, "thi.example.vn", RecordType::AAAA), &asked()),
            Err(NotAnswer::OtherQuestion(_))
        ));
        let mut query = Message::query();
        query.metadata.id = 7;
        query.add_query(Query::query(asked().name, RecordType::A));
        assert_eq!(answer_to(&query.to_vec().expect("encode"), &asked()).err(), Some(NotAnswer::NotResponse));
        assert!(matches!(answer_to(&[0, 7, 0x80], &asked()), Err(NotAnswer::Malformed(_))));
        // No question at all is only tolerated on a truncated response (it sends us to TCP).
        let mut bare = Message::response(7, OpCode::Query);
        assert!(matches!(answer_to(&bare.to_vec().expect("encode"), &asked()), Err(NotAnswer::OtherQuestion(_))));
        bare.metadata.truncation = true;
        assert!(answer_to(&bare.to_vec().expect("encode"), &asked()).is_ok());
    }
}
