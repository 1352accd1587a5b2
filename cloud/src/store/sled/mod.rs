//! The sled backend of the store port: vehicle states, the per-vehicle record log and every
//! fleet and outbox key in one sled tree, the fleet's layers, open alerts and time indexes in
//! memory ([`fleet`]), rebuilt at start.
//!
//! Owns the key layout's use, the atomicity of one envelope's effects and durability
//! (flush). Does not own what the values mean ([`crate::vehicle`], [`crate::ingest`], the
//! fleet's core).
//!
//! # Keys (tree `ingest`, layout in [`crate::keys`])
//! - `V` vin → [`VehicleState`] (version byte, postcard), applied-seq set included;
//! - `R` vin seq → the record as [`rapport_shared::Record::encode`] stores it (version byte
//!   first): an append-only log in (vin, seq) order;
//! - `Mschema` → [`SCHEMA`];
//! - the fleet's keys ([`crate::fleet::store`]) and the outbox's ([`crate::webhook::outbox`]).
//!
//! One envelope's state, log entries and fleet effects go in ONE `apply_batch` on one tree,
//! so the applied set and the effects it guards are written together or not at all. sled
//! also flushes in the background every 500 ms, but only [`SledStore::flush`] promises
//! durability: the ingest acks a message to the broker only after the flush that covers it
//! (see [`crate::ingest::worker`]). A crash before that flush may lose applied-but-unacked
//! envelopes; the broker redelivers them and they apply again, once.

mod audit;
mod erase;
mod fleet;
mod port;
mod retention;

pub(crate) use fleet::ALERT_COUNTER;

use std::path::Path;

use rapport_shared::{Record, Vin};

use std::sync::Mutex;

use crate::fleet::store::FleetStore;
use crate::ingest::Plan;
use crate::keys::{self, SCHEMA as SCHEMA_KEY, VEHICLE};
use crate::store::StoreError;
use crate::vehicle::VehicleState;
use crate::webhook::outbox::Outbox;

/// The store's layout version.
pub const SCHEMA: u8 = 1;

/// The unit of atomic writes across the cloud's parts (the ingest's state and log, the
/// fleet's effects, the webhooks they enqueue): filled by each, applied once.
pub type Batch = sled::Batch;

/// The sled store.
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    keys: FleetStore,
    outbox: Outbox,
    /// The fleet's memory, and the lock every decision and its batch are taken under.
    fleet: Mutex<fleet::Memory>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, waiting out the file lock a just-dropped store
    /// of this process may still hold ([`rapport_kit::sled_store::open`]).
    ///
    /// # Errors
    /// [`StoreError::Sled`] if sled cannot open it (locked by another process, I/O),
    /// [`StoreError::Schema`] if a newer build wrote it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(
            dir,
            u64::from(crate::config::DEFAULT_SLED_CACHE_MB) * 1024 * 1024,
        )
    }

    /// [`SledStore::open`] with sled's page cache at `cache_bytes` (`[store] sled_cache_mb`).
    ///
    /// # Errors
    /// As [`SledStore::open`].
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = rapport_kit::sled_store::open(
            &sled::Config::new()
                .path(dir)
                .mode(sled::Mode::HighThroughput)
                .cache_capacity(cache_bytes),
        )?;
        let tree = db.open_tree("ingest")?;
        match tree.get(SCHEMA_KEY)? {
            None => {
                tree.insert(SCHEMA_KEY, &[SCHEMA])?;
                db.flush()?;
            }
            Some(v) if v.as_ref() == [SCHEMA] => {}
            Some(v) => {
                return Err(StoreError::Schema {
                    found: u32::from(v.first().copied().unwrap_or(0)),
                    known: u32::from(SCHEMA),
                });
            }
        }
        Ok(Self {
            keys: FleetStore::new(tree.clone(), db.clone()),
            outbox: Outbox::new(tree.clone()),
            fleet: Mutex::new(fleet::Memory::default()),
            db,
            tree,
        })
    }

    /// The database (ids).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The tree every part of the cloud keeps its keys in (each under its own prefixes,
    /// so one batch can write the ingest's, the fleet's and the webhook outbox's together).
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The vehicle's state, if it was ever seen.
    ///
    /// # Errors
    /// [`StoreError::Sled`], or [`StoreError::Corrupt`] if the value cannot be read.
    pub fn vehicle(&self, vin: &Vin) -> Result<Option<VehicleState>, StoreError> {
        match self.tree.get(keys::vehicle(vin))? {
            None => Ok(None),
            Some(bytes) => VehicleState::from_bytes(&bytes)
                .map(Some)
                .map_err(|reason| StoreError::Corrupt {
                    what: format!("vehicle {vin}"),
                    reason,
                }),
        }
    }

    /// Writes one envelope's effects (state and log entries) in one atomic batch. Not
    /// durable until [`SledStore::flush`].
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn commit(&self, plan: &Plan) -> Result<(), StoreError> {
        self.commit_with(plan, Batch::default())
    }

    /// [`SledStore::commit`], with other parts' writes (`batch`, already filled: the fleet's
    /// effects of the same records) in the same atomic batch.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn commit_with(&self, plan: &Plan, mut batch: Batch) -> Result<(), StoreError> {
        let state = plan
            .state
            .to_bytes()
            .map_err(|reason| StoreError::Corrupt {
                what: format!("vehicle {} (encoding)", plan.vin),
                reason,
            })?;
        batch.insert(&keys::vehicle(&plan.vin), state);
        // The log keeps when the cloud received each record after its bytes (retention
        // judges by it, never by the car's clock): `logged`.
        let received = plan.state.last_seen.as_millis().to_be_bytes();
        for (seq, bytes) in &plan.log {
            let mut value = Vec::with_capacity(bytes.len() + received.len());
            value.extend_from_slice(bytes);
            value.extend_from_slice(&received);
            batch.insert(&keys::record(&plan.vin, *seq), value);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Applies a batch other parts filled (the fleet's effects of a tick or an API change),
    /// atomically. Not durable until [`SledStore::flush`].
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        Ok(self.tree.apply_batch(batch)?)
    }

    /// Makes every earlier write durable (fsync); returns the bytes flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn flush(&self) -> Result<usize, StoreError> {
        Ok(self.db.flush()?)
    }

    /// Vehicles in the store (a scan: call at start, then count new ones).
    pub fn count_vehicles(&self) -> u64 {
        self.tree.scan_prefix([VEHICLE]).keys().count() as u64
    }

    /// Up to `limit` logged records of a vehicle with seq above `after`, in seq order.
    ///
    /// # Errors
    /// [`StoreError::Sled`], or [`StoreError::Corrupt`] for a record that does not decode.
    pub fn records(&self, vin: &Vin, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let start = keys::record(vin, after.saturating_add(1));
        let end = keys::record(vin, u64::MAX);
        let mut out = Vec::new();
        if after == u64::MAX {
            return Ok(out);
        }
        for item in self.tree.range(start..=end).take(limit) {
            let (key, value) = item?;
            let record = Record::decode(&value).map_err(|e| StoreError::Corrupt {
                what: format!("record {vin} key {key:?}"),
                reason: e.to_string(),
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// A vehicle's logged records, newest first (by seq), from below seq `below` (exclusive;
    /// `None`: from the newest). Lazy: the caller stops reading when it has enough.
    pub fn records_newest_first(
        &self,
        vin: &Vin,
        below: Option<u64>,
    ) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        let start = keys::record(vin, 0);
        let range = match below {
            Some(seq) => self.tree.range(start..keys::record(vin, seq)),
            None => self.tree.range(start..=keys::record(vin, u64::MAX)),
        };
        let vin = *vin;
        range.rev().map(move |item| {
            let (key, value) = item?;
            Record::decode(&value).map_err(|e| StoreError::Corrupt {
                what: format!("record {vin} key {key:?}"),
                reason: e.to_string(),
            })
        })
    }

    /// A fresh downlink message id: unique across restarts and crashes (sled persists its id
    /// generator and skips ahead on recovery), never 0.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn next_downlink_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?.saturating_add(1))
    }

    /// The fleet's typed keys.
    pub fn keys(&self) -> &FleetStore {
        &self.keys
    }

    /// Bytes the store takes on disk.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rapport_shared::{Odometer, OdometerReading, RecordBody, SignalSource, Timestamp, Uplink};

    use super::*;
    use crate::ingest::plan;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn batch(vin: Vin, seqs: impl IntoIterator<Item = u64>) -> Uplink {
        Uplink {
            vin,
            records: seqs
                .into_iter()
                .map(|seq| Record {
                    seq,
                    at: NOW,
                    body: RecordBody::Odometer(OdometerReading {
                        odometer: Odometer::from_meters(seq),
                        source: SignalSource::Obd,
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn commit_reopen_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let v: Vin = "WP0ZZZ99ZTS392124".parse().unwrap();
        let w: Vin = "WVWZZZ1JZXW000001".parse().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert!(store.vehicle(&v).unwrap().is_none());
            let p = plan(&batch(v, 1..=5), None, NOW);
            store.commit(&p).unwrap();
            let p = plan(&batch(w, 1..=2), None, NOW);
            store.commit(&p).unwrap();
            let p = plan(&batch(v, 7..=8), store.vehicle(&v).unwrap(), NOW);
            store.commit(&p).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.count_vehicles(), 2);
        let state = store.vehicle(&v).unwrap().unwrap();
        assert_eq!((state.records(), state.last_seq()), (7, 8));
        let seqs: Vec<u64> = store
            .records(&v, 0, 100)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 7, 8]);
        let after: Vec<u64> = store
            .records(&v, 4, 2)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(after, vec![5, 7]);
        assert_eq!(store.records(&w, 0, 100).unwrap().len(), 2);
        assert!(store.records(&v, u64::MAX, 10).unwrap().is_empty());
    }

    #[test]
    fn downlink_ids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let store = SledStore::open(dir.path()).unwrap();
            for _ in 0..10 {
                let id = store.next_downlink_id().unwrap();
                assert!(id > 0);
                assert!(seen.insert(id), "id {id} given twice");
            }
            // sled persists its id generator ahead of use and skips ahead on recovery.
        }
    }

    /// sled lets go of its file lock a little after a drop: a reopen at once waits it out
    /// rather than failing (the flaky "could not acquire lock" of a loaded machine).
    #[test]
    fn reopens_at_once_after_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..10 {
            let store = SledStore::open(dir.path()).unwrap();
            store.flush().unwrap();
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.tree.insert(SCHEMA_KEY, &[SCHEMA + 1]).unwrap();
            store.flush().unwrap();
        }
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::Schema { found, .. }) if found == u32::from(SCHEMA + 1)
        ));
    }
}

/// A logged record's value: the record's bytes ([`Record::encode`]), then, since the
/// retention judged by receipt, the cloud's receive time (unix ms, 8 bytes big-endian). The
/// record decodes from the whole value (the codec reads one record and ignores what follows);
/// this tells the two apart by encoding the record again.
pub(crate) mod logged {
    use rapport_shared::{Record, Timestamp};

    /// The record's own bytes and the receive time, if the value has one.
    pub(crate) fn split(value: &[u8]) -> Option<(Record, &[u8], Option<Timestamp>)> {
        let record = Record::decode(value).ok()?;
        let len = record.encode().ok()?.len();
        let (bytes, rest) = value.split_at_checked(len)?;
        let received = <[u8; 8]>::try_from(rest)
            .ok()
            .map(|b| Timestamp::from_millis(u64::from_be_bytes(b)));
        Some((record, bytes, received))
    }
}
