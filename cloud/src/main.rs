//! `rapport-cloud`: the cloud daemon binary. Parses arguments and calls the library.

use clap::Parser;

/// rapport cloud: ingests vehicle records, layers drivers, runs strategies, notifies partners.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    println!(
        "rapport-cloud {}: ingest, layering and partner alerts land with issues 5-6; \
         this build carries the wire protocol only.",
        rapport_cloud::VERSION
    );
    Ok(())
}
