//! Diagnostics: the located messages (`FILE:LINE:COL: message`) a config file gets, the error
//! that carries them, and `Cx`, the context every validator writes them to, with the checks
//! shared by all sections (durations, counts, objectives, names, secrets, duplicate names).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::explain;
use super::raw::{Opt, S};
use super::units::parse_duration;

/// One located message about the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// Every message, one per line, as `check` prints them.
    pub fn messages(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid(d) => d.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Validation context: the source text (for line:col) and the diagnostics collected.
pub struct Cx<'a> {
    pub file: PathBuf,
    pub src: &'a str,
    /// Where the text being validated starts in `src`: a `[[target]]` section is parsed on its
    /// own, its spans count from its start.
    pub base: usize,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn locate(&self, span: &Range<usize>, message: String) -> Diagnostic {
        let offset = self.src.floor_char_boundary((span.start + self.base).min(self.src.len()));
        let col = self.src[..offset].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Diagnostic { file: self.file.clone(), line: self.line_of(offset), col, message }
    }

    /// A TOML syntax error or a serde error, at its span; serde speaks Rust, operators read TOML.
    pub fn toml_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        let msg = explain::explain(self.src, (span.start + self.base).min(self.src.len()), e.message());
        self.error(span, msg);
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let d = self.locate(&span, message.into());
        self.errors.push(d);
    }

    pub fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        let d = self.locate(&span, message.into());
        self.warnings.push(d);
    }

    /// The line of an offset in the whole file (not counted from `base`).
    pub fn line_of(&self, offset: usize) -> usize {
        let offset = self.src.floor_char_boundary(offset.min(self.src.len()));
        self.src[..offset].matches('\n').count() + 1
    }

    pub fn duration(&mut self, v: &Opt<String>, what: &str) -> Option<Duration> {
        let v = v.as_ref()?;
        match parse_duration(v.get_ref()) {
            Ok(d) if d.is_zero() => {
                self.error(v.span(), format!("{what}must be longer than zero"));
                None
            }
            Ok(d) if d > Duration::from_secs(366 * 86_400) => {
                self.error(v.span(), format!("{what}{} is longer than a year", v.get_ref()));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(v.span(), format!("{what}{e}"));
                None
            }
        }
    }

    pub fn count(&mut self, v: &Opt<i64>, what: &str, min: i64, max: i64) -> Option<u32> {
        let v = v.as_ref()?;
        let n = *v.get_ref();
        if n < min || n > max {
            self.error(v.span(), format!("{what}must be between {min} and {max}, not {n}"));
            return None;
        }
        u32::try_from(n).ok()
    }

    pub fn objective(&mut self, v: &Opt<f64>, what: &str) -> Option<f64> {
        let v = v.as_ref()?;
        let x = *v.get_ref();
        if x > 1.0 && x <= 100.0 {
            self.error(
                v.span(),
                format!("{what}objective is a ratio: write {} for {x} %", (x * 100.0).round() / 10_000.0),
            );
            None
        } else if !(x > 0.0 && x <= 1.0) {
            self.error(v.span(), format!("{what}objective must be in (0, 1], not {x}"));
            None
        } else {
            Some(x)
        }
    }

    pub fn name(&mut self, v: &S<String>, what: &str) -> String {
        let s = v.get_ref();
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.error(
                v.span(),
                format!(
                    "{what} name {s:?} must be 1-128 ASCII letters, digits, '-', '_' or '.', starting \
                     with a letter or digit (it is used in URLs and metric labels; put a Vietnamese name in display_name)"
                ),
            );
        }
        s.clone()
    }

    pub fn secret(&mut self, v: &Opt<String>, env: &dyn Fn(&str) -> Option<String>, what: &str) -> Option<String> {
        let v = v.as_ref()?;
        match env(v.get_ref()).filter(|s| !s.is_empty()) {
            Some(s) => Some(s),
            None => {
                self.error(
                    v.span(),
                    format!(
                        "{what}environment variable {} is not set (it holds a secret: export it before starting)",
                        v.get_ref()
                    ),
                );
                None
            }
        }
    }
}

/// Remembers where each name was first defined, to report duplicates.
pub struct Names<'a> {
    what: &'a str,
    seen: HashMap<String, Range<usize>>,
}

impl<'a> Names<'a> {
    pub fn new(what: &'a str) -> Names<'a> {
        Names { what, seen: HashMap::new() }
    }

    pub fn add(&mut self, cx: &mut Cx<'_>, name: &S<String>) {
        if let Some(first) = self.seen.get(name.get_ref()) {
            let line = cx.line_of(first.start);
            cx.error(
                name.span(),
                format!("duplicate {} name {:?} (first defined on line {line})", self.what, name.get_ref()),
            );
        } else {
            let span = name.span();
            self.seen.insert(name.get_ref().clone(), span.start + cx.base..span.end + cx.base);
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.seen.contains_key(name)
    }
}
