//! The rate limiter's sans-IO core: a [`Bucket`] is the generic cell rate algorithm (the token
//! bucket written as one "theoretical arrival time", integer microseconds) with `now` passed
//! in; a [`Limiter`] keeps one bucket per caller. The middleware that applies it to requests
//! is [`super::ratelimit`]'s.
//!
//! Owns the bucket arithmetic and the `Retry-After` rounding. Does not own the limits' shape
//! ([`crate::config::rate_limit`]) nor who a caller is ([`super::auth`]).

use std::collections::HashMap;
use std::sync::Mutex;

use rapport_shared::Timestamp;

use crate::config::rate_limit::RateLimit;

impl RateLimit {
    /// Microseconds between two requests at the steady rate.
    fn interval_us(self) -> u64 {
        1_000_000 / u64::from(self.per_second.max(1))
    }

    /// How far ahead of `now` the arrival time may run: `burst − 1` intervals.
    fn tolerance_us(self) -> u64 {
        self.interval_us()
            .saturating_mul(u64::from(self.burst.max(1).saturating_sub(1)))
    }
}

/// One caller's bucket: the theoretical arrival time of its next request (µs since the
/// epoch). A request at `now` is allowed when that time is at most `burst − 1` intervals
/// ahead of `now`, and moves it one interval on. Equivalent to a token bucket of `burst`
/// tokens refilled at `per_second`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    tat_us: u64,
}

impl Bucket {
    /// Takes one request at `now`: `Ok` when allowed, else how many microseconds until one
    /// would be (never 0).
    ///
    /// # Errors
    /// The wait, µs, when the bucket is empty.
    pub fn take(&mut self, limit: RateLimit, now: Timestamp) -> Result<(), u64> {
        let now_us = now.as_millis().saturating_mul(1000);
        let tat = self.tat_us.max(now_us);
        let ahead = tat - now_us;
        let tolerance = limit.tolerance_us();
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        self.tat_us = tat.saturating_add(limit.interval_us());
        Ok(())
    }
}

/// Whole seconds to wait for a wait in µs: rounded up, at least 1 (`Retry-After`).
pub fn retry_after_secs(wait_us: u64) -> u64 {
    wait_us.div_ceil(1_000_000).max(1)
}

/// Every caller's bucket, and the default limit.
#[derive(Debug)]
pub struct Limiter {
    default: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// The origin of [`Limiter::monotonic_now`].
    origin: std::time::Instant,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(RateLimit::default())
    }
}

impl Limiter {
    /// A limiter giving callers without their own limit `default`.
    pub fn new(default: RateLimit) -> Self {
        Self {
            default,
            buckets: Mutex::new(HashMap::new()),
            origin: std::time::Instant::now(),
        }
    }

    /// The middleware's `now`: time since this limiter was made, on the monotonic clock. A
    /// rate is per real second whatever the cloud's clock does: a manual or simulated clock
    /// (tests, the testbed's days in seconds) would stand still or race, and a wall clock set
    /// back would close every bucket until it caught up.
    pub fn monotonic_now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The default limit.
    pub fn default_limit(&self) -> RateLimit {
        self.default
    }

    /// Takes one request of `who` at `now` under `limit` (the caller's own, or the default).
    ///
    /// # Errors
    /// The wait, µs.
    pub fn take(&self, who: &str, limit: Option<RateLimit>, now: Timestamp) -> Result<(), u64> {
        let limit = limit.unwrap_or(self.default);
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned map limits nobody rather than everybody.
            return Ok(());
        };
        buckets.entry(who.to_owned()).or_default().take(limit, now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use rapport_kit::config::{Check, Problems};

    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_full_bucket_allows_the_burst_then_refills_at_the_rate() {
        let limit = RateLimit {
            per_second: 2,
            burst: 3,
        };
        let mut b = Bucket::default();
        let t0 = 1_000_000;
        for _ in 0..3 {
            b.take(limit, at(t0)).unwrap();
        }
        let wait = b.take(limit, at(t0)).unwrap_err();
        assert_eq!(wait, 500_000, "one interval at 2/s");
        assert_eq!(retry_after_secs(wait), 1);
        // Half a second later one more, not two.
        b.take(limit, at(t0 + 500)).unwrap();
        assert!(b.take(limit, at(t0 + 500)).is_err());
        // Long idle: the bucket is full again, not fuller.
        let later = t0 + 60_000;
        for _ in 0..3 {
            b.take(limit, at(later)).unwrap();
        }
        assert!(b.take(limit, at(later)).is_err());
    }

    #[test]
    fn callers_have_their_own_buckets_and_limits() {
        let l = Limiter::new(RateLimit {
            per_second: 1,
            burst: 1,
        });
        let now = at(5_000);
        l.take("partner:a", None, now).unwrap();
        assert!(l.take("partner:a", None, now).is_err());
        l.take("partner:b", None, now).unwrap();
        let big = RateLimit {
            per_second: 10,
            burst: 5,
        };
        for _ in 0..5 {
            l.take("partner:c", Some(big), now).unwrap();
        }
        assert!(l.take("partner:c", Some(big), now).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_000_000), 1);
        assert_eq!(retry_after_secs(1_000_001), 2);
        assert_eq!(retry_after_secs(0), 1);
    }

    #[test]
    fn bad_limits_are_named() {
        let mut p = Problems::new();
        RateLimit {
            per_second: 0,
            burst: 0,
        }
        .check("api.rate_limit", &mut p);
        let text = format!("{:?}", p.into_vec());
        assert!(text.contains("api.rate_limit.per_second"), "{text}");
        assert!(text.contains("api.rate_limit.burst"), "{text}");
    }

    proptest! {
        /// Over any sequence of requests at non-decreasing times, the allowed ones never
        /// exceed `burst + rate × elapsed`, a refusal's wait is never 0, and waiting it out
        /// is always enough.
        #[test]
        fn never_more_than_burst_plus_rate_and_waits_are_honest(
            per_second in 1u32..200,
            burst in 1u32..50,
            steps in proptest::collection::vec(0u64..400, 1..300),
        ) {
            let limit = RateLimit { per_second, burst };
            let mut b = Bucket::default();
            let t0 = 10_000_000u64;
            let mut now = t0;
            let mut allowed = 0u64;
            for step in steps {
                now += step;
                match b.take(limit, at(now)) {
                    Ok(()) => allowed += 1,
                    Err(wait) => {
                        prop_assert!(wait > 0);
                        let mut probe = b;
                        let then = now + wait.div_ceil(1000);
                        prop_assert!(probe.take(limit, at(then)).is_ok(), "waited {wait} us");
                    }
                }
                // Allowed so far ≤ burst + elapsed / interval.
                let elapsed_us = (now - t0) * 1000;
                let bound = u64::from(burst) + elapsed_us / limit.interval_us();
                prop_assert!(allowed <= bound, "{allowed} > {bound}");
            }
        }

        /// A bucket left alone for burst intervals allows exactly burst requests at once.
        #[test]
        fn an_idle_bucket_allows_exactly_the_burst(
            per_second in 1u32..1000,
            burst in 1u32..100,
            start in 0u64..1_000_000,
        ) {
            let limit = RateLimit { per_second, burst };
            let mut b = Bucket::default();
            let now = at(start + 1_000_000_000);
            for _ in 0..burst {
                prop_assert!(b.take(limit, now).is_ok());
            }
            prop_assert!(b.take(limit, now).is_err());
        }
    }
}
