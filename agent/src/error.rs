//! The agent's one error enum; each protocol and source module has its own error type, joined
//! here with `#[from]`.

use rapport_kit::config::ConfigError;

use crate::can::candump::{ParseError, TraceError};
use crate::hmi::HmiError;
use crate::memory::QuietHoursError;
use crate::proto::dbc::{DbcError, DecodeError};
use crate::proto::isotp::IsoTpError;
use crate::proto::j1939::J1939Error;
use crate::proto::obd::ObdError;
use crate::proto::uds::UdsError;
use crate::store::StoreError;
use crate::sync::SyncError;

/// Everything that can go wrong inside the agent library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wire-protocol encode or decode failed.
    #[error("wire protocol: {0}")]
    Wire(#[from] rapport_shared::WireError),
    /// ISO-TP framing or timing.
    #[error(transparent)]
    IsoTp(#[from] IsoTpError),
    /// An OBD-II response.
    #[error(transparent)]
    Obd(#[from] ObdError),
    /// A UDS response.
    #[error(transparent)]
    Uds(#[from] UdsError),
    /// J1939 framing, transport or decoding.
    #[error(transparent)]
    J1939(#[from] J1939Error),
    /// A DBC file or the signals named from it.
    #[error(transparent)]
    Dbc(#[from] DbcError),
    /// A DBC signal that does not fit the frame it came in.
    #[error(transparent)]
    Signal(#[from] DecodeError),
    /// A candump trace line.
    #[error("trace line: {0}")]
    TraceLine(#[from] ParseError),
    /// Reading a candump trace.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The agent config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Quiet hours that are not `"HH:MM"` times.
    #[error(transparent)]
    QuietHours(#[from] QuietHoursError),
    /// The HMI API (server or client).
    #[error(transparent)]
    Hmi(#[from] HmiError),
    /// The agent's store (sled).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The link to the cloud could not start.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A CAN interface or other I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (e.g. "opening can0").
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}
