//! Time, injected. Rules and protocol cores take `now` as an argument; the shells get it from a
//! [`Clock`], so tests and the testbed run months of driving in milliseconds with a
//! [`ManualClock`] while the head unit uses the [`SystemClock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rapport_shared::Timestamp;

/// The wall clock now, in unix milliseconds (0 if the system clock is before 1970).
pub fn wall_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// A source of time: wall clock for records and rules, monotonic for protocol timers.
pub trait Clock: Send + Sync {
    /// Wall-clock time.
    fn wall(&self) -> Timestamp;
    /// Monotonic time since an arbitrary origin.
    fn mono(&self) -> Duration;
}

/// The real clocks.
#[derive(Clone, Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn wall(&self) -> Timestamp {
        wall_now()
    }
    fn mono(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    wall_start: Timestamp,
    elapsed_us: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `wall_start`.
    pub fn new(wall_start: Timestamp) -> Self {
        Self {
            wall_start,
            elapsed_us: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let us = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.elapsed_us.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall(&self) -> Timestamp {
        self.wall_start.saturating_add(self.mono())
    }
    fn mono(&self) -> Duration {
        Duration::from_micros(self.elapsed_us.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_secs(1_000));
        let shared = c.clone();
        assert_eq!(c.mono(), Duration::ZERO);
        shared.advance(Duration::from_secs(86_400 * 30));
        assert_eq!(c.wall(), Timestamp::from_secs(1_000 + 86_400 * 30));
        assert_eq!(c.mono(), Duration::from_secs(86_400 * 30));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock::default().wall() > Timestamp::from_secs(1_577_836_800));
    }
}
