//! rapport agent library: everything the head-unit binary does, so tests drive the library
//! rather than the binary.
//!
//! The binary (`main.rs`) only parses arguments, sets up logging and signals, and calls in here.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod error;

pub use error::Error;

/// The agent's version, reported in heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod can;
pub mod clock;
pub mod config;
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
pub mod settings;
pub mod sim;
pub mod store;
pub mod sync;
