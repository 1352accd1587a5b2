//! The API's audit log: who read or changed what, when, with what outcome. Every `/api/v1`
//! request leaves one [`AuditEntry`] (the middleware in [`crate::api::audit`]); the store
//! keeps them append-only (sled: a tree keyed by a monotonically increasing number;
//! PostgreSQL: the `audit` table, rows only ever inserted, deleted only by age), queried
//! newest first by the operator and pruned by age ([`AuditConfig::days`]).
//!
//! Owns the entry's shape, the query's and the retention's arithmetic (sans-IO: the clock is
//! passed in). Does not own storing them (the store's backends) or the HTTP side
//! ([`crate::api::audit`]).

use core::time::Duration;

use rapport_kit::config::{Check, Problems};
use rapport_shared::Timestamp;
use serde::{Deserialize, Serialize};

/// The defaults of `[audit]`.
pub mod defaults {
    /// Days an audit entry is kept (about 13 months: a year of accountability and a month to
    /// look at it).
    pub const DAYS: u64 = 400;
}

/// Longest retention accepted, days (ten years).
pub const MAX_DAYS: u64 = 3_660;
/// Most entries removed in one pruning pass.
pub const PRUNE_BATCH: usize = 1_000;
/// How often (on the cloud's clock) the audit log is pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// `[audit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days an entry is kept; older ones are pruned (1 to [`MAX_DAYS`]).
    pub days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            days: defaults::DAYS,
        }
    }
}

impl Check for AuditConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.days == 0 || self.days > MAX_DAYS {
            problems.at(
                path,
                "days",
                format!("{} must be 1 to {MAX_DAYS} (days)", self.days),
            );
        }
    }
}

impl AuditConfig {
    /// Entries older than this at `now` are pruned.
    pub fn cutoff(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(self.days.saturating_mul(86_400_000)),
        )
    }
}

/// Who made an audited request: never a token, only whose it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// The operator's token.
    Operator,
    /// A partner's token (the id is [`AuditEntry::partner`]).
    Partner,
    /// No token, or one nobody holds (the request was refused).
    Unknown,
}

impl Who {
    /// The spelling in the API and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Partner => "partner",
            Self::Unknown => "unknown",
        }
    }

    /// From [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "operator" => Some(Self::Operator),
            "partner" => Some(Self::Partner),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// One audited request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its place in the log (assigned by the store on append, increasing; 0 before).
    pub seq: u64,
    /// When, by the cloud's clock, unix ms.
    pub at: u64,
    /// Whose token.
    pub who: Who,
    /// The partner's id when `who` is a partner.
    pub partner: Option<String>,
    /// The VIN concerned: the path's, or the alert's vehicle; none for a request about no
    /// single vehicle (a list).
    pub vin: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The route template (`/api/v1/vehicles/{vin}`), or the path when no route matched.
    pub route: String,
    /// The answer's status.
    pub status: u16,
}

/// What the operator asks of the log: newest first, each filter optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this VIN.
    pub vin: Option<String>,
    /// Only this partner.
    pub partner: Option<String>,
    /// Only entries at or after this time, unix ms.
    pub since: Option<u64>,
    /// Only entries before this seq (the previous page's `next`).
    pub before: Option<u64>,
    /// Most entries answered.
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `e` passes the filters (not `before`, which the store applies by key).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.vin.as_ref().is_none_or(|v| e.vin.as_ref() == Some(v))
            && self
                .partner
                .as_ref()
                .is_none_or(|p| e.partner.as_ref() == Some(p))
            && self.since.is_none_or(|s| e.at >= s)
    }
}

/// Entries for tests (here and the stores').
#[cfg(test)]
pub(crate) mod tests_support {
    use super::{AuditEntry, Who};

    /// A 200 `GET /api/v1/vehicles/{vin}` at `at`, by `partner` (else the operator).
    pub(crate) fn entry(at: u64, vin: Option<&str>, partner: Option<&str>) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at,
            who: if partner.is_some() {
                Who::Partner
            } else {
                Who::Operator
            },
            partner: partner.map(str::to_owned),
            vin: vin.map(str::to_owned),
            method: "GET".into(),
            route: "/api/v1/vehicles/{vin}".into(),
            status: 200,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::tests_support::entry;

    #[test]
    fn filters_combine() {
        let q = AuditQuery {
            vin: Some("V1".into()),
            partner: Some("p".into()),
            since: Some(10),
            before: None,
            limit: 10,
        };
        assert!(q.matches(&entry(10, Some("V1"), Some("p"))));
        assert!(!q.matches(&entry(9, Some("V1"), Some("p"))));
        assert!(!q.matches(&entry(10, Some("V2"), Some("p"))));
        assert!(!q.matches(&entry(10, Some("V1"), None)));
        assert!(!q.matches(&entry(10, None, Some("p"))));
        assert!(AuditQuery::default().matches(&entry(0, None, None)));
    }

    #[test]
    fn the_cutoff_is_days_before_now() {
        let c = AuditConfig { days: 2 };
        assert_eq!(
            c.cutoff(Timestamp::from_millis(5 * 86_400_000)).as_millis(),
            3 * 86_400_000
        );
        assert_eq!(c.cutoff(Timestamp::from_millis(5)).as_millis(), 0);
        let mut p = Problems::new();
        AuditConfig { days: 0 }.check("audit", &mut p);
        assert!(format!("{:?}", p.into_vec()).contains("audit.days"));
    }

    #[test]
    fn who_round_trips() {
        for w in [Who::Operator, Who::Partner, Who::Unknown] {
            assert_eq!(Who::parse(w.as_str()), Some(w));
        }
        assert_eq!(Who::parse("token"), None);
    }
}
