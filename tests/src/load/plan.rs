//! The seeded parts of a load run: the fault plan (which vehicles, when, which codes), the
//! maintenance plan (which vehicles, when each step of their story), the vehicles' VINs, and
//! the small generator behind them. Pure and reproducible: the same seed gives the same plan.

use std::time::Duration;

use rapport_shared::Vin;

use super::{LoadError, truck};

/// SplitMix64: small, seeded, reproducible (the plan must be the same for the same seed).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// One planned fault: when (from the start of the window), which vehicle, which code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) at: Duration,
    pub(crate) vehicle: usize,
    pub(crate) spn: u32,
    pub(crate) fmi: u8,
}

/// `faults` faults on distinct vehicles at uniform random moments in [5 %, 90 %] of `window`,
/// in time order.
pub(crate) fn fault_plan(
    vehicles: usize,
    faults: usize,
    window: Duration,
    rng: &mut Rng,
) -> Vec<Planned> {
    let mut plan: Vec<Planned> = distinct_moments(vehicles, faults, window, rng)
        .into_iter()
        .map(|(at, vehicle)| {
            let (spn, fmi) = truck::FAULTS[rng.below(truck::FAULTS.len() as u64) as usize];
            Planned {
                at,
                vehicle,
                spn,
                fmi,
            }
        })
        .collect();
    plan.sort_by_key(|p| p.at);
    plan
}

/// One planned maintenance story: the oil service falls due at `at` (from the start of the
/// window), the driver books it `step` later, and when `serviced` the workshop does it
/// another `step` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Story {
    pub(crate) at: Duration,
    pub(crate) vehicle: usize,
    pub(crate) serviced: bool,
}

/// `stories` maintenance stories on distinct vehicles, falling due at uniform random moments
/// in [5 %, 90 %] of what the window leaves after two steps (so each story ends inside it),
/// every other one serviced; in time order.
pub(crate) fn maintenance_plan(
    vehicles: usize,
    stories: usize,
    window: Duration,
    step: Duration,
    rng: &mut Rng,
) -> Vec<Story> {
    let room = window.saturating_sub(step * 2);
    let mut plan: Vec<Story> = distinct_moments(vehicles, stories, room, rng)
        .into_iter()
        .enumerate()
        .map(|(i, (at, vehicle))| Story {
            at,
            vehicle,
            serviced: i % 2 == 0,
        })
        .collect();
    plan.sort_by_key(|s| s.at);
    plan
}

/// `n` distinct vehicles of `vehicles` (at most all), each with a uniform random moment in
/// [5 %, 90 %] of `span`: the first `n` of a shuffle (partial Fisher-Yates), in draw order.
fn distinct_moments(
    vehicles: usize,
    n: usize,
    span: Duration,
    rng: &mut Rng,
) -> Vec<(Duration, usize)> {
    let mut pool: Vec<usize> = (0..vehicles).collect();
    let lo = span.as_millis() as u64 / 20;
    let hi = (span.as_millis() as u64 * 9 / 10).max(lo + 1);
    (0..n.min(vehicles))
        .map(|i| {
            let j = i + rng.below((vehicles - i) as u64) as usize;
            pool.swap(i, j);
            (Duration::from_millis(lo + rng.below(hi - lo)), pool[i])
        })
        .collect()
}

/// The VIN of vehicle `index`: `RPLD` and 13 digits.
///
/// # Errors
/// [`LoadError::Options`] past 10^13 vehicles (never with [`MAX_VEHICLES`]).
pub fn vin_of(index: usize) -> Result<Vin, LoadError> {
    format!("RPLD{index:013}")
        .parse()
        .map_err(|e| LoadError::Options(vec![format!("vehicle {index}: {e}")]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_fault_plan_is_seeded_distinct_and_inside_the_window() {
        let window = Duration::from_secs(100);
        let a = fault_plan(1000, 50, window, &mut Rng(7));
        let b = fault_plan(1000, 50, window, &mut Rng(7));
        let c = fault_plan(1000, 50, window, &mut Rng(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 50);
        let vehicles: HashSet<usize> = a.iter().map(|p| p.vehicle).collect();
        assert_eq!(vehicles.len(), 50, "one fault per vehicle");
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(
            a.iter()
                .all(|p| p.at >= Duration::from_secs(5) && p.at < Duration::from_secs(90))
        );
        assert!(a.iter().all(|p| p.vehicle < 1000));
        // Every vehicle can be drawn: all of them when faults == vehicles.
        let all = fault_plan(20, 20, window, &mut Rng(1));
        let set: HashSet<usize> = all.iter().map(|p| p.vehicle).collect();
        assert_eq!(set, (0..20).collect());
    }

    #[test]
    fn stories_end_inside_the_window_and_half_are_serviced() {
        let (window, step) = (Duration::from_secs(40), Duration::from_secs(10));
        let a = maintenance_plan(100, 10, window, step, &mut Rng(3));
        assert_eq!(a, maintenance_plan(100, 10, window, step, &mut Rng(3)));
        assert_eq!(a.len(), 10);
        let vehicles: HashSet<usize> = a.iter().map(|s| s.vehicle).collect();
        assert_eq!(vehicles.len(), 10, "one story per vehicle");
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.iter().all(|s| s.at + step * 2 < window));
        assert_eq!(a.iter().filter(|s| s.serviced).count(), 5);
    }

    #[test]
    fn vins_are_valid_and_distinct() {
        assert_eq!(vin_of(0).unwrap().as_str(), "RPLD0000000000000");
        assert_eq!(vin_of(9_999).unwrap().as_str(), "RPLD0000000009999");
        let set: HashSet<Vin> = (0..10_000).map(|i| vin_of(i).unwrap()).collect();
        assert_eq!(set.len(), 10_000);
    }
}
