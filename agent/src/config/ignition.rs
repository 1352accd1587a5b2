//! `[ignition]`: where the agent takes the ignition state from — bus activity (the default) or
//! the answers to its own OBD-II requests, for a car behind a gateway that passes no broadcast.
//!
//! Owns: the section's shape, defaults and check. Does not own: the rule itself
//! (`crate::runtime::power`) nor the requests (`crate::poller`).

use rapport_kit::config::{Check, Problems};
use serde::{Deserialize, Serialize};

use super::defaults;

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
            on_volts: defaults::IGNITION_ON_VOLTS,
            off_after_silent: defaults::IGNITION_OFF_AFTER_SILENT,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rapport_kit::config::Problems;

    use crate::config::Config;

    const BASE: &str = "[vehicle]\nvin = \"WVWZZZ1KZ8W012345\"\nline = \"x\"\ncategory = \"passenger\"\ndelivered = \"2021-03-15\"\n[[can.buses]]\nname = \"b\"\ninterface = \"can0\"\n";

    fn problems(text: &str) -> Vec<String> {
        let config = Config::from_toml("t.toml", text).unwrap();
        let mut p = Problems::new();
        p.check("", &config);
        match p.into_result("t.toml") {
            Ok(()) => Vec::new(),
            Err(e) => e.to_string().lines().skip(1).map(str::to_owned).collect(),
        }
    }

    #[test]
    fn defaults_to_activity_and_checks_its_values() {
        let config = Config::from_toml("t.toml", BASE).unwrap();
        assert_eq!(config.ignition.source, super::IgnitionSource::Activity);
        assert!(problems(BASE).is_empty());
        let obd = format!("{BASE}[obd]\nbus = \"b\"\n[ignition]\nsource = \"obd\"\n");
        assert!(problems(&obd).is_empty(), "{:?}", problems(&obd));
        let bad =
            format!("{BASE}[ignition]\nsource = \"obd\"\non_volts = 99.0\noff_after_silent = 0\n");
        let p = problems(&bad).join("\n");
        assert!(p.contains("ignition.on_volts"), "{p}");
        assert!(p.contains("ignition.off_after_silent"), "{p}");
        assert!(
            p.contains("ignition.source: \"obd\" needs an [obd] section"),
            "{p}"
        );
    }
}
