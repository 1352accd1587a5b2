//! The testbed's one error type: what the demo's scenario and the load mode can fail with.
//! What the harness under them fails with (a broker, the partner receiver) comes wrapped as
//! [`Error::Harness`], and so do the scenario's own file and socket errors ([`Error::io`]);
//! the clients a run drives report their own errors inside these.

use std::path::PathBuf;

/// Everything the testbed can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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

impl Error {
    /// A file, socket or thread operation failed: `what` was being done on `path` (reported
    /// as the harness reports its own, [`rapport_harness::Error::Io`]).
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Harness(rapport_harness::Error::Io {
            what,
            path: path.into(),
            source,
        })
    }
}
