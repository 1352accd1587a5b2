//! The agent in tests: typed configs, and the `rapport-agent` binary as a child process.
//!
//! Configs start from the examples in `config/`, read with the agent's own loader (so they
//! are checked as users' files are), and tests then set typed fields and write the value as
//! TOML ([`write`], [`load`]) — no text replacement, so a renamed key fails to compile rather
//! than to match. Owns the examples' paths being made absolute (the DBC) and the binary's ready
//! line; does not own what the agent does with a config.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rapport_agent::config::{Config, Loaded, Sync};
use rapport_shared::CivilDate;
use serde_json::Value;

use crate::Error;
use crate::files::repo_file;
use crate::process::{Process, bin_command};

/// What the agent prints on stdout once its HMI listens: this, then the address.
pub const HMI_LINE: &str = "rapport-agent: HMI on http://";
/// How long `run` may take to print [`HMI_LINE`] (emulated ARM runs are slow).
const START_WAIT: Duration = Duration::from_secs(60);

/// The example `config/<name>.toml` (`passenger`, `commercial`), loaded and checked by the
/// agent's own loader, with its DBC path made absolute (so the value can be written anywhere).
///
/// # Errors
/// [`Error::Config`] if the example does not load.
pub fn example(name: &str) -> Result<Config, Error> {
    let file = repo_file(&format!("config/{name}.toml"));
    let mut config = rapport_agent::config::load(&file)
        .map_err(|e| crate::files::config_error(&file, e))?
        .config;
    if let (Some(dbc), Some(folder)) = (config.dbc.as_mut(), file.parent()) {
        dbc.file = folder.join(&dbc.file);
    }
    Ok(config)
}

/// [`example`]`("passenger")`: OBD-II, one UDS ECU and the example DBC on `can0`.
///
/// # Errors
/// As [`example`].
pub fn passenger() -> Result<Config, Error> {
    example("passenger")
}

/// The passenger example's `[vehicle]` with every other section at its default: no buses, no
/// protocols, no maintenance schedule, no sync (for tests of the store and the sync alone).
/// Read by the agent's own parser from a file of that one section, so every default is the
/// loader's.
///
/// # Errors
/// As [`example`].
pub fn bare() -> Result<Config, Error> {
    #[derive(serde::Serialize)]
    struct VehicleOnly<'a> {
        vehicle: &'a rapport_agent::config::Vehicle,
    }
    let example = passenger()?;
    let text = toml::to_string(&VehicleOnly {
        vehicle: &example.vehicle,
    })
    .map_err(|e| Error::Config(format!("the example's [vehicle]: {e}")))?;
    Config::from_toml("[vehicle] of config/passenger.toml", &text)
        .map_err(|e| Error::Config(e.to_string()))
}

/// A `[sync]` section for `broker` (`mqtt://127.0.0.1:1883`) with every other value at its
/// default.
///
/// # Errors
/// [`Error::Config`] for a URL the agent refuses.
pub fn sync_to(broker: &str) -> Result<Sync, Error> {
    // Through the agent's own parser, so every other value is the loader's default.
    let text = toml::to_string(&toml::Table::from_iter([(
        "broker".to_owned(),
        toml::Value::String(broker.to_owned()),
    )]))
    .map_err(|e| Error::Config(format!("sync.broker: {e}")))?;
    rapport_kit::config::parse_toml::<Sync>("[sync]", &text)
        .map_err(|e| Error::Config(format!("sync.broker: {e}")))
}

/// The UTC date `days` before now: a delivery date that ages with the test.
///
/// # Errors
/// [`Error::Config`] outside the dates a config can hold.
pub fn days_ago(days: u64) -> Result<CivilDate, Error> {
    let now = rapport_agent::clock::wall_now();
    let then = rapport_shared::Timestamp::from_millis(
        now.as_millis()
            .saturating_sub(days * rapport_shared::calendar::MS_PER_DAY),
    );
    rapport_agent::rules::calendar::local_date(then, 0)
        .ok_or_else(|| Error::Config(format!("{days} days ago is no date a config holds")))
}

/// The passenger example as the end-to-end sync tests drive it: its store in `dir/data`, the
/// HMI on a free port, delivered 330 days ago, no quiet hours, syncing to `broker` with a
/// short batch age and quick reconnects.
///
/// # Errors
/// As [`passenger`], [`days_ago`] and [`sync_to`].
pub fn syncing_passenger(dir: &Path, broker: SocketAddr) -> Result<Config, Error> {
    let mut c = passenger()?;
    c.prompts.quiet_hours = None;
    c.store.path = dir.join("data");
    c.hmi.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.vehicle.delivered = days_ago(330)?;
    c.sync = Some(Sync {
        batch_max_age_ms: 50,
        backoff_min_ms: 100,
        backoff_max_ms: 500,
        ..sync_to(&format!("mqtt://{broker}"))?
    });
    Ok(c)
}

/// Writes `config` as `agent.toml` in `dir` (made if missing); returns its path. Relative paths
/// in it then resolve against `dir`.
///
/// # Errors
/// [`Error::Config`] if it does not serialize, [`Error::Io`] if it cannot be written.
pub fn write(config: &Config, dir: &Path) -> Result<PathBuf, Error> {
    crate::files::write_toml(config, dir, "agent.toml")
}

/// [`write`], then the agent's own loader: checked, with its DBC loaded.
///
/// # Errors
/// As [`write`], and [`Error::Config`] with every problem the loader found.
pub fn load(config: &Config, dir: &Path) -> Result<Loaded, Error> {
    let path = write(config, dir)?;
    rapport_agent::config::load(&path).map_err(|e| crate::files::config_error(&path, e))
}

/// The agent binary running (`rapport-agent run …`) until killed or dropped, with its HMI's
/// address. Its log level is `warn`, its stderr discarded.
#[derive(Debug)]
pub struct AgentProcess {
    /// The child.
    pub process: Process,
    /// Where its HMI listens.
    pub hmi: SocketAddr,
}

impl AgentProcess {
    /// Runs `bin run <args>` (through the test runner, see [`bin_command`]) and waits up to
    /// 60 s for its HMI line.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot start, [`Error::Exited`] or [`Error::NotReady`] if no HMI
    /// line comes.
    pub fn run<S: AsRef<OsStr>>(
        bin: &str,
        args: impl IntoIterator<Item = S>,
    ) -> Result<Self, Error> {
        Self::run_with(bin_command(bin), args, "warn", None)
    }

    /// `command run <args>` — `command` runs the binary, e.g. inside a network namespace
    /// ([`crate::netns::Netns::command`]) — with `RUST_LOG=<log_level>` and its stderr in
    /// `log` (discarded without one); waits up to 60 s for its HMI line.
    ///
    /// # Errors
    /// As [`AgentProcess::run`].
    pub fn run_with<S: AsRef<OsStr>>(
        mut command: std::process::Command,
        args: impl IntoIterator<Item = S>,
        log_level: &str,
        log: Option<&Path>,
    ) -> Result<Self, Error> {
        command.arg("run").args(args).env("RUST_LOG", log_level);
        let mut process = Process::spawn("rapport-agent", command, log)?;
        let hmi = process.wait_line(START_WAIT, |line| {
            line.strip_prefix(HMI_LINE)?.trim().parse().ok()
        })?;
        Ok(Self { process, hmi })
    }

    /// `run --sim --speedup <speedup> --config <config> --script <script>`: the agent on the
    /// simulated car, driving the script `speedup` times faster than real time.
    ///
    /// # Errors
    /// As [`AgentProcess::run`].
    pub fn sim(bin: &str, config: &Path, script: &Path, speedup: u32) -> Result<Self, Error> {
        Self::run(bin, sim_args(config, script, speedup))
    }
}

/// The arguments after `run` of [`AgentProcess::sim`] (for [`AgentProcess::run_with`]).
pub fn sim_args(config: &Path, script: &Path, speedup: u32) -> Vec<std::ffi::OsString> {
    vec![
        "--sim".into(),
        "--speedup".into(),
        speedup.to_string().into(),
        "--config".into(),
        config.as_os_str().to_owned(),
        "--script".into(),
        script.as_os_str().to_owned(),
    ]
}

/// `rapport-agent store --config <config>` (the agent stopped): the store's dump, one JSON
/// value per line (`kind` = `outbox`, `prompt`, `vehicle`, …).
///
/// # Errors
/// [`Error::Io`] if it cannot run, [`Error::Config`] with its stderr if it fails (the store
/// does not open) or prints a line that is not JSON.
pub fn store_dump(bin: &str, config: &Path) -> Result<Vec<Value>, Error> {
    let out = bin_command(bin)
        .args(["store", "--config"])
        .arg(config)
        .output()
        .map_err(|source| Error::Io {
            what: "running",
            path: bin.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Config(format!(
            "rapport-agent store ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| Error::Config(format!("rapport-agent store printed {line:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_examples_survive_the_round_trip_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["passenger", "commercial"] {
            let config = example(name).unwrap();
            let loaded = load(&config, &dir.path().join(name)).unwrap();
            let text = |c: &Config| toml::to_string(c).unwrap();
            assert_eq!(text(&loaded.config), text(&config), "{name}");
            assert!(loaded.dbc.is_some() || config.dbc.is_none(), "{name}");
        }
        let bare = bare().unwrap();
        assert_eq!(bare.vehicle, passenger().unwrap().vehicle);
        assert!(bare.dbc.is_none() && bare.sync.is_none() && bare.can.buses.is_empty());
    }

    #[test]
    fn typed_changes_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = bare().unwrap();
        config.outbox.max_records = 1234;
        config.sync = Some(Sync {
            batch_max_age_ms: 50,
            ..sync_to("mqtt://127.0.0.1:1999").unwrap()
        });
        config.vehicle.delivered = days_ago(330).unwrap();
        let loaded = load(&config, dir.path()).unwrap();
        assert!(loaded.dbc.is_none());
        assert_eq!(loaded.config.outbox.max_records, 1234);
        let sync = loaded.config.sync.unwrap();
        assert_eq!((sync.broker.port, sync.batch_max_age_ms), (1999, 50));
        assert!(sync_to("http://nope").is_err());
    }
}
