//! Test calls: a minimal SIP user agent client over UDP places a call to a test number (INVITE
//! with an SDP offer), answers a digest challenge (401/407) once, waits for the answer, sends ACK,
//! holds the call for `hold`, and hangs up (BYE). It measures the post-dial delay (INVITE → first
//! 180/183) and the setup time (INVITE → 200). No media is sent. A call that is not answered
//! within the probe's timeout is cancelled (CANCEL). Failure reasons follow the final response:
//! busy (486, 600), unavailable (404, 410, 480, 484, 604), 5xx/6xx, timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::text::nonce;

use crate::probe::{Binding, Failure, FailureKind, Outcome, Phase, Secret, deadline, fmt_duration, resolve_one};

#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// `sip:user@host:port` as written.
    pub uri: String,
    pub host: String,
    pub port: u16,
    pub hold: Duration,
    /// Digest credentials (`username`, and the password from `password_env`).
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// What a call measured, for the histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallStats {
    pub post_dial_delay: Option<Duration>,
    pub setup: Option<Duration>,
}

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const MAX_MESSAGE: usize = 16 * 1024;

pub use super::wire::Response;
use super::wire::response_to;

/// A parameter of a `Digest` challenge; quoted values may hold commas (`qop="auth,auth-int"`).
fn param(challenge: &str, key: &str) -> Option<String> {
    let mut rest = challenge.trim().strip_prefix("Digest").unwrap_or(challenge).trim_start();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], q[end + 1..].trim_start().strip_prefix(',').unwrap_or(&q[end + 1..]))
            }
            None => match after.split_once(',') {
                Some((v, n)) => (v.trim(), n),
                None => (after.trim(), ""),
            },
        };
        if k.trim().trim_start_matches(',').trim().eq_ignore_ascii_case(key) {
            return Some(value.to_string());
        }
        rest = next.trim_start();
    }
    None
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` value answering a digest challenge (RFC 2617, MD5, qop auth or none).
pub fn authorization(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let realm = param(challenge, "realm")?;
    let nonce = param(challenge, "nonce")?;
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let opaque = param(challenge, "opaque").map(|o| format!(", opaque=\"{o}\"")).unwrap_or_default();
    let qop_auth = param(challenge, "qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    Some(if qop_auth {
        let nc = "00000001";
        let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\"{opaque}"
        )
    } else {
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5{opaque}"
        )
    })
}

/// The words of a failed call, by final response.
pub fn reason_word(code: u16) -> &'static str {
    match code {
        486 | 600 => "busy",
        404 | 410 | 480 | 484 | 604 => "unavailable",
        487 => "cancelled",
        403 | 603 => "declined",
        401 | 407 => "authentication failed",
        408 => "no answer",
        500..=599 => "server failure",
        _ => "refused",
    }
}

struct Dialog {
    call_id: String,
    from_tag: String,
    local: SocketAddr,
    uri: String,
    user: String,
}

impl Dialog {
    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch=z9hG4bK{branch};rport", self.local)
    }

    #[allow(clippy::too_many_arguments)]
    fn request(&self, method: &str, ruri: &str, branch: &str, cseq: u32, to: &str, extra: &str, body: &str) -> String {
        format!(
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: <sip:{}@{}>;tag={}\r\nTo: {to}\r\nCall-ID: {}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:{}@{}>\r\nUser-Agent: thongsuot/{}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.via(branch),
            self.user,
            self.local.ip(),
            self.from_tag,
            self.call_id,
            self.user,
            self.local,
            env!("CARGO_PKG_VERSION"),
            body.len()
        )
    }

    fn sdp(&self) -> String {
        let ip = self.local.ip();
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        format!(
            "v=0\r\no=thongsuot 1 1 IN {family} {ip}\r\ns=thongsuot test call\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
             m=audio 9 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
        )
    }
}

pub async fn probe(spec: &CallSpec, binding: &Binding, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let mut stats = CallStats::default();
    let r = call(spec, binding, &mut out, &mut stats, start, timeout).await;
    out.failure = r.err();
    out.elapsed = start.elapsed();
    out.call = Some(stats);
    out
}

async fn call(
    spec: &CallSpec,
    binding: &Binding,
    out: &mut Outcome,
    stats: &mut CallStats,
    start: Instant,
    timeout: Duration,
) -> Result<(), Failure> {
    let end = deadline(start, timeout);
    let addr = tokio::time::timeout_at(end, resolve_one(&spec.host, spec.port, binding))
        .await
        .map_err(|_| Failure::timeout(Phase::Resolve, timeout))??;
    let (sock, local) = super::udp_socket(addr, binding).await?;
    let d = Dialog {
        call_id: format!("{}@thongsuot", nonce()),
        from_tag: nonce(),
        local,
        uri: spec.uri.clone(),
        user: "thongsuot".into(),
    };
    let to = format!("<{}>", d.uri);
    let sdp = d.sdp();
    let mut cseq = 1;
    let mut branch = nonce();
    let mut auth = String::new();
    let mut invite = d.request(
        "INVITE",
        &d.uri,
        &branch,
        cseq,
        &to,
        "Content-Type: application/sdp\r\nAllow: INVITE, ACK, CANCEL, BYE\r\n",
        &sdp,
    );
    let t0 = Instant::now();
    let send = |msg: String| {
        let sock = &sock;
        async move { sock.send(msg.as_bytes()).await.map_err(|e| Failure::io("send", &e)) }
    };
    send(invite.clone()).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut wait = T1;
    let mut provisional = false;
    let mut authenticated = false;
    // INVITE transaction: retransmit on T1 doubling until a provisional response, then wait.
    let answer = loop {
        let now = tokio::time::Instant::now();
        if now >= end {
            if provisional {
                // Ringing but not answered in time: cancel the call, politely and without waiting.
                let cancel = d.request("CANCEL", &d.uri, &branch, cseq, &to, "", "");
                let _ = sock.send(cancel.as_bytes()).await;
            }
            return Err(Failure::new(
                FailureKind::Timeout,
                if stats.post_dial_delay.is_some() {
                    format!("no answer within {} (ringing; cancelled)", fmt_duration(timeout))
                } else if provisional {
                    format!("no answer within {} (no ringing; cancelled)", fmt_duration(timeout))
                } else {
                    format!("no response to INVITE within {}", fmt_duration(timeout))
                },
            ));
        }
        let until = (now + wait).min(end);
        let Ok(n) = tokio::time::timeout_at(until, sock.recv(&mut buf)).await else {
            if !provisional {
                send(invite.clone()).await?;
                wait = (wait * 2).min(T2);
            }
            continue;
        };
        let n = n.map_err(|e| Failure::io("receive", &e))?;
        // Only the current INVITE: a late answer to the one before a challenge is stale.
        let Some(r) = response_to(&buf[..n], &d.call_id, cseq, "INVITE") else { continue };
        match r.code {
            100..=199 => {
                provisional = true;
                if matches!(r.code, 180 | 183) && stats.post_dial_delay.is_none() {
                    stats.post_dial_delay = Some(t0.elapsed());
                }
            }
            200..=299 => break r,
            401 | 407 if !authenticated && spec.username.is_some() => {
                // ACK the challenge (same transaction), then INVITE again with credentials.
                let ack = d.request("ACK", &d.uri, &branch, cseq, &r.to, "", "");
                send(ack).await?;
                let Some((proxy, challenge)) = &r.challenge else {
                    return Err(Failure::new(FailureKind::Protocol, format!("SIP {} without a challenge", r.code)));
                };
                let value = authorization(
                    challenge,
                    "INVITE",
                    &d.uri,
                    spec.username.as_deref().unwrap_or(""),
                    spec.password.as_ref().map_or("", Secret::expose),
                    &nonce(),
                )
                .ok_or_else(|| Failure::new(FailureKind::Protocol, format!("unusable challenge: {challenge}")))?;
                auth = format!("{}: {value}\r\n", if *proxy { "Proxy-Authorization" } else { "Authorization" });
                authenticated = true;
                cseq += 1;
                branch = nonce();
                invite = d.request(
                    "INVITE",
                    &d.uri,
                    &branch,
                    cseq,
                    &to,
                    &format!("{auth}Content-Type: application/sdp\r\nAllow: INVITE, ACK, CANCEL, BYE\r\n"),
                    &sdp,
                );
                send(invite.clone()).await?;
                wait = T1;
                provisional = false;
            }
            code => {
                let ack = d.request("ACK", &d.uri, &branch, cseq, &r.to, "", "");
                let _ = send(ack).await;
                return Err(Failure::new(
                    FailureKind::Status,
                    format!("SIP {code} {} ({})", r.reason, reason_word(code)),
                ));
            }
        }
    };
    stats.setup = Some(t0.elapsed());
    out.phases.set(Phase::Processing, t0.elapsed());
    // The dialog: ACK (new transaction, to the remote target), hold, BYE.
    let remote = answer.contact.clone().unwrap_or_else(|| d.uri.clone());
    let ack = d.request("ACK", &remote, &nonce(), cseq, &answer.to, &auth, "");
    // The call is set up: from here, network errors end the call but do not fail the probe.
    let _ = send(ack.clone()).await;
    let hold_end = tokio::time::Instant::now() + spec.hold;
    // While holding, a retransmitted 200 (our ACK lost) gets the ACK again.
    while tokio::time::Instant::now() < hold_end.min(end) {
        if let Ok(Ok(n)) = tokio::time::timeout_at(hold_end.min(end), sock.recv(&mut buf)).await
            && response_to(&buf[..n], &d.call_id, cseq, "INVITE").is_some_and(|r| (200..300).contains(&r.code))
        {
            let _ = send(ack.clone()).await;
        }
    }
    cseq += 1;
    let bye_branch = nonce();
    let bye = d.request("BYE", &remote, &bye_branch, cseq, &answer.to, &auth, "");
    let _ = send(bye.clone()).await;
    let mut wait = T1;
    // The call was set up: a BYE left unanswered is logged in the outcome, not a failed call.
    loop {
        let now = tokio::time::Instant::now();
        if now >= end {
            return Ok(());
        }
        match tokio::time::timeout_at((now + wait).min(end), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                if response_to(&buf[..n], &d.call_id, cseq, "BYE").is_some_and(|r| r.code >= 200) {
                    return Ok(());
                }
            }
            Ok(Err(_)) => return Ok(()),
            Err(_) => {
                let _ = send(bye.clone()).await;
                wait = (wait * 2).min(T2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_answers_match_rfc_2617() {
        // RFC 2617 section 3.5 example (qop=auth).
        let ch = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let a = authorization(ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b").expect("auth");
        assert!(a.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{a}");
        assert!(a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(authorization("Basic realm=x", "INVITE", "sip:a@b", "u", "p", "c").is_none());
    }

    #[test]
    fn responses_of_our_call_only() {
        let r = b"SIP/2.0 180 Ringing\r\nCall-ID: a@thongsuot\r\nCSeq: 1 INVITE\r\nTo: <sip:1000@x>;tag=9\r\nContact: <sip:1000@127.0.0.1:5080>\r\n\r\n";
        let p = response_to(r, "a@thongsuot", 1, "INVITE").expect("ours");
        assert_eq!(
            (p.code, p.contact.as_deref(), p.to_tag.as_deref()),
            (180, Some("sip:1000@127.0.0.1:5080"), Some("9"))
        );
        assert!(response_to(r, "b@thongsuot", 1, "INVITE").is_none());
        // The INVITE before a challenge (CSeq 1) is not the current one (CSeq 2).
        assert!(response_to(r, "a@thongsuot", 2, "INVITE").is_none());
        assert!(response_to(r, "a@thongsuot", 1, "BYE").is_none());
        assert!(response_to(b"INVITE sip:x SIP/2.0\r\ni: a\r\nCSeq: 1 INVITE\r\n\r\n", "a", 1, "INVITE").is_none());
        assert_eq!(reason_word(486), "busy");
        assert_eq!(reason_word(503), "server failure");
    }
}
