//! Civil-calendar day numbers, without a date crate: proleptic Gregorian year-month-day ↔ the
//! count of days since 1970-01-01 (negative before it), after Howard Hinnant's
//! `days_from_civil` / `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>),
//! and the UTC date of a [`Timestamp`].
//!
//! The one home of this arithmetic: the agent's rules (local days, months), the candump
//! parser, the cloud's registry and strategies, and the testbed all use it.
//!
//! [`CivilDate`] is the one `YYYY-MM-DD` type and parser: the agent's config (delivery date)
//! and the cloud's registry import both read dates with it, so both accept the same years.
//!
//! Owns: the arithmetic, total over the inputs it is given (no panic, no overflow for any
//! year within ±10^14), and the date text. Does not own: time zones, or formatting beyond
//! [`Timestamp::utc_date_string`].

use core::fmt;

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

/// A calendar date without time zone, `YYYY-MM-DD`, from 1970-01-01 to 9999-12-31.
///
/// The years stop at 1970 because a date becomes an instant on the wire ([`Timestamp`] counts
/// from 1970) and at 9999 because the text has four digits. In serde it is its text; a TOML
/// file may also write it as a bare TOML date (`delivered = 2025-03-14`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// Year (1970–9999).
    pub year: u16,
    /// Month (1–12).
    pub month: u8,
    /// Day of month (1–31, checked against the month).
    pub day: u8,
}

/// The first year a [`CivilDate`] may have.
pub const MIN_YEAR: u16 = 1970;
/// The last year a [`CivilDate`] may have.
pub const MAX_YEAR: u16 = 9999;

/// Days in `month` (1–12) of `year`.
pub const fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl CivilDate {
    /// Parses `YYYY-MM-DD`.
    ///
    /// # Errors
    /// A message naming the text and what is wrong with it, for any other shape, a year
    /// outside 1970–9999, a month outside 1–12 or a day the month does not have.
    pub fn parse(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(format!("{text:?} is not a date YYYY-MM-DD"));
        }
        // Ten ASCII bytes with digits at these places (checked above): every parse succeeds.
        let num = |r: core::ops::Range<usize>| {
            text.get(r).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0)
        };
        let (year, month, day) = (num(0..4), num(5..7), num(8..10));
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(format!(
                "{text:?}: year {year} is not {MIN_YEAR}-{MAX_YEAR}"
            ));
        }
        let Ok(month) = u8::try_from(month) else {
            return Err(format!("{text:?}: month {month} is not 1-12"));
        };
        if !(1..=12).contains(&month) {
            return Err(format!("{text:?}: month {month} is not 1-12"));
        }
        let last = days_in_month(year, month);
        let day = u8::try_from(day).unwrap_or(u8::MAX);
        if day == 0 || day > last {
            return Err(format!("{text:?}: day {day} is not 1-{last}"));
        }
        Ok(Self { year, month, day })
    }

    /// Its day number (days since 1970-01-01).
    pub const fn day_number(self) -> i64 {
        days_from_civil(self.year as i64, self.month, self.day)
    }

    /// Its first instant, 00:00 UTC.
    pub const fn midnight_utc(self) -> Timestamp {
        // 1970 ≤ year ≤ 9999 (a CivilDate exists only valid): the day number is ≥ 0 and the
        // product far below u64::MAX.
        Timestamp::from_millis(self.day_number() as u64 * MS_PER_DAY)
    }

    /// The UTC date of an instant (years past 9999 are clamped to 9999-12-31).
    pub const fn of(t: Timestamp) -> Self {
        let (y, m, d) = t.utc_date();
        if y > MAX_YEAR as i64 {
            return Self {
                year: MAX_YEAR,
                month: 12,
                day: 31,
            };
        }
        // A Timestamp is never before 1970: y ≥ 1970 here.
        Self {
            year: y as u16,
            month: m,
            day: d,
        }
    }
}

impl core::str::FromStr for CivilDate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl serde::Serialize for CivilDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CivilDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DateVisitor)
    }
}

struct DateVisitor;

impl<'de> serde::de::Visitor<'de> for DateVisitor {
    type Value = CivilDate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date \"YYYY-MM-DD\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<CivilDate, E> {
        CivilDate::parse(text).map_err(E::custom)
    }

    /// A bare TOML date (`2025-03-14` without quotes): the toml crate hands it over as a map
    /// of one entry whose value is the date's text. Any other map is refused: a date with a
    /// time or an offset does not parse as `YYYY-MM-DD`.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CivilDate, A::Error> {
        let Some((_, text)) = map.next_entry::<serde::de::IgnoredAny, String>()? else {
            return Err(serde::de::Error::custom("expected a date \"YYYY-MM-DD\""));
        };
        if map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {
            return Err(serde::de::Error::custom("expected a date \"YYYY-MM-DD\""));
        }
        CivilDate::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    #[test]
    fn civil_dates_parse_one_way() {
        let d = CivilDate::parse("2024-02-29").unwrap();
        assert_eq!((d.year, d.month, d.day), (2024, 2, 29));
        assert_eq!(d.to_string(), "2024-02-29");
        assert_eq!(
            CivilDate::parse("1970-01-01").unwrap().midnight_utc(),
            Timestamp::EPOCH
        );
        assert_eq!(
            CivilDate::parse("2026-03-02").unwrap().midnight_utc(),
            Timestamp::from_millis(1_772_409_600_000)
        );
        assert_eq!(
            CivilDate::of(Timestamp::from_millis(1_772_431_200_000)).to_string(),
            "2026-03-02"
        );
        for (bad, why) in [
            ("2023-02-29", "day 29 is not 1-28"),
            ("1969-12-31", "year 1969 is not 1970-9999"),
            ("2024-13-01", "month 13 is not 1-12"),
            ("2024-00-01", "month 0 is not 1-12"),
            ("2024-04-31", "day 31 is not 1-30"),
            ("2024-4-01", "is not a date YYYY-MM-DD"),
            ("24-04-01", "is not a date YYYY-MM-DD"),
            ("2024-04-01T00:00", "is not a date YYYY-MM-DD"),
            ("２０２４-04-01", "is not a date YYYY-MM-DD"),
            ("", "is not a date YYYY-MM-DD"),
        ] {
            let err = CivilDate::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn civil_dates_in_serde() {
        let d: CivilDate = serde_json::from_str("\"2025-03-14\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2025-03-14\"");
        let err = serde_json::from_str::<CivilDate>("\"2025-02-30\"").unwrap_err();
        assert!(err.to_string().contains("day 30"), "{err}");
        assert!(serde_json::from_str::<CivilDate>("20250314").is_err());
        assert!(serde_json::from_str::<CivilDate>("{\"a\":\"2025-03-14\",\"b\":1}").is_err());
    }

    proptest! {
        #[test]
        fn civil_dates_round_trip(n in 0i64..2_932_897) {
            let (y, m, d) = civil_from_days(n);
            let text = format!("{y:04}-{m:02}-{d:02}");
            let date = CivilDate::parse(&text).unwrap();
            prop_assert_eq!(date.day_number(), n);
            prop_assert_eq!(date.to_string(), text);
            prop_assert_eq!(CivilDate::of(date.midnight_utc()), date);
        }

        #[test]
        fn civil_date_parse_never_panics(text in "\\PC{0,12}") {
            let _ = CivilDate::parse(&text);
        }
    }
}
