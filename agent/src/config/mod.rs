//! The agent config: typed serde structs read from one TOML file, their defaults (all in
//! [`defaults`]), and each section's [`Check`] beside its struct, which notes every problem
//! with its key path (`uds.dids[1].len`).
//!
//! Owns: the file's shape, loading it (syntax errors with file, key path, line and column,
//! through `rapport_kit::config`), checking it, and loading the DBC file it names ([`load`]).
//! Does not own: what the agent does with the values — `crate::settings` turns a loaded config
//! into each module's own settings — nor reading other files a section names (the sync's TLS
//! files are read where its settings are built). Unknown keys are refused
//! (`deny_unknown_fields`) so a typo never passes silently. Imports nothing of the agent above
//! it: only `rapport_shared`, `rapport_kit` and the small value types it checks against (DBC
//! and DID specs, OBD PID lengths, CAN interface names, quiet hours).
//!
//! Sections: `[vehicle]` here; the buses, protocols, polling, plausibility and DTC overrides in
//! `car`; maintenance, prompts, store, outbox and HMI in `sections`; `[sync]` in `sync`.

mod car;
pub mod defaults;
mod ignition;
mod sections;
mod sync;
mod uds;

use std::path::{Path, PathBuf};

use rapport_kit::config::{Check, ConfigError, Problems, key, parse_toml};
use rapport_shared::{CivilDate, Vin};
use serde::{Deserialize, Serialize};

use crate::proto::dbc::{DbcError, DbcFile, DecodePlan, WantedSignal};

pub use car::{Can, Dbc, DidRole, DtcSection, J1939, Obd, ObdDtcMode, Observe, Poller, Uds};
pub use ignition::{Ignition, IgnitionSource};
pub use sections::{Hmi, Maintenance, Outbox, Prompts, Store};
pub use sync::{BrokerUrl, MQTTS_NEEDS_TLS, Sync, SyncTls};
pub use uds::Addressing as UdsAddressing;

/// The whole agent config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The vehicle the agent is installed in.
    pub vehicle: Vehicle,
    /// The CAN buses.
    #[serde(default)]
    pub can: Can,
    /// OBD-II polling; absent: no OBD-II.
    #[serde(default)]
    pub obd: Option<Obd>,
    /// UDS polling, one entry per ECU (`[[uds]]`, or a lone `[uds]` table); empty: no UDS.
    #[serde(
        default,
        deserialize_with = "uds::one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uds: Vec<Uds>,
    /// J1939 listening; absent: no J1939.
    #[serde(default)]
    pub j1939: Option<J1939>,
    /// DBC broadcast signals; absent: none.
    #[serde(default)]
    pub dbc: Option<Dbc>,
    /// Polling schedule.
    #[serde(default)]
    pub poller: Poller,
    /// Observation checks.
    #[serde(default)]
    pub observe: Observe,
    /// DTC handling.
    #[serde(default)]
    pub dtc: DtcSection,
    /// The maintenance schedule.
    #[serde(default)]
    pub maintenance: Maintenance,
    /// Prompts and their gating.
    #[serde(default)]
    pub prompts: Prompts,
    /// The store.
    #[serde(default)]
    pub store: Store,
    /// The outbox.
    #[serde(default)]
    pub outbox: Outbox,
    /// The HMI API.
    #[serde(default)]
    pub hmi: Hmi,
    /// The link to the cloud; absent: no sync (the outbox fills up to its bound).
    #[serde(default)]
    pub sync: Option<Sync>,
    /// Where the ignition state comes from (default: bus activity).
    #[serde(default)]
    pub ignition: Ignition,
    /// The file this was read from, to resolve relative paths; not part of the TOML.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[vehicle]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vehicle {
    /// The VIN (17 characters, no I, O or Q).
    pub vin: Vin,
    /// The vehicle line (model family) this config is written for.
    pub line: String,
    /// Passenger car or commercial vehicle.
    pub category: Category,
    /// Delivery date, `"YYYY-MM-DD"` or a TOML date.
    pub delivered: CivilDate,
}

/// Vehicle category: decides defaults elsewhere (maintenance by hours on trucks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Cars and light vans (OBD-II, UDS, DBC).
    Passenger,
    /// Trucks and buses (J1939).
    Commercial,
}

impl Config {
    /// Parses TOML text; `file` names it in errors. Does not check values.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] with the key path, line and column of the problem.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        parse_toml(file, text)
    }

    /// Reads and parses a file, and remembers its path for relative paths. Does not check
    /// values.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Syntax`].
    pub(crate) fn read(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = rapport_kit::config::read_toml(path)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// The store's data directory, resolved against the config file's folder.
    pub(crate) fn store_path(&self) -> PathBuf {
        self.resolve(&self.store.path)
    }

    /// A path from the config (a `[sync.tls]` file), resolved against the config file's folder.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        rapport_kit::config::resolve_beside(self.path.as_deref(), path)
    }

    /// The DBC file's path, resolved against the config file's folder.
    pub(crate) fn dbc_path(&self) -> Option<PathBuf> {
        Some(self.resolve(&self.dbc.as_ref()?.file))
    }

    /// The DBC signals `[dbc]` names, in the order odometer, speed, park (those present).
    pub(crate) fn wanted_signals(&self) -> Vec<(DbcRole, WantedSignal)> {
        let Some(dbc) = &self.dbc else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(s) = &dbc.odometer {
            out.push((DbcRole::Odometer, s.wanted()));
        }
        if let Some(s) = &dbc.speed {
            out.push((DbcRole::Speed, s.wanted()));
        }
        if let Some(p) = &dbc.park {
            out.push((
                DbcRole::Park,
                WantedSignal {
                    message: p.message.clone(),
                    signal: p.signal.clone(),
                },
            ));
        }
        out
    }
}

/// What a `[dbc]` signal is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbcRole {
    /// `dbc.odometer`.
    Odometer,
    /// `dbc.speed`.
    Speed,
    /// `dbc.park`.
    Park,
}

/// A checked config with its DBC loaded and compiled.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// The DBC, when `[dbc]` is present.
    pub dbc: Option<LoadedDbc>,
}

/// The DBC file of a config and the plan for its signals.
#[derive(Debug, Clone)]
pub struct LoadedDbc {
    /// The file.
    pub file: DbcFile,
    /// The compiled signals; [`crate::proto::dbc::SignalId`] `i` is `roles[i]`.
    pub plan: DecodePlan,
    /// What each compiled signal is for.
    pub roles: Vec<DbcRole>,
}

impl Check for Vehicle {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.line.trim().is_empty() {
            problems.at(path, "line", "must not be empty");
        }
    }
}

impl Check for Config {
    /// Every section's own check, in the file's order, and what only the whole file knows:
    /// that each section's `bus` is one of `[[can.buses]]`.
    fn check(&self, path: &str, problems: &mut Problems) {
        problems.check(&key(path, "vehicle"), &self.vehicle);
        problems.check(&key(path, "can"), &self.can);
        let buses = [
            ("obd", self.obd.as_ref().map(|o| &o.bus)),
            ("j1939", self.j1939.as_ref().map(|j| &j.bus)),
            ("dbc", self.dbc.as_ref().map(|d| &d.bus)),
        ];
        for (section, bus) in buses {
            if let Some(bus) = bus {
                self.can.check_bus_ref(&key(path, section), bus, problems);
            }
        }
        if let Some(obd) = &self.obd {
            problems.check(&key(path, "obd"), obd);
        }
        uds::check_all(&self.uds, &self.can, path, problems);
        if let Some(j1939) = &self.j1939 {
            problems.check(&key(path, "j1939"), j1939);
        }
        if let Some(dbc) = &self.dbc {
            problems.check(&key(path, "dbc"), dbc);
        }
        problems.check(&key(path, "poller"), &self.poller);
        problems.check(&key(path, "observe"), &self.observe);
        problems.check(&key(path, "dtc"), &self.dtc);
        problems.check(&key(path, "maintenance"), &self.maintenance);
        problems.check(&key(path, "prompts"), &self.prompts);
        problems.check(&key(path, "store"), &self.store);
        problems.check(&key(path, "outbox"), &self.outbox);
        if let Some(sync) = &self.sync {
            problems.check(&key(path, "sync"), sync);
        }
        problems.check(&key(path, "ignition"), &self.ignition);
        if self.ignition.source == IgnitionSource::Obd && self.obd.is_none() {
            problems.at(
                &key(path, "ignition"),
                "source",
                "\"obd\" needs an [obd] section to ask",
            );
        }
    }
}

/// Reads, checks and loads a config with its DBC.
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Syntax`], or [`ConfigError::Invalid`] listing every
/// value problem and every DBC problem (each naming the DBC file).
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, |_, _| {})
}

/// [`load`], with `more` checks of the parsed config after the config's own and the DBC's,
/// listed with them: how the files other parts read (the sync's TLS files, see
/// `crate::settings::load`) are checked in the same pass without the config reading them.
///
/// # Errors
/// As [`load`], with `more`'s problems in [`ConfigError::Invalid`].
pub(crate) fn load_with(
    path: &Path,
    more: impl FnOnce(&Config, &mut Problems),
) -> Result<Loaded, ConfigError> {
    let config = Config::read(path)?;
    finish(config, &path.display().to_string(), DbcFile::load, more)
}

/// Parses and checks config text as [`load`] does, without reading any file: the DBC file
/// `[dbc]` names (resolved against the working directory, as no config file is known) is
/// asked of `dbc`, whose error is listed under `dbc.file`. `origin` names the text in errors.
/// What the config fuzz target drives; `load` shares everything after the TOML reading.
///
/// # Errors
/// [`ConfigError::Syntax`], or [`ConfigError::Invalid`] listing every value problem and every
/// DBC problem.
pub fn parse(
    origin: &str,
    text: &str,
    dbc: impl FnOnce(&Path) -> Result<DbcFile, DbcError>,
) -> Result<Loaded, ConfigError> {
    let config = Config::from_toml(origin, text)?;
    finish(config, origin, dbc, |_, _| {})
}

/// Everything [`load`] does once the config is parsed: its checks, the DBC read by `dbc` and
/// compiled, `more`'s checks, all listed together under `origin`.
fn finish(
    config: Config,
    origin: &str,
    dbc: impl FnOnce(&Path) -> Result<DbcFile, DbcError>,
    more: impl FnOnce(&Config, &mut Problems),
) -> Result<Loaded, ConfigError> {
    let mut problems = Problems::new();
    problems.check("", &config);
    let mut loaded_dbc = None;
    if let Some(dbc_path) = config.dbc_path() {
        let (roles, wanted): (Vec<DbcRole>, Vec<WantedSignal>) =
            config.wanted_signals().into_iter().unzip();
        match dbc(&dbc_path) {
            Err(err) => problems.push("dbc.file", err.to_string()),
            Ok(file) => {
                let errors = file.check(&wanted);
                if errors.is_empty() {
                    match file.compile(&wanted) {
                        Ok(plan) => loaded_dbc = Some(LoadedDbc { file, plan, roles }),
                        Err(err) => problems.push("dbc", err.to_string()),
                    }
                } else {
                    for e in errors {
                        problems.push("dbc", e.to_string());
                    }
                }
            }
        }
    }
    more(&config, &mut problems);
    problems.into_result(origin)?;
    Ok(Loaded {
        config,
        dbc: loaded_dbc,
    })
}

#[cfg(test)]
mod tests;
