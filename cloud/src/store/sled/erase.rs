//! The sled backend's erasure (docs/data-rights.md, "Erase"): every key of a vehicle removed
//! and its tombstone, `vehicle.erased` webhooks and wipe downlink written in ONE batch under
//! the fleet lock, the fleet's memory of it forgotten; and the tombstone read for the ingest.
//!
//! Owns which sled keys an erasure removes. Does not own the tombstone's shape or the
//! late-record rule ([`crate::store::erasure`]).

use std::collections::BTreeSet;

use rapport_shared::{Timestamp, Vin};

use super::fleet::nothing;
use super::{Batch, SledStore};
use crate::fleet::alerts::Alert;
use crate::fleet::core::FleetError;
use crate::keys::{
    self, ALERT_BY_VIN, CONTACTS, DEAD, DRIVER, DUE, ERASURE, PENDING, RECORD, REGISTRATION,
    TIMELINE, VEHICLE, text_key, timed_key, vin_key,
};
use crate::store::erasure::{ErasedCounts, Erasure, alert_partners};
use crate::store::{Applied, StoreError};
use crate::webhook::outbox::{Enqueue, MessageState};

impl SledStore {
    /// The vehicle's tombstone, if it was erased.
    pub(super) fn erasure_of(&self, vin: Vin) -> Result<Option<Erasure>, StoreError> {
        self.tree
            .get(vin_key(ERASURE, &vin))?
            .map(|b| {
                Erasure::from_json(&b).map_err(|e| StoreError::corrupt(format!("erasure {vin}"), e))
            })
            .transpose()
    }

    /// Writes the tombstone into `batch`.
    pub(super) fn put_erasure(&self, batch: &mut Batch, e: &Erasure) -> Result<(), StoreError> {
        let bytes = e
            .to_json()
            .map_err(|err| StoreError::corrupt(format!("erasure {} (encoding)", e.vin), err))?;
        batch.insert(&vin_key(ERASURE, &e.vin), bytes);
        Ok(())
    }

    /// Removes every key under `prefix` vin into `batch`; how many.
    fn remove_prefix(&self, batch: &mut Batch, prefix: u8, vin: &Vin) -> Result<u64, StoreError> {
        let mut n = 0;
        for k in self.tree.scan_prefix(vin_key(prefix, vin)).keys() {
            batch.remove(k?);
            n += 1;
        }
        Ok(n)
    }

    /// [`crate::store::Backend::erase`] on sled.
    pub(super) fn erase_vehicle(
        &self,
        vin: &Vin,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<(Erasure, bool, Applied)>, FleetError> {
        let mut mem = self.lock_fleet()?;
        if let Some(done) = self.erasure_of(*vin)? {
            return Ok(Some((done, false, nothing())));
        }
        let alert_ids = self.keys.alert_ids_of(vin)?;
        let known = !alert_ids.is_empty()
            || [VEHICLE, DRIVER, REGISTRATION, CONTACTS]
                .iter()
                .any(|p| self.tree.contains_key(vin_key(*p, vin)).unwrap_or(true))
            || self
                .tree
                .scan_prefix(vin_key(TIMELINE, vin))
                .next()
                .is_some()
            || self.tree.scan_prefix(vin_key(RECORD, vin)).next().is_some();
        if !known {
            return Ok(None);
        }
        let mut batch = Batch::default();
        let mut counts = ErasedCounts::default();
        let mut partners = BTreeSet::new();
        for id in &alert_ids {
            let Some(alert) = self.keys.alert::<Alert>(*id)? else {
                continue;
            };
            for (msg_id, partner) in alert_partners(&alert) {
                match self.outbox.state(&msg_id)? {
                    None => {}
                    Some(state) => {
                        partners.insert(partner);
                        match state {
                            MessageState::Pending(m) => {
                                batch.remove(text_key(PENDING, &msg_id));
                                batch.remove(timed_key(DUE, m.next_at, &msg_id));
                                counts.webhooks += 1;
                            }
                            MessageState::Dead(_) => {
                                batch.remove(text_key(DEAD, &msg_id));
                                counts.webhooks += 1;
                            }
                            // The marker names no vehicle and no driver: kept.
                            MessageState::Delivered(_) => {}
                        }
                    }
                }
            }
            batch.remove(&keys::id_key(keys::ALERT, *id));
            counts.alerts += 1;
            mem.open.remove(id);
            mem.send_due.remove(id);
            mem.sla_due.remove(id);
        }
        mem.open_by_vin.remove(vin);
        self.remove_prefix(&mut batch, ALERT_BY_VIN, vin)?;
        counts.records = self.remove_prefix(&mut batch, RECORD, vin)?;
        counts.timeline = self.remove_prefix(&mut batch, TIMELINE, vin)?;
        for p in [VEHICLE, DRIVER, REGISTRATION, CONTACTS] {
            batch.remove(&vin_key(p, vin));
        }
        // Downlinks to it not yet handed to MQTT (an envelope names its VIN after the
        // version byte).
        for (id, envelope) in self.keys.pending_downlinks()? {
            if envelope.get(1..18) == Some(vin.as_bytes()) {
                batch.remove(&keys::id_key(keys::DOWNLINK, id));
            }
        }
        let number = self.keys.next_id()?;
        let downlink = self.keys.next_id()?;
        let erasure = Erasure {
            vin: *vin,
            number,
            erased_at: now,
            reason: reason.to_owned(),
            downlink,
            partners: partners.into_iter().collect(),
            erased: counts,
            confirmed: None,
            late_dropped: 0,
        };
        self.put_erasure(&mut batch, &erasure)?;
        let mut applied = nothing();
        for p in &erasure.partners {
            if self.outbox.enqueue(&mut batch, &erasure.webhook(p))? == Enqueue::Added {
                applied.effects.webhooks += 1;
            }
        }
        let envelope = erasure
            .downlink_envelope()
            .map_err(|e| StoreError::corrupt("vehicle wipe downlink", e))?;
        self.keys.put_downlink(&mut batch, downlink, &envelope);
        applied.effects.downlinks.push((downlink, *vin, envelope));
        self.apply(batch)?;
        mem.layering.remove(vin);
        mem.in_cell.remove(vin);
        drop(mem);
        self.flush()?;
        Ok(Some((erasure, true, applied)))
    }
}
