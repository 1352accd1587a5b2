//! Quiet hours and local time: parsing `"HH:MM"` windows ([`parse_quiet_hours`]), asking
//! whether a local minute falls in one ([`QuietWindow::contains`]), and turning a UTC
//! [`Timestamp`] plus the head unit's fixed offset into a local day and minute.
//!
//! Owns: the `"HH:MM"` format and the window arithmetic. Does not own: which window applies
//! (the driver's settings replace the config's, see [`super::GateContext`]), nor calendars and
//! daylight-saving rules (the offset is fixed, from `[prompts] utc_offset_minutes`).

use rapport_shared::Timestamp;

use crate::memory::QuietHours;

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
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start < 1440 && end < 1440).then_some(Self { start, end })
    }

    /// Its first minute of the day.
    pub fn start(self) -> u16 {
        self.start
    }

    /// The first minute of the day after it.
    pub fn end(self) -> u16 {
        self.end
    }

    /// Whether local minute `minute` (0..1440) is quiet: from `start` included to `end`
    /// excluded, across midnight when `start > end`; never when `start == end`.
    pub fn contains(self, minute: u16) -> bool {
        if self.start <= self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// Parses the driver's or the config's quiet hours.
///
/// # Errors
/// [`QuietHoursError`] naming `start` or `end` when either is not exactly `"HH:MM"` with
/// two ASCII digits each (no spaces, no `"7:00"`), or is past `"23:59"`.
pub fn parse_quiet_hours(quiet: &QuietHours) -> Result<QuietWindow, QuietHoursError> {
    let start = parse_hhmm("start", &quiet.start)?;
    let end = parse_hhmm("end", &quiet.end)?;
    Ok(QuietWindow { start, end })
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

/// The local day number at `now` (days since 1970-01-01 in the offset's time zone): the
/// calendar's, so caps and due dates agree on what "a day" is.
pub fn local_day(now: Timestamp, utc_offset_minutes: i32) -> i64 {
    crate::rules::calendar::local_day(now, utc_offset_minutes)
}

/// The local minute of the day at `now`, 0..1440 (the calendar's).
pub fn local_minute_of_day(now: Timestamp, utc_offset_minutes: i32) -> u16 {
    crate::rules::calendar::minute_of_day(now, utc_offset_minutes)
}
