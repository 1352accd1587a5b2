//! The stages' and promises' unit tests: plans per kind and region, validated moves, the
//! promise clocks, misses and escalation levels, revisions, void promises, shares over a
//! window, alerts stored before stages.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::stages::{MAX_ETA_AHEAD, PromiseRule, RegionClass, shares};
use super::*;
use crate::fleet::model::{Activity, CarMaturity, Lifecycle, ServiceMaturity};

const T0: Timestamp = Timestamp::from_millis(1_760_000_000_000);
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

fn at(offset_ms: u64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + offset_ms)
}

fn ctx() -> AlertContext {
    AlertContext {
        vin: "WVWZZZ1JZXW000001".parse().unwrap(),
        line: "e-compact 2025".into(),
        category: Category::Passenger,
        odometer_km: 14_950,
        checklist: Vec::new(),
        active_faults: Vec::new(),
        stored_codes: Vec::new(),
        driver_response: DriverResponse::Booked,
        layers: Layers {
            category: Category::Passenger,
            car: CarMaturity::Skilled,
            service: ServiceMaturity::Growing,
            activity: Activity::Declining,
            lifecycle: Lifecycle::Retained,
        },
        suggestion: "call".into(),
    }
}

fn rule(kind: AlertKind, stage: Stage, minutes: u64, region: Option<RegionClass>) -> PromiseRule {
    PromiseRule {
        kind,
        stage,
        within_minutes: minutes,
        region,
    }
}

/// The rules: critical → contacted 60 min, on site 3 h urban / 24 h elsewhere;
/// maintenance → contacted 24 h, booked 7 days.
fn rules() -> PromiseRules {
    PromiseRules {
        second_level: Some("oem-regional".into()),
        urban_regions: vec!["SH".into(), "BJ".into()],
        rule: vec![
            rule(AlertKind::CriticalFault, Stage::Contacted, 60, None),
            rule(
                AlertKind::CriticalFault,
                Stage::OnSite,
                180,
                Some(RegionClass::Urban),
            ),
            rule(
                AlertKind::CriticalFault,
                Stage::OnSite,
                24 * 60,
                Some(RegionClass::Other),
            ),
            rule(AlertKind::Maintenance, Stage::Contacted, 24 * 60, None),
            rule(AlertKind::Maintenance, Stage::Booked, 7 * 24 * 60, None),
        ],
    }
}

fn raised(kind: AlertKind, region: Option<&str>) -> Alert {
    let mut a = Alert::new(
        9,
        kind,
        "dealer-north",
        "P0300",
        &ctx(),
        &AlertPolicy::default(),
        T0,
    );
    let r = rules();
    a.set_plan(r.plan(kind, r.class(region), Duration::from_secs(3600)));
    a
}

fn mv(stage: &str) -> StageMove {
    StageMove {
        stage: stage.into(),
        ..StageMove::default()
    }
}

fn contacted() -> StageMove {
    StageMove {
        advisor: Some("Li Wei".into()),
        ..mv("contacted")
    }
}

fn with_eta(stage: &str, eta: Timestamp) -> StageMove {
    StageMove {
        eta: Some(eta),
        ..mv(stage)
    }
}

const DEALER: Actor<'static> = Actor::Partner("dealer-north");

#[test]
fn the_plan_follows_kind_and_region_class_and_defaults_to_the_sla() {
    let r = rules();
    assert_eq!(r.class(Some("SH")), RegionClass::Urban);
    assert_eq!(r.class(Some("XZ")), RegionClass::Other);
    assert_eq!(r.class(None), RegionClass::Other);
    let urban = r.plan(AlertKind::CriticalFault, RegionClass::Urban, Duration::ZERO);
    assert_eq!(
        urban,
        vec![
            Planned {
                stage: Stage::Contacted,
                within_ms: HOUR
            },
            Planned {
                stage: Stage::OnSite,
                within_ms: 3 * HOUR
            }
        ]
    );
    let other = r.plan(AlertKind::CriticalFault, RegionClass::Other, Duration::ZERO);
    assert_eq!(other[1].within_ms, 24 * HOUR);
    assert!(
        r.plan(AlertKind::PartnerTask, RegionClass::Urban, Duration::ZERO)
            .is_empty()
    );
    let none = PromiseRules::default();
    assert_eq!(
        none.plan(
            AlertKind::PartnerTask,
            RegionClass::Urban,
            Duration::from_secs(90 * 60)
        ),
        vec![Planned {
            stage: Stage::Contacted,
            within_ms: 90 * MIN
        }]
    );
}

#[test]
fn an_urban_critical_fault_kept_on_time_at_every_stage() {
    let mut a = raised(AlertKind::CriticalFault, Some("SH"));
    assert_eq!((a.stage(), a.step()), (Stage::Raised, 1));
    assert_eq!(a.promise_due(), Some(at(HOUR)));
    assert_eq!(
        a.move_stage(&contacted(), DEALER, at(30 * MIN)),
        Ok(Moved::Reached)
    );
    // On site within 3 h of contacted (dispatched has no promise).
    assert_eq!(a.promise_due(), Some(at(30 * MIN + 3 * HOUR)));
    let d = with_eta("dispatched", at(2 * HOUR));
    assert_eq!(a.move_stage(&d, DEALER, at(40 * MIN)), Ok(Moved::Reached));
    assert_eq!(a.promise_due(), Some(at(30 * MIN + 3 * HOUR)));
    assert_eq!(
        a.miss_due(at(3 * HOUR), Some("oem-desk"), Some("oem-regional")),
        (false, None)
    );
    assert_eq!(
        a.move_stage(&mv("on_site"), DEALER, at(2 * HOUR)),
        Ok(Moved::Reached)
    );
    assert_eq!(
        a.move_stage(&mv("resolved"), DEALER, at(3 * HOUR)),
        Ok(Moved::Reached)
    );
    assert_eq!(a.stage(), Stage::Resolved);
    assert_eq!(a.step(), 5);
    assert_eq!(a.state, AlertState::Resolved);
    let outcomes: Vec<_> = a.promises.iter().map(|p| (p.stage, p.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (Stage::Contacted, Outcome::Kept),
            (Stage::OnSite, Outcome::Kept)
        ]
    );
    assert_eq!(a.escalated, None);
    assert_eq!(a.promise_due(), None);
    let steps: Vec<u32> = a.stages.iter().map(|r| r.step).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    assert_eq!(a.stages[1].advisor.as_deref(), Some("Li Wei"));
    assert_eq!(a.stages[2].eta, Some(at(2 * HOUR)));
}

#[test]
fn late_contact_escalates_at_exactly_60_min_and_late_on_site_to_the_second_level() {
    let mut a = raised(AlertKind::CriticalFault, Some("BJ"));
    let levels = (Some("oem-desk"), Some("oem-regional"));
    assert_eq!(a.miss_due(at(HOUR - 1), levels.0, levels.1), (false, None));
    let (missed, e) = a.miss_due(at(HOUR), levels.0, levels.1);
    assert!(missed);
    let e = e.unwrap();
    assert_eq!(
        (e.to.as_str(), e.at, e.level, e.stage),
        ("oem-desk", at(HOUR), 1, Some(Stage::Contacted))
    );
    assert_eq!(a.holder(), "oem-desk");
    assert!(a.visible_to("oem-desk"));
    // Nothing runs until contacted is reached: no second escalation for the same miss.
    assert_eq!(a.promise_due(), None);
    assert_eq!(a.miss_due(at(2 * HOUR), levels.0, levels.1), (false, None));
    a.move_stage(&contacted(), Actor::Partner("oem-desk"), at(70 * MIN))
        .unwrap();
    assert_eq!(a.promise_due(), Some(at(70 * MIN + 3 * HOUR)));
    assert_eq!(a.promises[1].partner, "oem-desk");
    assert_eq!(
        a.miss_due(at(70 * MIN + 3 * HOUR - 1), levels.0, levels.1),
        (false, None)
    );
    let (_, e2) = a.miss_due(at(70 * MIN + 3 * HOUR), levels.0, levels.1);
    let e2 = e2.unwrap();
    assert_eq!(
        (e2.to.as_str(), e2.level, e2.stage),
        ("oem-regional", 2, Some(Stage::OnSite))
    );
    assert!(a.visible_to("oem-regional"));
    let hook = a.escalation_webhook_at(2).unwrap();
    assert_eq!(hook.id, "msg_a9_esc2");
    assert_eq!(hook.partner, "oem-regional");
    let body: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(body["escalation"]["level"], 2);
    assert_eq!(body["escalation"]["stage"], "on_site");
    assert_eq!(body["escalation"]["from"], "oem-desk");
    // Reached late: stays missed.
    a.move_stage(
        &with_eta("dispatched", at(6 * HOUR)),
        Actor::Partner("oem-regional"),
        at(5 * HOUR),
    )
    .unwrap();
    a.move_stage(&mv("on_site"), Actor::Partner("oem-regional"), at(6 * HOUR))
        .unwrap();
    let outcomes: Vec<_> = a.promises.iter().map(|p| p.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Missed, Outcome::Missed]);
    assert_eq!(a.promises[0].settled_at, Some(at(HOUR)));
}

#[test]
fn a_remote_region_gets_24_hours_on_site() {
    let mut a = raised(AlertKind::CriticalFault, Some("XZ"));
    a.move_stage(&contacted(), DEALER, at(10 * MIN)).unwrap();
    assert_eq!(a.promise_due(), Some(at(10 * MIN + 24 * HOUR)));
    a.move_stage(&with_eta("dispatched", at(20 * HOUR)), DEALER, at(HOUR))
        .unwrap();
    assert_eq!(a.miss_due(at(23 * HOUR), Some("f"), None), (false, None));
    a.move_stage(&mv("on_site"), DEALER, at(10 * MIN + 24 * HOUR))
        .unwrap();
    assert_eq!(a.promises[1].outcome, Outcome::Kept);
}

#[test]
fn a_maintenance_alert_books_then_is_resolved_by_the_service_record() {
    let mut a = raised(AlertKind::Maintenance, None);
    a.move_stage(&contacted(), DEALER, at(HOUR)).unwrap();
    assert_eq!(a.promise_due(), Some(at(HOUR + 7 * 24 * HOUR)));
    let booked = with_eta("booked", at(3 * 24 * HOUR));
    a.move_stage(&booked, DEALER, at(2 * HOUR)).unwrap();
    assert_eq!(a.promises[1].outcome, Outcome::Kept);
    a.resolve(at(3 * 24 * HOUR)).unwrap();
    assert_eq!(a.stage(), Stage::Resolved);
    assert_eq!(a.stages.last().unwrap().by, "cloud");
    // Dispatched is not on a maintenance path.
    let mut b = raised(AlertKind::Maintenance, None);
    let e = b
        .move_stage(&with_eta("dispatched", at(HOUR)), DEALER, at(MIN))
        .unwrap_err();
    assert_eq!(e.code(), "stage_not_on_path");
}

#[test]
fn invalid_moves_are_refused_and_change_nothing() {
    let mut a = raised(AlertKind::CriticalFault, Some("SH"));
    let before = a.clone();
    let cases = [
        (mv("on_site"), "stage_skipped"),
        (with_eta("dispatched", at(HOUR)), "stage_skipped"),
        (mv("contacted"), "advisor_required"),
        (mv("booked"), "stage_not_on_path"),
        (mv("teleported"), "stage_not_on_path"),
        (mv("cancelled"), "cancel_not_allowed"),
        (
            StageMove {
                note: Some("x".repeat(201)),
                ..contacted()
            },
            "invalid_note",
        ),
    ];
    for (m, code) in &cases {
        assert_eq!(
            a.move_stage(m, DEALER, at(MIN)).unwrap_err().code(),
            *code,
            "{m:?}"
        );
        assert_eq!(a, before, "{m:?} changed the alert");
    }
    a.move_stage(&contacted(), DEALER, at(MIN)).unwrap();
    let before = a.clone();
    let etas = [
        None,
        Some(at(MIN)),
        Some(
            at(MIN)
                .saturating_add(MAX_ETA_AHEAD)
                .saturating_add(Duration::from_millis(1)),
        ),
    ];
    for eta in etas {
        let m = StageMove {
            eta,
            ..mv("dispatched")
        };
        assert_eq!(
            a.move_stage(&m, DEALER, at(MIN)).unwrap_err().code(),
            "invalid_eta"
        );
        assert_eq!(a, before);
    }
    a.move_stage(&with_eta("dispatched", at(HOUR)), DEALER, at(2 * MIN))
        .unwrap();
    let before = a.clone();
    assert_eq!(
        a.move_stage(&contacted(), DEALER, at(3 * MIN))
            .unwrap_err()
            .code(),
        "stage_backwards"
    );
    assert_eq!(a, before);
    a.move_stage(&mv("resolved"), DEALER, at(4 * MIN)).unwrap();
    let before = a.clone();
    for m in [mv("on_site"), mv("cancelled")] {
        assert_eq!(
            a.move_stage(&m, Actor::Operator, at(5 * MIN))
                .unwrap_err()
                .code(),
            "alert_closed"
        );
    }
    assert_eq!(
        a.move_stage(&mv("resolved"), DEALER, at(5 * MIN)),
        Ok(Moved::Unchanged)
    );
    assert_eq!(a, before);
}

#[test]
fn repeats_change_nothing_and_a_new_eta_is_a_revision_on_the_same_clock() {
    let mut a = raised(AlertKind::CriticalFault, Some("SH"));
    a.move_stage(&contacted(), DEALER, at(MIN)).unwrap();
    let before = a.clone();
    assert_eq!(
        a.move_stage(&contacted(), DEALER, at(2 * MIN)),
        Ok(Moved::Unchanged)
    );
    assert_eq!(a, before);
    let d = with_eta("dispatched", at(HOUR));
    a.move_stage(&d, DEALER, at(3 * MIN)).unwrap();
    let due = a.promise_due();
    let before = a.clone();
    assert_eq!(a.move_stage(&d, DEALER, at(4 * MIN)), Ok(Moved::Unchanged));
    assert_eq!(a, before);
    let later = with_eta("dispatched", at(2 * HOUR));
    assert_eq!(
        a.move_stage(&later, DEALER, at(5 * MIN)),
        Ok(Moved::Revised)
    );
    assert_eq!((a.stage(), a.step()), (Stage::Dispatched, 4));
    assert_eq!(a.stages.last().unwrap().eta, Some(at(2 * HOUR)));
    assert_eq!(
        a.promise_due(),
        due,
        "a revision does not restart the clock"
    );
    let hooks = a.stage_webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].id, "msg_a9_s4");
    let body: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(body["type"], "alert.stage");
    assert_eq!(body["stage"]["stage"], "dispatched");
    assert_eq!(body["stage"]["step"], 4);
    assert_eq!(body["stage"]["eta"], at(2 * HOUR).as_millis());
}

#[test]
fn closing_before_due_voids_the_promise_and_the_driver_or_operator_cancels() {
    let mut a = raised(AlertKind::CriticalFault, Some("SH"));
    a.move_stage(&mv("cancelled"), Actor::Driver, at(10 * MIN))
        .unwrap();
    assert_eq!(a.stage(), Stage::Cancelled);
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(a.promises[0].outcome, Outcome::Void);
    assert_eq!(a.stages.last().unwrap().by, "driver");
    let mut b = raised(AlertKind::CriticalFault, Some("SH"));
    b.move_stage(&mv("cancelled"), Actor::Operator, at(2 * HOUR))
        .unwrap();
    // Past due: missed, even though no tick marked it.
    assert_eq!(b.promises[0].outcome, Outcome::Missed);
}

#[test]
fn shares_count_what_settled_in_the_window_for_the_partner_holding_the_clock() {
    // Kept contact at 30 min, missed on-site (due 3.5 h).
    let mut a = raised(AlertKind::CriticalFault, Some("SH"));
    a.move_stage(&contacted(), DEALER, at(30 * MIN)).unwrap();
    // Missed contact (due 1 h) escalated to the desk.
    let mut b = raised(AlertKind::CriticalFault, Some("SH"));
    b.miss_due(at(HOUR), Some("oem-desk"), None);
    // Kept contact, then resolved before the on-site due: void.
    let mut c = raised(AlertKind::CriticalFault, Some("SH"));
    c.move_stage(&contacted(), DEALER, at(20 * MIN)).unwrap();
    c.move_stage(&mv("resolved"), DEALER, at(40 * MIN)).unwrap();
    let all = [a, b, c];
    let now = at(10 * HOUR);
    let t = shares(&all, T0, now, now);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].partner, "dealer-north");
    assert_eq!((t[0].tally.kept, t[0].tally.missed), (2, 2));
    assert_eq!(t[0].tally.share, Some(0.5));
    let stages: Vec<_> = t[0]
        .stages
        .iter()
        .map(|s| (s.stage, s.tally.kept, s.tally.missed))
        .collect();
    assert_eq!(
        stages,
        vec![(Stage::Contacted, 2, 1), (Stage::OnSite, 0, 1)]
    );
    // A window ending before the on-site due: only the contact promises.
    let early = shares(&all, T0, at(2 * HOUR), now);
    assert_eq!((early[0].tally.kept, early[0].tally.missed), (2, 1));
    // Outside the window: nothing.
    assert!(shares(&all, at(20 * HOUR), at(30 * HOUR), now).is_empty());
}

#[test]
fn an_alert_stored_before_stages_reads_and_moves_on() {
    let mut a = Alert::new(
        3,
        AlertKind::CriticalFault,
        "dealer-north",
        "P0300",
        &ctx(),
        &AlertPolicy::default(),
        T0,
    );
    a.acknowledge(at(MIN), Some("dealer-north")).unwrap();
    let mut json = serde_json::to_value(&a).unwrap();
    for k in [
        "stages",
        "plan",
        "promises",
        "escalated2",
        "held_by",
        "progress_downlink",
    ] {
        json.as_object_mut().unwrap().remove(k);
    }
    let mut old: Alert = serde_json::from_value(json).unwrap();
    assert_eq!((old.stage(), old.step()), (Stage::Contacted, 1));
    assert_eq!(old.promise_due(), None);
    old.move_stage(&with_eta("dispatched", at(HOUR)), DEALER, at(2 * MIN))
        .unwrap();
    let stages: Vec<_> = old.stages.iter().map(|r| (r.stage, r.step)).collect();
    assert_eq!(
        stages,
        vec![
            (Stage::Raised, 1),
            (Stage::Contacted, 2),
            (Stage::Dispatched, 3)
        ]
    );
    assert_eq!(old.promises[0].outcome, Outcome::Kept);
}

#[test]
fn promise_rules_problems_name_their_key_paths() {
    let mut r = rules();
    r.second_level = Some("nobody".into());
    r.rule
        .push(rule(AlertKind::Maintenance, Stage::OnSite, 10, None));
    r.rule
        .push(rule(AlertKind::CriticalFault, Stage::Contacted, 0, None));
    let problems = r.problems("promises", &["dealer-north"]);
    let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "promises.second_level",
            "promises.rule[5].stage",
            "promises.rule[6].within_minutes",
            "promises.rule[6]"
        ]
    );
    let toml = "second_level = \"x\"\nurban_regions = [\"SH\"]\n[[rule]]\nkind = \"critical_fault\"\nstage = \"on_site\"\nwithin_minutes = 180\nregion = \"urban\"\n";
    let parsed: PromiseRules = toml::from_str(toml).unwrap();
    assert_eq!(parsed.rule[0].region, Some(RegionClass::Urban));
}
