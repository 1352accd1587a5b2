//! rapport agent library: everything the head-unit binary does, so tests drive the library
//! rather than the binary.
//!
//! The binary (`main.rs`) only parses arguments, sets up logging and signals, and calls in here.
//!
//! The `desk` cargo feature (on by default: the developer's build) adds the agent on a desk —
//! the simulated car ([`sim`]), `desk` ([`desk`]), `run --sim` and the ECU simulator binary
//! (`rapport-ecu-sim`). The head unit is built without it (`--no-default-features`): a car has
//! a real bus.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod error;

pub use error::Error;

/// The agent's version, reported in heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod can;
pub mod clock;
pub mod clock_guard;
pub mod config;
#[cfg(feature = "desk")]
pub mod desk;
pub(crate) mod gate;
pub mod hmi;
pub mod memory;
pub mod observe;
pub(crate) mod poller;
pub mod proto;
pub mod replay;
pub mod rules;
pub mod runtime;
pub mod scan;
pub mod settings;
#[cfg(feature = "desk")]
pub mod sim;
pub mod store;
pub mod sync;
