//! Unit tests of the strategies: the helpers and small files shared by the test modules.
//!
//! [`config`]: parsing and every config error with its key path and place; [`decide`]: matching,
//! campaigns, consents, suggestions; [`limits`]: cadence, cap, cooldown, the history and
//! `next_in_cell`; [`default_file`]: the shipped `config/strategies.toml` and property tests.
#![allow(clippy::unwrap_used)]

use rapport_shared::{CampaignTarget, Odometer, Priority};

use super::*;
use crate::fleet::model::{CarMaturity, Category, ServiceMaturity};
use rapport_kit::config::Check;

/// 2026-11-03 09:30 UTC.
const T0: u64 = 1_793_698_200_000;
const HOUR: u64 = 3_600_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// `"passenger novice junior active new"` → layers.
fn l(s: &str) -> Layers {
    let v: Vec<&str> = s.split_whitespace().collect();
    Layers {
        category: v[0].parse().unwrap(),
        car: v[1].parse().unwrap(),
        service: v[2].parse().unwrap(),
        activity: v[3].parse().unwrap(),
        lifecycle: v[4].parse().unwrap(),
    }
}

const BOTH: Consents = Consents {
    partner_sharing: true,
    engagement: true,
};

fn ctx(layers: Layers, consents: Consents, history: &ContactHistory) -> DriverContext<'_> {
    DriverContext {
        layers,
        consents,
        history,
    }
}

fn strategies(text: &str) -> Strategies {
    Strategies::from_toml("t.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(text: &str) -> Vec<String> {
    let c = StrategyConfig::from_toml("t.toml", text).unwrap();
    c.problems("").iter().map(ToString::to_string).collect()
}

fn acted(decisions: &[Decision]) -> Vec<(&str, &Action)> {
    decisions
        .iter()
        .filter_map(|d| match &d.outcome {
            Outcome::Act(a) => Some((d.rule.as_str(), a)),
            Outcome::Suppressed { .. } => None,
        })
        .collect()
}

fn reasons(decisions: &[Decision]) -> Vec<(&str, SuppressReason)> {
    decisions
        .iter()
        .filter_map(|d| match &d.outcome {
            Outcome::Suppressed { reason } => Some((d.rule.as_str(), *reason)),
            Outcome::Act(_) => None,
        })
        .collect()
}

const TWO_CAMPAIGNS: &str = r#"
[campaign.hello]
title = "Hello"
text = "Welcome"
valid_days = 10
[campaign.again]
title = "Again"
text = "Still here?"
priority = "high"
valid_days = 3
[campaign.again.target]
min_odometer_km = 1000
max_days_owned = 365
no_active_faults = true
"#;

mod config;
mod decide;
mod default_file;
mod limits;
