//! The running agent's shared heart: the [`Rules`] and the [`Store`] behind one mutex, so every
//! step — an observation, a tick, a driver's action — changes memory, is written in one atomic
//! batch, and then reaches the screen as events. The bus loop and the HMI server both call in.
//!
//! Write-then-tell: the screen hears of a change only after the store has it; a driver's
//! action is answered only after it is on disk (fsync). A commit that fails is kept and
//! retried with the next one, so a transient store error loses nothing; it is counted.
//!
//! Owns: that ordering and the screen diff (which prompts appeared, changed or left the
//! screen). Does not own: the decisions ([`crate::rules`]), the bytes on disk
//! ([`crate::store`]), HTTP ([`crate::hmi`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rapport_shared::{Odometer, Timestamp};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::config::Loaded;
use crate::hmi::{HmiEvent, PromptView};
use crate::memory::{Changes, PromptRecord, PromptState, ServiceSource, Settings};
use crate::observe::Observation;
use crate::rules::{DriverAction, Rules, RulesConfig, RulesError};
use crate::rules::maintenance::ItemStatus;
use crate::store::{Store, StoreOptions};

/// Why a request through the core failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The rules refused it.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The store could not write it (the change is kept and retried).
    #[error("store: {0}")]
    Store(String),
}

struct Inner {
    rules: Rules,
    store: Store,
    /// Prompts on the screen as last told, with the state told.
    on_screen: BTreeMap<String, PromptRecord>,
    /// Changes whose commit failed, retried with the next.
    pending: Option<Changes>,
}

/// The shared heart. See the module docs.
pub struct Core {
    inner: Mutex<Inner>,
    events: broadcast::Sender<HmiEvent>,
    clock: Arc<dyn Clock>,
    commit_failures: AtomicU64,
    commits: AtomicU64,
}

impl core::fmt::Debug for Core {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Core")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .field("commit_failures", &self.commit_failures.load(Ordering::Relaxed))
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
        let options = StoreOptions {
            max_outbox: cfg.outbox.max_records,
            flush_every_ms: Some(cfg.store.flush_ms),
        };
        let (store, memory) = Store::open(dir, options)?;
        let now = clock.wall();
        let (rules, changes) = Rules::new(RulesConfig::from_config(cfg), memory, now);
        let (events, _) = broadcast::channel(256);
        let core = Self {
            inner: Mutex::new(Inner {
                rules,
                store,
                on_screen: BTreeMap::new(),
                pending: None,
            }),
            events,
            clock,
            commit_failures: AtomicU64::new(0),
            commits: AtomicU64::new(0),
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
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The clock the agent runs on.
    pub fn now(&self) -> Timestamp {
        self.clock.wall()
    }

    /// Screen events, for the HMI's stream.
    pub fn subscribe(&self) -> broadcast::Receiver<HmiEvent> {
        self.events.subscribe()
    }

    /// Commits so far, and commits that failed (retried later).
    pub fn commit_counts(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.commit_failures.load(Ordering::Relaxed),
        )
    }

    fn apply(&self, inner: &mut Inner, changes: Changes, now: Timestamp) -> Result<(), CoreError> {
        let changes = match inner.pending.take() {
            Some(mut earlier) => {
                earlier.merge(changes);
                earlier
            }
            None => changes,
        };
        if !changes.is_empty() {
            self.commits.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = inner.store.commit(inner.rules.memory(), &changes) {
                self.commit_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(cause = %e, "store commit failed; kept for the next commit");
                inner.pending = Some(changes);
                return Err(CoreError::Store(e.to_string()));
            }
        }
        self.tell_screen(inner, now);
        Ok(())
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

    /// One observation from the bus at `now`.
    pub fn observe(&self, obs: &Observation, now: Timestamp) {
        let mut inner = self.lock();
        let changes = inner.rules.on_observation(obs, now);
        let _ = self.apply(&mut inner, changes, now);
    }

    /// Ignition on or off (from bus activity).
    pub fn power(&self, on: bool, now: Timestamp) {
        let mut inner = self.lock();
        let changes = inner.rules.on_power(on, now);
        let _ = self.apply(&mut inner, changes, now);
    }

    /// Time passing.
    pub fn tick(&self, now: Timestamp) {
        let mut inner = self.lock();
        let changes = inner.rules.tick(now);
        let _ = self.apply(&mut inner, changes, now);
    }

    /// The driver acted on a prompt; returns it as it is now, once on disk.
    ///
    /// # Errors
    /// The rules' refusal, or a store failure.
    pub fn act(&self, id: &str, action: DriverAction) -> Result<PromptRecord, CoreError> {
        let now = self.now();
        let mut inner = self.lock();
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
    pub fn record_service(
        &self,
        items: &[String],
        odometer: Option<Odometer>,
        at: Option<Timestamp>,
    ) -> Result<crate::memory::ServiceRecord, CoreError> {
        let now = self.now();
        let mut inner = self.lock();
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

    /// The driver's settings now.
    pub fn settings(&self) -> Settings {
        self.lock().rules.memory().settings.clone()
    }

    /// The driver changed the settings.
    ///
    /// # Errors
    /// The rules' refusal (bad quiet hours), or a store failure.
    pub fn set_settings(&self, settings: Settings) -> Result<Settings, CoreError> {
        let now = self.now();
        let mut inner = self.lock();
        let changes = inner.rules.set_settings(settings, now)?;
        self.apply(&mut inner, changes, now)?;
        Ok(inner.rules.memory().settings.clone())
    }

    /// A message from the cloud.
    pub fn downlink(&self, msg: &rapport_shared::v1::downlink::DownlinkMessage) {
        let now = self.now();
        let mut inner = self.lock();
        let changes = inner.rules.apply_downlink(msg, now);
        let _ = self.apply(&mut inner, changes, now);
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

    /// The maintenance checklist now.
    pub fn checklist(&self) -> Vec<ItemStatus> {
        let now = self.now();
        self.with(|rules, _| rules.checklist(now))
    }

    /// Flushes the store (at shutdown).
    ///
    /// # Errors
    /// The store's flush failed.
    pub fn flush(&self) -> Result<(), crate::Error> {
        let inner = self.lock();
        inner.store.flush()?;
        Ok(())
    }
}
