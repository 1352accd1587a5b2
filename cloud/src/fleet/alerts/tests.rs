//! The alerts' unit tests: timing, lifecycle, escalation, SLA state, payload, storage.
#![allow(clippy::unwrap_used)]
use std::collections::BTreeSet;

use super::*;
use crate::fleet::model::{Activity, CarMaturity, Lifecycle, ServiceMaturity};

const T0: Timestamp = Timestamp::from_millis(1_760_000_000_000);
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

fn at(offset_ms: u64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + offset_ms)
}

fn ctx(response: DriverResponse) -> AlertContext {
    AlertContext {
        vin: "WVWZZZ1JZXW000001".parse().unwrap(),
        line: "e-compact 2025".into(),
        category: Category::Passenger,
        odometer_km: 14_950,
        checklist: vec![
            ChecklistItem {
                item: "oil".into(),
                status: ChecklistStatus::Due,
                due_odometer_km: Some(15_000),
                due_date: None,
            },
            ChecklistItem {
                item: "brake_fluid".into(),
                status: ChecklistStatus::Overdue,
                due_odometer_km: None,
                due_date: Some(Timestamp::from_millis(1_759_000_000_000)),
            },
        ],
        active_faults: vec![Fault {
            code: "P0300".into(),
            severity: Severity::Warning,
            since: Timestamp::from_millis(1_759_500_000_000),
        }],
        stored_codes: vec![StoredCode {
            code: "P0420-00".into(),
            class: DtcClass::Stored,
            since: Timestamp::from_millis(1_759_400_000_000),
        }],
        driver_response: response,
        layers: Layers {
            category: Category::Passenger,
            car: CarMaturity::Skilled,
            service: ServiceMaturity::Growing,
            activity: Activity::Declining,
            lifecycle: Lifecycle::Retained,
        },
        suggestion: "declining driver: a personal call is recommended".into(),
    }
}

fn alert(kind: AlertKind, response: DriverResponse) -> Alert {
    Alert::new(
        7,
        kind,
        "dealer-north",
        "oil",
        &ctx(response),
        &AlertPolicy::default(),
        T0,
    )
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

#[test]
fn critical_fault_and_partner_task_go_at_once_with_the_sla_from_then() {
    for kind in [AlertKind::CriticalFault, AlertKind::PartnerTask] {
        let a = alert(kind, DriverResponse::None);
        assert_eq!(a.send_at, T0);
        assert_eq!(a.sla_due, at(HOUR));
        assert_eq!(a.sla(), Duration::from_secs(3600));
        assert_eq!(
            (a.state, a.created_at, a.escalated.clone()),
            (AlertState::Open, T0, None)
        );
    }
    let policy = AlertPolicy {
        sla: Duration::from_secs(15 * 60),
        ..AlertPolicy::default()
    };
    let a = Alert::new(
        1,
        AlertKind::CriticalFault,
        "p",
        "P0300",
        &ctx(DriverResponse::None),
        &policy,
        T0,
    );
    assert_eq!(a.sla_due, at(15 * MIN));
}

#[test]
fn maintenance_waits_for_the_drivers_response_at_most_the_policys_wait() {
    let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
    assert_eq!(a.send_at, at(24 * HOUR));
    assert_eq!(a.sla_due, at(25 * HOUR));
    assert_eq!(a.payload["driver_response"], "none");

    // No response is no news.
    assert_eq!(a.driver_responded(DriverResponse::None, at(HOUR)), Ok(None));
    assert_eq!(a.send_at, at(24 * HOUR));

    // The driver books two hours in: the dealer is told now, and the SLA runs from now.
    assert_eq!(
        a.driver_responded(DriverResponse::Booked, at(2 * HOUR)),
        Ok(Some(at(2 * HOUR)))
    );
    assert_eq!((a.send_at, a.sla_due), (at(2 * HOUR), at(3 * HOUR)));
    assert_eq!(a.payload["driver_response"], "booked");
    assert_eq!(a.webhook().body, a.payload.to_string().into_bytes());

    // A later response updates what the API shows; the webhook already went.
    assert_eq!(
        a.driver_responded(DriverResponse::Snoozed, at(5 * HOUR)),
        Ok(None)
    );
    assert_eq!((a.send_at, a.sla_due), (at(2 * HOUR), at(3 * HOUR)));
    assert_eq!(a.payload["driver_response"], "snoozed");

    // Raised after the driver already responded: at once.
    let b = alert(AlertKind::Maintenance, DriverResponse::Dismissed);
    assert_eq!((b.send_at, b.sla_due), (T0, at(HOUR)));
    assert_eq!(b.payload["driver_response"], "dismissed");
}

#[test]
fn a_response_after_the_wait_does_not_move_send_at() {
    let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
    assert_eq!(
        a.driver_responded(DriverResponse::Acknowledged, at(24 * HOUR)),
        Ok(None)
    );
    assert_eq!(a.send_at, at(24 * HOUR));
    assert_eq!(a.payload["driver_response"], "acknowledged");
}

#[test]
fn only_a_live_maintenance_alert_takes_a_response() {
    let mut fault = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(
        fault.driver_responded(DriverResponse::Booked, T0),
        Err(AlertError::NotMaintenance {
            id: 7,
            kind: AlertKind::CriticalFault
        })
    );
    assert_eq!(fault.payload["driver_response"], "none");
    let mut done = alert(AlertKind::Maintenance, DriverResponse::None);
    done.resolve(at(MIN)).unwrap();
    assert_eq!(
        done.driver_responded(DriverResponse::Booked, at(2 * MIN)),
        Err(AlertError::AlreadyResolved { id: 7 })
    );
    assert_eq!(done.send_at, at(24 * HOUR));
}

#[test]
fn lifecycle_open_acknowledged_resolved() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.acknowledge(at(MIN), None), Ok(()));
    assert_eq!(
        (a.state, a.acknowledged_at),
        (AlertState::Acknowledged, Some(at(MIN)))
    );
    assert_eq!(
        a.acknowledge(at(2 * MIN), None),
        Err(AlertError::AlreadyAcknowledged { id: 7 })
    );
    assert_eq!(a.acknowledged_at, Some(at(MIN)));
    assert_eq!(a.resolve(at(3 * MIN)), Ok(()));
    assert_eq!(
        (a.state, a.resolved_at),
        (AlertState::Resolved, Some(at(3 * MIN)))
    );
    assert_eq!(
        a.resolve(at(4 * MIN)),
        Err(AlertError::AlreadyResolved { id: 7 })
    );
    assert_eq!(
        a.acknowledge(at(4 * MIN), None),
        Err(AlertError::AlreadyResolved { id: 7 })
    );
    assert_eq!(a.resolved_at, Some(at(3 * MIN)));
    assert_eq!(
        AlertError::AlreadyAcknowledged { id: 7 }.to_string(),
        "alert 7 is already acknowledged"
    );
}

#[test]
fn sla_state_ok_at_risk_breached_escalated_late() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.sla_due, at(HOUR));
    assert_eq!(a.sla_state(T0), SlaState::Ok);
    assert_eq!(a.sla_state(at(45 * MIN - 1)), SlaState::Ok);
    assert_eq!(a.sla_state(at(45 * MIN)), SlaState::AtRisk);
    assert_eq!(a.sla_state(at(HOUR - 1)), SlaState::AtRisk);
    assert_eq!(a.sla_state(at(HOUR)), SlaState::Breached);
    a.escalate(at(HOUR), "oem-desk").unwrap();
    assert_eq!(a.sla_state(at(HOUR)), SlaState::Escalated);
    a.acknowledge(at(2 * HOUR), None).unwrap();
    // Escalated, then acknowledged: answered, but not within the SLA.
    assert_eq!(a.sla_state(at(2 * HOUR)), SlaState::Late);
    for (state, name) in [
        (SlaState::Met, "met"),
        (SlaState::Late, "late"),
        (SlaState::Escalated, "escalated"),
        (SlaState::Breached, "breached"),
        (SlaState::AtRisk, "at_risk"),
        (SlaState::Ok, "ok"),
    ] {
        assert_eq!(serde_json::to_value(state).unwrap(), name);
    }
}

#[test]
fn an_open_alert_may_be_resolved_directly() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.resolve(at(MIN)), Ok(()));
    assert_eq!(
        (a.state, a.acknowledged_at, a.resolved_at),
        (AlertState::Resolved, None, Some(at(MIN)))
    );
}

#[test]
fn escalation_exactly_at_the_sla_and_only_once() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.escalate(at(HOUR - 1), "oem-desk"), None);
    assert_eq!(a.escalated, None);
    let e = a.escalate(at(HOUR), "oem-desk").unwrap();
    assert_eq!(
        e,
        Escalation {
            to: "oem-desk".into(),
            at: at(HOUR),
            level: 1,
            stage: Some(Stage::Contacted),
        }
    );
    assert_eq!(a.escalated, Some(e));
    assert_eq!(a.state, AlertState::Open);
    assert_eq!(a.escalate(at(2 * HOUR), "oem-desk"), None);
    assert_eq!(a.escalated.as_ref().map(|e| e.at), Some(at(HOUR)));
    // Still open: it can be acknowledged late.
    assert_eq!(a.acknowledge(at(2 * HOUR), None), Ok(()));
}

#[test]
fn no_escalation_once_acknowledged_or_resolved() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    a.acknowledge(at(HOUR - 1), None).unwrap();
    assert_eq!(a.escalate(at(HOUR), "oem-desk"), None);
    assert_eq!(a.escalate(at(100 * HOUR), "oem-desk"), None);
    let mut b = alert(AlertKind::PartnerTask, DriverResponse::None);
    b.resolve(at(MIN)).unwrap();
    assert_eq!(b.escalate(at(HOUR), "oem-desk"), None);
    assert!(a.escalated.is_none() && b.escalated.is_none());
}

#[test]
fn a_maintenance_sla_runs_from_send_at() {
    let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
    assert_eq!(a.escalate(at(HOUR), "oem-desk"), None);
    assert_eq!(a.escalate(at(25 * HOUR - 1), "oem-desk"), None);
    assert!(a.escalate(at(25 * HOUR), "oem-desk").is_some());
}

#[test]
fn message_ids_are_stable_per_alert_and_event() {
    assert_eq!(message_id(7, WebhookEvent::MaintenanceDue), "msg_a7");
    assert_eq!(message_id(7, WebhookEvent::CriticalFault), "msg_a7");
    assert_eq!(message_id(7, WebhookEvent::Escalated), "msg_a7_esc");
    assert_ne!(
        message_id(7, WebhookEvent::PartnerTask),
        message_id(70, WebhookEvent::PartnerTask)
    );

    let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
    let first = a.webhook();
    assert_eq!(
        (first.id.as_str(), first.partner.as_str()),
        ("msg_a7", "dealer-north")
    );
    assert_eq!(first.event, WebhookEvent::MaintenanceDue);
    a.driver_responded(DriverResponse::Booked, at(MIN)).unwrap();
    a.acknowledge(at(2 * MIN), None).unwrap();
    assert_eq!(a.webhook().id, first.id);
    let stored: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(stored.webhook().id, "msg_a7");

    for (event, name) in [
        (WebhookEvent::MaintenanceDue, "alert.maintenance_due"),
        (WebhookEvent::CriticalFault, "alert.critical_fault"),
        (WebhookEvent::PartnerTask, "alert.partner_task"),
        (WebhookEvent::Escalated, "alert.escalated"),
    ] {
        assert_eq!(event.as_str(), name);
        assert_eq!(serde_json::to_value(event).unwrap(), name);
    }
    assert_eq!(
        AlertKind::CriticalFault.event(),
        WebhookEvent::CriticalFault
    );
    assert_eq!(AlertKind::PartnerTask.event(), WebhookEvent::PartnerTask);
}

#[test]
fn payload_has_exactly_the_documented_keys() {
    let a = alert(AlertKind::Maintenance, DriverResponse::Booked);
    let p = &a.payload;
    let expected = set(&[
        "type",
        "alert_id",
        "created_at",
        "subject",
        "vin",
        "line",
        "category",
        "odometer_km",
        "checklist",
        "active_faults",
        "stored_codes",
        "driver_response",
        "layer",
        "suggestion",
    ]);
    assert_eq!(keys(p), expected);
    assert_eq!(set(PAYLOAD_KEYS), expected);
    assert_eq!(p["type"], "alert.maintenance_due");
    assert_eq!(p["alert_id"], 7);
    assert_eq!(p["created_at"], T0.as_millis());
    assert_eq!(p["subject"], "oil");
    assert_eq!(p["vin"], "WVWZZZ1JZXW000001");
    assert_eq!(p["line"], "e-compact 2025");
    assert_eq!(p["category"], "passenger");
    assert_eq!(p["odometer_km"], 14_950);
    assert_eq!(p["driver_response"], "booked");
    assert_eq!(
        p["suggestion"],
        "declining driver: a personal call is recommended"
    );

    let checklist = p["checklist"].as_array().unwrap();
    assert_eq!(checklist.len(), 2);
    for item in checklist {
        assert_eq!(
            keys(item),
            set(&["item", "status", "due_odometer_km", "due_date"])
        );
    }
    assert_eq!(checklist[0]["item"], "oil");
    assert_eq!(checklist[0]["status"], "due");
    assert_eq!(checklist[0]["due_odometer_km"], 15_000);
    assert!(checklist[0]["due_date"].is_null());
    assert_eq!(checklist[1]["status"], "overdue");
    assert!(checklist[1]["due_odometer_km"].is_null());
    assert_eq!(checklist[1]["due_date"], 1_759_000_000_000_u64);

    let faults = p["active_faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1);
    assert_eq!(keys(&faults[0]), set(&["code", "severity", "since"]));
    assert_eq!(faults[0]["code"], "P0300");
    assert_eq!(faults[0]["severity"], "warning");
    assert_eq!(faults[0]["since"], 1_759_500_000_000_u64);

    assert_eq!(
        p["stored_codes"],
        serde_json::json!([
            {"code": "P0420-00", "class": "stored", "since": 1_759_400_000_000_u64}
        ])
    );

    assert_eq!(
        p["layer"],
        serde_json::json!({
            "category": "passenger", "car": "skilled", "service": "growing",
            "activity": "declining", "lifecycle": "retained"
        })
    );
    // The layer as the model serialises it: the same spellings.
    assert_eq!(
        p["layer"],
        serde_json::to_value(ctx(DriverResponse::None).layers).unwrap()
    );
    // The body sent is the payload.
    let body: Value = serde_json::from_slice(&a.webhook().body).unwrap();
    assert_eq!(&body, p);
}

#[test]
fn empty_checklist_and_faults_are_empty_arrays() {
    let mut c = ctx(DriverResponse::None);
    c.checklist.clear();
    c.active_faults.clear();
    c.stored_codes.clear();
    let p = payload(9, WebhookEvent::PartnerTask, "mature_churned_call", T0, &c);
    assert_eq!(keys(&p), set(PAYLOAD_KEYS));
    assert_eq!(p["checklist"], serde_json::json!([]));
    assert_eq!(p["active_faults"], serde_json::json!([]));
    assert_eq!(p["stored_codes"], serde_json::json!([]));
    assert_eq!(p["type"], "alert.partner_task");
}

#[test]
fn the_escalation_webhook_goes_to_the_fallback_under_its_own_id() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.escalation_webhook(), None);
    a.escalate(at(HOUR), "oem-desk").unwrap();
    let w = a.escalation_webhook().unwrap();
    assert_eq!(
        (w.id.as_str(), w.partner.as_str()),
        ("msg_a7_esc", "oem-desk")
    );
    assert_eq!(w.event, WebhookEvent::Escalated);
    let body: Value = serde_json::from_slice(&w.body).unwrap();
    let mut expected = set(PAYLOAD_KEYS);
    expected.insert("escalation");
    assert_eq!(keys(&body), expected);
    assert_eq!(body["type"], "alert.escalated");
    assert_eq!(keys(&body["escalation"]), set(ESCALATION_KEYS));
    assert_eq!(body["escalation"]["from"], "dealer-north");
    assert_eq!(body["escalation"]["to"], "oem-desk");
    assert_eq!(body["escalation"]["at"], at(HOUR).as_millis());
    assert_eq!(body["escalation"]["sla_due"], at(HOUR).as_millis());
    assert_eq!(body["checklist"], a.payload["checklist"]);
    // The alert's own webhook is unchanged.
    assert_eq!(a.webhook().event, WebhookEvent::CriticalFault);
    assert_eq!(a.payload["type"], "alert.critical_fault");
    assert_eq!(a.escalation_webhook(), Some(w));
}

#[test]
fn recipients_are_the_partner_and_the_escalation_target() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.recipients().collect::<Vec<_>>(), ["dealer-north"]);
    assert!(a.visible_to("dealer-north") && !a.visible_to("oem-desk"));
    a.escalate(at(HOUR), "oem-desk").unwrap();
    assert_eq!(
        a.recipients().collect::<Vec<_>>(),
        ["dealer-north", "oem-desk"]
    );
    assert!(a.visible_to("oem-desk") && !a.visible_to("prov-b"));
}

#[test]
fn a_stored_alert_round_trips_in_json_and_postcard() {
    let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
    a.driver_responded(DriverResponse::Booked, at(MIN)).unwrap();
    a.escalate(at(HOUR + MIN), "oem-desk").unwrap();
    a.acknowledge(at(2 * HOUR), None).unwrap();

    let json = serde_json::to_value(&a).unwrap();
    // In JSON the payload is an object, not a string.
    assert_eq!(json["payload"]["vin"], "WVWZZZ1JZXW000001");
    assert_eq!(json["kind"], "maintenance");
    assert_eq!(json["state"], "acknowledged");
    assert_eq!(serde_json::from_value::<Alert>(json).unwrap(), a);

    let bytes = postcard::to_allocvec(&a).unwrap();
    assert_eq!(postcard::from_bytes::<Alert>(&bytes).unwrap(), a);

    let resolved = {
        let mut r = a.clone();
        r.resolve(at(3 * HOUR)).unwrap();
        r
    };
    let text = serde_json::to_string(&resolved).unwrap();
    assert_eq!(serde_json::from_str::<Alert>(&text).unwrap(), resolved);
}

#[test]
fn checklist_status_comes_from_the_cars_maintenance_status() {
    assert_eq!(
        ChecklistStatus::from_maintenance(MaintenanceStatus::DueSoon),
        Some(ChecklistStatus::DueSoon)
    );
    assert_eq!(
        ChecklistStatus::from_maintenance(MaintenanceStatus::Due),
        Some(ChecklistStatus::Due)
    );
    assert_eq!(
        ChecklistStatus::from_maintenance(MaintenanceStatus::Overdue),
        Some(ChecklistStatus::Overdue)
    );
    assert_eq!(
        ChecklistStatus::from_maintenance(MaintenanceStatus::Done),
        None
    );
    assert_eq!(
        serde_json::to_value(ChecklistStatus::DueSoon).unwrap(),
        "due_soon"
    );
}

/// One step of an alert's life in [`every_sla_combination_reads_one_story`].
#[derive(Clone, Copy, Debug)]
enum Step {
    Ack(u64, Option<&'static str>),
    Resolve(u64),
    Escalate(u64),
}

/// Every combination of answer, lateness and escalation: the SLA state, who has the alert,
/// its answer time and remaining SLA, read at `now`, tell one story.
#[test]
fn every_sla_combination_reads_one_story() {
    use Step::{Ack, Escalate, Resolve};
    // (what happens, read at, sla state, holder, answered at, remaining)
    type Case = (
        &'static str,
        &'static [Step],
        u64,
        SlaState,
        &'static str,
        Option<u64>,
        Option<i64>,
    );
    let h = HOUR as i64;
    let cases: &[Case] = &[
        (
            "open, fresh",
            &[],
            0,
            SlaState::Ok,
            "dealer-north",
            None,
            Some(h),
        ),
        (
            "open, 15 min left",
            &[],
            45 * MIN,
            SlaState::AtRisk,
            "dealer-north",
            None,
            Some(15 * 60_000),
        ),
        (
            "open, past due",
            &[],
            2 * HOUR,
            SlaState::Breached,
            "dealer-north",
            None,
            Some(-h),
        ),
        (
            "escalated, open",
            &[Escalate(HOUR)],
            2 * HOUR,
            SlaState::Escalated,
            "oem-desk",
            None,
            Some(-h),
        ),
        (
            "acknowledged in time",
            &[Ack(HOUR - 1, Some("dealer-north"))],
            3 * HOUR,
            SlaState::Met,
            "dealer-north",
            Some(HOUR - 1),
            None,
        ),
        (
            "acknowledged by the operator in time",
            &[Ack(10 * MIN, None)],
            3 * HOUR,
            SlaState::Met,
            "dealer-north",
            Some(10 * MIN),
            None,
        ),
        (
            "acknowledged exactly at the SLA",
            &[Ack(HOUR, Some("dealer-north"))],
            3 * HOUR,
            SlaState::Late,
            "dealer-north",
            Some(HOUR),
            None,
        ),
        (
            "acknowledged late, no fallback",
            &[Ack(2 * HOUR, Some("dealer-north"))],
            3 * HOUR,
            SlaState::Late,
            "dealer-north",
            Some(2 * HOUR),
            None,
        ),
        (
            "escalated, then the fallback acknowledged",
            &[Escalate(HOUR), Ack(2 * HOUR, Some("oem-desk"))],
            3 * HOUR,
            SlaState::Late,
            "oem-desk",
            Some(2 * HOUR),
            None,
        ),
        (
            "escalated, then the partner acknowledged",
            &[Escalate(HOUR), Ack(2 * HOUR, Some("dealer-north"))],
            3 * HOUR,
            SlaState::Late,
            "dealer-north",
            Some(2 * HOUR),
            None,
        ),
        (
            "escalated, then the operator acknowledged",
            &[Escalate(HOUR), Ack(2 * HOUR, None)],
            3 * HOUR,
            SlaState::Late,
            "oem-desk",
            Some(2 * HOUR),
            None,
        ),
        (
            "resolved in time, never acknowledged",
            &[Resolve(30 * MIN)],
            3 * HOUR,
            SlaState::Met,
            "dealer-north",
            Some(30 * MIN),
            None,
        ),
        (
            "resolved late, never acknowledged",
            &[Resolve(HOUR + MIN)],
            3 * HOUR,
            SlaState::Late,
            "dealer-north",
            Some(HOUR + MIN),
            None,
        ),
        (
            "acknowledged in time, resolved later",
            &[Ack(MIN, Some("dealer-north")), Resolve(5 * HOUR)],
            6 * HOUR,
            SlaState::Met,
            "dealer-north",
            Some(MIN),
            None,
        ),
        (
            "acknowledged late, resolved",
            &[Ack(2 * HOUR, Some("dealer-north")), Resolve(3 * HOUR)],
            6 * HOUR,
            SlaState::Late,
            "dealer-north",
            Some(2 * HOUR),
            None,
        ),
        (
            "escalated, resolved without an acknowledgement",
            &[Escalate(HOUR), Resolve(90 * MIN)],
            6 * HOUR,
            SlaState::Late,
            "oem-desk",
            Some(90 * MIN),
            None,
        ),
        (
            "escalated, acknowledged, resolved",
            &[
                Escalate(HOUR),
                Ack(2 * HOUR, Some("oem-desk")),
                Resolve(4 * HOUR),
            ],
            6 * HOUR,
            SlaState::Late,
            "oem-desk",
            Some(2 * HOUR),
            None,
        ),
    ];
    for (what, steps, now, state, holder, answered, remaining) in cases {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        for step in *steps {
            match *step {
                Ack(t, by) => a.acknowledge(at(t), by).unwrap(),
                Resolve(t) => a.resolve(at(t)).unwrap(),
                Escalate(t) => {
                    a.escalate(at(t), "oem-desk").unwrap();
                }
            }
        }
        let now = at(*now);
        assert_eq!(a.sla_state(now), *state, "{what}");
        assert_eq!(a.holder(), *holder, "{what}");
        assert_eq!(a.answered_at(), answered.map(at), "{what}");
        assert_eq!(a.sla_remaining_ms(now), *remaining, "{what}");
        assert_eq!(
            a.sla_state(now).is_final(),
            a.state != AlertState::Open,
            "{what}"
        );
        // An escalated alert never reads as met, and an open one never as answered.
        if a.escalated.is_some() {
            assert_ne!(a.sla_state(now), SlaState::Met, "{what}");
        }
        // The story does not move once answered: later reads give the same state.
        if a.state != AlertState::Open {
            assert_eq!(a.sla_state(at(1000 * HOUR)), *state, "{what}");
        }
    }
}

#[test]
fn age_is_read_at_the_callers_now() {
    let a = alert(AlertKind::CriticalFault, DriverResponse::None);
    assert_eq!(a.age(at(90 * MIN)), Duration::from_secs(90 * 60));
    // A clock before the alert's creation reads age 0, never a wrap-around.
    assert_eq!(a.age(Timestamp::from_millis(0)), Duration::ZERO);
}

#[test]
fn a_maintenance_alert_not_sent_yet_is_ok_and_its_sla_not_started() {
    let a = alert(AlertKind::Maintenance, DriverResponse::None);
    // Sent after the 24 h response wait: the SLA ends at 25 h.
    assert_eq!(a.sla_state(at(20 * HOUR)), SlaState::Ok);
    assert_eq!(a.sla_remaining_ms(at(20 * HOUR)), Some(5 * HOUR as i64));
}

#[test]
fn an_alert_stored_before_acknowledged_by_was_kept_still_reads() {
    let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
    a.acknowledge(at(MIN), Some("dealer-north")).unwrap();
    let mut json = serde_json::to_value(&a).unwrap();
    json.as_object_mut().unwrap().remove("acknowledged_by");
    let old: Alert = serde_json::from_value(json).unwrap();
    assert_eq!(old.acknowledged_by, None);
    assert_eq!(old.holder(), "dealer-north");
    assert_eq!(old.sla_state(at(HOUR)), SlaState::Met);
}
