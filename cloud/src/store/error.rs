//! [`StoreError`]: why the store failed, whatever the backend. A leaf: the fleet's core and
//! its sled keys name it without reaching into the port.
//!
//! Owns the error's variants and their texts (never a database URL's password). Does not own
//! where errors come from.

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (I/O, corruption it detected).
    #[error("store: {0}")]
    Sled(#[from] ::sled::Error),
    /// PostgreSQL failed (the connection, a statement, a timeout). The text never holds the
    /// database URL's password.
    #[error("store: postgres: {0}")]
    Postgres(String),
    /// The database cannot be reached now (the connection broke, none could be made in
    /// time, the server is shutting down or starting): worth retrying, nothing was written.
    /// The ingest stops acking and retries; `/healthz` reports it.
    #[error("store: postgres unavailable: {0}")]
    Unavailable(String),
    /// The database cannot be reached at start.
    #[error("store: cannot connect to PostgreSQL at {target}: {reason}")]
    Unreachable {
        /// Host, port and database (never the password).
        target: String,
        /// Why.
        reason: String,
    },
    /// A stored value this build cannot read.
    #[error("store: {what} unreadable: {reason}")]
    Corrupt {
        /// Which value.
        what: String,
        /// Why.
        reason: String,
    },
    /// A store written by a newer build.
    #[error("store schema {found} is newer than {known}, the newest this build knows")]
    Schema {
        /// The schema found.
        found: u32,
        /// The newest this build knows.
        known: u32,
    },
    /// An import that cannot go ahead.
    #[error("import: {0}")]
    Import(String),
}

impl StoreError {
    /// Whether the store is only unreachable for now (retry later; nothing is lost).
    /// A full disk under sled counts: nothing was written, and the ingest must stop acking
    /// rather than stop.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_)) || self.is_storage_full()
    }

    /// Whether sled's file system is full (`ENOSPC`). sled 0.34 keeps that error for the life
    /// of its handle: the cloud recovers from it by a restart once space is back.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Self::Sled(::sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::StorageFull)
    }

    /// A value that does not decode (or encode).
    pub fn corrupt(what: impl Into<String>, reason: impl ToString) -> Self {
        Self::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
