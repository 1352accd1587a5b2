//! The shared crate's one error enum: everything that can be wrong with bytes, text or topics.

use crate::{DtcError, VinError};

/// Why a payload, topic or name could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Zero bytes.
    #[error("empty payload")]
    Empty,
    /// More bytes than the limit for this kind of payload.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A version byte this build does not speak.
    #[error("protocol version {found} is not supported (this build speaks {supported})")]
    Version {
        /// The version byte found.
        found: u8,
        /// The version this build speaks.
        supported: u8,
    },
    /// The envelope's framing is wrong.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        /// Which field.
        what: &'static str,
        /// Byte offset in the payload.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// One record's or message's body is wrong.
    #[error("item {index} ({kind}) body at byte {offset}: {reason}")]
    Item {
        /// Position in the batch.
        index: usize,
        /// The kind, by name.
        kind: &'static str,
        /// Byte offset of the body in the payload.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A topic that is not one of ours.
    #[error("topic {topic:?}: {reason}")]
    Topic {
        /// The topic (cut to 128 characters).
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// A name (in JSON or config) that names no variant.
    #[error("{name:?} is not a known {what}")]
    UnknownName {
        /// The type.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// A value that cannot be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// A VIN that is not one.
    #[error(transparent)]
    Vin(#[from] VinError),
    /// A DTC that is not one.
    #[error(transparent)]
    Dtc(#[from] DtcError),
}
