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
    frame: FrameBufDebug,
    state: State,
}

#[derive(Clone)]
struct FrameBufDebug(FrameBuf);

impl core::fmt::Debug for FrameBufDebug {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02X?}", self.0.as_slice())
    }
}

impl Sender {
    /// A sender for CAN id `id` (the id only names errors).
    pub fn new(id: u32, config: Config) -> Self {
        Self {
            id,
            config: config.normalized(),
            buf: Vec::new(),
            sent: 0,
            frame: FrameBufDebug(FrameBuf::new()),
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
        let frame = &mut self.frame.0;
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
        self.frame.0.as_slice()
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
        let taken = self
            .frame
            .0
            .fill(&[0x20 | seq], rest, self.config.tx_dl);
        self.frame.0.pad(self.config.padding);
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
        self.frame.0.as_slice()
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
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Whether no message is in flight.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }
}
