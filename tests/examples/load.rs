//! The load mode from the command line until `rapport-testbed --load` calls it:
//!
//! ```sh
//! cargo build --release -p rapport-cloud -p rapport-testbed --example load
//! target/release/examples/load --vehicles 10000 --duration-s 60 --faults 100
//! # three instances on one PostgreSQL database (an empty one) behind Mosquitto:
//! target/release/examples/load --broker mosquitto --store postgres://postgres@127.0.0.1/load --instances 3
//! ```
//!
//! Prints the report's table; exits 1 when the run was not correct (a timing never fails it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use rapport_testbed::load::{self, BrokerKind, CloudMode, LoadOptions, Store};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Broker {
    /// The cloud's embedded rumqttd.
    Embedded,
    /// A Mosquitto child process, the cloud one of its clients.
    Mosquitto,
}

/// Many lightweight simulated vehicles against the real cloud: ingest rate and fault latency.
#[derive(Parser, Debug)]
struct Cli {
    /// Simulated vehicles.
    #[arg(long, default_value_t = 1000)]
    vehicles: usize,
    /// The measured window, seconds (after every vehicle connected).
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// Critical faults injected during the window (each on its own vehicle).
    #[arg(long, default_value_t = 50)]
    faults: usize,
    /// Seed of the fault plan.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The broker.
    #[arg(long, value_enum, default_value_t = Broker::Embedded)]
    broker: Broker,
    /// Vehicles started per second.
    #[arg(long, default_value_t = 500)]
    connect_rate: u32,
    /// Milliseconds between a vehicle's odometer readings.
    #[arg(long, default_value_t = 5000)]
    record_interval_ms: u64,
    /// Run the cloud in this process instead of as a `rapport-cloud` child (small runs).
    #[arg(long)]
    in_process: bool,
    /// The `rapport-cloud` binary (default: $RAPPORT_CLOUD_BIN, else next to this program).
    #[arg(long)]
    cloud_bin: Option<PathBuf>,
    /// Keep the run's files here.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The cloud's store: `sled` (a fresh one) or a PostgreSQL URL (an empty database).
    #[arg(long, default_value = "sled", value_parser = Store::parse)]
    store: Store,
    /// Cloud instances sharing the fleet (more than one: a PostgreSQL store and Mosquitto).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let opts = LoadOptions {
        vehicles: cli.vehicles,
        duration: Duration::from_secs(cli.duration_s),
        faults: cli.faults,
        seed: cli.seed,
        broker: match cli.broker {
            Broker::Embedded => BrokerKind::Embedded,
            Broker::Mosquitto => BrokerKind::Mosquitto,
        },
        connect_rate: cli.connect_rate,
        record_interval: Duration::from_millis(cli.record_interval_ms),
        cloud: if cli.in_process {
            CloudMode::InProcess
        } else {
            CloudMode::Child(cli.cloud_bin)
        },
        work_dir: cli.work_dir,
        store: cli.store,
        instances: cli.instances,
        ..LoadOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(load::run(opts))?;
    println!("{report}");
    Ok(if report.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
