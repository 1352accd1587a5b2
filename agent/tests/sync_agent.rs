//! The sync against real brokers: an embedded rumqttd started inside the test, and a real
//! mosquitto process (skipped with a message when `/usr/sbin/mosquitto` is absent, unless
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
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_agent::clock::SystemClock;
use rapport_agent::config::{Config, Loaded};
use rapport_agent::runtime::Core;
use rapport_agent::sync::{self, SyncHandle};
use rapport_kit::config::Check as _;
use rapport_shared::v1::downlink::{
    Downlink, DownlinkBody, DownlinkMessage, MaintenanceItem, ScheduleUpdate, ServiceRecorded,
};
use rapport_shared::v1::topic;
use rapport_shared::v1::uplink::{OdometerReading, RecordBody, SignalSource, Uplink};
use rapport_shared::{Odometer, Timestamp, Vin};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

const VIN: &str = "WVWZZZ1KZ8W012345";
const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// How long any one wait may take before the test fails (a hang, not a slowness check).
const PATIENCE: Duration = Duration::from_secs(90);

fn vin() -> Vin {
    VIN.parse().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The agent

/// The agent's config; `extra_sync` adds `[sync]` keys (default: a quick backoff).
fn agent_config(port: u16, extra_sync: &str) -> Loaded {
    let sync = if extra_sync.is_empty() {
        "backoff_min_ms = 100\nbackoff_max_ms = 1000"
    } else {
        extra_sync
    };
    let text = format!(
        r#"
[vehicle]
vin = "{VIN}"
line = "test-line"
category = "passenger"
delivered = "2021-03-15"

[[maintenance.items]]
id = "oil"
every_km = 15000
every_months = 12

[outbox]
max_records = 200000

[sync]
broker = "mqtt://127.0.0.1:{port}"
batch_max_age_ms = 50
{sync}
"#
    );
    let config = Config::from_toml("agent.toml", &text).unwrap();
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
                .map(|i| {
                    RecordBody::Odometer(OdometerReading {
                        odometer: Odometer::from_meters(10_000_000 + (made + i) * 100),
                        source: SignalSource::Obd,
                    })
                })
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
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Cloud {
    /// Connects, subscribes to every uplink, and returns once the broker confirmed.
    async fn connect(port: u16, seen: Option<Arc<Mutex<Seen>>>) -> Self {
        let mut options = MqttOptions::new(format!("cloud-{port}"), "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        client
            .subscribe(topic::UPLINK_FILTER, QoS::AtLeastOnce)
            .await
            .unwrap();
        let seen = seen.unwrap_or_default();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let sink = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let mut seen = sink.lock().unwrap();
                        match Uplink::decode(&p.payload) {
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
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        tokio::time::timeout(PATIENCE, subscribed)
            .await
            .unwrap()
            .unwrap();
        Self { seen, client, task }
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
        self.client
            .publish(topic::downlink(&vin()), QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    /// Disconnects; returns what it saw (for the next connection to add to).
    fn close(self) -> Arc<Mutex<Seen>> {
        self.task.abort();
        self.seen
    }
}

// ---------------------------------------------------------------------------------------------
// Brokers

/// An embedded rumqttd on `port`, on its own thread for the rest of the test process.
fn start_rumqttd(port: u16) {
    use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 1 << 20,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "v4".into(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some([("1".to_owned(), server)].into_iter().collect()),
        ..rumqttd::Config::default()
    };
    std::thread::spawn(move || {
        let mut broker = Broker::new(config);
        let _ = broker.start();
    });
    wait_port(port);
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < PATIENCE,
            "broker on {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A mosquitto process on a port of its own; killed when dropped.
struct Mosquitto {
    child: Option<Child>,
    conf: PathBuf,
    port: u16,
}

impl Mosquitto {
    /// None (after saying so) when mosquitto is not installed and not required.
    fn available() -> bool {
        if Path::new(MOSQUITTO).exists() {
            return true;
        }
        assert!(
            std::env::var("RAPPORT_REQUIRE_MOSQUITTO").as_deref() != Ok("1"),
            "{MOSQUITTO} is missing and RAPPORT_REQUIRE_MOSQUITTO=1"
        );
        println!("skipped: {MOSQUITTO} is not installed (apt-get install mosquitto)");
        false
    }

    fn start(dir: &Path) -> Self {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 100000\nmax_inflight_messages 20\n"
            ),
        )
        .unwrap();
        let mut m = Self {
            child: None,
            conf,
            port,
        };
        m.restart();
        m
    }

    fn restart(&mut self) {
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(self.port);
    }

    fn started(mut self) -> Self {
        self.restart();
        self
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped process must be continued to die cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttd_receives_the_outbox_and_it_empties() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    start_rumqttd(port);
    let cloud = Cloud::connect(port, None).await;
    let agent = Agent::start(dir.path(), &agent_config(port, ""));
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
    let port = free_port();
    let agent = Agent::start(dir.path(), &agent_config(port, ""));
    let seqs = agent.produce(10_000);
    // Nothing can leave: the agent keeps failing to connect.
    wait_for("failed connection attempts", || {
        agent.counters().reconnects >= 2
    })
    .await;
    assert!(agent.outbox_len() >= 10_000);
    assert_eq!(agent.counters().acked_records, 0);

    start_rumqttd(port);
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
    if !Mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let cloud = Cloud::connect(broker.port, None).await;
    let agent = Agent::start(&dir.path().join("agent"), &agent_config(broker.port, ""));
    wait_for("the agent connected", || agent.counters().connected).await;
    wait_for("the start heartbeat at the cloud", || {
        cloud.seen.lock().unwrap().heartbeats == 1
    })
    .await;
    wait_for("the start heartbeat acked", || agent.outbox_len() == 0).await;

    // The broker freezes: it cannot acknowledge anything.
    broker.signal("-STOP");
    let seqs = agent.produce(300);
    wait_for("publishes handed to the client", || {
        agent.counters().published_records >= 300
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(agent.outbox_len(), 300, "records left without an ack");

    broker.signal("-CONT");
    wait_for("every seq at the cloud", || cloud.has_all(&seqs)).await;
    wait_for("an empty outbox", || agent.outbox_len() == 0).await;
    agent.stop().await;
    let _ = cloud.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_mid_drain_loses_nothing() {
    if !Mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(dir.path());
    let cloud = Cloud::connect(broker.port, None).await;
    // The agent waits at least 1.5 s before reconnecting, so the cloud's new subscription
    // (made within milliseconds of the restart) is in place before anything is published.
    let agent = Agent::start(
        &dir.path().join("agent"),
        &agent_config(
            broker.port,
            "backoff_min_ms = 1500\nbackoff_max_ms = 3000\nbatch_max_records = 100\ninflight = 5",
        ),
    );
    let seqs = agent.produce(20_000);
    wait_for("part of the drain", || cloud.count() >= 2_000).await;
    broker.kill();
    let seen = cloud.close();
    // Once the agent has seen the connection drop, every PUBACK the dead broker sent has been
    // processed: its counters then say how far the broker acknowledged.
    wait_for("the agent saw the broker go", || {
        !agent.counters().connected
    })
    .await;
    let at_kill = agent.counters();
    broker.restart();
    let cloud = Cloud::connect(broker.port, Some(seen)).await;
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
    if !Mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let agent_dir = dir.path().join("agent");
    let loaded = agent_config(broker.port, "");
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
    let cloud = Cloud::connect(broker.port, None).await;
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
    if !Mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let agent = Agent::start(&dir.path().join("agent"), &agent_config(broker.port, ""));
    wait_for("the downlink subscription", || {
        agent.counters().subscribed == 1
    })
    .await;
    let cloud = Cloud::connect(broker.port, None).await;
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

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate for the VIN with
/// the openssl command; None (after saying so) when openssl is missing.
fn make_pki(dir: &Path) -> Option<()> {
    if Command::new("openssl").arg("version").output().is_err() {
        println!("skipped: no openssl command to make test certificates");
        return None;
    }
    let run = |args: &str| {
        let ok = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl {args}");
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for ca in ["ca", "other-ca"] {
        run(&format!(
            "req -x509 {ec} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN={ca}"
        ));
    }
    run(&format!(
        "req {ec} -keyout server.key -out server.csr -subj /CN=broker"
    ));
    run(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext",
    );
    run(&format!(
        "req {ec} -keyout agent.key -out agent.csr -subj /CN={VIN}"
    ));
    run(
        "x509 -req -in agent.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out agent.pem -days 2 -extfile client.ext",
    );
    Some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_the_fleet_ca_and_refused_with_another() {
    if !Mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    if make_pki(&pki).is_none() {
        return;
    }
    // mosquitto drops to its own user before reading the certificates.
    for d in [dir.path(), pki.as_path()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in ["server.key", "server.pem", "ca.pem"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(pki.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let port = free_port();
    let conf = dir.path().join("mosquitto-tls.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             cafile {p}/ca.pem\ncertfile {p}/server.pem\nkeyfile {p}/server.key\n\
             require_certificate true\nuse_identity_as_username true\n",
            p = pki.display()
        ),
    )
    .unwrap();
    let _broker = Mosquitto {
        child: None,
        conf,
        port,
    }
    .started();

    let config_with = |ca: &str| {
        let text = format!(
            "[vehicle]\nvin = \"{VIN}\"\nline = \"t\"\ncategory = \"passenger\"\n\
             delivered = \"2021-03-15\"\n[sync]\nbroker = \"mqtts://127.0.0.1:{port}\"\n\
             backoff_min_ms = 100\nbackoff_max_ms = 500\n\
             [sync.tls]\nca = \"{ca}\"\ncert = \"agent.pem\"\nkey = \"agent.key\"\n"
        );
        let path = pki.join(format!("agent-{ca}.toml"));
        std::fs::write(&path, text).unwrap();
        rapport_agent::config::load(&path).unwrap()
    };
    let good = Agent::start(&dir.path().join("good"), &config_with("ca.pem"));
    wait_for("a TLS connection", || good.counters().connected).await;
    wait_for("the heartbeat acked over TLS", || {
        good.counters().acked_records >= 1 && good.outbox_len() == 0
    })
    .await;
    good.stop().await;

    // Trusting another CA: the broker's certificate is refused, again and again.
    let bad = Agent::start(&dir.path().join("bad"), &config_with("other-ca.pem"));
    wait_for("refused attempts", || bad.counters().reconnects >= 3).await;
    assert_eq!(bad.counters().connects, 0);
    assert!(bad.outbox_len() >= 1, "the heartbeat stays in the outbox");
    bad.stop().await;
}
