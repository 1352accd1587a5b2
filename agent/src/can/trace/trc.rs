//! PEAK-System TRC traces (PCAN-View, PCAN-Explorer, PEAK-Converter), file versions 1.0, 1.1,
//! 1.2, 1.3, 2.0 and 2.1. A sans-IO line parser ([`TrcParser`]) and a reader over any
//! [`BufRead`] ([`TrcReader`]).
//!
//! Written here: no Rust crate reads TRC (python-can is the reference we test against).
//!
//! The `;` header says the version (`;$FILEVERSION=2.1`; none means 1.0), the absolute start
//! (`;$STARTTIME=<days since 1899-12-30>`, the OLE date PEAK writes, read as UTC) and in 2.1 the
//! columns (`;$COLUMNS=N,O,T,B,I,d,R,L,D`). Columns by version:
//! - 1.0 `N) O I L D`; 1.1 `N) O T I L D`; 1.2 `N) O B T I L D`; 1.3 `N) O B T I R L D`;
//! - 2.0 `N O T I d l D`; 2.1 as `$COLUMNS` says (default `N O T B I d R L D`);
//!
//! with N number, O offset in ms, T type, B bus (1-based), I id (hex; more than 4 digits is a
//! 29-bit id), d direction, R reserved, L DLC, l data length, D data bytes (hex). Types that are
//! frames: 1.x `Rx`/`Tx` (data `RTR` is a remote request), 2.x `DT`, `RR` (remote), `FD`, `FB`
//! (bit-rate switch), `FE` (error state), `BI` (both). Others (`Warng`, `Error`, `ST`, `ER`,
//! `EC`, `EV`, …) are valid lines without a frame: skipped.

use core::time::Duration;
use std::io::BufRead;

use super::text::{self, Lines, hex_digit, tokens};
use super::{Channel, ChannelMap, Format, Position, ReadError};
use crate::can::candump::{TraceFrame, TraceStats};
use crate::can::frame::{CanFrame, FD_LENGTHS, raw_to_id};

/// One TRC column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Number,
    Offset,
    Type,
    Bus,
    Id,
    Direction,
    Reserved,
    Dlc,
    Length,
    Data,
}

const MAX_COLUMNS: usize = 12;

/// The header's state and the line parser that uses it.
#[derive(Debug, Clone)]
pub struct TrcParser {
    major: u8,
    columns: [Col; MAX_COLUMNS],
    ncols: usize,
    start: Option<Duration>,
}

impl Default for TrcParser {
    fn default() -> Self {
        let mut p = Self {
            major: 1,
            columns: [Col::Data; MAX_COLUMNS],
            ncols: 0,
            start: None,
        };
        p.set_columns(&[Col::Number, Col::Offset, Col::Id, Col::Dlc, Col::Data]);
        p
    }
}

/// What one TRC line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrcLine {
    /// A data or remote frame at `offset` since the start, on `bus`.
    Frame {
        offset: Duration,
        bus: u16,
        frame: CanFrame,
    },
    /// A header, comment or event that is no frame.
    Other,
}

impl TrcParser {
    /// A parser for a file that has not said its version yet (1.0).
    pub fn new() -> Self {
        Self::default()
    }

    /// The absolute start the header gave, if any.
    pub fn start(&self) -> Option<Duration> {
        self.start
    }

    fn set_columns(&mut self, cols: &[Col]) {
        self.ncols = cols.len().min(MAX_COLUMNS);
        for (slot, c) in self.columns.iter_mut().zip(cols) {
            *slot = *c;
        }
    }

    /// Parses one line (without its line ending).
    ///
    /// # Errors
    /// A reason when a frame line does not parse.
    pub(crate) fn parse(&mut self, line: &[u8]) -> Result<TrcLine, &'static str> {
        let trimmed = line.trim_ascii();
        if let Some(comment) = trimmed.strip_prefix(b";") {
            self.header(comment);
            return Ok(TrcLine::Other);
        }
        if trimmed.is_empty() {
            return Ok(TrcLine::Other);
        }
        let mut toks = tokens(trimmed);
        let (mut offset, mut bus, mut id, mut dlc, mut length) = (None, 1u16, None, None, None);
        let (mut remote, mut fd, mut brs, mut esi) = (false, false, false, false);
        let mut data = [0u8; 64];
        let mut n = 0usize;
        for &col in self.columns.get(..self.ncols).unwrap_or_default() {
            if col == Col::Data {
                for t in toks.by_ref() {
                    if t.eq_ignore_ascii_case(b"RTR") {
                        remote = true;
                        break;
                    }
                    let b = match t {
                        [h, l] => hex_digit(*h).zip(hex_digit(*l)).map(|(h, l)| (h << 4) | l),
                        _ => None,
                    };
                    let b = b.ok_or("data byte is not two hex digits")?;
                    *data.get_mut(n).ok_or("more than 64 data bytes")? = b;
                    n += 1;
                }
                break;
            }
            let Some(t) = toks.next() else {
                if col == Col::Dlc || col == Col::Length {
                    // A remote request in 2.x may end before its data column; nothing else may.
                }
                return Err("fewer columns than the header says");
            };
            match col {
                Col::Number | Col::Reserved | Col::Direction | Col::Data => {}
                Col::Offset => offset = Some(text::millis(t).ok_or("time offset is not a number")?),
                Col::Type => match type_flags(t) {
                    Some(f) => (remote, fd, brs, esi) = f,
                    None => return Ok(TrcLine::Other),
                },
                Col::Bus => {
                    if t != b"-" {
                        bus = text::decimal_u64(t)
                            .and_then(|b| u16::try_from(b).ok())
                            .ok_or("bus is not a number")?;
                    }
                }
                Col::Id => {
                    let raw = text::hex_u32(t).ok_or("CAN id is not hex")?;
                    id = Some(
                        raw_to_id(raw, t.len() > 4)
                            .ok_or("CAN id does not fit in 11 (or 29) bits")?,
                    );
                }
                Col::Dlc => {
                    let d = text::decimal_u64(t).ok_or("DLC is not a number")?;
                    dlc = Some(
                        u8::try_from(d)
                            .ok()
                            .filter(|d| *d <= 15)
                            .ok_or("DLC above 15")?,
                    );
                }
                Col::Length => {
                    let l = text::decimal_u64(t).ok_or("data length is not a number")?;
                    length = Some(usize::try_from(l).map_err(|_| "data length too large")?);
                }
            }
        }
        let offset = offset.ok_or("no time offset")?;
        let id = id.ok_or("no CAN id")?;
        let frame = if remote {
            let dlc = dlc.map_or(length.unwrap_or(0), usize::from);
            <CanFrame as embedded_can::Frame>::new_remote(id, dlc).ok_or("remote DLC above 8")?
        } else {
            let want = match (length, dlc) {
                (Some(l), _) => l,
                (None, Some(d)) if fd => FD_LENGTHS
                    .get(usize::from(d))
                    .copied()
                    .ok_or("DLC above 15")?,
                (None, Some(d)) => usize::from(d.min(8)),
                (None, None) => n,
            };
            if want != n {
                return Err("the number of data bytes is not what the DLC says");
            }
            let bytes = data.get(..n).unwrap_or_default();
            if fd {
                CanFrame::new_fd(id, bytes, brs)
                    .ok_or("not a CAN FD data length")?
                    .with_esi(esi)
            } else {
                <CanFrame as embedded_can::Frame>::new(id, bytes).ok_or("more than 8 data bytes")?
            }
        };
        Ok(TrcLine::Frame { offset, bus, frame })
    }

    fn header(&mut self, comment: &[u8]) {
        let Some(rest) = comment.trim_ascii().strip_prefix(b"$") else {
            return;
        };
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            return;
        };
        let (key, value) = (
            rest.get(..eq).unwrap_or_default(),
            rest.get(eq + 1..).unwrap_or_default().trim_ascii(),
        );
        if key.eq_ignore_ascii_case(b"FILEVERSION") {
            let (major, minor) = match value {
                [a, b'.', b, ..] => (a.wrapping_sub(b'0'), b.wrapping_sub(b'0')),
                _ => return,
            };
            self.major = major;
            use Col::*;
            match (major, minor) {
                (1, 0) => self.set_columns(&[Number, Offset, Id, Dlc, Data]),
                (1, 1) => self.set_columns(&[Number, Offset, Type, Id, Dlc, Data]),
                (1, 2) => self.set_columns(&[Number, Offset, Bus, Type, Id, Dlc, Data]),
                (1, _) => self.set_columns(&[Number, Offset, Bus, Type, Id, Reserved, Dlc, Data]),
                (2, 0) => self.set_columns(&[Number, Offset, Type, Id, Direction, Length, Data]),
                _ => self.set_columns(&[
                    Number, Offset, Type, Bus, Id, Direction, Reserved, Dlc, Data,
                ]),
            }
        } else if key.eq_ignore_ascii_case(b"STARTTIME") {
            self.start = ole_date(value);
        } else if key.eq_ignore_ascii_case(b"COLUMNS") {
            let mut cols = [Col::Data; MAX_COLUMNS];
            let mut n = 0;
            for c in value.split(|&b| b == b',') {
                let col = match c.trim_ascii() {
                    b"N" => Col::Number,
                    b"O" => Col::Offset,
                    b"T" => Col::Type,
                    b"B" => Col::Bus,
                    b"I" => Col::Id,
                    b"d" => Col::Direction,
                    b"R" => Col::Reserved,
                    b"L" => Col::Dlc,
                    b"l" => Col::Length,
                    b"D" => Col::Data,
                    _ => return,
                };
                if let Some(slot) = cols.get_mut(n) {
                    *slot = col;
                    n += 1;
                }
            }
            self.set_columns(cols.get(..n).unwrap_or_default());
        }
    }
}

/// `(remote, fd, brs, esi)` for a type that is a frame; `None` for any other event.
fn type_flags(t: &[u8]) -> Option<(bool, bool, bool, bool)> {
    Some(match t {
        b"Rx" | b"Tx" | b"DT" => (false, false, false, false),
        b"RR" => (true, false, false, false),
        b"FD" => (false, true, false, false),
        b"FB" => (false, true, true, false),
        b"FE" => (false, true, false, true),
        b"BI" => (false, true, true, true),
        _ => return None,
    })
}

/// An OLE automation date (days since 1899-12-30, fraction = time of day) as time since the
/// Unix epoch, rounded to the microsecond; `None` before 1970 or if not a number.
fn ole_date(value: &[u8]) -> Option<Duration> {
    const UNIX_EPOCH_DAYS: u64 = 25_569;
    const NANOS_PER_DAY: u128 = 86_400_000_000_000;
    let (whole, frac) = match value.iter().position(|&b| b == b'.' || b == b',') {
        Some(i) => (value.get(..i)?, value.get(i + 1..)?),
        None => (value, &[][..]),
    };
    let days = text::decimal_u64(whole)?.checked_sub(UNIX_EPOCH_DAYS)?;
    let frac = frac.get(..frac.len().min(18))?;
    let mut num: u128 = 0;
    let mut den: u128 = 1;
    for &b in frac {
        if !b.is_ascii_digit() {
            return None;
        }
        num = num * 10 + u128::from(b - b'0');
        den *= 10;
    }
    let nanos = (num * NANOS_PER_DAY + den / 2) / den;
    let micros = u64::try_from((nanos + 500) / 1000).ok()?;
    Duration::from_secs(days.checked_mul(86_400)?).checked_add(Duration::from_micros(micros))
}

/// A TRC trace read frame by frame from any [`BufRead`].
#[derive(Debug)]
pub struct TrcReader<R> {
    lines: Lines<R>,
    parser: TrcParser,
    channels: ChannelMap,
    stats: TraceStats,
    failed: bool,
}

impl<R: BufRead> TrcReader<R> {
    /// A reader over `reader`, naming buses by `channels`.
    pub fn new(reader: R, channels: ChannelMap) -> Self {
        Self {
            lines: Lines::new(reader),
            parser: TrcParser::new(),
            channels,
            stats: TraceStats::default(),
            failed: false,
        }
    }

    /// Lines, frames, skipped and bad lines so far.
    pub fn stats(&self) -> TraceStats {
        self.stats
    }

    fn bad(&mut self, reason: &str) -> ReadError {
        self.stats.bad += 1;
        ReadError::Record {
            format: Format::Trc,
            at: Position::Line(self.lines.number),
            reason: reason.to_owned(),
        }
    }
}

impl<R: BufRead> Iterator for TrcReader<R> {
    type Item = Result<TraceFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self
                .lines
                .advance(Format::Trc, &mut self.stats, &mut self.failed)?
            {
                Ok(()) => {}
                Err(e) => return Some(Err(e)),
            }
            match self.parser.parse(&self.lines.buf) {
                Ok(TrcLine::Frame { offset, bus, frame }) => {
                    let Some(timestamp) = super::timestamp(self.parser.start, offset) else {
                        return Some(Err(self.bad("time beyond 999,999,999,999 s")));
                    };
                    self.stats.frames += 1;
                    return Some(Ok(TraceFrame {
                        timestamp: Some(timestamp),
                        interface: Channel::Number(bus).resolve(&self.channels),
                        frame,
                    }));
                }
                Ok(TrcLine::Other) => self.stats.skipped += 1,
                Err(reason) => return Some(Err(self.bad(reason))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::can::candump::Timestamp;
    use embedded_can::Frame as _;

    fn frames(text: &str) -> (Vec<Result<TraceFrame, ReadError>>, TraceStats) {
        let mut r = TrcReader::new(text.as_bytes(), ChannelMap::default());
        let items: Vec<_> = r.by_ref().collect();
        (items, r.stats())
    }

    #[test]
    fn version_1_1_lines() {
        let text = ";$FILEVERSION=1.1\n;$STARTTIME=44548.6028595139\n\
             1)     17535.4  Tx     00000100  8  00 01 02 03 04 05 06 07 \n\
             2)     17540.3  Warng  FFFFFFFF  4  00 00 00 08  BUSHEAVY \n\
            12)     48937.6  Rx         0704  1  RTR\n\
            13)     48938.0  Rx         0704  3  01 02\n";
        let (items, stats) = frames(text);
        let a = items[0].as_ref().unwrap();
        assert!(a.frame.is_extended());
        assert_eq!(a.frame.raw_id(), 0x100);
        assert_eq!(a.frame.data(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        // 2021-12-18 14:28:07.062001 UTC + 17535.4 ms
        assert_eq!(
            a.timestamp,
            Some(Timestamp::Absolute(Duration::from_micros(
                1_639_837_687_062_001 + 17_535_400
            )))
        );
        let b = items[1].as_ref().unwrap();
        assert!(b.frame.is_remote_frame() && !b.frame.is_extended());
        assert_eq!((b.frame.raw_id(), b.frame.dlc()), (0x704, 1));
        assert!(matches!(
            items[2],
            Err(ReadError::Record {
                at: Position::Line(6),
                ..
            })
        ));
        assert_eq!((stats.frames, stats.skipped, stats.bad), (2, 3, 1));
    }

    #[test]
    fn version_2_1_lines_with_fd_and_buses() {
        let text = ";$FILEVERSION=2.1\n;$COLUMNS=N,O,T,B,I,d,R,L,D\n\
            1      2501.000 DT 2      00C8 Tx -  8    09 08 07 06 05 04 03 02\n\
            2      2502.500 FB 1  18FF0001 Rx -  9    00 01 02 03 04 05 06 07 08 09 0A 0B\n\
            3      2503.000 RR 3      0123 Rx -  2\n\
            4      2504.000 ST 1      0000 Rx -  4    00 00 00 00\n";
        let (items, stats) = frames(text);
        let f: Vec<TraceFrame> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].interface.as_str(), "can1");
        assert_eq!(
            f[0].timestamp,
            Some(Timestamp::Relative(Duration::from_micros(2_501_000)))
        );
        assert!(f[1].frame.is_fd() && f[1].frame.is_brs() && f[1].frame.is_extended());
        assert_eq!(f[1].frame.data().len(), 12);
        assert!(f[2].frame.is_remote_frame());
        assert_eq!(f[2].frame.dlc(), 2);
        assert_eq!(f[2].interface.as_str(), "can2");
        assert_eq!(stats.skipped, 3);
    }

    #[test]
    fn version_2_0_has_a_length_column() {
        let text =
            ";$FILEVERSION=2.0\n      1      1059.900 DT     0300 Rx 7 00 00 00 00 04 00 00\n";
        let (items, _) = frames(text);
        let f = items[0].as_ref().unwrap();
        assert_eq!((f.frame.raw_id(), f.frame.data().len()), (0x300, 7));
    }
}
