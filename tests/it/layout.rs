//! The layout's invariants (ARCHITECTURE.md), read from the source: which module may use which.
//! Every `crate::` and `super::` path in `src/` (outside `#[cfg(test)] mod`s) is an edge from
//! the file's module to the module the path names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`probe::http::plain`) → file.
fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = path.strip_prefix(root).expect("under src").with_extension("");
            let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if segs.last().is_some_and(|s| s == "mod") {
                segs.pop();
            }
            if segs == ["lib"] || segs == ["main"] {
                continue;
            }
            out.insert(segs.join("::"), path);
        }
    }
    out
}

/// The source without comments, string and char literals (their text could look like paths).
fn code_only(s: &str) -> String {
    let b: Vec<char> = s.chars().collect();
    let (mut out, mut i) = (String::with_capacity(s.len()), 0);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if (c == 'r' || c == 'b') && (i == 0 || !ident(b[i - 1])) && raw_start(&b[i..]).is_some() {
            let (skip, hashes) = raw_start(&b[i..]).expect("checked");
            i += skip;
            let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime has no closing quote.
            i += 1;
            while i < b.len() && b[i] != '\'' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br"`…: (length of the opening, number of `#`).
fn raw_start(b: &[char]) -> Option<(usize, usize)> {
    let mut i = usize::from(b.first() == Some(&'b'));
    if b.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let hashes = b[i..].iter().take_while(|c| **c == '#').count();
    (b.get(i + hashes) == Some(&'"')).then_some((i + hashes + 1, hashes))
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        return vec![path.to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = tree[open + 1..].strip_suffix('}').unwrap_or(&tree[open + 1..]);
    let (mut parts, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p))
        .map(|p| if prefix.is_empty() { p } else { format!("{prefix}::{p}") })
        .collect()
}

/// The longest module the path names.
fn resolve(path: &str, mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "self").collect();
    (1..=segs.len()).rev().map(|n| segs[..n].join("::")).find(|m| mods.contains_key(m))
}

/// Module → the modules its code names.
fn edges(mods: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    mods.iter()
        .map(|(name, file)| {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
            (name.clone(), uses(name, &text, mods))
        })
        .collect()
}

/// The modules that the code of module `name` names.
fn uses(name: &str, text: &str, mods: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    {
        let text = code_only(text);
        // Unit tests may reach anywhere.
        let text = match text.find("#[cfg(test)]\nmod ") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let me: Vec<&str> = name.split("::").collect();
        // `super::` of `a::b::c` (file c.rs or c/mod.rs) is `a::b`.
        let parent = me[..me.len() - 1].join("::");
        let mut paths = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("use ") {
            let before = rest[..i].chars().last();
            rest = &rest[i + 4..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let end = rest.find(';').unwrap_or(rest.len());
            paths.extend(expand(&rest[..end]));
        }
        for (i, _) in text.match_indices("::") {
            let start = text[..i].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |s| s + 1);
            let head = &text[start..i];
            if head == "crate" || head == "super" {
                let tail: String =
                    text[start..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                paths.push(tail);
            }
        }
        let mut to = BTreeSet::new();
        for p in paths {
            let p = p.trim();
            let abs = if let Some(r) = p.strip_prefix("crate::") {
                r.to_string()
            } else if let Some(r) = p.strip_prefix("super::") {
                if parent.is_empty() { r.to_string() } else { format!("{parent}::{r}") }
            } else {
                continue;
            };
            if let Some(m) = resolve(&abs, mods)
                && m != name
            {
                to.insert(m);
            }
        }
        to
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    edges(&modules(&root))
}

fn related(a: &str, b: &str) -> bool {
    a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

fn top(m: &str) -> &str {
    m.split("::").next().unwrap_or(m)
}

/// Strongly connected components of more than one module (Tarjan), leaving out the edges between
/// a module and its own submodules (a parent re-exporting its children is not a circle).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten().filter(|w| !related(v, w) && g.contains_key(w.as_str())) {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.index[w]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t =
        T { g, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_reader_finds_every_kind_of_path() {
    let mods: BTreeMap<String, PathBuf> =
        ["a", "a::b", "c", "d", "e", "f"].iter().map(|m| (m.to_string(), PathBuf::new())).collect();
    let text = "use crate::{c::X, d::{self, Y}};\n// use crate::e;\n/* crate::e */\nfn f() { let _ = \"crate::e\"; let _ = '\"'; let _ = r#\"crate::e\"#; crate::f::g(); super::b::Z }\n\
                #[cfg(test)]\nmod tests { use crate::e; }\n";
    let want: BTreeSet<String> = ["c", "d", "f"].iter().map(|s| s.to_string()).collect();
    assert_eq!(uses("a::b", text, &mods), want, "comments, strings and unit tests are not edges");
    let want: BTreeSet<String> = ["a"].iter().map(|s| s.to_string()).collect();
    assert_eq!(uses("a::b", "use super::Q;", &mods), want, "super:: of a::b is a");
}

#[test]
fn no_module_circles() {
    let g = graph();
    assert!(g.len() > 40, "the source was not found: {} modules", g.len());
    let found = circles(&g);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let arrows: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g[a].iter().filter(|b| c.contains(b) && !related(a, b)).map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("{} ({})", c.join(", "), arrows.join("; "))
        })
        .collect();
    assert!(found.is_empty(), "import circles (ARCHITECTURE.md, 'Layers'):\n{}", shown.join("\n"));
}

#[test]
fn the_layers_point_one_way() {
    let g = graph();
    // (module, what it must not use, why)
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "probe",
            &["metrics", "store", "notify", "scheduler", "daemon", "http", "config", "report", "postal", "sla"],
            "a probe measures and returns an Outcome; recording it is the scheduler's",
        ),
        (
            "store",
            &["postal", "notify", "scheduler", "daemon", "http", "report", "metrics"],
            "the store owns the SQL and keeps model types; it never calls up",
        ),
        (
            "model",
            &["postal", "notify", "scheduler", "daemon", "http", "report", "metrics", "store"],
            "plain data, below everything that passes it around",
        ),
        (
            "sla",
            &["metrics", "store", "notify", "scheduler", "daemon", "http", "report", "postal"],
            "the SLA arithmetic is pure",
        ),
        (
            "text",
            &[
                "config",
                "probe",
                "metrics",
                "store",
                "notify",
                "scheduler",
                "daemon",
                "http",
                "report",
                "postal",
                "sla",
            ],
            "display helpers are the bottom layer",
        ),
        ("daemon", &["http"], "the HTTP layer serves the daemon's handles; main wires them"),
        ("scheduler", &["http", "daemon", "notify"], "the scheduler emits events; the notifier reads them"),
        ("notify", &["http", "daemon", "scheduler"], "the notifier reads events, not the scheduler"),
        (
            "config",
            &["metrics", "store", "notify", "scheduler", "daemon", "http", "report", "postal"],
            "the config is validated before anything runs",
        ),
    ];
    let mut broken = Vec::new();
    for (from, to) in g.iter().flat_map(|(a, bs)| bs.iter().map(move |b| (a, b))) {
        for (module, banned, why) in rules {
            if top(from) == *module && banned.contains(&top(to)) {
                broken.push(format!("{from} uses {to}: {why}"));
            }
        }
    }
    assert!(broken.is_empty(), "layer rules broken:\n{}", broken.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long: Vec<String> = modules(&root)
        .values()
        .chain([root.join("main.rs"), root.join("lib.rs")].iter())
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).map(|t| t.lines().count()).unwrap_or(0);
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    long.sort();
    // 200-400 lines is comfortable; over 600 a file does several things: split it by what each does.
    assert!(long.is_empty(), "files over 600 lines:\n{}", long.join("\n"));
}
