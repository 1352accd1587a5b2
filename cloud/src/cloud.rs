//! [`Cloud`]: the running cloud (store, optional embedded broker, MQTT ingest, HTTP API), and
//! [`run`], which the binary calls.
//!
//! Owns starting the parts in order, wiring them, and stopping them in order: the API stops,
//! the MQTT loop stops handing out publishes, the ingest worker applies and flushes what it
//! has and acks it, then the client disconnects. It is the one reader of the whole config:
//! each part gets its own values (the fleet its [`FleetSettings`], the API its
//! [`Shared`] state). Does not own any part's logic.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rapport_shared::{DownlinkBody, Vin};
use rumqttc::AsyncClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::api::state::Shared;
use crate::broker::EmbeddedBroker;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::fleet::shell::{FleetHandle, FleetSettings};
use crate::ingest::worker::Worker;
use crate::metrics::Metrics;
use crate::mqtt::{self, Loop};
use crate::store::Store;
use crate::webhook::sender::{Counters, Sender, SenderConfig};
use crate::{Error, api};

/// Where a started cloud listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The HTTP API.
    pub api: SocketAddr,
    /// The embedded broker, if this cloud runs one.
    pub broker: Option<SocketAddr>,
}

/// A running cloud.
pub struct Cloud {
    shared: Arc<Shared>,
    ready: Ready,
    _broker: Option<EmbeddedBroker>,
    stop_mqtt: Option<oneshot::Sender<()>>,
    mqtt: JoinHandle<Result<(), Error>>,
    stop_api: Option<oneshot::Sender<()>>,
    api: JoinHandle<()>,
    stop_fleet: Arc<tokio::sync::Notify>,
    stop_sender: Option<oneshot::Sender<()>>,
    sender: JoinHandle<()>,
    tick: JoinHandle<()>,
    probe: Option<JoinHandle<()>>,
    stop_retention: Arc<tokio::sync::Notify>,
    retention: JoinHandle<()>,
    /// The audit log's pruning by age ([`crate::api::audit::prune_loop`]).
    audit_prune: JoinHandle<()>,
}

impl Cloud {
    /// Starts everything the config asks for. Returns once the store is open, the embedded
    /// broker (if any) and the API listen; the MQTT session connects in the background (see
    /// [`Cloud::wait_subscribed`]).
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The first part that cannot start: store, broker, MQTT options, API socket.
    pub async fn start(config: &Config) -> Result<Self, Error> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Cloud::start`] with a given clock (tests move time with a
    /// [`crate::clock::ManualClock`]).
    ///
    /// # Errors
    /// As [`Cloud::start`], and the fleet's start (strategies, partners, registry, token).
    pub async fn start_with_clock(config: &Config, clock: SharedClock) -> Result<Self, Error> {
        let store = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Store::open(&config))
                .await
                .map_err(|e| Error::Stopped(format!("store open: {e}")))??
        };
        tracing::info!(backend = store.kind(), "store open");
        let token = api::auth::operator_token(&config.api, &config.store_path())?;
        let settings = FleetSettings::from_config(config);
        let (mut fleet, loaded) = {
            let (store, clock) = (store.clone(), Arc::clone(&clock));
            tokio::task::spawn_blocking(move || FleetHandle::start(&settings, &store, clock))
                .await
                .map_err(|e| Error::Stopped(format!("fleet start: {e}")))??
        };
        // Several instances may send from one PostgreSQL outbox: each claims what it sends,
        // for twice an attempt's timeout (at least a minute) should it die meanwhile.
        let claim = crate::store::Claim {
            holder: crate::store::instance_name(),
            lease: Duration::from_secs(config.webhooks.timeout_s.saturating_mul(2).max(60)),
        };
        tracing::info!(holder = %claim.holder, lease_s = claim.lease.as_secs(), "webhook sender");
        let sender = Sender::new(
            store.outbox(),
            Arc::clone(&fleet.endpoints) as Arc<dyn crate::webhook::sender::Endpoints>,
            Arc::clone(&clock),
            SenderConfig {
                concurrency: config.webhooks.concurrency,
                timeout: Duration::from_secs(config.webhooks.timeout_s),
                keep_delivered: Duration::from_secs(
                    config
                        .retention
                        .delivered_days_or(config.webhooks.keep_delivered_days)
                        .saturating_mul(86_400),
                ),
                claim,
                ..SenderConfig::default()
            },
        )
        .map_err(|e| Error::Stopped(format!("webhook sender: {e}")))?;
        fleet.wake = sender.waker();
        let webhooks = sender.counters();
        let metrics = Arc::new(Metrics::default());
        fleet.metrics = Arc::clone(&metrics);
        let vehicles = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.count_vehicles())
                .await
                .map_err(|e| Error::Stopped(format!("store: {e}")))??
        };
        metrics.vehicles.store(vehicles, Ordering::Relaxed);

        let broker = if config.broker.embedded {
            Some(EmbeddedBroker::start(
                config.broker.listen_addr(),
                config.broker.max_packet_bytes,
            )?)
        } else {
            None
        };
        let options = mqtt::options(config, broker.as_ref().map(EmbeddedBroker::addr))?;
        let (client, eventloop) = AsyncClient::new(options, mqtt::REQUEST_CAPACITY);

        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .map_err(|source| Error::Listen {
                what: "api",
                addr: config.api.listen,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| Error::Listen {
            what: "api",
            addr: config.api.listen,
            source,
        })?;

        let epoch = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        Worker {
            store: store.clone(),
            metrics: Arc::clone(&metrics),
            client: client.clone(),
            runtime: tokio::runtime::Handle::current(),
            epoch: Arc::clone(&epoch),
            max_payload_bytes: config.ingest.max_payload_bytes,
            group_max_envelopes: config.ingest.group_max_envelopes,
            fleet: Some(fleet.clone()),
            clock: Arc::clone(&clock),
        }
        .spawn(rx, exit_tx)
        .map_err(|e| Error::Stopped(format!("cannot start the ingest thread: {e}")))?;

        let (stop_mqtt, stop_rx) = oneshot::channel();
        let filter = config.broker.uplink_filter();
        tracing::info!(%filter, client_id = %config.broker.client_id, "ingest starting");
        let mqtt = tokio::spawn(mqtt::drive(
            Loop {
                eventloop,
                client: client.clone(),
                filter,
                deliveries: tx,
                epoch,
                metrics: Arc::clone(&metrics),
            },
            stop_rx,
            exit_rx,
        ));

        // Webhooks: the sender and the task noting outcomes on timelines.
        let (reports_tx, reports_rx) = mpsc::channel(1024);
        let (stop_sender, stop_sender_rx) = oneshot::channel::<()>();
        let sender = tokio::spawn(async move {
            let stop = async move {
                let _ = stop_sender_rx.await;
            };
            if let Err(e) = sender.run(reports_tx, stop).await {
                tracing::error!(cause = %e, "webhook sender stopped");
            }
        });
        tokio::spawn(fleet.clone().report_loop(reports_rx));
        // Downlinks decided at load or left from before a stop, then the tick.
        {
            let (fleet, client) = (fleet.clone(), client.clone());
            tokio::spawn(async move {
                fleet.noted(&loaded);
                fleet.publish(&client, loaded.effects.downlinks).await;
                if let Err(e) = fleet.publish_unclaimed(&client).await {
                    tracing::error!(cause = %e, "queued downlinks unreadable");
                }
            });
        }
        let probe = store
            .shared()
            .then(|| tokio::spawn(probe_store(store.clone(), Arc::clone(&metrics))));
        let stop_fleet = Arc::new(tokio::sync::Notify::new());
        let tick = tokio::spawn(fleet.clone().tick_loop(
            client.clone(),
            Duration::from_millis(config.fleet.tick_ms.max(10)),
            Arc::clone(&stop_fleet),
        ));
        fleet.wake.notify_one();
        // Retention: bounded pruning passes on the cloud's clock, at the fleet tick's pace.
        let stop_retention = Arc::new(tokio::sync::Notify::new());
        let retention = tokio::spawn(crate::retention::run_loop(
            Arc::new(crate::retention::Pruner::new(
                config.retention.days(config.webhooks.keep_delivered_days),
                config.retention.pass_limit,
                Arc::clone(&metrics.retention),
            )),
            store.clone(),
            Arc::clone(&clock),
            Duration::from_millis(config.fleet.tick_ms.max(10)),
            Duration::from_secs(config.retention.every_s),
            Arc::clone(&stop_retention),
        ));

        let shared = Arc::new(Shared {
            store,
            metrics,
            client,
            fleet,
            access: crate::api::auth::Access::new(
                &std::iter::once(token)
                    .chain(crate::api::auth::previous_operator_token(&config.api)?)
                    .collect::<Vec<_>>(),
                config.audit,
            ),
            limiter: crate::api::ratelimit::Limiter::new(config.api.rate_limit),
            webhooks,
        });
        crate::api::audit::reload_operator_tokens(&shared).await;
        let audit_prune = tokio::spawn(crate::api::audit::prune_loop(Arc::clone(&shared)));
        let (stop_api, api_stop_rx) = oneshot::channel::<()>();
        let app = api::router(Arc::clone(&shared));
        let api = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = api_stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(cause = %e, "API server stopped");
            }
        });
        tracing::info!(%api_addr, "API listening");

        Ok(Self {
            ready: Ready {
                api: api_addr,
                broker: broker.as_ref().map(EmbeddedBroker::addr),
            },
            shared,
            _broker: broker,
            stop_mqtt: Some(stop_mqtt),
            mqtt,
            stop_api: Some(stop_api),
            api,
            stop_fleet,
            stop_sender: Some(stop_sender),
            sender,
            tick,
            probe,
            stop_retention,
            retention,
            audit_prune,
        })
    }

    /// Where it listens.
    pub fn ready(&self) -> Ready {
        self.ready
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The fleet (layers, alerts, strategies).
    pub fn fleet(&self) -> &FleetHandle {
        &self.shared.fleet
    }

    /// Runs one fleet tick now (what the tick task does every `fleet.tick_ms`): tests that
    /// move a [`crate::clock::ManualClock`] call it to process what became due.
    ///
    /// # Errors
    /// The fleet's store.
    pub async fn tick_now(&self) -> Result<crate::fleet::core::Effects, Error> {
        Ok(self.shared.fleet.tick(&self.shared.client).await?)
    }

    /// Runs one pass of the audit log's pruning now, at the cloud's clock (what the pruning
    /// task does every hour of it): entries older than `[audit] days` go, at most
    /// [`crate::audit::PRUNE_BATCH`]; how many.
    ///
    /// # Errors
    /// The store.
    pub async fn prune_audit_now(&self) -> Result<usize, Error> {
        let shared = Arc::clone(&self.shared);
        Ok(
            tokio::task::spawn_blocking(move || crate::api::audit::prune_once(&shared))
                .await
                .map_err(|e| Error::Stopped(format!("audit prune: {e}")))??,
        )
    }

    /// The webhook sender's counters.
    pub fn webhook_counters(&self) -> &Counters {
        &self.shared.webhooks
    }

    /// Webhooks due now or being sent (0 when the sender has nothing to do before a later
    /// retry): the testbed waits for 0 before moving simulated time on.
    ///
    /// # Errors
    /// The outbox could not be read.
    pub fn webhooks_due(&self) -> Result<usize, Error> {
        let now = self.shared.fleet.clock.now();
        let outbox = self.shared.store.outbox();
        let read = || {
            outbox
                .due_except(now, 1_000, &mut |_| false)
                .map(|d| d.messages.len())
                .map_err(|e| Error::Stopped(format!("webhook outbox: {e}")))
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            // Called from async code on a multi-thread runtime: the port blocks, so step out
            // of the runtime's way (a current-thread runtime can only be blocked: fine for
            // sled, not for PostgreSQL's client).
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(read),
            _ => read(),
        }
    }

    /// The store (reads only; the ingest writes).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Waits until the uplink subscription is in place; false after `timeout`.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.shared.metrics.subscribed.load(Ordering::Relaxed) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Publishes one downlink message to a vehicle (QoS1, `rapport/v1/{vin}/down`) with a
    /// fresh id; returns the id.
    ///
    /// # Errors
    /// See [`downlink::send`].
    pub async fn send_downlink(&self, vin: Vin, body: DownlinkBody) -> Result<u64, Error> {
        self.shared.send_downlink(vin, body).await
    }

    /// Resolves if the ingest stops on its own (a store failure), with why. Not public: the
    /// MQTT task's handle must not be awaited again after this returns.
    async fn stopped(&mut self) -> Error {
        match (&mut self.mqtt).await {
            Ok(Ok(())) => Error::Stopped("the MQTT loop ended".into()),
            Ok(Err(e)) => e,
            Err(e) => Error::Stopped(format!("the MQTT loop failed: {e}")),
        }
    }

    /// Stops in order (API, MQTT hand-off, worker drain and flush, acks, disconnect).
    ///
    /// # Errors
    /// The ingest's failure, if it had one.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(probe) = self.probe.take() {
            probe.abort();
        }
        self.audit_prune.abort();
        if let Some(stop) = self.stop_api.take() {
            let _ = stop.send(());
        }
        self.stop_fleet.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.tick).await;
        self.stop_retention.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.retention).await;
        if let Some(stop) = self.stop_sender.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.sender).await;
        if let Some(stop) = self.stop_mqtt.take() {
            let _ = stop.send(());
        }
        let result = match (&mut self.mqtt).await {
            Ok(r) => r,
            Err(e) => Err(Error::Stopped(format!("the MQTT loop failed: {e}"))),
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.api).await;
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| Error::Stopped(format!("store flush: {e}")))??;
        result
    }
}

/// How often a shared store (PostgreSQL) is probed between ingests.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Probes the store every [`PROBE_EVERY`] so `/healthz` and `rapport_store_up` tell an
/// outage even when no uplink is waiting (the ingest reports it too, on its own tries).
async fn probe_store(store: Store, metrics: Arc<Metrics>) {
    let mut interval = tokio::time::interval(PROBE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let s = store.clone();
        let answer = tokio::task::spawn_blocking(move || s.ping(PROBE_EVERY)).await;
        match answer {
            Ok(Ok(())) => {
                if metrics.store_up(true) {
                    tracing::info!("store answers again");
                }
            }
            Ok(Err(e)) => {
                if metrics.store_up(false) {
                    tracing::error!(cause = %e, "store unavailable");
                }
            }
            Err(e) => tracing::warn!(cause = %e, "store probe task failed"),
        }
    }
}

/// Runs the cloud until `shutdown` resolves (or the ingest fails). `ready` learns where it
/// listens once it does.
///
/// # Errors
/// A part that cannot start, or the ingest's failure.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    ready: Option<oneshot::Sender<Ready>>,
) -> Result<(), Error> {
    let mut cloud = Cloud::start(&config).await?;
    if let Some(tx) = ready {
        let _ = tx.send(cloud.ready());
    }
    let failed = tokio::select! {
        () = shutdown => None,
        err = cloud.stopped() => Some(err),
    };
    match failed {
        None => cloud.shutdown().await,
        Some(err) => {
            // The MQTT loop has ended (it reported the worker's failure): stop the API only.
            if let Some(stop) = cloud.stop_api.take() {
                let _ = stop.send(());
            }
            Err(err)
        }
    }
}
