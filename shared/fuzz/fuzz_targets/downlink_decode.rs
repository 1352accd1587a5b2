//! Fuzz the downlink decoder (what an agent reads from the broker) with arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_shared::Downlink;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Downlink::decode(data) {
        if let Ok(bytes) = env.encode() {
            assert_eq!(Downlink::decode(&bytes).ok(), Some(env));
        }
    }
});
