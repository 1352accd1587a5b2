//! Fuzz target: DBC signal decoding of arbitrary frame bytes must never panic.
//!
//! The plan is compiled once from a small built-in DBC covering both byte orders, signed
//! and unsigned, 64-bit, float, simple and extended (nested) multiplexing, an extended id
//! and a 64-byte FD message. Input: byte 0 picks the message (or a random id), the rest
//! is the frame data, whatever its length.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rapport_agent::proto::dbc::{DbcFile, DecodePlan, WantedSignal};

const DBC: &str = r#"VERSION ""

BS_:

BO_ 496 Mixed: 8 X
 SG_ Temperature : 0|12@0- (0.01,250) [229.52|270.47] "degK" X
 SG_ Odo : 8|24@1+ (0.1,0) [0|1000000] "km" X
 SG_ Wide : 7|64@0- (1,0) [0|0] "" X
 SG_ WideLe : 0|64@1+ (1,0) [0|0] "" X
 SG_ Ratio : 32|32@1- (1,0) [0|0] "" X

BO_ 2148676694 Muxed: 8 X
 SG_ Outer M : 2|6@1+ (1,0) [0|0] "" X
 SG_ Inner m8M : 8|4@1+ (1,0) [0|0] "" X
 SG_ Deep m3 : 16|16@0+ (0.5,-3) [0|100] "" X
 SG_ Simple m24 : 40|9@1- (1,0) [-200|200] "" X

BO_ 2147485000 Fd: 64 X
 SG_ Far : 480|16@1- (0.5,-10) [-1000|1000] "" X
 SG_ Last : 511|8@0+ (1,0) [0|0] "" X
 SG_ Dbl : 0|64@1- (1,0) [0|0] "" X

SIG_VALTYPE_ 496 Ratio : 1;
SIG_VALTYPE_ 2147485000 Dbl : 2;
SG_MUL_VAL_ 2148676694 Inner Outer 8-8, 16-20;
SG_MUL_VAL_ 2148676694 Deep Inner 3-3;
"#;

fn plan() -> &'static DecodePlan {
    static PLAN: OnceLock<DecodePlan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let file = DbcFile::parse("fuzz.dbc", DBC).expect("built-in DBC parses");
        let wanted: Vec<WantedSignal> = [
            ("Mixed", "Temperature"),
            ("Mixed", "Odo"),
            ("Mixed", "Wide"),
            ("Mixed", "WideLe"),
            ("Mixed", "Ratio"),
            ("Muxed", "Outer"),
            ("Muxed", "Inner"),
            ("Muxed", "Deep"),
            ("Muxed", "Simple"),
            ("Fd", "Far"),
            ("Fd", "Last"),
            ("Fd", "Dbl"),
        ]
        .iter()
        .map(|(m, s)| WantedSignal::by_name(m, s))
        .collect();
        file.compile(&wanted).expect("built-in signals compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let (id, extended) = match pick % 4 {
        0 => (496, false),
        1 => (0x12_3456, true),
        2 => (0x548, true),
        _ => (u32::from(pick), pick & 0x80 != 0),
    };
    for result in plan().decode_raw(id, extended, payload) {
        if let Ok(v) = result {
            // Touch the value so nothing is optimised away.
            std::hint::black_box(v.value);
        }
    }
});
