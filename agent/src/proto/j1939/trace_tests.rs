//! Integration-style test: a real truck's 30-second trace (SystemsCyber/J1939_Attack_Datasets
//! `normal.log`, read from ../shared/data at run time) through the candump reader, the
//! transport reassembler and the decoders. Expected values: VECTORS.md §4d, re-checked with
//! independent Python arithmetic over the same file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::J1939Id;
use super::dm1::{Dm1, LampStatus, PGN_DM1};
use super::pgn::{
    CruiseControlVehicleSpeed, EngineHours, HighResVehicleDistance, PGN_CCVS1, PGN_HOURS, PGN_VD,
    PGN_VDHR, Signal, VehicleDistance,
};
use super::tp::{TpConfig, TpEvent, Transfer, TransportProtocol};
use crate::can::candump::TraceReader;

type DtcList = Vec<(u32, u8, Option<u8>)>;

#[derive(Default)]
struct Seen {
    frames: usize,
    /// (source, lamps byte MIL status, DTCs) of each DM1 that came over BAM.
    bam_dm1: Vec<(u8, LampStatus, DtcList)>,
    /// DM1s in a single frame, per source, and how many listed a DTC.
    single_dm1: BTreeMap<u8, (usize, usize)>,
    vd_total_m: Vec<u64>,
    vdhr_total_m: BTreeMap<u8, Vec<u64>>,
    ccvs1_speed: BTreeMap<u8, Vec<Signal<u16>>>,
    hours: Vec<EngineHours>,
    bam_pgns: BTreeMap<(u8, u32), usize>,
}

fn dtcs(dm1: &Dm1<'_>) -> DtcList {
    dm1.dtcs().map(|d| (d.spn, d.fmi, d.occurrences)).collect()
}

#[test]
fn real_truck_trace_through_tp_and_decoders() {
    let Some(path) =
        rapport_harness::files::shared_data_file("traces/j1939-attack-datasets/normal.log")
    else {
        return;
    };
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = TraceReader::new(file);
    let mut tp = TransportProtocol::new(TpConfig::default());
    let mut seen = Seen::default();
    let mut now = core::time::Duration::ZERO;
    for frame in reader.by_ref() {
        let f = frame.unwrap();
        seen.frames += 1;
        now = f.timestamp.unwrap().as_duration();
        let raw = f.frame.raw_id();
        let data = embedded_can::Frame::data(&f.frame);
        if let Some(t) = tp.poll(now) {
            panic!("unexpected timeout in a clean trace: {t:?}");
        }
        if let Some(TpEvent::Message { message, .. }) = tp.on_frame(raw, data, now).unwrap() {
            assert_eq!(message.transfer, Transfer::Bam);
            *seen
                .bam_pgns
                .entry((message.source, message.pgn))
                .or_default() += 1;
            if message.pgn == PGN_DM1 {
                let dm1 = Dm1::parse(message.data).unwrap();
                seen.bam_dm1
                    .push((message.source, dm1.lamps.mil.status, dtcs(&dm1)));
            }
            continue;
        }
        let id = J1939Id::from_raw(raw).unwrap();
        match id.pgn() {
            PGN_DM1 => {
                let dm1 = Dm1::parse(data).unwrap();
                let e = seen.single_dm1.entry(id.source()).or_default();
                e.0 += 1;
                e.1 += usize::from(dm1.dtcs().next().is_some());
            }
            PGN_VD => {
                let vd = VehicleDistance::decode(data).unwrap();
                seen.vd_total_m.push(vd.total_m.valid().unwrap());
            }
            PGN_VDHR => {
                let v = HighResVehicleDistance::decode(data).unwrap();
                seen.vdhr_total_m
                    .entry(id.source())
                    .or_default()
                    .push(v.total_m.valid().unwrap());
            }
            PGN_CCVS1 => {
                let c = CruiseControlVehicleSpeed::decode(data).unwrap();
                seen.ccvs1_speed
                    .entry(id.source())
                    .or_default()
                    .push(c.wheel_speed_kmh_256);
            }
            PGN_HOURS => seen.hours.push(EngineHours::decode(data).unwrap()),
            _ => {}
        }
    }
    assert_eq!(seen.frames, 19_957);
    assert_eq!(reader.stats().bad, 0);

    // Every BAM in the trace completes: 30 DM1 from 0x00, 2 DM1 from 0x31, 6 × PGN 65251
    // from 0x00, 6 × PGN 65249 from 0x29; none times out, even after the trace ends.
    let stats = tp.stats();
    assert_eq!(
        (stats.bam_completed, stats.bam_timed_out, stats.errors),
        (44, 0, 0)
    );
    assert!(tp.poll(now + core::time::Duration::from_secs(10)).is_none());
    let expected_bams: BTreeMap<(u8, u32), usize> = [
        ((0x00, 65226), 30),
        ((0x00, 65251), 6),
        ((0x29, 65249), 6),
        ((0x31, 65226), 2),
    ]
    .into();
    assert_eq!(seen.bam_pgns, expected_bams);

    // VECTORS.md §4d: the multi-packet DM1s.
    let sa0: Vec<_> = seen.bam_dm1.iter().filter(|d| d.0 == 0x00).collect();
    assert_eq!(sa0.len(), 30);
    for (_, mil, list) in &sa0 {
        assert_eq!(*mil, LampStatus::On);
        assert_eq!(
            list,
            &[(191, 9, Some(8)), (84, 9, Some(8)), (5357, 31, Some(1))]
        );
    }
    let sa31: Vec<_> = seen.bam_dm1.iter().filter(|d| d.0 == 0x31).collect();
    assert_eq!(sa31.len(), 2);
    for (_, mil, list) in &sa31 {
        assert_eq!(*mil, LampStatus::NotAvailable);
        assert_eq!(list, &[(96, 3, Some(126)), (829, 3, Some(126))]);
    }
    // Single-frame DM1s from 0x31 and 0x03 say "no DTC" (the all-zero entry).
    assert_eq!(seen.single_dm1.get(&0x31), Some(&(29, 0)));
    assert_eq!(seen.single_dm1.get(&0x03), Some(&(30, 0)));

    // VD: 300 frames, 438978.0 km at the start, the truck moves 375 m in 30 s.
    assert_eq!(seen.vd_total_m.len(), 300);
    assert_eq!(seen.vd_total_m.first(), Some(&438_978_000));
    assert_eq!(seen.vd_total_m.iter().max(), Some(&438_978_375));
    // VDHR from two ECUs: 438978.05 km (engine, agrees with VD) and 537151.605 km (0x31).
    assert_eq!(
        seen.vdhr_total_m.get(&0x00).map(|v| v[0]),
        Some(438_978_050)
    );
    assert_eq!(
        seen.vdhr_total_m.get(&0x31).map(|v| v[0]),
        Some(537_151_605)
    );
    assert_eq!(seen.vdhr_total_m.get(&0x00).map(Vec::len), Some(30));
    // CCVS1: 23.203 km/h (0x1734/256) first from 0x00; 0x31 sends "not available".
    assert_eq!(
        seen.ccvs1_speed.get(&0x00).map(|v| v[0]),
        Some(Signal::Valid(0x1734))
    );
    assert!(
        seen.ccvs1_speed
            .get(&0x31)
            .unwrap()
            .iter()
            .all(|s| *s == Signal::NotAvailable)
    );
    // HOURS: 0x00025DDF × 0.05 h = 7755.15 h.
    assert_eq!(
        seen.hours.first().map(|h| h.total_hours_x20),
        Some(Signal::Valid(155_103))
    );
}
