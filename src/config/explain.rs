//! Turns the TOML parser's messages into ones an operator can act on: which table or target,
//! which key, and the closest valid key for a typo.

const DURATION_KEYS: [&str; 17] = [
    "interval",
    "timeout",
    "max_rtt",
    "spacing",
    "max_latency",
    "max_outage",
    "degraded_window",
    "group_interval",
    "repeat_interval",
    "escalate_after",
    "poll",
    "stale_after",
    "at_risk_before",
    "shutdown_grace",
    "every",
    "deadline",
    "hold",
];

/// Where in the file an offset is: `[defaults]`, `[[target]] "vnpt-dns"`, or top level.
fn context(src: &str, offset: usize) -> Option<String> {
    let before = &src[..src.floor_char_boundary(offset.min(src.len()))];
    let header_pos = before
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0))
        .filter(|&i| src[i..].trim_start().starts_with('['))
        .max()?;
    let line_end = src[header_pos..].find('\n').map_or(src.len(), |e| header_pos + e);
    let header = src[header_pos..line_end].trim();
    let header = header.split('#').next().unwrap_or(header).trim().to_string();
    if !header.starts_with("[[") {
        return Some(header);
    }
    // For an array of tables, name the element by its `name` key.
    let block_end = src[line_end..]
        .match_indices('\n')
        .map(|(i, _)| line_end + i + 1)
        .find(|&i| src[i..].trim_start().starts_with('['))
        .unwrap_or(src.len());
    let name = src[line_end..block_end].lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
    });
    Some(match name {
        Some(n) => format!("{header} \"{n}\""),
        None => header,
    })
}

/// The key assigned on the line holding `offset`, if the line is `key = value`.
fn key_at(src: &str, offset: usize) -> Option<String> {
    let offset = src.floor_char_boundary(offset.min(src.len()));
    let start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
    let (k, _) = src[start..end].split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.len() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Rewrites one parser message found at `offset` of `src`.
pub fn explain(src: &str, offset: usize, message: &str) -> String {
    let ctx = context(src, offset);
    let in_ctx = ctx.as_ref().map(|c| format!(" in {c}")).unwrap_or_default();
    let message =
        message.trim().replace("expected i64", "expected an integer").replace("expected f64", "expected a number");
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (word, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        if word == "port" && candidates.contains(&"address") {
            // host + port is how people write a TCP target; "did you mean `host`?" misleads.
            return format!(
                "unknown key `port`{in_ctx}: tcp, tls and sip targets take `address = \"host:port\"`, dns `server = \"ip:port\"`"
            );
        }
        return match closest(word, candidates.iter().copied()) {
            Some(best) => format!("unknown key `{word}`{in_ctx} (did you mean `{best}`?)"),
            None => format!("unknown key `{word}`{in_ctx}; CONFIGURATION.md lists the keys of each table"),
        };
    }
    let key = key_at(src, offset);
    if message.starts_with("invalid type") {
        let key_text = key.as_ref().map(|k| format!("`{k}`")).unwrap_or_else(|| "value".to_string());
        let hint = match &key {
            Some(k) if DURATION_KEYS.contains(&k.as_str()) && message.ends_with("expected a string") => {
                " (durations are strings such as \"10s\", \"5m\", \"1h30m\")"
            }
            _ => "",
        };
        return format!("{key_text}{in_ctx}: {message}{hint}");
    }
    if message.starts_with("duplicate key") {
        return match key {
            Some(k) => format!("duplicate key `{k}`{in_ctx}"),
            None => format!("{message}{in_ctx}"),
        };
    }
    if message.starts_with("missing field") {
        return format!("{}{in_ctx}", message.replace("missing field", "missing key"));
    }
    format!("{message}{}", ctx.map(|c| format!(" (in {c})")).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(closest("intreval", ["interval", "timeout"]), Some("interval"));
        assert_eq!(closest("zzz", ["interval", "timeout"]), None);
    }

    #[test]
    fn context_names_the_target() {
        let src = "[defaults]\ninterval = \"5s\"\n\n[[target]]\nkind = \"tcp\"\nname = \"web\"\nbad = 1\n";
        let off = src.find("bad").unwrap();
        assert_eq!(context(src, off).as_deref(), Some("[[target]] \"web\""));
        assert_eq!(context(src, 12).as_deref(), Some("[defaults]"));
        assert_eq!(key_at(src, off + 6).as_deref(), Some("bad"));
    }
}
