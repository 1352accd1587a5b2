//! `[api.rate_limit]` and a partner's `rate_limit`: the shape of a rate limit and its checks.
//! The limiter that enforces it is the API's (`crate::api::ratelimit`); the shape lives here
//! so the config and the partners' directory need nothing of the API.

use rapport_kit::config::{Check, Problems};
use serde::{Deserialize, Serialize};

/// The defaults of `[api.rate_limit]`.
pub mod defaults {
    /// Requests per second a caller's bucket refills with.
    pub const PER_SECOND: u32 = 50;
    /// Requests a full bucket allows at once.
    pub const BURST: u32 = 100;
}

/// Most requests per second a limit may allow (more is a typo).
pub const MAX_PER_SECOND: u32 = 1_000_000;

/// A rate and a burst: `[api.rate_limit]`, or a partner's own `rate_limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second the bucket refills with (1 to [`MAX_PER_SECOND`]).
    pub per_second: u32,
    /// Requests a full bucket allows at once (at least 1).
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: defaults::PER_SECOND,
            burst: defaults::BURST,
        }
    }
}

impl Check for RateLimit {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !(1..=MAX_PER_SECOND).contains(&self.per_second) {
            problems.at(
                path,
                "per_second",
                format!("{} must be 1 to {MAX_PER_SECOND}", self.per_second),
            );
        }
        if self.burst == 0 || self.burst > MAX_PER_SECOND {
            problems.at(
                path,
                "burst",
                format!("{} must be 1 to {MAX_PER_SECOND}", self.burst),
            );
        }
    }
}
