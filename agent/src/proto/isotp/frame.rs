//! The ISO-TP protocol control information (PCI): parsing one frame's bytes into a [`Frame`],
//! and writing frames into a fixed buffer. Owns the byte layout only; timing, sequence
//! checks and reassembly are the receiver's and sender's.

use core::time::Duration;

use super::FD_DEFAULT_PADDING;
use crate::can::frame::FD_LENGTHS;

/// Longest CAN (FD) frame.
pub(super) const MAX_FRAME: usize = 64;

/// One ISO-TP frame, borrowing its data from the input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// Single frame: a whole payload.
    Single(&'a [u8]),
    /// First frame of a segmented payload: its total length and first bytes.
    First {
        /// Total payload length (12-bit form, or 32-bit after the `10 00` escape).
        length: u32,
        /// Payload bytes carried by this frame.
        data: &'a [u8],
    },
    /// Consecutive frame: sequence nibble and the next payload bytes (padding included;
    /// only the receiver knows how many are real).
    Consecutive {
        /// Sequence number, 0..=15.
        sequence: u8,
        /// Bytes after the PCI.
        data: &'a [u8],
    },
    /// Flow control from the receiving side.
    FlowControl(FlowControl),
}

/// What is wrong with a frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// No bytes at all.
    #[error("empty frame")]
    Empty,
    /// More bytes than a CAN FD frame holds.
    #[error("{len}-byte frame is longer than the 64 bytes of CAN FD")]
    TooLong {
        /// Frame length.
        len: usize,
    },
    /// PCI type nibble 4..=15.
    #[error("PCI type {0:#X} is reserved")]
    ReservedType(u8),
    /// Single frame declaring 0 bytes.
    #[error("single frame declares length 0")]
    SingleFrameZero,
    /// Single frame declaring more bytes than the frame holds.
    #[error("single frame declares {declared} bytes but carries {available}")]
    SingleFrameLength {
        /// Declared length.
        declared: usize,
        /// Bytes after the PCI.
        available: usize,
    },
    /// A CAN FD single frame (over 8 bytes) not using the `00 len` escape.
    #[error("single frame of {len} bytes must use the escape form 00 len")]
    SingleFrameNeedsEscape {
        /// Frame length.
        len: usize,
    },
    /// First frame too short to hold its length field.
    #[error("first frame of {len} bytes is truncated, needs {need}")]
    FirstFrameTruncated {
        /// Frame length.
        len: usize,
        /// Bytes its length field needs.
        need: usize,
    },
    /// Flow control shorter than its 3 bytes.
    #[error("flow control of {len} bytes is truncated, needs 3")]
    FlowControlTruncated {
        /// Frame length.
        len: usize,
    },
    /// Flow status 3..=15.
    #[error("flow status {0:#X} is reserved")]
    ReservedFlowStatus(u8),
    /// STmin 0x80..=0xF0 or 0xFA..=0xFF.
    #[error("STmin {0:#04X} is reserved")]
    ReservedStMin(u8),
}

impl<'a> Frame<'a> {
    /// Parses one frame's data bytes (normal addressing: the PCI is the first byte).
    ///
    /// # Errors
    /// [`FrameError`] for empty or over-long frames, reserved PCI types, single frames whose
    /// length is 0 or exceeds the frame, truncated first frames and malformed flow control.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self, FrameError> {
        if data.len() > MAX_FRAME {
            return Err(FrameError::TooLong { len: data.len() });
        }
        let Some((&pci, rest)) = data.split_first() else {
            return Err(FrameError::Empty);
        };
        match pci >> 4 {
            0 => parse_single(pci, rest, data.len()),
            1 => parse_first(pci, data),
            2 => Ok(Self::Consecutive {
                sequence: pci & 0x0F,
                data: rest,
            }),
            3 => FlowControl::parse(data).map(Self::FlowControl),
            kind => Err(FrameError::ReservedType(kind)),
        }
    }
}

fn parse_single(pci: u8, rest: &[u8], frame_len: usize) -> Result<Frame<'_>, FrameError> {
    let nibble = usize::from(pci & 0x0F);
    // The escape form exists only in frames the nibble cannot describe (CAN FD, over 8 bytes).
    let (declared, payload) = if frame_len <= 8 {
        (nibble, rest)
    } else if nibble != 0 {
        return Err(FrameError::SingleFrameNeedsEscape { len: frame_len });
    } else {
        match rest.split_first() {
            Some((&len, payload)) => (usize::from(len), payload),
            None => return Err(FrameError::SingleFrameZero),
        }
    };
    if declared == 0 {
        return Err(FrameError::SingleFrameZero);
    }
    payload
        .get(..declared)
        .map(Frame::Single)
        .ok_or(FrameError::SingleFrameLength {
            declared,
            available: payload.len(),
        })
}

fn parse_first(pci: u8, data: &[u8]) -> Result<Frame<'_>, FrameError> {
    let truncated = |need| FrameError::FirstFrameTruncated {
        len: data.len(),
        need,
    };
    let low = *data.get(1).ok_or(truncated(2))?;
    let short = u32::from(pci & 0x0F) << 8 | u32::from(low);
    if short != 0 {
        let rest = data.get(2..).unwrap_or_default();
        return Ok(Frame::First {
            length: short,
            data: rest,
        });
    }
    // `10 00` escape: a 32-bit big-endian length follows.
    let field = data.get(2..6).ok_or(truncated(6))?;
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(field);
    Ok(Frame::First {
        length: u32::from_be_bytes(bytes),
        data: data.get(6..).unwrap_or_default(),
    })
}

/// A flow-control frame: `3s bs st`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowControl {
    /// Continue, wait or overflow.
    pub(crate) status: FlowStatus,
    /// Consecutive frames to send before the next flow control (0: all of them).
    pub(crate) block_size: u8,
    /// Minimum gap between consecutive frames.
    pub(crate) st_min: StMin,
}

/// Flow status, the low nibble of a flow-control PCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowStatus {
    /// 0: continue to send.
    ContinueToSend,
    /// 1: wait for another flow control.
    Wait,
    /// 2: the payload is too long for the receiver; abort.
    Overflow,
}

impl FlowControl {
    /// Parses a flow-control frame (PCI type 3); trailing padding is ignored.
    ///
    /// # Errors
    /// [`FrameError::FlowControlTruncated`] under 3 bytes, [`FrameError::ReservedFlowStatus`],
    /// [`FrameError::ReservedStMin`]; [`FrameError::ReservedType`] if it is not a flow control.
    pub(crate) fn parse(data: &[u8]) -> Result<Self, FrameError> {
        let [pci, block_size, st_min, ..] = *data else {
            return match data.first() {
                Some(pci) if pci >> 4 != 3 => Err(FrameError::ReservedType(pci >> 4)),
                _ => Err(FrameError::FlowControlTruncated { len: data.len() }),
            };
        };
        if pci >> 4 != 3 {
            return Err(FrameError::ReservedType(pci >> 4));
        }
        let status = match pci & 0x0F {
            0 => FlowStatus::ContinueToSend,
            1 => FlowStatus::Wait,
            2 => FlowStatus::Overflow,
            other => return Err(FrameError::ReservedFlowStatus(other)),
        };
        Ok(Self {
            status,
            block_size,
            st_min: StMin::from_byte(st_min)?,
        })
    }

    fn pci(&self) -> u8 {
        0x30 | match self.status {
            FlowStatus::ContinueToSend => 0,
            FlowStatus::Wait => 1,
            FlowStatus::Overflow => 2,
        }
    }
}

/// Separation time minimum as carried on the wire: 0x00..=0x7F milliseconds, or
/// 0xF1..=0xF9 = 100..=900 µs. Other byte values are reserved and cannot be built.
///
/// In a config it is written as that byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct StMin(u8);

impl StMin {
    /// No gap.
    pub(crate) const ZERO: Self = Self(0);

    /// From the wire byte.
    ///
    /// # Errors
    /// [`FrameError::ReservedStMin`] for 0x80..=0xF0 and 0xFA..=0xFF.
    pub(crate) const fn from_byte(byte: u8) -> Result<Self, FrameError> {
        match byte {
            0x00..=0x7F | 0xF1..=0xF9 => Ok(Self(byte)),
            _ => Err(FrameError::ReservedStMin(byte)),
        }
    }

    /// The wire byte.
    pub(crate) const fn byte(self) -> u8 {
        self.0
    }

    /// The gap it stands for.
    pub(crate) fn duration(self) -> Duration {
        match self.0 {
            0xF1..=0xF9 => Duration::from_micros(u64::from(self.0 - 0xF0) * 100),
            ms => Duration::from_millis(u64::from(ms)),
        }
    }
}

impl TryFrom<u8> for StMin {
    type Error = FrameError;
    fn try_from(byte: u8) -> Result<Self, FrameError> {
        Self::from_byte(byte)
    }
}

impl From<StMin> for u8 {
    fn from(st: StMin) -> u8 {
        st.0
    }
}

/// One outgoing frame, built in place so transmitting never allocates.
#[derive(Clone)]
pub(super) struct FrameBuf {
    bytes: [u8; MAX_FRAME],
    len: usize,
}

impl core::fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02X?}", self.as_slice())
    }
}

impl FrameBuf {
    pub(super) fn new() -> Self {
        Self {
            bytes: [0; MAX_FRAME],
            len: 0,
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// Starts a frame with these header bytes and as much of `data` as fits in `max` bytes;
    /// returns how many bytes of `data` went in.
    pub(super) fn fill(&mut self, header: &[u8], data: &[u8], max: usize) -> usize {
        let max = max.min(MAX_FRAME);
        let head = header.len().min(max);
        let take = data.len().min(max - head);
        let src = header.iter().take(head).chain(data.iter().take(take));
        for (dst, src) in self.bytes.iter_mut().zip(src) {
            *dst = *src;
        }
        self.len = head + take;
        take
    }

    /// Pads the frame: to 8 bytes if `padding` is set, and (always) up to the next CAN FD
    /// length when it is over 8 bytes, since FD lengths 9..=11, 13..=15, ... do not exist.
    pub(super) fn pad(&mut self, padding: Option<u8>) {
        let target = if self.len <= 8 {
            if padding.is_some() { 8 } else { self.len }
        } else {
            FD_LENGTHS
                .iter()
                .copied()
                .find(|&len| len >= self.len)
                .unwrap_or(MAX_FRAME)
        };
        if let Some(tail) = self.bytes.get_mut(self.len..target) {
            tail.fill(padding.unwrap_or(FD_DEFAULT_PADDING));
            self.len = target;
        }
    }

    /// Writes a flow-control frame.
    #[cfg(test)]
    pub(super) fn flow_control(&mut self, fc: FlowControl, padding: Option<u8>) -> &[u8] {
        self.flow_control_to(fc, padding, None)
    }

    /// Writes a flow-control frame, after the target address byte `address` when the
    /// channel uses extended addressing (ISO 15765-2 §10.3.4).
    pub(super) fn flow_control_to(
        &mut self,
        fc: FlowControl,
        padding: Option<u8>,
        address: Option<u8>,
    ) -> &[u8] {
        let pci = [fc.pci(), fc.block_size, fc.st_min.byte()];
        match address {
            Some(a) => self.fill(&[a, pci[0], pci[1], pci[2]], &[], 4),
            None => self.fill(&pci, &[], 3),
        };
        self.pad(padding);
        self.as_slice()
    }
}

#[cfg(test)]
mod tests {
    //! Codec vectors from pylessard/python-can-isotp `test/test_helper_classes.py`
    //! @ 4e5519c9 (VECTORS.md §2), plus the malformed cases.
    use super::*;

    #[test]
    fn single_frame() {
        // 05 = SF, length 5 | payload
        assert_eq!(
            Frame::parse(&[0x05, 0x11, 0x22, 0x33, 0x44, 0x55]),
            Ok(Frame::Single(&[0x11, 0x22, 0x33, 0x44, 0x55]))
        );
        // 07 = SF, length 7: the largest classic single frame
        assert_eq!(
            Frame::parse(&[0x07, 0x41, 0, 0, 1, 2, 3, 4]),
            Ok(Frame::Single(&[0x41, 0, 0, 1, 2, 3, 4]))
        );
        // Padding after the declared length is not payload.
        assert_eq!(
            Frame::parse(&[0x02, 0x7E, 0x00, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA]),
            Ok(Frame::Single(&[0x7E, 0x00]))
        );
    }

    #[test]
    fn single_frame_fd_escape() {
        // 00 0A = SF escape, length 10, in a 12-byte FD frame
        let mut data = [0xCC; 12];
        data[0] = 0x00;
        data[1] = 0x0A;
        data[2..12].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(
            Frame::parse(&data),
            Ok(Frame::Single(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
        );
        data[1] = 0x0B; // 11 > the 10 bytes after `00 len`
        assert_eq!(
            Frame::parse(&data),
            Err(FrameError::SingleFrameLength {
                declared: 11,
                available: 10
            })
        );
        data[0] = 0x05; // nibble form in a frame over 8 bytes
        assert_eq!(
            Frame::parse(&data),
            Err(FrameError::SingleFrameNeedsEscape { len: 12 })
        );
    }

    #[test]
    fn single_frame_malformed() {
        // python-OBD tests/test_protocol_can.py (VECTORS.md §1b): `01`, `00`, `08 41 ..` dropped
        assert_eq!(
            Frame::parse(&[0x01]),
            Err(FrameError::SingleFrameLength {
                declared: 1,
                available: 0
            })
        );
        assert_eq!(Frame::parse(&[0x00]), Err(FrameError::SingleFrameZero));
        assert_eq!(
            Frame::parse(&[0x08, 0x41, 0, 0, 1, 2, 3, 4]),
            Err(FrameError::SingleFrameLength {
                declared: 8,
                available: 7
            })
        );
        // `00 len` in a classic frame is length 0, not an escape.
        assert_eq!(
            Frame::parse(&[0x00, 0x05, 1, 2, 3, 4, 5]),
            Err(FrameError::SingleFrameZero)
        );
        assert_eq!(Frame::parse(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::parse(&[0; 65]), Err(FrameError::TooLong { len: 65 }));
        for pci in 4..=15u8 {
            assert_eq!(
                Frame::parse(&[pci << 4, 0, 0]),
                Err(FrameError::ReservedType(pci))
            );
        }
    }

    #[test]
    fn first_frame() {
        // 1F FF = FF, 12-bit length 4095 | 6 data bytes
        assert_eq!(
            Frame::parse(&[0x1F, 0xFF, 0, 1, 2, 3, 4, 5]),
            Ok(Frame::First {
                length: 4095,
                data: &[0, 1, 2, 3, 4, 5]
            })
        );
        // 10 02 = FF, length 2, no data: the codec decodes it, the receiver rejects it
        assert_eq!(
            Frame::parse(&[0x10, 0x02]),
            Ok(Frame::First {
                length: 2,
                data: &[]
            })
        );
        assert_eq!(
            Frame::parse(&[0x10, 0x02, 0x11]),
            Ok(Frame::First {
                length: 2,
                data: &[0x11]
            })
        );
    }

    #[test]
    fn first_frame_escape() {
        // 10 00 | 32-bit length 0x00001000 = 4096 | 2 data bytes
        assert_eq!(
            Frame::parse(&[0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0, 1]),
            Ok(Frame::First {
                length: 4096,
                data: &[0, 1]
            })
        );
        // 10 00 | 0x00002710 = 10000
        assert_eq!(
            Frame::parse(&[0x10, 0x00, 0x00, 0x00, 0x27, 0x10]),
            Ok(Frame::First {
                length: 10_000,
                data: &[]
            })
        );
        // 10 00 | 0xAABBCCDD | 11 22
        assert_eq!(
            Frame::parse(&[0x10, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0x11, 0x22]),
            Ok(Frame::First {
                length: 0xAABB_CCDD,
                data: &[0x11, 0x22]
            })
        );
    }

    #[test]
    fn first_frame_truncated() {
        assert_eq!(
            Frame::parse(&[0x10]),
            Err(FrameError::FirstFrameTruncated { len: 1, need: 2 })
        );
        assert_eq!(
            Frame::parse(&[0x10, 0x00, 0xAA, 0xBB, 0xCC]),
            Err(FrameError::FirstFrameTruncated { len: 5, need: 6 })
        );
    }

    #[test]
    fn consecutive_frame() {
        // 2A = CF, sequence 0xA | 7 data bytes
        assert_eq!(
            Frame::parse(&[0x2A, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]),
            Ok(Frame::Consecutive {
                sequence: 0xA,
                data: &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
            })
        );
    }

    #[test]
    fn flow_control_status() {
        let fc = |status| {
            Ok(Frame::FlowControl(FlowControl {
                status,
                block_size: 0,
                st_min: StMin::ZERO,
            }))
        };
        assert_eq!(Frame::parse(&[0x30, 0, 0]), fc(FlowStatus::ContinueToSend));
        assert_eq!(Frame::parse(&[0x31, 0, 0]), fc(FlowStatus::Wait));
        assert_eq!(Frame::parse(&[0x32, 0, 0]), fc(FlowStatus::Overflow));
        for status in 0x3..=0xF {
            assert_eq!(
                Frame::parse(&[0x30 | status, 0, 0]),
                Err(FrameError::ReservedFlowStatus(status))
            );
        }
        assert_eq!(
            Frame::parse(&[0x30, 0]),
            Err(FrameError::FlowControlTruncated { len: 2 })
        );
        assert_eq!(
            FlowControl::parse(&[0x21, 0, 0]),
            Err(FrameError::ReservedType(2))
        );
        // 30 05 02 + padding: bs 5, STmin 2 ms
        assert_eq!(
            FlowControl::parse(&[0x30, 0x05, 0x02, 0x22, 0x22, 0x22, 0x22, 0x22]),
            Ok(FlowControl {
                status: FlowStatus::ContinueToSend,
                block_size: 5,
                st_min: StMin(2)
            })
        );
    }

    #[test]
    fn st_min_every_byte() {
        for byte in 0..=u8::MAX {
            let parsed = FlowControl::parse(&[0x30, 0, byte]).map(|fc| fc.st_min.duration());
            match byte {
                0x00..=0x7F => {
                    assert_eq!(parsed, Ok(Duration::from_millis(u64::from(byte))))
                }
                0xF1..=0xF9 => assert_eq!(
                    parsed,
                    Ok(Duration::from_micros(u64::from(byte - 0xF0) * 100))
                ),
                _ => assert_eq!(parsed, Err(FrameError::ReservedStMin(byte))),
            }
        }
        assert_eq!(
            StMin::from_byte(0xF1).map(StMin::duration),
            Ok(Duration::from_micros(100))
        );
        assert_eq!(
            StMin::from_byte(0xF9).map(StMin::duration),
            Ok(Duration::from_micros(900))
        );
    }

    #[test]
    fn writes_flow_control_and_padding() {
        let mut buf = FrameBuf::new();
        let fc = FlowControl {
            status: FlowStatus::ContinueToSend,
            block_size: 5,
            st_min: StMin(2),
        };
        assert_eq!(buf.flow_control(fc, None), &[0x30, 0x05, 0x02]);
        assert_eq!(
            buf.flow_control(fc, Some(0x22)),
            &[0x30, 0x05, 0x02, 0x22, 0x22, 0x22, 0x22, 0x22]
        );
        // A 10-byte FD frame has no DLC: it pads to 12, with 0xCC when no padding is set.
        assert_eq!(buf.fill(&[0x21], &[1; 20], 10), 9);
        buf.pad(None);
        assert_eq!(buf.as_slice().len(), 12);
        assert_eq!(buf.as_slice()[10..], [0xCC, 0xCC]);
    }
}
