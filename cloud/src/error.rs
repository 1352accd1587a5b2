//! The cloud's one error enum; per-module error types join it with `#[from]`.

/// Everything that can go wrong inside the cloud library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wire-protocol encode or decode failed.
    #[error("wire protocol: {0}")]
    Wire(#[from] rapport_shared::WireError),
    /// The config cannot be used.
    #[error(transparent)]
    Config(#[from] rapport_kit::config::ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The embedded broker could not start.
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    /// The MQTT client could not be set up or used.
    #[error(transparent)]
    Mqtt(#[from] crate::mqtt::MqttError),
    /// Webhook delivery failed to set up or its outbox failed.
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
    /// The operator's API token could not be read or made.
    #[error("operator token: {0}")]
    OperatorToken(String),
    /// The fleet could not start (strategies, partners, registry).
    #[error(transparent)]
    FleetStart(#[from] crate::fleet::shell::StartError),
    /// A fleet operation failed.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::core::FleetError),
    /// A listening socket could not be opened.
    #[error("{what}: cannot listen on {addr}: {source}")]
    Listen {
        /// What was to listen (`api`).
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A part of the cloud stopped on its own (a thread could not start, a task ended).
    #[error("stopped: {0}")]
    Stopped(String),
}
