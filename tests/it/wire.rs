//! Answers that are not ours (issue #20): small misbehaving DNS peers on loopback, and the probe
//! called directly through the library. It must take only the answer to what it asked and skip
//! everything else while its deadline lasts.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use thongsuot::probe::dns::{self, DnsSpec, DnsTransport};
use thongsuot::probe::{Binding, FailureKind, Outcome};

/// How long a responder waits for the next request before it gives up; bounds its task.
const IDLE: Duration = Duration::from_secs(5);
/// Requests a responder answers at most (a probe sends one).
const MAX_REQUESTS: usize = 20;

fn kind(o: &Outcome) -> Option<FailureKind> {
    o.failure.as_ref().map(|f| f.kind)
}

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
