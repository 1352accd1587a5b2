//! The service promise end to end (issue 19) inside one cloud on a manual clock, with real
//! HTTP, the embedded broker, real partner receivers verifying signatures, on sled and on
//! PostgreSQL: an urban critical fault kept at every stage; a late contact escalating at
//! exactly 60 min and a late on-site at 3 h to the second level; a remote region's 24 h
//! promise; a maintenance alert booked then resolved by the workshop's service record;
//! invalid moves refused with the stable error and nothing changed; the driver's left_car
//! and cancel reaching the partner as signed webhooks; the promise-kept share over a window;
//! and, at the store, a car's queued downlinks holding only the latest ServiceProgress of an
//! alert, and a running promise surviving a restart to escalate at exactly its due.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_cloud::fleet::alerts::PromiseRules;
use rapport_cloud::fleet::model::{Category, Consents, Registration as Reg};
use rapport_cloud::fleet::partners::AlertsConfig;
use rapport_cloud::fleet::shell::{FleetSettings, rules_from};
use rapport_cloud::store::{Store, Transition};
use rapport_harness::bed::{
    Bed, DEALER_NORTH, DEALER_SOUTH, DESK, MINUTE_MS, NORTH_TOKEN, Partner, Plan, SOUTH_TOKEN,
};
use rapport_harness::cloud::{BrokerKind, OPERATOR, StoreKind, TestStore, config, partner};
use rapport_harness::http::client as http;
use rapport_harness::records::{critical, maintenance, prompt};
use rapport_shared::{
    Downlink, DownlinkBody, DriverAnswer, MaintenanceStatus, PromptAction, PromptKind, RecordBody,
    ServiceAnswer, ServiceStage, Timestamp, Uplink, Vin,
};
use serde_json::Value;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;
const HOUR: u64 = 60 * MINUTE_MS;
const WAIT: Duration = Duration::from_secs(10);

/// In an urban region (SH), sold by dealer-north.
const URBAN: &str = "WP0ZZZ99ZTS392124";
/// In a remote region (XZ), sold by dealer-south.
const REMOTE: &str = "WVWZZZ1JZXW000001";

/// The second escalation level.
const REGIONAL: Partner = Partner {
    id: "oem-regional",
    secret: "whsec_cmVnaW9uYWwtc2VjcmV0LTEyMzQ1Njc4OTAxMjM0NQ==",
    token: Some("regional-token-0123456789abcdef01234567"),
};
const DESK_TOKEN: &str = "desk-token-0123456789abcdef0123456789";

/// The issue's promises.
const PROMISES: &str = r#"
second_level = "oem-regional"
urban_regions = ["SH", "BJ"]
[[rule]]
kind = "critical_fault"
stage = "contacted"
within_minutes = 60
[[rule]]
kind = "critical_fault"
stage = "on_site"
within_minutes = 180
region = "urban"
[[rule]]
kind = "critical_fault"
stage = "on_site"
within_minutes = 1440
region = "other"
[[rule]]
kind = "maintenance"
stage = "contacted"
within_minutes = 1440
[[rule]]
kind = "maintenance"
stage = "booked"
within_minutes = 10080
"#;

fn promises() -> PromiseRules {
    toml::from_str(PROMISES).unwrap()
}

/// Two dealers, the desk (level 1) and the regional OEM (level 2), the issue's promises;
/// URBAN and REMOTE registered; the cars' downlinks recorded.
async fn bed(name: &str, kind: StoreKind) -> Option<Bed> {
    let plan = Plan {
        name: name.to_owned(),
        t0: Timestamp::from_millis(T0),
        partners: vec![DEALER_NORTH, DEALER_SOUTH, DESK, REGIONAL],
        fallback: Some(DESK.id),
    };
    let mut b = Bed::start_on(kind, plan, |c| c.promises = promises())
        .await
        .unwrap()?;
    b.watch_downlinks().await.unwrap();
    register(&b, URBAN, "dealer-north", "SH").await;
    register(&b, REMOTE, "dealer-south", "XZ").await;
    Some(b)
}

async fn register(b: &Bed, vin: &str, dealer: &str, region: &str) {
    let body = format!(
        r#"{{"category":"passenger","line":"e-compact","delivered":"2025-06-01","dealer":"{dealer}","region":"{region}","consents":{{"partner_sharing":true,"engagement":true}}}}"#
    );
    let path = format!("/api/v1/vehicles/{vin}/registration");
    let (status, json) = b.call("PUT", &path, OPERATOR, Some(&body)).await;
    assert_eq!(status, 200, "{json}");
}

/// The open alert of `kind` on `vin` (exactly one).
async fn alert_of(b: &Bed, vin: &str, kind: &str) -> u64 {
    let list = b
        .get_as(&format!("/api/v1/alerts?vin={vin}&state=all"), OPERATOR)
        .await;
    let ids: Vec<u64> = list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{list}");
    ids[0]
}

async fn critical_on(b: &mut Bed, vin: &str) -> u64 {
    b.send(vin, vec![critical(0x0300)]).await;
    alert_of(b, vin, "critical_fault").await
}

async fn get(b: &Bed, id: u64) -> Value {
    b.get_as(&format!("/api/v1/alerts/{id}"), OPERATOR).await
}

async fn stage(b: &Bed, id: u64, token: &str, body: &str) -> (u16, Value) {
    b.call(
        "POST",
        &format!("/api/v1/alerts/{id}/stage"),
        token,
        Some(body),
    )
    .await
}

/// Moves and asserts 200: the alert after.
async fn moved(b: &Bed, id: u64, token: &str, body: &str) -> Value {
    let (status, json) = stage(b, id, token, body).await;
    assert_eq!(status, 200, "{body}: {json}");
    json
}

/// Waits until `partner` got a delivery with message id `msg`: its body.
async fn delivery(b: &Bed, partner: &str, msg: &str) -> Value {
    let r = b.receiver(partner);
    b.wait(WAIT, &format!("{partner} gets {msg}"), || {
        r.deliveries().iter().any(|d| d.id == msg)
    })
    .await;
    let d = r.deliveries().into_iter().find(|d| d.id == msg).unwrap();
    serde_json::from_slice(&d.body).unwrap()
}

fn ids(b: &Bed, partner: &str) -> Vec<String> {
    b.receiver(partner)
        .deliveries()
        .into_iter()
        .map(|d| d.id)
        .collect()
}

/// The ServiceProgress downlinks of alert `id` seen so far, in order.
fn progress(b: &Bed, id: u64) -> Vec<rapport_shared::ServiceProgress> {
    b.downlinks()
        .into_iter()
        .flat_map(|d| d.messages)
        .filter_map(|m| match m.body {
            DownlinkBody::ServiceProgress(p) if p.alert_id == id => Some(p),
            _ => None,
        })
        .collect()
}

fn outcomes(a: &Value) -> Vec<(String, String)> {
    a["promises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["stage"].as_str().unwrap().to_owned(),
                p["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// An urban critical fault: contacted at 30 min, dispatched, on site at 1 h 50 (within 3 h
/// of contacted), resolved — every promise kept, no escalation; each move is a signed
/// `alert.stage` webhook, on the timeline, and a ServiceProgress for the car.
async fn an_urban_critical_fault_kept_at_every_stage(kind: StoreKind) {
    let Some(mut b) = bed("stages-kept", kind).await else {
        return;
    };
    let id = critical_on(&mut b, URBAN).await;
    let a = get(&b, id).await;
    assert_eq!(
        (a["stage"].as_str(), a["step"].as_u64()),
        (Some("raised"), Some(1)),
        "{a}"
    );
    assert_eq!(a["promise"]["stage"], "contacted", "{a}");
    assert_eq!(a["promise"]["due"], T0 + HOUR, "{a}");
    assert_eq!(a["promise"]["remaining_ms"], HOUR, "{a}");
    delivery(&b, "dealer-north", &format!("msg_a{id}")).await;
    b.advance(30 * MINUTE_MS).await;
    let a = moved(
        &b,
        id,
        NORTH_TOKEN,
        r#"{"stage":"contacted","advisor":"Li Wei","note":"called the driver"}"#,
    )
    .await;
    assert_eq!(
        (a["stage"].as_str(), a["step"].as_u64()),
        (Some("contacted"), Some(2)),
        "{a}"
    );
    assert_eq!(a["state"], "acknowledged", "{a}");
    // On site within 3 h of contacted (dispatched has no promise of its own).
    assert_eq!(a["promise"]["stage"], "on_site", "{a}");
    assert_eq!(a["promise"]["due"], T0 + 30 * MINUTE_MS + 3 * HOUR, "{a}");
    // Each webhook is delivered before the clock moves on (it is signed with the time of
    // its attempt; the receiver refuses one that is too old).
    delivery(&b, "dealer-north", &format!("msg_a{id}_s2")).await;
    b.advance(10 * MINUTE_MS).await;
    let eta = b.now().as_millis() + HOUR;
    moved(
        &b,
        id,
        NORTH_TOKEN,
        &format!(r#"{{"stage":"dispatched","eta":{eta}}}"#),
    )
    .await;
    delivery(&b, "dealer-north", &format!("msg_a{id}_s3")).await;
    b.advance(70 * MINUTE_MS).await;
    moved(&b, id, NORTH_TOKEN, r#"{"stage":"on_site"}"#).await;
    delivery(&b, "dealer-north", &format!("msg_a{id}_s4")).await;
    // Time passes beyond every due: nothing is missed, nothing escalates.
    b.advance(5 * HOUR).await;
    let a = moved(&b, id, NORTH_TOKEN, r#"{"stage":"resolved"}"#).await;
    assert_eq!(
        (a["stage"].as_str(), a["step"].as_u64()),
        (Some("resolved"), Some(5)),
        "{a}"
    );
    assert_eq!(a["state"], "resolved", "{a}");
    assert!(a["promise"].is_null(), "{a}");
    assert!(a["escalated"].is_null(), "{a}");
    assert_eq!(
        outcomes(&a),
        pairs(&[("contacted", "kept"), ("on_site", "kept")])
    );
    let history: Vec<(&str, u64, &str)> = a["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap(),
                s["step"].as_u64().unwrap(),
                s["by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            ("raised", 1, "cloud"),
            ("contacted", 2, "dealer-north"),
            ("dispatched", 3, "dealer-north"),
            ("on_site", 4, "dealer-north"),
            ("resolved", 5, "dealer-north"),
        ]
    );
    assert_eq!(a["stages"][2]["eta"], eta, "{a}");

    // The dealer: the alert, then one signed alert.stage per move, in step order.
    let last = delivery(&b, "dealer-north", &format!("msg_a{id}_s5")).await;
    assert_eq!(last["type"], "alert.stage", "{last}");
    assert_eq!(last["stage"]["stage"], "resolved", "{last}");
    let contacted = delivery(&b, "dealer-north", &format!("msg_a{id}_s2")).await;
    assert_eq!(contacted["stage"]["advisor"], "Li Wei", "{contacted}");
    assert_eq!(
        contacted["stage"]["note"], "called the driver",
        "{contacted}"
    );
    assert_eq!(contacted["alert_id"], id, "{contacted}");
    let dispatched = delivery(&b, "dealer-north", &format!("msg_a{id}_s3")).await;
    assert_eq!(dispatched["stage"]["eta"], eta, "{dispatched}");
    let mut expected: Vec<String> = (2..=5).map(|s| format!("msg_a{id}_s{s}")).collect();
    expected.insert(0, format!("msg_a{id}"));
    assert_eq!(ids(&b, "dealer-north"), expected);
    assert!(
        ids(&b, "desk").is_empty(),
        "no escalation: {:?}",
        ids(&b, "desk")
    );

    // The car: one ServiceProgress per stage, steps 1..5, the partner by name.
    b.wait(WAIT, "five ServiceProgress downlinks", || {
        progress(&b, id).len() == 5
    })
    .await;
    let p = progress(&b, id);
    let seen: Vec<(ServiceStage, u32)> = p.iter().map(|p| (p.stage, p.step)).collect();
    assert_eq!(
        seen,
        vec![
            (ServiceStage::Raised, 1),
            (ServiceStage::Contacted, 2),
            (ServiceStage::Dispatched, 3),
            (ServiceStage::OnSite, 4),
            (ServiceStage::Resolved, 5),
        ]
    );
    assert!(
        p.iter()
            .all(|p| p.partner == "dealer-north" && p.critical && p.subject == "P0300")
    );
    assert_eq!(p[0].advisor, None);
    assert_eq!(p[2].advisor.as_deref(), Some("Li Wei"));
    assert_eq!(p[2].eta.map(Timestamp::as_millis), Some(eta));

    // The timeline has every move.
    let t = b
        .get_as(
            &format!("/api/v1/vehicles/{URBAN}/timeline?limit=200"),
            OPERATOR,
        )
        .await;
    let events: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "alert")
        .filter_map(|e| e["event"].as_str())
        .collect();
    for e in [
        "acknowledged",
        "stage dispatched",
        "stage on_site",
        "stage resolved",
    ] {
        assert!(events.contains(&e), "{e} not in {events:?}");
    }

    // /metrics: two kept for dealer-north.
    let text = http()
        .get(format!("{}/metrics", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for stage in ["contacted", "on_site"] {
        let line =
            format!("rapport_promises_kept_total{{partner=\"dealer-north\",stage=\"{stage}\"}} 1");
        assert!(text.contains(&line), "{line} not in /metrics");
        let share =
            format!("rapport_promise_kept_share{{partner=\"dealer-north\",stage=\"{stage}\"}} 1");
        assert!(text.contains(&share), "{share} not in /metrics");
    }
    b.cloud.shutdown().await.unwrap();
}

/// Contact late: the desk gets it at exactly 60 min (not at 59:59.999); the desk contacts
/// the driver; on site late 3 h after that: the second level gets it. Both misses count for
/// the partner holding the clock; the share over a window counts what settled in it.
async fn a_late_contact_escalates_at_60_min_and_a_late_on_site_to_the_second_level(
    kind: StoreKind,
) {
    let Some(mut b) = bed("stages-late", kind).await else {
        return;
    };
    let id = critical_on(&mut b, URBAN).await;
    b.advance(HOUR - 1).await;
    let a = get(&b, id).await;
    assert!(a["escalated"].is_null(), "not before 60 min: {a}");
    assert_eq!(a["promise"]["remaining_ms"], 1, "{a}");
    b.advance(1).await;
    let a = get(&b, id).await;
    assert_eq!(a["escalated"]["to"], "desk", "{a}");
    assert_eq!(a["escalated"]["at"], T0 + HOUR, "{a}");
    assert_eq!(a["escalated"]["level"], 1, "{a}");
    assert_eq!(a["escalated"]["stage"], "contacted", "{a}");
    assert_eq!(a["holder"], "desk", "{a}");
    assert!(a["promise"].is_null(), "nothing runs until contacted: {a}");
    let esc = delivery(&b, "desk", &format!("msg_a{id}_esc")).await;
    assert_eq!(esc["type"], "alert.escalated", "{esc}");
    assert_eq!(esc["escalation"]["level"], 1, "{esc}");
    assert_eq!(esc["escalation"]["stage"], "contacted", "{esc}");

    b.advance(10 * MINUTE_MS).await;
    let a = moved(
        &b,
        id,
        DESK_TOKEN,
        r#"{"stage":"contacted","advisor":"Ana Ruiz"}"#,
    )
    .await;
    let started = T0 + 70 * MINUTE_MS;
    assert_eq!(a["promise"]["due"], started + 3 * HOUR, "{a}");
    // The stage reaches both partners concerned: the dealer and the desk.
    let to_dealer = delivery(&b, "dealer-north", &format!("msg_a{id}_s2")).await;
    assert_eq!(to_dealer["stage"]["by"], "desk", "{to_dealer}");
    delivery(&b, "desk", &format!("msg_a{id}_s2_l1")).await;

    b.advance(3 * HOUR - 1).await;
    assert!(get(&b, id).await["escalated2"].is_null());
    b.advance(1).await;
    let a = get(&b, id).await;
    assert_eq!(a["escalated2"]["to"], "oem-regional", "{a}");
    assert_eq!(a["escalated2"]["level"], 2, "{a}");
    assert_eq!(a["escalated2"]["stage"], "on_site", "{a}");
    assert_eq!(a["escalated2"]["at"], started + 3 * HOUR, "{a}");
    let esc2 = delivery(&b, "oem-regional", &format!("msg_a{id}_esc2")).await;
    assert_eq!(esc2["escalation"]["level"], 2, "{esc2}");
    assert_eq!(esc2["escalation"]["from"], "desk", "{esc2}");
    // A third miss would only count: the regional OEM moves it on, everyone hears of it.
    let eta = b.now().as_millis() + HOUR;
    moved(
        &b,
        id,
        REGIONAL.token.unwrap(),
        &format!(r#"{{"stage":"dispatched","eta":{eta}}}"#),
    )
    .await;
    for (p, msg) in [
        ("dealer-north", format!("msg_a{id}_s3")),
        ("desk", format!("msg_a{id}_s3_l1")),
        ("oem-regional", format!("msg_a{id}_s3_l2")),
    ] {
        delivery(&b, p, &msg).await;
    }
    let a = get(&b, id).await;
    assert_eq!(
        outcomes(&a),
        pairs(&[("contacted", "missed"), ("on_site", "missed")])
    );

    // Shares: the contact miss is the dealer's, the on-site miss the desk's (it held the
    // alert when that clock started).
    let all = b.get_as("/api/v1/promises", OPERATOR).await;
    let rows: Vec<(&str, u64, u64)> = all["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partner"].as_str().unwrap(),
                p["kept"].as_u64().unwrap(),
                p["missed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, vec![("dealer-north", 0, 1), ("desk", 0, 1)], "{all}");
    assert_eq!(all["partners"][0]["share"], 0.0, "{all}");
    assert_eq!(
        all["partners"][0]["stages"][0]["stage"], "contacted",
        "{all}"
    );
    // A partner sees its own row only.
    let mine = b.get_as("/api/v1/promises", NORTH_TOKEN).await;
    assert_eq!(mine["partners"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["partners"][0]["partner"], "dealer-north", "{mine}");
    // A window after the contact miss (settled at 60 min) does not count it.
    let later = b
        .get_as(
            &format!(
                "/api/v1/promises?from={}&to={}",
                T0 + 2 * HOUR,
                b.now().as_millis() + 1
            ),
            OPERATOR,
        )
        .await;
    let who: Vec<&str> = later["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partner"].as_str().unwrap())
        .collect();
    assert_eq!(who, vec!["desk"], "{later}");
    let (status, bad) = b
        .call("GET", "/api/v1/promises?from=10&to=5", OPERATOR, None)
        .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("bad_query")),
        "{bad}"
    );
    b.cloud.shutdown().await.unwrap();
}

/// A remote region: on site within 24 h of contacted (not 3 h).
async fn a_remote_region_has_24_hours_to_be_on_site(kind: StoreKind) {
    let Some(mut b) = bed("stages-remote", kind).await else {
        return;
    };
    let id = critical_on(&mut b, REMOTE).await;
    b.advance(10 * MINUTE_MS).await;
    let a = moved(
        &b,
        id,
        SOUTH_TOKEN,
        r#"{"stage":"contacted","advisor":"Bo Chen"}"#,
    )
    .await;
    assert_eq!(a["promise"]["due"], T0 + 10 * MINUTE_MS + 24 * HOUR, "{a}");
    b.advance(20 * HOUR).await;
    let eta = b.now().as_millis() + 3 * HOUR;
    moved(
        &b,
        id,
        SOUTH_TOKEN,
        &format!(r#"{{"stage":"dispatched","eta":{eta}}}"#),
    )
    .await;
    b.advance(3 * HOUR).await;
    let a = get(&b, id).await;
    assert!(a["escalated"].is_null(), "23 h 10 min: still in time: {a}");
    let a = moved(&b, id, SOUTH_TOKEN, r#"{"stage":"on_site"}"#).await;
    assert_eq!(
        outcomes(&a),
        pairs(&[("contacted", "kept"), ("on_site", "kept")])
    );
    b.cloud.shutdown().await.unwrap();
}

/// Maintenance: the driver books from the prompt, the dealer contacts and books, and the
/// workshop's service record resolves it (stage resolved by the cloud, told to the dealer
/// and the car).
async fn a_maintenance_alert_is_booked_then_resolved_by_the_service_record(kind: StoreKind) {
    let Some(mut b) = bed("stages-maint", kind).await else {
        return;
    };
    b.send(
        URBAN,
        vec![
            maintenance("oil", MaintenanceStatus::Due),
            prompt(PromptKind::Maintenance, "oil", PromptAction::Booked),
        ],
    )
    .await;
    let id = alert_of(&b, URBAN, "maintenance").await;
    delivery(&b, "dealer-north", &format!("msg_a{id}")).await;
    b.advance(2 * HOUR).await;
    moved(
        &b,
        id,
        NORTH_TOKEN,
        r#"{"stage":"contacted","advisor":"Li Wei"}"#,
    )
    .await;
    let (status, e) = stage(&b, id, NORTH_TOKEN, r#"{"stage":"dispatched","eta":1}"#).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("stage_not_on_path")),
        "{e}"
    );
    let appointment = b.now().as_millis() + 2 * 24 * HOUR;
    let a = moved(
        &b,
        id,
        NORTH_TOKEN,
        &format!(r#"{{"stage":"booked","eta":{appointment}}}"#),
    )
    .await;
    assert_eq!(a["stage"], "booked", "{a}");
    b.advance(2 * 24 * HOUR).await;
    b.send(URBAN, vec![maintenance("oil", MaintenanceStatus::Done)])
        .await;
    let a = get(&b, id).await;
    assert_eq!(
        (a["stage"].as_str(), a["state"].as_str()),
        (Some("resolved"), Some("resolved")),
        "{a}"
    );
    let last = &a["stages"][3];
    assert_eq!(
        (last["stage"].as_str(), last["by"].as_str()),
        (Some("resolved"), Some("cloud")),
        "{a}"
    );
    assert_eq!(
        outcomes(&a),
        pairs(&[("contacted", "kept"), ("booked", "kept")])
    );
    let hook = delivery(&b, "dealer-north", &format!("msg_a{id}_s4")).await;
    assert_eq!(hook["stage"]["stage"], "resolved", "{hook}");
    b.wait(WAIT, "the car told resolved", || {
        progress(&b, id)
            .last()
            .is_some_and(|p| p.stage == ServiceStage::Resolved)
    })
    .await;
    let p = progress(&b, id);
    assert_eq!(p[2].stage, ServiceStage::Booked);
    assert_eq!(p[2].eta.map(Timestamp::as_millis), Some(appointment));
    assert!(!p[2].critical);
    b.cloud.shutdown().await.unwrap();
}

/// Skipping, going back, another partner's alert, a malformed or past ETA, a stage not on
/// the path, a missing advisor, a partner's cancel, a closed alert: each refused with its
/// stable code, and the alert unchanged (GET before and after).
async fn invalid_moves_are_refused_and_change_nothing(kind: StoreKind) {
    let Some(mut b) = bed("stages-invalid", kind).await else {
        return;
    };
    let id = critical_on(&mut b, URBAN).await;
    b.advance(MINUTE_MS).await;
    let before = get(&b, id).await;
    let past = b.now().as_millis() - 1;
    let cases: [(&str, &str, u16, &str); 9] = [
        (NORTH_TOKEN, r#"{"stage":"on_site"}"#, 409, "stage_skipped"),
        (
            NORTH_TOKEN,
            r#"{"stage":"resolved","note":"#,
            400,
            "bad_request",
        ),
        (
            NORTH_TOKEN,
            r#"{"stage":"booked","eta":1}"#,
            422,
            "stage_not_on_path",
        ),
        (
            NORTH_TOKEN,
            r#"{"stage":"contacted"}"#,
            422,
            "advisor_required",
        ),
        (
            NORTH_TOKEN,
            r#"{"stage":"contacted","advisor":"  "}"#,
            422,
            "advisor_required",
        ),
        (
            NORTH_TOKEN,
            r#"{"stage":"cancelled"}"#,
            403,
            "cancel_not_allowed",
        ),
        (
            SOUTH_TOKEN,
            r#"{"stage":"contacted","advisor":"X"}"#,
            404,
            "unknown_alert",
        ),
        (
            NORTH_TOKEN,
            r#"{"stage":"contacted","advisor":"X","colour":"red"}"#,
            400,
            "bad_request",
        ),
        (NORTH_TOKEN, r#"["contacted"]"#, 400, "bad_request"),
    ];
    for (token, body, status, code) in cases {
        let (s, e) = stage(&b, id, token, body).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    assert_eq!(get(&b, id).await, before, "refused moves changed the alert");

    moved(
        &b,
        id,
        NORTH_TOKEN,
        r#"{"stage":"contacted","advisor":"Li Wei"}"#,
    )
    .await;
    let before = get(&b, id).await;
    let far = b.now().as_millis() + 31 * 24 * HOUR;
    let cases = [
        (
            r#"{"stage":"dispatched","eta":"soon"}"#.to_owned(),
            422,
            "invalid_eta",
        ),
        (
            r#"{"stage":"dispatched","eta":-5}"#.to_owned(),
            422,
            "invalid_eta",
        ),
        (
            format!(r#"{{"stage":"dispatched","eta":{past}}}"#),
            422,
            "invalid_eta",
        ),
        (
            format!(r#"{{"stage":"dispatched","eta":{far}}}"#),
            422,
            "invalid_eta",
        ),
        (r#"{"stage":"dispatched"}"#.to_owned(), 422, "invalid_eta"),
        (r#"{"stage":"raised"}"#.to_owned(), 409, "stage_backwards"),
        (
            format!(r#"{{"stage":"on_site","note":"{}"}}"#, "n".repeat(201)),
            422,
            "invalid_note",
        ),
    ];
    for (body, status, code) in &cases {
        let (s, e) = stage(&b, id, NORTH_TOKEN, body).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{body}: {e}"
        );
    }
    // A repeat with the same fields: 200, nothing changes.
    let (s, same) = stage(
        &b,
        id,
        NORTH_TOKEN,
        r#"{"stage":"contacted","advisor":"Li Wei"}"#,
    )
    .await;
    assert_eq!(s, 200, "{same}");
    assert_eq!(
        get(&b, id).await,
        before,
        "refused moves or a repeat changed the alert"
    );

    // A revised ETA: step + 1, the promise clock not restarted.
    let eta = b.now().as_millis() + HOUR;
    let a = moved(
        &b,
        id,
        NORTH_TOKEN,
        &format!(r#"{{"stage":"dispatched","eta":{eta}}}"#),
    )
    .await;
    let due = a["promise"]["due"].clone();
    let a = moved(
        &b,
        id,
        NORTH_TOKEN,
        &format!(r#"{{"stage":"dispatched","eta":{}}}"#, eta + HOUR),
    )
    .await;
    assert_eq!(
        (a["stage"].as_str(), a["step"].as_u64()),
        (Some("dispatched"), Some(4)),
        "{a}"
    );
    assert_eq!(a["promise"]["due"], due, "{a}");
    delivery(&b, "dealer-north", &format!("msg_a{id}_s4")).await;

    moved(&b, id, OPERATOR, r#"{"stage":"resolved"}"#).await;
    let closed = get(&b, id).await;
    let (s, e) = stage(&b, id, NORTH_TOKEN, r#"{"stage":"on_site"}"#).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("alert_closed")),
        "{e}"
    );
    let (s, e) = b
        .call(
            "POST",
            &format!("/api/v1/alerts/{id}/resolve"),
            NORTH_TOKEN,
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    assert_eq!(get(&b, id).await, closed);
    b.cloud.shutdown().await.unwrap();
}

/// The driver's answers from the car: left_car reaches the partner as a signed
/// `alert.driver_answer`; cancel closes the alert (stage cancelled, by the driver), told as
/// `alert.stage`; the running promise is void.
async fn the_drivers_answers_reach_the_partner(kind: StoreKind) {
    let Some(mut b) = bed("stages-answer", kind).await else {
        return;
    };
    let id = critical_on(&mut b, URBAN).await;
    moved(
        &b,
        id,
        NORTH_TOKEN,
        r#"{"stage":"contacted","advisor":"Li Wei"}"#,
    )
    .await;
    b.advance(5 * MINUTE_MS).await;
    let answered_at = b.now().as_millis();
    b.send(
        URBAN,
        vec![RecordBody::ServiceAnswer(ServiceAnswer {
            alert_id: id,
            answer: DriverAnswer::LeftCar,
        })],
    )
    .await;
    let left = delivery(&b, "dealer-north", &format!("msg_a{id}_ans2")).await;
    assert_eq!(left["type"], "alert.driver_answer", "{left}");
    assert_eq!(left["answer"]["answer"], "left_car", "{left}");
    assert_eq!(left["answer"]["at"], answered_at, "{left}");
    assert_eq!(
        get(&b, id).await["stage"],
        "contacted",
        "left_car does not move it"
    );

    b.advance(5 * MINUTE_MS).await;
    b.send(
        URBAN,
        vec![RecordBody::ServiceAnswer(ServiceAnswer {
            alert_id: id,
            answer: DriverAnswer::Cancel,
        })],
    )
    .await;
    let a = get(&b, id).await;
    assert_eq!(
        (a["stage"].as_str(), a["state"].as_str()),
        (Some("cancelled"), Some("resolved")),
        "{a}"
    );
    assert_eq!(a["stages"][2]["by"], "driver", "{a}");
    assert_eq!(
        outcomes(&a),
        pairs(&[("contacted", "kept"), ("on_site", "void")])
    );
    let cancel = delivery(&b, "dealer-north", &format!("msg_a{id}_s3")).await;
    assert_eq!(cancel["type"], "alert.stage", "{cancel}");
    assert_eq!(cancel["stage"]["stage"], "cancelled", "{cancel}");
    assert_eq!(cancel["stage"]["by"], "driver", "{cancel}");
    // An answer for an alert that is not open on this car changes nothing.
    b.send(
        URBAN,
        vec![RecordBody::ServiceAnswer(ServiceAnswer {
            alert_id: id + 1000,
            answer: DriverAnswer::Cancel,
        })],
    )
    .await;
    assert_eq!(get(&b, id).await, a);
    b.cloud.shutdown().await.unwrap();
}

/// At the store (no MQTT hands the downlinks over, as for a car whose downlinks wait): each
/// stage move supersedes the alert's queued ServiceProgress, so the queue holds only the
/// latest — the step the car will show.
async fn queued_downlinks_hold_only_the_latest_progress(kind: StoreKind) {
    let Some(target) = TestStore::new(kind, "stages-queue").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), BrokerKind::Embedded, "stages-queue").unwrap();
    target.configure(&mut c);
    tokio::task::block_in_place(|| {
        let store = Store::open(&c).unwrap();
        let rules = store_rules(&c);
        let mut now = Timestamp::from_millis(T0);
        store.start_fleet(&rules, now).unwrap();
        let vin = URBAN.parse().unwrap();
        let id = raise_urban_critical(&store, &rules, vin, now);
        let queued = |store: &Store, now: Timestamp| -> Vec<(ServiceStage, u32)> {
            let later = now.saturating_add(Duration::from_secs(24 * 3600));
            store
                .claim_downlinks(later, 100)
                .unwrap()
                .into_iter()
                .flat_map(|(_, bytes)| Downlink::decode(&bytes).unwrap().messages)
                .filter_map(|m| match m.body {
                    DownlinkBody::ServiceProgress(p) if p.alert_id == id => Some((p.stage, p.step)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(queued(&store, now), vec![(ServiceStage::Raised, 1)]);
        now = now.saturating_add(Duration::from_secs(600));
        let contacted = rapport_cloud::fleet::alerts::StageMove {
            stage: "contacted".into(),
            advisor: Some("Li Wei".into()),
            ..Default::default()
        };
        store
            .transition(&rules, id, Some("desk"), Transition::Stage(contacted), now)
            .unwrap();
        assert_eq!(queued(&store, now), vec![(ServiceStage::Contacted, 2)]);
        now = now.saturating_add(Duration::from_secs(600));
        let dispatched = rapport_cloud::fleet::alerts::StageMove {
            stage: "dispatched".into(),
            eta: Some(now.saturating_add(Duration::from_secs(3600))),
            ..Default::default()
        };
        store
            .transition(&rules, id, Some("desk"), Transition::Stage(dispatched), now)
            .unwrap();
        assert_eq!(queued(&store, now), vec![(ServiceStage::Dispatched, 3)]);
        // Stored with its stages and promises, read back by the backend.
        let a = store.alert(id).unwrap().unwrap();
        assert_eq!(a.step(), 3);
        assert_eq!(a.promises.len(), 2);
    });
}
/// Straight on the store (no API): registers `vin` in the urban region SH with the partner
/// consent, ingests a critical P0300 at `now` and returns the one alert it raised.
fn raise_urban_critical(
    store: &Store,
    rules: &rapport_cloud::fleet::core::Rules,
    vin: Vin,
    now: Timestamp,
) -> u64 {
    let reg = Reg {
        region: Some("SH".into()),
        consents: Consents {
            partner_sharing: true,
            engagement: true,
        },
        category: Category::Passenger,
        ..Reg::unregistered(vin)
    };
    store.register(rules, &[reg], false, now).unwrap();
    let up = Uplink {
        vin,
        records: vec![rapport_shared::Record {
            seq: 1,
            at: now,
            body: critical(0x0300),
        }],
    };
    store.ingest(Some(rules), &[up], now).unwrap();
    let alerts = store.alerts(true, Some(&vin)).unwrap();
    assert_eq!(alerts.len(), 1, "one critical fault, one alert");
    alerts[0].id
}

/// The store's rules for the store-level tests: the desk (fallback) and the issue's promises.
fn store_rules(c: &rapport_cloud::config::Config) -> rapport_cloud::fleet::core::Rules {
    let settings = FleetSettings {
        layers: c.layers.clone(),
        alerts: AlertsConfig {
            fallback: Some("desk".into()),
            ..AlertsConfig::default()
        },
        partners: vec![partner(
            "desk",
            "http://127.0.0.1:9/hook".into(),
            DESK.secret,
            Some(DESK_TOKEN),
        )],
        promises: promises(),
        ..Default::default()
    };
    rules_from(&settings, Vec::new()).unwrap()
}

/// A running promise survives a restart of the store: reopened (sled rebuilds its time
/// indexes from the stored alerts, PostgreSQL keeps the due in its row), the tick misses it at
/// exactly its due — not a millisecond before — and escalates.
async fn a_running_promise_survives_a_restart(kind: StoreKind) {
    let Some(target) = TestStore::new(kind, "stages-restart").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), BrokerKind::Embedded, "stages-restart").unwrap();
    target.configure(&mut c);
    tokio::task::block_in_place(|| {
        let rules = store_rules(&c);
        let t0 = Timestamp::from_millis(T0);
        let vin = URBAN.parse().unwrap();
        let contacted_at = t0.saturating_add(Duration::from_secs(600));
        let id = {
            let store = Store::open(&c).unwrap();
            store.start_fleet(&rules, t0).unwrap();
            let id = raise_urban_critical(&store, &rules, vin, t0);
            let contacted = rapport_cloud::fleet::alerts::StageMove {
                stage: "contacted".into(),
                advisor: Some("Li Wei".into()),
                ..Default::default()
            };
            store
                .transition(
                    &rules,
                    id,
                    Some("desk"),
                    Transition::Stage(contacted),
                    contacted_at,
                )
                .unwrap();
            store.flush().unwrap();
            id
        };
        let due = contacted_at.saturating_add(Duration::from_secs(3 * 3600));
        let store = Store::open(&c).unwrap();
        store.start_fleet(&rules, contacted_at).unwrap();
        let a = store.alert(id).unwrap().unwrap();
        assert_eq!(a.promise_due(), Some(due));
        store
            .tick(&rules, Timestamp::from_millis(due.as_millis() - 1))
            .unwrap();
        assert_eq!(store.alert(id).unwrap().unwrap().escalated, None);
        store.tick(&rules, due).unwrap();
        let a = store.alert(id).unwrap().unwrap();
        let e = a.escalated.clone().expect("escalated at its due");
        assert_eq!((e.to.as_str(), e.at, e.level), ("desk", due, 1));
        assert_eq!(e.stage, Some(rapport_cloud::fleet::alerts::Stage::OnSite));
        assert_eq!(a.promise_due(), None);
    });
}

rapport_harness::on_both_backends!(
    a_running_promise_survives_a_restart,
    an_urban_critical_fault_kept_at_every_stage,
    a_late_contact_escalates_at_60_min_and_a_late_on_site_to_the_second_level,
    a_remote_region_has_24_hours_to_be_on_site,
    a_maintenance_alert_is_booked_then_resolved_by_the_service_record,
    invalid_moves_are_refused_and_change_nothing,
    the_drivers_answers_reach_the_partner,
    queued_downlinks_hold_only_the_latest_progress,
);
