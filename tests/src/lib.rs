//! rapport testbed: broker, cloud, simulated vehicles and a partner receiver in one process.
//!
//! It is both the one-command demo (`cargo run --release -p rapport-testbed`) and the harness
//! of the end-to-end suite. Until the testbed issue lands the demo only prints the plan.
//!
//! The harness part is usable by other crates' tests as a light dev-dependency
//! (`rapport-testbed = { workspace = true }`, which turns off the `system` feature): a real
//! Mosquitto process per test ([`mosquitto`]) and certificates made at run time ([`pki`]).
//! With the `system` feature it also holds the load mode (`load`: many simulated vehicles
//! against the real cloud, measuring ingest and fault-to-webhook latency).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod error;
#[cfg(feature = "system")]
pub mod load;
pub mod mosquitto;
pub mod partner;
pub mod pki;
#[cfg(feature = "system")]
pub mod scenario;

pub use error::Error;

/// What the testbed will run, printed by the binary until the pieces exist.
pub const PLAN: &str = "\
rapport testbed: not built yet. This command will, in one process:
  1. start the embedded MQTT broker (rumqttd) and the cloud on a temporary sled store;
  2. start a partner webhook receiver on loopback;
  3. start simulated vehicles - passenger cars on OBD-II/UDS/DBC and a truck on J1939 -
     each a real agent on a virtual CAN bus with virtual ECUs;
  4. drive them through weeks of accelerated time: break-in, first service, faults,
     drivers acting on prompts, layers changing, partner alerts delivered.
What exists today, to try by hand: the agent (CAN decoding, rules, store, HMI API, MQTT sync) -
`rapport-agent run --sim --config config/passenger.toml --data-dir /tmp/rapport-agent` - and the cloud's ingest with its
embedded broker - `rapport-cloud run --config config/cloud.toml`; see the README.
Layering, partner webhooks and this one-command demo come with the next issues.";
