//! `[retention]`: how many days the cloud keeps each kind of data about a car, and how the
//! pruning sweeps go (rows per pass, pause between sweeps) — with its defaults and [`Check`].
//!
//! The defaults and why are documented in `docs/data-rights.md` ("Retention"). `[webhooks]
//! keep_delivered_days` is kept as an alias: `delivered_days` here wins when both are given
//! ([`Retention::delivered_days_or`]). Owns the section's shape; the pruning is
//! [`crate::retention`]'s.

use rapport_kit::config::{Check, Problems};
use serde::{Deserialize, Serialize};

/// Days a logged record is kept (by the record's own time): 13 months, so a year-on-year
/// comparison of a car's use still has its whole year.
pub const RECORDS_DAYS: u64 = 395;
/// Days a fleet timeline entry is kept: as records.
pub const TIMELINE_DAYS: u64 = 395;
/// Days a dead letter is kept for an operator to re-drive before it goes.
pub const DEAD_LETTER_DAYS: u64 = 90;
/// Days an audit log entry is kept (the audit log's own retention).
pub const AUDIT_DAYS: u64 = 365;
/// Entries examined per kind in one pruning pass.
pub const PASS_LIMIT: usize = 1000;
/// Seconds between two sweeps once a sweep found nothing more to do.
pub const EVERY_S: u64 = 600;

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Days a logged record is kept, by its own time.
    pub records_days: u64,
    /// Days a fleet timeline entry is kept.
    pub timeline_days: u64,
    /// Days a delivered webhook's marker is kept; unset: `[webhooks] keep_delivered_days`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_days: Option<u64>,
    /// Days a dead letter is kept.
    pub dead_letter_days: u64,
    /// Days an audit log entry is kept.
    pub audit_days: u64,
    /// Entries examined per kind in one pass (a pass that reaches it is followed by another
    /// at the next fleet tick).
    pub pass_limit: usize,
    /// Seconds between sweeps once one found nothing more.
    pub every_s: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            records_days: RECORDS_DAYS,
            timeline_days: TIMELINE_DAYS,
            delivered_days: None,
            dead_letter_days: DEAD_LETTER_DAYS,
            audit_days: AUDIT_DAYS,
            pass_limit: PASS_LIMIT,
            every_s: EVERY_S,
        }
    }
}

impl Retention {
    /// The delivered markers' days: this section's, else `[webhooks] keep_delivered_days`.
    pub fn delivered_days_or(&self, webhooks_keep_delivered_days: u64) -> u64 {
        self.delivered_days.unwrap_or(webhooks_keep_delivered_days)
    }

    /// The pruner's days, `[webhooks] keep_delivered_days` folded in.
    pub fn days(&self, webhooks_keep_delivered_days: u64) -> crate::retention::Days {
        crate::retention::Days {
            records: self.records_days,
            timeline: self.timeline_days,
            delivered: self.delivered_days_or(webhooks_keep_delivered_days),
            dead_letters: self.dead_letter_days,
        }
    }
}

impl Check for Retention {
    fn check(&self, path: &str, problems: &mut Problems) {
        let days = [
            ("records_days", Some(self.records_days)),
            ("timeline_days", Some(self.timeline_days)),
            ("delivered_days", self.delivered_days),
            ("dead_letter_days", Some(self.dead_letter_days)),
            ("audit_days", Some(self.audit_days)),
        ];
        for (name, value) in days {
            if let Some(v) = value
                && !(1..=36_500).contains(&v)
            {
                problems.at(path, name, format!("{v} is not 1-36500"));
            }
        }
        if !(1..=100_000).contains(&self.pass_limit) {
            problems.at(
                path,
                "pass_limit",
                format!("{} is not 1-100000", self.pass_limit),
            );
        }
        if !(1..=86_400).contains(&self.every_s) {
            problems.at(path, "every_s", format!("{} is not 1-86400", self.every_s));
        }
    }
}
