//! The cloud's mTLS path to an external broker: Mosquitto with a TLS listener that requires
//! client certificates (made at run time by the harness's PKI) beside a plain one. With its
//! certificate the cloud subscribes and ingests; without one the broker refuses it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use rapport_cloud::Cloud;
use rapport_cloud::config::Tls;
use rapport_harness::cloud::{self, BrokerKind, mosquitto_options};
use rapport_harness::mosquitto::{self, Mosquitto};
use rapport_harness::mqtt::Publisher;
use rapport_harness::pki::Ca;
use rapport_harness::records::{record, uplink, vin};
use rapport_harness::wait::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_to_mosquitto() {
    // A CA, a server certificate for localhost and a client certificate, all P-256.
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::generate(certs.path(), "rapport test CA").unwrap();
    let server = ca.server().unwrap();
    let client = ca.client("rapport-cloud").unwrap();
    let listener = mosquitto::Tls::mutual(ca.cert(), &server.cert, &server.key);
    let Some(broker) = Mosquitto::start(mosquitto_options().tls_listener(listener)).unwrap() else {
        return;
    };
    let tls_port = broker.tls_port().unwrap();

    // Without a client certificate the broker refuses the cloud.
    let dir = tempfile::tempdir().unwrap();
    let mut c =
        cloud::config(dir.path(), BrokerKind::External(broker.addr()), "mtls-none").unwrap();
    c.broker.url = Some(format!("mqtts://localhost:{tls_port}"));
    c.broker.tls = Some(Tls {
        ca: ca.cert().to_path_buf(),
        cert: None,
        key: None,
    });
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let refused = Cloud::start(&c).await.unwrap();
    assert!(!refused.wait_subscribed(Duration::from_secs(3)).await);
    refused.shutdown().await.unwrap();

    // With it: subscribed, and an uplink published on the plain listener is ingested.
    let dir = tempfile::tempdir().unwrap();
    c.store.path = dir.path().join("store");
    c.broker.client_id = "mtls-cloud".into();
    c.broker.tls = Some(Tls {
        ca: ca.cert().to_path_buf(),
        cert: Some(client.cert.clone()),
        key: Some(client.key.clone()),
    });
    let cloud = Cloud::start(&c).await.unwrap();
    assert!(cloud.wait_subscribed(Duration::from_secs(20)).await);
    let v = vin("WP0ZZZ99ZTS392124");
    let mut car = Publisher::connect(broker.addr(), "mtls-car").await;
    car.send(&uplink(v, 1..=20, record)).await;
    car.settle().await;
    let m = cloud.metrics();
    wait_until(Duration::from_secs(20), "20 records applied", || {
        m.records_applied.load(Ordering::SeqCst) == 20
    })
    .await;
    cloud.shutdown().await.unwrap();
}

#[test]
fn unreadable_tls_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let c = rapport_cloud::config::Config {
        path: Some(dir.path().join("cloud.toml")),
        ..Default::default()
    };
    let error_of = |ca: &str| {
        let tls = Tls {
            ca: ca.into(),
            cert: None,
            key: None,
        };
        rapport_cloud::mqtt::tls_config(&c, &tls)
            .unwrap_err()
            .to_string()
    };
    let err = error_of("missing.pem");
    assert!(
        err.starts_with("broker.tls.ca: ") && err.contains("missing.pem"),
        "{err}"
    );
    let err = error_of("empty.pem");
    assert!(
        err.contains("empty.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
}
