//! The store port: everything the cloud's parts ask of storage — the ingest's group commit,
//! the fleet's changes and time-driven work, the webhook outbox, the downlink queue, the
//! partners added through the API, and every read the API and the timeline make — as one
//! trait, [`Backend`] (with [`OutboxStore`] for the webhook sender), behind one cheap handle,
//! [`Store`].
//!
//! Two backends implement it:
//! - [`sled`]: one embedded sled database, the fleet's layers, open alerts and time indexes
//!   in memory (rebuilt at start), one mutex around decisions and their batch — the default,
//!   and the testbed's;
//! - [`postgres`]: PostgreSQL, nothing of the fleet in memory: every change is one
//!   transaction over the vehicles it touches (their rows locked `FOR UPDATE` in VIN order),
//!   due work is claimed with `FOR UPDATE SKIP LOCKED`, the layer matrix is a `GROUP BY`.
//!
//! Both run the same pure per-vehicle decisions ([`crate::fleet::core::Step`]): a backend
//! loads a vehicle's snapshot, steps it, and persists the snapshot and its
//! [`Changes`](crate::fleet::core::Changes) atomically with the records that caused them.
//! The port is synchronous (sled is blocking; the PostgreSQL client used is the synchronous
//! one): call it from a thread or `spawn_blocking`. Every write method is durable when it
//! returns (sled flushes; PostgreSQL commits).
//!
//! Owns the port's shape, its outcome types and [`StoreError`]. Does not own any decision
//! (the fleet's core), the encodings (each backend), nor when anything is called (the ingest
//! worker, the fleet's shell, the API).

pub mod erasure;
pub mod error;
pub mod import;
pub mod postgres;
pub mod sled;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rapport_shared::{Campaign, Record, Timestamp, Uplink, Vin};

use crate::audit::{AuditEntry, AuditQuery};
use crate::fleet::alerts::Alert;
use crate::fleet::core::{Effects, FleetError, FleetStats, Rules};
use crate::fleet::driver::Driver;
use crate::fleet::layering::Matrix;
use crate::fleet::model::{Category, CellFilter, Layers, Registration};
use crate::fleet::partners::Partner;
use crate::fleet::store::Stamped;
use crate::ingest::PlanStats;
use crate::vehicle::VehicleState;
use crate::webhook::outbox::{DeadLetter, Due, Enqueue, Message, MessageState, OutboxError};
use crate::webhook::schedule::Decision;

pub use self::erasure::Erasure;
pub use self::error::StoreError;

/// How long an instance holds the downlinks it decided before another may hand them over
/// (PostgreSQL; see [`Backend::claim_downlinks`]).
pub const DOWNLINK_LEASE: Duration = Duration::from_secs(60);
pub use crate::fleet::core::Transition;

/// What expires through [`Backend::prune_pass`] (delivered markers go through
/// the outbox's own [`OutboxStore::prune_delivered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiring {
    /// Logged records, by the record's time (`Record::at`).
    Records,
    /// Fleet timeline entries, by their time.
    Timeline,
    /// Webhook dead letters, by when they were parked.
    DeadLetters,
}

/// What one pass over one kind came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Entries removed.
    pub pruned: u64,
    /// Where the next pass goes on (an opaque backend cursor); `None`: the sweep reached the
    /// end, the next pass starts over.
    pub next: Option<Vec<u8>>,
}

/// What one ingested envelope came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Applied (its counts: new, duplicate, … records).
    Applied(PlanStats),
    /// The vehicle's stored state cannot be read: the envelope was dropped.
    Unreadable {
        /// Which value.
        what: String,
        /// Why.
        reason: String,
    },
}

/// What the fleet's changes of one call came to, for the shell after they are durable.
#[derive(Debug, Default)]
pub struct Applied {
    /// Downlinks to publish, webhooks enqueued, layer changes.
    pub effects: Effects,
    /// What the fleet did, counted.
    pub stats: FleetStats,
}

impl Applied {
    /// Adds another's.
    pub fn merge_from(&mut self, other: Self) {
        self.effects.merge_from(other.effects);
        self.stats.add(&other.stats);
    }
}

/// What one ingested group came to.
#[derive(Debug, Default)]
pub struct Ingested {
    /// One outcome per envelope, in order.
    pub envelopes: Vec<Envelope>,
    /// The fleet's changes of the group's records.
    pub applied: Applied,
    /// Microseconds the group took to become durable (flush or commit), if anything was
    /// written.
    pub durable_micros: Option<u64>,
    /// Records of erased vehicles dropped as from before their erasure
    /// ([`erasure::Erasure::sift`]).
    pub late_dropped: u64,
}

/// One vehicle of the vehicles list: its VIN and layers (`None`: not placed).
pub type Listed = (Vin, Option<Layers>);

/// A vehicle's records, newest first, read lazily.
pub type Records<'a> = Box<dyn Iterator<Item = Result<Record, StoreError>> + 'a>;

/// A vehicle's fleet timeline, newest first, each entry with its position, read lazily.
pub type Timeline<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Stamped), StoreError>> + 'a>;

/// The store port (see the module doc). Every method blocks.
pub trait Backend: Send + Sync + 'static {
    /// `sled` or `postgres`.
    fn kind(&self) -> &'static str;

    /// Called once at start with the fleet's rules: the sled backend rebuilds its memory
    /// (every driver placed from scratch, changes while down recorded and acted on, open
    /// alerts and time indexes); PostgreSQL has nothing to load. Durable when it returns.
    ///
    /// # Errors
    /// The store.
    fn start_fleet(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError>;

    /// Applies a group of checked envelopes at `now`: each vehicle's ingest state and record
    /// log, and (with `rules`) the fleet's effects of its new records, exactly once per seq;
    /// durable when it returns (the caller acks after).
    ///
    /// # Errors
    /// The store (nothing of the group may be durable then: the broker redelivers it).
    fn ingest(
        &self,
        rules: Option<&Rules>,
        group: &[Uplink],
        now: Timestamp,
    ) -> Result<Ingested, StoreError>;

    /// Processes what time made due at `now` (at most [`crate::fleet::core::TICK_LIMIT`]
    /// vehicles of each kind).
    ///
    /// # Errors
    /// The store.
    fn tick(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError>;

    /// When the next time-driven work is due, if the backend knows without a query (sled);
    /// `Ok(None)` from a backend that always looks ([`Backend::tick`] is cheap when nothing
    /// is due).
    ///
    /// # Errors
    /// The store.
    fn next_due(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError>;

    /// Creates or changes registrations in order, each driver re-placed; with
    /// `skip_unchanged`, one equal to the stored entry is passed over (a file imported at
    /// start), else it is noted as updated all the same (the API's import).
    ///
    /// # Errors
    /// The store.
    fn register(
        &self,
        rules: &Rules,
        registrations: &[Registration],
        skip_unchanged: bool,
        now: Timestamp,
    ) -> Result<Applied, FleetError>;

    /// Acknowledges or resolves alert `id` for `partner` (`None`: the operator).
    ///
    /// # Errors
    /// [`FleetError::UnknownAlert`], [`FleetError::Alert`], the store.
    fn transition(
        &self,
        rules: &Rules,
        id: u64,
        partner: Option<&str>,
        what: Transition,
        now: Timestamp,
    ) -> Result<(Alert, Applied), FleetError>;

    /// Sends an operator's campaign to every driver in `cells` who may get it; how many got
    /// it and how many were held back.
    ///
    /// # Errors
    /// The store.
    fn campaign(
        &self,
        rules: &Rules,
        campaign: &Campaign,
        cells: &CellFilter,
        now: Timestamp,
    ) -> Result<(Applied, u64, u64), FleetError>;

    /// Notes a webhook's final outcome on its alert's vehicle's timeline.
    ///
    /// # Errors
    /// The store.
    fn note_outcome(
        &self,
        alert_id: u64,
        event: &str,
        detail: String,
        now: Timestamp,
    ) -> Result<(), FleetError>;

    /// A vehicle's ingest state, if it was ever seen.
    ///
    /// # Errors
    /// The store, or a value that does not decode.
    fn vehicle(&self, vin: &Vin) -> Result<Option<VehicleState>, StoreError>;

    /// Vehicles seen by the ingest.
    ///
    /// # Errors
    /// The store.
    fn count_vehicles(&self) -> Result<u64, StoreError>;

    /// Up to `limit` logged records of a vehicle with seq above `after`, in seq order.
    ///
    /// # Errors
    /// The store, or a record that does not decode.
    fn records(&self, vin: &Vin, after: u64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// A vehicle's logged records, newest first (by seq), below seq `below` (exclusive;
    /// `None`: from the newest). Lazy: read in pages as the caller goes.
    fn records_newest_first<'a>(&'a self, vin: &Vin, below: Option<u64>) -> Records<'a>;

    /// A vehicle's fleet timeline, newest first, each entry with its position (16 bytes:
    /// time and number, big-endian: the paging cursor), below `below` (exclusive; `None`:
    /// from the newest). Lazy.
    fn timeline_newest_first<'a>(&'a self, vin: &Vin, below: Option<&[u8]>) -> Timeline<'a>;

    /// A vehicle's registration.
    ///
    /// # Errors
    /// The store or decoding.
    fn registration(&self, vin: &Vin) -> Result<Option<Registration>, StoreError>;

    /// A vehicle's driver.
    ///
    /// # Errors
    /// The store or decoding.
    fn driver(&self, vin: &Vin) -> Result<Option<Driver>, StoreError>;

    /// A vehicle's current layers, if placed.
    ///
    /// # Errors
    /// The store.
    fn layers(&self, vin: &Vin) -> Result<Option<Layers>, StoreError>;

    /// The layer matrix of one category, or of the whole fleet (`None`).
    ///
    /// # Errors
    /// The store.
    fn matrix(&self, category: Option<Category>) -> Result<Matrix, StoreError>;

    /// Vehicles with a driver after `after` (exclusive), in VIN order, at most `limit`, with
    /// their layers.
    ///
    /// # Errors
    /// The store.
    fn vehicles_after(&self, after: Option<&Vin>, limit: usize) -> Result<Vec<Listed>, StoreError>;

    /// An alert, whatever its state.
    ///
    /// # Errors
    /// The store or decoding.
    fn alert(&self, id: u64) -> Result<Option<Alert>, StoreError>;

    /// Alerts, every one (`unresolved_only` false) or the unresolved, of one vehicle or all.
    ///
    /// # Errors
    /// The store or decoding.
    fn alerts(&self, unresolved_only: bool, vin: Option<&Vin>) -> Result<Vec<Alert>, StoreError>;

    /// Partners added through the API.
    ///
    /// # Errors
    /// The store or decoding.
    fn partners(&self) -> Result<Vec<Partner>, StoreError>;

    /// Writes or replaces an API partner (durable).
    ///
    /// # Errors
    /// The store.
    fn put_partner(&self, partner: &Partner) -> Result<(), StoreError>;

    /// Removes an API partner (durable); whether it was there.
    ///
    /// # Errors
    /// The store.
    fn remove_partner(&self, id: &str) -> Result<bool, StoreError>;

    /// A fresh downlink message id: unique across restarts and crashes, never 0.
    ///
    /// # Errors
    /// The store.
    fn next_downlink_id(&self) -> Result<u64, StoreError>;

    /// Downlinks decided but not yet handed to MQTT that no live instance is handing over,
    /// claimed for this one (at most `limit`, oldest first): (id, envelope). sled (one
    /// instance): every pending downlink. PostgreSQL: a downlink is claimed by the instance
    /// that decided it, in the transaction that decided it, for [`DOWNLINK_LEASE`]; those
    /// whose claim lapsed (the holder died before handing it over) are claimed here
    /// (`FOR UPDATE SKIP LOCKED`), so each goes out once unless a holder dies mid-publish.
    ///
    /// # Errors
    /// The store.
    fn claim_downlinks(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Whether other instances may share this store (PostgreSQL): then the fleet's shell
    /// looks for lapsed downlink claims and partner changes periodically, not only at start.
    fn shared(&self) -> bool {
        false
    }

    /// Whether the store answers now (a cheap round trip, waiting at most `wait` for a
    /// connection): `/healthz` and `rapport_store_up` between ingests.
    ///
    /// # Errors
    /// The store, [`StoreError::Unavailable`] when the database is gone.
    fn ping(&self, wait: Duration) -> Result<(), StoreError> {
        let _ = wait;
        Ok(())
    }

    /// Forgets a downlink handed to MQTT.
    ///
    /// # Errors
    /// The store.
    fn remove_downlink(&self, id: u64) -> Result<(), StoreError>;

    /// The webhook outbox.
    fn outbox(&self) -> Arc<dyn OutboxStore>;

    /// Makes every earlier write durable (sled: fsync; PostgreSQL: already).
    ///
    /// # Errors
    /// The store.
    fn flush(&self) -> Result<(), StoreError>;

    /// Retention: one bounded pass over `what` — at most `limit` entries examined, from
    /// `cursor` (a [`Pass::next`] of the pass before; `None`: the start) —
    /// removing those older than `before`. Durable when it returns.
    ///
    /// # Errors
    /// The store.
    fn prune_pass(
        &self,
        what: Expiring,
        before: Timestamp,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pass, StoreError>;

    /// A vehicle's erasure tombstone, if it was erased (docs/data-rights.md, "Erase").
    ///
    /// # Errors
    /// The store or decoding.
    fn erasure(&self, vin: &Vin) -> Result<Option<Erasure>, StoreError>;

    /// Erases a vehicle at `now` for `reason`, atomically and durably: its ingest state,
    /// records, timeline, driver, registration, contact history, alerts and their undelivered
    /// webhooks go; the tombstone is written, a `vehicle.erased` webhook is enqueued for each
    /// partner its alerts went to and the vehicle-wipe downlink is queued (both in
    /// [`Applied::effects`]). `Ok(None)`: the store knows nothing of the VIN. Idempotent: a
    /// vehicle already erased gives its tombstone back with `false`, and nothing changes.
    ///
    /// # Errors
    /// The store.
    fn erase(
        &self,
        vin: &Vin,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<(Erasure, bool, Applied)>, FleetError>;

    /// A driver's contact history (what was offered when), if the vehicle has one.
    ///
    /// # Errors
    /// The store or decoding.
    fn contacts(
        &self,
        vin: &Vin,
    ) -> Result<Option<crate::fleet::strategy::ContactHistory>, StoreError>;

    /// Appends one entry to the audit log ([`crate::audit`]); returns the seq it was given
    /// (increasing). Entries are never changed; only [`Self::audit_prune`] removes them.
    ///
    /// # Errors
    /// The store.
    fn audit_append(&self, entry: &AuditEntry) -> Result<u64, StoreError>;

    /// Audit entries matching `query`, newest (highest seq) first, at most `query.limit`.
    ///
    /// # Errors
    /// The store, or an entry that cannot be read.
    fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Removes up to `limit` of the oldest audit entries made before `before`; how many.
    ///
    /// # Errors
    /// The store.
    fn audit_prune(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError>;

    /// The operator tokens' changes made through the API (JSON text, see
    /// [`crate::api::auth::OperatorChanges`]), if any were ever made.
    ///
    /// # Errors
    /// The store.
    fn operator_token_changes(&self) -> Result<Option<String>, StoreError>;

    /// Keeps the operator tokens' changes made through the API (replacing the last).
    ///
    /// # Errors
    /// The store.
    fn put_operator_token_changes(&self, json: &str) -> Result<(), StoreError>;
}

/// The webhook outbox as the sender and the API use it: pending messages with their due
/// times, attempts recorded, dead letters and their re-drive, delivered markers pruned. The
/// fleet enqueues through [`Backend`] (in the batch or transaction that decides the alert).
pub trait OutboxStore: Send + Sync + 'static {
    /// Where `id` stands, if the outbox knows it.
    ///
    /// # Errors
    /// The store, unreadable values.
    fn state(&self, id: &str) -> Result<Option<MessageState>, OutboxError>;

    /// Adds `msg` unless its id is known (pending, delivered or dead); durable per the
    /// backend (sled: not flushed).
    ///
    /// # Errors
    /// [`OutboxError::Invalid`], the store.
    fn enqueue_now(&self, msg: &Message) -> Result<Enqueue, OutboxError>;

    /// Up to `limit` messages due at `now`, earliest first, passing over ids `skip` says yes
    /// to (in flight), and when the next one is due.
    ///
    /// # Errors
    /// The store, unreadable values.
    fn due_except(
        &self,
        now: Timestamp,
        limit: usize,
        skip: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Due, OutboxError>;

    /// Claims for `claim.holder`, until `now + claim.lease`, up to `limit` messages due at
    /// `now` that no live claim holds, earliest first, passing over `in_flight`; and when the
    /// next one is due (or a claim on it lapses). A claim ends when the attempt is recorded
    /// ([`OutboxStore::record`]) or its lease lapses (its holder died): then any instance
    /// takes the message, under the same id.
    ///
    /// The default is [`OutboxStore::due_except`]: a backend one process owns (sled) needs no
    /// claim, the sender's in-flight set is one.
    ///
    /// # Errors
    /// The store, unreadable values.
    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        in_flight: &HashSet<String>,
        claim: &Claim,
    ) -> Result<Due, OutboxError> {
        let _ = claim;
        self.due_except(now, limit, &mut |id| in_flight.contains(id))
    }

    /// Records the attempt made on `msg` (as read before the attempt) and what `decision`
    /// says follows; the message as it now stands.
    ///
    /// # Errors
    /// The store.
    fn record(
        &self,
        msg: &Message,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Message, OutboxError>;

    /// Dead letters in id order after `after`, at most `limit`.
    ///
    /// # Errors
    /// The store, unreadable values.
    fn dead_letters(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError>;

    /// Puts dead letter `id` back to pending, due at `now`, attempts reset, same id.
    ///
    /// # Errors
    /// [`OutboxError::NotDead`], the store.
    fn redrive(&self, id: &str, now: Timestamp) -> Result<Message, OutboxError>;

    /// Removes up to `limit` delivered markers older than `before`; how many.
    ///
    /// # Errors
    /// The store.
    fn prune_delivered(&self, before: Timestamp, limit: usize) -> Result<usize, OutboxError>;

    /// Makes the outbox's writes durable.
    ///
    /// # Errors
    /// The store.
    fn flush(&self) -> Result<(), OutboxError>;
}

impl<T: OutboxStore + ?Sized> OutboxStore for Arc<T> {
    fn state(&self, id: &str) -> Result<Option<MessageState>, OutboxError> {
        (**self).state(id)
    }

    fn enqueue_now(&self, msg: &Message) -> Result<Enqueue, OutboxError> {
        (**self).enqueue_now(msg)
    }

    fn due_except(
        &self,
        now: Timestamp,
        limit: usize,
        skip: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Due, OutboxError> {
        (**self).due_except(now, limit, skip)
    }

    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        in_flight: &HashSet<String>,
        claim: &Claim,
    ) -> Result<Due, OutboxError> {
        (**self).claim_due(now, limit, in_flight, claim)
    }

    fn record(
        &self,
        msg: &Message,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Message, OutboxError> {
        (**self).record(msg, decision, now)
    }

    fn dead_letters(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        (**self).dead_letters(after, limit)
    }

    fn redrive(&self, id: &str, now: Timestamp) -> Result<Message, OutboxError> {
        (**self).redrive(id, now)
    }

    fn prune_delivered(&self, before: Timestamp, limit: usize) -> Result<usize, OutboxError> {
        (**self).prune_delivered(before, limit)
    }

    fn flush(&self) -> Result<(), OutboxError> {
        (**self).flush()
    }
}

/// A holder name unique to this process: the host, the process id and a random part (two
/// processes on one host, or one restarted with the same pid, never share it).
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cloud".to_owned());
    let random = getrandom::u32().unwrap_or_default();
    format!("{host}-{}-{random:08x}", std::process::id())
}

/// An instance's claim on the outbox messages it sends: who holds them and for how long
/// (on the cloud's clock) if it never records an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The instance (unique per process: host, process id and a random part).
    pub holder: String,
    /// How long a claim lasts; longer than an attempt may take.
    pub lease: Duration,
}

/// The cloud's store: a cheap handle on one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend.kind())
    }
}

impl Store {
    /// A handle on `backend`.
    pub fn new(backend: impl Backend) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    /// Opens the store the config's `[store]` names: sled in its directory, or PostgreSQL
    /// (migrated to this build's schema first). Blocking.
    ///
    /// # Errors
    /// [`StoreError::Unreachable`] naming host and database, [`StoreError::Schema`] for a
    /// newer store, the store.
    pub fn open(config: &crate::config::Config) -> Result<Self, StoreError> {
        match config.store.backend {
            crate::config::Backend::Sled => Ok(Self::new(self::sled::SledStore::open_with_cache(
                &config.store_path(),
                u64::from(config.store.sled_cache_mb) * 1024 * 1024,
            )?)),
            crate::config::Backend::Postgres => Ok(Self::new(self::postgres::PgStore::open(
                &config.store,
                &|v| std::env::var(v).ok(),
            )?)),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}
