//! Tests of the transport reassembler: the J1939-21 vectors of VECTORS.md §4a–4c and every
//! kind of malformed input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::proto::j1939::dm1::tests as dm1_tests;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An event without the borrow, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Msg {
        pgn: u32,
        source: u8,
        destination: u8,
        data: Vec<u8>,
        reply: Option<(u32, [u8; 8])>,
    },
    Send(u32, [u8; 8]),
    Aborted {
        source: u8,
        pgn: u32,
        reason: u8,
    },
}

fn feed(
    tp: &mut TransportProtocol,
    id: u32,
    data: &[u8],
    t: Duration,
) -> Result<Option<Ev>, J1939Error> {
    Ok(tp.on_frame(id, data, t)?.map(|e| match e {
        TpEvent::Message { message, reply } => Ev::Msg {
            pgn: message.pgn,
            source: message.source,
            destination: message.destination,
            data: message.data.to_vec(),
            reply: reply.map(|f| (f.raw_id(), bytes8(&f))),
        },
        TpEvent::Send(f) => Ev::Send(f.raw_id(), bytes8(&f)),
        TpEvent::Aborted {
            source,
            pgn,
            reason,
            ..
        } => Ev::Aborted {
            source,
            pgn,
            reason,
        },
    }))
}

/// The kind of a transport error, which `result` must be.
fn tp_error(result: Result<Option<Ev>, J1939Error>) -> TpErrorKind {
    match result {
        Err(J1939Error::Transport { kind, .. }) => kind,
        other => panic!("not a transport error: {other:?}"),
    }
}

/// The message a frame completed, which `result` must be: its PGN, source and data.
fn delivered(result: Result<Option<Ev>, J1939Error>) -> (u32, u8, Vec<u8>) {
    match result {
        Ok(Some(Ev::Msg {
            pgn, source, data, ..
        })) => (pgn, source, data),
        other => panic!("not a message: {other:?}"),
    }
}

/// What a frame that closed a session with a Connection Abort gives.
fn aborted(source: u8, pgn: u32, reason: u8) -> Result<Option<Ev>, J1939Error> {
    Ok(Some(Ev::Aborted {
        source,
        pgn,
        reason,
    }))
}

/// Feeds a whole BAM: the announcement `cm` at 0 ms, then the packets `dts` on `dt_id`,
/// `gap_ms` apart; all but the last must give nothing. What the last packet gives.
fn feed_bam(
    tp: &mut TransportProtocol,
    (cm_id, cm): (u32, [u8; 8]),
    dt_id: u32,
    dts: &[[u8; 8]],
    gap_ms: u64,
) -> Result<Option<Ev>, J1939Error> {
    assert_eq!(feed(tp, cm_id, &cm, ms(0)), Ok(None), "the announcement");
    let mut last = Ok(None);
    for (n, dt) in (1..).zip(dts) {
        if let Ok(None) = last {
            last = feed(tp, dt_id, dt, ms(gap_ms * n));
        } else {
            panic!("packet {} of {} gave {last:?}", n - 1, dts.len());
        }
    }
    last
}

fn passive() -> TransportProtocol {
    TransportProtocol::new(TpConfig::default())
}

fn active(own: u8) -> TransportProtocol {
    TransportProtocol::new(TpConfig {
        own_address: Some(own),
        ..TpConfig::default()
    })
}

/// The j1939-84 BAM: PGN 0xFFEE from SA 0, 40 bytes 00..09 ×4, 6 packets.
const BAM_CM: [u8; 8] = [0x20, 0x28, 0x00, 0x06, 0xFF, 0xEE, 0xFF, 0x00];
const BAM_DTS: [[u8; 8]; 6] = [
    [0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06],
    [0x02, 0x07, 0x08, 0x09, 0x00, 0x01, 0x02, 0x03],
    [0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x00],
    [0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07],
    [0x05, 0x08, 0x09, 0x00, 0x01, 0x02, 0x03, 0x04],
    [0x06, 0x05, 0x06, 0x07, 0x08, 0x09, 0xFF, 0xFF],
];

/// PGN 65226 (DM1) from SA 0, 10 bytes 1..=10 in 2 packets: as a BAM, as an RTS, the packets.
const BAM_10: [u8; 8] = [0x20, 0x0A, 0x00, 0x02, 0xFF, 0xCA, 0xFE, 0x00];
const RTS_10: [u8; 8] = [0x10, 0x0A, 0x00, 0x02, 0xFF, 0xCA, 0xFE, 0x00];
const DTS_10: [[u8; 8]; 2] = [
    [0x01, 1, 2, 3, 4, 5, 6, 7],
    [0x02, 8, 9, 10, 0xFF, 0xFF, 0xFF, 0xFF],
];

/// VECTORS.md §4b (pretty_j1939): the packets of an 18-byte DM1 from SA 0.
const PRETTY_DM1_DTS: [[u8; 8]; 3] = [
    [0x01, 0x00, 0xFF, 0x5B, 0x00, 0x03, 0x01, 0x5C],
    [0x02, 0x00, 0x04, 0x02, 0x5D, 0x00, 0x05, 0x03],
    [0x03, 0x5E, 0x00, 0x06, 0x04, 0xFF, 0xFF, 0xFF],
];

fn bam_payload() -> Vec<u8> {
    (0..40).map(|i| (i % 10) as u8).collect()
}

// VECTORS.md §4a (j1939-84 J1939TPTest.testBam).
#[test]
fn j1939_84_bam_reassembles() {
    let mut tp = passive();
    let ev = feed_bam(&mut tp, (0x18EC_FF00, BAM_CM), 0x18EB_FF00, &BAM_DTS, 50)
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        Ev::Msg {
            pgn: 0xFFEE,
            source: 0,
            destination: 0xFF,
            data: bam_payload(),
            reply: None
        }
    );
    assert_eq!(tp.stats().bam_completed, 1);
    assert_eq!(tp.open_sessions(), 0);
}

// VECTORS.md §4a: BAM abort after DT 3 → nothing delivered.
#[test]
fn j1939_84_bam_abort() {
    let mut tp = passive();
    feed(&mut tp, 0x18EC_FF00, &BAM_CM, ms(0)).unwrap();
    for dt in &BAM_DTS[..3] {
        feed(&mut tp, 0x18EB_FF00, dt, ms(10)).unwrap();
    }
    let abort = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEE, 0xFF, 0x00];
    assert_eq!(
        feed(&mut tp, 0x18EC_FF00, &abort, ms(20)),
        aborted(0, 0xFFEE, 0xFF)
    );
    // The rest of the data now has no session.
    assert_eq!(
        tp_error(feed(&mut tp, 0x18EB_FF00, &BAM_DTS[3], ms(30))),
        TpErrorKind::NoSession { sequence: 4 }
    );
    assert_eq!(tp.stats().aborted, 1);
    assert_eq!(tp.stats().bam_completed, 0);
}

// VECTORS.md §4a: BAM missing DT 3 → nothing delivered (a gap error, then no session).
#[test]
fn j1939_84_bam_missing_packet() {
    let mut tp = passive();
    feed(&mut tp, 0x18EC_FF00, &BAM_CM, ms(0)).unwrap();
    feed(&mut tp, 0x18EB_FF00, &BAM_DTS[0], ms(10)).unwrap();
    feed(&mut tp, 0x18EB_FF00, &BAM_DTS[1], ms(20)).unwrap();
    let err = feed(&mut tp, 0x18EB_FF00, &BAM_DTS[3], ms(30)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "J1939 TP from 0x00 to 0xFF: expected sequence 3, got 4"
    );
    for dt in &BAM_DTS[4..] {
        assert!(feed(&mut tp, 0x18EB_FF00, dt, ms(40)).is_err());
    }
    assert_eq!(tp.stats().bam_completed, 0);
}

// VECTORS.md §4a: RTS/CTS to us (SA 0x00) from 0xF9, PGN 0xEA00, 9 bytes; DTs out of order.
#[test]
fn j1939_84_rts_cts_active() {
    let mut tp = active(0x00);
    let rts = [0x10, 0x09, 0x00, 0x02, 0xFF, 0x00, 0xEA, 0x00];
    assert_eq!(
        feed(&mut tp, 0x18EC_00F9, &rts, ms(0)),
        Ok(Some(Ev::Send(
            0x18EC_F900,
            [0x11, 0x02, 0x01, 0xFF, 0xFF, 0x00, 0xEA, 0x00]
        )))
    );
    // Packet 2 first, then packet 1, then a duplicate of 2 after completion has no session.
    let dt2 = [0x02, 0x08, 0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let dt1 = [0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
    assert_eq!(feed(&mut tp, 0x18EB_00F9, &dt2, ms(10)), Ok(None));
    assert_eq!(
        feed(&mut tp, 0x18EB_00F9, &dt2, ms(15)),
        Ok(None),
        "duplicate ignored"
    );
    let ev = feed(&mut tp, 0x18EB_00F9, &dt1, ms(20)).unwrap().unwrap();
    assert_eq!(
        ev,
        Ev::Msg {
            pgn: 0xEA00,
            source: 0xF9,
            destination: 0x00,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            reply: Some((
                0x18EC_F900,
                [0x13, 0x09, 0x00, 0x02, 0xFF, 0x00, 0xEA, 0x00]
            )),
        }
    );
    assert_eq!(tp.stats().rts_completed, 1);
}

#[test]
fn active_windows_follow_max_per_cts() {
    // 20 bytes = 3 packets, the sender allows 1 per CTS.
    let mut tp = active(0x17);
    let rts = [0x10, 20, 0, 3, 1, 0xB0, 0xFE, 0];
    let cts = |n: u8| {
        Some(Ev::Send(
            0x18EC_0117,
            [0x11, 1, n, 0xFF, 0xFF, 0xB0, 0xFE, 0],
        ))
    };
    assert_eq!(feed(&mut tp, 0x18EC_1701, &rts, ms(0)), Ok(cts(1)));
    assert_eq!(
        feed(&mut tp, 0x18EB_1701, &[1, 1, 2, 3, 4, 5, 6, 7], ms(10)),
        Ok(cts(2))
    );
    // Packet 3 while the window is 2..=2 is out of window: the session is dropped.
    assert_eq!(
        tp_error(feed(
            &mut tp,
            0x18EB_1701,
            &[3, 1, 2, 3, 4, 5, 6, 0xFF],
            ms(20)
        )),
        TpErrorKind::OutOfWindow {
            got: 3,
            first: 2,
            last: 2
        }
    );
}

#[test]
fn active_timeout_sends_abort() {
    let mut tp = active(0x00);
    let rts = [0x10, 0x09, 0x00, 0x02, 0xFF, 0x00, 0xEA, 0x00];
    feed(&mut tp, 0x18EC_00F9, &rts, ms(0)).unwrap();
    assert_eq!(tp.next_deadline(), Some(T2));
    assert_eq!(tp.poll(ms(1250)), None, "T2 is not yet over");
    let t = tp.poll(ms(1251)).unwrap();
    assert_eq!(
        (t.source, t.destination, t.pgn, t.transfer),
        (0xF9, 0x00, 0xEA00, Transfer::RtsCts)
    );
    let abort = t.abort.unwrap();
    assert_eq!(abort.raw_id(), 0x18EC_F900);
    assert_eq!(
        bytes8(&abort),
        [0xFF, 3, 0xFF, 0xFF, 0xFF, 0x00, 0xEA, 0x00]
    );
    assert_eq!(tp.poll(ms(5000)), None);
    assert_eq!(tp.stats().rts_timed_out, 1);
}

// VECTORS.md §4b (pretty_j1939 test_j1939_tp): DM1 over BAM, 18 bytes in 3 DTs.
#[test]
fn pretty_j1939_dm1_bam() {
    let mut tp = passive();
    let cm = [0x20, 0x12, 0x00, 0x03, 0xFF, 0xCA, 0xFE, 0x00];
    let ev = feed_bam(&mut tp, (0x18EC_FF00, cm), 0x18EB_FF00, &PRETTY_DM1_DTS, 1);
    let (pgn, _, data) = delivered(ev);
    assert_eq!(pgn, 65226);
    assert_eq!(dm1_tests::dtcs_of(&data), dm1_tests::PRETTY_BAM_DM1_DTCS);
}

// VECTORS.md §4b: 10-byte BAM; the padding of the last packet is dropped by length.
#[test]
fn pretty_j1939_ten_byte_bam() {
    let mut tp = passive();
    let ev = feed_bam(&mut tp, (0x18EC_FF00, BAM_10), 0x18EB_FF00, &DTS_10, 1);
    let (pgn, source, data) = delivered(ev);
    assert_eq!(
        (pgn, source, data),
        (65226, 0, (1..=10).collect::<Vec<u8>>())
    );
}

// VECTORS.md §4b: passive RTS/CTS (0x00 → 0x01): no result until EndOfMsgAck.
#[test]
fn pretty_j1939_passive_rts_waits_for_eom() {
    let mut tp = passive();
    assert_eq!(feed(&mut tp, 0x18EC_0100, &RTS_10, ms(0)), Ok(None));
    let cts = [0x11, 0x02, 0x01, 0xFF, 0xFF, 0xCA, 0xFE, 0x00];
    assert_eq!(feed(&mut tp, 0x18EC_0001, &cts, ms(5)), Ok(None));
    assert_eq!(feed(&mut tp, 0x18EB_0100, &DTS_10[0], ms(10)), Ok(None));
    assert_eq!(feed(&mut tp, 0x18EB_0100, &DTS_10[1], ms(20)), Ok(None));
    let eom = [0x13, 0x0A, 0x00, 0x02, 0xFF, 0xCA, 0xFE, 0x00];
    let ev = feed(&mut tp, 0x18EC_0001, &eom, ms(30)).unwrap().unwrap();
    assert_eq!(
        ev,
        Ev::Msg {
            pgn: 65226,
            source: 0,
            destination: 1,
            data: (1..=10).collect(),
            reply: None
        }
    );
}

// VECTORS.md §4b: RTS then abort → session cleared, later DT ignored (an error, no message).
#[test]
fn pretty_j1939_rts_abort() {
    let mut tp = passive();
    feed(&mut tp, 0x18EC_0100, &RTS_10, ms(0)).unwrap();
    let abort = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xCA, 0xFE, 0x00];
    assert_eq!(
        feed(&mut tp, 0x18EC_0001, &abort, ms(1)),
        aborted(0, 65226, 0xFF)
    );
    assert!(feed(&mut tp, 0x18EB_0100, &DTS_10[0], ms(2)).is_err());
    assert_eq!(tp.open_sessions(), 0);
}

// VECTORS.md §4b: VIN (PGN 65259) over BAM, 17 bytes in 3 DTs.
#[test]
fn vin_bam() {
    let mut tp = passive();
    let cm = [0x20, 17, 0, 3, 0xFF, 0xEB, 0xFE, 0x00];
    let dts = [
        *b"\x011234567",
        *b"\x028901234",
        *b"\x03567\xFF\xFF\xFF\xFF",
    ];
    let ev = feed_bam(&mut tp, (0x18EC_FF00, cm), 0x18EB_FF00, &dts, 50);
    let (pgn, _, data) = delivered(ev);
    assert_eq!((pgn, data.as_slice()), (65259, &b"12345678901234567"[..]));
}

// VECTORS.md §4c (python-can-j1939 test_ecu): priority-0 BAM on 0x00ECFF01, PGN 65200.
#[test]
fn python_can_j1939_bam() {
    let mut tp = passive();
    let cm = [32, 20, 0, 3, 255, 0xB0, 0xFE, 0];
    let dts = [
        [1, 1, 2, 3, 4, 5, 6, 7],
        [2, 1, 2, 3, 4, 5, 6, 7],
        [3, 1, 2, 3, 4, 5, 6, 255],
    ];
    let ev = feed_bam(&mut tp, (0x00EC_FF01, cm), 0x1CEB_FF01, &dts, 1);
    let (pgn, source, data) = delivered(ev);
    assert_eq!((pgn, source), (65200, 1));
    assert_eq!(
        data,
        [1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn bam_inter_packet_timeout() {
    let mut tp = passive();
    feed(&mut tp, 0x18EC_FF00, &BAM_CM, ms(0)).unwrap();
    feed(&mut tp, 0x18EB_FF00, &BAM_DTS[0], ms(700)).unwrap();
    // 750 ms after the last packet is still in time; 751 is not.
    assert_eq!(tp.poll(ms(1450)), None);
    let t = tp.poll(ms(1451)).unwrap();
    assert_eq!(
        (t.transfer, t.received, t.packets, t.abort),
        (Transfer::Bam, 1, 6, None)
    );
    assert_eq!(tp.stats().bam_timed_out, 1);
}

#[test]
fn late_packet_closes_the_session_as_timed_out() {
    // Without a poll in between, a DT after T1 finds its session expired.
    let mut tp = passive();
    feed(&mut tp, 0x18EC_FF00, &BAM_CM, ms(0)).unwrap();
    assert_eq!(
        tp_error(feed(&mut tp, 0x18EB_FF00, &BAM_DTS[0], ms(751))),
        TpErrorKind::NoSession { sequence: 1 }
    );
    assert_eq!(tp.stats().bam_timed_out, 1);
}

#[test]
fn passive_timeouts_t3_t4() {
    let mut tp = passive();
    feed(&mut tp, 0x18EC_0100, &RTS_10, ms(0)).unwrap();
    assert_eq!(tp.next_deadline(), Some(T3));
    // Hold: CTS with 0 packets → T4.
    feed(
        &mut tp,
        0x18EC_0001,
        &[0x11, 0, 0xFF, 0xFF, 0xFF, 0xCA, 0xFE, 0x00],
        ms(100),
    )
    .unwrap();
    assert_eq!(tp.next_deadline(), Some(ms(100) + T4));
    assert!(tp.poll(ms(1151)).is_some());
}

#[test]
fn new_bam_replaces_the_old_one() {
    let mut tp = passive();
    feed(&mut tp, 0x18EC_FF00, &BAM_CM, ms(0)).unwrap();
    feed(&mut tp, 0x18EB_FF00, &BAM_DTS[0], ms(10)).unwrap();
    feed(&mut tp, 0x18EC_FF00, &BAM_10, ms(20)).unwrap();
    assert_eq!(tp.stats().replaced, 1);
    assert_eq!(tp.open_sessions(), 1);
}

#[test]
fn malformed_frames_are_errors() {
    use TpErrorKind as K;
    let cases: &[(u32, &[u8], K)] = &[
        (
            0x18EC_FF00,
            &[0x20, 0x0A, 0x00],
            K::ShortFrame {
                what: "TP.CM",
                len: 3,
            },
        ),
        (
            0x18EB_FF00,
            &[0x01, 0x02],
            K::ShortFrame {
                what: "TP.DT",
                len: 2,
            },
        ),
        (
            0x18EB_FF00,
            &[1, 0, 0, 0, 0, 0, 0, 0],
            K::NoSession { sequence: 1 },
        ),
        (
            0x18EC_FF00,
            &[0x20, 0xFA, 0x06, 0xFF, 0xFF, 0xCA, 0xFE, 0],
            K::BadSize {
                size: 1786,
                max: 1785,
            },
        ),
        (
            0x18EC_FF00,
            &[0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xCA, 0xFE, 0],
            K::BadSize {
                size: 65535,
                max: 1785,
            },
        ),
        (
            0x18EC_FF00,
            &[0x20, 0, 0, 0, 0xFF, 0xCA, 0xFE, 0],
            K::BadSize { size: 0, max: 1785 },
        ),
        (
            0x18EC_FF00,
            &[0x20, 0x0A, 0, 3, 0xFF, 0xCA, 0xFE, 0],
            K::PacketCount {
                size: 10,
                expected: 2,
                packets: 3,
            },
        ),
        (
            0x18EC_0100,
            &[0x20, 0x0A, 0, 2, 0xFF, 0xCA, 0xFE, 0],
            K::BadDestination { what: "BAM" },
        ),
        (
            0x18EC_FF00,
            &[0x10, 0x0A, 0, 2, 0xFF, 0xCA, 0xFE, 0],
            K::BadDestination { what: "RTS" },
        ),
        (
            0x18EC_FF00,
            &[0x42, 0, 0, 0, 0, 0, 0, 0],
            K::UnknownControl { control: 0x42 },
        ),
    ];
    let mut tp = passive();
    for (id, data, kind) in cases {
        match feed(&mut tp, *id, data, ms(0)) {
            Err(J1939Error::Transport { kind: got, .. }) => assert_eq!(&got, kind, "{data:02X?}"),
            other => panic!("{data:02X?}: {other:?}"),
        }
    }
    assert_eq!(tp.stats().errors, cases.len() as u64);
    assert_eq!(tp.open_sessions(), 0);
    assert_eq!(
        feed(&mut tp, 0x2000_0000, &[0; 8], ms(0)),
        Err(J1939Error::BadId { id: 0x2000_0000 })
    );
    // Other PGNs pass through untouched.
    assert_eq!(feed(&mut tp, 0x18FE_CA00, &[0; 8], ms(0)), Ok(None));
}

#[test]
fn size_limit_is_configurable_and_checked_before_allocating() {
    let mut tp = TransportProtocol::new(TpConfig {
        max_message_len: 16,
        ..TpConfig::default()
    });
    assert_eq!(
        tp_error(feed(
            &mut tp,
            0x18EC_FF00,
            &[0x20, 17, 0, 3, 0xFF, 0xEB, 0xFE, 0],
            ms(0)
        )),
        TpErrorKind::BadSize { size: 17, max: 16 }
    );
    assert!(
        tp.sessions.is_empty(),
        "no session (and no buffer) for a refused size"
    );
}

#[test]
fn session_table_is_bounded() {
    let mut tp = TransportProtocol::new(TpConfig {
        max_sessions: 2,
        ..TpConfig::default()
    });
    feed(&mut tp, 0x18EC_FF00, &BAM_CM, ms(0)).unwrap();
    feed(&mut tp, 0x18EC_FF01, &BAM_CM, ms(0)).unwrap();
    assert_eq!(
        tp_error(feed(&mut tp, 0x18EC_FF02, &BAM_CM, ms(0))),
        TpErrorKind::TooManySessions { max: 2 }
    );
}

#[test]
fn passive_out_of_turn_and_bad_cts() {
    use TpErrorKind as K;
    // Each after a fresh RTS (0x00 → 0x01).
    let cases = [
        // DT before any CTS.
        (0x18EB_0100, DTS_10[0], K::OutOfTurn { what: "TP.DT" }),
        // A CTS asking past the end.
        (
            0x18EC_0001,
            [0x11, 3, 1, 0xFF, 0xFF, 0xCA, 0xFE, 0],
            K::BadCts {
                count: 3,
                next: 1,
                packets: 2,
            },
        ),
        // An early EndOfMsgAck.
        (
            0x18EC_0001,
            [0x13, 0x0A, 0, 2, 0xFF, 0xCA, 0xFE, 0],
            K::OutOfTurn {
                what: "EndOfMsgAck",
            },
        ),
    ];
    let mut tp = passive();
    for ((id, frame, kind), t) in cases.into_iter().zip((0..).step_by(2)) {
        feed(&mut tp, 0x18EC_0100, &RTS_10, ms(t)).unwrap();
        assert_eq!(tp_error(feed(&mut tp, id, &frame, ms(t + 1))), kind);
    }
}

#[test]
fn largest_message_reassembles() {
    // 1785 bytes = 255 packets, the J1939-21 maximum; sequence 255 must not overflow.
    let mut tp = passive();
    let cm = [0x20, 0xF9, 0x06, 0xFF, 0xFF, 0xCA, 0xFE, 0];
    let dts: Vec<[u8; 8]> = (1..=255u8).map(|seq| [seq; 8]).collect();
    let (_, _, data) = delivered(feed_bam(&mut tp, (0x18EC_FF00, cm), 0x18EB_FF00, &dts, 1));
    assert_eq!(data.len(), 1785);
    assert_eq!(data[1784], 255);
}

proptest::proptest! {
    /// Any frame sequence: no panic, and every delivered message has its announced length.
    #[test]
    fn never_panics(frames in proptest::collection::vec(
        (0u8..4, proptest::array::uniform8(proptest::prelude::any::<u8>()), 0u64..2000), 0..64))
    {
        let mut tp = active(0x00);
        let mut now = 0u64;
        for (kind, data, dt) in frames {
            now += dt;
            let id = match kind { 0 => 0x18EC_FF00, 1 => 0x18EB_FF00, 2 => 0x18EC_00F9, _ => 0x18EB_00F9 };
            if let Ok(Some(TpEvent::Message { message, .. })) = tp.on_frame(id, &data, ms(now)) {
                proptest::prop_assert!(!message.data.is_empty() && message.data.len() <= MAX_TP_SIZE);
            }
            while tp.poll(ms(now)).is_some() {}
        }
    }
}
