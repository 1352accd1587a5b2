//! rapport's test harness: everything the agent's, the cloud's and the testbed's tests and
//! benches start, build or wait for, in one place.
//!
//! - brokers: a real Mosquitto process per test ([`mosquitto`]) and an embedded rumqttd
//!   ([`rumqttd`]); certificates made at run time ([`pki`]); a PostgreSQL database per test
//!   ([`postgres`]) and a PostgreSQL cluster of a test's own, to stop and start ([`pgcluster`]);
//! - clients: MQTT publishers, subscribers and packet-level clients ([`mqtt`]), HTTP
//!   ([`http`]), the partner webhook receiver ([`partner`]), headless chromium over WebDriver
//!   ([`browser`]);
//! - the system under test: typed agent and cloud configs built from the examples in
//!   `config/` and the binaries as child processes ([`agent`], [`cloud`], [`process`]);
//!   uplink records and envelopes ([`records`]); a whole fleet bed — one cloud on a manual
//!   clock with its partners' receivers and a car publisher ([`bed`]);
//! - the surroundings: repository files and the shared real-world data ([`files`]), waits
//!   with deadlines and free ports ([`wait`]); a small file system of a test's own, to fill
//!   or make read-only ([`tmpfs`]);
//! - a bad network: a network namespace behind a veth link a test cuts and restores
//!   ([`netns`]) and a seeded fault-injecting TCP proxy ([`faulty`]).
//!
//! It depends on `rapport-agent` and `rapport-cloud`, which dev-depend on it (a cycle cargo
//! allows for dev-dependencies): their integration tests share one instance of each crate.
//! Unit tests inside the agent or the cloud see another copy of them, so they use only items
//! that take no agent or cloud type ([`files`], [`wait`]). Nothing here ships in a product.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod bed;
pub mod browser;
pub mod cloud;
pub mod error;
pub mod faulty;
pub mod files;
pub mod http;
pub mod mosquitto;
pub mod mqtt;
pub mod netns;
pub mod partner;
pub mod pgcluster;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod records;
pub mod rumqttd;
pub mod tmpfs;
pub mod wait;

pub use error::Error;
