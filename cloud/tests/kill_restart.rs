//! The real `rapport-cloud` binary SIGKILLed mid-stream, again and again, and restarted on
//! the same store, while cars keep publishing to an external Mosquitto (which queues for the
//! cloud's persistent session while it is down). When the stream ends, every seq is applied
//! exactly once: the read API's counts equal the records sent and the record log holds each
//! seq once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use rapport_harness::cloud::{
    self, BrokerKind, CloudRuns, StoreKind, TestStore, get_json, mosquitto_options,
};
use rapport_harness::mosquitto::Mosquitto;
use rapport_harness::mqtt::Publisher;
use rapport_harness::records::{record, uplink, vin};
use rapport_harness::wait::poll_until;
use rapport_shared::Vin;

async fn vehicle(api: SocketAddr, v: Vin) -> (u16, serde_json::Value) {
    get_json(&format!("http://{api}/api/v1/vehicles/{v}")).await
}

async fn sigkilled_mid_stream_every_seq_is_applied_once(kind: StoreKind) {
    let Some(store) = TestStore::new(kind, "kill-test").unwrap() else {
        return;
    };
    let Some(broker) = Mosquitto::start(mosquitto_options()).unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c =
        cloud::config(dir.path(), BrokerKind::External(broker.addr()), "kill-test").unwrap();
    store.configure(&mut c);
    let config = cloud::write(&c, dir.path()).unwrap();
    let mut runs = CloudRuns::new(env!("CARGO_BIN_EXE_rapport-cloud"), &config, dir.path());
    let mut cloud = runs.start().unwrap();
    // The first run makes the persistent subscription; from then on Mosquitto queues for it.
    let api = cloud.api;
    poll_until(
        Duration::from_secs(20),
        "the first subscription",
        || async move {
            let (_, health) = get_json(&format!("http://{api}/healthz")).await;
            health["ingest"]["subscribed"] == true
        },
    )
    .await;

    // Two cars, 400 batches of 50 records each, as fast as the broker takes them (so the
    // cloud always has a backlog and kills land between apply and ack); every 7th batch is
    // sent twice (an agent retrying after a lost ack).
    const BATCHES: u64 = 400;
    const PER: u64 = 50;
    let cars = [vin("WVWZZZ1JZXW000001"), vin("WP0ZZZ99ZTS392124")];
    let addr = broker.addr();
    let stream = tokio::spawn(async move {
        let mut p = Publisher::connect(addr, "kill-cars").await;
        for i in 0..BATCHES {
            for v in cars {
                let up = uplink(v, i * PER + 1..=i * PER + PER, record);
                p.send(&up).await;
                if i % 7 == 3 {
                    p.send(&up).await;
                }
            }
            if i % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        p.settle().await;
    });

    // Kill and restart at uneven intervals while the stream runs (at least 5 kills).
    let mut kills = 0;
    let pauses = [170u64, 260, 120, 330, 200, 90, 280, 150];
    while kills < 5 || !stream.is_finished() {
        tokio::time::sleep(Duration::from_millis(pauses[kills % pauses.len()])).await;
        cloud.sigkill().unwrap();
        kills += 1;
        // Down for a moment: Mosquitto queues meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        cloud = runs.start().unwrap();
        assert!(kills < 50, "the stream never ended");
    }
    stream.await.unwrap();

    let n = BATCHES * PER;
    let api = cloud.api;
    let done = |body: &serde_json::Value| body["records"]["total"] == n && body["last_seq"] == n;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for v in cars {
        loop {
            let (status, body) = vehicle(api, v).await;
            if status == 200 && done(&body) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{v} not fully applied after {kills} kills: {body}\nlast log:\n{}",
                    std::fs::read_to_string(&cloud.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Nothing more arrives later (no record applied twice).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for v in cars {
        let (_, body) = vehicle(api, v).await;
        assert_eq!(body["records"]["total"], n, "{v}: {body}");
        assert_eq!(body["last_seq"], n);
        assert_eq!(body["applied_through"], n);
        assert_eq!(body["odometer"]["seq"], n);
        assert_eq!(body["active_dtcs"], serde_json::json!([]));
    }
    // A clean stop, then the record log itself: each seq once, in order.
    assert!(
        cloud.sigterm().unwrap().success(),
        "SIGTERM did not stop the cloud cleanly"
    );
    let log = tokio::task::block_in_place(|| rapport_cloud::store::Store::open(&c)).unwrap();
    for v in cars {
        let seqs: Vec<u64> = tokio::task::block_in_place(|| log.records(&v, 0, usize::MAX))
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "{v}");
    }
    if std::env::var("KEEP_CLOUD_LOGS").is_ok() {
        println!("logs kept in {}", dir.keep().display());
    }
    println!(
        "{kills} SIGKILLs, {} runs, {n} records per car, each applied once",
        runs.count()
    );
}

rapport_harness::on_both_backends!(sigkilled_mid_stream_every_seq_is_applied_once);
