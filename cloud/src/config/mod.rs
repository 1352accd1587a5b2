//! The cloud config: one TOML file read into typed serde structs, their defaults (all in
//! [`defaults`]), and the file's [`Check`]: every problem with its key path.
//!
//! Each section checks itself beside its struct ([`broker`], [`store`], [`sections`]; the fleet's own
//! sections `[layers]`, `[alerts]` and `[[partner]]` beside their rules in
//! [`crate::fleet::layers`] and [`crate::fleet::partners`]); [`Config`]'s check runs them in
//! file order and adds the rules that tie two sections together (the MQTT packet limit and
//! the payload limit; a fallback partner that must be a `[[partner]]`).
//!
//! Owns the file's shape, loading it (syntax and shape errors name the key path, line and
//! column: [`rapport_kit::config`]), checking it, and resolving relative paths against the
//! file's folder. Does not own what the cloud does with the values (broker, ingest, store,
//! API, fleet). Unknown keys are refused (`deny_unknown_fields`) so a typo never passes
//! silently.
//!
//! The config imports the fleet's section types, never the other way round: the fleet is
//! started from values ([`crate::fleet::shell::FleetSettings`]), not from this file.

pub mod broker;
pub mod rate_limit;
pub mod retention;
pub mod sections;
pub mod store;

use std::path::{Path, PathBuf};

use rapport_kit::config::{Check, ConfigError, Problem, Problems, key};
use serde::{Deserialize, Serialize};

pub use broker::{Broker, BrokerUrl, Tls};
pub use retention::Retention;
pub use sections::{Api, Fleet, Ingest, Webhooks};
pub use store::{Backend, DEFAULT_SLED_CACHE_MB, DbUrl, Store};

use crate::fleet::layers::LayerConfig;
use crate::fleet::partners::{AlertsConfig, PartnerConfig};

/// Every default value of the config, in one place.
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    /// The embedded broker's listen address: loopback, the MQTT port.
    pub const BROKER_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);
    /// The MQTT client id of the cloud's ingest session. Stable: the broker keeps the session
    /// (and queues messages) under it while the cloud is down.
    pub const CLIENT_ID: &str = "rapport-cloud";
    /// MQTT keep-alive, seconds.
    pub const KEEP_ALIVE_S: u64 = 30;
    /// Largest MQTT packet the cloud's client accepts, and the embedded broker's payload
    /// limit: a 256 KiB uplink plus generous room for the topic and framing. A packet above
    /// the client's limit breaks the connection (and the broker redelivers it forever), so
    /// an external broker must be set to a limit at or below this one.
    pub const MAX_PACKET_BYTES: usize = 1024 * 1024;
    /// The read API's listen address: loopback.
    pub const API_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    /// The cloud's data directory.
    pub const STORE_PATH: &str = "/var/lib/rapport-cloud";
    /// Largest uplink payload ingested; larger ones are rejected before decoding.
    pub const MAX_PAYLOAD_BYTES: usize = rapport_shared::MAX_UPLINK_BYTES;
    /// Most envelopes applied between two flushes (their acks wait for the flush).
    pub const GROUP_MAX_ENVELOPES: usize = 64;
    /// The fleet tick, milliseconds.
    pub const TICK_MS: u64 = 1000;
    /// Webhook deliveries in flight at once.
    pub const WEBHOOK_CONCURRENCY: usize = 64;
    /// Timeout of one webhook attempt, seconds.
    pub const WEBHOOK_TIMEOUT_S: u64 = 10;
    /// Days a delivered webhook's marker is kept.
    pub const WEBHOOK_KEEP_DELIVERED_DAYS: u64 = 30;
}

/// The whole cloud config file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[broker]`: the MQTT broker, embedded or external.
    #[serde(default)]
    pub broker: Broker,
    /// `[store]`: where the cloud keeps its data.
    #[serde(default)]
    pub store: Store,
    /// `[api]`: the HTTP API.
    #[serde(default)]
    pub api: Api,
    /// `[ingest]`: uplink limits and batching.
    #[serde(default)]
    pub ingest: Ingest,
    /// `[fleet]`: strategies file, registry import, tick.
    #[serde(default)]
    pub fleet: Fleet,
    /// `[layers]`: every layering threshold.
    #[serde(default)]
    pub layers: LayerConfig,
    /// `[alerts]`: SLA, response wait, fallback partner.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `[[partner]]`: dealers and service providers with their webhook endpoints.
    #[serde(default)]
    pub partner: Vec<PartnerConfig>,
    /// `[promises]`: the service promise per alert kind, stage and region class, and the
    /// second escalation level (`docs/service-promise.md`).
    #[serde(default)]
    pub promises: crate::fleet::alerts::PromiseRules,
    /// `[webhooks]`: delivery.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// `[retention]`: days each kind of data is kept, and the pruning's pace.
    #[serde(default)]
    pub retention: Retention,
    /// `[audit]`: how long the API's audit log is kept.
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// The file this was read from, to resolve relative paths; not part of the TOML.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl Config {
    /// Parses TOML text; `file` names it in errors. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] with the key path, line and column of the problem.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        rapport_kit::config::parse_toml(file, text)
    }

    /// Reads and parses a file, and remembers its path for relative paths. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Syntax`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = rapport_kit::config::read_toml(path)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Every problem with the values, each with its key path; empty when fine (the file's
    /// [`Check`] at the top, `token_env` variables read from the environment).
    pub fn validate(&self) -> Vec<Problem> {
        self.problems("")
    }

    /// Resolves a path from the file against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        rapport_kit::config::resolve_beside(self.path.as_deref(), path)
    }

    /// The store's data directory, resolved against the config file's folder.
    pub fn store_path(&self) -> PathBuf {
        self.resolve(&self.store.path)
    }
}

impl Check for Config {
    /// Every section in file order, then what ties sections together. Partner tokens given
    /// by `token_env` are read from the process environment.
    fn check(&self, path: &str, problems: &mut Problems) {
        let broker = key(path, "broker");
        problems.check(&broker, &self.broker);
        let need = self
            .ingest
            .max_payload_bytes
            .saturating_add(broker::PACKET_OVERHEAD);
        let max_packet = self.broker.max_packet_bytes;
        if max_packet < need || max_packet > broker::MQTT_MAX_PACKET {
            problems.at(
                &broker,
                "max_packet_bytes",
                format!(
                    "{max_packet} must be at least ingest.max_payload_bytes + {} ({need}) \
                     and at most {}",
                    broker::PACKET_OVERHEAD,
                    broker::MQTT_MAX_PACKET
                ),
            );
        }
        problems.check(&key(path, "store"), &self.store);
        problems.check(&key(path, "ingest"), &self.ingest);
        problems.check(&key(path, "fleet"), &self.fleet);
        problems.check(&key(path, "webhooks"), &self.webhooks);
        problems.check(&key(path, "api"), &self.api);
        problems.check(&key(path, "layers"), &self.layers);
        problems.check(&key(path, "retention"), &self.retention);
        problems.check(&key(path, "audit"), &self.audit);
        crate::fleet::partners::check_partners(
            path,
            &self.partner,
            &self.alerts,
            &|v| std::env::var(v).ok(),
            problems,
        );
        let ids: Vec<&str> = self.partner.iter().map(|p| p.id.as_str()).collect();
        for (at, message) in self.promises.problems(&key(path, "promises"), &ids) {
            let (parent, name) = at.rsplit_once('.').unwrap_or(("", at.as_str()));
            problems.at(parent, name, message);
        }
    }
}

/// Reads, parses and validates a config file.
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Syntax`], or [`ConfigError::Invalid`] listing every
/// value problem.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::read(path)?;
    check(config)
}

/// Validates a config already read (after command-line overrides, say).
///
/// # Errors
/// [`ConfigError::Invalid`] listing every problem.
pub fn check(config: Config) -> Result<Config, ConfigError> {
    let mut problems = Problems::new();
    problems.check("", &config);
    let file = config
        .path
        .as_deref()
        .map_or_else(|| "config".to_owned(), |p| p.display().to_string());
    problems.into_result(&file)?;
    Ok(config)
}

#[cfg(test)]
mod tests;
