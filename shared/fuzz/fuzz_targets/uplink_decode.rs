//! Fuzz the uplink decoder with arbitrary bytes: it must never panic, and whatever it accepts
//! must encode again and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_shared::{Record, Uplink};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Uplink::decode(data) {
        // Re-encoding can only fail where the input broke encoder rules the decoder tolerates
        // (none today); if it succeeds, the round trip must be exact.
        if let Ok(bytes) = env.encode() {
            assert_eq!(Uplink::decode(&bytes).ok(), Some(env));
        }
    }
    let _ = Record::decode(data);
});
