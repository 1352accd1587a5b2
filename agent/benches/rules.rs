//! Rule evaluation cost per observation (issue 4): the rules run on every odometer change, so
//! `Rules::on_observation` with a new odometer reading is timed with the example passenger
//! config's schedule, on a car with a realistic history (prompts, faults, services); and a
//! speed reading (motion only, no re-evaluation); and a tick (time-based evaluation).
//!
//! Run: `cargo bench -p rapport-agent --bench rules -- --warm-up-time 1 --measurement-time 3`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rapport_agent::config;
use rapport_agent::memory::{Memory, ServiceSource};
use rapport_agent::observe::{DtcState, Observation};
use rapport_agent::rules::{DriverAction, Rules};
use rapport_shared::{Dtc, DtcClass, ObdCode, Odometer, Severity, SignalSource, Timestamp};

/// 2025-01-01.
const START: u64 = 1_735_689_600_000;

/// A car two years in: services recorded, faults seen and cleared, prompts acted on.
fn seasoned() -> (Rules, u64, u64) {
    let loaded = config::load(&rapport_harness::files::repo_file("config/passenger.toml")).unwrap();
    let mut cfg = rapport_agent::settings::rules(&loaded.config);
    cfg.prompts.quiet_hours = None;
    let (mut rules, _) = Rules::new(cfg, Memory::default(), Timestamp::from_millis(START));
    let mut now = START;
    let mut odo = 0u64;
    for day in 0..730u64 {
        now += 86_400_000;
        odo += 60_000;
        let t = Timestamp::from_millis(now);
        rules.on_observation(
            &Observation::Odometer {
                odometer: Odometer::from_meters(odo),
                source: SignalSource::Obd,
            },
            t,
        );
        rules.on_observation(
            &Observation::Park {
                parked: true,
                source: SignalSource::Dbc,
            },
            t,
        );
        if day % 30 == 0 {
            let code = 0x0100 + (day / 30) as u16;
            for state in [DtcState::Active, DtcState::Cleared] {
                rules.on_observation(
                    &Observation::Dtc {
                        dtc: Dtc::Obd(ObdCode::new(code)),
                        state,
                        severity: Severity::Warning,
                        source: SignalSource::Obd,
                        bus: 0,
                        ecu: 0x7E8,
                        class: DtcClass::Confirmed,
                    },
                    t,
                );
            }
        }
        rules.tick(t);
        let shown: Vec<String> = rules
            .visible_prompts(t)
            .iter()
            .map(|p| p.id.clone())
            .collect();
        for id in shown {
            let _ = rules.act(&id, DriverAction::Ack, t);
        }
        if day % 180 == 179 {
            let _ = rules.record_service(
                &["oil".to_string(), "first_service".to_string()],
                None,
                None,
                ServiceSource::Driver,
                t,
            );
        }
    }
    (rules, now, odo)
}

fn bench(c: &mut Criterion) {
    let (mut rules, mut now, mut odo) = seasoned();
    let prompts = rules.memory().prompts.len();
    let mut g = c.benchmark_group(format!("rules ({prompts} prompts in memory)"));
    g.bench_function("odometer observation (+10 m)", |b| {
        b.iter(|| {
            now += 400;
            odo += 10;
            black_box(rules.on_observation(
                &Observation::Odometer {
                    odometer: Odometer::from_meters(odo),
                    source: SignalSource::Obd,
                },
                Timestamp::from_millis(now),
            ))
        });
    });
    g.bench_function("speed observation", |b| {
        b.iter(|| {
            now += 100;
            black_box(rules.on_observation(
                &Observation::Speed {
                    kmh: 90.0,
                    source: SignalSource::Obd,
                },
                Timestamp::from_millis(now),
            ))
        });
    });
    g.bench_function("tick", |b| {
        b.iter(|| {
            now += 1000;
            black_box(rules.tick(Timestamp::from_millis(now)))
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
