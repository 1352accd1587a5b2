//! The cloud file's own small sections — `[api]`, `[ingest]`, `[fleet]`,
//! `[webhooks]` — each with its defaults and its [`Check`] (`[store]` is [`super::store`]).
//!
//! Owns these sections' shape and rules. Does not own the sections a part of the cloud owns
//! beside its rules (`[layers]`, `[alerts]`, `[[partner]]`: the fleet's), `[broker]`
//! ([`super::broker`]), or what the parts do with the values.

use std::net::SocketAddr;
use std::path::PathBuf;

use rapport_kit::config::{Check, Problems};
use serde::{Deserialize, Serialize};

use super::defaults;

/// Shortest operator token accepted in the file.
pub const MIN_OPERATOR_TOKEN_LEN: usize = 12;

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
    /// During a rotation, the operator's old token, valid beside the current one until it is
    /// removed (or revoked through the API).
    pub previous_operator_token: Option<String>,
    /// The environment variable holding the operator's old token during a rotation.
    pub previous_operator_token_env: Option<String>,
    /// `[api.rate_limit]`: every caller's token bucket (a partner may have its own).
    pub rate_limit: crate::config::rate_limit::RateLimit,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            listen: defaults::API_LISTEN,
            operator_token: None,
            operator_token_env: None,
            previous_operator_token: None,
            previous_operator_token_env: None,
            rate_limit: crate::config::rate_limit::RateLimit::default(),
        }
    }
}

impl Check for Api {
    fn check(&self, path: &str, problems: &mut Problems) {
        if let (Some(_), Some(_)) = (&self.operator_token, &self.operator_token_env) {
            problems.at(
                path,
                "operator_token",
                "give operator_token or operator_token_env, not both",
            );
        }
        if self
            .operator_token
            .as_ref()
            .is_some_and(|t| t.trim().len() < MIN_OPERATOR_TOKEN_LEN)
        {
            problems.at(
                path,
                "operator_token",
                format!("shorter than {MIN_OPERATOR_TOKEN_LEN} characters: too easy to guess"),
            );
        }
        if let (Some(_), Some(_)) = (
            &self.previous_operator_token,
            &self.previous_operator_token_env,
        ) {
            problems.at(
                path,
                "previous_operator_token",
                "give previous_operator_token or previous_operator_token_env, not both",
            );
        }
        if self
            .previous_operator_token
            .as_ref()
            .is_some_and(|t| t.trim().len() < MIN_OPERATOR_TOKEN_LEN)
        {
            problems.at(
                path,
                "previous_operator_token",
                format!("shorter than {MIN_OPERATOR_TOKEN_LEN} characters: too easy to guess"),
            );
        }
        problems.check(
            &rapport_kit::config::key(path, "rate_limit"),
            &self.rate_limit,
        );
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

impl Check for Ingest {
    fn check(&self, path: &str, problems: &mut Problems) {
        let max = rapport_shared::MAX_UPLINK_BYTES;
        if !(1..=max).contains(&self.max_payload_bytes) {
            problems.at(
                path,
                "max_payload_bytes",
                format!(
                    "{} is not 1-{max} (the wire protocol's uplink limit)",
                    self.max_payload_bytes
                ),
            );
        }
        if !(1..=4096).contains(&self.group_max_envelopes) {
            problems.at(
                path,
                "group_max_envelopes",
                format!("{} is not 1-4096", self.group_max_envelopes),
            );
        }
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

impl Check for Fleet {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !(10..=3_600_000).contains(&self.tick_ms) {
            problems.at(
                path,
                "tick_ms",
                format!("{} is not 10-3600000", self.tick_ms),
            );
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
    /// sent. An alias of `[retention] delivered_days`, which wins when both are set; dead
    /// letters are kept `[retention] dead_letter_days` ([`super::Retention`]).
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

impl Check for Webhooks {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !(1..=1024).contains(&self.concurrency) {
            problems.at(
                path,
                "concurrency",
                format!("{} is not 1-1024", self.concurrency),
            );
        }
        if !(1..=300).contains(&self.timeout_s) {
            problems.at(
                path,
                "timeout_s",
                format!("{} is not 1-300", self.timeout_s),
            );
        }
        if !(1..=3650).contains(&self.keep_delivered_days) {
            problems.at(
                path,
                "keep_delivered_days",
                format!("{} is not 1-3650", self.keep_delivered_days),
            );
        }
    }
}
