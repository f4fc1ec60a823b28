//! TCP connect, with an optional line to send and a banner to expect.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{Binding, Failure, FailureKind, Outcome, Phase, conclude, deadline, resolve_one};

#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    pub host: String,
    pub port: u16,
    /// Written after connect (e.g. `"PING\r\n"`).
    pub send: Option<String>,
    /// Must appear in what the peer sends within the timeout (first 4 KiB).
    pub expect: Option<String>,
}

/// How much of a banner is read at most: a hostile peer costs 4 KiB, not memory.
const MAX_BANNER: usize = 4096;

/// Opens a TCP connection from `binding` to `addr`, for an exchange (no delay on small writes).
pub async fn connect(addr: std::net::SocketAddr, binding: &Binding) -> std::io::Result<TcpStream> {
    open(addr, binding, true).await
}

async fn open(addr: std::net::SocketAddr, binding: &Binding, nodelay: bool) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(dev) = &binding.interface {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(src) = binding.source {
        socket.bind(std::net::SocketAddr::new(src, 0))?;
    }
    if nodelay {
        socket.set_nodelay(true)?;
    }
    socket.connect(addr).await
}

pub async fn probe(spec: &TcpSpec, binding: &Binding, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let r = tokio::time::timeout_at(deadline(start, timeout), exchange(spec, binding, &mut out, start)).await;
    conclude(out, r, start, timeout, &[Phase::Resolve, Phase::Connect, Phase::Processing])
}

async fn exchange(spec: &TcpSpec, binding: &Binding, out: &mut Outcome, start: Instant) -> Result<(), Failure> {
    let addr = resolve_one(&spec.host, spec.port, binding).await?;
    out.phases.set(Phase::Resolve, start.elapsed());
    let t = Instant::now();
    let exchange = spec.send.is_some() || spec.expect.is_some();
    let mut stream = open(addr, binding, exchange).await.map_err(|e| Failure::io(&format!("connect {addr}"), &e))?;
    out.phases.set(Phase::Connect, t.elapsed());
    // Closed with a reset, as HAProxy closes its checks: no TIME_WAIT left behind. A probe every
    // second to one address would otherwise hold 60 local ports, and 2,000 probes/s to one host
    // need more than the 28,000 ephemeral ports there are.
    let _ = stream.set_zero_linger();
    if !exchange {
        return Ok(());
    }
    let t = Instant::now();
    if let Some(send) = &spec.send {
        stream.write_all(send.as_bytes()).await.map_err(|e| Failure::io("send", &e))?;
    }
    if let Some(expect) = &spec.expect {
        // Read straight into the heap: a buffer on the stack would sit in every TCP probe's
        // future (and task), banner or not.
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.reserve(1024);
            let n = stream.read_buf(&mut buf).await.map_err(|e| Failure::io("read banner", &e))?;
            if n == 0 {
                return Err(Failure::new(
                    FailureKind::Body,
                    format!("connection closed before {expect:?} was received (got {:?})", lossy(&buf)),
                ));
            }
            if contains(&buf, expect.as_bytes()) {
                break;
            }
            if buf.len() >= MAX_BANNER {
                return Err(Failure::new(
                    FailureKind::Body,
                    format!("{expect:?} not found in the first {MAX_BANNER} bytes"),
                ));
            }
        }
    }
    out.phases.set(Phase::Processing, t.elapsed());
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(80)]);
    s.into_owned()
}
