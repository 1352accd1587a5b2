//! What a partner sees of a car that changed hands: only its current relationship.
//!
//! The previous owner's side of the relationship — their prompts and responses, their
//! consents, the layers and strategies and alerts of their time — is hidden from every
//! partner token once the car has a new owner (the registration's `owner_since`); the car's
//! own history (readings, faults, maintenance and services, the registry's entries) stays
//! with the car and stays visible. The operator sees everything.
//!
//! Owns the rule ([`is_relationship_entry`], [`alert_of_current_owner`]) and reading the
//! boundary ([`FleetHandle::owner_since`]). Does not own the change itself
//! ([`super::core::owner`]) nor the routes (`crate::api`).

use rapport_shared::{RecordBody, Timestamp, Vin};

use super::alerts::Alert;
use super::core::FleetError;
use super::shell::FleetHandle;
use super::store::TimelineEntry;
use crate::timeline::Entry;

/// Whether a timeline entry belongs to the owner's relationship (hidden from partners when
/// it is older than the current owner's start), not to the car's own history.
pub fn is_relationship_entry(e: &Entry) -> bool {
    match e {
        Entry::Car(r) => matches!(r.body, RecordBody::Prompt(_) | RecordBody::Consent(_)),
        Entry::Cloud(s) => !matches!(s.entry, TimelineEntry::Registered { .. }),
        Entry::Readings(_) => false,
    }
}

/// Whether a partner may see `e` of a vehicle whose current owner started at `since`.
pub fn partner_sees_entry(e: &Entry, since: Option<Timestamp>) -> bool {
    since.is_none_or(|s| e.at() >= s || !is_relationship_entry(e))
}

/// Whether `alert` was opened in the current owner's relationship (`since`: its start).
pub fn alert_of_current_owner(alert: &Alert, since: Option<Timestamp>) -> bool {
    since.is_none_or(|s| alert.created_at >= s)
}

impl FleetHandle {
    /// When the vehicle's current owner's relationship started, if the car changed hands.
    ///
    /// # Errors
    /// The store.
    pub fn owner_since(&self, vin: &Vin) -> Result<Option<Timestamp>, FleetError> {
        Ok(self.store.registration(vin)?.and_then(|r| r.owner_since))
    }
}
