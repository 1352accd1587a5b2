//! Decoders for the single-frame parameter groups rapport reads from trucks: vehicle distance
//! (VD, VDHR), engine hours (HOURS) and wheel-based speed (CCVS1). Values are fixed-point
//! integers in the unit named by each field, with J1939-71's "error" (0xFE…) and "not
//! available" (0xFF…) recognised. Does not own the transport, DM1 or a general SPN catalogue.

use super::J1939Error;

/// PGN of VD, vehicle distance (SPN 244, 245).
pub(crate) const PGN_VD: u32 = 65248;
/// PGN of VDHR, high-resolution vehicle distance (SPN 917, 918).
pub(crate) const PGN_VDHR: u32 = 65217;
/// PGN of HOURS, engine hours and revolutions (SPN 247, 249).
pub(crate) const PGN_HOURS: u32 = 65253;
/// PGN of CCVS1, cruise control / vehicle speed 1 (SPN 84, 70).
pub(crate) const PGN_CCVS1: u32 = 65265;

/// A parameter as J1939-71 sends it: a value, or the sender saying it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Signal<T> {
    /// A value in range.
    Valid(T),
    /// The sender reports an error (top byte 0xFE, or `10` for 2-bit states).
    Error,
    /// Not available or not supported (top byte 0xFF, or `11`); the reserved ranges 0xFB–0xFD
    /// are reported as this too, since they carry no value either.
    NotAvailable,
}

impl<T> Signal<T> {
    /// The value, if valid.
    pub(crate) fn valid(self) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Error | Self::NotAvailable => None,
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Signal<U> {
        match self {
            Self::Valid(v) => Signal::Valid(f(v)),
            Self::Error => Signal::Error,
            Self::NotAvailable => Signal::NotAvailable,
        }
    }
}

/// A 4-byte little-endian parameter: valid up to 0xFAFF_FFFF.
fn u32_at(data: &[u8], at: usize) -> Signal<u32> {
    let Some(bytes) = data
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
    else {
        return Signal::NotAvailable;
    };
    range_signal(u32::from_le_bytes(bytes), bytes[3])
}

/// A 2-byte little-endian parameter: valid up to 0xFAFF.
fn u16_at(data: &[u8], at: usize) -> Signal<u16> {
    let Some(bytes) = data
        .get(at..at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
    else {
        return Signal::NotAvailable;
    };
    range_signal(u16::from_le_bytes(bytes), bytes[1])
}

fn range_signal<T>(value: T, top: u8) -> Signal<T> {
    match top {
        0..=0xFA => Signal::Valid(value),
        0xFE => Signal::Error,
        _ => Signal::NotAvailable,
    }
}

/// A 2-bit state: `00`/`01` valid, `10` error, `11` not available.
fn bits2(byte: u8, shift: u8) -> Signal<bool> {
    match (byte >> shift) & 3 {
        0 => Signal::Valid(false),
        1 => Signal::Valid(true),
        2 => Signal::Error,
        _ => Signal::NotAvailable,
    }
}

fn need(pgn: u32, data: &[u8], need: usize) -> Result<(), J1939Error> {
    if data.len() < need {
        return Err(J1939Error::Short {
            pgn,
            len: data.len(),
            need,
        });
    }
    Ok(())
}

/// VD, PGN 65248: distances at 0.125 km/bit, returned in metres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VehicleDistance {
    /// SPN 244, trip distance, metres.
    pub(crate) trip_m: Signal<u64>,
    /// SPN 245, total vehicle distance, metres.
    pub(crate) total_m: Signal<u64>,
}

impl VehicleDistance {
    /// Decodes an 8-byte VD payload.
    ///
    /// # Errors
    /// [`J1939Error::Short`] below 8 bytes.
    pub fn decode(data: &[u8]) -> Result<Self, J1939Error> {
        need(PGN_VD, data, 8)?;
        // 0.125 km = 125 m: exact in integers.
        Ok(Self {
            trip_m: u32_at(data, 0).map(|r| u64::from(r) * 125),
            total_m: u32_at(data, 4).map(|r| u64::from(r) * 125),
        })
    }
}

/// VDHR, PGN 65217: distances at 5 m/bit, returned in metres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HighResVehicleDistance {
    /// SPN 917, total vehicle distance, metres.
    pub(crate) total_m: Signal<u64>,
    /// SPN 918, trip distance, metres.
    pub(crate) trip_m: Signal<u64>,
}

impl HighResVehicleDistance {
    /// Decodes an 8-byte VDHR payload.
    ///
    /// # Errors
    /// [`J1939Error::Short`] below 8 bytes.
    pub(crate) fn decode(data: &[u8]) -> Result<Self, J1939Error> {
        need(PGN_VDHR, data, 8)?;
        Ok(Self {
            total_m: u32_at(data, 0).map(|r| u64::from(r) * 5),
            trip_m: u32_at(data, 4).map(|r| u64::from(r) * 5),
        })
    }
}

/// HOURS, PGN 65253.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineHours {
    /// SPN 247, engine total hours of operation, in units of 0.05 h (3 minutes).
    pub(crate) total_hours_x20: Signal<u32>,
    /// SPN 249, engine total revolutions (sent at 1000 r/bit), in revolutions.
    pub(crate) total_revolutions: Signal<u64>,
}

impl EngineHours {
    /// Decodes an 8-byte HOURS payload.
    ///
    /// # Errors
    /// [`J1939Error::Short`] below 8 bytes.
    pub(crate) fn decode(data: &[u8]) -> Result<Self, J1939Error> {
        need(PGN_HOURS, data, 8)?;
        Ok(Self {
            total_hours_x20: u32_at(data, 0),
            total_revolutions: u32_at(data, 4).map(|r| u64::from(r) * 1000),
        })
    }

    /// SPN 247 in whole seconds (0.05 h = 180 s), for callers that want a duration.
    pub(crate) fn total_seconds(&self) -> Signal<u64> {
        self.total_hours_x20.map(|r| u64::from(r) * 180)
    }
}

/// CCVS1, PGN 65265: the parts rapport uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CruiseControlVehicleSpeed {
    /// SPN 70, parking brake switch (byte 1 bits 4–3): `true` = set.
    pub(crate) parking_brake: Signal<bool>,
    /// SPN 84, wheel-based vehicle speed, in 1/256 km/h.
    pub(crate) wheel_speed_kmh_256: Signal<u16>,
}

impl CruiseControlVehicleSpeed {
    /// Decodes the first 3 bytes of a CCVS1 payload (senders send 8).
    ///
    /// # Errors
    /// [`J1939Error::Short`] below 3 bytes.
    pub fn decode(data: &[u8]) -> Result<Self, J1939Error> {
        need(PGN_CCVS1, data, 3)?;
        let b0 = data.first().copied().unwrap_or(0xFF);
        Ok(Self {
            parking_brake: bits2(b0, 2),
            wheel_speed_kmh_256: u16_at(data, 1),
        })
    }

    /// SPN 84 in metres per hour (rounded down), an integer speed that needs no float.
    #[cfg(test)]
    pub(crate) fn wheel_speed_m_per_h(&self) -> Signal<u32> {
        self.wheel_speed_kmh_256.map(|r| u32::from(r) * 1000 / 256)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // VECTORS.md §4a (j1939-84 TotalVehicleDistancePacketTest), values ×1000 into metres.
    #[test]
    fn vd_j1939_84() {
        let vd =
            VehicleDistance::decode(&[0x11, 0x22, 0x33, 0x44, 0x80, 0x14, 0x06, 0x00]).unwrap();
        assert_eq!(vd.total_m, Signal::Valid(49_808_000)); // 49808.0 km
        assert_eq!(vd.trip_m, Signal::Valid(143_025_218_125)); // 143025218.125 km
        let vd = VehicleDistance::decode(&[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0xFE]).unwrap();
        assert_eq!(vd.total_m, Signal::Error);
        let vd =
            VehicleDistance::decode(&[0x11, 0x22, 0x33, 0x44, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
        assert_eq!(vd.total_m, Signal::NotAvailable);
        let vd =
            VehicleDistance::decode(&[0x11, 0x22, 0x33, 0x44, 0xFF, 0xFF, 0xFF, 0xFA]).unwrap();
        assert_eq!(vd.total_m, Signal::Valid(526_385_151_875)); // max valid, 526385151.875 km
    }

    // VECTORS.md §4a (j1939-84 HighResVehicleDistancePacketTest).
    #[test]
    fn vdhr_j1939_84() {
        let v = HighResVehicleDistance::decode(&[0x80, 0x14, 0x06, 0x00, 0x11, 0x22, 0x33, 0x44])
            .unwrap();
        assert_eq!(v.total_m, Signal::Valid(1_992_320));
        assert_eq!(v.trip_m, Signal::Valid(5_721_008_725));
        let v = HighResVehicleDistance::decode(&[0, 0, 0, 0xFE, 0, 0, 0, 0]).unwrap();
        assert_eq!(v.total_m, Signal::Error);
        let v = HighResVehicleDistance::decode(&[0xFF; 8]).unwrap();
        assert_eq!(
            (v.total_m, v.trip_m),
            (Signal::NotAvailable, Signal::NotAvailable)
        );
        let v = HighResVehicleDistance::decode(&[0xFF, 0xFF, 0xFF, 0xFA, 0, 0, 0, 0]).unwrap();
        assert_eq!(v.total_m, Signal::Valid(21_055_406_075)); // 21055406.075 km
    }

    // VECTORS.md §4b README (pretty_j1939): 18FEE000#FFFFFFFFB05C6800 → 854934 km.
    // VECTORS.md §4d (normal.log): VD, both VDHRs and CCVS1.
    #[test]
    fn real_truck_frames() {
        let vd =
            VehicleDistance::decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0xB0, 0x5C, 0x68, 0x00]).unwrap();
        assert_eq!(
            (vd.trip_m, vd.total_m),
            (Signal::NotAvailable, Signal::Valid(854_934_000))
        );

        let vd =
            VehicleDistance::decode(&[0xC7, 0x2C, 0x01, 0x00, 0x10, 0x96, 0x35, 0x00]).unwrap();
        assert_eq!(
            (vd.trip_m, vd.total_m),
            (Signal::Valid(9_624_875), Signal::Valid(438_978_000))
        );

        let v = HighResVehicleDistance::decode(&[0x9A, 0xA7, 0x3B, 0x05, 0x79, 0x5F, 0x1D, 0x00])
            .unwrap();
        assert_eq!(
            (v.total_m, v.trip_m),
            (Signal::Valid(438_978_050), Signal::Valid(9_624_925))
        );
        let v = HighResVehicleDistance::decode(&[0xB1, 0x41, 0x67, 0x06, 0xFF, 0xFF, 0xFF, 0xFF])
            .unwrap();
        assert_eq!(
            (v.total_m, v.trip_m),
            (Signal::Valid(537_151_605), Signal::NotAvailable)
        );

        let c =
            CruiseControlVehicleSpeed::decode(&[0xFF, 0x34, 0x17, 0xFC, 0xFF, 0x68, 0x00, 0xCF])
                .unwrap();
        assert_eq!(c.wheel_speed_kmh_256, Signal::Valid(0x1734)); // 23.203 km/h
        assert_eq!(c.wheel_speed_m_per_h(), Signal::Valid(23_203));
        assert_eq!(c.parking_brake, Signal::NotAvailable);
    }

    #[test]
    fn ccvs1_states_and_limits() {
        // Byte 1 = 0b0000_0100: parking brake set; speed 0xFE00 = error, 0xFB00 reserved → N/A.
        let c = CruiseControlVehicleSpeed::decode(&[0x04, 0x00, 0xFE]).unwrap();
        assert_eq!(
            (c.parking_brake, c.wheel_speed_kmh_256),
            (Signal::Valid(true), Signal::Error)
        );
        let c = CruiseControlVehicleSpeed::decode(&[0x08, 0x00, 0xFB]).unwrap();
        assert_eq!(
            (c.parking_brake, c.wheel_speed_kmh_256),
            (Signal::Error, Signal::NotAvailable)
        );
        let c = CruiseControlVehicleSpeed::decode(&[0x00, 0xFF, 0xFA]).unwrap();
        assert_eq!(
            (c.parking_brake, c.wheel_speed_kmh_256),
            (Signal::Valid(false), Signal::Valid(0xFAFF))
        );
        assert_eq!(
            CruiseControlVehicleSpeed::decode(&[0x00, 0x01]),
            Err(J1939Error::Short {
                pgn: PGN_CCVS1,
                len: 2,
                need: 3
            })
        );
    }

    #[test]
    fn hours() {
        // 0x0001_86A0 = 100000 × 0.05 h = 5000 h; revolutions 0x0000_1000 × 1000.
        let h = EngineHours::decode(&[0xA0, 0x86, 0x01, 0x00, 0x00, 0x10, 0x00, 0x00]).unwrap();
        assert_eq!(h.total_hours_x20, Signal::Valid(100_000));
        assert_eq!(h.total_seconds(), Signal::Valid(5000 * 3600));
        assert_eq!(h.total_revolutions, Signal::Valid(4_096_000));
        let h = EngineHours::decode(&[0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
        assert_eq!(
            (h.total_hours_x20, h.total_revolutions),
            (Signal::Error, Signal::NotAvailable)
        );
        assert_eq!(
            EngineHours::decode(&[0; 7]),
            Err(J1939Error::Short {
                pgn: PGN_HOURS,
                len: 7,
                need: 8
            })
        );
    }
}
