//! The uplink's state: a cursor into the outbox, the records read and waiting, the batcher and
//! the in-flight tracker, put together. Pure: the shell reads the outbox when asked
//! ([`Uplink::wants_read`]), publishes what [`Uplink::next`] cuts, feeds back the client's
//! events, and removes from the outbox what [`Uplink::on_puback`] returns.
//!
//! The invariant that makes it lossless: a record leaves the outbox only through
//! [`Uplink::on_puback`], and after any reset the cursor goes back to the lowest seq not
//! acknowledged, so every record still in the outbox is sent again. Duplicates are possible
//! (a batch acked by the broker whose ack was lost, or acked out of order before a reset);
//! the cloud drops them by sequence number.
//!
//! Does not own: I/O, the clock (times are passed in) or MQTT.

use core::time::Duration;

use rapport_shared::WireError;
use rapport_shared::v1::uplink::Record;

use super::batch::{Batcher, Cut, Waiting};
use super::inflight::{Anomaly, Inflight, Seqs};

/// A batch ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ready {
    /// The encoded uplink.
    pub(crate) payload: Vec<u8>,
    /// The seqs it carries.
    pub(crate) seqs: Seqs,
    /// Whether a bound ended it.
    full: bool,
}

/// The uplink state. See the module doc.
#[derive(Debug, Clone)]
pub(crate) struct Uplink {
    batcher: Batcher,
    window: usize,
    inflight: Inflight,
    waiting: Vec<Waiting>,
    /// The next seq to read from the outbox.
    next_read: u64,
    /// The last read returned fewer records than asked: nothing more until the next write.
    exhausted: bool,
    /// The last batch cut was full: a backlog is draining, so its tail goes without waiting.
    draining: bool,
    /// The highest seq ever handed to the client (to count resends).
    high_water: u64,
}

impl Uplink {
    /// Up to `window` batches in flight at once (at least 1).
    pub(crate) fn new(batcher: Batcher, window: usize) -> Self {
        Self {
            batcher,
            window: window.max(1),
            inflight: Inflight::new(),
            waiting: Vec::new(),
            next_read: 0,
            exhausted: false,
            draining: false,
            high_water: 0,
        }
    }

    /// Batches in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Records read and not yet published.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn window_full(&self) -> bool {
        self.inflight.len() >= self.window
    }

    /// What to read from the outbox now, if anything: `(first seq, most records)`.
    pub(crate) fn wants_read(&self) -> Option<(u64, usize)> {
        let room = self
            .batcher
            .limits()
            .max_records
            .saturating_sub(self.waiting.len());
        (!self.exhausted && room > 0).then_some((self.next_read, room))
    }

    /// The outbox answered a [`Uplink::wants_read`] of `asked` records at `now`.
    ///
    /// Returns the seqs of records that cannot be encoded at all (never expected: the outbox
    /// holds what `Record::encode` wrote); the caller removes them from the outbox.
    pub(crate) fn on_read(
        &mut self,
        records: Vec<Record>,
        asked: usize,
        now: Duration,
    ) -> Vec<u64> {
        self.exhausted = records.len() < asked;
        let mut unsendable = Vec::new();
        for record in records {
            if record.seq < self.next_read {
                continue;
            }
            self.next_read = record.seq.saturating_add(1);
            let seq = record.seq;
            match Waiting::new(record, now) {
                Ok(w) => self.waiting.push(w),
                Err(_) => unsendable.push(seq),
            }
        }
        unsendable
    }

    /// The store wrote: the outbox may hold more.
    pub(crate) fn on_written(&mut self) {
        self.exhausted = false;
    }

    /// The next batch to publish at `now`, if the window has room and the batcher says go.
    /// Nothing changes until [`Uplink::sent`].
    ///
    /// # Errors
    /// The first waiting record cannot be encoded even alone (see [`Uplink::skip_first`]).
    pub(crate) fn next(&self, now: Duration) -> Result<Option<Ready>, WireError> {
        if self.window_full() {
            return Ok(None);
        }
        let eager = self.draining && self.exhausted;
        Ok(self.batcher.cut(&self.waiting, now, eager)?.map(
            |Cut {
                 count,
                 full,
                 payload,
             }| Ready {
                payload,
                seqs: self.waiting[..count].iter().map(|w| w.record.seq).collect(),
                full,
            },
        ))
    }

    /// Drops the first waiting record (one that cannot be encoded); returns its seq.
    pub(crate) fn skip_first(&mut self) -> Option<u64> {
        (!self.waiting.is_empty()).then(|| self.waiting.remove(0).record.seq)
    }

    /// `ready` was handed to the client. Returns how many of its records were sent before
    /// (a resend).
    pub(crate) fn sent(&mut self, ready: Ready) -> usize {
        let count = ready.seqs.len().min(self.waiting.len());
        self.waiting.drain(..count);
        self.draining = ready.full;
        let resent = ready.seqs.iter().filter(|s| **s <= self.high_water).count();
        if let Some(last) = ready.seqs.last() {
            self.high_water = self.high_water.max(*last);
        }
        self.inflight.requested(ready.seqs);
        resent
    }

    /// When a partial batch must go, if one is waiting and could go (window not full).
    pub(crate) fn deadline(&self) -> Option<Duration> {
        if self.window_full() {
            return None;
        }
        self.batcher.deadline(&self.waiting)
    }

    /// See [`Inflight::on_outgoing`].
    ///
    /// # Errors
    /// An [`Anomaly`]: call [`Uplink::reset`] and reconnect.
    pub(crate) fn on_outgoing(&mut self, pkid: u16) -> Result<(), Anomaly> {
        self.inflight.on_outgoing(pkid)
    }

    /// See [`Inflight::on_await_ack`].
    ///
    /// # Errors
    /// An [`Anomaly`]: call [`Uplink::reset`] and reconnect.
    pub(crate) fn on_await_ack(&mut self, pkid: u16) -> Result<(), Anomaly> {
        self.inflight.on_await_ack(pkid)
    }

    /// The broker acknowledged `pkid`: the seqs to remove from the outbox.
    pub(crate) fn on_puback(&mut self, pkid: u16) -> Option<Seqs> {
        self.inflight.on_puback(pkid)
    }

    /// The connection dropped or was replaced: forget what is in flight and waiting, and read
    /// again from the lowest seq not acknowledged.
    pub(crate) fn reset(&mut self) {
        let mut from = self.next_read;
        if let Some(s) = self.inflight.reset() {
            from = from.min(s);
        }
        if let Some(w) = self.waiting.first() {
            from = from.min(w.record.seq);
        }
        self.waiting.clear();
        self.next_read = from;
        self.exhausted = false;
        self.draining = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;
    use crate::sync::batch::Limits;
    use proptest::prelude::*;
    use rapport_shared::v1::uplink::{OdometerReading, RecordBody, SignalSource, Uplink as Wire};
    use rapport_shared::{Odometer, Timestamp};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn record(seq: u64) -> Record {
        Record {
            seq,
            at: Timestamp::from_millis(1_700_000_000_000 + seq * 1000),
            body: RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(seq * 100),
                source: SignalSource::Obd,
            }),
        }
    }

    fn uplink(max_records: usize, window: usize, max_age_ms: u64) -> Uplink {
        let batcher = Batcher::new(
            "WVWZZZ1KZ8W012345".parse().unwrap(),
            Limits {
                max_records,
                max_bytes: 64 * 1024,
                max_age: ms(max_age_ms),
            },
        );
        Uplink::new(batcher, window)
    }

    /// A test outbox: seq → record.
    struct Outbox(BTreeMap<u64, Record>);

    impl Outbox {
        fn with(seqs: impl IntoIterator<Item = u64>) -> Self {
            Self(seqs.into_iter().map(|s| (s, record(s))).collect())
        }
        fn read(&self, up: &mut Uplink, now: Duration) {
            if let Some((from, limit)) = up.wants_read() {
                let got: Vec<Record> = self
                    .0
                    .range(from..)
                    .take(limit)
                    .map(|(_, r)| r.clone())
                    .collect();
                assert!(up.on_read(got, limit, now).is_empty());
            }
        }

        /// Publishes every batch the uplink will cut now, noting each one's seqs.
        fn publish_all(&self, up: &mut Uplink, published: &mut Vec<Vec<u64>>) {
            loop {
                self.read(up, Duration::ZERO);
                let Some(ready) = up.next(Duration::ZERO).unwrap() else {
                    break;
                };
                published.push(ready.seqs.clone());
                up.sent(ready);
            }
        }
    }

    #[test]
    fn a_backlog_goes_in_full_batches_up_to_the_window_and_its_tail_without_waiting() {
        let outbox = Outbox::with(1..=23);
        let mut up = uplink(5, 3, 60_000);
        let mut published = Vec::new();
        outbox.publish_all(&mut up, &mut published);
        assert_eq!(
            published,
            [
                vec![1, 2, 3, 4, 5],
                vec![6, 7, 8, 9, 10],
                vec![11, 12, 13, 14, 15]
            ]
        );
        assert_eq!(up.deadline(), None, "window full: no timer");
        for pkid in 1..=3 {
            up.on_outgoing(pkid).unwrap();
        }
        assert_eq!(up.on_puback(1), Some(vec![1, 2, 3, 4, 5]));
        outbox.publish_all(&mut up, &mut published);
        assert_eq!(published[3], vec![16, 17, 18, 19, 20]);
        up.on_outgoing(4).unwrap();
        assert_eq!(up.on_puback(2).map(|s| s.len()), Some(5));
        outbox.read(&mut up, Duration::ZERO);
        // The tail (21-23) of a draining backlog goes at once, not after 60 s.
        let tail = up.next(Duration::ZERO).unwrap().unwrap();
        assert_eq!(tail.seqs, [21, 22, 23]);
        let decoded = Wire::decode(&tail.payload).unwrap();
        assert_eq!(decoded.records, vec![record(21), record(22), record(23)]);
    }

    #[test]
    fn a_lone_record_waits_for_company_until_its_age() {
        let mut outbox = Outbox::with([1]);
        let mut up = uplink(10, 4, 2000);
        outbox.read(&mut up, ms(100));
        assert_eq!(up.next(ms(100)).unwrap(), None);
        assert_eq!(up.deadline(), Some(ms(2100)));
        // More arrive; nothing read until the store says it wrote.
        outbox.0.insert(2, record(2));
        outbox.read(&mut up, ms(500));
        assert_eq!(up.waiting(), 1);
        up.on_written();
        outbox.read(&mut up, ms(500));
        assert_eq!(up.waiting(), 2);
        assert_eq!(up.next(ms(2099)).unwrap(), None);
        assert_eq!(up.next(ms(2100)).unwrap().unwrap().seqs, [1, 2]);
    }

    #[test]
    fn reset_reads_again_from_the_first_unacked_and_counts_resends() {
        let outbox = Outbox::with(1..=9);
        let mut up = uplink(3, 10, 0);
        for _ in 0..3 {
            outbox.read(&mut up, Duration::ZERO);
            let r = up.next(Duration::ZERO).unwrap().unwrap();
            assert_eq!(up.sent(r), 0);
        }
        up.on_outgoing(1).unwrap();
        up.on_outgoing(2).unwrap();
        up.on_outgoing(3).unwrap();
        // The broker acked the second batch only, then the link dropped.
        let acked = up.on_puback(2).unwrap();
        assert_eq!(acked, [4, 5, 6]);
        let mut outbox = outbox;
        for s in acked {
            outbox.0.remove(&s);
        }
        up.reset();
        outbox.read(&mut up, Duration::ZERO);
        let r = up.next(Duration::ZERO).unwrap().unwrap();
        assert_eq!(r.seqs, [1, 2, 3]);
        assert_eq!(up.sent(r), 3);
        outbox.read(&mut up, Duration::ZERO);
        let r = up.next(Duration::ZERO).unwrap().unwrap();
        assert_eq!(r.seqs, [7, 8, 9]);
        assert_eq!(up.sent(r), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A simulated link that acks in any order, loses acks, and drops: every record the
        /// outbox ever held is published at least once, and only acked records leave it.
        #[test]
        fn the_outbox_drains_whatever_the_link_does(
            n in 1u64..300,
            ops in prop::collection::vec(0u8..10, 1..400),
            max_records in 1usize..20,
            window in 1usize..6,
        ) {
            let mut outbox = Outbox::with(1..=n);
            let mut up = uplink(max_records, window, 0);
            let mut delivered = std::collections::BTreeSet::new();
            let mut on_wire: Vec<(u16, Seqs)> = Vec::new();
            let mut pkid = 0u16;
            let mut step = |op: u8, up: &mut Uplink, outbox: &mut Outbox, on_wire: &mut Vec<(u16, Seqs)>| {
                match op {
                    // The broker acks the oldest, or the newest.
                    0..=4 if !on_wire.is_empty() => {
                        let i = if op == 4 { on_wire.len() - 1 } else { 0 };
                        let (id, _) = on_wire.remove(i);
                        if let Some(seqs) = up.on_puback(id) {
                            for s in seqs { outbox.0.remove(&s); }
                        }
                    }
                    // The link drops.
                    9 => { up.reset(); on_wire.clear(); }
                    // Publish what is ready.
                    _ => {
                        outbox.read(up, Duration::ZERO);
                        if let Some(r) = up.next(Duration::ZERO).unwrap() {
                            delivered.extend(r.seqs.iter().copied());
                            let seqs = r.seqs.clone();
                            up.sent(r);
                            pkid = pkid % 100 + 1;
                            up.on_outgoing(pkid).unwrap();
                            on_wire.push((pkid, seqs));
                        }
                    }
                }
            };
            for op in ops {
                step(op, &mut up, &mut outbox, &mut on_wire);
            }
            // Then a good link until empty.
            let mut rounds = 0;
            while !outbox.0.is_empty() {
                step(5, &mut up, &mut outbox, &mut on_wire);
                step(0, &mut up, &mut outbox, &mut on_wire);
                rounds += 1;
                prop_assert!(rounds < 10_000, "stuck with {} left", outbox.0.len());
            }
            prop_assert_eq!(delivered.len() as u64, n);
        }
    }
}
