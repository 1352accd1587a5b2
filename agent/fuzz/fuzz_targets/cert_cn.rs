//! Fuzzes the minimal DER reader of the agent's client certificate's subject CN
//! (`sync::cn::subject_cn`): arbitrary bytes are an error or a CN, never a panic, and a CN
//! read is never longer than the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::sync::cn::subject_cn;

fuzz_target!(|data: &[u8]| {
    if let Ok(cn) = subject_cn(data) {
        assert!(cn.len() <= data.len());
    }
});
