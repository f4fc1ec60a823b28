//! A short, deterministic fuzz run CI can afford (the real fuzzing is `cargo fuzz`, see
//! fuzz/README.md): every seed of `fuzz/seeds/` and thousands of mutations of it (bit flips,
//! byte changes, cuts, repeats, splices — a fixed-seed generator, so a failure reproduces) go
//! through the same functions as the fuzz targets. Any panic fails the test.

use std::path::Path;

use thongsuot::config::Config;
use thongsuot::postal::{adapter, intake};
use thongsuot::probe::ProbeSpec;

use crate::support::{Rng, repo_path};

const INTERESTING: [&[u8]; 12] =
    [b"\"", b"{", b"}", b"[", b"]", b",", b"\\u0000", b"1e999", b"-1", b"null", b"\n", b"\xff\xfe"];

fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(at),
            3 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, piece.iter().copied());
            }
            4 if !v.is_empty() => {
                let i = rng.below(v.len());
                let len = 1 + rng.below(16.min(v.len() - i));
                let chunk: Vec<u8> = v[i..i + len].to_vec();
                for _ in 0..1 + rng.below(50) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
            5 if !others.is_empty() => {
                let o = &others[rng.below(others.len())];
                let i = rng.below(o.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&o[i..]);
            }
            _ => v.insert(at.min(v.len()), rng.next() as u8),
        }
    }
    v
}

fn seeds(dir: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(repo_path(&format!("fuzz/seeds/{dir}")))
        .expect("fuzz seeds")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).expect("seed")).collect()
}

/// Runs `f` on every seed and `per_seed` mutations of each.
fn run(dir: &str, per_seed: usize, mut f: impl FnMut(&[u8])) -> usize {
    let all = seeds(dir);
    assert!(!all.is_empty(), "no seeds in fuzz/seeds/{dir}");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = 0;
    for s in &all {
        f(s);
        for _ in 0..per_seed {
            f(&mutate(&mut rng, s, &all));
            n += 1;
        }
    }
    n
}

fn postal_config() -> Config {
    let text = std::fs::read_to_string(repo_path("fuzz/fuzz_targets/postal_csv.rs")).expect("target");
    let toml = text.split("r#\"").nth(1).and_then(|r| r.split("\"#").next()).expect("config in the CSV target");
    Config::parse(Path::new("fuzz.toml"), toml, &|_| None).expect("fuzz config")
}

#[test]
fn seeds_and_mutations_never_panic() {
    let started = std::time::Instant::now();
    let config = postal_config();
    let op = config.postal.as_ref().and_then(|p| p.operators.first()).cloned().expect("operator");
    let mut batch_op = op.clone();
    batch_op.batch_size = 10;
    batch_op.items_pointer = Some("/items".into());
    batch_op.status_pointer = "/status".into();
    batch_op.events_pointer = Some("/events".into());
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let mut total = run("postal_adapter", 12_000, |b| {
        let _ = adapter::parse(&op, b, tz);
        let _ = adapter::parse_batch(&batch_op, b, tz);
        let _ = adapter::parse_push(&op, b, tz);
    });
    let now = chrono::Utc::now();
    total += run("postal_csv", 5000, |b| {
        let (ok, errors) = intake::read_csv(b, "fuzz.csv", &config, now);
        assert!(ok.iter().all(|c| c.deadline_ms > c.accepted_ms));
        assert!(errors.iter().all(|e| e.starts_with("fuzz.csv")));
    });
    total += run("config", 1000, |b| {
        if let Ok(text) = std::str::from_utf8(b) {
            let _ = Config::parse(Path::new("fuzz.toml"), text, &|_| Some("secret".into()));
        }
    });
    let probe_text = std::fs::read_to_string(repo_path("fuzz/fuzz_targets/probe_checks.rs")).expect("target");
    let probe_toml = probe_text.split("r#\"").nth(1).and_then(|r| r.split("\"#").next()).expect("config");
    let probes = Config::parse(Path::new("fuzz.toml"), probe_toml, &|_| None).expect("probe config");
    total += run("probe_checks", 12_000, |b| {
        if b.len() < 2 {
            return;
        }
        let status = u16::from_be_bytes([b[0], b[1]]) % 600;
        for t in &probes.targets {
            match &t.spec {
                ProbeSpec::Http(s) => {
                    let _ = thongsuot::probe::http::check(s, status, &b[2..]);
                }
                ProbeSpec::Dns(s) => {
                    if let Ok(Some(m)) = thongsuot::probe::dns::decode(b, u16::from_be_bytes([b[0], b[1]])) {
                        let _ = thongsuot::probe::dns::check(s, &m);
                    }
                }
                _ => {}
            }
        }
    });
    eprintln!("{total} mutated inputs in {:?}, no panic", started.elapsed());
}
