//! The ignition state, derived from the bus: the head unit sees no ignition wire, only traffic.
//!
//! Evidence of "on": any broadcast frame (DBC signals, J1939 groups, anything that is not a
//! diagnostic answer), or an OBD-II answer (J1979 ECUs answer mode 01 with the ignition on).
//! Not evidence: UDS answers alone — a cluster may answer a diagnostic request with the ignition
//! off (the agent's off-state odometer check relies on it), and counting that would wake the
//! poller every time it asks. "Off" is no evidence for [`BusActivity::off_after`].
//!
//! Owns: that rule. Does not own: what the poller does in each state ([`crate::poller`]).

use core::time::Duration;

use crate::can::CanFrame;
use crate::poller::{self, PowerState};

/// How long without evidence before the car counts as off.
pub(crate) const DEFAULT_OFF_AFTER: Duration = Duration::from_secs(5);

/// Tracks bus evidence of the ignition state. Sans-IO: frames and `now` in.
#[derive(Debug, Clone)]
pub(crate) struct BusActivity {
    off_after: Duration,
    uds_responses: Vec<u32>,
    obd_extended: bool,
    last_evidence: Option<Duration>,
}

impl BusActivity {
    /// For what the poller asks (its answers are diagnostic, not evidence).
    pub(crate) fn new(poller: &poller::Settings, off_after: Duration) -> Self {
        Self {
            off_after,
            uds_responses: poller.uds.iter().map(|u| u.response_id).collect(),
            obd_extended: poller.obd.as_ref().is_some_and(|o| o.extended),
            last_evidence: None,
        }
    }

    /// A frame received from the bus (not one the agent sent).
    pub(crate) fn on_frame(&mut self, frame: &CanFrame, now: Duration) {
        let id = frame.raw_id();
        if self.uds_responses.contains(&id) {
            return;
        }
        // Physical diagnostic requests from other testers are not ignition evidence either.
        let obd_answer = if self.obd_extended {
            id & 0x1FFF_FF00 == 0x18DA_F100
        } else {
            (0x7E8..=0x7EF).contains(&id)
        };
        let diag_request = (0x7DF..=0x7E7).contains(&id) || (0x700..=0x7FF).contains(&id);
        if obd_answer || !diag_request {
            self.last_evidence = Some(now);
        }
    }

    /// The state now.
    pub(crate) fn state(&self, now: Duration) -> PowerState {
        match self.last_evidence {
            Some(t) if now.saturating_sub(t) < self.off_after => PowerState::On,
            _ => PowerState::Off,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn poller() -> poller::Settings {
        let path = rapport_harness::files::repo_file("config/passenger.toml");
        crate::settings::poller(&crate::config::load(&path).unwrap().config)
    }

    fn frame(id: u32) -> CanFrame {
        CanFrame::from_raw(id, id > 0x7FF, &[0; 8]).unwrap()
    }

    #[test]
    fn broadcast_and_obd_answers_mean_on_uds_answers_do_not() {
        let mut a = BusActivity::new(&poller(), DEFAULT_OFF_AFTER);
        let s = Duration::from_secs;
        assert_eq!(a.state(s(0)), PowerState::Off);
        a.on_frame(&frame(0x77E), s(1)); // the cluster's UDS answer
        assert_eq!(a.state(s(1)), PowerState::Off);
        a.on_frame(&frame(0x7E8), s(2)); // engine ECU OBD answer
        assert_eq!(a.state(s(2)), PowerState::On);
        assert_eq!(a.state(s(6)), PowerState::On);
        assert_eq!(a.state(s(7)), PowerState::Off);
        a.on_frame(&frame(0x3E9), s(10)); // a broadcast message
        assert_eq!(a.state(s(10)), PowerState::On);
        a.on_frame(&frame(0x714), s(20)); // someone's diagnostic request
        assert_eq!(a.state(s(20)), PowerState::Off);
    }
}
