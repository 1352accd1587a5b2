//! A cloud instance starting against a large fleet in PostgreSQL: how long until it serves
//! its API and its fleet tick runs, and what the operator's two big reads cost there.
//!
//! ```sh
//! cargo build --release -p rapport-cloud -p rapport-testbed --examples --bins
//! target/release/examples/start_million                       # 1,000,000 vehicles
//! target/release/examples/start_million --vehicles 200000 --db rapport_bench_200k --keep
//! target/release/examples/start_million --db rapport_bench_200k --keep   # start again only
//! ```
//!
//! 1. **Fill.** A fresh database (or `--db NAME`: made if missing; a database that already
//!    holds vehicles is used as it is, not filled again) gets `--vehicles` vehicles through the
//!    cloud's own store port, in this process, on `--threads` threads: each vehicle registered
//!    (80 % passenger, 20 % commercial, delivered over the last five years, half with the
//!    engagement consent), then its first drive ingested (an odometer reading and the break-in
//!    advice acknowledged), so every driver is placed in layers as a real fleet's would be.
//!    The rate is printed. Downlinks the fleet's strategies decided while filling are
//!    counted and deleted, as if they had been handed to MQTT: left pending, the instance
//!    under test would publish them as it starts, work a running fleet would not have at its
//!    start (2,247 of them at 1,000,000 vehicles). `--fill-budget-s`
//!    stops the fill early; the figures are then at the size reached, labelled so.
//! 2. **Start.** One vehicle is made due (`layer_due` = 1 ms after the epoch, so it is the
//!    first the tick claims). The release `rapport-cloud` binary starts on the database (an
//!    external Mosquitto as its broker) and is timed from the spawn until: its API line,
//!    `/healthz` 200, the uplink subscription, and the moment the tick has processed the due
//!    vehicle (its `due_at` changed; polled with psql every 25 ms).
//! 3. **Reads.** `GET /api/v1/layers` (the layer matrix: a GROUP BY over every placed driver;
//!    its total must equal the drivers placed) and `GET /api/v1/vehicles?limit=50`, each 5
//!    times: the first and the median. Then the database's size, the vehicles table's, the
//!    record log's and the timeline's, and the instance's peak resident memory.
//!
//! The database was just written, so PostgreSQL's cache is warm (the server is shared and
//! not restarted here); a cold start after a server restart reads more from disk.
//!
//! Owns the fill, the timings and the table. Does not own the store ([`rapport_cloud::store`]),
//! the broker ([`rapport_harness::mosquitto`]) or the cloud config ([`rapport_harness::cloud`]).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use rapport_cloud::config::{Backend, DbUrl};
use rapport_cloud::fleet::model::{Category, Consents, Registration};
use rapport_cloud::fleet::shell::{FleetSettings, rules_from};
use rapport_cloud::store::{Envelope, Store};
use rapport_harness::cloud::{API_LINE, BrokerKind, OPERATOR};
use rapport_harness::mosquitto::Mosquitto;
use rapport_harness::process::Process;
use rapport_harness::records::first_drive;
use rapport_shared::v1::uplink::Record;
use rapport_shared::{Timestamp, Uplink, Vin};

/// A day in milliseconds.
const DAY_MS: u64 = 86_400_000;
/// How long the instance may take to print its API line.
const START_WAIT: Duration = Duration::from_secs(300);
/// How long to wait for the tick after the API is up.
const TICK_WAIT: Duration = Duration::from_secs(120);

/// An instance starting against many drivers in PostgreSQL.
#[derive(Parser, Debug)]
struct Cli {
    /// Vehicles (each with a registration and a placed driver).
    #[arg(long, default_value_t = 1_000_000)]
    vehicles: usize,
    /// Fill threads (each its own store-port calls; the store's pool has `threads + 2`
    /// connections).
    #[arg(long, default_value_t = 3)]
    threads: usize,
    /// Vehicles per store call (one transaction for the registrations, one for the ingest).
    #[arg(long, default_value_t = 500)]
    group: usize,
    /// Stop filling after this many seconds and measure at the size reached (0: no limit).
    #[arg(long, default_value_t = 0)]
    fill_budget_s: u64,
    /// Use (and make if missing) this database instead of a fresh one; lower-case letters,
    /// digits and `_`.
    #[arg(long)]
    db: Option<String>,
    /// Keep the database at the end.
    #[arg(long)]
    keep: bool,
    /// The `rapport-cloud` binary (default: next to this program, or one folder up).
    #[arg(long)]
    cloud_bin: Option<PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if cli.threads == 0 || cli.group == 0 || cli.vehicles == 0 {
        bail!("--threads, --group and --vehicles must be at least 1");
    }
    let bin = rapport_testbed::load::cloud::find_binary(cli.cloud_bin.as_deref())?;
    println!(
        "start_million: {} cores, SHARED with other builds and tests; load: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        rapport_testbed::load::report::machine_load()
    );
    let name = match &cli.db {
        Some(n) => {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                bail!("--db {n:?}: use lower-case letters, digits and _ only");
            }
            n.clone()
        }
        None => format!("rapport_bench_million_{}", std::process::id()),
    };
    let exists = psql(
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
    )?;
    if exists.trim().is_empty() {
        psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        println!("database {name} created");
    } else {
        println!("database {name} exists");
    }
    let result = measure(&cli, &bin, &name);
    if cli.keep {
        println!("database {name} kept");
    } else {
        match psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        ) {
            Ok(_) => println!("database {name} dropped"),
            Err(e) => println!("database {name} NOT dropped: {e:#}"),
        }
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// What was measured, for the table.
struct Figures {
    drivers: u64,
    fill: Option<(u64, f64)>,
    downlinks_deleted: u64,
    api_line: f64,
    healthz: f64,
    subscribed: f64,
    tick: f64,
    layers: (f64, f64),
    layers_total: u64,
    layers_cells: usize,
    vehicles: (f64, f64),
    db_bytes: u64,
    vehicles_bytes: u64,
    records_bytes: u64,
    timeline_bytes: u64,
    peak_rss_kb: Option<u64>,
}

fn measure(cli: &Cli, bin: &Path, db: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let mut config = rapport_harness::cloud::config(dir.path(), BrokerKind::Embedded, "fill")?;
    config.store.backend = Backend::Postgres;
    config.store.url = Some(DbUrl::new(url.clone()));
    config.store.url_env = None;
    config.store.pool_size = u32::try_from(cli.threads + 2).unwrap_or(u32::MAX);
    config.store.statement_timeout_ms = 600_000;

    // 1. Fill (the store port migrates the schema at open).
    let store = Store::open(&config).map_err(|e| anyhow!("opening the store: {e}"))?;
    let present: u64 = psql(db, "SELECT count(*) FROM vehicles")?
        .trim()
        .parse()
        .context("counting vehicles")?;
    let mut fill = None;
    if present == 0 {
        let (n, secs) = fill_store(cli, &config, &store)?;
        fill = Some((n, secs));
    } else {
        println!("{present} vehicles already there: not filled again");
    }
    drop(store);
    let downlinks_deleted: u64 = psql(
        db,
        "WITH d AS (DELETE FROM downlinks RETURNING 1) SELECT count(*) FROM d",
    )?
    .trim()
    .parse()
    .unwrap_or(0);
    psql(db, "VACUUM ANALYZE")?;
    let drivers: u64 = psql(
        db,
        "SELECT count(*) FROM vehicles WHERE category IS NOT NULL",
    )?
    .trim()
    .parse()
    .context("counting drivers")?;
    println!("{drivers} drivers placed; {downlinks_deleted} pending downlinks deleted");

    // 2. Start.
    let probe = vin_of(0)?;
    psql(
        db,
        &format!("UPDATE vehicles SET layer_due = 1 WHERE vin = '{probe}'"),
    )?;
    let due_before = psql(
        db,
        &format!("SELECT due_at FROM vehicles WHERE vin = '{probe}'"),
    )?;
    if due_before.trim() != "1" {
        bail!("the probe vehicle {probe} is not due (due_at {due_before:?})");
    }
    let broker = Mosquitto::start(rapport_harness::cloud::mosquitto_options())?
        .ok_or_else(|| anyhow!("mosquitto is not installed"))?;
    let mut c = rapport_harness::cloud::config(
        dir.path(),
        BrokerKind::External(broker.addr()),
        "rapport-cloud-million",
    )?;
    c.store.backend = Backend::Postgres;
    c.store.url = Some(DbUrl::new(url));
    c.store.url_env = None;
    let path = rapport_harness::cloud::write(&c, dir.path())?;
    let log = dir.path().join("cloud.log");
    let mut command = Command::new(bin);
    command
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info");
    let started = Instant::now();
    let mut cloud = Process::spawn("rapport-cloud", command, Some(&log))?;
    let tick_seen = Arc::new(AtomicU64::new(0));
    let tick_stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (db, probe) = (db.to_owned(), probe.to_string());
        let (seen, stop) = (Arc::clone(&tick_seen), Arc::clone(&tick_stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let due = psql(
                    &db,
                    &format!("SELECT coalesce(due_at, -1) FROM vehicles WHERE vin = '{probe}'"),
                );
                if let Ok(d) = due
                    && d.trim() != "1"
                    && !d.trim().is_empty()
                {
                    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    seen.store(us.max(1), Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let api: std::net::SocketAddr = cloud
        .wait_line(START_WAIT, |line| {
            line.strip_prefix(API_LINE)?.trim().parse().ok()
        })
        .map_err(|e| anyhow!("the instance did not start: {e}"))?;
    let api_line = started.elapsed().as_secs_f64();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let http = rapport_harness::http::client();
    let base = format!("http://{api}");
    let (healthz, subscribed) = runtime.block_on(async {
        let mut healthz = None;
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                let t = started.elapsed().as_secs_f64();
                healthz.get_or_insert(t);
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                if v["ingest"]["subscribed"].as_bool() == Some(true) {
                    return Ok((healthz.unwrap_or(t), t));
                }
            }
            if started.elapsed() > START_WAIT {
                bail!("no healthy, subscribed instance within {START_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })?;
    let deadline = Instant::now() + TICK_WAIT;
    while tick_seen.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    tick_stop.store(true, Ordering::Relaxed);
    let _ = poller.join();
    let tick_us = tick_seen.load(Ordering::Relaxed);
    if tick_us == 0 {
        bail!(
            "the tick did not process the due vehicle within {TICK_WAIT:?}; log:\n{}",
            cloud.log_tail()
        );
    }
    let tick = tick_us as f64 / 1e6;

    // 3. Reads.
    let (layers, layers_total, layers_cells, vehicles) = runtime.block_on(async {
        let mut times = Vec::new();
        let mut body = serde_json::Value::Null;
        for _ in 0..5 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/api/v1/layers"))
                .bearer_auth(OPERATOR)
                .send()
                .await?
                .error_for_status()?;
            body = r.json().await?;
            times.push(t.elapsed().as_secs_f64());
        }
        let layers = first_and_median(&times);
        let total = body["total"].as_u64().unwrap_or(0);
        let cells = body["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["counts"].as_array())
                    .flatten()
                    .filter(|c| c.as_u64().unwrap_or(0) > 0)
                    .count()
            })
            .unwrap_or(0);
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/api/v1/vehicles?limit=50"))
                .bearer_auth(OPERATOR)
                .send()
                .await?
                .error_for_status()?;
            let v: serde_json::Value = r.json().await?;
            times.push(t.elapsed().as_secs_f64());
            if v.to_string().len() < 100 {
                bail!("GET /api/v1/vehicles?limit=50 answered {v}");
            }
        }
        Ok::<_, anyhow::Error>((layers, total, cells, first_and_median(&times)))
    })?;
    let peak_rss_kb = cloud.id().and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    });
    // Where the start went: the instance's own log up to its API line (RUST_LOG=info).
    println!("the instance's log up to its API line:");
    for line in std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .take_while(|l| !l.contains("API listening"))
        .take(20)
    {
        println!("  {line}");
    }
    match cloud.terminate(Duration::from_secs(15)) {
        Ok(Some(s)) if s.success() => {}
        other => println!("note: the instance's stop: {other:?}"),
    }
    drop(broker);
    let sizes = psql(
        db,
        "SELECT pg_database_size(current_database()), pg_total_relation_size('vehicles'), \
         (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits \
          WHERE inhparent = 'records'::regclass), pg_total_relation_size('timeline')",
    )?;
    let sizes: Vec<u64> = sizes
        .trim()
        .split('|')
        .map(|s| s.trim().parse().unwrap_or(0))
        .collect();
    let size = |i: usize| sizes.get(i).copied().unwrap_or(0);
    let f = Figures {
        drivers,
        fill,
        downlinks_deleted,
        api_line,
        healthz,
        subscribed,
        tick,
        layers,
        layers_total,
        layers_cells,
        vehicles,
        db_bytes: size(0),
        vehicles_bytes: size(1),
        records_bytes: size(2),
        timeline_bytes: size(3),
        peak_rss_kb,
    };
    print_table(cli, &f);
    if f.layers_total != f.drivers {
        bail!(
            "the layer matrix counts {} drivers, the database {}",
            f.layers_total,
            f.drivers
        );
    }
    Ok(())
}

/// Registers and ingests the first drive of every vehicle, in groups, on several threads.
/// Returns the vehicles filled and the seconds it took.
fn fill_store(
    cli: &Cli,
    config: &rapport_cloud::config::Config,
    store: &Store,
) -> anyhow::Result<(u64, f64)> {
    let rules = rules_from(&FleetSettings::from_config(config), Vec::new())
        .map_err(|e| anyhow!("the fleet's rules: {e}"))?;
    let now = rapport_cloud::ingest::worker::wall_now();
    store
        .start_fleet(&rules, now)
        .map_err(|e| anyhow!("start_fleet: {e}"))?;
    let chunks = cli.vehicles.div_ceil(cli.group);
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let budget = (cli.fill_budget_s > 0).then(|| Duration::from_secs(cli.fill_budget_s));
    let result: anyhow::Result<()> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..cli.threads {
            handles.push(s.spawn(|| -> anyhow::Result<()> {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= chunks {
                        return Ok(());
                    }
                    let range = k * cli.group..((k + 1) * cli.group).min(cli.vehicles);
                    let mut regs = Vec::with_capacity(range.len());
                    let mut ups = Vec::with_capacity(range.len());
                    for i in range {
                        let (reg, up) = vehicle(i, now)?;
                        regs.push(reg);
                        ups.push(up);
                    }
                    store
                        .register(&rules, &regs, false, now)
                        .map_err(|e| anyhow!("register: {e}"))?;
                    let ingested = store
                        .ingest(Some(&rules), &ups, now)
                        .map_err(|e| anyhow!("ingest: {e}"))?;
                    for e in &ingested.envelopes {
                        match e {
                            Envelope::Applied(stats) if stats.applied == 2 => {}
                            other => bail!("a first drive did not apply: {other:?}"),
                        }
                    }
                    done.fetch_add(ups.len() as u64, Ordering::Relaxed);
                }
            }));
        }
        let mut last = Instant::now();
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() >= Duration::from_secs(15) {
                last = Instant::now();
                let n = done.load(Ordering::Relaxed);
                let t = started.elapsed().as_secs_f64();
                println!(
                    "  fill: {n} of {} vehicles in {t:.0} s ({:.0}/s); load {}",
                    cli.vehicles,
                    n as f64 / t,
                    rapport_testbed::load::report::machine_load()
                );
            }
            if budget.is_some_and(|b| started.elapsed() > b) && !stop.load(Ordering::Relaxed) {
                println!("  fill budget of {} s reached: stopping", cli.fill_budget_s);
                stop.store(true, Ordering::Relaxed);
            }
        }
        for h in handles {
            h.join().map_err(|_| anyhow!("a fill thread panicked"))??;
        }
        Ok(())
    });
    result?;
    let n = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "filled {n} vehicles in {secs:.1} s = {:.0} vehicles/s ({} threads, {} per call)",
        n as f64 / secs,
        cli.threads,
        cli.group
    );
    Ok((n, secs))
}

/// Vehicle `i`: its registration and its first drive.
fn vehicle(i: usize, now: Timestamp) -> anyhow::Result<(Registration, Uplink)> {
    let vin = vin_of(i)?;
    let n = i as u64;
    // Delivered 0–5 years ago, spread; the first drive up to 200 days ago, not before it.
    let owned_days = n.wrapping_mul(7_919) % 1_826;
    let drove_days = (n % 200).min(owned_days);
    let delivered = Timestamp::from_millis(now.as_millis() - owned_days * DAY_MS);
    let at = Timestamp::from_millis(now.as_millis() - drove_days * DAY_MS);
    let reg = Registration {
        vin,
        category: if i % 5 == 4 {
            Category::Commercial
        } else {
            Category::Passenger
        },
        line: if i % 5 == 4 {
            "bench tractor".into()
        } else {
            "bench compact".into()
        },
        delivered: Some(delivered),
        dealer: None,
        region: Some("DE-BE".into()),
        consents: Consents {
            partner_sharing: !i.is_multiple_of(3),
            engagement: i.is_multiple_of(2),
        },
        owner_since: None,
        owner: None,
    };
    let records = first_drive(1_000 + n % 150_000)
        .into_iter()
        .zip(1u64..)
        .map(|(body, seq)| Record { seq, at, body })
        .collect();
    Ok((reg, Uplink { vin, records }))
}

fn vin_of(i: usize) -> anyhow::Result<Vin> {
    format!("RPMLN{i:012}")
        .parse()
        .map_err(|e| anyhow!("bench VIN {i}: {e}"))
}

fn first_and_median(times: &[f64]) -> (f64, f64) {
    let first = times.first().copied().unwrap_or(0.0);
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    (first, sorted.get(sorted.len() / 2).copied().unwrap_or(0.0))
}

fn print_table(cli: &Cli, f: &Figures) {
    let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
    let mb = |b: u64| format!("{:.0} MB", b as f64 / 1e6);
    println!();
    if f.drivers < cli.vehicles as u64 {
        println!(
            "NOTE: measured at {} drivers, not the {} asked for (fill budget): scale linearly \
             only what is per-row (fill time, sizes, the matrix's GROUP BY).",
            f.drivers, cli.vehicles
        );
    }
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| drivers placed (registered + first drive) | {} |",
        f.drivers
    );
    if let Some((n, secs)) = f.fill {
        println!(
            "| fill through the store port ({} threads) | {n} vehicles in {secs:.0} s = {:.0} vehicles/s |",
            cli.threads,
            n as f64 / secs
        );
    }
    println!(
        "| pending downlinks the fill left (deleted before the start) | {} |",
        f.downlinks_deleted
    );
    println!("| spawn → API line | {} |", ms(f.api_line));
    println!("| spawn → /healthz 200 | {} |", ms(f.healthz));
    println!("| spawn → uplink subscription | {} |", ms(f.subscribed));
    println!(
        "| spawn → first tick processed the due vehicle | {} |",
        ms(f.tick)
    );
    println!(
        "| GET /api/v1/layers, first / median of 5 | {} / {} (total {}, {} non-empty cells) |",
        ms(f.layers.0),
        ms(f.layers.1),
        f.layers_total,
        f.layers_cells
    );
    println!(
        "| GET /api/v1/vehicles?limit=50, first / median of 5 | {} / {} |",
        ms(f.vehicles.0),
        ms(f.vehicles.1)
    );
    println!("| database size | {} |", mb(f.db_bytes));
    println!(
        "| vehicles table (with indexes) / record log / timeline | {} / {} / {} |",
        mb(f.vehicles_bytes),
        mb(f.records_bytes),
        mb(f.timeline_bytes)
    );
    if let Some(kb) = f.peak_rss_kb {
        println!(
            "| the instance's peak resident memory | {:.0} MB |",
            kb as f64 / 1e3
        );
    }
    println!(
        "load at end: {}",
        rapport_testbed::load::report::machine_load()
    );
}

/// Runs `sql` with psql on database `db` (unaligned, tuples only); its output.
fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql on {db}: {sql}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
