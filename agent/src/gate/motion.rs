//! Whether the car is stopped long enough for a non-critical prompt: [`Motion`] follows the
//! speed, park and power signals and answers [`Motion::is_stopped`] for a given time.
//!
//! Owns: the stopped/moving judgement and its safety defaults. Does not own: where the
//! signals come from (the poller and [`crate::observe`] feed them), nor what is shown
//! ([`super::decide`]).
//!
//! Safety first, everywhere: when the signals do not prove the car is stopped, it is moving.
//! - Nothing known yet (no speed, no park signal, power on): moving.
//! - A speed reading older than [`SPEED_STALE_MS`] (while powered and not parked): unknown,
//!   so moving. A gap longer than that between two readings restarts the stopped timer too:
//!   the car may have moved in between.
//! - A fresh reading at or above the threshold: moving, even if the park or power signal says
//!   otherwise (contradictory signals are not trusted to relax safety).
//! - Shifting out of park restarts the stopped timer; power coming back forgets the speed and
//!   park signals of the previous trip.
//! - NaN, infinite or negative speeds are ignored and counted ([`Motion::rejected`]).

use core::time::Duration;

use rapport_shared::Timestamp;

use crate::config::Prompts;

/// A speed reading older than this, ms, no longer says anything about the car: with power on
/// and no park signal, the car then counts as moving. OBD and CAN speed arrive several times
/// a second, so 5 s of silence means a lost source, not a quiet car.
pub(crate) const SPEED_STALE_MS: u64 = 5_000;

/// The car's motion as far as the gate is concerned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Motion {
    /// Below this speed, km/h, the car may count as stopped.
    stopped_kmh: f32,
    /// After staying below it this long.
    stopped_for: Duration,
    /// Ignition / bus alive (true until told otherwise: unknown power is on).
    powered: bool,
    /// The park signal, if one was seen this trip.
    parked: Option<bool>,
    /// When the last accepted speed reading came.
    last_speed_at: Option<Timestamp>,
    /// Start of the current unbroken run of readings below the threshold; `None` when the
    /// last reading was at or above it.
    below_since: Option<Timestamp>,
    /// Speed readings ignored as implausible.
    rejected: u64,
}

impl Motion {
    /// A motion tracker with the `[prompts]` thresholds (`stopped_kmh`, `stopped_for_s`).
    pub(crate) fn new(config: &Prompts) -> Self {
        Self::with_thresholds(config.stopped_kmh, config.stopped_for_s)
    }

    /// A motion tracker that counts the car as stopped below `stopped_kmh` after
    /// `stopped_for_s` seconds. Nothing is known yet, so it starts as moving.
    pub(crate) fn with_thresholds(stopped_kmh: f32, stopped_for_s: u32) -> Self {
        Self {
            stopped_kmh,
            stopped_for: Duration::from_secs(u64::from(stopped_for_s)),
            powered: true,
            parked: None,
            last_speed_at: None,
            below_since: None,
            rejected: 0,
        }
    }

    /// A speed reading, km/h, taken at `now`. Returns whether it was accepted: NaN, infinite
    /// and negative speeds are ignored (and counted in [`Motion::rejected`]).
    pub(crate) fn on_speed(&mut self, kmh: f32, now: Timestamp) -> bool {
        if !kmh.is_finite() || kmh < 0.0 {
            self.rejected = self.rejected.saturating_add(1);
            return false;
        }
        // The run below the threshold continues only from a reading close enough before this
        // one; a long gap (or the clock going backwards) starts it again here.
        let continues = self.last_speed_at.is_some_and(|last| {
            now >= last && now.saturating_since(last) <= Duration::from_millis(SPEED_STALE_MS)
        });
        if kmh < self.stopped_kmh {
            if self.below_since.is_none() || !continues {
                self.below_since = Some(now);
            }
        } else {
            self.below_since = None;
        }
        self.last_speed_at = Some(now);
        true
    }

    /// The park signal (gear in P or parking brake, as the vehicle line defines it).
    /// Leaving park restarts the stopped timer: the driver is about to drive.
    pub(crate) fn on_park(&mut self, parked: bool, now: Timestamp) {
        if !parked && self.parked == Some(true) && self.below_since.is_some() {
            self.below_since = Some(now);
        }
        self.parked = Some(parked);
    }

    /// Ignition on or off (or the bus going quiet / waking up). Off counts as parked. Power
    /// coming back starts a new trip: the old speed and park signals are forgotten, so the car
    /// is moving until new readings prove otherwise.
    pub(crate) fn on_power(&mut self, on: bool, _now: Timestamp) {
        if on && !self.powered {
            self.parked = None;
            self.last_speed_at = None;
            self.below_since = None;
        }
        self.powered = on;
    }

    /// Whether the car counts as stopped at `now`: no fresh reading at or above the threshold,
    /// and either parked, powered off, or every reading below the threshold for at least
    /// `stopped_for_s` up to a fresh one (see the module doc for the safety defaults).
    pub(crate) fn is_stopped(&self, now: Timestamp) -> bool {
        let stale = Duration::from_millis(SPEED_STALE_MS);
        let fresh = |at: Timestamp| now.saturating_since(at) <= stale;
        match (self.last_speed_at, self.below_since) {
            // A fresh moving reading wins over park and power.
            (Some(at), None) if fresh(at) => false,
            _ if !self.powered || self.parked == Some(true) => true,
            (Some(at), Some(since)) if fresh(at) => now.saturating_since(since) >= self.stopped_for,
            _ => false,
        }
    }

    /// Whether the car counts as moving at `now` (`!is_stopped`).
    pub(crate) fn moving(&self, now: Timestamp) -> bool {
        !self.is_stopped(now)
    }

    /// The park signal this trip, if one was seen.
    pub(crate) fn parked(&self) -> Option<bool> {
        self.parked
    }

    /// Speed readings ignored as NaN, infinite or negative.
    #[cfg(test)]
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected
    }
}
