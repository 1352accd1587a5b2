//! The cloud under load: its generated config and registry, the process it runs in, and its
//! `/metrics` counters.
//!
//! Owns: writing one `cloud.toml` per instance (embedded broker or an external one; a fresh
//! sled store or the PostgreSQL database given ([`Store`]); with several instances each its
//! own client id in one shared subscription; the dealer partner whose webhooks the load
//! mode's receiver takes, and a service desk as the fallback that escalations go to, at the
//! same receiver) and `registry.csv` (every simulated truck with its dealer and the consent
//! to partner sharing, so a critical fault becomes a partner alert); starting one instance as
//! a child process of the real `rapport-cloud` binary (what a 10,000-vehicle run needs: this
//! process's file descriptors go to the vehicles) or in this process on its own runtime
//! (small runs and the test); stopping or killing it; reading `/metrics` and the layer
//! matrix. Does not own the broker when it is Mosquitto ([`rapport_harness::mosquitto`]),
//! several instances and their chaos ([`super::instances`]), nor what is measured
//! ([`super::report`]).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rapport_harness::process::Process;
use rapport_shared::Vin;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::LoadError;

/// The dealer partner every simulated truck is registered with.
pub const DEALER: &str = "load-dealer";
/// The fallback partner: alerts not acknowledged within the SLA escalate to it.
pub const DESK: &str = "load-desk";
/// The shared subscription's group when several instances run.
pub const SHARE_GROUP: &str = "rapport";
/// How long the cloud may take to start (registry import of 10,000 vehicles included).
const START_WAIT: Duration = Duration::from_secs(120);
/// How long a stop may take before the child is killed.
const STOP_WAIT: Duration = Duration::from_secs(15);
/// The environment variable naming the `rapport-cloud` binary.
pub const BINARY_ENV: &str = "RAPPORT_CLOUD_BIN";

/// Where the cloud runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudMode {
    /// A child process of the `rapport-cloud` binary: the given path, else
    /// `$RAPPORT_CLOUD_BIN`, else next to this executable (or one folder up, for tests and
    /// examples in `target/<profile>/deps` or `examples`).
    Child(Option<PathBuf>),
    /// In this process, on its own runtime thread (its broker sockets count against this
    /// process's file descriptors: for small runs).
    InProcess,
}

/// Where the cloud keeps its data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Store {
    /// A fresh sled store in the run's folder (one instance).
    #[default]
    Sled,
    /// The PostgreSQL database at this URL (`postgres://user@host:port/db`): the one given,
    /// migrated by the cloud at start; several instances share it.
    Postgres(String),
}

impl Store {
    /// `sled`, or a `postgres://` / `postgresql://` URL.
    ///
    /// # Errors
    /// A message naming what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "sled" {
            return Ok(Self::Sled);
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let url = rapport_cloud::config::DbUrl::new(text);
            return match url.problem() {
                Some(p) => Err(format!("--store: {p}")),
                None => Ok(Self::Postgres(text.to_owned())),
            };
        }
        Err("--store: give `sled` or a PostgreSQL URL (postgres://user@host:5432/db)".into())
    }

    /// How the report names it (a URL's password hidden).
    pub fn describe(&self) -> String {
        match self {
            Self::Sled => "sled".into(),
            Self::Postgres(url) => format!(
                "PostgreSQL {}",
                rapport_cloud::config::DbUrl::new(url.as_str()).redacted()
            ),
        }
    }

    /// The database URL, for PostgreSQL.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Sled => None,
            Self::Postgres(url) => Some(url),
        }
    }
}

/// Which broker the vehicles and the cloud meet at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// The cloud's embedded rumqttd.
    Embedded,
    /// A Mosquitto child process ([`rapport_harness::mosquitto`]); the cloud is one of its clients.
    Mosquitto,
}

/// What the generated configs need.
pub(crate) struct CloudSetup<'a> {
    pub dir: &'a Path,
    pub vins: &'a [Vin],
    /// `None`: the embedded broker on a free port; `Some(port)`: Mosquitto on loopback.
    pub external_broker: Option<u16>,
    pub store: &'a Store,
    /// How many instances share the store (each gets its own client id and files).
    pub instances: usize,
    /// `[alerts] sla_minutes`.
    pub sla_minutes: u64,
    pub webhook_url: &'a str,
    pub secret: &'a str,
    pub token: &'a str,
    pub desk_token: &'a str,
    pub operator_token: &'a str,
}

/// The files of instance `index` of `instances`: config, log, sled store, client id. One
/// instance keeps the names of a single cloud (`cloud.toml`, `cloud.log`).
pub(crate) struct InstanceFiles {
    pub config: PathBuf,
    pub log: PathBuf,
    pub client_id: String,
}

impl InstanceFiles {
    pub(crate) fn of(dir: &Path, index: usize, instances: usize) -> Self {
        if instances <= 1 {
            return Self {
                config: dir.join("cloud.toml"),
                log: dir.join("cloud.log"),
                client_id: "rapport-cloud-load".into(),
            };
        }
        let n = index + 1;
        Self {
            config: dir.join(format!("cloud-{n}.toml")),
            log: dir.join(format!("cloud-{n}.log")),
            client_id: format!("rapport-cloud-{n}"),
        }
    }
}

/// Writes `registry.csv` and one config per instance into `setup.dir`; returns the configs'
/// paths in instance order.
///
/// # Errors
/// [`LoadError::Io`].
pub(crate) fn write_configs(setup: &CloudSetup<'_>) -> Result<Vec<PathBuf>, LoadError> {
    write_registry(setup)?;
    (0..setup.instances.max(1))
        .map(|i| write_config(setup, i))
        .collect()
}

fn write_registry(setup: &CloudSetup<'_>) -> Result<(), LoadError> {
    let registry = setup.dir.join("registry.csv");
    let mut csv = String::with_capacity(64 + setup.vins.len() * 64);
    csv.push_str("vin,category,line,delivered,dealer,region,partner_sharing,engagement\n");
    for vin in setup.vins {
        // No delivery date: ownership starts at the first record, so every driver is new
        // and active and no layer strategy fires while the load runs; only the faults do.
        csv.push_str(&format!(
            "{vin},commercial,load-test tractor,,{DEALER},DE-BE,true,true\n"
        ));
    }
    write(&registry, &csv)
}

/// Writes the config of instance `index`; returns its path.
fn write_config(setup: &CloudSetup<'_>, index: usize) -> Result<PathBuf, LoadError> {
    let files = InstanceFiles::of(setup.dir, index, setup.instances);
    let broker = match setup.external_broker {
        None => "embedded = true\nlisten = \"127.0.0.1:0\"\n".to_owned(),
        Some(port) => format!("embedded = false\nurl = \"mqtt://127.0.0.1:{port}\"\n"),
    };
    let share = if setup.instances > 1 {
        format!("share_group = \"{SHARE_GROUP}\"\n")
    } else {
        String::new()
    };
    let data = if setup.instances > 1 {
        format!("cloud-data-{}", index + 1)
    } else {
        "cloud-data".into()
    };
    let store = match setup.store {
        Store::Sled => format!("path = \"{data}\"\n"),
        // The URL as a TOML basic string (quotes and backslashes escaped).
        Store::Postgres(url) => format!(
            "backend = \"postgres\"\npath = \"{data}\"\nurl = {}\n",
            toml::Value::String(url.clone())
        ),
    };
    let sla_comment = if setup.sla_minutes >= 10_080 {
        "# A week or more: no alert of the run escalates."
    } else {
        "# Short: the run waits for the alerts nobody acknowledges to escalate to the desk."
    };
    let config = format!(
        r#"# Generated by rapport-testbed --load.
[broker]
{broker}client_id = "{client_id}"
{share}keep_alive_s = 30

[store]
{store}
[api]
listen = "127.0.0.1:0"
operator_token = "{operator_token}"

[fleet]
registry = "registry.csv"
tick_ms = 1000

[alerts]
fallback = "{DESK}"
{sla_comment}
sla_minutes = {sla}

[webhooks]
concurrency = 64
timeout_s = 10

[[partner]]
id = "{DEALER}"
name = "Load-test dealer"
kind = "dealer"
webhook_url = "{url}"
secret = "{secret}"
token = "{token}"

[[partner]]
id = "{DESK}"
name = "Load-test service desk"
kind = "dealer"
webhook_url = "{url}"
secret = "{secret}"
token = "{desk_token}"
"#,
        client_id = files.client_id,
        operator_token = setup.operator_token,
        sla = setup.sla_minutes,
        url = setup.webhook_url,
        secret = setup.secret,
        token = setup.token,
        desk_token = setup.desk_token,
    );
    write(&files.config, &config)?;
    Ok(files.config)
}

fn write(path: &Path, text: &str) -> Result<(), LoadError> {
    std::fs::write(path, text).map_err(|source| LoadError::Io {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// Where the running cloud listens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoints {
    pub api: SocketAddr,
    pub broker: Option<SocketAddr>,
}

enum Runner {
    /// Killed when dropped, if it still runs.
    Child(Process),
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<Result<(), String>>>,
    },
}

/// A running cloud; the child is killed if need be when dropped.
pub(crate) struct CloudHandle {
    runner: Runner,
    pub endpoints: Endpoints,
    pub description: String,
}

/// The `rapport-cloud` binary of this build for tests: found (present after
/// `cargo test --workspace`, whose cloud tests build it), or built with `cargo build -p
/// rapport-cloud` first.
///
/// # Errors
/// [`LoadError::Io`] when cargo cannot run or fails; [`LoadError::CloudBinary`] when the
/// binary is still missing.
pub fn binary_or_build() -> Result<PathBuf, LoadError> {
    if let Ok(found) = find_binary(None) {
        return Ok(found);
    }
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let built = std::process::Command::new(&cargo)
        .args(["build", "-p", "rapport-cloud", "--bin", "rapport-cloud"])
        .status();
    match built {
        Ok(status) if status.success() => find_binary(None),
        Ok(status) => Err(LoadError::Io {
            what: "building rapport-cloud with",
            path: cargo,
            source: std::io::Error::other(status.to_string()),
        }),
        Err(source) => Err(LoadError::Io {
            what: "running",
            path: cargo,
            source,
        }),
    }
}

/// Finds the `rapport-cloud` binary (see [`CloudMode::Child`]).
///
/// # Errors
/// [`LoadError::CloudBinary`] listing where it looked.
pub fn find_binary(given: Option<&Path>) -> Result<PathBuf, LoadError> {
    let mut candidates = Vec::new();
    if let Some(p) = given {
        candidates.push(p.to_path_buf());
    } else if let Some(p) = std::env::var_os(BINARY_ENV) {
        candidates.push(PathBuf::from(p));
    } else if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        candidates.push(dir.join("rapport-cloud"));
        if let Some(up) = dir.parent() {
            candidates.push(up.join("rapport-cloud"));
        }
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or(LoadError::CloudBinary { looked: candidates })
}

impl CloudHandle {
    /// Starts the cloud on `config` as `mode` says and waits until it listens.
    ///
    /// # Errors
    /// [`LoadError::CloudBinary`], [`LoadError::CloudStart`] (with the end of its log),
    /// [`LoadError::Io`].
    pub(crate) fn start(
        mode: &CloudMode,
        config: &Path,
        log: &Path,
        embedded: bool,
    ) -> Result<Self, LoadError> {
        match mode {
            CloudMode::Child(given) => Self::start_child(given.as_deref(), config, log, embedded),
            CloudMode::InProcess => Self::start_in_process(config),
        }
    }

    fn start_child(
        given: Option<&Path>,
        config: &Path,
        log: &Path,
        embedded: bool,
    ) -> Result<Self, LoadError> {
        let binary = find_binary(given)?;
        let mut command = Command::new(&binary);
        command.arg("run").arg("--config").arg(config).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        );
        let mut child = Process::spawn("load-cloud", command, Some(log))?;
        // The ready lines (the API's, and the embedded broker's), then the pipe is drained
        // until the child exits.
        let (mut api, mut broker) = (None, None);
        let ready = child.wait_line(START_WAIT, |line| {
            if let Some(a) = line.strip_prefix(rapport_harness::cloud::API_LINE) {
                api = a.trim().parse().ok();
            } else if let Some(b) = line.strip_prefix("rapport-cloud: broker on mqtt://") {
                broker = b.trim().parse().ok();
            }
            let api = api?;
            (!embedded || broker.is_some()).then_some((api, broker))
        });
        let (api, broker) = match ready {
            Ok(ready) => ready,
            Err(rapport_harness::Error::Exited { status, .. }) => {
                return Err(LoadError::CloudStart {
                    message: format!("{} exited ({status})", binary.display()),
                    log: tail(log),
                });
            }
            Err(rapport_harness::Error::NotReady { .. }) => {
                return Err(LoadError::CloudStart {
                    message: format!("not listening within {START_WAIT:?}"),
                    log: tail(log),
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            runner: Runner::Child(child),
            endpoints: Endpoints { api, broker },
            description: format!("child process {}", binary.display()),
        })
    }

    fn start_in_process(config: &Path) -> Result<Self, LoadError> {
        let cfg = rapport_cloud::config::Config::read(config)
            .and_then(rapport_cloud::config::check)
            .map_err(|e| LoadError::CloudStart {
                message: e.to_string(),
                log: String::new(),
            })?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<rapport_cloud::Ready>();
        let thread = std::thread::Builder::new()
            .name("load-cloud".into())
            .spawn(move || -> Result<(), String> {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("load-cloud-rt")
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(rapport_cloud::run(
                        cfg,
                        async {
                            let _ = stop_rx.await;
                        },
                        Some(ready_tx),
                    ))
                    .map_err(|e| e.to_string())
            })
            .map_err(|source| LoadError::Io {
                what: "starting a thread for",
                path: "the in-process cloud".into(),
                source,
            })?;
        let ready = ready_rx.blocking_recv();
        let Ok(ready) = ready else {
            let message = match thread.join() {
                Ok(Err(e)) => e,
                Ok(Ok(())) => "stopped before it was ready".into(),
                Err(_) => "its thread panicked".into(),
            };
            return Err(LoadError::CloudStart {
                message,
                log: String::new(),
            });
        };
        Ok(Self {
            runner: Runner::InProcess {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
            endpoints: Endpoints {
                api: ready.api,
                broker: ready.broker,
            },
            description: "in this process".into(),
        })
    }

    /// Whether the child is still running (always true in process).
    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.runner {
            Runner::Child(child) => child.is_running(),
            Runner::InProcess { thread, .. } => thread.as_ref().is_some_and(|t| !t.is_finished()),
        }
    }

    /// The child's process id (`None` in process or once reaped).
    pub(crate) fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Child(child) => child.id(),
            Runner::InProcess { .. } => None,
        }
    }

    /// SIGKILLs the child, as a power loss or the OOM killer would, and reaps it.
    ///
    /// # Errors
    /// A message when it runs in process (it cannot be killed alone) or waiting fails.
    pub(crate) fn kill(&mut self) -> Result<(), String> {
        match &mut self.runner {
            Runner::Child(child) => child.kill().map(drop).map_err(|e| e.to_string()),
            Runner::InProcess { .. } => Err("an in-process cloud cannot be killed".into()),
        }
    }

    /// Stops the cloud: SIGTERM and a bounded wait (then SIGKILL) for the child; the shutdown
    /// signal and a join for the in-process cloud. Returns a problem to report, if any.
    pub(crate) fn stop(&mut self) -> Option<String> {
        match &mut self.runner {
            Runner::Child(child) => {
                if !child.is_running() {
                    return None;
                }
                match child.terminate(STOP_WAIT) {
                    Ok(Some(status)) if status.success() => None,
                    Ok(Some(status)) => Some(format!("cloud exited with {status}")),
                    Ok(None) => Some(format!(
                        "cloud did not stop within {STOP_WAIT:?} of SIGTERM; killed"
                    )),
                    Err(e) => Some(format!("stopping the cloud: {e}")),
                }
            }
            Runner::InProcess { stop, thread } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
                match thread.take().map(std::thread::JoinHandle::join) {
                    Some(Ok(Err(e))) => Some(format!("cloud stopped with an error: {e}")),
                    Some(Err(_)) => Some("cloud thread panicked".into()),
                    _ => None,
                }
            }
        }
    }
}

/// The end of a log file, for an error message.
pub(crate) fn tail(path: &Path) -> String {
    rapport_harness::process::log_tail(path)
}

/// The cloud's ingest counters, from `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounters {
    /// `rapport_ingest_messages_total`.
    pub messages: u64,
    /// `rapport_ingest_records_applied_total`.
    pub applied: u64,
    /// `rapport_ingest_duplicates_skipped_total`.
    pub duplicates: u64,
    /// Sum of `rapport_ingest_rejects_total` over the reasons.
    pub rejects: u64,
    /// `rapport_ingest_flushes_total`.
    pub flushes: u64,
    /// `rapport_fleet_errors_total`.
    pub fleet_errors: u64,
    /// `rapport_vehicles`.
    pub vehicles: u64,
    /// `rapport_ingest_subscribed`: whether the uplink subscription is in place.
    pub subscribed: bool,
    /// `rapport_store_up`: whether the store answers (`None`: a cloud without the metric).
    pub store_up: Option<bool>,
    /// `rapport_store_outages_total`: times the store went from answering to not.
    pub store_outages: u64,
    /// `rapport_ingest_store_retries_total`: ingest groups tried again on an unavailable store.
    pub store_retries: u64,
}

/// Parses the Prometheus text of `/metrics`.
pub fn parse_metrics(text: &str) -> IngestCounters {
    let mut c = IngestCounters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        let metric = name.split('{').next().unwrap_or(name);
        match metric {
            "rapport_ingest_messages_total" => c.messages = value,
            "rapport_ingest_records_applied_total" => c.applied = value,
            "rapport_ingest_duplicates_skipped_total" => c.duplicates = value,
            "rapport_ingest_rejects_total" => c.rejects += value,
            "rapport_ingest_flushes_total" => c.flushes = value,
            "rapport_fleet_errors_total" => c.fleet_errors = value,
            "rapport_vehicles" => c.vehicles = value,
            "rapport_ingest_subscribed" => c.subscribed = value == 1,
            "rapport_store_up" => c.store_up = Some(value == 1),
            "rapport_store_outages_total" => c.store_outages = value,
            "rapport_ingest_store_retries_total" => c.store_retries = value,
            _ => {}
        }
    }
    c
}

/// Reads `/metrics` (HTTP/1.0, so the answer is the body to the end, never chunked),
/// waiting at most `within`.
///
/// # Errors
/// [`LoadError::Metrics`].
pub(crate) async fn scrape(api: SocketAddr, within: Duration) -> Result<IngestCounters, LoadError> {
    get(api, "/metrics", None, within)
        .await
        .map(|body| parse_metrics(&body))
}

/// `GET {path}` on the cloud's API (HTTP/1.0), with the operator's bearer `token` if given;
/// the body of a 200.
///
/// # Errors
/// [`LoadError::Metrics`] naming the path: no connection, a timeout, another status.
pub(crate) async fn get(
    api: SocketAddr,
    path: &str,
    token: Option<&str>,
    within: Duration,
) -> Result<String, LoadError> {
    let request = match token {
        Some(t) => {
            format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {t}\r\n\r\n")
        }
        None => format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    };
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(api).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut bytes = Vec::with_capacity(4096);
        stream.read_to_end(&mut bytes).await?;
        Ok::<_, std::io::Error>(bytes)
    };
    let bytes = tokio::time::timeout(within, fetch)
        .await
        .map_err(|_| LoadError::Metrics(format!("GET http://{api}{path} timed out")))?
        .map_err(|e| LoadError::Metrics(format!("GET http://{api}{path}: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| LoadError::Metrics(format!("GET {path}: an answer without headers")))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(LoadError::Metrics(format!("GET {path}: {status}")));
    }
    Ok(body.to_owned())
}

/// Appends a line to the run's notes file (best effort: notes are for people).
pub(crate) fn note(dir: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("notes.txt"))
    {
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metrics_text_is_read_by_name_and_rejects_are_summed() {
        let text = "# HELP x\n# TYPE x counter\n\
                    rapport_ingest_messages_total 12\n\
                    rapport_ingest_records_applied_total 340\n\
                    rapport_ingest_duplicates_skipped_total 2\n\
                    rapport_ingest_rejects_total{reason=\"oversize\"} 1\n\
                    rapport_ingest_rejects_total{reason=\"vin_mismatch\"} 3\n\
                    rapport_vehicles 7\nrapport_ingest_subscribed 1\nrapport_store_up 0\n\
                    not a metric\n";
        let c = parse_metrics(text);
        assert_eq!(
            c,
            IngestCounters {
                messages: 12,
                applied: 340,
                duplicates: 2,
                rejects: 4,
                flushes: 0,
                fleet_errors: 0,
                vehicles: 7,
                subscribed: true,
                store_up: Some(false),
                store_outages: 0,
                store_retries: 0,
            }
        );
    }

    #[test]
    fn the_generated_config_and_registry_load_in_the_cloud() {
        let dir = tempfile::tempdir().unwrap();
        let vins: Vec<Vin> = ["RPLD0000000000001", "RPLD0000000000002"]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        let pg = Store::Postgres("postgres://postgres@127.0.0.1:5432/load".into());
        for (external, store, instances) in [
            (None, Store::Sled, 1),
            (Some(1883), Store::Sled, 1),
            (Some(1883), pg.clone(), 3),
        ] {
            let paths = write_configs(&CloudSetup {
                dir: dir.path(),
                vins: &vins,
                external_broker: external,
                store: &store,
                instances,
                sla_minutes: 1,
                webhook_url: "http://127.0.0.1:9/webhook",
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                token: "load-token-0123456789abcdef0123456789",
                desk_token: "load-desk-0123456789abcdef0123456789",
                operator_token: "operator-0123456789abcdef0123456789",
            })
            .unwrap();
            assert_eq!(paths.len(), instances);
            let mut ids = std::collections::HashSet::new();
            for path in &paths {
                let cfg = rapport_cloud::config::Config::read(path).unwrap();
                let cfg = rapport_cloud::config::check(cfg).unwrap();
                assert_eq!(cfg.broker.embedded, external.is_none());
                assert_eq!(cfg.partner.len(), 2);
                assert_eq!(cfg.alerts.fallback.as_deref(), Some(DESK));
                assert_eq!(cfg.alerts.sla_minutes, 1);
                let shared = cfg.broker.share_group.as_deref();
                assert_eq!(shared, (instances > 1).then_some(SHARE_GROUP));
                assert_eq!(
                    cfg.store.backend == rapport_cloud::config::Backend::Postgres,
                    store != Store::Sled
                );
                assert!(
                    ids.insert(cfg.broker.client_id.clone()),
                    "one client id each"
                );
            }
            let csv = std::fs::read_to_string(dir.path().join("registry.csv")).unwrap();
            let entries = rapport_cloud::fleet::registry::parse_csv(&csv).unwrap();
            assert_eq!(entries.len(), 2);
            assert!(entries.iter().all(|e| e.dealer.as_deref() == Some(DEALER)));
        }
    }

    #[test]
    fn a_store_is_sled_or_a_postgres_url() {
        assert_eq!(Store::parse("sled"), Ok(Store::Sled));
        let url = "postgres://load:secret@127.0.0.1:5432/rapport";
        let pg = Store::parse(url).unwrap();
        assert_eq!(pg.url(), Some(url));
        assert!(!pg.describe().contains("secret"), "{}", pg.describe());
        assert!(
            Store::parse("mysql://x")
                .unwrap_err()
                .contains("PostgreSQL URL")
        );
        assert!(Store::parse("postgres://").is_err());
    }

    #[test]
    fn a_missing_binary_names_where_it_was_looked_for() {
        let err = find_binary(Some(Path::new("/nonexistent/rapport-cloud"))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/rapport-cloud"), "{text}");
        assert!(
            text.contains("cargo build --release -p rapport-cloud"),
            "{text}"
        );
    }
}
