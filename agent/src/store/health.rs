//! The store's health, as a small state machine: `ok` → `failing` (the disk is full, or
//! another write error) → `ok`. Pure, with the clock passed in; the shell
//! ([`crate::runtime::core`]) logs each transition once, counts the writes it could not keep,
//! and reopens the store when a retry is due (sled 0.34 keeps a write error for the life of
//! the handle, so only a fresh handle sees that space came back).
//!
//! Owns: when a failing store is tried again, and what a transition says. Does not own: the
//! writes themselves ([`super::Store`]) or what is kept meanwhile (the agent's memory).

use core::time::Duration;

/// Why the store is failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The file system is full (`ENOSPC`).
    Full,
    /// Any other write error.
    Failed,
}

impl Fault {
    /// Its name on the HMI's `/healthz` (`full`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Failed => "failed",
        }
    }
}

/// A change of health the shell reports (once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Writes started failing.
    Failing(Fault),
    /// Writes succeed again, after `lasted` and `failed_writes` writes not kept.
    Recovered {
        /// How long the store was failing (monotonic clock).
        lasted: Duration,
        /// Writes not kept during the episode.
        failed_writes: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ok,
    Failing {
        fault: Fault,
        since: Duration,
        last_try: Duration,
        failed_writes: u64,
    },
}

/// The store's health. See the module doc.
#[derive(Debug, Clone)]
pub struct Health {
    state: State,
    retry_every: Duration,
    failed_writes: u64,
}

impl Health {
    /// Healthy; a failing store is tried again at most every `retry_every`.
    pub fn new(retry_every: Duration) -> Self {
        Self {
            state: State::Ok,
            retry_every,
            failed_writes: 0,
        }
    }

    /// A write failed (or was not tried because the store is failing) at `now` (monotonic).
    /// `Some` the first time only.
    pub fn on_failure(&mut self, fault: Fault, now: Duration) -> Option<Transition> {
        self.failed_writes += 1;
        match &mut self.state {
            State::Ok => {
                self.state = State::Failing {
                    fault,
                    since: now,
                    last_try: now,
                    failed_writes: 1,
                };
                Some(Transition::Failing(fault))
            }
            State::Failing {
                fault: f,
                failed_writes,
                ..
            } => {
                *f = fault;
                *failed_writes += 1;
                None
            }
        }
    }

    /// A write succeeded at `now`: `Some` if the store was failing.
    pub fn on_success(&mut self, now: Duration) -> Option<Transition> {
        match std::mem::replace(&mut self.state, State::Ok) {
            State::Ok => None,
            State::Failing {
                since,
                failed_writes,
                ..
            } => Some(Transition::Recovered {
                lasted: now.saturating_sub(since),
                failed_writes,
            }),
        }
    }

    /// Whether a failing store should be tried again at `now` (never while healthy: then
    /// every write is tried). Trying records `now` as the last try.
    pub fn try_again(&mut self, now: Duration) -> bool {
        match &mut self.state {
            State::Ok => false,
            State::Failing { last_try, .. } => {
                if now.saturating_sub(*last_try) >= self.retry_every {
                    *last_try = now;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The fault, while failing.
    pub fn fault(&self) -> Option<Fault> {
        match &self.state {
            State::Ok => None,
            State::Failing { fault, .. } => Some(*fault),
        }
    }

    /// Writes not kept since start (every episode).
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn reports_failing_once_and_recovered_once_with_the_count() {
        let mut h = Health::new(5 * S);
        assert_eq!(h.on_success(S), None);
        assert_eq!(
            h.on_failure(Fault::Full, 10 * S),
            Some(Transition::Failing(Fault::Full))
        );
        for i in 0..100 {
            assert_eq!(h.on_failure(Fault::Full, 10 * S + i * S), None);
        }
        assert_eq!(h.fault(), Some(Fault::Full));
        assert_eq!(
            h.on_success(40 * S),
            Some(Transition::Recovered {
                lasted: 30 * S,
                failed_writes: 101
            })
        );
        assert_eq!(h.on_success(41 * S), None);
        assert_eq!(h.fault(), None);
        assert_eq!(h.failed_writes(), 101);
        assert_eq!(
            h.on_failure(Fault::Failed, 50 * S),
            Some(Transition::Failing(Fault::Failed))
        );
        assert_eq!(h.failed_writes(), 102);
    }

    #[test]
    fn tries_a_failing_store_again_at_most_every_interval() {
        let mut h = Health::new(5 * S);
        assert!(
            !h.try_again(Duration::ZERO),
            "a healthy store is simply written"
        );
        h.on_failure(Fault::Full, 10 * S);
        assert!(!h.try_again(12 * S));
        assert!(h.try_again(15 * S));
        assert!(!h.try_again(16 * S));
        assert!(h.try_again(20 * S));
        h.on_success(21 * S);
        assert!(!h.try_again(100 * S));
    }
}
