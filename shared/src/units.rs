//! Fixed-point units carried on the wire: time, distance, engine time. No floats on the wire;
//! floats appear only where a human reads a value (`km()`, `hours()`).

use core::fmt;

use serde::{Deserialize, Serialize};

/// A point in wall-clock time: milliseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const EPOCH: Self = Self(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// From whole seconds since the Unix epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus a duration, saturating at the far future.
    pub fn saturating_add(self, d: core::time::Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// The time elapsed since `earlier`; zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Self) -> core::time::Duration {
        core::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// An odometer reading (or any distance): whole metres.
///
/// Metres are finer than every source rapport reads (OBD PID A6: 100 m; J1939 VD: 125 m;
/// VDHR: 5 m), so no reading is rounded, and `u64` never overflows for a vehicle.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Odometer(u64);

impl Odometer {
    /// From whole metres.
    pub const fn from_meters(m: u64) -> Self {
        Self(m)
    }

    /// From whole kilometres (saturating).
    pub const fn from_km(km: u64) -> Self {
        Self(km.saturating_mul(1000))
    }

    /// Whole metres.
    pub const fn meters(self) -> u64 {
        self.0
    }

    /// Kilometres, for people and JSON.
    pub fn km(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl fmt::Display for Odometer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} km", self.0 / 1000, (self.0 % 1000) / 100)
    }
}

/// Engine running time: whole seconds.
///
/// J1939 counts 0.05 h (180 s) steps and OBD PID 1F seconds, so seconds keep both exact.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineHours(u64);

impl EngineHours {
    /// From whole seconds of engine running time.
    pub const fn from_secs(s: u64) -> Self {
        Self(s)
    }

    /// Whole seconds of engine running time.
    pub const fn secs(self) -> u64 {
        self.0
    }

    /// Hours, for people and JSON.
    pub fn hours(self) -> f64 {
        self.0 as f64 / 3600.0
    }
}

impl fmt::Display for EngineHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} h", self.0 / 3600, (self.0 % 3600) / 36)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_truncates_never_rounds_up() {
        assert_eq!(Odometer::from_meters(12_345_678).to_string(), "12345.6 km");
        assert_eq!(Odometer::from_km(5000).to_string(), "5000.0 km");
        assert_eq!(
            EngineHours::from_secs(3600 * 12 + 180).to_string(),
            "12.05 h"
        );
        assert_eq!(
            Timestamp::from_millis(1_436_509_052_249).to_string(),
            "1436509052.249"
        );
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t = Timestamp::from_secs(10);
        assert_eq!(t.saturating_since(Timestamp::from_secs(20)).as_millis(), 0);
        assert_eq!(
            t.saturating_add(core::time::Duration::from_secs(5)),
            Timestamp::from_secs(15)
        );
        assert_eq!(
            Timestamp::from_millis(u64::MAX).saturating_add(core::time::Duration::from_secs(1)),
            Timestamp::from_millis(u64::MAX)
        );
    }
}
