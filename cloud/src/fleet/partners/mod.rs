//! Partners: dealers (each vehicle's channel partner) and service providers (by region and
//! capability), where their alerts go, and who a bearer token belongs to.
//!
//! Owns [`Partner`] and its checks (webhook URL, `whsec_` secret, hashed API token: its
//! [`Check`]), the config's `[[partner]]` entries ([`PartnerConfig`]) and `[alerts]` section
//! ([`AlertsConfig`]) with their checks (every problem, each with its key path such as
//! `partner[2].secret`: [`config`]), and the [`Directory`]: routing a [`PartnerTarget`] to a
//! partner, finding a partner by its bearer token, adding and removing partners for the API,
//! and the visibility rule [`may_see`] ([`directory`]). Pure: no I/O; environment variables
//! are read through a lookup function the caller passes in.
//!
//! Does not own: delivering webhooks (signing, outbox, retries: `webhook`), building alerts
//! ([`super::alerts`]), storing partners created through the API, or which vehicles a dealer
//! sold (the registry's `dealer` field, [`Registration::dealer`]).
//!
//! API tokens are never kept in clear: only their SHA-256, hex ([`hash_token`]). A plain
//! unsalted hash is enough because tokens are required to be long random strings (at least
//! [`MIN_TOKEN_LEN`] characters), not passwords. Webhook secrets are kept as given: the signer
//! needs them.

pub mod config;
pub mod directory;

#[cfg(test)]
mod tests;

use core::fmt;

use base64::Engine as _;
use rapport_kit::config::{Check, Problems, key};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use self::config::{AlertsConfig, PartnerConfig, check_partners, validate};
pub use self::directory::{Directory, DirectoryError, may_see};
#[cfg(doc)]
use super::model::{PartnerTarget, Registration};

/// Every default of the partner and alert config, in one place.
pub mod defaults {
    /// An alert not acknowledged within this many minutes escalates (the seeds' service
    /// promise: respond within one hour).
    pub const SLA_MINUTES: u64 = 60;
    /// A maintenance alert waits at most this many hours for the driver's response to the
    /// prompt before it goes to the partner anyway.
    pub const RESPONSE_WAIT_HOURS: u64 = 24;
}

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest bytes a webhook secret decodes to.
pub const MIN_SECRET_BYTES: usize = 24;
/// Most bytes a webhook secret decodes to.
pub const MAX_SECRET_BYTES: usize = 64;
/// Shortest API token accepted: tokens must be random strings, not passwords (the hash is
/// unsalted). `openssl rand -hex 16` makes one of exactly this length.
pub const MIN_TOKEN_LEN: usize = 32;
/// Longest partner id; ids are `A-Z a-z 0-9 . _ -` (they appear in URLs and logs).
pub const MAX_ID_LEN: usize = 64;
/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Longest SLA accepted, minutes (one week): more is a typo (seconds or milliseconds).
pub const MAX_SLA_MINUTES: u64 = 7 * 24 * 60;
/// Longest wait for the driver's response accepted, hours (30 days).
pub const MAX_RESPONSE_WAIT_HOURS: u64 = 30 * 24;

/// What a partner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum PartnerKind {
    /// A dealer: the channel partner of the vehicles the registry says it sold.
    Dealer,
    /// An aftermarket service provider covering regions with capabilities.
    ServiceProvider,
}

impl PartnerKind {
    /// The spelling in config files and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dealer => "dealer",
            Self::ServiceProvider => "service_provider",
        }
    }
}

/// A partner, checked (see [`Partner::check`]). Stored by the caller; serialised with its
/// secret, so never return it whole from the API: use [`Partner::summary`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    /// Unique id (`A-Z a-z 0-9 . _ -`, at most [`MAX_ID_LEN`]), e.g. `"dealer-north"`.
    pub id: String,
    /// For people.
    pub name: String,
    /// Dealer or service provider.
    pub kind: PartnerKind,
    /// Where its webhooks go: an `http` or `https` URL with a host and no credentials.
    pub webhook_url: String,
    /// The webhook signing secret: `whsec_` + base64 of 24..=64 bytes.
    pub secret: String,
    /// Region codes it covers (service providers).
    pub regions: Vec<String>,
    /// What it does (service providers), e.g. `"roadside"`, `"tyres"`.
    pub capabilities: Vec<String>,
    /// SHA-256 of its API bearer token, 64 lower-case hex digits ([`hash_token`]).
    pub token_sha256: String,
    /// Webhook secrets still signed with during a rotation (each `whsec_...`): every delivery
    /// carries one signature per secret, so a receiver holding any of them verifies it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets: Vec<String>,
    /// SHA-256 of its other valid API tokens during a rotation (each opens what
    /// `token_sha256` opens until revoked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_tokens_sha256: Vec<String>,
    /// Its own API rate limit, instead of `[api.rate_limit]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::config::rate_limit::RateLimit>,
}

impl fmt::Debug for Partner {
    // The secret and the token hash stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partner")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("webhook_url", &self.webhook_url)
            .field("secret", &"<redacted>")
            .field("regions", &self.regions)
            .field("capabilities", &self.capabilities)
            .field("token_sha256", &"<redacted>")
            .field("previous_secrets", &self.previous_secrets.len())
            .field("other_tokens_sha256", &self.other_tokens_sha256.len())
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// What the API may show of a partner: everything but the secret and the token hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PartnerSummary<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Dealer or service provider.
    pub kind: PartnerKind,
    /// Its webhook URL.
    pub webhook_url: &'a str,
    /// Regions covered.
    pub regions: &'a [String],
    /// Capabilities.
    pub capabilities: &'a [String],
    /// Fingerprints of its webhook secrets, the one signed with first ([`fingerprint`]).
    pub secret_fingerprints: Vec<String>,
    /// Fingerprints of its valid API tokens, the first one first ([`fingerprint`]).
    pub token_fingerprints: Vec<String>,
    /// Its own rate limit, if it has one.
    pub rate_limit: Option<crate::config::rate_limit::RateLimit>,
}

impl Check for Partner {
    /// Every problem with this partner, each with its key path under `path` (`partner[2]`
    /// gives `partner[2].webhook_url`).
    fn check(&self, path: &str, problems: &mut Problems) {
        let mut bad = |name: &str, message: String| problems.at(path, name, message);
        if let Err(e) = check_id(&self.id) {
            bad("id", e);
        }
        if self.name.trim().is_empty() {
            bad("name", "must not be empty".into());
        }
        if let Err(e) = check_webhook_url(&self.webhook_url) {
            bad("webhook_url", e);
        }
        if let Err(e) = check_secret(&self.secret) {
            bad("secret", e);
        }
        if !is_sha256_hex(&self.token_sha256) {
            bad(
                "token_sha256",
                "must be 64 lower-case hex digits (the SHA-256 of the token)".into(),
            );
        }
        for (i, secret) in self.previous_secrets.iter().enumerate() {
            if let Err(e) = check_secret(secret) {
                problems.push(
                    rapport_kit::config::index(&key(path, "previous_secrets"), i),
                    e,
                );
            }
        }
        for (i, hash) in self.other_tokens_sha256.iter().enumerate() {
            if !is_sha256_hex(hash) {
                problems.push(
                    rapport_kit::config::index(&key(path, "other_tokens_sha256"), i),
                    "must be 64 lower-case hex digits (the SHA-256 of the token)".to_owned(),
                );
            }
        }
        if let Some(limit) = &self.rate_limit {
            problems.check(&key(path, "rate_limit"), limit);
        }
        for (name, codes) in [
            ("regions", &self.regions),
            ("capabilities", &self.capabilities),
        ] {
            for (i, code) in codes.iter().enumerate() {
                if code.is_empty() || code.chars().any(char::is_whitespace) {
                    problems.push(
                        rapport_kit::config::index(&key(path, name), i),
                        format!("{code:?} must be a non-empty code without spaces"),
                    );
                }
            }
            if self.kind == PartnerKind::ServiceProvider && codes.is_empty() {
                problems.at(
                    path,
                    name,
                    "a service provider needs at least one, or no vehicle is ever routed to it",
                );
            }
        }
    }
}

impl Partner {
    /// What the API may show (no secret, no token hash).
    pub fn summary(&self) -> PartnerSummary<'_> {
        PartnerSummary {
            id: &self.id,
            name: &self.name,
            kind: self.kind,
            webhook_url: &self.webhook_url,
            regions: &self.regions,
            capabilities: &self.capabilities,
            secret_fingerprints: self.secrets().map(fingerprint).collect(),
            token_fingerprints: self.token_hashes().map(token_fingerprint).collect(),
            rate_limit: self.rate_limit,
        }
    }

    /// Its webhook secrets: the current one, then those of a rotation in progress.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.secret.as_str())
            .chain(self.previous_secrets.iter().map(String::as_str))
    }

    /// The SHA-256 (hex) of every API token it holds: the first, then the others.
    pub fn token_hashes(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.token_sha256.as_str())
            .chain(self.other_tokens_sha256.iter().map(String::as_str))
    }

    pub(crate) fn covers(&self, region: &str, capability: &str) -> bool {
        self.kind == PartnerKind::ServiceProvider
            && self.regions.iter().any(|r| r == region)
            && self.capabilities.iter().any(|c| c == capability)
    }
}

/// A secret's fingerprint for people and the API: `sha256:` and the first 16 hex digits of
/// the SHA-256 of its text. Tells two secrets apart without giving either away.
pub fn fingerprint(secret: &str) -> String {
    let hex = hash_token(secret);
    format!("sha256:{}", &hex[..16])
}

/// A token's fingerprint from its kept hash: `sha256:` and the hash's first 16 hex digits
/// (the same as [`fingerprint`] of the token in clear).
pub fn token_fingerprint(token_sha256: &str) -> String {
    format!("sha256:{}", token_sha256.get(..16).unwrap_or(token_sha256))
}

/// The SHA-256 of an API token, 64 lower-case hex digits: the only form a token is kept in.
pub fn hash_token(token: &str) -> String {
    rapport_shared::hex::encode(&Sha256::digest(token.as_bytes()))
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("{id:?} must be 1 to {MAX_ID_LEN} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{id:?} contains {c:?}: only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Checks a webhook URL: `http` or `https`, a host, no user or password (they would end up
/// in logs), at most [`MAX_URL_LEN`] characters.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_webhook_url(text: &str) -> Result<(), String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{text:?} must be http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?} carries a user or password; partners authenticate webhooks by their \
             signature"
        ));
    }
    Ok(())
}

/// Checks a webhook secret: `whsec_` + standard base64 (padded) of
/// [`MIN_SECRET_BYTES`]..=[`MAX_SECRET_BYTES`] bytes. The message never repeats the secret.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let Some(b64) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(format!("must start with {SECRET_PREFIX:?}"));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("after {SECRET_PREFIX:?}, not standard base64: {e}"))?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
        return Err(format!(
            "decodes to {} bytes; {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} are needed",
            bytes.len()
        ));
    }
    Ok(())
}

/// Checks an API token: at least [`MIN_TOKEN_LEN`] characters, no spaces or control characters.
///
/// # Errors
/// What is wrong (never the token).
pub fn check_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(format!(
            "is shorter than {MIN_TOKEN_LEN} characters; use a random string \
             (`openssl rand -hex 16`)"
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}
