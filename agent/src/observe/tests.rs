//! The observer over several buses: each bus's own decoder (its UDS ECUs, their DID tables,
//! extended addressing), DTC sets per (bus, ECU), one odometer plausibility for all.
#![allow(clippy::unwrap_used)]

use core::time::Duration;

use rapport_shared::SignalSource;

use super::*;
use crate::can::CanFrame;
use crate::config::DidRole;
use crate::proto::uds::{DidKind, DidSpec};

fn odometer_did() -> (DidSpec, Option<DidRole>) {
    let mut spec = DidSpec::new(0xF1A0, 3, DidKind::UnsignedBe);
    spec.factor = 0.1;
    (spec, Some(DidRole::Odometer))
}

fn ecu(request_id: u32, response_id: u32, address: Option<(u8, u8)>) -> passive::UdsSettings {
    passive::UdsSettings {
        request_id,
        response_id,
        address,
        dids: vec![odometer_did()],
    }
}

/// Bus 0: the cluster 0x714 → 0x77E. Bus 1: an ECU with the same ids, and a door ECU behind
/// a gateway at address 0x40 (extended addressing, 0x6F1 → 0x640, answers to us at 0xF1).
fn observer() -> Observer {
    Observer::new(&Settings {
        decoders: vec![
            passive::Settings {
                uds: vec![ecu(0x714, 0x77E, None)],
                ..passive::Settings::default()
            },
            passive::Settings {
                uds: vec![
                    ecu(0x714, 0x77E, None),
                    ecu(0x6F1, 0x640, Some((0x40, 0xF1))),
                ],
                ..passive::Settings::default()
            },
        ],
        max_plausible_kmh: 300,
        overrides: Vec::new(),
    })
}

fn frame(id: u32, data: &[u8], at_ms: u64) -> TimedFrame {
    TimedFrame {
        frame: CanFrame::from_raw(id, false, data).unwrap(),
        at: Duration::from_millis(at_ms),
        wall: None,
    }
}

/// 07 = SF length 7 | 59 02 FF | P0133-1C | status 2F
const DTC_REPORT: [u8; 8] = [0x07, 0x59, 0x02, 0xFF, 0x01, 0x33, 0x1C, 0x2F];

#[test]
fn one_id_on_two_buses_is_two_ecus() {
    let mut o = observer();
    let mut out = Vec::new();
    o.on_bus_frame(0, &frame(0x77E, &DTC_REPORT, 0), &mut out);
    o.on_bus_frame(1, &frame(0x77E, &DTC_REPORT, 1), &mut out);
    // The same report again from each changes nothing.
    o.on_bus_frame(0, &frame(0x77E, &DTC_REPORT, 2), &mut out);
    o.on_bus_frame(1, &frame(0x77E, &DTC_REPORT, 3), &mut out);
    let keys: Vec<(u8, u32, DtcState)> = out
        .iter()
        .filter_map(|o| match o {
            Observation::Dtc {
                bus, ecu, state, ..
            } => Some((*bus, *ecu, *state)),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        [(0, 0x77E, DtcState::Active), (1, 0x77E, DtcState::Active)]
    );
    // An empty report on bus 1 clears bus 1's code only.
    out.clear();
    o.on_bus_frame(1, &frame(0x77E, &[0x03, 0x59, 0x02, 0xFF], 4), &mut out);
    assert!(matches!(
        out.as_slice(),
        [Observation::Dtc {
            bus: 1,
            state: DtcState::Cleared,
            ..
        }]
    ));
}

#[test]
fn an_extended_addressing_answer_is_read_with_its_ecus_table() {
    let mut o = observer();
    let mut out = Vec::new();
    // F1 = to us | 06 = SF length 6 | 62 F1A0 | 0x04B0C2 = 307,394 × 0.1 km
    o.on_bus_frame(
        1,
        &frame(0x640, &[0xF1, 0x06, 0x62, 0xF1, 0xA0, 0x04, 0xB0, 0xC2], 0),
        &mut out,
    );
    assert_eq!(
        out,
        [Observation::Odometer {
            odometer: rapport_shared::Odometer::from_meters(30_739_400),
            source: SignalSource::Uds,
        }]
    );
    // The same bytes to another tester, or on the bus without that ECU: not read.
    out.clear();
    o.on_bus_frame(
        1,
        &frame(0x640, &[0xF2, 0x06, 0x62, 0xF1, 0xA0, 0x04, 0xB0, 0xD0], 10),
        &mut out,
    );
    o.on_bus_frame(
        0,
        &frame(0x640, &[0xF1, 0x06, 0x62, 0xF1, 0xA0, 0x04, 0xB0, 0xD0], 20),
        &mut out,
    );
    // A bus the observer does not have.
    o.on_bus_frame(7, &frame(0x77E, &DTC_REPORT, 30), &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn odometer_plausibility_is_one_across_buses() {
    let mut o = observer();
    let mut out = Vec::new();
    // 06 = SF length 6 | 62 F1A0 | 0x002710: the cluster on bus 0 reads 1,000.0 km.
    o.on_bus_frame(
        0,
        &frame(0x77E, &[0x06, 0x62, 0xF1, 0xA0, 0x00, 0x27, 0x10], 0),
        &mut out,
    );
    // A second later the ECU on bus 1 claims 2,000.0 km: a jump no car drives.
    o.on_bus_frame(
        1,
        &frame(0x77E, &[0x06, 0x62, 0xF1, 0xA0, 0x00, 0x4E, 0x20], 1000),
        &mut out,
    );
    assert!(matches!(out[0], Observation::Odometer { .. }));
    assert!(
        matches!(
            &out[1],
            Observation::Warning {
                kind: WarningKind::Plausibility,
                ..
            }
        ),
        "{out:?}"
    );
}
