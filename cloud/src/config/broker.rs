//! `[broker]` and `[broker.tls]`: the MQTT broker the cloud ingests from, embedded or
//! external, each section with its own [`Check`], and the external broker's URL
//! ([`BrokerUrl`]).
//!
//! Owns these sections' shape, defaults and rules. Does not own the MQTT session built from
//! them ([`crate::mqtt`]) nor the rule that ties the packet limit to `[ingest]` (the whole
//! file's check, [`super::Config`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use rapport_kit::config::{Check, Problems, key};
use serde::{Deserialize, Serialize};

use super::defaults;

/// Largest MQTT packet the protocol allows (the remaining-length field's maximum).
pub const MQTT_MAX_PACKET: usize = 268_435_455;
/// Room for the fixed header, topic and packet id around an uplink payload.
pub const PACKET_OVERHEAD: usize = 1024;

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

impl Check for Broker {
    fn check(&self, path: &str, problems: &mut Problems) {
        let mut bad = |name: &str, message: String| problems.at(path, name, message);
        if self.embedded {
            if self.url.is_some() {
                bad(
                    "url",
                    "is for an external broker; with embedded = true the cloud runs its own \
                     broker on broker.listen"
                        .into(),
                );
            }
            if self.tls.is_some() {
                bad(
                    "tls",
                    "the embedded broker serves plain MQTT on broker.listen; TLS is for an \
                     external broker (embedded = false, url = \"mqtts://...\")"
                        .into(),
                );
            }
        } else {
            if self.listen.is_some() {
                bad(
                    "listen",
                    "is for the embedded broker; with embedded = false set broker.url".into(),
                );
            }
            match &self.url {
                None => bad(
                    "url",
                    "required when embedded = false (mqtt://host:port or mqtts://host:port)".into(),
                ),
                Some(url) => match BrokerUrl::parse(url) {
                    Err(e) => bad("url", e),
                    Ok(url) if url.tls && self.tls.is_none() => bad(
                        "tls",
                        "required for mqtts:// (at least `ca`, the CA that signed the broker)"
                            .into(),
                    ),
                    Ok(url) if !url.tls && self.tls.is_some() => bad(
                        "tls",
                        "set, but broker.url is plain mqtt://; use mqtts:// for TLS".into(),
                    ),
                    Ok(_) => {}
                },
            }
        }
        if let Some(tls) = &self.tls {
            problems.check(&key(path, "tls"), tls);
        }
        let mut bad = |name: &str, message: String| problems.at(path, name, message);
        if self.client_id.is_empty() {
            bad(
                "client_id",
                "must not be empty: the broker keeps the cloud's session under it".into(),
            );
        } else if self.client_id.len() > 65_535 || self.client_id.chars().any(char::is_control) {
            bad(
                "client_id",
                "must be printable and at most 65535 bytes".into(),
            );
        }
        if let Some(group) = &self.share_group
            && (group.is_empty() || group.contains(['/', '+', '#']))
        {
            bad(
                "share_group",
                format!("{group:?} must be non-empty without '/', '+' or '#'"),
            );
        }
        if !(5..=65_535).contains(&self.keep_alive_s) {
            bad(
                "keep_alive_s",
                format!("{} is not 5-65535 seconds", self.keep_alive_s),
            );
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

impl Check for Tls {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.ca.as_os_str().is_empty() {
            problems.at(path, "ca", "must not be empty");
        }
        match (&self.cert, &self.key) {
            (Some(_), None) => problems.at(
                path,
                "key",
                format!("required with {} (mTLS needs both)", key(path, "cert")),
            ),
            (None, Some(_)) => problems.at(
                path,
                "cert",
                format!("required with {} (mTLS needs both)", key(path, "key")),
            ),
            _ => {}
        }
    }
}

/// An external broker's address, parsed from `mqtt://host:port` or `mqtts://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`: TLS.
    pub tls: bool,
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    /// Port (default 1883 for mqtt, 8883 for mqtts).
    pub port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`.
    ///
    /// The `url` crate would accept what an MQTT client cannot use (paths, users, queries,
    /// other schemes) and give no default port for these schemes; the few rules are simpler
    /// written out.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(format!(
                "{text:?} must start with mqtt:// (plain) or mqtts:// (TLS)"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(format!(
                "{text:?}: only a host and a port, no path, user or query"
            ));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{text:?}: unclosed [ in an IPv6 address"))?;
            let port = match after {
                "" => default_port,
                p => parse_port(text, p.strip_prefix(':').unwrap_or(p))?,
            };
            (host, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, parse_port(text, port)?),
                None => (rest, default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?} names no host"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

fn parse_port(text: &str, port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("{text:?}: port {port:?} is not 1-65535")),
    }
}
