//! OBD-II mode 01 (current data): the PID data-length table, the walk over multi-PID
//! responses (`41 pid data pid data …`), typed values for the PIDs the agent uses, and the
//! supported-PID bitmaps with their chained discovery (0x00 → 0x20 → … → 0xE0).
//!
//! Does not own: which PIDs to ask for (the poller's), the request bytes
//! ([`super::Request`]), or scaling of PIDs the agent does not use (those come back raw).

use super::{ObdError, positive_body};

/// Data length (bytes after the PID byte) of the mode 01 PIDs this decoder can walk over.
/// `None` for PIDs whose length is unknown here: a multi-PID response cannot be walked past them.
pub(crate) fn pid_data_len(pid: u8) -> Option<usize> {
    let len = match pid {
        // supported-PID bitmaps
        0x00 | 0x20 | 0x40 | 0x60 | 0x80 | 0xA0 | 0xC0 | 0xE0 => 4,
        0x01 | 0x41 => 4, // monitor status
        0x02 | 0x03 => 2,
        0x04..=0x0B => 1,
        0x0C => 2,
        0x0D..=0x0F => 1,
        0x10 => 2,
        0x11..=0x13 => 1,
        0x14..=0x1B => 2,
        0x1C..=0x1E => 1,
        0x1F => 2,
        0x21..=0x23 => 2,
        0x24..=0x2B => 4,
        0x2C..=0x30 => 1,
        0x31 | 0x32 => 2,
        0x33 => 1,
        0x34..=0x3B => 4,
        0x3C..=0x3F => 2,
        0x42..=0x44 => 2,
        0x45..=0x4C => 1,
        0x4D | 0x4E => 2,
        0x4F | 0x50 => 4,
        0x51 | 0x52 => 1,
        0x53..=0x59 => 2,
        0x5A..=0x5C => 1,
        0x5D | 0x5E => 2,
        0x5F => 1,
        0x61 | 0x62 => 1,
        0x63 => 2,
        0x64 => 5,
        0x65 => 2,
        0x66 => 5,
        0x78 | 0x79 => 9, // exhaust gas temperature, banks 1 and 2
        0xA2 => 2,
        0xA4 => 2,
        0xA6 => 4, // odometer
        _ => return None,
    };
    Some(len)
}

/// Ignition type reported by PID 0x01 (byte B bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ignition {
    /// Spark ignition (petrol).
    Spark,
    /// Compression ignition (diesel).
    Compression,
}

/// PID 0x01: monitor status since DTCs were cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonitorStatus {
    /// The malfunction indicator lamp is commanded on.
    pub(crate) mil_on: bool,
    /// Number of emission-related DTCs stored (0–127).
    pub(crate) dtc_count: u8,
    /// Spark or compression ignition.
    pub(crate) ignition: Ignition,
    /// The four data bytes, for the readiness monitor bits not decoded here.
    pub(crate) raw: [u8; 4],
}

impl MonitorStatus {
    fn from_bytes(raw: [u8; 4]) -> Self {
        Self {
            mil_on: raw[0] & 0x80 != 0,
            dtc_count: raw[0] & 0x7F,
            ignition: if raw[1] & 0x08 != 0 {
                Ignition::Compression
            } else {
                Ignition::Spark
            },
            raw,
        }
    }
}

/// One decoded PID from a mode 01 response. Values are integers in the unit their name
/// says, exactly as the ECU sent them; [`PidValue::physical`] gives the scaled number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum PidValue<'a> {
    /// PIDs 0x00, 0x20, …: bit 31 of `bitmap` is PID `base + 1`, bit 0 is PID `base + 0x20`.
    SupportedPids {
        /// The PID asked (0x00, 0x20, …, 0xE0).
        base: u8,
        /// The 32-bit bitmap, big-endian as sent.
        bitmap: u32,
    },
    /// PID 0x01.
    MonitorStatus(MonitorStatus),
    /// PID 0x04: calculated engine load, `raw × 100 / 255` %.
    EngineLoad {
        /// The raw byte.
        raw: u8,
    },
    /// PID 0x05: engine coolant temperature.
    CoolantTemp {
        /// °C (raw − 40).
        celsius: i16,
    },
    /// PID 0x0A: fuel pressure (gauge).
    FuelPressure {
        /// kPa (raw × 3).
        kpa: u16,
    },
    /// PID 0x0C: engine speed in quarter rpm.
    EngineSpeed {
        /// rpm × 4.
        quarter_rpm: u16,
    },
    /// PID 0x0D: vehicle speed.
    VehicleSpeed {
        /// km/h.
        kmh: u8,
    },
    /// PID 0x1F: run time since engine start.
    RunTime {
        /// Seconds.
        seconds: u16,
    },
    /// PID 0x21: distance travelled with the MIL on.
    DistanceWithMil {
        /// km.
        km: u16,
    },
    /// PID 0x31: distance travelled since DTCs were cleared.
    DistanceSinceCodesCleared {
        /// km.
        km: u16,
    },
    /// PID 0x42: control module voltage.
    ControlModuleVoltage {
        /// mV.
        millivolts: u16,
    },
    /// PID 0xA6: odometer.
    Odometer {
        /// Hectometres (0.1 km), as sent.
        hectometres: u32,
    },
    /// A PID of known length that is not decoded here: its data bytes.
    Other {
        /// The PID.
        pid: u8,
        /// Its data bytes.
        data: &'a [u8],
    },
}

impl PidValue<'_> {
    /// The PID this value answers.
    #[cfg(test)]
    pub(crate) fn pid(&self) -> u8 {
        match self {
            Self::SupportedPids { base, .. } => *base,
            Self::MonitorStatus(_) => 0x01,
            Self::EngineLoad { .. } => 0x04,
            Self::CoolantTemp { .. } => 0x05,
            Self::FuelPressure { .. } => 0x0A,
            Self::EngineSpeed { .. } => 0x0C,
            Self::VehicleSpeed { .. } => 0x0D,
            Self::RunTime { .. } => 0x1F,
            Self::DistanceWithMil { .. } => 0x21,
            Self::DistanceSinceCodesCleared { .. } => 0x31,
            Self::ControlModuleVoltage { .. } => 0x42,
            Self::Odometer { .. } => 0xA6,
            Self::Other { pid, .. } => *pid,
        }
    }

    /// The physical value in its usual unit (%, °C, kPa, rpm, km/h, s, km, V, km), or `None`
    /// for bitmaps, status and raw PIDs.
    #[cfg(test)]
    pub(crate) fn physical(&self) -> Option<f64> {
        Some(match *self {
            Self::EngineLoad { raw } => f64::from(raw) * 100.0 / 255.0,
            Self::CoolantTemp { celsius } => f64::from(celsius),
            Self::FuelPressure { kpa } => f64::from(kpa),
            Self::EngineSpeed { quarter_rpm } => f64::from(quarter_rpm) / 4.0,
            Self::VehicleSpeed { kmh } => f64::from(kmh),
            Self::RunTime { seconds } => f64::from(seconds),
            Self::DistanceWithMil { km } | Self::DistanceSinceCodesCleared { km } => f64::from(km),
            Self::ControlModuleVoltage { millivolts } => f64::from(millivolts) / 1000.0,
            Self::Odometer { hectometres } => f64::from(hectometres) / 10.0,
            _ => return None,
        })
    }

    fn decode(pid: u8, data: &[u8]) -> PidValue<'_> {
        let u16_at = || match data {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        let u32_at = || match data {
            [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => 0,
        };
        let first = data.first().copied().unwrap_or(0);
        // The caller sliced `data` to `pid_data_len(pid)`, so the fallbacks above never apply.
        match pid {
            0x00 | 0x20 | 0x40 | 0x60 | 0x80 | 0xA0 | 0xC0 | 0xE0 => PidValue::SupportedPids {
                base: pid,
                bitmap: u32_at(),
            },
            0x01 => PidValue::MonitorStatus(MonitorStatus::from_bytes(u32_at().to_be_bytes())),
            0x04 => PidValue::EngineLoad { raw: first },
            0x05 => PidValue::CoolantTemp {
                celsius: i16::from(first) - 40,
            },
            0x0A => PidValue::FuelPressure {
                kpa: u16::from(first) * 3,
            },
            0x0C => PidValue::EngineSpeed {
                quarter_rpm: u16_at(),
            },
            0x0D => PidValue::VehicleSpeed { kmh: first },
            0x1F => PidValue::RunTime { seconds: u16_at() },
            0x21 => PidValue::DistanceWithMil { km: u16_at() },
            0x31 => PidValue::DistanceSinceCodesCleared { km: u16_at() },
            0x42 => PidValue::ControlModuleVoltage {
                millivolts: u16_at(),
            },
            0xA6 => PidValue::Odometer {
                hectometres: u32_at(),
            },
            _ => PidValue::Other { pid, data },
        }
    }
}

/// Decodes a mode 01 positive response (`41 pid data [pid data …]`).
///
/// The SID is checked here; the PIDs are walked lazily by the returned iterator, which
/// yields one error and then stops when it meets a PID of unknown length or runs out of bytes.
///
/// # Errors
/// Anything [`super::positive_body`] rejects (empty, negative response, other SID), or
/// [`ObdError::TooShort`] when no PID follows the SID.
pub(crate) fn parse_current_data(payload: &[u8]) -> Result<PidIter<'_>, ObdError> {
    let body = positive_body(payload, 0x01)?;
    if body.is_empty() {
        return Err(ObdError::TooShort {
            what: "mode 01 response",
            len: payload.len(),
            needed: 2,
        });
    }
    Ok(PidIter {
        rest: body,
        offset: 1,
    })
}

/// Walks the PIDs of a mode 01 response; see [`parse_current_data`].
#[derive(Debug, Clone)]
pub(crate) struct PidIter<'a> {
    rest: &'a [u8],
    /// Offset of `rest` in the payload, for error messages.
    offset: usize,
}

impl<'a> Iterator for PidIter<'a> {
    type Item = Result<PidValue<'a>, ObdError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&pid, after) = self.rest.split_first()?;
        let Some(len) = pid_data_len(pid) else {
            let offset = self.offset;
            self.rest = &[];
            return Some(Err(ObdError::UnknownPid { pid, offset }));
        };
        let Some((data, rest)) = after.split_at_checked(len) else {
            self.rest = &[];
            return Some(Err(ObdError::TruncatedPid {
                pid,
                needed: len,
                available: after.len(),
            }));
        };
        self.rest = rest;
        self.offset += 1 + len;
        Some(Ok(PidValue::decode(pid, data)))
    }
}

/// The set of mode 01 PIDs an ECU supports, filled from its bitmap answers (PIDs 0x00,
/// 0x20, …, 0xE0). PID 0x00 itself is always supported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SupportedPids {
    bits: [u32; 8],
    /// Bit `n` set once the bitmap of PID `0x20 × n` was received.
    received: u8,
}

impl SupportedPids {
    /// An empty set: nothing received yet.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds one bitmap answer. `base` must be a multiple of 0x20; others are ignored.
    pub(crate) fn insert_bitmap(&mut self, base: u8, bitmap: u32) {
        if !base.is_multiple_of(0x20) {
            return;
        }
        let index = usize::from(base / 0x20);
        if let Some(word) = self.bits.get_mut(index) {
            *word = bitmap;
            self.received |= 1 << index;
        }
    }

    /// Adds every bitmap in a decoded response; other PIDs are ignored.
    pub(crate) fn absorb(&mut self, value: &PidValue<'_>) {
        if let PidValue::SupportedPids { base, bitmap } = *value {
            self.insert_bitmap(base, bitmap);
        }
    }

    /// Whether the ECU said it supports `pid`.
    pub(crate) fn contains(&self, pid: u8) -> bool {
        if pid == 0 {
            return true;
        }
        // Bitmap at base B covers PIDs B+1 ..= B+0x20, bit 31 first.
        let index = usize::from((pid - 1) / 0x20);
        let bit = 31 - u32::from((pid - 1) % 0x20);
        self.bits
            .get(index)
            .is_some_and(|word| word & (1 << bit) != 0)
    }

    /// The next bitmap PID to ask in the chained discovery: 0x00 first, then each 0x20·n
    /// the previous bitmap advertises; `None` once the chain ends.
    pub(crate) fn next_query(&self) -> Option<u8> {
        for index in 0u8..8 {
            let base = index * 0x20;
            if self.received & (1 << index) != 0 {
                continue;
            }
            return (base == 0 || self.contains(base)).then_some(base);
        }
        None
    }

    /// Iterates over the supported PIDs (1..=255) in order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (1..=255u8).filter(|pid| self.contains(*pid))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn single(payload: &[u8]) -> PidValue<'_> {
        let mut it = parse_current_data(payload).unwrap();
        let v = it.next().unwrap().unwrap();
        assert!(it.next().is_none(), "one PID expected in {payload:02X?}");
        v
    }

    // aws-iot-fleetwise-edge OBDDataDecoderTest.cpp (VECTORS §1a), one PID each.
    #[test]
    fn fleetwise_single_pids() {
        // 41 = mode 01 positive, 0D = speed, 23 = 35 km/h
        assert_eq!(
            single(&[0x41, 0x0D, 0x23]),
            PidValue::VehicleSpeed { kmh: 35 }
        );
        // 0C = rpm, 0A 6B = 2667 quarter rpm
        let rpm = single(&[0x41, 0x0C, 0x0A, 0x6B]);
        assert_eq!(rpm.physical(), Some(666.75));
        // 31 = distance since codes cleared, 00 0A = 10 km
        assert_eq!(
            single(&[0x41, 0x31, 0x00, 0x0A]),
            PidValue::DistanceSinceCodesCleared { km: 10 }
        );
        // 21 = distance with MIL on, 00 0A = 10 km
        assert_eq!(
            single(&[0x41, 0x21, 0x00, 0x0A]),
            PidValue::DistanceWithMil { km: 10 }
        );
        // A6 = odometer, 01 10 AA 55 = 17869397 hm = 1786939.7 km
        let odo = single(&[0x41, 0xA6, 0x01, 0x10, 0xAA, 0x55]);
        assert_eq!(
            odo,
            PidValue::Odometer {
                hectometres: 17_869_397
            }
        );
        assert_eq!(odo.physical(), Some(1_786_939.7));
        // 04 = engine load, 99 = 153 → 60 %
        assert_eq!(single(&[0x41, 0x04, 0x99]).physical(), Some(60.0));
        // 05 = coolant, 6E = 110 → 70 °C
        assert_eq!(
            single(&[0x41, 0x05, 0x6E]),
            PidValue::CoolantTemp { celsius: 70 }
        );
        // 0A = fuel pressure, 96 = 150 → 450 kPa
        assert_eq!(
            single(&[0x41, 0x0A, 0x96]),
            PidValue::FuelPressure { kpa: 450 }
        );
        // 42 = module voltage, 64 64 = 25700 mV
        assert_eq!(single(&[0x41, 0x42, 0x64, 0x64]).physical(), Some(25.7));
    }

    #[test]
    fn fleetwise_multi_pid_response() {
        // VECTORS §1a: 04 99 | 05 6E | 0A 96 | 0C 0A 6B | 0D 23
        let payload = [
            0x41, 0x04, 0x99, 0x05, 0x6E, 0x0A, 0x96, 0x0C, 0x0A, 0x6B, 0x0D, 0x23,
        ];
        let values: Vec<_> = parse_current_data(&payload)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            values,
            vec![
                PidValue::EngineLoad { raw: 0x99 },
                PidValue::CoolantTemp { celsius: 70 },
                PidValue::FuelPressure { kpa: 450 },
                PidValue::EngineSpeed { quarter_rpm: 2667 },
                PidValue::VehicleSpeed { kmh: 35 },
            ]
        );
    }

    #[test]
    fn unknown_pid_in_the_middle_stops_the_walk() {
        // VECTORS §1a: `41 AA 99 BB BB CC EE CC FF` fails to decode; AA's length is unknown.
        let payload = [0x41, 0xAA, 0x99, 0xBB, 0xBB, 0xCC, 0xEE, 0xCC, 0xFF];
        let mut it = parse_current_data(&payload).unwrap();
        let err = it.next().unwrap().unwrap_err();
        assert_eq!(
            err,
            ObdError::UnknownPid {
                pid: 0xAA,
                offset: 1
            }
        );
        assert!(err.to_string().contains("0xAA"));
        assert!(it.next().is_none());

        // known PIDs before the unknown one still come out
        let payload = [0x41, 0x0D, 0x23, 0xAB, 0x01];
        let mut it = parse_current_data(&payload).unwrap();
        assert_eq!(it.next(), Some(Ok(PidValue::VehicleSpeed { kmh: 35 })));
        assert_eq!(
            it.next(),
            Some(Err(ObdError::UnknownPid {
                pid: 0xAB,
                offset: 3
            }))
        );
        assert_eq!(it.next(), None);
    }

    #[test]
    fn truncated_pid_is_an_error() {
        // 0C needs 2 bytes, 1 present
        let mut it = parse_current_data(&[0x41, 0x0C, 0x0A]).unwrap();
        assert_eq!(
            it.next(),
            Some(Err(ObdError::TruncatedPid {
                pid: 0x0C,
                needed: 2,
                available: 1
            }))
        );
        assert_eq!(it.next(), None);
        assert!(matches!(
            parse_current_data(&[0x41]),
            Err(ObdError::TooShort { .. })
        ));
    }

    #[test]
    fn not_a_mode_01_response() {
        // VECTORS §1a: `78 09 99` fails
        assert_eq!(
            parse_current_data(&[0x78, 0x09, 0x99]).unwrap_err(),
            ObdError::UnexpectedSid {
                expected: 0x41,
                got: 0x78
            }
        );
    }

    // python-OBD tests/test_decoders.py and test_uas.py (VECTORS §1b).
    #[test]
    fn python_obd_scalings() {
        // UAS 0x09 speed: python-OBD feeds 2 bytes; J1979 PID 0D carries one, so the
        // 1-byte rows 0x64 → 100 km/h and 0xFF → 255 km/h are what applies here.
        assert_eq!(
            single(&[0x41, 0x0D, 0x64]),
            PidValue::VehicleSpeed { kmh: 100 }
        );
        assert_eq!(
            single(&[0x41, 0x0D, 0xFF]),
            PidValue::VehicleSpeed { kmh: 255 }
        );
        // UAS 0x25 distance: 0000 / 0001 / FFFF → 0 / 1 / 65535 km
        for (hi, lo, km) in [(0x00, 0x00, 0), (0x00, 0x01, 1), (0xFF, 0xFF, 65535)] {
            assert_eq!(
                single(&[0x41, 0x31, hi, lo]),
                PidValue::DistanceSinceCodesCleared { km }
            );
            assert_eq!(
                single(&[0x41, 0x21, hi, lo]),
                PidValue::DistanceWithMil { km }
            );
        }
        // UAS 0x07 rpm: 0002 → 0.5, FFFF → 16383.75
        assert_eq!(single(&[0x41, 0x0C, 0x00, 0x02]).physical(), Some(0.5));
        assert_eq!(single(&[0x41, 0x0C, 0xFF, 0xFF]).physical(), Some(16383.75));
        // temp: 00 → −40 °C, FF → 215 °C
        assert_eq!(
            single(&[0x41, 0x05, 0x00]),
            PidValue::CoolantTemp { celsius: -40 }
        );
        assert_eq!(
            single(&[0x41, 0x05, 0xFF]),
            PidValue::CoolantTemp { celsius: 215 }
        );
    }

    #[test]
    fn python_obd_monitor_status() {
        // 01 = status; 83 = MIL on + 3 DTCs; 07 bit 3 clear = spark
        let PidValue::MonitorStatus(s) = single(&[0x41, 0x01, 0x83, 0x07, 0xFF, 0x00]) else {
            panic!("not a status");
        };
        assert!(s.mil_on);
        assert_eq!(s.dtc_count, 3);
        assert_eq!(s.ignition, Ignition::Spark);
        // 00 = MIL off, 0 DTCs; 79 bit 3 set = compression
        let PidValue::MonitorStatus(s) = single(&[0x41, 0x01, 0x00, 0x79, 0x03, 0x03]) else {
            panic!("not a status");
        };
        assert!(!s.mil_on);
        assert_eq!(s.dtc_count, 0);
        assert_eq!(s.ignition, Ignition::Compression);
        assert_eq!(s.raw, [0x00, 0x79, 0x03, 0x03]);
    }

    #[test]
    fn run_time() {
        // 1F = run time since start, 0E 10 = 3600 s
        assert_eq!(
            single(&[0x41, 0x1F, 0x0E, 0x10]),
            PidValue::RunTime { seconds: 3600 }
        );
    }

    #[test]
    fn real_car_fragments() {
        // python-OBD #254 (VECTORS §1c), 29-bit from ECU 0x11: speed 0, rpm 0x1710 / 4
        assert_eq!(
            single(&[0x41, 0x0D, 0x00]),
            PidValue::VehicleSpeed { kmh: 0 }
        );
        assert_eq!(single(&[0x41, 0x0C, 0x17, 0x10]).physical(), Some(1476.0));
        // ELM327-emulator #40 (VECTORS §1c): PID 78 (EGT bank 1) with 9 data bytes
        let payload = [
            0x41, 0x78, 0x0D, 0x06, 0x1F, 0x01, 0x90, 0x03, 0xDA, 0x02, 0xA6,
        ];
        assert_eq!(
            single(&payload),
            PidValue::Other {
                pid: 0x78,
                data: &[0x0D, 0x06, 0x1F, 0x01, 0x90, 0x03, 0xDA, 0x02, 0xA6]
            }
        );
    }

    #[test]
    fn supported_pids_from_fleetwise_bitmap() {
        // VECTORS §1a: 00 = bitmap 01–20: BF BF A8 91; then 20 = bitmap 21–40: 80 00 00 00
        let payload = [
            0x41, 0x00, 0xBF, 0xBF, 0xA8, 0x91, 0x20, 0x80, 0x00, 0x00, 0x00,
        ];
        let mut set = SupportedPids::new();
        assert_eq!(set.next_query(), Some(0x00));
        for v in parse_current_data(&payload).unwrap() {
            set.absorb(&v.unwrap());
        }
        let got: Vec<u8> = set.iter().collect();
        // fleetwise lists these minus 0x20, which it leaves out as a bitmap PID
        let want = [
            0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
            0x11, 0x13, 0x15, 0x19, 0x1C, 0x20, 0x21,
        ];
        assert_eq!(got, want);
        assert!(set.contains(0x00));
        assert!(!set.contains(0x02));
        assert!(!set.contains(0x40));
        // 0x20's bitmap does not advertise 0x40: the chain ends
        assert_eq!(set.next_query(), None);
    }

    #[test]
    fn supported_pids_chain() {
        let mut set = SupportedPids::new();
        assert_eq!(set.next_query(), Some(0x00));
        set.insert_bitmap(0x00, 0x0000_0001); // only 0x20
        assert_eq!(set.next_query(), Some(0x20));
        set.insert_bitmap(0x20, 0x0000_0001); // only 0x40
        assert_eq!(set.next_query(), Some(0x40));
        set.insert_bitmap(0x40, 0x0000_0001);
        set.insert_bitmap(0x60, 0x0000_0001);
        set.insert_bitmap(0x80, 0x0000_0001);
        set.insert_bitmap(0xA0, 0x0400_0001); // A6 odometer + C0
        assert!(set.contains(0xA6));
        assert_eq!(set.next_query(), Some(0xC0));
        set.insert_bitmap(0xC0, 0x0000_0001);
        assert_eq!(set.next_query(), Some(0xE0));
        set.insert_bitmap(0xE0, 0x0000_0002); // 0xFF, the last PID
        assert!(set.contains(0xFF));
        assert!(!set.contains(0xFE));
        assert_eq!(set.next_query(), None);
        set.insert_bitmap(0x10, u32::MAX); // not a bitmap PID: ignored
        assert!(!set.contains(0x11));
    }
}
