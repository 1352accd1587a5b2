//! The [`Directory`]: every partner by id and the fallback — routing a [`PartnerTarget`] to a
//! partner, finding a partner by its bearer token, adding and removing partners for the API —
//! and the visibility rule [`may_see`].
//!
//! Owns the index and the rules of routing and visibility. Does not own what a valid partner
//! is ([`Partner`]'s check) or the config it is first built from ([`super::config`]).

use std::collections::{BTreeMap, HashMap};

use rapport_kit::config::{Check, Problem, one_line};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::Partner;
use super::config::{AlertsConfig, PartnerConfig, resolve_all};
use crate::fleet::model::{PartnerTarget, Registration};

/// Why the directory refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The partner is not valid; every problem with its key path.
    #[error("invalid partner: {}", one_line(problems))]
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
    /// Builds the directory from the config (validating it: see [`super::validate`]).
    ///
    /// # Errors
    /// Every problem found, with key paths.
    pub fn from_config(
        partners: &[PartnerConfig],
        alerts: &AlertsConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<Problem>> {
        let resolved = resolve_all("", partners, alerts, env)?;
        Ok(Self {
            by_token: resolved
                .iter()
                .flat_map(|p| p.token_hashes().map(|h| (h.to_owned(), p.id.clone())))
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
    /// ever compared: see [`Self::by_digest`].
    pub fn by_token(&self, bearer: &str) -> Option<&Partner> {
        self.by_digest(&Sha256::digest(bearer.as_bytes()).into())
    }

    /// The partner whose API token has this SHA-256 digest. The index lookup on the hash may
    /// take longer for a near miss, but that tells an attacker about hashes of their own
    /// guesses, which SHA-256 makes useless. The match is then confirmed with a
    /// constant-time compare of the stored hash.
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<&Partner> {
        let hash = rapport_shared::hex::encode(digest);
        let partner = self
            .by_token
            .get(&hash)
            .and_then(|id| self.partners.get(id))?;
        partner
            .token_hashes()
            .any(|kept| bool::from(hash.as_bytes().ct_eq(kept.as_bytes())))
            .then_some(partner)
    }

    /// Adds or replaces a partner (by id); returns the one replaced.
    ///
    /// # Errors
    /// [`DirectoryError::Invalid`] (the partner's problems, under the path `partner`) or
    /// [`DirectoryError::TokenInUse`] when another partner has the same token.
    pub fn upsert(&mut self, partner: Partner) -> Result<Option<Partner>, DirectoryError> {
        let problems = partner.problems("partner");
        if !problems.is_empty() {
            return Err(DirectoryError::Invalid { problems });
        }
        for hash in partner.token_hashes() {
            if let Some(other) = self.by_token.get(hash)
                && *other != partner.id
            {
                return Err(DirectoryError::TokenInUse {
                    id: partner.id.clone(),
                    other: other.clone(),
                });
            }
        }
        let replaced = self.partners.insert(partner.id.clone(), partner.clone());
        if let Some(old) = &replaced {
            // Tokens it no longer holds no longer open anything.
            for hash in old.token_hashes() {
                self.by_token.remove(hash);
            }
        }
        for hash in partner.token_hashes() {
            self.by_token.insert(hash.to_owned(), partner.id.clone());
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
        for hash in removed.token_hashes() {
            self.by_token.remove(hash);
        }
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
