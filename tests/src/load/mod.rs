//! Load mode (`rapport-testbed --load --vehicles 10000`): many lightweight simulated vehicles,
//! each a real MQTT client speaking the real protocol, against a real broker and the real
//! cloud, to measure the cloud: its ingest rate and the end-to-end latency from a critical
//! fault appearing on a vehicle's virtual CAN bus to the partner's verified webhook.
//!
//! The run, in [`run`]:
//! 1. the soft file-descriptor limit is raised to the hard one (children inherit it) and
//!    checked against what the run needs;
//! 2. a partner receiver ([`rapport_harness::partner::Receiver`], which verifies every signature) starts
//!    on its own thread and runtime, so the vehicles' load does not delay its clock;
//! 3. the cloud starts on a generated config and registry ([`cloud`]): every truck registered
//!    with the load dealer and the consent to partner sharing, so the default strategy's
//!    `critical_fault_dealer` rule turns a critical fault into a signed webhook. The broker is
//!    the cloud's embedded rumqttd, or a Mosquitto child process ([`BrokerKind`]). The cloud
//!    runs as a child process of the `rapport-cloud` binary ([`CloudMode::Child`]; needed at
//!    10,000 vehicles, whose 10,000 broker-side sockets would not fit this process's limit
//!    beside the 10,000 client sockets) or in process ([`CloudMode::InProcess`]). Its store is
//!    a fresh sled store or the PostgreSQL database given ([`Store`]); on PostgreSQL several
//!    instances ([`LoadOptions::instances`]) share it and the fleet, each its own child
//!    process with its own client id in one shared subscription ([`instances`]);
//! 4. vehicles connect at `connect_rate` per second ([`vehicle`]), each sending a heartbeat,
//!    then an odometer reading every `record_interval`, batched like the agent;
//! 5. the steady window (`duration`) starts when all are connected: the instances' `/metrics`
//!    are read every 250 ms (the ingest rate, what each applied, whether one exited), at
//!    seeded random moments a sample of vehicles get a critical J1939 fault on their virtual
//!    bus ([`truck`]: the agent's simulated ECU and its own decoder), which they publish at
//!    once, another sample live a maintenance story (due, booked from the prompt, serviced
//!    for half of them), and the chaos schedule ([`chaos`]) kills and restarts instances and
//!    stops the store;
//! 6. the drain: readings stop, what is waiting is sent, and the run waits until every record
//!    is acked by the broker and applied by the cloud, every fault's and story's webhook
//!    arrived, with a short SLA every unanswered alert's escalation too, and on PostgreSQL the
//!    store's audit ([`audit`]) passes (or `drain_timeout`);
//! 7. the layer matrix is read from every instance, everything stops, and the [`LoadReport`]
//!    says what was measured and whether the run was correct (every record acked and applied
//!    exactly once, one verified webhook per alert, each escalation once, the instances
//!    agreeing).
//!
//! Latency is measured with one monotonic clock ([`std::time::Instant`], one process): from the
//! moment the DM1 frame goes on the virtual bus to the moment the receiver has verified the
//! webhook naming that VIN and code. A fault's record is cut into a batch at once; the real
//! agent would hold a partial batch for up to `[sync].batch_max_age_ms` (2 s by default),
//! which this measurement leaves out on purpose: it measures the cloud.

pub mod audit;
pub mod chaos;
pub mod cloud;
pub mod instances;
mod plan;
pub mod report;
pub mod truck;
mod vehicle;
mod webhooks;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rapport_shared::Vin;
use tokio::sync::{mpsc, watch};

pub use audit::Audit;
pub use chaos::{Chaos, ChaosEvent, ChaosLog, StoreAction, StoreControl};
pub use cloud::{BrokerKind, CloudMode, IngestCounters, Store};
pub use instances::InstanceFigures;
pub use report::{Latency, LoadReport, P99_TARGET, WebhookTally};

use crate::Error;
use cloud::{CloudSetup, InstanceFiles};
use instances::Instances;
pub use plan::vin_of;
use plan::{Rng, fault_plan, maintenance_plan};
use rapport_harness::mosquitto;
use vehicle::{Counters, FaultOrder, Order, Phase, Settings, Shared, Step, Vehicle};
use webhooks::{Partner, match_webhooks};

/// Most vehicles one run simulates.
pub const MAX_VEHICLES: usize = 100_000;
/// File descriptors this process needs besides one per vehicle (runtime, files, receiver).
const FD_MARGIN: u64 = 512;
/// How often the run looks at counters while it waits.
const WAIT_STEP: Duration = Duration::from_millis(100);
/// Most cloud instances one run starts.
pub const MAX_INSTANCES: usize = 16;
/// Between the steps of a maintenance story (due, booked, serviced): long enough that a step
/// held up by a killed instance or a stopped database is applied before the next arrives.
pub const MAINTENANCE_STEP: Duration = Duration::from_secs(15);
/// `[alerts] sla_minutes` by default: a week, so no alert of a run escalates.
pub const DEFAULT_SLA_MINUTES: u64 = 7 * 24 * 60;
/// How often the drain audits the PostgreSQL store.
const AUDIT_EVERY: Duration = Duration::from_secs(2);

/// How a load run goes. [`LoadOptions::default`]: 1,000 vehicles for 60 s with 50 faults.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Simulated vehicles (1 to [`MAX_VEHICLES`]).
    pub vehicles: usize,
    /// The measured window, after every vehicle connected.
    pub duration: Duration,
    /// Vehicles started per second (the embedded broker accepts about 1,000 per second).
    pub connect_rate: u32,
    /// An odometer reading per vehicle this often.
    pub record_interval: Duration,
    /// A partial batch goes when its oldest record waited this long (the agent's default).
    pub batch_max_age: Duration,
    /// A batch goes when it holds this many records (the agent's default).
    pub batch_max_records: usize,
    /// Publishes a vehicle has unacknowledged at most (the agent's default).
    pub inflight: usize,
    /// Critical faults injected, each on a different vehicle, during the window.
    pub faults: usize,
    /// Seed of the fault plan (which vehicles, when, which codes) and of the start offsets.
    pub seed: u64,
    /// The broker.
    pub broker: BrokerKind,
    /// Where the cloud runs.
    pub cloud: CloudMode,
    /// How long the drain may take.
    pub drain_timeout: Duration,
    /// MQTT keep-alive of the vehicles.
    pub keep_alive: Duration,
    /// Keep the run's files (config, registry, cloud log and store) here instead of a
    /// temporary folder that is removed at the end.
    pub work_dir: Option<PathBuf>,
    /// Where the cloud keeps its data: a fresh sled store, or the PostgreSQL database given.
    pub store: Store,
    /// Cloud instances (1 to [`MAX_INSTANCES`]); more than one needs PostgreSQL, Mosquitto
    /// and child processes.
    pub instances: usize,
    /// Vehicles living a maintenance story during the window (each on its own vehicle): the
    /// oil service falls due, the driver books it [`MAINTENANCE_STEP`] later, and every other
    /// one is serviced another step later.
    pub maintenance: usize,
    /// `[alerts] sla_minutes`: alerts nobody acknowledges escalate after this. Shorter than
    /// `drain_timeout`, the run waits for every escalation.
    pub sla_minutes: u64,
    /// Instances killed and the store stopped during the window ([`chaos`]).
    pub chaos: Vec<ChaosEvent>,
    /// How the chaos stops and starts the store's server.
    pub store_control: Option<StoreControl>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            vehicles: 1_000,
            duration: Duration::from_secs(60),
            connect_rate: 500,
            record_interval: Duration::from_secs(5),
            batch_max_age: Duration::from_secs(2),
            batch_max_records: 500,
            inflight: 10,
            faults: 50,
            seed: 1,
            broker: BrokerKind::Embedded,
            cloud: CloudMode::Child(None),
            drain_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(30),
            work_dir: None,
            store: Store::Sled,
            instances: 1,
            maintenance: 0,
            sla_minutes: DEFAULT_SLA_MINUTES,
            chaos: Vec::new(),
            store_control: None,
        }
    }
}

impl LoadOptions {
    /// Every problem with the options; empty when fine.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.vehicles == 0 || self.vehicles > MAX_VEHICLES {
            p.push(format!("vehicles must be 1 to {MAX_VEHICLES}"));
        }
        if self.broker == BrokerKind::Embedded
            && self.vehicles >= rapport_cloud::broker::MAX_CONNECTIONS
        {
            p.push(format!(
                "the embedded broker takes at most {} connections (the cloud's own included): \
                 use at most {} vehicles, or --broker mosquitto",
                rapport_cloud::broker::MAX_CONNECTIONS,
                rapport_cloud::broker::MAX_CONNECTIONS - 1
            ));
        }
        if self.faults > self.vehicles {
            p.push(format!(
                "faults ({}) must not exceed vehicles ({}): each fault goes to its own vehicle",
                self.faults, self.vehicles
            ));
        }
        if self.duration < Duration::from_secs(1) {
            p.push("duration must be at least 1 s".into());
        }
        if self.connect_rate == 0 {
            p.push("connect rate must be at least 1 per second".into());
        }
        if self.record_interval < Duration::from_millis(10) {
            p.push("record interval must be at least 10 ms".into());
        }
        if self.batch_max_records == 0 || self.batch_max_records > rapport_shared::MAX_RECORDS {
            p.push(format!(
                "batch max records must be 1 to {}",
                rapport_shared::MAX_RECORDS
            ));
        }
        if self.inflight == 0 || self.inflight > 50 {
            p.push("inflight must be 1 to 50 (half of rumqttc's packet id window)".into());
        }
        if self.keep_alive < Duration::from_secs(5) {
            p.push("keep-alive must be at least 5 s".into());
        }
        let child = matches!(self.cloud, CloudMode::Child(_));
        let postgres = matches!(self.store, Store::Postgres(_));
        if self.instances == 0 || self.instances > MAX_INSTANCES {
            p.push(format!("instances must be 1 to {MAX_INSTANCES}"));
        } else if self.instances > 1 {
            if !postgres {
                p.push("several instances need a store they share: --store postgres://…".into());
            }
            if self.broker != BrokerKind::Mosquitto {
                p.push(
                    "several instances need an external broker they share: --broker mosquitto"
                        .into(),
                );
            }
            if !child {
                p.push("several instances run as child processes, not in this process".into());
            }
        }
        if self.maintenance > self.vehicles {
            p.push(format!(
                "maintenance stories ({}) must not exceed vehicles ({})",
                self.maintenance, self.vehicles
            ));
        }
        if self.maintenance > 0 && self.duration < MAINTENANCE_STEP * 3 {
            p.push(format!(
                "maintenance stories need a window of at least {:?} (due, booked and serviced \
                 {MAINTENANCE_STEP:?} apart)",
                MAINTENANCE_STEP * 3
            ));
        }
        if self.sla_minutes == 0 || self.sla_minutes > DEFAULT_SLA_MINUTES {
            p.push(format!("sla minutes must be 1 to {DEFAULT_SLA_MINUTES}"));
        }
        p.extend(chaos::problems(
            &self.chaos,
            self.instances,
            self.store_control.is_some(),
            child,
            self.duration,
        ));
        let kills = self
            .chaos
            .iter()
            .any(|e| matches!(e.what, Chaos::Kill { .. }));
        if kills && self.broker != BrokerKind::Mosquitto {
            p.push(
                "chaos kills need --broker mosquitto (the embedded broker dies with its cloud)"
                    .into(),
            );
        }
        let store_stops = self
            .chaos
            .iter()
            .any(|e| matches!(e.what, Chaos::StopStore { .. }));
        if store_stops && !postgres {
            p.push("chaos stopping the store needs a PostgreSQL store".into());
        }
        p
    }

    /// Whether the run waits for escalations (the SLA runs out within the drain).
    fn expects_escalations(&self) -> bool {
        Duration::from_secs(self.sla_minutes.saturating_mul(60)) < self.drain_timeout
    }

    /// File descriptors this process needs.
    fn fds_needed(&self) -> u64 {
        let vehicles = self.vehicles as u64;
        // In process with the embedded broker, its side of each connection is here too.
        let broker_side = match (&self.cloud, self.broker) {
            (CloudMode::InProcess, BrokerKind::Embedded) => vehicles,
            _ => 0,
        };
        vehicles + broker_side + FD_MARGIN
    }
}

/// Why a load run could not run (a run that ran but was not correct is a [`LoadReport`] with
/// [`LoadReport::failures`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Options that cannot work, each problem named.
    #[error("load options: {}", .0.join("; "))]
    Options(Vec<String>),
    /// Not enough file descriptors even after raising the soft limit to the hard one.
    #[error(
        "file descriptors: this run needs about {needed}, the limit is {limit} (hard limit \
         {hard}); raise the hard limit (ulimit -Hn, limits.conf), run fewer vehicles, or run \
         the cloud as a child process"
    )]
    Fds {
        /// About how many are needed.
        needed: u64,
        /// The soft limit after raising it.
        limit: u64,
        /// The hard limit.
        hard: String,
    },
    /// A file or process operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file, folder or program.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `rapport-cloud` binary is not where it was looked for.
    #[error(
        "rapport-cloud binary not found (looked at {}): build it with `cargo build --release -p \
         rapport-cloud` (beside this program), or name it with RAPPORT_CLOUD_BIN",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    CloudBinary {
        /// Where it was looked for.
        looked: Vec<PathBuf>,
    },
    /// The cloud did not come up.
    #[error("the cloud did not start: {message}\n--- the end of its log ---\n{log}")]
    CloudStart {
        /// What happened.
        message: String,
        /// The end of its log.
        log: String,
    },
    /// `/metrics` could not be read.
    #[error("cloud metrics: {0}")]
    Metrics(String),
    /// The simulated truck's CAN side failed.
    #[error("simulated truck: {0}")]
    Truck(String),
    /// A piece of the harness failed: the partner receiver, or the cloud's child process.
    #[error(transparent)]
    Harness(#[from] rapport_harness::Error),
    /// `BrokerKind::Mosquitto` without Mosquitto installed.
    #[error("--broker mosquitto needs Mosquitto installed (apt-get install mosquitto)")]
    NoMosquitto,
    /// The broker's address is unknown (the cloud did not report its embedded broker).
    #[error("broker: {0}")]
    Broker(String),
    /// The PostgreSQL store cannot be used for this run.
    #[error("store: {0}")]
    Store(String),
}

/// Raises the soft limit of open files to the hard limit; returns (soft now, hard).
fn raise_fd_limit() -> (u64, Option<u64>) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let Some(current) = lim.current else {
        return (u64::MAX, lim.maximum);
    };
    if lim.maximum.is_none_or(|max| max > current) {
        let target = lim.maximum.unwrap_or(1 << 20);
        if setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: lim.maximum,
            },
        )
        .is_ok()
        {
            return (target, lim.maximum);
        }
    }
    (current, lim.maximum)
}

/// Waits until `done` holds or `within` passes; returns whether it held.
async fn wait_for(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
}

/// Runs a load test as `opts` say (see the module doc) and reports what it measured.
///
/// Needs a multi-thread tokio runtime (the vehicles' event loops run on it).
///
/// # Errors
/// [`LoadError`] (inside [`Error::Load`]) when the run cannot start or a piece fails to
/// come up; Mosquitto's own errors as [`Error`]. A run that ran is a report, correct or not.
pub async fn run(opts: LoadOptions) -> Result<LoadReport, Error> {
    let problems = opts.problems();
    if !problems.is_empty() {
        return Err(LoadError::Options(problems).into());
    }
    let (limit, hard) = raise_fd_limit();
    let needed = opts.fds_needed();
    if limit < needed {
        return Err(LoadError::Fds {
            needed,
            limit,
            hard: hard.map_or_else(|| "unlimited".into(), |h| h.to_string()),
        }
        .into());
    }
    let temp;
    let dir = match &opts.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|source| LoadError::Io {
                what: "creating",
                path: d.clone(),
                source,
            })?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("rapport-load-")
                .tempdir()
                .map_err(|source| LoadError::Io {
                    what: "creating a folder in",
                    path: std::env::temp_dir(),
                    source,
                })?;
            temp.path().to_path_buf()
        }
    };
    if let Some(url) = opts.store.url() {
        let url = url.to_owned();
        let earlier = tokio::task::spawn_blocking(move || audit::earlier_vehicles(&url))
            .await
            .map_err(|e| LoadError::Store(e.to_string()))?
            .map_err(|e| LoadError::Store(format!("{}: {e}", opts.store.describe())))?;
        if earlier > 0 {
            return Err(LoadError::Store(format!(
                "{} already holds {earlier} load-mode vehicles from an earlier run: their \
                 sequence numbers would make this run's records duplicates. Give an empty \
                 database (createdb) or drop and create it again",
                opts.store.describe()
            ))
            .into());
        }
    }

    let mut rng = Rng(opts.seed);
    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
    }
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let token = format!("load-partner-{:016x}{:016x}", rng.next(), rng.next());
    let operator_token = format!("load-operator-{:016x}{:016x}", rng.next(), rng.next());
    // From a generator of its own, so the fault plan of a seed stays what it was.
    let mut desk_rng = Rng(opts.seed ^ 0x6465_736b);
    let desk_token = format!("load-desk-{:016x}{:016x}", desk_rng.next(), desk_rng.next());
    let vins = (0..opts.vehicles)
        .map(vin_of)
        .collect::<Result<Vec<Vin>, _>>()?;

    let mut partner = Partner::start(&secret)?;
    let mosquitto = match opts.broker {
        BrokerKind::Embedded => None,
        BrokerKind::Mosquitto => {
            let options = mosquitto::Options::default()
                .config_line("max_connections -1")
                .config_line("max_queued_messages 0")
                .config_line("max_inflight_messages 256")
                .config_line("max_packet_size 1048576");
            let started = tokio::task::spawn_blocking(move || mosquitto::Mosquitto::start(options))
                .await
                .map_err(|e| LoadError::Broker(e.to_string()))??;
            Some(started.ok_or(LoadError::NoMosquitto)?)
        }
    };
    let configs = cloud::write_configs(&CloudSetup {
        dir: &dir,
        vins: &vins,
        external_broker: mosquitto.as_ref().map(mosquitto::Mosquitto::port),
        store: &opts.store,
        instances: opts.instances,
        sla_minutes: opts.sla_minutes,
        webhook_url: &partner.url,
        secret: &secret,
        token: &token,
        desk_token: &desk_token,
        operator_token: &operator_token,
    })?;
    let configs = configs
        .into_iter()
        .enumerate()
        .map(|(i, config)| {
            let files = InstanceFiles::of(&dir, i, opts.instances);
            (config, files.log, files.client_id)
        })
        .collect();
    let instances = Instances::start(&opts.cloud, configs, mosquitto.is_none()).await?;
    let broker = match (&mosquitto, instances.first_broker()) {
        (Some(m), _) => m.addr(),
        (None, Some(b)) => b,
        (None, None) => {
            return Err(LoadError::Broker("the cloud reported no embedded broker".into()).into());
        }
    };
    // An instance says where it listens before its ingest has subscribed; what vehicles
    // publish before that has no subscriber to go to (and the first session is new), so wait.
    let subscribed_by = Instant::now() + Duration::from_secs(30);
    while !instances.all_subscribed().await? {
        if Instant::now() >= subscribed_by {
            let logs = instances
                .figures()
                .iter()
                .map(|f| format!("instance {}:\n{}", f.number, cloud::tail(&f.log)))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(LoadError::CloudStart {
                message: "its ingest did not subscribe within 30 s".into(),
                log: logs,
            }
            .into());
        }
        tokio::time::sleep(WAIT_STEP).await;
    }

    let shared = Arc::new(Shared {
        counters: Counters::default(),
        faults: Mutex::new(HashMap::new()),
        problems: Mutex::new(Vec::new()),
        made: (0..opts.vehicles).map(|_| AtomicU64::new(0)).collect(),
        truck: truck::truck_config()?,
        settings: Settings {
            host: broker.ip().to_string(),
            port: broker.port(),
            keep_alive: opts.keep_alive,
            record_interval: opts.record_interval,
            batch_max_age: opts.batch_max_age,
            batch_max_records: opts.batch_max_records,
            inflight: opts.inflight,
        },
    });
    let c = &shared.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

    // Ramp: start vehicles at the connect rate.
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let mut orders = Vec::with_capacity(opts.vehicles);
    let mut tasks = tokio::task::JoinSet::new();
    let ramp_start = Instant::now();
    let interval_ns = opts.record_interval.as_nanos().max(1) as u64;
    for (i, vin) in vins.iter().enumerate() {
        let at = ramp_start + Duration::from_secs_f64(i as f64 / f64::from(opts.connect_rate));
        tokio::time::sleep_until(at.into()).await;
        let (tx, rx) = mpsc::unbounded_channel::<Order>();
        orders.push(tx);
        let first = Duration::from_nanos(rng.below(interval_ns));
        let v = Vehicle::new(i, *vin, Arc::clone(&shared), first);
        tasks.spawn(v.run(rx, phase_rx.clone()));
    }
    let ramp_wait = Duration::from_secs(60);
    let n = opts.vehicles as u64;
    let all_connected = wait_for(ramp_wait, || load(&c.connected) >= n).await;
    let ramp = ramp_start.elapsed();
    if !all_connected {
        shared.problem(format!(
            "only {} of {n} vehicles connected within {:?} of the last start",
            load(&c.connected),
            ramp_wait
        ));
    }

    // Steady window: the faults, the maintenance stories and the chaos, the instances watched.
    let plan = fault_plan(opts.vehicles, opts.faults, opts.duration, &mut rng);
    let stories = maintenance_plan(
        opts.vehicles,
        opts.maintenance,
        opts.duration,
        MAINTENANCE_STEP,
        &mut rng,
    );
    let mut timeline: Vec<(Duration, usize, Order)> = plan
        .iter()
        .map(|p| {
            let order = Order::Fault(FaultOrder {
                spn: p.spn,
                fmi: p.fmi,
            });
            (p.at, p.vehicle, order)
        })
        .collect();
    for s in &stories {
        timeline.push((s.at, s.vehicle, Order::Maintenance(Step::Due)));
        timeline.push((
            s.at + MAINTENANCE_STEP,
            s.vehicle,
            Order::Maintenance(Step::Booked),
        ));
        if s.serviced {
            timeline.push((
                s.at + MAINTENANCE_STEP * 2,
                s.vehicle,
                Order::Maintenance(Step::Done),
            ));
        }
    }
    timeline.sort_by_key(|(at, _, _)| *at);
    let story_vins: HashMap<Vin, bool> = stories
        .iter()
        .filter_map(|s| vins.get(s.vehicle).map(|v| (*v, s.serviced)))
        .collect();
    let (watch_stop, mut watch_stopped) = watch::channel(false);
    let watcher = {
        let instances = instances.clone();
        tokio::spawn(async move {
            loop {
                instances.watch().await;
                tokio::select! {
                    _ = watch_stopped.changed() => break,
                    () = tokio::time::sleep(instances::WATCH_EVERY) => {}
                }
            }
        })
    };
    let m0 = instances.watch().await;
    let r0 = load(&c.records);
    let t0 = Instant::now();
    instances.set_origin(t0);
    let chaos_task = tokio::spawn(chaos::run(
        opts.chaos.clone(),
        instances.clone(),
        opts.store_control.clone(),
        t0,
    ));
    for (at, vehicle, order) in timeline {
        tokio::time::sleep_until((t0 + at).into()).await;
        if let Some(tx) = orders.get(vehicle) {
            let _ = tx.send(order);
        }
    }
    tokio::time::sleep_until((t0 + opts.duration).into()).await;
    let m1 = instances.total();
    let r1 = load(&c.records);
    let steady = t0.elapsed();

    // Drain.
    let _ = phase_tx.send(Phase::Drain);
    let drain_start = Instant::now();
    let deadline = drain_start + opts.drain_timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    if !wait_for(left(), || load(&c.records_acked) >= load(&c.records)).await {
        shared.problem(format!(
            "drain: {} of {} records acked within {:?}",
            load(&c.records_acked),
            load(&c.records),
            opts.drain_timeout
        ));
    }
    let chaos_log = match tokio::time::timeout(left(), chaos_task).await {
        Ok(Ok(log)) => log,
        Ok(Err(e)) => ChaosLog {
            failures: vec![format!("the chaos task failed: {e}")],
            ..ChaosLog::default()
        },
        Err(_) => ChaosLog {
            failures: vec![format!(
                "the chaos (restarts, the store's start) did not finish within the drain's {:?}",
                opts.drain_timeout
            )],
            ..ChaosLog::default()
        },
    };
    let made = || -> Vec<u64> {
        shared
            .made
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .collect()
    };
    let sent = load(&c.records);
    let url = opts.store.url().map(str::to_owned);
    let applied_now = || {
        let url = url.clone();
        let instances = instances.clone();
        async move {
            match url {
                Some(url) => tokio::task::spawn_blocking(move || audit::applied(&url))
                    .await
                    .ok()
                    .and_then(Result::ok),
                None => Some(instances.total().applied),
            }
        }
    };
    loop {
        if applied_now().await.is_some_and(|a| a >= sent) || left().is_zero() {
            break;
        }
        tokio::time::sleep(WAIT_STEP * 2).await;
    }
    let injected = load(&c.faults);
    let expect_escalations = opts.expects_escalations();
    let webhooks_in = || {
        let faults = shared.faults.lock().map(|f| f.clone()).unwrap_or_default();
        let (tally, _, _) = match_webhooks(&faults, &story_vins, &partner.arrivals());
        tally.critical_matched >= injected
            && tally.maintenance_matched >= story_vins.len() as u64
            && (!expect_escalations || tally.escalated_matched >= tally.unanswered)
    };
    if !wait_for(left(), webhooks_in).await {
        shared.problem(format!(
            "drain: not every fault's and story's webhook{} arrived within {:?}",
            if expect_escalations {
                " and escalation"
            } else {
                ""
            },
            opts.drain_timeout
        ));
    }
    // On PostgreSQL: until the store's audit passes (alerts delivered, escalations done).
    let delivered =
        || -> HashSet<String> { partner.arrivals().into_iter().map(|a| a.id).collect() };
    let mut store_audit: Option<Audit> = None;
    if let Some(url) = &url {
        loop {
            let (url, made, delivered, now) = (url.clone(), made(), delivered(), unix_ms());
            let audited =
                tokio::task::spawn_blocking(move || audit::audit(&url, &made, &delivered, now))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
            let done = match &audited {
                Ok(a) => {
                    a.problems.is_empty() && (!expect_escalations || a.escalations_pending == 0)
                }
                Err(_) => false,
            };
            match audited {
                Ok(a) => store_audit = Some(a),
                Err(e) => shared.problem(format!("auditing the store: {e}")),
            }
            if done || left().is_zero() {
                break;
            }
            tokio::time::sleep(AUDIT_EVERY.min(left())).await;
        }
    }
    // A moment for anything that should not come (a second webhook for one alert) to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drain = drain_start.elapsed();
    let end = instances.watch().await;
    let matrices = read_matrices(&instances, &operator_token).await;

    // Stop.
    let _ = phase_tx.send(Phase::Stop);
    drop(orders);
    if tokio::time::timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    let _ = watch_stop.send(true);
    let _ = watcher.await;
    let description = instances.description();
    let figures = instances.figures();
    for p in instances.stop().await {
        shared.problem(p);
    }
    let stats = partner.stop();
    drop(mosquitto);

    let faults = shared.faults.lock().map(|f| f.clone()).unwrap_or_default();
    let arrivals = partner.arrivals();
    let (mut webhooks, latencies, missing) = match_webhooks(&faults, &story_vins, &arrivals);
    webhooks.attempts = stats.attempts;
    webhooks.delivered = stats.delivered;
    webhooks.duplicates = stats.duplicates;
    webhooks.rejected = stats.rejected;
    let agent_side: Vec<Duration> = faults
        .values()
        .filter_map(|i| i.published.map(|p| p.saturating_duration_since(i.on_bus)))
        .collect();
    let problems = shared
        .problems
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    let logs: Vec<String> = figures
        .iter()
        .map(|f| f.log.display().to_string())
        .collect();
    cloud::note(
        &dir,
        &format!("run finished; cloud logs {}", logs.join(", ")),
    );
    let serviced = stories.iter().filter(|s| s.serviced).count() as u64;
    Ok(LoadReport {
        vehicles: opts.vehicles,
        broker: opts.broker,
        cloud: description,
        store: opts.store.describe(),
        seed: opts.seed,
        ramp,
        steady,
        drain,
        connected: load(&c.connected),
        reconnects: load(&c.reconnects),
        connection_errors: load(&c.connection_errors),
        records_sent: load(&c.records),
        made: made(),
        records_acked: load(&c.records_acked),
        records_resent: load(&c.records_resent),
        publishes: (load(&c.publishes), load(&c.publishes_acked)),
        downlinks: load(&c.downlinks),
        downlink_repeats: load(&c.downlink_repeats),
        downlink_errors: load(&c.downlink_errors),
        cloud_end: end,
        instances: figures,
        steady_applied: m1.applied.saturating_sub(m0.applied),
        steady_offered: r1.saturating_sub(r0),
        faults: (plan.len(), injected, load(&c.fault_errors)),
        maintenance: report::MaintenanceTally {
            planned: stories.len() as u64,
            serviced_planned: serviced,
            due: load(&c.maintenance[0]),
            booked: load(&c.maintenance[1]),
            serviced: load(&c.maintenance[2]),
        },
        escalations_expected: expect_escalations,
        webhooks,
        webhook_ids: arrivals.iter().map(|a| a.id.clone()).collect(),
        latency: Latency::of(latencies),
        agent_latency: Latency::of(agent_side),
        missing,
        chaos: chaos_log,
        audit: store_audit,
        matrices,
        problems,
    })
}

/// Unix milliseconds now.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The layer matrix (`GET /api/v1/layers`, by service and by car maturity) from every running
/// instance, with the operator's token: (instance number, the two answers), or what failed.
async fn read_matrices(instances: &Instances, token: &str) -> Vec<(usize, Result<String, String>)> {
    let mut out = Vec::new();
    for (i, api) in instances.apis() {
        let mut text = String::new();
        let mut failed = None;
        for path in ["/api/v1/layers", "/api/v1/layers?axis=car"] {
            match cloud::get(api, path, Some(token), Duration::from_secs(10)).await {
                Ok(body) => {
                    text.push_str(&body);
                    text.push('\n');
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        out.push((i + 1, failed.map_or(Ok(text), Err)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn options_problems_are_each_named() {
        assert!(LoadOptions::default().problems().is_empty());
        let bad = LoadOptions {
            vehicles: 10,
            faults: 11,
            inflight: 0,
            duration: Duration::ZERO,
            ..LoadOptions::default()
        };
        let p = bad.problems();
        assert_eq!(p.len(), 3, "{p:?}");
        let embedded_cap = LoadOptions {
            vehicles: 20_000,
            ..LoadOptions::default()
        };
        assert!(embedded_cap.problems()[0].contains("--broker mosquitto"));
        let mosquitto = LoadOptions {
            vehicles: 20_000,
            broker: BrokerKind::Mosquitto,
            ..LoadOptions::default()
        };
        assert!(mosquitto.problems().is_empty());
    }

    #[test]
    fn the_fd_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = raise_fd_limit();
        if let Some(h) = hard {
            assert_eq!(soft, h);
        }
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current.unwrap_or(u64::MAX), soft);
    }
}
