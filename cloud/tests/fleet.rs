//! The fleet end to end inside one cloud (embedded broker, real sled, real HTTP, real
//! partner receivers verifying signatures): time travel through the activity layers with the
//! strategies' campaigns reaching the car's downlink topic within their caps, a maintenance
//! alert that waits for the driver's response and escalates after its SLA, a critical fault
//! acknowledged in time, the stored codes an alert carries as context, partner token
//! isolation, and malformed API input.

use std::collections::BTreeMap;
use std::time::Duration;

use rapport_harness::bed::{
    Bed, DAY_MS, DEALER_NORTH, DEALER_SOUTH, MINUTE_MS, NORTH_TOKEN, Plan, Registration,
    SOUTH_TOKEN,
};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use rapport_harness::http::{client as http, metric};
use rapport_harness::partner::Receiver;
use rapport_harness::records::{critical, first_drive, maintenance, odometer, prompt};
use rapport_shared::{
    ConsentChange, ConsentKind, DownlinkBody, Dtc, DtcClass, DtcEvent, MaintenanceStatus, ObdCode,
    PromptAction, PromptKind, RecordBody, Severity,
};
use serde_json::Value;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;

const V1: &str = "WP0ZZZ99ZTS392124";
const V2: &str = "WVWZZZ1JZXW000001";

/// The shared bed with two dealers and the desk they escalate to, recording the cars'
/// downlinks; `None` when `kind`'s backend is absent.
async fn bed(name: &str, kind: StoreKind) -> Option<Bed> {
    let plan = Plan::escalating(name, T0, &[DEALER_NORTH, DEALER_SOUTH]);
    let mut bed = Bed::start_on(kind, plan, |_| {}).await.unwrap()?;
    bed.watch_downlinks().await.unwrap();
    Some(bed)
}

/// The bed with V1 (a passenger car) sold by the northern dealer and V2 (of `v2_category`)
/// by the southern one, both on 2025-06-01.
async fn north_and_south(name: &str, kind: StoreKind, v2_category: &str) -> Option<Bed> {
    let b = bed(name, kind).await?;
    b.sell(V1, "dealer-north", "2025-06-01", "passenger").await;
    b.sell(V2, "dealer-south", "2025-06-01", v2_category).await;
    Some(b)
}

/// Waits (up to 10 s) until `r` got one delivery.
async fn delivered_once(r: &Receiver) {
    let once = r.wait_until(Duration::from_secs(10), |s| s.delivered == 1);
    assert!(once.await, "{:?}", r.stats());
}

/// Waits (up to 10 s) for `r`'s first delivery: its body.
async fn first_delivery(r: &Receiver) -> Value {
    delivered_once(r).await;
    serde_json::from_slice(&r.deliveries()[0].body).unwrap()
}

/// The fleet's verbs on the bed: its partners, registrations, layers and campaigns.
trait Fleet {
    fn north(&self) -> &Receiver;
    fn south(&self) -> &Receiver;
    fn desk(&self) -> &Receiver;
    async fn days(&mut self, days: u64);
    async fn minutes(&mut self, minutes: u64);
    /// Registers `vin` as sold by `dealer`.
    async fn sell(&self, vin: &str, dealer: &str, delivered: &str, category: &str);
    async fn layers(&self, vin: &str) -> Value;
    fn campaigns(&self, vin: &str) -> Vec<(String, u64)>;
}

impl Fleet for Bed {
    fn north(&self) -> &Receiver {
        self.receiver("dealer-north")
    }

    fn south(&self) -> &Receiver {
        self.receiver("dealer-south")
    }

    fn desk(&self) -> &Receiver {
        self.receiver("desk")
    }

    async fn days(&mut self, days: u64) {
        self.advance(days * DAY_MS).await;
    }

    async fn minutes(&mut self, minutes: u64) {
        self.advance(minutes * MINUTE_MS).await;
    }

    async fn sell(&self, vin: &str, dealer: &str, delivered: &str, category: &str) {
        let r = Registration {
            dealer,
            category,
            line: "e-compact 2025",
            delivered,
        };
        self.register(vin, r).await;
    }

    async fn layers(&self, vin: &str) -> Value {
        self.get_as(&format!("/api/v1/vehicles/{vin}"), OPERATOR)
            .await["layers"]
            .clone()
    }

    fn campaigns(&self, vin: &str) -> Vec<(String, u64)> {
        self.downlinks()
            .iter()
            .filter(|d| d.vin.to_string() == vin)
            .flat_map(|d| d.messages.iter())
            .filter_map(|m| match &m.body {
                DownlinkBody::Campaign(c) => Some((c.campaign_id.clone(), m.at.as_millis())),
                _ => None,
            })
            .collect()
    }
}

/// One driver, days of silence: active → declining → churned → dormant, each change on the
/// timeline with its reason, and the novice-slipping-away onboarding campaign reaching the
/// car's downlink topic — never closer together than the cadence of the driver's layer,
/// never more than the 30-day cap; an opt-out stops them; an engagement brings them back.
async fn time_travel_moves_drivers_through_activity_and_strategies_respect_caps(kind: StoreKind) {
    let Some(mut b) = bed("travel", kind).await else {
        return;
    };
    b.sell(V1, "dealer-north", "2025-12-20", "passenger").await;
    b.send(V1, first_drive(800)).await;
    let l = b.layers(V1).await;
    assert_eq!(
        (
            l["car"].as_str(),
            l["activity"].as_str(),
            l["lifecycle"].as_str()
        ),
        (Some("novice"), Some("active"), Some("new")),
        "{l}"
    );

    let mut seen = Vec::new();
    for _ in 0..130 {
        b.days(1).await;
        let a = b.layers(V1).await["activity"].as_str().unwrap().to_owned();
        if seen.last() != Some(&a) {
            seen.push(a);
        }
    }
    assert_eq!(seen, ["active", "declining", "churned", "dormant"]);

    // The timeline holds each change with its reason.
    let (_, tl) = b
        .request(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline"),
            Some(OPERATOR),
            None,
        )
        .await;
    let changes: Vec<(String, String)> = tl["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "layer" && !e["from"].is_null())
        .filter(|e| e["from"]["activity"] != e["to"]["activity"])
        .map(|e| {
            (
                e["to"]["activity"].as_str().unwrap().to_owned(),
                e["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let order: Vec<&str> = changes.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(order, ["declining", "churned", "dormant"], "{tl}");
    assert!(
        changes.iter().all(|(_, why)| why.contains("engagement")),
        "{changes:?}"
    );

    // Onboarding campaigns went down, within cadence and cap.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = b.campaigns(V1);
    assert!(
        sent.len() >= 2,
        "onboarding sent at least on declining and churned: {sent:?}"
    );
    assert!(
        sent.iter().all(|(id, _)| id.starts_with("onboarding")),
        "{sent:?}"
    );
    for pair in sent.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(gap >= 7 * DAY_MS, "campaigns {gap} ms apart: {sent:?}");
    }
    for (i, (_, at)) in sent.iter().enumerate() {
        let in_window = sent[i..]
            .iter()
            .filter(|(_, t)| *t < at + 30 * DAY_MS)
            .count();
        assert!(in_window <= 4, "more than 4 campaigns in 30 days: {sent:?}");
    }

    // The driver opts out: nothing more, whatever the strategies say; held back on the timeline.
    b.send(
        V1,
        vec![RecordBody::Consent(ConsentChange {
            consent: ConsentKind::EngagementPrompts,
            granted: false,
        })],
    )
    .await;
    let before = b.campaigns(V1).len();
    for _ in 0..60 {
        b.days(1).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.campaigns(V1).len(),
        before,
        "no campaign after an opt-out"
    );

    // An engagement brings the driver back to active.
    b.send(
        V1,
        vec![prompt(
            PromptKind::Milestone,
            "1000",
            PromptAction::Acknowledged,
        )],
    )
    .await;
    assert_eq!(b.layers(V1).await["activity"], "active");
    let (_, m) = b
        .request("GET", "/api/v1/layers", Some(OPERATOR), None)
        .await;
    assert_eq!(m["total"], 1, "{m}");
    b.cloud.shutdown().await.unwrap();
}

/// Service due: the alert waits for the driver's response (the seeds' flow), goes to the
/// vehicle's dealer signed, carries the checklist and the response, and escalates to the
/// fallback partner when the dealer does not acknowledge within the 1-hour SLA. A critical
/// fault goes at once; acknowledged in time, it never escalates. A service done resolves the
/// maintenance alert.
async fn maintenance_alert_waits_for_the_driver_then_escalates_after_its_sla(kind: StoreKind) {
    let Some(mut b) = north_and_south("alerts", kind, "commercial").await else {
        return;
    };
    b.send(
        V1,
        vec![odometer(4_990), maintenance("oil", MaintenanceStatus::Due)],
    )
    .await;
    let (_, alerts) = b
        .request("GET", "/api/v1/alerts", Some(OPERATOR), None)
        .await;
    let list = alerts["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    let id = list[0]["id"].as_u64().unwrap();
    // Not sent yet: waiting for the driver.
    b.minutes(5).await;
    assert_eq!(b.north().stats().delivered, 0);
    b.send(
        V1,
        vec![prompt(PromptKind::Maintenance, "oil", PromptAction::Booked)],
    )
    .await;
    let body = first_delivery(b.north()).await;
    assert_eq!(body["type"], "alert.maintenance_due", "{body}");
    assert_eq!(body["driver_response"], "booked", "{body}");
    assert_eq!(body["vin"], V1, "{body}");
    assert!(body["checklist"].to_string().contains("oil"), "{body}");
    assert!(
        body.get("consents").is_none(),
        "only what the alert needs: {body}"
    );
    assert_eq!(b.north().deliveries()[0].id, format!("msg_a{id}"));

    // No acknowledgement: at +61 min the SLA has run out → the desk gets it, marked escalated.
    b.minutes(30).await;
    assert_eq!(b.desk().stats().delivered, 0, "not before the SLA");
    b.minutes(31).await;
    let esc = first_delivery(b.desk()).await;
    assert_eq!(esc["type"], "alert.escalated", "{esc}");
    let (_, a) = b
        .request("GET", &format!("/api/v1/alerts/{id}"), Some(OPERATOR), None)
        .await;
    assert_eq!(a["escalated"]["to"], "desk", "{a}");
    assert_eq!(a["sla_state"], "escalated", "{a}");
    b.minutes(120).await;
    assert_eq!(b.desk().stats().delivered, 1, "escalates once");

    // Critical fault on V2: at once to dealer-south, acknowledged in time: never escalates.
    b.send(V2, vec![critical(0x0300)]).await;
    let crit = first_delivery(b.south()).await;
    assert_eq!(crit["type"], "alert.critical_fault", "{crit}");
    let crit_id = crit["alert_id"]
        .as_u64()
        .or_else(|| crit["id"].as_u64())
        .unwrap();
    let (status, acked) = b.acknowledge(crit_id, SOUTH_TOKEN).await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["state"], "acknowledged");
    let (status, again) = b.acknowledge(crit_id, SOUTH_TOKEN).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{again}"
    );
    b.minutes(180).await;
    assert_eq!(
        b.desk().stats().delivered,
        1,
        "an acknowledged alert does not escalate"
    );

    // The service is done: the maintenance alert resolves itself.
    b.send(V1, vec![maintenance("oil", MaintenanceStatus::Done)])
        .await;
    let (_, a) = b
        .request("GET", &format!("/api/v1/alerts/{id}"), Some(OPERATOR), None)
        .await;
    assert_eq!(a["state"], "resolved", "{a}");
    // Every webhook the receivers accepted had a valid signature; none was refused.
    for r in [b.north(), b.south(), b.desk()] {
        assert_eq!(r.stats().rejected, 0);
    }
    b.cloud.shutdown().await.unwrap();
}

/// A critical fault's alert carries the codes the car's ECUs remember (class stored, previously
/// active) as `stored_codes`; those codes never raise an alert of their own, even critical by
/// the car's config, and the vehicle's view lists them apart with their class.
async fn a_fault_alert_lists_the_stored_codes(kind: StoreKind) {
    let Some(mut b) = north_and_south("stored", kind, "commercial").await else {
        return;
    };
    let event = |code: u16, severity, class| {
        RecordBody::DtcAppeared(DtcEvent {
            dtc: Dtc::Obd(ObdCode::new(code)),
            severity,
            ecu: 0x7E8,
            class: Some(class),
        })
    };
    b.send(
        V2,
        vec![
            event(0x0420, Severity::Critical, DtcClass::Stored),
            event(0x0110, Severity::Info, DtcClass::PreviouslyActive),
            event(0x0171, Severity::Critical, DtcClass::Permanent),
        ],
    )
    .await;
    b.minutes(5).await;
    assert_eq!(b.south().stats().delivered, 0, "history raises no alert");
    b.send(
        V2,
        vec![event(0x0300, Severity::Critical, DtcClass::Confirmed)],
    )
    .await;
    let crit = first_delivery(b.south()).await;
    assert_eq!(crit["type"], "alert.critical_fault", "{crit}");
    let codes = |key: &str| -> Vec<(String, String)> {
        crit[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let label = c.get("class").or_else(|| c.get("severity")).unwrap();
                (
                    c["code"].as_str().unwrap().to_owned(),
                    label.as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |c: &str, l: &str| (c.to_owned(), l.to_owned());
    assert_eq!(
        codes("stored_codes"),
        [pair("P0420", "stored"), pair("P0110", "previously_active")],
        "{crit}"
    );
    assert_eq!(
        codes("active_faults"),
        [pair("P0171", "critical"), pair("P0300", "critical")],
        "{crit}"
    );
    let (_, v) = b
        .request(
            "GET",
            &format!("/api/v1/vehicles/{V2}"),
            Some(OPERATOR),
            None,
        )
        .await;
    let classes = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{}:{}",
                    d["code"].as_str().unwrap(),
                    d["class"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        classes("active_dtcs"),
        ["P0171:permanent", "P0300:confirmed"],
        "{v}"
    );
    assert_eq!(
        classes("stored_dtcs"),
        ["P0420:stored", "P0110:previously_active"],
        "{v}"
    );
    b.minutes(5).await;
    assert_eq!(
        b.south().stats().delivered,
        1,
        "one alert, for the confirmed fault"
    );
    b.cloud.shutdown().await.unwrap();
}

/// A partner's token sees its own vehicles and alerts only; other partners' look like they do
/// not exist; operator routes are refused; no token or a wrong one is 401.
async fn a_partner_token_sees_only_its_own_vehicles_and_alerts(kind: StoreKind) {
    let Some(mut b) = north_and_south("tokens", kind, "passenger").await else {
        return;
    };
    b.send(V1, vec![odometer(100), critical(0x0301)]).await;
    b.send(V2, vec![odometer(100), critical(0x0302)]).await;
    delivered_once(b.north()).await;
    delivered_once(b.south()).await;
    let (_, all) = b
        .request("GET", "/api/v1/alerts", Some(OPERATOR), None)
        .await;
    let ids: BTreeMap<String, u64> = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["vin"].as_str().unwrap().to_owned(),
                a["id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ids.len(), 2, "{all}");
    let (north_alert, south_alert) = (ids[V1], ids[V2]);

    // Own things: visible.
    assert_eq!(
        b.request(
            "GET",
            &format!("/api/v1/vehicles/{V1}"),
            Some(NORTH_TOKEN),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        b.request(
            "GET",
            &format!("/api/v1/alerts/{north_alert}"),
            Some(NORTH_TOKEN),
            None
        )
        .await
        .0,
        200
    );
    let (_, mine) = b
        .request("GET", "/api/v1/alerts?state=all", Some(NORTH_TOKEN), None)
        .await;
    assert_eq!(mine["alerts"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["alerts"][0]["vin"], V1);
    let (_, list) = b
        .request("GET", "/api/v1/vehicles", Some(NORTH_TOKEN), None)
        .await;
    let vins: Vec<&str> = list["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vin"].as_str().unwrap())
        .collect();
    assert_eq!(vins, [V1], "{list}");
    let (_, partners) = b
        .request("GET", "/api/v1/partners", Some(NORTH_TOKEN), None)
        .await;
    assert_eq!(
        partners["partners"].as_array().unwrap().len(),
        1,
        "{partners}"
    );
    assert!(
        !partners.to_string().contains("whsec_"),
        "secrets never leave: {partners}"
    );

    // Someone else's: as if it did not exist.
    for path in [
        format!("/api/v1/vehicles/{V2}"),
        format!("/api/v1/vehicles/{V2}/timeline"),
        format!("/api/v1/alerts/{south_alert}"),
    ] {
        let (status, json) = b.request("GET", &path, Some(NORTH_TOKEN), None).await;
        assert_eq!(status, 404, "{path}: {json}");
    }
    let (status, _) = b.acknowledge(south_alert, NORTH_TOKEN).await;
    assert_eq!(status, 404);
    let (_, a) = b
        .request(
            "GET",
            &format!("/api/v1/alerts/{south_alert}"),
            Some(OPERATOR),
            None,
        )
        .await;
    assert_eq!(
        a["state"], "open",
        "north could not acknowledge south's alert"
    );

    // Operator routes: 403 for partners.
    for (m, path, body) in [
        ("GET", "/api/v1/layers", None),
        ("GET", "/api/v1/dead-letters", None),
        (
            "PUT",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/registration",
            Some(r#"{"category":"passenger"}"#),
        ),
        (
            "POST",
            "/api/v1/campaigns",
            Some(r#"{"id":"x","title":"t","text":"x","valid_days":3}"#),
        ),
        (
            "POST",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/downlink",
            Some("{}"),
        ),
    ] {
        let (status, json) = b.request(m, path, Some(SOUTH_TOKEN), body).await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{m} {path}: {json}"
        );
    }
    // No token, a wrong one: 401.
    for token in [None, Some("nope"), Some(" ")] {
        let (status, json) = b.request("GET", "/api/v1/alerts", token, None).await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{token:?}"
        );
    }
    b.cloud.shutdown().await.unwrap();
}

/// Every kind of malformed input to the fleet routes is a 4xx with a JSON error and a stable
/// code, counted in the metrics; nothing is a 500.
async fn malformed_api_input_gets_a_4xx_json_error(kind: StoreKind) {
    let Some(b) = bed("malformed", kind).await else {
        return;
    };
    let long = "x".repeat(5000);
    // (method, path, content type, body, status, code)
    type Case<'a> = (
        &'a str,
        String,
        Option<&'a str>,
        Option<&'a str>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/api/v1/vehicles?limit=0".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/vehicles?limit=abc".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/vehicles?activity=sleepy".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/vehicles?after=NOTAVIN".into(),
            None,
            None,
            400,
            "bad_vin",
        ),
        (
            "GET",
            "/api/v1/vehicles?colour=red".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/vehicles?limit=%ZZ".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            format!("/api/v1/vehicles/{long}"),
            None,
            None,
            400,
            "bad_vin",
        ),
        (
            "GET",
            "/api/v1/vehicles/WP0ZZZ99ZTS39212I".into(),
            None,
            None,
            400,
            "bad_vin",
        ),
        (
            "GET",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124".into(),
            None,
            None,
            404,
            "unknown_vehicle",
        ),
        (
            "GET",
            "/api/v1/layers?axis=colour".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/layers?category=spaceship".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/alerts?state=maybe".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/alerts/abc".into(),
            None,
            None,
            400,
            "bad_id",
        ),
        (
            "GET",
            "/api/v1/alerts/99999".into(),
            None,
            None,
            404,
            "unknown_alert",
        ),
        (
            "POST",
            "/api/v1/alerts/99999/acknowledge".into(),
            None,
            None,
            404,
            "unknown_alert",
        ),
        (
            "POST",
            "/api/v1/alerts/-1/resolve".into(),
            None,
            None,
            400,
            "bad_id",
        ),
        (
            "PUT",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/registration".into(),
            Some("application/json"),
            Some("{"),
            422,
            "bad_body",
        ),
        (
            "PUT",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/registration".into(),
            Some("application/json"),
            Some(r#"{"category":"tank"}"#),
            422,
            "bad_body",
        ),
        (
            "PUT",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/registration".into(),
            Some("application/json"),
            Some(r#"{"category":"passenger","delivered":"2025-13-40"}"#),
            422,
            "bad_body",
        ),
        (
            "PUT",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/registration".into(),
            Some("application/json"),
            Some(r#"{"category":"passenger","wheels":4}"#),
            422,
            "bad_body",
        ),
        (
            "PUT",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/registration".into(),
            Some("text/plain"),
            Some("hello"),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/registry".into(),
            Some("text/csv"),
            Some("vin,category\nNOTAVIN,passenger\n"),
            422,
            "bad_registry",
        ),
        (
            "POST",
            "/api/v1/registry".into(),
            Some("application/pdf"),
            Some("%PDF"),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/registry".into(),
            Some("text/csv"),
            Some("\u{0}\u{1}garbage"),
            422,
            "bad_registry",
        ),
        (
            "PUT",
            "/api/v1/partners/p1".into(),
            Some("application/json"),
            Some(
                r#"{"id":"p2","name":"x","kind":"dealer","webhook_url":"http://127.0.0.1:1/","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","token":"abcdefabcdefabcdefabcdefabcdefabcdef"}"#,
            ),
            422,
            "bad_body",
        ),
        (
            "PUT",
            "/api/v1/partners/p1".into(),
            Some("application/json"),
            Some(
                r#"{"id":"p1","name":"x","kind":"dealer","webhook_url":"ftp://x/","secret":"nope","token":"abcdefabcdefabcdefabcdefabcdefabcdef"}"#,
            ),
            422,
            "bad_body",
        ),
        (
            "DELETE",
            "/api/v1/partners/nobody".into(),
            None,
            None,
            404,
            "unknown_partner",
        ),
        (
            "POST",
            "/api/v1/campaigns".into(),
            Some("application/json"),
            Some(r#"{"id":"","title":"t","text":"x","valid_days":3}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/campaigns".into(),
            Some("application/json"),
            Some(r#"{"id":"c","title":"t","text":"x","valid_days":0}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/campaigns".into(),
            Some("application/json"),
            Some(r#"{"id":"c","title":"t","text":"x","valid_days":3,"cell":{"mood":["happy"]}}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/campaigns".into(),
            Some("application/json"),
            Some(
                r#"{"id":"c","title":"t","text":"x","valid_days":3,"cell":{"activity":["sleepy"]}}"#,
            ),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/dead-letters/msg_nope/redrive".into(),
            None,
            None,
            404,
            "unknown_dead_letter",
        ),
        (
            "GET",
            "/api/v1/dead-letters?limit=100000".into(),
            None,
            None,
            400,
            "bad_query",
        ),
        (
            "DELETE",
            "/api/v1/alerts".into(),
            None,
            None,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/v1/nothing-here".into(),
            None,
            None,
            404,
            "not_found",
        ),
    ];
    let http = http();
    for (method, path, ct, body, status, code) in &cases {
        let mut r = http
            .request(method.parse().unwrap(), format!("{}{path}", b.base))
            .bearer_auth(OPERATOR);
        if let Some(ct) = ct {
            r = r.header("content-type", *ct);
        }
        if let Some(body) = body {
            r = r.body(body.to_string());
        }
        let resp = r.send().await.unwrap();
        let got = resp.status().as_u16();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            got,
            *status,
            "{method} {}: {json}",
            &path[..path.len().min(80)]
        );
        assert_eq!(
            json["error"]["code"],
            *code,
            "{method} {}: {json}",
            &path[..path.len().min(80)]
        );
    }
    let (_, text) = {
        let resp = http
            .get(format!("{}/metrics", b.base))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert!(metric(&text, "rapport_api_rejects_total").unwrap() >= cases.len() as u64);
    b.cloud.shutdown().await.unwrap();
}

rapport_harness::on_both_backends!(
    time_travel_moves_drivers_through_activity_and_strategies_respect_caps,
    maintenance_alert_waits_for_the_driver_then_escalates_after_its_sla,
    a_fault_alert_lists_the_stored_codes,
    a_partner_token_sees_only_its_own_vehicles_and_alerts,
    malformed_api_input_gets_a_4xx_json_error,
);
