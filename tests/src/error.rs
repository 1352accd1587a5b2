//! The testbed's one error type: what the demo's scenario and the load mode can fail with.
//! What the harness under them fails with (a broker, the partner receiver) comes wrapped as
//! [`Error::Harness`]; the clients a run drives report their own errors inside these.

use std::path::PathBuf;

/// Everything the testbed can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("creating the testbed's directory", ...).
        what: &'static str,
        /// The file, directory or program concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The testbed's scenario could not go on (what and why).
    #[error("testbed: {0}")]
    Scenario(String),
    /// The load mode could not run (see [`crate::load`]).
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    /// A piece of the harness (Mosquitto, the partner receiver) failed.
    #[error(transparent)]
    Harness(#[from] rapport_harness::Error),
}
