//! Plain `http://` probes on hyper's connection API: our own TCP connect, one HTTP/1.1
//! request on it, `Connection: close`, the body read up to its bound. Without reqwest's
//! client (its pool, connector stack and per-request task) a probe costs less CPU, and every
//! probe is still a fresh connection. Redirects are followed here while they
//! stay on `http://`; one to another scheme is handed back to reqwest.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::HttpSpec;
use crate::probe::{Binding, Failure, FailureKind, Outcome, Phase, resolve_one};

/// As many redirects as reqwest's `Policy::limited(10)`.
const MAX_REDIRECTS: usize = 10;

const USER_AGENT: &str = concat!("thongsuot/", env!("CARGO_PKG_VERSION"));

/// Where the exchange ended: a response with its body, or a redirect off `http://` for
/// reqwest to follow (with the method and body it is to be sent with).
pub enum Ended {
    Response { status: u16, body: Vec<u8> },
    Handover { url: reqwest::Url, method: Method, body: Option<String> },
}

/// One probe of an `http://` URL, redirects included; the caller's timeout bounds it all.
pub async fn exchange(spec: &HttpSpec, binding: &Binding, out: &mut Outcome, start: Instant) -> Result<Ended, Failure> {
    let mut url = std::borrow::Cow::Borrowed(&spec.url);
    let mut method = spec.method.clone();
    let mut body = spec.body.as_deref();
    for _ in 0..=MAX_REDIRECTS {
        let response = once(&url, &method, body, spec, binding, out, start).await?;
        let status = response.resp.status();
        let location = response.resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
        let follow = spec.follow_redirects
            && matches!(
                status,
                StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT
            );
        let next = match (follow, location) {
            (true, Some(loc)) => url.join(loc).map_err(|e| {
                Failure::new(FailureKind::Protocol, format!("redirect to an invalid location {loc:?}: {e}"))
            })?,
            _ => {
                let body = read_body(response, spec.max_body_bytes, out).await?;
                return Ok(Ended::Response { status: status.as_u16(), body });
            }
        };
        // As browsers and reqwest do: 303 turns into GET, and so do 301 and 302 after a POST.
        if status == StatusCode::SEE_OTHER && method != Method::HEAD
            || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND) && method == Method::POST
        {
            method = Method::GET;
            body = None;
        }
        if next.scheme() != "http" {
            return Ok(Ended::Handover { url: next, method, body: body.map(str::to_string) });
        }
        url = std::borrow::Cow::Owned(next);
    }
    Err(Failure::new(FailureKind::Protocol, format!("too many redirects (more than {MAX_REDIRECTS})")))
}

type Response = hyper::Response<hyper::body::Incoming>;
type Connection = hyper::client::conn::http1::Connection<TokioIo<Closing>, Full<Bytes>>;

/// The probe's connection as hyper sees it, with shutting down its write side left out: the
/// socket is closed with a reset right after (one syscall, one FIN and one wake-up of the
/// server fewer a probe).
struct Closing(tokio::net::TcpStream);

impl AsyncRead for Closing {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Closing {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A request on a connection of its own; the connection is driven by the body reader's side
/// (see [`Driven`]) until the body is read.
async fn once(
    url: &reqwest::Url,
    method: &Method,
    body: Option<&str>,
    spec: &HttpSpec,
    binding: &Binding,
    out: &mut Outcome,
    start: Instant,
) -> Result<Driven, Failure> {
    let host = url.host_str().ok_or_else(|| Failure::new(FailureKind::Setup, format!("{url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    // `[::1]` in a URL, `::1` to the resolver.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = resolve_one(bare, port, binding).await?;
    let stream =
        crate::probe::tcp::connect(addr, binding).await.map_err(|e| Failure::io(&format!("connect {addr}"), &e))?;
    // Closed with a reset if the server has not closed first: no TIME_WAIT left behind.
    let _ = stream.set_zero_linger();
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Full<Bytes>>(TokioIo::new(Closing(stream)))
        .await
        .map_err(|e| hyper_failure("HTTP handshake", &e))?;
    let mut conn = Box::pin(conn);

    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req = Request::builder().method(method.clone()).uri(target);
    let headers = req.headers_mut().ok_or_else(|| Failure::new(FailureKind::Setup, "bad request".to_string()))?;
    for (k, v) in &spec.headers {
        headers.append(k.clone(), v.clone());
    }
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let defaults = [
        (header::HOST, HeaderValue::from_str(&host_header).ok()),
        (header::USER_AGENT, Some(HeaderValue::from_static(USER_AGENT))),
        (header::ACCEPT, Some(HeaderValue::from_static("*/*"))),
    ];
    for (k, v) in defaults {
        if let (false, Some(v)) = (headers.contains_key(&k), v) {
            headers.insert(k, v);
        }
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    let req = req
        .body(Full::new(body.map_or_else(Bytes::new, |b| Bytes::copy_from_slice(b.as_bytes()))))
        .map_err(|e| Failure::new(FailureKind::Setup, format!("cannot build the request: {e}")))?;

    let sent = sender.send_request(req);
    tokio::pin!(sent);
    let mut conn_done = false;
    let resp: Response = loop {
        tokio::select! {
            r = &mut sent => break r.map_err(|e| hyper_failure("HTTP request", &e))?,
            r = &mut conn, if !conn_done => {
                conn_done = true;
                r.map_err(|e| hyper_failure("HTTP connection", &e))?;
            }
        }
    };
    out.phases.set(Phase::Processing, start.elapsed());
    Ok(Driven { resp, conn: (!conn_done).then_some(conn) })
}

/// A response and the connection future that feeds its body.
struct Driven {
    resp: Response,
    conn: Option<std::pin::Pin<Box<Connection>>>,
}

async fn read_body(d: Driven, max: usize, out: &mut Outcome) -> Result<Vec<u8>, Failure> {
    let t = Instant::now();
    let Driven { resp, mut conn } = d;
    let mut incoming = resp.into_body();
    let mut body = Vec::new();
    loop {
        let frame = tokio::select! {
            f = incoming.frame() => f,
            r = async {
                match conn.as_mut() {
                    Some(c) => c.await,
                    None => std::future::pending().await,
                }
            }, if conn.is_some() => {
                conn = None;
                r.map_err(|e| hyper_failure("HTTP connection", &e))?;
                continue;
            }
        };
        match frame {
            None => break,
            Some(Err(e)) => return Err(hyper_failure("HTTP body", &e)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if body.len() + data.len() > max {
                        return Err(Failure::new(FailureKind::TooLarge, format!("body larger than {max} bytes")));
                    }
                    body.extend_from_slice(&data);
                }
            }
        }
    }
    out.phases.set(Phase::Transfer, t.elapsed());
    Ok(body)
}

/// A hyper error as a failure: its I/O cause when it has one, else a protocol error.
fn hyper_failure(context: &str, e: &hyper::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Failure::io(context, io);
        }
        source = s.source();
    }
    Failure::new(FailureKind::Protocol, format!("{context}: {}", crate::text::error_chain(e)))
}
