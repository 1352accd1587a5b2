//! The in-flight tracker: which outbox records each unacknowledged publish carries, so they
//! leave the outbox only when the broker acknowledged that publish. Pure: MQTT events in,
//! sequence numbers out.
//!
//! rumqttc does not return a packet id from `publish`: it reports
//! `Event::Outgoing(Outgoing::Publish(pkid))` when the request reaches the wire, in request
//! order, and `Incoming(PubAck { pkid })` when the broker acknowledges it. So a published batch
//! waits in `requested` (FIFO) until its packet id is seen, then in `sent` (by packet id) until
//! its ack. If the client's window were full of one packet id (a broker acking out of order),
//! rumqttc would report `AwaitAck(pkid)` and hold the publish until that id is acked, then
//! report `Outgoing::Publish(pkid)` for it after the ack: the `collided` slot follows that. With
//! the sync's window far under rumqttc's (`[sync].inflight` is at most
//! `config::defaults::SYNC_MAX_INFLIGHT`, half of [`super::CLIENT_WINDOW`]) it does not happen,
//! but it is handled.
//!
//! After a disconnect nothing in flight can be acknowledged any more: [`Inflight::reset`]
//! forgets it all and says where to resend from. The shell also removes rumqttc's own copies of
//! those publishes from its pending queue, so every packet id seen after a reconnect belongs to
//! a publish this tracker knows: a resend is the sync's, from the outbox, never rumqttc's.
//!
//! Does not own: the records themselves, batching, or the store.

use std::collections::{BTreeMap, VecDeque};

/// An event that does not fit what was published: the link should be reset (nothing is lost:
/// what is unacknowledged is still in the outbox).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Anomaly {
    /// A publish went out that the tracker did not ask for.
    #[error("packet id {0} went out for a publish the sync did not make")]
    Unknown(u16),
    /// A packet id was reused while a batch on it was still unacknowledged.
    #[error("packet id {0} reused before its acknowledgement")]
    Reused(u16),
}

/// The seqs of one batch, in order (never empty).
pub(crate) type Seqs = Vec<u64>;

/// Publishes not yet acknowledged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inflight {
    requested: VecDeque<Seqs>,
    sent: BTreeMap<u16, Seqs>,
    collided: Option<(u16, Seqs)>,
}

impl Inflight {
    /// An empty tracker.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Batches published and not yet acknowledged.
    pub(crate) fn len(&self) -> usize {
        self.requested.len() + self.sent.len() + usize::from(self.collided.is_some())
    }

    /// Whether nothing is in flight.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A batch carrying `seqs` was handed to the client.
    pub(crate) fn requested(&mut self, seqs: Seqs) {
        if !seqs.is_empty() {
            self.requested.push_back(seqs);
        }
    }

    /// `Outgoing::Publish(pkid)`: the oldest requested batch (or the collided one on `pkid`)
    /// went out under `pkid`.
    ///
    /// # Errors
    /// [`Anomaly`] when it matches nothing published, or reuses an unacknowledged id.
    pub(crate) fn on_outgoing(&mut self, pkid: u16) -> Result<(), Anomaly> {
        let seqs = match self.collided.take() {
            Some((id, seqs)) if id == pkid => seqs,
            other => {
                self.collided = other;
                self.requested.pop_front().ok_or(Anomaly::Unknown(pkid))?
            }
        };
        if self.sent.insert(pkid, seqs).is_some() {
            return Err(Anomaly::Reused(pkid));
        }
        Ok(())
    }

    /// `Outgoing::AwaitAck(pkid)`: the oldest requested batch waits for `pkid` to be acked.
    ///
    /// # Errors
    /// [`Anomaly::Unknown`] when nothing was requested, or a second collision (rumqttc holds
    /// one at a time).
    pub(crate) fn on_await_ack(&mut self, pkid: u16) -> Result<(), Anomaly> {
        if self.collided.is_some() {
            return Err(Anomaly::Reused(pkid));
        }
        let seqs = self.requested.pop_front().ok_or(Anomaly::Unknown(pkid))?;
        self.collided = Some((pkid, seqs));
        Ok(())
    }

    /// `PubAck { pkid }`: the seqs the acknowledged batch carried (None for an id not in
    /// flight: a stale ack, ignored).
    pub(crate) fn on_puback(&mut self, pkid: u16) -> Option<Seqs> {
        self.sent.remove(&pkid)
    }

    /// The lowest seq not yet acknowledged.
    pub(crate) fn first_unacked(&self) -> Option<u64> {
        self.requested
            .iter()
            .chain(self.sent.values())
            .chain(self.collided.iter().map(|(_, s)| s))
            .filter_map(|s| s.first().copied())
            .min()
    }

    /// The connection is gone: forgets everything in flight and returns the lowest seq that
    /// was not acknowledged (the sync resends from there).
    pub(crate) fn reset(&mut self) -> Option<u64> {
        let first = self.first_unacked();
        self.requested.clear();
        self.sent.clear();
        self.collided = None;
        first
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn acks_release_the_batch_on_their_packet_id() {
        let mut f = Inflight::new();
        f.requested(vec![1, 2, 3]);
        f.requested(vec![4, 6]);
        assert_eq!(f.len(), 2);
        // Nothing is released before its packet id is known and acked.
        assert_eq!(f.on_puback(1), None);
        f.on_outgoing(7).unwrap();
        f.on_outgoing(8).unwrap();
        assert_eq!(f.first_unacked(), Some(1));
        // Acked out of order.
        assert_eq!(f.on_puback(8), Some(vec![4, 6]));
        assert_eq!(f.first_unacked(), Some(1));
        assert_eq!(f.on_puback(8), None, "a second ack releases nothing");
        assert_eq!(f.on_puback(7), Some(vec![1, 2, 3]));
        assert!(f.is_empty());
        assert_eq!(f.first_unacked(), None);
    }

    #[test]
    fn reset_resends_from_the_first_unacked() {
        let mut f = Inflight::new();
        f.requested(vec![10, 11]);
        f.requested(vec![12]);
        f.requested(vec![13, 14]);
        f.on_outgoing(1).unwrap();
        f.on_outgoing(2).unwrap();
        assert_eq!(f.on_puback(1), Some(vec![10, 11]));
        // 12 went out, 13-14 never did: resend from 12.
        assert_eq!(f.reset(), Some(12));
        assert!(f.is_empty());
        assert_eq!(
            f.on_puback(2),
            None,
            "acks of the old connection mean nothing"
        );
        assert_eq!(f.reset(), None);
    }

    #[test]
    fn a_collision_maps_after_the_ack_it_waited_for() {
        let mut f = Inflight::new();
        f.requested(vec![1]);
        f.on_outgoing(5).unwrap();
        f.requested(vec![2]);
        f.requested(vec![3]);
        f.on_await_ack(5).unwrap();
        // The next request is not taken while the collision waits... rumqttc stops reading
        // requests; the ack of 5 comes, then the held publish goes out on 5.
        assert_eq!(f.on_puback(5), Some(vec![1]));
        f.on_outgoing(5).unwrap();
        f.on_outgoing(6).unwrap();
        assert_eq!(f.on_puback(5), Some(vec![2]));
        assert_eq!(f.on_puback(6), Some(vec![3]));
        assert!(f.is_empty());
    }

    #[test]
    fn anomalies_are_reported() {
        let mut f = Inflight::new();
        assert_eq!(f.on_outgoing(3), Err(Anomaly::Unknown(3)));
        f.requested(vec![1]);
        f.requested(vec![2]);
        f.on_outgoing(3).unwrap();
        assert_eq!(f.on_outgoing(3), Err(Anomaly::Reused(3)));
    }

    proptest! {
        /// Whatever the broker acks and whenever the link drops, every seq is either acked
        /// exactly through its own batch or at or after the resend point.
        #[test]
        fn nothing_unacked_is_forgotten(ops in prop::collection::vec(0u8..4, 1..200)) {
            let mut f = Inflight::new();
            let mut next_seq = 1u64;
            let mut next_pkid = 1u16;
            let mut out: Vec<(u16, Seqs)> = Vec::new();
            let mut acked = std::collections::BTreeSet::new();
            let mut published: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    0 => {
                        let seqs = vec![next_seq, next_seq + 1];
                        next_seq += 2;
                        published.extend(&seqs);
                        f.requested(seqs.clone());
                        f.on_outgoing(next_pkid).unwrap();
                        out.push((next_pkid, seqs));
                        next_pkid += 1;
                    }
                    1 | 2 if !out.is_empty() => {
                        let i = if op == 1 { 0 } else { out.len() - 1 };
                        let (pkid, seqs) = out.remove(i);
                        prop_assert_eq!(f.on_puback(pkid), Some(seqs.clone()));
                        acked.extend(seqs);
                    }
                    _ => {
                        let from = f.reset();
                        // Everything published and not acked is at or after `from`.
                        for s in &published {
                            if !acked.contains(s) {
                                prop_assert!(from.is_some_and(|f| *s >= f));
                            }
                        }
                        // The sync then resends from `from`: what was not acked is "new" again.
                        published.retain(|s| acked.contains(s));
                        out.clear();
                    }
                }
            }
        }
    }
}
