//! SAE J1939: identifiers, the transport protocol (BAM and RTS/CTS reassembly), DM1 active
//! diagnostic trouble codes and the distance, hours and speed parameter groups rapport reads.
//!
//! Sans-IO like the rest of [`crate::proto`]: frames and the current time in, typed values out.
//! This module does not own address claiming, DM2–DMxx, the SPN catalogue or any transmit
//! scheduling; in the active transport role it only hands back the CTS / end-of-message /
//! abort frames the caller must put on the bus.

pub mod dm1;
pub(crate) mod id;
pub mod pgn;
pub mod tp;

pub(crate) use dm1::{Dm1, Dtc, LampStatus, Lamps};
pub use id::{GLOBAL, J1939Id};
pub use tp::{Message, TpConfig, TpEvent, TpStats, TpTimeout, TransportProtocol};

/// Everything that can be wrong with J1939 input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum J1939Error {
    /// An id with bits above 29 set.
    #[error("0x{id:08X} is not a 29-bit J1939 identifier")]
    BadId {
        /// The id.
        id: u32,
    },
    /// A PGN wider than 18 bits, or a PDU1 PGN with a non-zero low byte.
    #[error("0x{pgn:05X} is not a valid PGN")]
    BadPgn {
        /// The PGN.
        pgn: u32,
    },
    /// A priority above 7.
    #[error("priority {priority} is above 7")]
    BadPriority {
        /// The priority.
        priority: u8,
    },
    /// A PDU2 (broadcast) PGN was given a specific destination.
    #[error("PGN {pgn} is broadcast-only (PDU2) but destination 0x{destination:02X} was given")]
    Pdu2Destination {
        /// The PGN.
        pgn: u32,
        /// The destination asked for.
        destination: u8,
    },
    /// A payload shorter than its parameter group needs.
    #[error("PGN {pgn}: {len} data bytes, need at least {need}")]
    Short {
        /// The PGN being decoded.
        pgn: u32,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A transport-protocol frame that broke the rules of J1939-21.
    #[error("J1939 TP from 0x{originator:02X} to 0x{destination:02X}: {kind}")]
    Transport {
        /// The originator of the offending frame's session (not the CTS sender).
        originator: u8,
        /// The session's destination (0xFF for BAM).
        destination: u8,
        /// What was wrong.
        kind: TpErrorKind,
    },
}

/// What was wrong with a transport-protocol frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TpErrorKind {
    /// A TP frame with fewer than 8 bytes.
    #[error("{what} has {len} bytes, J1939-21 requires 8")]
    ShortFrame {
        /// "TP.CM" or "TP.DT".
        what: &'static str,
        /// Bytes given.
        len: usize,
    },
    /// A TP.CM control byte that is none of RTS, CTS, EndOfMsgAck, BAM, Abort.
    #[error("unknown TP.CM control byte 0x{control:02X}")]
    UnknownControl {
        /// The control byte.
        control: u8,
    },
    /// An announced size of zero or above the configured maximum (rejected before any buffer
    /// is reserved).
    #[error("announced size {size} is outside 1..={max}")]
    BadSize {
        /// The announced size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The announced packet count does not fit the announced size.
    #[error("{size} bytes need {expected} packets, announced {packets}")]
    PacketCount {
        /// The announced size.
        size: usize,
        /// ceil(size / 7).
        expected: u8,
        /// The announced count.
        packets: u8,
    },
    /// A BAM to a specific address, or an RTS to the global address.
    #[error("{what} to the wrong kind of destination")]
    BadDestination {
        /// "BAM" or "RTS".
        what: &'static str,
    },
    /// A TP.DT with no session open for its sender and destination.
    #[error("TP.DT sequence {sequence} with no session open")]
    NoSession {
        /// The DT's sequence number.
        sequence: u8,
    },
    /// A BAM DT out of order (BAM has no retransmission, so the session is dropped).
    #[error("expected sequence {expected}, got {got}")]
    SequenceGap {
        /// The sequence number due.
        expected: u8,
        /// The one received.
        got: u8,
    },
    /// An RTS/CTS DT outside the window the last CTS opened.
    #[error("sequence {got} is outside the CTS window {first}..={last}")]
    OutOfWindow {
        /// The DT's sequence number.
        got: u8,
        /// First packet the CTS asked for.
        first: u8,
        /// Last packet the CTS asked for.
        last: u8,
    },
    /// A CTS that asks for packets the message does not have.
    #[error("CTS asks for {count} packets from {next}, message has {packets}")]
    BadCts {
        /// Packets requested.
        count: u8,
        /// First packet requested.
        next: u8,
        /// Packets in the message.
        packets: u8,
    },
    /// A frame the session's state does not expect (e.g. DT before CTS, early EndOfMsgAck).
    #[error("{what} out of turn")]
    OutOfTurn {
        /// The frame kind.
        what: &'static str,
    },
    /// The session table is full.
    #[error("no room for another session ({max} open)")]
    TooManySessions {
        /// The configured maximum.
        max: usize,
    },
}

#[cfg(test)]
mod trace_tests;
