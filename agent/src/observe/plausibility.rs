//! Odometer plausibility: one vehicle has one odometer, whichever source reads it. A reading
//! lower than the last accepted one, or further ahead than the vehicle could have driven at
//! `max_plausible_kmh` since then, is rejected. Owns that rule only; the caller reports the
//! verdict.
//!
//! Sources differ in resolution (J1939 VD 125 m, VDHR 5 m, OBD-II 100 m, DBC its factor), so
//! "lower" and "too far" both allow one step of the coarser of the two readings: VD saying
//! 438978.000 km after VDHR said 438978.050 km is the same distance, not a regression.

use core::fmt;
use core::time::Duration;

/// What [`Plausibility::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The first reading, or a plausible higher one: it is the new odometer.
    Accepted,
    /// Equal to the last accepted reading within resolution: nothing new.
    Unchanged,
    /// Lower than the last accepted reading by more than the resolution.
    Backwards {
        /// The last accepted reading, m.
        last_m: u64,
        /// This reading, m.
        got_m: u64,
    },
    /// Further ahead than the vehicle could have driven.
    TooFast {
        /// The last accepted reading, m.
        last_m: u64,
        /// This reading, m.
        got_m: u64,
        /// Time since the last accepted (or confirmed) reading.
        elapsed: Duration,
        /// The most distance allowed in that time, m (slack included).
        allowed_m: u64,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let km = |m: u64| m as f64 / 1000.0;
        match *self {
            Self::Accepted => f.write_str("accepted"),
            Self::Unchanged => f.write_str("unchanged"),
            Self::Backwards { last_m, got_m } => write!(
                f,
                "went backwards: {:.3} km after {:.3} km; not accepted",
                km(got_m),
                km(last_m)
            ),
            Self::TooFast {
                last_m,
                got_m,
                elapsed,
                allowed_m,
            } => write!(
                f,
                "jumped from {:.3} km to {:.3} km in {:.3} s (at most {:.3} km plausible); not accepted",
                km(last_m),
                km(got_m),
                elapsed.as_secs_f64(),
                km(allowed_m)
            ),
        }
    }
}

/// The last accepted odometer reading and the speed limit that judges the next.
#[derive(Debug, Clone)]
pub(crate) struct Plausibility {
    max_kmh: u32,
    /// Meters, resolution of that reading, when it was last accepted or confirmed.
    last: Option<(u64, u64, Duration)>,
}

impl Plausibility {
    /// A checker with no reading yet.
    pub(crate) fn new(max_plausible_kmh: u32) -> Self {
        Self {
            max_kmh: max_plausible_kmh,
            last: None,
        }
    }

    /// The last accepted reading, m.
    #[cfg(test)]
    pub(crate) fn last_meters(&self) -> Option<u64> {
        self.last.map(|(m, _, _)| m)
    }

    /// Judges a reading of `meters` (one step = `resolution_m`) taken at `now`, and
    /// remembers it when accepted.
    pub(crate) fn check(&mut self, meters: u64, resolution_m: u64, now: Duration) -> Verdict {
        let Some((last_m, last_res, at)) = self.last else {
            self.last = Some((meters, resolution_m, now));
            return Verdict::Accepted;
        };
        let slack = resolution_m.max(last_res);
        if meters <= last_m {
            if last_m - meters <= slack {
                // The same distance as far as these resolutions tell: it confirms the last
                // reading, so the jump allowance restarts from now.
                if meters == last_m {
                    self.last = Some((last_m, resolution_m.min(last_res), now));
                }
                return Verdict::Unchanged;
            }
            return Verdict::Backwards {
                last_m,
                got_m: meters,
            };
        }
        let elapsed = now.saturating_sub(at);
        // km/h × ms / 3600 = m.
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let allowed_m = u64::from(self.max_kmh)
            .saturating_mul(ms)
            .div_ceil(3600)
            .saturating_add(slack);
        if meters - last_m > allowed_m {
            return Verdict::TooFast {
                last_m,
                got_m: meters,
                elapsed,
                allowed_m,
            };
        }
        self.last = Some((meters, resolution_m, now));
        Verdict::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn first_reading_is_accepted_whatever_it_is() {
        let mut p = Plausibility::new(300);
        assert_eq!(p.check(438_978_000, 125, s(100)), Verdict::Accepted);
        assert_eq!(p.last_meters(), Some(438_978_000));
    }

    #[test]
    fn backwards_is_rejected_equal_is_not() {
        let mut p = Plausibility::new(300);
        p.check(10_000, 5, s(0));
        assert_eq!(p.check(10_000, 5, s(1)), Verdict::Unchanged);
        assert_eq!(
            p.check(9_000, 5, s(2)),
            Verdict::Backwards {
                last_m: 10_000,
                got_m: 9_000
            }
        );
        // the rejected reading does not become the reference
        assert_eq!(p.last_meters(), Some(10_000));
        assert_eq!(p.check(10_005, 5, s(3)), Verdict::Accepted);
    }

    #[test]
    fn coarser_source_within_one_step_is_unchanged() {
        // VECTORS.md §4d: VDHR 438978.05 km (5 m steps), then VD 438978.0 km (125 m steps).
        let mut p = Plausibility::new(300);
        assert_eq!(p.check(438_978_050, 5, s(0)), Verdict::Accepted);
        assert_eq!(p.check(438_978_000, 125, s(1)), Verdict::Unchanged);
        assert_eq!(p.last_meters(), Some(438_978_050));
    }

    #[test]
    fn jumps_faster_than_the_limit_are_rejected() {
        let mut p = Plausibility::new(300);
        p.check(1_000_000, 100, s(0));
        // 300 km/h for 60 s = 5000 m, plus one 100 m step
        assert_eq!(p.check(1_005_100, 100, s(60)), Verdict::Accepted);
        let v = p.check(1_015_201, 100, s(120));
        assert_eq!(
            v,
            Verdict::TooFast {
                last_m: 1_005_100,
                got_m: 1_015_201,
                elapsed: s(60),
                allowed_m: 5_100
            }
        );
        assert!(
            v.to_string()
                .contains("1005.100 km to 1015.201 km in 60.000 s"),
            "{v}"
        );
        // a different ECU's total (VECTORS.md §4d, SA 0x31: 537151.605 km) is rejected too
        assert!(matches!(
            p.check(537_151_605, 5, s(121)),
            Verdict::TooFast { .. }
        ));
    }

    #[test]
    fn no_overflow_on_extremes() {
        let mut p = Plausibility::new(1000);
        p.check(0, 0, Duration::ZERO);
        assert!(matches!(
            p.check(u64::MAX, u64::MAX, Duration::MAX),
            Verdict::Accepted
        ));
        // one step of u64::MAX covers everything below it
        assert_eq!(p.check(0, 0, Duration::MAX), Verdict::Unchanged);
    }
}
