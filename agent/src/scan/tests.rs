//! The scanner against hand-made ECUs: a closure that answers each request frame the scanner
//! sends, one millisecond later.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use embedded_can::Frame as _;

use super::report::{Context, config_skeleton, table};
use super::*;
use crate::can::CanFrame;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A single frame padded to 8 bytes, as ISO 15765-4 ECUs send them.
fn sf(id: u32, payload: &[u8]) -> CanFrame {
    let mut data = [0u8; 8];
    data[0] = payload.len() as u8;
    data[1..=payload.len()].copy_from_slice(payload);
    CanFrame::from_raw(id, id > 0x7FF, &data).unwrap()
}

/// A scan with nothing but what a test asks for: no listening window, no UDS, no 29-bit.
fn quiet_settings() -> Settings {
    Settings {
        listen: Duration::ZERO,
        obd_29bit: false,
        uds_ids: Vec::new(),
        dids: Vec::new(),
        ..Settings::default()
    }
}

/// Every frame the scanner sent, with when.
struct Run {
    sent: Vec<(Duration, CanFrame)>,
    scanner: Scanner,
}

impl Run {
    fn requests(&self) -> Vec<(u32, Vec<u8>)> {
        self.sent
            .iter()
            .filter(|(_, f)| f.data().first().is_some_and(|b| b >> 4 == 0))
            .map(|(_, f)| {
                let n = usize::from(f.data()[0]);
                (f.raw_id(), f.data()[1..=n].to_vec())
            })
            .collect()
    }
}

/// Runs `scanner` for up to `limit` in 1 ms steps; `ecu` answers each frame sent (and may
/// inject broadcast frames at a time through `inject`).
fn run(
    settings: Settings,
    limit: Duration,
    mut ecu: impl FnMut(&CanFrame) -> Vec<CanFrame>,
    mut inject: impl FnMut(Duration) -> Vec<CanFrame>,
) -> Run {
    let mut scanner = Scanner::new(settings);
    let mut sent = Vec::new();
    let mut pending: Vec<CanFrame> = Vec::new();
    let mut out = Vec::new();
    let mut now = Duration::ZERO;
    while now < limit {
        for f in std::mem::take(&mut pending).into_iter().chain(inject(now)) {
            scanner.on_frame(&f, now, &mut out);
        }
        scanner.poll(now, &mut out);
        for f in out.drain(..) {
            sent.push((now, f));
            pending.extend(ecu(&f));
        }
        if *scanner.status() != Status::Running {
            break;
        }
        now += ms(1);
    }
    Run { sent, scanner }
}

fn payload(f: &CanFrame) -> &[u8] {
    let n = usize::from(f.data()[0] & 0x0F);
    &f.data()[1..=n.min(7)]
}

/// An OBD-II engine ECU on 0x7E0/0x7E8 supporting 0x01–0x07, 0x0C–0x10, 0x20 (chain), 0x21,
/// 0x40 (chain), 0x42; speed `kmh`.
fn engine(kmh: u8) -> impl FnMut(&CanFrame) -> Vec<CanFrame> {
    move |f: &CanFrame| {
        let id = f.raw_id();
        if id != 0x7DF && id != 0x7E0 {
            return Vec::new();
        }
        match payload(f) {
            // PIDs 01, 03–07 | 0C–10 | … | 20: BE 1F A8 13 (bit 0 = PID 0x20 supported).
            [0x01, 0x00] => vec![sf(0x7E8, &[0x41, 0x00, 0xBE, 0x1F, 0xA8, 0x13])],
            // PID 0x21 and (bit 0) 0x40.
            [0x01, 0x20] => vec![sf(0x7E8, &[0x41, 0x20, 0x80, 0x00, 0x00, 0x01])],
            // PID 0x42 only; the chain ends.
            [0x01, 0x40] => vec![sf(0x7E8, &[0x41, 0x40, 0x40, 0x00, 0x00, 0x00])],
            [0x01, 0x0D] => vec![sf(0x7E8, &[0x41, 0x0D, kmh])],
            _ => Vec::new(),
        }
    }
}

fn nothing(_: Duration) -> Vec<CanFrame> {
    Vec::new()
}

#[test]
fn bitmap_chain_is_followed_physically_to_its_end() {
    let r = run(quiet_settings(), Duration::from_secs(5), engine(0), nothing);
    assert_eq!(*r.scanner.status(), Status::Done);
    let mut reqs = r.requests();
    assert_eq!(reqs[0], (0x7DF, vec![0x01, 0x00]));
    // The speed first, as soon as the ECU says it has it; then again every second.
    assert_eq!(reqs[1], (0x7DF, vec![0x01, 0x0D]));
    reqs.retain(|(_, p)| p != &[0x01, 0x0D]);
    assert_eq!(reqs[1], (0x7E0, vec![0x01, 0x20]));
    assert_eq!(reqs[2], (0x7E0, vec![0x01, 0x40]));
    // 0x7E0 answered: only 0x7E1–0x7E7 are probed physically; no 0x60 asked.
    let physical: Vec<u32> = reqs[3..10].iter().map(|(id, _)| *id).collect();
    assert_eq!(physical, (0x7E1..=0x7E7).collect::<Vec<_>>());
    assert!(!reqs.iter().any(|(_, p)| p == &[0x01, 0x60]));
    assert_eq!(reqs[10..], [(0x7DF, vec![0x09, 0x02])]);
    let e = &r.scanner.findings().obd[&0x7E8];
    assert_eq!(
        e.pids(),
        [
            0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x13, 0x15,
            0x1C, 0x1F, 0x21, 0x42
        ]
    );
    assert_eq!((e.request_id, e.extended), (0x7E0, false));
}

#[test]
fn requests_are_paced_and_never_overlap() {
    let r = run(quiet_settings(), Duration::from_secs(5), engine(0), nothing);
    let times: Vec<Duration> = r.sent.iter().map(|(t, _)| *t).collect();
    for w in times.windows(2) {
        assert!(w[1] >= w[0] + ms(50), "{w:?}");
    }
}

#[test]
fn vin_is_reassembled_from_a_multi_frame_answer_with_flow_control() {
    let vin = b"WVWZZZ1KZ8W012345";
    let mut ecu = engine(0);
    let r = run(
        quiet_settings(),
        Duration::from_secs(5),
        move |f| {
            if f.raw_id() == 0x7DF && payload(f) == [0x09, 0x02] {
                // First frame: 20 bytes = 49 02 01 + 17 VIN characters.
                let mut d = vec![0x10, 20, 0x49, 0x02, 0x01];
                d.extend_from_slice(&vin[..3]);
                return vec![CanFrame::from_raw(0x7E8, false, &d).unwrap()];
            }
            if f.raw_id() == 0x7E0 && f.data()[0] == 0x30 {
                let mut c1 = vec![0x21];
                c1.extend_from_slice(&vin[3..10]);
                let mut c2 = vec![0x22];
                c2.extend_from_slice(&vin[10..17]);
                return vec![
                    CanFrame::from_raw(0x7E8, false, &c1).unwrap(),
                    CanFrame::from_raw(0x7E8, false, &c2).unwrap(),
                ];
            }
            ecu(f)
        },
        nothing,
    );
    // The flow control went to the ECU's physical id.
    assert!(
        r.sent
            .iter()
            .any(|(_, f)| f.raw_id() == 0x7E0 && f.data()[0] == 0x30)
    );
    let found = r.scanner.findings();
    assert_eq!(found.vin.as_deref(), Some("WVWZZZ1KZ8W012345"));
    assert_eq!(found.obd[&0x7E8].vin.as_deref(), Some("WVWZZZ1KZ8W012345"));
}

/// A cluster on 0x714 → 0x77E: TesterPresent yes, the VIN DID refused (NRC 0x31), the odometer
/// DID 0xF1A0 answered (3 bytes, 0.1 km).
fn cluster(f: &CanFrame) -> Vec<CanFrame> {
    if f.raw_id() != 0x714 {
        return Vec::new();
    }
    match payload(f) {
        [0x3E, 0x00] => vec![sf(0x77E, &[0x7E, 0x00])],
        [0x22, 0xF1, 0xA0] => vec![sf(0x77E, &[0x62, 0xF1, 0xA0, 0x01, 0xD4, 0xC0])],
        [0x22, ..] => vec![sf(0x77E, &[0x7F, 0x22, 0x31])],
        _ => Vec::new(),
    }
}

#[test]
fn uds_refusals_are_noted_and_silent_ids_skipped() {
    let settings = Settings {
        uds_ids: vec![0x713, 0x714, 0x715],
        dids: vec![0xF190, 0xF1A0],
        ..quiet_settings()
    };
    let r = run(settings, Duration::from_secs(10), cluster, nothing);
    assert_eq!(*r.scanner.status(), Status::Done);
    let found = r.scanner.findings();
    assert_eq!(found.uds.len(), 1, "only 0x714 answers");
    let e = &found.uds[0];
    assert_eq!(
        (e.request_id, e.response_id, e.tester_present),
        (0x714, 0x77E, true)
    );
    assert_eq!(
        e.dids,
        [
            (0xF190, DidAnswer::Refused(0x31)),
            (0xF1A0, DidAnswer::Data(vec![0x01, 0xD4, 0xC0])),
        ]
    );
    // The silent ids were each asked once, and nothing after them: 9 OBD probes + 3 + 2 DIDs.
    let reqs = r.requests();
    assert_eq!(reqs.len(), 14, "{reqs:x?}");
    assert_eq!(reqs.iter().filter(|(id, _)| *id == 0x715).count(), 1);
    assert!(found.obd.is_empty());
    assert!(!found.watched_speed());
    assert!(table(found, r.scanner.status()).contains("WARNING: no speed signal found"));
}

#[test]
fn traffic_on_the_uds_range_gets_no_flow_control() {
    let settings = Settings {
        uds_ids: vec![0x713],
        ..quiet_settings()
    };
    // Whenever 0x713 is probed, 0x7A0 sends what looks like an ISO-TP first frame.
    let r = run(
        settings,
        Duration::from_secs(5),
        |f| {
            if f.raw_id() == 0x713 {
                vec![CanFrame::from_raw(0x7A0, false, &[0x10, 0x20, 1, 2, 3, 4, 5, 6]).unwrap()]
            } else {
                Vec::new()
            }
        },
        nothing,
    );
    assert_eq!(*r.scanner.status(), Status::Done);
    assert!(r.scanner.findings().uds.is_empty());
    assert!(
        r.sent.iter().all(|(_, f)| f.data()[0] >> 4 == 0),
        "no flow control sent"
    );
}

#[test]
fn skeleton_from_findings_passes_the_config_check() {
    let settings = Settings {
        uds_ids: vec![0x714],
        dids: vec![0xF190, 0xF1A0],
        ..quiet_settings()
    };
    let mut ecu = engine(0);
    let r = run(
        settings,
        Duration::from_secs(10),
        move |f| {
            let mut v = ecu(f);
            v.extend(cluster(f));
            v
        },
        nothing,
    );
    let ctx = Context {
        interface: "can0",
        today: "2026-12-07",
    };
    let text = config_skeleton(r.scanner.findings(), r.scanner.status(), &ctx);
    let config = crate::config::Config::from_toml("skeleton", &text).unwrap();
    let mut problems = rapport_kit::config::Problems::new();
    problems.check("", &config);
    assert!(problems.into_result("skeleton").is_ok(), "{text}");
    let obd = config.obd.unwrap();
    // 0x03, 0x06, … have no decoder in the agent: only the decodable PIDs are polled.
    assert!(
        obd.pids.contains(&0x0D) && obd.pids.contains(&0x42),
        "{:x?}",
        obd.pids
    );
    assert!(
        obd.pids
            .iter()
            .all(|p| crate::proto::obd::pid_data_len(*p).is_some())
    );
    assert_eq!(config.uds.len(), 1, "{text}");
    let uds = &config.uds[0];
    assert_eq!(uds.name.as_deref(), Some("ecu_714"));
    assert_eq!((uds.request_id, uds.response_id), (0x714, 0x77E));
    assert_eq!(uds.dids.len(), 1);
    assert_eq!((uds.dids[0].did, uds.dids[0].len), (0xF1A0, 3));
    assert!(
        text.contains("0xF190 VIN: refused, NRC 0x31 requestOutOfRange"),
        "{text}"
    );
    assert!(table(r.scanner.findings(), r.scanner.status()).contains("scan complete"));
}

#[test]
fn obd_speed_above_zero_stops_at_once() {
    let r = run(
        quiet_settings(),
        Duration::from_secs(5),
        engine(30),
        nothing,
    );
    assert!(
        matches!(r.scanner.status(), Status::Stopped(StopReason::Moving { kmh, .. }) if *kmh == 30.0)
    );
    // Discovery's first answer, the speed request, and nothing more however long we poll.
    assert_eq!(r.requests().len(), 2);
    let (at, last) = r.sent.last().unwrap();
    assert_eq!(payload(last), [0x01, 0x0D]);
    let mut scanner = r.scanner;
    let mut out = Vec::new();
    for t in 0..1000 {
        assert_eq!(scanner.poll(*at + ms(t), &mut out), None);
        scanner.on_frame(&sf(0x7E8, &[0x41, 0x0D, 30]), *at + ms(t), &mut out);
    }
    assert!(out.is_empty());
}

#[test]
fn j1939_speed_while_listening_stops_before_any_request() {
    let settings = Settings {
        listen: Duration::from_secs(2),
        ..quiet_settings()
    };
    // CCVS1 from the engine (SA 0x00), 12.5 km/h (3200/256) at 1 s.
    let ccvs = |t: Duration| {
        if t == ms(1000) {
            vec![CanFrame::from_raw(0x18FE_F100, true, &[0xFF, 0x80, 0x0C, 0, 0, 0, 0, 0]).unwrap()]
        } else {
            Vec::new()
        }
    };
    let r = run(settings, Duration::from_secs(5), engine(0), ccvs);
    assert!(r.sent.is_empty());
    match r.scanner.status() {
        Status::Stopped(StopReason::Moving { source, kmh }) => {
            assert_eq!(*kmh, 12.5);
            assert!(source.contains("CCVS1"), "{source}");
        }
        s => panic!("{s:?}"),
    }
    assert!(r.scanner.findings().j1939[&0x00].contains(&65_265));
}

#[test]
fn j1939_sources_and_pgns_are_listed_and_a_standing_truck_is_scanned() {
    let settings = Settings {
        listen: Duration::from_secs(2),
        ..quiet_settings()
    };
    // Every 100 ms: CCVS1 at 0 km/h from 0x00, TCO1 at 0 km/h from 0xEE.
    let broadcast = |t: Duration| {
        if !t.as_millis().is_multiple_of(100) {
            return Vec::new();
        }
        vec![
            CanFrame::from_raw(0x18FE_F100, true, &[0xFF, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            CanFrame::from_raw(0x0CFE_6CEE, true, &[0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
        ]
    };
    let r = run(settings, Duration::from_secs(10), |_| Vec::new(), broadcast);
    assert_eq!(*r.scanner.status(), Status::Done);
    let j = &r.scanner.findings().j1939;
    assert_eq!(j.len(), 2);
    assert!(j[&0xEE].contains(&65_132));
    let ctx = Context {
        interface: "can0",
        today: "2026-12-07",
    };
    let text = config_skeleton(r.scanner.findings(), r.scanner.status(), &ctx);
    let config = crate::config::Config::from_toml("skeleton", &text).unwrap();
    assert!(config.j1939.is_some() && config.obd.is_none());
    assert_eq!(config.vehicle.category, crate::config::Category::Commercial);
}

#[test]
fn tco1_speed_and_its_not_available_value() {
    assert_eq!(
        tco1_speed_kmh_256(&[0, 0, 0, 0, 0, 0, 0x00, 0x19]),
        Some(0x1900)
    );
    assert_eq!(tco1_speed_kmh_256(&[0, 0, 0, 0, 0, 0, 0xFF, 0xFF]), None);
    assert_eq!(tco1_speed_kmh_256(&[0, 0, 0]), None);
}

#[test]
fn uds_range_parses_and_refuses_nonsense() {
    assert_eq!(
        parse_uds_range("0x700-0x702").unwrap(),
        [0x700, 0x701, 0x702]
    );
    assert_eq!(parse_uds_range("7DE-7E0").unwrap(), [0x7DE, 0x7E0]);
    assert!(parse_uds_range("0x800-0x900").is_err());
    assert!(parse_uds_range("0x710").is_err());
    assert!(parse_uds_range("0x720-0x710").is_err());
    assert!(parse_uds_range("zz-0x710").is_err());
}

#[test]
fn obd_on_29_bit_ids_is_found_and_chained_physically() {
    let settings = Settings {
        obd_29bit: true,
        ..quiet_settings()
    };
    // An engine at address 0x10: 0x18DB33F1 / 0x18DA10F1 in, 0x18DAF110 out; PIDs 0x0D and
    // (chain) 0x20, then 0x21.
    let r = run(
        settings,
        Duration::from_secs(5),
        |f| {
            let id = f.raw_id();
            if id != 0x18DB_33F1 && id != 0x18DA_10F1 {
                return Vec::new();
            }
            match payload(f) {
                [0x01, 0x00] => vec![sf(0x18DA_F110, &[0x41, 0x00, 0x00, 0x08, 0x00, 0x01])],
                [0x01, 0x20] => vec![sf(0x18DA_F110, &[0x41, 0x20, 0x80, 0x00, 0x00, 0x00])],
                [0x01, 0x0D] => vec![sf(0x18DA_F110, &[0x41, 0x0D, 0x00])],
                _ => Vec::new(),
            }
        },
        nothing,
    );
    assert_eq!(*r.scanner.status(), Status::Done);
    let e = &r.scanner.findings().obd[&0x18DA_F110];
    assert_eq!((e.request_id, e.extended), (0x18DA_10F1, true));
    assert_eq!(e.pids(), [0x0D, 0x21]);
    let reqs = r.requests();
    assert!(reqs.contains(&(0x18DA_10F1, vec![0x01, 0x20])), "{reqs:x?}");
    // The speed and the VIN are asked on the 29-bit functional id.
    assert!(reqs.contains(&(0x18DB_33F1, vec![0x01, 0x0D])));
    assert!(reqs.contains(&(0x18DB_33F1, vec![0x09, 0x02])));
    let ctx = Context {
        interface: "can0",
        today: "2026-12-07",
    };
    let text = config_skeleton(r.scanner.findings(), r.scanner.status(), &ctx);
    let config = crate::config::Config::from_toml("skeleton", &text).unwrap();
    assert_eq!(config.obd.unwrap().id_bits, 29);
}
