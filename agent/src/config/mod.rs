//! The agent config: typed serde structs read from one TOML file, their defaults (all in
//! [`defaults`]), and [`Config::validate`], which returns every problem with its key path.
//!
//! Owns: the file's shape, loading it (syntax errors with file, line and column), checking it,
//! and loading the DBC file it names ([`load`]). Does not own: what the agent does with the
//! values (the poller, [`crate::observe`], [`crate::rules`], [`crate::store`], the HMI).
//! Unknown keys are refused (`deny_unknown_fields`) so a typo never passes silently.

mod sections;
mod validate;

use core::fmt;
use core::time::Duration;
use std::path::{Path, PathBuf};

use rapport_shared::{CivilDate, DtcCode, Severity, Vin};
use serde::{Deserialize, Serialize};

use crate::proto::dbc::{DbcFile, DecodePlan, MessageSelector, WantedSignal};
use crate::proto::uds::{DidKind, DidSpec};

pub use sections::{BrokerUrl, Hmi, Maintenance, Outbox, Prompts, Store, Sync, SyncTls};
pub use validate::Problem;

/// Every default value of the config, in one place.
pub mod defaults {
    /// OBD-II mode 01 PIDs polled when `[obd]` names none: speed (0x0D), odometer (0xA6).
    pub const OBD_PIDS: [u8; 2] = [0x0D, 0xA6];
    /// OBD-II CAN identifier width.
    pub const OBD_ID_BITS: u8 = 11;
    /// UDS 0x19 0x02 status mask: testFailed, …ThisOperationCycle, pending, confirmed,
    /// testFailedSinceLastClear, warningIndicatorRequested.
    pub const UDS_DTC_STATUS_MASK: u8 = 0xAF;
    /// J1939 address of the agent: 0xF9, the off-board diagnostic tool address (J1939-81).
    pub const J1939_OWN_ADDRESS: u8 = 0xF9;
    /// Poll interval with the ignition on.
    pub const POLL_ON_MS: u64 = 1_000;
    /// Poll interval in accessory.
    pub const POLL_ACCESSORY_MS: u64 = 10_000;
    /// Poll interval with the ignition off (a wake-up check; ECUs mostly sleep).
    pub const POLL_OFF_MS: u64 = 300_000;
    /// Least time between two requests on one bus.
    pub const MIN_GAP_MS: u64 = 20;
    /// P2: how long to wait for a first response.
    pub const RESPONSE_TIMEOUT_MS: u64 = 100;
    /// P2*: how long to wait after a 0x78 responsePending.
    pub const P2_STAR_MS: u64 = 5_000;
    /// Fastest plausible vehicle speed, for odometer jumps.
    pub const MAX_PLAUSIBLE_KMH: u32 = 300;
    /// Overdue margin past the due distance, km.
    pub const OVERDUE_KM: u32 = 1_000;
    /// Overdue margin past the due date, days.
    pub const OVERDUE_DAYS: u32 = 30;
    /// Overdue margin past the due engine hours.
    pub const OVERDUE_ENGINE_HOURS: u32 = 50;
    /// Due-soon window before due engine hours.
    pub const DUE_SOON_ENGINE_HOURS: u32 = 50;
    /// Break-in distance, km (a common figure in owner's manuals).
    pub const BREAK_IN_KM: u32 = 1_500;
    /// Break-in advice repeats after this many days.
    pub const BREAK_IN_REPEAT_DAYS: u32 = 7;
    /// Distance milestones, km.
    pub const MILESTONES_KM: [u32; 6] = [10_000, 50_000, 100_000, 200_000, 300_000, 500_000];
    /// Stopped: below this speed, km/h...
    pub const STOPPED_KMH: f32 = 3.0;
    /// ...for this long, seconds.
    pub const STOPPED_FOR_S: u32 = 3;
    /// Prompts of one kind per local day.
    pub const DAILY_CAP: u32 = 2;
    /// The agent's data directory.
    pub const STORE_PATH: &str = "/var/lib/rapport-agent";
    /// Persist the odometer after this many metres...
    pub const ODOMETER_EVERY_M: u32 = 100;
    /// ...or seconds.
    pub const ODOMETER_EVERY_S: u32 = 60;
    /// Write what changed at least this often, seconds (sled rewrites whole pages: each
    /// write costs kilobytes on flash, so writes are coalesced; see `store_hour` bench).
    pub const WRITE_EVERY_S: u32 = 30;
    /// Outbox bound, records: about 10 MB of sled on disk when full (measured: ~500 B per
    /// record), some 100 days of typical driving without a connection.
    pub const OUTBOX_MAX_RECORDS: u64 = 20_000;
    /// An odometer record for the cloud every this many metres.
    pub const OUTBOX_ODOMETER_EVERY_M: u32 = 1_000;
    /// HMI port on loopback.
    pub const HMI_PORT: u16 = 8686;
    /// MQTT keep-alive, seconds: long enough to spare a metered link, short enough that a
    /// dead link (a car driving out of coverage) is noticed within a minute and a half.
    pub const SYNC_KEEP_ALIVE_S: u16 = 60;
    /// Records per uplink: a 20,000-record outbox drains in 40 publishes.
    pub const SYNC_BATCH_MAX_RECORDS: usize = 500;
    /// Uplink payload bound, bytes: a quarter of the wire limit (`MAX_UPLINK_BYTES`), so
    /// one publish stays small for a weak cellular link and a small broker limit.
    pub const SYNC_BATCH_MAX_BYTES: usize = 64 * 1024;
    /// A record waits at most this long for companions before a partial batch goes, ms.
    pub const SYNC_BATCH_MAX_AGE_MS: u64 = 2_000;
    /// Uplinks in flight (published, not yet acknowledged); far under rumqttc's own
    /// window of 100, so its packet ids never collide (see `sync::inflight`).
    pub const SYNC_INFLIGHT: usize = 10;
    /// Reconnect backoff floor, ms.
    pub const SYNC_BACKOFF_MIN_MS: u64 = 1_000;
    /// Reconnect backoff ceiling, ms: a fleet coming back after a broker outage spreads its
    /// reconnects over up to two minutes.
    pub const SYNC_BACKOFF_MAX_MS: u64 = 120_000;
    /// A heartbeat record every hour.
    pub const SYNC_HEARTBEAT_S: u64 = 3_600;
}

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
    /// UDS polling; absent: no UDS.
    #[serde(default)]
    pub uds: Option<Uds>,
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

/// `[can]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Can {
    /// `[[can.buses]]`.
    #[serde(default)]
    pub buses: Vec<Bus>,
}

/// One `[[can.buses]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bus {
    /// The name other sections use (`bus = "powertrain"`).
    pub name: String,
    /// The SocketCAN interface (`can0`); in a replay, the trace's interface column.
    pub interface: String,
    /// CAN FD.
    #[serde(default)]
    pub fd: bool,
}

/// `[obd]`: OBD-II (SAE J1979) polling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obd {
    /// The bus name.
    pub bus: String,
    /// 11 (0x7DF/0x7E8) or 29 (0x18DB33F1/0x18DAF1xx).
    #[serde(default = "obd_id_bits")]
    pub id_bits: u8,
    /// Mode 01 PIDs to poll.
    #[serde(default = "obd_pids")]
    pub pids: Vec<u8>,
    /// Whether to poll modes 03 and 07 (stored and pending DTCs).
    #[serde(default = "yes")]
    pub dtcs: bool,
}

fn obd_id_bits() -> u8 {
    defaults::OBD_ID_BITS
}
fn obd_pids() -> Vec<u8> {
    defaults::OBD_PIDS.to_vec()
}
fn yes() -> bool {
    true
}

/// `[uds]`: UDS (ISO 14229) polling of one ECU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uds {
    /// The bus name.
    pub bus: String,
    /// Our request CAN id (e.g. 0x7E0).
    pub request_id: u32,
    /// The ECU's response CAN id (e.g. 0x7E8).
    pub response_id: u32,
    /// 29-bit ids; default: 29-bit when either id is above 0x7FF.
    #[serde(default)]
    pub extended: Option<bool>,
    /// 0x19 0x02 status mask.
    #[serde(default = "uds_mask")]
    pub dtc_status_mask: u8,
    /// `[[uds.dids]]`: the DIDs to read.
    #[serde(default)]
    pub dids: Vec<DidConfig>,
}

fn uds_mask() -> u8 {
    defaults::UDS_DTC_STATUS_MASK
}

impl Uds {
    /// Whether the ids are 29-bit.
    pub fn is_extended(&self) -> bool {
        self.extended
            .unwrap_or(self.request_id > 0x7FF || self.response_id > 0x7FF)
    }
}

/// One `[[uds.dids]]`: a [`DidSpec`] plus what the value means to rapport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidConfig {
    /// The data identifier.
    pub did: u16,
    /// A name for logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Data length in bytes.
    pub len: usize,
    /// How to read the bytes.
    pub kind: DidKind,
    /// physical = raw × factor + offset.
    #[serde(default = "one")]
    pub factor: f64,
    /// Added after the factor.
    #[serde(default)]
    pub offset: f64,
    /// Unit of the physical value: for `role = "odometer"`, `"km"` (default) or `"m"`.
    #[serde(default)]
    pub unit: Option<String>,
    /// What rapport uses the value for; none: logged only.
    #[serde(default)]
    pub role: Option<DidRole>,
}

fn one() -> f64 {
    1.0
}

impl DidConfig {
    /// The protocol-level spec.
    pub fn spec(&self) -> DidSpec {
        DidSpec {
            did: self.did,
            name: self.name.clone(),
            len: self.len,
            kind: self.kind,
            factor: self.factor,
            offset: self.offset,
            unit: self.unit.clone(),
        }
    }
}

/// What a DID's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DidRole {
    /// Total distance (km, or m with `unit = "m"`).
    Odometer,
    /// Vehicle speed, km/h.
    Speed,
}

/// `[j1939]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct J1939 {
    /// The bus name.
    pub bus: String,
    /// Our source address.
    #[serde(default = "own_address")]
    pub own_address: u8,
    /// Source addresses whose distance, hours and speed PGNs are used; absent: every source.
    /// DM1 faults are read from every source whatever this says.
    #[serde(default)]
    pub signal_sources: Option<Vec<u8>>,
}

fn own_address() -> u8 {
    defaults::J1939_OWN_ADDRESS
}

/// `[dbc]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dbc {
    /// The DBC file, relative to the config file.
    pub file: PathBuf,
    /// The bus name.
    pub bus: String,
    /// Total distance signal (km, or m if the DBC unit says `m`).
    #[serde(default)]
    pub odometer: Option<SignalRef>,
    /// Vehicle speed signal (km/h).
    #[serde(default)]
    pub speed: Option<SignalRef>,
    /// Park state signal.
    #[serde(default)]
    pub park: Option<ParkSignal>,
}

/// A message and signal name in the DBC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalRef {
    /// The message, by name or DBC id.
    pub message: MessageSelector,
    /// The `SG_` name.
    pub signal: String,
}

impl SignalRef {
    /// As the DBC module takes it.
    pub fn wanted(&self) -> WantedSignal {
        WantedSignal {
            message: self.message.clone(),
            signal: self.signal.clone(),
        }
    }
}

/// The park signal and the values of it that mean "parked".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParkSignal {
    /// The message, by name or DBC id.
    pub message: MessageSelector,
    /// The `SG_` name.
    pub signal: String,
    /// `VAL_` labels (e.g. `"P"`) or raw integers as text (e.g. `"0"`) meaning parked.
    pub parked_values: Vec<String>,
}

/// `[poller]`: request timing. Intervals are per ignition state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Poller {
    /// Interval with the ignition on, ms.
    pub on_ms: u64,
    /// Interval in accessory, ms.
    pub accessory_ms: u64,
    /// Interval with the ignition off, ms.
    pub off_ms: u64,
    /// Least gap between two requests on one bus, ms.
    pub min_gap_ms: u64,
    /// P2: wait for a first response, ms.
    pub response_timeout_ms: u64,
    /// P2*: wait after a responsePending, ms.
    pub p2_star_ms: u64,
}

impl Default for Poller {
    fn default() -> Self {
        Self {
            on_ms: defaults::POLL_ON_MS,
            accessory_ms: defaults::POLL_ACCESSORY_MS,
            off_ms: defaults::POLL_OFF_MS,
            min_gap_ms: defaults::MIN_GAP_MS,
            response_timeout_ms: defaults::RESPONSE_TIMEOUT_MS,
            p2_star_ms: defaults::P2_STAR_MS,
        }
    }
}

impl Poller {
    /// P2 as a duration.
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    /// P2* as a duration.
    pub fn p2_star(&self) -> Duration {
        Duration::from_millis(self.p2_star_ms)
    }
}

/// `[observe]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Observe {
    /// Fastest plausible speed, km/h: an odometer gaining distance faster is rejected.
    pub max_plausible_kmh: u32,
}

impl Default for Observe {
    fn default() -> Self {
        Self {
            max_plausible_kmh: defaults::MAX_PLAUSIBLE_KMH,
        }
    }
}

/// `[dtc]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtcSection {
    /// `[[dtc.overrides]]`: per-code severities that win over lamps and status bits.
    #[serde(default)]
    pub overrides: Vec<DtcOverride>,
}

/// One per-code severity override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtcOverride {
    /// `"P0300"`, `"P0133-1C"` or `"SPN110/FMI0"`.
    #[serde(with = "dtc_code_text")]
    pub code: DtcCode,
    /// The severity to report.
    pub severity: Severity,
}

mod dtc_code_text {
    use rapport_shared::DtcCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(code: &DtcCode, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(code)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DtcCode, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not a DTC like \"P0300\", \"P0133-1C\" or \"SPN110/FMI0\""
            ))
        })
    }
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or TOML of the wrong shape (unknown key, wrong type, missing key).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What the TOML reader says.
        message: String,
    },
    /// Well-formed but wrong values; every problem found.
    #[error("{file}: {} problem(s):\n{}", problems.len(), ProblemList(problems))]
    Invalid {
        /// The file.
        file: String,
        /// Each problem with its key path.
        problems: Vec<Problem>,
    },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

impl Config {
    /// Parses TOML text; `file` names it in errors. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] with the line and column of the problem.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err: toml::de::Error| {
            let (line, column) = err.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Syntax {
                file: file.to_owned(),
                line,
                column,
                message: err.message().trim().to_owned(),
            }
        })
    }

    /// Reads and parses a file, and remembers its path for relative paths. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Syntax`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let mut config = Self::from_toml(&file, &text)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Every problem with the values, each with its key path; empty when fine.
    pub fn validate(&self) -> Vec<Problem> {
        validate::validate(self)
    }

    /// The store's data directory, resolved against the config file's folder.
    pub fn store_path(&self) -> PathBuf {
        let dir = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        dir.join(&self.store.path)
    }

    /// A path from the config (a `[sync.tls]` file), resolved against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        let dir = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        dir.join(path)
    }

    /// The DBC file's path, resolved against the config file's folder.
    pub fn dbc_path(&self) -> Option<PathBuf> {
        let dbc = self.dbc.as_ref()?;
        let dir = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        Some(dir.join(&dbc.file))
    }

    /// The DBC signals `[dbc]` names, in the order odometer, speed, park (those present).
    pub fn wanted_signals(&self) -> Vec<(DbcRole, WantedSignal)> {
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

/// A validated config with its DBC loaded and compiled.
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

/// Reads, validates and loads a config with its DBC: what `check-config` and `replay` use.
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Syntax`], or [`ConfigError::Invalid`] listing every
/// value problem and every DBC problem (each naming the DBC file).
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let config = Config::read(path)?;
    let mut problems = config.validate();
    let mut dbc = None;
    if let Some(dbc_path) = config.dbc_path() {
        let (roles, wanted): (Vec<DbcRole>, Vec<WantedSignal>) =
            config.wanted_signals().into_iter().unzip();
        match DbcFile::load(&dbc_path) {
            Err(err) => problems.push(Problem::new("dbc.file", err.to_string())),
            Ok(file) => {
                let errors = file.check(&wanted);
                if errors.is_empty() {
                    match file.compile(&wanted) {
                        Ok(plan) => dbc = Some(LoadedDbc { file, plan, roles }),
                        Err(err) => problems.push(Problem::new("dbc", err.to_string())),
                    }
                } else {
                    problems.extend(
                        errors
                            .into_iter()
                            .map(|e| Problem::new("dbc", e.to_string())),
                    );
                }
            }
        }
    }
    if let Some(sync) = &config.sync
        && let Err(tls) = crate::sync::tls::client_config(&config, sync)
    {
        // Already said by validate when [sync.tls] is missing for mqtts.
        for p in tls {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    if problems.is_empty() {
        Ok(Loaded { config, dbc })
    } else {
        Err(ConfigError::Invalid {
            file: path.display().to_string(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests;
