//! pcap and pcapng captures of SocketCAN (`LINKTYPE_CAN_SOCKETCAN`, 227), as `tcpdump -i can0`,
//! Wireshark and `dumpcap` write them. The container formats are the `pcap-file` crate's
//! sans-IO parsers over a buffer this module owns (so its size is capped here); the SocketCAN
//! packet inside ([`socketcan_frame`]) is ours.
//!
//! A pcap file has one interface (channel 1); a pcapng file one per interface description
//! block, in order (channel = index + 1), and an interface block that names its interface
//! (`if_name`, `can0`) keeps that name. Packets of other link types are skipped, as are
//! SocketCAN error frames. pcapng timestamps follow the interface's `if_tsresol` and
//! `if_tsoffset`; simple packet blocks have no timestamp.

use core::time::Duration;
use std::io::BufRead;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness, PcapError};

use super::{Channel, ChannelMap, Format, Position, ReadError};
use crate::can::candump::{Interface, Timestamp, TraceFrame, TraceStats};
use crate::can::frame::{CanFrame, FD_LENGTHS, raw_to_id};

/// The largest block or packet the reader buffers; SocketCAN packets are at most 72 bytes, and
/// captures of other interfaces rarely pass 256 KiB.
pub const MAX_BLOCK: usize = 1 << 20;

const CAN_EFF_FLAG: u32 = 0x8000_0000;
const CAN_RTR_FLAG: u32 = 0x4000_0000;
const CAN_ERR_FLAG: u32 = 0x2000_0000;
const CANFD_BRS: u8 = 0x01;
const CANFD_ESI: u8 = 0x02;
const CANFD_FDF: u8 = 0x04;
/// `sizeof(struct can_frame)`: longer packets are CAN FD (`struct canfd_frame`, 72 bytes).
const CAN_MTU: usize = 16;

/// A SocketCAN packet (`LINKTYPE_CAN_SOCKETCAN`): the id and flags (big-endian), the payload
/// length, the FD flags, two reserved bytes, then the data. `Ok(None)` for an error frame.
///
/// # Errors
/// A reason when the packet is no valid frame.
pub fn socketcan_frame(p: &[u8]) -> Result<Option<CanFrame>, &'static str> {
    let head: [u8; 4] = p
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or("packet shorter than a SocketCAN header")?;
    let id_flags = u32::from_be_bytes(head);
    if id_flags & CAN_ERR_FLAG != 0 {
        return Ok(None);
    }
    let len = usize::from(*p.get(4).ok_or("packet shorter than a SocketCAN header")?);
    let fd_flags = *p.get(5).ok_or("packet shorter than a SocketCAN header")?;
    let extended = id_flags & CAN_EFF_FLAG != 0;
    let raw = id_flags & 0x1FFF_FFFF;
    let id = raw_to_id(raw, extended).ok_or("11-bit id with bits above 0x7FF set")?;
    let fd = fd_flags & CANFD_FDF != 0 || p.len() > CAN_MTU;
    if id_flags & CAN_RTR_FLAG != 0 && !fd {
        return <CanFrame as embedded_can::Frame>::new_remote(id, len)
            .map(Some)
            .ok_or("remote request DLC above 8");
    }
    let data = p
        .get(8..8 + len)
        .ok_or("payload length beyond the captured bytes")?;
    if fd {
        if !FD_LENGTHS.contains(&len) {
            return Err("not a CAN FD data length");
        }
        Ok(CanFrame::new_fd(id, data, fd_flags & CANFD_BRS != 0)
            .map(|f| f.with_esi(fd_flags & CANFD_ESI != 0)))
    } else {
        <CanFrame as embedded_can::Frame>::new(id, data)
            .map(Some)
            .ok_or("more than 8 data bytes in a classic frame")
    }
}

/// Turns raw pcapng timestamp ticks into time, given `if_tsresol`.
fn ticks_to_duration(ticks: u64, tsresol: u8) -> Duration {
    let ticks = u128::from(ticks);
    let nanos = if tsresol & 0x80 == 0 {
        let exp = u32::from(tsresol);
        if exp <= 9 {
            ticks * 10u128.pow(9 - exp)
        } else {
            ticks / 10u128.checked_pow(exp - 9).unwrap_or(u128::MAX)
        }
    } else {
        let shift = u32::from(tsresol & 0x7F).min(127);
        (ticks * 1_000_000_000) >> shift
    };
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, u32::try_from(nanos % 1_000_000_000).unwrap_or(0))
}

enum State {
    Start,
    Pcap { parser: PcapParser, can: bool },
    Ng(PcapNgParser),
}

/// A pcap or pcapng capture read frame by frame from any [`BufRead`].
pub struct PcapReader<R> {
    reader: R,
    channels: ChannelMap,
    stats: TraceStats,
    state: State,
    buf: Vec<u8>,
    start: usize,
    /// File offset of `buf[start]`.
    pos: u64,
    eof: bool,
    done: bool,
}

enum Step {
    Frame(TraceFrame),
    Skip,
    /// A file, section or interface header: no record.
    Header,
    Bad(&'static str),
    More,
    Fatal(&'static str),
}

impl<R: BufRead> PcapReader<R> {
    /// A reader over `reader`, naming interfaces by `channels`.
    pub fn new(reader: R, channels: ChannelMap) -> Self {
        Self {
            reader,
            channels,
            stats: TraceStats::default(),
            state: State::Start,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            pos: 0,
            eof: false,
            done: false,
        }
    }

    /// Packets, frames, skipped and bad packets so far.
    pub fn stats(&self) -> TraceStats {
        self.stats
    }

    fn format(&self) -> Format {
        match self.state {
            State::Ng(_) => Format::PcapNg,
            _ => Format::Pcap,
        }
    }

    /// Reads more input into the buffer; false at the end.
    fn more(&mut self) -> std::io::Result<bool> {
        self.buf.drain(..self.start.min(self.buf.len()));
        self.start = 0;
        let chunk = self.reader.fill_buf()?;
        if chunk.is_empty() {
            self.eof = true;
            return Ok(false);
        }
        let n = chunk.len().min(64 * 1024);
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        self.reader.consume(n);
        Ok(true)
    }

    /// Parses what the buffer holds into the next step, consuming what it used.
    fn step(&mut self) -> Step {
        let src = self.buf.get(self.start..).unwrap_or_default();
        let (used, step) = match &mut self.state {
            State::Start => {
                let ng = src.get(..4) == Some(&[0x0A, 0x0D, 0x0D, 0x0A][..]);
                let res = if ng {
                    PcapNgParser::new(src).map(|(rem, p)| (rem.len(), State::Ng(p)))
                } else {
                    PcapParser::new(src).map(|(rem, p)| {
                        let can = p.header().datalink == DataLink::CAN_SOCKETCAN;
                        (rem.len(), State::Pcap { parser: p, can })
                    })
                };
                match res {
                    Ok((rem, state)) => {
                        self.state = state;
                        (src.len() - rem, Step::Header)
                    }
                    Err(PcapError::IncompleteBuffer) => (0, Step::More),
                    Err(_) => (0, Step::Fatal("not a valid pcap or pcapng file header")),
                }
            }
            State::Pcap { parser, can } => match parser.next_raw_packet(src) {
                Ok((rem, raw)) => {
                    let used = src.len() - rem.len();
                    let step = if !*can {
                        Step::Skip
                    } else {
                        let hdr = parser.header();
                        match raw.try_into_pcap_packet(hdr.ts_resolution, u32::MAX) {
                            Err(_) => Step::Bad("packet header is invalid"),
                            Ok(pkt) => match socketcan_frame(&pkt.data) {
                                Ok(Some(frame)) => Step::Frame(TraceFrame {
                                    timestamp: Some(Timestamp::Absolute(pkt.timestamp)),
                                    interface: Channel::Number(1).resolve(&self.channels),
                                    frame,
                                }),
                                Ok(None) => Step::Skip,
                                Err(r) => Step::Bad(r),
                            },
                        }
                    };
                    (used, step)
                }
                Err(PcapError::IncompleteBuffer) => (0, Step::More),
                Err(_) => (0, Step::Fatal("packet header is invalid")),
            },
            State::Ng(parser) => {
                let endianness = parser.section().endianness;
                match parser.next_block(src) {
                    Ok((rem, block)) => {
                        let used = src.len() - rem.len();
                        let step = match block {
                            Block::EnhancedPacket(epb) => {
                                let iface = parser.interfaces().get(epb.interface_id as usize);
                                match iface {
                                    None => Step::Bad("packet of an interface never described"),
                                    Some(i) if i.linktype != DataLink::CAN_SOCKETCAN => Step::Skip,
                                    Some(i) => {
                                        let (mut tsresol, mut offset, mut name) = (6, 0, None);
                                        for o in &i.options {
                                            match o {
                                                InterfaceDescriptionOption::IfTsResol(r) => {
                                                    tsresol = *r
                                                }
                                                InterfaceDescriptionOption::IfTsOffset(s) => {
                                                    offset = *s
                                                }
                                                InterfaceDescriptionOption::IfName(n) => {
                                                    name = Interface::new(n)
                                                }
                                                _ => {}
                                            }
                                        }
                                        let ticks = u64::try_from(epb.timestamp.as_nanos())
                                            .unwrap_or(u64::MAX);
                                        let ts = ticks_to_duration(ticks, tsresol)
                                            .saturating_add(Duration::from_secs(offset));
                                        let channel = match name {
                                            Some(n) => Channel::Named(n),
                                            None => Channel::Number(
                                                u16::try_from(epb.interface_id + 1)
                                                    .unwrap_or(u16::MAX),
                                            ),
                                        };
                                        match socketcan_frame(&epb.data) {
                                            Ok(Some(frame)) => Step::Frame(TraceFrame {
                                                timestamp: Some(Timestamp::Absolute(ts)),
                                                interface: channel.resolve(&self.channels),
                                                frame,
                                            }),
                                            Ok(None) => Step::Skip,
                                            Err(r) => Step::Bad(r),
                                        }
                                    }
                                }
                            }
                            Block::SimplePacket(spb) => match parser.interfaces().first() {
                                Some(i) if i.linktype == DataLink::CAN_SOCKETCAN => {
                                    match socketcan_frame(&spb.data) {
                                        Ok(Some(frame)) => Step::Frame(TraceFrame {
                                            timestamp: None,
                                            interface: Channel::Number(1).resolve(&self.channels),
                                            frame,
                                        }),
                                        Ok(None) => Step::Skip,
                                        Err(r) => Step::Bad(r),
                                    }
                                }
                                Some(_) => Step::Skip,
                                None => Step::Bad("packet before any interface block"),
                            },
                            // Section and interface blocks are headers, not records.
                            Block::SectionHeader(_) | Block::InterfaceDescription(_) => {
                                Step::Header
                            }
                            _ => Step::Skip,
                        };
                        (used, step)
                    }
                    Err(PcapError::IncompleteBuffer) => (0, Step::More),
                    Err(_) => match block_len(src, endianness) {
                        // A block whose length is sound but whose content is not: skip it.
                        Some(len) if len <= src.len() => (len, Step::Bad("invalid pcapng block")),
                        Some(len) if len <= MAX_BLOCK => (0, Step::More),
                        _ => (0, Step::Fatal("invalid pcapng block length")),
                    },
                }
            }
        };
        self.start += used;
        self.pos += used as u64;
        step
    }
}

/// A pcapng block's total length from its header, if it is a plausible one.
fn block_len(src: &[u8], e: Endianness) -> Option<usize> {
    let b: [u8; 4] = src.get(4..8)?.try_into().ok()?;
    let len = match e {
        Endianness::Big => u32::from_be_bytes(b),
        Endianness::Little => u32::from_le_bytes(b),
    } as usize;
    (len >= 12 && len.is_multiple_of(4)).then_some(len)
}

impl<R: BufRead> Iterator for PcapReader<R> {
    type Item = Result<TraceFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let at = self.pos;
            match self.step() {
                Step::Frame(f)
                    if f.timestamp
                        .is_some_and(|t| t.as_duration().as_secs() > super::MAX_SECS) =>
                {
                    self.stats.lines += 1;
                    self.stats.bad += 1;
                    return Some(Err(ReadError::Record {
                        format: self.format(),
                        at: Position::Byte(at),
                        reason: "time beyond 999,999,999,999 s".into(),
                    }));
                }
                Step::Frame(f) => {
                    self.stats.lines += 1;
                    self.stats.frames += 1;
                    return Some(Ok(f));
                }
                Step::Skip => {
                    self.stats.lines += 1;
                    self.stats.skipped += 1;
                }
                Step::Header => {}
                Step::Bad(reason) => {
                    self.stats.lines += 1;
                    self.stats.bad += 1;
                    return Some(Err(ReadError::Record {
                        format: self.format(),
                        at: Position::Byte(at),
                        reason: reason.to_owned(),
                    }));
                }
                Step::Fatal(reason) => {
                    self.done = true;
                    self.stats.bad += 1;
                    return Some(Err(ReadError::Fatal {
                        format: self.format(),
                        at: Position::Byte(at),
                        reason: reason.to_owned(),
                    }));
                }
                Step::More => {
                    let buffered = self.buf.len() - self.start;
                    if buffered >= MAX_BLOCK {
                        self.done = true;
                        self.stats.bad += 1;
                        return Some(Err(ReadError::Fatal {
                            format: self.format(),
                            at: Position::Byte(at),
                            reason: "block or packet larger than 1 MiB".into(),
                        }));
                    }
                    match self.more() {
                        Ok(true) => {}
                        Ok(false) => {
                            self.done = true;
                            if buffered > 0 {
                                self.stats.bad += 1;
                                return Some(Err(ReadError::Fatal {
                                    format: self.format(),
                                    at: Position::Byte(at),
                                    reason: "capture cut short".into(),
                                }));
                            }
                            return None;
                        }
                        Err(source) => {
                            self.done = true;
                            return Some(Err(ReadError::Io {
                                format: self.format(),
                                at: Position::Byte(at),
                                source,
                            }));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::borrow::Cow;

    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;

    use super::*;
    use embedded_can::Frame as _;

    fn packet(id_flags: u32, fd_flags: u8, data: &[u8], fd: bool) -> Vec<u8> {
        let mut p = id_flags.to_be_bytes().to_vec();
        p.extend_from_slice(&[data.len() as u8, fd_flags, 0, 0]);
        p.extend_from_slice(data);
        p.resize(if fd { 72 } else { 16 }, 0);
        p
    }

    fn idb(name: Option<&str>) -> InterfaceDescriptionBlock<'static> {
        let mut i = InterfaceDescriptionBlock::new(DataLink::CAN_SOCKETCAN, 0xFFFF);
        if let Some(n) = name {
            i.options
                .push(InterfaceDescriptionOption::IfName(Cow::Owned(n.into())));
        }
        i.options.push(InterfaceDescriptionOption::IfTsResol(9));
        i
    }

    fn epb(interface_id: u32, ns: u64, data: Vec<u8>) -> EnhancedPacketBlock<'static> {
        EnhancedPacketBlock {
            interface_id,
            // pcap-file stores the raw ticks (here ns, `if_tsresol` 9) as nanoseconds.
            timestamp: Duration::from_nanos(ns),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        }
    }

    #[test]
    fn pcapng_with_two_interfaces() {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(idb(None)).unwrap();
        w.write_pcapng_block(idb(Some("vcan5"))).unwrap();
        let t = 1_700_000_000_123_456_789;
        w.write_pcapng_block(epb(0, t, packet(0x123, 0, &[1, 2], false)))
            .unwrap();
        w.write_pcapng_block(epb(
            1,
            t + 1000,
            packet(0x8000_0000 | 0x18DA_F110, 0x05, &[7; 12], true),
        ))
        .unwrap();
        w.write_pcapng_block(epb(1, t + 2000, packet(0x2000_0004, 0, &[0; 8], false)))
            .unwrap();
        w.write_pcapng_block(epb(0, t + 3000, packet(0x4000_0321, 0, &[], false)))
            .unwrap();
        w.write_pcapng_block(epb(0, t + 4000, packet(0x800, 0, &[], false)))
            .unwrap();
        let bytes = w.into_inner();
        assert_eq!(super::super::detect(&bytes), Format::PcapNg);
        let mut r = PcapReader::new(&bytes[..], ChannelMap::default());
        let items: Vec<_> = r.by_ref().collect();
        let a = items[0].as_ref().unwrap();
        assert_eq!(
            (a.interface.as_str(), a.frame.raw_id(), a.frame.data()),
            ("can0", 0x123, &[1, 2][..])
        );
        assert_eq!(
            a.timestamp,
            Some(Timestamp::Absolute(Duration::from_nanos(t)))
        );
        let b = items[1].as_ref().unwrap();
        assert_eq!(b.interface.as_str(), "vcan5");
        assert!(b.frame.is_fd() && b.frame.is_brs() && !b.frame.is_esi() && b.frame.is_extended());
        assert_eq!(b.frame.data(), &[7; 12]);
        let c = items[2].as_ref().unwrap();
        assert!(c.frame.is_remote_frame());
        assert_eq!(c.frame.raw_id(), 0x321);
        assert!(matches!(
            &items[3],
            Err(ReadError::Record {
                format: Format::PcapNg,
                ..
            })
        ));
        assert_eq!(items.len(), 4);
        let s = r.stats();
        assert_eq!((s.frames, s.skipped, s.bad), (3, 1, 1));
    }

    #[test]
    fn classic_pcap_and_a_cut_capture() {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let header = PcapHeader {
            datalink: DataLink::CAN_SOCKETCAN,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let data = packet(0x7E8, 0, &[3, 0x41, 0x0D, 50], false);
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(1_500_000),
            16,
            &data,
        ))
        .unwrap();
        let mut bytes = w.into_writer();
        assert_eq!(super::super::detect(&bytes), Format::Pcap);
        let items: Vec<_> = PcapReader::new(&bytes[..], ChannelMap::default()).collect();
        let f = items[0].as_ref().unwrap();
        assert_eq!(f.frame.data(), &[3, 0x41, 0x0D, 50]);
        assert_eq!(
            f.timestamp,
            Some(Timestamp::Absolute(Duration::from_micros(1_500_000)))
        );
        bytes.truncate(bytes.len() - 3);
        let items: Vec<_> = PcapReader::new(&bytes[..], ChannelMap::default()).collect();
        assert!(matches!(
            &items[..],
            [Err(ReadError::Fatal {
                at: Position::Byte(24),
                ..
            })]
        ));
    }

    #[test]
    fn tsresol_variants() {
        assert_eq!(
            ticks_to_duration(1_500_000, 6),
            Duration::from_micros(1_500_000)
        );
        assert_eq!(ticks_to_duration(15, 1), Duration::from_millis(1500));
        assert_eq!(ticks_to_duration(3, 0x81), Duration::from_millis(1500));
        assert_eq!(ticks_to_duration(u64::MAX, 0xFF), Duration::ZERO);
    }
}
