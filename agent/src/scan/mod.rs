//! `rapport-agent scan`: what a fleet engineer runs first on a new vehicle line — which ECUs
//! answer OBD-II (11- and 29-bit), which mode 01 PIDs each supports, the VIN, which UDS ECUs
//! answer on an id range and which common DIDs they read or refuse, and which J1939 sources
//! broadcast which PGNs. Politely: one request at a time, a minimum gap between requests, and
//! a stop at once on any sign that the car moves.
//!
//! Owns: the sans-IO scanner ([`Scanner`], in `core`), its settings and findings (here), the
//! printed table and the config skeleton ([`report`]), and the thin shells over SocketCAN and
//! the desk car ([`run`]). Does not own: ISO-TP, OBD-II or J1939 decoding ([`crate::proto`]),
//! nor checking the skeleton (`check-config` does that with [`crate::config`]).

mod core;
pub mod report;
pub mod run;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub use self::core::Scanner;
use crate::proto::obd::SupportedPids;

/// The UDS request ids probed when `--uds-range` is not given: 0x7E0–0x7E7 (engine and
/// transmission often speak UDS on their OBD-II ids) and 0x700–0x74F (where most makers put
/// body, cluster, gateway and chassis ECUs), 88 ids — about 15 s at the default pacing, where
/// the whole 0x700–0x7FF range would take 40 s.
pub fn default_uds_ids() -> Vec<u16> {
    (0x7E0..=0x7E7).chain(0x700..=0x74F).collect()
}

/// The DIDs asked of each UDS ECU that answers, in this order. ISO 14229-1 annex C
/// identification DIDs (F190 VIN, F18C serial number, F187 spare part number, F191 hardware
/// number, F195 software version) and two odometer candidates: F4A6 (OBD-II PID 0xA6 read
/// through UDS, ISO 14229-1 / SAE J1979-2: 4 bytes, 0.1 km) and F1A0 (a maker-specific
/// identification DID that clusters often use for the odometer — a candidate only: its
/// meaning and scaling must be confirmed against the dashboard).
pub const DEFAULT_DIDS: [u16; 7] = [0xF190, 0xF18C, 0xF187, 0xF191, 0xF195, 0xF4A6, 0xF1A0];

/// How the scanner paces itself and what it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Listen this long before the first request (J1939 and broadcast traffic, motion).
    pub listen: Duration,
    /// Minimum time between two requests.
    pub min_gap: Duration,
    /// How long to collect answers to one request.
    pub response_timeout: Duration,
    /// How long to wait after a `7F xx 78` responsePending.
    pub pending_timeout: Duration,
    /// How long to wait for the next consecutive frame of a multi-frame answer.
    pub isotp_n_cr: Duration,
    /// Also try OBD-II on 29-bit ids (0x18DB33F1).
    pub obd_29bit: bool,
    /// UDS request ids to probe (11-bit).
    pub uds_ids: Vec<u16>,
    /// DIDs to ask each UDS ECU that answers.
    pub dids: Vec<u16>,
    /// Ask the OBD-II speed again this often while scanning.
    pub speed_check_every: Duration,
}

impl Default for Settings {
    /// 2 s of listening, 50 ms between requests, 150 ms for answers, the default UDS ids and
    /// DIDs, a speed check every second.
    fn default() -> Self {
        Self {
            listen: Duration::from_secs(2),
            min_gap: Duration::from_millis(50),
            response_timeout: Duration::from_millis(150),
            pending_timeout: crate::proto::uds::P2_STAR_DEFAULT,
            isotp_n_cr: Duration::from_millis(1000),
            obd_29bit: true,
            uds_ids: default_uds_ids(),
            dids: DEFAULT_DIDS.to_vec(),
            speed_check_every: Duration::from_secs(1),
        }
    }
}

/// Parses `--uds-range`: `0x700-0x7FF` (inclusive, 11-bit, hex with or without `0x`).
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_uds_range(text: &str) -> Result<Vec<u16>, String> {
    let hex = |s: &str| {
        let s = s.trim();
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        u16::from_str_radix(digits, 16).map_err(|e| format!("`{s}`: not a hex id ({e})"))
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}`: expected FIRST-LAST, e.g. 0x700-0x7FF"))?;
    let (a, b) = (hex(a)?, hex(b)?);
    if a > b || b > 0x7FF {
        return Err(format!(
            "`{text}`: expected FIRST <= LAST <= 0x7FF (11-bit request ids)"
        ));
    }
    Ok((a..=b).filter(|id| *id != 0x7DF).collect())
}

/// Where the scan stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Still listening or asking.
    Running,
    /// Every step done.
    Done,
    /// Stopped early; nothing more is sent.
    Stopped(StopReason),
}

/// Why a scan stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// A sign the car moves: never scan a moving car.
    Moving {
        /// Which signal said so.
        source: String,
        /// The speed it gave, km/h.
        kmh: f32,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Moving { source, kmh } => write!(
                f,
                "the car is moving ({source} says {kmh:.1} km/h): scan stopped, nothing more sent"
            ),
        }
    }
}

/// An OBD-II ECU that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ObdEcu {
    /// Its physical request id.
    pub request_id: u32,
    /// Its response id.
    pub response_id: u32,
    /// 29-bit ids.
    pub extended: bool,
    /// The mode 01 PIDs its bitmaps advertise.
    pub(crate) supported: SupportedPids,
    /// The VIN it gave, if asked and answered.
    pub vin: Option<String>,
}

impl ObdEcu {
    /// The mode 01 data PIDs it supports (the bitmap PIDs 0x20, 0x40, … left out).
    pub fn pids(&self) -> Vec<u8> {
        (1..=0xFFu8)
            .filter(|p| p % 0x20 != 0 && self.supported.contains(*p))
            .collect()
    }
}

/// What a UDS ECU said to one `22 <DID>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DidAnswer {
    /// A positive answer with these data bytes.
    Data(Vec<u8>),
    /// A negative answer with this NRC (0x31 requestOutOfRange: not supported).
    Refused(u8),
    /// No answer in time.
    Silent,
    /// Something that is neither (the bytes, for the report).
    Unexpected(Vec<u8>),
}

/// A UDS ECU that answered the TesterPresent probe.
#[derive(Debug, Clone, PartialEq)]
pub struct UdsEcu {
    /// The id probed.
    pub request_id: u32,
    /// The id it answered on.
    pub response_id: u32,
    /// Whether it answered TesterPresent positively (else with a negative response).
    pub tester_present: bool,
    /// Each DID asked and its answer, in the order asked.
    pub dids: Vec<(u16, DidAnswer)>,
}

impl UdsEcu {
    /// The DIDs it answered with data.
    pub fn supported(&self) -> impl Iterator<Item = (u16, &[u8])> {
        self.dids.iter().filter_map(|(d, a)| match a {
            DidAnswer::Data(bytes) => Some((*d, bytes.as_slice())),
            _ => None,
        })
    }
}

/// Everything the scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// OBD-II ECUs by response id.
    pub obd: BTreeMap<u32, ObdEcu>,
    /// The first valid VIN any OBD-II ECU gave.
    pub vin: Option<String>,
    /// UDS ECUs, in the order found.
    pub uds: Vec<UdsEcu>,
    /// J1939 source address → PGNs it sent.
    pub j1939: BTreeMap<u8, BTreeSet<u32>>,
    /// 11-bit non-diagnostic ids seen (broadcast) → frames.
    pub broadcast: BTreeMap<u32, u64>,
    /// Requests sent.
    pub requests: u64,
    /// Answers that failed ISO-TP reassembly.
    pub transport_errors: u64,
}

impl Findings {
    /// Whether the scan had a speed to watch: an OBD-II ECU with PID 0x0D, or J1939 CCVS1 or
    /// TCO1 heard. Without one it could not have noticed the car moving.
    pub fn watched_speed(&self) -> bool {
        self.obd.values().any(|e| e.supported.contains(0x0D))
            || self
                .j1939
                .values()
                .any(|p| p.contains(&65_265) || p.contains(&65_132))
    }

    /// Whether the OBD-II ECUs found use 29-bit ids (none on 11-bit, some on 29-bit).
    pub fn obd_extended(&self) -> bool {
        !self.obd.is_empty() && self.obd.values().all(|e| e.extended)
    }
}

/// TCO1 (PGN 65132) bytes 7–8: SPN 1624 tachograph vehicle speed, 1/256 km/h, little-endian;
/// `None` when short or "not available"/"error" (0xFB00 and above). The decoder lives here as
/// the scan is its only reader (the observer takes speed from CCVS1).
pub(crate) fn tco1_speed_kmh_256(data: &[u8]) -> Option<u16> {
    let raw = u16::from_le_bytes([*data.get(6)?, *data.get(7)?]);
    (raw < 0xFB00).then_some(raw)
}
