//! The fleet's thin async shell: builds the [`Fleet`] from its settings and the store, and
//! runs what is around it — every change commits one batch and flushes before anyone is
//! told; downlinks are published after the flush (and forgotten from `Q` once handed to
//! MQTT); the webhook sender is woken; a tick task processes what time made due; a report
//! task notes webhook outcomes on the alerts' timelines.
//!
//! Owns the locking (one mutex around the fleet; the ingest thread, the tick and the API take
//! it for one batch each) and the order commit → flush → publish/wake. Does not own any
//! decision ([`Fleet`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rapport_kit::config::one_line;
use rapport_shared::{Timestamp, Vin, topic};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{Notify, mpsc};

use super::core::{Effects, Fleet, FleetError};
use super::layering::Layering;
use super::layers::LayerConfig;
use super::partners::{AlertsConfig, Directory, Partner, PartnerConfig};
use super::store::FleetStore;
use super::strategy::Strategies;
use crate::clock::SharedClock;
use crate::store::{Batch, Store, StoreError};
use crate::webhook::outbox::Outbox;
use crate::webhook::sender::{DeliveryReport, Endpoint, ReportStatus};
use crate::webhook::sign::Secret;

/// The default strategy file, built in (`config/strategies.toml`).
pub const DEFAULT_STRATEGIES: &str = include_str!("../../../config/strategies.toml");

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
    /// The fleet behind its one lock.
    pub fleet: Arc<Mutex<Fleet>>,
    /// The store (flush).
    pub store: Store,
    /// Typed fleet keys.
    pub keys: FleetStore,
    /// The clock.
    pub clock: SharedClock,
    /// Wakes the webhook sender.
    pub wake: Arc<Notify>,
    /// The cloud's counters (campaign downlinks count in `rapport_downlinks_sent_total`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Partner endpoints for the sender.
    pub endpoints: EndpointMap,
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
                },
            )),
            Err(e) => {
                tracing::error!(partner = %p.id, cause = %e, "partner secret unusable; its webhooks will fail");
                None
            }
        })
        .collect()
}

impl FleetHandle {
    /// Builds the fleet from its settings and the store at `clock.now()`: strategies,
    /// partners (config, then those added through the API), layering from scratch, the
    /// registry file imported; commits and flushes what loading decided.
    ///
    /// # Errors
    /// [`StartError`].
    pub fn start(
        settings: &FleetSettings,
        store: &Store,
        clock: SharedClock,
    ) -> Result<(Self, Effects), StartError> {
        let strategies = match &settings.strategies {
            Some(path) => {
                Strategies::load(path).map_err(|e| StartError::Strategies(e.to_string()))?
            }
            None => Strategies::from_toml("built-in config/strategies.toml", DEFAULT_STRATEGIES)
                .map_err(|e| StartError::Strategies(e.to_string()))?,
        };
        let keys = FleetStore::new(store);
        let mut directory = Directory::from_config(&settings.partners, &settings.alerts, &|v| {
            std::env::var(v).ok()
        })
        .map_err(|problems| StartError::Partners(one_line(&problems)))?;
        for p in keys.partners::<Partner>().map_err(FleetError::from)? {
            if let Err(e) = directory.upsert(p) {
                tracing::error!(cause = %e, "partner added through the API no longer fits; skipped");
            }
        }
        let endpoints: EndpointMap = Arc::new(RwLock::new(endpoints_of(&directory)));
        let outbox = Outbox::new(store.tree().clone());
        let now = clock.now();
        let mut batch = Batch::default();
        let (mut fleet, mut fx) = Fleet::load(
            keys.clone(),
            outbox,
            Layering::new(settings.layers.clone()),
            strategies,
            directory,
            settings.alerts.policy(),
            now,
            &mut batch,
        )?;
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
            for r in &entries {
                if keys
                    .registration(&r.vin)
                    .map_err(FleetError::from)?
                    .as_ref()
                    != Some(r)
                {
                    fx.merge_from(fleet.register(r, now, &mut batch)?);
                }
            }
            tracing::info!(file = %file, vehicles = entries.len(), "registry imported");
        }
        store.apply(batch).map_err(FleetError::from)?;
        store.flush().map_err(FleetError::from)?;
        let handle = Self {
            fleet: Arc::new(Mutex::new(fleet)),
            store: store.clone(),
            keys,
            clock,
            wake: Arc::new(Notify::new()),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            endpoints,
        };
        Ok((handle, fx))
    }

    /// The fleet, locked (for one batch or one read; never held across an await).
    ///
    /// # Errors
    /// [`FleetError::Store`] when a holder of the lock panicked.
    pub fn lock(&self) -> Result<MutexGuard<'_, Fleet>, FleetError> {
        self.fleet.lock().map_err(|_| {
            FleetError::Store(StoreError::Corrupt {
                what: "fleet lock".into(),
                reason: "poisoned".into(),
            })
        })
    }

    /// Runs `f` on the fleet with a fresh batch at the clock's now, commits the batch and
    /// flushes. Blocking (call from a blocking context).
    ///
    /// # Errors
    /// What `f` returns, or the store.
    pub fn commit_blocking<R>(
        &self,
        f: impl FnOnce(&mut Fleet, &mut Batch, Timestamp) -> Result<(R, Effects), FleetError>,
    ) -> Result<(R, Effects), FleetError> {
        let now = self.clock.now();
        let mut batch = Batch::default();
        let out = {
            let mut fleet = self.lock()?;
            let out = f(&mut fleet, &mut batch, now)?;
            self.store.apply(batch)?;
            out
        };
        self.store.flush()?;
        if out.1.webhooks > 0 {
            self.wake.notify_one();
        }
        Ok(out)
    }

    /// [`Self::commit_blocking`] from async code, then publishes the downlinks.
    ///
    /// # Errors
    /// As [`Self::commit_blocking`].
    pub async fn commit<R: Send + 'static>(
        &self,
        client: &AsyncClient,
        f: impl FnOnce(&mut Fleet, &mut Batch, Timestamp) -> Result<(R, Effects), FleetError>
        + Send
        + 'static,
    ) -> Result<R, FleetError> {
        let me = self.clone();
        let (r, fx) = tokio::task::spawn_blocking(move || me.commit_blocking(f))
            .await
            .map_err(|e| {
                FleetError::Store(StoreError::Corrupt {
                    what: "fleet task".into(),
                    reason: e.to_string(),
                })
            })??;
        self.publish(client, fx.downlinks).await;
        Ok(r)
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
                    if let Err(e) = self.keys.remove_downlink(id) {
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

    /// Downlinks queued before a stop: published again (the car applies an id once).
    ///
    /// # Errors
    /// The store.
    pub async fn republish_pending(&self, client: &AsyncClient) -> Result<usize, StoreError> {
        let pending = self.keys.pending_downlinks()?;
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
        let map = match self.fleet.lock() {
            Ok(f) => endpoints_of(f.directory()),
            Err(_) => return,
        };
        if let Ok(mut e) = self.endpoints.write() {
            *e = map;
        }
    }

    /// The tick loop: every `period`, processes what is due; ends when `stop` is notified.
    pub async fn tick_loop(self, client: AsyncClient, period: Duration, stop: Arc<Notify>) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = stop.notified() => return,
            }
            let now = self.clock.now();
            let due = self.fleet.lock().ok().and_then(|f| f.next_due());
            if due.is_none_or(|d| d > now) {
                continue;
            }
            match self
                .commit(&client, |fleet, batch, now| {
                    Ok(((), fleet.tick(now, batch)?))
                })
                .await
            {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(cause = %e, "fleet tick failed; retried at the next tick")
                }
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
            let me = self.clone();
            let id = report.id.clone();
            let r = tokio::task::spawn_blocking(move || {
                let now = me.clock.now();
                let mut batch = Batch::default();
                let mut fleet = me
                    .fleet
                    .lock()
                    .map_err(|_| "fleet lock poisoned".to_string())?;
                fleet
                    .delivery_outcome(&id, event, detail, now, &mut batch)
                    .map_err(|e| e.to_string())?;
                me.store.apply(batch).map_err(|e| e.to_string())
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::warn!(cause = %e, "webhook outcome not noted on the timeline");
            }
        }
    }
}
