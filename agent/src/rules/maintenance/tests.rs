//! The maintenance engine's tests: tables of odometer × date → stage for the typical items,
//! then properties over random schedules and histories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;
use crate::memory::LastService;

const KM: u64 = 1000;
const HOUR: u64 = 3600;

fn date(s: &str) -> CivilDate {
    CivilDate::parse(s).unwrap()
}

/// UTC midnight starting `s`.
fn midnight(s: &str) -> Timestamp {
    calendar::local_midnight(date(s), 0)
}

/// Noon UTC on `s`.
fn noon(s: &str) -> Timestamp {
    Timestamp::from_millis(midnight(s).as_millis() + 12 * HOUR * 1000)
}

/// The delivery date of the test car.
const DELIVERED: &str = "2024-01-15";

/// A car at `meters` on the odometer, at noon UTC on `today`, UTC head unit.
fn at(meters: Option<u64>, today: &str) -> Inputs {
    Inputs {
        odometer: meters.map(Odometer::from_meters),
        engine_hours: None,
        now: noon(today),
        delivered: date(DELIVERED),
        utc_offset_minutes: 0,
    }
}

/// The defaults: overdue 1,000 km / 30 days / 50 h past due, due soon 50 h before.
fn policy() -> Maintenance {
    Maintenance::default()
}

/// The example: oil every 10,000 km or 12 months, due soon 1,000 km / 30 days before.
fn oil() -> MaintenanceItem {
    MaintenanceItem {
        id: "oil".into(),
        every_km: Some(10_000),
        every_months: Some(12),
        due_soon_km: Some(1_000),
        due_soon_days: Some(30),
        ..MaintenanceItem::default()
    }
}

/// A one-off first service at 5,000 km or 6 months, due soon 500 km / 14 days before.
fn first_service() -> MaintenanceItem {
    MaintenanceItem {
        id: "first_service".into(),
        first_at_km: Some(5_000),
        first_at_months: Some(6),
        due_soon_km: Some(500),
        due_soon_days: Some(14),
        ..MaintenanceItem::default()
    }
}

/// Serviced `services` times, the last at noon UTC on `day` at `meters`.
fn serviced(services: u32, day: &str, meters: Option<u64>) -> ItemRecord {
    ItemRecord {
        services,
        last: Some(LastService {
            at: noon(day),
            odometer: meters.map(Odometer::from_meters),
            engine_hours: None,
        }),
        reported: None,
    }
}

fn never() -> ItemRecord {
    ItemRecord::default()
}

/// One row of a stage table: (odometer m, today, stage, driving dimension, why).
type Row = (u64, &'static str, Stage, DueBy, &'static str);

fn check_rows(item: &MaintenanceItem, record: &ItemRecord, rows: &[Row]) {
    for &(meters, today, stage, by, why) in rows {
        let s = evaluate(item, record, &policy(), &at(Some(meters), today));
        assert_eq!(
            (s.stage, s.due_by),
            (stage, Some(by)),
            "{} at {meters} m on {today}: {why}",
            item.id
        );
    }
}

#[test]
fn oil_comes_due_by_distance_or_time_whichever_first() {
    use DueBy::{Distance, Time};
    use Stage::{Due, DueSoon, Ok, Overdue};
    // Delivered 2024-01-15: due at 10,000 km or on 2025-01-15 (366 days, 2024 is leap).
    #[rustfmt::skip]
    let rows: &[Row] = &[
        (0,           "2024-01-15", Ok,      Distance, "new: full intervals, a tie goes to distance"),
        (8_999_999,   "2024-06-01", Ok,      Distance, "1,000.001 km left"),
        (9_000 * KM,  "2024-06-01", DueSoon, Distance, "exactly the window left"),
        (9_999_999,   "2024-06-01", DueSoon, Distance, "1 m left"),
        (10_000 * KM, "2024-06-01", Due,     Distance, "exactly at the due point"),
        (10_999_999,  "2024-06-01", Due,     Distance, "1 m short of the margin"),
        (11_000 * KM, "2024-06-01", Overdue, Distance, "the margin reached"),
        (5_000 * KM,  "2024-12-15", Ok,      Time,     "31 days left, half the km"),
        (5_000 * KM,  "2024-12-16", DueSoon, Time,     "30 days left"),
        (5_000 * KM,  "2025-01-14", DueSoon, Time,     "1 day left"),
        (5_000 * KM,  "2025-01-15", Due,     Time,     "the due date"),
        (5_000 * KM,  "2025-02-13", Due,     Time,     "29 days past"),
        (5_000 * KM,  "2025-02-14", Overdue, Time,     "30 days past"),
        (9_500 * KM,  "2025-01-20", Due,     Time,     "km due soon, time due: time drives"),
        (10_500 * KM, "2024-12-20", Due,     Distance, "km due, time due soon"),
        (11_500 * KM, "2025-01-20", Overdue, Distance, "km overdue, time due"),
    ];
    check_rows(&oil(), &never(), rows);

    let s = evaluate(
        &oil(),
        &never(),
        &policy(),
        &at(Some(9_200 * KM), "2024-12-01"),
    );
    assert_eq!(s.item, "oil");
    assert_eq!(s.cycle, 0);
    assert!(!s.first_service, "oil has no first_at_*");
    assert_eq!(s.due_odometer, Some(Odometer::from_km(10_000)));
    assert_eq!(s.due_at, Some(midnight("2025-01-15")));
    assert_eq!(s.remaining_m, Some(800_000));
    assert_eq!(s.remaining_days, Some(45));
    assert_eq!((s.due_engine_hours, s.remaining_engine_s), (None, None));
    // 800 of 10,000 km left: 920 ‰ used.
    assert_eq!(s.used_permille, Some(920));
}

#[test]
fn first_service_comes_due_at_5000_km_driven_fast_or_6_months_driven_slowly() {
    use DueBy::{Distance, Time};
    use Stage::{Due, DueSoon, Ok, Overdue};
    // Delivered 2024-01-15: due at 5,000 km or on 2024-07-15 (182 days).
    #[rustfmt::skip]
    let rows: &[Row] = &[
        // Driven fast: the distance comes first.
        (4_499_999,  "2024-03-01", Ok,      Distance, "500.001 km left"),
        (4_500 * KM, "2024-03-01", DueSoon, Distance, "500 km left"),
        (5_000 * KM, "2024-03-01", Due,     Distance, "at 5,000 km, after 6 weeks"),
        (5_999_999,  "2024-03-01", Due,     Distance, "within the margin"),
        (6_000 * KM, "2024-03-01", Overdue, Distance, "1,000 km past"),
        // Driven slowly: the months come first.
        (2_000 * KM, "2024-06-30", Ok,      Time,     "15 days left"),
        (2_000 * KM, "2024-07-01", DueSoon, Time,     "14 days left"),
        (2_000 * KM, "2024-07-15", Due,     Time,     "6 months, only 2,000 km"),
        (2_000 * KM, "2024-08-14", Overdue, Time,     "30 days past"),
    ];
    check_rows(&first_service(), &never(), rows);
    let s = evaluate(
        &first_service(),
        &never(),
        &policy(),
        &at(Some(0), DELIVERED),
    );
    assert!(s.first_service);
    assert_eq!(s.due_odometer, Some(Odometer::from_km(5_000)));
    assert_eq!(s.due_at, Some(midnight("2024-07-15")));
}

#[test]
fn a_one_off_first_service_is_done_once_serviced() {
    let record = serviced(1, "2024-07-10", Some(4_900 * KM));
    // Years and many km later: nothing left to count.
    let s = evaluate(
        &first_service(),
        &record,
        &policy(),
        &at(Some(100_000 * KM), "2034-01-01"),
    );
    assert_eq!(s.stage, Stage::Ok);
    assert_eq!(s.cycle, 1);
    assert!(!s.first_service);
    assert_eq!(s.due_by, None);
    assert_eq!(s.used_permille, None);
    assert_eq!(
        (s.due_odometer, s.due_at, s.due_engine_hours),
        (None, None, None)
    );
    assert_eq!((s.remaining_m, s.remaining_days), (None, None));
}

#[test]
fn first_at_km_with_every_months_then_every_km_after_the_first_service() {
    // First at 1,000 km (no first_at_months: 12 months from delivery), then every 15,000 km
    // or 12 months.
    let item = MaintenanceItem {
        id: "oil".into(),
        first_at_km: Some(1_000),
        every_km: Some(15_000),
        every_months: Some(12),
        due_soon_km: Some(200),
        ..MaintenanceItem::default()
    };
    let s = evaluate(
        &item,
        &never(),
        &policy(),
        &at(Some(850 * KM), "2024-02-01"),
    );
    assert!(s.first_service);
    assert_eq!(s.stage, Stage::DueSoon);
    assert_eq!(s.due_odometer, Some(Odometer::from_km(1_000)));
    assert_eq!(s.due_at, Some(midnight("2025-01-15")));

    let done = serviced(1, "2024-02-10", Some(1_050 * KM));
    let s = evaluate(&item, &done, &policy(), &at(Some(1_100 * KM), "2024-02-11"));
    assert!(!s.first_service);
    assert_eq!((s.stage, s.cycle), (Stage::Ok, 1));
    assert_eq!(s.due_odometer, Some(Odometer::from_km(16_050)));
    assert_eq!(s.due_at, Some(midnight("2025-02-10")));
}

#[test]
fn a_recorded_service_resets_the_interval_from_the_service() {
    // Before: due soon at 9,600 km on 2024-11-20 (400 km left).
    let before = evaluate(
        &oil(),
        &never(),
        &policy(),
        &at(Some(9_600 * KM), "2024-11-20"),
    );
    assert_eq!((before.stage, before.cycle), (Stage::DueSoon, 0));

    // Serviced then: the next one counts from 9,600 km and 2024-11-20.
    let record = serviced(1, "2024-11-20", Some(9_600 * KM));
    let s = evaluate(
        &oil(),
        &record,
        &policy(),
        &at(Some(9_700 * KM), "2024-11-21"),
    );
    assert_eq!((s.stage, s.cycle), (Stage::Ok, 1));
    assert_eq!(s.due_odometer, Some(Odometer::from_km(19_600)));
    assert_eq!(s.due_at, Some(midnight("2025-11-20")));
    assert_eq!(s.remaining_m, Some(9_900_000));
    assert_eq!(s.remaining_days, Some(364));

    // The new cycle runs through its own stages.
    let s = evaluate(
        &oil(),
        &record,
        &policy(),
        &at(Some(19_600 * KM), "2025-06-01"),
    );
    assert_eq!(
        (s.stage, s.due_by, s.cycle),
        (Stage::Due, Some(DueBy::Distance), 1)
    );

    // A late service counts from when it was done, not from the missed due point.
    let late = serviced(2, "2026-03-01", Some(31_000 * KM));
    let s = evaluate(
        &oil(),
        &late,
        &policy(),
        &at(Some(31_000 * KM), "2026-03-01"),
    );
    assert_eq!((s.stage, s.cycle), (Stage::Ok, 2));
    assert_eq!(s.due_odometer, Some(Odometer::from_km(41_000)));
    assert_eq!(s.due_at, Some(midnight("2027-03-01")));
}

#[test]
fn unknown_odometers_skip_the_distance() {
    // No odometer read yet: only time counts.
    let s = evaluate(&oil(), &never(), &policy(), &at(None, "2024-12-20"));
    assert_eq!((s.stage, s.due_by), (Stage::DueSoon, Some(DueBy::Time)));
    assert_eq!((s.due_odometer, s.remaining_m), (None, None));

    // A service without an odometer: distance is skipped until the next service, even far
    // past any plausible due point; time still counts from the service.
    let record = serviced(1, "2024-06-01", None);
    let s = evaluate(
        &oil(),
        &record,
        &policy(),
        &at(Some(90_000 * KM), "2024-07-01"),
    );
    assert_eq!((s.stage, s.due_by), (Stage::Ok, Some(DueBy::Time)));
    assert_eq!((s.due_odometer, s.remaining_m), (None, None));
    assert_eq!(s.due_at, Some(midnight("2025-06-01")));

    // A distance-only item with nothing to count: Ok, driven by nothing.
    let tyres = MaintenanceItem {
        id: "tyres".into(),
        every_km: Some(40_000),
        ..MaintenanceItem::default()
    };
    let s = evaluate(&tyres, &never(), &policy(), &at(None, "2030-01-01"));
    assert_eq!((s.stage, s.due_by), (Stage::Ok, None));
}

/// A truck at `seconds` of engine time, 2024-06-01, odometer unknown.
fn truck(seconds: Option<u64>) -> Inputs {
    Inputs {
        engine_hours: seconds.map(EngineHours::from_secs),
        ..at(None, "2024-06-01")
    }
}

#[test]
fn a_truck_item_comes_due_by_engine_hours() {
    use Stage::{Due, DueSoon, Ok, Overdue};
    let item = MaintenanceItem {
        id: "engine_oil".into(),
        every_engine_hours: Some(500),
        ..MaintenanceItem::default()
    };
    // Default policy: due soon 50 h before, overdue 50 h after.
    let rows = [
        (449 * HOUR, Ok, "51 h left"),
        (450 * HOUR, DueSoon, "50 h left: the window"),
        (500 * HOUR - 1, DueSoon, "1 s left"),
        (500 * HOUR, Due, "at 500 h"),
        (550 * HOUR - 1, Due, "within the margin"),
        (550 * HOUR, Overdue, "50 h past"),
    ];
    for (seconds, stage, why) in rows {
        let s = evaluate(&item, &never(), &policy(), &truck(Some(seconds)));
        assert_eq!(
            (s.stage, s.due_by),
            (stage, Some(DueBy::EngineHours)),
            "{seconds} s: {why}"
        );
        assert_eq!(s.due_engine_hours, Some(EngineHours::from_secs(500 * HOUR)));
        assert_eq!(s.remaining_engine_s, Some(500 * 3600 - seconds as i64));
    }

    // Engine hours unknown: nothing to count.
    let s = evaluate(&item, &never(), &policy(), &truck(None));
    assert_eq!(
        (s.stage, s.due_by, s.due_engine_hours),
        (Stage::Ok, None, None)
    );

    // Serviced at 510 h: next at 1,010 h.
    let record = ItemRecord {
        services: 1,
        last: Some(LastService {
            at: noon("2024-05-01"),
            odometer: None,
            engine_hours: Some(EngineHours::from_secs(510 * HOUR)),
        }),
        reported: None,
    };
    let s = evaluate(&item, &record, &policy(), &truck(Some(600 * HOUR)));
    assert_eq!((s.stage, s.cycle), (Stage::Ok, 1));
    assert_eq!(
        s.due_engine_hours,
        Some(EngineHours::from_secs(1_010 * HOUR))
    );
    assert_eq!(s.remaining_engine_s, Some(410 * 3600));

    // The policy's windows apply: due soon 100 h before, overdue 10 h after.
    let tight = Maintenance {
        due_soon_engine_hours: 100,
        overdue_engine_hours: 10,
        ..policy()
    };
    let stage = |h: u64| evaluate(&item, &never(), &tight, &truck(Some(h * HOUR))).stage;
    assert_eq!(stage(399), Ok);
    assert_eq!(stage(400), DueSoon);
    assert_eq!(stage(509), Due);
    assert_eq!(stage(510), Overdue);
}

#[test]
fn engine_hours_or_months_whichever_first() {
    let item = MaintenanceItem {
        id: "engine_oil".into(),
        every_engine_hours: Some(500),
        every_months: Some(12),
        ..MaintenanceItem::default()
    };
    // Delivered 2024-01-15. Idle truck: 100 h after a year.
    let mut idle = truck(Some(100 * HOUR));
    idle.now = noon("2025-01-15");
    let s = evaluate(&item, &never(), &policy(), &idle);
    assert_eq!((s.stage, s.due_by), (Stage::Due, Some(DueBy::Time)));
    // Busy truck: 520 h after 4 months.
    let mut busy = truck(Some(520 * HOUR));
    busy.now = noon("2024-05-15");
    let s = evaluate(&item, &never(), &policy(), &busy);
    assert_eq!((s.stage, s.due_by), (Stage::Due, Some(DueBy::EngineHours)));
}

#[test]
fn months_clamp_to_the_end_of_shorter_months() {
    let monthly = MaintenanceItem {
        id: "check".into(),
        every_months: Some(1),
        due_soon_days: Some(3),
        ..MaintenanceItem::default()
    };
    let inputs = |delivered: &str, today: &str| Inputs {
        delivered: date(delivered),
        ..at(None, today)
    };
    // Delivered Jan 31 of a leap year: due Feb 29.
    let s = evaluate(
        &monthly,
        &never(),
        &policy(),
        &inputs("2024-01-31", "2024-02-28"),
    );
    assert_eq!(s.due_at, Some(midnight("2024-02-29")));
    assert_eq!((s.stage, s.remaining_days), (Stage::DueSoon, Some(1)));
    let s = evaluate(
        &monthly,
        &never(),
        &policy(),
        &inputs("2024-01-31", "2024-02-29"),
    );
    assert_eq!((s.stage, s.remaining_days), (Stage::Due, Some(0)));
    // Serviced Jan 31 of a common year: due Feb 28.
    let record = serviced(3, "2025-01-31", None);
    let s = evaluate(
        &monthly,
        &record,
        &policy(),
        &inputs("2024-01-31", "2025-02-01"),
    );
    assert_eq!(s.due_at, Some(midnight("2025-02-28")));
    // A first service one month after delivery on Jan 31, 2023.
    let first = MaintenanceItem {
        id: "first".into(),
        first_at_months: Some(1),
        ..MaintenanceItem::default()
    };
    let s = evaluate(
        &first,
        &never(),
        &policy(),
        &inputs("2023-01-31", "2023-02-01"),
    );
    assert_eq!(s.due_at, Some(midnight("2023-02-28")));
    assert!(s.first_service);
}

#[test]
fn due_dates_are_local_calendar_dates() {
    // 20:00 UTC on 2025-01-14, the day before oil is due by time (odometer unknown).
    let evening = Timestamp::from_millis(midnight("2025-01-14").as_millis() + 20 * HOUR * 1000);
    let with_offset = |minutes: i32| Inputs {
        now: evening,
        utc_offset_minutes: minutes,
        ..at(None, DELIVERED)
    };
    // UTC+8: already 04:00 on the 15th, the due date; due from 16:00 UTC on the 14th.
    let s = evaluate(&oil(), &never(), &policy(), &with_offset(8 * 60));
    assert_eq!((s.stage, s.remaining_days), (Stage::Due, Some(0)));
    assert_eq!(
        s.due_at,
        Some(Timestamp::from_millis(
            midnight("2025-01-15").as_millis() - 8 * HOUR * 1000
        ))
    );
    // UTC and UTC-5: still the 14th.
    for minutes in [0, -5 * 60] {
        let s = evaluate(&oil(), &never(), &policy(), &with_offset(minutes));
        assert_eq!(
            (s.stage, s.remaining_days),
            (Stage::DueSoon, Some(1)),
            "{minutes}"
        );
    }

    // A service at 20:00 UTC on 2024-03-31 is on April 1st in UTC+8.
    let record = ItemRecord {
        services: 1,
        last: Some(LastService {
            at: Timestamp::from_millis(midnight("2024-03-31").as_millis() + 20 * HOUR * 1000),
            odometer: None,
            engine_hours: None,
        }),
        reported: None,
    };
    let s = evaluate(&oil(), &record, &policy(), &with_offset(8 * 60));
    assert_eq!(
        s.due_at,
        Some(calendar::local_midnight(date("2025-04-01"), 8 * 60))
    );
    let s = evaluate(&oil(), &record, &policy(), &with_offset(0));
    assert_eq!(s.due_at, Some(midnight("2025-03-31")));
}

#[test]
fn with_no_overdue_margin_the_due_point_is_still_due() {
    let strict = Maintenance {
        overdue_km: 0,
        overdue_days: 0,
        ..policy()
    };
    let stage = |meters: u64, today: &str| {
        evaluate(&oil(), &never(), &strict, &at(Some(meters), today)).stage
    };
    assert_eq!(stage(10_000 * KM, "2024-06-01"), Stage::Due);
    assert_eq!(stage(10_000 * KM + 1, "2024-06-01"), Stage::Overdue);
    assert_eq!(stage(0, "2025-01-15"), Stage::Due);
    assert_eq!(stage(0, "2025-01-16"), Stage::Overdue);
}

#[test]
fn checklist_lists_items_needing_attention_most_urgent_first() {
    let km = |id: &str, every: u32, soon: Option<u32>| MaintenanceItem {
        id: id.into(),
        every_km: Some(every),
        due_soon_km: soon,
        ..MaintenanceItem::default()
    };
    let items = vec![
        km("filter", 30_000, Some(1_000)), // 19,500 km left: Ok, not listed
        km("tyres", 12_000, Some(2_000)),  // 1,500 km left: DueSoon
        km("spark_plugs", 10_000, Some(1_000)), // 500 km past: Due, 1,050 ‰
        km("oil", 10_000, Some(1_000)),    // the same as spark_plugs: keeps schedule order
        MaintenanceItem {
            // Delivered 2023-01-10: due 2025-01-10 (731 days), 50 days past: Overdue, 1,068 ‰
            id: "brake_fluid".into(),
            every_months: Some(24),
            ..MaintenanceItem::default()
        },
        km("coolant", 5_000, None), // serviced at 4,000 km: 1,500 km past, Overdue, 1,300 ‰
    ];
    let records = BTreeMap::from([(
        "coolant".to_string(),
        serviced(1, "2024-06-01", Some(4_000 * KM)),
    )]);
    let inputs = Inputs {
        delivered: date("2023-01-10"),
        ..at(Some(10_500 * KM), "2025-03-01")
    };
    let list = checklist(&items, &records, &policy(), &inputs);
    let got: Vec<(&str, Stage, Option<i64>)> = list
        .iter()
        .map(|s| (s.item.as_str(), s.stage, s.used_permille))
        .collect();
    assert_eq!(
        got,
        [
            ("coolant", Stage::Overdue, Some(1_300)),
            ("brake_fluid", Stage::Overdue, Some(1_068)),
            ("spark_plugs", Stage::Due, Some(1_050)),
            ("oil", Stage::Due, Some(1_050)),
            ("tyres", Stage::DueSoon, Some(875)),
        ]
    );
    assert_eq!(list[0].cycle, 1);

    // All fine: an empty checklist.
    let fresh = at(Some(0), "2023-01-10");
    assert!(checklist(&items, &BTreeMap::new(), &policy(), &fresh).is_empty());
}

// ---- Properties ----

fn opt<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn any_item() -> impl Strategy<Value = MaintenanceItem> {
    (
        (opt(1u32..50_000), opt(1u32..60), opt(1u32..2_000)),
        (opt(1u32..50_000), opt(1u32..60)),
        (opt(0u32..5_000), opt(0u32..400)),
    )
        .prop_map(
            |(
                (every_km, every_months, every_engine_hours),
                (first_at_km, first_at_months),
                (due_soon_km, due_soon_days),
            )| MaintenanceItem {
                id: "item".into(),
                every_km,
                every_months,
                every_engine_hours,
                first_at_km,
                first_at_months,
                due_soon_km,
                due_soon_days,
            },
        )
}

/// Day numbers from 2000 to 2040.
const DAYS: core::ops::Range<i64> = 10_957..25_567;

fn any_record() -> impl Strategy<Value = ItemRecord> {
    (
        0u32..5,
        opt((DAYS, opt(0u64..300_000_000), opt(0u64..10_000_000))),
    )
        .prop_map(|(services, last)| ItemRecord {
            services: services + u32::from(last.is_some()),
            last: last.map(|(day, odometer, engine_hours)| LastService {
                at: calendar::day_start(day, 0),
                odometer: odometer.map(Odometer::from_meters),
                engine_hours: engine_hours.map(EngineHours::from_secs),
            }),
            reported: None,
        })
}

fn any_policy() -> impl Strategy<Value = Maintenance> {
    (0u32..5_000, 0u32..100, 0u32..200, 0u32..200).prop_map(|(km, days, oh, sh)| Maintenance {
        items: Vec::new(),
        overdue_km: km,
        overdue_days: days,
        overdue_engine_hours: oh,
        due_soon_engine_hours: sh,
    })
}

fn any_inputs() -> impl Strategy<Value = Inputs> {
    (
        opt(0u64..400_000_000),
        opt(0u64..20_000_000),
        0u64..40 * 365 * 86_400_000,
        DAYS,
        -14 * 60..=14 * 60,
    )
        .prop_map(|(odometer, engine_hours, ms, delivered, offset)| Inputs {
            odometer: odometer.map(Odometer::from_meters),
            engine_hours: engine_hours.map(EngineHours::from_secs),
            now: Timestamp::from_millis(midnight("2000-01-01").as_millis() + ms),
            delivered: calendar::civil_from_days(delivered).unwrap(),
            utc_offset_minutes: offset,
        })
}

proptest! {
    #[test]
    fn stage_never_improves_as_the_odometer_grows(
        item in any_item(), record in any_record(), policy in any_policy(),
        inputs in any_inputs(), odometer in 0u64..400_000_000, more in 0u64..100_000_000,
    ) {
        let a = Inputs { odometer: Some(Odometer::from_meters(odometer)), ..inputs };
        let b = Inputs { odometer: Some(Odometer::from_meters(odometer + more)), ..inputs };
        let (sa, sb) = (evaluate(&item, &record, &policy, &a), evaluate(&item, &record, &policy, &b));
        prop_assert!(sa.stage <= sb.stage, "{:?} then {:?}", sa, sb);
    }

    #[test]
    fn stage_never_improves_as_time_passes(
        item in any_item(), record in any_record(), policy in any_policy(),
        inputs in any_inputs(), later_ms in 0u64..10 * 365 * 86_400_000,
    ) {
        let b = Inputs { now: Timestamp::from_millis(inputs.now.as_millis() + later_ms), ..inputs };
        let (sa, sb) = (evaluate(&item, &record, &policy, &inputs), evaluate(&item, &record, &policy, &b));
        prop_assert!(sa.stage <= sb.stage, "{:?} then {:?}", sa, sb);
    }

    #[test]
    fn stage_never_improves_as_the_engine_runs(
        item in any_item(), record in any_record(), policy in any_policy(),
        inputs in any_inputs(), secs in 0u64..20_000_000, more in 0u64..5_000_000,
    ) {
        let a = Inputs { engine_hours: Some(EngineHours::from_secs(secs)), ..inputs };
        let b = Inputs { engine_hours: Some(EngineHours::from_secs(secs + more)), ..inputs };
        let (sa, sb) = (evaluate(&item, &record, &policy, &a), evaluate(&item, &record, &policy, &b));
        prop_assert!(sa.stage <= sb.stage, "{:?} then {:?}", sa, sb);
    }

    #[test]
    fn remaining_values_match_the_due_points(
        item in any_item(), record in any_record(), policy in any_policy(), inputs in any_inputs(),
    ) {
        let s = evaluate(&item, &record, &policy, &inputs);
        prop_assert_eq!(s.cycle, record.services);
        if let (Some(due), Some(left)) = (s.due_odometer, s.remaining_m) {
            let now = inputs.odometer.map(Odometer::meters).unwrap_or_default();
            prop_assert_eq!(i128::from(due.meters()) - i128::from(now), i128::from(left));
        }
        if let (Some(due), Some(left)) = (s.due_at, s.remaining_days) {
            let off = inputs.utc_offset_minutes;
            prop_assert_eq!(calendar::local_day(due, off) - calendar::local_day(inputs.now, off), left);
            prop_assert_eq!(calendar::minute_of_day(due, off), 0);
            // Due from the due date's midnight: Due or worse from then on, never before.
            prop_assert_eq!(inputs.now >= due, left <= 0);
        }
        if let (Some(due), Some(left)) = (s.due_engine_hours, s.remaining_engine_s) {
            let now = inputs.engine_hours.map(EngineHours::secs).unwrap_or_default();
            prop_assert_eq!(i128::from(due.secs()) - i128::from(now), i128::from(left));
        }
        // Each dimension is reported whole or not at all.
        prop_assert_eq!(s.due_odometer.is_some(), s.remaining_m.is_some());
        prop_assert_eq!(s.due_at.is_some(), s.remaining_days.is_some());
        prop_assert_eq!(s.due_engine_hours.is_some(), s.remaining_engine_s.is_some());
        // The driving dimension is one that applies; none applies: Ok.
        match s.due_by {
            None => {
                prop_assert_eq!(s.stage, Stage::Ok);
                prop_assert_eq!(s.used_permille, None);
                prop_assert!(s.remaining_m.is_none() && s.remaining_days.is_none() && s.remaining_engine_s.is_none());
            }
            Some(DueBy::Distance) => prop_assert!(s.remaining_m.is_some()),
            Some(DueBy::Time) => prop_assert!(s.remaining_days.is_some()),
            Some(DueBy::EngineHours) => prop_assert!(s.remaining_engine_s.is_some()),
        }
        // Past due in any dimension means at least Due.
        let past = [s.remaining_m, s.remaining_days, s.remaining_engine_s]
            .iter()
            .flatten()
            .any(|&left| left <= 0);
        prop_assert_eq!(past, s.stage >= Stage::Due);
    }

    #[test]
    fn checklist_is_every_item_not_ok_most_urgent_first(
        items in proptest::collection::vec(any_item(), 0..8),
        records in proptest::collection::vec(any_record(), 8),
        policy in any_policy(), inputs in any_inputs(),
    ) {
        let items: Vec<MaintenanceItem> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| MaintenanceItem { id: format!("item{i}"), ..item })
            .collect();
        let records: BTreeMap<String, ItemRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("item{i}"), r))
            .collect();
        let list = checklist(&items, &records, &policy, &inputs);
        let wanted: Vec<String> = items
            .iter()
            .filter(|item| evaluate(item, &records[&item.id], &policy, &inputs).stage != Stage::Ok)
            .map(|item| item.id.clone())
            .collect();
        let mut got: Vec<String> = list.iter().map(|s| s.item.clone()).collect();
        got.sort_by_key(|id| items.iter().position(|item| &item.id == id));
        prop_assert_eq!(got, wanted);
        for pair in list.windows(2) {
            let key = |s: &ItemStatus| (s.stage, s.used_permille);
            prop_assert!(key(&pair[0]) >= key(&pair[1]), "{:?} before {:?}", pair[0], pair[1]);
        }
    }
}
