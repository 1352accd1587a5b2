//! `[ignition]`: where the agent takes the ignition state from — bus activity (the default) or
//! the answers to its own OBD-II requests, for a car behind a gateway that passes no broadcast.
//!
//! Owns: the section's shape, defaults and check. Does not own: the rule itself
//! (`crate::runtime::power`) nor the requests (`crate::poller`).

use rapport_kit::config::{Check, Problems};
use serde::{Deserialize, Serialize};

/// `[ignition]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ignition {
    /// Where the state comes from.
    pub source: IgnitionSource,
    /// With `source = "obd"`: control module voltage (PID 0x42) at or above this, V, means the
    /// engine runs (a charging alternator).
    pub on_volts: f32,
    /// With `source = "obd"`: this many accessory-cadence requests in a row without an answer
    /// mean the ignition is off.
    pub off_after_silent: u32,
}

/// Where the ignition state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IgnitionSource {
    /// Any broadcast frame or OBD-II answer means on; 5 s without means off.
    Activity,
    /// Engine speed, vehicle speed and module voltage asked at the accessory cadence, even
    /// with the ignition off (needs `[obd]`).
    Obd,
}

impl Default for Ignition {
    fn default() -> Self {
        Self {
            source: IgnitionSource::Activity,
            on_volts: 13.0,
            off_after_silent: 3,
        }
    }
}

impl Check for Ignition {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !(self.on_volts.is_finite() && (6.0..=32.0).contains(&self.on_volts)) {
            problems.at(path, "on_volts", "must be a voltage from 6 to 32");
        }
        if self.off_after_silent == 0 {
            problems.at(path, "off_after_silent", "must be at least 1");
        }
    }
}
