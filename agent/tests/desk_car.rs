//! End to end on the desk car: the poller asks the virtual OBD-II and UDS ECUs, a cluster
//! broadcasts the DBC signals, the observer turns every frame into observations — over a
//! scripted 50-minute drive with faults appearing and clearing. Then the drive's recorded trace
//! is replayed through `replay::run` with the same config and must tell the same story.

use std::time::Duration;

use rapport_agent::can::candump;
use rapport_agent::config::{self, Loaded};
use rapport_agent::desk;
use rapport_agent::observe::{DtcState, Observation};
use rapport_agent::replay;
use rapport_agent::sim::{Fault, Lamp, ObdList, Power, Script, Step};
use rapport_shared::{
    DtcClass, EngineHours, Fmi, ObdCode, Odometer, Severity, SignalSource, Spn, Timestamp, UdsCode,
    UdsStatus,
};

const T0_MS: u64 = 1_790_000_000_000;
const MIN: Duration = Duration::from_secs(60);

fn passenger() -> Loaded {
    config::load(&rapport_harness::files::repo_file("config/passenger.toml")).unwrap()
}

fn script() -> Script {
    Script::new(Odometer::from_km(12_000), EngineHours::from_secs(3_600_000))
        .power(Power::Running)
        .drive_for(100, 20 * MIN)
        .then(Step::SetFault(Fault::Obd {
            ecu: 0,
            code: ObdCode::new(0x0300),
            mil: true,
            list: ObdList::Stored,
        }))
        .drive_for(80, 10 * MIN)
        .then(Step::SetFault(Fault::Uds {
            code: UdsCode::new(0x01_331C).unwrap(),
            status: UdsStatus(0x2F),
        }))
        .drive_for(50, 5 * MIN)
        .then(Step::ClearObdCodes)
        .park(5 * MIN)
        .power(Power::Off)
        .park(10 * MIN)
}

struct Run {
    observations: Vec<Observation>,
    trace: String,
    final_odometer: Odometer,
}

/// Drives the desk car the config implies through the script, recording a trace.
fn drive(loaded: &Loaded, until: Duration) -> Run {
    let mut car = desk::car_for(loaded, script()).unwrap();
    let mut observations = Vec::new();
    let mut trace = String::new();
    let summary = desk::run(
        loaded,
        &mut car,
        until,
        Timestamp::from_millis(T0_MS),
        Some(&mut trace),
        |_, o| observations.push(o.clone()),
    );
    assert!(summary.poller.requests > 1000, "{summary:?}");
    assert!(summary.poller.answers > 1000, "{summary:?}");
    Run {
        observations,
        trace,
        final_odometer: summary.final_odometer,
    }
}

fn last_odometer(obs: &[Observation], source: SignalSource) -> Option<Odometer> {
    obs.iter().rev().find_map(|o| match o {
        Observation::Odometer {
            odometer,
            source: s,
        } if *s == source => Some(*odometer),
        _ => None,
    })
}

fn dtc_events(obs: &[Observation]) -> Vec<(String, DtcState, Severity)> {
    obs.iter()
        .filter_map(|o| match o {
            Observation::Dtc {
                dtc,
                state,
                severity,
                ..
            } => Some((dtc.to_string(), *state, *severity)),
            _ => None,
        })
        .collect()
}

#[test]
fn poller_and_observer_follow_a_scripted_drive_and_its_replay_agrees() {
    let loaded = passenger();
    let run = drive(&loaded, 55 * MIN);
    let obs = &run.observations;

    // 12,000 km + 100 km/h·20 min + 80 km/h·10 min + 50 km/h·5 min = 12,050.833 km.
    assert_eq!(run.final_odometer.meters(), 12_050_833);
    // The odometer the agent accepted, by whichever source spoke last, is the car's to 0.1 km.
    let odo = obs.iter().rev().find_map(|o| match o {
        Observation::Odometer { odometer, .. } => Some(*odometer),
        _ => None,
    });
    let odo = odo.expect("an odometer was observed");
    assert!(
        run.final_odometer.meters() - odo.meters() < 100,
        "{odo} vs {}",
        run.final_odometer
    );
    // One vehicle odometer: each new value is reported once, by whichever source said it
    // first (the cluster broadcasts at 10 Hz, so mostly the DBC). Speed is per source.
    for source in [SignalSource::Obd, SignalSource::Dbc] {
        assert!(
            obs.iter()
                .any(|o| matches!(o, Observation::Speed { source: s, .. } if *s == source)),
            "no speed from {source:?}"
        );
    }
    assert!(last_odometer(obs, SignalSource::Dbc).is_some());
    assert!(
        !obs.iter()
            .any(|o| matches!(o, Observation::Warning { what, .. } if what.contains("odometer"))),
        "no implausible odometer on a clean drive"
    );

    // Faults: the misfire is critical (config override), comes and goes; the UDS code is info
    // (override) and stays.
    let dtcs = dtc_events(obs);
    let p0300: Vec<_> = dtcs.iter().filter(|d| d.0 == "P0300").collect();
    assert_eq!(
        p0300.first().map(|d| (d.1, d.2)),
        Some((DtcState::Active, Severity::Critical)),
        "{dtcs:?}"
    );
    assert!(
        p0300.iter().any(|d| d.1 == DtcState::Cleared),
        "cleared after the codes were cleared: {dtcs:?}"
    );
    assert!(
        dtcs.iter()
            .any(|d| d.0 == "P0133-1C" && d.1 == DtcState::Active && d.2 == Severity::Info),
        "{dtcs:?}"
    );
    // Parked at the end (the cluster's gear lever P).
    let parked = obs.iter().rev().find_map(|o| match o {
        Observation::Park { parked, .. } => Some(*parked),
        _ => None,
    });
    assert_eq!(parked, Some(true));

    // The recorded trace replayed passively tells the same story.
    let mut json = Vec::new();
    let summary = replay::run(
        &loaded,
        run.trace.as_bytes(),
        &mut json,
        replay::Options {
            summary: true,
            no_prompts: false,
        },
    )
    .unwrap();
    assert_eq!(summary.trace.bad, 0);
    let lines: Vec<serde_json::Value> = String::from_utf8(json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let replayed_km = lines
        .iter()
        .rev()
        .find(|l| l["kind"] == "odometer")
        .and_then(|l| l["km"].as_f64())
        .unwrap();
    assert!(
        (replayed_km - odo.km()).abs() < 0.15,
        "replay {replayed_km} vs live {}",
        odo.km()
    );
    let replayed_codes: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l["kind"] == "dtc")
        .map(|l| {
            format!(
                "{}:{}",
                l["code"].as_str().unwrap(),
                l["state"].as_str().unwrap()
            )
        })
        .collect();
    for want in ["P0300:active", "P0300:cleared", "P0133-1C:active"] {
        assert!(
            replayed_codes.contains(want),
            "{want} missing from {replayed_codes:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "dtc" && l["code"] == "P0300" && l["severity"] == "critical")
    );
}

#[test]
fn ignition_off_means_a_quiet_bus() {
    let loaded = passenger();
    let run = drive(&loaded, 55 * MIN);
    let off_at = Duration::from_millis(T0_MS) + 40 * MIN;
    let after_off: Vec<(Duration, u32)> = run
        .trace
        .lines()
        .filter_map(|l| candump::parse_line(l.as_bytes()).ok())
        .filter_map(|l| match l {
            candump::Line::Frame(f) => f.timestamp.map(|t| (t.as_duration(), f.frame.raw_id())),
            _ => None,
        })
        .filter(|(t, _)| *t > off_at + Duration::from_millis(200))
        .collect();
    // The config's off interval is 5 minutes: in the 15 minutes after ignition off, only the
    // UDS odometer is asked, at most three times, and no sleeping ECU says anything.
    assert!(
        after_off.iter().all(|(_, id)| *id == 0x714),
        "{after_off:?}"
    );
    assert!((1..=3).contains(&after_off.len()), "{after_off:?}");
}

/// Every class from the desk car through the real poller and observer: OBD-II modes 03 and 0A
/// (one code in both), UDS records with stored statuses 0x20 and 0x60 beside a confirmed 0x09,
/// and on a truck a J1939 fault that cleared, requested as DM2.
#[test]
fn every_dtc_class_comes_from_the_desk_car_kept_apart() {
    let classes = |obs: &[Observation]| -> Vec<(String, DtcState, DtcClass)> {
        obs.iter()
            .filter_map(|o| match o {
                Observation::Dtc {
                    dtc, state, class, ..
                } => Some((dtc.to_string(), *state, *class)),
                _ => None,
            })
            .collect()
    };
    let obd = |list| {
        Step::SetFault(Fault::Obd {
            ecu: 0,
            code: ObdCode::new(0x0420),
            mil: true,
            list,
        })
    };
    let uds = |code: u32, status| {
        Step::SetFault(Fault::Uds {
            code: UdsCode::new(code).unwrap(),
            status: UdsStatus(status),
        })
    };
    let script = Script::new(Odometer::from_km(12_000), EngineHours::from_secs(3_600_000))
        .power(Power::Running)
        .then(obd(ObdList::Permanent))
        .then(uds(0x01_331C, 0x09))
        .then(uds(0x04_2000, 0x20))
        .then(uds(0xC1_2345, 0x60))
        .drive_for(50, 2 * MIN);
    let loaded = passenger();
    let mut car = desk::car_for(&loaded, script).unwrap();
    let mut obs = Vec::new();
    desk::run(
        &loaded,
        &mut car,
        2 * MIN,
        Timestamp::from_millis(T0_MS),
        None,
        |_, o| obs.push(o.clone()),
    );
    let got = classes(&obs);
    let active = |code: &str, class| (code.to_owned(), DtcState::Active, class);
    for want in [
        active("P0420", DtcClass::Permanent),
        active("P0133-1C", DtcClass::Confirmed),
        active("P0420-00", DtcClass::Stored),
        active("U0123-45", DtcClass::Stored),
    ] {
        assert!(got.contains(&want), "{want:?} missing from {got:?}");
    }
    assert!(
        !got.iter()
            .any(|g| g.0 == "P0420" && g.2 != DtcClass::Permanent),
        "permanent only: {got:?}"
    );

    // A truck whose engine fault clears: DM1 active, then (asked for) DM2 previously active.
    let mut truck =
        config::load(&rapport_harness::files::repo_file("config/commercial.toml")).unwrap();
    truck.config.j1939.as_mut().unwrap().dm2 = true;
    let spn = Fault::J1939 {
        source: 0,
        spn: Spn::new(110).unwrap(),
        fmi: Fmi::new(0).unwrap(),
        lamp: Lamp::AmberWarning,
    };
    let script = Script::new(
        Odometer::from_km(400_000),
        EngineHours::from_secs(3_600_000),
    )
    .power(Power::Running)
    .then(Step::SetFault(spn))
    .drive_for(60, MIN)
    .then(Step::ClearFault(spn))
    .drive_for(60, 2 * MIN);
    let mut car = desk::car_for(&truck, script).unwrap();
    let mut obs = Vec::new();
    desk::run(
        &truck,
        &mut car,
        3 * MIN,
        Timestamp::from_millis(T0_MS),
        None,
        |_, o| obs.push(o.clone()),
    );
    let got = classes(&obs);
    let spn110: Vec<_> = got.iter().filter(|g| g.0 == "SPN110/FMI0").collect();
    assert_eq!(
        spn110,
        [
            &("SPN110/FMI0".to_owned(), DtcState::Active, DtcClass::Active),
            &(
                "SPN110/FMI0".to_owned(),
                DtcState::Cleared,
                DtcClass::Active
            ),
            &(
                "SPN110/FMI0".to_owned(),
                DtcState::Active,
                DtcClass::PreviouslyActive
            ),
        ],
        "{got:?}"
    );
}
