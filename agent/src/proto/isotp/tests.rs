//! Whole-channel tests: real-vehicle and peer-suite vectors through the public API, several
//! ECUs at once through [`Demux`], the open3e trace, and property tests that pair a
//! [`Sender`] with a [`Receiver`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;

use proptest::prelude::*;

use super::fixtures::{ms, unpadded};
use super::*;

/// Feeds frames to a passive receiver; returns every payload completed.
fn replay(rx: &mut Receiver, frames: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if let RxEvent::Complete(p) = rx.on_frame(frame, ms(i as u64)).unwrap() {
            out.push(p.to_vec());
        }
    }
    out
}

#[test]
fn real_vehicle_multi_frame_mode_01_pid_78() {
    // Ircama/ELM327-emulator #40 (VECTORS.md §1c): 7E8, 11-byte mode 01 PID 78 answer.
    let mut rx = Receiver::new_passive(0x7E8, unpadded());
    let got = replay(
        &mut rx,
        &[
            // 10 0B = FF length 11 | 41 78 0D 06 1F 01
            &[0x10, 0x0B, 0x41, 0x78, 0x0D, 0x06, 0x1F, 0x01],
            // 21 = CF 1 | 90 03 DA 02 A6, then 00 00 padding
            &[0x21, 0x90, 0x03, 0xDA, 0x02, 0xA6, 0x00, 0x00],
        ],
    );
    assert_eq!(
        got,
        [vec![
            0x41, 0x78, 0x0D, 0x06, 0x1F, 0x01, 0x90, 0x03, 0xDA, 0x02, 0xA6
        ]]
    );
}

#[test]
fn real_vehicle_29_bit_single_frames() {
    // brendan-w/python-OBD #254 (VECTORS.md §1c): 18DAF111 and 18DAF140 answer at once.
    let mut demux = Demux::new_passive(unpadded(), 4);
    let frames: [(u32, &[u8]); 4] = [
        // 06 = SF 6 | 47 02 22 6D 22 6E: mode 07, 2 DTCs
        (0x18DA_F111, &[0x06, 0x47, 0x02, 0x22, 0x6D, 0x22, 0x6E]),
        // 03 = SF 3 | 41 0D 00: speed 0
        (0x18DA_F111, &[0x03, 0x41, 0x0D, 0x00]),
        (0x18DA_F111, &[0x04, 0x41, 0x0C, 0x17, 0x10]),
        (0x18DA_F140, &[0x02, 0x47, 0x00]),
    ];
    let got: Vec<Vec<u8>> = frames
        .iter()
        .map(
            |(id, data)| match demux.on_frame(*id, data, ms(0)).unwrap() {
                RxEvent::Complete(p) => p.to_vec(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(got[0], [0x47, 0x02, 0x22, 0x6D, 0x22, 0x6E]);
    assert_eq!(got[1], [0x41, 0x0D, 0x00]);
    assert_eq!(got[2], [0x41, 0x0C, 0x17, 0x10]);
    assert_eq!(got[3], [0x47, 0x00]);
}

#[test]
fn python_obd_frames() {
    // brendan-w/python-OBD tests/test_protocol_can.py @ a378bdd8 (VECTORS.md §1b).
    let mut rx = Receiver::new_passive(0x7E8, unpadded());
    assert_eq!(
        replay(&mut rx, &[&[0x06, 0x41, 0x00, 0x00, 0x01, 0x02, 0x03]]),
        [vec![0x41, 0x00, 0x00, 0x01, 0x02, 0x03]]
    );
    assert_eq!(replay(&mut rx, &[&[0x01, 0x41]]), [vec![0x41]]);
    assert_eq!(
        replay(
            &mut rx,
            &[&[0x07, 0x41, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04]]
        ),
        [vec![0x41, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04]]
    );
    for dropped in [&[0x01][..], &[0x00], &[0x08, 0x41, 0, 0, 1, 2, 3, 4]] {
        assert!(rx.on_frame(dropped, ms(0)).is_err(), "{dropped:02X?}");
    }
    // FF declares 0x020 = 32 bytes but only 27 follow: python-OBD returns them anyway;
    // ISO-TP does not, so the message stays pending and then times out.
    let ff: &[u8] = &[0x10, 0x20, 0x49, 0x04, 0x00, 0x01, 0x02, 0x03];
    let cf1: &[u8] = &[0x21, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A];
    let cf2: &[u8] = &[0x22, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11];
    let cf3: &[u8] = &[0x23, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
    assert!(replay(&mut rx, &[ff, cf1, cf2, cf3]).is_empty());
    assert!(rx.is_receiving());
    assert!(matches!(rx.poll(ms(5000)), Err(IsoTpError::Timeout { .. })));
    // Shuffled order is a sequence error, not a message.
    rx.on_frame(ff, ms(0)).unwrap();
    assert!(matches!(
        rx.on_frame(cf2, ms(1)),
        Err(IsoTpError::WrongSequence {
            expected: 1,
            got: 2,
            ..
        })
    ));
}

#[test]
fn three_ecus_single_frames() {
    // python-OBD (VECTORS.md §1b): identical SFs from 7E8, 7EB, 7EA each become a message.
    let mut demux = Demux::new(Config::default(), 8);
    for id in [0x7E8, 0x7EB, 0x7EA] {
        assert_eq!(
            demux.on_frame(id, &[0x03, 0x41, 0x0D, 0x23], ms(0)),
            Ok(RxEvent::Complete(&[0x41, 0x0D, 0x23]))
        );
    }
}

#[test]
fn pretty_j1939_hello_world() {
    // nmfta-repo/pretty_j1939 tests/test_isotp.py (VECTORS.md §2), id 0x18DA2211.
    let mut rx = Receiver::new_passive(0x18DA_2211, unpadded());
    let got = replay(
        &mut rx,
        &[
            // 10 0B = FF length 11 | "Hello "
            &[0x10, 0x0B, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x20],
            // 21 | "World" + 00 00 padding
            &[0x21, 0x57, 0x6F, 0x72, 0x6C, 0x64, 0x00, 0x00],
        ],
    );
    assert_eq!(got, [b"Hello World".to_vec()]);
}

#[test]
fn renault_zoe_read_dtc_by_status() {
    // fesch/CanZE #405 (VECTORS.md §3): 0x7E4 -> 0x7EC, padding 0xAA.
    let cfg = Config {
        padding: Some(0xAA),
        ..Config::default()
    };
    let mut rx = Receiver::new(0x7EC, cfg);
    // 10 0A = FF length 10 | 59 06 15 25 F3 2B
    let fc = rx.on_frame(&[0x10, 0x0A, 0x59, 0x06, 0x15, 0x25, 0xF3, 0x2B], ms(0));
    // 30 00 00 = CTS, bs 0, STmin 0, padded with AA as the tester did
    assert_eq!(
        fc,
        Ok(RxEvent::FlowControl(&[
            0x30, 0x00, 0x00, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA
        ]))
    );
    // 21 | 80 00 E6 C0 | AA padding
    let done = rx.on_frame(&[0x21, 0x80, 0x00, 0xE6, 0xC0, 0xAA, 0xAA, 0xAA], ms(5));
    assert_eq!(
        done,
        Ok(RxEvent::Complete(&[
            0x59, 0x06, 0x15, 0x25, 0xF3, 0x2B, 0x80, 0x00, 0xE6, 0xC0
        ]))
    );
    // 10 08 = FF length 8 | 59 06 15 25 F3 2B, then 21 | 84 05 | padding
    rx.on_frame(&[0x10, 0x08, 0x59, 0x06, 0x15, 0x25, 0xF3, 0x2B], ms(10))
        .unwrap();
    let done = rx.on_frame(&[0x21, 0x84, 0x05, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA], ms(12));
    assert_eq!(
        done,
        Ok(RxEvent::Complete(&[
            0x59, 0x06, 0x15, 0x25, 0xF3, 0x2B, 0x84, 0x05
        ]))
    );
}

#[test]
fn open3e_first_frame_without_consecutive_frames_times_out() {
    // AnHardt/open3e candump.log (VECTORS.md §3): 10 27 = FF of 39 bytes, nothing follows.
    let mut rx = Receiver::new_passive(0x690, Config::default());
    assert_eq!(
        rx.on_frame(&[0x10, 0x27, 0x62, 0x01, 0x00, 0x01, 0x02, 0x02], ms(0)),
        Ok(RxEvent::Pending)
    );
    assert_eq!(rx.poll(ms(999)), Ok(()));
    assert!(matches!(
        rx.poll(ms(1000)),
        Err(IsoTpError::Timeout {
            id: 0x690,
            timer: Timer::NCr,
            ..
        })
    ));
    assert!(!rx.is_receiving());
    // The next answer (05 62 01 75 00 00 + 55 padding) is read as usual.
    assert_eq!(
        rx.on_frame(&[0x05, 0x62, 0x01, 0x75, 0x00, 0x00, 0x55, 0x55], ms(1001)),
        Ok(RxEvent::Complete(&[0x62, 0x01, 0x75, 0x00, 0x00]))
    );
}

#[test]
fn open3e_trace_replay() {
    // The whole scan (screen form, no timestamps): 0x690 answers only; 10 ms per line.
    let Some(path) = rapport_harness::files::shared_data_file("traces/open3e/candump.log") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut rx = Receiver::new_passive(0x690, Config::default());
    let (mut singles, mut nrcs, mut firsts, mut interrupted, mut timeouts) = (0, 0, 0, 0, 0);
    let mut now = Duration::ZERO;
    for line in text.lines() {
        now += ms(10);
        let mut fields = line.split_whitespace();
        let (Some(_), Some(id)) = (fields.next(), fields.next()) else {
            continue;
        };
        let data: Vec<u8> = fields
            .skip(1)
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        if id != "690" {
            continue;
        }
        if rx.poll(now).is_err() {
            timeouts += 1;
        }
        match rx.on_frame(&data, now) {
            Ok(RxEvent::Complete(p)) => {
                singles += 1;
                nrcs += usize::from(p.first() == Some(&0x7F));
            }
            Ok(RxEvent::Pending) => firsts += 1,
            other => panic!("{line}: {other:?}"),
        }
        interrupted += usize::from(rx.interrupted().is_some());
    }
    // 3014 single frames (some of them NRCs) and 229 first frames, none ever completed.
    assert_eq!((singles, firsts), (3014, 229));
    assert!(nrcs > 0);
    // Each FF is followed within 10–20 ms by the next answer, which abandons it.
    assert_eq!(interrupted + timeouts + usize::from(rx.is_receiving()), 229);
    if rx.is_receiving() {
        assert!(rx.poll(now + ms(1000)).is_err());
    }
}

#[test]
fn interleaved_multi_ecu_reassembly() {
    // Three ECUs answer one functional request with multi-frame payloads, CFs interleaved.
    let mut demux = Demux::new(unpadded(), 3);
    let payload = |ecu: u8| {
        (0..20)
            .map(|i| ecu.wrapping_mul(16) + i)
            .collect::<Vec<u8>>()
    };
    let ff = |ecu: u8| {
        let mut f = vec![0x10, 20];
        f.extend_from_slice(&payload(ecu)[..6]);
        f
    };
    let cf = |ecu: u8, seq: u8| {
        let start = 6 + 7 * usize::from(seq - 1);
        let mut f = vec![0x20 | seq];
        f.extend_from_slice(&payload(ecu)[start..(start + 7).min(20)]);
        f
    };
    for (ecu, id) in [(1, 0x7E8), (2, 0x7E9), (3, 0x7EA)] {
        assert_eq!(
            demux.on_frame(id, &ff(ecu), ms(0)),
            Ok(RxEvent::FlowControl(&[0x30, 0x00, 0x00]))
        );
    }
    // A fourth ECU finds no free channel while the three are mid-reception.
    assert_eq!(
        demux.on_frame(0x7EB, &[0x02, 0x41, 0x00], ms(1)),
        Err(IsoTpError::NoFreeChannel { id: 0x7EB, max: 3 })
    );
    let mut done = Vec::new();
    for seq in 1..=2 {
        for (ecu, id) in [(3, 0x7EA), (1, 0x7E8), (2, 0x7E9)] {
            if let RxEvent::Complete(p) = demux.on_frame(id, &cf(ecu, seq), ms(2)).unwrap() {
                done.push((id, p.to_vec()));
            }
        }
    }
    assert_eq!(
        done,
        [
            (0x7EA, payload(3)),
            (0x7E8, payload(1)),
            (0x7E9, payload(2))
        ]
    );
    // Now idle, a channel is re-used for the newcomer.
    assert_eq!(
        demux.on_frame(0x7EB, &[0x02, 0x41, 0x00], ms(3)),
        Ok(RxEvent::Complete(&[0x41, 0x00]))
    );
    assert!(demux.receiver(0x7EB).is_some());
}

#[test]
fn demux_timeouts_one_at_a_time() {
    let mut demux = Demux::new_passive(Config::default(), 4);
    demux
        .on_frame(0x7E8, &[0x10, 20, 0, 1, 2, 3, 4, 5], ms(0))
        .unwrap();
    demux
        .on_frame(0x7E9, &[0x10, 20, 0, 1, 2, 3, 4, 5], ms(100))
        .unwrap();
    assert_eq!(demux.deadline(), Some(ms(1000)));
    assert_eq!(demux.poll(ms(999)), Ok(()));
    assert!(matches!(
        demux.poll(ms(1100)),
        Err(IsoTpError::Timeout { id: 0x7E8, .. })
    ));
    assert!(matches!(
        demux.poll(ms(1100)),
        Err(IsoTpError::Timeout { id: 0x7E9, .. })
    ));
    assert_eq!(demux.poll(ms(1100)), Ok(()));
    assert_eq!(demux.deadline(), None);
}

#[test]
fn config_validation() {
    assert_eq!(Config::default().validate(), Ok(()));
    let bad = Config {
        tx_dl: 10,
        n_cr: Duration::ZERO,
        max_payload: 0,
        ..Config::default()
    };
    let fields: Vec<_> = bad
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| match e {
            IsoTpError::Config { field, .. } => field,
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(fields, ["tx_dl", "n_cr", "max_payload"]);
    assert_eq!(Config { tx_dl: 10, ..bad }.normalized().tx_dl, 8);
    assert_eq!(Config { tx_dl: 40, ..bad }.normalized().tx_dl, 32);
    assert_eq!(Config { tx_dl: 1000, ..bad }.normalized().tx_dl, 64);
}

/// Runs one message through a sender and a receiver wired back to back; returns the
/// payload received, checking every frame is one CAN (FD) can carry.
fn transfer(payload: &[u8], tx_cfg: Config, rx_cfg: Config) -> Vec<u8> {
    let mut tx = Sender::new(0x7E0, tx_cfg);
    let mut rx = Receiver::new(0x7E8, rx_cfg);
    tx.start(payload).unwrap();
    let mut now = Duration::ZERO;
    let mut received = None;
    loop {
        match tx.poll(now).unwrap() {
            TxPoll::Send(frame) => {
                let frame = frame.to_vec();
                assert!(frame.len() <= tx_cfg.tx_dl, "{frame:02X?}");
                assert!(
                    frame.len() <= 8 || crate::can::frame::FD_LENGTHS.contains(&frame.len()),
                    "{} bytes is no CAN FD length",
                    frame.len()
                );
                if tx_cfg.padding.is_some() {
                    assert!(frame.len() >= 8);
                }
                match rx.on_frame(&frame, now).unwrap() {
                    RxEvent::Complete(p) => received = Some(p.to_vec()),
                    RxEvent::FlowControl(fc) => {
                        let fc = fc.to_vec();
                        tx.on_flow_control(&fc, now).unwrap();
                    }
                    RxEvent::Pending => {}
                }
            }
            TxPoll::WaitUntil(at) => {
                assert!(at > now);
                now = at;
            }
            TxPoll::Done => break,
        }
    }
    received.expect("no payload completed")
}

#[test]
fn large_escaped_round_trip() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let rx_cfg = Config {
        max_payload: 100_000,
        block_size: 8,
        ..Config::default()
    };
    assert_eq!(transfer(&payload, unpadded(), rx_cfg), payload);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn segmentation_round_trip(
        payload in prop::collection::vec(any::<u8>(), 1..=4095),
        block_size in prop_oneof![Just(0u8), 1u8..=4, any::<u8>()],
        st_min in prop_oneof![0u8..=3, 0xF1u8..=0xF9],
        tx_dl in prop::sample::select(vec![8usize, 12, 16, 20, 24, 32, 48, 64]),
        padding in prop::option::of(any::<u8>()),
    ) {
        let tx_cfg = Config { tx_dl, padding, ..Config::default() };
        let rx_cfg = Config {
            block_size,
            st_min: StMin::from_byte(st_min).unwrap(),
            padding,
            ..Config::default()
        };
        prop_assert_eq!(transfer(&payload, tx_cfg, rx_cfg), payload);
    }

    #[test]
    fn arbitrary_frames_never_panic(
        frames in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..=70), 0u64..1500, 0u32..4),
            0..64,
        ),
    ) {
        let cfg = Config { block_size: 2, ..Config::default() };
        let mut active = Receiver::new(0x7E8, cfg);
        let mut passive = Receiver::new_passive(0x7E8, cfg);
        let mut demux = Demux::new(cfg, 2);
        let mut tx = Sender::new(0x7E0, cfg);
        let mut now = Duration::ZERO;
        for (data, step, id) in &frames {
            now += ms(*step);
            let _ = active.on_frame(data, now);
            let _ = active.poll(now);
            let _ = passive.on_frame(data, now);
            let _ = demux.on_frame(0x7E8 + id, data, now);
            let _ = demux.poll(now);
            if tx.is_idle() {
                tx.start(data).ok();
            }
            let _ = tx.on_flow_control(data, now);
            let _ = tx.poll(now);
        }
        // Huge clocks saturate instead of overflowing.
        let _ = active.on_frame(&[0x10, 0x20, 0, 0, 0, 0, 0, 0], Duration::MAX);
        prop_assert!(active.poll(Duration::MAX).is_err());
    }
}

/// Extended addressing (ISO 15765-2 §10.3.4): answers from a gateway-style ECU at address
/// 0x40 to the tester at 0xF1 carry 0xF1 first; our flow control carries 0x40 first; each
/// frame holds one payload byte less than with normal addressing.
#[test]
fn extended_addressing() {
    let mut rx = Receiver::new(
        0x640,
        Config {
            padding: Some(0xCC),
            ..Config::default()
        },
    )
    .with_extended_address(0xF1, 0x40);
    // F1 | 04 = SF length 4 | 62 F1 A0 01
    let sf = rx.on_frame(&[0xF1, 0x04, 0x62, 0xF1, 0xA0, 0x01, 0xCC, 0xCC], ms(0));
    assert_eq!(complete_payload(sf), [0x62, 0xF1, 0xA0, 0x01]);
    // F1 | 10 07 = FF length 7 (6 would fit a single frame) | 5 bytes
    let fc = rx.on_frame(&[0xF1, 0x10, 0x07, 0, 1, 2, 3, 4], ms(1));
    // 40 | 30 = CTS | bs 0 | STmin 0 | padding
    assert_eq!(
        fc,
        Ok(RxEvent::FlowControl(&[
            0x40, 0x30, 0x00, 0x00, 0xCC, 0xCC, 0xCC, 0xCC
        ]))
    );
    // F1 | 21 = CF seq 1 | 05 06 + padding: 6 bytes a frame at most
    let cf = rx.on_frame(&[0xF1, 0x21, 5, 6, 0xCC, 0xCC, 0xCC, 0xCC], ms(2));
    assert_eq!(complete_payload(cf), [0u8, 1, 2, 3, 4, 5, 6]);
    // A frame for another tester is refused, state untouched.
    assert_eq!(
        rx.on_frame(&[0xF2, 0x02, 0x7E, 0x00], ms(3)),
        Err(IsoTpError::Address {
            id: 0x640,
            expected: 0xF1,
            got: 0xF2
        })
    );
    // A first frame declaring what an extended single frame carries (6) is malformed.
    assert_eq!(
        rx.on_frame(&[0xF1, 0x10, 0x06, 0, 1, 2, 3, 4], ms(4)),
        Err(IsoTpError::FirstFrameLength {
            id: 0x640,
            declared: 6,
            min: 7
        })
    );
    // A consecutive frame short of the 6 bytes it owes ends the reception.
    let _ = rx.on_frame(&[0xF1, 0x10, 0x0E, 0, 1, 2, 3, 4], ms(5));
    assert_eq!(
        rx.on_frame(&[0xF1, 0x21, 5, 6, 7], ms(6)),
        Err(IsoTpError::ShortConsecutive {
            id: 0x640,
            got: 3,
            need: 6
        })
    );
}

fn complete_payload(event: Result<RxEvent<'_>, IsoTpError>) -> Vec<u8> {
    match event {
        Ok(RxEvent::Complete(payload)) => payload.to_vec(),
        other => panic!("expected a payload, got {other:?}"),
    }
}
