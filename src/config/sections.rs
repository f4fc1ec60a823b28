//! Finds the `[[target]]` sections of a config document without parsing it, so that each
//! target can be parsed on its own: parsing every target as one document holds a token per
//! lexeme and a tree of every table at once, many times the size of the file, and on a reload
//! that memory would stay with the daemon as heap fragments. A section runs from its
//! `[[target]]` header to the next header that is not one of its sub-tables (`[target.x]`,
//! `[[target.x]]`).

use std::borrow::Cow;
use std::ops::Range;

use toml_parser::Source;
use toml_parser::lexer::TokenKind;

/// What a table header opens.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// `[[target]]`: a new target.
    Target,
    /// `[target.x]`, `[[target.x]]`: a sub-table of the current target.
    TargetPart,
    /// Any other table.
    Other,
    /// A quoted key with escapes: it may spell `target`.
    Unsure,
}

/// The document split: byte ranges of the `[[target]]` sections, in order, and the rest of the
/// document with those sections blanked (spaces, newlines kept), so that its offsets, lines and
/// columns are the original ones.
pub struct Split<'a> {
    pub targets: Vec<Range<usize>>,
    pub rest: Cow<'a, str>,
}

/// Splits the document; where a split could change its meaning (a `[target.x]` after another
/// table, which TOML gives to the last `[[target]]`; an escaped quoted key) nothing is split and
/// the document is parsed whole, as before.
pub fn split(text: &str) -> Split<'_> {
    let whole = || Split { targets: Vec::new(), rest: Cow::Borrowed(text) };
    let mut targets: Vec<Range<usize>> = Vec::new();
    let mut open: Option<usize> = None;
    for (start, header) in headers(text) {
        match header {
            Header::Target => {
                if let Some(s) = open.replace(start) {
                    targets.push(s..start);
                }
            }
            Header::TargetPart if open.is_none() && !targets.is_empty() => return whole(),
            Header::Unsure => return whole(),
            Header::TargetPart => {}
            Header::Other => {
                if let Some(s) = open.take() {
                    targets.push(s..start);
                }
            }
        }
    }
    if let Some(s) = open {
        targets.push(s..text.len());
    }
    if targets.is_empty() {
        return whole();
    }
    let rest = {
        let mut bytes = text.as_bytes().to_vec();
        for r in &targets {
            for b in &mut bytes[r.clone()] {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        // Only whole sections (each starts and ends at a token boundary) were blanked with
        // ASCII, so the text is still UTF-8; should that ever fail, nothing is split.
        match String::from_utf8(bytes) {
            Ok(s) => Cow::Owned(s),
            Err(_) => return whole(),
        }
    };
    Split { targets, rest }
}

/// The table headers of the document: where each starts, and what it opens. Brackets inside
/// values (arrays, inline tables, strings) are not headers.
fn headers(text: &str) -> Vec<(usize, Header)> {
    let source = Source::new(text);
    let mut out = Vec::new();
    let mut tokens = source.lex().peekable();
    // Open brackets and braces of the value being read: a header only starts a line outside any.
    let mut depth = 0usize;
    let mut line_start = true;
    while let Some(tok) = tokens.next() {
        match tok.kind() {
            TokenKind::Eof => break,
            TokenKind::Whitespace | TokenKind::Comment => continue,
            TokenKind::Newline => {
                line_start = depth == 0;
                continue;
            }
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                let start = tok.span().start();
                let double = tokens.peek().is_some_and(|t| t.kind() == TokenKind::LeftSquareBracket);
                if double {
                    tokens.next();
                }
                // The key, up to the closing bracket: whether its first part is `target`, and how
                // many parts it has (the lexer makes each dot a token of its own).
                let mut is_target = false;
                let mut parts = 0;
                let mut escaped = false;
                for t in tokens.by_ref() {
                    match t.kind() {
                        TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString => {
                            let raw = source.get(t.span()).map_or("", |r| r.as_str());
                            escaped |= t.kind() == TokenKind::BasicString && raw.contains('\\');
                            if parts == 0 {
                                is_target = unquote(raw) == "target";
                            }
                            parts += 1;
                        }
                        TokenKind::RightSquareBracket | TokenKind::Newline | TokenKind::Eof => break,
                        _ => {}
                    }
                }
                let header = match (is_target, double, parts) {
                    _ if escaped => Header::Unsure,
                    (true, true, 1) => Header::Target,
                    (true, _, _) => Header::TargetPart,
                    _ => Header::Other,
                };
                out.push((start, header));
                // The rest of the header line (closing brackets, comment) is not a value.
                line_start = false;
                depth = 0;
                continue;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        line_start = false;
    }
    out
}

/// A key part as written, without its quotes (escapes are left to the caller).
fn unquote(raw: &str) -> &str {
    let t = raw.trim();
    ['"', '\''].iter().find_map(|q| t.strip_prefix(*q).and_then(|s| s.strip_suffix(*q))).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<&str> {
        split(text).targets.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn sections_run_to_the_next_foreign_header() {
        let text = "[daemon]\nlisten = \"x\"\n\n[[target]]\nname = \"a\"\n[target.headers]\nX = \"1\"\n\n[[target]]\nname = \"b\"\n\n[[group]]\nname = \"g\"\n[[target]]\nname = \"c\"\n";
        assert_eq!(
            sections(text),
            vec![
                "[[target]]\nname = \"a\"\n[target.headers]\nX = \"1\"\n\n",
                "[[target]]\nname = \"b\"\n\n",
                "[[target]]\nname = \"c\"\n"
            ]
        );
        let rest = split(text).rest;
        assert_eq!(rest.len(), text.len());
        assert_eq!(rest.lines().count(), text.lines().count());
        assert!(rest.contains("[daemon]") && rest.contains("[[group]]") && !rest.contains("target"));
    }

    #[test]
    fn brackets_in_values_and_strings_are_not_headers() {
        let text = "[[target]]\nname = \"a\"\nexpect_answer = [\n[\"x\"],\n  \"[[group]]\",\n]\nbody = '''\n[[group]]\n'''\n[[ target ]] # b\nname = \"b\"\n[\"target\"]\n";
        let s = sections(text);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].contains("'''\n[[group]]\n'''"));
        assert!(s[1].starts_with("[[ target ]]"));
        // `["target"]` is the same key as `target`: a plain table of it ends no section
        // (the parser then rejects it, as it would in one document).
        assert!(s[1].ends_with("[\"target\"]\n"));
    }

    #[test]
    fn ambiguous_documents_are_not_split() {
        // TOML gives `[target.headers]` to the last [[target]], across the [[group]].
        let late = "[[target]]\nname = \"a\"\n[[group]]\nname = \"g\"\n[target.headers]\nX = \"1\"\n";
        assert!(sections(late).is_empty());
        assert_eq!(split(late).rest, late);
        assert!(sections("[[target]]\n[[\"t\\u0061rget\"]]\n").is_empty());
    }

    #[test]
    fn dotted_and_quoted_keys() {
        assert_eq!(
            sections("[[target]]\n[[target.uplink]]\n[\"target.x\"]\na = 1\n"),
            vec!["[[target]]\n[[target.uplink]]\n"]
        );
        assert_eq!(sections("[[targets]]\n[[\"target\"]]\n"), vec!["[[\"target\"]]\n"]);
        assert!(sections("[daemon]\nx = 1\n").is_empty());
    }
}
