//! The cloud config: typed serde structs read from one TOML file, their defaults (all in
//! [`defaults`]), and [`Config::validate`], which returns every problem with its key path.
//!
//! Owns: the file's shape, loading it (syntax and shape errors name the key path, line and
//! column), checking it, and resolving relative paths against the file's folder. Does not own:
//! what the cloud does with the values (broker, ingest, store, API). Unknown keys are refused
//! (`deny_unknown_fields`) so a typo never passes silently.

mod validate;

use core::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use validate::{BrokerUrl, Problem};

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
    pub layers: crate::fleet::layers::LayerConfig,
    /// `[alerts]`: SLA, response wait, fallback partner.
    #[serde(default)]
    pub alerts: crate::fleet::partners::AlertsConfig,
    /// `[[partner]]`: dealers and service providers with their webhook endpoints.
    #[serde(default)]
    pub partner: Vec<crate::fleet::partners::PartnerConfig>,
    /// `[webhooks]`: delivery.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// The file this was read from, to resolve relative paths; not part of the TOML.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[broker]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Broker {
    /// Run the embedded broker (rumqttd) in this process; `false`: connect to `url`.
    pub embedded: bool,
    /// The embedded broker's listen address (port 0: a free port, reported at start).
    pub listen: Option<SocketAddr>,
    /// The external broker: `mqtt://host:port` or `mqtts://host:port`.
    pub url: Option<String>,
    /// The ingest session's client id (stable across restarts: a persistent session).
    pub client_id: String,
    /// Subscribe to `$share/<group>/rapport/v1/+/up`, so several cloud instances split the
    /// vehicles' uplinks between them. The broker splits by message, not by vehicle: with one
    /// sled store per instance each instance holds part of a vehicle's records, so this is for
    /// a store the instances share (the PostgreSQL store to come) or a broker that keeps a
    /// topic on one member (EMQX's `hash_topic` strategy).
    pub share_group: Option<String>,
    /// MQTT keep-alive, seconds.
    pub keep_alive_s: u64,
    /// Largest MQTT packet accepted (see [`defaults::MAX_PACKET_BYTES`]).
    pub max_packet_bytes: usize,
    /// `[broker.tls]`: TLS (and mTLS) to an external `mqtts://` broker.
    pub tls: Option<Tls>,
}

impl Default for Broker {
    fn default() -> Self {
        Self {
            embedded: true,
            listen: None,
            url: None,
            client_id: defaults::CLIENT_ID.to_owned(),
            share_group: None,
            keep_alive_s: defaults::KEEP_ALIVE_S,
            max_packet_bytes: defaults::MAX_PACKET_BYTES,
            tls: None,
        }
    }
}

impl Broker {
    /// The embedded broker's listen address, default applied.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.unwrap_or(defaults::BROKER_LISTEN)
    }

    /// The uplink subscription filter: shared when a group is set.
    pub fn uplink_filter(&self) -> String {
        match &self.share_group {
            Some(group) => rapport_shared::topic::shared_uplink_filter(group),
            None => rapport_shared::topic::UPLINK_FILTER.to_owned(),
        }
    }
}

/// `[broker.tls]`: PEM files, relative to the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The CA that signed the broker's certificate.
    pub ca: PathBuf,
    /// The cloud's client certificate (mTLS); needs `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1); needs `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// The data directory (sled), relative to the config file.
    pub path: PathBuf,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            path: PathBuf::from(defaults::STORE_PATH),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// Listen address (port 0: a free port, reported at start).
    pub listen: SocketAddr,
    /// The operator's bearer token. Prefer `operator_token_env`; with neither, the cloud
    /// makes one at first start and keeps it in `<store>/operator-token` (mode 0600).
    pub operator_token: Option<String>,
    /// The environment variable holding the operator's bearer token.
    pub operator_token_env: Option<String>,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            listen: defaults::API_LISTEN,
            operator_token: None,
            operator_token_env: None,
        }
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ingest {
    /// Larger uplink payloads are rejected (and counted) before decoding.
    pub max_payload_bytes: usize,
    /// Most envelopes applied between two flushes of the store; their MQTT acks wait for it.
    pub group_max_envelopes: usize,
}

impl Default for Ingest {
    fn default() -> Self {
        Self {
            max_payload_bytes: defaults::MAX_PAYLOAD_BYTES,
            group_max_envelopes: defaults::GROUP_MAX_ENVELOPES,
        }
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or TOML of the wrong shape (unknown key, wrong type).
    #[error("{file}:{line}:{column}: {path}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The key path where it went wrong (`broker.tls.cert`), `.` for the top.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What the TOML reader says.
        message: String,
    },
    /// Well-formed but wrong values; every problem found.
    #[error("{file}: {} problem(s):\n{}", problems.len(), ProblemList(problems))]
    Invalid {
        /// The file.
        file: String,
        /// Each problem with its key path.
        problems: Vec<Problem>,
    },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Parses TOML text into any config type (the cloud file, the strategy file); `file` names it
/// in errors. Does not validate.
///
/// # Errors
/// [`ConfigError::Syntax`] with the key path, line and column of the problem.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, ConfigError> {
    let syntax = |path: String, err: toml::de::Error| {
        let (line, column) = err.span().map_or((1, 1), |s| line_col(text, s.start));
        ConfigError::Syntax {
            file: file.to_owned(),
            path,
            line,
            column,
            message: err.message().trim().to_owned(),
        }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| syntax(".".to_owned(), e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        syntax(path, e.into_inner())
    })
}

/// Reads a config file: (its name for errors, its text).
///
/// # Errors
/// [`ConfigError::Read`].
pub(crate) fn read_text(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    Ok((file, text))
}

impl Config {
    /// Parses TOML text; `file` names it in errors. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] with the key path, line and column of the problem.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        parse_toml(file, text)
    }

    /// Reads and parses a file, and remembers its path for relative paths. Does not validate.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Syntax`].
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let (file, text) = read_text(path)?;
        let mut config = Self::from_toml(&file, &text)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Every problem with the values, each with its key path; empty when fine.
    pub fn validate(&self) -> Vec<Problem> {
        validate::validate(self)
    }

    /// Resolves a path from the file against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        let dir = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        dir.join(path)
    }

    /// The store's data directory, resolved against the config file's folder.
    pub fn store_path(&self) -> PathBuf {
        self.resolve(&self.store.path)
    }
}

/// `[fleet]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fleet {
    /// The strategy file (relative to this file). Default: the built-in copy of
    /// `config/strategies.toml`.
    pub strategies: Option<PathBuf>,
    /// A registry file (CSV or TOML by extension) imported at every start (entries are
    /// created or updated, never deleted). Default: none.
    pub registry: Option<PathBuf>,
    /// How often time-driven work is looked at, milliseconds (layers, webhook sends,
    /// SLAs, re-offers: only what is due is touched).
    pub tick_ms: u64,
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            strategies: None,
            registry: None,
            tick_ms: defaults::TICK_MS,
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    /// Most deliveries in flight at once.
    pub concurrency: usize,
    /// Timeout of one delivery attempt, seconds.
    pub timeout_s: u64,
    /// Days the small "delivered" marker of a webhook is kept (it answers "was this id
    /// delivered?"); older ones are pruned so the store does not grow with every alert ever
    /// sent. Dead letters are kept until re-driven.
    pub keep_delivered_days: u64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            concurrency: defaults::WEBHOOK_CONCURRENCY,
            timeout_s: defaults::WEBHOOK_TIMEOUT_S,
            keep_delivered_days: defaults::WEBHOOK_KEEP_DELIVERED_DAYS,
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
    let problems = config.validate();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            file: config
                .path
                .as_deref()
                .map_or_else(|| "config".to_owned(), |p| p.display().to_string()),
            problems,
        })
    }
}

#[cfg(test)]
mod tests;
