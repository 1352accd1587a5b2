//! Reassembly of one peer's ISO-TP messages ([`Receiver`]): single frames, first frame plus
//! consecutive frames, the flow control we owe the sender, N_Cr, and a passive mode for trace
//! replay. Does not route by CAN id (the caller or [`super::Demux`] does) nor send anything.
//!
//! Extended addressing (ISO 15765-2 §10.3.4, [`Receiver::with_extended_address`]): each frame's
//! first byte is the target address, so a frame carries one byte less; the receiver checks the
//! byte, takes it off before the PCI and puts the peer's address before its flow control.

use core::time::Duration;

use super::frame::{FlowControl, FlowStatus, Frame, FrameBuf};
use super::{Config, IsoTpError, Timer};

/// What a frame fed to [`Receiver::on_frame`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxEvent<'a> {
    /// Taken in; nothing to do yet.
    Pending,
    /// Send these bytes on our tx id (flow control); never produced in passive mode.
    FlowControl(&'a [u8]),
    /// A whole payload, borrowed from the receiver's buffer until the next call.
    Complete(&'a [u8]),
}

/// A reception abandoned because the sender started a new message (see
/// [`Receiver::interrupted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// A single frame arrived mid-reception.
    BySingleFrame {
        /// Bytes received of the abandoned message.
        received: usize,
        /// Its declared length.
        expected: usize,
    },
    /// A first frame arrived mid-reception.
    ByFirstFrame {
        /// Bytes received of the abandoned message.
        received: usize,
        /// Its declared length.
        expected: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    Receiving {
        expected: usize,
        next_seq: u8,
        /// Length of the first frame, which every consecutive frame but the last must match.
        rx_dl: usize,
        /// Consecutive frames left before we owe another flow control (0: none owed).
        block_left: u8,
        deadline: Duration,
    },
}

/// Reassembles the messages one peer (one rx CAN id) sends.
///
/// Feed it every frame from that id with [`Receiver::on_frame`], send the flow-control bytes
/// it returns on the paired tx id, and call [`Receiver::poll`] by [`Receiver::deadline`] to
/// learn of N_Cr timeouts. The reassembly buffer is reused and grows only up to
/// `max_payload`, checked before reserving.
#[derive(Debug, Clone)]
pub struct Receiver {
    id: u32,
    config: Config,
    passive: bool,
    buf: Vec<u8>,
    fc: FrameBuf,
    state: State,
    interrupted: Option<Interrupted>,
    /// Extended addressing: (the address byte our frames carry, the peer's byte for our flow
    /// control). `None`: normal addressing.
    address: Option<(u8, u8)>,
}

impl Receiver {
    /// An active receiver for frames from CAN id `id` (the id only names errors): it answers
    /// first frames with flow control.
    pub fn new(id: u32, config: Config) -> Self {
        Self {
            id,
            config: config.normalized(),
            passive: false,
            buf: Vec::new(),
            fc: FrameBuf::new(),
            state: State::Idle,
            interrupted: None,
            address: None,
        }
    }

    /// The same receiver with extended addressing: frames it takes start with `ours` (our
    /// address, the target of the peer's frames); the flow control it hands back starts with
    /// `theirs` (the peer's address).
    pub fn with_extended_address(mut self, ours: u8, theirs: u8) -> Self {
        self.address = Some((ours, theirs));
        self
    }

    /// Bytes before the PCI: 1 with extended addressing, else 0.
    fn address_len(&self) -> usize {
        usize::from(self.address.is_some())
    }

    /// A passive receiver for trace replay: it reassembles what it sees and never asks for
    /// flow control to be sent (the trace holds the real one).
    pub fn new_passive(id: u32, config: Config) -> Self {
        Self {
            passive: true,
            ..Self::new(id, config)
        }
    }

    /// The CAN id this receiver was built for.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Takes one frame's data bytes received at `now`.
    ///
    /// A single or first frame arriving mid-reception abandons the old message and is
    /// processed as usual; [`Receiver::interrupted`] then says so.
    ///
    /// # Errors
    /// - [`IsoTpError::Frame`], [`IsoTpError::FirstFrameShort`],
    ///   [`IsoTpError::FirstFrameLength`]: malformed bytes; the frame is ignored and any
    ///   reception in progress carries on.
    /// - [`IsoTpError::PayloadTooLong`]: the first frame declares more than `max_payload`;
    ///   nothing is reserved, and an active caller should send [`Receiver::overflow_frame`].
    /// - [`IsoTpError::UnexpectedConsecutive`], [`IsoTpError::WrongSequence`],
    ///   [`IsoTpError::ShortConsecutive`], [`IsoTpError::Timeout`]: the consecutive frame does
    ///   not continue the reception, which is dropped.
    /// - [`IsoTpError::UnexpectedFlowControl`]: a flow control is the sender's business;
    ///   state is untouched.
    pub fn on_frame(&mut self, data: &[u8], now: Duration) -> Result<RxEvent<'_>, IsoTpError> {
        self.interrupted = None;
        let id = self.id;
        let body = match self.address {
            None => data,
            Some((ours, _)) => match data.split_first() {
                Some((&got, rest)) if got == ours => rest,
                Some((&got, _)) => {
                    return Err(IsoTpError::Address {
                        id,
                        expected: ours,
                        got,
                    });
                }
                None => {
                    return Err(IsoTpError::Frame {
                        id,
                        kind: super::FrameError::Empty,
                    });
                }
            },
        };
        let frame = Frame::parse(body).map_err(|kind| IsoTpError::Frame { id, kind })?;
        match frame {
            Frame::Single(payload) => {
                self.abandon(true);
                self.buf.clear();
                self.buf.extend_from_slice(payload);
                Ok(RxEvent::Complete(&self.buf))
            }
            Frame::First { length, data: head } => self.on_first(length, head, data.len(), now),
            Frame::Consecutive {
                sequence,
                data: chunk,
            } => self.on_consecutive(sequence, chunk, now),
            Frame::FlowControl(_) => Err(IsoTpError::UnexpectedFlowControl { id }),
        }
    }

    fn on_first(
        &mut self,
        length: u32,
        head: &[u8],
        frame_len: usize,
        now: Duration,
    ) -> Result<RxEvent<'_>, IsoTpError> {
        let id = self.id;
        if frame_len < 8 {
            return Err(IsoTpError::FirstFrameShort { id, len: frame_len });
        }
        // Anything that fits a single frame of this size must have been sent as one.
        let a = self.address_len();
        let min = if frame_len <= 8 {
            8 - a
        } else {
            frame_len - 1 - a
        };
        let expected = usize::try_from(length).unwrap_or(usize::MAX);
        if expected < min {
            return Err(IsoTpError::FirstFrameLength {
                id,
                declared: length,
                min,
            });
        }
        self.abandon(false);
        if expected > self.config.max_payload {
            self.state = State::Idle;
            return Err(IsoTpError::PayloadTooLong {
                id,
                declared: length,
                max: self.config.max_payload,
            });
        }
        self.buf.clear();
        self.buf.reserve(expected);
        // `expected >= min` exceeds what a first frame carries, so this never completes.
        self.buf.extend_from_slice(head);
        self.state = State::Receiving {
            expected,
            next_seq: 1,
            rx_dl: frame_len,
            block_left: self.config.block_size,
            deadline: now.saturating_add(self.config.n_cr),
        };
        Ok(self.continue_to_send())
    }

    fn on_consecutive(
        &mut self,
        sequence: u8,
        chunk: &[u8],
        now: Duration,
    ) -> Result<RxEvent<'_>, IsoTpError> {
        let id = self.id;
        let State::Receiving {
            expected,
            next_seq,
            rx_dl,
            block_left,
            deadline,
        } = self.state
        else {
            return Err(IsoTpError::UnexpectedConsecutive { id, sequence });
        };
        // Any error below ends this reception.
        self.state = State::Idle;
        if now >= deadline {
            return Err(self.timeout());
        }
        if sequence != next_seq {
            return Err(IsoTpError::WrongSequence {
                id,
                expected: next_seq,
                got: sequence,
            });
        }
        let remaining = expected.saturating_sub(self.buf.len());
        let need = remaining.min(rx_dl.saturating_sub(1 + self.address_len()));
        if chunk.len() < need {
            return Err(IsoTpError::ShortConsecutive {
                id,
                got: chunk.len(),
                need,
            });
        }
        self.buf
            .extend_from_slice(chunk.get(..remaining.min(chunk.len())).unwrap_or_default());
        if self.buf.len() >= expected {
            return Ok(RxEvent::Complete(&self.buf));
        }
        let bs = self.config.block_size;
        // With a block size, the sender stops after `bs` frames and waits for our next flow
        // control; passive receivers count too, harmlessly.
        let block_left = block_left.saturating_sub(1);
        let block_done = bs != 0 && block_left == 0;
        self.state = State::Receiving {
            expected,
            next_seq: (next_seq + 1) & 0x0F,
            rx_dl,
            block_left: if block_done { bs } else { block_left },
            deadline: now.saturating_add(self.config.n_cr),
        };
        if block_done {
            Ok(self.continue_to_send())
        } else {
            Ok(RxEvent::Pending)
        }
    }

    /// The flow control that follows a first frame or a completed block.
    fn continue_to_send(&mut self) -> RxEvent<'_> {
        if self.passive {
            return RxEvent::Pending;
        }
        let fc = FlowControl {
            status: FlowStatus::ContinueToSend,
            block_size: self.config.block_size,
            st_min: self.config.st_min,
        };
        let theirs = self.address.map(|(_, theirs)| theirs);
        RxEvent::FlowControl(self.fc.flow_control_to(fc, self.config.padding, theirs))
    }

    fn abandon(&mut self, by_single: bool) {
        if let State::Receiving { expected, .. } = self.state {
            let received = self.buf.len();
            self.interrupted = Some(if by_single {
                Interrupted::BySingleFrame { received, expected }
            } else {
                Interrupted::ByFirstFrame { received, expected }
            });
            tracing::debug!(
                id = self.id,
                received,
                expected,
                "ISO-TP reception interrupted"
            );
            self.state = State::Idle;
        }
    }

    fn timeout(&self) -> IsoTpError {
        IsoTpError::Timeout {
            id: self.id,
            timer: Timer::NCr,
            after: self.config.n_cr,
        }
    }

    /// Whether the last [`Receiver::on_frame`] abandoned a reception for a new message.
    pub(crate) fn interrupted(&self) -> Option<Interrupted> {
        self.interrupted
    }

    /// Checks the N_Cr timer.
    ///
    /// # Errors
    /// [`IsoTpError::Timeout`] once, when a reception waited `n_cr` or longer for its next
    /// consecutive frame; the reception is dropped.
    pub fn poll(&mut self, now: Duration) -> Result<(), IsoTpError> {
        match self.state {
            State::Receiving { deadline, .. } if now >= deadline => {
                self.state = State::Idle;
                Err(self.timeout())
            }
            _ => Ok(()),
        }
    }

    /// When [`Receiver::poll`] should next be called, if a reception is in progress.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        match self.state {
            State::Receiving { deadline, .. } => Some(deadline),
            State::Idle => None,
        }
    }

    /// Whether a segmented message is being received.
    pub(crate) fn is_receiving(&self) -> bool {
        matches!(self.state, State::Receiving { .. })
    }

    /// Drops any reception in progress.
    /// (The simulated ECUs and the desk use it; the head unit does not.)
    #[cfg(any(test, feature = "desk"))]
    pub(crate) fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Re-targets an idle receiver at another id, keeping its buffer.
    pub(super) fn reuse(&mut self, id: u32) {
        self.id = id;
        self.state = State::Idle;
        self.interrupted = None;
    }

    /// The flow control Overflow frame an active caller sends after
    /// [`IsoTpError::PayloadTooLong`].
    #[cfg(test)]
    pub(crate) fn overflow_frame(&mut self) -> &[u8] {
        let fc = FlowControl {
            status: FlowStatus::Overflow,
            block_size: 0,
            st_min: super::StMin::ZERO,
        };
        let theirs = self.address.map(|(_, theirs)| theirs);
        self.fc.flow_control_to(fc, self.config.padding, theirs)
    }
}

#[cfg(test)]
mod tests {
    //! Reception cases from pylessard/python-can-isotp `test/test_transport_layer_logic.py`
    //! @ 4e5519c9 (VECTORS.md §2) unless a test says otherwise.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::proto::isotp::fixtures::{make_payload, ms};
    use crate::proto::isotp::{FrameError, StMin};

    fn config(block_size: u8, st_min: u8, padding: Option<u8>) -> Config {
        Config {
            padding,
            block_size,
            st_min: StMin::from_byte(st_min).unwrap(),
            ..Config::default()
        }
    }

    fn complete(event: Result<RxEvent<'_>, IsoTpError>) -> Vec<u8> {
        match event {
            Ok(RxEvent::Complete(payload)) => payload.to_vec(),
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    #[test]
    fn single_frame() {
        let mut rx = Receiver::new(0x7E8, Config::default());
        // 05 = SF length 5
        let event = rx.on_frame(&[0x05, 0x11, 0x22, 0x33, 0x44, 0x55], ms(0));
        assert_eq!(complete(event), [0x11, 0x22, 0x33, 0x44, 0x55]);
        assert!(!rx.is_receiving());
    }

    #[test]
    fn two_frames_with_flow_control() {
        let mut rx = Receiver::new(0x7E8, config(5, 2, None));
        // 10 0A = FF length 10 | 00..05
        let fc = rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(0));
        // 30 = CTS | bs 5 | STmin 2
        assert_eq!(fc, Ok(RxEvent::FlowControl(&[0x30, 0x05, 0x02])));
        assert_eq!(rx.deadline(), Some(ms(1000)));
        // 21 = CF seq 1 | 06..09 (unpadded last frame)
        let event = rx.on_frame(&[0x21, 6, 7, 8, 9], ms(5));
        assert_eq!(complete(event), make_payload(10, 0));
        assert_eq!(rx.deadline(), None);
    }

    #[test]
    fn flow_control_padded() {
        let mut rx = Receiver::new(0x7E8, config(5, 2, Some(0x22)));
        let fc = rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(0));
        assert_eq!(
            fc,
            Ok(RxEvent::FlowControl(&[
                0x30, 0x05, 0x02, 0x22, 0x22, 0x22, 0x22, 0x22
            ]))
        );
    }

    #[test]
    fn block_size_three() {
        let mut rx = Receiver::new(0x7E8, config(3, 5, None));
        let payload = make_payload(30, 0);
        // 10 1E = FF length 30 | first 6 bytes
        let mut ff = vec![0x10, 0x1E];
        ff.extend_from_slice(&payload[..6]);
        assert_eq!(
            rx.on_frame(&ff, ms(0)),
            Ok(RxEvent::FlowControl(&[0x30, 0x03, 0x05]))
        );
        let cf = |seq: u8, range: core::ops::Range<usize>| {
            let mut f = vec![0x20 | seq];
            f.extend_from_slice(&payload[range]);
            f
        };
        assert_eq!(rx.on_frame(&cf(1, 6..13), ms(1)), Ok(RxEvent::Pending));
        assert_eq!(rx.on_frame(&cf(2, 13..20), ms(2)), Ok(RxEvent::Pending));
        // Third CF of the block: the second flow control is due.
        assert_eq!(
            rx.on_frame(&cf(3, 20..27), ms(3)),
            Ok(RxEvent::FlowControl(&[0x30, 0x03, 0x05]))
        );
        assert_eq!(complete(rx.on_frame(&cf(4, 27..30), ms(4))), payload);
    }

    #[test]
    fn block_size_zero_sends_one_flow_control() {
        let mut rx = Receiver::new(0x7E8, config(0, 0, None));
        let payload = make_payload(34, 0);
        assert!(matches!(
            rx.on_frame(&[0x10, 34, 0, 1, 2, 3, 4, 5], ms(0)),
            Ok(RxEvent::FlowControl(_))
        ));
        for (i, chunk) in payload[6..].chunks(7).enumerate() {
            let mut cf = vec![0x21 + i as u8];
            cf.extend_from_slice(chunk);
            let event = rx.on_frame(&cf, ms(1 + i as u64));
            if i < 3 {
                assert_eq!(event, Ok(RxEvent::Pending), "CF {i}");
            } else {
                assert_eq!(complete(event), payload);
            }
        }
    }

    #[test]
    fn sequence_wraps_after_fifteen() {
        let mut rx = Receiver::new(0x7E8, Config::default());
        let payload = make_payload(200, 7);
        let mut ff = vec![0x10, 200];
        ff.extend_from_slice(&payload[..6]);
        rx.on_frame(&ff, ms(0)).unwrap();
        let mut out = Vec::new();
        for (i, chunk) in payload[6..].chunks(7).enumerate() {
            let mut cf = vec![0x20 | ((i + 1) % 16) as u8];
            cf.extend_from_slice(chunk);
            if let RxEvent::Complete(p) = rx.on_frame(&cf, ms(i as u64)).unwrap() {
                out = p.to_vec();
            }
        }
        assert_eq!(out, payload);
    }

    #[test]
    fn wrong_sequence_number() {
        let mut rx = Receiver::new(0x7E8, config(1, 0, None));
        rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(0)).unwrap();
        // 22 where 21 is due
        let err = rx.on_frame(&[0x22, 6, 7, 8, 9], ms(1)).unwrap_err();
        assert_eq!(
            err,
            IsoTpError::WrongSequence {
                id: 0x7E8,
                expected: 1,
                got: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "ISO-TP consecutive frame from 0x7E8: expected sequence 1, got 2"
        );
        assert!(!rx.is_receiving());
        // The right CF now arrives too late: the reception is gone.
        assert!(matches!(
            rx.on_frame(&[0x21, 6, 7, 8, 9], ms(2)),
            Err(IsoTpError::UnexpectedConsecutive { sequence: 1, .. })
        ));
    }

    #[test]
    fn consecutive_frame_timeout() {
        let cfg = Config {
            n_cr: ms(200),
            ..Config::default()
        };
        let mut rx = Receiver::new(0x7E8, cfg);
        rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(0)).unwrap();
        assert_eq!(rx.poll(ms(199)), Ok(()));
        let timeout = IsoTpError::Timeout {
            id: 0x7E8,
            timer: Timer::NCr,
            after: ms(200),
        };
        assert_eq!(rx.poll(ms(200)), Err(timeout.clone()));
        assert_eq!(rx.poll(ms(300)), Ok(()), "reported once");
        // Checked on the next frame too, without a poll.
        rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(1000))
            .unwrap();
        assert_eq!(rx.on_frame(&[0x21, 6, 7, 8, 9], ms(1200)), Err(timeout));
        assert!(!rx.is_receiving());
    }

    #[test]
    fn first_frame_interrupts() {
        let mut rx = Receiver::new(0x7E8, config(0, 0, None));
        let p2 = make_payload(10, 0x40);
        rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(0)).unwrap();
        assert_eq!(rx.interrupted(), None);
        let mut ff2 = vec![0x10, 0x0A];
        ff2.extend_from_slice(&p2[..6]);
        assert!(matches!(
            rx.on_frame(&ff2, ms(1)),
            Ok(RxEvent::FlowControl(_))
        ));
        assert_eq!(
            rx.interrupted(),
            Some(Interrupted::ByFirstFrame {
                received: 6,
                expected: 10
            })
        );
        let mut cf = vec![0x21];
        cf.extend_from_slice(&p2[6..]);
        assert_eq!(complete(rx.on_frame(&cf, ms(2))), p2);
        assert_eq!(rx.interrupted(), None);
    }

    #[test]
    fn single_frame_interrupts() {
        let mut rx = Receiver::new(0x7E8, config(0, 0, None));
        let p2 = make_payload(15, 0x80);
        rx.on_frame(&[0x10, 0x0F, 0, 1, 2, 3, 4, 5], ms(0)).unwrap();
        rx.on_frame(&[0x21, 6, 7, 8, 9, 10, 11, 12], ms(1)).unwrap();
        // SF mid-reception: delivered, and the interruption reported.
        assert_eq!(
            complete(rx.on_frame(&[0x02, 0xAB, 0xCD], ms(2))),
            [0xAB, 0xCD]
        );
        assert_eq!(
            rx.interrupted(),
            Some(Interrupted::BySingleFrame {
                received: 13,
                expected: 15
            })
        );
        let mut ff2 = vec![0x10, 0x0F];
        ff2.extend_from_slice(&p2[..6]);
        rx.on_frame(&ff2, ms(3)).unwrap();
        assert_eq!(rx.interrupted(), None, "the SF had finished the old one");
        let mut cf1 = vec![0x21];
        cf1.extend_from_slice(&p2[6..13]);
        assert_eq!(rx.on_frame(&cf1, ms(4)), Ok(RxEvent::Pending));
        let mut cf2 = vec![0x22];
        cf2.extend_from_slice(&p2[13..]);
        assert_eq!(complete(rx.on_frame(&cf2, ms(5))), p2);
    }

    #[test]
    fn largest_twelve_bit_and_escaped_lengths() {
        let mut rx = Receiver::new(0x7E8, Config::default());
        // 1F FF = FF 4095: accepted at the default maximum
        assert!(matches!(
            rx.on_frame(&[0x1F, 0xFF, 0, 1, 2, 3, 4, 5], ms(0)),
            Ok(RxEvent::FlowControl(_))
        ));
        // 10 00 00 00 10 00 = escaped FF 4096: one over the default maximum
        assert_eq!(
            rx.on_frame(&[0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0, 1], ms(0)),
            Err(IsoTpError::PayloadTooLong {
                id: 0x7E8,
                declared: 4096,
                max: 4095
            })
        );
        let mut big = Receiver::new(
            0x7E8,
            Config {
                max_payload: 10_000,
                ..Config::default()
            },
        );
        let payload = make_payload(10_000, 0);
        // 10 00 00 00 27 10 = escaped FF 10000 | 2 data bytes
        let mut ff = vec![0x10, 0x00, 0x00, 0x00, 0x27, 0x10];
        ff.extend_from_slice(&payload[..2]);
        big.on_frame(&ff, ms(0)).unwrap();
        let mut out = Vec::new();
        for (i, chunk) in payload[2..].chunks(7).enumerate() {
            let mut cf = vec![0x20 | ((i + 1) % 16) as u8];
            cf.extend_from_slice(chunk);
            if let RxEvent::Complete(p) = big.on_frame(&cf, ms(1)).unwrap() {
                out = p.to_vec();
            }
        }
        assert_eq!(out, payload);
    }

    #[test]
    fn overflow_before_allocating() {
        let cfg = Config {
            max_payload: 32,
            padding: None,
            ..Config::default()
        };
        let mut rx = Receiver::new(0x7E8, cfg);
        // 10 21 = FF length 33 > max 32
        let err = rx.on_frame(&[0x10, 0x21, 0, 1, 2, 3, 4, 5], ms(0));
        assert_eq!(
            err,
            Err(IsoTpError::PayloadTooLong {
                id: 0x7E8,
                declared: 33,
                max: 32
            })
        );
        assert_eq!(rx.buf.capacity(), 0, "nothing reserved");
        // 32 = flow control Overflow
        assert_eq!(rx.overflow_frame(), &[0x32, 0x00, 0x00]);
        // A 4 GiB claim is refused the same way.
        assert!(matches!(
            rx.on_frame(&[0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], ms(0)),
            Err(IsoTpError::PayloadTooLong { .. })
        ));
        assert_eq!(rx.buf.capacity(), 0);
    }

    #[test]
    fn passive_never_sends_flow_control() {
        let mut rx = Receiver::new_passive(0x7E8, config(1, 0, None));
        let payload = make_payload(20, 0);
        assert_eq!(
            rx.on_frame(&[0x10, 20, 0, 1, 2, 3, 4, 5], ms(0)),
            Ok(RxEvent::Pending)
        );
        // bs 1 would owe a flow control after each CF; passive stays quiet.
        assert_eq!(
            rx.on_frame(&[0x21, 6, 7, 8, 9, 10, 11, 12], ms(1)),
            Ok(RxEvent::Pending)
        );
        assert_eq!(
            complete(rx.on_frame(&[0x22, 13, 14, 15, 16, 17, 18, 19], ms(2))),
            payload
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut rx = Receiver::new(0x7E8, Config::default());
        let frame_err = |kind| Err(IsoTpError::Frame { id: 0x7E8, kind });
        assert_eq!(rx.on_frame(&[], ms(0)), frame_err(FrameError::Empty));
        assert_eq!(
            rx.on_frame(&[0x00], ms(0)),
            frame_err(FrameError::SingleFrameZero)
        );
        assert_eq!(
            rx.on_frame(&[0x06, 1, 2], ms(0)),
            frame_err(FrameError::SingleFrameLength {
                declared: 6,
                available: 2
            })
        );
        assert_eq!(
            rx.on_frame(&[0x40, 1, 2], ms(0)),
            frame_err(FrameError::ReservedType(4))
        );
        assert_eq!(
            rx.on_frame(&[0x21, 1, 2, 3, 4, 5, 6, 7], ms(0)),
            Err(IsoTpError::UnexpectedConsecutive {
                id: 0x7E8,
                sequence: 1
            })
        );
        // 10 07 = FF length 7: fits a single frame
        assert_eq!(
            rx.on_frame(&[0x10, 0x07, 1, 2, 3, 4, 5, 6], ms(0)),
            Err(IsoTpError::FirstFrameLength {
                id: 0x7E8,
                declared: 7,
                min: 8
            })
        );
        // A first frame must fill its CAN frame.
        assert_eq!(
            rx.on_frame(&[0x10, 0x0A, 1, 2], ms(0)),
            Err(IsoTpError::FirstFrameShort { id: 0x7E8, len: 4 })
        );
        assert_eq!(
            rx.on_frame(&[0x30, 0, 0], ms(0)),
            Err(IsoTpError::UnexpectedFlowControl { id: 0x7E8 })
        );
        assert!(!rx.is_receiving());
    }

    #[test]
    fn malformed_frame_leaves_reception_intact() {
        let mut rx = Receiver::new(0x7E8, config(0, 0, None));
        rx.on_frame(&[0x10, 0x0A, 0, 1, 2, 3, 4, 5], ms(0)).unwrap();
        assert!(rx.on_frame(&[0x00], ms(1)).is_err());
        assert!(rx.on_frame(&[0x10, 0x03, 0, 0, 0, 0, 0, 0], ms(1)).is_err());
        assert_eq!(
            complete(rx.on_frame(&[0x21, 6, 7, 8, 9], ms(2))),
            make_payload(10, 0)
        );
    }

    #[test]
    fn short_consecutive_frame() {
        let mut rx = Receiver::new(0x7E8, config(0, 0, None));
        rx.on_frame(&[0x10, 0x14, 0, 1, 2, 3, 4, 5], ms(0)).unwrap();
        // 14 bytes still due, so this CF must carry all 7 it has room for.
        assert_eq!(
            rx.on_frame(&[0x21, 6, 7, 8], ms(1)),
            Err(IsoTpError::ShortConsecutive {
                id: 0x7E8,
                got: 3,
                need: 7
            })
        );
    }

    #[test]
    fn can_fd_reception() {
        let mut rx = Receiver::new(0x7E8, config(0, 0, None));
        let payload = make_payload(100, 0);
        // 64-byte FD first frame: 10 64 | 62 bytes
        let mut ff = vec![0x10, 100];
        ff.extend_from_slice(&payload[..62]);
        assert!(matches!(
            rx.on_frame(&ff, ms(0)),
            Ok(RxEvent::FlowControl(_))
        ));
        // Last CF: 38 bytes padded to the FD length 48.
        let mut cf = vec![0x21];
        cf.extend_from_slice(&payload[62..]);
        cf.resize(48, 0xCC);
        assert_eq!(complete(rx.on_frame(&cf, ms(1))), payload);
        // FD single frame, escape form: 00 14 | 20 bytes in a 24-byte frame
        let mut sf = vec![0x00, 20];
        sf.extend_from_slice(&payload[..20]);
        sf.resize(24, 0xCC);
        assert_eq!(complete(rx.on_frame(&sf, ms(2))), payload[..20]);
        // An FD first frame declaring what an escaped single frame of its size could carry.
        let mut ff = vec![0x10, 30];
        ff.resize(32, 0);
        assert_eq!(
            rx.on_frame(&ff, ms(3)),
            Err(IsoTpError::FirstFrameLength {
                id: 0x7E8,
                declared: 30,
                min: 31
            })
        );
    }
}
