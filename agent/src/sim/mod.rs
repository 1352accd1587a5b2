//! The desk car: a scripted drive ([`Drive`]) and simulated ECUs ([`SimEcu`]) on a
//! [`VirtualBus`], all sans-IO and deterministic, so tests, the testbed and benchmarks run
//! months of driving against the real protocol code without a car.
//!
//! Owns: the ECU trait, the harness ([`DeskCar`]) that moves time forward event by event
//! and carries frames between the buses and the ECUs (one [`VirtualBus`] to start with, more
//! with [`DeskCar::add_bus`]: a frame stays on the bus it was sent on, as behind a gateway), and (in the submodules) the script,
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
pub use uds_ecu::UdsMode;
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

/// A drive, its ECUs and the buses between them.
pub struct DeskCar {
    /// Bus 0 first; each carries only what is sent on it.
    buses: Vec<VirtualBus>,
    queue_capacity: usize,
    drive: Drive,
    /// (bus, node, ECU).
    ecus: Vec<(usize, NodeId, Box<dyn SimEcu>)>,
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
                &self
                    .ecus
                    .iter()
                    .map(|(_, _, e)| e.name())
                    .collect::<Vec<_>>(),
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
            buses: vec![VirtualBus::new(queue_capacity)],
            queue_capacity,
            drive,
            ecus: Vec::new(),
            now: start,
            out: Vec::with_capacity(64),
            started: false,
        }
    }

    /// Adds a bus; returns its index (the first is 0).
    pub fn add_bus(&mut self) -> usize {
        self.buses.push(VirtualBus::new(self.queue_capacity));
        self.buses.len() - 1
    }

    /// How many buses it has.
    pub fn bus_count(&self) -> usize {
        self.buses.len()
    }

    /// Puts an ECU on the first bus.
    pub fn add_ecu(&mut self, ecu: Box<dyn SimEcu>) -> NodeId {
        self.add_ecu_on(0, ecu)
    }

    /// Puts an ECU on bus `bus` (adding buses up to it if need be).
    pub fn add_ecu_on(&mut self, bus: usize, ecu: Box<dyn SimEcu>) -> NodeId {
        while self.buses.len() <= bus {
            self.add_bus();
        }
        let node = self.bus_at(bus).attach();
        self.ecus.push((bus, node, ecu));
        self.started = false;
        node
    }

    /// Attaches a tester node to the first bus: send with [`DeskCar::send`], read with
    /// [`DeskCar::recv`].
    pub fn attach_tester(&mut self) -> NodeId {
        self.bus_at(0).attach()
    }

    /// Attaches a tester node to every bus; element `i` is its node on bus `i`.
    pub fn attach_testers(&mut self) -> Vec<NodeId> {
        self.buses.iter_mut().map(VirtualBus::attach).collect()
    }

    /// Sends `frame` on the first bus from node `from` at `now` (no earlier than the car's
    /// current time). The ECUs see it on the next [`DeskCar::run_until`].
    pub fn send(&mut self, from: NodeId, frame: CanFrame, now: Duration) {
        self.send_on(0, from, frame, now);
    }

    /// As [`DeskCar::send`] on bus `bus`.
    pub fn send_on(&mut self, bus: usize, from: NodeId, frame: CanFrame, now: Duration) {
        let at = now.max(self.now);
        if let Some(b) = self.buses.get_mut(bus) {
            b.send(from, frame, at);
        }
    }

    /// The oldest frame queued for `node` on the first bus.
    pub fn recv(&mut self, node: NodeId) -> Option<crate::can::virtual_bus::Stamped> {
        self.recv_on(0, node)
    }

    /// The oldest frame queued for `node` on bus `bus`.
    pub fn recv_on(
        &mut self,
        bus: usize,
        node: NodeId,
    ) -> Option<crate::can::virtual_bus::Stamped> {
        self.buses.get_mut(bus)?.recv(node)
    }

    /// The first bus (for the tap, drop counters, injection).
    pub fn bus_mut(&mut self) -> &mut VirtualBus {
        self.bus_at(0)
    }

    /// Bus `bus`, or the first when there is no such bus.
    pub fn bus_at(&mut self, bus: usize) -> &mut VirtualBus {
        let i = if bus < self.buses.len() { bus } else { 0 };
        // `new` makes the first bus and none is ever removed, so `i` is in range.
        &mut self.buses[i]
    }

    /// Frames sent on every bus so far.
    pub fn frames_sent(&mut self) -> u64 {
        self.buses.iter().map(VirtualBus::frames_sent).sum()
    }

    /// The names of its ECUs, in the order they were added.
    pub fn ecu_names(&self) -> impl Iterator<Item = &str> {
        self.ecus.iter().map(|(_, _, e)| e.name())
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
            .filter_map(|(_, _, e)| e.next_deadline())
            .min();
        let frames = self
            .ecus
            .iter()
            .filter_map(|(b, n, _)| self.buses.get(*b).and_then(|bus| bus.next_at(*n)))
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
                let Some((bus, node, ecu)) = self.ecus.get_mut(i) else {
                    continue;
                };
                let node = *node;
                let Some(bus) = self.buses.get_mut(*bus) else {
                    continue;
                };
                while let Some(stamped) = bus.recv_until(node, now) {
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
                    bus.send(node, frame, now);
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
        for (bus, node, ecu) in &mut self.ecus {
            ecu.poll(now, self.drive.state(), &mut self.out);
            let Some(bus) = self.buses.get_mut(*bus) else {
                continue;
            };
            for frame in self.out.drain(..) {
                bus.send(*node, frame, now);
            }
        }
    }
}
