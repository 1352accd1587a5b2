//! Fuzzes the J1939 transport reassembler with a fake clock: the input is cut into records of
//! [id selector, time step, length, 8 data bytes]; every delivered message is also run through
//! the DM1 and parameter-group decoders. Nothing may panic, and every message must have a
//! length within the J1939-21 limit.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use rapport_agent::proto::j1939::dm1::Dm1;
use rapport_agent::proto::j1939::pgn::{CruiseControlVehicleSpeed, VehicleDistance};
use rapport_agent::proto::j1939::tp::{MAX_TP_SIZE, TpConfig, TpEvent, TransportProtocol};

/// TP.CM and TP.DT ids between a few addresses (0x00 is "us"), so sessions actually meet.
const IDS: [u32; 8] = [
    0x18EC_FF00,
    0x1CEB_FF00,
    0x18EC_00F9,
    0x18EB_00F9,
    0x18EC_F900,
    0x18EC_0100,
    0x18EC_0001,
    0x18EB_0100,
];

fuzz_target!(|input: &[u8]| {
    let mut tp = TransportProtocol::new(TpConfig {
        own_address: Some(0x00),
        max_sessions: 4,
        ..TpConfig::default()
    });
    let mut now = Duration::ZERO;
    for record in input.chunks(11) {
        let [selector, step, len, data @ ..] = record else {
            break;
        };
        // Steps of 10 ms up to 2.55 s cross every J1939-21 timeout.
        now += Duration::from_millis(u64::from(*step) * 10);
        let id = if selector & 0x80 != 0 {
            // Any 32-bit-ish id built from the data, to reach the id checks too.
            u32::from_le_bytes([*selector, *step, *len, data.first().copied().unwrap_or(0)])
        } else {
            IDS[usize::from(*selector) % IDS.len()]
        };
        let data = &data[..usize::from(*len).min(data.len())];
        if let Ok(Some(TpEvent::Message { message, .. })) = tp.on_frame(id, data, now) {
            assert!(!message.data.is_empty() && message.data.len() <= MAX_TP_SIZE);
            if let Ok(dm1) = Dm1::parse(message.data) {
                for dtc in dm1.dtcs() {
                    assert!(dtc.spn < (1 << 19) && dtc.fmi < 32);
                }
            }
            let _ = VehicleDistance::decode(message.data);
            let _ = CruiseControlVehicleSpeed::decode(message.data);
        }
        while tp.poll(now).is_some() {}
        assert!(tp.open_sessions() <= 4);
    }
});
