//! The fleet's thin async shell: builds the fleet's [`Rules`] from its settings and starts
//! the store's fleet side, and runs what is around every change — each goes to the store port
//! (durable when it returns) before anyone is told; downlinks are published after it (and
//! forgotten from the store once handed to MQTT); the webhook sender is woken; a tick task
//! processes what time made due (and, on a store several instances share, picks up lapsed
//! downlink claims and partner changes made by other instances); a report task notes webhook
//! outcomes on the alerts' timelines.
//!
//! Owns the rules' lock (the partner routes change the directory), the order durable →
//! publish/wake, and the fleet's counters. Does not own any decision
//! ([`crate::fleet::core`]) nor storage ([`crate::store`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use rapport_kit::config::one_line;
use rapport_shared::{Timestamp, Vin, topic};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{Notify, mpsc};

use super::core::{FleetError, FleetStats, Rules};
use super::layers::LayerConfig;
use super::partners::{AlertsConfig, Directory, Partner, PartnerConfig};
use super::strategy::Strategies;
use crate::clock::SharedClock;
use crate::store::{Applied, Store, StoreError};
use crate::webhook::sender::{DeliveryReport, Endpoint, ReportStatus};
use crate::webhook::sign::Secret;

/// The default strategy file, built in (`config/strategies.toml`).
pub const DEFAULT_STRATEGIES: &str = include_str!("../../../config/strategies.toml");

/// How often an instance on a shared store looks for other instances' leftovers (lapsed
/// downlink claims) and partner changes.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Most downlinks claimed in one look.
pub const DOWNLINK_SWEEP_LIMIT: usize = 1_000;

/// Partner webhook endpoints as the sender reads them (refreshed when partners change).
pub type EndpointMap = Arc<RwLock<HashMap<String, Endpoint>>>;

/// Why the fleet could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The strategy file.
    #[error("strategies: {0}")]
    Strategies(String),
    /// The partners.
    #[error("partners: {0}")]
    Partners(String),
    /// The registry file.
    #[error("registry {file}: {message}")]
    Registry {
        /// Which file.
        file: String,
        /// Every problem.
        message: String,
    },
    /// Loading.
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// The running fleet, shared by the ingest thread, the tick, the API and the report task.
#[derive(Clone)]
pub struct FleetHandle {
    /// The rules every decision reads (the partner routes change the directory).
    pub rules: Arc<RwLock<Rules>>,
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: SharedClock,
    /// Wakes the webhook sender.
    pub wake: Arc<Notify>,
    /// The cloud's counters (campaign downlinks count in `rapport_downlinks_sent_total`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Partner endpoints for the sender.
    pub endpoints: EndpointMap,
    /// What the fleet did since start.
    pub stats: Arc<Mutex<FleetStats>>,
    /// What the fleet started from (the partner directory is rebuilt from it).
    pub settings: Arc<FleetSettings>,
}

/// What the fleet starts from: the values of the cloud config's fleet sections, paths
/// resolved (the fleet does not read the config file).
#[derive(Clone, Debug, Default)]
pub struct FleetSettings {
    /// The strategy file; `None`: the built-in [`DEFAULT_STRATEGIES`].
    pub strategies: Option<PathBuf>,
    /// A registry file (CSV, or TOML by its `.toml` extension) imported at start.
    pub registry: Option<PathBuf>,
    /// `[layers]`.
    pub layers: LayerConfig,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
    /// `[[partner]]`.
    pub partners: Vec<PartnerConfig>,
    /// `[promises]`.
    pub promises: crate::fleet::alerts::PromiseRules,
}

impl FleetSettings {
    /// The fleet's sections of `config`, its file paths resolved against the config's folder.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            strategies: config
                .fleet
                .strategies
                .as_deref()
                .map(|p| config.resolve(p)),
            registry: config.fleet.registry.as_deref().map(|p| config.resolve(p)),
            layers: config.layers.clone(),
            alerts: config.alerts.clone(),
            partners: config.partner.clone(),
            promises: config.promises.clone(),
        }
    }
}

/// The endpoints of every partner that has a valid secret.
pub fn endpoints_of(directory: &Directory) -> HashMap<String, Endpoint> {
    directory
        .iter()
        .filter_map(|p: &Partner| match Secret::parse(&p.secret) {
            Ok(secret) => Some((
                p.id.clone(),
                Endpoint {
                    url: p.webhook_url.clone(),
                    secret,
                    previous: p
                        .previous_secrets
                        .iter()
                        .filter_map(|s| match Secret::parse(s) {
                            Ok(s) => Some(s),
                            Err(e) => {
                                tracing::error!(partner = %p.id, cause = %e, "a previous webhook secret is unusable; not signed with");
                                None
                            }
                        })
                        .collect(),
                },
            )),
            Err(e) => {
                tracing::error!(partner = %p.id, cause = %e, "partner secret unusable; its webhooks will fail");
                None
            }
        })
        .collect()
}

/// The fleet's rules from its settings and the partners added through the API (one that no
/// longer fits is logged and skipped).
///
/// # Errors
/// [`StartError::Strategies`] or [`StartError::Partners`].
pub fn rules_from(
    settings: &FleetSettings,
    api_partners: Vec<Partner>,
) -> Result<Rules, StartError> {
    let strategies = match &settings.strategies {
        Some(path) => Strategies::load(path).map_err(|e| StartError::Strategies(e.to_string()))?,
        None => Strategies::from_toml("built-in config/strategies.toml", DEFAULT_STRATEGIES)
            .map_err(|e| StartError::Strategies(e.to_string()))?,
    };
    Ok(Rules {
        layers: settings.layers.clone(),
        strategies,
        directory: directory_from(settings, api_partners)?,
        policy: settings.alerts.policy(),
        promises: settings.promises.clone(),
    })
}

/// The partner directory: the config's partners, then those added through the API (one that
/// no longer fits is logged and skipped).
///
/// # Errors
/// [`StartError::Partners`].
pub fn directory_from(
    settings: &FleetSettings,
    api_partners: Vec<Partner>,
) -> Result<Directory, StartError> {
    let mut directory = Directory::from_config(&settings.partners, &settings.alerts, &|v| {
        std::env::var(v).ok()
    })
    .map_err(|problems| StartError::Partners(one_line(&problems)))?;
    for p in api_partners {
        if let Err(e) = directory.upsert(p) {
            tracing::error!(cause = %e, "partner added through the API no longer fits; skipped");
        }
    }
    Ok(directory)
}

fn poisoned() -> FleetError {
    FleetError::Store(StoreError::corrupt("fleet rules lock", "poisoned"))
}

impl FleetHandle {
    /// Builds the fleet's rules from its settings (strategies, partners from the config and
    /// those added through the API), starts the store's fleet side at `clock.now()`, and
    /// imports the registry file. Blocking.
    ///
    /// # Errors
    /// [`StartError`].
    pub fn start(
        settings: &FleetSettings,
        store: &Store,
        clock: SharedClock,
    ) -> Result<(Self, Applied), StartError> {
        let rules = rules_from(settings, store.partners().map_err(FleetError::from)?)?;
        let endpoints: EndpointMap = Arc::new(RwLock::new(endpoints_of(&rules.directory)));
        let now = clock.now();
        let mut applied = store.start_fleet(&rules, now)?;
        if let Some(path) = &settings.registry {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| StartError::Registry {
                file: file.clone(),
                message: e.to_string(),
            })?;
            let parsed = if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
            {
                super::registry::parse_toml(&text)
            } else {
                super::registry::parse_csv(&text)
            };
            let entries = parsed.map_err(|errors| StartError::Registry {
                file: file.clone(),
                message: one_line(&errors),
            })?;
            applied.merge_from(store.register(&rules, &entries, true, now)?);
            tracing::info!(file = %file, vehicles = entries.len(), "registry imported");
        }
        let handle = Self {
            rules: Arc::new(RwLock::new(rules)),
            store: store.clone(),
            clock,
            wake: Arc::new(Notify::new()),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            endpoints,
            stats: Arc::new(Mutex::new(applied.stats)),
            settings: Arc::new(settings.clone()),
        };
        Ok((handle, applied))
    }

    /// The rules, for reading (never held across an await).
    ///
    /// # Errors
    /// [`FleetError::Store`] when a holder of the lock panicked.
    pub fn rules(&self) -> Result<RwLockReadGuard<'_, Rules>, FleetError> {
        self.rules.read().map_err(|_| poisoned())
    }

    /// The rules, for a change of the directory.
    ///
    /// # Errors
    /// [`FleetError::Store`] when a holder of the lock panicked.
    pub fn rules_mut(&self) -> Result<RwLockWriteGuard<'_, Rules>, FleetError> {
        self.rules.write().map_err(|_| poisoned())
    }

    /// The fleet's counters since start.
    pub fn stats(&self) -> FleetStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Counts what a change did and wakes the sender for its webhooks (after it is durable).
    pub fn noted(&self, applied: &Applied) {
        if let Ok(mut s) = self.stats.lock() {
            s.add(&applied.stats);
        }
        if applied.effects.webhooks > 0 {
            self.wake.notify_one();
        }
    }

    /// Runs `f` on the store with the rules at the clock's now, off the async threads;
    /// counts, wakes the sender, then publishes the downlinks.
    ///
    /// # Errors
    /// What `f` returns.
    pub async fn change<R: Send + 'static>(
        &self,
        client: &AsyncClient,
        f: impl FnOnce(&Store, &Rules, Timestamp) -> Result<(R, Applied), FleetError> + Send + 'static,
    ) -> Result<R, FleetError> {
        let me = self.clone();
        let (r, applied) = tokio::task::spawn_blocking(move || {
            let now = me.clock.now();
            let rules = me.rules()?;
            f(&me.store, &rules, now)
        })
        .await
        .map_err(|e| FleetError::Store(StoreError::corrupt("fleet task", e)))??;
        self.noted(&applied);
        self.publish(client, applied.effects.downlinks).await;
        Ok(r)
    }

    /// Processes what time made due now (what the tick task does).
    ///
    /// # Errors
    /// The store.
    pub async fn tick(
        &self,
        client: &AsyncClient,
    ) -> Result<crate::fleet::core::Effects, FleetError> {
        self.change(client, |store, rules, now| {
            let applied = store.tick(rules, now)?;
            let summary = crate::fleet::core::Effects {
                downlinks: Vec::new(),
                webhooks: applied.effects.webhooks,
                layer_changes: applied.effects.layer_changes,
            };
            Ok((summary, applied))
        })
        .await
    }

    /// Publishes downlinks (QoS1) and forgets them from `Q` once rumqttc has them. One that
    /// cannot be handed over stays in `Q` and goes at the next start.
    pub async fn publish(&self, client: &AsyncClient, downlinks: Vec<(u64, Vin, Vec<u8>)>) {
        for (id, vin, bytes) in downlinks {
            match client
                .publish(topic::downlink(&vin), QoS::AtLeastOnce, false, bytes)
                .await
            {
                Ok(()) => {
                    self.metrics
                        .downlinks
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let store = self.store.clone();
                    let removed =
                        tokio::task::spawn_blocking(move || store.remove_downlink(id)).await;
                    if let Ok(Err(e)) = removed {
                        tracing::warn!(id, cause = %e, "sent downlink not forgotten; it may go again (the car applies it once)");
                    }
                    tracing::info!(%vin, id, "campaign downlink sent");
                }
                Err(e) => {
                    tracing::warn!(%vin, id, cause = %e, "downlink not handed to MQTT; kept for the next start")
                }
            }
        }
    }

    /// Downlinks decided but not handed over — queued before a stop, or (several instances)
    /// left by an instance that died before publishing them — claimed and published (the car
    /// applies an id once). The number published.
    ///
    /// # Errors
    /// The store.
    pub async fn publish_unclaimed(&self, client: &AsyncClient) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let now = self.clock.now();
        let pending =
            tokio::task::spawn_blocking(move || store.claim_downlinks(now, DOWNLINK_SWEEP_LIMIT))
                .await
                .map_err(|e| StoreError::corrupt("downlink task", e))??;
        let n = pending.len();
        let mut list = Vec::with_capacity(n);
        for (id, bytes) in pending {
            match rapport_shared::Downlink::decode(&bytes) {
                Ok(d) => list.push((id, d.vin, bytes)),
                Err(e) => tracing::error!(id, cause = %e, "queued downlink unreadable; dropped"),
            }
        }
        self.publish(client, list).await;
        Ok(n)
    }

    /// Refreshes the sender's endpoints from the directory.
    pub fn refresh_endpoints(&self) {
        let map = match self.rules() {
            Ok(r) => endpoints_of(&r.directory),
            Err(_) => return,
        };
        if let Ok(mut e) = self.endpoints.write() {
            *e = map;
        }
    }

    /// The partners as the store has them now (the config's and the API's): the directory
    /// and the sender's endpoints replaced if another instance changed them. True when they
    /// changed. Runs under the rules' write lock, as the partner routes do, so a change made
    /// here meanwhile is never undone.
    ///
    /// # Errors
    /// The store; a stored partner that no longer fits is logged and skipped.
    pub fn refresh_partners(&self) -> Result<bool, FleetError> {
        let changed = {
            let mut rules = self.rules_mut()?;
            let stored = self.store.partners()?;
            let directory = directory_from(&self.settings, stored)
                .map_err(|e| FleetError::Store(StoreError::corrupt("partners", e)))?;
            if directory == rules.directory {
                false
            } else {
                rules.directory = directory;
                true
            }
        };
        if changed {
            self.refresh_endpoints();
            tracing::info!("partners changed by another instance; directory reloaded");
        }
        Ok(changed)
    }

    /// What another instance may have left or changed: lapsed downlink claims published,
    /// partners reloaded. Only for a store several instances share.
    async fn sweep(&self, client: &AsyncClient) -> Result<(), String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.refresh_partners())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.publish_unclaimed(client)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The tick loop: every `period`, processes what is due; with a shared store, every
    /// [`SWEEP_EVERY`] also [`FleetHandle::sweep`]s; ends when `stop` is notified. A failing
    /// store is logged when it starts failing and when it is back, not every tick.
    pub async fn tick_loop(self, client: AsyncClient, period: Duration, stop: Arc<Notify>) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = self.store.shared();
        let mut last_sweep = tokio::time::Instant::now();
        let mut failing = false;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = stop.notified() => return,
            }
            if shared && last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = tokio::time::Instant::now();
                if let Err(e) = self.sweep(&client).await {
                    tracing::warn!(cause = %e, "sweep for other instances' work failed; retried later");
                }
            }
            let now = self.clock.now();
            let store = self.store.clone();
            let due = tokio::task::spawn_blocking(move || store.next_due(now)).await;
            // A backend that keeps its due times in memory says when; one that does not
            // (`None`) is asked every tick (its claim is cheap when nothing is due).
            if let Ok(Ok(Some(d))) = due
                && d > now
            {
                continue;
            }
            match self.tick(&client).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("fleet tick works again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(cause = %e, "fleet tick failed; retried every tick (logged again when it works)");
                }
                Err(e) => tracing::debug!(cause = %e, "fleet tick still failing"),
            }
        }
    }

    /// Notes webhook outcomes on the alerts' timelines (delivered, dead letter).
    pub async fn report_loop(self, mut rx: mpsc::Receiver<DeliveryReport>) {
        while let Some(report) = rx.recv().await {
            let (event, detail) = match &report.status {
                ReportStatus::Delivered { status } => (
                    "delivered",
                    format!(
                        "{} to {} (HTTP {status}, attempt {})",
                        report.event_type, report.partner, report.attempts
                    ),
                ),
                ReportStatus::Dead { reason, error } => (
                    "dead_letter",
                    format!(
                        "{} to {} after {} attempts: {reason:?}: {error}",
                        report.event_type, report.partner, report.attempts
                    ),
                ),
                ReportStatus::RetryScheduled { .. } => continue,
            };
            let Some(alert) = crate::fleet::core::alert_id_of_message(&report.id) else {
                continue;
            };
            let me = self.clone();
            let r = tokio::task::spawn_blocking(move || {
                let now = me.clock.now();
                me.store
                    .note_outcome(alert, event, detail, now)
                    .map_err(|e| e.to_string())
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::warn!(cause = %e, "webhook outcome not noted on the timeline");
            }
        }
    }
}
