//! The cloud's ingest against real brokers — its own embedded rumqttd and a Mosquitto process
//! — with plain rumqttc clients as vehicles: exactly-once application under duplicates,
//! reordering and replays; hostile publishers rejected and counted while an honest vehicle is
//! served; shared subscriptions; downlinks; the read API's answers and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use rapport_cloud::Cloud;
use rapport_cloud::ingest::RejectReason;
use rapport_harness::cloud::{
    BrokerKind, OPERATOR, StoreKind, TestStore, config, get_json, mosquitto_options, post_json,
};
use rapport_harness::http::{client as http, metric};
use rapport_harness::mosquitto::Mosquitto;
use rapport_harness::mqtt::{Publisher, Subscriber};
use rapport_harness::records::{odometer_record as odometer, record, uplink, vin};
use rapport_harness::wait::wait_until;
use rapport_shared::{Downlink, DownlinkBody, ServiceRecorded, Timestamp, Uplink, topic};

const WAIT: Duration = Duration::from_secs(30);

async fn start(
    dir: &std::path::Path,
    broker: BrokerKind,
    id: &str,
    store: &TestStore,
) -> (Cloud, std::net::SocketAddr) {
    let mut c = config(dir, broker, id).unwrap();
    store.configure(&mut c);
    let cloud = Cloud::start(&c).await.unwrap();
    assert!(cloud.wait_subscribed(WAIT).await, "ingest never subscribed");
    let addr = match broker {
        BrokerKind::Embedded => cloud.ready().broker.unwrap(),
        BrokerKind::External(addr) => addr,
    };
    (cloud, addr)
}

async fn wait_messages(cloud: &Cloud, n: u64) {
    let m = cloud.metrics();
    wait_until(WAIT, &format!("{n} messages handled"), || {
        m.messages.load(Ordering::SeqCst) >= n
    })
    .await;
    // Handled means applied and flushed; give the acks a moment and check nothing more came.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        m.messages.load(Ordering::SeqCst),
        n,
        "more messages than sent"
    );
}

/// Expected `records.by_kind` for seqs 1..=n built by [`record`].
fn kinds(n: u64) -> serde_json::Value {
    let count = |r: &[u64]| (1..=n).filter(|s| r.contains(&(s % 10))).count() as u64;
    let mut m = serde_json::Map::new();
    for (name, rest) in [
        ("odometer", &[0, 1, 2, 4, 7, 8][..]),
        ("engine_hours", &[3]),
        ("dtc_appeared", &[5]),
        ("dtc_cleared", &[6]),
        ("unknown", &[9]),
    ] {
        let c = count(rest);
        if c > 0 {
            m.insert(name.into(), c.into());
        }
    }
    serde_json::Value::Object(m)
}

/// 10 batches of 50 records sent shuffled, the first batch three more times, and a replay of
/// old seqs re-batched differently: every record applied once, and the replays change nothing.
async fn exactly_once(broker: BrokerKind, id: &str, store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, addr) = start(dir.path(), broker, id, store).await;
    let api = cloud.ready().api;
    let v = vin("WP0ZZZ99ZTS392124");
    let batches: Vec<Uplink> = (0..10)
        .map(|i| uplink(v, i * 50 + 1..=i * 50 + 50, record))
        .collect();
    let mut car = Publisher::connect(addr, &format!("{id}-car")).await;
    for i in [3, 0, 9, 1, 2, 8, 4, 7, 5, 6] {
        car.send(&batches[i]).await;
    }
    car.settle().await;
    wait_messages(&cloud, 10).await;
    let (status, first) = get_json(&format!("http://{api}/api/v1/vehicles/{v}")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["records"]["total"], 500);
    assert_eq!(first["records"]["by_kind"], kinds(500));
    assert_eq!(first["last_seq"], 500);
    assert_eq!(first["applied_through"], 500);
    assert_eq!(first["missing_seqs"], 0);
    // The highest odometer seq is 500 (km = seq), engine hours at 493 (60 s per seq); the
    // batch holding them arrived before others.
    assert_eq!(first["odometer"]["meters"], 500_000);
    assert_eq!(first["odometer"]["km"], 500.0);
    assert_eq!(first["odometer"]["seq"], 500);
    assert_eq!(first["engine_hours"]["seconds"], 493 * 60);
    // Every fault that appeared (seq x5) cleared in the next record.
    assert_eq!(first["active_dtcs"], serde_json::json!([]));

    // The same batch three times, then a replay of seqs 40..=160 in one envelope.
    for _ in 0..3 {
        car.send(&batches[0]).await;
    }
    car.send(&uplink(v, 40..=160, record)).await;
    car.settle().await;
    wait_messages(&cloud, 14).await;
    let (_, after) = get_json(&format!("http://{api}/api/v1/vehicles/{v}")).await;
    for key in [
        "records",
        "last_seq",
        "odometer",
        "engine_hours",
        "active_dtcs",
        "first_seen_ms",
    ] {
        assert_eq!(after[key], first[key], "{key} changed by a replay");
    }
    let m = cloud.metrics();
    assert_eq!(m.records_applied.load(Ordering::SeqCst), 500);
    assert_eq!(m.duplicates.load(Ordering::SeqCst), 3 * 50 + 121);
    assert_eq!(m.unknown_records.load(Ordering::SeqCst), 50);
    assert_eq!(m.batches.load(Ordering::SeqCst), 14);
    for reason in RejectReason::ALL {
        assert_eq!(m.rejected(reason), 0, "{reason:?}");
    }
    // The log holds each record once, in seq order.
    let logged: Vec<u64> = tokio::task::block_in_place(|| cloud.store().records(&v, 0, 10_000))
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(logged, (1..=500).collect::<Vec<_>>());
    cloud.shutdown().await.unwrap();
}

async fn embedded_broker_applies_every_record_once(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "once-embedded").unwrap() else {
        return;
    };
    exactly_once(BrokerKind::Embedded, "once-embedded", &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_applies_every_record_once() {
    let Some(m) = Mosquitto::start(mosquitto_options()).unwrap() else {
        return;
    };
    let store = TestStore::new(StoreKind::Sled, "once-mosquitto")
        .unwrap()
        .unwrap();
    exactly_once(BrokerKind::External(m.addr()), "once-mosquitto", &store).await;
}

/// A hostile client publishes garbage, an oversize payload, another vehicle's envelope on its
/// own topic and a malformed topic, while an honest car streams: the hostile publishes are
/// rejected and counted by reason, and the honest car gets every record applied.
async fn hostile_and_honest(broker: BrokerKind, id: &str, store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, addr) = start(dir.path(), broker, id, store).await;
    let api = cloud.ready().api;
    let honest = vin("WVWZZZ1JZXW000001");
    let hostile = vin("WVWZZZ1JZXW666666");
    let victim = vin("WP0ZZZ99ZTS392124");

    let mut car = Publisher::connect(addr, &format!("{id}-honest")).await;
    let mut bad = Publisher::connect(addr, &format!("{id}-hostile")).await;
    let honest_task = tokio::spawn(async move {
        for i in 0..40u64 {
            car.send(&uplink(honest, i * 25 + 1..=i * 25 + 25, odometer))
                .await;
        }
        car.settle().await;
        car.sent()
    });
    let up = topic::uplink(&hostile);
    for round in 0..5u8 {
        bad.publish(&up, vec![round, 0xFF, 0x00, 0x13]).await; // garbage
        bad.publish(&up, vec![1; 300 * 1024]).await; // oversize
        let spoof = uplink(victim, 1..=10, odometer).encode().unwrap();
        bad.publish(&up, spoof).await; // another car's envelope
        let good_bytes = uplink(hostile, 1..=2, odometer).encode().unwrap();
        bad.publish("rapport/v1/NOT-A-VIN/up", good_bytes).await; // bad topic
        bad.publish(&up, Vec::new()).await; // empty
        let mut wrong_version = uplink(hostile, 1..=2, odometer).encode().unwrap();
        wrong_version[0] = 9;
        bad.publish(&up, wrong_version).await;
    }
    bad.settle().await;
    let honest_sent = honest_task.await.unwrap();
    wait_messages(&cloud, honest_sent + bad.sent()).await;

    let m = cloud.metrics();
    assert_eq!(m.rejected(RejectReason::Undecodable), 15);
    assert_eq!(m.rejected(RejectReason::Oversize), 5);
    assert_eq!(m.rejected(RejectReason::VinMismatch), 5);
    assert_eq!(m.rejected(RejectReason::BadTopic), 5);
    assert_eq!(m.records_applied.load(Ordering::SeqCst), 1000);

    let (status, car) = get_json(&format!("http://{api}/api/v1/vehicles/{honest}")).await;
    assert_eq!(status, 200);
    assert_eq!(car["records"]["total"], 1000);
    assert_eq!(car["last_seq"], 1000);
    assert_eq!(car["odometer"]["meters"], 10_000);
    // Neither the spoofed vehicle nor the hostile one got any state.
    for v in [victim, hostile] {
        let (status, body) = get_json(&format!("http://{api}/api/v1/vehicles/{v}")).await;
        assert_eq!(status, 404, "{v}: {body}");
        assert_eq!(body["error"]["code"], "unknown_vehicle");
    }
    // The same counts through /metrics.
    let text = http()
        .get(format!("http://{api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&text, "rapport_ingest_rejects_total{reason=\"oversize\"}"),
        Some(5)
    );
    assert_eq!(
        metric(
            &text,
            "rapport_ingest_rejects_total{reason=\"vin_mismatch\"}"
        ),
        Some(5)
    );
    assert_eq!(
        metric(&text, "rapport_ingest_records_applied_total"),
        Some(1000)
    );
    assert_eq!(metric(&text, "rapport_vehicles"), Some(1));
    cloud.shutdown().await.unwrap();
}

async fn embedded_broker_rejects_hostile_publishes_and_serves_honest_ones(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "hostile-embedded").unwrap() else {
        return;
    };
    hostile_and_honest(BrokerKind::Embedded, "hostile-embedded", &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_rejects_hostile_publishes_and_serves_honest_ones() {
    let Some(m) = Mosquitto::start(mosquitto_options()).unwrap() else {
        return;
    };
    let store = TestStore::new(StoreKind::Sled, "hostile-mosquitto")
        .unwrap()
        .unwrap();
    hostile_and_honest(BrokerKind::External(m.addr()), "hostile-mosquitto", &store).await;
}

/// Two instances in one share group split the uplinks: each message reaches exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_group_splits_the_uplinks() {
    let Some(m) = Mosquitto::start(mosquitto_options()).unwrap() else {
        return;
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut clouds = Vec::new();
    for (dir, id) in [(&d1, "share-1"), (&d2, "share-2")] {
        let mut c = config(dir.path(), BrokerKind::External(m.addr()), id).unwrap();
        c.broker.share_group = Some("rapport".into());
        let cloud = Cloud::start(&c).await.unwrap();
        assert!(cloud.wait_subscribed(WAIT).await);
        clouds.push(cloud);
    }
    let mut car = Publisher::connect(m.addr(), "share-cars").await;
    let vins = [
        "WVWZZZ1JZXW000001",
        "WVWZZZ1JZXW000002",
        "WVWZZZ1JZXW000003",
    ];
    for i in 0..20u64 {
        for v in vins {
            car.send(&uplink(vin(v), i * 10 + 1..=i * 10 + 10, odometer))
                .await;
        }
    }
    car.settle().await;
    let total = |f: fn(&rapport_cloud::metrics::Metrics) -> u64| -> u64 {
        clouds.iter().map(|c| f(c.metrics())).sum()
    };
    wait_until(WAIT, "60 messages over both instances", || {
        total(|m| m.messages.load(Ordering::SeqCst)) >= 60
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(total(|m| m.messages.load(Ordering::SeqCst)), 60);
    assert_eq!(total(|m| m.records_applied.load(Ordering::SeqCst)), 600);
    assert_eq!(total(|m| m.duplicates.load(Ordering::SeqCst)), 0);
    for c in &clouds {
        assert!(
            c.metrics().messages.load(Ordering::SeqCst) > 0,
            "one instance got nothing"
        );
    }
    for c in clouds {
        c.shutdown().await.unwrap();
    }
}

/// The operator route publishes a downlink the car receives and decodes, with fresh ids.
async fn downlinks_reach_the_car_with_fresh_ids(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "downlink").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cloud, addr) = start(dir.path(), BrokerKind::Embedded, "downlink", &store).await;
    let api = cloud.ready().api;
    let v = vin("WP0ZZZ99ZTS392124");

    // The car: subscribed to its downlink topic.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let car = Subscriber::start(
        addr,
        "downlink-car",
        &topic::downlink(&v),
        move |topic, payload| {
            let _ = tx.send((topic.to_owned(), payload.to_vec()));
        },
    )
    .await
    .unwrap();

    let url = format!("http://{api}/api/v1/vehicles/{v}/downlink");
    let (status, first) = post_json(
        &url,
        r#"{"kind":"campaign","campaign_id":"spring-check","title":"Spring check",
            "text":"Free tyre check this month","priority":"high",
            "valid_from_ms":1750000000000,"valid_until_ms":1760000000000,
            "target":{"min_km":1000,"no_active_faults":true}}"#,
    )
    .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["topic"], topic::downlink(&v));
    let id1 = first["id"].as_u64().unwrap();
    let id2 = cloud
        .send_downlink(
            v,
            DownlinkBody::ServiceRecorded(ServiceRecorded {
                items: vec!["oil".into()],
                performed_at: Timestamp::from_millis(1_750_000_000_000),
                odometer: None,
                partner: "Dealer".into(),
            }),
        )
        .await
        .unwrap();
    assert_ne!(id1, id2);

    let mut got = Vec::new();
    for _ in 0..2 {
        let (t, bytes) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t, topic::downlink(&v));
        let d = Downlink::decode(&bytes).unwrap();
        assert_eq!(d.vin, v);
        got.push(d.messages.into_iter().next().unwrap());
    }
    assert_eq!(got[0].id, id1);
    match &got[0].body {
        DownlinkBody::Campaign(c) => {
            assert_eq!(c.campaign_id, "spring-check");
            assert_eq!(c.priority, rapport_shared::Priority::High);
            assert_eq!(
                c.target.min_odometer,
                Some(rapport_shared::Odometer::from_km(1000))
            );
            assert!(c.target.no_active_faults);
        }
        other => panic!("not a campaign: {other:?}"),
    }
    assert_eq!(got[1].id, id2);
    assert!(matches!(&got[1].body, DownlinkBody::ServiceRecorded(s) if s.items == ["oil"]));
    assert_eq!(cloud.metrics().downlinks.load(Ordering::SeqCst), 2);
    drop(car);
    cloud.shutdown().await.unwrap();
}

/// Every bad request gets a 4xx with a JSON error body.
async fn the_api_answers_bad_requests_with_json_errors(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "api-errors").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cloud, _) = start(dir.path(), BrokerKind::Embedded, "api-errors", &store).await;
    let base = format!("http://{}", cloud.ready().api);
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        ("GET", "/api/v1/vehicles/SHORT".into(), None, 400, "bad_vin"),
        (
            "GET",
            "/api/v1/vehicles/WP0ZZZ99ZTS39212O".into(),
            None,
            400,
            "bad_vin",
        ),
        (
            "GET",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124".into(),
            None,
            404,
            "unknown_vehicle",
        ),
        ("GET", "/api/v2/nothing".into(), None, 404, "not_found"),
        (
            "DELETE",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124".into(),
            None,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/v1/vehicles/BAD/downlink".into(),
            Some("{}"),
            400,
            "bad_vin",
        ),
        (
            "POST",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/downlink".into(),
            Some("not json"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/downlink".into(),
            Some(r#"{"kind":"self_destruct"}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/downlink".into(),
            Some(
                r#"{"kind":"service_recorded","items":["oil"],"performed_at_ms":1,
                    "partner":"D","extra":1}"#,
            ),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/downlink".into(),
            Some(r#"{"kind":"service_recorded","items":[],"performed_at_ms":1,"partner":"D"}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/vehicles/WP0ZZZ99ZTS392124/downlink".into(),
            Some(
                r#"{"kind":"campaign","campaign_id":"c","title":"t","text":"x",
                    "valid_from_ms":10,"valid_until_ms":5}"#,
            ),
            400,
            "bad_request",
        ),
    ];
    let http = http();
    for (method, path, body, status, code) in cases {
        let mut req = http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth(OPERATOR);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(json["error"]["code"], code, "{method} {path}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {path}: {json}"
        );
    }
    let (status, health) = get_json(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(health["ingest"]["subscribed"], true);
    assert_eq!(cloud.metrics().downlinks.load(Ordering::SeqCst), 0);
    cloud.shutdown().await.unwrap();
}

/// Records applied before a clean shutdown are there after a restart on the same store, and
/// a redelivery after the restart is still a duplicate.
async fn state_survives_a_restart_on_the_same_store(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "restart").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let v = vin("WP0ZZZ99ZTS392124");
    {
        let (cloud, addr) = start(dir.path(), BrokerKind::Embedded, "restart", &store).await;
        let mut car = Publisher::connect(addr, "restart-car-1").await;
        car.send(&uplink(v, 1..=100, record)).await;
        car.settle().await;
        wait_messages(&cloud, 1).await;
        cloud.shutdown().await.unwrap();
    }
    // A new embedded broker (new port), the same store.
    let (cloud, addr) = start(dir.path(), BrokerKind::Embedded, "restart", &store).await;
    assert_eq!(cloud.metrics().vehicles.load(Ordering::SeqCst), 1);
    let mut car = Publisher::connect(addr, "restart-car-2").await;
    car.send(&uplink(v, 51..=150, record)).await;
    car.settle().await;
    wait_messages(&cloud, 1).await;
    let m = cloud.metrics();
    assert_eq!(m.records_applied.load(Ordering::SeqCst), 50);
    assert_eq!(m.duplicates.load(Ordering::SeqCst), 50);
    let (_, body) = get_json(&format!("http://{}/api/v1/vehicles/{v}", cloud.ready().api)).await;
    assert_eq!(body["records"]["total"], 150);
    assert_eq!(body["records"]["by_kind"], kinds(150));
    cloud.shutdown().await.unwrap();
}

rapport_harness::on_both_backends!(
    embedded_broker_applies_every_record_once,
    embedded_broker_rejects_hostile_publishes_and_serves_honest_ones,
    downlinks_reach_the_car_with_fresh_ids,
    the_api_answers_bad_requests_with_json_errors,
    state_survives_a_restart_on_the_same_store,
);
