//! can-utils trace files: parsing one `candump` line into a [`CanFrame`] with its interface
//! and timestamp, reading a whole trace line by line, and writing the `candump -l` form.
//!
//! Both forms users have are read:
//! - the log form written by `candump -l` / `-L`: `(1436509052.249713) can0 7E8#0641A6000123`,
//!   with `ID##<flags><data>` for CAN FD and `ID#R[<dlc>]` for remote requests;
//! - the screen form (candump's default output): ` (000.005001)  can0  18FEDF00   [8]  8A A0 …`,
//!   with or without the timestamp, `[0]  remote request`, `[12]` (two digits: CAN FD) and the
//!   `-x` (`RX B E`) and `-a` (`'ascii'`) extras.
//!
//! Error frames and blank lines are not frames: they come back as [`Line::Skip`], not as errors.
//! This module owns the text format only; it does not open files, replay at speed or decode any
//! protocol (that is [`crate::proto`]). Parsing never allocates: the interface name is kept
//! inline (Linux caps it at 15 bytes) and the reader reuses one line buffer.

use core::fmt;
use core::time::Duration;
use std::io::BufRead;

use embedded_can::Frame as _;

use super::frame::{CanFrame, FD_LENGTHS, raw_to_id};

/// Longest interface name a trace line may carry: Linux's `IFNAMSIZ` (16) less the NUL.
pub const MAX_INTERFACE_LEN: usize = 15;

/// Longest trace line [`TraceReader`] accepts; a 64-byte CAN FD frame in the screen form with
/// every extra column is about 260 bytes, so anything far longer is not a candump line.
pub const MAX_LINE_LEN: usize = 1024;

/// Bit 29 of a candump id marks a SocketCAN error frame (`CAN_ERR_FLAG`).
const CAN_ERR_FLAG: u32 = 0x2000_0000;

/// When a frame was seen, as the trace says.
///
/// candump writes absolute time (`-l`, `-t a`, `-t A`) as seconds since the Unix epoch padded
/// to 10 digits, and relative time (`-t z`, `-t d`) as `%03d` seconds. So a seconds field of 10
/// or more digits is read as absolute and a shorter one as relative. The line cannot tell
/// `-t z` (since the first frame) from `-t d` (since the previous frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timestamp {
    /// Time since the Unix epoch (wall clock of the capturing machine).
    Absolute(Duration),
    /// Time since the start of the capture (or the previous frame, for `candump -t d`).
    Relative(Duration),
}

impl Timestamp {
    /// The time as a duration, whatever its origin.
    pub fn as_duration(self) -> Duration {
        match self {
            Self::Absolute(d) | Self::Relative(d) => d,
        }
    }

    /// Whole microseconds since the origin (saturating at `u64::MAX`).
    pub fn micros(self) -> u64 {
        u64::try_from(self.as_duration().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A SocketCAN interface name held inline (at most [`MAX_INTERFACE_LEN`] bytes of printable
/// ASCII), so a parsed line borrows nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interface {
    len: u8,
    bytes: [u8; MAX_INTERFACE_LEN],
}

impl Interface {
    /// The name, or `None` if it is empty, longer than [`MAX_INTERFACE_LEN`] or not printable
    /// ASCII without spaces.
    pub fn new(name: &str) -> Option<Self> {
        Self::from_bytes(name.as_bytes())
    }

    fn from_bytes(name: &[u8]) -> Option<Self> {
        if name.is_empty() || name.len() > MAX_INTERFACE_LEN {
            return None;
        }
        if !name.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0; MAX_INTERFACE_LEN];
        bytes.get_mut(..name.len())?.copy_from_slice(name);
        Some(Self {
            len: u8::try_from(name.len()).ok()?,
            bytes,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        // Only printable ASCII is ever stored (see `from_bytes`), so this cannot fail.
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl fmt::Debug for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One frame read from a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFrame {
    /// The timestamp, if the line had one.
    pub timestamp: Option<Timestamp>,
    /// The interface the frame was captured on (`can0`, `vcan-0`, …).
    pub interface: Interface,
    /// The frame itself.
    pub frame: CanFrame,
}

/// What a well-formed trace line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A data or remote frame.
    Frame(TraceFrame),
    /// A line that is valid but carries no frame.
    Skip(Skip),
}

/// Why a valid line carries no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// Empty or whitespace only.
    Blank,
    /// A SocketCAN error frame (`ERRORFRAME`, `ERROR`, or an id with bit 29 set).
    ErrorFrame,
}

/// A line that is not a candump line, and where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct ParseError {
    /// 1-based byte column where the problem starts.
    pub column: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// What is wrong with a trace line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// `(` without a closing `)`.
    #[error("timestamp has no closing ')'")]
    UnclosedTimestamp,
    /// The text between the parentheses is not a time candump writes.
    #[error("timestamp is neither <seconds>.<fraction> nor YYYY-MM-DD HH:MM:SS.<fraction>")]
    BadTimestamp,
    /// No interface name where one belongs.
    #[error("expected an interface name")]
    MissingInterface,
    /// The interface name is too long or has unprintable bytes.
    #[error("interface name is not 1–15 printable ASCII characters")]
    BadInterface,
    /// Nothing after the interface name.
    #[error("expected a frame after the interface name")]
    MissingFrame,
    /// The id is not 3 (11-bit) or 8 (29-bit) hex digits.
    #[error("CAN id has {digits} characters; expected 3 hex digits (11-bit) or 8 (29-bit)")]
    BadIdLength {
        /// How many characters the id field has.
        digits: usize,
    },
    /// An 8-digit id with bits above the 29-bit range set (other than the error flag).
    #[error("CAN id 0x{id:08X} does not fit in 29 bits")]
    IdOutOfRange {
        /// The id as read.
        id: u32,
    },
    /// A character that should be a hex digit is not.
    #[error("expected a hex digit, found {found:?}")]
    BadHex {
        /// The offending character.
        found: char,
    },
    /// The data ends in half a byte.
    #[error("data has an odd number of hex digits")]
    OddHexDigits,
    /// More data than the frame kind can hold.
    #[error("more than {max} data bytes")]
    TooManyBytes {
        /// The most bytes this frame kind carries.
        max: usize,
    },
    /// A length that no CAN frame has (classic 0–8; FD 12, 16, 20, 24, 32, 48, 64).
    #[error("{len} data bytes is not a valid {} length", if *fd { "CAN FD" } else { "CAN" })]
    BadLength {
        /// The length found.
        len: usize,
        /// Whether the frame is CAN FD.
        fd: bool,
    },
    /// The remote-request DLC after `R` is not 0–8.
    #[error("remote request DLC must be 0–8")]
    BadRemoteDlc,
    /// The screen form's `[n]` is missing or malformed.
    #[error("expected a length like [8] after the id")]
    MissingLength,
    /// The screen form's data does not match its `[n]`.
    #[error("[{declared}] declared but {found} data bytes follow")]
    LengthMismatch {
        /// The length in brackets.
        declared: usize,
        /// The bytes found (counted up to one past the declared length).
        found: usize,
    },
    /// Text after a complete frame.
    #[error("unexpected text after the frame")]
    TrailingText,
    /// The line is longer than [`MAX_LINE_LEN`].
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
}

/// Parses one line of a candump trace (log or screen form; a trailing newline is ignored).
///
/// # Errors
/// [`ParseError`] with the column where the line stops being a candump line.
pub fn parse_line(line: &[u8]) -> Result<Line, ParseError> {
    let mut c = Cursor::new(trim_end(line));
    c.skip_ws();
    if c.at_end() {
        return Ok(Line::Skip(Skip::Blank));
    }
    let timestamp = if c.peek() == Some(b'(') {
        Some(parse_timestamp(&mut c)?)
    } else {
        None
    };
    c.skip_ws();
    let (icol, name) = c.token();
    if name.is_empty() || name.contains(&b'#') {
        return Err(err(icol, ParseErrorKind::MissingInterface));
    }
    let interface = Interface::from_bytes(name).ok_or(err(icol, ParseErrorKind::BadInterface))?;
    c.skip_ws();
    let (fcol, token) = c.token();
    let parsed = match token {
        b"" => return Err(err(fcol, ParseErrorKind::MissingFrame)),
        b"ERROR" | b"ERRORFRAME" => return Ok(Line::Skip(Skip::ErrorFrame)),
        _ if token.contains(&b'#') => {
            let parsed = parse_log_frame(token, fcol)?;
            // Some recorders append a direction column (`R`/`T`); it carries nothing we keep.
            c.skip_ws();
            let (col, extra) = c.token();
            if !matches!(extra, b"" | b"R" | b"T") {
                return Err(err(col, ParseErrorKind::TrailingText));
            }
            c.skip_ws();
            if !c.at_end() {
                return Err(err(c.col(), ParseErrorKind::TrailingText));
            }
            parsed
        }
        _ => parse_screen_frame(&mut c, fcol, token)?,
    };
    Ok(match parsed {
        Some(frame) => Line::Frame(TraceFrame {
            timestamp,
            interface,
            frame,
        }),
        None => Line::Skip(Skip::ErrorFrame),
    })
}

/// Writes `frame` in the `candump -l` form, without a newline:
/// `(1436509052.249713) can0 7E8#0641A6000123`.
///
/// Absolute times are padded to 10 digits of seconds as candump does; relative ones get the
/// screen form's 3, so [`parse_line`] reads each back as the kind it was.
///
/// # Errors
/// Only those of `out`.
pub fn write_log_line<W: fmt::Write>(
    out: &mut W,
    ts: Timestamp,
    interface: &str,
    frame: &CanFrame,
) -> fmt::Result {
    let d = ts.as_duration();
    let (secs, micros) = (d.as_secs(), d.subsec_micros());
    match ts {
        Timestamp::Absolute(_) => write!(out, "({secs:010}.{micros:06}) {interface} ")?,
        Timestamp::Relative(_) => write!(out, "({secs:03}.{micros:06}) {interface} ")?,
    }
    if frame.is_extended() {
        write!(out, "{:08X}#", frame.raw_id())?;
    } else {
        write!(out, "{:03X}#", frame.raw_id())?;
    }
    if frame.is_remote_frame() {
        out.write_char('R')?;
        if frame.dlc() > 0 {
            write!(out, "{}", frame.dlc())?;
        }
        return Ok(());
    }
    if frame.is_fd() {
        let flags = u8::from(frame.is_brs()) | (u8::from(frame.is_esi()) << 1);
        write!(out, "#{flags:X}")?;
    }
    for b in frame.data() {
        write!(out, "{b:02X}")?;
    }
    Ok(())
}

/// [`write_log_line`] into a new `String` (for recording traces; not a decode path).
pub fn format_log_line(ts: Timestamp, interface: &str, frame: &CanFrame) -> String {
    let mut s = String::with_capacity(48 + 2 * frame.data().len());
    // Writing into a String cannot fail.
    let _ = write_log_line(&mut s, ts, interface, frame);
    s
}

/// Counts kept by [`TraceReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Lines read so far.
    pub lines: u64,
    /// Frames yielded.
    pub frames: u64,
    /// Valid lines without a frame (blank, error frames).
    pub skipped: u64,
    /// Lines that failed to parse (each was yielded as an error).
    pub bad: u64,
}

/// A failure while reading a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// One line did not parse; reading carries on with the next.
    #[error("line {line}, {source}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What was wrong with it.
        source: ParseError,
    },
    /// The underlying reader failed; the iterator ends after this.
    #[error("reading the trace after line {line}: {source}")]
    Io {
        /// Lines read before the failure.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Reads a trace line by line from any [`BufRead`], reusing one line buffer.
///
/// Yields each frame, or the error of each bad line (and carries on); blank lines and error
/// frames are counted in [`TraceStats::skipped`] and not yielded.
#[derive(Debug)]
pub struct TraceReader<R> {
    reader: R,
    buf: Vec<u8>,
    stats: TraceStats,
    failed: bool,
}

impl<R: BufRead> TraceReader<R> {
    /// A reader over `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            stats: TraceStats::default(),
            failed: false,
        }
    }

    /// What has been read so far.
    pub fn stats(&self) -> TraceStats {
        self.stats
    }

    /// Reads one line into `buf` (at most `MAX_LINE_LEN` + 1 bytes kept); `Ok(false)` at end.
    /// Returns whether the line was cut short.
    fn read_line(&mut self) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let limit = (MAX_LINE_LEN + 1) as u64;
        let n = <&mut R as std::io::Read>::take(&mut self.reader, limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.len() > MAX_LINE_LEN && self.buf.last() != Some(&b'\n') {
            // Drop the rest of the overlong line without buffering it.
            loop {
                let chunk = self.reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = chunk.len();
                        self.reader.consume(len);
                    }
                }
            }
            return Ok(Some(true));
        }
        Ok(Some(false))
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<TraceFrame, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let too_long = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(too_long)) => too_long,
                Err(source) => {
                    self.failed = true;
                    return Some(Err(TraceError::Io {
                        line: self.stats.lines,
                        source,
                    }));
                }
            };
            self.stats.lines += 1;
            let line = self.stats.lines;
            let parsed = if too_long {
                Err(err(
                    MAX_LINE_LEN + 1,
                    ParseErrorKind::LineTooLong { max: MAX_LINE_LEN },
                ))
            } else {
                parse_line(&self.buf)
            };
            match parsed {
                Ok(Line::Frame(frame)) => {
                    self.stats.frames += 1;
                    return Some(Ok(frame));
                }
                Ok(Line::Skip(_)) => self.stats.skipped += 1,
                Err(source) => {
                    self.stats.bad += 1;
                    return Some(Err(TraceError::Line { line, source }));
                }
            }
        }
    }
}

fn err(column: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { column, kind }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    line.get(..end).unwrap_or_default()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// A byte cursor that knows its column, for error positions.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, i: 0 }
    }

    fn col(&self) -> usize {
        self.i + 1
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn rest(&self) -> &'a [u8] {
        self.s.get(self.i..).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// The next run of non-blank bytes and its column (empty at the end of the line).
    fn token(&mut self) -> (usize, &'a [u8]) {
        let start = self.i;
        while matches!(self.peek(), Some(b) if b != b' ' && b != b'\t') {
            self.i += 1;
        }
        (start + 1, self.s.get(start..self.i).unwrap_or_default())
    }
}

fn parse_timestamp(c: &mut Cursor<'_>) -> Result<Timestamp, ParseError> {
    let open = c.col();
    let rest = c.rest();
    let close = rest
        .iter()
        .position(|&b| b == b')')
        .ok_or(err(open, ParseErrorKind::UnclosedTimestamp))?;
    let inner = rest.get(1..close).unwrap_or_default();
    c.i += close + 1;
    let bad = || err(open + 1, ParseErrorKind::BadTimestamp);
    if inner.contains(&b'-') {
        return parse_date_time(inner)
            .map(Timestamp::Absolute)
            .ok_or_else(bad);
    }
    let dot = inner.iter().position(|&b| b == b'.').ok_or_else(bad)?;
    let (secs, frac) = (inner.get(..dot).unwrap_or_default(), inner.get(dot + 1..));
    let frac = frac.unwrap_or_default();
    // 12 digits of seconds is past the year 33000 and keeps the arithmetic far from overflow.
    if secs.is_empty() || secs.len() > 12 {
        return Err(bad());
    }
    let seconds = parse_decimal(secs).ok_or_else(bad)?;
    let nanos = parse_fraction(frac).ok_or_else(bad)?;
    let d = Duration::new(seconds, nanos);
    Ok(if secs.len() >= 10 {
        Timestamp::Absolute(d)
    } else {
        Timestamp::Relative(d)
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// 1–9 digits after the decimal point, as nanoseconds.
fn parse_fraction(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let value = u32::try_from(parse_decimal(digits)?).ok()?;
    let scale = 10u32.checked_pow(u32::try_from(9 - digits.len()).ok()?)?;
    value.checked_mul(scale)
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (`candump -t A`). candump prints local time and the line does
/// not say which zone, so it is taken as UTC: order and spacing stay right, except across a
/// daylight-saving change.
fn parse_date_time(s: &[u8]) -> Option<Duration> {
    let field = |from: usize, to: usize| parse_decimal(s.get(from..to)?);
    let sep_ok = s.get(4) == Some(&b'-')
        && s.get(7) == Some(&b'-')
        && s.get(10) == Some(&b' ')
        && s.get(13) == Some(&b':')
        && s.get(16) == Some(&b':')
        && s.get(19) == Some(&b'.');
    if !sep_ok {
        return None;
    }
    let (year, month, day) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let (hour, minute, second) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos = parse_fraction(s.get(20..)?)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(Duration::new(secs, nanos))
}

/// Days from 1970-01-01 to a date in 1970..=9999 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // 719_468 days from 0000-03-01 to 1970-01-01; the year range keeps this non-negative.
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// An id field: 3 hex digits for 11-bit, 8 for 29-bit. `Ok(None)` for an error-frame id.
fn parse_id(digits: &[u8], col: usize) -> Result<Option<(u32, bool)>, ParseError> {
    let extended = match digits.len() {
        3 => false,
        8 => true,
        n => return Err(err(col, ParseErrorKind::BadIdLength { digits: n })),
    };
    let mut id = 0u32;
    for (k, &b) in digits.iter().enumerate() {
        let v = hex_val(b).ok_or(err(
            col + k,
            ParseErrorKind::BadHex {
                found: char::from(b),
            },
        ))?;
        id = (id << 4) | u32::from(v);
    }
    if extended && id & CAN_ERR_FLAG != 0 {
        return Ok(None);
    }
    if extended && id > 0x1FFF_FFFF {
        return Err(err(col, ParseErrorKind::IdOutOfRange { id }));
    }
    Ok(Some((id, extended)))
}

/// `ID#data`, `ID#R[dlc]`, `ID##<flags><data>`; `Ok(None)` for an error frame.
fn parse_log_frame(token: &[u8], col: usize) -> Result<Option<CanFrame>, ParseError> {
    let hash = token.iter().position(|&b| b == b'#').unwrap_or(token.len());
    let Some((raw, extended)) = parse_id(token.get(..hash).unwrap_or_default(), col)? else {
        return Ok(None);
    };
    let id = raw_to_id(raw, extended).ok_or(err(col, ParseErrorKind::IdOutOfRange { id: raw }))?;
    let mut at = hash + 1;
    let rest = token.get(at..).unwrap_or_default();
    match rest.first() {
        Some(b'R' | b'r') => {
            let dlc = match rest.get(1..).unwrap_or_default() {
                [] => 0,
                [d] if (b'0'..=b'8').contains(d) => usize::from(d - b'0'),
                _ => return Err(err(col + at + 1, ParseErrorKind::BadRemoteDlc)),
            };
            let frame = CanFrame::new_remote(id, dlc)
                .ok_or(err(col + at + 1, ParseErrorKind::BadRemoteDlc))?;
            return Ok(Some(frame));
        }
        Some(b'#') => {
            let flags_at = at + 1;
            let flags = match token.get(flags_at) {
                Some(&b) => hex_val(b).ok_or(err(
                    col + flags_at,
                    ParseErrorKind::BadHex {
                        found: char::from(b),
                    },
                ))?,
                None => {
                    return Err(err(col + flags_at, ParseErrorKind::BadHex { found: ' ' }));
                }
            };
            at = flags_at + 1;
            let mut data = [0u8; 64];
            let len = parse_hex_data(token, at, col, &mut data, 64)?;
            let bytes = data.get(..len).unwrap_or_default();
            let frame = CanFrame::new_fd(id, bytes, flags & 1 != 0)
                .ok_or(err(col + at, ParseErrorKind::BadLength { len, fd: true }))?;
            return Ok(Some(frame.with_esi(flags & 2 != 0)));
        }
        _ => {}
    }
    let mut data = [0u8; 8];
    // A classic frame may end in `_<dlc>` (len8_dlc: a raw DLC of 9–F on an 8-byte frame);
    // the frame type keeps the data only, so the raw DLC is checked and dropped.
    let (body_end, dlc_suffix) = match token.iter().rposition(|&b| b == b'_') {
        Some(u) if u > at => (u, token.get(u + 1..)),
        _ => (token.len(), None),
    };
    let body = token.get(..body_end).unwrap_or_default();
    let len = parse_hex_data(body, at, col, &mut data, 8)?;
    if let Some(suffix) = dlc_suffix {
        let ok = len == 8 && matches!(suffix, [d] if hex_val(*d).is_some_and(|v| v > 8));
        if !ok {
            return Err(err(col + body_end, ParseErrorKind::TrailingText));
        }
    }
    let bytes = data.get(..len).unwrap_or_default();
    let frame =
        CanFrame::new(id, bytes).ok_or(err(col, ParseErrorKind::BadLength { len, fd: false }))?;
    Ok(Some(frame))
}

/// Hex pairs from `s[at..]`, optionally separated by `.`, into `out`; returns the count.
fn parse_hex_data(
    s: &[u8],
    mut at: usize,
    col: usize,
    out: &mut [u8],
    max: usize,
) -> Result<usize, ParseError> {
    let mut n = 0;
    while at < s.len() {
        if s.get(at) == Some(&b'.') {
            at += 1;
            continue;
        }
        let hi = s.get(at).copied().unwrap_or(b' ');
        let Some(lo) = s.get(at + 1).copied() else {
            return Err(err(col + at, ParseErrorKind::OddHexDigits));
        };
        let h = hex_val(hi).ok_or(err(
            col + at,
            ParseErrorKind::BadHex {
                found: char::from(hi),
            },
        ))?;
        let l = hex_val(lo).ok_or(err(
            col + at + 1,
            ParseErrorKind::BadHex {
                found: char::from(lo),
            },
        ))?;
        let slot = out
            .get_mut(n)
            .filter(|_| n < max)
            .ok_or(err(col + at, ParseErrorKind::TooManyBytes { max }))?;
        *slot = (h << 4) | l;
        n += 1;
        at += 2;
    }
    Ok(n)
}

/// The screen form after the interface: `[RX|TX B|- E|-]  ID  [n]  AA BB … ['ascii'|ERRORFRAME]`.
/// `token` is the first field after the interface, at column `col`.
fn parse_screen_frame<'a>(
    c: &mut Cursor<'a>,
    mut col: usize,
    mut token: &'a [u8],
) -> Result<Option<CanFrame>, ParseError> {
    let (mut brs, mut esi) = (false, false);
    if matches!(token, b"RX" | b"TX") {
        // `candump -x`: direction, then the BRS and ESI columns (`B`/`-`, `E`/`-`).
        c.skip_ws();
        brs = c.token().1 == b"B";
        c.skip_ws();
        esi = c.token().1 == b"E";
        c.skip_ws();
        (col, token) = c.token();
    }
    let id = parse_id(token, col)?;
    c.skip_ws();
    let (lcol, len_tok) = c.token();
    let (declared, fd) = match len_tok {
        [b'[', d, b']'] if d.is_ascii_digit() => (usize::from(d - b'0'), false),
        // can-utils prints CAN FD lengths as `[%02d]` and classic ones as `[%d]`.
        [b'[', d1, d2, b']'] if d1.is_ascii_digit() && d2.is_ascii_digit() => {
            (usize::from(d1 - b'0') * 10 + usize::from(d2 - b'0'), true)
        }
        _ => return Err(err(lcol, ParseErrorKind::MissingLength)),
    };
    let Some((raw, extended)) = id else {
        return Ok(None);
    };
    let id = raw_to_id(raw, extended).ok_or(err(col, ParseErrorKind::IdOutOfRange { id: raw }))?;
    let valid = if fd {
        FD_LENGTHS.contains(&declared)
    } else {
        declared <= 8
    };
    if !valid {
        return Err(err(lcol, ParseErrorKind::BadLength { len: declared, fd }));
    }
    c.skip_ws();
    if !fd && c.rest().starts_with(b"remote request") {
        c.i += b"remote request".len();
        c.skip_ws();
        if !c.at_end() {
            return Err(err(c.col(), ParseErrorKind::TrailingText));
        }
        return Ok(CanFrame::new_remote(id, declared));
    }
    let mut data = [0u8; 64];
    for (n, slot) in data.iter_mut().take(declared).enumerate() {
        c.skip_ws();
        let (bcol, byte) = c.token();
        let mismatch = err(bcol, ParseErrorKind::LengthMismatch { declared, found: n });
        let [hi, lo] = byte else {
            return Err(if byte.is_empty() || byte.starts_with(b"'") {
                mismatch
            } else {
                err(
                    bcol,
                    ParseErrorKind::BadHex {
                        found: char::from(byte.first().copied().unwrap_or(b' ')),
                    },
                )
            });
        };
        let h = hex_val(*hi).ok_or(err(
            bcol,
            ParseErrorKind::BadHex {
                found: char::from(*hi),
            },
        ))?;
        let l = hex_val(*lo).ok_or(err(
            bcol + 1,
            ParseErrorKind::BadHex {
                found: char::from(*lo),
            },
        ))?;
        *slot = (h << 4) | l;
    }
    c.skip_ws();
    let tail = c.rest();
    if tail.starts_with(b"ERRORFRAME") {
        return Ok(None);
    }
    if !tail.is_empty() && !tail.starts_with(b"'") && !tail.starts_with(b"`") {
        let (tcol, t) = c.token();
        let kind = if t.len() == 2 && t.iter().all(|b| hex_val(*b).is_some()) {
            ParseErrorKind::LengthMismatch {
                declared,
                found: declared + 1,
            }
        } else {
            ParseErrorKind::TrailingText
        };
        return Err(err(tcol, kind));
    }
    let bytes = data.get(..declared).unwrap_or_default();
    let frame = if fd {
        CanFrame::new_fd(id, bytes, brs).map(|f| f.with_esi(esi))
    } else {
        CanFrame::new(id, bytes)
    };
    frame
        .map(Some)
        .ok_or(err(lcol, ParseErrorKind::BadLength { len: declared, fd }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn frame(line: &str) -> TraceFrame {
        match parse_line(line.as_bytes()) {
            Ok(Line::Frame(f)) => f,
            other => panic!("{line:?}: expected a frame, got {other:?}"),
        }
    }

    fn micros(m: u64) -> Duration {
        Duration::from_micros(m)
    }

    // VECTORS.md §5 (cantools tests/test_logreader.py @ c1dcd396).
    #[test]
    fn vectors_screen_form_without_timestamp() {
        let f = frame("vcan0  0C8   [8]  F0 00 00 00 00 00 00 00");
        assert_eq!(f.timestamp, None);
        assert_eq!(f.interface.as_str(), "vcan0");
        assert_eq!(f.frame.raw_id(), 0xC8);
        assert!(!f.frame.is_extended() && !f.frame.is_fd());
        assert_eq!(f.frame.data(), &[0xF0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn vectors_eight_digit_id_is_extended() {
        let f = frame("  vcan0  00000123   [8]  12 34 56 78 90 AB CD EF");
        assert_eq!(f.frame.raw_id(), 0x123);
        assert!(f.frame.is_extended());
        assert_eq!(
            f.frame.data(),
            &[0x12, 0x34, 0x56, 0x78, 0x90, 0xAB, 0xCD, 0xEF]
        );
    }

    #[test]
    fn vectors_screen_remote_request() {
        let f = frame("  vcan0  00000123   [0]  remote request");
        assert!(f.frame.is_extended() && f.frame.is_remote_frame());
        assert_eq!(f.frame.raw_id(), 0x123);
        assert!(f.frame.data().is_empty());
        let f = frame("  can0  7DF   [3]  remote request");
        assert_eq!(f.frame.dlc(), 3);
    }

    #[test]
    fn vectors_relative_timestamp() {
        let f = frame("(002.047817)  vcan0  064   [8]  F0 01 FF FF FF FF FF FF");
        assert_eq!(f.timestamp, Some(Timestamp::Relative(micros(2_047_817))));
        assert_eq!(f.frame.raw_id(), 0x64);
        assert_eq!(
            f.frame.data(),
            &[0xF0, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn vectors_log_form_absolute() {
        let f = frame("(1579857014.345944) can2 486#82967A6B006B07F8");
        assert_eq!(
            f.timestamp,
            Some(Timestamp::Absolute(micros(1_579_857_014_345_944)))
        );
        assert_eq!(f.interface.as_str(), "can2");
        assert_eq!(f.frame.raw_id(), 0x486);
        assert!(!f.frame.is_extended());
        assert_eq!(
            f.frame.data(),
            &[0x82, 0x96, 0x7A, 0x6B, 0x00, 0x6B, 0x07, 0xF8]
        );
    }

    #[test]
    fn vectors_log_form_fd() {
        let f = frame(
            "(1613656104.501098) can3 14C##155B53476F7B82EEEB8E97236AC252B8BBB5B80A6A7734B2F675C6D2CEEC869D3",
        );
        assert_eq!(f.frame.raw_id(), 0x14C);
        assert!(f.frame.is_fd() && f.frame.is_brs() && !f.frame.is_esi()); // flags nibble 1 = BRS
        assert_eq!(f.frame.data().len(), 32);
        assert_eq!(f.frame.data()[..4], [0x55, 0xB5, 0x34, 0x76]);
        assert_eq!(f.frame.data()[31], 0xD3);
    }

    #[test]
    fn vectors_error_frames_are_skipped() {
        for line in [
            " (000.000000)  vcan0  20000004   [8]  00 04 00 00 00 00 00 00   ERRORFRAME",
            "  vcan0  ERROR",
            "(1594172462.127684) vcan0 ERROR",
            "(1594172462.127684) vcan0 20000080#0000000000000000",
        ] {
            assert_eq!(
                parse_line(line.as_bytes()),
                Ok(Line::Skip(Skip::ErrorFrame)),
                "{line}"
            );
        }
        assert_eq!(parse_line(b"   \r\n"), Ok(Line::Skip(Skip::Blank)));
    }

    #[test]
    fn vectors_channel_names() {
        assert_eq!(frame("vcan-0  0C8   [1]  F0").interface.as_str(), "vcan-0");
        assert_eq!(frame("(0.1) vcan.0 0C8#F0").interface.as_str(), "vcan.0");
    }

    #[test]
    fn screen_form_from_the_real_truck_trace() {
        // First lines of traces/j1939-attack-datasets/normal.log.
        let f = frame(" (000.005001)  can0  18FEDF00   [8]  8A A0 28 7D 7D FF FF F5");
        assert_eq!(f.timestamp, Some(Timestamp::Relative(micros(5_001))));
        assert_eq!(f.frame.raw_id(), 0x18FE_DF00);
        assert_eq!(f.frame.data()[7], 0xF5);
    }

    #[test]
    fn log_form_variants() {
        let f = frame("(1436509052.249713) can0 7E8#0641A6000123\n");
        assert_eq!(f.frame.data(), &[0x06, 0x41, 0xA6, 0x00, 0x01, 0x23]);
        // Remote without and with a DLC.
        let f = frame("(1436509052.249713) can0 7DF#R");
        assert!(f.frame.is_remote_frame());
        assert_eq!(f.frame.dlc(), 0);
        assert_eq!(frame("(1.0) can0 7DF#R4").frame.dlc(), 4);
        // Dotted data, len8_dlc suffix, empty data, direction column.
        assert_eq!(
            frame("(1.0) can0 123#11.22.33").frame.data(),
            &[0x11, 0x22, 0x33]
        );
        assert_eq!(frame("(1.0) can0 123#1122334455667788_C").frame.dlc(), 8);
        assert!(frame("(1.0) can0 123#").frame.data().is_empty());
        assert_eq!(frame("(1.0) can0 123#AB T").frame.data(), &[0xAB]);
        // FD with ESI only, 12 bytes.
        let f = frame("(1.0) can0 00000123##2000102030405060708090A0B");
        assert!(f.frame.is_fd() && f.frame.is_esi() && !f.frame.is_brs() && f.frame.is_extended());
        assert_eq!(f.frame.data().len(), 12);
    }

    #[test]
    fn screen_form_variants() {
        // can-utils prints FD lengths with two digits: `[08]` is an 8-byte FD frame.
        let f = frame("(1613749650.388103)  can1       0AD  [08]  A6 55 3B CF 3F 1A F5 2A");
        assert!(f.frame.is_fd());
        assert_eq!(
            f.timestamp,
            Some(Timestamp::Absolute(micros(1_613_749_650_388_103)))
        );
        // -x columns and -a ascii tail.
        let f =
            frame(" (000.000001)  can0  RX B -  123  [12]  00 01 02 03 04 05 06 07 08 09 0A 0B");
        assert!(f.frame.is_fd() && f.frame.is_brs() && !f.frame.is_esi());
        let f = frame("  can0  123   [2]  41 42                     'AB'");
        assert_eq!(f.frame.data(), b"AB");
        // candump -t A: date and time, taken as UTC. 2020-12-19 12:04:45 UTC = 1608379485.
        let f = frame("(2020-12-19 12:04:45.485261)  vcan0  0C8   [8]  F0 00 00 00 00 00 00 00");
        assert_eq!(
            f.timestamp,
            Some(Timestamp::Absolute(micros(1_608_379_485_485_261)))
        );
    }

    #[test]
    fn timestamp_digit_rule() {
        // %010 padding makes an early-epoch absolute time 10 digits; relative is %03.
        let t = frame("(0000000012.000001) can0 123#").timestamp.unwrap();
        assert_eq!(t, Timestamp::Absolute(micros(12_000_001)));
        let t = frame("(1234.5) can0 123#").timestamp.unwrap();
        assert_eq!(t, Timestamp::Relative(micros(1_234_500_000)));
        assert_eq!(t.micros(), 1_234_500_000);
    }

    #[test]
    fn garbage_lines_name_the_problem_and_column() {
        use ParseErrorKind as K;
        let table: &[(&str, usize, K)] = &[
            ("(12.5 can0 123#00", 1, K::UnclosedTimestamp),
            ("(abc) can0 123#00", 2, K::BadTimestamp),
            ("(12) can0 123#00", 2, K::BadTimestamp),
            ("(1.0123456789) can0 123#00", 2, K::BadTimestamp),
            ("(2020-13-01 00:00:00.0) can0 123#00", 2, K::BadTimestamp),
            ("(1.0) 123#00", 7, K::MissingInterface),
            ("(1.0)", 6, K::MissingInterface),
            ("(1.0) can0", 11, K::MissingFrame),
            ("(1.0) averyveryverylongname0 123#00", 7, K::BadInterface),
            ("(1.0) can0 1234#00", 12, K::BadIdLength { digits: 4 }),
            ("(1.0) can0 12G#00", 14, K::BadHex { found: 'G' }),
            ("(1.0) can0 123#0", 16, K::OddHexDigits),
            ("(1.0) can0 123#0Z", 17, K::BadHex { found: 'Z' }),
            (
                "(1.0) can0 123#001122334455667788",
                32,
                K::TooManyBytes { max: 8 },
            ),
            ("(1.0) can0 123#R9", 17, K::BadRemoteDlc),
            ("(1.0) can0 123#RR", 17, K::BadRemoteDlc),
            (
                "(1.0) can0 123##1001122334455667788AA",
                18,
                K::BadLength { len: 10, fd: true },
            ),
            ("(1.0) can0 123##", 17, K::BadHex { found: ' ' }),
            (
                "(1.0) can0 C0000000#00",
                12,
                K::IdOutOfRange { id: 0xC000_0000 },
            ),
            ("(1.0) can0 123#00 junk", 19, K::TrailingText),
            ("(1.0) can0 123#0011_3", 20, K::TrailingText),
            ("  can0  123  8  00", 14, K::MissingLength),
            (
                "  can0  123  [9]  00",
                14,
                K::BadLength { len: 9, fd: false },
            ),
            (
                "  can0  123  [10]  00",
                14,
                K::BadLength { len: 10, fd: true },
            ),
            (
                "  can0  123  [3]  00 11",
                24,
                K::LengthMismatch {
                    declared: 3,
                    found: 2,
                },
            ),
            (
                "  can0  123  [1]  00 11",
                22,
                K::LengthMismatch {
                    declared: 1,
                    found: 2,
                },
            ),
            ("  can0  123  [2]  00 1", 22, K::BadHex { found: '1' }),
            ("  can0  123  [1]  XY", 19, K::BadHex { found: 'X' }),
            ("  can0  123  [1]  00 what", 22, K::TrailingText),
            ("  can0  hello  [1]  00", 9, K::BadIdLength { digits: 5 }),
        ];
        let mut wrong = Vec::new();
        for (line, column, kind) in table {
            let got = parse_line(line.as_bytes());
            let want = Err(ParseError {
                column: *column,
                kind: kind.clone(),
            });
            if got != want {
                wrong.push(format!("{line:?}: got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        // The message names what and where.
        let e = parse_line(b"(1.0) can0 12G#00").unwrap_err();
        assert_eq!(e.to_string(), "column 14: expected a hex digit, found 'G'");
    }

    #[test]
    fn non_utf8_and_control_bytes_are_errors_not_panics() {
        assert!(parse_line(b"(1.0) c\xffn0 123#00").is_err());
        assert!(parse_line(b"\xff\xfe").is_err());
        assert!(parse_line(b"(\xc3\xa9) can0 123#00").is_err());
    }

    #[test]
    fn log_line_round_trips() {
        let lines = [
            "(1436509052.249713) can0 7E8#0641A6000123",
            "(1436509052.249713) can0 18FECA00#40FF5B000301FFFF",
            "(1613656104.501098) can3 14C##3000102030405060708090A0B",
            "(1436509052.000000) vcan-0 7DF#R",
            "(1436509052.000000) vcan-0 7DF#R3",
            "(002.047817) vcan0 064#",
        ];
        for line in lines {
            let f = frame(line);
            let out = format_log_line(f.timestamp.unwrap(), f.interface.as_str(), &f.frame);
            assert_eq!(out, line);
        }
    }

    #[test]
    fn reader_counts_frames_skips_and_bad_lines() {
        let text = "(1.0) can0 123#00\n\n  vcan0  ERROR\n garbage here\n(2.0) can0 456#0102\n";
        let mut r = TraceReader::new(text.as_bytes());
        assert_eq!(r.next().unwrap().unwrap().frame.raw_id(), 0x123);
        match r.next().unwrap() {
            Err(TraceError::Line { line: 4, source }) => {
                assert_eq!(source.kind, ParseErrorKind::BadIdLength { digits: 4 });
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.next().unwrap().unwrap().frame.data(), &[1, 2]);
        assert!(r.next().is_none());
        let s = r.stats();
        assert_eq!((s.lines, s.frames, s.skipped, s.bad), (5, 2, 2, 1));
    }

    #[test]
    fn reader_rejects_overlong_lines_and_carries_on() {
        let mut text = vec![b'A'; 5000];
        text.extend_from_slice(b"\n(1.0) can0 123#00\n");
        let mut r = TraceReader::new(std::io::BufReader::with_capacity(64, &text[..]));
        assert!(matches!(
            r.next(),
            Some(Err(TraceError::Line { line: 1, source })) if source.kind == ParseErrorKind::LineTooLong { max: MAX_LINE_LEN }
        ));
        assert_eq!(r.next().unwrap().unwrap().frame.raw_id(), 0x123);
        assert!(r.next().is_none());
    }

    fn read_all(relative: &str) -> Option<(Vec<TraceFrame>, TraceStats)> {
        let path = crate::testdata::shared_data_file(relative)?;
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = TraceReader::new(file);
        let frames: Vec<TraceFrame> = reader.by_ref().map(|r| r.unwrap()).collect();
        Some((frames, reader.stats()))
    }

    #[test]
    fn whole_truck_trace_parses() {
        let Some((frames, stats)) = read_all("traces/j1939-attack-datasets/normal.log") else {
            return;
        };
        assert_eq!(frames.len(), 19_957);
        assert_eq!((stats.bad, stats.skipped), (0, 0));
        assert!(frames.iter().all(|f| f.frame.is_extended()));
        let last = frames.last().unwrap();
        assert_eq!(
            last.timestamp,
            Some(Timestamp::Relative(micros(29_997_509)))
        );
        assert_eq!(last.frame.raw_id(), 0x0CF0_0203);
        // The 3-byte request frames (PGN 59904) keep their short length.
        assert_eq!(
            frames.iter().filter(|f| f.frame.data().len() == 3).count(),
            13
        );
    }

    #[test]
    fn pretty_j1939_traces_parse() {
        let Some((frames, stats)) = read_all("traces/pretty_j1939/candump.log") else {
            return;
        };
        assert_eq!((frames.len(), stats.bad), (3, 0));
        assert_eq!(frames[1].frame.raw_id(), 0x18FE_E000);
        assert_eq!(
            frames[1].frame.data(),
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xB0, 0x5C, 0x68, 0x00]
        );
        let Some((frames, _)) = read_all("traces/pretty_j1939/test_dm1.log") else {
            return;
        };
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].interface.as_str(), "vcan0");
        assert_eq!(
            frames[1].timestamp,
            Some(Timestamp::Absolute(micros(1_612_543_138_001_000)))
        );
        assert_eq!(frames[1].frame.data()[0], 0x40);
    }
}
