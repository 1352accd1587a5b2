//! Shared by the cloud's integration tests: a real Mosquitto process on a free port, a plain
//! rumqttc publisher (a stand-in for agents and for hostile clients), record builders, HTTP
//! helpers, and waiting with a deadline.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rapport_cloud::config::Config;
use rapport_shared::{
    Dtc, DtcEvent, EngineHours, EngineHoursReading, ObdCode, Odometer, OdometerReading, Record,
    RecordBody, Severity, SignalSource, Timestamp, Uplink, Vin,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A free TCP port on loopback (bind, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Mosquitto broker of our own on a free port; killed on drop.
pub struct Mosquitto {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts Mosquitto, or returns `None` (after printing a skip line) when it is not
    /// installed, unless `RAPPORT_REQUIRE_MOSQUITTO=1`, which makes its absence a failure.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, "")
    }

    /// As [`Mosquitto::start`], with more config lines after the plain listener's (another
    /// listener, say).
    pub fn start_with(test: &str, extra: &str) -> Option<Self> {
        if !Path::new(MOSQUITTO).exists() {
            if std::env::var("RAPPORT_REQUIRE_MOSQUITTO").as_deref() == Ok("1") {
                panic!("{MOSQUITTO} not found and RAPPORT_REQUIRE_MOSQUITTO=1");
            }
            println!("SKIP {test}: {MOSQUITTO} not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        // Sessions kept in memory for the broker's life; offline queues unbounded (the
        // default of 1000 messages would drop a long backlog); packets up to 1 MiB, the
        // cloud client's limit.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 100\nmax_packet_size 1048576\n\
                 log_dest stderr\nlog_type error\nlog_type warning\n{extra}"
            ),
        )
        .unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut m = Self {
            child,
            addr,
            _dir: dir,
        };
        wait_for(Duration::from_secs(10), "mosquitto listening", || {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("mosquitto exited: {status} (its errors are above)");
            }
            TcpStream::connect(addr).is_ok()
        });
        Some(m)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 10 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Async version of [`wait_for`].
pub async fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls an async condition every 20 ms until it holds; panics naming `what` after `timeout`.
pub async fn poll_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which broker a test runs against.
#[derive(Clone, Copy, Debug)]
pub enum BrokerKind {
    /// The cloud's own rumqttd.
    Embedded,
    /// An external Mosquitto at this address.
    External(SocketAddr),
}

/// A cloud config for tests: API and embedded broker on free ports, the store in `dir`.
pub fn config(dir: &Path, broker: BrokerKind, client_id: &str) -> Config {
    let mut c = Config::default();
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c.store.path = dir.join("store");
    c.api.operator_token = Some(OPERATOR.to_owned());
    c.broker.client_id = client_id.to_owned();
    match broker {
        BrokerKind::Embedded => {
            c.broker.embedded = true;
            c.broker.listen = Some("127.0.0.1:0".parse().unwrap());
        }
        BrokerKind::External(addr) => {
            c.broker.embedded = false;
            c.broker.url = Some(format!("mqtt://{addr}"));
        }
    }
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    c
}

/// A plain MQTT client publishing QoS1 and counting the broker's acks.
pub struct Publisher {
    pub client: AsyncClient,
    acked: Arc<AtomicU64>,
    sent: u64,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_max_packet_size(2 << 20, 2 << 20)
            .set_keep_alive(Duration::from_secs(30))
            .set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(o, 1000);
        let acked = Arc::new(AtomicU64::new(0));
        let a = Arc::clone(&acked);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Self {
            client,
            acked,
            sent: 0,
            task,
        }
    }

    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        self.sent += 1;
    }

    pub async fn send(&mut self, up: &Uplink) {
        let topic = rapport_shared::topic::uplink(&up.vin);
        self.publish(&topic, up.encode().unwrap()).await;
    }

    /// Waits until the broker acked everything published.
    pub async fn settle(&self) {
        let acked = Arc::clone(&self.acked);
        let sent = self.sent;
        wait_until(Duration::from_secs(30), "broker acks", || {
            acked.load(Ordering::SeqCst) >= sent
        })
        .await;
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn vin(s: &str) -> Vin {
    s.parse().unwrap()
}

/// A varied record for `seq`: mostly odometer readings (km = seq), with engine hours, a DTC
/// appearing and clearing, and a record kind from the future.
pub fn record(seq: u64) -> Record {
    let at = Timestamp::from_millis(1_750_000_000_000 + seq * 1000);
    let body = match seq % 10 {
        3 => RecordBody::EngineHours(EngineHoursReading {
            hours: EngineHours::from_secs(seq * 60),
            source: SignalSource::Obd,
        }),
        5 => RecordBody::DtcAppeared(dtc_event(seq)),
        6 => RecordBody::DtcCleared(dtc_event(seq - 1)),
        9 => RecordBody::Unknown {
            tag: 42,
            bytes: vec![1, 2, 3],
        },
        _ => RecordBody::Odometer(OdometerReading {
            odometer: Odometer::from_km(seq),
            source: SignalSource::Obd,
        }),
    };
    Record { seq, at, body }
}

fn dtc_event(seq: u64) -> DtcEvent {
    DtcEvent {
        dtc: Dtc::Obd(ObdCode::new(0x0100 + (seq / 10) as u16)),
        severity: Severity::Warning,
        ecu: 0x7E8,
    }
}

/// Odometer-only records (the bench's and the stream tests' traffic).
pub fn odometer(seq: u64) -> Record {
    Record {
        seq,
        at: Timestamp::from_millis(1_750_000_000_000 + seq * 1000),
        body: RecordBody::Odometer(OdometerReading {
            odometer: Odometer::from_meters(seq * 10),
            source: SignalSource::Obd,
        }),
    }
}

pub fn uplink(vin: Vin, seqs: impl IntoIterator<Item = u64>, make: fn(u64) -> Record) -> Uplink {
    Uplink {
        vin,
        records: seqs.into_iter().map(make).collect(),
    }
}

/// An HTTP client for tests. reqwest is built with rustls but without a default crypto
/// provider (the cloud's webhook sender brings its own ring config; no aws-lc in the tree):
/// plain clients need the process default, installed here once.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The operator token of test configs.
pub const OPERATOR: &str = "test-operator-token";

/// GET a URL as the operator; returns the status and the body as JSON (Null if not JSON).
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = http().get(url).bearer_auth(OPERATOR).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// POST a body as the operator; returns the status and the body as JSON.
pub async fn post_json(url: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = http()
        .post(url)
        .bearer_auth(OPERATOR)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// The value of one sample in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A temp dir that is kept (and printed) if the test fails, for post-mortems.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The path of the test binary under test.
pub fn cloud_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rapport-cloud"))
}

/// One run of the binary.
pub struct CloudProc {
    pub child: Child,
    pub api: SocketAddr,
    pub log: PathBuf,
}

impl CloudProc {
    pub fn spawn(config: &Path, log: PathBuf) -> Self {
        let mut child = Command::new(cloud_bin())
            .args(["run", "--config"])
            .arg(config)
            // CLOUD_LOG=debug shows each envelope (and the redeliveries after each kill).
            .env(
                "RUST_LOG",
                std::env::var("CLOUD_LOG").unwrap_or("info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("rapport-cloud: API on http://") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let api = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(api) => api,
            Err(_) => panic!(
                "the cloud did not start; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        Self { child, api, log }
    }

    pub fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

/// A dealer partner of a test config: its webhook URL, signing secret and API token.
pub fn partner(
    id: &str,
    url: String,
    secret: &str,
    token: Option<&str>,
) -> rapport_cloud::fleet::partners::PartnerConfig {
    rapport_cloud::fleet::partners::PartnerConfig {
        id: id.into(),
        name: id.into(),
        kind: rapport_cloud::fleet::partners::PartnerKind::Dealer,
        webhook_url: url,
        secret: secret.into(),
        regions: Vec::new(),
        capabilities: Vec::new(),
        token: token.map(str::to_owned),
        token_env: None,
    }
}

/// A partner receiver's clock (unix seconds) that follows a test's manual clock.
pub fn receiver_clock(
    clock: &rapport_cloud::clock::ManualClock,
) -> rapport_testbed::partner::NowSecs {
    use rapport_cloud::clock::Clock as _;
    let c = clock.clone();
    Arc::new(move || c.now().as_millis() / 1000)
}
