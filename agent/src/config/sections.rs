//! The config sections of the agent's judgement and memory: `[maintenance]`, `[prompts]`,
//! `[store]`, `[outbox]` and `[hmi]`, each with its [`Check`] beside it. Defaults live in
//! [`super::defaults`].
//!
//! Owns: these sections' shape and checks, and turning a schedule's problems
//! ([`rapport_shared::check_schedule`], the checks a downlink's schedule passes too) into
//! problems with key paths ([`schedule_problems`]). Does not own: what the rules do with the
//! values ([`crate::rules`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use rapport_kit::config::{Check, Problems, index, key};
use rapport_shared::v1::downlink::MaintenanceItem;
use rapport_shared::v1::uplink::PromptKind;
use serde::{Deserialize, Serialize};

use super::defaults;
use crate::memory::QuietHours;

/// `[maintenance]`: the vehicle line's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Maintenance {
    /// `[[maintenance.items]]`: due by distance, time or engine hours, whichever first.
    pub items: Vec<MaintenanceItem>,
    /// An item is overdue this many km past its due distance.
    pub overdue_km: u32,
    /// An item is overdue this many days past its due date.
    pub overdue_days: u32,
    /// An item is overdue this many engine hours past its due hours.
    pub overdue_engine_hours: u32,
    /// "Due soon" starts this many engine hours before due (items due by hours).
    pub due_soon_engine_hours: u32,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            overdue_km: defaults::OVERDUE_KM,
            overdue_days: defaults::OVERDUE_DAYS,
            overdue_engine_hours: defaults::OVERDUE_ENGINE_HOURS,
            due_soon_engine_hours: defaults::DUE_SOON_ENGINE_HOURS,
        }
    }
}

/// `[prompts]`: what to tell the driver, and when it is safe and welcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prompts {
    /// Break-in distance, km (0: no break-in prompts).
    pub break_in_km: u32,
    /// Break-in advice shows again after this many days while under the distance.
    pub break_in_repeat_days: u32,
    /// Distance milestones, km.
    pub milestones_km: Vec<u32>,
    /// Below this speed, km/h, the car counts as stopped...
    pub stopped_kmh: f32,
    /// ...once it has stayed below it this long, seconds.
    pub stopped_for_s: u32,
    /// The head unit's offset from UTC, minutes, for quiet hours and days.
    pub utc_offset_minutes: i32,
    /// Most prompts of one kind shown per local day, by kind name; kinds not named get
    /// [`defaults::DAILY_CAP`]. Critical prompts are never capped.
    pub daily_caps: BTreeMap<String, u32>,
    /// Quiet hours until the driver sets their own (`{ start = "22:00", end = "07:00" }`).
    pub quiet_hours: Option<QuietHours>,
}

impl Default for Prompts {
    fn default() -> Self {
        Self {
            break_in_km: defaults::BREAK_IN_KM,
            break_in_repeat_days: defaults::BREAK_IN_REPEAT_DAYS,
            milestones_km: defaults::MILESTONES_KM.to_vec(),
            stopped_kmh: defaults::STOPPED_KMH,
            stopped_for_s: defaults::STOPPED_FOR_S,
            utc_offset_minutes: 0,
            daily_caps: BTreeMap::new(),
            quiet_hours: None,
        }
    }
}

/// `[store]`: where and how often the agent writes its memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// The data directory (sled files); relative paths resolve against the config's folder.
    pub path: PathBuf,
    /// Persist the odometer when it moved this many metres since the last write...
    pub odometer_every_m: u32,
    /// ...or this many seconds passed, whichever first.
    pub odometer_every_s: u32,
    /// Write what changed — one atomic batch, fsynced — at least this often, seconds; a
    /// driver's action or a service is written at once. What a power loss can lose: the
    /// last `write_every_s` of odometer progress and readings (the car's own odometer is
    /// read again at the next start), never an action the driver saw confirmed.
    pub write_every_s: u32,
    /// sled's page cache, KiB: how much of the store stays in memory (the rest is read back
    /// from the file when needed). Peak memory grows with it once the store outgrows it.
    pub cache_kb: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            path: PathBuf::from(defaults::STORE_PATH),
            odometer_every_m: defaults::ODOMETER_EVERY_M,
            odometer_every_s: defaults::ODOMETER_EVERY_S,
            write_every_s: defaults::WRITE_EVERY_S,
            cache_kb: defaults::STORE_CACHE_KB,
        }
    }
}

/// `[outbox]`: what waits for the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbox {
    /// Most records kept; when full, the least valuable go first.
    pub max_records: u64,
    /// An odometer record every this many metres driven (and at each stop).
    pub odometer_every_m: u32,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            max_records: defaults::OUTBOX_MAX_RECORDS,
            odometer_every_m: defaults::OUTBOX_ODOMETER_EVERY_M,
        }
    }
}

/// `[hmi]`: the head unit's screen talks to the agent over HTTP on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hmi {
    /// Listen address (port 0: any free port, logged at start).
    pub listen: SocketAddr,
}

impl Default for Hmi {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], defaults::HMI_PORT)),
        }
    }
}

/// Notes every problem with schedule `items` (the checks of [`rapport_shared::check_schedule`])
/// under the key path `path` (`maintenance.items` → `maintenance.items[2].every_km`).
pub(crate) fn schedule_problems(items: &[MaintenanceItem], path: &str, problems: &mut Problems) {
    for p in rapport_shared::check_schedule(items) {
        let item = index(path, p.index);
        match p.field {
            Some(field) => problems.at(&item, field, p.message),
            None => problems.push(item, p.message),
        }
    }
}

impl Check for Maintenance {
    fn check(&self, path: &str, problems: &mut Problems) {
        schedule_problems(&self.items, &key(path, "items"), problems);
    }
}

impl Check for Prompts {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !(self.stopped_kmh.is_finite() && (0.0..=20.0).contains(&self.stopped_kmh)) {
            problems.at(
                path,
                "stopped_kmh",
                format!("must be 0 to 20 km/h, not {}", self.stopped_kmh),
            );
        }
        if self.stopped_for_s > 600 {
            problems.at(
                path,
                "stopped_for_s",
                format!("must be at most 600 s, not {}", self.stopped_for_s),
            );
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            problems.at(
                path,
                "utc_offset_minutes",
                format!(
                    "must be -720..=840 (UTC-12 to UTC+14), not {}",
                    self.utc_offset_minutes
                ),
            );
        }
        if self.break_in_repeat_days == 0 {
            problems.at(path, "break_in_repeat_days", "must be at least 1");
        }
        let milestones = key(path, "milestones_km");
        for (i, m) in self.milestones_km.iter().enumerate() {
            if *m == 0 || self.milestones_km.iter().take(i).any(|e| e == m) {
                problems.push(
                    index(&milestones, i),
                    format!("{m} is zero or listed twice"),
                );
            }
        }
        let caps = key(path, "daily_caps");
        for kind in self.daily_caps.keys() {
            if kind != "other" && kind.parse::<PromptKind>().is_err() {
                let known: Vec<&str> = PromptKind::ALL.iter().map(|k| k.name()).collect();
                problems.at(
                    &caps,
                    kind,
                    format!("not a prompt kind (one of {})", known.join(", ")),
                );
            }
        }
        if let Some(q) = &self.quiet_hours
            && let Err(e) = q.window()
        {
            problems.at(path, "quiet_hours", e.to_string());
        }
    }
}

impl Check for Store {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.path.as_os_str().is_empty() {
            problems.at(path, "path", "must not be empty");
        }
        if self.odometer_every_m == 0 {
            problems.at(path, "odometer_every_m", "must be at least 1");
        }
        if self.odometer_every_s == 0 {
            problems.at(path, "odometer_every_s", "must be at least 1");
        }
        if !(1..=600).contains(&self.write_every_s) {
            problems.at(
                path,
                "write_every_s",
                format!("must be 1..=600 s, not {}", self.write_every_s),
            );
        }
        let cache = defaults::STORE_CACHE_KB_RANGE;
        if !cache.contains(&self.cache_kb) {
            problems.at(
                path,
                "cache_kb",
                format!(
                    "must be {}..={} KiB, not {}",
                    cache.start(),
                    cache.end(),
                    self.cache_kb
                ),
            );
        }
    }
}

impl Check for Outbox {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.max_records < 100 {
            problems.at(
                path,
                "max_records",
                format!("must be at least 100, not {}", self.max_records),
            );
        }
        if self.odometer_every_m == 0 {
            problems.at(path, "odometer_every_m", "must be at least 1");
        }
    }
}
