//! Whether the wall clock can be believed, and the time the rules run on when it cannot.
//!
//! A head unit boots with its real-time clock at 1970 or a year off until GNSS or the network
//! sets it, and the clock can jump either way while the agent runs. Every date rule
//! (maintenance by months, campaign windows, the daily prompt caps, snoozes, anniversaries)
//! would fire, reset or never end on such a date, so the rules never see the raw wall clock:
//! they get [`Reading::now`] from a [`ClockGuard`], which decides:
//!
//! 1. **The floor.** The guard keeps the latest trusted wall time it has seen (persisted in
//!    the store with every write, `m/clock_floor`), never below [`BUILD_FLOOR`] (this build's
//!    release). A wall time before the floor is **behind**: untrusted (1970, or a clock set
//!    back).
//! 2. **The monotonic anchor.** While it runs, the guard carries the last trusted wall time
//!    forward by the monotonic clock (which does not jump): `expected = anchor_wall +
//!    (mono − anchor_mono)`. A wall reading within [`SLACK`] of `expected` is trusted (and
//!    re-anchors, absorbing drift and small corrections). More than [`SLACK`] behind it is
//!    behind. More than [`SLACK`] ahead is **ahead**: a leap the monotonic clock does not
//!    account for, held as untrusted until it is confirmed — the wall clock keeps the same
//!    offset from the monotonic clock (within [`SLACK`]) for [`CONFIRM_AFTER`] of monotonic
//!    time (a clock GNSS or NTP set stays set; a glitch does not). Then it is trusted and the
//!    floor moves up to it.
//! 3. **At boot** there is no anchor (the unit was off for an unknown time): a wall time at or
//!    after the floor is trusted; one before it is behind, and `expected` starts at the floor.
//!
//! While untrusted, [`Reading::now`] is `expected`: the trusted time carried forward, so the
//! rules' time never goes backwards and never leaps — a date-based item comes due only when
//! that time says so, the day of the daily caps does not change because the clock said 1970,
//! and a clock a year ahead fires nothing until it is confirmed. Distance and engine-hour
//! rules do not depend on it. Records keep the car's own wall time (`at`) and their seq order
//! (the order is the seq, never the time); each untrusted episode adds one
//! [`ClockUntrusted`](rapport_shared::ClockUntrusted) record so the cloud knows.
//!
//! Pure: the wall and monotonic readings come in; the shell ([`crate::runtime::Core`]) reads
//! the clock and persists the floor.

use core::time::Duration;

use rapport_shared::{ClockUntrusted, Timestamp};

/// No trusted time is earlier than this build's release: 2026-01-01T00:00:00Z. Raise it with
/// each release (a newer floor catches more wrong clocks; it must never be in the future of a
/// car that runs the build).
pub const BUILD_FLOOR: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// How far the wall clock may stray from the monotonic clock's account and still be trusted:
/// drift, NTP slews and small steps.
pub const SLACK: Duration = Duration::from_secs(120);

/// How long a leap ahead must hold steady (by the monotonic clock) before it is trusted.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(600);

/// What the guard makes of one wall-clock reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The time the rules run on: the wall clock when trusted, else the trusted time carried
    /// forward by the monotonic clock. Never decreases.
    pub now: Timestamp,
    /// Whether the wall clock is trusted now.
    pub trusted: bool,
    /// An untrusted episode began with this reading: record it once.
    pub episode: Option<ClockUntrusted>,
}

/// The state of the wall clock. See the module docs.
#[derive(Clone, Debug)]
pub struct ClockGuard {
    floor: Timestamp,
    /// The last trusted wall time (while untrusted, the expected one) and the monotonic time
    /// then.
    anchor: Option<(Timestamp, Duration)>,
    /// A leap ahead waiting for confirmation: its offset (wall − mono, ms) and since when.
    pending: Option<(i128, Duration)>,
    trusted: bool,
    last_now: Timestamp,
    episodes: u64,
}

impl ClockGuard {
    /// A guard that starts from the floor the store kept (`None`: a fresh store).
    pub fn new(stored_floor: Option<Timestamp>) -> Self {
        let floor = stored_floor.unwrap_or(BUILD_FLOOR).max(BUILD_FLOOR);
        Self {
            floor,
            anchor: None,
            pending: None,
            trusted: true,
            last_now: Timestamp::from_millis(0),
            episodes: 0,
        }
    }

    /// The latest trusted wall time seen (what the store keeps).
    pub fn floor(&self) -> Timestamp {
        self.floor
    }

    /// Untrusted episodes begun since start.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Whether the wall clock was trusted at the last reading.
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// Judges one reading of the wall clock, `wall`, taken at monotonic time `mono`.
    ///
    /// Readings may come from two sources that share one offset (the bus's time and the
    /// clock's, a moment apart): the judgement is on the offset `wall − mono`, so a reading a
    /// little older than the last one is no jump.
    pub fn read(&mut self, wall: Timestamp, mono: Duration) -> Reading {
        let slack = i128::from(u64::try_from(SLACK.as_millis()).unwrap_or(u64::MAX));
        let mono_ms = i128::from(u64::try_from(mono.as_millis()).unwrap_or(u64::MAX));
        let offset = i128::from(wall.as_millis()) - mono_ms;
        let expected = match self.anchor {
            Some((at, then)) => at.saturating_add(mono.saturating_sub(then)),
            None => self.floor,
        };
        let trusted = match self.anchor {
            None => wall >= self.floor,
            Some((at, then)) => {
                let then_ms = i128::from(u64::try_from(then.as_millis()).unwrap_or(u64::MAX));
                let drift = offset - (i128::from(at.as_millis()) - then_ms);
                if drift.abs() <= slack {
                    true
                } else if drift < 0 {
                    // Behind: a leap ahead waiting for confirmation did not hold.
                    self.pending = None;
                    false
                } else {
                    self.confirmed_ahead(offset, mono, slack)
                }
            }
        };
        let now = if trusted { wall } else { expected }.max(self.last_now);
        let episode = (!trusted && self.trusted).then_some(ClockUntrusted {
            observed: wall,
            trusted: now,
        });
        if episode.is_some() {
            self.episodes = self.episodes.saturating_add(1);
        }
        if trusted {
            self.pending = None;
            self.floor = self.floor.max(wall);
            self.anchor = Some((wall, mono));
        } else if self.anchor.is_none_or(|(_, then)| mono >= then) {
            self.anchor = Some((expected, mono));
        }
        self.trusted = trusted;
        self.last_now = now;
        Reading {
            now,
            trusted,
            episode,
        }
    }

    /// A leap ahead (wall − mono = `offset`): trusted once that offset held for
    /// [`CONFIRM_AFTER`].
    fn confirmed_ahead(&mut self, offset: i128, mono: Duration, slack: i128) -> bool {
        match self.pending {
            Some((held, since)) if (held - offset).abs() <= slack => {
                mono.saturating_sub(since) >= CONFIRM_AFTER
            }
            _ => {
                self.pending = Some((offset, mono));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const DAY: u64 = 86_400_000;
    /// 2026-06-01.
    const T0: u64 = 1_780_272_000_000;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn mono(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_steady_clock_is_trusted_and_moves_the_floor() {
        let mut g = ClockGuard::new(None);
        for i in 0..10 {
            let r = g.read(at(T0 + i * MIN), mono(i * MIN));
            assert!(r.trusted);
            assert_eq!(r.now, at(T0 + i * MIN));
            assert_eq!(r.episode, None);
        }
        assert_eq!(g.floor(), at(T0 + 9 * MIN));
    }

    #[test]
    fn a_clock_back_at_1970_is_untrusted_once_and_time_goes_on() {
        let mut g = ClockGuard::new(None);
        g.read(at(T0), mono(0));
        let r = g.read(at(5_000), mono(MIN));
        assert!(!r.trusted);
        assert_eq!(r.now, at(T0 + MIN));
        assert_eq!(
            r.episode,
            Some(ClockUntrusted {
                observed: at(5_000),
                trusted: at(T0 + MIN)
            })
        );
        // Still 1970 a day later: no second episode, the rules' time follows the monotonic.
        let r = g.read(at(5_000 + DAY), mono(MIN + DAY));
        assert!(!r.trusted);
        assert_eq!(r.episode, None);
        assert_eq!(r.now, at(T0 + MIN + DAY));
        assert_eq!(g.floor(), at(T0));
        // GNSS sets it right: trusted again at once.
        let r = g.read(at(T0 + 2 * MIN + DAY), mono(2 * MIN + DAY));
        assert!(r.trusted);
        assert_eq!(g.episodes(), 1);
    }

    #[test]
    fn a_leap_ahead_is_held_until_it_holds_steady() {
        let mut g = ClockGuard::new(None);
        g.read(at(T0), mono(0));
        let year = 365 * DAY;
        let r = g.read(at(T0 + year + MIN), mono(MIN));
        assert!(!r.trusted);
        assert_eq!(r.now, at(T0 + MIN));
        assert!(r.episode.is_some());
        // Steady for less than the confirmation time: still held.
        let r = g.read(at(T0 + year + 9 * MIN), mono(9 * MIN));
        assert!(!r.trusted);
        assert_eq!(r.now, at(T0 + 9 * MIN));
        // Steady for ten minutes of monotonic time: trusted, the floor moves.
        let r = g.read(at(T0 + year + 11 * MIN), mono(11 * MIN));
        assert!(r.trusted);
        assert_eq!(r.now, at(T0 + year + 11 * MIN));
        assert_eq!(g.floor(), at(T0 + year + 11 * MIN));
    }

    #[test]
    fn a_leap_that_does_not_hold_restarts_the_confirmation() {
        let mut g = ClockGuard::new(None);
        g.read(at(T0), mono(0));
        g.read(at(T0 + 30 * DAY), mono(MIN));
        // A different leap: the wait starts again from here.
        assert!(!g.read(at(T0 + 60 * DAY), mono(8 * MIN)).trusted);
        assert!(!g.read(at(T0 + 60 * DAY + 8 * MIN), mono(16 * MIN)).trusted);
        assert!(g.read(at(T0 + 60 * DAY + 11 * MIN), mono(19 * MIN)).trusted);
    }

    #[test]
    fn a_reading_from_a_source_a_moment_behind_is_no_jump() {
        let mut g = ClockGuard::new(None);
        g.read(at(T0 + 60 * MIN), mono(60 * MIN));
        // The clock's own reading lags the bus's by half an hour (same offset): trusted, and
        // the rules' time does not go back.
        let r = g.read(at(T0 + 30 * MIN), mono(30 * MIN));
        assert!(r.trusted);
        assert_eq!(r.now, at(T0 + 60 * MIN));
        assert!(g.read(at(T0 + 61 * MIN), mono(61 * MIN)).trusted);
    }

    #[test]
    fn drift_within_the_slack_is_trusted() {
        let mut g = ClockGuard::new(None);
        g.read(at(T0), mono(0));
        let r = g.read(at(T0 + 10 * MIN + 90_000), mono(10 * MIN));
        assert!(r.trusted);
        // Judged against the re-anchored offset (+90 s): 90 s back is within the slack.
        let r = g.read(at(T0 + 20 * MIN), mono(20 * MIN));
        assert!(r.trusted);
        // That re-anchored again (offset T0): 150 s back from it is not within the slack.
        assert!(!g.read(at(T0 + 30 * MIN - 150_000), mono(30 * MIN)).trusted);
    }

    #[test]
    fn at_boot_the_stored_floor_and_the_build_floor_judge() {
        // A fresh store: the build's release date is the floor.
        let mut g = ClockGuard::new(None);
        let r = g.read(at(0), mono(0));
        assert!(!r.trusted);
        assert_eq!(r.now, BUILD_FLOOR);
        // A store that saw T0: a boot a month later is trusted (the car was parked), a boot
        // before T0 is not.
        let mut g = ClockGuard::new(Some(at(T0)));
        assert!(g.read(at(T0 + 30 * DAY), mono(0)).trusted);
        let mut g = ClockGuard::new(Some(at(T0)));
        let r = g.read(at(T0 - DAY), mono(0));
        assert!(!r.trusted);
        assert_eq!(r.now, at(T0));
    }

    #[test]
    fn the_rules_time_never_goes_back() {
        let mut g = ClockGuard::new(None);
        let mut last = Timestamp::from_millis(0);
        for (wall, m) in [
            (T0, 0),
            (T0 + MIN, MIN),
            (1_000, 2 * MIN),
            (T0 + 400 * DAY, 3 * MIN),
            (T0 + 4 * MIN, 4 * MIN),
            (T0 - 5 * DAY, 5 * MIN),
        ] {
            let r = g.read(at(wall), mono(m));
            assert!(r.now >= last, "{r:?} after {last:?}");
            last = r.now;
        }
    }
}
