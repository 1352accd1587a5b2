//! A simulated instrument cluster broadcasting the passenger DBC's `CLUSTER_1` (0x500): odometer
//! (24-bit Intel, 0.1 km), gear lever (P/R/N/D) and vehicle speed (16-bit Motorola,
//! 0.01 km/h), every 100 ms while the ECUs are awake. It gives the desk car the broadcast
//! signals a DBC-configured agent reads (`agent/fixtures/passenger.dbc`).

use core::time::Duration;

use super::{Moment, SimEcu, VehicleState};
use crate::can::CanFrame;

/// The cluster message id in `passenger.dbc`.
pub(crate) const CLUSTER_1_ID: u32 = 0x500;
const PERIOD: Duration = Duration::from_millis(100);

/// Broadcasts `CLUSTER_1`.
#[derive(Debug, Default)]
pub struct ClusterEcu {
    due: Option<Duration>,
}

impl ClusterEcu {
    /// A cluster that starts broadcasting when the ignition comes on.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frame for a vehicle state (public for benchmarks that need broadcast traffic).
    pub(crate) fn frame(state: &VehicleState) -> Option<CanFrame> {
        let hm = (state.odometer_mm / 100_000).min(0xFF_FFFF) as u32; // 0.1 km steps
        let speed = (u32::from(state.speed.raw()) * 100 / 256).min(0xFFFF) as u16; // 0.01 km/h
        let gear: u8 = if state.park {
            0 // P
        } else if state.speed.raw() > 0 {
            3 // D
        } else {
            2 // N
        };
        let [o0, o1, o2, _] = hm.to_le_bytes();
        let [s_hi, s_lo] = speed.to_be_bytes();
        // Motorola start bit 39 = MSB in byte 4: the speed is bytes 4 (high) and 5 (low).
        CanFrame::from_raw(CLUSTER_1_ID, false, &[o0, o1, o2, gear, s_hi, s_lo, 0, 0])
    }
}

impl SimEcu for ClusterEcu {
    fn on_frame(&mut self, _: &CanFrame, _: Moment<'_>, _: &mut Vec<CanFrame>) {}

    fn poll(&mut self, now: Duration, state: &VehicleState, out: &mut Vec<CanFrame>) {
        if !state.power.ecus_awake() {
            self.due = None;
            return;
        }
        let due = *self.due.get_or_insert(now);
        if now >= due {
            out.extend(Self::frame(state));
            // After a long gap (the harness jumped time), resume the period from now.
            self.due = Some(if due + PERIOD > now {
                due + PERIOD
            } else {
                now + PERIOD
            });
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.due
    }

    fn name(&self) -> &str {
        "cluster"
    }
}
