//! The config sections of what the agent reads from the car and how: the buses (`[can]`), the
//! protocols on them (`[obd]`, `[uds]`, `[j1939]`, `[dbc]`), request timing (`[poller]`),
//! plausibility (`[observe]`) and per-code fault severities (`[dtc]`), each with its
//! [`Check`] beside it. Defaults live in [`super::defaults`].
//!
//! Owns: these sections' shape and checks. Does not own: whether a section's `bus` names a
//! configured bus (the whole config knows the buses: [`super::Config`]'s check), nor the DBC
//! file's contents (checked when it is loaded, [`super::load`]).

use std::path::PathBuf;

use rapport_kit::config::{Check, Problems, index, key};
use rapport_shared::{DtcCode, Severity};
use serde::{Deserialize, Serialize};

use super::defaults;
use crate::can::candump::Interface;
use crate::proto::dbc::{MessageSelector, WantedSignal};
use crate::proto::obd::pid_data_len;
use crate::proto::uds::{DidKind, DidSpec};

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
    /// The channel number (1-255) this bus has in ASC, BLF, TRC and pcap traces; absent, the
    /// N-th bus listed is channel N (see `can::trace::ChannelMap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_channel: Option<u8>,
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
    /// Whether to poll DTCs at all (the modes in `dtc_modes`).
    #[serde(default = "yes")]
    pub dtcs: bool,
    /// Which DTC lists to read when `dtcs` is on: `"03"` confirmed, `"07"` pending, `"0A"`
    /// permanent (default all three; drop `"0A"` for ECUs older than 2010 that lack it).
    #[serde(default = "obd_dtc_modes")]
    pub dtc_modes: Vec<ObdDtcMode>,
}

/// An OBD-II DTC service, spelled as its mode number in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObdDtcMode {
    /// Mode 03: confirmed ("stored") DTCs.
    #[serde(rename = "03")]
    Confirmed,
    /// Mode 07: pending DTCs.
    #[serde(rename = "07")]
    Pending,
    /// Mode 0A: permanent DTCs.
    #[serde(rename = "0A")]
    Permanent,
}

fn obd_dtc_modes() -> Vec<ObdDtcMode> {
    vec![
        ObdDtcMode::Confirmed,
        ObdDtcMode::Pending,
        ObdDtcMode::Permanent,
    ]
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

/// One `[[uds]]` entry (or a lone `[uds]` table): UDS (ISO 14229) polling of one ECU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uds {
    /// The ECU's name in logs and checks; required when there are several (`"gateway"`).
    #[serde(default)]
    pub name: Option<String>,
    /// The bus name.
    pub bus: String,
    /// Our request CAN id (e.g. 0x7E0).
    pub request_id: u32,
    /// The ECU's response CAN id (e.g. 0x7E8).
    pub response_id: u32,
    /// 29-bit ids; default: 29-bit when either id is above 0x7FF.
    #[serde(default)]
    pub extended: Option<bool>,
    /// ISO 15765-2 addressing: `normal` (the CAN id says it all) or `extended` (the first
    /// data byte is the target address).
    #[serde(default)]
    pub addressing: super::uds::Addressing,
    /// Extended addressing: the ECU's address, first byte of our requests and flow control.
    #[serde(default)]
    pub target_address: Option<u8>,
    /// Extended addressing: our (the tester's) address, first byte of the ECU's answers.
    #[serde(default)]
    pub source_address: Option<u8>,
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
    pub(crate) fn is_extended(&self) -> bool {
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
    pub(crate) fn spec(&self) -> DidSpec {
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
    /// Whether to request DM2 (previously active DTCs, PGN 65227) from every ECU with PGN
    /// 59904, once per DTC round.
    #[serde(default)]
    pub dm2: bool,
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
    pub(crate) fn wanted(&self) -> WantedSignal {
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

    pub(crate) fn serialize<S: Serializer>(code: &DtcCode, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(code)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DtcCode, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not a DTC like \"P0300\", \"P0133-1C\" or \"SPN110/FMI0\""
            ))
        })
    }
}

/// Longest DID data one UDS response can carry (4095 bytes of ISO-TP less SID and DID).
const MAX_DID_LEN: usize = 4092;

fn kind_name(kind: DidKind) -> &'static str {
    match kind {
        DidKind::UnsignedBe => "unsigned_be",
        DidKind::UnsignedLe => "unsigned_le",
        DidKind::SignedBe => "signed_be",
        DidKind::SignedLe => "signed_le",
        DidKind::Ascii => "ascii",
        DidKind::Raw => "raw",
    }
}

fn is_numeric(kind: DidKind) -> bool {
    !matches!(kind, DidKind::Ascii | DidKind::Raw)
}

impl Check for Can {
    fn check(&self, path: &str, problems: &mut Problems) {
        let buses = key(path, "buses");
        for (i, bus) in self.buses.iter().enumerate() {
            let at = index(&buses, i);
            if bus.name.trim().is_empty() {
                problems.at(&at, "name", "must not be empty");
            }
            if self.buses.iter().take(i).any(|b| b.name == bus.name) {
                problems.at(
                    &at,
                    "name",
                    format!("{:?} is used by an earlier bus", bus.name),
                );
            }
            if Interface::new(&bus.interface).is_none() {
                problems.at(
                    &at,
                    "interface",
                    format!(
                        "{:?} is not 1-15 printable ASCII characters without spaces",
                        bus.interface
                    ),
                );
            }
            let channel = |j: usize, b: &Bus| b.trace_channel.unwrap_or_else(|| default_channel(j));
            if bus.trace_channel == Some(0) {
                problems.at(&at, "trace_channel", "channels count from 1");
            } else if let Some(j) = (0..i).find(|&j| {
                self.buses
                    .get(j)
                    .is_some_and(|b| channel(j, b) == channel(i, bus))
            }) {
                problems.at(
                    &at,
                    "trace_channel",
                    format!(
                        "trace channel {} is also bus {j}'s (set trace_channel on one of them)",
                        channel(i, bus)
                    ),
                );
            }
        }
    }
}

/// The trace channel of the `index`-th bus (0-based) without `trace_channel`.
fn default_channel(index: usize) -> u8 {
    u8::try_from(index + 1).unwrap_or(u8::MAX)
}

impl Can {
    /// Notes a problem at `section`'s `bus` key when `name` is none of the buses.
    pub(crate) fn check_bus_ref(&self, section: &str, name: &str, problems: &mut Problems) {
        if !self.buses.iter().any(|b| b.name == name) {
            let known: Vec<&str> = self.buses.iter().map(|b| b.name.as_str()).collect();
            problems.at(
                section,
                "bus",
                format!("no [[can.buses]] is named {name:?} (known: {known:?})"),
            );
        }
    }
}

impl Check for Obd {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.id_bits != 11 && self.id_bits != 29 {
            problems.at(
                path,
                "id_bits",
                format!("must be 11 or 29, not {}", self.id_bits),
            );
        }
        let pids = key(path, "pids");
        for (i, pid) in self.pids.iter().enumerate() {
            if pid_data_len(*pid).is_none() {
                problems.push(
                    index(&pids, i),
                    format!(
                        "mode 01 PID 0x{pid:02X} has no known length, so its answer cannot be decoded"
                    ),
                );
            }
            if self.pids.iter().take(i).any(|p| p == pid) {
                problems.push(index(&pids, i), format!("PID 0x{pid:02X} is listed twice"));
            }
        }
    }
}

impl Check for Uds {
    fn check(&self, path: &str, problems: &mut Problems) {
        let max = if self.is_extended() {
            0x1FFF_FFFF
        } else {
            0x7FF
        };
        for (name, id) in [
            ("request_id", self.request_id),
            ("response_id", self.response_id),
        ] {
            if id > max {
                problems.at(
                    path,
                    name,
                    format!(
                        "0x{id:X} does not fit a {}-bit CAN id",
                        if max == 0x7FF { 11 } else { 29 }
                    ),
                );
            }
        }
        if self.request_id == self.response_id {
            problems.at(
                path,
                "response_id",
                format!("must differ from {}", key(path, "request_id")),
            );
        }
        let dids = key(path, "dids");
        let mut roles: Vec<DidRole> = Vec::new();
        for (i, d) in self.dids.iter().enumerate() {
            let at = index(&dids, i);
            let kind = kind_name(d.kind);
            if is_numeric(d.kind) && !(1..=8).contains(&d.len) {
                problems.at(&at, "len", format!("must be 1..=8 for {kind}"));
            } else if !(1..=MAX_DID_LEN).contains(&d.len) {
                problems.at(&at, "len", format!("must be 1..={MAX_DID_LEN} for {kind}"));
            }
            if !d.factor.is_finite() {
                problems.at(&at, "factor", "must be a finite number");
            }
            if !d.offset.is_finite() {
                problems.at(&at, "offset", "must be a finite number");
            }
            if self.dids.iter().take(i).any(|o| o.did == d.did) {
                problems.at(&at, "did", format!("DID 0x{:04X} is listed twice", d.did));
            }
            if let Some(role) = d.role {
                if !is_numeric(d.kind) {
                    problems.at(
                        &at,
                        "role",
                        format!("{role:?} needs a numeric kind, not {kind}"),
                    );
                }
                if roles.contains(&role) {
                    problems.at(
                        &at,
                        "role",
                        format!("another DID already has role {role:?}"),
                    );
                }
                roles.push(role);
                if role == DidRole::Odometer
                    && !matches!(d.unit.as_deref(), None | Some("km") | Some("m"))
                {
                    problems.at(&at, "unit", "an odometer DID is in \"km\" or \"m\"");
                }
            }
        }
    }
}

impl Check for J1939 {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.own_address > 0xFD {
            problems.at(
                path,
                "own_address",
                format!(
                    "0x{:02X} is reserved (0xFE null, 0xFF global); use 0x00-0xFD",
                    self.own_address
                ),
            );
        }
        let sources = key(path, "signal_sources");
        for (i, sa) in self.signal_sources.iter().flatten().enumerate() {
            if *sa > 0xFD {
                problems.push(
                    index(&sources, i),
                    format!("0x{sa:02X} is not a source address (0x00-0xFD)"),
                );
            }
        }
    }
}

impl Check for Dbc {
    fn check(&self, path: &str, problems: &mut Problems) {
        if let Some(park) = &self.park
            && park.parked_values.is_empty()
        {
            problems.at(
                &key(path, "park"),
                "parked_values",
                "must list at least one value",
            );
        }
    }
}

impl Check for Poller {
    fn check(&self, path: &str, problems: &mut Problems) {
        for (name, ms) in [
            ("on_ms", self.on_ms),
            ("accessory_ms", self.accessory_ms),
            ("off_ms", self.off_ms),
            ("response_timeout_ms", self.response_timeout_ms),
            ("p2_star_ms", self.p2_star_ms),
        ] {
            if ms == 0 {
                problems.at(path, name, "must be more than 0");
            }
        }
        if self.p2_star_ms < self.response_timeout_ms {
            problems.at(
                path,
                "p2_star_ms",
                format!(
                    "must be at least {} (P2* extends P2)",
                    key(path, "response_timeout_ms")
                ),
            );
        }
        if self.min_gap_ms >= self.on_ms {
            problems.at(
                path,
                "min_gap_ms",
                format!("must be less than {}", key(path, "on_ms")),
            );
        }
    }
}

impl Check for Observe {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !(1..=1000).contains(&self.max_plausible_kmh) {
            problems.at(
                path,
                "max_plausible_kmh",
                format!("must be 1..=1000, not {}", self.max_plausible_kmh),
            );
        }
    }
}

impl Check for DtcSection {
    fn check(&self, path: &str, problems: &mut Problems) {
        let overrides = key(path, "overrides");
        for (i, o) in self.overrides.iter().enumerate() {
            if self.overrides.iter().take(i).any(|e| e.code == o.code) {
                problems.at(
                    &index(&overrides, i),
                    "code",
                    format!("{} is listed twice", o.code),
                );
            }
        }
    }
}
