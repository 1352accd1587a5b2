//! The embedded MQTT broker (rumqttd), for the one-machine default and tests.
//!
//! Owns rumqttd's config (built here in code, not read from its TOML) and its thread. Does not
//! own any client: the cloud's ingest connects to this broker over TCP loopback with rumqttc,
//! exactly as it connects to an external broker. One code path for both modes, and no
//! in-process `broker.link()`: such a link must answer `Notification::Unschedule` with
//! `link_rx.ready()` or forwarding stalls and deliveries are lost (docs/architecture.md, "Traps in the crates we use").
//!
//! Limits: rumqttd keeps sessions and queued messages in memory, so messages the broker
//! accepted but the cloud had not applied are lost when the process dies (agents have already
//! deleted them from their outboxes on the broker's ack). The broker also keeps at most
//! [`SEGMENT_BYTES`] × [`SEGMENT_COUNT`] bytes of backlog for the uplink filter; a subscriber
//! further behind than that skips ahead. For durability across cloud restarts use an external
//! broker with persistent sessions (Mosquitto, EMQX). rumqttd has no way to stop: the broker
//! runs until the process exits.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Most MQTT connections (agents plus the cloud).
pub const MAX_CONNECTIONS: usize = 10_010;
/// Unacked QoS1 publishes the broker sends one client before waiting for acks: the window of
/// the cloud's ingest (acks wait for a store flush), large enough to keep a flush group full.
pub const MAX_INFLIGHT: usize = 256;
/// Bytes per commit-log segment (per subscribed filter).
pub const SEGMENT_BYTES: usize = 16 * 1024 * 1024;
/// Segments kept per filter: with [`SEGMENT_BYTES`], 256 MiB of backlog at most.
pub const SEGMENT_COUNT: usize = 16;

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The listen address cannot be bound (in use, not local).
    #[error("embedded broker: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker thread could not be started.
    #[error("embedded broker: cannot start its thread: {0}")]
    Thread(std::io::Error),
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    _thread: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts rumqttd with one MQTT 3.1.1 server on `listen` (port 0: a free port) that
    /// accepts packets up to `max_packet_bytes`.
    ///
    /// The address is checked by binding it first, so "in use" is a clear error here rather
    /// than a log line from rumqttd's thread; for port 0 that bind also picks the port (a
    /// brief race with other processes is possible, as with any pick-then-bind).
    ///
    /// # Errors
    /// [`BrokerError::Bind`] or [`BrokerError::Thread`].
    pub fn start(listen: SocketAddr, max_packet_bytes: usize) -> Result<Self, BrokerError> {
        let addr = {
            let probe = TcpListener::bind(listen).map_err(|source| BrokerError::Bind {
                addr: listen,
                source,
            })?;
            probe.local_addr().map_err(|source| BrokerError::Bind {
                addr: listen,
                source,
            })?
        };
        let config = config(addr, max_packet_bytes);
        let thread = std::thread::Builder::new()
            .name("rapport-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!(cause = %e, "embedded broker stopped");
                }
            })
            .map_err(BrokerError::Thread)?;
        tracing::info!(%addr, "embedded MQTT broker listening");
        Ok(Self {
            addr,
            _thread: thread,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// rumqttd's config: one v4 server, no TLS (loopback by default), no console or metrics
/// server, no cluster.
fn config(addr: SocketAddr, max_packet_bytes: usize) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: max_packet_bytes,
        max_inflight_count: MAX_INFLIGHT,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "rapport-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: MAX_CONNECTIONS,
            max_outgoing_packet_count: 200,
            max_segment_size: SEGMENT_BYTES.max(max_packet_bytes.saturating_mul(2)),
            max_segment_count: SEGMENT_COUNT,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}
