//! `rapport-agent`: the head-unit binary. Parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport_agent::config::Loaded;
use rapport_agent::settings;

/// rapport agent: reads a car's CAN bus, keeps its state, prompts the driver, syncs to the cloud.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode a trace with a config and print one JSON line per observation.
    Replay {
        /// The agent config (TOML).
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
        /// The trace: candump (`-l` or screen form); with feature `traces` (the desk build) also
        /// Vector ASC and BLF, PEAK TRC, pcap and pcapng, found by content.
        #[arg(long)]
        log: PathBuf,
        /// Print a final line of counts.
        #[arg(long)]
        summary: bool,
        /// Do not run the config's rules (no `prompt` lines).
        #[arg(long)]
        no_prompts: bool,
    },
    /// Run the whole agent: bus, poller, decoders, rules, store and HMI API, until SIGINT or
    /// SIGTERM.
    Run {
        /// The agent config (TOML).
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
        /// The data directory (default: the config's `[store].path`).
        #[arg(long, env = "RAPPORT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// HMI listen address (default: the config's `[hmi].listen`).
        #[arg(long, env = "RAPPORT_HMI")]
        hmi: Option<std::net::SocketAddr>,
        /// Drive the simulated car instead of reading SocketCAN (a head unit on a desk).
        #[cfg(feature = "desk")]
        #[arg(long)]
        sim: bool,
        /// With --sim: the scripted drive (TOML); default: a commute with a fault.
        #[cfg(feature = "desk")]
        #[arg(long, requires = "sim")]
        script: Option<PathBuf>,
        /// With --sim: simulated seconds per real second.
        #[cfg(feature = "desk")]
        #[arg(long, default_value_t = 1.0, requires = "sim")]
        speedup: f64,
    },
    /// Print what the agent remembers and what waits for the cloud, as JSON lines (the agent
    /// must be stopped: the store is locked while it runs).
    Store {
        /// The agent config (TOML), for the data directory.
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
        /// The data directory (default: the config's `[store].path`).
        #[arg(long, env = "RAPPORT_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run the poller and decoders against a simulated car (no bus needed) and print one JSON
    /// line per observation, as `replay` does. Simulated time runs as fast as the CPU allows.
    #[cfg(feature = "desk")]
    Desk {
        /// The agent config (TOML): it decides which ECUs the simulated car has.
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
        /// A scripted drive (TOML); default: a 50-minute commute with a fault that comes and goes.
        #[arg(long)]
        script: Option<PathBuf>,
        /// Simulated minutes to run.
        #[arg(long, default_value_t = 50)]
        minutes: u64,
        /// Also write every frame of the drive to this candump `-l` trace.
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Talk to a running agent's HMI API: list the prompts on screen (default), act on one,
    /// or follow the event stream.
    Prompts(rapport_agent::hmi::cli::PromptsArgs),
    /// Bring up a new vehicle line: find which ECUs answer OBD-II and UDS, their PIDs, DIDs and
    /// VIN, and which J1939 sources broadcast what; print a table and optionally write a config
    /// skeleton. Polite (one request at a time, 50 ms apart) and it stops at once, exit code 3,
    /// on any sign the car moves.
    Scan(ScanArgs),
    /// Work with trace files.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Check a config (and the DBC file it names); exit 0 if fine, 2 listing every problem.
    CheckConfig {
        /// The agent config (TOML).
        #[arg(long, env = "RAPPORT_CONFIG")]
        config: PathBuf,
    },
}

/// `scan`'s arguments.
#[derive(clap::Args, Debug)]
struct ScanArgs {
    /// The CAN interface to scan (e.g. can0).
    #[arg(long)]
    interface: Option<String>,
    /// UDS request ids to probe, FIRST-LAST (default: 0x7E0-0x7E7 and 0x700-0x74F).
    #[arg(long)]
    uds_range: Option<String>,
    /// Write a config skeleton here (not written when the scan stopped early).
    #[arg(long)]
    write_config: Option<PathBuf>,
    /// Give up after this many seconds (the findings so far are printed).
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Scan the desk car instead of a bus.
    #[cfg(feature = "desk")]
    #[arg(long, conflicts_with = "interface", requires = "config")]
    desk: bool,
    /// With --desk: the config whose desk car to scan (as `desk` builds it).
    #[cfg(feature = "desk")]
    #[arg(long, requires = "desk")]
    config: Option<PathBuf>,
    /// With --desk: the scripted drive (TOML); default: parked with the engine running.
    #[cfg(feature = "desk")]
    #[arg(long, requires = "desk")]
    script: Option<PathBuf>,
}

/// `scan`'s exit code when it stopped because the car moves.
const EXIT_MOVING: u8 = 3;
/// `scan`'s exit code when the time limit came before the scan finished.
const EXIT_UNFINISHED: u8 = 4;

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    use rapport_agent::scan;
    let mut settings = scan::Settings::default();
    if let Some(range) = &args.uds_range {
        settings.uds_ids =
            scan::parse_uds_range(range).map_err(|e| anyhow::anyhow!("--uds-range {e}"))?;
    }
    let limit = std::time::Duration::from_secs(args.max_secs);
    #[cfg(feature = "desk")]
    if args.desk {
        return match scan_desk(&args, settings, limit)? {
            Ok(outcome) => scan_output(&args, &outcome, "can0"),
            Err(code) => Ok(code),
        };
    }
    let Some(interface) = args.interface.clone() else {
        anyhow::bail!("scan needs --interface (or --desk)");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(scan::run::socketcan(&interface, settings, limit))?;
    scan_output(&args, &outcome, &interface)
}

/// `scan --desk`: the desk car of `--config`, parked with the engine running unless `--script`
/// says otherwise.
#[cfg(feature = "desk")]
fn scan_desk(
    args: &ScanArgs,
    settings: rapport_agent::scan::Settings,
    limit: std::time::Duration,
) -> anyhow::Result<Result<rapport_agent::scan::run::Outcome, ExitCode>> {
    let Some(config) = &args.config else {
        anyhow::bail!("--desk needs --config");
    };
    let loaded = match load_or_report(config) {
        Ok(l) => l,
        Err(code) => return Ok(Err(code)),
    };
    let script = match &args.script {
        None => rapport_agent::desk::parked_script(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
    };
    let mut car = match rapport_agent::desk::car_for(&loaded, script) {
        Ok(car) => car,
        Err(problems) => {
            for p in problems {
                eprintln!("script: {p}");
            }
            return Ok(Err(ExitCode::from(EXIT_CONFIG)));
        }
    };
    Ok(Ok(rapport_agent::scan::run::desk(
        &mut car, settings, limit,
    )))
}

/// Prints the table, writes the skeleton, and picks the exit code.
fn scan_output(
    args: &ScanArgs,
    outcome: &rapport_agent::scan::run::Outcome,
    interface: &str,
) -> anyhow::Result<ExitCode> {
    use rapport_agent::scan::{Status, report};
    print!("{}", report::table(&outcome.findings, &outcome.status));
    match &outcome.status {
        Status::Stopped(_) => {
            if args.write_config.is_some() {
                println!("no config written: the scan stopped early");
            }
            return Ok(ExitCode::from(EXIT_MOVING));
        }
        Status::Running | Status::Done => {}
    }
    if let Some(path) = &args.write_config {
        let today = rapport_agent::clock::wall_now().utc_date_string();
        let ctx = report::Context {
            interface,
            today: &today,
        };
        let text = report::config_skeleton(&outcome.findings, &outcome.status, &ctx);
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
        println!("config skeleton written to {}", path.display());
    }
    Ok(if outcome.status == Status::Done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNFINISHED)
    })
}

/// `rapport-agent trace …`.
#[derive(Subcommand, Debug)]
enum TraceCommand {
    /// Convert a trace of any readable format (found by content) into `candump -l` lines,
    /// frame for frame; bad records are reported on stderr and skipped.
    Convert {
        /// The trace to read.
        input: PathBuf,
        /// Where to write the candump log (`-` for stdout).
        output: PathBuf,
        /// A config whose `[[can.buses]]` name the trace's channels (`trace_channel`, else the
        /// N-th bus is channel N); without it channel N is `can{N-1}`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

use rapport_kit::config::EXIT_CONFIG;

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
    for u in &c.uds {
        parts.push(format!(
            "UDS {}0x{:X}/0x{:X} on {}, {} DID(s)",
            u.name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            u.request_id,
            u.response_id,
            u.bus,
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
    settings::load(path).map_err(|err| rapport_kit::config::report(&err))
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Prompts(args) => {
            return Ok(
                match settings::hmi_address(args.hmi, args.config.as_deref()) {
                    Ok(addr) => rapport_agent::hmi::cli::run(args, addr),
                    Err(msg) => {
                        eprintln!("error: {msg}");
                        ExitCode::from(EXIT_CONFIG)
                    }
                },
            );
        }
        Command::Scan(args) => return scan(args),
        Command::CheckConfig { config } => {
            let loaded = match load_or_report(&config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let dir = rapport_agent::settings::data_dir(&loaded.config);
            if let Err(e) = rapport_agent::store::check_dir(&dir) {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
            println!("config OK: {}: {}", config.display(), summary(&loaded));
        }
        #[cfg(feature = "desk")]
        Command::Desk {
            config,
            script,
            minutes,
            record,
        } => {
            let loaded = match load_or_report(&config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            return desk(&loaded, script.as_deref(), minutes, record.as_deref());
        }
        Command::Run {
            config,
            data_dir,
            hmi,
            #[cfg(feature = "desk")]
            sim,
            #[cfg(feature = "desk")]
            script,
            #[cfg(feature = "desk")]
            speedup,
        } => {
            let loaded = match load_or_report(&config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            #[cfg(feature = "desk")]
            let source = match sim_source(sim, script.as_deref(), speedup)? {
                Some(source) => source,
                None => rapport_agent::runtime::Source::SocketCan,
            };
            #[cfg(not(feature = "desk"))]
            let source = rapport_agent::runtime::Source::SocketCan;
            let dir = data_dir
                .clone()
                .unwrap_or_else(|| rapport_agent::settings::data_dir(&loaded.config));
            if let Err(e) = rapport_agent::store::check_dir(&dir) {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
            return run(loaded, data_dir, hmi, source);
        }
        Command::Trace(TraceCommand::Convert {
            input,
            output,
            config,
        }) => return trace_convert(&input, &output, config.as_deref()),
        Command::Store { config, data_dir } => {
            let loaded = match load_or_report(&config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let dir = data_dir.unwrap_or_else(|| settings::data_dir(&loaded.config));
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            rapport_agent::runtime::dump::dump(&dir, &mut out)?;
        }
        Command::Replay {
            config,
            log,
            summary,
            no_prompts,
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
                rapport_agent::replay::Options {
                    summary,
                    no_prompts,
                },
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `trace convert IN OUT`: exit 0 when the whole trace was read (bad records are reported and
/// skipped), 1 when it could not be read to its end.
fn trace_convert(
    input: &std::path::Path,
    output: &std::path::Path,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use rapport_agent::can::trace::{self, ChannelMap, ReadError};
    use std::io::Write;
    let channels = match config {
        None => ChannelMap::default(),
        Some(path) => match load_or_report(path) {
            Ok(loaded) => ChannelMap::from_config(&loaded.config.can),
            Err(code) => return Ok(code),
        },
    };
    let file = std::fs::File::open(input)
        .map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", input.display()))?;
    let mut reader = match trace::open(
        std::io::BufReader::with_capacity(256 * 1024, file),
        channels,
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", input.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out: Box<dyn Write> = if output.as_os_str() == "-" {
        Box::new(std::io::BufWriter::with_capacity(
            256 * 1024,
            std::io::stdout().lock(),
        ))
    } else {
        let f = std::fs::File::create(output)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", output.display()))?;
        Box::new(std::io::BufWriter::with_capacity(256 * 1024, f))
    };
    let mut broken = false;
    trace::write_candump(&mut reader, &mut out, |e| {
        broken |= !matches!(e, ReadError::Record { .. });
        eprintln!("{}: {e}", input.display());
    })
    .and_then(|()| out.flush())
    .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", output.display()))?;
    let s = reader.stats();
    eprintln!(
        "{}: {} trace, {} frames written, {} records skipped, {} bad",
        input.display(),
        reader.format(),
        s.frames,
        s.skipped,
        s.bad
    );
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `run --sim`'s source: the desk car with its script and speed-up; `None` without `--sim`.
#[cfg(feature = "desk")]
fn sim_source(
    sim: bool,
    script: Option<&std::path::Path>,
    speedup: f64,
) -> anyhow::Result<Option<rapport_agent::runtime::Source>> {
    if !sim {
        return Ok(None);
    }
    let script = match script {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            Some(toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
        }
    };
    if !(speedup.is_finite() && speedup > 0.0) {
        anyhow::bail!("--speedup must be a positive number, not {speedup}");
    }
    Ok(Some(rapport_agent::runtime::Source::Sim {
        script,
        speedup,
    }))
}

fn run(
    loaded: Loaded,
    data_dir: Option<PathBuf>,
    hmi: Option<std::net::SocketAddr>,
    source: rapport_agent::runtime::Source,
) -> anyhow::Result<ExitCode> {
    use rapport_agent::runtime::Options;
    rapport_kit::log::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Ok(addr) = ready_rx.await {
                // Tests and scripts read this line to find a port chosen by the OS.
                println!("rapport-agent: HMI on http://{addr}");
            }
        });
        let options = Options {
            data_dir,
            source,
            hmi,
        };
        rapport_agent::runtime::run(
            loaded,
            options,
            rapport_kit::signal::shutdown_signal(),
            Some(ready_tx),
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "desk")]
fn desk(
    loaded: &Loaded,
    script: Option<&std::path::Path>,
    minutes: u64,
    record: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let script = match script {
        None => rapport_agent::desk::default_script(loaded.config.vehicle.category),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
    };
    let mut car = match rapport_agent::desk::car_for(loaded, script) {
        Ok(car) => car,
        Err(problems) => {
            for p in problems {
                eprintln!("script: {p}");
            }
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = String::new();
    let mut trace = String::new();
    let mut write_err = None;
    let mut limit = rapport_agent::observe::json::RateLimit::default();
    let start = rapport_agent::clock::wall_now();
    let summary = rapport_agent::desk::run(
        loaded,
        &mut car,
        std::time::Duration::from_secs(minutes * 60),
        start,
        record.is_some().then_some(&mut trace),
        |t, obs| {
            if !limit.admit(obs, t.saturating_since(start)) {
                return;
            }
            line.clear();
            rapport_agent::observe::json::write_observation(&mut line, t.as_millis(), obs);
            if write_err.is_none()
                && let Err(e) = writeln!(out, "{line}")
            {
                write_err = Some(e);
            }
        },
    );
    if let Some(e) = write_err {
        anyhow::bail!("writing the output: {e}");
    }
    writeln!(
        out,
        "{{\"kind\":\"desk_summary\",\"final_km\":{},\"requests\":{},\"answers\":{},\"timeouts\":{},\"frames\":{}}}",
        summary.final_odometer.km(),
        summary.poller.requests,
        summary.poller.answers,
        summary.poller.timeouts,
        summary.frames
    )?;
    if let Some(path) = record {
        std::fs::write(path, trace)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
