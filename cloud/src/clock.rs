//! The cloud's clock, injected everywhere time matters (layering, strategies, webhook
//! retries, SLAs), so tests move months in milliseconds.
//!
//! Owns [`Clock`], the wall clock ([`SystemClock`]) and a settable one for tests
//! ([`ManualClock`]). Does not own timers: shells sleep on tokio and ask the clock the time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rapport_shared::Timestamp;

/// Tells the time (unix milliseconds).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp::from_millis(ms)
    }
}

/// A clock that moves only when told (tests, time travel); clones share the time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(start.as_millis())))
    }

    /// Sets the time.
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;
