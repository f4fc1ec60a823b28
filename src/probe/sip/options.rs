//! SIP: an OPTIONS request to a server or trunk over UDP (retransmitted on RFC 3261 timers within
//! the probe timeout) or TCP; success on a final response whose code is expected (default any
//! 2xx), or on any response when `any_response` is set.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire;
use crate::text::nonce;

use crate::probe::{Binding, Failure, FailureKind, Outcome, Phase, conclude, deadline, resolve_one};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SipSpec {
    pub host: String,
    pub port: u16,
    pub transport: SipTransport,
    /// Final response codes that count as success; empty means any 2xx.
    pub expect_status: Vec<u16>,
    /// Any response at all proves the server is alive (e.g. trunks that answer 403/405).
    pub any_response: bool,
}

/// RFC 3261 T1 and T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// A SIP response larger than this is not one we need.
const MAX_RESPONSE: usize = 16 * 1024;

/// The OPTIONS request, with the headers real servers (kamailio, Asterisk, SBCs) require.
pub fn request(spec: &SipSpec, local: SocketAddr, call_id: &str, branch: &str, tag: &str) -> String {
    let transport = match spec.transport {
        SipTransport::Udp => "UDP",
        SipTransport::Tcp => "TCP",
    };
    let host = if spec.host.contains(':') { format!("[{}]", spec.host) } else { spec.host.clone() };
    let local_host = match local {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!(
        "OPTIONS sip:{host}:{port} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local_host}:{lport};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:thongsuot@{local_host}>;tag={tag}\r\n\
         To: <sip:{host}:{port}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {CSEQ} OPTIONS\r\n\
         Contact: <sip:thongsuot@{local_host}:{lport}>\r\n\
         Accept: application/sdp\r\n\
         User-Agent: thongsuot/{version}\r\n\
         Content-Length: 0\r\n\r\n",
        port = spec.port,
        lport = local.port(),
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The CSeq of our one OPTIONS request.
const CSEQ: u32 = 1;

/// (code, reason) of a datagram answering our OPTIONS (Call-ID and `CSeq: 1 OPTIONS`); None for
/// anything else (pure, for tests).
pub fn parse_response(buf: &[u8], call_id: &str) -> Option<(u16, String)> {
    wire::response_to(buf, call_id, CSEQ, "OPTIONS").map(|r| (r.code, r.reason))
}

pub use crate::probe::udp_socket;

pub async fn probe(spec: &SipSpec, binding: &Binding, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let r = tokio::time::timeout_at(deadline(start, timeout), exchange(spec, binding, &mut out, start)).await;
    conclude(out, r, start, timeout, &[Phase::Processing])
}

fn verdict(spec: &SipSpec, code: u16, reason: &str) -> Result<(), Failure> {
    let ok = spec.any_response
        || if spec.expect_status.is_empty() { (200..300).contains(&code) } else { spec.expect_status.contains(&code) };
    if ok { Ok(()) } else { Err(Failure::new(FailureKind::Status, format!("SIP {code} {reason}"))) }
}

async fn exchange(spec: &SipSpec, binding: &Binding, out: &mut Outcome, start: Instant) -> Result<(), Failure> {
    let addr = resolve_one(&spec.host, spec.port, binding).await?;
    out.phases.set(Phase::Resolve, start.elapsed());
    let (call_id, branch, tag) = (format!("{}@thongsuot", nonce()), nonce(), nonce());
    match spec.transport {
        SipTransport::Udp => {
            let (sock, local) = udp_socket(addr, binding).await?;
            let msg = request(spec, local, &call_id, &branch, &tag);
            let t = Instant::now();
            sock.send(msg.as_bytes()).await.map_err(|e| Failure::io("send OPTIONS", &e))?;
            let mut wait = T1;
            let mut buf = vec![0u8; MAX_RESPONSE];
            // Retransmit on T1, 2·T1, … capped at T2 until a response; the probe's deadline ends it.
            loop {
                match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
                    Ok(Ok(n)) => {
                        if let Some((code, reason)) = parse_response(&buf[..n], &call_id) {
                            if code >= 200 || spec.any_response {
                                out.phases.set(Phase::Processing, t.elapsed());
                                return verdict(spec, code, &reason);
                            }
                            // Provisional: the server has it; wait without retransmitting faster.
                            wait = T2;
                        }
                    }
                    Ok(Err(e)) => return Err(Failure::io("receive", &e)),
                    Err(_) => {
                        sock.send(msg.as_bytes()).await.map_err(|e| Failure::io("retransmit OPTIONS", &e))?;
                        wait = (wait * 2).min(T2);
                    }
                }
            }
        }
        SipTransport::Tcp => {
            let t = Instant::now();
            let mut stream = crate::probe::tcp::connect(addr, binding)
                .await
                .map_err(|e| Failure::io(&format!("connect {addr}"), &e))?;
            out.phases.set(Phase::Connect, t.elapsed());
            let local = stream.local_addr().map_err(|e| Failure::io("local address", &e))?;
            let msg = request(spec, local, &call_id, &branch, &tag);
            let t = Instant::now();
            stream.write_all(msg.as_bytes()).await.map_err(|e| Failure::io("send OPTIONS", &e))?;
            let mut buf = Vec::with_capacity(2048);
            let mut chunk = [0u8; 2048];
            // Each read adds bytes and the buffer is bounded, so this ends; the deadline too.
            loop {
                let n = stream.read(&mut chunk).await.map_err(|e| Failure::io("receive", &e))?;
                if n == 0 {
                    return Err(Failure::new(FailureKind::Reset, "connection closed before a final response"));
                }
                buf.extend_from_slice(&chunk[..n]);
                // Every whole message in the buffer, framed by its Content-Length: a body cannot
                // pass for the next message. Each turn drains at least one byte.
                loop {
                    match wire::parse_stream(&buf) {
                        wire::Framed::Incomplete => break,
                        wire::Framed::Invalid(e, skip) => {
                            tracing::debug!(server = %addr, "SIP: skipped bytes that are not a SIP message: {e}");
                            buf.drain(..skip);
                        }
                        wire::Framed::Message(m, used) => {
                            buf.drain(..used);
                            if let Some(r) = wire::ours(m, &call_id, CSEQ, "OPTIONS")
                                && (r.code >= 200 || spec.any_response)
                            {
                                out.phases.set(Phase::Processing, t.elapsed());
                                return verdict(spec, r.code, &r.reason);
                            }
                        }
                    }
                }
                if buf.len() > MAX_RESPONSE {
                    return Err(Failure::new(FailureKind::Protocol, "oversized SIP response"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_our_responses() {
        let r = b"SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: abc@thongsuot\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(r, "abc@thongsuot"), Some((200, "OK".into())));
        assert_eq!(parse_response(r, "other"), None);
        assert_eq!(
            parse_response(b"SIP/2.0 503 Service Unavailable\r\ni: z\r\nCSeq: 1 OPTIONS\r\n\r\n", "z"),
            Some((503, "Service Unavailable".into()))
        );
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n", "z"), None);
        let other_transaction = b"SIP/2.0 200 OK\r\ni: z\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(parse_response(other_transaction, "z"), None);
        assert_eq!(parse_response(b"SIP/2.0 999 no\r\ni: z\r\n\r\n", "z"), None);
        assert_eq!(parse_response(&[0xff, 0xfe], "z"), None);
    }
}
