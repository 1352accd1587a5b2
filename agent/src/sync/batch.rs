//! The batcher: which of the records waiting to go up form the next [`Uplink`], and whether it
//! should go now. Pure: records and the time in, an encoded payload out.
//!
//! A batch is the longest run of waiting records, in sequence order, with at most
//! `max_records` records and at most `max_bytes` encoded bytes (a single record larger than
//! that goes alone: the wire takes any one record). A full batch goes at once. A partial one
//! goes when its oldest record has waited `max_age` since the sync first read it, or at once
//! when `eager` — the tail of a backlog being drained, so a drain never pauses at its end — or
//! when it holds an urgent record: a critical fault appearing or a critical prompt. A partner
//! waits for those, and the batching delay would be most of their end-to-end latency.
//!
//! Sizes: within a batch the codec writes deltas, so a record's bytes depend on its neighbours.
//! The batcher counts each record at its stand-alone size (`Record::encode`, which codes from
//! zero and so is almost always larger), encodes the batch, and only if that still passes
//! `max_bytes` (a clock that jumped backwards makes a time delta longer than the time) drops
//! records from the end until it fits.
//!
//! Does not own: reading the outbox, publishing, or what is in flight ([`super::uplink`]).

use core::time::Duration;

use rapport_shared::v1::uplink::{Record, RecordBody, Uplink};
use rapport_shared::{MAX_UPLINK_BYTES, Severity, Vin, WireError};

/// An uplink's envelope before its records: version, VIN, and a count of up to 3 bytes.
pub(crate) const HEADER_BYTES: usize = 1 + rapport_shared::VIN_LEN + 3;

/// Batch bounds (from `[sync]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most records per batch (at least 1).
    pub max_records: usize,
    /// Most encoded bytes per batch, at most the wire limit.
    pub max_bytes: usize,
    /// How long a partial batch may wait for more records.
    pub max_age: Duration,
}

/// A record waiting to go up.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// The record.
    pub(crate) record: Record,
    /// Its stand-alone encoded size without the version byte: the batcher's estimate.
    pub(crate) size: usize,
    /// When the sync first read it (monotonic).
    pub(crate) seen: Duration,
    /// Whether it goes at once rather than waiting for company ([`is_urgent`]).
    pub(crate) urgent: bool,
}

/// Records that must not wait for a batch to fill: a critical fault appearing and a critical
/// prompt (shown, or the driver's answer to it).
pub(crate) fn is_urgent(record: &Record) -> bool {
    match &record.body {
        RecordBody::DtcAppeared(e) => e.severity == Severity::Critical,
        RecordBody::Prompt(p) => p.critical,
        _ => false,
    }
}

impl Waiting {
    /// Wraps `record`, read at `seen`.
    ///
    /// # Errors
    /// The record cannot be encoded (it then cannot go up at all).
    pub fn new(record: Record, seen: Duration) -> Result<Self, WireError> {
        let size = record.encode()?.len().saturating_sub(1);
        let urgent = is_urgent(&record);
        Ok(Self {
            record,
            size,
            seen,
            urgent,
        })
    }
}

/// The next batch: the first `count` waiting records, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// How many of the waiting records it holds.
    pub count: usize,
    /// Whether a bound (records or bytes) ended it, rather than the end of what was waiting.
    pub(crate) full: bool,
    /// The encoded [`Uplink`].
    pub payload: Vec<u8>,
}

/// Cuts batches for one vehicle.
#[derive(Debug, Clone)]
pub struct Batcher {
    vin: Vin,
    limits: Limits,
}

impl Batcher {
    /// Batches for `vin` within `limits` (a zero record bound counts as 1, and the byte bound
    /// is kept within the wire limit).
    pub fn new(vin: Vin, limits: Limits) -> Self {
        Self {
            vin,
            limits: Limits {
                max_records: limits.max_records.max(1),
                max_bytes: limits.max_bytes.min(MAX_UPLINK_BYTES),
                max_age: limits.max_age,
            },
        }
    }

    /// The bounds in force.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// The next batch from `waiting` (in sequence order), if it should go at `now`.
    ///
    /// # Errors
    /// The first record alone cannot be encoded; the caller must set it aside.
    pub fn cut(
        &self,
        waiting: &[Waiting],
        now: Duration,
        eager: bool,
    ) -> Result<Option<Cut>, WireError> {
        let Some(first) = waiting.first() else {
            return Ok(None);
        };
        let mut count = 0;
        let mut bytes = HEADER_BYTES;
        let mut full = false;
        let mut urgent = false;
        for w in waiting {
            if count == self.limits.max_records {
                full = true;
                break;
            }
            if count > 0 && bytes + w.size > self.limits.max_bytes {
                full = true;
                break;
            }
            bytes += w.size;
            count += 1;
            urgent |= w.urgent;
        }
        if !full && count == self.limits.max_records {
            // Exactly a full batch waiting.
            full = true;
        }
        if !full && !eager && !urgent && now.saturating_sub(first.seen) < self.limits.max_age {
            return Ok(None);
        }
        loop {
            let payload = self.encode(&waiting[..count])?;
            if payload.len() <= self.limits.max_bytes || count == 1 {
                return Ok(Some(Cut {
                    count,
                    full,
                    payload,
                }));
            }
            // Rare (see the module doc): shrink by an eighth and try again.
            count -= (count / 8).max(1);
            full = true;
        }
    }

    /// When the oldest of `waiting` must go even if the batch is not full.
    pub(crate) fn deadline(&self, waiting: &[Waiting]) -> Option<Duration> {
        let first = waiting.first()?;
        let urgent = waiting
            .iter()
            .take(self.limits.max_records)
            .find(|w| w.urgent)
            .map(|w| w.seen);
        Some(urgent.unwrap_or(first.seen + self.limits.max_age))
    }

    fn encode(&self, records: &[Waiting]) -> Result<Vec<u8>, WireError> {
        Uplink {
            vin: self.vin,
            records: records.iter().map(|w| w.record.clone()).collect(),
        }
        .encode()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use rapport_shared::v1::uplink::{
        DtcEvent, OdometerReading, PromptAction, PromptEvent, PromptKind, SignalSource,
    };
    use rapport_shared::{Dtc, ObdCode, Odometer, Timestamp};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn vin() -> Vin {
        "WVWZZZ1KZ8W012345".parse().unwrap()
    }

    fn odometer(seq: u64, at: u64, m: u64) -> Record {
        Record {
            seq,
            at: Timestamp::from_millis(at),
            body: RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(m),
                source: SignalSource::Obd,
            }),
        }
    }

    fn prompt(seq: u64, text_len: usize) -> Record {
        Record {
            seq,
            at: Timestamp::from_millis(1_700_000_000_000 + seq),
            body: RecordBody::Prompt(PromptEvent {
                prompt: "p".repeat(text_len),
                kind: PromptKind::Maintenance,
                subject: "oil".into(),
                critical: false,
                action: PromptAction::Shown,
            }),
        }
    }

    fn waiting(records: Vec<Record>, seen: Duration) -> Vec<Waiting> {
        records
            .into_iter()
            .map(|r| Waiting::new(r, seen).unwrap())
            .collect()
    }

    fn batcher(max_records: usize, max_bytes: usize, max_age_ms: u64) -> Batcher {
        Batcher::new(
            vin(),
            Limits {
                max_records,
                max_bytes,
                max_age: ms(max_age_ms),
            },
        )
    }

    #[test]
    fn a_full_batch_goes_at_once_and_holds_the_first_records() {
        let w = waiting(
            (1..=12)
                .map(|s| odometer(s, 1_700_000_000_000 + s * 1000, 10_000 + s * 50))
                .collect(),
            Duration::ZERO,
        );
        let cut = batcher(5, 64 * 1024, 2000)
            .cut(&w, Duration::ZERO, false)
            .unwrap()
            .unwrap();
        assert_eq!((cut.count, cut.full), (5, true));
        let up = Uplink::decode(&cut.payload).unwrap();
        assert_eq!(up.vin, vin());
        assert_eq!(
            up.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(up.records[4], w[4].record);
    }

    #[test]
    fn a_partial_batch_waits_for_its_age_unless_eager() {
        let b = batcher(10, 64 * 1024, 2000);
        let w = waiting(vec![odometer(7, 1, 2), odometer(9, 2, 3)], ms(1000));
        assert_eq!(b.cut(&w, ms(2999), false).unwrap(), None);
        assert_eq!(b.deadline(&w), Some(ms(3000)));
        let cut = b.cut(&w, ms(3000), false).unwrap().unwrap();
        assert_eq!((cut.count, cut.full), (2, false));
        let eager = b.cut(&w, ms(1000), true).unwrap().unwrap();
        assert_eq!(eager.payload, cut.payload);
        assert_eq!(b.cut(&[], ms(1000), true).unwrap(), None);
    }

    fn fault(seq: u64, severity: Severity) -> Record {
        Record {
            seq,
            at: Timestamp::from_millis(1_700_000_000_000 + seq),
            body: RecordBody::DtcAppeared(DtcEvent {
                dtc: Dtc::Obd(ObdCode::new(0x0300)),
                severity,
                ecu: 0x7E8,
                class: None,
            }),
        }
    }

    #[test]
    fn a_critical_fault_or_prompt_takes_its_batch_at_once() {
        let b = batcher(10, 64 * 1024, 2000);
        // A warning waits like any record.
        let w = waiting(
            vec![odometer(1, 1, 2), fault(2, Severity::Warning)],
            ms(1000),
        );
        assert_eq!(b.cut(&w, ms(1000), false).unwrap(), None);
        assert_eq!(b.deadline(&w), Some(ms(3000)));
        // A critical one behind an odometer reading read earlier: the deadline is when the
        // critical record arrived, and the cut takes both at once.
        let mut w = waiting(vec![odometer(1, 1, 2)], ms(1000));
        w.extend(waiting(vec![fault(2, Severity::Critical)], ms(1500)));
        assert_eq!(b.deadline(&w), Some(ms(1500)));
        let cut = b.cut(&w, ms(1500), false).unwrap().unwrap();
        assert_eq!((cut.count, cut.full), (2, false));
        // A critical prompt (shown or answered) too; a non-critical one waits.
        let mut critical = prompt(3, 10);
        if let RecordBody::Prompt(p) = &mut critical.body {
            p.critical = true;
        }
        assert!(is_urgent(&critical));
        assert!(!is_urgent(&prompt(4, 10)));
        let w = waiting(vec![critical], ms(0));
        assert!(b.cut(&w, ms(0), false).unwrap().is_some());
    }

    #[test]
    fn bytes_bound_the_batch_and_a_big_record_goes_alone() {
        // Prompts of ~1 KiB: a 4 KiB bound holds three.
        let w = waiting((1..=6).map(|s| prompt(s, 1000)).collect(), Duration::ZERO);
        let b = batcher(100, 4096, 0);
        let cut = b.cut(&w, Duration::ZERO, false).unwrap().unwrap();
        assert!(
            cut.full && cut.payload.len() <= 4096,
            "{} bytes",
            cut.payload.len()
        );
        assert_eq!(cut.count, 3);
        // One record larger than the bound: alone.
        let big = waiting(vec![prompt(1, 6000), prompt(2, 10)], Duration::ZERO);
        let cut = b.cut(&big, Duration::ZERO, false).unwrap().unwrap();
        assert_eq!((cut.count, cut.full), (1, true));
        assert!(cut.payload.len() > 4096);
    }

    #[test]
    fn a_clock_jump_backwards_is_caught_by_the_encoded_size() {
        // Stand-alone, a record at t≈0 codes its time in 1 byte; after one at 2023 its
        // (negative) delta takes 6: the estimate is short, the encoded check is not.
        let mut records = Vec::new();
        for s in 0..400u64 {
            let at = if s % 2 == 0 { 1_700_000_000_000 } else { 1 };
            records.push(odometer(s + 1, at, 0));
        }
        let w = waiting(records, Duration::ZERO);
        let estimate: usize = HEADER_BYTES + w.iter().map(|x| x.size).sum::<usize>();
        let max = estimate - 10;
        let cut = batcher(1000, max, 0)
            .cut(&w, Duration::ZERO, false)
            .unwrap()
            .unwrap();
        assert!(cut.payload.len() <= max);
        assert!(cut.full && cut.count < 400);
    }

    fn arb_record_body() -> impl Strategy<Value = RecordBody> {
        prop_oneof![
            (0u64..10_000_000).prop_map(|m| RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(m),
                source: SignalSource::Dbc,
            })),
            (0usize..3000).prop_map(|n| prompt(1, n).body),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn batches_partition_the_waiting_records_within_bounds(
            bodies in prop::collection::vec((arb_record_body(), 0u64..4_000_000_000_000, 1u64..5), 1..300),
            max_records in 1usize..200,
            max_bytes in 1024usize..20_000,
        ) {
            let mut seq = 0;
            let records: Vec<Record> = bodies.into_iter().map(|(body, at, gap)| {
                seq += gap;
                Record { seq, at: Timestamp::from_millis(at), body }
            }).collect();
            let b = batcher(max_records, max_bytes, 0);
            let mut w = waiting(records.clone(), Duration::ZERO);
            let mut out = Vec::new();
            while let Some(cut) = b.cut(&w, Duration::ZERO, false).unwrap() {
                prop_assert!(cut.count >= 1 && cut.count <= max_records);
                prop_assert!(cut.payload.len() <= max_bytes || cut.count == 1);
                let up = Uplink::decode(&cut.payload).unwrap();
                prop_assert_eq!(up.records.len(), cut.count);
                out.extend(up.records);
                w.drain(..cut.count);
            }
            prop_assert!(w.is_empty());
            prop_assert_eq!(out, records);
        }
    }
}
