//! ISO-TP (ISO 15765-2) transport as sans-IO state machines: frame bytes and the current time
//! in, frames to send and reassembled payloads out.
//!
//! Owns: the PCI codec ([`Frame`]), reassembly of one peer's messages ([`Receiver`]),
//! segmentation of ours ([`Sender`]), and a small demultiplexer ([`Demux`]) for several ECUs
//! answering one functional request at once. Normal addressing, and extended addressing (the
//! first data byte a target address) for a [`Receiver`] ([`Receiver::with_extended_address`];
//! our requests are single frames, which the caller prefixes itself). The CAN id (11- or 29-bit)
//! is the caller's business — it routes frames by its own rx/tx id pairs and sends what these
//! types hand back. Classic CAN (8-byte) and CAN FD (up to 64-byte) frames.
//!
//! Does not own: sockets, clocks, CAN ids on the wire, or what the payload means (OBD-II and
//! UDS sit on top, in [`crate::proto::obd`] and [`crate::proto::uds`]).
//!
//! Time is `now: Duration` since an arbitrary monotonic origin, passed into every call that
//! can time out; nothing here reads a clock.

mod demux;
mod frame;
mod rx;
mod tx;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use core::time::Duration;

pub use demux::Demux;
pub(crate) use frame::{Frame, FrameError, StMin};
pub use rx::{Interrupted, Receiver, RxEvent};
pub use tx::{Sender, TxPoll};

use crate::can::frame::FD_LENGTHS;

/// Padding byte used when no padding is configured but a CAN FD frame must be padded up to
/// the next valid FD length anyway (the value ISO 15765-2 recommends).
pub(crate) const FD_DEFAULT_PADDING: u8 = 0xCC;

/// Timing and sizing of one ISO-TP channel, shared by [`Receiver`] and [`Sender`].
///
/// `Default` holds every default in one place. Constructors normalise an out-of-range
/// `tx_dl` rather than fail; call [`Config::validate`] where a config is loaded to reject it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Byte that pads transmitted frames to 8 bytes (`None`: send only the bytes needed).
    /// OBD-II (ISO 15765-4) requires 8-byte frames, hence the default `Some(0xCC)`.
    pub padding: Option<u8>,
    /// Transmit data length: 8 for classic CAN, or a CAN FD length 12..=64.
    pub tx_dl: usize,
    /// Block size we ask a sender for in our flow control (0: no further flow control).
    pub block_size: u8,
    /// Separation time we ask a sender for in our flow control.
    pub st_min: StMin,
    /// N_Bs: how long a [`Sender`] waits for a flow-control frame.
    pub n_bs: Duration,
    /// N_Cr: how long a [`Receiver`] waits for the next consecutive frame.
    pub n_cr: Duration,
    /// Largest payload a [`Receiver`] accepts; a longer first frame gets flow control Overflow.
    pub max_payload: usize,
    /// N_WFTmax: how many flow control Wait frames in a row a [`Sender`] tolerates.
    pub max_wait_frames: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            padding: Some(FD_DEFAULT_PADDING),
            tx_dl: 8,
            block_size: 0,
            st_min: StMin::ZERO,
            n_bs: Duration::from_millis(1000),
            n_cr: Duration::from_millis(1000),
            max_payload: 4095,
            max_wait_frames: 10,
        }
    }
}

impl Config {
    /// Checks every field and returns all problems found.
    ///
    /// # Errors
    /// One [`IsoTpError::Config`] per bad field: `tx_dl` not 8 nor a CAN FD length 12..=64,
    /// zero timeouts, or a zero `max_payload`.
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), Vec<IsoTpError>> {
        let mut problems = Vec::new();
        let mut bad = |field, problem| problems.push(IsoTpError::Config { field, problem });
        if self.tx_dl != 8 && !(self.tx_dl >= 12 && FD_LENGTHS.contains(&self.tx_dl)) {
            bad(
                "tx_dl",
                "must be 8 (classic CAN) or 12, 16, 20, 24, 32, 48 or 64 (CAN FD)",
            );
        }
        if self.n_bs.is_zero() {
            bad("n_bs", "must be longer than zero");
        }
        if self.n_cr.is_zero() {
            bad("n_cr", "must be longer than zero");
        }
        if self.max_payload == 0 {
            bad("max_payload", "must be at least 1 byte");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The config with `tx_dl` moved to the nearest valid length at or below it (at least 8),
    /// so the state machines never build a frame CAN cannot carry.
    pub(crate) fn normalized(mut self) -> Self {
        self.tx_dl = if self.tx_dl < 12 {
            8
        } else {
            FD_LENGTHS
                .iter()
                .copied()
                .filter(|&len| len <= self.tx_dl)
                .max()
                .unwrap_or(8)
        };
        self
    }
}

/// Which ISO-TP timer ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// N_Bs: the sender waited too long for flow control.
    NBs,
    /// N_Cr: the receiver waited too long for a consecutive frame.
    NCr,
}

impl core::fmt::Display for Timer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NBs => "N_Bs",
            Self::NCr => "N_Cr",
        })
    }
}

/// Everything that can go wrong on an ISO-TP channel. `id` is the CAN id the channel was
/// built for (the peer's for a [`Receiver`], ours for a [`Sender`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IsoTpError {
    /// The frame's bytes do not decode.
    #[error("ISO-TP frame from {id:#X}: {kind}")]
    Frame {
        /// CAN id.
        id: u32,
        /// What is wrong with the bytes.
        kind: FrameError,
    },
    /// A first frame shorter than the 8 bytes every first frame fills.
    #[error("ISO-TP first frame from {id:#X}: only {len} bytes, a first frame fills at least 8")]
    FirstFrameShort {
        /// CAN id.
        id: u32,
        /// Frame length.
        len: usize,
    },
    /// A first frame declaring a length a single frame could have carried.
    #[error(
        "ISO-TP first frame from {id:#X}: declares {declared} bytes, a first frame needs at least {min}"
    )]
    FirstFrameLength {
        /// CAN id.
        id: u32,
        /// Declared payload length.
        declared: u32,
        /// Smallest length a first frame of this size may declare.
        min: usize,
    },
    /// A first frame declaring more than `max_payload`; in active mode send
    /// [`Receiver::overflow_frame`] to tell the sender.
    #[error(
        "ISO-TP first frame from {id:#X}: declares {declared} bytes, more than the {max}-byte maximum"
    )]
    PayloadTooLong {
        /// CAN id.
        id: u32,
        /// Declared payload length.
        declared: u32,
        /// Configured maximum.
        max: usize,
    },
    /// A consecutive frame with no reception in progress.
    #[error("ISO-TP consecutive frame from {id:#X} (sequence {sequence}) without a first frame")]
    UnexpectedConsecutive {
        /// CAN id.
        id: u32,
        /// Its sequence number.
        sequence: u8,
    },
    /// A consecutive frame out of order; the reception is dropped.
    #[error("ISO-TP consecutive frame from {id:#X}: expected sequence {expected}, got {got}")]
    WrongSequence {
        /// CAN id.
        id: u32,
        /// Sequence number that was due.
        expected: u8,
        /// Sequence number received.
        got: u8,
    },
    /// A consecutive frame carrying fewer bytes than its position requires.
    #[error("ISO-TP consecutive frame from {id:#X}: carries {got} bytes, needs {need}")]
    ShortConsecutive {
        /// CAN id.
        id: u32,
        /// Bytes carried.
        got: usize,
        /// Bytes required.
        need: usize,
    },
    /// A flow-control frame where none was expected (a receiver, or a sender not waiting).
    #[error("ISO-TP flow control on {id:#X} while not waiting for one")]
    UnexpectedFlowControl {
        /// CAN id.
        id: u32,
    },
    /// A timer ran out; the message is dropped.
    #[error("ISO-TP {timer} timeout on {id:#X}: nothing within {after:?}")]
    Timeout {
        /// CAN id.
        id: u32,
        /// Which timer.
        timer: Timer,
        /// Its configured length.
        after: Duration,
    },
    /// The receiver answered flow control Overflow; the transmission is dropped.
    #[error("ISO-TP transmission on {id:#X}: receiver answered flow control Overflow")]
    Overflow {
        /// CAN id.
        id: u32,
    },
    /// The receiver sent more flow control Wait frames in a row than allowed.
    #[error("ISO-TP transmission on {id:#X}: more than {max} flow control Wait frames in a row")]
    TooManyWaits {
        /// CAN id.
        id: u32,
        /// Configured maximum.
        max: u8,
    },
    /// [`Sender::start`] while a message is still in flight.
    #[error("ISO-TP transmission on {id:#X}: a message is already in flight")]
    Busy {
        /// CAN id.
        id: u32,
    },
    /// [`Sender::start`] with an empty payload or one over 4 GiB.
    #[error("ISO-TP transmission on {id:#X}: payload of {len} bytes, must be 1 to 4294967295")]
    PayloadLength {
        /// CAN id.
        id: u32,
        /// Payload length given.
        len: usize,
    },
    /// [`Demux`] met a new id while every channel is mid-reception.
    #[error("ISO-TP demux: no free channel for {id:#X}, all {max} are receiving")]
    NoFreeChannel {
        /// CAN id.
        id: u32,
        /// Configured channel count.
        max: usize,
    },
    /// Extended addressing: a frame on the channel's id addressed to someone else.
    #[error("ISO-TP frame from {id:#X}: address byte {got:#04X}, expected {expected:#04X}")]
    Address {
        /// CAN id.
        id: u32,
        /// The address this channel takes.
        expected: u8,
        /// The frame's first byte.
        got: u8,
    },
    /// A config field is out of range.
    #[error("ISO-TP config {field}: {problem}")]
    Config {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}
