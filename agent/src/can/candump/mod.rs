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

use embedded_can::Frame as _;

use super::frame::{CanFrame, FD_LENGTHS, raw_to_id};

mod parse;
mod reader;

pub use parse::parse_line;
pub use reader::{TraceError, TraceReader, TraceStats};

/// Longest interface name a trace line may carry: Linux's `IFNAMSIZ` (16) less the NUL.
pub(crate) const MAX_INTERFACE_LEN: usize = 15;

/// Longest trace line [`TraceReader`] accepts; a 64-byte CAN FD frame in the screen form with
/// every extra column is about 260 bytes, so anything far longer is not a candump line.
pub(crate) const MAX_LINE_LEN: usize = 1024;

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

/// A placeholder name (`?`) where a valid one cannot be built; never expected in practice.
pub(crate) const UNNAMED: Interface = Interface {
    len: 1,
    bytes: [b'?', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
};

impl Interface {
    /// The name, or `None` if it is empty, longer than [`MAX_INTERFACE_LEN`] or not printable
    /// ASCII without spaces.
    pub(crate) fn new(name: &str) -> Option<Self> {
        Self::from_bytes(name.as_bytes())
    }

    /// The name from bytes (the same rules as [`Interface::new`]).
    pub(crate) fn from_ascii(name: &[u8]) -> Option<Self> {
        Self::from_bytes(name)
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
    pub(crate) column: usize,
    /// What is wrong.
    pub(crate) kind: ParseErrorKind,
}

/// What is wrong with a trace line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ParseErrorKind {
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
    // Formatted by hand into one stack buffer: `trace convert` writes millions of lines, and
    // `write!` per data byte cost more than reading the trace did.
    let mut line = LineBuf::new();
    let d = ts.as_duration();
    let (secs, micros) = (d.as_secs(), d.subsec_micros());
    line.push(b'(');
    line.decimal(
        secs,
        if matches!(ts, Timestamp::Absolute(_)) {
            10
        } else {
            3
        },
    );
    line.push(b'.');
    line.decimal(u64::from(micros), 6);
    line.push(b')');
    line.push(b' ');
    out.write_str(line.as_str())?;
    out.write_str(interface)?;
    let mut line = LineBuf::new();
    line.push(b' ');
    if frame.is_extended() {
        line.hex(frame.raw_id(), 8);
    } else {
        line.hex(frame.raw_id(), 3);
    }
    line.push(b'#');
    if frame.is_remote_frame() {
        line.push(b'R');
        if frame.dlc() > 0 {
            line.decimal(frame.dlc() as u64, 1);
        }
    } else {
        if frame.is_fd() {
            let flags = u8::from(frame.is_brs()) | (u8::from(frame.is_esi()) << 1);
            line.push(b'#');
            line.hex(u32::from(flags), 1);
        }
        for &b in frame.data() {
            line.hex(u32::from(b), 2);
        }
    }
    out.write_str(line.as_str())
}

/// A piece of a `candump -l` line being built, ASCII only: the timestamp part (at most 30
/// bytes) or the frame part (at most 1 + 8 + 3 + 128 bytes).
struct LineBuf {
    bytes: [u8; 160],
    len: usize,
}

impl LineBuf {
    fn new() -> Self {
        Self {
            bytes: [0; 160],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `v` in decimal, zero-padded to at least `width` digits.
    fn decimal(&mut self, mut v: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut n = 0;
        while v > 0 || n < width.min(20) {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            n += 1;
            if n == 20 {
                break;
            }
        }
        for i in (0..n).rev() {
            self.push(digits.get(i).copied().unwrap_or(b'0'));
        }
    }

    /// The low `digits` nibbles of `v` in upper-case hex.
    fn hex(&mut self, v: u32, digits: u32) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for i in (0..digits).rev() {
            let nibble = (v >> (4 * i)) & 0xF;
            self.push(HEX.get(nibble as usize).copied().unwrap_or(b'0'));
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, hex letters and punctuation are pushed.
        core::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// [`write_log_line`] into a new `String` (for recording traces; not a decode path).
pub fn format_log_line(ts: Timestamp, interface: &str, frame: &CanFrame) -> String {
    let mut s = String::with_capacity(48 + 2 * frame.data().len());
    // Writing into a String cannot fail.
    let _ = write_log_line(&mut s, ts, interface, frame);
    s
}

#[cfg(test)]
mod tests;
