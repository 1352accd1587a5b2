//! What the text formats (ASC, TRC) share: reading a trace line by line into one reused buffer
//! with a length cap, splitting a line into whitespace-separated tokens without allocating, and
//! the numbers and dates these formats write. Owns no format's rules.

use core::time::Duration;
use std::io::BufRead;

use super::candump::TraceStats;
use super::{Format, Position, ReadError};

/// Longest line the text readers accept: an ASC CAN FD line with 64 bytes and every trailing
/// column is about 450 bytes.
pub(crate) const MAX_LINE_LEN: usize = 4096;

/// One line after another from a [`BufRead`], in one reused buffer.
#[derive(Debug)]
pub(crate) struct Lines<R> {
    reader: R,
    pub(crate) buf: Vec<u8>,
    /// Lines read so far (the current line's 1-based number).
    pub(crate) number: u64,
}

/// What [`Lines::next_line`] found.
pub(crate) enum Next {
    /// A line is in `buf` (without its line ending).
    Line,
    /// The line was longer than [`MAX_LINE_LEN`]; it was dropped.
    TooLong,
    /// End of input.
    End,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            number: 0,
        }
    }

    /// The next line of a `format` trace into `buf`, counted in `stats`: `None` at the end,
    /// `Some(Ok(()))` for a line to parse, `Some(Err(_))` for a line over the cap (counted as
    /// bad; reading goes on) or an I/O error (`*failed` is set: the reader stops).
    pub(crate) fn advance(
        &mut self,
        format: Format,
        stats: &mut TraceStats,
        failed: &mut bool,
    ) -> Option<Result<(), ReadError>> {
        let at = |n| Position::Line(n);
        match self.next_line() {
            Ok(Next::End) => None,
            Ok(Next::TooLong) => {
                stats.lines += 1;
                stats.bad += 1;
                Some(Err(ReadError::Record {
                    format,
                    at: at(self.number),
                    reason: format!("line longer than {MAX_LINE_LEN} bytes"),
                }))
            }
            Ok(Next::Line) => {
                stats.lines += 1;
                Some(Ok(()))
            }
            Err(source) => {
                *failed = true;
                Some(Err(ReadError::Io {
                    format,
                    at: at(self.number),
                    source,
                }))
            }
        }
    }

    /// Reads the next line into `buf`.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Next> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if self.buf.is_empty() && !too_long {
                    return Ok(Next::End);
                }
                break;
            }
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                let room = (MAX_LINE_LEN + 1).saturating_sub(self.buf.len());
                self.buf
                    .extend_from_slice(chunk.get(..take.min(room)).unwrap_or_default());
                // Past the cap the rest of the line is dropped unbuffered.
                too_long = self.buf.len() > MAX_LINE_LEN;
            }
            self.reader.consume(take);
            if done {
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Next::TooLong);
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Next::Line)
    }
}

/// The whitespace-separated tokens of a line.
pub(crate) fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
}

/// Seconds with an optional fraction, the decimal separator a point or a comma (the two
/// locales Vector tools write): `2.5010`, `17,876708`. Fraction digits past nanoseconds are
/// dropped.
pub(crate) fn seconds(tok: &[u8]) -> Option<Duration> {
    let (whole, frac) = split_decimal(tok)?;
    let secs = decimal_u64(whole)?;
    Some(Duration::new(secs, nanos_of_fraction(frac)?))
}

/// Milliseconds with an optional fraction (TRC's time offsets): `17535.4`, `2501.000`.
pub(crate) fn millis(tok: &[u8]) -> Option<Duration> {
    let (whole, frac) = split_decimal(tok)?;
    let ms = decimal_u64(whole)?;
    // The fraction of a millisecond in nanoseconds: nine digits of fraction are picoseconds,
    // so the first six are what counts.
    let frac_ns = u64::from(nanos_of_fraction(frac)?) / 1000;
    Duration::from_millis(ms).checked_add(Duration::from_nanos(frac_ns))
}

fn split_decimal(tok: &[u8]) -> Option<(&[u8], &[u8])> {
    match tok.iter().position(|&b| b == b'.' || b == b',') {
        Some(i) => Some((tok.get(..i)?, tok.get(i + 1..)?)),
        None => Some((tok, &[])),
    }
}

/// A fraction's digits as nanoseconds (`5010` → 501_000_000).
fn nanos_of_fraction(frac: &[u8]) -> Option<u32> {
    let mut nanos: u32 = 0;
    let mut scale: u32 = 100_000_000;
    for &b in frac {
        if !b.is_ascii_digit() {
            return None;
        }
        nanos += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(nanos)
}

/// A non-empty run of decimal digits.
pub(crate) fn decimal_u64(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in tok {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A non-empty run of at most 8 hex digits.
pub(crate) fn hex_u32(tok: &[u8]) -> Option<u32> {
    if tok.is_empty() || tok.len() > 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in tok {
        v = (v << 4) | u32::from(hex_digit(b)?);
    }
    Some(v)
}

#[inline]
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Month abbreviations Vector tools write, English and German (CANoe writes the machine's
/// locale: `Sam Sep 30`, `Mär`, `Mai`, `Okt`, `Dez`).
fn month(tok: &[u8]) -> Option<u32> {
    let t = tok.get(..3)?;
    let lower = [
        t[0].to_ascii_lowercase(),
        t[1].to_ascii_lowercase(),
        t[2].to_ascii_lowercase(),
    ];
    Some(match &lower {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" | b"m\xc3\xa4" | b"mrz" => 3,
        b"apr" => 4,
        b"may" | b"mai" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" | b"okt" => 10,
        b"nov" => 11,
        b"dec" | b"dez" => 12,
        _ => return None,
    })
}

/// A Vector date (`Sam Sep 30 15:06:13.191 2017`, `Sat Sep 30 10:06:13.191 PM 2017`,
/// `Mon Nov 29 11:02:17 am 2021`) as time since the Unix epoch. The file says no time zone:
/// it is read as UTC (python-can reads it as the machine's local time).
pub(crate) fn vector_date(text: &[u8]) -> Option<Duration> {
    let toks: Vec<&[u8]> = tokens(text).take(8).collect();
    // weekday month day time [am|pm] year
    let mut i = 0;
    if toks.get(i).and_then(|t| month(t)).is_none() {
        i += 1; // the weekday
    }
    let mon = month(toks.get(i)?)?;
    let day = u32::try_from(decimal_u64(toks.get(i + 1)?)?).ok()?;
    let time = toks.get(i + 2)?;
    let mut next = i + 3;
    let pm = match toks.get(next).map(|t| t.to_ascii_lowercase()) {
        Some(t) if t == b"am" => {
            next += 1;
            Some(false)
        }
        Some(t) if t == b"pm" => {
            next += 1;
            Some(true)
        }
        _ => None,
    };
    let year = i64::try_from(decimal_u64(toks.get(next)?)?).ok()?;
    let mut parts = time.splitn(3, |&b| b == b':');
    let mut hour = decimal_u64(parts.next()?)?;
    let minute = decimal_u64(parts.next()?)?;
    let sec = seconds(parts.next()?)?;
    match pm {
        Some(false) if hour == 12 => hour = 0,
        Some(true) if hour < 12 => hour += 12,
        _ => {}
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || sec.as_secs() > 60 {
        return None;
    }
    let days = days_from_civil(year, mon, day);
    let secs = days
        .checked_mul(86_400)?
        .checked_add(i64::try_from(hour * 3600 + minute * 60).ok()?)?;
    let secs = u64::try_from(secs).ok()?;
    Duration::from_secs(secs).checked_add(sec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_are_capped_and_numbered() {
        let mut text = b"a\r\n".to_vec();
        text.extend(vec![b'x'; 5000]);
        text.extend(b"\nlast");
        let mut lines = Lines::new(std::io::BufReader::with_capacity(64, &text[..]));
        assert!(matches!(lines.next_line().unwrap(), Next::Line));
        assert_eq!(lines.buf, b"a");
        assert!(matches!(lines.next_line().unwrap(), Next::TooLong));
        assert!(matches!(lines.next_line().unwrap(), Next::Line));
        assert_eq!((lines.buf.as_slice(), lines.number), (&b"last"[..], 3));
        assert!(matches!(lines.next_line().unwrap(), Next::End));
    }

    #[test]
    fn seconds_in_both_locales() {
        assert_eq!(seconds(b"2.5010"), Some(Duration::from_micros(2_501_000)));
        assert_eq!(
            seconds(b"17,876708"),
            Some(Duration::from_micros(17_876_708))
        );
        assert_eq!(seconds(b"3"), Some(Duration::from_secs(3)));
        assert_eq!(seconds(b"1.2.3"), None);
        assert_eq!(seconds(b"-1.0"), None);
        assert_eq!(seconds(b""), None);
        assert_eq!(seconds(b"99999999999999999999"), None);
        assert_eq!(decimal_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal_u64(b"18446744073709551616"), None);
        assert_eq!(millis(b"17535.4"), Some(Duration::from_micros(17_535_400)));
    }

    #[test]
    fn vector_dates() {
        // 2017-09-30 15:06:13.191 UTC
        assert_eq!(
            vector_date(b"Sam Sep 30 15:06:13.191 2017"),
            Some(Duration::from_millis(1_506_783_973_191))
        );
        assert_eq!(
            vector_date(b"Sat Sep 30 10:06:13.191 PM 2017"),
            Some(Duration::from_millis(1_506_809_173_191))
        );
        assert_eq!(
            vector_date(b"Mon Nov 29 12:02:17 am 2021"),
            Some(Duration::from_secs(1_638_144_137))
        );
        assert!(vector_date(b"Mi Okt 4 09:00:00 2023").is_some());
        assert_eq!(vector_date(b"not a date"), None);
        assert_eq!(vector_date(b"Sat Sep 30 25:06:13 2017"), None);
    }
}
