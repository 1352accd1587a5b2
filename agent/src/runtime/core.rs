//! The running agent's shared heart: the [`Rules`] and the [`Store`] behind one mutex, so every
//! step — an observation, a tick, a driver's action — changes memory, is written in one atomic
//! batch, and then reaches the screen as events. The bus loop and the HMI server both call in.
//!
//! Writes are coalesced ([`Coalescer`]): what the rules change is gathered and written as
//! one atomic, fsynced batch at most every `[store].write_every_s` — sled rewrites pages, so
//! each write costs kilobytes of flash whatever its size — and at once for a driver's action
//! or a service, which is answered only after it is on disk. The screen hears of a shown
//! prompt at once (a prompt lost with a power cut is shown again, nothing worse); of an
//! action only after the disk has it. A commit that fails is kept and retried with the next
//! one, so a transient store error loses nothing; it is counted.
//!
//! Each successful write signals [`Core::outbox_written`], so the sync (its one listener)
//! wakes to send what was added to the outbox without polling the store.
//!
//! Time: the rules never see the raw wall clock. Every entry reads it through the
//! [`ClockGuard`], which gives the rules a trusted time (the wall clock, or while it cannot be
//! believed the last trusted time carried forward by the monotonic clock); the records written
//! keep the car's own wall time; an untrusted episode adds one `ClockUntrusted` record; and the
//! latest trusted time rides along with each write as the store's clock floor.
//!
//! Owns: that ordering and the screen diff (which prompts appeared, changed or left the
//! screen). Does not own: the decisions ([`crate::rules`]), the bytes on disk
//! ([`crate::store`]), HTTP ([`crate::hmi`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rapport_shared::v1::downlink::DownlinkMessage;
use rapport_shared::v1::uplink::Record;
use rapport_shared::{Odometer, Timestamp};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::clock_guard::ClockGuard;
use crate::config::Loaded;
use crate::hmi::{HmiEvent, PromptView};
use crate::memory::{Changes, PromptRecord, PromptState, ServiceSource, Settings};
use crate::observe::Observation;
use crate::rules::{DriverAction, Rules, RulesError};
use crate::settings;
use crate::store::{Fault, Health, Store, StoreError, Transition};

/// How often a failing store is opened again to see whether space came back.
const STORE_RETRY: core::time::Duration = core::time::Duration::from_secs(2);

/// Why a request through the core failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The rules refused it.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The store could not write it (the change is kept and retried).
    #[error("store: {0}")]
    Store(String),
    /// The store's file system is full: the change is applied in memory and kept, and written
    /// when space returns (not before: it is not durable yet).
    #[error("storage full: {0}")]
    StorageFull(String),
}

/// Gathers changes and says when to write them: at once when durable, else when the oldest
/// unwritten change is `every` old. Pure; the caller commits what it returns.
#[derive(Debug, Clone)]
pub struct Coalescer {
    every: core::time::Duration,
    pending: Option<(Changes, Timestamp)>,
}

impl Coalescer {
    /// Writes at least every `every`.
    pub fn new(every: core::time::Duration) -> Self {
        Self {
            every,
            pending: None,
        }
    }

    /// Adds `changes` at `now`; returns everything gathered when it is time to write it.
    pub fn push(&mut self, changes: Changes, now: Timestamp) -> Option<Changes> {
        let due = match &mut self.pending {
            Some((pending, since)) => {
                pending.merge(changes);
                pending.durable || now.saturating_since(*since) >= self.every
            }
            None if changes.is_empty() => return None,
            None => {
                let durable = changes.durable;
                self.pending = Some((changes, now));
                durable || self.every.is_zero()
            }
        };
        if due {
            self.pending.take().map(|(c, _)| c)
        } else {
            None
        }
    }

    /// Everything gathered (at shutdown).
    pub fn drain(&mut self) -> Option<Changes> {
        self.pending.take().map(|(c, _)| c)
    }

    /// The changes gathered and not written yet.
    pub(crate) fn pending_mut(&mut self) -> Option<&mut Changes> {
        self.pending.as_mut().map(|(c, _)| c)
    }

    /// Puts back changes whose write failed, ahead of anything gathered since.
    pub(crate) fn restore(&mut self, mut changes: Changes, now: Timestamp) {
        if let Some((later, _)) = self.pending.take() {
            changes.merge(later);
        }
        self.pending = Some((changes, now));
    }
}

struct Inner {
    rules: Rules,
    store: Store,
    /// Prompts on the screen as last told, with the state told.
    on_screen: BTreeMap<String, PromptRecord>,
    /// Changes not written yet (coalesced, or whose commit failed).
    pending: Coalescer,
    /// Whether the store is failing, and since when (logged once each way).
    health: Health,
    /// Whether the wall clock is believed; the time the rules run on.
    guard: ClockGuard,
    /// The wall clock at the last reading (the car's time the records carry).
    wall: Timestamp,
    /// An untrusted episode seen by a reading with nothing to write yet: recorded next write.
    episode: Option<rapport_shared::ClockUntrusted>,
}

impl Inner {
    /// Reads the wall clock `wall` (at monotonic `mono`) through the guard; the rules' time.
    fn read_clock(&mut self, wall: Timestamp, mono: core::time::Duration) -> Timestamp {
        let r = self.guard.read(wall, mono);
        self.wall = wall;
        if let Some(e) = r.episode {
            tracing::warn!(
                observed = e.observed.as_millis(),
                trusted = e.trusted.as_millis(),
                "wall clock not trusted: date rules run on the trusted time"
            );
            self.episode = Some(e);
        }
        if r.trusted {
            self.store.stage_clock_floor(self.guard.floor());
        }
        r.now
    }
}

/// The shared heart. See the module docs.
pub struct Core {
    inner: Mutex<Inner>,
    events: broadcast::Sender<HmiEvent>,
    clock: Arc<dyn Clock>,
    commit_failures: AtomicU64,
    commits: AtomicU64,
    /// Signalled after each successful write (one waiter: the sync).
    written: tokio::sync::Notify,
}

impl core::fmt::Debug for Core {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Core")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .field(
                "commit_failures",
                &self.commit_failures.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Opens the store in `dir` and starts the rules on what it remembers.
    ///
    /// # Errors
    /// The store cannot be opened (its error names the file and the cause).
    pub fn open(loaded: &Loaded, dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, crate::Error> {
        let cfg = &loaded.config;
        // No background flush: every write is fsynced (see the module doc).
        let (store, memory) = Store::open(dir, settings::store(cfg))?;
        let mut guard = ClockGuard::new(store.clock_floor());
        let wall = clock.wall();
        let first = guard.read(wall, clock.mono());
        let now = first.now;
        if first.trusted {
            store.stage_clock_floor(guard.floor());
        }
        let (rules, changes) = Rules::new(settings::rules(cfg), memory, now);
        let (events, _) = broadcast::channel(256);
        let core = Self {
            inner: Mutex::new(Inner {
                rules,
                store,
                on_screen: BTreeMap::new(),
                pending: Coalescer::new(settings::write_every(cfg)),
                health: Health::new(STORE_RETRY),
                guard,
                wall,
                episode: first.episode,
            }),
            events,
            clock,
            commit_failures: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            written: tokio::sync::Notify::new(),
        };
        {
            let mut inner = core.lock();
            core.apply(&mut inner, changes, now)
                .map_err(|e| crate::Error::Io {
                    context: format!("first write to the store in {}", dir.display()),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        Ok(core)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere, and the release build aborts on panic;
        // in tests, carrying on with the data is more useful than a second panic.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The time the rules run on now (see [`ClockGuard`]).
    pub(crate) fn now(&self) -> Timestamp {
        let wall = self.clock.wall();
        self.lock().read_clock(wall, self.clock.mono())
    }

    /// Reads the clock under the lock already held: the rules' time.
    fn read(&self, inner: &mut Inner) -> Timestamp {
        inner.read_clock(self.clock.wall(), self.clock.mono())
    }

    /// Whether the wall clock is trusted, and untrusted episodes since start.
    pub fn clock_trust(&self) -> (bool, u64) {
        let inner = self.lock();
        (inner.guard.trusted(), inner.guard.episodes())
    }

    /// Screen events, for the HMI's stream.
    pub fn subscribe(&self) -> broadcast::Receiver<HmiEvent> {
        self.events.subscribe()
    }

    fn apply(
        &self,
        inner: &mut Inner,
        mut changes: Changes,
        now: Timestamp,
    ) -> Result<(), CoreError> {
        // Records carry the car's own wall time; their order is their seq.
        let wall = inner.wall;
        for (at, _) in &mut changes.outbox {
            *at = wall;
        }
        if let Some(e) = inner.episode.take() {
            changes
                .outbox
                .insert(0, (wall, rapport_shared::RecordBody::ClockUntrusted(e)));
        }
        let result = match inner.pending.push(changes, now) {
            Some(batch) => self.write(inner, batch, now),
            None => Ok(()),
        };
        self.tell_screen(inner, now);
        result
    }

    fn write(&self, inner: &mut Inner, batch: Changes, now: Timestamp) -> Result<(), CoreError> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let mono = self.clock.mono();
        if let Some(fault) = inner.health.fault() {
            // Failing: sled keeps its error for the life of the handle, so only a fresh handle
            // tells whether space came back — tried every STORE_RETRY, not at every write.
            if !inner.health.try_again(mono) {
                let e = StoreError::Closed(inner.store.dir().to_path_buf());
                return Err(self.failed(inner, batch, now, mono, fault, &e));
            }
            if let Err(e) = inner.store.reopen() {
                let fault = e.fault();
                return Err(self.failed(inner, batch, now, mono, fault, &e));
            }
        }
        let written = inner
            .store
            .commit(inner.rules.memory(), &batch)
            .and_then(|_| inner.store.flush());
        if let Err(e) = written {
            let fault = match &e {
                StoreError::Closed(_) => inner.health.fault().unwrap_or(Fault::Failed),
                e => e.fault(),
            };
            return Err(self.failed(inner, batch, now, mono, fault, &e));
        }
        if let Some(Transition::Recovered {
            lasted,
            failed_writes,
        }) = inner.health.on_success(mono)
        {
            tracing::info!(
                dir = %inner.store.dir().display(),
                lasted_s = lasted.as_secs(),
                failed_writes,
                outbox = inner.store.outbox_len(),
                "store recovered: writes succeed again, what was kept in memory is written"
            );
        }
        // A stored permit if nobody waits: the sync's next wait returns at once.
        self.written.notify_one();
        Ok(())
    }

    /// A write that did not reach the disk: counted, logged once per episode, kept in memory
    /// (its outbox records bounded by the outbox's own rule, the dropped ones counted).
    fn failed(
        &self,
        inner: &mut Inner,
        batch: Changes,
        now: Timestamp,
        mono: core::time::Duration,
        fault: Fault,
        e: &StoreError,
    ) -> CoreError {
        self.commit_failures.fetch_add(1, Ordering::Relaxed);
        if let Some(Transition::Failing(fault)) = inner.health.on_failure(fault, mono) {
            tracing::warn!(
                dir = %inner.store.dir().display(),
                fault = fault.as_str(),
                cause = %e,
                "store writes failing: changes are kept in memory and written when the store \
                 recovers (logged once; counted in /healthz)"
            );
        }
        inner.pending.restore(batch, now);
        let max = inner.store.max_outbox();
        let dropped = inner
            .pending
            .pending_mut()
            .map_or(0, |c| crate::store::bound_pending(&mut c.outbox, max));
        inner.store.count_dropped(dropped);
        match fault {
            Fault::Full => CoreError::StorageFull(format!(
                "the agent's storage is full ({}): applied in memory, stored when space returns",
                inner.store.dir().display()
            )),
            Fault::Failed => CoreError::Store(e.to_string()),
        }
    }

    /// The store's health: its fault while failing, and the writes not kept since start.
    pub fn store_health(&self) -> (Option<Fault>, u64) {
        let inner = self.lock();
        (inner.health.fault(), inner.health.failed_writes())
    }

    /// Resolves after the next successful write to the store (at once if one happened since
    /// the last call resolved). Meant for one listener, the sync.
    pub(crate) async fn outbox_written(&self) {
        self.written.notified().await;
    }

    /// Adds records to the outbox and writes them at once, with whatever was gathered.
    ///
    /// # Errors
    /// A store failure (the records are kept and written with the next write).
    pub fn append(
        &self,
        bodies: Vec<rapport_shared::v1::uplink::RecordBody>,
    ) -> Result<(), CoreError> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        let changes = Changes {
            outbox: bodies.into_iter().map(|b| (now, b)).collect(),
            durable: true,
            ..Changes::default()
        };
        self.apply(&mut inner, changes, now)
    }

    /// Adds a heartbeat record — `version`, `uptime_s`, the outbox depth and the records
    /// dropped since the last heartbeat (the store's counter is taken) — and writes it at once.
    ///
    /// # Errors
    /// A store failure (the heartbeat, with its drop count, is kept for the next write).
    pub(crate) fn heartbeat(&self, version: &str, uptime_s: u64) -> Result<(), CoreError> {
        use rapport_shared::v1::uplink::{Heartbeat, RecordBody};
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        // While the store fails the drop counter is left for a heartbeat after it recovers.
        let dropped = if inner.health.fault().is_some() {
            0
        } else {
            inner
                .store
                .take_dropped()
                .map_err(|e| CoreError::Store(e.to_string()))?
        };
        let changes = Changes {
            outbox: vec![(
                now,
                RecordBody::Heartbeat(Heartbeat {
                    agent_version: version.to_owned(),
                    uptime_s,
                    outbox_depth: inner.store.outbox_len(),
                    records_dropped: dropped,
                }),
            )],
            durable: true,
            ..Changes::default()
        };
        self.apply(&mut inner, changes, now)
    }

    fn tell_screen(&self, inner: &mut Inner, now: Timestamp) {
        let visible: BTreeMap<String, PromptRecord> = inner
            .rules
            .visible_prompts(now)
            .into_iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        for (id, p) in &visible {
            if inner.on_screen.get(id) != Some(p) {
                let _ = self.events.send(HmiEvent::Prompt(PromptView::from(p)));
            }
        }
        for id in inner.on_screen.keys() {
            if !visible.contains_key(id) {
                let state = inner
                    .rules
                    .memory()
                    .prompts
                    .get(id)
                    .map_or(PromptState::Resolved, |p| p.state);
                let event = if state == PromptState::Shown {
                    // Still open: only off the screen while the car moves (or quiet hours).
                    HmiEvent::Hidden { id: id.clone() }
                } else {
                    HmiEvent::Closed {
                        id: id.clone(),
                        state: state.as_str().to_owned(),
                    }
                };
                let _ = self.events.send(event);
            }
        }
        inner.on_screen = visible;
    }

    /// One observation from the bus, read at wall time `now` and monotonic time `mono` (the
    /// bus's own: the desk car's simulated time, or the clock's).
    pub(crate) fn observe(&self, obs: &Observation, now: Timestamp, mono: core::time::Duration) {
        let mut inner = self.lock();
        let now = inner.read_clock(now, mono);
        let changes = inner.rules.on_observation(obs, now);
        let _ = self.apply(&mut inner, changes, now);
    }

    /// Ignition on or off (from bus activity), at wall `now` and monotonic `mono`.
    pub(crate) fn power(&self, on: bool, now: Timestamp, mono: core::time::Duration) {
        let mut inner = self.lock();
        let now = inner.read_clock(now, mono);
        let changes = inner.rules.on_power(on, now);
        let _ = self.apply(&mut inner, changes, now);
    }

    /// Time passing: wall `now` at monotonic `mono`.
    pub(crate) fn tick(&self, now: Timestamp, mono: core::time::Duration) {
        let mut inner = self.lock();
        let now = inner.read_clock(now, mono);
        let changes = inner.rules.tick(now);
        let _ = self.apply(&mut inner, changes, now);
    }

    /// The driver acted on a prompt; returns it as it is now, once on disk.
    ///
    /// # Errors
    /// The rules' refusal, or a store failure.
    pub fn act(&self, id: &str, action: DriverAction) -> Result<PromptRecord, CoreError> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        let changes = inner.rules.act(id, action, now)?;
        self.apply(&mut inner, changes, now)?;
        inner
            .rules
            .memory()
            .prompts
            .get(id)
            .cloned()
            .ok_or_else(|| CoreError::Rules(RulesError::NotFound(id.to_owned())))
    }

    /// The driver recorded a service.
    ///
    /// # Errors
    /// The rules' refusal (unknown item, future time), or a store failure.
    pub(crate) fn record_service(
        &self,
        items: &[String],
        odometer: Option<Odometer>,
        at: Option<Timestamp>,
    ) -> Result<crate::memory::ServiceRecord, CoreError> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        let changes =
            inner
                .rules
                .record_service(items, odometer, at, ServiceSource::Driver, now)?;
        self.apply(&mut inner, changes, now)?;
        inner
            .rules
            .memory()
            .services
            .last()
            .cloned()
            .ok_or_else(|| CoreError::Store("service not recorded".into()))
    }

    /// The driver answered a service case; returns the case as it is now, once on disk.
    ///
    /// # Errors
    /// The rules' refusal (unknown or closed case), or a store failure.
    pub fn answer_service(
        &self,
        alert_id: u64,
        answer: rapport_shared::DriverAnswer,
    ) -> Result<crate::memory::ServiceCase, CoreError> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        let changes = inner.rules.answer_service(alert_id, answer, now)?;
        self.apply(&mut inner, changes, now)?;
        inner
            .rules
            .memory()
            .service_cases
            .get(&alert_id)
            .cloned()
            .ok_or_else(|| {
                CoreError::Rules(RulesError::NotFound(format!("service case {alert_id}")))
            })
    }

    /// The driver's settings now.
    pub fn settings(&self) -> Settings {
        self.lock().rules.memory().settings.clone()
    }

    /// The driver changed the settings.
    ///
    /// # Errors
    /// The rules' refusal (bad quiet hours), or a store failure.
    pub fn set_settings(&self, settings: Settings) -> Result<Settings, CoreError> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        let changes = inner.rules.set_settings(settings, now)?;
        self.apply(&mut inner, changes, now)?;
        Ok(inner.rules.memory().settings.clone())
    }

    /// A message from the cloud, applied once per id; returns once it is on disk (the sync
    /// acknowledges it to the broker only then): `Some(why)` when the rules refused it (it is
    /// recorded as applied all the same).
    ///
    /// # Errors
    /// A store failure (the change is kept and retried with the next write).
    pub(crate) fn downlink(&self, msg: &DownlinkMessage) -> Result<Option<String>, CoreError> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        let applied = inner.rules.apply_downlink(msg, now);
        self.apply(&mut inner, applied.changes, now)?;
        Ok(applied.refused)
    }

    /// Runs `f` over the rules and store (read-only views for the HMI and tests).
    pub fn with<R>(&self, f: impl FnOnce(&Rules, &Store) -> R) -> R {
        let inner = self.lock();
        f(&inner.rules, &inner.store)
    }

    /// The prompts on the screen now.
    pub fn visible_prompts(&self) -> Vec<PromptRecord> {
        let now = self.now();
        self.with(|rules, _| rules.visible_prompts(now).into_iter().cloned().collect())
    }

    /// Writes everything gathered and flushes the store (at shutdown).
    ///
    /// # Errors
    /// The store's write failed.
    pub fn flush(&self) -> Result<(), crate::Error> {
        let mut inner = self.lock();
        let now = self.read(&mut inner);
        if let Some(batch) = inner.pending.drain() {
            self.write(&mut inner, batch, now)
                .map_err(|e| crate::Error::Io {
                    context: "writing the store at shutdown".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        inner.store.flush()?;
        Ok(())
    }
}

/// The sync reaches the outbox and the rules through the core.
impl crate::sync::Agent for Core {
    type Error = CoreError;

    fn outbox_written(&self) -> impl Future<Output = ()> + Send + '_ {
        Core::outbox_written(self)
    }

    fn outbox_from(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.with(|_, store| store.outbox_from(from, limit))
    }

    fn outbox_remove(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.with(|_, store| store.outbox_remove(seqs))
    }

    fn heartbeat(&self, version: &str, uptime_s: u64) -> Result<(), CoreError> {
        Core::heartbeat(self, version, uptime_s)
    }

    fn downlink(&self, message: &DownlinkMessage) -> Result<Option<String>, CoreError> {
        Core::downlink(self, message)
    }
}
