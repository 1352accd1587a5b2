//! The mixed benchmark traffic shared by the `decode` and `realtime` benches: built once, in
//! memory, before anything is timed.
//!
//! Owns: the bench config (`benches/mixed.toml`: OBD-II, J1939 and the example DBC on one
//! bus) and the frame sequence — the desk car (OBD engine and transmission ECUs, a J1939
//! engine ECU with three DM1 faults sent over BAM) with a tester asking OBD PIDs every 10 ms
//! and mode 03 once a second (a multi-frame answer it flow-controls), merged with synthetic
//! broadcast: `CLUSTER_1` of the passenger DBC every 1 ms, 16 other 11-bit ids and 8 other
//! J1939 PGNs at 10 ms that nothing decodes (most of a real bus). Does not own any timing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;
use std::path::Path;

use embedded_can::Frame as _;
use rapport_agent::can::CanFrame;
use rapport_agent::can::source::TimedFrame;
use rapport_agent::config::{self, Loaded};
use rapport_agent::proto::isotp::{self, Receiver, RxEvent};
use rapport_agent::sim::{
    DeskCar, Drive, Fault, J1939Ecu, J1939EcuConfig, Lamp, ObdEcu, ObdEcuConfig, ObdList, Power,
    Script, Step,
};
use rapport_shared::{EngineHours, Fmi, ObdCode, Odometer, Spn};

/// The bench config, loaded with its DBC.
pub fn loaded() -> Loaded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/mixed.toml");
    config::load(&path).expect("benches/mixed.toml loads")
}

/// What a frame of the mixed sequence is, for per-kind figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `CLUSTER_1` (0x500), decoded by the DBC plan.
    Dbc,
    /// OBD-II requests and ISO-TP answers (0x7DF, 0x7E0/0x7E1 flow control, 0x7E8/0x7E9).
    Obd,
    /// J1939 the decoder reads: CCVS1, VD, VDHR, HOURS, DM1 BAM (TP.CM + TP.DT).
    J1939,
    /// 11-bit broadcast no decoder wants.
    Other11,
    /// J1939 PGNs no decoder wants (EEC1, ETC1, …).
    Other29,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Self; 5] = [
        Self::Dbc,
        Self::Obd,
        Self::J1939,
        Self::Other11,
        Self::Other29,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dbc => "dbc_cluster_1",
            Self::Obd => "obd_isotp",
            Self::J1939 => "j1939_read",
            Self::Other11 => "other_11bit",
            Self::Other29 => "other_j1939",
        }
    }
}

/// The kind of a frame of the mixed sequence.
pub fn kind_of(frame: &CanFrame) -> Kind {
    let id = frame.raw_id();
    if !frame.is_extended() {
        return match id {
            0x500 => Kind::Dbc,
            0x7DF..=0x7EF => Kind::Obd,
            _ => Kind::Other11,
        };
    }
    let pf = (id >> 16) & 0xFF;
    let pgn = if pf < 240 {
        pf << 8
    } else {
        (id >> 8) & 0xFFFF
    };
    match pgn {
        0xFEF1 | 0xFEE0 | 0xFEC1 | 0xFEE5 | 0xFECA | 0xEC00 | 0xEB00 => Kind::J1939,
        _ => Kind::Other29,
    }
}

const KMH: u16 = 80;
const START_KM: u64 = 12_345;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn frame(id: u32, extended: bool, data: &[u8]) -> CanFrame {
    CanFrame::from_raw(id, extended, data).expect("a valid frame")
}

/// The desk car's traffic for `secs` seconds of driving: what the bus tap recorded.
fn desk_car(secs: u64) -> Vec<(Duration, CanFrame)> {
    let obd = |code: u16| {
        Step::SetFault(Fault::Obd {
            ecu: 0,
            code: ObdCode::new(code),
            mil: true,
            list: ObdList::Stored,
        })
    };
    let j1939 = |spn: u32, fmi: u8| {
        Step::SetFault(Fault::J1939 {
            source: 0,
            spn: Spn::new(spn).unwrap(),
            fmi: Fmi::new(fmi).unwrap(),
            lamp: Lamp::AmberWarning,
        })
    };
    let script = Script::new(
        Odometer::from_km(START_KM),
        EngineHours::from_secs(3600 * 100),
    )
    .power(Power::Running)
    // Three stored codes: mode 03 answers 8 bytes, a first frame and a consecutive frame.
    .then(obd(0x0300))
    .then(obd(0x0133))
    .then(obd(0x0171))
    // Three DM1 entries: 14 bytes, a BAM of two packets.
    .then(j1939(110, 0))
    .then(j1939(100, 1))
    .then(j1939(190, 2))
    .drive_for(KMH, Duration::from_secs(secs + 1));
    let drive = Drive::new(script, Duration::ZERO).unwrap();
    let mut car = DeskCar::new(drive, 8192, Duration::ZERO);
    car.add_ecu(Box::new(ObdEcu::new(ObdEcuConfig::engine())));
    car.add_ecu(Box::new(ObdEcu::new(ObdEcuConfig::transmission())));
    car.add_ecu(Box::new(J1939Ecu::new(J1939EcuConfig {
        ccvs1_period: Some(ms(20)),
        vd_period: Some(ms(100)),
        vdhr_period: Some(ms(100)),
        ..J1939EcuConfig::default()
    })));
    let tester = car.attach_tester();
    car.bus_mut().start_tap();
    let mut rx = [
        (Receiver::new(0x7E8, isotp::Config::default()), 0x7E0u32),
        (Receiver::new(0x7E9, isotp::Config::default()), 0x7E1),
    ];
    let end = Duration::from_secs(secs);
    let mut t = Duration::ZERO;
    let mut tick = 0u64;
    while t < end {
        // Every 10 ms the three PIDs; once a second mode 03 instead.
        let request: &[u8] = if tick % 100 == 50 {
            &[0x01, 0x03, 0, 0, 0, 0, 0, 0]
        } else {
            &[0x04, 0x01, 0x01, 0x0D, 0xA6, 0, 0, 0]
        };
        car.send(tester, frame(0x7DF, false, request), t);
        for step in 0..10u64 {
            car.run_until(t + ms(step));
            while let Some(st) = car.recv(tester) {
                let id = st.frame.raw_id();
                if let Some((r, fc_id)) = rx.iter_mut().find(|(r, _)| r.id() == id)
                    && let Ok(RxEvent::FlowControl(fc)) = r.on_frame(st.frame.data(), st.at)
                {
                    let fc = frame(*fc_id, false, fc);
                    car.send(tester, fc, st.at);
                }
            }
        }
        t += ms(10);
        tick += 1;
    }
    car.bus_mut()
        .stop_tap()
        .into_iter()
        .filter(|r| r.at < end)
        .map(|r| (r.at, r.frame))
        .collect()
}

/// The synthetic broadcast for `secs` seconds.
fn broadcast(secs: u64) -> Vec<(Duration, CanFrame)> {
    let mut out = Vec::new();
    let end_us = secs * 1_000_000;
    let start_m = START_KM * 1000;
    // CLUSTER_1 every 1 ms: odometer 0.1 km Intel 24 bit, gear D, speed 0.01 km/h Motorola.
    for t_us in (0..end_us).step_by(1000) {
        let m = start_m + u64::from(KMH) * t_us / 3_600_000;
        let odo = ((m / 100) as u32).to_le_bytes();
        let speed = (KMH * 100).to_be_bytes();
        let data = [odo[0], odo[1], odo[2], 3, speed[0], speed[1], 0, 0];
        out.push((
            Duration::from_micros(t_us + 100),
            frame(0x500, false, &data),
        ));
    }
    // 16 other 11-bit ids and 8 other J1939 PGNs, each every 10 ms, spread over the period.
    let other11: [u32; 16] = [
        0x0A0, 0x0C8, 0x110, 0x128, 0x1A0, 0x1F0, 0x220, 0x280, 0x2C0, 0x320, 0x3A0, 0x3E9, 0x420,
        0x4A0, 0x5A0, 0x5F0,
    ];
    let other29: [u32; 8] = [
        0x0CF0_0400, // EEC1
        0x0CF0_0203, // ETC1
        0x0CF0_0300, // EEC2
        0x18FE_EE00, // ET1
        0x18FE_EF00, // EFL/P1
        0x18FE_F200, // LFE
        0x18FE_F500, // AMB
        0x18FE_F600, // IC1
    ];
    for t_us in (0..end_us).step_by(10_000) {
        let n = (t_us / 10_000) as u8;
        for (i, id) in other11.iter().enumerate() {
            let at = t_us + 200 + i as u64 * 400;
            let data = [n, i as u8, 0x11, 0x22, 0x33, 0x44, 0x55, n ^ 0xFF];
            out.push((Duration::from_micros(at), frame(*id, false, &data)));
        }
        for (i, id) in other29.iter().enumerate() {
            let at = t_us + 300 + i as u64 * 1100;
            let data = [0xFF, n, 0x7D, 0x7D, 0xFF, 0xFF, 0xFF, i as u8];
            out.push((Duration::from_micros(at), frame(*id, true, &data)));
        }
    }
    out
}

/// The mixed sequence for `secs` seconds, in time order (about 4,000 frames a second).
pub fn mixed(secs: u64) -> Vec<TimedFrame> {
    let mut all = desk_car(secs);
    all.extend(broadcast(secs));
    all.sort_by_key(|(at, _)| *at);
    all.into_iter()
        .map(|(at, frame)| TimedFrame {
            frame,
            at,
            wall: None,
        })
        .collect()
}

/// How many frames of each kind `frames` holds.
pub fn composition(frames: &[TimedFrame]) -> Vec<(Kind, usize)> {
    Kind::ALL
        .iter()
        .map(|k| {
            (
                *k,
                frames.iter().filter(|f| kind_of(&f.frame) == *k).count(),
            )
        })
        .collect()
}

/// The frames of one kind only (times kept).
pub fn only(frames: &[TimedFrame], kind: Kind) -> Vec<TimedFrame> {
    frames
        .iter()
        .filter(|f| kind_of(&f.frame) == kind)
        .copied()
        .collect()
}
