//! Every DTC class from hand-made frames laid out as the standards say (SAE J1979 modes
//! 03/07/0A, ISO 14229-1 0x59 0x02 records, SAE J1939-73 DM1/DM2 incl. a BAM-transported DM2),
//! through the whole observer: decoder, class sets, appear/clear per class.

use core::time::Duration;

use rapport_shared::{DtcClass, Severity};

use super::{DtcState, Observation, Observer, Settings, passive};
use crate::can::CanFrame;
use crate::can::source::TimedFrame;

fn observer() -> Observer {
    Observer::new(&Settings {
        decoders: vec![passive::Settings {
            obd_id_bits: Some(11),
            uds: vec![passive::UdsSettings {
                request_id: 0x714,
                response_id: 0x77E,
                address: None,
                dids: Vec::new(),
            }],
            j1939: Some(passive::J1939Settings::default()),
            dbc: None,
        }],
        max_plausible_kmh: 250,
        overrides: Vec::new(),
    })
}

/// Feeds `(id, data)` frames 10 ms apart (ids above 0x7FF are 29-bit); the DTC observations
/// as (code, state, class, severity, ECU).
fn feed(
    o: &mut Observer,
    frames: &[(u32, &[u8])],
) -> Vec<(String, DtcState, DtcClass, Severity, u32)> {
    let mut out = Vec::new();
    for (i, (id, data)) in frames.iter().enumerate() {
        let frame = CanFrame::from_raw(*id, *id > 0x7FF, data).unwrap();
        let tf = TimedFrame {
            frame,
            at: Duration::from_millis(10 * i as u64),
            wall: None,
        };
        o.on_frame(&tf, &mut out);
    }
    let warnings: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, Observation::Warning { .. }))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    out.into_iter()
        .filter_map(|o| match o {
            Observation::Dtc {
                dtc,
                state,
                severity,
                ecu,
                class,
                ..
            } => Some((dtc.to_string(), state, class, severity, ecu)),
            _ => None,
        })
        .collect()
}

const ACTIVE: DtcState = DtcState::Active;
const CLEARED: DtcState = DtcState::Cleared;

#[test]
fn obd_modes_03_07_0a_are_separate_classes() {
    let mut o = observer();
    let got = feed(
        &mut o,
        &[
            // mode 03, single frame: 43, 2 codes, P0133, P0300
            (0x7DF, &[0x01, 0x03, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]),
            (0x7E8, &[0x06, 0x43, 0x02, 0x01, 0x33, 0x03, 0x00, 0xCC]),
            // mode 07, first frame of 10 bytes: 47, 4 codes, P0171, P0172 ...
            (0x7DF, &[0x01, 0x07, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]),
            (0x7E8, &[0x10, 0x0A, 0x47, 0x04, 0x01, 0x71, 0x01, 0x72]),
            // ... consecutive frame 1: P0301, P0302
            (0x7E8, &[0x21, 0x03, 0x01, 0x03, 0x02, 0xCC, 0xCC, 0xCC]),
            // mode 0A, single frame: 4A, 1 code, P0133 (confirmed and permanent at once)
            (0x7DF, &[0x01, 0x0A, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]),
            (0x7E8, &[0x04, 0x4A, 0x01, 0x01, 0x33, 0xCC, 0xCC, 0xCC]),
        ],
    );
    let (w, i) = (Severity::Warning, Severity::Info);
    let e = 0x7E8;
    assert_eq!(
        got,
        [
            ("P0133".into(), ACTIVE, DtcClass::Confirmed, w, e),
            ("P0300".into(), ACTIVE, DtcClass::Confirmed, w, e),
            ("P0171".into(), ACTIVE, DtcClass::Pending, i, e),
            ("P0172".into(), ACTIVE, DtcClass::Pending, i, e),
            ("P0301".into(), ACTIVE, DtcClass::Pending, i, e),
            ("P0302".into(), ACTIVE, DtcClass::Pending, i, e),
            ("P0133".into(), ACTIVE, DtcClass::Permanent, w, e),
        ]
    );
    // A later mode 03 without P0133 clears it from confirmed only: it stays permanent.
    let got = feed(
        &mut o,
        &[(0x7E8, &[0x04, 0x43, 0x01, 0x03, 0x00, 0xCC, 0xCC, 0xCC])],
    );
    assert_eq!(got, [("P0133".into(), CLEARED, DtcClass::Confirmed, w, e)]);
    // Mode 0A with no code (43-style count 0) clears the permanent one.
    let got = feed(
        &mut o,
        &[(0x7E8, &[0x02, 0x4A, 0x00, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC])],
    );
    assert_eq!(got, [("P0133".into(), CLEARED, DtcClass::Permanent, w, e)]);
}

#[test]
fn uds_status_bytes_give_classes_and_stored_codes_are_kept() {
    let mut o = observer();
    // 0x59 0x02, availability 0xFF, 7 records (DTC high, mid, low, status): 31 bytes.
    let records: [[u8; 4]; 7] = [
        [0x01, 0x33, 0x1C, 0x09], // P0133-1C testFailed + confirmed
        [0x04, 0x20, 0x00, 0x04], // P0420-00 pending
        [0xC1, 0x23, 0x45, 0x20], // U0123-45 failed since last clear only: stored
        [0x01, 0x71, 0x00, 0x60], // P0171-00 stored, not tested this cycle
        [0x03, 0x00, 0x00, 0x01], // P0300-00 testFailed now only
        [0x05, 0x00, 0x00, 0x80], // P0500-00 warningIndicatorRequested
        [0x07, 0x00, 0x00, 0x50], // P0700-00 tests not completed: not a fault
    ];
    let mut payload = vec![0x59, 0x02, 0xFF];
    payload.extend(records.iter().flatten());
    assert_eq!(payload.len(), 31);
    // ISO-TP: first frame (6 bytes), then consecutive frames of 7.
    let mut frames: Vec<(u32, Vec<u8>)> = vec![
        (0x714, vec![0x03, 0x19, 0x02, 0xFF, 0xCC, 0xCC, 0xCC, 0xCC]),
        (0x77E, [&[0x10, 31][..], &payload[..6]].concat()),
        (0x714, vec![0x30, 0x00, 0x00, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]),
    ];
    for (n, chunk) in payload[6..].chunks(7).enumerate() {
        let mut cf = vec![0x21 + n as u8];
        cf.extend_from_slice(chunk);
        cf.resize(8, 0xCC);
        frames.push((0x77E, cf));
    }
    let frames: Vec<(u32, &[u8])> = frames.iter().map(|(id, d)| (*id, &d[..])).collect();
    let got = feed(&mut o, &frames);
    let (w, i, e) = (Severity::Warning, Severity::Info, 0x77E);
    assert_eq!(
        got,
        [
            ("P0133-1C".into(), ACTIVE, DtcClass::Confirmed, w, e),
            ("P0500-00".into(), ACTIVE, DtcClass::Confirmed, w, e),
            ("P0420-00".into(), ACTIVE, DtcClass::Pending, i, e),
            ("P0300-00".into(), ACTIVE, DtcClass::TestFailed, i, e),
            ("U0123-45".into(), ACTIVE, DtcClass::Stored, i, e),
            ("P0171-00".into(), ACTIVE, DtcClass::Stored, i, e),
        ]
    );
    // The pending code is confirmed now (0x0D); the stored U0123 is gone: each class set is
    // replaced by its own part of the answer.
    let got = feed(
        &mut o,
        &[
            (0x714, &[0x03, 0x19, 0x02, 0xFF, 0xCC, 0xCC, 0xCC, 0xCC]),
            (0x77E, &[0x07, 0x59, 0x02, 0xFF, 0x04, 0x20, 0x00, 0x0D]),
        ],
    );
    assert_eq!(
        got,
        [
            ("P0420-00".into(), ACTIVE, DtcClass::Confirmed, w, e),
            ("P0133-1C".into(), CLEARED, DtcClass::Confirmed, w, e),
            ("P0500-00".into(), CLEARED, DtcClass::Confirmed, w, e),
            ("P0420-00".into(), CLEARED, DtcClass::Pending, i, e),
            ("P0300-00".into(), CLEARED, DtcClass::TestFailed, i, e),
            ("U0123-45".into(), CLEARED, DtcClass::Stored, i, e),
            ("P0171-00".into(), CLEARED, DtcClass::Stored, i, e),
        ]
    );
}

#[test]
fn j1939_dm1_is_active_and_dm2_previously_active_also_over_bam() {
    let mut o = observer();
    let got = feed(
        &mut o,
        &[
            // DM1 from SA 0x00: AWL on, flash n/a; SPN 110 FMI 0 OC 3
            (
                0x18FE_CA00,
                &[0x04, 0xFF, 0x6E, 0x00, 0x00, 0x03, 0xFF, 0xFF],
            ),
            // Request (PGN 59904) for DM2 (65227 = 0x00FECB), from the tool at 0xF9, global
            (0x18EA_FFF9, &[0xCB, 0xFE, 0x00]),
            // DM2 from SA 0x00 in one frame: lamps off; SPN 100 FMI 3 OC 1
            (
                0x18FE_CB00,
                &[0x00, 0xFF, 0x64, 0x00, 0x03, 0x01, 0xFF, 0xFF],
            ),
            // DM2 from SA 0x03, 10 bytes over BAM: TP.CM 20 | size 10 | 2 packets | FF | PGN
            (
                0x1CEC_FF03,
                &[0x20, 0x0A, 0x00, 0x02, 0xFF, 0xCB, 0xFE, 0x00],
            ),
            // TP.DT 1: lamps, flash, SPN 110 FMI 0 OC 2, SPN 190 low byte
            (
                0x1CEB_FF03,
                &[0x01, 0x00, 0xFF, 0x6E, 0x00, 0x00, 0x02, 0xBE],
            ),
            // TP.DT 2: SPN 190 FMI 4 OC 5, padding
            (
                0x1CEB_FF03,
                &[0x02, 0x00, 0x04, 0x05, 0xFF, 0xFF, 0xFF, 0xFF],
            ),
        ],
    );
    let (w, i) = (Severity::Warning, Severity::Info);
    let names: Vec<_> = got
        .iter()
        .map(|(c, s, k, sev, e)| (c.as_str(), *s, *k, *sev, *e))
        .collect();
    assert_eq!(
        names,
        [
            ("SPN110/FMI0", ACTIVE, DtcClass::Active, w, 0x00),
            ("SPN100/FMI3", ACTIVE, DtcClass::PreviouslyActive, i, 0x00),
            ("SPN110/FMI0", ACTIVE, DtcClass::PreviouslyActive, i, 0x03),
            ("SPN190/FMI4", ACTIVE, DtcClass::PreviouslyActive, i, 0x03),
        ]
    );
    // An empty DM1 (the all-zero DTC) clears the active code, not the DM2 ones.
    let got = feed(
        &mut o,
        &[(
            0x18FE_CA00,
            &[0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF],
        )],
    );
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].1, got[0].2, got[0].4),
        (CLEARED, DtcClass::Active, 0x00)
    );
}
