//! Fuzzes the agent's config loader (`config::parse`, what `config::load` does after reading
//! the file): any text is a config or a syntax or value error, never a panic. The DBC file a
//! `[dbc]` section names is never read: the repo's `agent/fixtures/passenger.dbc` stands in
//! for every path, so the signals named are checked and compiled against it. A config
//! accepted must hold what the checks promise.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rapport_agent::config::parse;
use rapport_agent::proto::dbc::DbcFile;

/// The DBC every `[dbc] file` reads as: the one `config/passenger.toml` names.
fn dbc() -> &'static DbcFile {
    static DBC: OnceLock<DbcFile> = OnceLock::new();
    DBC.get_or_init(|| {
        DbcFile::parse(
            "passenger.dbc",
            include_str!("../../fixtures/passenger.dbc"),
        )
        .expect("the repo's DBC parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = parse("fuzz.toml", text, |_| Ok(dbc().clone())) {
        assert!(!loaded.config.vehicle.line.trim().is_empty());
        assert_eq!(loaded.config.dbc.is_some(), loaded.dbc.is_some());
    }
});
