//! Where a driver sits on each axis, and when time alone will move them: the pure rules of
//! layering.
//!
//! Owns [`LayerConfig`] (every threshold, its defaults in [`defaults`], its [`Check`]), [`classify`] (profile + now → layers and the next instant at
//! which time alone changes them) and [`explain`] (the human reason for a change). Does not
//! own the per-vehicle state, the time index or the tick ([`super::layering`]), nor where
//! profiles come from (ingest and the registry).
//!
//! The rules (defaults in parentheses):
//! - *car maturity*: novice while owned < `car.novice_until_days` (180) **and** odometer <
//!   `car.novice_until_km` (10,000); veteran from `car.veteran_from_days` (1,095: 3 years)
//!   **or** `car.veteran_from_km` (60,000); skilled otherwise;
//! - *service maturity*: score = `prompt_action_points` (1) × prompt actions +
//!   `booking_points` (3) × bookings + `service_points` (5) × services; junior below
//!   `growing_from` (5), growing below `mature_from` (20), mature from there;
//! - *activity*, from the time since the last engagement (the ownership start if none):
//!   active below `declining_after_days` (14), declining below `churned_after_days` (45),
//!   churned below `dormant_after_days` (120), dormant from there;
//! - *lifecycle*: lapsed once there was no engagement for `lapsed_after_days` (180); else
//!   new while owned < `retained_after_days` (365); else retained.
//!
//! A profile without an ownership start (no delivery date, no record yet) has owned the car
//! for zero days, for as long as that lasts; without an engagement either, its activity is
//! active and its lifecycle new, and time alone changes nothing until one is known.
//!
//! Every time is compared to the millisecond: "14 days" is `14 × DAY_MS` after the
//! reference instant, and the change happens exactly there.

use core::fmt::Write as _;

use rapport_shared::Timestamp;
use serde::{Deserialize, Serialize};

use super::model::{
    Activity, CarMaturity, Category, DAY_MS, LayerChange, Layers, Lifecycle, Profile,
    ServiceMaturity,
};
use rapport_kit::config::{Check, Problems, key};

/// Every default threshold, in one place.
pub mod defaults {
    /// Novice while owned fewer days than this (and below [`NOVICE_UNTIL_KM`]).
    pub const NOVICE_UNTIL_DAYS: u32 = 180;
    /// Novice while the odometer is below this many km (and owned < [`NOVICE_UNTIL_DAYS`]).
    pub const NOVICE_UNTIL_KM: u32 = 10_000;
    /// Veteran from this many days of ownership (3 years)…
    pub const VETERAN_FROM_DAYS: u32 = 3 * 365;
    /// …or from this many km.
    pub const VETERAN_FROM_KM: u32 = 60_000;
    /// Service score points per prompt the driver acted on.
    pub const PROMPT_ACTION_POINTS: u32 = 1;
    /// Service score points per booking.
    pub const BOOKING_POINTS: u32 = 3;
    /// Service score points per service done.
    pub const SERVICE_POINTS: u32 = 5;
    /// Growing from this service score (junior below).
    pub const GROWING_FROM: u32 = 5;
    /// Mature from this service score.
    pub const MATURE_FROM: u32 = 20;
    /// Declining after this many days without engagement (active below).
    pub const DECLINING_AFTER_DAYS: u32 = 14;
    /// Churned after this many days without engagement.
    pub const CHURNED_AFTER_DAYS: u32 = 45;
    /// Dormant after this many days without engagement.
    pub const DORMANT_AFTER_DAYS: u32 = 120;
    /// Lapsed after this many days without engagement.
    pub const LAPSED_AFTER_DAYS: u32 = 180;
    /// Retained (rather than new) from this many days of ownership.
    pub const RETAINED_AFTER_DAYS: u32 = 365;
    /// Largest day threshold accepted: a larger one is a unit mistake (ms, seconds).
    pub const MAX_DAYS: u32 = 100 * 365;
}

/// `[layers]`: every threshold of layering. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerConfig {
    /// `[layers.car]`: maturity with the car.
    pub car: CarThresholds,
    /// `[layers.service]`: maturity with the service.
    pub service: ServiceThresholds,
    /// `[layers.activity]`: activity.
    pub activity: ActivityThresholds,
    /// `[layers.lifecycle]`: lifecycle.
    pub lifecycle: LifecycleThresholds,
}

/// `[layers.car]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CarThresholds {
    /// Novice while owned fewer days than this and below `novice_until_km`.
    pub novice_until_days: u32,
    /// Novice while below this many km and owned < `novice_until_days`.
    pub novice_until_km: u32,
    /// Veteran from this many days of ownership.
    pub veteran_from_days: u32,
    /// Veteran from this many km.
    pub veteran_from_km: u32,
}

impl Default for CarThresholds {
    fn default() -> Self {
        Self {
            novice_until_days: defaults::NOVICE_UNTIL_DAYS,
            novice_until_km: defaults::NOVICE_UNTIL_KM,
            veteran_from_days: defaults::VETERAN_FROM_DAYS,
            veteran_from_km: defaults::VETERAN_FROM_KM,
        }
    }
}

/// `[layers.service]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceThresholds {
    /// Points per prompt acted on.
    pub prompt_action_points: u32,
    /// Points per booking.
    pub booking_points: u32,
    /// Points per service done.
    pub service_points: u32,
    /// Growing from this score.
    pub growing_from: u32,
    /// Mature from this score.
    pub mature_from: u32,
}

impl Default for ServiceThresholds {
    fn default() -> Self {
        Self {
            prompt_action_points: defaults::PROMPT_ACTION_POINTS,
            booking_points: defaults::BOOKING_POINTS,
            service_points: defaults::SERVICE_POINTS,
            growing_from: defaults::GROWING_FROM,
            mature_from: defaults::MATURE_FROM,
        }
    }
}

/// `[layers.activity]`: days without engagement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityThresholds {
    /// Declining from this many days.
    pub declining_after_days: u32,
    /// Churned from this many days.
    pub churned_after_days: u32,
    /// Dormant from this many days.
    pub dormant_after_days: u32,
}

impl Default for ActivityThresholds {
    fn default() -> Self {
        Self {
            declining_after_days: defaults::DECLINING_AFTER_DAYS,
            churned_after_days: defaults::CHURNED_AFTER_DAYS,
            dormant_after_days: defaults::DORMANT_AFTER_DAYS,
        }
    }
}

/// `[layers.lifecycle]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleThresholds {
    /// Lapsed from this many days without engagement.
    pub lapsed_after_days: u32,
    /// Retained from this many days of ownership.
    pub retained_after_days: u32,
}

impl Default for LifecycleThresholds {
    fn default() -> Self {
        Self {
            lapsed_after_days: defaults::LAPSED_AFTER_DAYS,
            retained_after_days: defaults::RETAINED_AFTER_DAYS,
        }
    }
}

impl Check for LayerConfig {
    /// Every problem with the thresholds, each with its key path (`layers.activity.…` for
    /// `path` `layers`). [`classify`] assumes a config without problems (it never panics on
    /// one, but its `next_change` may then be wrong).
    fn check(&self, path: &str, problems: &mut Problems) {
        let at = |name: &str| key(path, name);
        let mut days = |name: &str, v: u32| {
            if v == 0 {
                problems.push(at(name), "must be at least 1 day");
            } else if v > defaults::MAX_DAYS {
                problems.push(
                    at(name),
                    format!("{v} days is over 100 years: the unit is days, not seconds or ms"),
                );
            }
        };
        let c = &self.car;
        days("car.novice_until_days", c.novice_until_days);
        days("car.veteran_from_days", c.veteran_from_days);
        let a = &self.activity;
        days("activity.declining_after_days", a.declining_after_days);
        days("activity.churned_after_days", a.churned_after_days);
        days("activity.dormant_after_days", a.dormant_after_days);
        let l = &self.lifecycle;
        days("lifecycle.lapsed_after_days", l.lapsed_after_days);
        days("lifecycle.retained_after_days", l.retained_after_days);

        let mut positive = |name: &str, v: u32| {
            if v == 0 {
                problems.push(at(name), "must be at least 1");
            }
        };
        positive("car.novice_until_km", c.novice_until_km);
        positive("car.veteran_from_km", c.veteran_from_km);
        let s = &self.service;
        positive("service.growing_from", s.growing_from);

        let mut increasing = |lower: (&str, u32), upper: (&str, u32)| {
            if upper.1 <= lower.1 {
                problems.push(
                    at(upper.0),
                    format!(
                        "{} must be above {} ({}): thresholds increase",
                        upper.1, lower.0, lower.1
                    ),
                );
            }
        };
        increasing(
            ("car.novice_until_days", c.novice_until_days),
            ("car.veteran_from_days", c.veteran_from_days),
        );
        increasing(
            ("car.novice_until_km", c.novice_until_km),
            ("car.veteran_from_km", c.veteran_from_km),
        );
        increasing(
            ("service.growing_from", s.growing_from),
            ("service.mature_from", s.mature_from),
        );
        increasing(
            ("activity.declining_after_days", a.declining_after_days),
            ("activity.churned_after_days", a.churned_after_days),
        );
        increasing(
            ("activity.churned_after_days", a.churned_after_days),
            ("activity.dormant_after_days", a.dormant_after_days),
        );
        if s.prompt_action_points == 0 && s.booking_points == 0 && s.service_points == 0 {
            problems.push(
                at("service"),
                "prompt_action_points, booking_points and service_points are all 0: \
                 every driver would stay junior",
            );
        }
    }
}

/// Where a driver sits, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Every axis.
    pub layers: Layers,
    /// The earliest instant after `now` at which time alone changes some axis (with the
    /// same profile); `None`: time alone never changes anything (e.g. veteran, dormant and
    /// lapsed, or nothing known to count from).
    pub next_change: Option<Timestamp>,
}

/// `days` as milliseconds (never overflows: `u32::MAX` days fit in `u64` ms).
const fn days_ms(days: u32) -> u64 {
    days as u64 * DAY_MS
}

/// What classification derives from a profile at one instant, in milliseconds.
struct Clocks {
    /// Ownership start, if known.
    since: Option<u64>,
    /// Time owned (zero before the start or without one).
    owned: u64,
    /// The activity reference (last engagement, else ownership start), if any.
    reference: Option<u64>,
    /// Time since the reference (zero if in the future).
    idle: Option<u64>,
}

impl Clocks {
    fn new(p: &Profile, now: u64) -> Self {
        let since = p.owned_since.map(Timestamp::as_millis);
        let reference = p
            .last_engagement
            .or(p.owned_since)
            .map(Timestamp::as_millis);
        Self {
            since,
            owned: since.map_or(0, |s| now.saturating_sub(s)),
            reference,
            idle: reference.map(|r| now.saturating_sub(r)),
        }
    }
}

fn car_maturity(owned: u64, odometer_m: u64, c: &CarThresholds) -> CarMaturity {
    if owned >= days_ms(c.veteran_from_days) || odometer_m >= u64::from(c.veteran_from_km) * 1000 {
        CarMaturity::Veteran
    } else if owned < days_ms(c.novice_until_days)
        && odometer_m < u64::from(c.novice_until_km) * 1000
    {
        CarMaturity::Novice
    } else {
        CarMaturity::Skilled
    }
}

/// The service score of a profile.
pub fn service_score(p: &Profile, s: &ServiceThresholds) -> u64 {
    u64::from(p.prompt_actions)
        .saturating_mul(u64::from(s.prompt_action_points))
        .saturating_add(u64::from(p.bookings).saturating_mul(u64::from(s.booking_points)))
        .saturating_add(u64::from(p.services).saturating_mul(u64::from(s.service_points)))
}

fn service_maturity(score: u64, s: &ServiceThresholds) -> ServiceMaturity {
    if score >= u64::from(s.mature_from) {
        ServiceMaturity::Mature
    } else if score >= u64::from(s.growing_from) {
        ServiceMaturity::Growing
    } else {
        ServiceMaturity::Junior
    }
}

fn activity(idle: Option<u64>, a: &ActivityThresholds) -> Activity {
    match idle {
        None => Activity::Active,
        Some(i) if i >= days_ms(a.dormant_after_days) => Activity::Dormant,
        Some(i) if i >= days_ms(a.churned_after_days) => Activity::Churned,
        Some(i) if i >= days_ms(a.declining_after_days) => Activity::Declining,
        Some(_) => Activity::Active,
    }
}

fn lifecycle(clocks: &Clocks, l: &LifecycleThresholds) -> Lifecycle {
    if clocks
        .idle
        .is_some_and(|i| i >= days_ms(l.lapsed_after_days))
    {
        Lifecycle::Lapsed
    } else if clocks.owned < days_ms(l.retained_after_days) {
        Lifecycle::New
    } else {
        Lifecycle::Retained
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Places a driver at `now`, and finds when time alone will next move them.
///
/// Pure and allocation-free. Every axis only moves one way with time (more owned, more
/// idle), so each axis's next change is the first threshold it has not reached yet, and the
/// placement's is the earliest of those. Instants beyond `u64` milliseconds count as never.
pub fn classify(category: Category, p: &Profile, now: Timestamp, cfg: &LayerConfig) -> Placement {
    let clocks = Clocks::new(p, now.as_millis());
    let layers = Layers {
        category,
        car: car_maturity(clocks.owned, p.odometer_m, &cfg.car),
        service: service_maturity(service_score(p, &cfg.service), &cfg.service),
        activity: activity(clocks.idle, &cfg.activity),
        lifecycle: lifecycle(&clocks, &cfg.lifecycle),
    };
    let after_since = |days: u32| clocks.since.and_then(|s| s.checked_add(days_ms(days)));
    let after_reference = |days: u32| clocks.reference.and_then(|r| r.checked_add(days_ms(days)));

    let car = match layers.car {
        CarMaturity::Novice => after_since(cfg.car.novice_until_days),
        CarMaturity::Skilled => after_since(cfg.car.veteran_from_days),
        CarMaturity::Veteran => None,
    };
    let a = &cfg.activity;
    let act = match layers.activity {
        // Without a reference there is no idle time, and activity stays active.
        Activity::Active => after_reference(a.declining_after_days),
        Activity::Declining => after_reference(a.churned_after_days),
        Activity::Churned => after_reference(a.dormant_after_days),
        Activity::Dormant => None,
    };
    let life = match layers.lifecycle {
        Lifecycle::New => earliest(
            after_reference(cfg.lifecycle.lapsed_after_days),
            after_since(cfg.lifecycle.retained_after_days),
        ),
        Lifecycle::Retained => after_reference(cfg.lifecycle.lapsed_after_days),
        Lifecycle::Lapsed => None,
    };
    Placement {
        layers,
        next_change: earliest(earliest(car, act), life).map(Timestamp::from_millis),
    }
}

/// The human reason for a change of layers at `at`: one clause per axis that changed
/// (every axis for a first placement, `from = None`), e.g.
/// `"activity declining → churned: no engagement for 45 days, churned after 45"`.
pub fn explain(
    from: Option<Layers>,
    to: Layers,
    p: &Profile,
    at: Timestamp,
    cfg: &LayerConfig,
) -> String {
    let clocks = Clocks::new(p, at.as_millis());
    let mut out = String::with_capacity(96);
    if from.is_none() {
        out.push_str("first placement: ");
    }
    // One buffer, written in place: a tick explains every change it finds.
    let mut first = true;
    let mut clause = |out: &mut String, axis: &str, before: &str, after: &str| {
        if !first {
            out.push_str("; ");
        }
        first = false;
        let _ = match from {
            Some(_) => write!(out, "{axis} {before} → {after}"),
            None => write!(out, "{axis} {after}"),
        };
    };
    let old = from.unwrap_or(to);
    let all = from.is_none();
    if all || old.category != to.category {
        clause(
            &mut out,
            "category",
            old.category.as_str(),
            to.category.as_str(),
        );
    }
    if all || old.car != to.car {
        clause(&mut out, "car", old.car.as_str(), to.car.as_str());
        car_reason(&mut out, to.car, &clocks, p, cfg);
    }
    if all || old.service != to.service {
        clause(
            &mut out,
            "service",
            old.service.as_str(),
            to.service.as_str(),
        );
        service_reason(&mut out, to.service, p, cfg);
    }
    if all || old.activity != to.activity {
        clause(
            &mut out,
            "activity",
            old.activity.as_str(),
            to.activity.as_str(),
        );
        activity_reason(&mut out, to.activity, &clocks, p, cfg);
    }
    if all || old.lifecycle != to.lifecycle {
        clause(
            &mut out,
            "lifecycle",
            old.lifecycle.as_str(),
            to.lifecycle.as_str(),
        );
        lifecycle_reason(&mut out, to.lifecycle, &clocks, p, cfg);
    }
    out
}

fn whole_days(ms: u64) -> u64 {
    ms / DAY_MS
}

// The reasons below append to `out`: `": "` then the figures, then the threshold. Writing
// to a `String` cannot fail, so `write!`'s result is ignored.

fn owned_text(out: &mut String, clocks: &Clocks) {
    let _ = match clocks.since {
        Some(_) => write!(out, "owned {} days", whole_days(clocks.owned)),
        None => write!(out, "ownership start unknown"),
    };
}

fn idle_text(out: &mut String, clocks: &Clocks, p: &Profile) {
    let _ = match (clocks.idle, p.last_engagement) {
        (None, _) => write!(out, "no engagement or ownership start known"),
        (Some(i), Some(_)) => write!(out, "no engagement for {} days", whole_days(i)),
        (Some(i), None) => write!(
            out,
            "no engagement for {} days (none since the ownership start)",
            whole_days(i)
        ),
    };
}

fn car_reason(out: &mut String, to: CarMaturity, clocks: &Clocks, p: &Profile, cfg: &LayerConfig) {
    let c = &cfg.car;
    out.push_str(": ");
    owned_text(out, clocks);
    let _ = write!(out, ", {} km, ", p.odometer_m / 1000);
    let _ = match to {
        CarMaturity::Novice => write!(
            out,
            "novice below {} days and {} km",
            c.novice_until_days, c.novice_until_km
        ),
        CarMaturity::Skilled => write!(
            out,
            "skilled from {} days or {} km",
            c.novice_until_days, c.novice_until_km
        ),
        CarMaturity::Veteran => write!(
            out,
            "veteran from {} days or {} km",
            c.veteran_from_days, c.veteran_from_km
        ),
    };
}

fn service_reason(out: &mut String, to: ServiceMaturity, p: &Profile, cfg: &LayerConfig) {
    let s = &cfg.service;
    let _ = write!(
        out,
        ": score {} ({} prompt actions, {} bookings, {} services), ",
        service_score(p, s),
        p.prompt_actions,
        p.bookings,
        p.services
    );
    let _ = match to {
        ServiceMaturity::Junior => write!(out, "junior below {}", s.growing_from),
        ServiceMaturity::Growing => write!(out, "growing from {}", s.growing_from),
        ServiceMaturity::Mature => write!(out, "mature from {}", s.mature_from),
    };
}

fn activity_reason(
    out: &mut String,
    to: Activity,
    clocks: &Clocks,
    p: &Profile,
    cfg: &LayerConfig,
) {
    let a = &cfg.activity;
    out.push_str(": ");
    match (to, clocks.idle, p.last_engagement) {
        (Activity::Active, None, _) => return idle_text(out, clocks, p),
        (Activity::Active, Some(i), Some(_)) => {
            let _ = write!(
                out,
                "engaged {} days ago, active below {}",
                whole_days(i),
                a.declining_after_days
            );
            return;
        }
        _ => idle_text(out, clocks, p),
    }
    let _ = match to {
        Activity::Active => write!(out, ", active below {}", a.declining_after_days),
        Activity::Declining => write!(out, ", declining after {}", a.declining_after_days),
        Activity::Churned => write!(out, ", churned after {}", a.churned_after_days),
        Activity::Dormant => write!(out, ", dormant after {}", a.dormant_after_days),
    };
}

fn lifecycle_reason(
    out: &mut String,
    to: Lifecycle,
    clocks: &Clocks,
    p: &Profile,
    cfg: &LayerConfig,
) {
    let l = &cfg.lifecycle;
    out.push_str(": ");
    let _ = match to {
        Lifecycle::Lapsed => {
            idle_text(out, clocks, p);
            write!(out, ", lapsed after {}", l.lapsed_after_days)
        }
        Lifecycle::New => {
            owned_text(out, clocks);
            write!(out, ", new below {} days", l.retained_after_days)
        }
        Lifecycle::Retained => {
            owned_text(out, clocks);
            write!(out, ", retained from {} days", l.retained_after_days)
        }
    };
}

/// A [`LayerChange`] from `from` to a placement's layers, with its reason; `None` if
/// nothing changed.
pub fn change(
    vin: rapport_shared::Vin,
    from: Option<Layers>,
    to: Layers,
    p: &Profile,
    at: Timestamp,
    cfg: &LayerConfig,
) -> Option<LayerChange> {
    (from != Some(to)).then(|| LayerChange {
        vin,
        from,
        to,
        at,
        why: explain(from, to, p, at, cfg),
    })
}

#[cfg(test)]
pub(crate) mod tests;
