//! The partners' config: `[[partner]]` entries ([`PartnerConfig`], also the body the API takes
//! to add or replace a partner) and the `[alerts]` section ([`AlertsConfig`]), with their
//! checks: each entry resolved into a checked [`Partner`], ids and tokens unique across the
//! entries, the fallback one of them ([`check_partners`]).
//!
//! Owns these sections' shape, defaults and rules. Does not own the directory built from them
//! ([`super::directory`]) or where the file comes from (`crate::config`).

use core::fmt;
use std::collections::BTreeMap;
use std::time::Duration;

use rapport_kit::config::{Check, Problem, Problems, index, key};
use serde::{Deserialize, Serialize};

use super::{
    MAX_RESPONSE_WAIT_HOURS, MAX_SLA_MINUTES, Partner, PartnerKind, check_token, defaults,
    hash_token,
};
use crate::fleet::alerts::AlertPolicy;

/// A `[[partner]]` entry of the cloud config, also the body the API accepts to add or replace
/// a partner. The token is given in clear (`token`) or by the name of an environment
/// variable holding it (`token_env`), exactly one of the two; only its hash is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
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
    /// During a webhook secret rotation, the secret the partner's receiver may still hold:
    /// deliveries are signed with both until it is removed.
    #[serde(default)]
    pub previous_secret: Option<String>,
    /// During an API token rotation, the old token in clear (hashed at once): valid beside
    /// `token` until removed.
    #[serde(default)]
    pub previous_token: Option<String>,
    /// The environment variable holding the old token during a rotation.
    #[serde(default)]
    pub previous_token_env: Option<String>,
    /// The partner's own API rate limit (`{ per_second, burst }`) instead of
    /// `[api.rate_limit]`.
    #[serde(default)]
    pub rate_limit: Option<crate::config::rate_limit::RateLimit>,
}

impl fmt::Debug for PartnerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartnerConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("webhook_url", &self.webhook_url)
            .field("token_env", &self.token_env)
            .field("previous_token_env", &self.previous_token_env)
            .field("rate_limit", &self.rate_limit)
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

    /// The previous API token in clear, from `previous_token` or `previous_token_env`,
    /// checked; `None` without either; else the key at fault and why.
    fn previous_token(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, (&'static str, String)> {
        match (&self.previous_token, &self.previous_token_env) {
            (Some(_), Some(_)) => Err((
                "previous_token",
                "give previous_token or previous_token_env, not both".into(),
            )),
            (None, None) => Ok(None),
            (Some(token), None) => check_token(token)
                .map(|()| Some(token.clone()))
                .map_err(|e| ("previous_token", e)),
            (None, Some(var)) => {
                let token = env(var).ok_or_else(|| {
                    (
                        "previous_token_env",
                        format!("environment variable {var:?} is not set"),
                    )
                })?;
                check_token(&token)
                    .map(|()| Some(token))
                    .map_err(|e| ("previous_token_env", format!("the token in {var:?} {e}")))
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
        let mut problems = Problems::new();
        let token = match self.token(env) {
            Ok(token) => Some(token),
            Err((name, message)) => {
                problems.at(path, name, message);
                None
            }
        };
        let previous_token = match self.previous_token(env) {
            Ok(token) => token,
            Err((name, message)) => {
                problems.at(path, name, message);
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
            previous_secrets: self.previous_secret.iter().cloned().collect(),
            other_tokens_sha256: previous_token
                .as_deref()
                .map(hash_token)
                .into_iter()
                .collect(),
            rate_limit: self.rate_limit,
        };
        problems.check(path, &partner);
        if problems.is_empty() {
            Ok(partner)
        } else {
            // The checked partner's `previous_secrets[0]` is this entry's `previous_secret`.
            let kept = key(path, "previous_secrets[0]");
            let mut problems = problems.into_vec();
            for p in &mut problems {
                if p.path == kept {
                    p.path = key(path, "previous_secret");
                }
            }
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

impl Check for AlertsConfig {
    /// The timings' ranges. That the fallback is a `[[partner]]` is the file's rule
    /// ([`check_partners`]).
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.sla_minutes == 0 || self.sla_minutes > MAX_SLA_MINUTES {
            problems.at(
                path,
                "sla_minutes",
                format!(
                    "{} must be 1 to {MAX_SLA_MINUTES} (minutes)",
                    self.sla_minutes
                ),
            );
        }
        if self.response_wait_hours > MAX_RESPONSE_WAIT_HOURS {
            problems.at(
                path,
                "response_wait_hours",
                format!(
                    "{} must be 0 to {MAX_RESPONSE_WAIT_HOURS} (hours)",
                    self.response_wait_hours
                ),
            );
        }
    }
}

/// Every problem with the `[[partner]]` entries and the `[alerts]` section of a file at the
/// top, each with its key path (`partner[2].secret`, `alerts.fallback`); empty when fine.
/// `env` looks up `token_env` variables (pass `|v| std::env::var(v).ok()` in the daemon).
pub fn validate(
    partners: &[PartnerConfig],
    alerts: &AlertsConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Problem> {
    let mut problems = Problems::new();
    check_partners("", partners, alerts, env, &mut problems);
    problems.into_vec()
}

/// Notes every problem with the `[[partner]]` entries and the `[alerts]` section of the
/// table at `parent` (empty: the file's top): each entry's own, ids and tokens given twice,
/// a fallback that is no entry, then `[alerts]`' own. `env` looks up `token_env` variables.
pub fn check_partners(
    parent: &str,
    partners: &[PartnerConfig],
    alerts: &AlertsConfig,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    if let Err(found) = resolve_all(parent, partners, alerts, env) {
        problems.extend(found);
    }
}

/// Every entry resolved, or every problem (see [`check_partners`]).
pub(super) fn resolve_all(
    parent: &str,
    partners: &[PartnerConfig],
    alerts: &AlertsConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Partner>, Vec<Problem>> {
    let mut problems = Problems::new();
    let mut resolved = Vec::with_capacity(partners.len());
    let mut first_with_id: BTreeMap<&str, usize> = BTreeMap::new();
    let mut first_with_token: BTreeMap<String, usize> = BTreeMap::new();
    let list = key(parent, "partner");
    for (i, config) in partners.iter().enumerate() {
        let path = index(&list, i);
        if let Some(&first) = first_with_id.get(config.id.as_str()) {
            problems.at(
                &path,
                "id",
                format!("{:?} is already the id of partner[{first}]", config.id),
            );
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
                let name = if config.token_env.is_some() {
                    "token_env"
                } else {
                    "token"
                };
                problems.at(
                    &path,
                    name,
                    format!("the same token as partner[{first}]: each partner needs its own"),
                );
            }
        }
        if let Ok(Some(token)) = config.previous_token(env) {
            let first = *first_with_token.entry(hash_token(&token)).or_insert(i);
            if first != i {
                problems.at(
                    &path,
                    "previous_token",
                    format!("the same token as partner[{first}]: each partner needs its own"),
                );
            }
        }
    }
    let alerts_path = key(parent, "alerts");
    if let Some(fallback) = &alerts.fallback
        && !first_with_id.contains_key(fallback.as_str())
    {
        problems.at(
            &alerts_path,
            "fallback",
            format!("{fallback:?} is not the id of any [[partner]]"),
        );
    }
    problems.check(&alerts_path, alerts);
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems.into_vec())
    }
}
