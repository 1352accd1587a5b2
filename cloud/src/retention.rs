//! Retention: how long the cloud keeps what it holds about a car, and the pruning that
//! enforces it on the cloud's clock.
//!
//! Four kinds of data expire (`[retention]`, [`crate::config::Retention`]): logged records
//! (by the record's own time, the car's clock), fleet timeline entries (by their time),
//! delivered-webhook markers (by delivery time) and dead letters (by when they were
//! parked). Pruning is a sweep of BOUNDED passes: each [`Pruner::pass`] asks the store for
//! one pass of at most [`Pruner::limit`] entries per kind ([`crate::store::Backend::prune_pass`],
//! [`crate::store::OutboxStore::prune_delivered`]), remembers where each sweep stopped, and
//! returns; the fleet's shell calls it from its tick loop (`fleet::shell`) on a blocking
//! thread, so a store with years of records is worked through a slice at a time and never
//! holds the ingest up for long.
//!
//! Owns: the cutoffs, the sweep cursors, the pruned counters. Does not own: the config's
//! shape and defaults ([`crate::config::Retention`]), the stores' encodings (each backend's
//! `retention.rs`), nor when a pass runs (the shell).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use rapport_shared::Timestamp;

use crate::store::{Store, StoreError};

pub use crate::store::{Expiring, Pass};

/// Days each kind is kept (`0` is never: the config refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days {
    /// Records.
    pub records: u64,
    /// Timeline entries.
    pub timeline: u64,
    /// Delivered-webhook markers.
    pub delivered: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

/// Entries pruned since start, per kind: `rapport_retention_pruned_total{kind}`.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Records.
    pub records: AtomicU64,
    /// Timeline entries.
    pub timeline: AtomicU64,
    /// Delivered markers.
    pub delivered: AtomicU64,
    /// Dead letters.
    pub dead_letters: AtomicU64,
    /// Passes that failed (the store).
    pub errors: AtomicU64,
}

/// The pruning sweeps: cutoffs from [`Days`], one cursor per kind.
#[derive(Debug)]
pub struct Pruner {
    days: Days,
    limit: usize,
    cursors: Mutex<[Option<Vec<u8>>; 3]>,
    /// Counted (the cloud's metrics hold the same).
    pub pruned: Arc<Pruned>,
}

/// What one [`Pruner::pass`] removed, per kind, and whether any sweep has more to do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records removed.
    pub records: u64,
    /// Timeline entries removed.
    pub timeline: u64,
    /// Delivered markers removed.
    pub delivered: u64,
    /// Dead letters removed.
    pub dead_letters: u64,
    /// Some sweep stopped at its limit: call again soon.
    pub more: bool,
}

const MS_PER_DAY: u64 = 86_400_000;

impl Pruned {
    /// Appends `rapport_retention_pruned_total{kind}` and `rapport_retention_errors_total`.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP rapport_retention_pruned_total Entries removed by the retention, by kind."
        );
        let _ = writeln!(out, "# TYPE rapport_retention_pruned_total counter");
        for (kind, c) in [
            ("records", &self.records),
            ("timeline", &self.timeline),
            ("delivered", &self.delivered),
            ("dead_letters", &self.dead_letters),
        ] {
            let _ = writeln!(
                out,
                "rapport_retention_pruned_total{{kind=\"{kind}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rapport_retention_errors_total Retention passes the store failed."
        );
        let _ = writeln!(out, "# TYPE rapport_retention_errors_total counter");
        let _ = writeln!(out, "rapport_retention_errors_total {}", get(&self.errors));
    }
}

/// The retention's loop: every `period` (the fleet's tick) it looks at the cloud's clock;
/// when a sweep is due it runs one bounded pass on a blocking thread; a pass that reached
/// its limit is followed by another at the next period, one that did not schedules the next
/// sweep `every` later (on the cloud's clock, so a manual clock drives it in tests). Ends
/// when `stop` is notified.
pub async fn run_loop(
    pruner: Arc<Pruner>,
    store: Store,
    clock: crate::clock::SharedClock,
    period: Duration,
    every: Duration,
    stop: Arc<Notify>,
) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = clock.now();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.notified() => return,
        }
        let now = clock.now();
        if now < next {
            continue;
        }
        let (p, s) = (Arc::clone(&pruner), store.clone());
        match tokio::task::spawn_blocking(move || p.pass(&s, now)).await {
            Ok(Ok(swept)) => {
                if swept != Swept::default() {
                    tracing::debug!(?swept, "retention pass");
                }
                if !swept.more {
                    next = now.saturating_add(every);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(cause = %e, "retention pass failed; tried again later");
                next = now.saturating_add(every);
            }
            Err(e) => tracing::error!(cause = %e, "retention pass stopped"),
        }
    }
}

/// `now` minus `days`.
pub fn cutoff(now: Timestamp, days: u64) -> Timestamp {
    Timestamp::from_millis(
        now.as_millis()
            .saturating_sub(days.saturating_mul(MS_PER_DAY)),
    )
}

impl Pruner {
    /// Sweeps keeping `days`, at most `limit` entries examined per kind and pass.
    pub fn new(days: Days, limit: usize, pruned: Arc<Pruned>) -> Self {
        Self {
            days,
            limit: limit.max(1),
            cursors: Mutex::new([None, None, None]),
            pruned,
        }
    }

    /// Entries examined per kind and pass.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// One bounded pass over every kind at `now`. Blocking (the store port).
    ///
    /// # Errors
    /// The first store error (the other kinds still ran; counted in `errors`).
    pub fn pass(&self, store: &Store, now: Timestamp) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        let mut first_error = None;
        let kinds = [
            (Expiring::Records, self.days.records),
            (Expiring::Timeline, self.days.timeline),
            (Expiring::DeadLetters, self.days.dead_letters),
        ];
        for (i, (what, days)) in kinds.into_iter().enumerate() {
            let cursor = self.cursor(i);
            match store.prune_pass(what, cutoff(now, days), cursor.as_deref(), self.limit) {
                Ok(pass) => {
                    swept.more |= pass.next.is_some();
                    let counter = match what {
                        Expiring::Records => {
                            swept.records = pass.pruned;
                            &self.pruned.records
                        }
                        Expiring::Timeline => {
                            swept.timeline = pass.pruned;
                            &self.pruned.timeline
                        }
                        Expiring::DeadLetters => {
                            swept.dead_letters = pass.pruned;
                            &self.pruned.dead_letters
                        }
                    };
                    counter.fetch_add(pass.pruned, Ordering::Relaxed);
                    self.set_cursor(i, pass.next);
                }
                Err(e) => {
                    self.pruned.errors.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
        match store
            .outbox()
            .prune_delivered(cutoff(now, self.days.delivered), self.limit)
        {
            Ok(n) => {
                swept.delivered = n as u64;
                swept.more |= n >= self.limit;
                self.pruned.delivered.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.pruned.errors.fetch_add(1, Ordering::Relaxed);
                first_error.get_or_insert(StoreError::Unavailable(e.to_string()));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(swept),
        }
    }

    fn cursor(&self, i: usize) -> Option<Vec<u8>> {
        self.cursors
            .lock()
            .map(|c| c.get(i).cloned().flatten())
            .unwrap_or_default()
    }

    fn set_cursor(&self, i: usize, to: Option<Vec<u8>>) {
        if let Ok(mut c) = self.cursors.lock()
            && let Some(slot) = c.get_mut(i)
        {
            *slot = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_days_before_now_and_never_underflow() {
        let now = Timestamp::from_millis(10 * MS_PER_DAY + 5);
        assert_eq!(cutoff(now, 3).as_millis(), 7 * MS_PER_DAY + 5);
        assert_eq!(cutoff(now, 3650).as_millis(), 0);
    }
}
