//! The testbed's one error type: what the harness (certificates, the Mosquitto process) can fail
//! with. It does not cover the clients a test drives; those report their own errors.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the testbed harness can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing certificate", "starting mosquitto", ...).
        what: &'static str,
        /// The file, directory or program concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rcgen could not generate a key or a certificate.
    #[error("generating {what}: {source}")]
    Pki {
        /// Which key or certificate.
        what: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// An identity that cannot be a certificate subject and a file name at once.
    #[error("identity {0:?} is not usable: use 1-64 characters from A-Z a-z 0-9 . _ -")]
    Identity(String),
    /// The `mosquitto` binary is missing while `RAPPORT_REQUIRE_MOSQUITTO` asks for it.
    #[error(
        "mosquitto not installed (looked for `mosquitto` on PATH and at /usr/sbin/mosquitto) \
         and RAPPORT_REQUIRE_MOSQUITTO is set: install it (apt-get install mosquitto)"
    )]
    MosquittoMissing,
    /// A value that would break the generated `mosquitto.conf` (a line break in a path).
    #[error("{what} cannot go into mosquitto.conf: {value:?}")]
    Config {
        /// Which setting.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// Mosquitto exited before it accepted connections.
    #[error(
        "mosquitto on 127.0.0.1:{port} exited before accepting connections ({status}); its log:\n{log}"
    )]
    Exited {
        /// The port it was to listen on.
        port: u16,
        /// How it exited.
        status: std::process::ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// Mosquitto did not accept connections within the bounded wait.
    #[error(
        "mosquitto on 127.0.0.1:{port} did not accept connections within {waited:?}; its log:\n{log}"
    )]
    NotReady {
        /// The port it was to listen on.
        port: u16,
        /// How long the harness waited.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
    /// The testbed's scenario could not go on (what and why).
    #[error("testbed: {0}")]
    Scenario(String),
    /// The load mode could not run (see [`crate::load`]).
    #[cfg(feature = "system")]
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
}
