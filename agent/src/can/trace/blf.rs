//! Vector BLF (binary logging format) traces: the file header, `LOBJ` objects, zlib-compressed
//! log containers, and the CAN objects in them. Sans-IO pieces ([`parse_file_header`],
//! [`parse_object`]) and a reader over any [`BufRead`] ([`BlfReader`]).
//!
//! Written here rather than taken from a crate: `ablf` (0.2) decodes CAN_MESSAGE/CAN_MESSAGE2,
//! error and text objects but no CAN FD objects, by its own README; `blf_asc` (0.2, the renamed
//! `codex_blf` whose 0.1 was yanked) is a young, undocumented single-author port of python-can.
//! Neither says how it bounds declared sizes, which is the point of this reader; the part of
//! the format a CAN trace needs is small.
//!
//! Objects read: CAN_MESSAGE (1) and CAN_MESSAGE2 (86) as classic frames, CAN_FD_MESSAGE (100)
//! and CAN_FD_MESSAGE_64 (101) as CAN FD frames (or classic, when the EDL flag is clear). Error
//! objects (CAN_ERROR 2, CAN_ERROR_EXT 73, CAN_FD_ERROR_64 104) are counted as skipped, as are
//! objects of other kinds (other buses, markers, statistics). Channels are 1-based.
//!
//! Limits, checked before anything is allocated: an object may declare at most
//! [`MAX_OBJECT_SIZE`] bytes and a container at most as much uncompressed; a larger top-level
//! object is skipped unread (its size says where the next one starts), a bad signature makes
//! the reader look for the next `LOBJ`. Errors carry the byte offset of the object, or of its
//! container for objects inside one.

use core::time::Duration;
use std::io::{BufRead, Read};

use super::text::days_from_civil;
use super::{Channel, ChannelMap, Format, Position, ReadError};
use crate::can::candump::{TraceFrame, TraceStats};
use crate::can::frame::{CanFrame, FD_LENGTHS, raw_to_id};

/// The largest object (or uncompressed container) the reader accepts. Vector tools write
/// containers of about 128 KiB; CAN objects are under 200 bytes.
pub const MAX_OBJECT_SIZE: u32 = 16 << 20;

const FILE_SIGNATURE: &[u8; 4] = b"LOGG";
const OBJ_SIGNATURE: &[u8; 4] = b"LOBJ";
const BASE_HEADER: usize = 16;
const MIN_FILE_HEADER: u32 = 72;

const CAN_MESSAGE: u32 = 1;
const CAN_ERROR: u32 = 2;
const LOG_CONTAINER: u32 = 10;
const CAN_ERROR_EXT: u32 = 73;
const CAN_MESSAGE2: u32 = 86;
const CAN_FD_MESSAGE: u32 = 100;
const CAN_FD_MESSAGE_64: u32 = 101;
const CAN_FD_ERROR_64: u32 = 104;

/// What the file header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Bytes of header before the first object.
    pub size: u32,
    /// The measurement's start (the header's SYSTEMTIME, read as UTC), if valid.
    pub start: Option<Duration>,
}

/// Reads the file header from its first 72 bytes.
///
/// # Errors
/// A reason if the signature or the declared size is wrong.
pub fn parse_file_header(bytes: &[u8]) -> Result<FileHeader, &'static str> {
    if bytes.get(..4) != Some(FILE_SIGNATURE) {
        return Err("no LOGG signature");
    }
    let size = u32_at(bytes, 4).ok_or("file header shorter than 72 bytes")?;
    if !(MIN_FILE_HEADER..=4096).contains(&size) {
        return Err("file header size is not 72-4096 bytes");
    }
    let st = |i: usize| u16_at(bytes, 40 + 2 * i).map_or(0, u64::from);
    let (year, month, day) = (st(0), st(1), st(3));
    let (hour, minute, second, ms) = (st(4), st(5), st(6), st(7));
    let start = if (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && ms < 1000
    {
        let days = days_from_civil(
            i64::try_from(year).unwrap_or(1970),
            u32::try_from(month).unwrap_or(1),
            u32::try_from(day).unwrap_or(1),
        );
        u64::try_from(days).ok().map(|d| {
            Duration::from_secs(d * 86_400 + hour * 3600 + minute * 60 + second)
                + Duration::from_millis(ms)
        })
    } else {
        None
    };
    Ok(FileHeader { size, start })
}

/// The 16-byte base header every object starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectHeader {
    /// Header bytes (base and version-specific) before the body.
    pub header_size: u16,
    /// The whole object's size, header included (padding to 4 bytes excluded).
    pub object_size: u32,
    /// The object's kind.
    pub object_type: u32,
}

impl ObjectHeader {
    /// Where the next object starts, relative to this one (objects are padded to 4 bytes as
    /// python-can and Vector's reader step: `size + size % 4`).
    pub fn stride(&self) -> u64 {
        u64::from(self.object_size) + u64::from(self.object_size % 4)
    }
}

/// Reads an object's base header.
///
/// # Errors
/// A reason if the signature is not `LOBJ` or the sizes do not fit together.
pub fn parse_object_header(bytes: &[u8]) -> Result<ObjectHeader, &'static str> {
    if bytes.get(..4) != Some(OBJ_SIGNATURE) {
        return Err("no LOBJ signature where an object should start");
    }
    let header_size = u16_at(bytes, 4).ok_or("object header cut short")?;
    let object_size = u32_at(bytes, 8).ok_or("object header cut short")?;
    let object_type = u32_at(bytes, 12).ok_or("object header cut short")?;
    if (object_size as usize) < BASE_HEADER || u32::from(header_size) > object_size {
        return Err("object size smaller than its header");
    }
    Ok(ObjectHeader {
        header_size,
        object_size,
        object_type,
    })
}

/// What one whole object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Object<'a> {
    /// A CAN or CAN FD frame on a 1-based channel at `time` since the start.
    Frame {
        channel: u16,
        time: Duration,
        frame: CanFrame,
    },
    /// An error frame object.
    Error,
    /// A log container: its compression (0 none, 2 zlib), declared uncompressed size, data.
    Container {
        method: u16,
        uncompressed: u32,
        data: &'a [u8],
    },
    /// Anything else.
    Other,
}

/// Parses a whole object (`bytes` is exactly `object_size` long).
///
/// # Errors
/// A reason if a CAN object is cut short or holds a frame no bus carries.
pub(crate) fn parse_object<'a>(
    h: &ObjectHeader,
    bytes: &'a [u8],
) -> Result<Object<'a>, &'static str> {
    let short = "object shorter than its kind needs";
    match h.object_type {
        LOG_CONTAINER => Ok(Object::Container {
            method: u16_at(bytes, 16).ok_or(short)?,
            uncompressed: u32_at(bytes, 24).ok_or(short)?,
            data: bytes.get(32..).ok_or(short)?,
        }),
        CAN_ERROR | CAN_ERROR_EXT | CAN_FD_ERROR_64 => Ok(Object::Error),
        CAN_MESSAGE | CAN_MESSAGE2 | CAN_FD_MESSAGE | CAN_FD_MESSAGE_64 => {
            let flags = u32_at(bytes, 16).ok_or(short)?;
            let ts = u64_at(bytes, 24).ok_or(short)?;
            let time = match flags {
                1 => Duration::from_micros(ts.saturating_mul(10)),
                _ => Duration::from_nanos(ts),
            };
            let body = bytes.get(usize::from(h.header_size)..).ok_or(short)?;
            let (channel, frame) = match h.object_type {
                CAN_FD_MESSAGE => can_fd_message(body)?,
                CAN_FD_MESSAGE_64 => can_fd_message_64(body)?,
                _ => can_message(body)?,
            };
            Ok(Object::Frame {
                channel,
                time,
                frame,
            })
        }
        _ => Ok(Object::Other),
    }
}

const SHORT: &str = "CAN object shorter than its kind needs";

/// `channel u16, flags u8 (0x80 remote), dlc u8, id u32 (bit 31: 29-bit), data [8]`.
fn can_message(b: &[u8]) -> Result<(u16, CanFrame), &'static str> {
    let channel = u16_at(b, 0).ok_or(SHORT)?;
    let flags = *b.get(2).ok_or(SHORT)?;
    let dlc = *b.get(3).ok_or(SHORT)?;
    let id = id(u32_at(b, 4).ok_or(SHORT)?)?;
    if dlc > 15 {
        return Err("DLC above 15");
    }
    let len = usize::from(dlc.min(8));
    let frame = if flags & 0x80 != 0 {
        <CanFrame as embedded_can::Frame>::new_remote(id, len)
    } else {
        <CanFrame as embedded_can::Frame>::new(id, b.get(8..8 + len).ok_or(SHORT)?)
    };
    Ok((channel, frame.ok_or("not a valid CAN frame")?))
}

/// `channel u16, flags u8, dlc u8, id u32, frame_length u32, bit_count u8, fd_flags u8
/// (EDL 1, BRS 2, ESI 4), valid_bytes u8, reserved [5], data [64]`.
fn can_fd_message(b: &[u8]) -> Result<(u16, CanFrame), &'static str> {
    let channel = u16_at(b, 0).ok_or(SHORT)?;
    let flags = *b.get(2).ok_or(SHORT)?;
    let dlc = *b.get(3).ok_or(SHORT)?;
    let id = id(u32_at(b, 4).ok_or(SHORT)?)?;
    let fd_flags = *b.get(13).ok_or(SHORT)?;
    let valid = *b.get(14).ok_or(SHORT)?;
    let data = b.get(20..).ok_or(SHORT)?;
    let frame = fd_frame(
        id,
        flags & 0x80 != 0,
        fd_flags & 1 != 0,
        fd_flags & 2 != 0,
        fd_flags & 4 != 0,
        dlc,
        valid,
        data,
    )?;
    Ok((channel, frame))
}

/// `channel u8, dlc u8, valid_bytes u8, tx_count u8, id u32, frame_length u32, flags u32
/// (remote 0x10, EDL 0x1000, BRS 0x2000, ESI 0x4000), 4 × u32 timing, bit_count u16, dir u8,
/// ext_data_offset u8, crc u32, data [valid_bytes]`.
fn can_fd_message_64(b: &[u8]) -> Result<(u16, CanFrame), &'static str> {
    let channel = u16::from(*b.first().ok_or(SHORT)?);
    let dlc = *b.get(1).ok_or(SHORT)?;
    let valid = *b.get(2).ok_or(SHORT)?;
    let id = id(u32_at(b, 4).ok_or(SHORT)?)?;
    let flags = u32_at(b, 12).ok_or(SHORT)?;
    let data = b.get(40..).ok_or(SHORT)?;
    let frame = fd_frame(
        id,
        flags & 0x10 != 0,
        flags & 0x1000 != 0,
        flags & 0x2000 != 0,
        flags & 0x4000 != 0,
        dlc,
        valid,
        data,
    )?;
    Ok((channel, frame))
}

#[allow(clippy::too_many_arguments)]
fn fd_frame(
    id: embedded_can::Id,
    remote: bool,
    edl: bool,
    brs: bool,
    esi: bool,
    dlc: u8,
    valid: u8,
    data: &[u8],
) -> Result<CanFrame, &'static str> {
    if dlc > 15 {
        return Err("DLC above 15");
    }
    if remote {
        if edl {
            return Err("a CAN FD frame cannot be a remote request");
        }
        return <CanFrame as embedded_can::Frame>::new_remote(id, usize::from(dlc.min(8)))
            .ok_or("not a valid remote request");
    }
    let len = usize::from(valid);
    let bytes = data
        .get(..len)
        .ok_or("fewer data bytes than the object says")?;
    if edl {
        if !FD_LENGTHS.contains(&len) {
            return Err("valid data bytes is not a CAN FD length");
        }
        Ok(CanFrame::new_fd(id, bytes, brs)
            .ok_or("not a CAN FD length")?
            .with_esi(esi))
    } else {
        <CanFrame as embedded_can::Frame>::new(id, bytes).ok_or("more than 8 bytes without EDL")
    }
}

fn id(raw: u32) -> Result<embedded_can::Id, &'static str> {
    let extended = raw & 0x8000_0000 != 0;
    raw_to_id(raw & 0x7FFF_FFFF, extended)
        .ok_or("CAN id does not fit in 11 bits (or 29 bits with the extended flag)")
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A BLF trace read frame by frame from any [`BufRead`]; holds at most one object and one
/// container's uncompressed data.
pub struct BlfReader<R> {
    reader: R,
    channels: ChannelMap,
    stats: TraceStats,
    /// Bytes consumed from `reader`.
    pos: u64,
    start: Option<Duration>,
    header_read: bool,
    done: bool,
    /// The current top-level object's bytes.
    object: Vec<u8>,
    /// Uncompressed container data not yet parsed (an object may span two containers).
    inner: Vec<u8>,
    inner_at: usize,
    /// Byte offset of the container `inner` came from.
    container_pos: u64,
    /// Bytes read ahead while looking for the next `LOBJ`, to be read again first.
    pending: Vec<u8>,
}

impl<R: BufRead> BlfReader<R> {
    /// A reader over `reader`, naming channels by `channels`.
    pub fn new(reader: R, channels: ChannelMap) -> Self {
        Self {
            reader,
            channels,
            stats: TraceStats::default(),
            pos: 0,
            start: None,
            header_read: false,
            done: false,
            object: Vec::new(),
            inner: Vec::new(),
            inner_at: 0,
            container_pos: 0,
            pending: Vec::new(),
        }
    }

    /// Objects, frames, skipped and bad objects so far (containers are not counted).
    pub fn stats(&self) -> TraceStats {
        self.stats
    }

    fn record(&mut self, at: u64, reason: &str) -> ReadError {
        self.stats.bad += 1;
        ReadError::Record {
            format: Format::Blf,
            at: Position::Byte(at),
            reason: reason.to_owned(),
        }
    }

    fn fatal(&mut self, at: u64, reason: &str) -> ReadError {
        self.done = true;
        self.stats.bad += 1;
        ReadError::Fatal {
            format: Format::Blf,
            at: Position::Byte(at),
            reason: reason.to_owned(),
        }
    }

    fn io(&mut self, source: std::io::Error) -> ReadError {
        self.done = true;
        ReadError::Io {
            format: Format::Blf,
            at: Position::Byte(self.pos),
            source,
        }
    }

    /// Reads up to `buf.len()` bytes; how many (fewer only at the end of input).
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.pending.len().min(buf.len());
        if n > 0 {
            buf.get_mut(..n)
                .unwrap_or_default()
                .copy_from_slice(self.pending.get(..n).unwrap_or_default());
            self.pending.drain(..n);
        }
        while n < buf.len() {
            match self.reader.read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        let from_pending = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.pending.len());
        self.pending.drain(..from_pending);
        let rest = n - from_pending as u64;
        let skipped = std::io::copy(&mut (&mut self.reader).take(rest), &mut std::io::sink())?;
        self.pos += from_pending as u64 + skipped;
        Ok(from_pending as u64 + skipped)
    }

    fn read_file_header(&mut self) -> Result<(), ReadError> {
        let mut head = [0u8; MIN_FILE_HEADER as usize];
        let n = self.fill(&mut head).map_err(|e| self.io(e))?;
        if n < head.len() {
            return Err(self.fatal(0, "file header shorter than 72 bytes"));
        }
        let h = parse_file_header(&head).map_err(|r| self.fatal(0, r))?;
        self.start = h.start;
        self.skip(u64::from(h.size - MIN_FILE_HEADER))
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// The next object from the current container's data, if a whole one is there.
    fn next_inner(&mut self) -> Option<Result<TraceFrame, ReadError>> {
        loop {
            let rest = self.inner.get(self.inner_at..).unwrap_or_default();
            if rest.len() < BASE_HEADER {
                return None;
            }
            let at = self.container_pos;
            let h = match parse_object_header(rest) {
                Ok(h) if h.object_size <= MAX_OBJECT_SIZE => h,
                Ok(_) => {
                    self.resync_inner();
                    return Some(Err(
                        self.record(at, "object in a container larger than 16 MiB")
                    ));
                }
                Err(reason) => {
                    self.resync_inner();
                    return Some(Err(self.record(at, reason)));
                }
            };
            let Some(bytes) = rest.get(..h.object_size as usize) else {
                // The object goes on in the next container.
                return None;
            };
            let parsed = match parse_object(&h, bytes) {
                Ok(Object::Frame {
                    channel,
                    time,
                    frame,
                }) => Ok(Some((channel, time, frame))),
                // A container inside a container is not something Vector writes: skipped.
                Ok(Object::Container { .. } | Object::Error | Object::Other) => Ok(None),
                Err(reason) => Err(reason),
            };
            let stride = usize::try_from(h.stride()).unwrap_or(usize::MAX);
            self.inner_at = self.inner_at.saturating_add(stride).min(self.inner.len());
            self.stats.lines += 1;
            match parsed {
                Ok(Some((channel, time, frame))) => {
                    return Some(self.frame(at, channel, time, frame));
                }
                Ok(None) => self.stats.skipped += 1,
                Err(reason) => return Some(Err(self.record(at, reason))),
            }
        }
    }

    /// After a broken object inside a container: on to the next `LOBJ` in it.
    fn resync_inner(&mut self) {
        let from = self.inner_at + 1;
        let next = self
            .inner
            .get(from..)
            .and_then(|r| r.windows(4).position(|w| w == OBJ_SIGNATURE));
        self.inner_at = next.map_or(self.inner.len(), |i| from + i);
    }

    fn frame(
        &mut self,
        at: u64,
        channel: u16,
        time: Duration,
        frame: CanFrame,
    ) -> Result<TraceFrame, ReadError> {
        let Some(timestamp) = super::timestamp(self.start, time) else {
            return Err(self.record(at, "time beyond 999,999,999,999 s"));
        };
        self.stats.frames += 1;
        Ok(TraceFrame {
            timestamp: Some(timestamp),
            interface: Channel::Number(channel).resolve(&self.channels),
            frame,
        })
    }

    /// Takes in a container's data, keeping what is left of the previous one.
    fn load_container(
        &mut self,
        at: u64,
        method: u16,
        uncompressed: u32,
        data_len: usize,
    ) -> Result<(), ReadError> {
        self.inner.drain(..self.inner_at.min(self.inner.len()));
        self.inner_at = 0;
        if self.inner.len() > MAX_OBJECT_SIZE as usize {
            // An object that never ends: drop it rather than grow without bound.
            self.inner.clear();
        }
        self.container_pos = at;
        let data = self.object.get(32..32 + data_len).unwrap_or_default();
        match method {
            0 => self.inner.extend_from_slice(data),
            2 => {
                if uncompressed > MAX_OBJECT_SIZE {
                    self.inner.clear();
                    return Err(self.record(at, "container larger than 16 MiB uncompressed"));
                }
                let before = self.inner.len();
                self.inner.reserve(uncompressed as usize);
                let mut z = flate2::read::ZlibDecoder::new(data).take(u64::from(uncompressed));
                if z.read_to_end(&mut self.inner).is_err() {
                    self.inner.truncate(before);
                    // The objects that spanned into this container are lost with it.
                    self.inner.clear();
                    return Err(self.record(at, "container's zlib data is corrupt"));
                }
            }
            _ => {
                self.inner.clear();
                return Err(self.record(at, "container compressed by an unknown method"));
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for BlfReader<R> {
    type Item = Result<TraceFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.next_inner() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if !self.header_read {
                self.header_read = true;
                if let Err(e) = self.read_file_header() {
                    return Some(Err(e));
                }
            }
            let at = self.pos;
            let mut base = [0u8; BASE_HEADER];
            let n = match self.fill(&mut base) {
                Ok(n) => n,
                Err(e) => return Some(Err(self.io(e))),
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            if n < BASE_HEADER {
                return Some(Err(
                    self.fatal(at, "object header cut short at the end of the file")
                ));
            }
            let h = match parse_object_header(&base) {
                Ok(h) => h,
                Err(reason) => {
                    // Look for the next object: read on until `LOBJ` starts.
                    if let Err(e) = self.resync(&base) {
                        return Some(Err(self.io(e)));
                    }
                    return Some(Err(self.record(at, reason)));
                }
            };
            let padding = u64::from(h.object_size % 4);
            if h.object_size > MAX_OBJECT_SIZE {
                self.stats.lines += 1;
                let rest = u64::from(h.object_size) - BASE_HEADER as u64 + padding;
                if let Err(e) = self.skip(rest) {
                    return Some(Err(self.io(e)));
                }
                return Some(Err(self.record(at, "object larger than 16 MiB; skipped")));
            }
            let size = h.object_size as usize;
            self.object.clear();
            self.object.extend_from_slice(&base);
            self.object.resize(size, 0);
            let mut body = core::mem::take(&mut self.object);
            let got = match self.fill(body.get_mut(BASE_HEADER..).unwrap_or_default()) {
                Ok(n) => n,
                Err(e) => return Some(Err(self.io(e))),
            };
            self.object = body;
            if got < size - BASE_HEADER {
                return Some(Err(
                    self.fatal(at, "object cut short at the end of the file")
                ));
            }
            if let Err(e) = self.skip(padding) {
                return Some(Err(self.io(e)));
            }
            let parsed = match parse_object(&h, &self.object) {
                Ok(Object::Container {
                    method,
                    uncompressed,
                    data,
                }) => {
                    let len = data.len();
                    if let Err(e) = self.load_container(at, method, uncompressed, len) {
                        return Some(Err(e));
                    }
                    continue;
                }
                Ok(Object::Frame {
                    channel,
                    time,
                    frame,
                }) => Ok(Some((channel, time, frame))),
                Ok(Object::Error | Object::Other) => Ok(None),
                Err(reason) => Err(reason),
            };
            self.stats.lines += 1;
            match parsed {
                Ok(Some((channel, time, frame))) => {
                    return Some(self.frame(at, channel, time, frame));
                }
                Ok(None) => self.stats.skipped += 1,
                Err(reason) => return Some(Err(self.record(at, reason))),
            }
        }
    }
}

impl<R: BufRead> BlfReader<R> {
    /// After a bad signature: reads on until the next `LOBJ`, which is left to be read next
    /// (or to the end). `seen` are the 16 bytes just read; the search starts one byte in.
    fn resync(&mut self, seen: &[u8; BASE_HEADER]) -> std::io::Result<()> {
        let mut window: Vec<u8> = seen.get(1..).unwrap_or_default().to_vec();
        // `window` holds the bytes read but not yet given up; its first byte is at this offset.
        let mut window_pos = self.pos - (BASE_HEADER as u64 - 1);
        loop {
            if let Some(i) = window.windows(4).position(|w| w == OBJ_SIGNATURE) {
                let tail = window.get(i..).unwrap_or_default();
                self.pos = window_pos + i as u64;
                let mut pending = tail.to_vec();
                pending.extend_from_slice(&self.pending);
                self.pending = pending;
                return Ok(());
            }
            let keep_from = window.len().saturating_sub(3);
            window.drain(..keep_from);
            window_pos += keep_from as u64;
            let mut chunk = [0u8; 4096];
            let n = self.fill(&mut chunk)?;
            if n == 0 {
                self.done = true;
                return Ok(());
            }
            window.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::io::Write as _;

    use super::*;
    use crate::can::candump::Timestamp;
    use embedded_can::Frame as _;

    fn file_header() -> Vec<u8> {
        let mut h = vec![0u8; 144];
        h[..4].copy_from_slice(b"LOGG");
        h[4..8].copy_from_slice(&144u32.to_le_bytes());
        // SYSTEMTIME 2023-11-14 (Tue) 22:13:20.000
        for (i, v) in [2023u16, 11, 2, 14, 22, 13, 20, 0].iter().enumerate() {
            h[40 + 2 * i..42 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        h
    }

    fn object(kind: u32, body: &[u8], ts_ns: u64) -> Vec<u8> {
        let size = 32 + body.len();
        let mut o = Vec::new();
        o.extend_from_slice(b"LOBJ");
        o.extend_from_slice(&32u16.to_le_bytes());
        o.extend_from_slice(&1u16.to_le_bytes());
        o.extend_from_slice(&(size as u32).to_le_bytes());
        o.extend_from_slice(&kind.to_le_bytes());
        o.extend_from_slice(&2u32.to_le_bytes()); // timestamps in ns
        o.extend_from_slice(&[0; 4]);
        o.extend_from_slice(&ts_ns.to_le_bytes());
        o.extend_from_slice(body);
        o.resize(size + size % 4, 0);
        o
    }

    fn can_message(channel: u16, id: u32, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&channel.to_le_bytes());
        b.push(0);
        b.push(data.len() as u8);
        b.extend_from_slice(&id.to_le_bytes());
        let mut d = [0u8; 8];
        d[..data.len()].copy_from_slice(data);
        b.extend_from_slice(&d);
        object(CAN_MESSAGE, &b, 1_500_000)
    }

    fn container(inner: &[u8], compress: bool) -> Vec<u8> {
        let data = if compress {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(inner).unwrap();
            z.finish().unwrap()
        } else {
            inner.to_vec()
        };
        let size = 32 + data.len();
        let mut o = Vec::new();
        o.extend_from_slice(b"LOBJ");
        o.extend_from_slice(&16u16.to_le_bytes());
        o.extend_from_slice(&1u16.to_le_bytes());
        o.extend_from_slice(&(size as u32).to_le_bytes());
        o.extend_from_slice(&LOG_CONTAINER.to_le_bytes());
        o.extend_from_slice(&(if compress { 2u16 } else { 0 }).to_le_bytes());
        o.extend_from_slice(&[0; 6]);
        o.extend_from_slice(&(inner.len() as u32).to_le_bytes());
        o.extend_from_slice(&[0; 4]);
        o.extend_from_slice(&data);
        o.resize(size + size % 4, 0);
        o
    }

    fn read(bytes: &[u8]) -> (Vec<Result<TraceFrame, ReadError>>, TraceStats) {
        let mut r = BlfReader::new(bytes, ChannelMap::default());
        let items: Vec<_> = r.by_ref().collect();
        (items, r.stats())
    }

    #[test]
    fn frames_in_compressed_containers_spanning_two() {
        let mut inner = can_message(1, 0x123, &[1, 2, 3]);
        inner.extend(can_message(2, 0x8000_0000 | 0x18FE_F100, &[9; 8]));
        let (a, b) = inner.split_at(50);
        let mut file = file_header();
        file.extend(container(a, true));
        file.extend(container(b, false));
        let (items, stats) = read(&file);
        let f: Vec<TraceFrame> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].frame.raw_id(), f[0].frame.data()),
            (0x123, &[1, 2, 3][..])
        );
        assert_eq!(f[0].interface.as_str(), "can0");
        assert!(f[1].frame.is_extended());
        assert_eq!(f[1].interface.as_str(), "can1");
        assert_eq!(
            f[0].timestamp,
            Some(Timestamp::Absolute(Duration::from_nanos(
                1_700_000_000_000_000_000 + 1_500_000
            )))
        );
        assert_eq!((stats.lines, stats.frames, stats.bad), (2, 2, 0));
    }

    #[test]
    fn truncated_object_is_an_error_at_its_offset() {
        let mut file = file_header();
        file.extend(can_message(1, 0x123, &[1]));
        let whole = file.len();
        file.extend(&can_message(1, 0x124, &[2])[..20]);
        let (items, _) = read(&file);
        assert!(items[0].is_ok());
        match &items[1] {
            Err(ReadError::Fatal { at, .. }) => assert_eq!(*at, Position::Byte(whole as u64)),
            other => panic!("{other:?}"),
        }
        assert_eq!(items.len(), 2);
        // A file cut inside its header.
        let (items, _) = read(&file_header()[..40]);
        assert!(matches!(items[..], [Err(ReadError::Fatal { .. })]));
    }

    #[test]
    fn oversized_object_is_skipped_unread_and_reading_goes_on() {
        let mut file = file_header();
        let at = file.len() as u64;
        let mut big = object(99, &[], 0);
        // Declares 64 MiB but the reader must not allocate it: only skip it.
        big[8..12].copy_from_slice(&(64u32 << 20).to_le_bytes());
        file.extend(&big);
        let (items, stats) = read(&file);
        match &items[0] {
            Err(ReadError::Record { at: a, reason, .. }) => {
                assert_eq!(*a, Position::Byte(at));
                assert!(reason.contains("16 MiB"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(stats.bad, 1);
        // A declared uncompressed size above the cap is refused before allocating.
        let mut file = file_header();
        let mut c = container(&can_message(1, 1, &[]), true);
        c[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        file.extend(c);
        file.extend(can_message(1, 0x7FF, &[5]));
        let (items, _) = read(&file);
        assert!(matches!(&items[0], Err(ReadError::Record { .. })));
        assert_eq!(items[1].as_ref().unwrap().frame.raw_id(), 0x7FF);
    }

    #[test]
    fn garbage_between_objects_is_skipped_to_the_next_signature() {
        let mut file = file_header();
        let at = file.len() as u64;
        file.extend(b"garbage!garbage!garbage!");
        file.extend(can_message(3, 0x42, &[]));
        let (items, stats) = read(&file);
        assert!(
            matches!(&items[0], Err(ReadError::Record { at: a, .. }) if *a == Position::Byte(at))
        );
        assert_eq!(items[1].as_ref().unwrap().frame.raw_id(), 0x42);
        assert_eq!(items[1].as_ref().unwrap().interface.as_str(), "can2");
        assert_eq!((stats.frames, stats.bad), (1, 1));
    }

    #[test]
    fn fd_objects_and_error_objects() {
        // CAN_FD_MESSAGE_64: channel 1, dlc 9 (12 bytes), EDL | BRS.
        let mut b = vec![1u8, 9, 12, 0];
        b.extend_from_slice(&0x80_00_01_23u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0x3000u32.to_le_bytes());
        b.extend_from_slice(&[0; 24]);
        b.extend_from_slice(&(0..12).collect::<Vec<u8>>());
        let mut file = file_header();
        file.extend(object(CAN_FD_MESSAGE_64, &b, 0));
        file.extend(object(CAN_ERROR_EXT, &[0; 32], 0));
        let (items, stats) = read(&file);
        let f = items[0].as_ref().unwrap();
        assert!(f.frame.is_fd() && f.frame.is_brs() && !f.frame.is_esi());
        assert!(f.frame.is_extended());
        assert_eq!(f.frame.data().len(), 12);
        assert_eq!((stats.frames, stats.skipped), (1, 1));
    }
}
