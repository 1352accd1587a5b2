//! Fuzzes the cloud's config loader (what `config::load` does after reading the file:
//! `Config::from_toml`, then `config::check`): any text is a config or a syntax or value
//! error, never a panic. A config accepted must be accepted again when checked twice (the
//! checks read nothing but the text and the environment).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_cloud::config::{Config, check};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml("fuzz.toml", text) else {
        return;
    };
    if let Ok(config) = check(config) {
        assert!(check(config).is_ok());
    }
});
