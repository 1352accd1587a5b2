//! `rapport-testbed`: the one-command demo. In one process: the embedded MQTT broker and the
//! cloud on a temporary store, partner webhook receivers, and simulated vehicles — each a real
//! agent on a virtual CAN bus — driven through weeks of accelerated time, with a live log, a
//! progress bar, a summary table, and the dashboard served while it runs.

use std::io::IsTerminal as _;
use std::net::SocketAddr;

use clap::Parser;
use rapport_testbed::scenario::{Options, Testbed};

/// Run the whole rapport system in one process (broker, cloud, vehicles, partners).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Simulated vehicles (passenger cars on OBD-II / UDS / DBC and J1939 trucks, cycled).
    #[arg(long, default_value_t = 4)]
    vehicles: usize,
    /// Days of simulated time.
    #[arg(long, default_value_t = 28)]
    days: u32,
    /// Simulated seconds per real second (0: as fast as the machine goes).
    #[arg(long, default_value_t = 40_000.0)]
    speedup: f64,
    /// Seed of every random choice: the same seed tells the same story.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the cloud and its dashboard up after the story ends (until Ctrl-C).
    #[arg(long)]
    serve: bool,
    /// Where the cloud's API and dashboard listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Print only the summary (no live log).
    #[arg(long)]
    quiet: bool,
    /// Soak mode: write a sample (memory, store sizes, records, wall time) every
    /// `--sample-every-days` simulated days to this CSV file, check the end-of-story
    /// invariants, and print where the time went (see docs/reliability.md, section 5).
    #[arg(long)]
    samples: Option<std::path::PathBuf>,
    /// Soak mode: simulated days between two samples.
    #[arg(long, default_value_t = 30)]
    sample_every_days: u32,
    /// Load mode: many lightweight vehicles (real MQTT clients) against the real cloud,
    /// measuring ingest and fault-to-webhook latency (see README, "Load mode").
    #[arg(long)]
    load: bool,
    /// Load mode: the measured window, seconds.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// Load mode: critical faults injected (each on its own vehicle).
    #[arg(long, default_value_t = 100)]
    faults: usize,
    /// Load mode: broker the vehicles use (`embedded` in the cloud, or a `mosquitto` child).
    #[arg(long, default_value = "embedded")]
    broker: String,
    /// Load mode: the cloud's store, `sled` (a fresh one) or a PostgreSQL URL
    /// (`postgres://user@host:5432/db`, an empty database: the run's vehicles go into it).
    #[arg(long, default_value = "sled")]
    store: String,
    /// Load mode: cloud instances sharing the fleet (more than one needs a PostgreSQL
    /// `--store` and `--broker mosquitto`).
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

fn main() -> std::process::ExitCode {
    // A user's mistake or a busy port is one line, not a backtrace (anyhow's `Debug` prints
    // one whenever RUST_BACKTRACE is set).
    match start(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rapport-testbed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    if cli.vehicles == 0 || cli.days == 0 {
        anyhow::bail!("--vehicles and --days must be at least 1");
    }
    if !(cli.speedup.is_finite() && cli.speedup >= 0.0) {
        anyhow::bail!("--speedup must be a number >= 0 (0: as fast as possible)");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAPPORT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,rumqttd=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if cli.load {
        return rt.block_on(load(cli));
    }
    if cli.samples.is_some() {
        return rt.block_on(soak(cli));
    }
    rt.block_on(run(cli))
}

async fn load(cli: Cli) -> anyhow::Result<()> {
    use rapport_testbed::load::{BrokerKind, CloudMode, LoadOptions, Store};
    let broker = match cli.broker.as_str() {
        "embedded" => BrokerKind::Embedded,
        "mosquitto" => BrokerKind::Mosquitto,
        other => anyhow::bail!("--broker {other:?}: use embedded or mosquitto"),
    };
    let store = Store::parse(&cli.store).map_err(anyhow::Error::msg)?;
    let report = rapport_testbed::load::run(LoadOptions {
        vehicles: cli.vehicles,
        duration: std::time::Duration::from_secs(cli.duration_s),
        faults: cli.faults,
        seed: cli.seed,
        broker,
        cloud: CloudMode::Child(None),
        store,
        instances: cli.instances,
        ..LoadOptions::default()
    })
    .await?;
    println!("{report}");
    let failures = report.failures();
    if !failures.is_empty() {
        anyhow::bail!("the load run was not correct: {}", failures.join("; "));
    }
    Ok(())
}

async fn soak(cli: Cli) -> anyhow::Result<()> {
    use rapport_testbed::soak::{SoakOptions, run};
    println!(
        "rapport testbed soak: seed {}, {} vehicles, {} days, a sample every {} days",
        cli.seed, cli.vehicles, cli.days, cli.sample_every_days
    );
    let report = run(SoakOptions {
        story: Options {
            vehicles: cli.vehicles,
            days: cli.days,
            speedup: cli.speedup,
            seed: cli.seed,
            api: cli.listen,
        },
        every_days: cli.sample_every_days,
        csv: cli.samples,
    })
    .await?;
    println!("{}", report.render());
    if !report.failures.is_empty() {
        anyhow::bail!("{} invariants failed", report.failures.len());
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let options = Options {
        vehicles: cli.vehicles,
        days: cli.days,
        speedup: cli.speedup,
        seed: cli.seed,
        api: cli.listen,
    };
    let mut bed = Testbed::start(options).await?;
    println!(
        "rapport testbed: seed {}, {} vehicles, {} days",
        cli.seed, cli.vehicles, cli.days
    );
    println!("dashboard: {}", bed.dashboard_url());
    for v in &bed.vehicles {
        println!(
            "  {:<8} {}  {:<10} reads {:<18} HMI http://{}/v1/prompts",
            v.cast.driver,
            v.vin(),
            v.cast.kind.category(),
            v.cast.kind.protocols(),
            v.hmi
        );
    }
    let total_days = u64::from(cli.days);
    let bar = indicatif::ProgressBar::new(total_days * 24 * 60);
    if std::io::stdout().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let names: std::collections::BTreeMap<_, _> = bed
        .vehicles
        .iter()
        .map(|v| (v.vin(), v.cast.driver.clone()))
        .collect();
    let name =
        |vin: &rapport_shared::Vin| names.get(vin).cloned().unwrap_or_else(|| vin.to_string());
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    while !bed.finished() {
        let events = tokio::select! {
            e = bed.step() => e?,
            _ = &mut stop => { bar.abandon(); println!("interrupted"); break; }
        };
        if !cli.quiet {
            for e in &events {
                if bar.is_hidden() {
                    println!("{}", e.line(&name));
                } else {
                    bar.println(e.line(&name));
                }
            }
        }
        let p = bed.progress();
        bar.set_position(p.done.as_secs() / 60);
        bar.set_message(format!(
            "day {:.1} of {total_days}",
            p.done.as_secs_f64() / 86_400.0
        ));
    }
    bar.finish_and_clear();
    println!("{}", bed.report().await.render());
    if cli.serve {
        println!(
            "serving the dashboard until Ctrl-C: {}",
            bed.dashboard_url()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    bed.shutdown().await?;
    Ok(())
}
