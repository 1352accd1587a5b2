//! One UDS ECU as the poller keeps it: its ISO-TP receiver (its own, so ECUs sharing a response
//! id under extended addressing reassemble apart), the request it owes an answer to after a
//! `responsePending`, how long it has been silent and the back-off that follows, and its
//! counters.
//!
//! Back-off: after [`SILENT_AFTER`] requests in a row without an answer the ECU is silent; it is
//! then asked one request (a probe) every 2, 4, 8 … up to [`MAX_SKIP_ROUNDS`] + 1 rounds, and
//! everything again as soon as it answers anything. Owns that rule; the scheduling around it is
//! the poller's.

use core::time::Duration;

use super::{Job, UdsTarget};
use crate::proto::isotp::{self, Receiver};

/// Requests in a row without an answer after which an ECU is treated as silent.
pub(crate) const SILENT_AFTER: u32 = 3;
/// Most rounds a silent ECU sits out between two probes.
pub(crate) const MAX_SKIP_ROUNDS: u32 = 15;

/// One UDS ECU's counters (for tests, the desk summary and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdsEcuStats {
    /// Requests sent to it.
    pub requests: u64,
    /// Answers (positive or negative) it gave.
    pub answers: u64,
    /// Requests it left unanswered (within P2, or P2* after a `responsePending`).
    pub timeouts: u64,
    /// `responsePending` (0x78) it sent.
    pub pending: u64,
    /// Negative responses (0x78 aside).
    pub negative: u64,
    /// Data rounds it was asked in (fully, or by one probe while silent).
    pub rounds: u64,
    /// Data rounds it sat out while silent.
    pub skipped_rounds: u64,
}

/// A request the ECU answered with `responsePending`: the bus is free for the other ECUs
/// while it works, until `deadline` (P2*).
#[derive(Clone, Copy, Debug)]
pub(super) struct Waiting {
    pub(super) job: Job,
    pub(super) deadline: Duration,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct UdsEcu {
    pub(super) target: UdsTarget,
    pub(super) rx: Receiver,
    pub(super) waiting: Option<Waiting>,
    /// Requests in a row it did not answer.
    silent_streak: u32,
    /// Rounds left to sit out before the next probe.
    skip_left: u32,
    pub(super) stats: UdsEcuStats,
}

impl UdsEcu {
    pub(super) fn new(target: UdsTarget, isotp: isotp::Config) -> Self {
        let rx = Receiver::new(target.response_id, isotp);
        let rx = match target.address {
            // Its answers carry our address first; our flow control carries its.
            Some((ecu, tester)) => rx.with_extended_address(tester, ecu),
            None => rx,
        };
        Self {
            target,
            rx,
            waiting: None,
            silent_streak: 0,
            skip_left: 0,
            stats: UdsEcuStats::default(),
        }
    }

    /// Whether it has stopped answering.
    pub(super) fn is_silent(&self) -> bool {
        self.silent_streak >= SILENT_AFTER
    }

    /// A data round starts: whether to ask it (everything, or one probe while silent).
    pub(super) fn take_round(&mut self) -> bool {
        if self.is_silent() && self.skip_left > 0 {
            self.skip_left -= 1;
            self.stats.skipped_rounds += 1;
            return false;
        }
        self.stats.rounds += 1;
        true
    }

    /// It answered (anything, even a refusal): it is awake. Returns whether it had been
    /// silent.
    pub(super) fn answered(&mut self) -> bool {
        let was_silent = self.is_silent();
        self.stats.answers += 1;
        self.silent_streak = 0;
        self.skip_left = 0;
        was_silent
    }

    /// A request to it went unanswered; returns whether it just became silent.
    pub(super) fn timed_out(&mut self) -> bool {
        let was_silent = self.is_silent();
        self.stats.timeouts += 1;
        self.silent_streak = self.silent_streak.saturating_add(1);
        if self.is_silent() {
            // 1, 3, 7, 15 … rounds sat out between probes.
            let doublings = (self.silent_streak - SILENT_AFTER).min(4);
            self.skip_left = ((2u32 << doublings) - 1).min(MAX_SKIP_ROUNDS);
        }
        !was_silent && self.is_silent()
    }

    /// Whether a frame from the bus is this ECU's: its response id and, with extended
    /// addressing, our address first.
    pub(super) fn is_its(&self, id: u32, extended: bool, data: &[u8]) -> bool {
        self.target.response_id == id
            && self.target.extended == extended
            && self
                .target
                .address
                .is_none_or(|(_, tester)| data.first() == Some(&tester))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_ecu_is_probed_ever_less_often_and_back_at_once_when_it_answers() {
        let target = UdsTarget {
            name: "silent".into(),
            request_id: 0x715,
            response_id: 0x77F,
            extended: false,
            address: None,
            dids: vec![0xF1A0],
            dtc_status_mask: None,
        };
        let mut ecu = UdsEcu::new(target, isotp::Config::default());
        let mut asked = Vec::new();
        for _ in 0..40 {
            let ask = ecu.take_round();
            asked.push(ask);
            if ask {
                ecu.timed_out();
            }
        }
        let rounds: Vec<usize> = asked
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| i)
            .collect();
        // Three misses, then probes 2, 4, 8, 16, 16 rounds apart.
        assert_eq!(rounds, [0, 1, 2, 4, 8, 16, 32]);
        assert_eq!(ecu.stats.timeouts, 7);
        assert_eq!(ecu.stats.skipped_rounds, 33);
        ecu.answered();
        assert!(!ecu.is_silent());
        assert!(ecu.take_round() && ecu.take_round());
    }
}
