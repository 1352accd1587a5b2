//! `rapport-agent`: the head-unit binary. Parses arguments and calls the library.

use clap::Parser;

/// rapport agent: reads a car's CAN bus, keeps its state, prompts the driver, syncs to the cloud.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    println!(
        "rapport-agent {}: the CAN, rules and sync subcommands land with issues 3-5; \
         this build carries the wire protocol only.",
        rapport_agent::VERSION
    );
    Ok(())
}
