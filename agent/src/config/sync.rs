//! The `[sync]` section: the MQTT link to the cloud — the broker ([`BrokerUrl`]), batching,
//! backoff, heartbeat and the TLS files (`[sync.tls]`) — with its [`Check`] beside it.
//! Defaults and the in-flight limit live in [`super::defaults`].
//!
//! Owns: the section's shape and its values' checks. Does not own: reading the TLS files (the
//! sync's settings are built with them, `crate::settings::sync`, which `check-config` runs
//! too), nor the link ([`crate::sync`]).

use std::path::PathBuf;

use rapport_kit::config::{Check, Problems, key};
use rapport_shared::{MAX_RECORDS, MAX_UPLINK_BYTES};
use serde::{Deserialize, Serialize};

use super::defaults;

/// `[sync]`: the MQTT link to the cloud. Absent: the agent keeps its outbox and never sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// `"mqtt://host:1883"` or `"mqtts://host:8883"` (the port defaults to 1883 and 8883).
    pub broker: BrokerUrl,
    /// The MQTT client id (the broker keeps the persistent session under it); default: the VIN.
    #[serde(default)]
    pub client_id: Option<String>,
    /// MQTT keep-alive, seconds: a dead link is noticed within about 1.5 times this.
    #[serde(default = "keep_alive_s")]
    pub keep_alive_s: u16,
    /// Most records in one uplink.
    #[serde(default = "batch_max_records")]
    pub batch_max_records: usize,
    /// Largest uplink payload, bytes (at most the wire limit).
    #[serde(default = "batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// A record waits at most this long for a batch to fill, ms.
    #[serde(default = "batch_max_age_ms")]
    pub batch_max_age_ms: u64,
    /// Uplinks published and not yet acknowledged, at most.
    #[serde(default = "inflight")]
    pub inflight: usize,
    /// Shortest wait before reconnecting, ms.
    #[serde(default = "backoff_min_ms")]
    pub backoff_min_ms: u64,
    /// Longest wait before reconnecting, ms.
    #[serde(default = "backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// A heartbeat record every this many seconds.
    #[serde(default = "heartbeat_s")]
    pub heartbeat_s: u64,
    /// `[sync.tls]`: TLS material; present (or an `mqtts` broker): the link uses TLS.
    #[serde(default)]
    pub tls: Option<SyncTls>,
}

fn keep_alive_s() -> u16 {
    defaults::SYNC_KEEP_ALIVE_S
}
fn batch_max_records() -> usize {
    defaults::SYNC_BATCH_MAX_RECORDS
}
fn batch_max_bytes() -> usize {
    defaults::SYNC_BATCH_MAX_BYTES
}
fn batch_max_age_ms() -> u64 {
    defaults::SYNC_BATCH_MAX_AGE_MS
}
fn inflight() -> usize {
    defaults::SYNC_INFLIGHT
}
fn backoff_min_ms() -> u64 {
    defaults::SYNC_BACKOFF_MIN_MS
}
fn backoff_max_ms() -> u64 {
    defaults::SYNC_BACKOFF_MAX_MS
}
fn heartbeat_s() -> u64 {
    defaults::SYNC_HEARTBEAT_S
}

impl Sync {
    /// Whether the link uses TLS: an `mqtts` broker or a `[sync.tls]` section.
    pub fn uses_tls(&self) -> bool {
        self.broker.tls || self.tls.is_some()
    }
}

impl Check for Sync {
    /// Each bound says why it is there.
    fn check(&self, path: &str, problems: &mut Problems) {
        if let Some(id) = &self.client_id {
            // MQTT 3.1.1 guarantees 1-23 characters; brokers accept more, but not empty (the
            // session is persistent) nor anything that does not survive a topic or a log line.
            if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
                problems.at(
                    path,
                    "client_id",
                    format!("{id:?} must be 1-128 printable ASCII characters without spaces"),
                );
            }
        }
        if self.keep_alive_s < 5 {
            problems.at(
                path,
                "keep_alive_s",
                format!("must be 5..=65535 s, not {}", self.keep_alive_s),
            );
        }
        if !(1..=MAX_RECORDS).contains(&self.batch_max_records) {
            problems.at(
                path,
                "batch_max_records",
                format!(
                    "must be 1..={MAX_RECORDS} (the wire limit), not {}",
                    self.batch_max_records
                ),
            );
        }
        if !(1024..=MAX_UPLINK_BYTES).contains(&self.batch_max_bytes) {
            problems.at(
                path,
                "batch_max_bytes",
                format!(
                    "must be 1024..={MAX_UPLINK_BYTES} bytes (the wire limit), not {}",
                    self.batch_max_bytes
                ),
            );
        }
        if self.batch_max_age_ms > 600_000 {
            problems.at(
                path,
                "batch_max_age_ms",
                format!("must be at most 600000 ms, not {}", self.batch_max_age_ms),
            );
        }
        let max_inflight = defaults::SYNC_MAX_INFLIGHT;
        if !(1..=max_inflight).contains(&self.inflight) {
            problems.at(
                path,
                "inflight",
                format!(
                    "must be 1..={max_inflight} (under the MQTT client's own window), not {}",
                    self.inflight
                ),
            );
        }
        if self.backoff_min_ms == 0 {
            problems.at(path, "backoff_min_ms", "must be at least 1 ms");
        }
        if self.backoff_max_ms < self.backoff_min_ms {
            problems.at(
                path,
                "backoff_max_ms",
                format!("must be at least {}", key(path, "backoff_min_ms")),
            );
        }
        if self.backoff_max_ms > 3_600_000 {
            problems.at(
                path,
                "backoff_max_ms",
                format!(
                    "must be at most 3600000 ms (an hour), not {}",
                    self.backoff_max_ms
                ),
            );
        }
        if !(1..=86_400).contains(&self.heartbeat_s) {
            problems.at(
                path,
                "heartbeat_s",
                format!("must be 1..=86400 s, not {}", self.heartbeat_s),
            );
        }
        let tls = key(path, "tls");
        match &self.tls {
            None if self.broker.tls => problems.at(&tls, "ca", MQTTS_NEEDS_TLS),
            None => {}
            Some(files) => problems.check(&tls, files),
        }
    }
}

/// Why an `mqtts` broker without `[sync.tls]` cannot be used.
pub const MQTTS_NEEDS_TLS: &str =
    "an mqtts broker needs [sync.tls] with the CA that signed its certificate";

/// `[sync.tls]`: PEM files, relative to the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTls {
    /// The CA certificate(s) the broker's certificate must chain to (the agent trusts no
    /// other root: a car's link to its fleet's broker is pinned to the fleet's CA).
    pub ca: PathBuf,
    /// The agent's client certificate chain (mTLS); with `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM); with `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl Check for SyncTls {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.ca.as_os_str().is_empty() {
            problems.at(path, "ca", "must not be empty");
        }
        match (&self.cert, &self.key) {
            (Some(_), None) => problems.at(path, "key", "a client certificate needs its key"),
            (None, Some(_)) => problems.at(path, "cert", "a client key needs its certificate"),
            _ => {}
        }
    }
}

/// An MQTT broker address: `mqtt://host[:port]` or `mqtts://host[:port]`. Exists only valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BrokerUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts`: TLS.
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 hosts in brackets).
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("{text:?} is not a broker URL mqtt://host:port or mqtts://host:port: {why}")
        };
        let (tls, rest) = if let Some(rest) = text.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad("the scheme must be mqtt or mqtts"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
            return Err(bad("only a host and a port are allowed"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address in brackets"));
            }
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("the port must be 1-65535")),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl core::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl TryFrom<String> for BrokerUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<BrokerUrl> for String {
    fn from(url: BrokerUrl) -> String {
        url.to_string()
    }
}
