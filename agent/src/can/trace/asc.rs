//! Vector ASC traces (CANoe, CANalyzer, and the many tools that write the same text): header,
//! classic CAN lines, CAN FD lines, error frames. A sans-IO line parser ([`AscParser`]) and a
//! reader over any [`BufRead`] ([`AscReader`]).
//!
//! Written here rather than taken from a crate: the one Rust ASC reader found, `blf_asc` (0.2,
//! the renamed `codex_blf` whose 0.1 was yanked), is a young, undocumented single-author port of
//! python-can; a line parser that allocates nothing per line and names every bad line is short.
//!
//! What is read:
//! - `date <weekday> <month> <day> <time> [AM|PM] <year>` gives the absolute start; a later
//!   `Begin Triggerblock <date>` replaces it (as python-can does). Without a date the
//!   timestamps are relative.
//! - `base hex|dec` (ids, DLCs and data bytes of classic lines in that base) and
//!   `timestamps absolute|relative` (relative: each line's time is since the previous event).
//! - `<time> <ch> <id>[x] Rx|Tx d <dlc> <bytes…>` and `… r [<dlc>]` (remote request);
//! - `<time> CANFD <ch> Rx|Tx <id>[x] [<name>] <brs> <esi> <dlc hex> <length> <bytes…>`; a
//!   length of 0 with a DLC above 0 is a remote request, read as a classic one (CAN FD has no
//!   remote frames);
//! - timestamps with a decimal point or comma (`2.501000`, `2,501000`).
//!
//! Error frames (`<ch> ErrorFrame`, `CANFD <ch> <dir> ErrorFrame`) are counted as skipped, as
//! candump's are. Other events (status, statistics, J1939 transport summaries, `TxRq`, other
//! bus kinds) are valid lines without a frame: skipped. A line that starts like a CAN frame but
//! does not parse is an error naming its line.

use core::time::Duration;
use std::io::BufRead;

use super::text::{self, Lines, hex_digit, tokens};
use super::{Channel, ChannelMap, Format, Position, ReadError};
use crate::can::candump::{TraceFrame, TraceStats};
use crate::can::frame::{CanFrame, FD_LENGTHS, raw_to_id};

/// What one ASC line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AscLine {
    /// A data or remote frame.
    Frame {
        /// The time as the line has it, since the start of the measurement.
        offset: Duration,
        /// The bus number (1-based).
        channel: u16,
        /// The frame.
        frame: CanFrame,
    },
    /// An error frame (counted, not yielded).
    ErrorFrame,
    /// A header or an event that is not a frame.
    Other,
}

/// The state an ASC file's header sets up, and the line parser that uses it.
#[derive(Debug, Clone, Default)]
pub struct AscParser {
    decimal: bool,
    relative: bool,
    start: Option<Duration>,
    last: Duration,
}

impl AscParser {
    /// A parser in the defaults (`base hex`, `timestamps absolute`, no date).
    pub fn new() -> Self {
        Self::default()
    }

    /// The absolute start the header gave, if any.
    pub fn start(&self) -> Option<Duration> {
        self.start
    }

    /// Parses one line (without its line ending).
    ///
    /// # Errors
    /// A reason when the line looks like a CAN frame but is not a valid one.
    pub(crate) fn parse(&mut self, line: &[u8]) -> Result<AscLine, &'static str> {
        let mut toks = tokens(line);
        let Some(first) = toks.next() else {
            return Ok(AscLine::Other);
        };
        let Some(mut offset) = text::seconds(first) else {
            self.header(first, line);
            return Ok(AscLine::Other);
        };
        if self.relative {
            offset = self.last.saturating_add(offset);
        }
        let Some(second) = toks.next() else {
            return Ok(AscLine::Other);
        };
        let parsed = if second.eq_ignore_ascii_case(b"CANFD") {
            self.canfd(&mut toks)
        } else if let Some(ch) = channel(second) {
            self.classic(ch, &mut toks)
        } else {
            Ok(None)
        };
        // Any timestamped event moves the relative clock on.
        self.last = offset;
        match parsed? {
            Some(Parsed::Frame(channel, frame)) => Ok(AscLine::Frame {
                offset,
                channel,
                frame,
            }),
            Some(Parsed::Error) => Ok(AscLine::ErrorFrame),
            None => Ok(AscLine::Other),
        }
    }

    fn header(&mut self, first: &[u8], line: &[u8]) {
        let rest = |n: usize| line.trim_ascii_start().get(n..).unwrap_or_default();
        if first.eq_ignore_ascii_case(b"date") {
            if let Some(d) = text::vector_date(rest(4)) {
                self.start = Some(d);
            }
        } else if first.eq_ignore_ascii_case(b"base") {
            let mut toks = tokens(line).skip(1);
            while let Some(t) = toks.next() {
                if t.eq_ignore_ascii_case(b"dec") {
                    self.decimal = true;
                } else if t.eq_ignore_ascii_case(b"hex") {
                    self.decimal = false;
                } else if t.eq_ignore_ascii_case(b"timestamps") {
                    self.relative = toks
                        .next()
                        .is_some_and(|v| v.eq_ignore_ascii_case(b"relative"));
                }
            }
        } else if first.eq_ignore_ascii_case(b"begin") {
            // `Begin Triggerblock <date>`: python-can takes this date over the header's.
            let body = rest(5).trim_ascii_start();
            if let Some(date) = body
                .get(..12)
                .filter(|t| t.eq_ignore_ascii_case(b"triggerblock"))
                .and_then(|_| body.get(12..))
                .and_then(text::vector_date)
            {
                self.start = Some(date);
            }
            self.last = Duration::ZERO;
        }
    }

    /// `<id>[x] Rx|Tx d <dlc> <bytes>` / `… r [<dlc>]` / `ErrorFrame …`.
    fn classic<'a>(
        &self,
        ch: u16,
        toks: &mut impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<Parsed>, &'static str> {
        let Some(id_tok) = toks.next() else {
            return Ok(None);
        };
        if id_tok.eq_ignore_ascii_case(b"ErrorFrame") {
            return Ok(Some(Parsed::Error));
        }
        let dir = toks.next().unwrap_or_default();
        if !(dir.eq_ignore_ascii_case(b"Rx") || dir.eq_ignore_ascii_case(b"Tx")) {
            // `Statistic:`, `J1939TP …`, `TxRq`, a symbolic event: not a frame.
            return Ok(None);
        }
        let (raw, extended) = self
            .id(id_tok)
            .ok_or("CAN id is not a number in the file's base")?;
        let id =
            raw_to_id(raw, extended).ok_or("CAN id does not fit in 11 (or 29, with x) bits")?;
        let kind = toks.next().ok_or("expected d or r after the direction")?;
        if kind.eq_ignore_ascii_case(b"r") {
            // The DLC is optional: `r`, `r 8`, or `r Length = …` (trailing columns).
            let dlc = toks.next().and_then(|t| self.number(t)).unwrap_or(0);
            let dlc = usize::try_from(dlc).map_err(|_| "remote DLC above 8")?;
            let frame = <CanFrame as embedded_can::Frame>::new_remote(id, dlc)
                .ok_or("remote DLC above 8")?;
            return Ok(Some(Parsed::Frame(ch, frame)));
        }
        if !kind.eq_ignore_ascii_case(b"d") {
            return Err("expected d (data) or r (remote) after the direction");
        }
        let dlc = toks
            .next()
            .and_then(|t| self.number(t))
            .ok_or("expected a DLC")?;
        // DLC 9-15 on classic CAN still means 8 bytes.
        let len = usize::try_from(dlc.min(8)).unwrap_or(8);
        if dlc > 15 {
            return Err("DLC above 15");
        }
        let mut data = [0u8; 8];
        for slot in data.iter_mut().take(len) {
            let t = toks.next().ok_or("fewer data bytes than the DLC says")?;
            *slot = self
                .byte(t)
                .ok_or("data byte is not a number in the file's base")?;
        }
        let frame = <CanFrame as embedded_can::Frame>::new(id, data.get(..len).unwrap_or_default())
            .ok_or("more than 8 data bytes")?;
        Ok(Some(Parsed::Frame(ch, frame)))
    }

    /// `<ch> Rx|Tx <id>[x] [<name>] <brs> <esi> <dlc hex> <length> <bytes…>` after `CANFD`.
    fn canfd<'a>(
        &self,
        toks: &mut impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<Parsed>, &'static str> {
        let ch = toks
            .next()
            .and_then(channel)
            .ok_or("expected a channel after CANFD")?;
        let dir = toks.next().unwrap_or_default();
        if !(dir.eq_ignore_ascii_case(b"Rx") || dir.eq_ignore_ascii_case(b"Tx")) {
            return Ok(None);
        }
        let id_tok = toks.next().ok_or("expected a CAN id")?;
        if id_tok.eq_ignore_ascii_case(b"ErrorFrame") {
            return Ok(Some(Parsed::Error));
        }
        let (raw, extended) = self
            .id(id_tok)
            .ok_or("CAN id is not a number in the file's base")?;
        let id =
            raw_to_id(raw, extended).ok_or("CAN id does not fit in 11 (or 29, with x) bits")?;
        let mut brs_tok = toks.next().ok_or("expected the BRS flag")?;
        if brs_tok != b"0" && brs_tok != b"1" {
            // A symbolic name sits between the id and the flags.
            brs_tok = toks.next().ok_or("expected the BRS flag")?;
        }
        let brs = flag(brs_tok).ok_or("BRS flag is not 0 or 1")?;
        let esi = toks.next().and_then(flag).ok_or("ESI flag is not 0 or 1")?;
        let dlc = toks
            .next()
            .and_then(|t| match t {
                [d] => hex_digit(*d),
                _ => None,
            })
            .ok_or("DLC is not one hex digit")?;
        let len = toks
            .next()
            .and_then(text::decimal_u64)
            .ok_or("expected the data length")?;
        if len == 0 && dlc > 0 {
            let frame = <CanFrame as embedded_can::Frame>::new_remote(id, usize::from(dlc.min(8)))
                .ok_or("remote DLC above 8")?;
            return Ok(Some(Parsed::Frame(ch, frame)));
        }
        let len = usize::try_from(len).map_err(|_| "data length too large")?;
        if !FD_LENGTHS.contains(&len) {
            return Err("data length is not a CAN FD length (0-8, 12, 16, 20, 24, 32, 48, 64)");
        }
        let mut data = [0u8; 64];
        for slot in data.iter_mut().take(len) {
            let t = toks
                .next()
                .ok_or("fewer data bytes than the data length says")?;
            *slot = self
                .byte(t)
                .ok_or("data byte is not a number in the file's base")?;
        }
        let frame = CanFrame::new_fd(id, data.get(..len).unwrap_or_default(), brs)
            .ok_or("data length is not a CAN FD length")?
            .with_esi(esi);
        Ok(Some(Parsed::Frame(ch, frame)))
    }

    /// An id in the file's base, `x` marking a 29-bit one.
    fn id(&self, tok: &[u8]) -> Option<(u32, bool)> {
        let (digits, extended) = match tok.split_last() {
            Some((b'x' | b'X', rest)) => (rest, true),
            _ => (tok, false),
        };
        Some((u32::try_from(self.number(digits)?).ok()?, extended))
    }

    fn number(&self, tok: &[u8]) -> Option<u64> {
        if self.decimal {
            text::decimal_u64(tok)
        } else {
            text::hex_u32(tok).map(u64::from)
        }
    }

    fn byte(&self, tok: &[u8]) -> Option<u8> {
        if !self.decimal
            && let [h, l] = tok
        {
            return Some((hex_digit(*h)? << 4) | hex_digit(*l)?);
        }
        u8::try_from(self.number(tok)?).ok()
    }
}

enum Parsed {
    Frame(u16, CanFrame),
    Error,
}

/// A channel number: 1-3 decimal digits.
fn channel(tok: &[u8]) -> Option<u16> {
    if tok.len() > 3 {
        return None;
    }
    u16::try_from(text::decimal_u64(tok)?).ok()
}

fn flag(tok: &[u8]) -> Option<bool> {
    match tok {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

/// An ASC trace read frame by frame from any [`BufRead`].
#[derive(Debug)]
pub struct AscReader<R> {
    lines: Lines<R>,
    parser: AscParser,
    channels: ChannelMap,
    stats: TraceStats,
    failed: bool,
}

impl<R: BufRead> AscReader<R> {
    /// A reader over `reader`, naming channels by `channels`.
    pub fn new(reader: R, channels: ChannelMap) -> Self {
        Self {
            lines: Lines::new(reader),
            parser: AscParser::new(),
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
            format: Format::Asc,
            at: Position::Line(self.lines.number),
            reason: reason.to_owned(),
        }
    }
}

impl<R: BufRead> Iterator for AscReader<R> {
    type Item = Result<TraceFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self
                .lines
                .advance(Format::Asc, &mut self.stats, &mut self.failed)?
            {
                Ok(()) => {}
                Err(e) => return Some(Err(e)),
            }
            match self.parser.parse(&self.lines.buf) {
                Ok(AscLine::Frame {
                    offset,
                    channel,
                    frame,
                }) => {
                    let Some(timestamp) = super::timestamp(self.parser.start, offset) else {
                        return Some(Err(self.bad("time beyond 999,999,999,999 s")));
                    };
                    self.stats.frames += 1;
                    return Some(Ok(TraceFrame {
                        timestamp: Some(timestamp),
                        interface: Channel::Number(channel).resolve(&self.channels),
                        frame,
                    }));
                }
                Ok(AscLine::ErrorFrame | AscLine::Other) => self.stats.skipped += 1,
                Err(reason) => return Some(Err(self.bad(reason))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::can::candump::Timestamp;
    use embedded_can::Frame as _;

    fn read(text: &str) -> (Vec<Result<TraceFrame, ReadError>>, TraceStats) {
        let mut r = AscReader::new(text.as_bytes(), ChannelMap::default());
        let items: Vec<_> = r.by_ref().collect();
        (items, r.stats())
    }

    const HEADER: &str = "date Sat Sep 30 10:06:13.191 PM 2017\nbase hex  timestamps absolute\n";

    #[test]
    fn both_decimal_locales_read_the_same() {
        let point = format!("{HEADER}   2.501000 1  1A3  Rx d 2 01 FF\n");
        let comma = format!("{HEADER}   2,501000 1  1A3  Rx d 2 01 FF\n");
        let (a, _) = read(&point);
        let (b, _) = read(&comma);
        let a = a.into_iter().next().unwrap().unwrap();
        let b = b.into_iter().next().unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.timestamp,
            Some(Timestamp::Absolute(Duration::from_micros(
                1_506_809_173_191_000 + 2_501_000
            )))
        );
        assert_eq!((a.frame.raw_id(), a.frame.data()), (0x1A3, &[1, 0xFF][..]));
        assert_eq!(a.interface.as_str(), "can0");
    }

    #[test]
    fn base_dec_relative_timestamps_remote_and_fd() {
        let text = "base dec  timestamps relative\n\
            0.5 2 419x Rx d 3 1 2 255\n\
            0.25 1 ErrorFrame\n\
            0.25 1 100 Tx r 4\n\
            1.0 CANFD 3 Rx 474841255x name 1 1 9 12 0 1 2 3 4 5 6 7 8 9 10 11 1 2 3\n";
        let (items, stats) = read(text);
        let frames: Vec<TraceFrame> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[0].timestamp,
            Some(Timestamp::Relative(Duration::from_millis(500)))
        );
        assert!(frames[0].frame.is_extended());
        assert_eq!(frames[0].frame.raw_id(), 419);
        assert_eq!(frames[0].frame.data(), &[1, 2, 255]);
        assert_eq!(frames[0].interface.as_str(), "can1");
        assert!(frames[1].frame.is_remote_frame());
        assert_eq!(frames[1].frame.dlc(), 4);
        assert_eq!(
            frames[1].timestamp,
            Some(Timestamp::Relative(Duration::from_millis(1000)))
        );
        let fd = &frames[2].frame;
        assert!(fd.is_fd() && fd.is_brs() && fd.is_esi());
        assert_eq!(fd.data().len(), 12);
        assert_eq!(fd.data()[11], 11);
        assert_eq!(fd.raw_id(), 0x1C4D_80A7);
        assert_eq!((stats.frames, stats.skipped, stats.bad), (3, 2, 0));
    }

    /// Found by the fuzzer: a time candump cannot take back (more than 12 digits of seconds)
    /// was yielded, so `trace convert` wrote a line no reader reads.
    #[test]
    fn times_past_twelve_digits_of_seconds_are_bad_lines() {
        let (items, stats) = read("3133333333383338.000000 1 009 Rx r\n2.0 1 009 Rx r\n");
        assert!(
            matches!(&items[0], Err(ReadError::Record { reason, .. }) if reason.contains("beyond"))
        );
        assert!(items[1].is_ok());
        assert_eq!((stats.frames, stats.bad), (1, 1));
    }

    #[test]
    fn bad_lines_are_errors_with_their_line_and_reading_goes_on() {
        let text = format!(
            "{HEADER}1.0 1 1A3 Rx d 4 01 02\n1.0 1 FFF Rx d 1 01\n1.0 1 800x Rx q\n1.1 1 1A3 Rx d 1 07\n"
        );
        let (items, stats) = read(&text);
        let lines: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                Err(ReadError::Record {
                    at: Position::Line(n),
                    ..
                }) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(lines, [3, 4, 5]);
        assert_eq!(stats.bad, 3);
        assert_eq!(items.last().unwrap().as_ref().unwrap().frame.data(), &[7]);
        assert!(matches!(
            &items[1],
            Err(ReadError::Record { reason, .. }) if reason.contains("11")
        ));
    }
}
