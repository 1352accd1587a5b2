//! What every route reaches of the running cloud ([`Shared`]): the store, the counters, the
//! MQTT client, the fleet, who may call ([`super::auth::Access`]) and how often ([`super::bucket::Limiter`]), the webhook
//! counters. Built by
//! [`crate::cloud`] at start, owned by the API's router.
//!
//! Owns the state's shape and the small steps every route takes on it (run blocking work off
//! the async threads, lock the fleet, send a downlink). Does not own starting or stopping any
//! part.

use std::sync::Arc;

use rapport_shared::{DownlinkBody, Vin};
use rumqttc::AsyncClient;

use super::error::ApiError;
use crate::fleet::shell::FleetHandle;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::webhook::Counters;
use crate::{Error, downlink};

/// What the parts of a running cloud share with the API.
pub struct Shared {
    /// The store (the ingest's reads, flush).
    pub store: Store,
    /// The cloud's counters.
    pub metrics: Arc<Metrics>,
    /// The MQTT client (downlinks).
    pub client: AsyncClient,
    /// The running fleet.
    pub fleet: FleetHandle,
    /// Who may call: the operator's token digests, the audit settings.
    pub access: super::auth::Access,
    /// Every caller's token bucket ([`super::bucket`]; applied by [`super::ratelimit`]).
    pub limiter: super::bucket::Limiter,
    /// The webhook sender's counters.
    pub webhooks: Arc<Counters>,
}

impl Shared {
    /// The caller of a request, or `None` when it has no valid token (middleware use; the
    /// routes refuse such requests themselves).
    pub fn caller(&self, headers: &axum::http::HeaderMap) -> Option<super::auth::Caller> {
        super::auth::identify(headers, &self.access.operators(), |d| {
            let rules = self.fleet.rules().ok()?;
            rules.directory.by_digest(d).map(|p| p.id.clone())
        })
        .ok()
    }

    /// Publishes one downlink message to a vehicle with a fresh id; returns the id.
    ///
    /// # Errors
    /// See [`downlink::send`].
    pub async fn send_downlink(&self, vin: Vin, body: DownlinkBody) -> Result<u64, Error> {
        downlink::send(
            &self.store,
            &self.client,
            &self.metrics,
            vin,
            body,
            self.fleet.clock.now(),
        )
        .await
    }
}

/// Runs store-bound work on tokio's blocking threads.
///
/// # Errors
/// What `f` returns; 500 if the task failed.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e))?
}
