//! rapport testbed: broker, cloud, simulated vehicles and a partner receiver in one process.
//!
//! It is the one-command demo (`cargo run --release -p rapport-testbed`: the [`scenario`], an
//! accelerated-time story of four kinds of vehicle, their drivers and partners), the load mode
//! ([`load`]: many simulated vehicles against the real cloud, measuring ingest and
//! fault-to-webhook latency), the soak ([`soak`]: the story for a simulated year, sampling
//! memory and store sizes monthly), and the end-to-end suite in `tests/`. The pieces it is built from
//! — Mosquitto, the partner webhook receiver, the browser harness, certificates — are the
//! test harness's (`rapport-harness`), shared with the agent's and the cloud's tests.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod error;
pub mod load;
pub mod scenario;
pub mod soak;

pub use error::Error;
