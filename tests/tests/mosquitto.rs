//! The Mosquitto harness against the real broker: QoS 1 publish/subscribe, a restart on the
//! same port, persistent sessions across a restart with and without persistence, a crash, and
//! the process gone after drop. Skips (with a line saying so) where mosquitto is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;

use common::{QUIET, STEP, connect, options};
use rapport_testbed::mosquitto::{Mosquitto, Options};

#[tokio::test]
async fn qos1_round_trip_and_restart_on_the_same_port() {
    let Some(mut broker) = Mosquitto::start(Options::default()).unwrap() else {
        return;
    };
    let port = broker.port();
    assert_eq!(broker.addr().to_string(), format!("127.0.0.1:{port}"));

    let mut sub = connect(options("sub", port, true)).await.unwrap();
    sub.subscribe("t/#").await;
    let mut publisher = connect(options("pub", port, true)).await.unwrap();
    publisher.publish("t/1", "before").await;
    assert_eq!(
        sub.message(STEP).await,
        Some(("t/1".into(), "before".into()))
    );

    broker.restart().unwrap();
    assert_eq!(broker.port(), port);
    assert!(broker.is_running());
    // The old connections were cut: their event loops ended.
    assert_eq!(sub.message(STEP).await, None);

    let mut sub = connect(options("sub", port, true)).await.unwrap();
    sub.subscribe("t/#").await;
    let mut publisher = connect(options("pub", port, true)).await.unwrap();
    publisher.publish("t/2", "after").await;
    assert_eq!(
        sub.message(STEP).await,
        Some(("t/2".into(), "after".into()))
    );
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
