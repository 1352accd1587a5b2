//! rapport's daemon kit: what both daemons (the agent and the cloud) need around their
//! sans-IO cores, written once.
//!
//! - [`config`]: one problem type and list for config files, TOML parsing with the key path,
//!   line and column of a syntax error, reading a config file, and the [`config::Check`]
//!   trait each config section implements beside its struct.
//! - [`sled_store`]: opening a sled database, waiting out the file lock a just-dropped `Db`
//!   still holds.
//! - [`signal`]: the shutdown signal a daemon's `main` waits for (SIGINT or SIGTERM);
//! - [`log`]: the daemons' one log setup (stderr, `RUST_LOG`).
//!
//! Owns: these mechanisms. Does not own: any config's shape or values (each daemon's `config`
//! module), any key layout (each store's `keys` module), pure text helpers that need no I/O
//! (those live in `rapport-shared`: [`rapport_shared::calendar`], [`rapport_shared::hex`]).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod config;
pub mod log;
pub mod signal;
pub mod sled_store;
