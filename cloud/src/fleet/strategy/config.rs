//! The strategy file's shape: typed serde structs read from TOML (`deny_unknown_fields`, so a
//! typo never passes silently), their defaults, and reading a file with errors that name the
//! file, line, column and key path.
//!
//! Owns the file format only. Does not own checking the values (layer names, campaign
//! references, ranges: [`super::compile`], which is also the file's
//! [`Check`](rapport_kit::config::Check)) or what a rule does ([`super::Strategies`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rapport_shared::Priority;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::fleet::model::Activity;
use rapport_kit::config::{ConfigError, line_col};

/// Every default value of the strategy file, in one place.
pub mod defaults {
    /// Days between engagement contacts for an active driver.
    pub const ACTIVE_DAYS: u32 = 3;
    /// Days between engagement contacts for a declining driver.
    pub const DECLINING_DAYS: u32 = 7;
    /// Days between engagement contacts for a churned driver.
    pub const CHURNED_DAYS: u32 = 7;
    /// Days between engagement contacts for a dormant driver.
    pub const DORMANT_DAYS: u32 = 30;
    /// Engagement contacts to one driver in any 30 days.
    pub const MAX_CAMPAIGNS_PER_30_DAYS: u32 = 4;
}

/// The whole strategy file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// `[cadence]`: how often one driver may be contacted for engagement.
    #[serde(default)]
    pub cadence: Cadence,
    /// `[campaign.<id>]`: campaign templates, by id.
    #[serde(default)]
    pub campaign: BTreeMap<String, CampaignTemplate>,
    /// `[[rule]]`: the rules, in document order (all matching rules fire, in this order).
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
}

/// `[cadence]`: minimum days between two engagement contacts to one driver, by the driver's
/// activity layer at the time of the second, and a cap over any 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cadence {
    /// Active drivers.
    pub active: u32,
    /// Declining drivers.
    pub declining: u32,
    /// Churned drivers.
    pub churned: u32,
    /// Dormant drivers.
    pub dormant: u32,
    /// At most this many engagement contacts to one driver in any 30 days, whatever the layer.
    pub max_campaigns_per_30_days: u32,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            active: defaults::ACTIVE_DAYS,
            declining: defaults::DECLINING_DAYS,
            churned: defaults::CHURNED_DAYS,
            dormant: defaults::DORMANT_DAYS,
            max_campaigns_per_30_days: defaults::MAX_CAMPAIGNS_PER_30_DAYS,
        }
    }
}

impl Cadence {
    /// Minimum days between engagement contacts for a driver in `activity`.
    pub const fn days(&self, activity: Activity) -> u32 {
        match activity {
            Activity::Active => self.active,
            Activity::Declining => self.declining,
            Activity::Churned => self.churned,
            Activity::Dormant => self.dormant,
        }
    }
}

/// `[campaign.<id>]`: what a campaign rule sends to the car.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignTemplate {
    /// Short title shown on the head unit.
    pub title: String,
    /// The text shown.
    pub text: String,
    /// `low`, `normal` (default) or `high`.
    #[serde(default = "normal")]
    pub priority: Priority,
    /// Shown for this many days from the day it is sent.
    pub valid_days: u32,
    /// `[campaign.<id>.target]`: conditions the car checks before showing it.
    #[serde(default)]
    pub target: TargetConfig,
}

fn normal() -> Priority {
    Priority::Normal
}

/// `[campaign.<id>.target]`: every condition present must hold on the car.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// At least this odometer, km.
    pub min_odometer_km: Option<u32>,
    /// At most this odometer, km.
    pub max_odometer_km: Option<u32>,
    /// Owned at least this many days.
    pub min_days_owned: Option<u32>,
    /// Owned at most this many days.
    pub max_days_owned: Option<u32>,
    /// Only while no fault is active.
    #[serde(default)]
    pub no_active_faults: bool,
}

/// What makes a rule look at a driver (`on = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The driver entered a matching cell (was outside it, or had no layer yet).
    LayerChanged,
    /// The driver is in a matching cell; re-offered as often as cadence and cooldown allow.
    InCell,
    /// A maintenance item fell due.
    MaintenanceDue,
    /// A critical fault was reported.
    CriticalFault,
}

impl Trigger {
    /// The spelling in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LayerChanged => "layer_changed",
            Self::InCell => "in_cell",
            Self::MaintenanceDue => "maintenance_due",
            Self::CriticalFault => "critical_fault",
        }
    }
}

/// What a rule does (`do = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Send the campaign named by `campaign` down to the car.
    Campaign,
    /// Open a task for a partner (`partner`, `capability`, `task`, `suggestion`).
    PartnerTask,
    /// Nothing (documents a cell deliberately left alone; stops nothing else).
    Nothing,
}

/// Which partner (`partner = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    /// The vehicle's dealer.
    Dealer,
    /// The fallback partner.
    Fallback,
    /// A service provider with `capability` in the vehicle's region.
    Provider,
}

/// `[[rule]]`: one rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name; the contact history remembers firings under it.
    pub name: String,
    /// The event it reacts to.
    pub on: Trigger,
    /// The cells it applies to; an absent axis matches any value.
    #[serde(default)]
    pub when: When,
    /// What it does.
    #[serde(rename = "do")]
    pub action: ActionKind,
    /// `do = "campaign"`: the template id.
    pub campaign: Option<String>,
    /// `do = "partner_task"`: who.
    pub partner: Option<PartnerKind>,
    /// `partner = "provider"`: the capability the provider must have.
    pub capability: Option<String>,
    /// `do = "partner_task"`: what the partner is asked to do. `{item}` (maintenance_due) and
    /// `{code}` (critical_fault) are replaced.
    pub task: Option<String>,
    /// `do = "partner_task"`: the suggested next step, one text or a table by layer value.
    pub suggestion: Option<SuggestionConfig>,
    /// Fire at most once per this many days for one driver.
    pub cooldown_days: Option<u32>,
}

/// `when`: lists of layer values per axis; absent = any.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// `passenger`, `commercial`.
    pub category: Option<Vec<String>>,
    /// Maturity with the car: `novice`, `skilled`, `veteran`.
    pub car: Option<Vec<String>>,
    /// Maturity with the service: `junior`, `growing`, `mature`.
    pub service: Option<Vec<String>>,
    /// `active`, `declining`, `churned`, `dormant`.
    pub activity: Option<Vec<String>>,
    /// `new`, `retained`, `lapsed`.
    pub lifecycle: Option<Vec<String>>,
}

/// `suggestion`: one text, or a table of texts keyed by layer value (`declining = "..."`)
/// with a `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuggestionConfig {
    /// The same text for every driver.
    Text(String),
    /// By layer value, plus `default`.
    ByLayer(BTreeMap<String, String>),
}

impl<'de> Deserialize<'de> for SuggestionConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SuggestionConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text, or a table of texts keyed by layer value with a `default`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SuggestionConfig::Text(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut by = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    by.insert(k, v);
                }
                Ok(SuggestionConfig::ByLayer(by))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Where the value at a key path (`rule[3].when.activity[1]`) is in `text`: 1-based line and
/// column of the deepest part of the path present (a missing key points at its table). Best
/// effort, for error messages: `None` when the text does not parse or the path is not in it.
pub(super) fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut found = None;
    let mut table = Some(root.get_ref());
    for part in path.split('.') {
        let (key, indices) = part.split_once('[').unwrap_or((part, ""));
        let Some(mut value) = table.and_then(|t| t.get(key)) else {
            break;
        };
        found = Some(value.span().start);
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            let Ok(i) = index.trim_end_matches(']').parse::<usize>() else {
                break;
            };
            let DeValue::Array(array) = value.get_ref() else {
                break;
            };
            let Some(item) = array.get(i) else {
                break;
            };
            found = Some(item.span().start);
            value = item;
        }
        table = match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    found.map(|offset| line_col(text, offset))
}

impl StrategyConfig {
    /// Parses TOML text; `file` names it in errors. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] with the key path, line and column of the problem.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        rapport_kit::config::parse_toml(file, text)
    }

    /// Reads and parses a file. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Syntax`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        rapport_kit::config::read_toml(path)
    }
}
