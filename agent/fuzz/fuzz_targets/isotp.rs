//! Fuzzes ISO-TP reassembly: the input is split into frames (each prefixed by one header
//! byte: low 7 bits = frame length, high bit = jump the clock past N_Cr) and fed to an active
//! and a passive `Receiver`, a `Demux` and a `Sender`'s flow-control path. Nothing may panic.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use rapport_agent::proto::isotp::{Config, Demux, Receiver, Sender};

fuzz_target!(|data: &[u8]| {
    let config = Config {
        block_size: 3,
        max_payload: 512,
        ..Config::default()
    };
    let mut active = Receiver::new(0x7E8, config);
    let mut passive = Receiver::new_passive(0x7E8, config);
    let mut demux = Demux::new(config, 2);
    let mut sender = Sender::new(0x7E0, config);
    let mut now = Duration::ZERO;
    let mut rest = data;
    let mut n = 0u32;
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head & 0x7F).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        now += if head & 0x80 != 0 {
            Duration::from_millis(1500)
        } else {
            Duration::from_micros(700)
        };
        n = n.wrapping_add(1);
        let _ = active.on_frame(frame, now);
        let _ = active.poll(now);
        let _ = passive.on_frame(frame, now);
        let _ = demux.on_frame(0x7E8 + n % 3, frame, now);
        let _ = demux.poll(now);
        if sender.is_idle() {
            let _ = sender.start(frame);
        }
        let _ = sender.on_flow_control(frame, now);
        let _ = sender.poll(now);
    }
});
