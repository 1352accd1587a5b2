//! `rapport-cloud`: the cloud daemon binary. Parses arguments, sets up logging and signals,
//! and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport_cloud::config;

/// rapport cloud: ingests vehicle records, layers drivers, runs strategies, notifies partners.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the cloud (broker if embedded, ingest, API) until SIGINT or SIGTERM.
    Run {
        /// The cloud config (TOML).
        #[arg(long, env = "RAPPORT_CLOUD_CONFIG")]
        config: PathBuf,
        /// The data directory (default: the config's `[store].path`).
        #[arg(long, env = "RAPPORT_CLOUD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// API listen address (default: the config's `[api].listen`).
        #[arg(long, env = "RAPPORT_CLOUD_API")]
        api: Option<SocketAddr>,
    },
    /// Check a config; exit 0 if fine, 2 listing every problem.
    CheckConfig {
        /// The cloud config (TOML).
        #[arg(long, env = "RAPPORT_CLOUD_CONFIG")]
        config: PathBuf,
    },
    /// Bring the PostgreSQL store to this build's schema, and nothing else (`run` does it at
    /// start too); refuses a database a newer build migrated.
    Migrate {
        /// The cloud config (TOML), `[store] backend = "postgres"`.
        #[arg(long, env = "RAPPORT_CLOUD_CONFIG")]
        config: PathBuf,
    },
    /// Move a one-machine sled store (stopped) into the empty PostgreSQL store the config
    /// names: vehicles and their record logs, drivers, registrations, timelines, alerts,
    /// contacts, the webhook outbox, queued downlinks, API partners, counters.
    ImportSled {
        /// The sled store's directory (the old `[store] path`).
        #[arg(long)]
        from: PathBuf,
        /// The cloud config (TOML), `[store] backend = "postgres"`.
        #[arg(long, env = "RAPPORT_CLOUD_CONFIG")]
        config: PathBuf,
    },
}

use rapport_kit::config::report;

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::CheckConfig { config } => match config::load(&config) {
            Ok(_) => {
                println!("config OK: {}", config.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(report(&e)),
        },
        Command::Migrate { config } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => return Ok(report(&e)),
            };
            rapport_kit::log::init();
            match rapport_cloud::store::postgres::migrate(&cfg.store) {
                Ok(version) => {
                    println!("schema at version {version}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("rapport-cloud migrate: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::ImportSled { from, config } => {
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => return Ok(report(&e)),
            };
            rapport_kit::log::init();
            let now = rapport_cloud::clock::Clock::now(&rapport_cloud::clock::SystemClock);
            match rapport_cloud::store::import::import_sled(&from, &cfg, now) {
                Ok(summary) => {
                    println!("imported: {summary}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("rapport-cloud import-sled: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Run {
            config,
            data_dir,
            api,
        } => {
            let mut cfg = match config::Config::read(&config) {
                Ok(c) => c,
                Err(e) => return Ok(report(&e)),
            };
            if let Some(dir) = data_dir {
                // Relative to the working directory, as a command-line path should be.
                cfg.store.path = std::env::current_dir()?.join(dir);
            }
            if let Some(api) = api {
                cfg.api.listen = api;
            }
            let cfg = match config::check(cfg) {
                Ok(c) => c,
                Err(e) => return Ok(report(&e)),
            };
            run(cfg)
        }
    }
}

fn run(config: config::Config) -> anyhow::Result<ExitCode> {
    rapport_kit::log::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<rapport_cloud::Ready>();
        tokio::spawn(async move {
            if let Ok(ready) = ready_rx.await {
                // Tests and scripts read these lines to find ports chosen by the OS.
                if let Some(broker) = ready.broker {
                    println!("rapport-cloud: broker on mqtt://{broker}");
                }
                println!("rapport-cloud: API on http://{}", ready.api);
            }
        });
        rapport_cloud::run(
            config,
            rapport_kit::signal::shutdown_signal(),
            Some(ready_tx),
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
