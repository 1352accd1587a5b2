//! The maintenance engine: where each schedule item stands — ok, due soon, due or overdue —
//! given its service history, the car's odometer and engine hours, and `now`. Pure: no I/O,
//! no clock reads; the caller passes everything in [`Inputs`].
//!
//! Owns: the schedule arithmetic ([`evaluate`]) and the checklist of items needing attention
//! ([`checklist`]). Does not own: the checks of a schedule (`rapport_shared::check_schedule`,
//! the same for the config's and a downlink's), recording services or remembering reported
//! stages ([`crate::memory::ItemRecord`] is read, never written here), prompts, or outbox
//! records.
//!
//! # When an item is due
//!
//! An item has up to three *dimensions*: distance, time and engine hours. It is due by
//! whichever comes first, and its [`Stage`] is the worst over its dimensions.
//!
//! - **Interval start.** Before the item's first service (`record.last` is `None`) the
//!   interval starts at 0 km, the delivery date and 0 engine hours. This first interval uses
//!   `first_at_km` / `first_at_months` where given and `every_*` for the other dimensions; an
//!   item with a `first_at_*` is then a *first service* ([`ItemStatus::first_service`]).
//!   After a service the interval starts at that service's odometer, its local calendar date
//!   and its engine hours, and uses `every_*` only: an item with only `first_at_*` (a one-off
//!   first service) has no dimension left and stays [`Stage::Ok`].
//! - **Time** counts calendar months: the due date is the start date plus the months, the
//!   day clamped to the month's length (delivered Jan 31, every month: due Feb 28/29). The
//!   item is due from the local midnight of that date ([`ItemStatus::due_at`], under
//!   `utc_offset_minutes`), and [`ItemStatus::remaining_days`] counts whole local days
//!   (0 on the due date itself).
//! - **Unknown inputs.** A dimension whose current value is unknown (no odometer read yet, no
//!   engine hours on this car) is skipped. A service recorded without an odometer or engine
//!   hours (the recorder fills in the current value, so this means the agent had none
//!   either) has nothing to count from: that dimension is skipped until the next service
//!   that has one; the other dimensions still apply. Time is always known.
//! - **Stage of one dimension**, with `remaining` to the due point (metres, days, seconds):
//!   `remaining > window` → Ok; `0 < remaining ≤ window` → DueSoon; `remaining = 0`, or
//!   `−margin < remaining < 0` → Due; otherwise (`remaining ≤ −margin`, `remaining < 0`) →
//!   Overdue. Exactly at the due point is always Due, so a margin of 0 makes an item overdue
//!   one metre, day or second after it came due. Windows: the item's `due_soon_km` /
//!   `due_soon_days` (absent: no due-soon stage in that dimension) and the policy's
//!   `due_soon_engine_hours`; margins: the policy's `overdue_km` / `overdue_days` /
//!   `overdue_engine_hours`.
//! - **Which dimension drives** ([`ItemStatus::due_by`]): the one with the worst stage; on a
//!   tie, the one with the smallest share of its interval left (remaining ÷ interval length),
//!   then distance before time before engine hours.
//! - **Odometer below the interval's start** (a replaced cluster): more than a full interval
//!   remains, so the item is Ok until the next service resets the start.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rapport_shared::v1::downlink::MaintenanceItem;
use rapport_shared::{CivilDate, EngineHours, Odometer, Timestamp};

use crate::config::Maintenance;
use crate::memory::{ItemRecord, Stage};

use super::calendar;

#[cfg(test)]
mod tests;

/// What the engine needs to know about the car and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inputs {
    /// The current odometer, if one was ever read.
    pub(crate) odometer: Option<Odometer>,
    /// The current engine hours, if the car reports them.
    pub(crate) engine_hours: Option<EngineHours>,
    /// Now.
    pub(crate) now: Timestamp,
    /// The car's delivery date: time intervals before the first service count from it.
    pub(crate) delivered: CivilDate,
    /// The head unit's offset from UTC, minutes: due dates are local calendar dates.
    pub(crate) utc_offset_minutes: i32,
}

/// A dimension an item comes due in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DueBy {
    /// Distance driven.
    Distance,
    /// Calendar time.
    Time,
    /// Engine running time.
    EngineHours,
}

impl DueBy {}

/// Where one schedule item stands now.
///
/// Each dimension's `due_*` and `remaining_*` are `None` when that dimension does not apply
/// (the item has no such interval, or its input is unknown; see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStatus {
    /// The item's id.
    pub item: String,
    /// The worst stage over the item's dimensions ([`Stage::Ok`] when none applies).
    pub(crate) stage: Stage,
    /// The item's cycle: the number of services recorded for it (0: first interval).
    pub(crate) cycle: u32,
    /// This interval is the item's first-service interval: no service yet, and it has a
    /// `first_at_km` or `first_at_months`.
    pub(crate) first_service: bool,
    /// The odometer the item is due at.
    pub(crate) due_odometer: Option<Odometer>,
    /// When the item is due: local midnight of its due date.
    pub(crate) due_at: Option<Timestamp>,
    /// The engine hours the item is due at.
    pub(crate) due_engine_hours: Option<EngineHours>,
    /// Metres left until due (negative: past due).
    pub(crate) remaining_m: Option<i64>,
    /// Whole local days left until the due date (0 on the date, negative after it).
    pub(crate) remaining_days: Option<i64>,
    /// Engine seconds left until due (negative: past due).
    pub(crate) remaining_engine_s: Option<i64>,
    /// The dimension that drives [`Self::stage`] (the most urgent); `None` when no dimension
    /// applies.
    pub(crate) due_by: Option<DueBy>,
    /// How much of the driving dimension's interval is used, per mille: 0 at the interval's
    /// start, 1000 when due, more past due; `None` with [`Self::due_by`].
    pub(crate) used_permille: Option<i64>,
}

/// One dimension's standing.
#[derive(Debug, Clone, Copy)]
struct Dimension {
    by: DueBy,
    stage: Stage,
    /// Left until due, in the dimension's unit.
    remaining: i64,
    /// The interval's length in the same unit (at least 1).
    length: i64,
}

impl Dimension {
    /// More urgent first: worse stage, then less of the interval left.
    fn urgency(&self, other: &Self) -> Ordering {
        other.stage.cmp(&self.stage).then_with(|| {
            // remaining/length compared without division; lengths are positive.
            let a = i128::from(self.remaining) * i128::from(other.length);
            let b = i128::from(other.remaining) * i128::from(self.length);
            a.cmp(&b)
        })
    }

    fn used_permille(&self) -> i64 {
        let used = i128::from(self.length) - i128::from(self.remaining);
        saturate(used * 1000 / i128::from(self.length))
    }
}

/// `value` clamped into `i64`.
fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// The stage of one dimension with `remaining` left, a due-soon `window` and an overdue
/// `margin` (all in the dimension's unit, window and margin non-negative).
fn stage_of(remaining: i64, window: i64, margin: i64) -> Stage {
    if remaining > window {
        Stage::Ok
    } else if remaining > 0 {
        Stage::DueSoon
    } else if remaining == 0 || remaining > margin.saturating_neg() {
        Stage::Due
    } else {
        Stage::Overdue
    }
}

/// Where `item` stands, given its service `record`, the section's `policy` and `inputs`.
pub(crate) fn evaluate(
    item: &MaintenanceItem,
    record: &ItemRecord,
    policy: &Maintenance,
    inputs: &Inputs,
) -> ItemStatus {
    let mut status = ItemStatus {
        item: item.id.clone(),
        stage: Stage::Ok,
        cycle: record.services,
        first_service: record.last.is_none()
            && (item.first_at_km.is_some() || item.first_at_months.is_some()),
        due_odometer: None,
        due_at: None,
        due_engine_hours: None,
        remaining_m: None,
        remaining_days: None,
        remaining_engine_s: None,
        due_by: None,
        used_permille: None,
    };
    let mut dimensions: [Option<Dimension>; 3] = [None; 3];

    // Distance, in metres: (interval start, interval km).
    let distance = match record.last {
        None => item.first_at_km.or(item.every_km).map(|km| (0, km)),
        Some(last) => item
            .every_km
            .zip(last.odometer)
            .map(|(km, o)| (o.meters(), km)),
    };
    if let (Some((start, km)), Some(odometer)) = (distance, inputs.odometer) {
        let length = u64::from(km) * 1000;
        let due = start.saturating_add(length);
        let remaining = saturate(i128::from(due) - i128::from(odometer.meters()));
        status.due_odometer = Some(Odometer::from_meters(due));
        status.remaining_m = Some(remaining);
        dimensions[0] = Some(Dimension {
            by: DueBy::Distance,
            stage: stage_of(
                remaining,
                i64::from(item.due_soon_km.unwrap_or(0)) * 1000,
                i64::from(policy.overdue_km) * 1000,
            ),
            remaining,
            length: saturate(i128::from(length)).max(1),
        });
    }

    // Time, in local day numbers: (interval start, interval months).
    let offset = inputs.utc_offset_minutes;
    let time = match record.last {
        None => item
            .first_at_months
            .or(item.every_months)
            .map(|months| (calendar::days_from_civil(inputs.delivered), months)),
        Some(last) => item
            .every_months
            .map(|months| (calendar::local_day(last.at, offset), months)),
    };
    if let Some((start, months)) = time {
        let due = calendar::add_months_to_day(start, months);
        let remaining = due.saturating_sub(calendar::local_day(inputs.now, offset));
        status.due_at = Some(calendar::day_start(due, offset));
        status.remaining_days = Some(remaining);
        dimensions[1] = Some(Dimension {
            by: DueBy::Time,
            stage: stage_of(
                remaining,
                i64::from(item.due_soon_days.unwrap_or(0)),
                i64::from(policy.overdue_days),
            ),
            remaining,
            length: due.saturating_sub(start).max(1),
        });
    }

    // Engine hours, in seconds: (interval start, interval hours).
    let hours = match record.last {
        None => item.every_engine_hours.map(|h| (0, h)),
        Some(last) => item
            .every_engine_hours
            .zip(last.engine_hours)
            .map(|(h, e)| (e.secs(), h)),
    };
    if let (Some((start, h)), Some(now)) = (hours, inputs.engine_hours) {
        let length = u64::from(h) * 3600;
        let due = start.saturating_add(length);
        let remaining = saturate(i128::from(due) - i128::from(now.secs()));
        status.due_engine_hours = Some(EngineHours::from_secs(due));
        status.remaining_engine_s = Some(remaining);
        dimensions[2] = Some(Dimension {
            by: DueBy::EngineHours,
            stage: stage_of(
                remaining,
                i64::from(policy.due_soon_engine_hours) * 3600,
                i64::from(policy.overdue_engine_hours) * 3600,
            ),
            remaining,
            length: saturate(i128::from(length)).max(1),
        });
    }

    // The first most urgent wins a tie (min_by keeps the first minimum).
    if let Some(top) = dimensions.iter().flatten().min_by(|a, b| a.urgency(b)) {
        status.stage = top.stage;
        status.due_by = Some(top.by);
        status.used_permille = Some(top.used_permille());
    }
    status
}

/// Every item that needs attention (not [`Stage::Ok`]), most urgent first: Overdue, Due,
/// DueSoon, then by the share of the driving interval used (most first), then in schedule
/// order. Items without a record count as never serviced.
pub(crate) fn checklist(
    items: &[MaintenanceItem],
    records: &BTreeMap<String, ItemRecord>,
    policy: &Maintenance,
    inputs: &Inputs,
) -> Vec<ItemStatus> {
    let never = ItemRecord::default();
    let mut list: Vec<ItemStatus> = items
        .iter()
        .map(|item| {
            let record = records.get(&item.id).unwrap_or(&never);
            evaluate(item, record, policy, inputs)
        })
        .filter(|status| status.stage != Stage::Ok)
        .collect();
    // Stable: equal keys keep schedule order.
    list.sort_by(|a, b| {
        b.stage
            .cmp(&a.stage)
            .then_with(|| b.used_permille.cmp(&a.used_permille))
    });
    list
}
