//! An owner change, for one vehicle (the registry's `owner_since` or the operator's
//! `POST /api/v1/vehicles/{vin}/owner-change`, both through [`Step::register`]): the car
//! changed hands, and the relationship restarts.
//!
//! - The driver's layering inputs start over ([`Driver::new_owner`]): ownership from the
//!   effective date, no engagement, no prompt actions, bookings or services of the new
//!   owner yet (a used-car buyer is a NEW relationship, not a churned one: lifecycle `new`,
//!   activity `active`); the odometer and the car's maintenance state stay with the car.
//! - Consents go off on the cloud (the registration's too) and on the car: an
//!   [`OwnerChanged`] downlink (tag 6), which the agent applies once, confirming with its
//!   consent records. Consent and prompt records dated before the effective date that
//!   arrive late are not the new owner's and are skipped ([`is_previous_owners`]).
//! - The contact history (strategies' cadence) starts over; the change is on the timeline.
//!
//! Owns the order of those steps. Does not own the API ([`crate::api::owner`]), what the
//! partner views hide ([`crate::fleet::owner`]) nor the driver's fields.

use rapport_shared::{CivilDate, DownlinkBody, OwnerChanged, Record, RecordBody, Timestamp};

use super::{FleetError, Step, Vehicle};
use crate::downlink::envelope;
use crate::fleet::driver::Driver;
use crate::fleet::model::{Consents, Registration};
use crate::fleet::store::TimelineEntry;
use crate::fleet::strategy::ContactHistory;

/// Whether `record` is the previous owner's and not the new one's: a consent or a prompt
/// response dated (car clock) before the current relationship's start.
pub fn is_previous_owners(record: &Record, owner_since: Option<Timestamp>) -> bool {
    owner_since.is_some_and(|since| {
        record.at < since && matches!(record.body, RecordBody::Consent(_) | RecordBody::Prompt(_))
    })
}

/// Whether registering `new` over `old` is an owner change: `new` names an owner start that
/// differs from the stored one. The same date again is no change (idempotent).
pub fn is_owner_change(old: Option<&Registration>, new: &Registration) -> bool {
    new.owner_since.is_some() && old.and_then(|o| o.owner_since) != new.owner_since
}

/// A registration as it is stored: one that does not name the owner (a registry row or an
/// API entry without `owner_since`) keeps the owner on record — an owner change is never
/// undone by a row that does not mention it; an owner change takes the consents given at
/// the first sale back (the new owner has given none).
pub fn merged(old: Option<&Registration>, new: &Registration) -> Registration {
    let mut r = new.clone();
    if r.owner_since.is_none()
        && let Some(o) = old
    {
        r.owner_since = o.owner_since;
        r.owner.clone_from(&o.owner);
    }
    if is_owner_change(old, &r) {
        r.consents = Consents::default();
    }
    r
}

/// Whether registering `new` over the stored `old` would change nothing (a registry file
/// imported again at start): equal once the owner on record is carried over.
pub fn unchanged(old: Option<&Registration>, new: &Registration) -> bool {
    old.is_some_and(|o| *o == merged(Some(o), new))
}

impl Step<'_> {
    /// The relationship restarts at `since` (see the module doc). Called by
    /// [`Step::register`] after it stored the new registration.
    ///
    /// # Errors
    /// Ids from the store.
    pub(super) fn owner_changed(
        &mut self,
        v: &mut Vehicle,
        since: Timestamp,
        owner: Option<&str>,
    ) -> Result<(), FleetError> {
        let now = self.now;
        self.out.timeline(
            now,
            TimelineEntry::Registered {
                detail: format!(
                    "owner changed: a new relationship since {}{}; consents off on the cloud \
                     and the car until the new owner gives them; the car's maintenance \
                     history stays",
                    CivilDate::of(since),
                    owner.map(|o| format!(" (owner {o})")).unwrap_or_default(),
                ),
            },
        );
        v.contacts = ContactHistory::default();
        v.in_cell_due = None;
        self.out.contacts = true;
        if let Some(driver) = v.driver.as_mut() {
            driver.new_owner(since);
            self.out.driver = true;
        }
        let id = self.ids.downlink_id()?;
        let body = DownlinkBody::OwnerChanged(OwnerChanged { since });
        match envelope(v.vin, id, now, body).encode() {
            Ok(bytes) => self.out.downlinks.push((id, bytes)),
            Err(e) => {
                tracing::error!(vin = %v.vin, cause = %e, "owner change downlink does not encode");
            }
        }
        Ok(())
    }
}

impl Driver {
    /// A new owner from `since`: the relationship's inputs start over, consents off, the
    /// previous owner's responses to maintenance prompts forgotten; the odometer, the last
    /// record's time and the car's maintenance items stay.
    pub fn new_owner(&mut self, since: Timestamp) {
        let p = &mut self.profile;
        p.owned_since = Some(since);
        p.last_engagement = None;
        p.prompt_actions = 0;
        p.bookings = 0;
        p.services = 0;
        self.consents = Consents::default();
        for item in &mut self.items {
            item.response = crate::fleet::model::DriverResponse::None;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rapport_shared::{ConsentChange, ConsentKind};

    use super::*;

    const DAY: u64 = 86_400_000;

    fn reg(since: Option<u64>, owner: Option<&str>, consents: bool) -> Registration {
        let mut r = Registration::unregistered("WVWZZZ1JZXW000001".parse().unwrap());
        r.owner_since = since.map(Timestamp::from_millis);
        r.owner = owner.map(str::to_owned);
        r.consents = Consents {
            partner_sharing: consents,
            engagement: consents,
        };
        r
    }

    #[test]
    fn a_new_date_is_a_change_the_same_date_is_not_and_a_row_without_one_keeps_it() {
        let old = reg(Some(10 * DAY), Some("crm-1"), false);
        assert!(is_owner_change(None, &reg(Some(DAY), None, true)));
        assert!(is_owner_change(
            Some(&old),
            &reg(Some(11 * DAY), None, true)
        ));
        assert!(!is_owner_change(
            Some(&old),
            &reg(Some(10 * DAY), None, true)
        ));
        assert!(!is_owner_change(Some(&old), &reg(None, None, true)));
        // A row that does not name the owner keeps the one on record (and its consents).
        assert!(unchanged(Some(&old), &reg(None, None, false)));
        assert!(!unchanged(Some(&old), &reg(None, None, true)));
        assert!(!unchanged(None, &reg(None, None, false)));
        let kept = merged(Some(&old), &reg(None, None, true));
        assert_eq!(kept.owner_since, old.owner_since);
        assert_eq!(kept.owner.as_deref(), Some("crm-1"));
        assert!(
            kept.consents.partner_sharing,
            "not an owner change: its consents hold"
        );
        // An owner change takes the sale's consents back.
        let changed = merged(Some(&old), &reg(Some(11 * DAY), Some("crm-2"), true));
        assert_eq!(changed.consents, Consents::default());
        assert_eq!(changed.owner.as_deref(), Some("crm-2"));
    }

    #[test]
    fn the_previous_owners_late_consents_and_prompts_are_told_apart() {
        let rec = |at: u64, body: RecordBody| Record {
            seq: 9,
            at: Timestamp::from_millis(at),
            body,
        };
        let consent = RecordBody::Consent(ConsentChange {
            consent: ConsentKind::PartnerSharing,
            granted: true,
        });
        let since = Some(Timestamp::from_millis(10 * DAY));
        assert!(is_previous_owners(&rec(9 * DAY, consent.clone()), since));
        assert!(!is_previous_owners(&rec(10 * DAY, consent.clone()), since));
        assert!(!is_previous_owners(&rec(9 * DAY, consent), None));
        let odometer = RecordBody::Odometer(rapport_shared::OdometerReading {
            odometer: rapport_shared::Odometer::from_km(1),
            source: rapport_shared::SignalSource::Obd,
        });
        assert!(
            !is_previous_owners(&rec(DAY, odometer), since),
            "the car's own data stays"
        );
    }
}
