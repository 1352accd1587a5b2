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

mod service_cases {
    use rapport_shared::v1::downlink::{ServiceProgress, ServiceStage};
    use rapport_shared::{DriverAnswer, SignalSource};

    use super::*;
    use crate::memory::SERVICE_CLOSED_KEEP_MS;
    use crate::observe::Observation;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(START + ms)
    }

    fn progress(id: u64, alert: u64, step: u32, stage: ServiceStage) -> DownlinkMessage {
        DownlinkMessage {
            id,
            at: at(0),
            body: DownlinkBody::ServiceProgress(ServiceProgress {
                alert_id: alert,
                subject: "P0300".into(),
                critical: true,
                stage,
                step,
                reached_at: at(0),
                partner: "Dealer North".into(),
                advisor: (step > 1).then(|| "Li Wei".to_owned()),
                eta: (stage == ServiceStage::Dispatched).then(|| at(3_600_000)),
            }),
        }
    }

    fn drive(rules: &mut Rules, now: Timestamp) {
        let _ = rules.on_power(true, now);
        let _ = rules.on_observation(
            &Observation::Speed {
                kmh: 60.0,
                source: SignalSource::Obd,
            },
            now,
        );
        assert!(rules.is_moving(now));
    }

    /// Parked, no speed known: stopped.
    fn park(rules: &mut Rules, now: Timestamp) {
        let _ = rules.on_observation(
            &Observation::Park {
                parked: true,
                source: SignalSource::Obd,
            },
            now,
        );
        assert!(!rules.is_moving(now));
    }

    /// Speed 0 at `now`, stopped 3 s later (`stopped_for_s`): the changes until then.
    fn stop(rules: &mut Rules, now: Timestamp) -> (Changes, Timestamp) {
        let mut ch = rules.on_observation(
            &Observation::Speed {
                kmh: 0.0,
                source: SignalSource::Obd,
            },
            now,
        );
        let later = now.saturating_add(core::time::Duration::from_secs(3));
        ch.merge(rules.tick(later));
        assert!(!rules.is_moving(later));
        (ch, later)
    }

    fn service_prompts(rules: &Rules) -> Vec<(String, PromptState)> {
        rules
            .memory()
            .prompts
            .values()
            .filter(|p| p.kind == PromptKind::ServiceProgress)
            .map(|p| (p.id.clone(), p.state))
            .collect()
    }

    fn shown_records(ch: &Changes) -> Vec<String> {
        ch.outbox
            .iter()
            .filter_map(|(_, b)| match b {
                RecordBody::Prompt(p) if p.action == PromptAction::Shown => Some(p.prompt.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn two_steps_while_driving_show_only_the_newest_once_stopped() {
        let mut rules = rules();
        drive(&mut rules, at(1));
        let a = rules.apply_downlink(&progress(1, 7, 2, ServiceStage::Contacted), at(2));
        assert!(a.changes.service_cases.contains(&7) && a.changes.downlinks.contains(&1));
        assert!(
            shown_records(&a.changes).is_empty(),
            "not shown while moving"
        );
        let b = rules.apply_downlink(&progress(2, 7, 3, ServiceStage::Dispatched), at(3));
        assert!(shown_records(&b.changes).is_empty());
        // Still moving: the held one, then the superseded one resolved unseen.
        assert_eq!(
            service_prompts(&rules),
            [
                ("service:7:2".to_owned(), PromptState::Resolved),
                ("service:7:3".to_owned(), PromptState::Pending)
            ]
        );
        let (ch, stopped) = stop(&mut rules, at(4));
        assert_eq!(shown_records(&ch), ["service:7:3"]);
        let visible: Vec<&str> = rules
            .visible_prompts(stopped)
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(visible, ["service:7:3"]);
        let p = &rules.memory().prompts["service:7:3"];
        assert!(!p.critical);
        assert!(
            p.text
                .starts_with("Dealer North: technician on the way, arriving 01:00"),
            "{}",
            p.text
        );
        assert_eq!(rules.memory().prompts["service:7:2"].first_shown, None);
    }

    #[test]
    fn a_step_not_above_the_held_one_is_superseded_and_a_repeat_id_applied_once() {
        let mut rules = rules();
        park(&mut rules, at(0));
        let first = rules.apply_downlink(&progress(1, 7, 3, ServiceStage::Dispatched), at(1));
        assert!(shown_records(&first.changes).is_empty(), "settling");
        let ch = rules.tick(at(2001));
        assert_eq!(
            shown_records(&ch),
            ["service:7:3"],
            "stopped: shown once settled"
        );
        // The same downlink id again: applied once.
        let again = rules.apply_downlink(&progress(1, 7, 3, ServiceStage::Dispatched), at(2002));
        assert!(again.changes.is_empty());
        // An older step under a new id, and the same step again: superseded, nothing shown.
        for (id, step) in [(2, 2), (3, 3)] {
            let late =
                rules.apply_downlink(&progress(id, 7, step, ServiceStage::Contacted), at(2003));
            assert!(late.changes.downlinks.contains(&id));
            assert!(
                late.changes.service_cases.is_empty() && shown_records(&late.changes).is_empty()
            );
        }
        let case = &rules.memory().service_cases[&7];
        assert_eq!(case.step(), 3);
        assert_eq!(case.history.len(), 1);
        assert_eq!(
            service_prompts(&rules),
            [("service:7:3".to_owned(), PromptState::Shown)]
        );
        // Many steps: the history keeps the newest 8.
        for step in 4..20 {
            let _ = rules.apply_downlink(
                &progress(100 + u64::from(step), 7, step, ServiceStage::Dispatched),
                at(10),
            );
        }
        let case = &rules.memory().service_cases[&7];
        assert_eq!(case.history.len(), crate::memory::SERVICE_HISTORY);
        assert_eq!(case.history[0].step, 12);
    }

    #[test]
    fn service_progress_is_not_capped_like_other_kinds() {
        let mut rules = rules();
        park(&mut rules, at(0));
        for step in 1..=5u32 {
            let t = u64::from(step) * 10_000;
            let _ = rules.apply_downlink(
                &progress(u64::from(step), 7, step, ServiceStage::Contacted),
                at(t),
            );
            let ch = rules.tick(at(t + 2_000));
            assert_eq!(shown_records(&ch), [format!("service:7:{step}")]);
        }
    }

    #[test]
    fn a_burst_of_queued_steps_while_parked_shows_only_the_newest() {
        let mut rules = rules();
        park(&mut rules, at(0));
        // The car back online: three queued steps arrive within a few milliseconds.
        for (id, step) in [(1, 1), (2, 2), (3, 3)] {
            let ch = rules
                .apply_downlink(&progress(id, 8, step, ServiceStage::Contacted), at(10 + id))
                .changes;
            assert!(
                shown_records(&ch).is_empty(),
                "step {step} shown before settling"
            );
        }
        let ch = rules.tick(at(1_000));
        assert!(shown_records(&ch).is_empty());
        let ch = rules.tick(at(13 + crate::gate::SERVICE_SETTLE_MS));
        assert_eq!(shown_records(&ch), ["service:8:3"]);
        for step in [1, 2] {
            assert_eq!(
                rules.memory().prompts[&format!("service:8:{step}")].first_shown,
                None
            );
        }
    }

    #[test]
    fn answers_go_out_once_and_a_cancel_closes_the_case_at_once() {
        let mut rules = rules();
        assert!(matches!(
            rules.answer_service(7, DriverAnswer::LeftCar, at(0)),
            Err(RulesError::NotFound(_))
        ));
        let _ = rules.apply_downlink(&progress(1, 7, 2, ServiceStage::Contacted), at(1));
        let answers = |ch: &Changes| -> Vec<(u64, DriverAnswer)> {
            ch.outbox
                .iter()
                .filter_map(|(_, b)| match b {
                    RecordBody::ServiceAnswer(a) => Some((a.alert_id, a.answer)),
                    _ => None,
                })
                .collect()
        };
        let ch = rules
            .answer_service(7, DriverAnswer::LeftCar, at(2))
            .unwrap();
        assert_eq!(answers(&ch), [(7, DriverAnswer::LeftCar)]);
        assert!(ch.durable && ch.service_cases.contains(&7));
        let ch = rules
            .answer_service(7, DriverAnswer::LeftCar, at(3))
            .unwrap();
        assert!(
            answers(&ch).is_empty(),
            "the same answer again is not sent twice"
        );
        let ch = rules
            .answer_service(7, DriverAnswer::Cancel, at(4))
            .unwrap();
        assert_eq!(answers(&ch), [(7, DriverAnswer::Cancel)]);
        assert!(rules.memory().service_cases[&7].is_closed());
        // The prompt of a case the driver cancelled goes away.
        assert_eq!(
            service_prompts(&rules),
            [("service:7:2".to_owned(), PromptState::Resolved)]
        );
        assert!(matches!(
            rules.answer_service(7, DriverAnswer::Cancel, at(5)),
            Err(RulesError::Conflict(_))
        ));
        // The cloud's echo of the cancel is kept but not shown.
        let echo = rules.apply_downlink(&progress(2, 7, 3, ServiceStage::Cancelled), at(6));
        assert!(shown_records(&echo.changes).is_empty());
        assert_eq!(rules.memory().service_cases[&7].step(), 3);
    }

    #[test]
    fn a_resolved_case_is_shown_then_leaves_a_day_after() {
        let mut rules = rules();
        park(&mut rules, at(0));
        let _ = rules.apply_downlink(&progress(1, 7, 2, ServiceStage::Contacted), at(1));
        let _ = rules.apply_downlink(&progress(2, 7, 3, ServiceStage::Resolved), at(2));
        let ch = rules.tick(at(2002));
        assert_eq!(shown_records(&ch), ["service:7:3"]);
        assert!(
            rules.memory().prompts["service:7:3"]
                .text
                .contains("resolved")
        );
        assert!(matches!(
            rules.answer_service(7, DriverAnswer::Cancel, at(2003)),
            Err(RulesError::Conflict(_))
        ));
        let ch = rules.tick(at(2 + SERVICE_CLOSED_KEEP_MS - 1));
        assert!(!ch.service_cases.contains(&7));
        let ch = rules.tick(at(2 + SERVICE_CLOSED_KEEP_MS));
        assert!(ch.service_cases.contains(&7));
        assert!(rules.memory().service_cases.is_empty());
    }

    #[test]
    fn at_most_32_cases_are_held_the_oldest_closed_ones_leaving_first() {
        let mut rules = rules();
        let _ = rules.apply_downlink(&progress(1, 1, 1, ServiceStage::Contacted), at(1));
        let _ = rules.apply_downlink(&progress(2, 2, 1, ServiceStage::Resolved), at(2));
        for alert in 3..=33 {
            let _ = rules.apply_downlink(
                &progress(alert, alert, 1, ServiceStage::Contacted),
                at(alert),
            );
        }
        let held: Vec<u64> = rules.memory().service_cases.keys().copied().collect();
        assert_eq!(held.len(), crate::memory::MAX_SERVICE_CASES);
        assert!(!held.contains(&2) && held.contains(&1), "{held:?}");
        let _ = rules.apply_downlink(&progress(34, 34, 1, ServiceStage::Contacted), at(34));
        let held: Vec<u64> = rules.memory().service_cases.keys().copied().collect();
        assert!(!held.contains(&1) && held.contains(&34), "{held:?}");
    }

    #[test]
    fn a_wipe_forgets_service_cases() {
        let mut rules = rules();
        let _ = rules.apply_downlink(&progress(1, 7, 2, ServiceStage::Contacted), at(1));
        let wipe = DownlinkMessage {
            id: 2,
            at: at(2),
            body: DownlinkBody::VehicleWipe(rapport_shared::VehicleWipe { erased_at: at(2) }),
        };
        let ch = rules.apply_downlink(&wipe, at(2)).changes;
        assert!(ch.service_cases.contains(&7));
        assert!(rules.memory().service_cases.is_empty());
    }
}
