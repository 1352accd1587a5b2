//! [`super::Config::validate`]'s checks: every value problem, each with the key path an
//! operator would look for (`broker.tls.key`), and the broker URL's parser. Owns no parsing of
//! the TOML itself (serde does that).

use core::fmt;

use super::Config;

/// One problem with a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `broker.url`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
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

/// Largest MQTT packet the protocol allows (the remaining-length field's maximum).
const MQTT_MAX_PACKET: usize = 268_435_455;
/// Room for the fixed header, topic and packet id around an uplink payload.
const PACKET_OVERHEAD: usize = 1024;

pub(super) fn validate(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad = |path: &str, message: String| problems.push(Problem::new(path, message));
    let b = &config.broker;

    if b.embedded {
        if b.url.is_some() {
            bad(
                "broker.url",
                "is for an external broker; with embedded = true the cloud runs its own \
                 broker on broker.listen"
                    .into(),
            );
        }
        if b.tls.is_some() {
            bad(
                "broker.tls",
                "the embedded broker serves plain MQTT on broker.listen; TLS is for an \
                 external broker (embedded = false, url = \"mqtts://...\")"
                    .into(),
            );
        }
    } else {
        if b.listen.is_some() {
            bad(
                "broker.listen",
                "is for the embedded broker; with embedded = false set broker.url".into(),
            );
        }
        match &b.url {
            None => bad(
                "broker.url",
                "required when embedded = false (mqtt://host:port or mqtts://host:port)".into(),
            ),
            Some(url) => match BrokerUrl::parse(url) {
                Err(e) => bad("broker.url", e),
                Ok(url) if url.tls && b.tls.is_none() => bad(
                    "broker.tls",
                    "required for mqtts:// (at least `ca`, the CA that signed the broker)".into(),
                ),
                Ok(url) if !url.tls && b.tls.is_some() => bad(
                    "broker.tls",
                    "set, but broker.url is plain mqtt://; use mqtts:// for TLS".into(),
                ),
                Ok(_) => {}
            },
        }
    }
    if let Some(tls) = &b.tls {
        if tls.ca.as_os_str().is_empty() {
            bad("broker.tls.ca", "must not be empty".into());
        }
        match (&tls.cert, &tls.key) {
            (Some(_), None) => bad(
                "broker.tls.key",
                "required with broker.tls.cert (mTLS needs both)".into(),
            ),
            (None, Some(_)) => bad(
                "broker.tls.cert",
                "required with broker.tls.key (mTLS needs both)".into(),
            ),
            _ => {}
        }
    }
    if b.client_id.is_empty() {
        bad(
            "broker.client_id",
            "must not be empty: the broker keeps the cloud's session under it".into(),
        );
    } else if b.client_id.len() > 65_535 || b.client_id.chars().any(char::is_control) {
        bad(
            "broker.client_id",
            "must be printable and at most 65535 bytes".into(),
        );
    }
    if let Some(group) = &b.share_group
        && (group.is_empty() || group.contains(['/', '+', '#']))
    {
        bad(
            "broker.share_group",
            format!("{group:?} must be non-empty without '/', '+' or '#'"),
        );
    }
    if !(5..=65_535).contains(&b.keep_alive_s) {
        bad(
            "broker.keep_alive_s",
            format!("{} is not 5-65535 seconds", b.keep_alive_s),
        );
    }
    let need = config
        .ingest
        .max_payload_bytes
        .saturating_add(PACKET_OVERHEAD);
    if b.max_packet_bytes < need || b.max_packet_bytes > MQTT_MAX_PACKET {
        bad(
            "broker.max_packet_bytes",
            format!(
                "{} must be at least ingest.max_payload_bytes + {PACKET_OVERHEAD} ({need}) \
                 and at most {MQTT_MAX_PACKET}",
                b.max_packet_bytes
            ),
        );
    }

    if config.store.path.as_os_str().is_empty() {
        bad("store.path", "must not be empty".into());
    }

    let max = rapport_shared::MAX_UPLINK_BYTES;
    if !(1..=max).contains(&config.ingest.max_payload_bytes) {
        bad(
            "ingest.max_payload_bytes",
            format!(
                "{} is not 1-{max} (the wire protocol's uplink limit)",
                config.ingest.max_payload_bytes
            ),
        );
    }
    if !(1..=4096).contains(&config.ingest.group_max_envelopes) {
        bad(
            "ingest.group_max_envelopes",
            format!("{} is not 1-4096", config.ingest.group_max_envelopes),
        );
    }
    if !(10..=3_600_000).contains(&config.fleet.tick_ms) {
        bad(
            "fleet.tick_ms",
            format!("{} is not 10-3600000", config.fleet.tick_ms),
        );
    }
    if !(1..=1024).contains(&config.webhooks.concurrency) {
        bad(
            "webhooks.concurrency",
            format!("{} is not 1-1024", config.webhooks.concurrency),
        );
    }
    if !(1..=300).contains(&config.webhooks.timeout_s) {
        bad(
            "webhooks.timeout_s",
            format!("{} is not 1-300", config.webhooks.timeout_s),
        );
    }
    if !(1..=3650).contains(&config.webhooks.keep_delivered_days) {
        bad(
            "webhooks.keep_delivered_days",
            format!("{} is not 1-3650", config.webhooks.keep_delivered_days),
        );
    }
    if let (Some(_), Some(_)) = (&config.api.operator_token, &config.api.operator_token_env) {
        bad(
            "api.operator_token",
            "give operator_token or operator_token_env, not both".into(),
        );
    }
    if config
        .api
        .operator_token
        .as_ref()
        .is_some_and(|t| t.trim().len() < 12)
    {
        bad(
            "api.operator_token",
            "shorter than 12 characters: too easy to guess".into(),
        );
    }
    problems.extend(config.layers.validate());
    problems.extend(crate::fleet::partners::validate(
        &config.partner,
        &config.alerts,
        &|v| std::env::var(v).ok(),
    ));
    problems
}
