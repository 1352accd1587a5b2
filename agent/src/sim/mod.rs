//! The desk car: a scripted drive ([`Drive`]) and simulated ECUs ([`SimEcu`]) on a
//! [`VirtualBus`], all sans-IO and deterministic, so tests, the testbed and benchmarks run
//! months of driving against the real protocol code without a car.
//!
//! Owns: the ECU trait, the harness ([`DeskCar`]) that moves time forward event by event
//! and carries frames between the bus and the ECUs, and (in the submodules) the script,
//! the OBD-II, UDS and J1939 ECUs. Does not own: the tester — the agent's poller or a test
//! attaches its own node with [`DeskCar::attach_tester`] — nor a clock.
//!
//! Time is `now: Duration` since an arbitrary origin, as everywhere in the agent.

pub(crate) mod cluster_ecu;
pub(crate) mod drive;
pub(crate) mod j1939_ecu;
mod link;
pub(crate) mod obd_ecu;
pub(crate) mod script;
pub(crate) mod uds_ecu;

#[cfg(test)]
mod tests;

use core::time::Duration;

pub use cluster_ecu::ClusterEcu;
pub use drive::{Drive, VehicleState};
pub use j1939_ecu::{J1939Ecu, J1939EcuConfig};
pub(crate) use link::IsoTpAddress;
pub use obd_ecu::{ObdEcu, ObdEcuConfig};
pub use script::{
    ActiveFault, Fault, Lamp, ObdList, Power, Script, ScriptError, Speed, Step, Until,
};
pub(crate) use uds_ecu::{UdsEcu, UdsEcuConfig};

use crate::can::CanFrame;
use crate::can::virtual_bus::{NodeId, VirtualBus};

/// A simulated ECU: frames and time in, frames out, state read from the drive.
///
/// Frames pushed into `out` are put on the bus at `now` by the harness. Implementations
/// keep their buffers between calls so the steady state does not allocate.
pub trait SimEcu {
    /// Takes one frame from the bus (every frame, not only its own ids) at the harness's
    /// moment `at`.
    fn on_frame(&mut self, frame: &CanFrame, at: Moment<'_>, out: &mut Vec<CanFrame>);

    /// Does what is due at `now`: periodic broadcasts, paced multi-frame transfers, delayed
    /// answers; also notices power changes.
    fn poll(&mut self, now: Duration, state: &VehicleState, out: &mut Vec<CanFrame>);

    /// When [`SimEcu::poll`] next has something to do, `None` for nothing until a frame
    /// arrives or the vehicle state changes.
    fn next_deadline(&self) -> Option<Duration>;

    /// A short name for logs.
    fn name(&self) -> &str;
}

/// The moment a frame reaches an ECU: the harness's time (which may be later than the
/// frame's stamp on the bus) and the vehicle state then.
#[derive(Debug, Clone, Copy)]
pub struct Moment<'a> {
    /// The harness's current time.
    pub now: Duration,
    /// The vehicle state at `now`.
    pub state: &'a VehicleState,
}

/// Passes at one instant before the harness gives up on ECUs that keep answering each
/// other (a bug in an ECU, not a case to simulate).
const MAX_PASSES_PER_INSTANT: usize = 64;

/// A drive, its ECUs and the bus between them.
pub struct DeskCar {
    bus: VirtualBus,
    drive: Drive,
    ecus: Vec<(NodeId, Box<dyn SimEcu>)>,
    now: Duration,
    out: Vec<CanFrame>,
    /// Whether the ECUs have been polled once (so they see the initial power state).
    started: bool,
}

impl core::fmt::Debug for DeskCar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeskCar")
            .field("now", &self.now)
            .field(
                "ecus",
                &self.ecus.iter().map(|(_, e)| e.name()).collect::<Vec<_>>(),
            )
            .field("state", self.drive.state())
            .finish_non_exhaustive()
    }
}

impl DeskCar {
    /// A car playing `drive`, with bus queues of `queue_capacity` frames per node, at the
    /// drive's start time `start`.
    pub fn new(drive: Drive, queue_capacity: usize, start: Duration) -> Self {
        Self {
            bus: VirtualBus::new(queue_capacity),
            drive,
            ecus: Vec::new(),
            now: start,
            out: Vec::with_capacity(64),
            started: false,
        }
    }

    /// Puts an ECU on the bus.
    pub fn add_ecu(&mut self, ecu: Box<dyn SimEcu>) -> NodeId {
        let node = self.bus.attach();
        self.ecus.push((node, ecu));
        self.started = false;
        node
    }

    /// Attaches a tester node: send with [`DeskCar::send`], read with [`DeskCar::recv`].
    pub fn attach_tester(&mut self) -> NodeId {
        self.bus.attach()
    }

    /// Sends `frame` from node `from` at `now` (no earlier than the car's current time).
    /// The ECUs see it on the next [`DeskCar::run_until`].
    pub fn send(&mut self, from: NodeId, frame: CanFrame, now: Duration) {
        self.bus.send(from, frame, now.max(self.now));
    }

    /// The oldest frame queued for `node`.
    pub fn recv(&mut self, node: NodeId) -> Option<crate::can::virtual_bus::Stamped> {
        self.bus.recv(node)
    }

    /// The bus (for the tap, drop counters, injection).
    pub fn bus_mut(&mut self) -> &mut VirtualBus {
        &mut self.bus
    }

    /// The names of its ECUs, in the order they were added.
    pub fn ecu_names(&self) -> impl Iterator<Item = &str> {
        self.ecus.iter().map(|(_, e)| e.name())
    }

    /// The vehicle state as of the car's current time.
    pub(crate) fn state(&self) -> &VehicleState {
        self.drive.state()
    }

    /// The next moment something happens inside the car (an ECU deadline, a script step
    /// ending, a frame waiting for an ECU), `None` if nothing will without a tester.
    pub(crate) fn next_event(&self) -> Option<Duration> {
        let ecu = self
            .ecus
            .iter()
            .filter_map(|(_, e)| e.next_deadline())
            .min();
        let frames = self
            .ecus
            .iter()
            .filter_map(|(n, _)| self.bus.next_at(*n))
            .min();
        [ecu, frames, self.drive.next_event()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the car up to `until`, event by event: the drive advances, ECUs get the frames
    /// sent up to each instant and are polled at their deadlines, and what they send goes on
    /// the bus stamped with that instant.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            self.step_instant();
            match self.next_event() {
                Some(t) if t <= until && t > self.now => self.now = t,
                _ if self.now < until => self.now = until,
                _ => return,
            }
        }
    }

    /// Everything that happens at `self.now`, until the ECUs fall quiet.
    fn step_instant(&mut self) {
        let now = self.now;
        let power = self.drive.state().power;
        self.drive.advance(now);
        if self.drive.state().power != power || !self.started {
            self.started = true;
            self.poll_all();
        }
        for _ in 0..MAX_PASSES_PER_INSTANT {
            let mut busy = false;
            for i in 0..self.ecus.len() {
                let Some((node, ecu)) = self.ecus.get_mut(i) else {
                    continue;
                };
                let node = *node;
                while let Some(stamped) = self.bus.recv_until(node, now) {
                    let at = Moment {
                        now,
                        state: self.drive.state(),
                    };
                    ecu.on_frame(&stamped.frame, at, &mut self.out);
                }
                if ecu.next_deadline().is_some_and(|t| t <= now) {
                    ecu.poll(now, self.drive.state(), &mut self.out);
                }
                busy |= !self.out.is_empty();
                for frame in self.out.drain(..) {
                    self.bus.send(node, frame, now);
                }
            }
            if !busy {
                return;
            }
        }
        tracing::warn!(now = ?now, "desk car: ECUs still talking after {MAX_PASSES_PER_INSTANT} passes");
    }

    /// Polls every ECU once at the current time, whatever their deadlines, so periodic
    /// senders start or stop when the power changes.
    fn poll_all(&mut self) {
        let now = self.now;
        for (node, ecu) in &mut self.ecus {
            ecu.poll(now, self.drive.state(), &mut self.out);
            for frame in self.out.drain(..) {
                self.bus.send(*node, frame, now);
            }
        }
    }
}
