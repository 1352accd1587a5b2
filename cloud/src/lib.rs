//! rapport cloud library: everything the cloud daemon does, so tests drive the library
//! rather than the binary.
//!
//! The data flow, by module: [`broker`] (the embedded MQTT broker, optional) → [`mqtt`] (the
//! cloud's persistent MQTT session) → [`ingest`] (checks and plans, sans-IO; its worker
//! writes and acks) → [`vehicle`] and [`applied`] (what a record changes, once) and [`fleet`]
//! (what it means for the driver: layers, strategies, partner alerts, in the same batch) →
//! [`store`] (the store port: sled, every key laid out in [`keys`], or PostgreSQL) → [`webhook`] (partner deliveries from
//! the outbox) and [`api`] (HTTP reads and operator changes, metrics, the operator's
//! [`downlink`] route; a vehicle's [`timeline`] merged from the record log and the fleet's). [`cloud`] starts and stops them; [`config`] is the file. The binary
//! (`main.rs`) only parses arguments, sets up logging and signals, and calls [`run`].
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod applied;
pub mod audit;
pub mod broker;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod downlink;
pub mod error;
pub mod fleet;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod mqtt;
pub mod retention;
pub mod store;
pub mod timeline;
pub mod vehicle;
pub mod webhook;

pub use cloud::{Cloud, Ready, run};
pub use error::Error;

/// The cloud's version, reported by the API.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
