//! End to end on a desk car with two buses (`config/multibus.toml`): OBD-II on the powertrain
//! bus, three UDS ECUs — the cluster on the body bus answers at once, the gateway on the
//! powertrain bus never answers, the hybrid ECU on the powertrain bus (same CAN ids as the
//! cluster) answers `responsePending` first and the real answer 800 ms later. The agent reads
//! both buses: odometer from every source, DTCs keyed by (bus, ECU), the silent ECU counted and
//! backed off without costing the others a round, the slow one answered. The recorded two-bus
//! trace replays to the same DTCs, routed by interface name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rapport_agent::clock::ManualClock;
use rapport_agent::config::{self, Loaded};
use rapport_agent::desk::{self, DeskSummary};
use rapport_agent::observe::{DtcState, Observation};
use rapport_agent::replay;
use rapport_agent::runtime::{Core, SimCar};
use rapport_agent::sim::{Fault, Power, Script, Step, UdsMode};
use rapport_shared::{EngineHours, Odometer, SignalSource, Timestamp, UdsCode, UdsStatus};

const T0_MS: u64 = 1_790_000_000_000;
const MIN: Duration = Duration::from_secs(60);
const POWERTRAIN: u8 = 0;
const BODY: u8 = 1;

fn multibus() -> Loaded {
    config::load(&rapport_harness::files::repo_file("config/multibus.toml")).unwrap()
}

/// 10 minutes with the engine running, a UDS fault from minute 4, then parked and off.
fn script() -> Script {
    Script::new(Odometer::from_km(30_000), EngineHours::from_secs(0))
        .power(Power::Running)
        .drive_for(90, 4 * MIN)
        .then(Step::SetFault(Fault::Uds {
            code: UdsCode::new(0x01_331C).unwrap(),
            status: UdsStatus(0x2F),
        }))
        .drive_for(60, 6 * MIN)
        .power(Power::Off)
        .park(2 * MIN)
}

fn modes() -> [(&'static str, UdsMode); 2] {
    [
        ("gateway", UdsMode::Silent),
        ("hybrid", UdsMode::Slow(Duration::from_millis(800))),
    ]
}

fn stats<'a>(s: &'a DeskSummary, name: &str) -> &'a rapport_agent::desk::UdsEcuStats {
    &s.uds.iter().find(|(_, n, _)| n == name).unwrap().2
}

/// The (bus, ECU) pairs a DTC became active on.
fn dtc_sources(obs: &[Observation]) -> BTreeSet<(u8, u32, String)> {
    obs.iter()
        .filter_map(|o| match o {
            Observation::Dtc {
                dtc,
                state: DtcState::Active,
                source: SignalSource::Uds,
                bus,
                ecu,
                ..
            } => Some((*bus, *ecu, dtc.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn two_buses_three_uds_ecus_one_silent_one_slow() {
    let loaded = multibus();
    let mut car = desk::car_with_modes(&loaded, script(), &modes()).unwrap();
    assert_eq!(car.bus_count(), 2);
    let mut observations = Vec::new();
    let mut trace = String::new();
    let summary = desk::run(
        &loaded,
        &mut car,
        12 * MIN,
        Timestamp::from_millis(T0_MS),
        Some(&mut trace),
        |_, o| observations.push(o.clone()),
    );

    // The odometer, from the DIDs and OBD-II PID 0xA6 (one plausibility over all sources:
    // a reading equal to the last accepted one is no news), and the speed from OBD-II on the
    // powertrain bus.
    let read = observations
        .iter()
        .rev()
        .find_map(|o| match o {
            Observation::Odometer { odometer, .. } => Some(*odometer),
            _ => None,
        })
        .unwrap();
    let off_m = read.meters().abs_diff(summary.final_odometer.meters());
    assert!(off_m <= 200, "{read:?} vs {:?}", summary.final_odometer);
    assert!(observations.iter().any(|o| matches!(
        o,
        Observation::Speed {
            source: SignalSource::Obd,
            ..
        }
    )));
    assert!(
        !observations
            .iter()
            .any(|o| matches!(o, Observation::Warning { kind, .. } if *kind == rapport_agent::observe::WarningKind::Plausibility)),
        "the sources agree"
    );

    // The fault from both answering ECUs, one id on two buses: two sources. Never from the
    // gateway.
    let code = "P0133-1C".to_owned();
    assert_eq!(
        dtc_sources(&observations),
        BTreeSet::from([(POWERTRAIN, 0x77E, code.clone()), (BODY, 0x77E, code)]),
    );

    let (cluster, gateway, hybrid) = (
        stats(&summary, "cluster"),
        stats(&summary, "gateway"),
        stats(&summary, "hybrid"),
    );
    assert_eq!(
        summary
            .uds
            .iter()
            .map(|(b, n, _)| (*b, n.as_str()))
            .collect::<Vec<_>>(),
        [(0, "gateway"), (0, "hybrid"), (1, "cluster")],
        "one poller per bus, each with its own ECUs"
    );
    // Ten minutes with the ignition on, a data round a second.
    let rounds = 10 * 60;
    assert!(cluster.rounds.abs_diff(rounds) <= 2, "cluster: {cluster:?}");
    assert_eq!(cluster.timeouts, 0);
    assert_eq!(cluster.answers, cluster.requests);
    // The gateway's silence: every request timed out and counted; after three it is asked
    // ever less often.
    assert_eq!(gateway.answers, 0);
    assert_eq!(gateway.timeouts, gateway.requests);
    assert!(
        gateway.requests >= 3 && gateway.requests < 50,
        "{gateway:?}"
    );
    assert!(gateway.skipped_rounds > gateway.rounds * 5, "{gateway:?}");
    // ... and it cost the hybrid ECU on its bus no round: both were considered in every one.
    assert_eq!(hybrid.rounds, gateway.rounds + gateway.skipped_rounds);
    assert!(hybrid.rounds.abs_diff(rounds) <= 3, "hybrid: {hybrid:?}");
    // The slow one: a responsePending to each request, and every answer arrived but the one
    // it was working on when the ignition went off.
    assert_eq!(hybrid.timeouts, 0, "{hybrid:?}");
    assert_eq!(hybrid.pending, hybrid.requests);
    assert!(hybrid.requests - hybrid.answers <= 1, "{hybrid:?}");

    // The recorded trace holds both buses under their interface names and replays to the same
    // DTCs, each on its bus.
    assert!(
        trace.lines().any(|l| l.contains(" can0 ")) && trace.lines().any(|l| l.contains(" can1 "))
    );
    let replayed = replay_dtcs(&loaded, &trace);
    assert_eq!(replayed.unrouted_frames, 0);
    assert_eq!(
        replayed.dtc_buses,
        BTreeSet::from([None, Some(1)]),
        "a DTC line from each bus (bus 0 is left out of the JSON)"
    );
}

struct Replayed {
    unrouted_frames: u64,
    dtc_buses: BTreeSet<Option<u64>>,
    trace_line_warnings: usize,
}

fn replay_dtcs(loaded: &Loaded, trace: &str) -> Replayed {
    let mut out = Vec::new();
    let summary = replay::run(
        loaded,
        trace.as_bytes(),
        &mut out,
        replay::Options {
            summary: false,
            no_prompts: true,
        },
    )
    .unwrap();
    let mut dtc_buses = BTreeSet::new();
    let mut trace_line_warnings = 0;
    for line in String::from_utf8(out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "dtc" && v["state"] == "active" {
            dtc_buses.insert(v["bus"].as_u64());
        }
        if v["kind"] == "warning" && v["what"].as_str().is_some_and(|w| w.contains("interface")) {
            trace_line_warnings += 1;
        }
    }
    Replayed {
        unrouted_frames: summary.unrouted_frames,
        dtc_buses,
        trace_line_warnings,
    }
}

#[test]
fn a_trace_from_an_interface_no_bus_names_is_counted_and_warned_about_once() {
    let loaded = multibus();
    let mut car = desk::car_with_modes(&loaded, script(), &modes()).unwrap();
    let mut trace = String::new();
    desk::run(
        &loaded,
        &mut car,
        6 * MIN,
        Timestamp::from_millis(T0_MS),
        Some(&mut trace),
        |_, _| {},
    );
    let body_frames = trace.lines().filter(|l| l.contains(" can1 ")).count() as u64;
    assert!(body_frames > 100);
    let renamed = trace.replace(" can1 ", " can7 ");
    let replayed = replay_dtcs(&loaded, &renamed);
    assert_eq!(replayed.unrouted_frames, body_frames);
    assert_eq!(replayed.trace_line_warnings, 1);
    assert_eq!(
        replayed.dtc_buses,
        BTreeSet::from([None]),
        "the body bus's DTCs are not read"
    );
}

#[test]
fn the_running_agent_reads_both_buses() {
    let loaded = multibus();
    let dir = tempfile::tempdir().unwrap();
    let t0 = Timestamp::from_millis(T0_MS);
    let core = Arc::new(Core::open(&loaded, dir.path(), Arc::new(ManualClock::new(t0))).unwrap());
    let mut car = desk::car_with_modes(&loaded, script(), &modes()).unwrap();
    // The body computer's broadcasts, which this config does not decode: a real bus is never
    // silent while the car runs, and the agent takes them as ignition evidence.
    car.add_ecu_on(1, Box::new(rapport_agent::sim::ClusterEcu::new()));
    let mut sim = SimCar::with_car(&loaded, car, Arc::clone(&core), t0);
    sim.run_until(10 * MIN);
    let per_bus = sim.poller_stats();
    assert_eq!(per_bus.len(), 2);
    let find = |name: &str| {
        per_bus
            .iter()
            .flat_map(|(_, ecus)| ecus)
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .unwrap()
    };
    let (cluster, gateway, hybrid) = (find("cluster"), find("gateway"), find("hybrid"));
    assert!(
        cluster.answers > 500 && cluster.timeouts == 0,
        "{cluster:?}"
    );
    assert!(
        hybrid.answers > 500 && hybrid.pending == hybrid.requests,
        "{hybrid:?}"
    );
    assert!(
        hybrid.requests - hybrid.answers <= 1,
        "at most one still owed: {hybrid:?}"
    );
    assert_eq!(gateway.answers, 0);
    assert_eq!(hybrid.rounds, gateway.rounds + gateway.skipped_rounds);
    // The powertrain bus's poller asked OBD-II too; the body bus's only the cluster.
    assert!(per_bus[0].0.requests > hybrid.requests + gateway.requests);
    assert_eq!(per_bus[1].0.requests, cluster.requests);
    let (odometer, active) = core.with(|r, _| {
        let m = r.memory();
        (
            m.vehicle.odometer,
            m.dtcs.values().filter(|h| h.active).count(),
        )
    });
    let odo = odometer.unwrap();
    assert!(
        odo.meters().abs_diff(sim.state().odometer().meters()) <= 200,
        "{odo:?}"
    );
    assert_eq!(active, 1, "the UDS fault");
}
