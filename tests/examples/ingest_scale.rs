//! Ingest throughput of the cloud behind an external broker, side by side in one run: sled
//! (one instance) against PostgreSQL with one and with three instances sharing the uplinks
//! (`[broker] share_group`), for small envelopes (1–4 records, cycling) and for 100-record
//! envelopes.
//!
//! ```sh
//! cargo build --release -p rapport-cloud -p rapport-testbed --examples --bins
//! target/release/examples/ingest_scale                     # every setup, both shapes
//! target/release/examples/ingest_scale --setups pg3 --records-small 100000
//! ```
//!
//! Each (setup, shape) gets a fresh Mosquitto (unbounded offline queue, so nothing is dropped;
//! its `$SYS` drop counter is read at the end), a fresh store (a sled directory, or a fresh
//! PostgreSQL database on 127.0.0.1:5432, dropped afterwards) and fresh `rapport-cloud` child
//! processes (the release binary next to this one, or `--cloud-bin`). Once every instance's
//! `/healthz` says its uplink subscription is in place, pre-encoded envelopes for many
//! vehicles (per-vehicle seqs from 1, increasing) are published at QoS 1 from several
//! connections as fast as the broker acks them. The ingest rate is measured from the first
//! publish until the sum of `rapport_ingest_records_applied_total` over the instances equals
//! the records sent; the publish rate (first publish to last PUBACK) is printed beside it, to
//! show whether the publishers or the broker were the limit. While it runs, the CPU each
//! process used is read from `/proc` (cloud instances, this program, Mosquitto, the
//! database's backends, the rest of the machine) and, on PostgreSQL, what the backends wait
//! on (`pg_stat_activity`), so the table says what was saturated.
//!
//! Owns the bench's plan, its publishers and its measurements. Does not own the broker
//! ([`rapport_harness::mosquitto`]), the test database ([`rapport_harness::postgres`]) or the
//! cloud configs ([`rapport_harness::cloud`]). A measurement, not a test: it fails only when
//! the run is not correct (records missing, duplicated, rejected or dropped), never on a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use rapport_cloud::config::{Backend, DbUrl};
use rapport_harness::cloud::{BrokerKind, CloudProcess};
use rapport_harness::mosquitto::{Mosquitto, Options};
use rapport_harness::postgres::TestDb;
use rapport_harness::records::{odometer_record, uplink};
use rapport_shared::{Vin, topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc` (100 on every Linux target).
const TICKS_PER_S: f64 = 100.0;
/// How often the instances' `/metrics` are read while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How often PostgreSQL's backends are sampled for what they wait on.
const PG_SAMPLE: Duration = Duration::from_millis(500);
/// A run fails when the applied count does not move for this long.
const STALL: Duration = Duration::from_secs(60);
/// How long the instances may take to subscribe.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(60);

/// Ingest throughput: sled vs PostgreSQL with 1 and 3 instances, small and 100-record envelopes.
#[derive(Parser, Debug)]
struct Cli {
    /// Records sent in small envelopes (1–4 records each, cycling) per setup.
    #[arg(long, default_value_t = 1_000_000)]
    records_small: u64,
    /// Records sent in 100-record envelopes per setup.
    #[arg(long, default_value_t = 5_000_000)]
    records_large: u64,
    /// Setups to run, comma-separated: sled, pg1, pg3 (pgN: N instances on one database).
    #[arg(long, default_value = "sled,pg1,pg3")]
    setups: String,
    /// Simulated vehicles (distinct VINs).
    #[arg(long, default_value_t = 2_000)]
    vehicles: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Unacknowledged publishes per publisher connection.
    #[arg(long, default_value_t = 1_000)]
    publisher_inflight: u16,
    /// Mosquitto's `max_inflight_messages`: deliveries to each cloud instance not yet acked.
    #[arg(long, default_value_t = 100)]
    broker_inflight: u32,
    /// `[ingest] group_max_envelopes` of the instances (default: the cloud's).
    #[arg(long)]
    group_max_envelopes: Option<usize>,
    /// `[store] pool_size` of the PostgreSQL instances (default: the cloud's).
    #[arg(long)]
    pool_size: Option<u32>,
    /// The `rapport-cloud` binary (default: next to this program, or one folder up).
    #[arg(long)]
    cloud_bin: Option<PathBuf>,
    /// Keep each run's directory (configs, cloud and broker logs) here instead of a temporary one.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Sled,
    Postgres,
}

#[derive(Clone, Copy, Debug)]
struct Setup {
    store: StoreKind,
    instances: usize,
}

impl Setup {
    fn parse(word: &str) -> anyhow::Result<Self> {
        let word = word.trim();
        if word == "sled" {
            return Ok(Self {
                store: StoreKind::Sled,
                instances: 1,
            });
        }
        let n = word
            .strip_prefix("pg")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=16).contains(n))
            .ok_or_else(|| anyhow!("--setups: {word:?} is not sled or pg1 … pg16"))?;
        Ok(Self {
            store: StoreKind::Postgres,
            instances: n,
        })
    }

    fn name(&self) -> String {
        match self.store {
            StoreKind::Sled => "sled ×1".into(),
            StoreKind::Postgres => format!("postgres ×{}", self.instances),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// 1–4 records per envelope, cycling per vehicle.
    Small,
    /// 100 records per envelope.
    Large,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Small => "1–4 rec/env",
            Self::Large => "100 rec/env",
        }
    }

    fn records(self, vehicle: usize, round: u64) -> u64 {
        match self {
            Self::Small => 1 + (vehicle as u64 + round) % 4,
            Self::Large => 100,
        }
    }
}

/// What one (setup, shape) run measured.
#[derive(Debug)]
struct Row {
    setup: String,
    shape: &'static str,
    records: u64,
    envelopes: u64,
    secs: f64,
    per_instance: Vec<u64>,
    publish_secs: f64,
    duplicates: u64,
    rejects: u64,
    dropped: Option<u64>,
    /// PostgreSQL: records in the log and drivers placed, counted in the database.
    logged: Option<(u64, u64)>,
    cpu: Vec<(String, f64)>,
    waits: Vec<(String, u64)>,
    wait_samples: u64,
    load: String,
}

impl Row {
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let setups = cli
        .setups
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(Setup::parse)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if cli.vehicles == 0 || cli.publishers == 0 || cli.publisher_inflight == 0 {
        bail!("--vehicles, --publishers and --publisher-inflight must be at least 1");
    }
    let bin = rapport_testbed::load::cloud::find_binary(cli.cloud_bin.as_deref())?;
    println!("ingest_scale: cloud binary {}", bin.display());
    println!(
        "machine: {} cores, SHARED with other builds and tests (their CPU is the `rest` column \
         below); load at start: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        rapport_testbed::load::report::machine_load()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for setup in &setups {
        for (shape, records) in [
            (Shape::Small, cli.records_small),
            (Shape::Large, cli.records_large),
        ] {
            if records == 0 {
                continue;
            }
            println!(
                "\n== {} / {}: {records} records, {} vehicles, {} publishers",
                setup.name(),
                shape.name(),
                cli.vehicles,
                cli.publishers
            );
            match runtime.block_on(run_one(&cli, &bin, *setup, shape, records)) {
                Ok(row) => {
                    print_detail(&row);
                    rows.push(row);
                }
                Err(e) => {
                    println!("FAILED: {e:#}");
                    failures.push(format!("{} / {}: {e:#}", setup.name(), shape.name()));
                }
            }
        }
    }
    print_table(&rows);
    println!(
        "load at end: {}",
        rapport_testbed::load::report::machine_load()
    );
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nnot correct:");
        for f in &failures {
            println!("  {f}");
        }
        Ok(ExitCode::from(1))
    }
}

/// One (setup, shape): broker, store, instances, publish, wait, measure, stop.
async fn run_one(
    cli: &Cli,
    bin: &Path,
    setup: Setup,
    shape: Shape,
    records: u64,
) -> anyhow::Result<Row> {
    let (_tmp, dir) = match &cli.work_dir {
        Some(base) => {
            let dir = base.join(format!(
                "{}-{}",
                setup.name().replace([' ', '×'], ""),
                match shape {
                    Shape::Small => "small",
                    Shape::Large => "large",
                }
            ));
            std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
            (None, dir)
        }
        None => {
            let t = tempfile::tempdir()?;
            let dir = t.path().to_path_buf();
            (Some(t), dir)
        }
    };
    let broker = Mosquitto::start(
        Options::default()
            .config_line("max_queued_messages 0")
            .config_line("max_queued_bytes 0")
            .config_line(format!("max_inflight_messages {}", cli.broker_inflight))
            .config_line("max_packet_size 1048576")
            .config_line("sys_interval 1"),
    )?
    .ok_or_else(|| anyhow!("mosquitto is not installed"))?;
    let db = match setup.store {
        StoreKind::Sled => None,
        StoreKind::Postgres => Some(
            TestDb::create("ingest_scale")?
                .ok_or_else(|| anyhow!("no PostgreSQL at 127.0.0.1:5432"))?,
        ),
    };

    // The instances.
    let mut clouds = Vec::new();
    for i in 0..setup.instances {
        let idir = dir.join(format!("cloud-{i}"));
        std::fs::create_dir_all(&idir)?;
        let mut c = rapport_harness::cloud::config(
            &idir,
            BrokerKind::External(broker.addr()),
            &format!("rapport-cloud-bench-{i}"),
        )?;
        if let Some(db) = &db {
            c.store.backend = Backend::Postgres;
            c.store.url = Some(DbUrl::new(db.url()));
            c.store.url_env = None;
            if let Some(n) = cli.pool_size {
                c.store.pool_size = n;
            }
            c.broker.share_group = Some("rapport".into());
        }
        if let Some(n) = cli.group_max_envelopes {
            c.ingest.group_max_envelopes = n;
        }
        let problems = c.validate();
        if !problems.is_empty() {
            bail!("the instance config does not validate: {problems:?}");
        }
        let path = rapport_harness::cloud::write(&c, &idir)?;
        let cloud = CloudProcess::spawn(&bin.to_string_lossy(), &path, idir.join("cloud.log"))
            .with_context(|| format!("starting instance {i}"))?;
        clouds.push(cloud);
    }
    let http = rapport_harness::http::client();
    let apis: Vec<String> = clouds.iter().map(|c| format!("http://{}", c.api)).collect();
    wait_subscribed(&http, &apis).await?;

    // The traffic, encoded before the clock starts.
    let vins: Vec<Vin> = (0..cli.vehicles)
        .map(|v| format!("RPBNCH{v:011}").parse())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("a bench VIN: {e}"))?;
    let mut plan: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); cli.publishers];
    let mut next = vec![1u64; cli.vehicles];
    let (mut left, mut round, mut envelopes) = (records, 0u64, 0u64);
    while left > 0 {
        for (v, vin) in vins.iter().enumerate() {
            if left == 0 {
                break;
            }
            let n = shape.records(v, round).min(left);
            let up = uplink(*vin, next[v]..next[v] + n, odometer_record);
            next[v] += n;
            left -= n;
            envelopes += 1;
            let payload = up
                .encode()
                .map_err(|e| anyhow!("encoding an uplink: {e}"))?;
            plan[v % cli.publishers].push((topic::uplink(vin), payload));
        }
        round += 1;
    }

    // Publishers connected before the clock starts.
    let mut pubs = Vec::new();
    for (p, msgs) in plan.into_iter().enumerate() {
        pubs.push(Pub::connect(&broker, p, cli.publisher_inflight, msgs).await?);
    }
    let before = scrape_all(&http, &apis).await?;
    let base: u64 = before.iter().map(|m| m.applied).sum();
    let cpu_start = CpuSnap::take();
    let load_sampler = db
        .as_ref()
        .map(|db| WaitSampler::start(db.name().to_owned()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in pubs {
        tasks.push(tokio::spawn(p.run(started)));
    }

    // Wait for the applied sum.
    let mut last_change = Instant::now();
    let mut last_sum = base;
    let mut last_report = Instant::now();
    let end = loop {
        tokio::time::sleep(POLL).await;
        let now = scrape_all(&http, &apis).await?;
        let sum: u64 = now.iter().map(|m| m.applied).sum();
        let at = started.elapsed();
        if sum - base >= records {
            break at;
        }
        if sum != last_sum {
            last_sum = sum;
            last_change = Instant::now();
        }
        if last_change.elapsed() > STALL {
            bail!(
                "stalled: {} of {records} records applied, nothing more for {STALL:?}; \
                 duplicates {}, rejects {}",
                sum - base,
                now.iter().map(|m| m.duplicates).sum::<u64>(),
                now.iter().map(|m| m.rejects).sum::<u64>()
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  … {:.0} s: {} of {records} applied ({:.0}/s so far)",
                at.as_secs_f64(),
                sum - base,
                (sum - base) as f64 / at.as_secs_f64()
            );
        }
    };
    let cpu_end = CpuSnap::take();
    let mut publish_end = Duration::ZERO;
    let mut pub_errors = 0;
    for t in tasks {
        let (done, errors) = t.await.context("a publisher task")??;
        publish_end = publish_end.max(done);
        pub_errors += errors;
    }
    let (waits, wait_samples) = match load_sampler {
        Some(s) => s.stop().await,
        None => (Vec::new(), 0),
    };

    // Correctness: exactly the records sent, none twice, none rejected, none dropped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = scrape_all(&http, &apis).await?;
    let per_instance: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.applied - b.applied)
        .collect();
    let applied: u64 = per_instance.iter().sum();
    let duplicates: u64 = after.iter().map(|m| m.duplicates).sum();
    let rejects: u64 = after.iter().map(|m| m.rejects).sum();
    let dropped = sys_dropped(&broker).await;

    // Who used the CPU.
    let backends = match &db {
        Some(db) => {
            let name = db.name().to_owned();
            db.with(move |c| {
                let rows = c.query(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1",
                    &[&name],
                )?;
                Ok(rows.iter().map(|r| r.get::<_, i32>(0) as u32).collect())
            })?
        }
        None => HashSet::new(),
    };
    // On PostgreSQL, the store itself: every record in the log, every vehicle's driver placed.
    let logged = match &db {
        Some(db) => Some(db.with(|c| {
            let row = c.query_one(
                "SELECT (SELECT count(*) FROM records), \
                 (SELECT count(*) FROM vehicles WHERE category IS NOT NULL)",
                &[],
            )?;
            Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
        })?),
        None => None,
    };
    let cloud_pids: HashSet<u32> = clouds.iter().filter_map(|c| c.process.id()).collect();
    let mosq = mosquitto_pid(broker.dir());
    let cpu = cpu_split(
        &cpu_start,
        &cpu_end,
        end.as_secs_f64(),
        &cloud_pids,
        mosq,
        &backends,
    );

    // Stop.
    for c in clouds {
        let status = c.sigterm()?;
        if !status.success() {
            println!("  note: an instance exited with {status}");
        }
    }
    drop(broker);
    drop(db);

    let vehicles_used = (cli.vehicles as u64).min(envelopes);
    if let Some((log, drivers)) = logged
        && (log != records || drivers != vehicles_used)
    {
        bail!(
            "the database holds {log} records of {records} and {drivers} placed drivers of \
             {vehicles_used}"
        );
    }
    if applied != records || rejects != 0 || pub_errors != 0 || dropped.is_some_and(|d| d != 0) {
        bail!(
            "applied {applied} of {records} records (duplicates {duplicates}, rejects {rejects}, \
             publisher connection errors {pub_errors}, broker drops {dropped:?})"
        );
    }
    Ok(Row {
        setup: setup.name(),
        shape: shape.name(),
        records,
        envelopes,
        secs: end.as_secs_f64(),
        per_instance,
        publish_secs: publish_end.as_secs_f64(),
        duplicates,
        rejects,
        dropped,
        logged,
        cpu,
        waits,
        wait_samples,
        load: rapport_testbed::load::report::machine_load(),
    })
}

/// One publisher connection and its share of the envelopes.
struct Pub {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    msgs: Vec<(String, Vec<u8>)>,
    poll: tokio::task::JoinHandle<()>,
}

impl Pub {
    async fn connect(
        broker: &Mosquitto,
        p: usize,
        inflight: u16,
        msgs: Vec<(String, Vec<u8>)>,
    ) -> anyhow::Result<Self> {
        let mut o = MqttOptions::new(format!("bench-pub-{p}"), "127.0.0.1", broker.port());
        o.set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_inflight(inflight)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(o, usize::from(inflight) * 2);
        let acked = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (a, e) = (Arc::clone(&acked), Arc::clone(&errors));
        let poll = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        e.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .map_err(|_| anyhow!("publisher {p} not connected within 10 s"))?
            .map_err(|_| anyhow!("publisher {p}: its event loop ended"))?;
        Ok(Self {
            client,
            acked,
            errors,
            msgs,
            poll,
        })
    }

    /// Publishes everything; returns when the broker acked it all, with the time from this
    /// run's first publish (`started`) to this task's last PUBACK and the connection errors seen.
    async fn run(self, started: Instant) -> anyhow::Result<(Duration, u64)> {
        let n = self.msgs.len() as u64;
        for (t, payload) in self.msgs {
            self.client
                .publish(t, QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| anyhow!("publishing: {e}"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.acked.load(Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                bail!(
                    "publisher: {} of {n} publishes acked after 600 s",
                    self.acked.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let done = started.elapsed();
        // Before the disconnect, whose end the event loop reports as an error too.
        let errors = self.errors.load(Ordering::Relaxed);
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.poll.abort();
        Ok((done, errors))
    }
}

/// One instance's ingest counters.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    applied: u64,
    duplicates: u64,
    rejects: u64,
}

async fn scrape_all(http: &reqwest::Client, apis: &[String]) -> anyhow::Result<Vec<Counters>> {
    let mut out = Vec::with_capacity(apis.len());
    for api in apis {
        let text = http
            .get(format!("{api}/metrics"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {api}/metrics"))?
            .text()
            .await?;
        let get = |name: &str| rapport_harness::http::metric(&text, name).unwrap_or(0);
        let rejects = text
            .lines()
            .filter(|l| l.starts_with("rapport_ingest_rejects_total"))
            .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<u64>().ok())
            .sum();
        out.push(Counters {
            applied: get("rapport_ingest_records_applied_total"),
            duplicates: get("rapport_ingest_duplicates_skipped_total"),
            rejects,
        });
    }
    Ok(out)
}

async fn wait_subscribed(http: &reqwest::Client, apis: &[String]) -> anyhow::Result<()> {
    let deadline = Instant::now() + SUBSCRIBE_WAIT;
    for api in apis {
        loop {
            let subscribed = match http.get(format!("{api}/healthz")).send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["ingest"]["subscribed"].as_bool())
                    .unwrap_or(false),
                _ => false,
            };
            if subscribed {
                break;
            }
            if Instant::now() > deadline {
                bail!("{api}: no uplink subscription within {SUBSCRIBE_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Mosquitto's `$SYS/broker/publish/messages/dropped` (published every `sys_interval`);
/// `None` if it did not come within 3 s.
async fn sys_dropped(broker: &Mosquitto) -> Option<u64> {
    let mut o = MqttOptions::new("bench-sys", "127.0.0.1", broker.port());
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    client
        .subscribe("$SYS/broker/publish/messages/dropped", QoS::AtMostOnce)
        .await
        .ok()?;
    let found = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    return std::str::from_utf8(&p.payload)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    found
}

/// Samples what the database's backends are doing, every [`PG_SAMPLE`], on a thread.
struct WaitSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(BTreeMap<String, u64>, u64)>,
}

impl WaitSampler {
    fn start(db: String) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut counts = BTreeMap::new();
            let mut samples = 0u64;
            while !s.load(Ordering::Relaxed) {
                let out = Command::new("psql")
                    .args([
                        "-X",
                        "-q",
                        "-A",
                        "-t",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                        "-c",
                    ])
                    .arg(format!(
                        "SELECT coalesce(state, '?') || ' ' || coalesce(wait_event_type || ':' \
                         || wait_event, 'on CPU') FROM pg_stat_activity WHERE datname = '{db}' \
                         AND backend_type = 'client backend'"
                    ))
                    .output();
                if let Ok(out) = out
                    && out.status.success()
                {
                    samples += 1;
                    for line in String::from_utf8_lossy(&out.stdout).lines() {
                        let line = line.trim();
                        if !line.is_empty() {
                            *counts.entry(line.to_owned()).or_insert(0) += 1;
                        }
                    }
                }
                std::thread::sleep(PG_SAMPLE);
            }
            (counts, samples)
        });
        Self { stop, thread }
    }

    async fn stop(self) -> (Vec<(String, u64)>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        let (counts, samples) = tokio::task::spawn_blocking(move || thread.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut v: Vec<(String, u64)> = counts.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        (v, samples)
    }
}

/// CPU times of the machine and of every process, from `/proc`.
struct CpuSnap {
    busy: u64,
    all: u64,
    procs: HashMap<u32, (String, u64)>,
}

impl CpuSnap {
    fn take() -> Self {
        let (busy, all) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?.to_owned();
                let v: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|w| w.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal
                let get = |i: usize| v.get(i).copied().unwrap_or(0);
                let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
                Some((busy, busy + get(3) + get(4)))
            })
            .unwrap_or((0, 0));
        let mut procs = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(p) = proc_cpu(pid) {
                    procs.insert(pid, p);
                }
            }
        }
        Self { busy, all, procs }
    }
}

/// A process's name and user + system CPU ticks.
fn proc_cpu(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // After the name: state(0) … utime(11) stime(12).
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The Mosquitto process whose command line names `dir` (its config is there).
fn mosquitto_pid(dir: &Path) -> Option<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains("mosquitto") && cmd.contains(&needle)).then_some(pid)
    })
}

/// Cores used over the window by: the cloud instances, this program, Mosquitto, the
/// database's backends, other PostgreSQL processes, the rest of the machine; and the
/// machine's total.
fn cpu_split(
    a: &CpuSnap,
    b: &CpuSnap,
    secs: f64,
    clouds: &HashSet<u32>,
    mosquitto: Option<u32>,
    backends: &HashSet<u32>,
) -> Vec<(String, f64)> {
    let me = std::process::id();
    let delta = |pid: &u32, ticks: u64| -> u64 {
        let before = a.procs.get(pid).map_or(0, |p| p.1);
        ticks.saturating_sub(before)
    };
    let (mut cloud, mut bench, mut mosq, mut mine, mut pg_other, mut named) = (0, 0, 0, 0, 0, 0);
    for (pid, (comm, ticks)) in &b.procs {
        let d = delta(pid, *ticks);
        if clouds.contains(pid) {
            cloud += d;
        } else if *pid == me {
            bench += d;
        } else if Some(*pid) == mosquitto {
            mosq += d;
        } else if backends.contains(pid) {
            mine += d;
        } else if comm == "postgres" {
            pg_other += d;
        } else {
            continue;
        }
        named += d;
    }
    let busy = b.busy.saturating_sub(a.busy);
    let all = b.all.saturating_sub(a.all).max(1);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let c = |t: u64| t as f64 / TICKS_PER_S / secs;
    let mut v = vec![("cloud".to_owned(), c(cloud))];
    if !backends.is_empty() {
        v.push(("pg backends".into(), c(mine)));
    }
    v.push(("pg other".into(), c(pg_other)));
    v.push(("mosquitto".into(), c(mosq)));
    v.push(("bench".into(), c(bench)));
    v.push(("rest".into(), c(busy.saturating_sub(named))));
    v.push(("machine".into(), busy as f64 / all as f64 * cores));
    v
}

fn print_detail(r: &Row) {
    let split = r
        .per_instance
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ");
    println!(
        "  applied {} records ({} envelopes) in {:.2} s = {:.0} records/s; per instance {split}",
        r.records,
        r.envelopes,
        r.secs,
        r.rate()
    );
    println!(
        "  publishers: all acked by the broker after {:.2} s = {:.0} records/s ({:.0} publishes/s)",
        r.publish_secs,
        r.records as f64 / r.publish_secs,
        r.envelopes as f64 / r.publish_secs
    );
    println!(
        "  duplicates {}, rejects {}, broker drops {}",
        r.duplicates,
        r.rejects,
        r.dropped
            .map_or_else(|| "unknown ($SYS did not answer)".into(), |d| d.to_string())
    );
    if let Some((log, drivers)) = r.logged {
        println!("  in the database: {log} records logged, {drivers} drivers placed");
    }
    let cpu = r
        .cpu
        .iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("  CPU, cores busy over the window: {cpu}");
    if r.wait_samples > 0 {
        let waits = r
            .waits
            .iter()
            .take(6)
            .map(|(k, n)| format!("{k} {:.1}", *n as f64 / r.wait_samples as f64))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "  PostgreSQL client backends, mean count by state and wait ({} samples): {waits}",
            r.wait_samples
        );
    }
    println!("  load: {}", r.load);
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| setup | shape | records | seconds | records/s | per instance | publish-only records/s | CPU cores: cloud / pg backends / mosquitto / rest / machine |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let split = r
            .per_instance
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" / ");
        let get = |k: &str| {
            r.cpu
                .iter()
                .find(|(n, _)| n == k)
                .map_or_else(|| "–".to_owned(), |(_, v)| format!("{v:.2}"))
        };
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {split} | {:.0} | {} / {} / {} / {} / {} |",
            r.setup,
            r.shape,
            r.records,
            r.secs,
            r.rate(),
            r.records as f64 / r.publish_secs,
            get("cloud"),
            get("pg backends"),
            get("mosquitto"),
            get("rest"),
            get("machine"),
        );
    }
}
