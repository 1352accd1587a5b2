//! The engine's unit tests: what a downlink does to the rules (the long drives are in the
//! crate's `tests/rules_drive.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rapport_shared::v1::downlink::{DownlinkBody, DownlinkMessage, ScheduleUpdate};

use super::*;
use crate::config::Config;

const CONFIG: &str = r#"
[vehicle]
vin = "WVWZZZ1KZ8W012345"
line = "test-line"
category = "passenger"
delivered = "2025-01-01"

[[maintenance.items]]
id = "oil"
every_km = 10000
"#;

/// 2025-01-01T00:00:00Z.
const START: u64 = 1_735_689_600_000;

fn rules() -> Rules {
    let c = Config::from_toml("t.toml", CONFIG).unwrap();
    let settings = Settings {
        vehicle: c.vehicle,
        maintenance: c.maintenance,
        prompts: c.prompts,
        odometer_every_m: c.store.odometer_every_m,
        odometer_every_s: c.store.odometer_every_s,
        outbox_odometer_every_m: c.outbox.odometer_every_m,
    };
    Rules::new(settings, Memory::default(), Timestamp::from_millis(START)).0
}

fn schedule(id: u64, line: &str, items: Vec<MaintenanceItem>) -> DownlinkMessage {
    DownlinkMessage {
        id,
        at: Timestamp::from_millis(START),
        body: DownlinkBody::ScheduleUpdate(ScheduleUpdate {
            line: line.into(),
            items,
        }),
    }
}

#[test]
fn a_schedule_that_fails_the_config_checks_is_refused_and_marked_applied() {
    let mut rules = rules();
    let now = Timestamp::from_millis(START + 1000);
    let bad = schedule(
        9,
        "test-line",
        vec![
            MaintenanceItem {
                id: "oil".into(),
                every_km: Some(0),
                ..MaintenanceItem::default()
            },
            MaintenanceItem {
                id: "tyres".into(),
                ..MaintenanceItem::default()
            },
        ],
    );
    let applied = rules.apply_downlink(&bad, now);
    let why = applied.refused.unwrap();
    assert!(
        why.contains("items[0].every_km: must be at least 1")
            && why.contains("items[1]: has no interval"),
        "{why}"
    );
    // Marked applied (written at once, never retried), nothing else changed.
    assert!(applied.changes.downlinks.contains(&9) && applied.changes.durable);
    assert!(!applied.changes.schedule);
    assert!(rules.memory().schedule.is_none());
    assert_eq!(
        rules.schedule()[0].every_km,
        Some(10_000),
        "the old schedule stays"
    );
    // Delivered again: already applied, nothing to do.
    let again = rules.apply_downlink(&bad, now);
    assert!(again.changes.is_empty() && again.refused.is_none());

    // A good one still applies.
    let good = schedule(
        10,
        "test-line",
        vec![MaintenanceItem {
            id: "cabin_filter".into(),
            every_km: Some(500),
            ..MaintenanceItem::default()
        }],
    );
    let applied = rules.apply_downlink(&good, now);
    assert!(applied.refused.is_none() && applied.changes.schedule);
    assert_eq!(rules.schedule()[0].id, "cabin_filter");
}
