//! Fuzzes the registry import (`POST /api/v1/registry`'s parsers, `fleet::registry`): byte 0
//! picks CSV or TOML, the rest is the uploaded file. Any bytes are entries or a list of
//! problems each naming its line, never a panic; entries accepted must be written by
//! `to_csv` and `to_toml` into files that read back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_cloud::fleet::registry::{parse_csv, parse_toml, to_csv, to_toml};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let parsed = if pick % 2 == 0 {
        parse_csv(text)
    } else {
        parse_toml(text)
    };
    match parsed {
        Ok(entries) => {
            let csv = to_csv(&entries);
            assert_eq!(parse_csv(&csv).as_ref().ok(), Some(&entries), "{csv}");
            let toml = to_toml(&entries);
            assert_eq!(parse_toml(&toml).as_ref().ok(), Some(&entries), "{toml}");
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
});
