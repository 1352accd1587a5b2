//! Civil-calendar arithmetic for the rules, without a date crate: [`CivilDate`]s ↔ day numbers
//! (on [`rapport_shared::calendar`]'s arithmetic), the local day and time of day of a
//! [`Timestamp`] under a fixed UTC offset, local midnights, and adding calendar months.
//!
//! A *day number* is the count of days since 1970-01-01 (negative before it), the same number
//! [`crate::memory::ShowCounts::day`] stores. A local day is the day number of the civil date
//! on a wall clock `utc_offset_minutes` ahead of UTC.
//!
//! Owns: the arithmetic. Does not own: time zones with daylight saving (the head unit's
//! offset is one fixed number in `[prompts]`), nor parsing dates ([`CivilDate::parse`]).
//! Every function here is total: timestamps saturate at the ends of `u64` milliseconds, and
//! dates outside [`CivilDate`]'s 1970–9999 come back as `None`.

use rapport_shared::{CivilDate, Timestamp, calendar};

/// Milliseconds in a day.
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// Minutes in a day.
pub(crate) const MINUTES_PER_DAY: u16 = 1_440;

/// The years a [`CivilDate`] may hold.
const YEARS: core::ops::RangeInclusive<i64> = calendar::MIN_YEAR as i64..=calendar::MAX_YEAR as i64;

/// Whether `year` is a Gregorian leap year.
pub(crate) const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1–12) of `year`; 0 for a month outside 1–12.
pub(crate) const fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The day number of `date` (days since 1970-01-01).
pub(crate) fn days_from_civil(date: CivilDate) -> i64 {
    calendar::days_from_civil(i64::from(date.year), date.month, date.day)
}

/// The civil date of day number `day`; `None` outside the years 1970–9999.
pub(crate) fn civil_from_days(day: i64) -> Option<CivilDate> {
    let (year, month, day) = calendar::civil_from_days(day);
    if !YEARS.contains(&year) {
        return None;
    }
    Some(CivilDate {
        year: u16::try_from(year).ok()?,
        month,
        day,
    })
}

/// The day number `months` calendar months after day number `day`, with the day of month
/// clamped to the target month's length (Jan 31 + 1 month = Feb 28, or 29 in a leap year).
pub(crate) fn add_months_to_day(day: i64, months: u32) -> i64 {
    let (y, m, d) = calendar::civil_from_days(day);
    let total = y * 12 + i64::from(m) - 1 + i64::from(months);
    let year = total.div_euclid(12);
    // rem_euclid(12) is in 0..12.
    let month = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
    let d = d.min(days_in_month(year, month));
    calendar::days_from_civil(year, month, d)
}

/// `date` plus `months` calendar months, the day clamped to the month's length
/// (Jan 31 + 1 month = Feb 28/29); `None` past the year 9999.
#[cfg(test)]
pub(crate) fn add_months(date: CivilDate, months: u32) -> Option<CivilDate> {
    civil_from_days(add_months_to_day(days_from_civil(date), months))
}

/// Milliseconds of `at` on a wall clock `utc_offset_minutes` ahead of UTC (may be negative
/// near the epoch).
fn local_ms(at: Timestamp, utc_offset_minutes: i32) -> i128 {
    i128::from(at.as_millis()) + i128::from(utc_offset_minutes) * 60_000
}

/// The local day number of `at` under `utc_offset_minutes`.
pub(crate) fn local_day(at: Timestamp, utc_offset_minutes: i32) -> i64 {
    let day = local_ms(at, utc_offset_minutes).div_euclid(i128::from(MS_PER_DAY));
    // |day| < 2^64 / 86_400_000 + 2^31: always fits.
    i64::try_from(day).unwrap_or(i64::MAX)
}

/// The local civil date of `at` under `utc_offset_minutes`; `None` past the year 9999.
pub fn local_date(at: Timestamp, utc_offset_minutes: i32) -> Option<CivilDate> {
    civil_from_days(local_day(at, utc_offset_minutes))
}

/// The instant local day number `day` starts (its local midnight) under `utc_offset_minutes`,
/// saturating at [`Timestamp::EPOCH`] and at the largest timestamp.
pub(crate) fn day_start(day: i64, utc_offset_minutes: i32) -> Timestamp {
    let ms = i128::from(day) * i128::from(MS_PER_DAY) - i128::from(utc_offset_minutes) * 60_000;
    let ms = u64::try_from(ms.max(0)).unwrap_or(u64::MAX);
    Timestamp::from_millis(ms)
}

/// The instant `date` starts (its local midnight) under `utc_offset_minutes`, saturating as
/// [`day_start`] does.
#[cfg(test)]
pub(crate) fn local_midnight(date: CivilDate, utc_offset_minutes: i32) -> Timestamp {
    day_start(days_from_civil(date), utc_offset_minutes)
}

/// Whole days (24 h) from `from` to `to`, rounded toward minus infinity: negative when `to`
/// is earlier (one millisecond before is −1).
pub(crate) fn whole_days_between(from: Timestamp, to: Timestamp) -> i64 {
    let ms = i128::from(to.as_millis()) - i128::from(from.as_millis());
    // |ms| < 2^64: the quotient fits.
    i64::try_from(ms.div_euclid(i128::from(MS_PER_DAY))).unwrap_or(i64::MAX)
}

/// Minutes since local midnight of `at` under `utc_offset_minutes` (0–1439), for quiet hours.
pub(crate) fn minute_of_day(at: Timestamp, utc_offset_minutes: i32) -> u16 {
    let minutes = local_ms(at, utc_offset_minutes)
        .div_euclid(60_000)
        .rem_euclid(i128::from(MINUTES_PER_DAY));
    // rem_euclid(1440) is in 0..1440.
    u16::try_from(minutes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(year: u16, month: u8, day: u8) -> CivilDate {
        CivilDate { year, month, day }
    }

    /// 2024-03-10T12:34:56.789Z
    const MID_MARCH: u64 = 1_710_074_096_789;

    #[test]
    fn known_day_numbers() {
        let cases = [
            (date(1970, 1, 1), 0),
            (date(2000, 2, 29), 11_016),
            (date(2000, 3, 1), 11_017),
            (date(2024, 3, 10), 19_792),
            (date(9999, 12, 31), 2_932_896),
        ];
        for (d, n) in cases {
            assert_eq!(days_from_civil(d), n, "{d}");
            assert_eq!(civil_from_days(n), Some(d), "{n}");
        }
    }

    #[test]
    fn civil_from_days_outside_1970_9999_is_none() {
        // Before 1970 the arithmetic still counts, but no CivilDate holds the date.
        assert_eq!(days_from_civil(date(1969, 12, 31)), -1);
        assert_eq!(days_from_civil(date(1900, 1, 1)), -25_567);
        assert_eq!(civil_from_days(-1), None); // 1969-12-31
        assert_eq!(civil_from_days(2_932_897), None); // 10000-01-01
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28); // divisible by 100, not by 400
        assert_eq!(days_in_month(2000, 2), 29); // divisible by 400
        assert_eq!(days_in_month(2024, 4), 30);
        assert_eq!(days_in_month(2024, 12), 31);
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn add_months_clamps_the_day() {
        let cases = [
            // (start, months, expected)
            (date(2023, 1, 31), 1, date(2023, 2, 28)), // not a leap year
            (date(2024, 1, 31), 1, date(2024, 2, 29)), // leap year
            (date(2024, 1, 31), 2, date(2024, 3, 31)), // clamping is per target, not carried
            (date(2024, 3, 31), 1, date(2024, 4, 30)),
            (date(2024, 2, 29), 12, date(2025, 2, 28)),
            (date(2024, 2, 29), 48, date(2028, 2, 29)),
            (date(2024, 11, 15), 2, date(2025, 1, 15)), // across a year end
            (date(2024, 5, 5), 0, date(2024, 5, 5)),
            (date(2024, 5, 5), 120, date(2034, 5, 5)),
        ];
        for (start, months, expected) in cases {
            assert_eq!(
                add_months(start, months),
                Some(expected),
                "{start} + {months}"
            );
        }
        assert_eq!(add_months(date(9999, 12, 1), 1), None);
    }

    #[test]
    fn local_day_and_time_follow_the_offset() {
        let at = Timestamp::from_millis(MID_MARCH); // 12:34 UTC on 2024-03-10
        assert_eq!(local_date(at, 0), Some(date(2024, 3, 10)));
        assert_eq!(minute_of_day(at, 0), 12 * 60 + 34);
        // UTC+12: 00:34 the next day.
        assert_eq!(local_date(at, 12 * 60), Some(date(2024, 3, 11)));
        assert_eq!(minute_of_day(at, 12 * 60), 34);
        // UTC-13: 23:34 the day before.
        assert_eq!(local_date(at, -13 * 60), Some(date(2024, 3, 9)));
        assert_eq!(minute_of_day(at, -13 * 60), 23 * 60 + 34);
        // Before the epoch in local time.
        assert_eq!(local_day(Timestamp::EPOCH, -60), -1);
        assert_eq!(minute_of_day(Timestamp::EPOCH, -60), 23 * 60);
    }

    #[test]
    fn local_midnight_is_the_start_of_the_local_day() {
        let d = date(2024, 3, 10);
        let utc = local_midnight(d, 0);
        assert_eq!(utc, Timestamp::from_secs(1_710_028_800));
        // UTC+8: local midnight is 16:00 UTC the day before.
        let east = local_midnight(d, 8 * 60);
        assert_eq!(east, Timestamp::from_secs(1_710_028_800 - 8 * 3600));
        assert_eq!(local_date(east, 8 * 60), Some(d));
        assert_eq!(minute_of_day(east, 8 * 60), 0);
        // One millisecond earlier is the previous local day.
        let before = Timestamp::from_millis(east.as_millis() - 1);
        assert_eq!(local_date(before, 8 * 60), Some(date(2024, 3, 9)));
        // Saturates rather than wrapping before the epoch.
        assert_eq!(local_midnight(date(1950, 1, 1), 0), Timestamp::EPOCH);
    }

    #[test]
    fn whole_days_round_down() {
        let t = Timestamp::from_millis(MID_MARCH);
        let plus = |ms: u64| Timestamp::from_millis(MID_MARCH + ms);
        assert_eq!(whole_days_between(t, t), 0);
        assert_eq!(whole_days_between(t, plus(86_399_999)), 0);
        assert_eq!(whole_days_between(t, plus(86_400_000)), 1);
        assert_eq!(whole_days_between(plus(1), t), -1);
        assert_eq!(whole_days_between(plus(86_400_000), t), -1);
    }

    fn any_date() -> impl Strategy<Value = CivilDate> {
        (1970u16..=9999, 1u8..=12, 1u8..=31).prop_map(|(year, month, day)| CivilDate {
            year,
            month,
            day: day.min(days_in_month(i64::from(year), month)),
        })
    }

    proptest! {
        #[test]
        fn civil_days_round_trip(d in any_date()) {
            prop_assert_eq!(civil_from_days(days_from_civil(d)), Some(d));
        }

        #[test]
        fn consecutive_days_are_consecutive_dates(n in 0i64..2_932_896) {
            let (Some(a), Some(b)) = (civil_from_days(n), civil_from_days(n + 1)) else {
                return Err(TestCaseError::fail("in range"));
            };
            prop_assert!(a < b);
            if a.month == b.month {
                prop_assert_eq!(a.day + 1, b.day);
            } else {
                prop_assert_eq!(a.day, days_in_month(i64::from(a.year), a.month));
                prop_assert_eq!(b.day, 1);
            }
        }

        #[test]
        fn add_months_is_monotonic(d in any_date(), m in 0u32..2_400, k in 0u32..2_400) {
            let start = days_from_civil(d);
            let a = add_months_to_day(start, m);
            let b = add_months_to_day(start, m + k);
            prop_assert!(a <= b);
            prop_assert!(a >= start);
            // Each month adds 28 to 31 days.
            prop_assert!(b - a >= 28 * i64::from(k) - 3 && b - a <= 31 * i64::from(k) + 3);
        }

        #[test]
        fn add_months_lands_in_the_right_month(d in any_date(), m in 0u32..1_200) {
            if let Some(r) = add_months(d, m) {
                let months = |x: CivilDate| i64::from(x.year) * 12 + i64::from(x.month);
                prop_assert_eq!(months(r) - months(d), i64::from(m));
                prop_assert!(r.day <= d.day);
            }
        }

        #[test]
        fn local_day_matches_local_midnight(ms in 86_400_000u64..400_000_000_000_000, off in -14i32 * 60..=14 * 60) {
            let at = Timestamp::from_millis(ms);
            let day = local_day(at, off);
            let start = day_start(day, off);
            prop_assert!(start <= at);
            prop_assert!(at < day_start(day + 1, off));
            let since = i64::try_from(at.as_millis() - start.as_millis()).unwrap_or(i64::MAX);
            prop_assert_eq!(i64::from(minute_of_day(at, off)), since / 60_000);
        }
    }
}
