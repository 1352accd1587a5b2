//! The cloud in tests: typed configs, its API as the operator, records sent and waited for,
//! partners for the webhook receiver, the Mosquitto settings it needs, and the `rapport-cloud`
//! binary as a child process.
//!
//! Configs start from the example `config/cloud.toml`, read with the cloud's own loader, and
//! tests set typed fields on the value and write it as TOML ([`write`]) — no text templates.
//! Owns the test-wide conventions (the operator token, an API and an embedded broker on free
//! ports); does not own what the cloud does with them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rapport_cloud::Cloud;
use rapport_cloud::clock::{Clock, ManualClock};
use rapport_cloud::config::Config;
use rapport_cloud::fleet::partners::{PartnerConfig, PartnerKind};
use rapport_shared::v1::uplink::Uplink;
use serde_json::Value;

use crate::Error;
use crate::files::{config_error, repo_file};
use crate::mosquitto;
use crate::mqtt::Publisher;
use crate::partner::NowSecs;
use crate::process::{Process, Signal, bin_command};

/// The operator token of test configs.
pub const OPERATOR: &str = "test-operator-token";
/// What the cloud prints on stdout once its API listens: this, then the address.
pub const API_LINE: &str = "rapport-cloud: API on http://";
/// How long the binary may take to print [`API_LINE`].
const START_WAIT: Duration = Duration::from_secs(20);
/// How long [`start_with_car`] waits for the cloud's uplink subscription.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);
/// How long [`send_and_wait`] waits for the records to be applied.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// Which broker a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    /// The cloud's own rumqttd.
    Embedded,
    /// An external broker (Mosquitto) at this address.
    External(SocketAddr),
}

/// Which store backend a test's cloud runs on (each behaviour test runs on both: see
/// [`crate::on_both_backends`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// sled in the test's directory.
    Sled,
    /// A database of its own on the PostgreSQL at 127.0.0.1:5432 ([`crate::postgres`]).
    Postgres,
}

/// The store of a test's cloud: nothing to make for sled, a fresh database for PostgreSQL
/// (dropped with this value: keep it for the test's length).
#[derive(Debug)]
pub struct TestStore {
    kind: StoreKind,
    db: Option<crate::postgres::TestDb>,
}

impl TestStore {
    /// The store of `kind` for a test named `label`; `Ok(None)` (after printing the skip)
    /// for PostgreSQL without a server.
    ///
    /// # Errors
    /// As [`crate::postgres::TestDb::create`].
    pub fn new(kind: StoreKind, label: &str) -> Result<Option<Self>, Error> {
        match kind {
            StoreKind::Sled => Ok(Some(Self::sled())),
            StoreKind::Postgres => {
                Ok(crate::postgres::TestDb::create(label)?.map(|db| Self { kind, db: Some(db) }))
            }
        }
    }

    /// The sled store (nothing to make).
    pub fn sled() -> Self {
        Self {
            kind: StoreKind::Sled,
            db: None,
        }
    }

    /// Which backend.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The database, for PostgreSQL.
    pub fn db(&self) -> Option<&crate::postgres::TestDb> {
        self.db.as_ref()
    }

    /// Points `config`'s `[store]` at this store (its sled path stays: the operator token
    /// lives there).
    pub fn configure(&self, config: &mut Config) {
        match &self.db {
            None => config.store.backend = rapport_cloud::config::Backend::Sled,
            Some(db) => {
                config.store.backend = rapport_cloud::config::Backend::Postgres;
                config.store.url = Some(rapport_cloud::config::DbUrl::new(db.url()));
                config.store.url_env = None;
            }
        }
    }
}

/// Runs each named `async fn name(kind: StoreKind)` as two tests, `name::sled` and
/// `name::postgres` (a multi-thread tokio runtime with two workers): one body, both
/// backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sled() {
                    super::$name($crate::cloud::StoreKind::Sled).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::cloud::StoreKind::Postgres).await
                }
            }
        )+
    };
}

/// The example `config/cloud.toml`, loaded and checked by the cloud's own loader, with its
/// relative paths made absolute and no file of its own (`path`).
///
/// # Errors
/// [`Error::Config`] if it does not load.
pub fn example() -> Result<Config, Error> {
    let file = repo_file("config/cloud.toml");
    let mut config = rapport_cloud::config::load(&file).map_err(|e| config_error(&file, e))?;
    config.store.path = config.store_path();
    config.fleet.strategies = config
        .fleet
        .strategies
        .as_deref()
        .map(|p| config.resolve(p));
    config.fleet.registry = config.fleet.registry.as_deref().map(|p| config.resolve(p));
    config.path = None;
    Ok(config)
}

/// A cloud for a test: the example without its example fleet (no partners, registry or
/// fallback partner; the built-in copy of the example's strategies), the store in
/// `dir/store`, the API on a free port of loopback with [`OPERATOR`], the ingest session
/// `client_id` on `broker` (the embedded one on a free port of loopback).
///
/// # Errors
/// As [`example`], and [`Error::Config`] listing the problems if the result does not validate.
pub fn config(dir: &Path, broker: BrokerKind, client_id: &str) -> Result<Config, Error> {
    let mut c = example()?;
    c.partner.clear();
    c.alerts.fallback = None;
    c.fleet.registry = None;
    c.fleet.strategies = None;
    c.store.path = dir.join("store");
    c.api.listen = crate::wait::loopback(0);
    c.api.operator_token = Some(OPERATOR.to_owned());
    // The harness's records carry fixed car times (2025); on a cloud running on the real clock
    // the default retention would prune them under a test's feet. Tests of retention set
    // their own days (cloud/tests/retention.rs).
    c.retention.records_days = 36_500;
    c.retention.timeline_days = 36_500;
    // Tests poll the API hard (hundreds of reads while waiting): no rate limit unless a test
    // sets one (cloud/tests/access.rs does).
    c.api.rate_limit = rapport_cloud::api::ratelimit::RateLimit {
        per_second: rapport_cloud::api::ratelimit::MAX_PER_SECOND,
        burst: rapport_cloud::api::ratelimit::MAX_PER_SECOND,
    };
    c.broker.client_id = client_id.to_owned();
    match broker {
        BrokerKind::Embedded => {
            c.broker.embedded = true;
            c.broker.listen = Some(crate::wait::loopback(0));
        }
        BrokerKind::External(addr) => {
            c.broker.embedded = false;
            c.broker.listen = None;
            c.broker.url = Some(format!("mqtt://{addr}"));
        }
    }
    let problems = c.validate();
    if !problems.is_empty() {
        return Err(Error::Config(format!("a test cloud config: {problems:?}")));
    }
    Ok(c)
}

/// Writes `config` as `cloud.toml` in `dir` (made if missing); returns its path. Relative
/// paths in it then resolve against `dir`.
///
/// # Errors
/// [`Error::Config`] if it does not serialize, [`Error::Io`] if it cannot be written.
pub fn write(config: &Config, dir: &Path) -> Result<PathBuf, Error> {
    crate::files::write_toml(config, dir, "cloud.toml")
}

/// A dealer partner `id` (named `id` too) with its webhook `url`, signing `secret` and API
/// `token`.
pub fn partner(id: &str, url: String, secret: &str, token: Option<&str>) -> PartnerConfig {
    PartnerConfig {
        id: id.into(),
        name: id.into(),
        kind: PartnerKind::Dealer,
        webhook_url: url,
        secret: secret.into(),
        regions: Vec::new(),
        capabilities: Vec::new(),
        token: token.map(str::to_owned),
        token_env: None,
        previous_secret: None,
        previous_token: None,
        previous_token_env: None,
        rate_limit: None,
    }
}

/// The partner receiver's clock following a test's manual clock.
pub fn receiver_clock(clock: &ManualClock) -> NowSecs {
    let c = clock.clone();
    Arc::new(move || c.now().as_millis() / 1000)
}

/// Mosquitto as a cloud needs it behind a fleet: unbounded offline queues (a long backlog for
/// the cloud's persistent session is kept whole), 100 messages in flight, packets up to the
/// cloud client's 1 MiB.
pub fn mosquitto_options() -> mosquitto::Options {
    mosquitto::Options::default()
        .config_line("max_queued_messages 0")
        .config_line("max_inflight_messages 100")
        .config_line("max_packet_size 1048576")
}

/// GET a URL as the operator; the status and the body as JSON (`Null` if not JSON).
pub async fn get_json(url: &str) -> (u16, Value) {
    crate::http::request(reqwest::Method::GET, url, Some(OPERATOR), None).await
}

/// POST a JSON body as the operator; the status and the body as JSON.
pub async fn post_json(url: &str, body: &str) -> (u16, Value) {
    crate::http::request(reqwest::Method::POST, url, Some(OPERATOR), Some(body)).await
}

/// Publishes `up` as `car`, waits for the broker's ack and then until `cloud` applied as many
/// more records as `up` holds.
///
/// # Panics
/// When the records are not applied within 10 s.
pub async fn send_and_wait(cloud: &Cloud, car: &mut Publisher, up: &Uplink) {
    let applied = || cloud.metrics().records_applied.load(Ordering::SeqCst);
    let before = applied();
    let n = up.records.len() as u64;
    car.send(up).await;
    car.settle().await;
    crate::wait::wait_until(
        APPLY_WAIT,
        &format!("records of {} applied", up.vin),
        || applied() >= before + n,
    )
    .await;
}

/// Starts a cloud in this process on `config` with `clock` as its time, waits up to 10 s for
/// its uplink subscription, and connects a car publisher (`car_id`) to its embedded broker.
///
/// # Errors
/// [`Error::Cloud`] if it does not start, subscribe, or run an embedded broker.
pub async fn start_with_car(
    config: &Config,
    clock: &ManualClock,
    car_id: &str,
) -> Result<(Cloud, Publisher), Error> {
    let cloud = Cloud::start_with_clock(config, Arc::new(clock.clone()))
        .await
        .map_err(|e| Error::Cloud(format!("starting: {e}")))?;
    if !cloud.wait_subscribed(SUBSCRIBE_WAIT).await {
        return Err(Error::Cloud(format!(
            "no uplink subscription within {SUBSCRIBE_WAIT:?}"
        )));
    }
    let broker = cloud
        .ready()
        .broker
        .ok_or_else(|| Error::Cloud("no embedded broker".into()))?;
    let car = Publisher::connect(broker, car_id).await;
    Ok((cloud, car))
}

/// The cloud binary running (`rapport-cloud run --config …`), its stderr in a log file.
#[derive(Debug)]
pub struct CloudProcess {
    /// The child.
    pub process: Process,
    /// Where its API listens.
    pub api: SocketAddr,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl CloudProcess {
    /// Runs `bin run --config <config>` (through the test runner) with its stderr in `log` and
    /// waits up to 20 s for its API line. `RUST_LOG` is `$CLOUD_LOG`, else `info`
    /// (`CLOUD_LOG=debug` shows each envelope, and the redeliveries after each kill).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot start, [`Error::Exited`] or [`Error::NotReady`] (with the end
    /// of its log) if no API line comes.
    pub fn spawn(bin: &str, config: &Path, log: PathBuf) -> Result<Self, Error> {
        let mut command = bin_command(bin);
        command.args(["run", "--config"]).arg(config).env(
            "RUST_LOG",
            std::env::var("CLOUD_LOG").unwrap_or_else(|_| "info".into()),
        );
        let mut process = Process::spawn("rapport-cloud", command, Some(&log))?;
        let api = process.wait_line(START_WAIT, |line| {
            line.strip_prefix(API_LINE)?.trim().parse().ok()
        })?;
        Ok(Self { process, api, log })
    }

    /// SIGKILL, as a crash would, and reap.
    ///
    /// # Errors
    /// [`Error::Io`] if waiting fails.
    pub fn sigkill(mut self) -> Result<(), Error> {
        self.process.kill().map(drop)
    }

    /// SIGTERM and wait for the exit (a clean shutdown).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be signalled or waited for.
    pub fn sigterm(mut self) -> Result<ExitStatus, Error> {
        self.process.signal(Signal::Term)?;
        self.process.wait()
    }
}

/// Successive runs of the cloud binary on one config (a test that kills and restarts it), each
/// with its own numbered log, `cloud-<n>.log` in `dir`.
#[derive(Debug)]
pub struct CloudRuns {
    bin: String,
    config: PathBuf,
    dir: PathBuf,
    runs: usize,
}

impl CloudRuns {
    /// Runs of `bin` on `config`, logs in `dir`.
    pub fn new(bin: &str, config: &Path, dir: &Path) -> Self {
        Self {
            bin: bin.to_owned(),
            config: config.to_path_buf(),
            dir: dir.to_path_buf(),
            runs: 0,
        }
    }

    /// Starts the next run (see [`CloudProcess::spawn`]).
    ///
    /// # Errors
    /// As [`CloudProcess::spawn`].
    pub fn start(&mut self) -> Result<CloudProcess, Error> {
        self.runs += 1;
        let log = self.dir.join(format!("cloud-{}.log", self.runs));
        CloudProcess::spawn(&self.bin, &self.config, log)
    }

    /// How many runs were started.
    pub fn count(&self) -> usize {
        self.runs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example with its fleet taken out is the default config but for the test places,
    /// an unlimited bucket and a 100-year retention: tests built on it run as they did on
    /// `Config::default()`.
    #[test]
    fn a_test_config_is_the_default_with_test_places() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), BrokerKind::Embedded, "t").unwrap();
        let mut d = Config::default();
        d.store.path = dir.path().join("store");
        d.api.listen = "127.0.0.1:0".parse().unwrap();
        d.api.operator_token = Some(OPERATOR.into());
        d.api.rate_limit = rapport_cloud::api::ratelimit::RateLimit {
            per_second: rapport_cloud::api::ratelimit::MAX_PER_SECOND,
            burst: rapport_cloud::api::ratelimit::MAX_PER_SECOND,
        };
        d.retention.records_days = 36_500;
        d.retention.timeline_days = 36_500;
        d.broker.client_id = "t".into();
        d.broker.embedded = true;
        d.broker.listen = Some("127.0.0.1:0".parse().unwrap());
        assert_eq!(c, d);
    }

    #[test]
    fn a_written_config_loads_with_the_clouds_loader() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(
            dir.path(),
            BrokerKind::External(crate::wait::loopback(1883)),
            "w",
        )
        .unwrap();
        c.partner = vec![partner(
            "p",
            "http://127.0.0.1:9/hook".into(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Some("p-token-0123456789abcdef0123456789"),
        )];
        c.alerts.fallback = Some("p".into());
        let path = write(&c, dir.path()).unwrap();
        let mut again = rapport_cloud::config::load(&path).unwrap();
        again.path = None;
        assert_eq!(again, c);
    }
}
