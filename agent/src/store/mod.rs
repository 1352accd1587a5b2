//! The agent's store: [`Memory`] and the outbox on disk in sled, written one atomic batch per
//! step of the rules.
//!
//! Owns: opening (schema check and migrations, loading), committing a step's [`Changes`] with
//! its outbox records, sequence numbers, the outbox bound, and write accounting. Does not own:
//! what to remember ([`crate::memory`]), when to commit (the agent loop), or sending the outbox
//! (the sync) — the sync reads with [`Store::outbox_from`] and deletes acked records with
//! [`Store::outbox_remove`].
//!
//! Durability. A commit is one `sled::Batch`: after a crash either all of it is on disk or none
//! of it (sled seals a batch in its log). It reaches the disk when sled next flushes: at once
//! for a `durable` commit (an fsync before `commit` returns: driver actions, services), else
//! within [`StoreOptions::flush_every_ms`] by sled's background flusher. So a power loss or
//! `kill -9` loses at most the non-durable commits of that last interval — latest odometer,
//! show counts, readings in the outbox — and always whole commits, oldest kept: a later commit
//! never survives without an earlier one. An acked record's removal may be lost the same way;
//! it is then sent again and the cloud drops it by sequence number.
//!
//! Sequence numbers start at 1 and only grow: the next one is persisted (`m/next_seq`) in the
//! same batch as the records it numbers, so a seq is never reused, even after removal or a crash.
//!
//! Outbox values are `Record::encode` bytes, the wire codec's single-record form: versioned
//! by its first byte, bounded when decoded, and tolerant of record kinds a newer build wrote
//! (`RecordBody::Unknown`), so the outbox keeps the wire's compatibility rules for free — and the
//! sync can publish what it reads without re-deriving anything.

mod health;
mod keys;
mod load;
pub(crate) mod migrate;
mod outbox;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rapport_shared::Timestamp;
use rapport_shared::v1::uplink::Record;
use serde::Serialize;
use tracing::warn;

use crate::config::defaults;
use crate::memory::{Changes, Memory};
pub(crate) use outbox::bound_pending;
use outbox::{Class, Index};

pub use health::{Fault, Health, Transition};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed (I/O, or a corrupt file it could not recover).
    #[error("store: {context}: {source}")]
    Sled {
        /// What was being done.
        context: &'static str,
        /// The cause.
        source: sled::Error,
    },
    /// Reading the store's directory.
    #[error("store: {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store was written by a newer agent; this build refuses to touch it.
    #[error(
        "store schema version {found} is newer than this build supports ({supported}); \
         nothing was changed: run the newer agent or move the store aside"
    )]
    SchemaTooNew {
        /// The version on disk.
        found: u64,
        /// The newest this build knows.
        supported: u64,
    },
    /// A value the store cannot do without is unreadable.
    #[error("store key {key}: {reason}")]
    Corrupt {
        /// The key, as `keys::Show` renders it (`o/42`, `p/<id>`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The store was closed after a write error and is not open again yet (nothing written).
    #[error("store: closed after a write error in {0}; not reopened yet")]
    Closed(PathBuf),
    /// A migration step refused.
    #[error("store migration from schema {from}: {reason}")]
    Migration {
        /// The version being migrated from.
        from: u64,
        /// Why.
        reason: String,
    },
    /// A value could not be encoded (nothing of the commit was written).
    #[error("store: cannot encode {key}: {reason}")]
    Encode {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// `Changes` that do not fit the `Memory` passed with them (a caller's bug; nothing written).
    #[error("store: changes do not match memory: {0}")]
    InvalidChanges(String),
}

impl StoreError {
    /// Whether the file system is full (`ENOSPC`): sled reports it as an I/O error of kind
    /// `StorageFull`, and keeps reporting it until the handle is reopened.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Sled {
                source: sled::Error::Io(e),
                ..
            }
            | Self::Io { source: e, .. }
                if e.kind() == std::io::ErrorKind::StorageFull =>
            {
                Fault::Full
            }
            _ => Fault::Failed,
        }
    }
}

/// Maps a sled error with what was being done.
fn sled_error(context: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |source| StoreError::Sled { context, source }
}

/// How to open the store (built from the config by `crate::settings::store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most records the outbox keeps (`[outbox].max_records`); see [`Store::commit`].
    pub max_outbox: u64,
    /// sled's background flush (fsync) interval, ms; `None`: only durable commits and
    /// [`Store::flush`] reach the disk (and sled's flush when the store is dropped).
    pub flush_every_ms: Option<u64>,
    /// sled's page cache, bytes (`[store].cache_kb`): what of the store sled keeps in memory.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_outbox: defaults::OUTBOX_MAX_RECORDS,
            flush_every_ms: Some(500),
            cache_bytes: u64::from(defaults::STORE_CACHE_KB) * 1024,
        }
    }
}

/// What a commit did to the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The sequence numbers given to `changes.outbox`, in its order.
    pub seqs: Vec<u64>,
    /// Records dropped to keep the outbox within its bound, in the order chosen (may include
    /// some of `seqs` if the outbox is full of more valuable records).
    pub(crate) dropped: Vec<u64>,
}

/// Writes through one store handle since it was opened (open's own writes not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Logical bytes: key + value of each insert, key of each removal.
    pub bytes_written: u64,
    /// Keys inserted or removed.
    pub keys_written: u64,
    /// Batches applied (commits that wrote something, removals, drop-counter resets).
    pub(crate) batches: u64,
    /// Explicit flushes (durable commits and [`Store::flush`]); not sled's background ones.
    pub flushes: u64,
}

/// What the store keeps in memory beside sled, under one lock (commits are serialized).
#[derive(Debug)]
struct Inner {
    next_seq: u64,
    dropped: u64,
    /// `dropped` grew without an eviction in a commit (records dropped from memory while the
    /// store was failing): the next commit writes the counter.
    dropped_dirty: bool,
    service_next: u64,
    outbox: Index,
    stats: StoreStats,
    /// The clock floor on disk, and one waiting to ride along with the next write.
    clock_floor: Option<u64>,
    floor_staged: Option<u64>,
}

/// The agent's store: one sled database.
#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    dir: PathBuf,
    options: StoreOptions,
    /// The handle was closed after a write error ([`Store::reopen`]); `db` is a placeholder.
    closed: bool,
    max_outbox: u64,
    #[cfg(test)]
    set_aside: u64,
    inner: Mutex<Inner>,
}

/// A batch under construction, with its logical size.
#[derive(Default)]
struct Writes {
    batch: sled::Batch,
    bytes: u64,
    keys: u64,
}

impl Writes {
    fn raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += (key.len() + value.len()) as u64;
        self.keys += 1;
        self.batch.insert(key, value);
    }

    fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(value).map_err(|e| StoreError::Encode {
            key: keys::Show(&key).to_string(),
            reason: e.to_string(),
        })?;
        self.raw(key, bytes);
        Ok(())
    }

    fn del(&mut self, key: Vec<u8>) {
        self.bytes += key.len() as u64;
        self.keys += 1;
        self.batch.remove(key);
    }

    /// Writes `value` if present, else removes the key.
    fn put_or_del<T: Serialize>(
        &mut self,
        key: Vec<u8>,
        value: Option<&T>,
    ) -> Result<(), StoreError> {
        match value {
            Some(v) => self.put(key, v),
            None => {
                self.del(key);
                Ok(())
            }
        }
    }
}

impl Store {
    /// Opens (creating) the store at `dir`, checks the schema version (migrating an older
    /// store), and loads what it remembers. Values that do not decode are set aside (see
    /// [`Store::set_aside_on_open`] and the `load` module's policy) so the car still boots.
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] for a store written by a newer agent (left untouched),
    /// [`StoreError::Migration`], [`StoreError::Corrupt`] for an unreadable meta value, sled
    /// errors (including another process holding the store).
    pub fn open(dir: &Path, options: StoreOptions) -> Result<(Self, Memory), StoreError> {
        let db = open_db(dir, &options)?;
        migrate::run(&db, migrate::MIGRATIONS)?;
        let loaded = load::load(&db)?;
        let set_aside = loaded.set_aside.len() as u64;
        if set_aside > 0 {
            let mut batch = sled::Batch::default();
            for (key, value) in &loaded.set_aside {
                batch.insert(keys::quarantine(key), value.clone());
                batch.remove(key.clone());
            }
            batch.insert(keys::DROPPED, loaded.dropped.to_be_bytes().to_vec());
            db.apply_batch(batch)
                .map_err(sled_error("setting corrupt values aside"))?;
            db.flush().map_err(sled_error("flushing"))?;
            warn!(count = set_aside, "store values set aside at open");
        }
        let store = Self {
            db,
            dir: dir.to_path_buf(),
            max_outbox: options.max_outbox,
            options,
            closed: false,
            #[cfg(test)]
            set_aside,
            inner: Mutex::new(Inner {
                next_seq: loaded.next_seq,
                dropped: loaded.dropped,
                dropped_dirty: false,
                service_next: loaded.service_next,
                outbox: loaded.outbox,
                stats: StoreStats::default(),
                clock_floor: loaded.clock_floor,
                floor_staged: None,
            }),
        };
        Ok((store, loaded.memory))
    }

    /// Closes the handle and opens the store again from disk — after a write error, which
    /// sled 0.34 keeps returning for the life of a handle even once space is back. What the
    /// disk has replaces the in-memory index (commits that did not reach it are the caller's
    /// to write again); sequence numbers never go back (the larger of memory's and the disk's
    /// next one), nor does the drop counter. The memory read from disk is not used: the
    /// caller's is newer.
    ///
    /// If the open fails the store stays closed: writes answer [`StoreError::Closed`], reads
    /// of the outbox find nothing, until a later `reopen` succeeds.
    ///
    /// # Errors
    /// As [`Store::open`] (with the disk still full: sled's `StorageFull` I/O error).
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        if !self.closed {
            // sled locks its file: the failed handle must go before the new one opens. A
            // temporary database stands in meanwhile (nothing is written to it: `closed`).
            let placeholder = sled::Config::new()
                .temporary(true)
                .open()
                .map_err(sled_error(
                    "opening a placeholder while the store is closed",
                ))?;
            drop(std::mem::replace(&mut self.db, placeholder));
            self.closed = true;
        }
        let db = open_db(&self.dir, &self.options)?;
        migrate::run(&db, migrate::MIGRATIONS)?;
        let loaded = load::load(&db)?;
        let mut inner = self.lock();
        inner.next_seq = inner.next_seq.max(loaded.next_seq);
        inner.dropped_dirty |= inner.dropped > loaded.dropped;
        inner.dropped = inner.dropped.max(loaded.dropped);
        inner.service_next = loaded.service_next;
        inner.outbox = loaded.outbox;
        drop(inner);
        self.db = db;
        self.closed = false;
        Ok(())
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed {
            Err(StoreError::Closed(self.dir.clone()))
        } else {
            Ok(())
        }
    }

    /// Counts `n` records dropped outside the store (from memory, while it was failing); the
    /// next commit writes the counter and the next heartbeat reports them.
    pub(crate) fn count_dropped(&self, n: u64) {
        if n > 0 {
            let mut inner = self.lock();
            inner.dropped += n;
            inner.dropped_dirty = true;
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The most records the outbox keeps.
    pub(crate) fn max_outbox(&self) -> u64 {
        self.max_outbox
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics on purpose; a panic inside sled mid-commit could leave the outbox
        // index ahead of the disk, but release builds abort on panic and the next start
        // rebuilds the index from disk. Tests and benches unwind: carry on with what is there.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes exactly what `changes` names, reading values from `memory` (keyed entities
    /// present in `memory` are written, absent ones deleted; `new_services` are the last of
    /// `memory.services`), plus `changes.outbox` with the next sequence numbers, all in ONE
    /// atomic sled batch. If the outbox would pass `max_outbox`, the least valuable records go
    /// first (heartbeats; readings but the newest of each kind; the newest readings; events
    /// last, each oldest first), counted in the persisted drop counter in the same batch. If
    /// `changes.durable`, fsyncs before returning; otherwise the batch reaches the disk with
    /// sled's next background flush (see the module doc for what a power loss may lose).
    ///
    /// # Errors
    /// [`StoreError::InvalidChanges`] or [`StoreError::Encode`] with nothing written; sled
    /// errors (after one, treat the store as failed: restart the agent).
    pub fn commit(&self, memory: &Memory, changes: &Changes) -> Result<Committed, StoreError> {
        self.check_open()?;
        let mut inner = self.lock();
        let mut w = Writes::default();

        if changes.vehicle {
            w.put(keys::VEHICLE.to_vec(), &memory.vehicle)?;
        }
        for code in &changes.dtcs {
            w.put_or_del(keys::dtc(code), memory.dtcs.get(code))?;
        }
        if changes.wiped_services {
            for i in 0..inner.service_next {
                w.del(keys::service(i));
            }
        }
        let n_services = changes.new_services;
        let Some(first) = memory.services.len().checked_sub(n_services) else {
            return Err(StoreError::InvalidChanges(format!(
                "{n_services} new services but memory holds {}",
                memory.services.len()
            )));
        };
        for (i, service) in (inner.service_next..).zip(&memory.services[first..]) {
            w.put(keys::service(i), service)?;
        }
        for id in &changes.items {
            w.put_or_del(keys::item(id), memory.items.get(id))?;
        }
        for id in &changes.prompts {
            w.put_or_del(keys::prompt(id), memory.prompts.get(id))?;
        }
        for id in &changes.campaigns {
            w.put_or_del(keys::campaign(id), memory.campaigns.get(id))?;
        }
        for id in &changes.service_cases {
            w.put_or_del(keys::service_case(*id), memory.service_cases.get(id))?;
        }
        if changes.settings {
            w.put(keys::SETTINGS.to_vec(), &memory.settings)?;
        }
        if changes.shows {
            w.put(keys::SHOWS.to_vec(), &memory.shows)?;
        }
        if changes.schedule {
            w.put_or_del(keys::SCHEDULE.to_vec(), memory.schedule.as_ref())?;
        }
        for id in &changes.downlinks {
            if memory.applied_downlinks.contains(id) {
                w.raw(keys::downlink(*id), Vec::new());
            } else {
                w.del(keys::downlink(*id));
            }
        }

        // The outbox: encode first, so a record that cannot be encoded writes nothing.
        let first_seq = inner.next_seq;
        let mut new = Vec::with_capacity(changes.outbox.len());
        for (seq, (at, body)) in (first_seq..).zip(&changes.outbox) {
            let record = Record {
                seq,
                at: *at,
                body: body.clone(),
            };
            let bytes = record.encode().map_err(|e| StoreError::Encode {
                key: keys::Show(&keys::outbox(seq)).to_string(),
                reason: e.to_string(),
            })?;
            new.push((seq, Class::of(body), bytes));
        }
        let next_seq = first_seq + new.len() as u64;
        let excess = (inner.outbox.len() + new.len() as u64).saturating_sub(self.max_outbox);
        for (seq, class, _) in &new {
            inner.outbox.insert(*seq, *class);
        }
        let evicted = inner.outbox.evict(excess);
        for (seq, _) in &evicted {
            if *seq < first_seq {
                w.del(keys::outbox(*seq));
            }
        }
        let seqs: Vec<u64> = new.iter().map(|(seq, _, _)| *seq).collect();
        let evicted_new: BTreeSet<u64> = evicted
            .iter()
            .map(|(seq, _)| *seq)
            .filter(|seq| *seq >= first_seq)
            .collect();
        for (seq, _, bytes) in new {
            if !evicted_new.contains(&seq) {
                w.raw(keys::outbox(seq), bytes);
            }
        }
        if next_seq != first_seq {
            w.raw(keys::NEXT_SEQ.to_vec(), next_seq.to_be_bytes().to_vec());
        }
        let dropped = inner.dropped + evicted.len() as u64;
        if !evicted.is_empty() || inner.dropped_dirty {
            w.raw(keys::DROPPED.to_vec(), dropped.to_be_bytes().to_vec());
        }

        // The clock floor rides along with a write that happens anyway (never a write of its
        // own: flash wear), see `crate::clock_guard`.
        let floor = inner
            .floor_staged
            .filter(|f| w.keys > 0 && inner.clock_floor.is_none_or(|d| d < *f));
        if let Some(f) = floor {
            w.raw(keys::CLOCK_FLOOR.to_vec(), f.to_be_bytes().to_vec());
        }
        if w.keys > 0 {
            if let Err(e) = self.db.apply_batch(w.batch) {
                // Undo the index: the new records are not stored, the evicted ones still are.
                for seq in &seqs {
                    inner.outbox.remove(*seq);
                }
                for (seq, class) in &evicted {
                    if *seq < first_seq {
                        inner.outbox.insert(*seq, *class);
                    }
                }
                return Err(sled_error("committing")(e));
            }
            inner.stats.bytes_written += w.bytes;
            inner.stats.keys_written += w.keys;
            inner.stats.batches += 1;
        }
        inner.next_seq = next_seq;
        inner.dropped = dropped;
        inner.dropped_dirty = false;
        if floor.is_some() {
            inner.clock_floor = floor;
        }
        inner.service_next += n_services as u64;
        if !evicted.is_empty() {
            warn!(
                count = evicted.len(),
                max = self.max_outbox,
                "outbox full: records dropped"
            );
        }
        let committed = Committed {
            seqs,
            dropped: evicted.into_iter().map(|(seq, _)| seq).collect(),
        };
        if changes.durable {
            inner.stats.flushes += 1;
            // The batch is applied: other commits may go on while this one waits for the disk.
            drop(inner);
            self.db.flush().map_err(sled_error("flushing"))?;
        }
        Ok(committed)
    }

    /// The latest trusted wall time this store has kept ([`crate::clock_guard`]).
    pub fn clock_floor(&self) -> Option<Timestamp> {
        self.lock().clock_floor.map(Timestamp::from_millis)
    }

    /// Keeps `floor` as the latest trusted wall time with the next write that writes anything.
    pub(crate) fn stage_clock_floor(&self, floor: Timestamp) {
        self.lock().floor_staged = Some(floor.as_millis());
    }

    /// Flushes (fsyncs) everything committed so far.
    ///
    /// # Errors
    /// A sled error.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.check_open()?;
        self.lock().stats.flushes += 1;
        self.db.flush().map_err(sled_error("flushing"))?;
        Ok(())
    }

    /// Records in the outbox.
    pub fn outbox_len(&self) -> u64 {
        self.lock().outbox.len()
    }

    /// Up to `limit` records with `seq >= from`, in sequence order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the key of a record that no longer decodes; sled errors.
    pub fn outbox_from(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        if self.closed {
            return Ok(out);
        }
        for entry in self
            .db
            .range(keys::outbox(from)..=keys::outbox(u64::MAX))
            .take(limit)
        {
            let (key, value) = entry.map_err(sled_error("reading the outbox"))?;
            let record = Record::decode(&value).map_err(|e| StoreError::Corrupt {
                key: keys::Show(&key).to_string(),
                reason: e.to_string(),
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// Removes the records with these sequence numbers (acked by the broker); seqs not in the
    /// outbox are ignored. Not flushed: see the module doc.
    ///
    /// # Errors
    /// A sled error (nothing removed).
    pub fn outbox_remove(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.check_open()?;
        let mut inner = self.lock();
        let mut w = Writes::default();
        let mut present = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if inner.outbox.remove(*seq).is_some() {
                present.push(*seq);
                w.del(keys::outbox(*seq));
            }
        }
        if w.keys == 0 {
            return Ok(());
        }
        if let Err(e) = self.db.apply_batch(w.batch) {
            // Nothing was removed on disk: put the index back. The class is only used for
            // eviction order, so recover it from the stored record.
            for seq in present {
                let class = self
                    .db
                    .get(keys::outbox(seq))
                    .ok()
                    .flatten()
                    .and_then(|v| Record::decode(&v).ok())
                    .map_or(Class::Event, |r| Class::of(&r.body));
                inner.outbox.insert(seq, class);
            }
            return Err(sled_error("removing acked records")(e));
        }
        inner.stats.bytes_written += w.bytes;
        inner.stats.keys_written += w.keys;
        inner.stats.batches += 1;
        Ok(())
    }

    /// Records dropped because the outbox was full (or unreadable at open) since the counter
    /// was last taken; taking resets it to zero on disk (not flushed: a crash before the next
    /// flush reports the same drops again, never fewer).
    ///
    /// # Errors
    /// A sled error (the counter is then unchanged).
    pub(crate) fn take_dropped(&self) -> Result<u64, StoreError> {
        self.check_open()?;
        let mut inner = self.lock();
        let n = inner.dropped;
        if n == 0 {
            return Ok(0);
        }
        let mut w = Writes::default();
        w.raw(keys::DROPPED.to_vec(), 0u64.to_be_bytes().to_vec());
        self.db
            .apply_batch(w.batch)
            .map_err(sled_error("resetting the drop counter"))?;
        inner.dropped = 0;
        inner.stats.bytes_written += w.bytes;
        inner.stats.keys_written += w.keys;
        inner.stats.batches += 1;
        Ok(n)
    }

    /// The sequence number the next outbox record will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Writes through this handle since open.
    pub fn stats(&self) -> StoreStats {
        self.lock().stats
    }

    /// Values that did not decode at open and were moved to `q/` (0 on a healthy store).
    #[cfg(test)]
    pub(crate) fn set_aside_on_open(&self) -> u64 {
        self.set_aside
    }

    /// The sum of the sizes of the files under the store's directory.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file or folder that could not be read.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        dir_size(&self.dir)
    }
}

/// Checks that the store's directory can be written (made if missing): a probe file is
/// created, synced and removed. For `run` and `check-config`, so a read-only or missing data
/// directory is one clear error naming it, before anything else starts.
///
/// # Errors
/// [`StoreError::Io`] naming the directory (or the probe) and the cause.
pub fn check_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let probe = dir.join(".rapport-write-check");
    std::fs::File::create(&probe)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))?;
    std::fs::remove_file(&probe).map_err(io(&probe))
}

/// Opens sled with the store's options, waiting out the lock a just-dropped handle may still
/// hold ([`rapport_kit::sled_store::open`]).
fn open_db(dir: &Path, options: &StoreOptions) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(options.cache_bytes)
        .flush_every_ms(options.flush_every_ms);
    rapport_kit::sled_store::open(&config)
        .map_err(sled_error("opening (is another agent running?)"))
}

fn dir_size(dir: &Path) -> Result<u64, StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io(&path))?;
        if meta.is_dir() {
            total += dir_size(&path)?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
