//! `rapport-testbed`: the one-command demo. Until the testbed issue lands it prints its plan.

use clap::Parser;

/// Run the whole rapport system in one process (broker, cloud, vehicles, partner).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    println!("{}", rapport_testbed::PLAN);
    Ok(())
}
