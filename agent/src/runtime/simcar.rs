//! A simulated car with the real agent in it: the desk car (scripted drive, simulated ECUs on
//! the virtual bus) wired to the agent's pipeline — poller, observer, ignition from bus
//! activity, rules through the shared [`Core`] — moved through simulated time event by event.
//!
//! `run --sim` steps it to an accelerated clock; the testbed drives a fleet of them through
//! weeks of simulated time. Nothing here decides anything: it only carries frames between the
//! car and the agent and tells the agent when time passed.
//!
//! Event by event: instead of fixed steps, the loop jumps to the next moment anything can
//! happen — an ECU's timer, a frame waiting on the bus, a step of the script, the poller's next
//! timer or the rules' next tick — so a parked car costs one tick a minute and a drive costs
//! what its frames cost.

use std::sync::Arc;
use std::time::Duration;

use rapport_shared::Timestamp;

use super::{Core, Pipeline};
use crate::can::virtual_bus::NodeId;
use crate::config::Loaded;
use crate::sim::{DeskCar, Script, VehicleState};

/// How often the rules hear that time passed while the ignition is off (a parked car has
/// nothing due more finely than the minute: quiet hours, dates, snoozes).
pub(crate) const PARKED_TICK: Duration = Duration::from_secs(60);

/// Frames exchanged at one instant before the loop moves on regardless (ECUs and the poller
/// answering each other forever would be a bug, not a case to simulate).
const MAX_PASSES_PER_INSTANT: usize = 64;

/// A simulated car and the agent reading it.
pub struct SimCar {
    car: DeskCar,
    /// The agent's node on each bus (index into `[[can.buses]]`).
    testers: Vec<NodeId>,
    pipe: Pipeline,
    now: Duration,
    next_due: Duration,
    wall_start: Timestamp,
}

impl core::fmt::Debug for SimCar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimCar")
            .field("now", &self.now)
            .field("car", &self.car)
            .finish_non_exhaustive()
    }
}

impl SimCar {
    /// The car `loaded` implies, playing `script` from simulated time zero, read by the agent
    /// behind `core`. Simulated time `t` is wall time `wall_start + t`.
    ///
    /// # Errors
    /// The script's problems.
    pub(crate) fn new(
        loaded: &Loaded,
        script: Script,
        core: Arc<Core>,
        wall_start: Timestamp,
    ) -> Result<Self, crate::Error> {
        let car = crate::desk::car_for_run(loaded, script)?;
        Ok(Self::with_car(loaded, car, core, wall_start))
    }

    /// As [`SimCar::new`] with a car built by the caller (say, with ECUs the config does not
    /// read, whose broadcasts are on the bus all the same).
    pub fn with_car(
        loaded: &Loaded,
        mut car: DeskCar,
        core: Arc<Core>,
        wall_start: Timestamp,
    ) -> Self {
        let mut pipe = Pipeline::new(loaded, core);
        pipe.tick_off = PARKED_TICK;
        // The car has at least the buses the agent reads; more are not read.
        while car.bus_count() < pipe.buses() {
            car.add_bus();
        }
        let testers = car.attach_testers();
        Self {
            car,
            testers,
            pipe,
            now: Duration::ZERO,
            next_due: Duration::ZERO,
            wall_start,
        }
    }

    /// Sets the head unit's wall clock to `to` now (a real-time clock reset to 1970, or set a
    /// year ahead); it runs on from there with simulated time. The bus's monotonic time does
    /// not jump. `to` must not be earlier than the simulated time since start.
    pub fn jump_wall(&mut self, to: Timestamp) {
        let ran = u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX);
        self.wall_start = Timestamp::from_millis(to.as_millis().saturating_sub(ran));
    }

    /// Simulated time now.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The car's state (speed, odometer, power, faults): the truth the agent is checked against.
    pub fn state(&self) -> &VehicleState {
        self.car.state()
    }

    /// Frames that crossed the virtual buses so far.
    pub fn frames(&mut self) -> u64 {
        self.car.frames_sent()
    }

    /// Each bus's poller's counters, and each of its UDS ECUs' (name and counters).
    pub fn poller_stats(
        &self,
    ) -> Vec<(
        crate::poller::PollerStats,
        Vec<(String, crate::poller::UdsEcuStats)>,
    )> {
        self.pipe
            .pollers
            .iter()
            .map(|p| (p.stats(), p.uds_stats()))
            .collect()
    }

    /// Runs car and agent up to simulated time `until`, event by event.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            self.instant();
            if self.now >= until {
                return;
            }
            let next = [self.car.next_event(), Some(self.next_due)]
                .into_iter()
                .flatten()
                .filter(|t| *t > self.now)
                .min()
                .unwrap_or(until);
            self.now = next.min(until);
        }
    }

    /// Everything that happens at `self.now`: the car runs to it, the agent reads what came,
    /// answers, and steps its timers, until nobody has anything more to say at this instant.
    fn instant(&mut self) {
        let now = self.now;
        let wall_start = self.wall_start;
        let wall = |at: Duration| wall_start.saturating_add(at);
        for _ in 0..MAX_PASSES_PER_INSTANT {
            self.car.run_until(now);
            let mut busy = false;
            for (bus, tester) in self
                .testers
                .iter()
                .copied()
                .enumerate()
                .take(self.pipe.buses())
            {
                while let Some(st) = self.car.recv_on(bus, tester) {
                    self.pipe.on_frame(bus, st.frame, st.at, wall(st.at));
                    for (to, f) in self.pipe.to_send.drain(..) {
                        busy = true;
                        if let Some(node) = self.testers.get(to) {
                            self.car.send_on(to, *node, f, st.at);
                        }
                    }
                }
            }
            self.next_due = self.pipe.step(now, wall(now));
            for (to, f) in self.pipe.to_send.drain(..) {
                busy = true;
                if let Some(node) = self.testers.get(to) {
                    self.car.send_on(to, *node, f, now);
                }
            }
            if !busy {
                return;
            }
        }
        tracing::warn!(now = ?now, "simulated car: still talking after {MAX_PASSES_PER_INSTANT} passes");
    }
}
