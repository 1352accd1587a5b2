//! Owner change over the real cloud (embedded broker, real store on both backends, real
//! HTTP, the partners' verifying receivers, a manual clock): a car sold by one dealer, used
//! by its first owner for a year (prompts answered, consents given, a critical fault alerted
//! to the dealer), changes hands; the operator's `POST .../owner-change` restarts the
//! relationship — layers as a new relationship, consents off in the cloud, an owner-changed
//! downlink (tag 6) to the car, the new owner's dealer sees nothing of the old owner's, the
//! car's maintenance history stays — idempotent for the same date; an unknown VIN is 404,
//! and malformed requests of every kind are a stable JSON error with nothing changed. The
//! registry import's `owner_since` does the same.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_harness::bed::{
    Bed, DAY_MS, DEALER_NORTH, DEALER_SOUTH, NORTH_TOKEN, Plan, Registration, SOUTH_TOKEN,
};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use rapport_harness::records::{critical, maintenance, odometer, prompt};
use rapport_shared::{
    ConsentChange, ConsentKind, DownlinkBody, MaintenanceStatus, PromptAction, PromptKind,
    RecordBody, Timestamp, Vin,
};
use serde_json::Value;

/// 2031-03-01T00:00:00Z.
const T0: u64 = 1_930_176_000_000;
const V1: &str = "WP0ZZZ99ZTS392124";
const V2: &str = "WVWZZZ1JZXW000001";
const NOBODY: &str = "WDB9066361S000005";

fn vin(s: &str) -> Vin {
    s.parse().unwrap()
}

/// A store call (the port blocks) off the async threads.
fn b<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn consent(kind: ConsentKind, granted: bool) -> RecordBody {
    RecordBody::Consent(ConsentChange {
        consent: kind,
        granted,
    })
}

fn kinds(timeline: &Value) -> Vec<String> {
    timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn owner_changes(bed: &Bed, v: &str) -> usize {
    bed.downlinks()
        .iter()
        .filter(|d| d.vin == vin(v))
        .flat_map(|d| &d.messages)
        .filter(|m| matches!(m.body, DownlinkBody::OwnerChanged(_)))
        .count()
}

/// Everything an API caller could see change, to prove a refused request changed nothing.
async fn snapshot(bed: &Bed, v: &str) -> (Value, Value, usize) {
    let timeline = bed
        .get_as(&format!("/api/v1/vehicles/{v}/timeline"), OPERATOR)
        .await;
    let vehicle = bed.get_as(&format!("/api/v1/vehicles/{v}"), OPERATOR).await;
    (timeline, vehicle, owner_changes(bed, v))
}

/// `POST /api/v1/registry` with a CSV file, as the operator.
trait PostCsv {
    async fn post_csv(&self, csv: &str) -> (u16, Value);
}

impl PostCsv for Bed {
    async fn post_csv(&self, csv: &str) -> (u16, Value) {
        let r = rapport_harness::http::client()
            .post(format!("{}/api/v1/registry", self.base))
            .bearer_auth(&self.operator)
            .header("content-type", "text/csv")
            .body(csv.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

async fn post(bed: &Bed, v: &str, body: &str) -> (u16, Value) {
    bed.call(
        "POST",
        &format!("/api/v1/vehicles/{v}/owner-change"),
        OPERATOR,
        Some(body),
    )
    .await
}

async fn first_owner_year(bed: &mut Bed, v: &str) {
    bed.register(
        v,
        Registration {
            dealer: DEALER_NORTH.id,
            category: "passenger",
            line: "e-compact 2030",
            delivered: "2030-03-01",
        },
    )
    .await;
    bed.send(
        v,
        vec![
            odometer(12_000),
            consent(ConsentKind::EngagementPrompts, true),
            consent(ConsentKind::PartnerSharing, true),
            maintenance("oil", MaintenanceStatus::Due),
            prompt(PromptKind::Maintenance, "oil", PromptAction::Shown),
            prompt(PromptKind::Maintenance, "oil", PromptAction::Booked),
            maintenance("oil", MaintenanceStatus::Done),
            critical(0x0300),
        ],
    )
    .await;
}

async fn owner_change_restarts_the_relationship(kind: StoreKind) {
    let plan = Plan::escalating("owner-change", T0, &[DEALER_NORTH, DEALER_SOUTH]);
    let Some(mut bed) = Bed::start_on(kind, plan, |_| {}).await.unwrap() else {
        return;
    };
    bed.watch_downlinks().await.unwrap();
    first_owner_year(&mut bed, V1).await;
    let store = bed.cloud.store().clone();
    let before = b(|| store.driver(&vin(V1))).unwrap().unwrap();
    assert!(before.consents.partner_sharing && before.consents.engagement);
    assert!(before.profile.services >= 1 && before.profile.bookings >= 1);
    let old_layers = b(|| store.layers(&vin(V1))).unwrap().unwrap();
    // The first owner's dealer has the fault alert and sees the prompts.
    bed.wait(Duration::from_secs(10), "the alert reaches north", || {
        !bed.receiver(DEALER_NORTH.id).deliveries().is_empty()
    })
    .await;
    let north_alerts = bed.get_as("/api/v1/alerts", NORTH_TOKEN).await;
    assert_eq!(north_alerts["alerts"].as_array().unwrap().len(), 1);
    let records_before = b(|| store.records(&vin(V1), 0, 1000)).unwrap();

    // Months go by (the alert escalates); 200 days on, the car is sold on 2031-09-10 to an
    // owner whose dealer is south.
    bed.advance(100 * DAY_MS).await;
    bed.clock.set(Timestamp::from_millis(T0 + 200 * DAY_MS));
    let effective = "2031-09-10";
    let (status, answer) = post(
        &bed,
        V1,
        &format!(
            r#"{{"effective":"{effective}","owner":"crm-4711","dealer":"{}"}}"#,
            DEALER_SOUTH.id
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], true);
    assert_eq!(answer["owner"], "crm-4711");
    assert_eq!(answer["registration"]["dealer"], DEALER_SOUTH.id);
    let since = answer["owner_since"].as_u64().unwrap();

    // Layers start over as a NEW relationship (not churned), consents off in the cloud.
    let after = b(|| store.driver(&vin(V1))).unwrap().unwrap();
    assert!(!after.consents.partner_sharing && !after.consents.engagement);
    assert_eq!(
        after.profile.owned_since,
        Some(Timestamp::from_millis(since))
    );
    assert_eq!(
        (after.profile.prompt_actions, after.profile.bookings),
        (0, 0)
    );
    assert_eq!(after.profile.last_engagement, None);
    let layers = b(|| store.layers(&vin(V1))).unwrap().unwrap();
    assert_eq!(
        layers.lifecycle.to_string(),
        "new",
        "{old_layers:?} -> {layers:?}"
    );
    assert_eq!(layers.activity.to_string(), "active");
    assert_eq!(layers.service.to_string(), "junior");
    let reg = b(|| store.registration(&vin(V1))).unwrap().unwrap();
    assert_eq!(reg.owner_since, Some(Timestamp::from_millis(since)));
    assert_eq!(reg.owner.as_deref(), Some("crm-4711"));
    assert!(!reg.consents.partner_sharing && !reg.consents.engagement);

    // The car's maintenance history stays: its records and its item states.
    assert_eq!(
        b(|| store.records(&vin(V1), 0, 1000)).unwrap(),
        records_before
    );
    assert!(after.item("oil").is_some());

    // The car is told once (tag 6).
    bed.wait(
        Duration::from_secs(10),
        "the owner-changed downlink",
        || owner_changes(&bed, V1) == 1,
    )
    .await;

    // The new dealer sees the car, its maintenance history, nothing of the old owner's.
    let south = bed
        .get_as(&format!("/api/v1/vehicles/{V1}/timeline"), SOUTH_TOKEN)
        .await;
    let south_kinds = kinds(&south);
    assert!(
        south_kinds.iter().any(|k| k == "maintenance"),
        "{south_kinds:?}"
    );
    assert!(south_kinds.iter().any(|k| k == "odometer"));
    // Of the relationship's kinds, only the new owner's entries (at or after the change).
    let relationship = [
        "prompt",
        "consent",
        "alert",
        "strategy",
        "suppressed",
        "layer",
    ];
    for e in south["entries"].as_array().unwrap() {
        if relationship.contains(&e["kind"].as_str().unwrap()) {
            assert!(
                e["at"].as_u64().unwrap() >= since,
                "an old owner's entry shown: {e}"
            );
        }
    }
    assert!(!south_kinds.iter().any(|k| k == "prompt"), "{south}");
    let south_alerts = bed.get_as("/api/v1/alerts", SOUTH_TOKEN).await;
    assert!(
        south_alerts["alerts"].as_array().unwrap().is_empty(),
        "{south_alerts}"
    );
    let old_id = north_alerts["alerts"][0]["id"].as_u64().unwrap();
    let (status, _) = bed
        .call(
            "GET",
            &format!("/api/v1/alerts/{old_id}"),
            SOUTH_TOKEN,
            None,
        )
        .await;
    assert_eq!(status, 404);
    // The old dealer no longer sees the car at all.
    let (status, body) = bed
        .call(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline"),
            NORTH_TOKEN,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // The operator still sees everything, the change on the timeline.
    let op = bed
        .get_as(&format!("/api/v1/vehicles/{V1}/timeline"), OPERATOR)
        .await;
    let op_kinds = kinds(&op);
    assert!(op_kinds.iter().any(|k| k == "prompt"));
    assert!(op_kinds.iter().any(|k| k == "alert"));
    assert!(
        op["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "registered"
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("owner changed")),
        "{op}"
    );

    // A late record of the old owner (a consent given before the sale) changes nothing;
    // the car's confirmation (after the change) is applied.
    bed.send_timed(
        V1,
        vec![
            (
                Timestamp::from_millis(since - DAY_MS),
                consent(ConsentKind::PartnerSharing, true),
            ),
            (bed.now(), consent(ConsentKind::EngagementPrompts, false)),
        ],
    )
    .await;
    let d = b(|| store.driver(&vin(V1))).unwrap().unwrap();
    assert!(!d.consents.partner_sharing && !d.consents.engagement);

    // Idempotent: the same date again changes nothing, sends nothing.
    let snap = snapshot(&bed, V1).await;
    let (status, again) = post(&bed, V1, &format!(r#"{{"effective":"{effective}"}}"#)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["changed"], false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(snapshot(&bed, V1).await, snap);

    // Unknown VIN: 404, stable JSON.
    let (status, body) = post(&bed, NOBODY, r#"{"effective":"2031-09-10"}"#).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_vehicle");

    // Malformed requests of every kind: a stable JSON error, nothing changed.
    let delivered = bed.receiver(DEALER_NORTH.id).deliveries().len();
    first_owner_year(&mut bed, V2).await;
    // Its two alerts delivered and noted on its timeline before the snapshot.
    bed.wait(Duration::from_secs(10), "V2's alerts reach north", || {
        bed.receiver(DEALER_NORTH.id).deliveries().len() >= delivered + 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let snap = snapshot(&bed, V2).await;
    let driver = b(|| store.driver(&vin(V2))).unwrap();
    let too_long = format!(
        r#"{{"effective":"2031-09-10","owner":"{}"}}"#,
        "x".repeat(200)
    );
    let cases: [(&str, &str, Option<&str>, u16, &str); 9] = [
        ("POST", V2, Some("{"), 422, "bad_body"),
        ("POST", V2, Some("{}"), 422, "bad_body"),
        (
            "POST",
            V2,
            Some(r#"{"effective":"2031-13-40"}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            V2,
            Some(r#"{"effective":"2031-09-10","extra":1}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            V2,
            Some(r#"{"effective":20310910}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            V2,
            Some(r#"{"effective":"2099-01-01"}"#),
            422,
            "bad_owner_change",
        ),
        ("POST", V2, Some(&too_long), 422, "bad_owner_change"),
        (
            "POST",
            "NOT-A-VIN",
            Some(r#"{"effective":"2031-09-10"}"#),
            400,
            "",
        ),
        ("GET", V2, None, 405, ""),
    ];
    for (method, v, body, want, code) in cases {
        let (status, answer) = bed
            .call(
                method,
                &format!("/api/v1/vehicles/{v}/owner-change"),
                OPERATOR,
                body,
            )
            .await;
        assert_eq!(status, want, "{method} {v} {body:?}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"]["code"], code, "{body:?}: {answer}");
        }
    }
    // A partner may not change owners.
    let (status, answer) = bed
        .call(
            "POST",
            &format!("/api/v1/vehicles/{V2}/owner-change"),
            NORTH_TOKEN,
            Some(r#"{"effective":"2031-09-10"}"#),
        )
        .await;
    assert!(status == 403 || status == 401, "{status} {answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(snapshot(&bed, V2).await, snap);
    assert_eq!(b(|| store.driver(&vin(V2))).unwrap(), driver);

    // The registry import says the same with `owner_since`: V2 changes hands.
    let csv = format!(
        "vin,category,line,delivered,dealer,owner_since,owner\n\
         {V2},passenger,e-compact 2030,2030-03-01,{},2031-09-12,crm-99\n",
        DEALER_SOUTH.id
    );
    let (status, body) = bed.post_csv(&csv).await;
    assert_eq!(status, 200, "{body}");
    let d2 = b(|| store.driver(&vin(V2))).unwrap().unwrap();
    assert!(!d2.consents.partner_sharing && !d2.consents.engagement);
    assert_eq!(
        b(|| store.layers(&vin(V2)))
            .unwrap()
            .unwrap()
            .lifecycle
            .to_string(),
        "new"
    );
    bed.wait(
        Duration::from_secs(10),
        "V2's owner-changed downlink",
        || owner_changes(&bed, V2) == 1,
    )
    .await;
    // Imported again (a restart's import): no second change.
    let (status, _) = bed.post_csv(&csv).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(owner_changes(&bed, V2), 1);
}

rapport_harness::on_both_backends!(owner_change_restarts_the_relationship);
