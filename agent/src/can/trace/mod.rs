//! Every trace format the agent reads, behind one entry point: [`open`] looks at the first
//! bytes (never the file name), picks the reader and yields the same [`TraceFrame`]s as
//! [`candump`](super::candump) does, so `replay`, the trace frame source and `trace convert`
//! read them all.
//!
//! Formats and how they are told apart (binary magics first, then the first non-blank line):
//! - pcap (`a1b2c3d4` / `a1b23c4d` in either byte order) and pcapng (`0a0d0d0a`), link type
//!   `LINKTYPE_CAN_SOCKETCAN` (227) — [`pcap`];
//! - Vector BLF (`LOGG`) — [`blf`];
//! - Vector ASC (a `date `, `base ` or `Begin Triggerblock` line) — [`asc`];
//! - PEAK TRC (a `;` comment header, `;$FILEVERSION=…` in 1.1 and later) — [`trc`];
//! - anything else is read as candump (either form), as before.
//!
//! The four formats beside candump are the `traces` feature: the head unit's build
//! (`--no-default-features`) reads candump only and says so for the others.
//!
//! Channels: ASC, BLF and TRC number their buses (from 1), pcap has one interface per capture
//! (pcapng one per interface block). A [`ChannelMap`] turns the number into an interface name
//! the rest of the agent knows: from the config's `[[can.buses]]` (`trace_channel = N`, else the
//! N-th bus), or `can0`, `can1`, … for channels 1, 2, … without a config. A pcapng interface
//! block that names its interface (`if_name`, as a SocketCAN capture does) keeps that name.
//!
//! This module owns format detection, the channel mapping and the shared error and position
//! types; it does not pace frames ([`super::replay`]) nor decode protocols.

use core::fmt;
use std::io::BufRead;

use super::candump::{self, Interface, TraceFrame, TraceReader, TraceStats};
use crate::config::Can;

#[cfg(feature = "traces")]
pub mod asc;
#[cfg(feature = "traces")]
pub mod blf;
#[cfg(feature = "traces")]
pub mod pcap;
#[cfg(feature = "traces")]
pub(crate) mod text;
#[cfg(feature = "traces")]
pub mod trc;

/// A trace format, as found by [`detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// can-utils `candump` (log or screen form).
    Candump,
    /// Vector ASC (text).
    Asc,
    /// Vector BLF (binary logging format).
    Blf,
    /// PEAK-System TRC (text).
    Trc,
    /// libpcap capture.
    Pcap,
    /// pcapng capture.
    PcapNg,
}

impl Format {
    /// The format's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Candump => "candump",
            Self::Asc => "ASC",
            Self::Blf => "BLF",
            Self::Trc => "TRC",
            Self::Pcap => "pcap",
            Self::PcapNg => "pcapng",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in a trace something was found: a 1-based line for text, a byte offset for binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line number.
    Line(u64),
    /// Byte offset from the start of the file (for BLF objects inside a compressed container:
    /// the offset of that container).
    Byte(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Byte(n) => write!(f, "byte {n}"),
        }
    }
}

/// A failure while reading a trace of any format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// One record (line, object, packet) is not a frame this format can hold; reading carries
    /// on with the next.
    #[error("{format} {at}: {reason}")]
    Record {
        /// The trace's format.
        format: Format,
        /// Where the record starts.
        at: Position,
        /// What is wrong with it.
        reason: String,
    },
    /// The trace cannot be read past this point (a broken header, an object larger than the
    /// reader accepts in a format without a way to find the next one); the iterator ends.
    #[error("{format} {at}: {reason}; the rest of the trace is not read")]
    Fatal {
        /// The trace's format.
        format: Format,
        /// Where reading stopped.
        at: Position,
        /// Why.
        reason: String,
    },
    /// The underlying reader failed; the iterator ends.
    #[error("reading the {format} trace at {at}: {source}")]
    Io {
        /// The trace's format.
        format: Format,
        /// How far reading got.
        at: Position,
        /// The I/O error.
        source: std::io::Error,
    },
    /// This build does not read the format (the head unit's reads candump only).
    #[error(
        "this is a {0} trace; this build of the agent reads candump traces only (feature `traces`)"
    )]
    Unsupported(Format),
}

/// Channel numbers of ASC, BLF, TRC and pcap onto interface names.
///
/// Built from the config's buses: bus `i` (0-based) takes channel `trace_channel` if set, else
/// `i + 1`. Without a config ([`ChannelMap::default`]) channel N is `can{N-1}`. With a config,
/// a channel no bus claims is named `chN`, so it can never be taken for a configured bus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelMap {
    /// `(channel, interface)`; empty means "no config".
    buses: Vec<(u16, Interface)>,
    configured: bool,
}

impl ChannelMap {
    /// The mapping the config's `[[can.buses]]` give (see the type's doc).
    pub fn from_config(can: &Can) -> Self {
        let mut map = Self {
            buses: Vec::with_capacity(can.buses.len()),
            configured: true,
        };
        for (i, bus) in can.buses.iter().enumerate() {
            let channel = bus
                .trace_channel
                .map_or_else(|| u16::try_from(i + 1).unwrap_or(u16::MAX), u16::from);
            if let Some(name) = Interface::new(&bus.interface) {
                map.buses.push((channel, name));
            }
        }
        map
    }

    /// The interface name for `channel`.
    pub fn interface(&self, channel: u16) -> Interface {
        if let Some((_, name)) = self.buses.iter().find(|(c, _)| *c == channel) {
            return *name;
        }
        // Built on the stack: this runs once per frame.
        let (prefix, n): (&[u8], u16) = match (self.configured, channel) {
            (false, 1..) => (b"can", channel - 1),
            _ => (b"ch", channel),
        };
        let mut name = [0u8; 8];
        let mut len = 0;
        for &b in prefix {
            if let Some(slot) = name.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
        let mut digits = [0u8; 5];
        let (mut v, mut k) = (n, 0);
        loop {
            if let Some(d) = digits.get_mut(k) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            k += 1;
            if v == 0 || k == digits.len() {
                break;
            }
        }
        for i in (0..k).rev() {
            if let (Some(slot), Some(d)) = (name.get_mut(len), digits.get(i)) {
                *slot = *d;
                len += 1;
            }
        }
        // "ch65535" and "can65534" are at most 8 printable bytes.
        Interface::from_ascii(name.get(..len).unwrap_or_default()).unwrap_or(FALLBACK)
    }
}

/// Never used: every name [`ChannelMap::interface`] builds is valid.
const FALLBACK: Interface = candump::UNNAMED;

/// The latest time a trace may give: 12 digits of seconds (past the year 33,000), the most the
/// candump form takes back, so everything read can be written by `trace convert` and read again.
#[cfg_attr(not(feature = "traces"), allow(dead_code))]
pub(crate) const MAX_SECS: u64 = 999_999_999_999;

/// `start + offset` as a timestamp (absolute with a start, else relative); `None` past
/// [`MAX_SECS`].
#[cfg_attr(not(feature = "traces"), allow(dead_code))]
pub(crate) fn timestamp(
    start: Option<core::time::Duration>,
    offset: core::time::Duration,
) -> Option<candump::Timestamp> {
    let ts = match start {
        Some(start) => candump::Timestamp::Absolute(start.checked_add(offset)?),
        None => candump::Timestamp::Relative(offset),
    };
    (ts.as_duration().as_secs() <= MAX_SECS).then_some(ts)
}

/// Which bus a parser says a frame came from, before the [`ChannelMap`] (only the `traces`
/// parsers have channels; candump names its interface).
#[cfg(feature = "traces")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// A bus number as the format writes it (1-based in ASC, BLF and TRC).
    Number(u16),
    /// A name the trace gives (a pcapng `if_name`).
    Named(Interface),
}

#[cfg(feature = "traces")]
impl Channel {
    pub(crate) fn resolve(self, map: &ChannelMap) -> Interface {
        match self {
            Self::Number(n) => map.interface(n),
            Self::Named(name) => name,
        }
    }
}

/// Looks at the start of a trace and names its format. `head` is whatever the reader has
/// buffered (the first few KiB); candump is the answer when nothing else fits.
pub fn detect(head: &[u8]) -> Format {
    if let Some(magic) = head.get(..4) {
        match magic {
            [0xD4, 0xC3, 0xB2, 0xA1]
            | [0xA1, 0xB2, 0xC3, 0xD4]
            | [0x4D, 0x3C, 0xB2, 0xA1]
            | [0xA1, 0xB2, 0x3C, 0x4D] => return Format::Pcap,
            [0x0A, 0x0D, 0x0D, 0x0A] => return Format::PcapNg,
            b"LOGG" => return Format::Blf,
            _ => {}
        }
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = head
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let starts = |p: &[u8]| {
        first
            .get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    if starts(b"date ") || starts(b"base ") || starts(b"begin triggerblock") {
        Format::Asc
    } else if first.starts_with(b";") {
        Format::Trc
    } else {
        Format::Candump
    }
}

/// A trace of any format, read frame by frame.
///
/// Yields each frame, or the error of each bad record (and carries on); records that are valid
/// but no frame (error frames, status lines, other buses' events) are counted in
/// [`TraceStats::skipped`]. [`TraceStats::lines`] counts records: lines of text, objects of BLF,
/// packets of pcap.
pub struct Reader<R> {
    inner: Inner<R>,
    format: Format,
}

enum Inner<R> {
    Candump(TraceReader<R>),
    #[cfg(feature = "traces")]
    Asc(asc::AscReader<R>),
    #[cfg(feature = "traces")]
    Trc(trc::TrcReader<R>),
    #[cfg(feature = "traces")]
    Blf(blf::BlfReader<R>),
    #[cfg(feature = "traces")]
    Pcap(pcap::PcapReader<R>),
}

/// Opens a trace: detects its format from the first bytes and returns the reader.
///
/// # Errors
/// [`ReadError::Io`] if the first bytes cannot be read; [`ReadError::Unsupported`] for a format
/// this build does not read.
pub fn open<R: BufRead>(mut reader: R, channels: ChannelMap) -> Result<Reader<R>, ReadError> {
    let head = reader.fill_buf().map_err(|source| ReadError::Io {
        format: Format::Candump,
        at: Position::Byte(0),
        source,
    })?;
    let format = detect(head);
    let inner = match format {
        Format::Candump => Inner::Candump(TraceReader::new(reader)),
        #[cfg(feature = "traces")]
        Format::Asc => Inner::Asc(asc::AscReader::new(reader, channels)),
        #[cfg(feature = "traces")]
        Format::Trc => Inner::Trc(trc::TrcReader::new(reader, channels)),
        #[cfg(feature = "traces")]
        Format::Blf => Inner::Blf(blf::BlfReader::new(reader, channels)),
        #[cfg(feature = "traces")]
        Format::Pcap | Format::PcapNg => Inner::Pcap(pcap::PcapReader::new(reader, channels)),
        #[cfg(not(feature = "traces"))]
        other => {
            drop(channels);
            return Err(ReadError::Unsupported(other));
        }
    };
    Ok(Reader { inner, format })
}

impl<R: BufRead> Reader<R> {
    /// A candump reader, without looking at the content (what [`open`] picks by default).
    pub fn candump(reader: R) -> Self {
        Self {
            inner: Inner::Candump(TraceReader::new(reader)),
            format: Format::Candump,
        }
    }

    /// The format found.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Records, frames, skipped and bad records so far.
    pub fn stats(&self) -> TraceStats {
        match &self.inner {
            Inner::Candump(r) => r.stats(),
            #[cfg(feature = "traces")]
            Inner::Asc(r) => r.stats(),
            #[cfg(feature = "traces")]
            Inner::Trc(r) => r.stats(),
            #[cfg(feature = "traces")]
            Inner::Blf(r) => r.stats(),
            #[cfg(feature = "traces")]
            Inner::Pcap(r) => r.stats(),
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<TraceFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Candump(r) => r.next().map(|item| {
                item.map_err(|e| match e {
                    candump::TraceError::Line { line, source } => ReadError::Record {
                        format: Format::Candump,
                        at: Position::Line(line),
                        reason: source.to_string(),
                    },
                    candump::TraceError::Io { line, source } => ReadError::Io {
                        format: Format::Candump,
                        at: Position::Line(line),
                        source,
                    },
                })
            }),
            #[cfg(feature = "traces")]
            Inner::Asc(r) => r.next(),
            #[cfg(feature = "traces")]
            Inner::Trc(r) => r.next(),
            #[cfg(feature = "traces")]
            Inner::Blf(r) => r.next(),
            #[cfg(feature = "traces")]
            Inner::Pcap(r) => r.next(),
        }
    }
}

/// `trace convert`: writes every frame `reader` yields in the `candump -l` form, one line each
/// (`(secs.usecs) ifname ID#DATA`, `ID##<flags><data>` for CAN FD, `ID#R` for remote
/// requests), handing each bad record to `on_error` and carrying on. A frame without a
/// timestamp (a pcapng simple packet) takes the previous frame's.
///
/// # Errors
/// Only those of `out`.
pub fn write_candump<R: BufRead, W: std::io::Write>(
    reader: &mut Reader<R>,
    out: &mut W,
    mut on_error: impl FnMut(&ReadError),
) -> std::io::Result<()> {
    let mut line = String::with_capacity(256);
    let mut last = candump::Timestamp::Relative(core::time::Duration::ZERO);
    for item in reader.by_ref() {
        match item {
            Ok(tf) => {
                let ts = tf.timestamp.unwrap_or(last);
                last = ts;
                line.clear();
                // Writing into a String cannot fail.
                let _ = candump::write_log_line(&mut line, ts, tf.interface.as_str(), &tf.frame);
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
            Err(e) => on_error(&e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_are_found_by_content() {
        assert_eq!(detect(b"LOGG\x90\0\0\0"), Format::Blf);
        assert_eq!(detect(&[0xD4, 0xC3, 0xB2, 0xA1, 2, 0]), Format::Pcap);
        assert_eq!(detect(&[0xA1, 0xB2, 0x3C, 0x4D]), Format::Pcap);
        assert_eq!(detect(&[0x0A, 0x0D, 0x0D, 0x0A, 0x1C]), Format::PcapNg);
        assert_eq!(
            detect(b"\n\ndate Sam Sep 30 15:06:13.191 2017\n"),
            Format::Asc
        );
        assert_eq!(detect(b"base hex  timestamps absolute\n"), Format::Asc);
        assert_eq!(detect(b";$FILEVERSION=2.1\n"), Format::Trc);
        assert_eq!(detect(b";##########\n"), Format::Trc);
        assert_eq!(detect(b"(1.0) can0 123#00\n"), Format::Candump);
        assert_eq!(detect(b""), Format::Candump);
        assert_eq!(detect(b"LOG"), Format::Candump);
    }

    #[test]
    fn channels_map_onto_buses() {
        let none = ChannelMap::default();
        assert_eq!(none.interface(1).as_str(), "can0");
        assert_eq!(none.interface(2).as_str(), "can1");
        assert_eq!(none.interface(0).as_str(), "ch0");
        let can: Can = toml::from_str(
            "[[buses]]\nname = \"powertrain\"\ninterface = \"can0\"\n\
             [[buses]]\nname = \"body\"\ninterface = \"vcan7\"\ntrace_channel = 3\n",
        )
        .unwrap();
        let map = ChannelMap::from_config(&can);
        assert_eq!(map.interface(1).as_str(), "can0");
        assert_eq!(map.interface(3).as_str(), "vcan7");
        assert_eq!(map.interface(2).as_str(), "ch2");
        assert_eq!(map.interface(u16::MAX).as_str(), "ch65535");
    }
}
