//! DBC broadcast signals: load a `.dbc` file, compile the signals a fleet engineer names
//! (odometer, speed, park state, ...) into a [`DecodePlan`], and decode them from frames.
//!
//! Owns: reading and parsing the file (with `can-dbc`), checking the named signals against it
//! (`check-config`), the decode plan, bit extraction (`bits`), scaling, range flags and
//! multiplexing. Does not own: where the file name and signal list come from (config), what
//! the values mean to the vehicle state, or reading frames off a bus.
//!
//! Multiplexing: simple (`M` / `m<N>`) and extended (`SG_MUL_VAL_`, value ranges, a
//! multiplexor that is itself multiplexed `m<N>M`), up to [`MAX_MULTIPLEXORS`] multiplexors
//! per message. `SIG_VALTYPE_` float (32-bit) and double (64-bit) signals are decoded too.

mod bits;
mod plan;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

pub(crate) use bits::LayoutError;
pub use plan::{
    DecodeError, DecodePlan, Decoded, MAX_MULTIPLEXORS, RawValue, SignalId, SignalInfo,
    SignalValue, ValueKind,
};

/// DBC files above this size are refused before reading: real ones are a few MB at most.
pub(crate) const MAX_DBC_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// How config names a message: by its DBC name, or by its id as the DBC writes it
/// (a 29-bit id has bit 31 set, e.g. `2148676694` for extended `0x123456`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum MessageSelector {
    /// The `BO_` id as written in the DBC.
    Id(u32),
    /// The `BO_` name.
    Name(String),
}

impl core::fmt::Display for MessageSelector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Id(id) => fmt_dbc_id(*id, f),
        }
    }
}

/// One signal the agent should decode: message plus signal name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WantedSignal {
    /// The message that carries it.
    pub(crate) message: MessageSelector,
    /// The `SG_` name.
    pub(crate) signal: String,
}

impl WantedSignal {
    /// A signal in the message of that name.
    pub fn by_name(message: &str, signal: &str) -> Self {
        Self {
            message: MessageSelector::Name(message.to_owned()),
            signal: signal.to_owned(),
        }
    }

    /// A signal in the message of that DBC id (bit 31 set for a 29-bit id).
    #[cfg(test)]
    pub(crate) fn by_id(dbc_id: u32, signal: &str) -> Self {
        Self {
            message: MessageSelector::Id(dbc_id),
            signal: signal.to_owned(),
        }
    }
}

/// A problem with a DBC file or with the signals named in it. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbcError {
    /// The file could not be read.
    #[error("DBC file {file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is over [`MAX_DBC_FILE_BYTES`].
    #[error("DBC file {file}: {size} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file is neither UTF-8 nor Windows-1252 text.
    #[error("DBC file {file}: not UTF-8 or Windows-1252 text")]
    NotText {
        /// The file.
        file: String,
    },
    /// `can-dbc` rejected the file; `detail` has the line and column where it gives them.
    #[error("DBC file {file}: {detail}")]
    Parse {
        /// The file.
        file: String,
        /// What and where.
        detail: String,
    },
    /// No message of that name or id.
    #[error("DBC file {file}: no message {message}")]
    UnknownMessage {
        /// The file.
        file: String,
        /// The message as named in config.
        message: String,
    },
    /// The message exists but has no such signal.
    #[error("DBC file {file}: message {message} has no signal {signal}")]
    UnknownSignal {
        /// The file.
        file: String,
        /// The message.
        message: String,
        /// The signal.
        signal: String,
    },
    /// The signal's start bit and length are unusable.
    #[error("DBC file {file}: message {message} signal {signal}: {source}")]
    Layout {
        /// The file.
        file: String,
        /// The message.
        message: String,
        /// The signal.
        signal: String,
        /// What is wrong.
        source: LayoutError,
    },
    /// The signal's bits reach past the message's declared length.
    #[error(
        "DBC file {file}: message {message} signal {signal}: needs {needed} bytes but the \
         message is {dlc} bytes long"
    )]
    OutsideMessage {
        /// The file.
        file: String,
        /// The message.
        message: String,
        /// The signal.
        signal: String,
        /// Bytes the signal reaches into.
        needed: usize,
        /// The message's declared length.
        dlc: u64,
    },
    /// Anything else wrong with one signal's definition: multiplexing, float type, id.
    #[error("DBC file {file}: message {message} signal {signal}: {reason}")]
    Signal {
        /// The file.
        file: String,
        /// The message.
        message: String,
        /// The signal.
        signal: String,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed DBC file, ready to compile decode plans from.
#[derive(Debug, Clone)]
pub struct DbcFile {
    name: String,
    dbc: can_dbc::Dbc,
}

impl DbcFile {
    /// Reads and parses a DBC file (UTF-8, or Windows-1252 as many DBC editors write).
    ///
    /// # Errors
    /// [`DbcError::Read`], [`DbcError::TooLarge`], [`DbcError::NotText`] or
    /// [`DbcError::Parse`], each naming the file.
    pub(crate) fn load(path: &Path) -> Result<Self, DbcError> {
        let name = path.display().to_string();
        let read_err = |source| DbcError::Read {
            file: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        if size > MAX_DBC_FILE_BYTES {
            return Err(DbcError::TooLarge {
                file: name,
                size,
                max: MAX_DBC_FILE_BYTES,
            });
        }
        let mut bytes = Vec::new();
        // `take` as well: the file may grow between the size check and the read.
        file.take(MAX_DBC_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_DBC_FILE_BYTES {
            return Err(DbcError::TooLarge {
                file: name,
                size: bytes.len() as u64,
                max: MAX_DBC_FILE_BYTES,
            });
        }
        Self::from_bytes(&name, &bytes)
    }

    /// Parses DBC bytes (UTF-8 or Windows-1252); `name` is used in error messages.
    ///
    /// # Errors
    /// [`DbcError::NotText`] or [`DbcError::Parse`].
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self, DbcError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(name, text),
            Err(_) => match can_dbc::decode_cp1252(bytes) {
                Some(text) => Self::parse(name, &text),
                None => Err(DbcError::NotText {
                    file: name.to_owned(),
                }),
            },
        }
    }

    /// Parses DBC text; `name` is used in error messages.
    ///
    /// # Errors
    /// [`DbcError::Parse`] with the line and column where `can-dbc` reports them.
    pub fn parse(name: &str, text: &str) -> Result<Self, DbcError> {
        match can_dbc::Dbc::try_from(text) {
            Ok(dbc) => Ok(Self {
                name: name.to_owned(),
                dbc,
            }),
            Err(err) => Err(DbcError::Parse {
                file: name.to_owned(),
                detail: parse_detail(&err),
            }),
        }
    }

    /// The name the file was loaded under (its path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many `BO_` messages the file defines.
    pub fn message_count(&self) -> usize {
        self.dbc.messages.len()
    }

    /// Every problem with `wanted` against this file, for `check-config`: unknown messages
    /// and signals, signals that do not fit their message, bad multiplexing. Empty if fine.
    pub fn check(&self, wanted: &[WantedSignal]) -> Vec<DbcError> {
        plan::build(self, wanted).1
    }

    /// Compiles `wanted` into a decode plan; [`SignalId`]s are positions in `wanted`.
    ///
    /// # Errors
    /// The first problem [`check`](Self::check) would report.
    pub fn compile(&self, wanted: &[WantedSignal]) -> Result<DecodePlan, DbcError> {
        let (plan, errors) = plan::build(self, wanted);
        match errors.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(plan),
        }
    }

    pub(crate) fn dbc(&self) -> &can_dbc::Dbc {
        &self.dbc
    }
}

/// One line from a `can-dbc` error: pest errors carry "line:col" and what was expected.
fn parse_detail(err: &can_dbc::DbcError) -> String {
    match err {
        can_dbc::DbcError::Pest(pest) => {
            // pest's Display is a multi-line report whose first line is " --> line:col";
            // the position is not otherwise reachable without naming pest's types.
            let report = pest.to_string();
            let position = report
                .lines()
                .find_map(|l| l.trim().strip_prefix("--> "))
                .unwrap_or("?");
            let near: String = pest.line().trim().chars().take(60).collect();
            format!(
                "syntax error at line {position}: {} (near `{near}`)",
                pest.variant
            )
        }
        other => format!("invalid content: {other}"),
    }
}

fn fmt_dbc_id(id: u32, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    if id & (1 << 31) != 0 {
        write!(f, "0x{:X} (extended)", id & 0x1FFF_FFFF)
    } else {
        write!(f, "0x{id:X}")
    }
}

/// A message's display name in errors: "UI_odo (0x3F3)".
fn message_label(message: &can_dbc::Message) -> String {
    struct Id(u32);
    impl core::fmt::Display for Id {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            fmt_dbc_id(self.0, f)
        }
    }
    format!("{} ({})", message.name, Id(message.id.raw()))
}
