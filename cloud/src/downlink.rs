//! Sending downlinks: one message per MQTT publish, QoS1, on `rapport/v1/{vin}/down`, each
//! with a fresh id from the store's persisted counter (the agent applies an id once).
//!
//! Owns building the envelope and publishing it. Does not own deciding what to send (the
//! operator API today, strategies next) nor the car's handling of it.
//!
//! The vehicles' sessions are persistent, so the broker queues a downlink for a car that is
//! offline. The publish returns once rumqttc has queued it; rumqttc retries it until the
//! broker acks, but only while this process lives.

use rapport_shared::{Downlink, DownlinkBody, DownlinkMessage, Timestamp, Vin, topic};
use rumqttc::{AsyncClient, QoS};

use crate::Error;
use crate::metrics::Metrics;
use crate::store::Store;

/// The envelope for one message.
pub fn envelope(vin: Vin, id: u64, at: Timestamp, body: DownlinkBody) -> Downlink {
    Downlink {
        vin,
        messages: vec![DownlinkMessage { id, at, body }],
    }
}

/// Publishes one downlink message; returns its id.
///
/// # Errors
/// [`Error::Wire`] if the message does not encode (too large), [`Error::Store`] if no id can
/// be had, [`Error::Mqtt`] if the client is gone.
pub async fn send(
    store: &Store,
    client: &AsyncClient,
    metrics: &Metrics,
    vin: Vin,
    body: DownlinkBody,
    now: Timestamp,
) -> Result<u64, Error> {
    let kind = body.tag();
    // Encode with a placeholder id first: a message too large is refused without using an id.
    envelope(vin, u64::MAX, now, body.clone()).encode()?;
    let id = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.next_downlink_id())
            .await
            .map_err(|e| crate::store::StoreError::corrupt("downlink id task", e))??
    };
    let bytes = envelope(vin, id, now, body).encode()?;
    client
        .publish(topic::downlink(&vin), QoS::AtLeastOnce, false, bytes)
        .await
        .map_err(crate::mqtt::MqttError::from)?;
    metrics
        .downlinks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(%vin, id, kind, "downlink sent");
    Ok(id)
}
