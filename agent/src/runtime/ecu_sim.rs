//! The ECU simulator's loop (`rapport-ecu-sim`): the desk car a config implies — its OBD-II,
//! UDS, DBC cluster and J1939 ECUs, following a scripted drive — behind a real SocketCAN
//! interface in real time, so an agent in another process polls it through the kernel, ISO-TP
//! flow control and timing and all. The emulated head unit (`tests/headunit/`) runs it on the
//! other side of the agent's bus.
//!
//! Owns: carrying frames between the socket and the car, and the car's real-time clock. Does
//! not own: the ECUs ([`crate::sim`]), which of them a config implies ([`crate::desk`]), the
//! socket ([`crate::can::socketcan`]).

use core::future::Future;
use core::time::Duration;
use std::time::Instant;

use crate::can::socketcan::{self, SocketCan};
use crate::can::source::{FrameSink, FrameSource};
use crate::config::Loaded;
use crate::sim::Script;

/// The longest the loop sleeps with nothing due (the script's next step is a due event too).
const IDLE: Duration = Duration::from_millis(100);

/// What the simulator did, for its last log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EcuSimCounts {
    /// Frames read from the interface (the agent's requests and flow control, other traffic).
    pub received: u64,
    /// Frames the ECUs put on the interface.
    pub sent: u64,
    /// Frames the interface refused (its transmit queue full).
    pub unsent: u64,
}

/// Serves the ECUs `loaded` implies, playing `script` from now, on `interface` until
/// `shutdown` resolves; `ready` hears the ECUs' names once the socket is open.
///
/// # Errors
/// The script's problems, the interface missing or failing.
pub async fn serve(
    loaded: &Loaded,
    script: Script,
    interface: &str,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(Vec<String>),
) -> Result<EcuSimCounts, crate::Error> {
    let mut car = crate::desk::car_for_run(loaded, script)?;
    if car.bus_count() > 1 {
        // One interface, one bus: a config with several serves only its first bus's ECUs.
        tracing::warn!(
            buses = car.bus_count(),
            interface,
            "several buses configured: only the ECUs on the first are served here"
        );
    }
    let names = car.ecu_names().map(str::to_owned).collect();
    // The interface, as seen from inside the car: a node like the tester on the desk.
    let outside = car.attach_tester();
    let mut socket = SocketCan::open(interface, &[])?;
    ready(names);
    let start = Instant::now();
    let mut counts = EcuSimCounts::default();
    tokio::pin!(shutdown);
    loop {
        let now = start.elapsed();
        car.run_until(now);
        while let Some(stamped) = car.recv(outside) {
            match socket.send(&stamped.frame).await {
                Ok(()) => counts.sent += 1,
                Err(e) if socketcan::is_transient(&e) => counts.unsent += 1,
                Err(e) => return Err(e),
            }
        }
        let wait = car
            .next_event()
            .map_or(IDLE, |t| t.saturating_sub(now))
            .min(IDLE);
        tokio::select! {
            () = &mut shutdown => break,
            frame = socket.recv() => match frame? {
                Some(tf) => {
                    counts.received += 1;
                    car.send(outside, tf.frame, start.elapsed());
                }
                None => break,
            },
            () = tokio::time::sleep(wait) => {}
        }
    }
    Ok(counts)
}
