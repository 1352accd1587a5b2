//! Segmentation of our ISO-TP messages ([`Sender`]): single frame or first frame, then
//! consecutive frames paced by the receiver's flow control (block size, STmin, Wait,
//! Overflow) and the N_Bs timer. Does not send anything or read the bus: it hands frames
//! to the caller and is told about flow control.

use core::time::Duration;

use super::frame::{FlowControl, FlowStatus, FrameBuf};
use super::{Config, IsoTpError, Timer};

/// What [`Sender::poll`] wants done next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxPoll<'a> {
    /// Send these bytes now, then poll again.
    Send(&'a [u8]),
    /// Nothing to send before this time: poll again then, or earlier after
    /// [`Sender::on_flow_control`].
    WaitUntil(Duration),
    /// No message in flight: the last one went out whole (or none was started).
    Done,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    /// `start` took a payload; its single or first frame is not out yet.
    First,
    AwaitFlowControl {
        deadline: Duration,
        waits: u8,
        /// Sequence number of the consecutive frame the flow control will release.
        seq: u8,
    },
    Sending {
        seq: u8,
        /// Consecutive frames left in this block (0 with `block_size` 0: unlimited).
        block_left: u8,
        block_size: u8,
        st_min: Duration,
        next_at: Duration,
    },
}

/// Splits our messages into frames for one tx CAN id.
///
/// [`Sender::start`] a payload, then call [`Sender::poll`] and send what it returns until it
/// says [`TxPoll::Done`]; pass every flow-control frame from the peer to
/// [`Sender::on_flow_control`]. The payload is copied once into a reused buffer.
#[derive(Debug, Clone)]
pub struct Sender {
    id: u32,
    config: Config,
    buf: Vec<u8>,
    /// Bytes of `buf` already sent.
    sent: usize,
    frame: FrameBuf,
    state: State,
}

impl Sender {
    /// A sender for CAN id `id` (the id only names errors).
    pub fn new(id: u32, config: Config) -> Self {
        Self {
            id,
            config: config.normalized(),
            buf: Vec::new(),
            sent: 0,
            frame: FrameBuf::new(),
            state: State::Idle,
        }
    }

    /// Takes a payload to send; the frames come from [`Sender::poll`].
    ///
    /// # Errors
    /// [`IsoTpError::Busy`] while a message is in flight ([`Sender::reset`] drops it),
    /// [`IsoTpError::PayloadLength`] for an empty payload or one over `u32::MAX` bytes.
    pub fn start(&mut self, payload: &[u8]) -> Result<(), IsoTpError> {
        let id = self.id;
        if !matches!(self.state, State::Idle) {
            return Err(IsoTpError::Busy { id });
        }
        if payload.is_empty() || u32::try_from(payload.len()).is_err() {
            return Err(IsoTpError::PayloadLength {
                id,
                len: payload.len(),
            });
        }
        self.buf.clear();
        self.buf.extend_from_slice(payload);
        self.sent = 0;
        self.state = State::First;
        Ok(())
    }

    /// The next step at `now`.
    ///
    /// # Errors
    /// [`IsoTpError::Timeout`] (N_Bs) when no flow control came in time; the message is
    /// dropped and the sender is idle again.
    pub fn poll(&mut self, now: Duration) -> Result<TxPoll<'_>, IsoTpError> {
        match self.state {
            State::Idle => Ok(TxPoll::Done),
            State::First => Ok(TxPoll::Send(self.first(now))),
            State::AwaitFlowControl { deadline, .. } => {
                if now >= deadline {
                    self.state = State::Idle;
                    Err(IsoTpError::Timeout {
                        id: self.id,
                        timer: Timer::NBs,
                        after: self.config.n_bs,
                    })
                } else {
                    Ok(TxPoll::WaitUntil(deadline))
                }
            }
            State::Sending { next_at, .. } if now < next_at => Ok(TxPoll::WaitUntil(next_at)),
            State::Sending {
                seq,
                block_left,
                block_size,
                st_min,
                ..
            } => Ok(TxPoll::Send(
                self.consecutive(seq, block_left, block_size, st_min, now),
            )),
        }
    }

    fn first(&mut self, now: Duration) -> &[u8] {
        let tx_dl = self.config.tx_dl;
        let len = self.buf.len();
        let frame = &mut self.frame;
        if len <= 7 {
            // `len <= 7` fits the PCI nibble.
            frame.fill(&[len as u8], &self.buf, 8);
            frame.pad(self.config.padding);
            self.state = State::Idle;
        } else if tx_dl > 8 && len <= tx_dl - 2 {
            // CAN FD escape: `00 len`; `len <= 62` fits the byte.
            frame.fill(&[0, len as u8], &self.buf, tx_dl);
            frame.pad(self.config.padding);
            self.state = State::Idle;
        } else {
            // `start` bounded the length to u32.
            let total = u32::try_from(len).unwrap_or(u32::MAX);
            self.sent = if total <= 0x0FFF {
                frame.fill(&[0x10 | (total >> 8) as u8, total as u8], &self.buf, tx_dl)
            } else {
                let [a, b, c, d] = total.to_be_bytes();
                frame.fill(&[0x10, 0, a, b, c, d], &self.buf, tx_dl)
            };
            self.state = State::AwaitFlowControl {
                deadline: now.saturating_add(self.config.n_bs),
                waits: 0,
                seq: 1,
            };
        }
        self.frame.as_slice()
    }

    fn consecutive(
        &mut self,
        seq: u8,
        block_left: u8,
        block_size: u8,
        st_min: Duration,
        now: Duration,
    ) -> &[u8] {
        let rest = self.buf.get(self.sent..).unwrap_or_default();
        let taken = self.frame.fill(&[0x20 | seq], rest, self.config.tx_dl);
        self.frame.pad(self.config.padding);
        self.sent += taken;
        let block_left = block_left.saturating_sub(1);
        let seq = (seq + 1) & 0x0F;
        self.state = if self.sent >= self.buf.len() {
            State::Idle
        } else if block_size != 0 && block_left == 0 {
            State::AwaitFlowControl {
                deadline: now.saturating_add(self.config.n_bs),
                waits: 0,
                seq,
            }
        } else {
            State::Sending {
                seq,
                block_left,
                block_size,
                st_min,
                next_at: now.saturating_add(st_min),
            }
        };
        self.frame.as_slice()
    }

    /// Takes a flow-control frame from the receiver, received at `now`.
    ///
    /// # Errors
    /// - [`IsoTpError::UnexpectedFlowControl`] when not waiting for one; ignored.
    /// - [`IsoTpError::Frame`] for a malformed frame (reserved status or STmin, too short),
    ///   [`IsoTpError::Overflow`], [`IsoTpError::TooManyWaits`]: the message is dropped.
    pub fn on_flow_control(&mut self, data: &[u8], now: Duration) -> Result<(), IsoTpError> {
        let id = self.id;
        let State::AwaitFlowControl { waits, seq, .. } = self.state else {
            return Err(IsoTpError::UnexpectedFlowControl { id });
        };
        self.state = State::Idle;
        let fc = FlowControl::parse(data).map_err(|kind| IsoTpError::Frame { id, kind })?;
        match fc.status {
            FlowStatus::ContinueToSend => {
                self.state = State::Sending {
                    seq,
                    block_left: fc.block_size,
                    block_size: fc.block_size,
                    st_min: fc.st_min.duration(),
                    next_at: now,
                };
                Ok(())
            }
            FlowStatus::Wait => {
                let max = self.config.max_wait_frames;
                if waits >= max {
                    return Err(IsoTpError::TooManyWaits { id, max });
                }
                self.state = State::AwaitFlowControl {
                    deadline: now.saturating_add(self.config.n_bs),
                    waits: waits + 1,
                    seq,
                };
                Ok(())
            }
            FlowStatus::Overflow => Err(IsoTpError::Overflow { id }),
        }
    }

    /// Drops the message in flight, if any.
    /// (The simulated ECUs and the desk use it; the head unit does not.)
    #[cfg(any(test, feature = "desk"))]
    pub(crate) fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Whether no message is in flight.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }
}

#[cfg(test)]
mod tests {
    //! Transmission cases from pylessard/python-can-isotp `test/test_transport_layer_logic.py`
    //! @ 4e5519c9 (VECTORS.md §2).
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::proto::isotp::FrameError;
    use crate::proto::isotp::fixtures::{make_payload, ms, unpadded};

    fn sent(poll: Result<TxPoll<'_>, IsoTpError>) -> Vec<u8> {
        match poll {
            Ok(TxPoll::Send(frame)) => frame.to_vec(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn single_frames_unpadded() {
        let mut tx = Sender::new(0x7E0, unpadded());
        for n in 1..=6 {
            let payload = make_payload(n, 0x10);
            tx.start(&payload).unwrap();
            // 0n = SF length n | payload; DLC n + 1
            let mut want = vec![n as u8];
            want.extend_from_slice(&payload);
            assert_eq!(sent(tx.poll(ms(0))), want);
            assert_eq!(tx.poll(ms(0)), Ok(TxPoll::Done));
        }
    }

    #[test]
    fn single_frames_padded() {
        let mut tx = Sender::new(
            0x7E0,
            Config {
                padding: Some(0xAA),
                ..Config::default()
            },
        );
        for n in 1..=7 {
            let payload = make_payload(n, 0x10);
            tx.start(&payload).unwrap();
            let mut want = vec![n as u8];
            want.extend_from_slice(&payload);
            want.resize(8, 0xAA);
            assert_eq!(sent(tx.poll(ms(0))), want);
        }
    }

    #[test]
    fn ten_bytes_after_flow_control() {
        let mut tx = Sender::new(0x7E0, unpadded());
        tx.start(&make_payload(10, 0)).unwrap();
        // 10 0A = FF length 10 | 00..05
        assert_eq!(sent(tx.poll(ms(0))), [0x10, 0x0A, 0, 1, 2, 3, 4, 5]);
        assert_eq!(tx.poll(ms(1)), Ok(TxPoll::WaitUntil(ms(1000))));
        // 30 08 00 = CTS, bs 8, STmin 0
        tx.on_flow_control(&[0x30, 0x08, 0x00], ms(2)).unwrap();
        // 21 = CF seq 1 | 06..09, DLC 5
        assert_eq!(sent(tx.poll(ms(2))), [0x21, 6, 7, 8, 9]);
        assert_eq!(tx.poll(ms(2)), Ok(TxPoll::Done));
    }

    #[test]
    fn flow_control_overflow() {
        let mut tx = Sender::new(0x7E0, unpadded());
        tx.start(&make_payload(10, 0)).unwrap();
        sent(tx.poll(ms(0)));
        // 32 = Overflow
        assert_eq!(
            tx.on_flow_control(&[0x32, 0, 0], ms(1)),
            Err(IsoTpError::Overflow { id: 0x7E0 })
        );
        assert_eq!(tx.poll(ms(2)), Ok(TxPoll::Done), "nothing more sent");
    }

    #[test]
    fn wait_frames_then_continue() {
        let mut tx = Sender::new(
            0x7E0,
            Config {
                max_wait_frames: 15,
                padding: None,
                ..Config::default()
            },
        );
        let payload = make_payload(20, 0);
        tx.start(&payload).unwrap();
        sent(tx.poll(ms(0)));
        // 31 = Wait, ten times: each restarts N_Bs
        for i in 1..=10 {
            tx.on_flow_control(&[0x31, 0, 0], ms(i * 500)).unwrap();
            assert_eq!(
                tx.poll(ms(i * 500)),
                Ok(TxPoll::WaitUntil(ms(i * 500 + 1000)))
            );
        }
        // 30 01 00 = CTS, bs 1: one CF, then wait for the next FC
        tx.on_flow_control(&[0x30, 0x01, 0x00], ms(5100)).unwrap();
        assert_eq!(sent(tx.poll(ms(5100))), [0x21, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(tx.poll(ms(5101)), Ok(TxPoll::WaitUntil(ms(6100))));
        tx.on_flow_control(&[0x30, 0x01, 0x00], ms(5200)).unwrap();
        assert_eq!(sent(tx.poll(ms(5200))), [0x22, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(tx.poll(ms(5200)), Ok(TxPoll::Done));
    }

    #[test]
    fn too_many_wait_frames() {
        let mut tx = Sender::new(
            0x7E0,
            Config {
                max_wait_frames: 2,
                ..Config::default()
            },
        );
        tx.start(&make_payload(20, 0)).unwrap();
        sent(tx.poll(ms(0)));
        tx.on_flow_control(&[0x31, 0, 0], ms(1)).unwrap();
        tx.on_flow_control(&[0x31, 0, 0], ms(2)).unwrap();
        assert_eq!(
            tx.on_flow_control(&[0x31, 0, 0], ms(3)),
            Err(IsoTpError::TooManyWaits { id: 0x7E0, max: 2 })
        );
        assert!(tx.is_idle());
    }

    #[test]
    fn no_flow_control_times_out() {
        let mut tx = Sender::new(0x7E0, Config::default());
        tx.start(&make_payload(20, 0)).unwrap();
        sent(tx.poll(ms(0)));
        assert_eq!(tx.poll(ms(999)), Ok(TxPoll::WaitUntil(ms(1000))));
        assert_eq!(
            tx.poll(ms(1000)),
            Err(IsoTpError::Timeout {
                id: 0x7E0,
                timer: Timer::NBs,
                after: ms(1000)
            })
        );
        assert!(tx.is_idle());
        // Also after a block: bs 1 needs a fresh FC within N_Bs.
        tx.start(&make_payload(20, 0)).unwrap();
        sent(tx.poll(ms(2000)));
        tx.on_flow_control(&[0x30, 0x01, 0x00], ms(2001)).unwrap();
        sent(tx.poll(ms(2001)));
        assert!(matches!(
            tx.poll(ms(3001)),
            Err(IsoTpError::Timeout {
                timer: Timer::NBs,
                ..
            })
        ));
    }

    #[test]
    fn st_min_paces_consecutive_frames() {
        let mut tx = Sender::new(0x7E0, unpadded());
        tx.start(&make_payload(30, 0)).unwrap();
        sent(tx.poll(ms(0)));
        // STmin 0xF5 = 500 µs
        tx.on_flow_control(&[0x30, 0x00, 0xF5], ms(10)).unwrap();
        assert_eq!(sent(tx.poll(ms(10)))[0], 0x21);
        let next = ms(10) + Duration::from_micros(500);
        assert_eq!(tx.poll(ms(10)), Ok(TxPoll::WaitUntil(next)));
        assert_eq!(sent(tx.poll(next))[0], 0x22);
    }

    #[test]
    fn bad_flow_control() {
        let mut tx = Sender::new(0x7E0, Config::default());
        assert_eq!(
            tx.on_flow_control(&[0x30, 0, 0], ms(0)),
            Err(IsoTpError::UnexpectedFlowControl { id: 0x7E0 })
        );
        tx.start(&make_payload(20, 0)).unwrap();
        assert_eq!(tx.start(&[1]), Err(IsoTpError::Busy { id: 0x7E0 }));
        sent(tx.poll(ms(0)));
        // 30 00 80: STmin 0x80 is reserved; the transmission is dropped.
        assert_eq!(
            tx.on_flow_control(&[0x30, 0x00, 0x80], ms(1)),
            Err(IsoTpError::Frame {
                id: 0x7E0,
                kind: FrameError::ReservedStMin(0x80)
            })
        );
        assert!(tx.is_idle());
        assert_eq!(
            tx.start(&[]),
            Err(IsoTpError::PayloadLength { id: 0x7E0, len: 0 })
        );
    }

    #[test]
    fn can_fd_frames() {
        let mut tx = Sender::new(
            0x7E0,
            Config {
                tx_dl: 64,
                padding: None,
                ..Config::default()
            },
        );
        // 20 bytes: escaped SF `00 14`, padded to the FD length 24 with 0xCC.
        let payload = make_payload(20, 0);
        tx.start(&payload).unwrap();
        let sf = sent(tx.poll(ms(0)));
        assert_eq!(sf.len(), 24);
        assert_eq!(sf[..2], [0x00, 20]);
        assert_eq!(sf[2..22], payload[..]);
        assert_eq!(sf[22..], [0xCC, 0xCC]);
        // 100 bytes: 64-byte FF (62 data bytes), then one CF of 38 padded to 48.
        let payload = make_payload(100, 0);
        tx.start(&payload).unwrap();
        let ff = sent(tx.poll(ms(0)));
        assert_eq!((ff.len(), ff[0], ff[1]), (64, 0x10, 100));
        tx.on_flow_control(&[0x30, 0, 0], ms(1)).unwrap();
        let cf = sent(tx.poll(ms(1)));
        assert_eq!((cf.len(), cf[0]), (48, 0x21));
        assert_eq!(cf[1..39], payload[62..]);
    }

    #[test]
    fn escaped_first_frame() {
        let mut tx = Sender::new(0x7E0, unpadded());
        tx.start(&make_payload(5000, 0)).unwrap();
        // 10 00 | 0x00001388 = 5000 | 2 data bytes
        assert_eq!(
            sent(tx.poll(ms(0))),
            [0x10, 0x00, 0x00, 0x00, 0x13, 0x88, 0, 1]
        );
    }
}
