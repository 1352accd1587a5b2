//! rapport testbed: broker, cloud, simulated vehicles and a partner receiver in one process.
//!
//! It is both the one-command demo (`cargo run --release -p rapport-testbed`) and the harness
//! of the end-to-end suite. Until the testbed issue lands it only prints the plan.
#![deny(clippy::unwrap_used, clippy::expect_used)]

/// What the testbed will run, printed by the binary until the pieces exist.
pub const PLAN: &str = "\
rapport testbed: not built yet. This command will, in one process:
  1. start the embedded MQTT broker (rumqttd) and the cloud on a temporary sled store;
  2. start a partner webhook receiver on loopback;
  3. start simulated vehicles - passenger cars on OBD-II/UDS/DBC and a truck on J1939 -
     each a real agent on a virtual CAN bus with virtual ECUs;
  4. drive them through weeks of accelerated time: break-in, first service, faults,
     drivers acting on prompts, layers changing, partner alerts delivered.
Today only the wire protocol (crate rapport-shared) exists; run the tests to exercise it.";
