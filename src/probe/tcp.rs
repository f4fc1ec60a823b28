//! TCP connect, with an optional line to send and a banner to expect.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
pub async fn connect(addr: SocketAddr, binding: &Binding) -> io::Result<TcpStream> {
    open(addr, binding, true, false).await?.into_stream()
}

/// A connection just opened: already established when `connect` returned (the kernel finished
/// the handshake in the call, as it does for a peer on the same host: loopback, a local
/// namespace), or established later through the reactor.
enum Opened {
    Now(Socket),
    Later(TcpStream),
}

impl Opened {
    fn into_stream(self) -> io::Result<TcpStream> {
        match self {
            Opened::Now(socket) => TcpStream::from_std(socket.into()),
            Opened::Later(stream) => Ok(stream),
        }
    }
}

/// Opens a connection; with `reset`, closing it sends a reset, as HAProxy closes its checks: no
/// TIME_WAIT left behind. A probe every second to one address would otherwise hold 60 local
/// ports, and 2,000 probes/s to one host need more than the 28,000 ephemeral ports there are.
async fn open(addr: SocketAddr, binding: &Binding, nodelay: bool, reset: bool) -> io::Result<Opened> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    if let Some(dev) = &binding.interface {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(src) = binding.source {
        socket.bind(&SocketAddr::new(src, 0).into())?;
    }
    if nodelay {
        socket.set_tcp_nodelay(true)?;
    }
    if reset {
        let _ = socket.set_linger(Some(Duration::ZERO));
    }
    match socket.connect(&addr.into()) {
        Ok(()) => return Ok(Opened::Now(socket)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    // Asked before the reactor is: a connection already established needs no registration
    // and no wake-up (a refused one is answered through the reactor, below).
    if socket.peer_addr().is_ok() {
        return Ok(Opened::Now(socket));
    }
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(Opened::Later(stream)),
    }
}

/// Probes `spec`; `addr` is its address when already known (written as an IP address).
pub async fn probe(spec: &TcpSpec, addr: Option<SocketAddr>, binding: &Binding, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    let r = tokio::time::timeout_at(deadline(start, timeout), exchange(spec, addr, binding, &mut out, start)).await;
    conclude(out, r, start, timeout, &[Phase::Resolve, Phase::Connect, Phase::Processing])
}

async fn exchange(
    spec: &TcpSpec,
    addr: Option<SocketAddr>,
    binding: &Binding,
    out: &mut Outcome,
    start: Instant,
) -> Result<(), Failure> {
    let addr = match addr {
        Some(a) => a,
        None => resolve_one(&spec.host, spec.port, binding).await?,
    };
    out.phases.set(Phase::Resolve, start.elapsed());
    let t = Instant::now();
    let exchange = spec.send.is_some() || spec.expect.is_some();
    let opened = open(addr, binding, exchange, true).await.map_err(|e| Failure::io(&format!("connect {addr}"), &e))?;
    out.phases.set(Phase::Connect, t.elapsed());
    if !exchange {
        return Ok(());
    }
    let mut stream = opened.into_stream().map_err(|e| Failure::io("register the connection", &e))?;
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
