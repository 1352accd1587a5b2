//! Fuzz target: parsing an arbitrary DBC file must never panic.
//!
//! `check-config` and the agent load operator-supplied DBC files, and the release build
//! aborts on panic, so a hostile or corrupt file must come back as `DbcError`. The bytes go
//! through `DbcFile::from_bytes`, which covers both the UTF-8 and the Windows-1252 path.
//! Seed the corpus with `agent/fixtures/passenger.dbc` for useful coverage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::proto::dbc::DbcFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = DbcFile::from_bytes("fuzz.dbc", data) {
        std::hint::black_box(file.message_count());
    }
});
