//! Quiet hours: the `"HH:MM"` to `"HH:MM"` text a driver sets in their settings and a fleet
//! engineer writes in `[prompts]` ([`QuietHours`]), its check ([`QuietHours::window`]), and
//! the window it describes as minutes of the local day ([`QuietWindow`]).
//!
//! Owns: the `"HH:MM"` format and the window arithmetic. Does not own: which window applies
//! (the driver's replace the config's, see `crate::gate::GateContext`), nor local time (the
//! gate turns a UTC time and the head unit's fixed offset into a local minute).

use serde::{Deserialize, Serialize};

/// Local quiet hours, `"HH:MM"` to `"HH:MM"` (may span midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Start, `"22:00"`.
    pub start: String,
    /// End, `"07:00"`.
    pub end: String,
}

/// At most this many characters of a bad value are repeated in an error.
const ERROR_TEXT_CHARS: usize = 16;

/// A quiet-hours value that is not a time of day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuietHoursError {
    /// Not exactly two digits, a colon and two digits.
    #[error("quiet hours {field}: {text:?} is not a time as \"HH:MM\"")]
    Format {
        /// `"start"` or `"end"`.
        field: &'static str,
        /// The value (its first characters).
        text: String,
    },
    /// Shaped right but past 23:59.
    #[error("quiet hours {field}: {text:?} is out of range (00:00 to 23:59)")]
    Range {
        /// `"start"` or `"end"`.
        field: &'static str,
        /// The value.
        text: String,
    },
}

/// Quiet hours as local minutes of the day, `[start, end)`; `start > end` spans midnight and
/// `start == end` is empty (how a driver turns the config's default quiet hours off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietWindow {
    start: u16,
    end: u16,
}

impl QuietWindow {
    /// A window from minute `start` to minute `end` of the local day; `None` if either is
    /// past 23:59 (1439).
    #[cfg(test)]
    pub(crate) fn new(start: u16, end: u16) -> Option<Self> {
        (start < 1440 && end < 1440).then_some(Self { start, end })
    }

    /// Its first minute of the day.
    #[cfg(test)]
    pub(crate) fn start(self) -> u16 {
        self.start
    }

    /// The first minute of the day after it.
    #[cfg(test)]
    pub(crate) fn end(self) -> u16 {
        self.end
    }

    /// Whether local minute `minute` (0..1440) is quiet: from `start` included to `end`
    /// excluded, across midnight when `start > end`; never when `start == end`.
    pub(crate) fn contains(self, minute: u16) -> bool {
        if self.start <= self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

impl QuietHours {
    /// The window these hours describe: how the driver's and the config's quiet hours are
    /// both checked where they come in.
    ///
    /// # Errors
    /// [`QuietHoursError`] naming `start` or `end` when either is not exactly `"HH:MM"` with
    /// two ASCII digits each (no spaces, no `"7:00"`), or is past `"23:59"`.
    pub(crate) fn window(&self) -> Result<QuietWindow, QuietHoursError> {
        let start = parse_hhmm("start", &self.start)?;
        let end = parse_hhmm("end", &self.end)?;
        Ok(QuietWindow { start, end })
    }
}

/// `"HH:MM"` → minute of the day.
fn parse_hhmm(field: &'static str, text: &str) -> Result<u16, QuietHoursError> {
    let format = || QuietHoursError::Format {
        field,
        text: shorten(text),
    };
    let &[h1, h2, b':', m1, m2] = text.as_bytes() else {
        return Err(format());
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
    let (Some(h1), Some(h2), Some(m1), Some(m2)) = (digit(h1), digit(h2), digit(m1), digit(m2))
    else {
        return Err(format());
    };
    let (hour, minute) = (h1 * 10 + h2, m1 * 10 + m2);
    if hour > 23 || minute > 59 {
        return Err(QuietHoursError::Range {
            field,
            text: shorten(text),
        });
    }
    Ok(hour * 60 + minute)
}

/// The first characters of untrusted text, for an error message.
fn shorten(text: &str) -> String {
    let mut chars = text.chars();
    let mut short: String = chars.by_ref().take(ERROR_TEXT_CHARS).collect();
    if chars.next().is_some() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use proptest::prelude::*;

    use super::*;

    fn quiet(start: &str, end: &str) -> QuietHours {
        QuietHours {
            start: start.to_owned(),
            end: end.to_owned(),
        }
    }

    #[test]
    fn parses_times_of_day() {
        let w = quiet("22:00", "07:30").window().unwrap();
        assert_eq!((w.start(), w.end()), (22 * 60, 7 * 60 + 30));
        let w = quiet("00:00", "23:59").window().unwrap();
        assert_eq!((w.start(), w.end()), (0, 1439));
    }

    #[test]
    fn bad_times_name_the_field() {
        let format = |field: &'static str, text: &str| QuietHoursError::Format {
            field,
            text: text.to_owned(),
        };
        for bad in [
            "",
            "7:00",
            "07:0",
            "07-00",
            " 07:00",
            "07:00 ",
            "0700",
            "07:00:00",
            "a7:00",
            "+7:00",
            "０７:００",
            "07：00",
        ] {
            assert_eq!(
                quiet(bad, "07:00").window(),
                Err(format("start", bad)),
                "{bad:?}"
            );
        }
        assert_eq!(
            quiet("22:00", "24:00").window(),
            Err(QuietHoursError::Range {
                field: "end",
                text: "24:00".to_owned()
            })
        );
        assert!(matches!(
            quiet("12:60", "07:00").window(),
            Err(QuietHoursError::Range { field: "start", .. })
        ));
        assert!(matches!(
            quiet("99:99", "07:00").window(),
            Err(QuietHoursError::Range { field: "start", .. })
        ));
    }

    #[test]
    fn error_message_names_field_and_shortens_long_text() {
        let long = "x".repeat(10_000);
        let err = quiet("22:00", &long).window().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("quiet hours end: \"xxxxxxxxxxxxxxxx…\""),
            "{msg}"
        );
        assert!(msg.len() < 80, "{msg}");
        // joins the crate's error
        let joined: crate::Error = err.into();
        assert!(joined.to_string().contains("quiet hours end"));
    }

    /// Asserts which minutes of the day the quiet hours from `start` to `end` hold.
    fn assert_window(start: &str, end: &str, inside: &[u16], outside: &[u16]) {
        let w = quiet(start, end).window().unwrap();
        for &m in inside {
            assert!(w.contains(m), "{start}-{end} holds minute {m}");
        }
        for &m in outside {
            assert!(!w.contains(m), "{start}-{end} does not hold minute {m}");
        }
    }

    #[test]
    fn window_within_a_day() {
        let inside = [9 * 60, 16 * 60 + 59];
        assert_window("09:00", "17:00", &inside, &[8 * 60 + 59, 17 * 60]);
    }

    #[test]
    fn window_over_midnight() {
        let inside = [22 * 60, 23 * 60 + 59, 0, 6 * 60 + 59];
        assert_window("22:00", "07:00", &inside, &[21 * 60 + 59, 7 * 60, 12 * 60]);
    }

    #[test]
    fn equal_start_and_end_is_empty() {
        let w = quiet("22:00", "22:00").window().unwrap();
        assert!((0..1440).all(|m| !w.contains(m)));
    }

    proptest! {
        /// Any text: an error or a minute of the day, never a panic; `Ok` exactly for `HH:MM`
        /// with HH ≤ 23 and MM ≤ 59.
        #[test]
        fn quiet_hours_text_never_panics(start in any::<String>(), end in "\\PC{0,8}") {
            let result = quiet(&start, &end).window();
            let valid = |t: &str| {
                let b = t.as_bytes();
                b.len() == 5
                    && b[2] == b':'
                    && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit())
                    && t[..2].parse::<u16>().is_ok_and(|h| h < 24)
                    && t[3..].parse::<u16>().is_ok_and(|m| m < 60)
            };
            prop_assert_eq!(result.is_ok(), valid(&start) && valid(&end));
            if let Ok(w) = result {
                prop_assert!(w.start() < 1440 && w.end() < 1440);
            }
        }

        /// Well-formed times round-trip, and `contains` agrees with walking the clock from start.
        #[test]
        fn quiet_window_matches_a_walk(sh in 0u16..24, sm in 0u16..60, eh in 0u16..24, em in 0u16..60) {
            let w = quiet(&format!("{sh:02}:{sm:02}"), &format!("{eh:02}:{em:02}")).window()
                .unwrap();
            prop_assert_eq!((w.start(), w.end()), (sh * 60 + sm, eh * 60 + em));
            let mut quiet_minutes = [false; 1440];
            let mut m = w.start();
            while m != w.end() {
                quiet_minutes[usize::from(m)] = true;
                m = (m + 1) % 1440;
            }
            for minute in 0..1440u16 {
                prop_assert_eq!(w.contains(minute), quiet_minutes[usize::from(minute)], "minute {}", minute);
            }
        }
    }
}
