//! The outbox's in-memory index (which sequence numbers are stored, by value class) and the
//! rule for what to drop when it is full. Pure: no sled here; [`super::Store`] turns the
//! decisions into keys in the same batch as the records.
//!
//! Drop order when appending would pass the bound (each step oldest first):
//! 1. heartbeats (the next one says the same, and carries the drop count);
//! 2. odometer, engine-hours and DTC-snapshot records except the newest of each kind (a later
//!    reading supersedes them);
//! 3. the newest reading of each of those kinds;
//! 4. events: faults appearing and clearing, maintenance, prompts, consents, and kinds this
//!    build does not know. They go last: each is something the cloud cannot learn otherwise.
//!
//! Does not own: the encoding of records or their keys ([`super::keys`]).

use std::collections::BTreeSet;

use rapport_shared::v1::uplink::{RecordBody, tag};

/// How much a record is worth keeping when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Class {
    /// A heartbeat.
    Heartbeat,
    /// An odometer reading.
    Odometer,
    /// An engine-hours reading.
    EngineHours,
    /// A snapshot of active faults.
    Snapshot,
    /// Anything else: an event.
    Event,
}

impl Class {
    /// The class of a record by its wire tag.
    pub(crate) fn of_tag(t: u32) -> Self {
        match t {
            tag::HEARTBEAT => Self::Heartbeat,
            tag::ODOMETER => Self::Odometer,
            tag::ENGINE_HOURS => Self::EngineHours,
            tag::DTC_SNAPSHOT => Self::Snapshot,
            _ => Self::Event,
        }
    }

    /// The class of a record body.
    pub(crate) fn of(body: &RecordBody) -> Self {
        Self::of_tag(body.tag())
    }
}

/// The sequence numbers in the outbox, by class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Index {
    heartbeat: BTreeSet<u64>,
    odometer: BTreeSet<u64>,
    engine_hours: BTreeSet<u64>,
    snapshot: BTreeSet<u64>,
    event: BTreeSet<u64>,
}

impl Index {
    fn set(&mut self, class: Class) -> &mut BTreeSet<u64> {
        match class {
            Class::Heartbeat => &mut self.heartbeat,
            Class::Odometer => &mut self.odometer,
            Class::EngineHours => &mut self.engine_hours,
            Class::Snapshot => &mut self.snapshot,
            Class::Event => &mut self.event,
        }
    }

    fn sets(&self) -> [(Class, &BTreeSet<u64>); 5] {
        [
            (Class::Heartbeat, &self.heartbeat),
            (Class::Odometer, &self.odometer),
            (Class::EngineHours, &self.engine_hours),
            (Class::Snapshot, &self.snapshot),
            (Class::Event, &self.event),
        ]
    }

    /// Records stored.
    pub(crate) fn len(&self) -> u64 {
        self.sets().iter().map(|(_, s)| s.len() as u64).sum()
    }

    /// Adds a record.
    pub(crate) fn insert(&mut self, seq: u64, class: Class) {
        self.set(class).insert(seq);
    }

    /// Removes a record; its class if it was there.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<Class> {
        [
            Class::Event,
            Class::Odometer,
            Class::Heartbeat,
            Class::EngineHours,
            Class::Snapshot,
        ]
        .into_iter()
        .find(|class| self.set(*class).remove(&seq))
    }

    /// Removes the `n` least valuable records (see the module doc) and returns them with their
    /// class, in the order they were chosen. Fewer if the index holds fewer.
    pub(crate) fn evict(&mut self, n: u64) -> Vec<(u64, Class)> {
        let mut out = Vec::new();
        let mut left = n;
        // 1. heartbeats, oldest first.
        take_oldest(&mut self.heartbeat, Class::Heartbeat, &mut left, &mut out);
        // 2. readings but the newest of each kind, oldest first across kinds.
        while left > 0 {
            let oldest = [
                (Class::Odometer, &self.odometer),
                (Class::EngineHours, &self.engine_hours),
                (Class::Snapshot, &self.snapshot),
            ]
            .into_iter()
            .filter(|(_, s)| s.len() > 1)
            .filter_map(|(c, s)| s.first().map(|seq| (*seq, c)))
            .min();
            let Some((seq, class)) = oldest else { break };
            self.set(class).remove(&seq);
            out.push((seq, class));
            left -= 1;
        }
        // 3. the newest readings (one of each kind is left), oldest first.
        let mut newest: Vec<(u64, Class)> = [
            (Class::Odometer, &self.odometer),
            (Class::EngineHours, &self.engine_hours),
            (Class::Snapshot, &self.snapshot),
        ]
        .into_iter()
        .filter_map(|(c, s)| s.first().map(|seq| (*seq, c)))
        .collect();
        newest.sort_unstable();
        for (seq, class) in newest {
            if left == 0 {
                break;
            }
            self.set(class).remove(&seq);
            out.push((seq, class));
            left -= 1;
        }
        // 4. events, oldest first.
        take_oldest(&mut self.event, Class::Event, &mut left, &mut out);
        out
    }
}

fn take_oldest(set: &mut BTreeSet<u64>, class: Class, left: &mut u64, out: &mut Vec<(u64, Class)>) {
    while *left > 0 {
        let Some(seq) = set.pop_first() else { return };
        out.push((seq, class));
        *left -= 1;
    }
}

/// Keeps at most `max` of `pending` — records not stored yet, while the store is failing — by
/// the same value order as the outbox (heartbeats first, …, events last), in their order;
/// returns how many were dropped.
pub(crate) fn bound_pending<T>(
    pending: &mut Vec<(T, rapport_shared::v1::uplink::RecordBody)>,
    max: u64,
) -> u64 {
    let excess = (pending.len() as u64).saturating_sub(max);
    if excess == 0 {
        return 0;
    }
    let mut index = Index::default();
    for (i, (_, body)) in pending.iter().enumerate() {
        index.insert(i as u64, Class::of(body));
    }
    let gone: BTreeSet<u64> = index.evict(excess).into_iter().map(|(i, _)| i).collect();
    let mut i = 0u64;
    pending.retain(|_| {
        let keep = !gone.contains(&i);
        i += 1;
        keep
    });
    gone.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(records: &[(u64, Class)]) -> Index {
        let mut i = Index::default();
        for (seq, class) in records {
            i.insert(*seq, *class);
        }
        i
    }

    use Class::{EngineHours as E, Event as V, Heartbeat as H, Odometer as O, Snapshot as S};

    #[test]
    fn evicts_heartbeats_then_old_readings_then_newest_readings_then_events() {
        let mut i = index(&[
            (1, V),
            (2, O),
            (3, H),
            (4, E),
            (5, O),
            (6, S),
            (7, H),
            (8, O),
            (9, E),
            (10, V),
        ]);
        let order: Vec<u64> = i.evict(10).into_iter().map(|(s, _)| s).collect();
        // heartbeats 3, 7; readings but newest: 2 (odo), 4 (eh), 5 (odo); newest: 6 (snap),
        // 8 (odo), 9 (eh); events 1, 10.
        assert_eq!(order, vec![3, 7, 2, 4, 5, 6, 8, 9, 1, 10]);
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn evicts_only_as_many_as_asked() {
        let mut i = index(&[(1, V), (2, O), (3, O), (4, H)]);
        assert_eq!(i.evict(2), vec![(4, H), (2, O)]);
        assert_eq!(i.len(), 2);
        assert_eq!(i.evict(0), vec![]);
        assert_eq!(i.evict(5), vec![(3, O), (1, V)]);
        assert_eq!(i.evict(1), vec![]);
    }

    #[test]
    fn pending_records_are_bounded_by_the_same_value_order() {
        use rapport_shared::Odometer;
        use rapport_shared::v1::uplink::{Heartbeat, OdometerReading, RecordBody, SignalSource};
        let odo = |m| {
            RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(m),
                source: SignalSource::Obd,
            })
        };
        let hb = RecordBody::Heartbeat(Heartbeat {
            agent_version: String::new(),
            uptime_s: 0,
            outbox_depth: 0,
            records_dropped: 0,
        });
        let mut pending = vec![(0, odo(1)), (1, hb.clone()), (2, odo(2)), (3, odo(3))];
        assert_eq!(bound_pending(&mut pending, 4), 0);
        assert_eq!(bound_pending(&mut pending, 2), 2);
        // The heartbeat first, then the oldest reading; the newest stays, in order.
        assert_eq!(
            pending.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn remove_reports_the_class() {
        let mut i = index(&[(1, V), (2, E)]);
        assert_eq!(i.remove(2), Some(E));
        assert_eq!(i.remove(2), None);
        assert_eq!(i.len(), 1);
    }
}
