//! The Mosquitto harness against the real broker: QoS 1 publish/subscribe, a restart on the
//! same port, persistent sessions across a restart with and without persistence, a crash, the
//! process gone after drop, a freeze and thaw, a second (TLS) listener and a config of the
//! test's own. Skips (with a line saying so) where mosquitto is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpStream;

use rapport_harness::mosquitto::{Mosquitto, Options, Tls};
use rapport_harness::mqtt::{Client, QUIET, STEP, connect, options, tls, tls_options};
use rapport_harness::pki::Ca;

/// A subscriber to `t/#` and a publisher on `port`, and `payload` on `topic` from one to the
/// other.
async fn pair(port: u16, topic: &str, payload: &str) -> (Client, Client) {
    let mut sub = connect(options("sub", port, true)).await.unwrap();
    sub.subscribe("t/#").await;
    let mut publisher = connect(options("pub", port, true)).await.unwrap();
    publisher.publish(topic, payload).await;
    assert_eq!(
        sub.message(STEP).await,
        Some((topic.into(), payload.into()))
    );
    (sub, publisher)
}

#[tokio::test]
async fn qos1_round_trip_and_restart_on_the_same_port() {
    let Some(mut broker) = Mosquitto::start(Options::default()).unwrap() else {
        return;
    };
    let port = broker.port();
    assert_eq!(broker.addr().to_string(), format!("127.0.0.1:{port}"));

    let (mut sub, _publisher) = pair(port, "t/1", "before").await;

    broker.restart().unwrap();
    assert_eq!(broker.port(), port);
    assert!(broker.is_running());
    // The old connections were cut: their event loops ended.
    assert_eq!(sub.message(STEP).await, None);

    let (sub, publisher) = pair(port, "t/2", "after").await;
    publisher.disconnect().await;
    sub.disconnect().await;
}

/// A persistent-session subscriber subscribes and leaves; a QoS 1 message is published for it;
/// the broker restarts; the subscriber comes back. Returns its session flag and what it got.
async fn offline_message_across_restart(persistence: bool) -> Option<(bool, Option<String>)> {
    let mut broker = Mosquitto::start(Options::default().persistence(persistence)).unwrap()?;
    let port = broker.port();

    let mut sub = connect(options("vehicle-sub", port, false)).await.unwrap();
    assert!(!sub.session_present);
    sub.subscribe("rapport/v1/X/down").await;
    sub.disconnect().await;

    let mut publisher = connect(options("cloud-pub", port, true)).await.unwrap();
    publisher.publish("rapport/v1/X/down", "queued").await;
    publisher.disconnect().await;

    broker.restart().unwrap();
    let mut sub = connect(options("vehicle-sub", port, false)).await.unwrap();
    // Expected: at once with persistence; never without (listen a while to be sure).
    let wait = if persistence { STEP } else { QUIET };
    let got = sub.message(wait).await.map(|(_, payload)| payload);
    let present = sub.session_present;
    sub.disconnect().await;
    Some((present, got))
}

#[tokio::test]
async fn a_persistent_session_and_its_queued_message_survive_a_restart_with_persistence() {
    let Some(with) = offline_message_across_restart(true).await else {
        return;
    };
    assert_eq!(with, (true, Some("queued".into())));
    // The control: without persistence the restart forgets the session and its queue, so the
    // delivery above is the persistence file's doing, not a client-side retry.
    let without = offline_message_across_restart(false).await.unwrap();
    assert_eq!(without, (false, None));
}

#[tokio::test]
async fn a_crash_stops_the_port_and_drop_kills_the_process() {
    let Some(mut broker) = Mosquitto::start(Options::default()).unwrap() else {
        return;
    };
    let addr = broker.addr();
    broker.crash().unwrap();
    assert!(!broker.is_running());
    assert!(TcpStream::connect(addr).is_err());

    broker.restart().unwrap();
    let mut client = connect(options("after-crash", broker.port(), true))
        .await
        .unwrap();
    client.subscribe("x").await;
    client.publish("x", "alive").await;
    assert_eq!(
        client.message(STEP).await,
        Some(("x".into(), "alive".into()))
    );

    let dir = broker.dir().to_path_buf();
    assert!(
        broker.log_tail().contains("mosquitto version"),
        "{}",
        broker.log_tail()
    );
    drop(broker);
    assert!(TcpStream::connect(addr).is_err());
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_paused_broker_answers_nothing_until_resumed() {
    let Some(broker) = Mosquitto::start(Options::default()).unwrap() else {
        return;
    };
    let mut client = connect(options("frozen", broker.port(), true))
        .await
        .unwrap();
    client.subscribe("f").await;
    broker.pause().unwrap();
    client
        .client
        .publish("f", rumqttc::QoS::AtLeastOnce, false, b"held".to_vec())
        .await
        .unwrap();
    assert_eq!(client.message(QUIET).await, None);
    broker.resume().unwrap();
    assert_eq!(
        client.message(STEP).await,
        Some(("f".into(), "held".into()))
    );
}

#[tokio::test]
async fn a_tls_listener_beside_the_plain_one() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::generate(pki.path(), "test CA").unwrap();
    let server = ca.server().unwrap();
    let car = ca.client("WVWZZZ1JZXW000001").unwrap();
    let listener = Tls::mutual(ca.cert(), &server.cert, &server.key);
    let Some(broker) = Mosquitto::start(Options::default().tls_listener(listener)).unwrap() else {
        return;
    };
    let tls_port = broker.tls_port().unwrap();
    assert_ne!(tls_port, broker.port());
    let mut plain = connect(options("plain", broker.port(), true))
        .await
        .unwrap();
    plain.subscribe("t").await;
    let config = tls(ca.cert_pem(), Some((&car.cert_pem, &car.key_pem))).unwrap();
    let mut secure = connect(tls_options("secure", tls_port, config))
        .await
        .unwrap();
    secure.publish("t", "over tls").await;
    assert_eq!(
        plain.message(STEP).await,
        Some(("t".into(), "over tls".into()))
    );
    let anonymous = tls(ca.cert_pem(), None).unwrap();
    assert!(
        connect(tls_options("anon", tls_port, anonymous))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_config_of_the_tests_own_with_the_port_put_in() {
    let own = Options::default().config_file(|port| {
        format!("allow_anonymous true\nlog_dest stderr\nlog_type all\nlistener {port} 127.0.0.1\n")
    });
    let Some(broker) = Mosquitto::start(own).unwrap() else {
        return;
    };
    let config = std::fs::read_to_string(broker.dir().join("mosquitto.conf")).unwrap();
    assert!(
        config.starts_with("# written by rapport_harness::mosquitto\nuser root\n"),
        "{config}"
    );
    assert!(
        config.contains(&format!("listener {} 127.0.0.1", broker.port())),
        "{config}"
    );
    connect(options("own", broker.port(), true)).await.unwrap();
    let before = broker.log().matches("Reloading config").count();
    broker.reload().unwrap();
    rapport_harness::wait::wait_for(STEP, "the reload in the log", || {
        broker.log().matches("Reloading config").count() > before
    });
}
