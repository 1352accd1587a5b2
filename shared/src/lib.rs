//! rapport wire protocol (being written).
#![deny(missing_docs)]

/// Wire errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Placeholder.
    #[error("empty")]
    Empty,
}
