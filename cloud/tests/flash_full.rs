//! The cloud's sled store on a small tmpfs that fills while cars publish (through a real
//! Mosquitto holding the cloud's persistent session): the cloud must stop acking (so the broker
//! keeps the uplinks), say why on `/healthz` (503, `store.reason = "storage_full"`) and in
//! `/metrics` (`rapport_store_full 1`), and — sled 0.34 keeps a write error for the life of its
//! handle, so once space is back the cloud is restarted, as its supervisor does — ingest every
//! record exactly once. Skips where mounting is refused (fails with `RAPPORT_REQUIRE_MOUNT=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_harness::cloud::{self, BrokerKind, CloudRuns, get_json, mosquitto_options};
use rapport_harness::mosquitto::Mosquitto;
use rapport_harness::mqtt::Publisher;
use rapport_harness::records::{record, uplink, vin};
use rapport_harness::tmpfs::Tmpfs;
use rapport_harness::wait::poll_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_stops_the_acks_and_every_record_lands_once_after_space_returns() {
    let Some(fs) = Tmpfs::mount("cloud::flash_full", 16 * 1024).unwrap() else {
        return;
    };
    let Some(broker) = Mosquitto::start(mosquitto_options()).unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = cloud::config(dir.path(), BrokerKind::External(broker.addr()), "flash").unwrap();
    c.store.backend = rapport_cloud::config::Backend::Sled;
    c.store.path = fs.path().join("cloud");
    let config = cloud::write(&c, dir.path()).unwrap();
    let mut runs = CloudRuns::new(env!("CARGO_BIN_EXE_rapport-cloud"), &config, dir.path());
    let cloud = runs.start().unwrap();
    let api = cloud.api;
    poll_until(Duration::from_secs(30), "the subscription", || async move {
        let (_, health) = get_json(&format!("http://{api}/healthz")).await;
        health["ingest"]["subscribed"] == true
    })
    .await;

    let car = vin("WVWZZZ1JZXW000001");
    let mut p = Publisher::connect(broker.addr(), "flash-car").await;
    p.send(&uplink(car, 1..=50, record)).await;
    p.settle().await;
    let vehicle = format!("http://{api}/api/v1/vehicles/{car}");
    let url = vehicle.clone();
    poll_until(Duration::from_secs(30), "the first 50 records", || {
        let url = url.clone();
        async move { get_json(&url).await.1["records"]["total"] == 50 }
    })
    .await;

    // The store's file system fills; the car goes on publishing.
    let ballast = fs.fill().unwrap();
    for i in 1..4u64 {
        p.send(&uplink(car, i * 50 + 1..=i * 50 + 50, record)).await;
    }
    p.settle().await;
    poll_until(
        Duration::from_secs(60),
        "/healthz 503 storage_full",
        || async move {
            let (status, health) = get_json(&format!("http://{api}/healthz")).await;
            status == 503 && health["store"]["reason"] == "storage_full"
        },
    )
    .await;
    let metrics = reqwest::get(format!("http://{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rapport_store_full 1"), "{metrics}");
    assert!(metrics.contains("rapport_store_up 0"), "{metrics}");

    // Space returns; the supervisor restarts the cloud (sled keeps its error per handle).
    fs.free().unwrap();
    cloud.sigkill().unwrap();
    let cloud = runs.start().unwrap();
    let api = cloud.api;
    let vehicle = format!("http://{api}/api/v1/vehicles/{car}");
    let url = vehicle.clone();
    poll_until(Duration::from_secs(60), "all 200 records", || {
        let url = url.clone();
        async move {
            let body = get_json(&url).await.1;
            body["records"]["total"] == 200 && body["last_seq"] == 200
        }
    })
    .await;
    let (status, health) = get_json(&format!("http://{api}/healthz")).await;
    assert_eq!(status, 200, "{health}");
    let log = std::fs::read_to_string(&cloud.log).unwrap_or_default();
    assert!(cloud.sigterm().unwrap().success(), "{log}");
    let store = tokio::task::block_in_place(|| rapport_cloud::store::Store::open(&c)).unwrap();
    let seqs: Vec<u64> = tokio::task::block_in_place(|| store.records(&car, 0, usize::MAX))
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "each seq once, in order"
    );
    println!(
        "ballast {ballast} B; 150 records published while full, none acked, all applied once after the restart"
    );
}
