//! Fuzzes the PEAK TRC reader: any bytes must read to the end without panicking, every line
//! counted once, and every frame must survive a round trip through the `candump -l` writer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::can::trace::{ChannelMap, trc::TrcReader};

mod common;

fuzz_target!(|data: &[u8]| {
    let mut reader = TrcReader::new(data, ChannelMap::default());
    for item in reader.by_ref() {
        if let Ok(f) = item {
            common::round_trip(&f);
        }
    }
    let s = reader.stats();
    assert_eq!(s.lines, s.frames + s.skipped + s.bad);
});
