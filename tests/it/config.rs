//! Config validation: bad-config fixtures with their exact messages (`tests/fixtures/bad/*.toml`
//! next to `*.expected`), and every shipped config under `config/` must parse.

use std::path::{Path, PathBuf};

use thongsuot::config::{Config, ConfigError};

use crate::support::repo_path;

fn messages(path: &Path) -> Vec<String> {
    match Config::load_with_env(path, &|_| None) {
        Ok(_) => vec![],
        Err(ConfigError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn bad_configs_give_their_exact_messages() {
    // Messages name the file as given: run from the repository root like the CLI would be.
    let root = repo_path("");
    let fixtures = files("tests/fixtures/bad", "toml");
    assert!(fixtures.len() >= 6, "fixtures missing");
    let mut failures = Vec::new();
    for f in fixtures {
        let rel = f.strip_prefix(&root).expect("under repo");
        let got = messages(rel).join("\n");
        let expected_path = f.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing; this file gives:\n{got}", expected_path.display()));
        if got.trim() != expected.trim() {
            failures.push(format!("{}:\n--- expected\n{}\n--- got\n{got}\n", rel.display(), expected.trim()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shipped_config_parses() {
    let configs = files("config", "toml");
    assert!(configs.iter().any(|p| p.ends_with("demo.toml")));
    for c in configs {
        // Secrets named by the examples are provided; anything else would be a real error.
        let cfg = Config::load_with_env(&c, &|k| Some(format!("test-secret-for-{k}")))
            .unwrap_or_else(|e| panic!("{} does not parse:\n{e}", c.display()));
        assert!(!cfg.targets.is_empty(), "{} has no targets", c.display());
    }
}

#[test]
fn design_minimal_config_works_as_written() {
    let cfg = Config::load_with_env(&repo_path("config/minimal.toml"), &|_| None).expect("minimal config");
    // The four of the file, and the tracking API of its postal operator.
    assert_eq!(cfg.targets.len(), 5);
    assert!(cfg.targets.iter().any(|t| t.name == "vnpost-tracking-api" && t.spec.kind() == "postal"));
    assert_eq!(cfg.defaults.confirm, 3);
    assert_eq!(cfg.daemon.listen.to_string(), "127.0.0.1:9798");
    // Local times are read in Asia/Ho_Chi_Minh (UTC+7).
    assert_eq!(cfg.periods[0].start.to_rfc3339(), "2021-07-06T17:00:00+00:00");
    let postal = cfg.postal.expect("postal");
    assert!(postal.consignments.expect("csv").ends_with("config/consignments.csv"));
    assert_eq!(postal.operators[0].status_map.get("LOST").map(String::as_str), Some("lost"));
    // The period's 5 s interval applies during the exam day, the default outside it.
    let t = &cfg.targets[0];
    let during = chrono::DateTime::parse_from_rfc3339("2021-07-07T09:00:00+07:00").expect("time").to_utc();
    let after = chrono::DateTime::parse_from_rfc3339("2021-07-08T09:00:00+07:00").expect("time").to_utc();
    let c = Config::load_with_env(&repo_path("config/minimal.toml"), &|_| None).expect("again");
    assert_eq!(c.interval_for(t, during).as_secs(), 5);
    assert_eq!(c.interval_for(t, after).as_secs(), 10);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text = "[daemon]\napi_token_env = \"T\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.vn\"\nusername = \"u\"\npassword_env = \"P\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
    let cfg = Config::parse(Path::new("x.toml"), text, &|k| Some(format!("s3cret-{k}-value"))).expect("valid");
    let dump = format!("{cfg:?}");
    assert!(!dump.contains("s3cret"), "secret leaked: {dump}");
    assert_eq!(cfg.smtp.and_then(|s| s.password).as_deref(), Some("s3cret-P-value"));
}

#[test]
fn shards_split_targets_stably() {
    let mut text = String::from("[[group]]\nname = \"g\"\n");
    for i in 0..60 {
        text.push_str(&format!(
            "[[target]]\nname = \"site-{i}\"\ngroup = \"g\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n"
        ));
    }
    // Postal tracking, with its tracking API target, runs on shard 1 only.
    text.push_str("[postal]\n[[postal.operator]]\nname = \"vnpost\"\ntrack_url = \"http://127.0.0.1:1/{tracking}\"\nstatus_pointer = \"/s\"\n");
    let mut total = 0;
    for i in 1..=3 {
        let t = format!("[daemon]\nshard = \"{i}/3\"\n{text}");
        let cfg = Config::parse(Path::new("x.toml"), &t, &|_| None).expect("valid");
        let n = cfg.active_targets().count();
        assert!(n > 5, "shard {i}/3 got only {n} of 61");
        let api = cfg.active_targets().any(|t| t.name == "vnpost-tracking-api");
        assert_eq!((api, cfg.tracks_postal()), (i == 1, i == 1), "shard {i}");
        total += n;
    }
    assert_eq!(total, 61, "every target in exactly one shard");
}

#[test]
fn the_complete_example_of_configuration_md_is_valid() {
    let doc = std::fs::read_to_string(repo_path("CONFIGURATION.md")).expect("CONFIGURATION.md");
    let last = doc.rsplit("```toml\n").next().and_then(|b| b.split("```").next()).expect("a toml block");
    let cfg =
        Config::parse(&repo_path("CONFIGURATION.md"), last, &|k| Some(format!("secret-value-for-{k}-0123456789")))
            .unwrap_or_else(|e| panic!("the complete example in CONFIGURATION.md does not parse:\n{e}"));
    assert!(cfg.targets.len() >= 5, "the complete example should show most kinds");
}
