//! Config parsing and validation on arbitrary text: a config or located errors, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use thongsuot::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(Path::new("fuzz.toml"), text, &|_| Some("secret".to_string())) {
        Ok(_) => {}
        Err(ConfigError::Invalid(diags)) => {
            for d in diags {
                assert!(d.to_string().starts_with("fuzz.toml"));
            }
        }
        Err(ConfigError::Read { .. }) => unreachable!("no file is read"),
    }
});
