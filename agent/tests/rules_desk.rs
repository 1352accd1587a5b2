//! The rules behind the real poller and decoders, on the desk car (virtual ECUs on the virtual
//! bus): a drive across the first-service distance with a misfire appearing on the way. The
//! critical fault reaches the screen at once, while driving; the first service waits until the
//! car is parked; the odometer the rules remember is the car's.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_agent::config::Loaded;
use rapport_agent::memory::Memory;
use rapport_agent::rules::Rules;
use rapport_agent::sim::Script;
use rapport_shared::Timestamp;
use rapport_shared::v1::uplink::{PromptAction, RecordBody};

/// 2026-01-01T10:00:00Z: daytime at UTC+1, outside the example's quiet hours.
const START: u64 = 1_767_261_600_000;

fn loaded() -> Loaded {
    let dir = std::env::temp_dir().join(format!("rapport-rules-desk-{}", std::process::id()));
    let mut c = rapport_harness::agent::passenger().unwrap();
    c.vehicle.delivered = rapport_shared::CivilDate::parse("2025-12-01").unwrap();
    rapport_harness::agent::load(&c, &dir).unwrap()
}

#[test]
fn critical_fault_at_once_first_service_when_parked() {
    let loaded = loaded();
    let script: Script = toml::from_str(
        r#"
odometer_m = 4995000
[[steps]]
power = "running"
[[steps]]
drive = { kmh = 60, secs = 300 }
[[steps]]
set_fault = { obd = { code = 0x0300, mil = true } }
[[steps]]
drive = { kmh = 60, secs = 300 }
[[steps]]
stop = { secs = 10 }
[[steps]]
park = { secs = 120 }
"#,
    )
    .unwrap();
    let mut car = rapport_agent::desk::car_for(&loaded, script).unwrap();
    let (mut rules, _) = Rules::new(
        rapport_agent::settings::rules(&loaded.config),
        Memory::default(),
        Timestamp::from_millis(START),
    );
    let mut shown: Vec<(u64, String)> = Vec::new();
    let mut last_tick = 0;
    let summary = rapport_agent::desk::run(
        &loaded,
        &mut car,
        Duration::from_secs(740),
        Timestamp::from_millis(START),
        None,
        |t, obs| {
            let mut changes = vec![rules.on_observation(obs, t)];
            if t.as_millis() >= last_tick + 1000 {
                last_tick = t.as_millis();
                changes.push(rules.tick(t));
            }
            for ch in changes {
                for (at, r) in ch.outbox {
                    if let RecordBody::Prompt(p) = r
                        && p.action == PromptAction::Shown
                    {
                        shown.push(((at.as_millis() - START) / 1000, p.prompt));
                    }
                }
            }
        },
    );
    let ids: Vec<&str> = shown.iter().map(|(_, id)| id.as_str()).collect();
    assert!(
        ids.contains(&"fault:P0300:1:critical"),
        "the misfire (critical by the config's override) is shown: {shown:?}"
    );
    let (t_fault, _) = shown
        .iter()
        .find(|(_, id)| id == "fault:P0300:1:critical")
        .unwrap();
    assert!(
        (300..600).contains(t_fault),
        "shown at once while driving, at {t_fault} s"
    );
    let (t_service, _) = shown
        .iter()
        .find(|(_, id)| id == "maintenance:first_service:0:due")
        .unwrap_or_else(|| panic!("first service due after 5,000 km: {shown:?}"));
    assert!(
        *t_service >= 600,
        "the first service waits for the stop: shown at {t_service} s"
    );
    assert!(
        !ids.contains(&"maintenance:first_service:0:due_soon"),
        "due-soon resolved by due before the car stopped: {shown:?}"
    );
    let remembered = rules.memory().vehicle.odometer.unwrap().meters();
    let truth = summary.final_odometer.meters();
    assert!(
        truth.abs_diff(remembered) <= 100,
        "odometer {remembered} m vs the car's {truth} m"
    );
}
