//! rapport testbed: broker, cloud, simulated vehicles and a partner receiver in one process.
//!
//! It is both the one-command demo (`cargo run --release -p rapport-testbed`: the `scenario`,
//! an accelerated-time story of four kinds of vehicle, their drivers and partners) and the
//! harness of the end-to-end suite.
//!
//! The harness part is usable by other crates' tests as a light dev-dependency
//! (`rapport-testbed = { workspace = true }`, which turns off the `system` feature): a real
//! Mosquitto process per test ([`mosquitto`]), certificates made at run time ([`pki`]), a
//! partner webhook receiver ([`partner`]), a WebDriver client for headless chromium
//! ([`browser`]) and builders of uplink record bodies ([`records`]). With the `system`
//! feature it also holds the story (`scenario`) and the load mode (`load`: many simulated
//! vehicles against the real cloud, measuring ingest and fault-to-webhook latency).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod error;
#[cfg(feature = "system")]
pub mod load;
pub mod mosquitto;
pub mod partner;
pub mod pki;
pub mod records;
#[cfg(feature = "system")]
pub mod scenario;

pub use error::Error;
