//! The sync against real brokers: an embedded rumqttd started inside the test, and a real
//! mosquitto process (skipped with a message when mosquitto is not installed, unless
//! `RAPPORT_REQUIRE_MOSQUITTO=1`). The agent is the library — a real [`Core`] on a sled store in
//! a temp dir and [`sync::spawn`] — and the cloud is a plain rumqttc subscriber in the test that
//! decodes every uplink and keeps the seqs it saw.
//!
//! What is shown: the outbox is delivered and emptied; nothing leaves it while the broker
//! cannot acknowledge (mosquitto stopped with SIGSTOP); a backlog of 10,000 records made while
//! the broker is down arrives once it is up; a broker killed and restarted mid-drain loses
//! nothing (seqs may repeat); a downlink published twice while the agent is offline arrives
//! on reconnect (persistent session) and is applied once, and garbage is refused and acked;
//! a schedule that fails the config's checks is refused, counted and acked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_agent::clock::SystemClock;
use rapport_agent::config::{Loaded, Sync, SyncTls};
use rapport_agent::runtime::Core;
use rapport_agent::sync::{self, SyncHandle};
use rapport_harness::mosquitto::{Mosquitto, Options, Tls};
use rapport_harness::mqtt::Subscriber;
use rapport_harness::pki::Ca;
use rapport_harness::wait::{free_port, loopback};
use rapport_harness::{agent, records};
use rapport_kit::config::Check as _;
use rapport_shared::v1::downlink::{
    Downlink, DownlinkBody, DownlinkMessage, MaintenanceItem, ScheduleUpdate, ServiceRecorded,
};
use rapport_shared::v1::topic;
use rapport_shared::v1::uplink::{RecordBody, Uplink};
use rapport_shared::{Odometer, Timestamp, Vin};

const VIN: &str = "WVWZZZ1KZ8W012345";
/// How long any one wait may take before the test fails (a hang, not a slowness check).
const PATIENCE: Duration = Duration::from_secs(90);

fn vin() -> Vin {
    VIN.parse().unwrap()
}

async fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    rapport_harness::wait::wait_until(PATIENCE, what, ok).await;
}

// ---------------------------------------------------------------------------------------------
// The agent

/// The agent's config: the example's vehicle with one maintenance item, a large outbox and
/// `[sync]` to `port` with quick batches and a quick backoff, changed by `tune`.
fn agent_config(port: u16, tune: impl FnOnce(&mut Sync)) -> Loaded {
    let mut config = agent::bare().unwrap();
    config.vehicle.line = "test-line".into();
    config.maintenance.items = vec![MaintenanceItem {
        id: "oil".into(),
        every_km: Some(15_000),
        every_months: Some(12),
        ..MaintenanceItem::default()
    }];
    config.outbox.max_records = 200_000;
    let mut sync = Sync {
        batch_max_age_ms: 50,
        backoff_min_ms: 100,
        backoff_max_ms: 1000,
        ..agent::sync_to(&format!("mqtt://127.0.0.1:{port}")).unwrap()
    };
    tune(&mut sync);
    config.sync = Some(sync);
    assert!(config.problems("").is_empty(), "{:?}", config.problems(""));
    Loaded { config, dbc: None }
}

struct Agent {
    core: Arc<Core>,
    handle: Option<SyncHandle>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Agent {
    fn start(dir: &Path, loaded: &Loaded) -> Self {
        let core = Arc::new(Core::open(loaded, dir, Arc::new(SystemClock::default())).unwrap());
        let settings = rapport_agent::settings::sync(&loaded.config)
            .unwrap()
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = sync::spawn(Arc::clone(&core), settings, async move {
            let _ = stopped.await;
        });
        Self {
            core,
            handle: Some(handle),
            stop: Some(stop),
        }
    }

    fn counters(&self) -> sync::CounterSnapshot {
        self.handle.as_ref().unwrap().counters()
    }

    fn outbox_len(&self) -> u64 {
        self.core.with(|_, store| store.outbox_len())
    }

    /// Appends `n` odometer records in commits of 1,000; returns their seqs.
    fn produce(&self, n: u64) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut made = 0;
        while made < n {
            let chunk = (n - made).min(1_000);
            let first = self.core.with(|_, store| store.next_seq());
            let bodies = (0..chunk)
                .map(|i| records::odometer_m(10_000_000 + (made + i) * 100))
                .collect();
            self.core.append(bodies).unwrap();
            seqs.extend(first..first + chunk);
            made += chunk;
        }
        seqs
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().join().await.unwrap();
        self.core.flush().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The cloud: a subscriber that decodes uplinks

#[derive(Default)]
struct Seen {
    seqs: BTreeSet<u64>,
    records: u64,
    heartbeats: u64,
    undecodable: u64,
}

struct Cloud {
    seen: Arc<Mutex<Seen>>,
    subscriber: Subscriber,
}

impl Cloud {
    /// Connects, subscribes to every uplink, and returns once the broker confirmed.
    async fn connect(port: u16, seen: Option<Arc<Mutex<Seen>>>) -> Self {
        let seen = seen.unwrap_or_default();
        let sink = Arc::clone(&seen);
        let id = format!("cloud-{port}");
        let subscriber = Subscriber::start(
            loopback(port),
            &id,
            topic::UPLINK_FILTER,
            move |_, payload| {
                let mut seen = sink.lock().unwrap();
                match Uplink::decode(payload) {
                    Ok(up) if up.vin.as_str() == VIN => {
                        for r in up.records {
                            seen.records += 1;
                            if matches!(r.body, RecordBody::Heartbeat(_)) {
                                seen.heartbeats += 1;
                            }
                            seen.seqs.insert(r.seq);
                        }
                    }
                    _ => seen.undecodable += 1,
                }
            },
        )
        .await
        .unwrap();
        Self { seen, subscriber }
    }

    fn has_all(&self, seqs: &[u64]) -> bool {
        let seen = self.seen.lock().unwrap();
        seqs.iter().all(|s| seen.seqs.contains(s))
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().seqs.len()
    }

    fn missing(&self, seqs: &[u64]) -> Vec<u64> {
        let seen = self.seen.lock().unwrap();
        seqs.iter()
            .filter(|s| !seen.seqs.contains(s))
            .copied()
            .collect()
    }

    async fn publish_downlink(&self, payload: Vec<u8>) {
        self.subscriber
            .publish(&topic::downlink(&vin()), payload)
            .await;
    }

    /// Disconnects; returns what it saw (for the next connection to add to).
    fn close(self) -> Arc<Mutex<Seen>> {
        drop(self.subscriber);
        self.seen
    }
}

// ---------------------------------------------------------------------------------------------
// Brokers

/// A mosquitto of the test's own with room for a long backlog; None (after the harness's skip
/// line) when it is not installed and not required.
fn mosquitto(options: Options) -> Option<Mosquitto> {
    Mosquitto::start(
        options
            .config_line("max_queued_messages 100000")
            .config_line("max_inflight_messages 20"),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttd_receives_the_outbox_and_it_empties() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    rapport_harness::rumqttd::start(port).unwrap();
    let cloud = Cloud::connect(port, None).await;
    let agent = Agent::start(dir.path(), &agent_config(port, |_| {}));
    let seqs = agent.produce(2_000);
    wait_for("every seq at the cloud", || cloud.has_all(&seqs)).await;
    wait_for("an empty outbox", || agent.outbox_len() == 0).await;
    let c = agent.counters();
    assert!(c.connected && c.connects == 1, "{c:?}");
    assert!(c.acked_records >= 2_000, "{c:?}");
    // 500 records a batch at most: at least 4 publishes for 2,000.
    assert!(c.published >= 4, "{c:?}");
    // The heartbeat written at start went up too.
    wait_for("the start heartbeat", || {
        cloud.seen.lock().unwrap().heartbeats >= 1
    })
    .await;
    assert_eq!(cloud.seen.lock().unwrap().undecodable, 0);
    agent.stop().await;
    let _ = cloud.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_made_while_the_broker_is_down_arrives_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let agent = Agent::start(dir.path(), &agent_config(port, |_| {}));
    let seqs = agent.produce(10_000);
    // Nothing can leave: the agent keeps failing to connect.
    wait_for("failed connection attempts", || {
        agent.counters().reconnects >= 2
    })
    .await;
    assert!(agent.outbox_len() >= 10_000);
    assert_eq!(agent.counters().acked_records, 0);

    rapport_harness::rumqttd::start(port).unwrap();
    let cloud = Cloud::connect(port, None).await;
    wait_for("all 10,000 records at the cloud", || cloud.has_all(&seqs)).await;
    wait_for("an empty outbox", || agent.outbox_len() == 0).await;
    let c = agent.counters();
    assert!(c.connects >= 1 && c.acked_records >= 10_000, "{c:?}");
    agent.stop().await;
    let _ = cloud.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_leaves_the_outbox_until_the_broker_acknowledges() {
    let Some(broker) = mosquitto(Options::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::connect(broker.port(), None).await;
    let agent = Agent::start(
        &dir.path().join("agent"),
        &agent_config(broker.port(), |_| {}),
    );
    wait_for("the agent connected", || agent.counters().connected).await;
    wait_for("the start heartbeat at the cloud", || {
        cloud.seen.lock().unwrap().heartbeats == 1
    })
    .await;
    wait_for("the start heartbeat acked", || agent.outbox_len() == 0).await;

    // The broker freezes: it cannot acknowledge anything.
    broker.pause().unwrap();
    let seqs = agent.produce(300);
    wait_for("publishes handed to the client", || {
        agent.counters().published_records >= 300
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(agent.outbox_len(), 300, "records left without an ack");

    broker.resume().unwrap();
    wait_for("every seq at the cloud", || cloud.has_all(&seqs)).await;
    wait_for("an empty outbox", || agent.outbox_len() == 0).await;
    agent.stop().await;
    let _ = cloud.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_mid_drain_loses_nothing() {
    let Some(mut broker) = mosquitto(Options::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::connect(broker.port(), None).await;
    // The agent waits at least 1.5 s before reconnecting, so the cloud's new subscription
    // (made within milliseconds of the restart) is in place before anything is published.
    let agent = Agent::start(
        &dir.path().join("agent"),
        &agent_config(broker.port(), |sync| {
            sync.backoff_min_ms = 1500;
            sync.backoff_max_ms = 3000;
            sync.batch_max_records = 100;
            sync.inflight = 5;
        }),
    );
    let seqs = agent.produce(20_000);
    wait_for("part of the drain", || cloud.count() >= 2_000).await;
    broker.crash().unwrap();
    let seen = cloud.close();
    // Once the agent has seen the connection drop, every PUBACK the dead broker sent has been
    // processed: its counters then say how far the broker acknowledged.
    wait_for("the agent saw the broker go", || {
        !agent.counters().connected
    })
    .await;
    let at_kill = agent.counters();
    broker.restart().unwrap();
    let cloud = Cloud::connect(broker.port(), Some(seen)).await;
    assert_eq!(
        agent.counters().connects,
        1,
        "the agent reconnected before the cloud subscribed: the test's timing assumption broke"
    );
    wait_for("an empty outbox", || agent.outbox_len() == 0).await;
    let start = Instant::now();
    while !cloud.has_all(&seqs) && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = cloud.missing(&seqs);
    let c = agent.counters();
    // The agent's promise: nothing it had not seen acknowledged is lost — it resends all of
    // it. Acks come in order, so the acknowledged records are seqs 1..=acked_records (the start
    // heartbeat is seq 1). A broker SIGKILLed without persistence can still lose what it had
    // acknowledged but not yet forwarded to the cloud (at most the publishes in flight,
    // inflight × batch_max_records = 500): no client can recover that; brokers in production
    // run with persistence (docs/fleet-engineer.md).
    let acked_upto = at_kill.acked_records;
    let lost_by_agent: Vec<u64> = missing
        .iter()
        .copied()
        .filter(|s| *s > acked_upto)
        .collect();
    assert!(
        lost_by_agent.is_empty(),
        "{} seqs the broker never acknowledged were lost (first {:?}); at the kill {at_kill:?}, now {c:?}",
        lost_by_agent.len(),
        lost_by_agent.first()
    );
    assert!(
        missing.len() <= 500,
        "{} seqs lost, more than the publishes in flight could hold (first {:?}); at the kill {at_kill:?}, now {c:?}",
        missing.len(),
        missing.first()
    );
    if !missing.is_empty() {
        println!(
            "restart: the killed broker lost {} records it had acknowledged but not forwarded \
             (seqs {:?}..={:?})",
            missing.len(),
            missing.first(),
            missing.last()
        );
    }
    assert!(c.connects >= 2 && c.reconnects >= 1, "{c:?}");
    println!(
        "restart: {} records in flight at the kill were resent",
        c.resent_records
    );
    agent.stop().await;
    let _ = cloud.close();
}

fn service_downlink(id: u64, for_vin: &Vin) -> Vec<u8> {
    Downlink {
        vin: *for_vin,
        messages: vec![DownlinkMessage {
            id,
            at: Timestamp::from_millis(1_700_000_000_000),
            body: DownlinkBody::ServiceRecorded(ServiceRecorded {
                items: vec!["oil".into()],
                performed_at: Timestamp::from_millis(
                    rapport_agent::clock::wall_now().as_millis() - 3_600_000,
                ),
                odometer: Some(Odometer::from_km(12_000)),
                partner: "Garage Nord".into(),
            }),
        }],
    }
    .encode()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downlink_sent_while_offline_arrives_on_reconnect_and_applies_once() {
    let Some(broker) = mosquitto(Options::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("agent");
    let loaded = agent_config(broker.port(), |_| {});
    // First run: the agent connects and subscribes in its persistent session, then stops.
    let agent = Agent::start(&agent_dir, &loaded);
    wait_for("the agent connected", || agent.counters().connected).await;
    wait_for("the start heartbeat acked", || {
        agent.counters().acked_records >= 1 && agent.outbox_len() == 0
    })
    .await;
    wait_for("the downlink subscription", || {
        agent.counters().subscribed == 1
    })
    .await;
    agent.stop().await;

    // While it is offline: the same downlink twice, one for another car, one of garbage.
    let cloud = Cloud::connect(broker.port(), None).await;
    cloud.publish_downlink(service_downlink(77, &vin())).await;
    cloud.publish_downlink(service_downlink(77, &vin())).await;
    cloud
        .publish_downlink(service_downlink(78, &"WP0ZZZ99ZTS392124".parse().unwrap()))
        .await;
    cloud.publish_downlink(b"\x01garbage".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Second run, same store and client id: the broker delivers what waited.
    let agent = Agent::start(&agent_dir, &loaded);
    wait_for("the downlinks handled", || {
        let c = agent.counters();
        c.downlinks_applied + c.downlinks_rejected >= 4
    })
    .await;
    let c = agent.counters();
    assert_eq!((c.downlinks_applied, c.downlinks_rejected), (2, 2), "{c:?}");
    let (applied, services) = agent.core.with(|rules, _| {
        let m = rules.memory();
        (m.applied_downlinks.clone(), m.services.clone())
    });
    assert!(
        applied.contains(&77) && !applied.contains(&78),
        "{applied:?}"
    );
    assert_eq!(services.len(), 1, "applied more than once: {services:?}");
    agent.stop().await;

    // Third run: everything was acknowledged, so nothing is redelivered.
    let agent = Agent::start(&agent_dir, &loaded);
    wait_for("the agent connected", || agent.counters().connected).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = agent.counters();
    assert_eq!((c.downlinks_applied, c.downlinks_rejected), (0, 0), "{c:?}");
    assert_eq!(
        c.subscribed, 0,
        "the session (and its subscription) should have been resumed"
    );
    assert_eq!(agent.core.with(|r, _| r.memory().services.len()), 1);
    agent.stop().await;
    let _ = cloud.close();
}

/// A schedule the config's checks would refuse, sent by the cloud: refused, counted with the
/// rejected downlinks, recorded as applied (acknowledged, never redelivered), and the config's
/// schedule stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_that_fails_its_checks_is_refused_and_counted() {
    let Some(broker) = mosquitto(Options::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(
        &dir.path().join("agent"),
        &agent_config(broker.port(), |_| {}),
    );
    wait_for("the downlink subscription", || {
        agent.counters().subscribed == 1
    })
    .await;
    let cloud = Cloud::connect(broker.port(), None).await;
    let bad = Downlink {
        vin: vin(),
        messages: vec![DownlinkMessage {
            id: 91,
            at: Timestamp::from_millis(1_700_000_000_000),
            body: DownlinkBody::ScheduleUpdate(ScheduleUpdate {
                line: "test-line".into(),
                items: vec![MaintenanceItem {
                    id: "oil".into(),
                    every_km: Some(0),
                    ..MaintenanceItem::default()
                }],
            }),
        }],
    };
    cloud.publish_downlink(bad.encode().unwrap()).await;
    wait_for("the downlink handled", || {
        agent.counters().downlinks_rejected >= 1
    })
    .await;
    let c = agent.counters();
    assert_eq!((c.downlinks_applied, c.downlinks_rejected), (0, 1), "{c:?}");
    let (applied, every_km) = agent.core.with(|rules, _| {
        (
            rules.memory().applied_downlinks.contains(&91),
            rules.schedule()[0].every_km,
        )
    });
    assert!(applied, "a refused downlink is still recorded as applied");
    assert_eq!(every_km, Some(15_000), "the config's schedule stays");
    agent.stop().await;
    let _ = cloud.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_the_fleet_ca_and_refused_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let other = pki.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let ca = Ca::generate(&pki, "ca").unwrap();
    let server = ca.server().unwrap();
    let car = ca.client(VIN).unwrap();
    let other_ca = Ca::generate(&other, "other-ca").unwrap();
    let tls = Tls::mutual(ca.cert(), &server.cert, &server.key);
    let Some(broker) = mosquitto(Options::default().tls(tls)) else {
        return;
    };
    let port = broker.port();

    let config_with = |name: &str, ca: &Path| {
        let mut config = agent::bare().unwrap();
        config.vehicle.line = "t".into();
        config.sync = Some(Sync {
            backoff_min_ms: 100,
            backoff_max_ms: 500,
            tls: Some(SyncTls {
                ca: ca.to_path_buf(),
                cert: Some(car.cert.clone()),
                key: Some(car.key.clone()),
            }),
            ..agent::sync_to(&format!("mqtts://127.0.0.1:{port}")).unwrap()
        });
        agent::load(&config, &dir.path().join(name)).unwrap()
    };
    let good = Agent::start(
        &dir.path().join("good"),
        &config_with("good-config", ca.cert()),
    );
    wait_for("a TLS connection", || good.counters().connected).await;
    wait_for("the heartbeat acked over TLS", || {
        good.counters().acked_records >= 1 && good.outbox_len() == 0
    })
    .await;
    good.stop().await;

    // Trusting another CA: the broker's certificate is refused, again and again.
    let bad = Agent::start(
        &dir.path().join("bad"),
        &config_with("bad-config", other_ca.cert()),
    );
    wait_for("refused attempts", || bad.counters().reconnects >= 3).await;
    assert_eq!(bad.counters().connects, 0);
    assert!(bad.outbox_len() >= 1, "the heartbeat stays in the outbox");
    bad.stop().await;
}
