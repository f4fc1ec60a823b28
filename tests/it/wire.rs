//! Answers that are not ours, or are ours in an unusual but valid shape (issue #20): small
//! misbehaving DNS and SIP peers on loopback, and the probes called directly through the library.
//! A DNS or SIP probe must take only the answer to what it asked, skip everything else while its
//! deadline lasts, and read the RFC's liberal forms (lower-case version, folding, compact names).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use thongsuot::probe::dns::{self, DnsSpec, DnsTransport};
use thongsuot::probe::sip::{self, SipSpec, SipTransport};
use thongsuot::probe::{Binding, FailureKind, Outcome};

use crate::support::kind;

/// How long a responder waits for the next request before it gives up; bounds its task.
const IDLE: Duration = Duration::from_secs(5);
/// Requests a responder answers at most (a probe sends one; SIP over UDP retransmits a few).
const MAX_REQUESTS: usize = 20;

fn detail(o: &Outcome) -> &str {
    o.failure.as_ref().map_or("", |f| f.detail.as_str())
}

// ---------------------------------------------------------------------------------------------
// DNS

fn dns_spec(server: SocketAddr, transport: DnsTransport) -> DnsSpec {
    DnsSpec {
        server,
        query: Name::from_ascii("thi.example.vn").expect("name"),
        record: RecordType::A,
        transport,
        expect_rcode: hickory_proto::op::ResponseCode::NoError,
        expect_answer: Vec::new(),
        allow_empty: false,
        recursion_desired: true,
    }
}

/// A response to `query` with id shifted by `id_delta`, for `name`, with one A record.
fn dns_answer(query: &[u8], id_delta: u16, name: &str, ip: [u8; 4]) -> Vec<u8> {
    let q = Message::from_vec(query).expect("the probe's query parses");
    let mut m = Message::response(q.metadata.id.wrapping_add(id_delta), OpCode::Query);
    let name = Name::from_ascii(name).expect("name");
    m.add_query(Query::query(name.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(name, 60, RData::A(A(Ipv4Addr::from(ip)))));
    m.to_vec().expect("encode")
}

/// The datagrams a hostile server sends before the real answer: one with another id, one that
/// does not parse, one answering another name with our id.
fn dns_decoys(query: &[u8]) -> Vec<Vec<u8>> {
    vec![
        dns_answer(query, 1, "thi.example.vn", [127, 0, 0, 66]),
        vec![query[0], query[1], 0xde, 0xad, 0xbe, 0xef],
        dns_answer(query, 0, "other.example.vn", [127, 0, 0, 67]),
    ]
}

/// A UDP DNS server that answers each query with the datagrams `reply` makes of it, in order.
async fn udp_dns(reply: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        for _ in 0..MAX_REQUESTS {
            let Ok(Ok((n, peer))) = tokio::time::timeout(IDLE, sock.recv_from(&mut buf)).await else { return };
            for d in reply(&buf[..n]) {
                let _ = sock.send_to(&d, peer).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn dns_query_echoed_back_is_not_an_answer() {
    // A reflector: the query itself has our id and question, and NOERROR with no answers.
    let addr = udp_dns(|q| vec![q.to_vec()]).await;
    let spec = DnsSpec { allow_empty: true, ..dns_spec(addr, DnsTransport::Udp) };
    let start = Instant::now();
    let o = dns::probe(&spec, &Binding::default(), Duration::from_secs(1)).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "{o:?}");
    assert!(detail(&o).contains("1 datagram that was not the answer skipped"), "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "bounded: {:?}", start.elapsed());
}

#[tokio::test]
async fn dns_answer_to_another_name_is_not_ours() {
    let addr = udp_dns(|q| vec![dns_answer(q, 0, "other.example.vn", [127, 0, 0, 9])]).await;
    let o = dns::probe(&dns_spec(addr, DnsTransport::Udp), &Binding::default(), Duration::from_secs(1)).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "{o:?}");
    assert!(detail(&o).contains("skipped"), "{o:?}");
}

#[tokio::test]
async fn dns_udp_skips_decoys_and_waits_for_the_answer() {
    let addr = udp_dns(|q| {
        let mut d = dns_decoys(q);
        // The name in another case is still our question (names compare case-insensitively).
        d.push(dns_answer(q, 0, "THI.Example.VN", [127, 0, 0, 9]));
        d
    })
    .await;
    let spec = DnsSpec { expect_answer: vec!["127.0.0.9".into()], ..dns_spec(addr, DnsTransport::Udp) };
    let o = dns::probe(&spec, &Binding::default(), Duration::from_secs(2)).await;
    assert!(o.ok(), "{o:?}");
}

#[tokio::test]
async fn dns_tcp_skips_decoys_and_reads_the_next_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok(Ok((mut s, _))) = tokio::time::timeout(IDLE, listener.accept()).await else { return };
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut q).await.is_err() {
            return;
        }
        let mut d = dns_decoys(&q);
        d.push(dns_answer(&q, 0, "thi.example.vn", [127, 0, 0, 9]));
        for m in d {
            let Ok(l) = u16::try_from(m.len()) else { return };
            let _ = s.write_all(&l.to_be_bytes()).await;
            let _ = s.write_all(&m).await;
        }
        // Keep the stream open until the probe has read it (it closes its side).
        let _ = tokio::time::timeout(IDLE, s.read(&mut len)).await;
    });
    let spec = DnsSpec { expect_answer: vec!["127.0.0.9".into()], ..dns_spec(addr, DnsTransport::Tcp) };
    let o = dns::probe(&spec, &Binding::default(), Duration::from_secs(2)).await;
    assert!(o.ok(), "{o:?}");
}

// ---------------------------------------------------------------------------------------------
// SIP OPTIONS

fn sip_spec(addr: SocketAddr, transport: SipTransport) -> SipSpec {
    SipSpec {
        host: addr.ip().to_string(),
        port: addr.port(),
        transport,
        expect_status: Vec::new(),
        any_response: false,
    }
}

/// The value of header `name` in a request we sent (our requests use full names and CRLF).
fn header_of(request: &str, name: &str) -> String {
    request
        .split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A UDP SIP peer that answers each request with the datagrams `reply` makes of it.
async fn udp_sip(reply: impl Fn(&str) -> Vec<String> + Send + 'static) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..MAX_REQUESTS {
            let Ok(Ok((n, peer))) = tokio::time::timeout(IDLE, sock.recv_from(&mut buf)).await else { return };
            for d in reply(&String::from_utf8_lossy(&buf[..n])) {
                let _ = sock.send_to(d.as_bytes(), peer).await;
            }
        }
    });
    addr
}

/// A 200 to `req` with `status` as its status line and the Call-ID/CSeq given (`None`: echoed).
fn sip_ok(req: &str, status: &str, call_id: Option<&str>, cseq: Option<&str>) -> String {
    format!(
        "{status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=srv1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header_of(req, "Via"),
        header_of(req, "From"),
        header_of(req, "To"),
        call_id.map_or_else(|| header_of(req, "Call-ID"), str::to_string),
        cseq.map_or_else(|| header_of(req, "CSeq"), str::to_string),
    )
}

async fn options(addr: SocketAddr, transport: SipTransport, timeout: Duration) -> Outcome {
    sip::probe(&sip_spec(addr, transport), &Binding::default(), timeout).await
}

#[tokio::test]
async fn sip_version_is_case_insensitive() {
    let addr = udp_sip(|req| vec![sip_ok(req, "sip/2.0 200 OK", None, None)]).await;
    let o = options(addr, SipTransport::Udp, Duration::from_secs(2)).await;
    assert!(o.ok(), "{o:?}");
}

#[tokio::test]
async fn sip_folded_header_and_compact_call_id() {
    let addr = udp_sip(|req| {
        // The Call-ID in compact form and folded onto a continuation line, the Via folded too.
        vec![format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\n ;branch=z9hG4bKfold\r\nTo: {};tag=x\r\n\
             i:\r\n\t{}\r\nCSeq: {}\r\nl: 0\r\n\r\n",
            header_of(req, "To"),
            header_of(req, "Call-ID"),
            header_of(req, "CSeq"),
        )]
    })
    .await;
    let o = options(addr, SipTransport::Udp, Duration::from_secs(2)).await;
    assert!(o.ok(), "{o:?}");
}

#[tokio::test]
async fn sip_leading_crlfs() {
    let crlfs = udp_sip(|req| vec![format!("\r\n\r\n{}", sip_ok(req, "SIP/2.0 200 OK", None, None))]).await;
    let o = options(crlfs, SipTransport::Udp, Duration::from_secs(2)).await;
    assert!(o.ok(), "{o:?}");
}

#[tokio::test]
async fn sip_lf_only_line_ends() {
    let lf = udp_sip(|req| vec![sip_ok(req, "SIP/2.0 200 OK", None, None).replace("\r\n", "\n")]).await;
    let o = options(lf, SipTransport::Udp, Duration::from_secs(2)).await;
    assert!(o.ok(), "LF-only: {o:?}");
}

#[tokio::test]
async fn sip_response_to_another_transaction_is_not_ours() {
    // Our Call-ID, but the CSeq of another request: a stale or forged answer.
    let cseq = udp_sip(|req| {
        vec![
            sip_ok(req, "SIP/2.0 200 OK", None, Some("2 OPTIONS")),
            sip_ok(req, "SIP/2.0 200 OK", None, Some("1 INVITE")),
        ]
    })
    .await;
    let o = options(cseq, SipTransport::Udp, Duration::from_millis(1500)).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "wrong CSeq: {o:?}");

    let other = udp_sip(|req| vec![sip_ok(req, "SIP/2.0 200 OK", Some("someone-else@example.vn"), None)]).await;
    let o = options(other, SipTransport::Udp, Duration::from_millis(1500)).await;
    assert_eq!(kind(&o), Some(FailureKind::Timeout), "other Call-ID: {o:?}");
}

#[tokio::test]
async fn sip_tcp_skips_another_response_with_a_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok(Ok((mut s, _))) = tokio::time::timeout(IDLE, listener.accept()).await else { return };
        let mut buf = [0u8; 4096];
        let Ok(Ok(n)) = tokio::time::timeout(IDLE, s.read(&mut buf)).await else { return };
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        // First another call's 200 whose body looks like a 503 of ours: only its Content-Length
        // says the 503 is not a message. Then our 200, with LF-only line ends.
        let body = format!(
            "\r\nSIP/2.0 503 Fake\r\nCall-ID: {}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            header_of(&req, "Call-ID")
        );
        let other = format!(
            "SIP/2.0 200 OK\r\nCall-ID: other@x\r\nCSeq: 1 OPTIONS\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let ours = sip_ok(&req, "SIP/2.0 200 OK", None, None).replace("\r\n", "\n");
        let _ = s.write_all(format!("{other}{ours}").as_bytes()).await;
        let _ = tokio::time::timeout(IDLE, s.read(&mut buf)).await;
    });
    let o = options(addr, SipTransport::Tcp, Duration::from_secs(2)).await;
    assert!(o.ok(), "{o:?}");
}
