//! The real `rapport-cloud` binary SIGKILLed while partner webhooks are in flight, then
//! restarted on the same store: every alert reaches its partner — at least once, and every
//! attempt of one alert under one `webhook-id` with the same signed body (the spec's
//! idempotency key) — and never under two ids. Real HTTP to a real receiver that verifies
//! every signature; real sled files; the embedded broker.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rapport_cloud::fleet::partners::PartnerConfig;
use rapport_harness::cloud::{
    self, BrokerKind, CloudRuns, StoreKind, TestStore, get_json, partner,
};
use rapport_harness::mqtt::Publisher;
use rapport_harness::partner::{Receiver, Reply, system_clock};
use rapport_harness::records::critical;
use rapport_harness::wait::{free_port, loopback, poll_until};
use rapport_shared::{Record, Timestamp, Uplink};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VIN: &str = "WP0ZZZ99ZTS392124";
const TOKEN: &str = "north-token-0123456789abcdef0123456789";
const ALERTS: u16 = 20;

async fn sigkill_during_delivery_never_loses_an_alert_nor_changes_its_id(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "kill-hooks").unwrap() else {
        return;
    };
    let receiver = Receiver::start(SECRET, system_clock()).await.unwrap();
    // Slow answers: the kill lands while requests are in flight.
    receiver.set_default(Reply::ok().delay(Duration::from_millis(400)));
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port().unwrap();
    std::fs::write(
        dir.path().join("registry.csv"),
        format!("vin,category,line,delivered,dealer,region,partner_sharing,engagement\n{VIN},passenger,e-compact,2025-06-01,dealer-north,north,true,true\n"),
    )
    .unwrap();
    let mut c = cloud::config(dir.path(), BrokerKind::Embedded, "kill-hooks").unwrap();
    store.configure(&mut c);
    c.broker.listen = Some(loopback(broker_port));
    c.fleet.registry = Some(dir.path().join("registry.csv"));
    c.fleet.tick_ms = 100;
    c.alerts.fallback = Some("dealer-north".into());
    let north = partner("dealer-north", receiver.url(), SECRET, Some(TOKEN));
    c.partner = vec![PartnerConfig {
        name: "North".into(),
        ..north
    }];
    let config = cloud::write(&c, dir.path()).unwrap();
    let mut runs = CloudRuns::new(env!("CARGO_BIN_EXE_rapport-cloud"), &config, dir.path());
    let mut cloud = runs.start().unwrap();
    // 20 critical faults → 20 alerts, each sent at once (published once the cloud listens:
    // the embedded broker keeps no session for a subscriber it has not seen).
    let health = format!("http://{}/healthz", cloud.api);
    poll_until(
        Duration::from_secs(20),
        "the cloud's uplink subscription",
        || {
            let health = health.clone();
            async move { get_json(&health).await.1["ingest"]["subscribed"] == true }
        },
    )
    .await;
    let mut car = Publisher::connect(loopback(broker_port), "kill-hooks-car").await;
    let records: Vec<Record> = (0..ALERTS)
        .map(|i| Record {
            seq: u64::from(i) + 1,
            at: Timestamp::from_millis(1_800_000_000_000),
            body: critical(0x0300 + i),
        })
        .collect();
    car.send(&Uplink {
        vin: VIN.parse().unwrap(),
        records,
    })
    .await;
    car.settle().await;
    // Kill while deliveries are in flight, three times.
    for _ in 0..3 {
        assert!(
            receiver
                .wait_until(Duration::from_secs(20), |s| s.attempts >= 1)
                .await,
            "no webhook attempt arrived; log:\n{}",
            std::fs::read_to_string(&cloud.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        cloud.sigkill().unwrap();
        cloud = runs.start().unwrap();
    }
    // Let it finish.
    receiver.set_default(Reply::ok());
    let done = receiver
        .wait_until(Duration::from_secs(60), |s| {
            s.delivered >= u64::from(ALERTS)
        })
        .await;
    let deliveries = receiver.deliveries();
    let ids: BTreeSet<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    assert!(
        done && ids.len() == usize::from(ALERTS),
        "{} distinct ids delivered of {ALERTS}: {:?}",
        ids.len(),
        receiver.stats()
    );
    // One alert, one id: the same id always carries the same body, and no alert id appears
    // under two webhook ids.
    let mut body_of: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut id_of_alert: BTreeMap<u64, String> = BTreeMap::new();
    for d in receiver.attempts() {
        let prev = body_of
            .entry(d.id.clone())
            .or_insert_with(|| d.body.clone());
        assert_eq!(*prev, d.body, "webhook {} sent with two bodies", d.id);
        let json: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        let alert = json["alert_id"]
            .as_u64()
            .or_else(|| json["id"].as_u64())
            .unwrap();
        let prev = id_of_alert.entry(alert).or_insert_with(|| d.id.clone());
        assert_eq!(*prev, d.id, "alert {alert} sent under two webhook ids");
    }
    assert_eq!(id_of_alert.len(), usize::from(ALERTS));
    assert_eq!(receiver.stats().rejected, 0, "every signature verified");
    // The cloud agrees: 20 alerts, no dead letters.
    let (_, alerts) = get_json(&format!(
        "http://{}/api/v1/alerts?state=all&limit=1000",
        cloud.api
    ))
    .await;
    assert_eq!(
        alerts["alerts"].as_array().unwrap().len(),
        usize::from(ALERTS),
        "{alerts}"
    );
    let (_, dead) = get_json(&format!("http://{}/api/v1/dead-letters", cloud.api)).await;
    assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 0, "{dead}");
    println!(
        "{} attempts, {} deliveries, {} duplicates (same id) for {ALERTS} alerts across 3 kills",
        receiver.stats().attempts,
        receiver.stats().delivered,
        receiver.stats().duplicates
    );
    cloud.sigterm().unwrap();
}

rapport_harness::on_both_backends!(sigkill_during_delivery_never_loses_an_alert_nor_changes_its_id);
