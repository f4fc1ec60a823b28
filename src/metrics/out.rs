//! The exposition text writer: lines straight into one buffer, handed out in chunks so a large
//! scrape is never held whole, and the number and label formats of the Prometheus text format.

use std::fmt::Write as _;

/// Size of the pieces a streamed scrape is handed on in.
const CHUNK: usize = 256 * 1024;

/// The text being written: kept whole, or handed on in chunks as it grows, so that the scrape of
/// a large fleet, many chunks long, never sits in memory at once.
#[derive(Default)]
pub struct Out {
    buf: String,
    /// Where full chunks go; `false` back means the reader is gone. `None` keeps everything.
    sink: Option<Box<dyn FnMut(String) -> bool + Send>>,
    /// The end of a family header with no series after it yet: it may still be taken back.
    header_end: Option<usize>,
    written: usize,
    closed: bool,
}

impl Out {
    pub fn chunked(sink: impl FnMut(String) -> bool + Send + 'static) -> Out {
        Out { buf: String::with_capacity(CHUNK + 4096), sink: Some(Box::new(sink)), ..Out::default() }
    }

    /// The whole text (kept mode), or the last chunk handed on and an empty string.
    pub fn finish(mut self) -> String {
        if self.sink.is_some() {
            self.flush();
            String::new()
        } else {
            self.buf
        }
    }

    /// Bytes written so far, handed on or not.
    pub(super) fn written(&self) -> usize {
        self.written
    }

    pub(super) fn reserve(&mut self, n: usize) {
        if self.sink.is_none() {
            self.buf.reserve(n);
        }
    }

    fn flush(&mut self) {
        if let Some(sink) = self.sink.as_mut()
            && !self.buf.is_empty()
        {
            let chunk = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + 4096));
            if !sink(chunk) {
                self.closed = true;
            }
        }
    }

    /// Writes HELP and TYPE, then the series; takes the header back when there is none.
    pub(super) fn family(&mut self, name: &str, help: &str, kind: &str, series: impl FnOnce(&mut Out)) {
        if self.closed {
            return;
        }
        let start = self.buf.len();
        // Straight into the buffer: a header is never split across chunks.
        let header = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
        self.buf.push_str(&header);
        self.header_end = Some(self.buf.len());
        series(self);
        if self.header_end == Some(self.buf.len()) {
            self.buf.truncate(start);
        } else {
            self.written += header.len();
        }
        self.header_end = None;
    }
}

impl std::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.closed {
            return Err(std::fmt::Error);
        }
        self.buf.push_str(s);
        self.written += s.len();
        if self.sink.is_some() && self.buf.len() >= CHUNK {
            // A series follows the header now: it is final, the chunk may go.
            self.header_end = None;
            self.flush();
        }
        Ok(())
    }
}

/// A label value, escaped as the text format wants (`\`, `"` and newlines), without a copy.
pub(super) struct Esc<'a>(pub(super) &'a str);

impl std::fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A number as the text format writes it.
pub(super) fn num(out: &mut Out, v: f64) {
    if v.is_infinite() {
        let _ = out.write_str(if v > 0.0 { "+Inf\n" } else { "-Inf\n" });
    } else {
        let _ = writeln!(out, "{v}");
    }
}
