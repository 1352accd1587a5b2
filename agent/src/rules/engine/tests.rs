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

#[test]
fn an_owner_change_turns_every_consent_off_once_and_confirms_it_keeping_the_schedule() {
    let mut rules = rules();
    let now = Timestamp::from_millis(START + 1000);
    let mut s = rules.memory().settings.clone();
    s.engagement_prompts = true;
    s.partner_sharing = true;
    let _ = rules.set_settings(s, now).unwrap();
    let custom = schedule(
        3,
        "test-line",
        vec![MaintenanceItem {
            id: "cabin_filter".into(),
            every_km: Some(500),
            ..MaintenanceItem::default()
        }],
    );
    assert!(rules.apply_downlink(&custom, now).changes.schedule);
    let msg = DownlinkMessage {
        id: 77,
        at: now,
        body: DownlinkBody::OwnerChanged(rapport_shared::OwnerChanged {
            since: Timestamp::from_millis(START),
        }),
    };
    let applied = rules.apply_downlink(&msg, now);
    assert!(applied.refused.is_none());
    let ch = &applied.changes;
    assert!(ch.downlinks.contains(&77) && ch.settings && ch.durable);
    let settings = &rules.memory().settings;
    assert!(!settings.engagement_prompts && !settings.partner_sharing);
    let consents: Vec<_> = ch
        .outbox
        .iter()
        .filter_map(|(_, b)| match b {
            RecordBody::Consent(c) => Some((c.consent, c.granted)),
            _ => None,
        })
        .collect();
    assert_eq!(
        consents,
        [
            (ConsentKind::EngagementPrompts, false),
            (ConsentKind::PartnerSharing, false)
        ]
    );
    // The car's schedule stays.
    assert_eq!(rules.schedule()[0].id, "cabin_filter");
    // Applied once: delivered again, nothing.
    let again = rules.apply_downlink(&msg, now);
    assert!(again.changes.is_empty());
}

#[test]
fn a_vehicle_wipe_forgets_the_driver_keeps_the_schedule_and_confirms_once() {
    use rapport_shared::v1::downlink::VehicleWipe;
    use rapport_shared::v1::uplink::{RecordBody, WipeConfirmed};

    let mut rules = rules();
    let now = Timestamp::from_millis(START + 1000);
    let custom = schedule(
        3,
        "test-line",
        vec![MaintenanceItem {
            id: "oil".into(),
            every_km: Some(15_000),
            ..MaintenanceItem::default()
        }],
    );
    assert!(rules.apply_downlink(&custom, now).changes.schedule);
    rules
        .record_service(
            &["oil".to_owned()],
            None,
            Some(now),
            memory::ServiceSource::Driver,
            now,
        )
        .unwrap();
    let s = memory::Settings {
        partner_sharing: true,
        engagement_prompts: false,
        ..memory::Settings::default()
    };
    rules.set_settings(s, now).unwrap();
    assert_eq!(rules.memory().services.len(), 1);
    let services_before = rules.memory().items.get("oil").map(|i| i.services);

    let erased_at = Timestamp::from_millis(START + 500);
    let wipe = DownlinkMessage {
        id: 77,
        at: erased_at,
        body: DownlinkBody::VehicleWipe(VehicleWipe { erased_at }),
    };
    let later = Timestamp::from_millis(START + 2000);
    let applied = rules.apply_downlink(&wipe, later);
    let ch = applied.changes;
    assert!(ch.wiped_services && ch.settings && ch.durable && ch.downlinks.contains(&77));
    let confirmed: Vec<_> = ch
        .outbox
        .iter()
        .filter(|(_, b)| matches!(b, RecordBody::WipeConfirmed(_)))
        .collect();
    assert_eq!(
        confirmed,
        vec![&(
            later,
            RecordBody::WipeConfirmed(WipeConfirmed {
                downlink: 77,
                erased_at
            })
        )]
    );
    let m = rules.memory();
    assert!(m.services.is_empty() && m.dtcs.is_empty() && m.campaigns.is_empty());
    assert_eq!(m.settings, memory::Settings::default());
    // The schedule in force and the item's maintenance position stay.
    assert_eq!(rules.schedule()[0].every_km, Some(15_000));
    assert_eq!(
        rules.memory().items.get("oil").map(|i| i.services),
        services_before
    );
    // Delivered again: applied once, no second confirmation.
    let again = rules.apply_downlink(&wipe, later);
    assert!(again.changes.is_empty());
}
