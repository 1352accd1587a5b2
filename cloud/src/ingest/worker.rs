//! The ingest worker: the thin shell around [`super::check`] and [`super::plan`]. It takes
//! publishes from the MQTT loop, applies them to the store, flushes, and only then acks them.
//!
//! Owns the order store-write → durable → ack, and grouping: it takes every publish already
//! waiting (up to `ingest.group_max_envelopes`), hands the checked envelopes to the store port
//! as one group (sled: one batch each, ONE flush; PostgreSQL: one transaction), then acks them
//! all in arrival order (rumqttc requires acks in order). A crash anywhere before an ack means the broker redelivers, and the redelivered
//! envelope applies as duplicates. Rejected publishes are acked too, in their place.
//!
//! A store that is only unavailable (PostgreSQL restarting) stops the acks, not the worker:
//! the group is tried again until it commits (see [`Worker::ingest_until_durable`]).
//!
//! It runs on its own thread: the store port is blocking, and the MQTT event loop must keep
//! turning (pings, acks) while the store works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rapport_shared::{Timestamp, Uplink};
use rumqttc::AsyncClient;
use tokio::sync::{mpsc, oneshot};

use super::{RejectReason, check};
use crate::clock::SharedClock;
use crate::fleet::shell::FleetHandle;
use crate::metrics::Metrics;
use crate::mqtt::Delivery;
use crate::store::{Envelope, Ingested, Store};

/// The first wait before the ingest tries a group again on an unavailable store.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between tries (the ingest resumes at most this long after the store
/// returns, plus the pool's wait for a connection).
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// The wall clock, unix ms: the one clock read of the ingest (the core takes it as input).
pub fn wall_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

/// Everything the worker needs.
pub(crate) struct Worker {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub client: AsyncClient,
    pub runtime: tokio::runtime::Handle,
    pub epoch: Arc<AtomicU64>,
    pub max_payload_bytes: usize,
    pub group_max_envelopes: usize,
    /// The fleet side: its effects of a record go in the record's batch.
    pub fleet: Option<FleetHandle>,
    /// The cloud's clock.
    pub clock: SharedClock,
}

impl Worker {
    /// Starts the worker thread; it ends when `rx` closes (after draining it) or on a store
    /// failure, and reports which on `exit`.
    pub(crate) fn spawn(
        self,
        rx: mpsc::UnboundedReceiver<Delivery>,
        exit: oneshot::Sender<Result<(), crate::Error>>,
    ) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("rapport-ingest".into())
            .spawn(move || {
                let result = self.run(rx);
                if let Err(e) = &result {
                    tracing::error!(cause = %e, "ingest stopped");
                }
                let _ = exit.send(result);
            })
            .map(drop)
    }

    fn run(self, mut rx: mpsc::UnboundedReceiver<Delivery>) -> Result<(), crate::Error> {
        let mut limiter = LogLimit::default();
        let mut group = Vec::with_capacity(self.group_max_envelopes);
        while let Some(first) = rx.blocking_recv() {
            group.push(first);
            while group.len() < self.group_max_envelopes {
                match rx.try_recv() {
                    Ok(d) => group.push(d),
                    Err(_) => break,
                }
            }
            let uplinks: Vec<Uplink> = group
                .iter()
                .filter_map(|d| self.check(d, &mut limiter))
                .collect();
            let mut applied = None;
            if !uplinks.is_empty() {
                let Some(ingested) = self.ingest_until_durable(&uplinks, &rx)? else {
                    // Stopping while the store is away: nothing of the group is acked; the
                    // broker redelivers it to the next session.
                    tracing::warn!(
                        publishes = group.len(),
                        "stopping while the store is unavailable; unacked uplinks stay with the broker"
                    );
                    return Ok(());
                };
                if let Some(micros) = ingested.durable_micros {
                    self.metrics.flushes.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .flush_micros
                        .fetch_add(micros, Ordering::Relaxed);
                }
                if ingested.late_dropped > 0 {
                    self.metrics
                        .late_records_dropped
                        .fetch_add(ingested.late_dropped, Ordering::Relaxed);
                }
                for (uplink, outcome) in uplinks.iter().zip(&ingested.envelopes) {
                    self.applied(uplink, outcome, &mut limiter);
                }
                applied = Some(ingested.applied);
            }
            // Durable now (or nothing to write): ack, in arrival order.
            for d in group.drain(..) {
                self.ack(&d);
            }
            if let (Some(fleet), Some(applied)) = (&self.fleet, applied) {
                fleet.noted(&applied);
                let downlinks = applied.effects.downlinks;
                if !downlinks.is_empty() {
                    self.runtime
                        .block_on(fleet.publish(&self.client, downlinks));
                }
            }
        }
        Ok(())
    }

    /// Hands the group to the store until it is durable. While the store is only unavailable
    /// (PostgreSQL gone, restarting, overloaded: [`StoreError::is_unavailable`]) nothing is
    /// acked — the broker keeps the uplinks — the store is reported down (`/healthz`,
    /// `rapport_store_up`) and the same group is tried again, backing off to
    /// [`RETRY_MAX`]; once a try commits, the store is reported up again. `None` when the
    /// cloud stops meanwhile (the MQTT loop has let go of `rx`). Any other store failure
    /// ends the ingest, as before.
    ///
    /// [`StoreError::is_unavailable`]: crate::store::StoreError::is_unavailable
    fn ingest_until_durable(
        &self,
        uplinks: &[Uplink],
        rx: &mpsc::UnboundedReceiver<Delivery>,
    ) -> Result<Option<Ingested>, crate::Error> {
        let mut wait = RETRY_FIRST;
        loop {
            // The clock is read per try: effects decided after an outage are decided at the
            // time they are made.
            let now = self.clock.now();
            let tried = match &self.fleet {
                Some(fleet) => {
                    let rules = fleet
                        .rules()
                        .map_err(|e| crate::Error::Stopped(format!("fleet rules: {e}")))?;
                    self.store.ingest(Some(&rules), uplinks, now)
                }
                None => self.store.ingest(None, uplinks, now),
            };
            match tried {
                Ok(ingested) => {
                    if self.metrics.store_up(true) {
                        tracing::info!("store back; the ingest applies and acks again");
                    }
                    return Ok(Some(ingested));
                }
                Err(e) if e.is_unavailable() => {
                    self.metrics.ingest_retries.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .store_full
                        .store(e.is_storage_full(), Ordering::Release);
                    if self.metrics.store_up(false) {
                        tracing::error!(
                            cause = %e,
                            "store unavailable: not acking (the broker keeps the uplinks); retrying until it returns"
                        );
                    } else {
                        tracing::debug!(cause = %e, "store still unavailable");
                    }
                    if rx.is_closed() {
                        return Ok(None);
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Checks one publish; the envelope, or `None` for a refused one (counted, logged).
    fn check(&self, d: &Delivery, limiter: &mut LogLimit) -> Option<Uplink> {
        self.metrics.messages.fetch_add(1, Ordering::Relaxed);
        let topic = d.publish.topic.as_str();
        match check(topic, &d.publish.payload, self.max_payload_bytes) {
            Ok(uplink) => Some(uplink),
            Err(rejected) => {
                self.metrics.reject(rejected.reason);
                if limiter.admit(rejected.reason) {
                    tracing::warn!(
                        topic = %topic.chars().take(128).collect::<String>(),
                        reason = rejected.reason.as_str(),
                        detail = %rejected.detail,
                        "uplink rejected"
                    );
                }
                None
            }
        }
    }

    /// Counts and logs what one envelope came to.
    fn applied(&self, uplink: &Uplink, outcome: &Envelope, limiter: &mut LogLimit) {
        match outcome {
            Envelope::Unreadable { what, reason } => {
                self.metrics.reject(RejectReason::StateUnreadable);
                tracing::error!(vin = %uplink.vin, %what, %reason, "vehicle state unreadable; uplink dropped");
            }
            Envelope::Applied(stats) => {
                if stats.too_large > 0 && limiter.admit(RejectReason::RecordTooLarge) {
                    tracing::warn!(
                        vin = %uplink.vin,
                        records = stats.too_large,
                        reason = RejectReason::RecordTooLarge.as_str(),
                        "records applied but too large for the record log"
                    );
                }
                self.metrics.applied(stats);
                tracing::debug!(
                    vin = %uplink.vin,
                    applied = stats.applied,
                    duplicates = stats.duplicates,
                    "uplink applied"
                );
            }
        }
    }

    fn ack(&self, d: &Delivery) {
        if d.epoch != self.epoch.load(Ordering::Acquire) {
            // The connection it came on is gone; the broker resends it on the new one.
            self.metrics.stale_acks.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.runtime.block_on(self.client.ack(&d.publish)) {
            Ok(()) => {
                self.metrics.acks.fetch_add(1, Ordering::Relaxed);
            }
            // The event loop is gone (shutting down): the broker redelivers.
            Err(e) => tracing::debug!(cause = %e, "ack not sent"),
        }
    }
}

/// At most [`LogLimit::BURST`] warnings per reason per [`LogLimit::WINDOW`]: a hostile client
/// flooding garbage is counted in full but cannot flood the log.
#[derive(Default)]
struct LogLimit {
    windows: [(Option<Instant>, u32, u64); RejectReason::ALL.len()],
}

impl LogLimit {
    const BURST: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(10);

    fn admit(&mut self, reason: RejectReason) -> bool {
        let Some((start, logged, suppressed)) = self.windows.get_mut(reason.index()) else {
            return true;
        };
        let now = Instant::now();
        if start.is_none_or(|s| now.duration_since(s) >= Self::WINDOW) {
            if *suppressed > 0 {
                tracing::warn!(
                    reason = reason.as_str(),
                    suppressed = *suppressed,
                    "more uplinks rejected than logged"
                );
            }
            *start = Some(now);
            *logged = 0;
            *suppressed = 0;
        }
        if *logged < Self::BURST {
            *logged += 1;
            true
        } else {
            *suppressed += 1;
            false
        }
    }
}
