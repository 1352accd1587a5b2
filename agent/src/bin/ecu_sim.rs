//! `rapport-ecu-sim`: the desk car's simulated ECUs (OBD-II engine and gearbox, the UDS ECU,
//! the DBC cluster, the J1939 engine — whichever the agent config implies, as `rapport-agent
//! desk` builds them) behind a real SocketCAN interface, playing a scripted drive in real time.
//! An agent on the same interface polls them through the kernel. Built with the `desk`
//! feature only; never part of the head unit's agent.
//!
//! ```sh
//! rapport-ecu-sim --config config/passenger.toml --interface vcan2 --script drive.toml
//! ```
//!
//! Prints `rapport-ecu-sim: <ECUs> on <interface>` once the socket is open, runs until SIGINT
//! or SIGTERM, and logs what it received and sent.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// rapport ECU simulator: the simulated ECUs an agent config implies, on a SocketCAN interface.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The agent config (TOML): it decides which ECUs answer, on which ids.
    #[arg(long, env = "RAPPORT_CONFIG")]
    config: PathBuf,
    /// The SocketCAN interface (default: the config's first bus).
    #[arg(long)]
    interface: Option<String>,
    /// The scripted drive (TOML, as `rapport-agent desk --script`); default: the vehicle
    /// category's commute with a fault that comes and goes.
    #[arg(long)]
    script: Option<PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    rapport_kit::log::init();
    let loaded = match rapport_agent::settings::load(&cli.config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let script = match &cli.script {
        None => rapport_agent::desk::default_script(loaded.config.vehicle.category),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
    };
    let interface = match cli.interface {
        Some(i) => i,
        None => loaded
            .config
            .can
            .buses
            .first()
            .map(|b| b.interface.clone())
            .ok_or_else(|| anyhow::anyhow!("the config names no bus"))?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counts = runtime.block_on(rapport_agent::runtime::ecu_sim::serve(
        &loaded,
        script,
        &interface,
        rapport_kit::signal::shutdown_signal(),
        |ecus| println!("rapport-ecu-sim: {} on {interface}", ecus.join(", ")),
    ))?;
    tracing::info!(
        received = counts.received,
        sent = counts.sent,
        unsent = counts.unsent,
        "stopped"
    );
    Ok(ExitCode::SUCCESS)
}
