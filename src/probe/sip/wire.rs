//! SIP messages as they arrive (RFC 3261 §7): the one parser of the OPTIONS probe and the test
//! call. Liberal in what it reads — SIP-version in any case (§7.1), CRLFs before the start line
//! (§7.5), LF-only line ends, folded header lines (§7.3.1), compact header names (§7.3.3) — and
//! strict about whether a response is ours: Call-ID, CSeq number and CSeq method must all be those
//! of the request we sent. Pure: no I/O, tested without a peer.

use std::fmt;

/// The start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Response {
        code: u16,
        reason: String,
    },
    /// Requests are parsed too, so a caller can tell a request from garbage.
    Request {
        method: String,
        uri: String,
    },
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: Start,
    /// In order of arrival; names lower-case in their full form (`i` is `call-id`), folded lines
    /// joined with one space. A header sent several times (Via, Contact, WWW-Authenticate) is
    /// several entries.
    pub headers: Vec<(String, String)>,
    /// Bounded by Content-Length.
    pub body: Vec<u8>,
}

/// Why bytes are not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Nothing but line ends (a keep-alive, RFC 5626 §4.4.1).
    Empty,
    StartLine(String),
    Header(String),
    /// A header that must appear once appears with different values.
    Conflicting(&'static str),
    ContentLength(String),
    /// A datagram shorter than its Content-Length says (RFC 3261 §18.3: discarded).
    ShortBody {
        expected: usize,
        got: usize,
    },
    /// The header section does not end within the datagram.
    Unterminated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => f.write_str("only line ends"),
            Error::StartLine(l) => write!(f, "not a SIP start line: {l:?}"),
            Error::Header(l) => write!(f, "malformed header line: {l:?}"),
            Error::Conflicting(h) => write!(f, "{h} appears twice with different values"),
            Error::ContentLength(v) => write!(f, "bad Content-Length {v:?}"),
            Error::ShortBody { expected, got } => write!(f, "body of {got} bytes, Content-Length {expected}"),
            Error::Unterminated => f.write_str("no end of the header section"),
        }
    }
}

/// Longest start or header line quoted in an error (they go to debug logs).
const QUOTE: usize = 80;

fn quote(s: &str) -> String {
    s.chars().take(QUOTE).collect()
}

/// The full name of a compact header form (RFC 3261 §7.3.3 and §20), lower-case.
fn full_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let full = match lower.as_str() {
        "i" => "call-id",
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "l" => "content-length",
        "c" => "content-type",
        "m" => "contact",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        _ => return lower,
    };
    full.to_string()
}

/// RFC 3261 §25.1 `token` characters: a header name is one.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Where the header section of `buf` is: (start of the start line, end of the last header line,
/// start of the body); `None` while its empty line has not arrived.
fn split_head(buf: &[u8]) -> Option<(usize, usize, usize)> {
    // §7.5: CRLFs before the start line are ignored (stream keep-alives, sloppy senders).
    let from = buf.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
    let mut pos = from;
    // Each turn moves past one line, so this ends within buf.len() turns.
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl];
        if line.is_empty() || line == b"\r" {
            return Some((from, pos, pos + nl + 1));
        }
        pos += nl + 1;
    }
    None
}

fn start_line(line: &str) -> Result<Start, Error> {
    let bad = || Error::StartLine(quote(line));
    let (first, rest) = line.split_once(' ').ok_or_else(bad)?;
    if first.eq_ignore_ascii_case("SIP/2.0") {
        // A reason phrase may be empty; some senders drop the space before it too.
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let code: u16 = code.parse().map_err(|_| bad())?;
        if !(100..700).contains(&code) {
            return Err(bad());
        }
        return Ok(Start::Response { code, reason: reason.trim().to_string() });
    }
    let (uri, version) = rest.split_once(' ').ok_or_else(bad)?;
    if is_token(first) && !uri.is_empty() && version.trim_end().eq_ignore_ascii_case("SIP/2.0") {
        return Ok(Start::Request { method: first.to_string(), uri: uri.to_string() });
    }
    Err(bad())
}

fn headers(lines: &[&str]) -> Result<Vec<(String, String)>, Error> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(lines.len());
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // §7.3.1: a line starting with whitespace continues the previous header's value.
            let Some((_, value)) = out.last_mut() else { return Err(Error::Header(quote(line))) };
            let more = line.trim();
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| Error::Header(quote(line)))?;
        // `HCOLON = *( SP / HTAB ) ":" SWS`: whitespace may precede the colon.
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(Error::Header(quote(line)));
        }
        out.push((full_name(name), value.trim().to_string()));
    }
    Ok(out)
}

/// The one value of a header that must not appear twice with different values.
fn single<'a>(headers: &'a [(String, String)], name: &str, label: &'static str) -> Result<Option<&'a str>, Error> {
    let mut found: Option<&str> = None;
    for (n, v) in headers {
        if n == name {
            match found {
                Some(f) if f != v => return Err(Error::Conflicting(label)),
                _ => found = Some(v),
            }
        }
    }
    Ok(found)
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, Error> {
    single(headers, "content-length", "Content-Length")?
        .map(|v| v.parse::<usize>().map_err(|_| Error::ContentLength(quote(v))))
        .transpose()
}

/// The start line and headers of `buf[from..end]`.
fn head(buf: &[u8], from: usize, end: usize) -> Result<(Start, Vec<(String, String)>), Error> {
    // SIP is UTF-8; a stray byte elsewhere (a Latin-1 reason phrase) should not cost the message.
    let text = String::from_utf8_lossy(&buf[from..end]);
    // `end` is just past the last header line's own line end.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let (first, rest) = lines.split_first().ok_or(Error::Empty)?;
    let start = start_line(first)?;
    let headers = headers(rest)?;
    // Checked here so that every accessor can take the first value.
    single(&headers, "call-id", "Call-ID")?;
    single(&headers, "cseq", "CSeq")?;
    Ok((start, headers))
}

/// A message received as one datagram (UDP). Without Content-Length the body is the rest of
/// the datagram (§18.3); bytes past Content-Length are ignored.
pub fn parse_datagram(buf: &[u8]) -> Result<Message, Error> {
    if buf.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::Empty);
    }
    let (from, end, body_at) = split_head(buf).ok_or(Error::Unterminated)?;
    let (start, headers) = head(buf, from, end)?;
    let rest = &buf[body_at..];
    let body = match content_length(&headers)? {
        Some(n) if n > rest.len() => return Err(Error::ShortBody { expected: n, got: rest.len() }),
        Some(n) => rest[..n].to_vec(),
        None => rest.to_vec(),
    };
    Ok(Message { start, headers, body })
}

/// What the front of a stream (TCP) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A message and the bytes it took (leading CRLFs included).
    Message(Message, usize),
    /// Not a whole message yet: read more.
    Incomplete,
    /// Not a message; skipping `usize` bytes (its header section) resynchronises on the next.
    Invalid(Error, usize),
}

/// The first message of a stream. Content-Length says where the body ends (§18.3: required on
/// streams, taken as 0 when missing), so a body holding an empty line or a fake status line is
/// not mistaken for the next message.
pub fn parse_stream(buf: &[u8]) -> Framed {
    let Some((from, end, body_at)) = split_head(buf) else { return Framed::Incomplete };
    let parsed = head(buf, from, end).and_then(|(start, headers)| Ok((start, content_length(&headers)?, headers)));
    match parsed {
        Err(e) => Framed::Invalid(e, body_at),
        Ok((start, length, headers)) => {
            let length = length.unwrap_or(0);
            match body_at.checked_add(length) {
                Some(total) if total <= buf.len() => {
                    Framed::Message(Message { start, headers, body: buf[body_at..total].to_vec() }, total)
                }
                _ => Framed::Incomplete,
            }
        }
    }
}

impl Message {
    /// The first value of header `name` (lower-case, full form).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lower-case, full form), in order.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// CSeq number and method (`1 OPTIONS`).
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut parts = self.header("cseq")?.split_whitespace();
        let (number, method) = (parts.next()?.parse().ok()?, parts.next()?);
        parts.next().is_none().then_some((number, method))
    }

    /// The `tag` parameter of To: set by the far end, it names the dialog.
    pub fn to_tag(&self) -> Option<&str> {
        let to = self.header("to")?;
        // Parameters follow the name-addr (`<sip:a@b;x=y>;tag=1`): skip the URI's own.
        let params = to.rfind('>').map_or(to, |i| &to[i + 1..]);
        params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("tag"))
            .map(|(_, v)| v.trim())
    }

    /// The URI of the first Contact (`<sip:…>` or a bare `sip:…;params`).
    pub fn contact_uri(&self) -> Option<&str> {
        let c = self.header("contact")?;
        let uri = match c.split_once('<') {
            Some((_, rest)) => rest.split_once('>')?.0,
            None => c.split([';', ',']).next()?.trim(),
        };
        (!uri.is_empty() && uri != "*").then_some(uri)
    }
}

/// A response with the fields the probes use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub call_id: String,
    pub cseq: u32,
    pub method: String,
    /// The whole To value, tag included: an ACK or BYE repeats it.
    pub to: String,
    pub to_tag: Option<String>,
    pub contact: Option<String>,
    /// A digest challenge: (from Proxy-Authenticate, its value).
    pub challenge: Option<(bool, String)>,
    pub body: Vec<u8>,
}

/// The first challenge we can answer (MD5 digest) among several (one per realm or algorithm).
fn challenge<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut digest = values.filter(|v| v.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("digest"))).peekable();
    let first = digest.peek().map(|v| v.to_string());
    digest
        .find(|v| {
            let lower = v.to_ascii_lowercase();
            !lower.contains("algorithm=") || lower.contains("algorithm=md5") || lower.contains("algorithm=\"md5\"")
        })
        .map(str::to_string)
        .or(first)
}

impl Response {
    /// `None` for a request, or a response without the Call-ID or CSeq it must carry.
    pub fn from_message(m: Message) -> Option<Response> {
        let Start::Response { code, reason } = &m.start else { return None };
        let (cseq, method) = m.cseq()?;
        let challenge = match challenge(m.headers("proxy-authenticate")) {
            Some(c) => Some((true, c)),
            None => challenge(m.headers("www-authenticate")).map(|c| (false, c)),
        };
        Some(Response {
            code: *code,
            reason: reason.clone(),
            call_id: m.call_id()?.to_string(),
            cseq,
            method: method.to_string(),
            to: m.header("to").unwrap_or_default().to_string(),
            to_tag: m.to_tag().map(str::to_string),
            contact: m.contact_uri().map(str::to_string),
            challenge,
            body: m.body,
        })
    }

    /// Whether this answers our request: same Call-ID (compared byte for byte, §20.8), same CSeq
    /// number and method (methods are case-sensitive, §7.1).
    pub fn answers(&self, call_id: &str, cseq: u32, method: &str) -> bool {
        self.call_id == call_id && self.cseq == cseq && self.method == method
    }
}

/// The response in `m` if it answers request `cseq method` of call `call_id`; anything else is
/// logged at debug and `None` (the caller keeps waiting).
pub fn ours(m: Message, call_id: &str, cseq: u32, method: &str) -> Option<Response> {
    if let Start::Request { method: request, .. } = &m.start {
        tracing::debug!("SIP: skipped a {request} request (we only wait for responses)");
        return None;
    }
    let Some(r) = Response::from_message(m) else {
        tracing::debug!("SIP: skipped a response without Call-ID or CSeq");
        return None;
    };
    if !r.answers(call_id, cseq, method) {
        tracing::debug!(
            "SIP: skipped {} for Call-ID {:?} CSeq {} {} (waiting for {cseq} {method})",
            r.code,
            r.call_id,
            r.cseq,
            r.method
        );
        return None;
    }
    Some(r)
}

/// A datagram's response to request `cseq method` of call `call_id`, or `None` (logged).
pub fn response_to(buf: &[u8], call_id: &str, cseq: u32, method: &str) -> Option<Response> {
    match parse_datagram(buf) {
        Ok(m) => ours(m, call_id, cseq, method),
        Err(e) => {
            tracing::debug!("SIP: skipped a datagram that is not a SIP message: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n\
        To: <sip:1000@x;transport=udp>;tag=9\r\nCall-ID: a@thongsuot\r\nCSeq: 1 OPTIONS\r\n\
        Contact: <sip:1000@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n";

    fn response(buf: &[u8]) -> Response {
        Response::from_message(parse_datagram(buf).expect("parses")).expect("a response")
    }

    #[test]
    fn plain_response() {
        let r = response(OK);
        assert_eq!((r.code, r.reason.as_str(), r.call_id.as_str()), (200, "OK", "a@thongsuot"));
        assert_eq!((r.cseq, r.method.as_str()), (1, "OPTIONS"));
        assert_eq!(r.to_tag.as_deref(), Some("9"));
        assert_eq!(r.to, "<sip:1000@x;transport=udp>;tag=9");
        assert_eq!(r.contact.as_deref(), Some("sip:1000@127.0.0.1:5080"));
        assert!(r.answers("a@thongsuot", 1, "OPTIONS"));
        assert!(!r.answers("a@thongsuot", 2, "OPTIONS"));
        assert!(!r.answers("a@thongsuot", 1, "INVITE"));
        assert!(!r.answers("A@thongsuot", 1, "OPTIONS"), "Call-IDs are case-sensitive");
    }

    #[test]
    fn liberal_forms_of_the_same_response() {
        let text = String::from_utf8_lossy(OK).to_string();
        let lower = text.replace("SIP/2.0 200", "sip/2.0 200");
        let crlfs = format!("\r\n\r\n{text}");
        let lf = text.replace("\r\n", "\n");
        let compact = text.replace("Call-ID:", "i:").replace("To:", "t:").replace("CSeq:", "cseq :");
        let folded = text.replace("Call-ID: ", "CALL-id:\r\n\t ").replace(";branch", "\r\n ;branch");
        for (what, variant) in [("lower-case version", lower), ("CRLFs", crlfs), ("LF", lf), ("compact", compact)] {
            assert_eq!(response(variant.as_bytes()), response(OK), "{what}");
        }
        let f = parse_datagram(folded.as_bytes()).expect("folded");
        assert_eq!(f.call_id(), Some("a@thongsuot"));
        assert_eq!(f.header("via"), Some("SIP/2.0/UDP 127.0.0.1:5060 ;branch=z9hG4bKa"));
    }

    #[test]
    fn repeated_headers() {
        let m = parse_datagram(
            b"SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
              i: c\r\nCall-ID: c\r\nCSeq: 2 INVITE\r\n\
              WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256\r\n\
              WWW-Authenticate: Digest realm=\"r\", nonce=\"m\", algorithm=MD5\r\nl: 0\r\n\r\n",
        )
        .expect("parses");
        assert_eq!(m.headers("via").count(), 2);
        let r = Response::from_message(m).expect("response");
        // The one challenge we can answer, not merely the first.
        assert_eq!(r.challenge, Some((false, "Digest realm=\"r\", nonce=\"m\", algorithm=MD5".into())));
        assert!(r.answers("c", 2, "INVITE"));
        // A header that names the message twice differently: which one is it? Neither.
        assert_eq!(
            parse_datagram(b"SIP/2.0 200 OK\r\nCall-ID: a\r\ni: b\r\nCSeq: 1 OPTIONS\r\n\r\n"),
            Err(Error::Conflicting("Call-ID"))
        );
        assert_eq!(
            parse_datagram(b"SIP/2.0 200 OK\r\nl: 0\r\nContent-Length: 4\r\n\r\nbody"),
            Err(Error::Conflicting("Content-Length"))
        );
    }

    #[test]
    fn body_bounded_by_content_length() {
        let m =
            parse_datagram(b"SIP/2.0 200 OK\r\ni: a\r\nCSeq: 1 INVITE\r\nl: 4\r\n\r\nv=0\r\nextra").expect("parses");
        assert_eq!(m.body, b"v=0\r");
        assert_eq!(
            parse_datagram(b"SIP/2.0 200 OK\r\ni: a\r\nCSeq: 1 INVITE\r\nl: 9\r\n\r\nv=0"),
            Err(Error::ShortBody { expected: 9, got: 3 })
        );
        // Without Content-Length a datagram's body is the rest of it.
        let m = parse_datagram(b"SIP/2.0 200 OK\r\ni: a\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\n").expect("parses");
        assert_eq!(m.body, b"v=0\r\n");
    }

    #[test]
    fn stream_framing() {
        let two =
            b"\r\nSIP/2.0 200 OK\r\ni: a\r\nCSeq: 1 OPTIONS\r\nl: 6\r\n\r\n\r\n\r\nxxSIP/2.0 100 Trying\r\ni: a\r\n";
        let Framed::Message(m, used) = parse_stream(two) else { panic!("one whole message first") };
        assert_eq!((m.body.as_slice(), used), (&b"\r\n\r\nxx"[..], 55));
        assert_eq!(parse_stream(&two[used..]), Framed::Incomplete, "the second has not ended");
        assert_eq!(parse_stream(&two[..30]), Framed::Incomplete);
        // A body still arriving.
        assert_eq!(parse_stream(b"SIP/2.0 200 OK\r\nl: 10\r\n\r\nabc"), Framed::Incomplete);
        let Framed::Invalid(_, skip) = parse_stream(b"HTTP/1.1 200 OK\r\n\r\nSIP/2.0") else { panic!("invalid") };
        assert_eq!(skip, 19);
    }

    #[test]
    fn not_messages() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            b"SIP/2.0 999 no\r\n\r\n",
            b"SIP/2.0 20 short\r\n\r\n",
            b"SIP/3.0 200 OK\r\n\r\n",
            b"SIP/2.0 200 OK\r\n continuation first\r\n\r\n",
            b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n",
            b"SIP/2.0 200 OK\r\nl: many\r\n\r\n",
            b"SIP/2.0 200 OK\r\nCall-ID: a\r\n",
            b"\r\n\r\n",
            &[0xff, 0xfe],
        ] {
            assert!(parse_datagram(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // A request parses, and is not a response.
        let m = parse_datagram(b"BYE sip:thongsuot@127.0.0.1 SIP/2.0\r\ni: a\r\nCSeq: 3 BYE\r\n\r\n").expect("request");
        assert_eq!(m.start, Start::Request { method: "BYE".into(), uri: "sip:thongsuot@127.0.0.1".into() });
        assert_eq!(Response::from_message(m.clone()), None);
        assert_eq!(ours(m, "a", 3, "BYE"), None);
        // A response without CSeq cannot be matched to a request.
        assert_eq!(response_to(b"SIP/2.0 200 OK\r\ni: a\r\n\r\n", "a", 1, "OPTIONS"), None);
        assert!(response_to(OK, "a@thongsuot", 1, "OPTIONS").is_some());
    }
}
