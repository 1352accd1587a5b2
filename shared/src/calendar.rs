//! Civil-calendar day numbers, without a date crate: proleptic Gregorian year-month-day ↔ the
//! count of days since 1970-01-01 (negative before it), after Howard Hinnant's
//! `days_from_civil` / `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>),
//! and the UTC date of a [`Timestamp`].
//!
//! The one home of this arithmetic: the agent's rules (local days, months), the candump
//! parser, the cloud's registry and strategies, and the testbed all use it.
//!
//! Owns: the arithmetic, total over the inputs it is given (no panic, no overflow for any
//! year within ±10^14). Does not own: validation (a month 13 or a February 30 is the caller's
//! to refuse), time zones, or formatting beyond [`Timestamp::utc_date_string`].

use crate::Timestamp;

/// Milliseconds in a day.
pub const MS_PER_DAY: u64 = 86_400_000;

/// The day number (days since 1970-01-01) of `year`-`month`-`day`, month 1–12.
///
/// Out-of-range months or days are not refused: they count on arithmetically (a day 0 is the
/// last of the previous month).
pub const fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (m, d) = (month as i64, day as i64);
    // The year starts in March, so February's leap day is the last day of the year.
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Year, month (1–12) and day (1–31) of day number `days`.
pub const fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    // m is in 1..=12 and d in 1..=31 by construction: the casts cannot truncate.
    (y, m as u8, d as u8)
}

impl Timestamp {
    /// The day number of this instant in UTC.
    pub const fn utc_day(self) -> i64 {
        // u64::MAX / MS_PER_DAY < 2^38: always fits.
        (self.as_millis() / MS_PER_DAY) as i64
    }

    /// Year, month and day of this instant in UTC.
    pub const fn utc_date(self) -> (i64, u8, u8) {
        civil_from_days(self.utc_day())
    }

    /// `YYYY-MM-DD` of this instant in UTC.
    pub fn utc_date_string(self) -> String {
        let (y, m, d) = self.utc_date();
        format!("{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (-25_567, (1900, 1, 1)),
            (11_016, (2000, 2, 29)),
            (19_675, (2023, 11, 14)),
            (20_514, (2026, 3, 2)),
            (20_819, (2027, 1, 1)),
            (2_932_896, (9999, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), date, "{days}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), days, "{date:?}");
        }
        assert_eq!(
            Timestamp::from_millis(1_772_431_200_000).utc_date_string(),
            "2026-03-02"
        );
        assert_eq!(Timestamp::EPOCH.utc_date(), (1970, 1, 1));
        // The largest timestamp has a date too.
        assert!(Timestamp::from_millis(u64::MAX).utc_date().0 > 500_000_000);
    }

    proptest! {
        #[test]
        fn day_numbers_and_dates_round_trip(n in -1_000_000_000i64..1_000_000_000) {
            let (y, m, d) = civil_from_days(n);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), n);
            // The next day is the next date.
            let (y2, m2, d2) = civil_from_days(n + 1);
            prop_assert!(
                (y2, m2, d2) > (y, m, d) && (d2 == d + 1 || d2 == 1),
                "{:?} -> {:?}", (y, m, d), (y2, m2, d2)
            );
        }
    }
}
