//! The cloud's one error enum; per-module error types join it with `#[from]`.

/// Everything that can go wrong inside the cloud library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wire-protocol encode or decode failed.
    #[error("wire protocol: {0}")]
    Wire(#[from] rapport_shared::WireError),
}
