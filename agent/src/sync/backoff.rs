//! Reconnect backoff: exponential with full jitter above a floor, the clock and the randomness
//! injected. A fleet whose broker comes back after an outage must not reconnect in lockstep:
//! each car waits a uniformly random time in `[min, min(max, min × 2^attempt)]`.
//!
//! Owns: the delay after each failure and when the count starts again. Does not own: sleeping
//! (the shell) or deciding what a failure is.

use core::time::Duration;

/// A connection that stayed up this long was healthy: the next failure waits the minimum again.
/// Shorter-lived connections (a broker that accepts and then drops the car, say for a duplicate
/// client id) keep backing off.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(60);

/// xorshift64* (Vigna): a small, fast generator, plenty for spreading reconnects. Not for
/// anything secret.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// Seeded with `seed` (zero is replaced: the generator's one fixed point).
    pub(crate) fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A seed from the wall clock's nanoseconds mixed with `salt` (the client id's hash), so two
    /// cars started in the same nanosecond still differ.
    pub(crate) fn seed_from_time(salt: &str) -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // FNV-1a over the salt.
        let hash = salt.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
        });
        nanos ^ hash.rotate_left(17)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=bound` (a negligible modulo bias for the bounds used here).
    pub(crate) fn up_to(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

/// The backoff state of one link.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    connected_at: Option<Duration>,
    rng: XorShift,
    /// The ceiling the last delay was drawn under (for the log).
    last_ceiling: Duration,
}

impl Backoff {
    /// Waits between `min` and `max` (`max` below `min` counts as `min`).
    pub(crate) fn new(min: Duration, max: Duration, rng: XorShift) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
            connected_at: None,
            rng,
            last_ceiling: Duration::ZERO,
        }
    }

    /// A connection was established at `now` (monotonic).
    pub(crate) fn on_connected(&mut self, now: Duration) {
        self.connected_at = Some(now);
    }

    /// A connection attempt failed or a connection dropped at `now`: how long to wait before
    /// the next attempt.
    pub(crate) fn next_delay(&mut self, now: Duration) -> Duration {
        if let Some(up) = self.connected_at.take()
            && now.saturating_sub(up) >= STABLE_AFTER
        {
            self.attempt = 0;
        }
        let ceiling = self.ceiling();
        self.last_ceiling = ceiling;
        self.attempt = self.attempt.saturating_add(1);
        let min = self.min.as_millis() as u64;
        let span = (ceiling.as_millis() as u64).saturating_sub(min);
        Duration::from_millis(min + self.rng.up_to(span))
    }

    /// Failures counted since the last stable connection (1 after the first).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The longest wait the last [`Backoff::next_delay`] could have drawn.
    pub(crate) fn last_ceiling(&self) -> Duration {
        self.last_ceiling
    }

    /// The longest wait of the next attempt: `min × 2^attempt`, at most `max`.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn backoff(seed: u64) -> Backoff {
        Backoff::new(ms(100), ms(10_000), XorShift::new(seed))
    }

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let mut b = backoff(1);
        let mut ceilings = Vec::new();
        for n in 1..=10 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_delay(Duration::ZERO);
            assert_eq!(b.attempt(), n);
            assert_eq!(b.last_ceiling().as_millis(), *ceilings.last().unwrap_or(&0));
            assert!(d <= b.last_ceiling());
        }
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn the_first_wait_is_the_minimum_and_waits_spread() {
        let mut b = backoff(7);
        assert_eq!(b.next_delay(Duration::ZERO), ms(100));
        // Many cars at attempt 8 (ceiling 10 s): their waits cover the range, not one point.
        let waits: Vec<Duration> = (1..200u64)
            .map(|seed| {
                let mut b = backoff(seed);
                (0..8)
                    .map(|_| b.next_delay(Duration::ZERO))
                    .last()
                    .unwrap_or_default()
            })
            .collect();
        let lo = waits.iter().filter(|w| **w < ms(3_000)).count();
        let hi = waits.iter().filter(|w| **w > ms(7_000)).count();
        assert!(lo > 20 && hi > 20, "not spread: {lo} low, {hi} high");
    }

    #[test]
    fn a_stable_connection_starts_the_count_again_a_flapping_one_does_not() {
        let mut b = backoff(3);
        for _ in 0..5 {
            let _ = b.next_delay(Duration::ZERO);
        }
        // Up for a second only: still backing off.
        b.on_connected(Duration::from_secs(10));
        let _ = b.next_delay(Duration::from_secs(11));
        assert_eq!(b.ceiling(), ms(6_400));
        // Up for STABLE_AFTER: back to the minimum.
        b.on_connected(Duration::from_secs(20));
        assert_eq!(
            b.next_delay(Duration::from_secs(20) + STABLE_AFTER),
            ms(100)
        );
    }

    #[test]
    fn xorshift_is_not_stuck_and_differs_by_seed() {
        let mut a = XorShift::new(0);
        let mut b = XorShift::new(1);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_ne!(xs, ys);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
        assert_ne!(XorShift::seed_from_time("a"), XorShift::seed_from_time("b"));
    }

    proptest! {
        #[test]
        fn every_wait_is_within_bounds(seed: u64, min in 1u64..5_000, extra in 0u64..100_000, steps in 1usize..80) {
            let mut b = Backoff::new(ms(min), ms(min + extra), XorShift::new(seed));
            for _ in 0..steps {
                let ceiling = b.ceiling();
                let d = b.next_delay(Duration::ZERO);
                prop_assert!(d >= ms(min) && d <= ceiling && d <= ms(min + extra));
            }
        }

        #[test]
        fn up_to_stays_in_range(seed: u64, bound: u64) {
            let mut r = XorShift::new(seed);
            prop_assert!(r.up_to(bound) <= bound);
        }
    }
}
