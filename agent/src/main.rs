//! `rapport-agent`: the head-unit binary. Parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport_agent::config::{self, ConfigError, Loaded};

/// rapport agent: reads a car's CAN bus, keeps its state, prompts the driver, syncs to the cloud.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode a candump trace with a config and print one JSON line per observation.
    Replay {
        /// The agent config (TOML).
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
        /// The candump trace (`candump -l` or screen form).
        #[arg(long)]
        log: PathBuf,
        /// Print a final line of counts.
        #[arg(long)]
        summary: bool,
    },
    /// Check a config (and the DBC file it names); exit 0 if fine, 2 listing every problem.
    CheckConfig {
        /// The agent config (TOML).
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
    },
}

/// Exit code for an unusable config.
const EXIT_CONFIG: u8 = 2;

fn summary(loaded: &Loaded) -> String {
    let c = &loaded.config;
    let mut parts = vec![format!(
        "{} ({}, {:?}, delivered {})",
        c.vehicle.vin, c.vehicle.line, c.vehicle.category, c.vehicle.delivered
    )];
    parts.push(format!("{} bus(es)", c.can.buses.len()));
    if let Some(o) = &c.obd {
        parts.push(format!("OBD-II {}-bit, {} PID(s)", o.id_bits, o.pids.len()));
    }
    if let Some(u) = &c.uds {
        parts.push(format!(
            "UDS 0x{:X}/0x{:X}, {} DID(s)",
            u.request_id,
            u.response_id,
            u.dids.len()
        ));
    }
    if let Some(j) = &c.j1939 {
        parts.push(format!("J1939 as 0x{:02X}", j.own_address));
    }
    if let Some(d) = &loaded.dbc {
        parts.push(format!(
            "DBC {} ({} message(s), {} signal(s))",
            d.file.name(),
            d.file.message_count(),
            d.plan.signals().len()
        ));
    }
    parts.push(format!("{} DTC override(s)", c.dtc.overrides.len()));
    parts.join(", ")
}

fn load_or_report(path: &std::path::Path) -> Result<Loaded, ExitCode> {
    config::load(path).map_err(|err| {
        match &err {
            ConfigError::Invalid { file, problems } => {
                eprintln!("{file}: {} problem(s):", problems.len());
                for p in problems {
                    eprintln!("{file}: {p}");
                }
            }
            other => eprintln!("{other}"),
        }
        ExitCode::from(EXIT_CONFIG)
    })
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => {
            let loaded = match load_or_report(&config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            println!("config OK: {}: {}", config.display(), summary(&loaded));
        }
        Command::Replay {
            config,
            log,
            summary,
        } => {
            let loaded = match load_or_report(&config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let file = std::fs::File::open(&log)
                .map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", log.display()))?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            rapport_agent::replay::run(
                &loaded,
                std::io::BufReader::new(file),
                &mut out,
                rapport_agent::replay::Options { summary },
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
