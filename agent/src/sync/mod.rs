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
//! (`rapport_shared::v1`), nor the agent it serves: it reaches the outbox and the rules only
//! through [`Agent`], which the runtime implements.

pub(crate) mod backoff;
pub mod batch;
pub mod cn;
pub(crate) mod downlink;
pub(crate) mod inflight;
mod link;
pub(crate) mod tls;
pub(crate) mod uplink;

use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rapport_kit::config::Problem;
use rapport_shared::Vin;
use rapport_shared::v1::downlink::DownlinkMessage;
use rapport_shared::v1::uplink::Record;

use crate::config::BrokerUrl;
use crate::config::defaults::SYNC_MAX_INFLIGHT;
use crate::store::StoreError;

pub(crate) use link::run;

/// rumqttc's own window of unacknowledged publishes (its packet ids cycle through 1..=this).
pub(crate) const CLIENT_WINDOW: u16 = 100;

// `[sync].inflight` is held to at most half the client's window (the config's limit), so a
// packet id is never reused while the publish that had it is unacknowledged (see [`inflight`]).
const _: () = assert!(SYNC_MAX_INFLIGHT <= CLIENT_WINDOW as usize / 2);

/// What the sync needs of the running agent: the outbox to send from, the writes to wait
/// for, and somewhere to apply downlinks and write heartbeats. The runtime's core implements
/// it; the sync knows nothing else of the agent.
pub trait Agent: Send + Sync + 'static {
    /// Why a write through the agent failed (logged and counted; the write is retried).
    type Error: core::fmt::Display + Send + 'static;

    /// Resolves after the next successful write to the store (at once if one happened since
    /// the last call resolved). Meant for one listener, the sync.
    fn outbox_written(&self) -> impl Future<Output = ()> + Send + '_;

    /// Up to `limit` outbox records from sequence number `from` on, in order.
    ///
    /// # Errors
    /// The store could not be read.
    fn outbox_from(&self, from: u64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// Removes acknowledged records from the outbox.
    ///
    /// # Errors
    /// The store could not be written (the records are sent again later).
    fn outbox_remove(&self, seqs: &[u64]) -> Result<(), StoreError>;

    /// Writes a heartbeat record; blocks until it is on disk.
    ///
    /// # Errors
    /// The store could not be written.
    fn heartbeat(&self, version: &str, uptime_s: u64) -> Result<(), Self::Error>;

    /// Applies one downlink message once; blocks until that is on disk. `Ok(Some(why))`: the
    /// agent refused the message (it is recorded as applied all the same).
    ///
    /// # Errors
    /// The store could not be written (the message is not acknowledged, so it comes again).
    fn downlink(&self, message: &DownlinkMessage) -> Result<Option<String>, Self::Error>;
}

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

/// Everything the link needs, resolved from the config with its TLS files read (built by
/// `crate::settings::sync`).
#[derive(Clone)]
pub struct Settings {
    /// The car.
    pub(crate) vin: Vin,
    /// The MQTT client id.
    pub(crate) client_id: String,
    /// The broker.
    pub(crate) broker: BrokerUrl,
    /// MQTT keep-alive.
    pub(crate) keep_alive: Duration,
    /// Batch bounds.
    pub(crate) limits: batch::Limits,
    /// Batches in flight at most.
    pub(crate) inflight: usize,
    /// Reconnect backoff floor.
    pub(crate) backoff_min: Duration,
    /// Reconnect backoff ceiling.
    pub(crate) backoff_max: Duration,
    /// Heartbeat period.
    pub(crate) heartbeat: Duration,
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

/// The sync's counters, shared between the link and its handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
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
    pub(crate) acked: u64,
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
    /// Downlink publishes refused (wrong topic or VIN, undecodable, too large), and messages
    /// in a good publish the agent refused (a schedule that fails its checks).
    pub downlinks_rejected: u64,
    /// Downlink subscriptions the broker confirmed (one per new session).
    pub subscribed: u64,
    /// Store reads, removals or writes that failed (retried).
    pub(crate) store_errors: u64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> CounterSnapshot {
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

/// Starts the sync for `agent` on the current tokio runtime until `shutdown` resolves.
pub fn spawn<A: Agent>(
    agent: Arc<A>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> SyncHandle {
    let counters = Arc::new(Counters::default());
    let task = tokio::spawn(run(agent, settings, Arc::clone(&counters), shutdown));
    SyncHandle { counters, task }
}
