//! [`ContactHistory`]: what one driver was sent and when, as far as the strategies need it to
//! cap and space contacts. The lead stores one per driver (it is serde); this module owns its
//! shape and its bounds, not where it is kept.

use std::collections::BTreeMap;

use rapport_shared::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Decision, Outcome};
use crate::fleet::model::DAY_MS;

/// Most engagement contacts remembered (the largest cap the file may set).
pub const MAX_RECENT: usize = 64;

/// The window of the per-driver cap.
pub const CAP_WINDOW_MS: u64 = 30 * DAY_MS;

/// One driver's recent contacts.
///
/// Bounded: engagement contacts older than the 30-day cap window are dropped, except the
/// latest (the cadence is measured from it), and never more than [`MAX_RECENT`] are kept.
/// Rule firings are one entry per rule name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactHistory {
    /// Engagement contacts (campaigns, partner follow-ups), oldest first.
    engagements: Vec<Timestamp>,
    /// The last firing of each rule, by rule name.
    rules: BTreeMap<String, Timestamp>,
}

impl ContactHistory {
    /// An empty history (a driver never contacted).
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers a decision taken at `now`. Only acted decisions count (a suppressed one
    /// changes nothing); an engagement one also counts against cadence and cap.
    pub fn record(&mut self, decision: &Decision, now: Timestamp) {
        if !matches!(decision.outcome, Outcome::Act(_)) {
            return;
        }
        let last = self.rules.entry(decision.rule.clone()).or_insert(now);
        *last = (*last).max(now);
        if decision.engagement {
            // A stored history is not trusted to be sorted.
            if !self.engagements.is_sorted() {
                self.engagements.sort_unstable();
            }
            let at = self.engagements.partition_point(|t| *t <= now);
            self.engagements.insert(at, now);
            self.prune(now);
        }
    }

    /// Drops what can no longer matter at `now`.
    fn prune(&mut self, now: Timestamp) {
        let horizon = now.as_millis().saturating_sub(CAP_WINDOW_MS);
        let keep_from = self
            .engagements
            .partition_point(|t| t.as_millis() <= horizon)
            .min(self.engagements.len().saturating_sub(1))
            .max(self.engagements.len().saturating_sub(MAX_RECENT));
        self.engagements.drain(..keep_from);
    }

    /// Engagement contacts kept, oldest first.
    pub fn engagements(&self) -> &[Timestamp] {
        &self.engagements
    }

    /// The latest engagement contact.
    pub fn last_engagement(&self) -> Option<Timestamp> {
        self.engagements.iter().max().copied()
    }

    /// When `rule` last acted.
    pub fn last_fired(&self, rule: &str) -> Option<Timestamp> {
        self.rules.get(rule).copied()
    }

    /// Forgets firings of rules `keep` rejects (rules removed from the strategy file).
    pub fn retain_rules(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.rules.retain(|name, _| keep(name));
    }

    /// The time the `cap`-th most recent engagement contact (counting `extra` contacts at
    /// `now` not yet recorded) leaves the cap window: before it, the driver is at the cap.
    /// `None`: fewer than `cap` contacts known.
    pub(super) fn cap_until(&self, cap: u32, extra: usize, now: Timestamp) -> Option<Timestamp> {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        if cap == 0 {
            return Some(Timestamp::from_millis(u64::MAX));
        }
        let nth = if extra >= cap {
            now
        } else {
            // The (cap - extra)-th most recent of the history. `record` keeps it sorted; a
            // stored one is not trusted to be.
            let back = cap - extra;
            let at = self.engagements.len().checked_sub(back)?;
            if self.engagements.is_sorted() {
                *self.engagements.get(at)?
            } else {
                let mut sorted = self.engagements.clone();
                sorted.sort_unstable();
                *sorted.get(at)?
            }
        };
        Some(Timestamp::from_millis(
            nth.as_millis().saturating_add(CAP_WINDOW_MS),
        ))
    }
}
