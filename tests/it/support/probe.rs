//! One probe of one target, through the library, as the scheduler runs it.

use std::path::Path;

use thongsuot::config::{Config, Target};
use thongsuot::probe::{self, FailureKind, Outcome, Probers};

/// The one target of a config made of `keys` (its kind and options) under defaults of a 10 s
/// interval and a 2 s timeout.
pub fn target(keys: &str) -> Target {
    let text = format!(
        "[defaults]\ninterval = \"10s\"\ntimeout = \"2s\"\n[[group]]\nname = \"g\"\n[[target]]\nname = \"t\"\ngroup = \"g\"\n{keys}\n"
    );
    let c = Config::parse(Path::new("test.toml"), &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    (*c.targets.into_iter().next().expect("one target")).clone()
}

pub async fn run(t: &Target) -> Outcome {
    let probers = Probers::new();
    run_with(t, &probers).await
}

pub async fn run_with(t: &Target, probers: &Probers) -> Outcome {
    let prepared = match probe::prepare(&t.spec, &t.binding, probers) {
        Ok(p) => p,
        Err(f) => {
            return Outcome { failure: Some(f), ..Outcome::default() };
        }
    };
    probe::run(&t.spec, &prepared, &t.binding, probers, 4242, t.timeout).await
}

pub fn kind(o: &Outcome) -> Option<FailureKind> {
    o.failure.as_ref().map(|f| f.kind)
}
