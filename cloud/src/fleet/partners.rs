//! Partners: dealers (each vehicle's channel partner) and service providers (by region and
//! capability), where their alerts go, and who a bearer token belongs to.
//!
//! Owns [`Partner`] and its checks (webhook URL, `whsec_` secret, hashed API token), the
//! config's `[[partner]]` entries ([`PartnerConfig`]) and `[alerts]` section
//! ([`AlertsConfig`]) with their validation (every problem, each with its key path such as
//! `partner[2].secret`), and the [`Directory`]: routing a [`PartnerTarget`] to a partner,
//! finding a partner by its bearer token, adding and removing partners for the API, and the
//! visibility rule [`may_see`]. Pure: no I/O; environment variables are read through a lookup
//! function the caller passes in.
//!
//! Does not own: delivering webhooks (signing, outbox, retries: `webhook`), building alerts
//! ([`super::alerts`]), storing partners created through the API, or which vehicles a dealer
//! sold (the registry's `dealer` field, [`Registration::dealer`]).
//!
//! API tokens are never kept in clear: only their SHA-256, hex ([`hash_token`]). A plain
//! unsalted hash is enough because tokens are required to be long random strings (at least
//! [`MIN_TOKEN_LEN`] characters), not passwords. Webhook secrets are kept as given: the signer
//! needs them.

use core::fmt;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::alerts::AlertPolicy;
use super::model::{PartnerTarget, Registration};
use crate::config::Problem;

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
            .finish()
    }
}

/// What the API may show of a partner: everything but the secret and the token hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
}

impl Partner {
    /// Every problem with this partner, each with its key path under `path` (`partner[2]`
    /// gives `partner[2].webhook_url`); empty when fine.
    pub fn check(&self, path: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| {
            problems.push(Problem::new(format!("{path}.{key}"), message));
        };
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
        for (key, names) in [
            ("regions", &self.regions),
            ("capabilities", &self.capabilities),
        ] {
            for (i, name) in names.iter().enumerate() {
                if name.is_empty() || name.chars().any(char::is_whitespace) {
                    bad(
                        &format!("{key}[{i}]"),
                        format!("{name:?} must be a non-empty code without spaces"),
                    );
                }
            }
            if self.kind == PartnerKind::ServiceProvider && names.is_empty() {
                bad(
                    key,
                    "a service provider needs at least one, or no vehicle is ever routed to it"
                        .into(),
                );
            }
        }
        problems
    }

    /// What the API may show (no secret, no token hash).
    pub fn summary(&self) -> PartnerSummary<'_> {
        PartnerSummary {
            id: &self.id,
            name: &self.name,
            kind: self.kind,
            webhook_url: &self.webhook_url,
            regions: &self.regions,
            capabilities: &self.capabilities,
        }
    }

    fn covers(&self, region: &str, capability: &str) -> bool {
        self.kind == PartnerKind::ServiceProvider
            && self.regions.iter().any(|r| r == region)
            && self.capabilities.iter().any(|c| c == capability)
    }
}

/// The SHA-256 of an API token, 64 lower-case hex digits: the only form a token is kept in.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
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

fn check_token(token: &str) -> Result<(), String> {
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

/// A `[[partner]]` entry of the cloud config, also the body the API accepts to add or replace
/// a partner. The token is given in clear (`token`) or by the name of an environment
/// variable holding it (`token_env`), exactly one of the two; only its hash is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Unique id.
    pub id: String,
    /// For people.
    pub name: String,
    /// `"dealer"` or `"service_provider"`.
    pub kind: PartnerKind,
    /// Where its webhooks go.
    pub webhook_url: String,
    /// The webhook signing secret (`whsec_...`).
    pub secret: String,
    /// Regions covered (service providers).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Capabilities (service providers).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The API bearer token, in clear (hashed at once).
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable holding the API bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl fmt::Debug for PartnerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartnerConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("webhook_url", &self.webhook_url)
            .field("token_env", &self.token_env)
            .finish_non_exhaustive()
    }
}

impl PartnerConfig {
    /// The API token in clear, from `token` or the `token_env` variable, checked; else the
    /// key at fault and why (never repeating the token).
    fn token(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, (&'static str, String)> {
        match (&self.token, &self.token_env) {
            (Some(_), Some(_)) => Err(("token", "give token or token_env, not both".into())),
            (None, None) => Err((
                "token",
                "required (the partner's API bearer token), or token_env naming the \
                 environment variable that holds it"
                    .into(),
            )),
            (Some(token), None) => check_token(token)
                .map(|()| token.clone())
                .map_err(|e| ("token", e)),
            (None, Some(var)) => {
                let token = env(var).ok_or_else(|| {
                    (
                        "token_env",
                        format!("environment variable {var:?} is not set"),
                    )
                })?;
                check_token(&token)
                    .map(|()| token)
                    .map_err(|e| ("token_env", format!("the token in {var:?} {e}")))
            }
        }
    }

    /// The checked partner, its token hashed; `env` looks up `token_env`. Every problem is
    /// reported with its key path under `path` (`partner[2]`). For a body from the API pass
    /// a lookup that finds nothing (`&|_| None`): an API caller must not get to probe the
    /// daemon's environment.
    ///
    /// # Errors
    /// Every problem found.
    pub fn resolve(
        &self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Partner, Vec<Problem>> {
        let mut problems = Vec::new();
        let token = match self.token(env) {
            Ok(token) => Some(token),
            Err((key, message)) => {
                problems.push(Problem::new(format!("{path}.{key}"), message));
                None
            }
        };
        let partner = Partner {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            webhook_url: self.webhook_url.clone(),
            secret: self.secret.clone(),
            regions: self.regions.clone(),
            capabilities: self.capabilities.clone(),
            // A placeholder that passes the hex check when the token itself was the problem
            // (already reported), so the token is not reported twice.
            token_sha256: token.as_deref().map_or_else(|| hash_token(""), hash_token),
        };
        problems.extend(partner.check(path));
        if problems.is_empty() {
            Ok(partner)
        } else {
            Err(problems)
        }
    }
}

/// The `[alerts]` section of the cloud config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The fallback partner's id (e.g. the OEM's own service desk): escalations and vehicles
    /// without a reachable dealer go there. Must be a `[[partner]]` of the file, so it exists
    /// from the start.
    pub fallback: Option<String>,
    /// An alert not acknowledged this many minutes after it was sent escalates.
    pub sla_minutes: u64,
    /// A maintenance alert goes to the partner when the driver responds to the prompt, or
    /// this many hours after it was raised, whichever comes first.
    pub response_wait_hours: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            fallback: None,
            sla_minutes: defaults::SLA_MINUTES,
            response_wait_hours: defaults::RESPONSE_WAIT_HOURS,
        }
    }
}

impl AlertsConfig {
    /// The timing rules alerts are built with.
    pub fn policy(&self) -> AlertPolicy {
        AlertPolicy {
            sla: Duration::from_secs(self.sla_minutes.saturating_mul(60)),
            response_wait: Duration::from_secs(self.response_wait_hours.saturating_mul(3600)),
        }
    }
}

/// Every problem with the `[[partner]]` entries and the `[alerts]` section, each with its key
/// path (`partner[2].secret`, `alerts.fallback`); empty when fine. `env` looks up `token_env`
/// variables (pass `|v| std::env::var(v).ok()` in the daemon).
pub fn validate(
    partners: &[PartnerConfig],
    alerts: &AlertsConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Problem> {
    match resolve_all(partners, alerts, env) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

fn resolve_all(
    partners: &[PartnerConfig],
    alerts: &AlertsConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Partner>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut resolved = Vec::with_capacity(partners.len());
    let mut first_with_id: BTreeMap<&str, usize> = BTreeMap::new();
    let mut first_with_token: BTreeMap<String, usize> = BTreeMap::new();
    for (i, config) in partners.iter().enumerate() {
        let path = format!("partner[{i}]");
        if let Some(&first) = first_with_id.get(config.id.as_str()) {
            problems.push(Problem::new(
                format!("{path}.id"),
                format!("{:?} is already the id of partner[{first}]", config.id),
            ));
        } else {
            first_with_id.insert(&config.id, i);
        }
        match config.resolve(&path, env) {
            Ok(partner) => resolved.push(partner),
            Err(p) => problems.extend(p),
        }
        // Checked even when the entry has other problems, so all are reported at once.
        if let Ok(token) = config.token(env) {
            let first = *first_with_token.entry(hash_token(&token)).or_insert(i);
            if first != i {
                let key = if config.token_env.is_some() {
                    "token_env"
                } else {
                    "token"
                };
                problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!("the same token as partner[{first}]: each partner needs its own"),
                ));
            }
        }
    }
    if let Some(fallback) = &alerts.fallback
        && !first_with_id.contains_key(fallback.as_str())
    {
        problems.push(Problem::new(
            "alerts.fallback",
            format!("{fallback:?} is not the id of any [[partner]]"),
        ));
    }
    if alerts.sla_minutes == 0 || alerts.sla_minutes > MAX_SLA_MINUTES {
        problems.push(Problem::new(
            "alerts.sla_minutes",
            format!(
                "{} must be 1 to {MAX_SLA_MINUTES} (minutes)",
                alerts.sla_minutes
            ),
        ));
    }
    if alerts.response_wait_hours > MAX_RESPONSE_WAIT_HOURS {
        problems.push(Problem::new(
            "alerts.response_wait_hours",
            format!(
                "{} must be 0 to {MAX_RESPONSE_WAIT_HOURS} (hours)",
                alerts.response_wait_hours
            ),
        ));
    }
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}

/// Why the directory refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The partner is not valid; every problem with its key path.
    #[error("invalid partner: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The problems.
        problems: Vec<Problem>,
    },
    /// Another partner already has this API token.
    #[error("partner {id:?}: partner {other:?} already has this token")]
    TokenInUse {
        /// The partner being added.
        id: String,
        /// The partner holding the token.
        other: String,
    },
    /// No partner has this id.
    #[error("no partner {0:?}")]
    Unknown(String),
    /// The fallback partner cannot be removed (escalations go there).
    #[error("partner {0:?} is the fallback ([alerts] fallback); it cannot be removed")]
    IsFallback(String),
}

/// Every partner by id, and the fallback: routing, token lookup, changes from the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    // By id: routing among providers is by ascending id, whatever the insertion order.
    partners: BTreeMap<String, Partner>,
    // Token hash → partner id, so a lookup costs one hash whatever the number of partners.
    by_token: HashMap<String, String>,
    fallback: Option<String>,
}

impl Directory {
    /// Builds the directory from the config (validating it: see [`validate`]).
    ///
    /// # Errors
    /// Every problem found, with key paths.
    pub fn from_config(
        partners: &[PartnerConfig],
        alerts: &AlertsConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<Problem>> {
        let resolved = resolve_all(partners, alerts, env)?;
        Ok(Self {
            by_token: resolved
                .iter()
                .map(|p| (p.token_sha256.clone(), p.id.clone()))
                .collect(),
            partners: resolved.into_iter().map(|p| (p.id.clone(), p)).collect(),
            fallback: alerts.fallback.clone(),
        })
    }

    /// A partner by id.
    pub fn get(&self, id: &str) -> Option<&Partner> {
        self.partners.get(id)
    }

    /// Every partner, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = &Partner> {
        self.partners.values()
    }

    /// How many partners.
    pub fn len(&self) -> usize {
        self.partners.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.partners.is_empty()
    }

    /// The fallback partner, if one is configured.
    pub fn fallback(&self) -> Option<&Partner> {
        self.fallback
            .as_deref()
            .and_then(|id| self.partners.get(id))
    }

    /// The partner a target names for a vehicle, or `None`:
    /// - [`PartnerTarget::Dealer`]: the registration's dealer, if that partner exists;
    /// - [`PartnerTarget::Provider`]: the service provider with the lowest id that covers the
    ///   vehicle's region with the capability (exact, case-sensitive codes); none without a
    ///   region;
    /// - [`PartnerTarget::Fallback`]: the fallback partner.
    ///
    /// See [`Self::route_or_fallback`] for "someone must be told".
    pub fn route(&self, target: &PartnerTarget, registration: &Registration) -> Option<&Partner> {
        match target {
            PartnerTarget::Dealer => registration
                .dealer
                .as_deref()
                .and_then(|id| self.partners.get(id)),
            PartnerTarget::Provider { capability } => {
                let region = registration.region.as_deref()?;
                self.partners
                    .values()
                    .find(|p| p.covers(region, capability))
            }
            PartnerTarget::Fallback => self.fallback(),
        }
    }

    /// [`Self::route`], else the fallback partner (a vehicle without a known dealer, a region
    /// no provider covers).
    pub fn route_or_fallback(
        &self,
        target: &PartnerTarget,
        registration: &Registration,
    ) -> Option<&Partner> {
        self.route(target, registration).or_else(|| self.fallback())
    }

    /// The partner whose API token this is. The token is hashed first and only its hash is
    /// ever compared: the index lookup on the hash may take longer for a near miss, but that
    /// tells an attacker about hashes of their own guesses, which SHA-256 makes useless. The
    /// match is then confirmed with a constant-time compare of the stored hash.
    pub fn by_token(&self, bearer: &str) -> Option<&Partner> {
        let hash = hash_token(bearer);
        let partner = self
            .by_token
            .get(&hash)
            .and_then(|id| self.partners.get(id))?;
        bool::from(hash.as_bytes().ct_eq(partner.token_sha256.as_bytes())).then_some(partner)
    }

    /// Adds or replaces a partner (by id); returns the one replaced.
    ///
    /// # Errors
    /// [`DirectoryError::Invalid`] (the partner's problems, under the path `partner`) or
    /// [`DirectoryError::TokenInUse`] when another partner has the same token.
    pub fn upsert(&mut self, partner: Partner) -> Result<Option<Partner>, DirectoryError> {
        let problems = partner.check("partner");
        if !problems.is_empty() {
            return Err(DirectoryError::Invalid { problems });
        }
        if let Some(other) = self.by_token.get(&partner.token_sha256)
            && *other != partner.id
        {
            return Err(DirectoryError::TokenInUse {
                id: partner.id,
                other: other.clone(),
            });
        }
        self.by_token
            .insert(partner.token_sha256.clone(), partner.id.clone());
        let replaced = self.partners.insert(partner.id.clone(), partner);
        if let Some(old) = &replaced
            && self.partners.get(&old.id).map(|p| &p.token_sha256) != Some(&old.token_sha256)
        {
            // Its token changed: the old one no longer opens anything.
            self.by_token.remove(&old.token_sha256);
        }
        Ok(replaced)
    }

    /// Removes a partner; its alerts stay where they are (the caller's business).
    ///
    /// # Errors
    /// [`DirectoryError::Unknown`], or [`DirectoryError::IsFallback`] for the fallback.
    pub fn remove(&mut self, id: &str) -> Result<Partner, DirectoryError> {
        if self.fallback.as_deref() == Some(id) {
            return Err(DirectoryError::IsFallback(id.to_owned()));
        }
        let removed = self
            .partners
            .remove(id)
            .ok_or_else(|| DirectoryError::Unknown(id.to_owned()))?;
        self.by_token.remove(&removed.token_sha256);
        Ok(removed)
    }
}

/// Whether a partner may see a vehicle (its record, its alerts) through the API: it is the
/// vehicle's dealer in the registry, or it was sent an alert about it (as the recipient or as
/// the escalation target; the caller passes those partner ids, e.g. from
/// [`super::alerts::Alert::recipients`] of the vehicle's alerts). Nothing else: the fallback
/// partner too sees only what it was sent.
pub fn may_see<'a>(
    partner_id: &str,
    registration: &Registration,
    alert_recipients: impl IntoIterator<Item = &'a str>,
) -> bool {
    registration.dealer.as_deref() == Some(partner_id)
        || alert_recipients.into_iter().any(|id| id == partner_id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fleet::model::{Category, Consents};

    // The Standard Webhooks spec's example secret: 24 bytes.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NO_ENV: &dyn Fn(&str) -> Option<String> = &|_| None;

    fn token(id: &str) -> String {
        format!("tok-{id}-0123456789abcdef0123456789abcdef")
    }

    fn config(id: &str, kind: PartnerKind, regions: &[&str], caps: &[&str]) -> PartnerConfig {
        PartnerConfig {
            id: id.into(),
            name: format!("Partner {id}"),
            kind,
            webhook_url: format!("https://{id}.example.com/hooks"),
            secret: SECRET.into(),
            regions: regions.iter().map(|s| (*s).to_owned()).collect(),
            capabilities: caps.iter().map(|s| (*s).to_owned()).collect(),
            token: Some(token(id)),
            token_env: None,
        }
    }

    fn fleet_configs() -> Vec<PartnerConfig> {
        vec![
            config("dealer-north", PartnerKind::Dealer, &[], &[]),
            // A dealer with a low id, a region and a capability: never picked as a provider.
            config("a-dealer", PartnerKind::Dealer, &["north"], &["tyres"]),
            config(
                "prov-b",
                PartnerKind::ServiceProvider,
                &["north"],
                &["roadside", "tyres"],
            ),
            config(
                "prov-a",
                PartnerKind::ServiceProvider,
                &["north", "west"],
                &["tyres"],
            ),
            config(
                "prov-c",
                PartnerKind::ServiceProvider,
                &["south"],
                &["roadside"],
            ),
            config("oem-desk", PartnerKind::Dealer, &[], &[]),
        ]
    }

    fn alerts_config() -> AlertsConfig {
        AlertsConfig {
            fallback: Some("oem-desk".into()),
            ..AlertsConfig::default()
        }
    }

    fn directory() -> Directory {
        Directory::from_config(&fleet_configs(), &alerts_config(), NO_ENV).unwrap()
    }

    fn registration(dealer: Option<&str>, region: Option<&str>) -> Registration {
        Registration {
            vin: "WVWZZZ1JZXW000001".parse().unwrap(),
            category: Category::Passenger,
            line: "e-compact 2025".into(),
            delivered: None,
            dealer: dealer.map(str::to_owned),
            region: region.map(str::to_owned),
            consents: Consents::default(),
        }
    }

    fn provider(capability: &str) -> PartnerTarget {
        PartnerTarget::Provider {
            capability: capability.into(),
        }
    }

    fn routed<'a>(
        dir: &'a Directory,
        target: &PartnerTarget,
        reg: &Registration,
    ) -> Option<&'a str> {
        dir.route(target, reg).map(|p| p.id.as_str())
    }

    fn paths(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn dealer_route_is_the_registrations_dealer_if_it_exists() {
        let dir = directory();
        let dealer = PartnerTarget::Dealer;
        assert_eq!(
            routed(&dir, &dealer, &registration(Some("dealer-north"), None)),
            Some("dealer-north")
        );
        assert_eq!(
            routed(&dir, &dealer, &registration(Some("gone-dealer"), None)),
            None
        );
        assert_eq!(
            routed(&dir, &dealer, &registration(None, Some("north"))),
            None
        );
        // Someone must be told: the fallback.
        let reg = registration(Some("gone-dealer"), None);
        assert_eq!(
            dir.route_or_fallback(&dealer, &reg).map(|p| p.id.as_str()),
            Some("oem-desk")
        );
    }

    #[test]
    fn provider_route_matches_region_and_capability_lowest_id_first() {
        let dir = directory();
        let north = registration(None, Some("north"));
        // prov-a and prov-b both cover north with tyres: the lower id wins; dealers never do.
        assert_eq!(routed(&dir, &provider("tyres"), &north), Some("prov-a"));
        assert_eq!(routed(&dir, &provider("roadside"), &north), Some("prov-b"));
        assert_eq!(
            routed(&dir, &provider("tyres"), &registration(None, Some("west"))),
            Some("prov-a")
        );
        assert_eq!(
            routed(
                &dir,
                &provider("roadside"),
                &registration(None, Some("south"))
            ),
            Some("prov-c")
        );
        // Region covered, capability not; capability offered, region not; no region at all.
        assert_eq!(routed(&dir, &provider("ev_battery"), &north), None);
        assert_eq!(
            routed(&dir, &provider("tyres"), &registration(None, Some("south"))),
            None
        );
        assert_eq!(
            routed(&dir, &provider("tyres"), &registration(None, None)),
            None
        );
        // Codes are exact.
        assert_eq!(routed(&dir, &provider("Tyres"), &north), None);
        assert_eq!(
            routed(&dir, &provider("tyres"), &registration(None, Some("North"))),
            None
        );
    }

    #[test]
    fn provider_route_does_not_depend_on_insertion_order() {
        let mut reversed = fleet_configs();
        reversed.reverse();
        let a = directory();
        let b = Directory::from_config(&reversed, &alerts_config(), NO_ENV).unwrap();
        assert_eq!(a, b);
        // And through the API: prov-a added last still wins over prov-b.
        let mut c = directory();
        let prov_a = c.get("prov-a").unwrap().clone();
        c.remove("prov-a").unwrap();
        assert_eq!(
            routed(&c, &provider("tyres"), &registration(None, Some("north"))),
            Some("prov-b")
        );
        c.upsert(prov_a).unwrap();
        assert_eq!(
            routed(&c, &provider("tyres"), &registration(None, Some("north"))),
            Some("prov-a")
        );
    }

    #[test]
    fn fallback_route_is_the_configured_fallback_or_none() {
        let reg = registration(Some("dealer-north"), Some("north"));
        assert_eq!(
            routed(&directory(), &PartnerTarget::Fallback, &reg),
            Some("oem-desk")
        );
        let none =
            Directory::from_config(&fleet_configs(), &AlertsConfig::default(), NO_ENV).unwrap();
        assert_eq!(routed(&none, &PartnerTarget::Fallback, &reg), None);
        assert!(
            none.route_or_fallback(&PartnerTarget::Dealer, &registration(None, None))
                .is_none()
        );
    }

    #[test]
    fn token_finds_its_partner_only() {
        let dir = directory();
        assert_eq!(
            dir.by_token(&token("prov-b")).map(|p| p.id.as_str()),
            Some("prov-b")
        );
        assert_eq!(
            dir.by_token(&token("oem-desk")).map(|p| p.id.as_str()),
            Some("oem-desk")
        );
        assert!(dir.by_token(&token("nobody")).is_none());
        assert!(dir.by_token("").is_none());
        // A stored hash presented as the token is not the token.
        let hash = dir.get("prov-b").unwrap().token_sha256.clone();
        assert!(dir.by_token(&hash).is_none());
    }

    #[test]
    fn tokens_are_never_kept_in_clear() {
        let dir = directory();
        for partner in dir.iter() {
            let clear = token(&partner.id);
            assert_eq!(partner.token_sha256, hash_token(&clear));
            let stored = serde_json::to_string(partner).unwrap();
            assert!(!stored.contains(&clear), "{stored}");
            let debug = format!("{partner:?}");
            assert!(!debug.contains(&clear) && !debug.contains(&partner.token_sha256));
            assert!(!debug.contains(SECRET), "{debug}");
            let summary = serde_json::to_string(&partner.summary()).unwrap();
            assert!(!summary.contains("whsec_") && !summary.contains(&partner.token_sha256));
        }
        // The known SHA-256 of "abc".
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn token_env_is_read_through_the_lookup() {
        let mut c = config("dealer-env", PartnerKind::Dealer, &[], &[]);
        c.token = None;
        c.token_env = Some("DEALER_TOKEN".into());
        let env = |name: &str| (name == "DEALER_TOKEN").then(|| token("env"));
        let partner = c.resolve("partner[0]", &env).unwrap();
        assert_eq!(partner.token_sha256, hash_token(&token("env")));

        let problems = c.resolve("partner[0]", NO_ENV).unwrap_err();
        assert_eq!(paths(&problems), ["partner[0].token_env"]);
        assert!(
            problems[0].message.contains("DEALER_TOKEN"),
            "{}",
            problems[0]
        );

        let short = |_: &str| Some("tiny-token".to_owned());
        let problems = c.resolve("partner[0]", &short).unwrap_err();
        assert_eq!(paths(&problems), ["partner[0].token_env"]);
        assert!(
            problems[0].message.contains("shorter than 32"),
            "{}",
            problems[0]
        );
        assert!(
            !problems[0].message.contains("tiny-token"),
            "{}",
            problems[0]
        );
    }

    /// The config file's partner part, as the lead will nest it in `Config`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default, rename = "partner")]
        partners: Vec<PartnerConfig>,
        #[serde(default)]
        alerts: AlertsConfig,
    }

    const GOOD: &str = r#"
[alerts]
fallback = "oem-desk"
sla_minutes = 30

[[partner]]
id = "oem-desk"
name = "OEM service desk"
kind = "dealer"
webhook_url = "https://desk.example.com/rapport"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
token_env = "OEM_DESK_TOKEN"

[[partner]]
id = "roadside-north"
name = "Roadside North"
kind = "service_provider"
webhook_url = "http://127.0.0.1:9000/hooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
regions = ["north"]
capabilities = ["roadside"]
token = "a-long-random-token-0123456789abcdef"
"#;

    #[test]
    fn a_good_file_builds_a_directory() {
        let file: File = toml::from_str(GOOD).unwrap();
        let env = |name: &str| (name == "OEM_DESK_TOKEN").then(|| token("desk"));
        assert!(validate(&file.partners, &file.alerts, &env).is_empty());
        let dir = Directory::from_config(&file.partners, &file.alerts, &env).unwrap();
        assert_eq!(dir.len(), 2);
        assert_eq!(
            dir.fallback().map(|p| p.name.as_str()),
            Some("OEM service desk")
        );
        assert_eq!(
            dir.by_token(&token("desk")).map(|p| p.id.as_str()),
            Some("oem-desk")
        );
        let policy = file.alerts.policy();
        assert_eq!(policy.sla, Duration::from_secs(30 * 60));
        assert_eq!(policy.response_wait, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn alerts_defaults_are_one_hour_and_one_day() {
        let file: File = toml::from_str("").unwrap();
        assert_eq!(file.alerts, AlertsConfig::default());
        assert_eq!(file.alerts.policy(), AlertPolicy::default());
        assert_eq!(file.alerts.policy().sla, Duration::from_secs(3600));
        assert_eq!(
            file.alerts.policy().response_wait,
            Duration::from_secs(86_400)
        );
        assert!(toml::from_str::<File>("[alerts]\nsla_minute = 5").is_err());
        assert!(toml::from_str::<File>(&format!("{GOOD}\nwebhook = \"x\"")).is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let mut partners = fleet_configs();
        partners[0].webhook_url = "ftp://dealer.example.com/".into();
        partners[1].secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(); // no prefix
        partners[2].secret = "whsec_c2hvcnQ=".into(); // 5 bytes
        partners[3].secret = "whsec_not base64!".into();
        partners[4].id = "prov-b".into(); // duplicate of partner[2]
        partners[5].webhook_url = "https://user:pw@desk.example.com/".into();
        partners.push(config("no-scheme", PartnerKind::Dealer, &[], &[]));
        partners[6].webhook_url = "desk.example.com/hooks".into();
        partners[6].token = Some(token("prov-a")); // partner[3]'s token
        partners.push(config(
            "bad id!",
            PartnerKind::ServiceProvider,
            &[],
            &["x y"],
        ));
        partners[7].webhook_url = "https://seven.example.com/".into();
        partners[7].token_env = Some("T".into()); // and token: both
        let alerts = AlertsConfig {
            fallback: Some("nobody".into()),
            sla_minutes: 0,
            response_wait_hours: 10_000,
        };
        let problems = validate(&partners, &alerts, NO_ENV);
        assert_eq!(
            paths(&problems),
            [
                "partner[0].webhook_url",
                "partner[1].secret",
                "partner[2].secret",
                "partner[3].secret",
                "partner[4].id",
                "partner[5].webhook_url",
                "partner[6].webhook_url",
                "partner[6].token",
                "partner[7].token",
                "partner[7].id",
                "partner[7].regions",
                "partner[7].capabilities[0]",
                "alerts.fallback",
                "alerts.sla_minutes",
                "alerts.response_wait_hours",
            ],
            "{problems:#?}"
        );
        let message = |path: &str| {
            problems
                .iter()
                .find(|p| p.path == path)
                .map(|p| p.message.clone())
                .unwrap()
        };
        assert!(message("partner[0].webhook_url").contains("http:// or https://"));
        assert!(message("partner[1].secret").contains("whsec_"));
        assert!(message("partner[2].secret").contains("5 bytes"));
        assert!(message("partner[3].secret").contains("base64"));
        assert!(message("partner[4].id").contains("partner[2]"));
        assert!(message("partner[5].webhook_url").contains("user or password"));
        assert!(message("partner[6].token").contains("partner[3]"));
        assert!(message("alerts.fallback").contains("nobody"));
        // Secrets are never repeated in messages.
        assert!(problems.iter().all(|p| !p.message.contains("MfKQ9r8G")));
    }

    #[test]
    fn a_missing_token_is_reported() {
        let mut partners = vec![config("dealer-x", PartnerKind::Dealer, &[], &[])];
        partners[0].token = None;
        let problems = validate(&partners, &AlertsConfig::default(), NO_ENV);
        assert_eq!(paths(&problems), ["partner[0].token"]);
        partners[0].token = Some("too-short".into());
        let problems = validate(&partners, &AlertsConfig::default(), NO_ENV);
        assert_eq!(paths(&problems), ["partner[0].token"]);
        assert!(!problems[0].message.contains("too-short"));
    }

    #[test]
    fn secret_bounds_are_24_to_64_bytes() {
        use base64::engine::general_purpose::STANDARD;
        let secret = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7_u8; n]));
        assert!(check_secret(&secret(23)).is_err());
        assert!(check_secret(&secret(24)).is_ok());
        assert!(check_secret(&secret(64)).is_ok());
        assert!(check_secret(&secret(65)).is_err());
        assert!(check_secret(SECRET).is_ok());
        assert!(check_webhook_url("https://[::1]:8443/x?y=1").is_ok());
        assert!(check_webhook_url("https://").is_err());
        assert!(check_webhook_url("mailto:ops@example.com").is_err());
    }

    #[test]
    fn upsert_and_remove_for_the_api() {
        let mut dir = directory();
        let mut new = config(
            "prov-d",
            PartnerKind::ServiceProvider,
            &["east"],
            &["tyres"],
        )
        .resolve("partner", NO_ENV)
        .unwrap();
        assert_eq!(dir.upsert(new.clone()).unwrap(), None);
        let east = registration(None, Some("east"));
        assert_eq!(routed(&dir, &provider("tyres"), &east), Some("prov-d"));
        // Replacing returns the old one.
        new.name = "Renamed".into();
        assert_eq!(
            dir.upsert(new.clone()).unwrap().map(|p| p.name),
            Some("Partner prov-d".into())
        );
        assert_eq!(dir.get("prov-d").unwrap().name, "Renamed");

        let mut thief = new.clone();
        thief.id = "prov-e".into();
        assert_eq!(
            dir.upsert(thief).unwrap_err(),
            DirectoryError::TokenInUse {
                id: "prov-e".into(),
                other: "prov-d".into()
            }
        );
        let mut broken = new.clone();
        broken.webhook_url = "not a url".into();
        broken.token_sha256 = "XYZ".into();
        match dir.upsert(broken).unwrap_err() {
            DirectoryError::Invalid { problems } => {
                assert_eq!(
                    paths(&problems),
                    ["partner.webhook_url", "partner.token_sha256"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(dir.get("prov-d").unwrap().webhook_url, new.webhook_url);

        // A new token replaces the old one; the old one opens nothing any more.
        let old_token = token("prov-d");
        assert_eq!(
            dir.by_token(&old_token).map(|p| p.id.as_str()),
            Some("prov-d")
        );
        new.token_sha256 = hash_token("rotated-token-0123456789abcdef0123456789");
        dir.upsert(new.clone()).unwrap();
        assert!(dir.by_token(&old_token).is_none());
        assert_eq!(
            dir.by_token("rotated-token-0123456789abcdef0123456789")
                .map(|p| p.id.as_str()),
            Some("prov-d")
        );
        // The old token is free for another partner.
        let mut other = new.clone();
        other.id = "prov-e".into();
        other.token_sha256 = hash_token(&old_token);
        dir.upsert(other).unwrap();
        assert_eq!(
            dir.by_token(&old_token).map(|p| p.id.as_str()),
            Some("prov-e")
        );
        dir.remove("prov-e").unwrap();
        assert!(dir.by_token(&old_token).is_none());

        assert_eq!(dir.remove("prov-d").unwrap().id, "prov-d");
        assert_eq!(routed(&dir, &provider("tyres"), &east), None);
        assert_eq!(
            dir.remove("prov-d").unwrap_err(),
            DirectoryError::Unknown("prov-d".into())
        );
        assert_eq!(
            dir.remove("oem-desk").unwrap_err(),
            DirectoryError::IsFallback("oem-desk".into())
        );
        assert!(dir.fallback().is_some());
    }

    #[test]
    fn a_partner_sees_its_dealer_vehicles_and_what_it_was_alerted_about() {
        let reg = registration(Some("dealer-north"), Some("north"));
        assert!(may_see("dealer-north", &reg, []));
        assert!(!may_see("prov-b", &reg, []));
        assert!(may_see("prov-b", &reg, ["prov-c", "prov-b"]));
        assert!(!may_see("oem-desk", &reg, ["prov-b"]));
        assert!(!may_see(
            "dealer-north",
            &registration(None, None),
            ["prov-b"]
        ));
    }
}
