//! Fuzzes the Vector BLF reader (file header, objects, zlib containers): any bytes must read to
//! the end without panicking or allocating past the declared caps, and every frame must survive
//! a round trip through the `candump -l` writer. The input is prefixed with a valid file header
//! half of the time so the fuzzer reaches the objects quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::can::trace::{ChannelMap, blf::BlfReader};

mod common;

fuzz_target!(|data: &[u8]| {
    let mut input = Vec::with_capacity(data.len() + 144);
    if data.first().is_some_and(|b| b & 1 == 1) {
        let mut header = [0u8; 144];
        header[..4].copy_from_slice(b"LOGG");
        header[4..8].copy_from_slice(&144u32.to_le_bytes());
        input.extend_from_slice(&header);
        input.extend_from_slice(data.get(1..).unwrap_or_default());
    } else {
        input.extend_from_slice(data);
    }
    let mut reader = BlfReader::new(&input[..], ChannelMap::default());
    for item in reader.by_ref() {
        if let Ok(f) = item {
            common::round_trip(&f);
        }
    }
});
