//! Reassembly of one peer's ISO-TP messages ([`Receiver`]): single frames, first frame plus
//! consecutive frames, the flow control we owe the sender, N_Cr, and a passive mode for trace
//! replay. Does not route by CAN id (the caller or [`super::Demux`] does) nor send anything.

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
    fc: FrameBufDebug,
    state: State,
    interrupted: Option<Interrupted>,
}

/// `FrameBuf` has no `Debug` of its own (64 bytes of mostly zeros); this hides it.
#[derive(Clone)]
struct FrameBufDebug(FrameBuf);

impl core::fmt::Debug for FrameBufDebug {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02X?}", self.0.as_slice())
    }
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
            fc: FrameBufDebug(FrameBuf::new()),
            state: State::Idle,
            interrupted: None,
        }
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
        let frame = Frame::parse(data).map_err(|kind| IsoTpError::Frame { id, kind })?;
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
        let min = if frame_len <= 8 { 8 } else { frame_len - 1 };
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
        let need = remaining.min(rx_dl.saturating_sub(1));
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
        RxEvent::FlowControl(self.fc.0.flow_control(fc, self.config.padding))
    }

    fn abandon(&mut self, by_single: bool) {
        if let State::Receiving { expected, .. } = self.state {
            let received = self.buf.len();
            self.interrupted = Some(if by_single {
                Interrupted::BySingleFrame { received, expected }
            } else {
                Interrupted::ByFirstFrame { received, expected }
            });
            tracing::debug!(id = self.id, received, expected, "ISO-TP reception interrupted");
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
    pub fn interrupted(&self) -> Option<Interrupted> {
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
    pub fn deadline(&self) -> Option<Duration> {
        match self.state {
            State::Receiving { deadline, .. } => Some(deadline),
            State::Idle => None,
        }
    }

    /// Whether a segmented message is being received.
    pub fn is_receiving(&self) -> bool {
        matches!(self.state, State::Receiving { .. })
    }

    /// Drops any reception in progress.
    pub fn reset(&mut self) {
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
    pub fn overflow_frame(&mut self) -> &[u8] {
        let fc = FlowControl {
            status: FlowStatus::Overflow,
            block_size: 0,
            st_min: super::StMin::ZERO,
        };
        self.fc.0.flow_control(fc, self.config.padding)
    }
}
