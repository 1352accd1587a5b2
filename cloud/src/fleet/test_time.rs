//! The fleet's unit tests' time: a fixed start ([`T0`]) and short ways to write times and
//! spans of days in milliseconds.

use rapport_shared::Timestamp;

use super::model::DAY_MS;

/// 2025-01-01, a Wednesday, 00:00 UTC.
pub const T0: u64 = 1_735_689_600_000;

/// The timestamp of unix milliseconds `ms`.
pub fn ts(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// `d` days, in milliseconds.
pub fn days(d: u64) -> u64 {
    d * DAY_MS
}
