//! The sync: the outbox goes up to the cloud over MQTT, the cloud's downlinks come down.
//!
//! - Uplink: records leave the sled outbox in sequence order, in batches
//!   ([`batch`]: by count, encoded bytes and age), as QoS 1 publishes on
//!   `rapport/v1/{vin}/up`, at most `[sync].inflight` unacknowledged at once. A record is removed
//!   from the outbox only when the broker acknowledged the publish that carried it
//!   ([`inflight`]); after any reconnect everything unacknowledged is sent again from the first
//!   unacknowledged seq ([`uplink`]). Duplicates are possible, losses are not: the cloud drops
//!   duplicates by (VIN, seq).
//! - Downlink: a QoS 1 subscription to `rapport/v1/{vin}/down` in a persistent session
//!   (`clean_session = false`, so what the cloud sends while the car is offline waits at the
//!   broker). Each message is checked ([`downlink`]), applied once through the rules (which
//!   remember applied ids on disk), and acknowledged only after that write — in order. A
//!   message that fails the checks is counted and acknowledged, so it is not redelivered forever.
//! - A heartbeat record every `[sync].heartbeat_s` (and one at start): version, uptime, outbox
//!   depth and the records dropped from a full outbox since the last one.
//! - Reconnects wait a jittered exponential backoff ([`backoff`]).
//!
//! The pure parts ([`batch`], [`inflight`], [`uplink`], [`backoff`], [`downlink`]) take the time
//! as an argument; [`link`] is the thin async shell around rumqttc that owns its event loop.
//!
//! Owns: the link to the broker and the outbox's cursor. Does not own: the outbox's contents or
//! bound ([`crate::store`]), what a downlink means ([`crate::rules`]), the wire format
//! (`rapport_shared::v1`).

pub mod backoff;
pub mod batch;
pub mod downlink;
pub mod inflight;
mod link;
pub mod tls;
pub mod uplink;

use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rapport_shared::Vin;

use crate::config::{BrokerUrl, Config, Problem};
use crate::runtime::Core;

pub use link::run;

/// rumqttc's own window of unacknowledged publishes (its packet ids cycle through 1..=this).
pub const CLIENT_WINDOW: u16 = 100;
/// The most `[sync].inflight` may be: half the client's window, so a packet id is never reused
/// while the publish that had it is unacknowledged (see [`inflight`]).
pub const MAX_INFLIGHT: usize = CLIENT_WINDOW as usize / 2;

/// Why the sync cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The `[sync]` section or its TLS files are unusable.
    #[error("[sync]: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config {
        /// Each problem with its key path.
        problems: Vec<Problem>,
    },
}

/// Everything the link needs, resolved from the config (TLS files read).
#[derive(Clone)]
pub struct Settings {
    /// The car.
    pub vin: Vin,
    /// The MQTT client id.
    pub client_id: String,
    /// The broker.
    pub broker: BrokerUrl,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Batch bounds.
    pub limits: batch::Limits,
    /// Batches in flight at most.
    pub inflight: usize,
    /// Reconnect backoff floor.
    pub backoff_min: Duration,
    /// Reconnect backoff ceiling.
    pub backoff_max: Duration,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// TLS client config (None: plain TCP).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl core::fmt::Debug for Settings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Settings")
            .field("vin", &self.vin)
            .field("client_id", &self.client_id)
            .field("broker", &self.broker.to_string())
            .field("limits", &self.limits)
            .field("inflight", &self.inflight)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// From a validated config; `None` without `[sync]`.
    ///
    /// # Errors
    /// [`SyncError::Config`] when a value is out of range or a TLS file cannot be used.
    pub fn from_config(config: &Config) -> Result<Option<Self>, SyncError> {
        let Some(s) = &config.sync else {
            return Ok(None);
        };
        let problems: Vec<Problem> = config
            .validate()
            .into_iter()
            .filter(|p| p.path.starts_with("sync."))
            .collect();
        if !problems.is_empty() {
            return Err(SyncError::Config { problems });
        }
        let tls =
            tls::client_config(config, s).map_err(|problems| SyncError::Config { problems })?;
        Ok(Some(Self {
            vin: config.vehicle.vin,
            client_id: s
                .client_id
                .clone()
                .unwrap_or_else(|| config.vehicle.vin.to_string()),
            broker: s.broker.clone(),
            keep_alive: Duration::from_secs(u64::from(s.keep_alive_s)),
            limits: batch::Limits {
                max_records: s.batch_max_records,
                max_bytes: s.batch_max_bytes,
                max_age: Duration::from_millis(s.batch_max_age_ms),
            },
            inflight: s.inflight,
            backoff_min: Duration::from_millis(s.backoff_min_ms),
            backoff_max: Duration::from_millis(s.backoff_max_ms),
            heartbeat: Duration::from_secs(s.heartbeat_s),
            tls,
        }))
    }
}

/// The sync's counters, shared between the link and its handle.
#[derive(Debug, Default)]
pub struct Counters {
    connected: AtomicBool,
    published: AtomicU64,
    published_records: AtomicU64,
    acked: AtomicU64,
    acked_records: AtomicU64,
    resent_records: AtomicU64,
    connects: AtomicU64,
    reconnects: AtomicU64,
    downlinks_applied: AtomicU64,
    downlinks_rejected: AtomicU64,
    subscribed: AtomicU64,
    store_errors: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Whether the link is up now.
    pub connected: bool,
    /// Uplinks handed to the MQTT client.
    pub published: u64,
    /// Records in them (resends included).
    pub published_records: u64,
    /// Uplinks the broker acknowledged.
    pub acked: u64,
    /// Records in them (removed from the outbox).
    pub acked_records: u64,
    /// Records published again after a reconnect.
    pub resent_records: u64,
    /// Connections established (ConnAck received).
    pub connects: u64,
    /// Connections lost or failed attempts.
    pub reconnects: u64,
    /// Downlink messages handed to the rules and written.
    pub downlinks_applied: u64,
    /// Downlink publishes refused (wrong topic or VIN, undecodable, too large).
    pub downlinks_rejected: u64,
    /// Downlink subscriptions the broker confirmed (one per new session).
    pub subscribed: u64,
    /// Store reads, removals or writes that failed (retried).
    pub store_errors: u64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            published: get(&self.published),
            published_records: get(&self.published_records),
            acked: get(&self.acked),
            acked_records: get(&self.acked_records),
            resent_records: get(&self.resent_records),
            connects: get(&self.connects),
            reconnects: get(&self.reconnects),
            downlinks_applied: get(&self.downlinks_applied),
            downlinks_rejected: get(&self.downlinks_rejected),
            subscribed: get(&self.subscribed),
            store_errors: get(&self.store_errors),
        }
    }
}

/// A running sync: its counters and its task.
#[derive(Debug)]
pub struct SyncHandle {
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<Result<(), crate::Error>>,
}

impl SyncHandle {
    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// The shared counters (for a metrics endpoint that outlives the handle).
    pub fn shared_counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Waits for the sync to end (after its shutdown future resolved).
    ///
    /// # Errors
    /// The task panicked or was cancelled.
    pub async fn join(self) -> Result<(), crate::Error> {
        self.task.await.map_err(|e| crate::Error::Io {
            context: "sync task".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }
}

/// Starts the sync on the current tokio runtime until `shutdown` resolves.
pub fn spawn(
    core: Arc<Core>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> SyncHandle {
    let counters = Arc::new(Counters::default());
    let task = tokio::spawn(run(core, settings, Arc::clone(&counters), shutdown));
    SyncHandle { counters, task }
}
