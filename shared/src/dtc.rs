//! Diagnostic trouble codes of the three families rapport reads, and their severity.
//!
//! - OBD-II (SAE J1979 modes 03/07/0A): two bytes, rendered per SAE J2012 (`P0133`, `U0100`).
//! - UDS (ISO 14229 service 0x19): three bytes — the J2012 code plus a failure-type byte —
//!   rendered `P0133-1C`, with the ISO 14229 status byte beside it.
//! - J1939 (DM1): SPN (19 bits), FMI (5 bits) and occurrence count (7 bits).
//!
//! [`DtcCode`] is a fault's identity (what makes "the same fault"): the UDS status byte and the
//! J1939 occurrence count change while the fault stays the same, so they live in [`Dtc`] only.
//! Every type here exists only valid; decoding (serde included) checks the ranges.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a text or number is not a DTC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtcError {
    /// A UDS DTC is 24 bits.
    #[error("UDS DTC 0x{0:X} does not fit in 24 bits")]
    UdsRange(u32),
    /// An SPN is 19 bits.
    #[error("SPN {0} is larger than 524287 (19 bits)")]
    SpnRange(u32),
    /// An FMI is 5 bits.
    #[error("FMI {0} is larger than 31")]
    FmiRange(u8),
    /// An occurrence count is 7 bits.
    #[error("occurrence count {0} is larger than 127")]
    OccurrenceRange(u8),
    /// Text that is none of `P0133`, `P0133-1C`, `SPN110/FMI0`.
    #[error("{0:?} is not a DTC (expected e.g. P0133, P0133-1C or SPN110/FMI0)")]
    Syntax(String),
}

/// An OBD-II DTC: the two bytes of SAE J1979 modes 03/07/0A, shown per SAE J2012.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObdCode(u16);

impl ObdCode {
    /// From the two raw bytes as one big-endian number (`0x0133` is `P0133`).
    pub const fn new(raw: u16) -> Self {
        Self(raw)
    }

    /// The raw 16-bit value.
    pub const fn raw(self) -> u16 {
        self.0
    }
}

/// Writes a J2012 code: system letter from the top two bits, then four hex digits.
fn write_j2012(f: &mut fmt::Formatter<'_>, raw: u16) -> fmt::Result {
    const SYSTEM: [char; 4] = ['P', 'C', 'B', 'U'];
    let letter = SYSTEM[usize::from(raw >> 14)];
    write!(f, "{letter}{:01X}{:03X}", (raw >> 12) & 0x3, raw & 0x0FFF)
}

/// Parses the five characters of a J2012 code (`P0133`).
fn parse_j2012(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 {
        return None;
    }
    let system: u16 = match b[0].to_ascii_uppercase() {
        b'P' => 0,
        b'C' => 1,
        b'B' => 2,
        b'U' => 3,
        _ => return None,
    };
    let digit = u16::from(b[1].checked_sub(b'0').filter(|d| *d <= 3)?);
    // Check the bytes first: `from_str_radix` would accept a sign, and slicing a `str` at a
    // byte that is not a character boundary would panic.
    if !b[2..].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let rest = u16::from_str_radix(s.get(2..)?, 16).ok()?;
    Some(system << 14 | digit << 12 | rest)
}

impl fmt::Display for ObdCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_j2012(f, self.0)
    }
}

impl fmt::Debug for ObdCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_j2012(f, self.0)
    }
}

/// A UDS DTC: 24 bits, the J2012 code in the top two bytes and a failure-type byte.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct UdsCode(u32);

impl UdsCode {
    /// From the three raw bytes as one big-endian number.
    ///
    /// # Errors
    /// [`DtcError::UdsRange`] above 24 bits.
    pub const fn new(raw: u32) -> Result<Self, DtcError> {
        if raw > 0x00FF_FFFF {
            return Err(DtcError::UdsRange(raw));
        }
        Ok(Self(raw))
    }

    /// From the three DTC bytes of a UDS record (high byte first). Cannot fail: three bytes
    /// are at most 24 bits.
    pub const fn from_bytes([hi, mid, lo]: [u8; 3]) -> Self {
        Self((hi as u32) << 16 | (mid as u32) << 8 | lo as u32)
    }

    /// The raw 24-bit value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The failure-type byte (ISO 15031-6 / SAE J2012-DA), e.g. `0x1C`.
    pub const fn failure_type(self) -> u8 {
        (self.0 & 0xFF) as u8
    }
}

impl TryFrom<u32> for UdsCode {
    type Error = DtcError;
    fn try_from(raw: u32) -> Result<Self, DtcError> {
        Self::new(raw)
    }
}

impl From<UdsCode> for u32 {
    fn from(c: UdsCode) -> u32 {
        c.0
    }
}

impl fmt::Display for UdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_j2012(f, (self.0 >> 8) as u16)?;
        write!(f, "-{:02X}", self.failure_type())
    }
}

impl fmt::Debug for UdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The ISO 14229-1 DTC status byte (service 0x19), bit by bit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UdsStatus(pub u8);

impl UdsStatus {
    /// Bit 0: the most recent test failed.
    pub const TEST_FAILED: u8 = 0x01;
    /// Bit 1: a test failed during this operation cycle.
    pub const TEST_FAILED_THIS_OPERATION_CYCLE: u8 = 0x02;
    /// Bit 2: pending DTC.
    pub const PENDING: u8 = 0x04;
    /// Bit 3: confirmed DTC.
    pub const CONFIRMED: u8 = 0x08;
    /// Bit 4: test not completed since the last clear.
    pub const TEST_NOT_COMPLETED_SINCE_LAST_CLEAR: u8 = 0x10;
    /// Bit 5: test failed since the last clear.
    pub const TEST_FAILED_SINCE_LAST_CLEAR: u8 = 0x20;
    /// Bit 6: test not completed this operation cycle.
    pub const TEST_NOT_COMPLETED_THIS_OPERATION_CYCLE: u8 = 0x40;
    /// Bit 7: the ECU asks for its warning indicator (MIL) to be lit.
    pub const WARNING_INDICATOR_REQUESTED: u8 = 0x80;

    /// The bits in bit order, each named by the entry of [`UdsStatus::NAMES`] at its index.
    pub const BITS: [u8; 8] = [
        Self::TEST_FAILED,
        Self::TEST_FAILED_THIS_OPERATION_CYCLE,
        Self::PENDING,
        Self::CONFIRMED,
        Self::TEST_NOT_COMPLETED_SINCE_LAST_CLEAR,
        Self::TEST_FAILED_SINCE_LAST_CLEAR,
        Self::TEST_NOT_COMPLETED_THIS_OPERATION_CYCLE,
        Self::WARNING_INDICATOR_REQUESTED,
    ];

    /// The bit names in bit order, as ISO 14229-1 spells them.
    pub const NAMES: [&'static str; 8] = [
        "testFailed",
        "testFailedThisOperationCycle",
        "pendingDTC",
        "confirmedDTC",
        "testNotCompletedSinceLastClear",
        "testFailedSinceLastClear",
        "testNotCompletedThisOperationCycle",
        "warningIndicatorRequested",
    ];

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// Names of the set bits, lowest bit first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, name)| name)
    }
}

impl fmt::Debug for UdsStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X}", self.0)
    }
}

/// The byte, then the names of its set bits: `0x09 testFailed|confirmedDTC`.
impl fmt::Display for UdsStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X}", self.0)?;
        for (i, name) in self.names().enumerate() {
            f.write_str(if i == 0 { " " } else { "|" })?;
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// A J1939 suspect parameter number (19 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Spn(u32);

impl Spn {
    /// The largest SPN (19 bits).
    pub const MAX: u32 = 0x7_FFFF;

    /// # Errors
    /// [`DtcError::SpnRange`] above 19 bits.
    pub const fn new(v: u32) -> Result<Self, DtcError> {
        if v > Self::MAX {
            return Err(DtcError::SpnRange(v));
        }
        Ok(Self(v))
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Spn {
    type Error = DtcError;
    fn try_from(v: u32) -> Result<Self, DtcError> {
        Self::new(v)
    }
}

impl From<Spn> for u32 {
    fn from(s: Spn) -> u32 {
        s.0
    }
}

/// A J1939 failure mode identifier (5 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Fmi(u8);

impl Fmi {
    /// # Errors
    /// [`DtcError::FmiRange`] above 31.
    pub const fn new(v: u8) -> Result<Self, DtcError> {
        if v > 31 {
            return Err(DtcError::FmiRange(v));
        }
        Ok(Self(v))
    }

    /// The number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Fmi {
    type Error = DtcError;
    fn try_from(v: u8) -> Result<Self, DtcError> {
        Self::new(v)
    }
}

impl From<Fmi> for u8 {
    fn from(f: Fmi) -> u8 {
        f.0
    }
}

/// A J1939 occurrence count (7 bits; 127 means "not available").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct OccurrenceCount(u8);

impl OccurrenceCount {
    /// "Not available".
    pub const NOT_AVAILABLE: u8 = 0x7F;

    /// # Errors
    /// [`DtcError::OccurrenceRange`] above 127.
    pub const fn new(v: u8) -> Result<Self, DtcError> {
        if v > 0x7F {
            return Err(DtcError::OccurrenceRange(v));
        }
        Ok(Self(v))
    }

    /// The count (127 = not available).
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for OccurrenceCount {
    type Error = DtcError;
    fn try_from(v: u8) -> Result<Self, DtcError> {
        Self::new(v)
    }
}

impl From<OccurrenceCount> for u8 {
    fn from(o: OccurrenceCount) -> u8 {
        o.0
    }
}

/// A fault's identity: the same code is the same fault, whatever its status or count.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DtcCode {
    /// OBD-II two-byte code.
    Obd(ObdCode),
    /// UDS three-byte code.
    Uds(UdsCode),
    /// J1939 SPN and FMI.
    J1939(Spn, Fmi),
}

impl fmt::Display for DtcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Obd(c) => fmt::Display::fmt(c, f),
            Self::Uds(c) => fmt::Display::fmt(c, f),
            Self::J1939(spn, fmi) => write!(f, "SPN{}/FMI{}", spn.get(), fmi.get()),
        }
    }
}

impl fmt::Debug for DtcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for DtcCode {
    type Err = DtcError;

    /// Parses `P0133` (OBD-II), `P0133-1C` (UDS) or `SPN110/FMI0` (J1939), case-insensitively.
    fn from_str(s: &str) -> Result<Self, DtcError> {
        let syntax = || DtcError::Syntax(s.to_owned());
        let t = s.trim();
        let upper = t.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("SPN") {
            let (spn, fmi) = rest.split_once("/FMI").ok_or_else(syntax)?;
            let spn: u32 = spn.parse().map_err(|_| syntax())?;
            let fmi: u8 = fmi.parse().map_err(|_| syntax())?;
            return Ok(Self::J1939(Spn::new(spn)?, Fmi::new(fmi)?));
        }
        match upper.split_once('-') {
            None => parse_j2012(&upper)
                .map(|c| Self::Obd(ObdCode(c)))
                .ok_or_else(syntax),
            Some((code, ft)) => {
                let code = parse_j2012(code).ok_or_else(syntax)?;
                if ft.len() != 2 {
                    return Err(syntax());
                }
                let ft = u8::from_str_radix(ft, 16).map_err(|_| syntax())?;
                Ok(Self::Uds(UdsCode(u32::from(code) << 8 | u32::from(ft))))
            }
        }
    }
}

/// A fault as an ECU reported it: its code and what the family adds (status, count).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dtc {
    /// OBD-II (modes 03/07/0A).
    Obd(ObdCode),
    /// UDS (service 0x19) with its status byte.
    Uds(UdsCode, UdsStatus),
    /// J1939 (DM1) with its occurrence count.
    J1939(Spn, Fmi, OccurrenceCount),
}

impl Dtc {
    /// The fault's identity.
    pub const fn code(&self) -> DtcCode {
        match *self {
            Self::Obd(c) => DtcCode::Obd(c),
            Self::Uds(c, _) => DtcCode::Uds(c),
            Self::J1939(spn, fmi, _) => DtcCode::J1939(spn, fmi),
        }
    }
}

impl fmt::Display for Dtc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.code(), f)
    }
}

impl fmt::Debug for Dtc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Obd(c) => write!(f, "{c}"),
            Self::Uds(c, s) => write!(f, "{c} status {s:?}"),
            Self::J1939(spn, fmi, oc) => {
                write!(f, "SPN{}/FMI{} OC{}", spn.get(), fmi.get(), oc.get())
            }
        }
    }
}

/// How much a fault matters to the driver. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording; not worth interrupting anyone.
    Info,
    /// The driver should know and act soon (amber lamp, confirmed code).
    Warning,
    /// Stop safely or act now (red stop lamp, misfire with MIL on, configured overrides).
    Critical,
}

impl Severity {
    /// The lower-case name used in JSON and config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn j2012_rendering() {
        // VECTORS.md §1a (aws-iot-fleetwise-edge) and §1b (python-OBD).
        for (raw, text) in [
            (0x0196, "P0196"),
            (0x0143, "P0143"),
            (0x4196, "C0196"),
            (0x8148, "B0148"),
            (0xC148, "U0148"),
            (0x0104, "P0104"),
            (0x8003, "B0003"),
            (0x4123, "C0123"),
            (0x0133, "P0133"),
            (0x4035, "C0035"),
            (0x9234, "B1234"),
            (0xC100, "U0100"),
            (0x226D, "P226D"),
            (0xFFFF, "U3FFF"),
        ] {
            let c = ObdCode::new(raw);
            assert_eq!(c.to_string(), text);
            assert_eq!(text.parse::<DtcCode>().unwrap(), DtcCode::Obd(c), "{text}");
        }
    }

    #[test]
    fn uds_rendering_and_status() {
        let c = UdsCode::new(0x01331C).unwrap();
        assert_eq!(c.to_string(), "P0133-1C");
        assert_eq!("p0133-1c".parse::<DtcCode>().unwrap(), DtcCode::Uds(c));
        // VECTORS.md §3 (Renault ZOE 0x19 06): DTC 0x1525F3.
        assert_eq!(UdsCode::new(0x1525F3).unwrap().to_string(), "P1525-F3");
        assert!(UdsCode::new(0x0100_0000).is_err());
        assert_eq!(UdsCode::from_bytes([0x01, 0x33, 0x1C]), c);
        assert_eq!(UdsCode::from_bytes([0xFF; 3]).raw(), 0xFF_FFFF);
        let s = UdsStatus(0x2F);
        assert!(s.has(UdsStatus::TEST_FAILED | UdsStatus::CONFIRMED));
        assert!(!s.has(UdsStatus::WARNING_INDICATOR_REQUESTED));
        // BITS lists the bit constants in bit order, and NAMES follows them.
        for (i, mask) in UdsStatus::BITS.into_iter().enumerate() {
            assert_eq!(mask, 1 << i);
            assert_eq!(
                UdsStatus(mask).names().collect::<Vec<_>>(),
                [UdsStatus::NAMES[i]]
            );
        }
        assert_eq!(
            UdsStatus(0x2F).to_string(),
            "0x2F testFailed|testFailedThisOperationCycle|pendingDTC|confirmedDTC|testFailedSinceLastClear"
        );
        assert_eq!(format!("{s:?}"), "0x2F");
    }

    #[test]
    fn j1939_ranges_and_text() {
        let d = Dtc::J1939(
            Spn::new(110).unwrap(),
            Fmi::new(0).unwrap(),
            OccurrenceCount::new(3).unwrap(),
        );
        assert_eq!(d.to_string(), "SPN110/FMI0");
        assert_eq!("SPN110/FMI0".parse::<DtcCode>().unwrap(), d.code());
        assert!(Spn::new(524_287).is_ok());
        assert_eq!(Spn::new(524_288), Err(DtcError::SpnRange(524_288)));
        assert!(Fmi::new(32).is_err());
        assert!(OccurrenceCount::new(128).is_err());
        assert!("SPN524288/FMI1".parse::<DtcCode>().is_err());
    }

    #[test]
    fn bad_text_is_refused() {
        for s in [
            "",
            "X0133",
            "P4133",
            "P013",
            "P01333",
            "P0133-1",
            "P0133-XYZ",
            "P01G3",
            "SPN/FMI1",
            "SPN12FMI1",
            "P+133",
        ] {
            assert!(s.parse::<DtcCode>().is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn identity_ignores_status_and_count() {
        let c = UdsCode::new(0x01331C).unwrap();
        assert_eq!(
            Dtc::Uds(c, UdsStatus(0x09)).code(),
            Dtc::Uds(c, UdsStatus(0x2F)).code()
        );
    }

    #[test]
    fn hostile_serde_is_refused() {
        // Dtc::J1939 with an SPN above 19 bits: postcard bytes built by hand.
        let bytes = [2u8, 0xFF, 0xFF, 0xFF, 0x0F, 1, 1];
        assert!(postcard::from_bytes::<Dtc>(&bytes).is_err());
        let bytes = [2u8, 5, 40, 1]; // FMI 40
        assert!(postcard::from_bytes::<Dtc>(&bytes).is_err());
    }
}
