//! Configuration: the TOML file (see `raw`) validated into domain types that the rest of the
//! daemon uses. Only this module knows TOML. Every error is reported, each located as
//! `FILE:LINE:COL: message`; defaults live in [`builtin`].
//!
//! - `model`: the validated types, re-exported here (`config::Config`, `config::Target`, …);
//! - `raw`: the file as written, with spans; `sections` splits off its `[[target]]` sections;
//! - `validate`: one file per section, checking it into the model;
//! - `kinds`: one file per target kind, with the keys it accepts and their checks;
//! - `diagnostics`: the located messages and the validation context;
//! - `defaults`: the built-in defaults, as `config::builtin`.

mod defaults;
mod diagnostics;
mod explain;
mod kinds;
mod model;
mod raw;
mod sections;
pub mod units;
mod validate;

/// Built-in defaults, in one place (`defaults.rs`).
pub mod builtin {
    pub use super::defaults::*;
}

pub use diagnostics::{ConfigError, Diagnostic};
pub use model::*;

use std::path::Path;

use serde::Deserialize;

use diagnostics::Cx;
use raw::RawConfig;
use validate::TargetInput;

impl Config {
    /// Reads and validates a config file, taking secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, &|k| std::env::var(k).ok())
    }

    /// As [`Config::load`], for a reload: targets equal to one of `previous` are that target
    /// (the same `Arc`), not a copy. A copy per target would leave the old ones as heap holes
    /// between the new ones after every reload, and resident memory would grow with each.
    pub fn reload(previous: &Config) -> Result<Config, ConfigError> {
        let text = read(&previous.path)?;
        Config::parse_reusing(&previous.path, &text, &|k| std::env::var(k).ok(), Some(previous))
    }

    /// As [`Config::load`], with the environment passed in (tests).
    pub fn load_with_env(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::parse(path, &read(path)?, env)
    }

    /// Validates config text; `path` names it in messages and anchors relative paths.
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::parse_reusing(path, text, env, None)
    }

    fn parse_reusing(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        previous: Option<&Config>,
    ) -> Result<Config, ConfigError> {
        let mut cx = Cx { file: path.to_path_buf(), src: text, base: 0, errors: Vec::new(), warnings: Vec::new() };
        // Each `[[target]]` section is validated on its own (see `validate::target`).
        let split = sections::split(text);
        let mut doc = match toml::de::DeTable::parse(&split.rest) {
            Ok(d) => d,
            Err(e) => {
                cx.toml_error(&e);
                return Err(ConfigError::Invalid(cx.errors));
            }
        };
        let inline = doc.get_mut().remove("target");
        if let Some(v) = &inline
            && !split.targets.is_empty()
        {
            cx.error(
                v.span(),
                "`target` keys outside their [[target]]: put a `[target.…]` table right after the [[target]] it belongs to",
            );
        }
        let targets = TargetInput { inline, sections: split.targets, previous };
        let raw = match RawConfig::deserialize(toml::de::Deserializer::from(doc)) {
            Ok(r) => r,
            Err(e) => {
                cx.toml_error(&e);
                return Err(ConfigError::Invalid(cx.errors));
            }
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = validate::validate(&mut cx, raw, targets, &base, path, env);
        if cx.errors.is_empty() {
            let mut config = config;
            cx.warnings.sort_by_key(|d| (d.line, d.col));
            config.warnings = cx.warnings;
            Ok(config)
        } else {
            cx.errors.sort_by_key(|d| (d.line, d.col));
            Err(ConfigError::Invalid(cx.errors))
        }
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}
