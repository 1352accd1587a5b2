//! The cloud's MQTT session: client options (persistent session, manual acks, TLS/mTLS with
//! rustls on ring) and the task that drives rumqttc's event loop.
//!
//! Owns the connection: connect, subscribe, reconnect, hand each incoming publish to the
//! ingest worker tagged with the connection it came on, and disconnect cleanly at shutdown.
//! Does not own what is done with a publish or when it is acked ([`crate::ingest::worker`]).
//!
//! The session is persistent (`clean_session = false`, a stable client id): while the cloud
//! is down or reconnecting, the broker queues the uplinks for it. Acks are manual and sent
//! only after the store is flushed. An ack names a packet id, which is meaningful only on the
//! connection the publish came on: after a reconnect the broker resends what was unacked and
//! may reuse ids, so the worker drops acks from an older connection ([`Delivery::epoch`])
//! and acks the resent copies instead (which apply as duplicates: nothing changes).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, oneshot};

use crate::config::{BrokerUrl, Config, Tls};
use crate::metrics::Metrics;

/// Requests (acks, subscribes, downlink publishes) queued for the event loop. Well above the
/// broker's in-flight window, so an ack never waits for room.
pub const REQUEST_CAPACITY: usize = 4096;
/// Outgoing QoS1 publishes (downlinks) in flight at once.
pub const OUTGOING_INFLIGHT: u16 = 100;
/// Wait between reconnect attempts.
pub const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Why the MQTT side could not be set up or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// `broker.url` is not usable (validation normally catches this first).
    #[error("broker.url: {0}")]
    Url(String),
    /// A TLS file is missing or holds no usable PEM.
    #[error("broker.tls.{key}: {file}: {reason}")]
    TlsFile {
        /// Which key (`ca`, `cert`, `key`).
        key: &'static str,
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Tls(String),
    /// The client's request queue is closed or full (the event loop is gone).
    #[error("MQTT client: {0}")]
    Client(#[from] rumqttc::ClientError),
}

/// rumqttc options for the ingest session: to the embedded broker at `embedded`, or to the
/// external broker in the config.
///
/// # Errors
/// [`MqttError::Url`], [`MqttError::TlsFile`] or [`MqttError::Tls`].
pub fn options(
    config: &Config,
    embedded: Option<std::net::SocketAddr>,
) -> Result<MqttOptions, MqttError> {
    let b = &config.broker;
    let (host, port, transport) = match embedded {
        Some(addr) => {
            // A broker bound to 0.0.0.0 or [::] is reached on loopback.
            let ip = if addr.ip().is_unspecified() {
                match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                }
            } else {
                addr.ip()
            };
            (ip.to_string(), addr.port(), Transport::Tcp)
        }
        None => {
            let url = b
                .url
                .as_deref()
                .ok_or_else(|| MqttError::Url("missing".into()))?;
            let url = BrokerUrl::parse(url).map_err(MqttError::Url)?;
            let transport = match (&b.tls, url.tls) {
                (Some(tls), true) => Transport::tls_with_config(TlsConfiguration::Rustls(
                    Arc::new(tls_config(config, tls)?),
                )),
                (None, true) => return Err(MqttError::Url("mqtts:// needs [broker.tls]".into())),
                (_, false) => Transport::Tcp,
            };
            (url.host, url.port, transport)
        }
    };
    let mut opts = MqttOptions::new(b.client_id.clone(), host, port);
    opts.set_transport(transport)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(b.keep_alive_s))
        .set_max_packet_size(b.max_packet_bytes, b.max_packet_bytes)
        .set_request_channel_capacity(REQUEST_CAPACITY)
        .set_inflight(OUTGOING_INFLIGHT);
    Ok(opts)
}

/// A rustls client config on the ring provider: the CA to trust and, for mTLS, the cloud's
/// certificate and key. Paths are relative to the config file.
///
/// # Errors
/// [`MqttError::TlsFile`] naming the file, or [`MqttError::Tls`].
pub fn tls_config(config: &Config, tls: &Tls) -> Result<rustls::ClientConfig, MqttError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs =
        |key: &'static str, path: &Path| -> Result<Vec<CertificateDer<'static>>, MqttError> {
            let file = config.resolve(path);
            let bad = |reason: String| MqttError::TlsFile {
                key,
                file: file.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(&file)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in the file".into()));
            }
            Ok(certs)
        };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs("ca", &tls.ca)? {
        roots.add(cert).map_err(|e| MqttError::TlsFile {
            key: "ca",
            file: config.resolve(&tls.ca).display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certs("cert", cert)?;
            let file = config.resolve(key);
            let key = PrivateKeyDer::from_pem_file(&file).map_err(|e| MqttError::TlsFile {
                key: "key",
                file: file.display().to_string(),
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| MqttError::Tls(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// One incoming publish for the ingest worker.
#[derive(Debug)]
pub struct Delivery {
    /// The publish as received.
    pub publish: Publish,
    /// The connection it came on (counts ConnAcks); its ack is valid only on that one.
    pub epoch: u64,
}

/// What the event-loop task shares with the rest of the cloud.
pub(crate) struct Loop {
    pub eventloop: EventLoop,
    pub client: AsyncClient,
    pub filter: String,
    pub deliveries: mpsc::UnboundedSender<Delivery>,
    pub epoch: Arc<AtomicU64>,
    pub metrics: Arc<Metrics>,
}

/// Drives the event loop until `stop` fires and the worker has finished (or the worker ends
/// on its own, after a store failure); then disconnects. Returns the worker's result.
pub(crate) async fn drive(
    l: Loop,
    mut stop: oneshot::Receiver<()>,
    mut worker_exit: oneshot::Receiver<Result<(), crate::Error>>,
) -> Result<(), crate::Error> {
    let Loop {
        mut eventloop,
        client,
        filter,
        deliveries,
        epoch,
        metrics,
    } = l;
    let mut deliveries = Some(deliveries);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            biased;
            _ = &mut stop, if !stopping => {
                // Publishes arriving from now on are neither applied nor acked: the broker
                // redelivers them to the next session. The worker drains what it has.
                stopping = true;
                deliveries = None;
            }
            exit = &mut worker_exit => {
                break exit.unwrap_or_else(|_| {
                    Err(crate::Error::Stopped("the ingest worker ended without a word".into()))
                });
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if let Some(tx) = &deliveries {
                        let epoch = epoch.load(Ordering::Acquire);
                        // The worker only goes away at shutdown or after a failure that
                        // `worker_exit` reports; a publish it cannot take is redelivered.
                        let _ = tx.send(Delivery { publish, epoch });
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    epoch.fetch_add(1, Ordering::AcqRel);
                    metrics.connects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(session_present = ack.session_present, "MQTT connected");
                    if ack.session_present {
                        // The broker kept our subscription with the session.
                        metrics.subscribed.store(true, Ordering::Relaxed);
                    } else if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                        tracing::error!(cause = %e, %filter, "cannot queue the subscription");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                        tracing::error!(%filter, "the broker refused the uplink subscription");
                    } else {
                        metrics.subscribed.store(true, Ordering::Relaxed);
                        tracing::info!(%filter, "subscribed to vehicle uplinks");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    metrics.subscribed.store(false, Ordering::Relaxed);
                    tracing::warn!(cause = %e, "MQTT connection lost; reconnecting");
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            },
        }
    };
    metrics.subscribed.store(false, Ordering::Relaxed);
    disconnect(&client, &mut eventloop).await;
    result
}

/// Sends the acks still queued, then DISCONNECT; gives up after a second.
async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let flush = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(1), flush)
        .await
        .is_err()
    {
        tracing::debug!("MQTT disconnect timed out");
    }
}
