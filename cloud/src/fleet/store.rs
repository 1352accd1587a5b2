//! The fleet's keys in the cloud's sled tree, next to the ingest's (`V`, `R`, `M`) and the
//! webhook outbox's (`W`, `w`, `X`, `Y`): typed reads, and writes into the caller's
//! [`sled::Batch`] so that a record's fleet effects commit with the record itself (one batch:
//! exactly once for them too).
//!
//! # Keys (layout in [`crate::keys`])
//! - `F` vin(17) → [`Driver`] (version byte, postcard);
//! - `G` vin(17) → [`Registration`] (JSON);
//! - `H` vin(17) at(u64 BE) n(u64 BE; older stores u32) → [`TimelineEntry`] (JSON): the fleet's timeline;
//! - `A` id(u64 BE) → [`Alert`](super::alerts::Alert) (JSON); `a` vin(17) id(u64 BE) → ∅:
//!   a vehicle's alerts;
//! - `K` vin(17) → the driver's contact history (JSON);
//! - `Q` id(u64 BE) → a downlink to publish (the wire envelope): written with the decision,
//!   removed once handed to MQTT, published again at start if still there (the car applies
//!   an id once);
//! - `P` partner id → a partner added through the API (JSON);
//! - `N` name → a counter (u64 BE): `Nalert` the last alert id.
//!
//! Owns the layout and the encodings. Does not own what the values mean.

use rapport_shared::{Timestamp, Vin};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::driver::Driver;
use super::model::{Layers, Registration};
use crate::keys::{
    self, ALERT, ALERT_BY_VIN, CONTACTS, COUNTER, DOWNLINK, DRIVER, PARTNER, REGISTRATION,
    TIMELINE, VIN_KEY_LEN, id_key, text_key, vin_key as key,
};
use crate::store::error::StoreError;

/// A sled batch (the sled store's unit of atomic writes).
type Batch = sled::Batch;

/// One entry of a vehicle's fleet timeline (the records themselves come from the record log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum TimelineEntry {
    /// The driver moved between layers.
    Layer {
        /// Before (`None`: first placement).
        from: Option<Layers>,
        /// After.
        to: Layers,
        /// Why.
        why: String,
    },
    /// A strategy acted.
    Strategy {
        /// The rule.
        rule: String,
        /// What it did (`campaign onboarding-2026-11-23`, `partner task: call`).
        action: String,
    },
    /// A strategy would have acted but was held back.
    Suppressed {
        /// The rule.
        rule: String,
        /// Why (`no engagement consent`, `cadence: next allowed ...`).
        reason: String,
    },
    /// An alert was opened, changed state, escalated or delivered.
    Alert {
        /// Its id.
        id: u64,
        /// What happened (`opened`, `delivered`, `acknowledged`, `resolved`, `escalated`,
        /// `dead_letter`).
        event: String,
        /// Details.
        detail: String,
    },
    /// The registry entry was created or changed.
    Registered {
        /// What changed.
        detail: String,
    },
    /// The car's clock cannot be believed (once per episode): its time on the record that
    /// showed it, and the cloud's then. The car's times stay in its records; every time the
    /// fleet uses is capped at the cloud's.
    ClockUntrusted {
        /// The car's time, unix ms.
        car_at: Timestamp,
        /// The cloud's time, unix ms.
        cloud_at: Timestamp,
    },
}

/// A stamped timeline entry, as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stamped {
    /// When.
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub entry: TimelineEntry,
}

fn corrupt(what: String, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.to_string(),
    }
}

fn json<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| corrupt(format!("{what} (encoding)"), e))
}

fn from_json<T: DeserializeOwned>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what(), e))
}

/// Typed access to the fleet's keys; cheap to clone.
#[derive(Clone)]
pub struct FleetStore {
    tree: sled::Tree,
    db: sled::Db,
}

impl FleetStore {
    /// Over the sled store's tree (and its database for ids).
    pub fn new(tree: sled::Tree, db: sled::Db) -> Self {
        Self { tree, db }
    }

    /// A fresh id (downlinks): unique across restarts and crashes, never 0.
    ///
    /// # Errors
    /// sled.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?.saturating_add(1))
    }

    /// A vehicle's driver record.
    ///
    /// # Errors
    /// sled, or a value that does not decode.
    pub fn driver(&self, vin: &Vin) -> Result<Option<Driver>, StoreError> {
        self.tree
            .get(key(DRIVER, vin))?
            .map(|b| Driver::from_bytes(&b).map_err(|e| corrupt(format!("driver {vin}"), e)))
            .transpose()
    }

    /// Writes a driver record into `batch`.
    ///
    /// # Errors
    /// Encoding.
    pub fn put_driver(&self, batch: &mut Batch, vin: &Vin, d: &Driver) -> Result<(), StoreError> {
        let bytes = d
            .to_bytes()
            .map_err(|e| corrupt(format!("driver {vin} (encoding)"), e))?;
        batch.insert(&key(DRIVER, vin), bytes);
        Ok(())
    }

    /// Every driver record, in VIN order (start-up); unreadable ones are returned as errors
    /// in place so the caller can count and skip them.
    pub fn drivers(&self) -> impl Iterator<Item = Result<(Vin, Driver), StoreError>> + '_ {
        self.tree.scan_prefix([DRIVER]).map(|item| {
            let (k, v) = item?;
            let vin = vin_of(&k)?;
            let d = Driver::from_bytes(&v).map_err(|e| corrupt(format!("driver {vin}"), e))?;
            Ok((vin, d))
        })
    }

    /// A vehicle's registration.
    ///
    /// # Errors
    /// sled or decoding.
    pub fn registration(&self, vin: &Vin) -> Result<Option<Registration>, StoreError> {
        self.tree
            .get(key(REGISTRATION, vin))?
            .map(|b| from_json(|| format!("registration {vin}"), &b))
            .transpose()
    }

    /// Writes a registration into `batch`.
    ///
    /// # Errors
    /// Encoding.
    pub fn put_registration(&self, batch: &mut Batch, r: &Registration) -> Result<(), StoreError> {
        batch.insert(&key(REGISTRATION, &r.vin), json("registration", r)?);
        Ok(())
    }

    /// Registered VINs after `after` (exclusive), in order, at most `limit`.
    pub fn registered_after(
        &self,
        after: Option<&Vin>,
        limit: usize,
    ) -> Result<Vec<Registration>, StoreError> {
        vins_after(&self.tree, REGISTRATION, after, limit, |vin, v| {
            from_json(|| format!("registration {vin}"), v)
        })
    }

    /// Known VINs (seen by ingest or registered) after `after`, in order, at most `limit`:
    /// the vehicles list's paging.
    pub fn vins_after(&self, after: Option<&Vin>, limit: usize) -> Result<Vec<Vin>, StoreError> {
        vins_after(&self.tree, DRIVER, after, limit, |vin, _| Ok(*vin))
    }

    /// Appends a timeline entry into `batch`. Entries with the same time are told apart by a
    /// number unique in this database (sled's monotonic id, kept across restarts): a count per
    /// batch, as before, let two batches in the same millisecond overwrite each other.
    ///
    /// # Errors
    /// sled (the id) or encoding.
    pub fn put_timeline(
        &self,
        batch: &mut Batch,
        vin: &Vin,
        at: Timestamp,
        entry: &TimelineEntry,
    ) -> Result<(), StoreError> {
        let n = self.db.generate_id()?;
        batch.insert(keys::timeline(vin, at, n), json("timeline", entry)?);
        Ok(())
    }

    /// A vehicle's timeline entries, oldest first, at most `limit` (the newest ones).
    ///
    /// # Errors
    /// sled or decoding.
    pub fn timeline(&self, vin: &Vin, limit: usize) -> Result<Vec<Stamped>, StoreError> {
        let prefix = key(TIMELINE, vin);
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix).rev().take(limit) {
            let (k, v) = item?;
            let at = keys::u64_at(&k, VIN_KEY_LEN)
                .ok_or_else(|| corrupt(format!("timeline key of {vin}"), "short key"))?;
            let entry = from_json(|| format!("timeline entry of {vin}"), &v)?;
            out.push(Stamped {
                at: Timestamp::from_millis(at),
                entry,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// A vehicle's timeline entries, newest first, each with its key after the VIN (time and
    /// number: its position, for paging), from below key `below` (exclusive; `None`: from the
    /// newest). Lazy: the caller stops reading when it has enough.
    pub fn timeline_newest_first(
        &self,
        vin: &Vin,
        below: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Stamped), StoreError>> + '_ {
        let prefix = key(TIMELINE, vin);
        let range = match below {
            Some(b) => {
                let mut end = prefix.to_vec();
                end.extend_from_slice(b);
                self.tree.range(prefix.to_vec()..end)
            }
            None => self.tree.scan_prefix(prefix),
        };
        let vin = *vin;
        range.rev().map(move |item| {
            let (k, v) = item?;
            let at = keys::u64_at(&k, VIN_KEY_LEN)
                .ok_or_else(|| corrupt(format!("timeline key of {vin}"), "short key"))?;
            let entry = from_json(|| format!("timeline entry of {vin}"), &v)?;
            let position = k.get(VIN_KEY_LEN..).unwrap_or_default().to_vec();
            Ok((
                position,
                Stamped {
                    at: Timestamp::from_millis(at),
                    entry,
                },
            ))
        })
    }

    /// An alert.
    ///
    /// # Errors
    /// sled or decoding.
    pub fn alert<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        self.tree
            .get(id_key(ALERT, id))?
            .map(|b| from_json(|| format!("alert {id}"), &b))
            .transpose()
    }

    /// Writes an alert (and its vehicle index entry) into `batch`.
    ///
    /// # Errors
    /// Encoding.
    pub fn put_alert<T: Serialize>(
        &self,
        batch: &mut Batch,
        id: u64,
        vin: &Vin,
        alert: &T,
    ) -> Result<(), StoreError> {
        batch.insert(&id_key(ALERT, id), json("alert", alert)?);
        batch.insert(&keys::alert_of_vehicle(vin, id), &[] as &[u8]);
        Ok(())
    }

    /// Every alert, in id order (start-up, listing).
    pub fn alerts<T: DeserializeOwned>(&self) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        self.tree.scan_prefix([ALERT]).map(|item| {
            let (k, v) = item?;
            from_json(|| format!("alert key {k:?}"), &v)
        })
    }

    /// A vehicle's alert ids.
    ///
    /// # Errors
    /// sled.
    pub fn alert_ids_of(&self, vin: &Vin) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(key(ALERT_BY_VIN, vin)).keys() {
            let k = item?;
            if let Some(id) = keys::u64_at(&k, VIN_KEY_LEN) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The driver's contact history.
    ///
    /// # Errors
    /// sled or decoding.
    pub fn contacts<T: DeserializeOwned + Default>(&self, vin: &Vin) -> Result<T, StoreError> {
        Ok(self
            .tree
            .get(key(CONTACTS, vin))?
            .map(|b| from_json(|| format!("contact history {vin}"), &b))
            .transpose()?
            .unwrap_or_default())
    }

    /// Writes the contact history into `batch`.
    ///
    /// # Errors
    /// Encoding.
    pub fn put_contacts<T: Serialize>(
        &self,
        batch: &mut Batch,
        vin: &Vin,
        h: &T,
    ) -> Result<(), StoreError> {
        batch.insert(&key(CONTACTS, vin), json("contact history", h)?);
        Ok(())
    }

    /// Queues a downlink envelope (encoded) under its id into `batch`.
    pub fn put_downlink(&self, batch: &mut Batch, id: u64, envelope: &[u8]) {
        batch.insert(&id_key(DOWNLINK, id), envelope);
    }

    /// Drops a queued downlink (superseded) in `batch`.
    pub fn drop_downlink(&self, batch: &mut Batch, id: u64) {
        batch.remove(&id_key(DOWNLINK, id));
    }

    /// Downlinks written but not yet handed to MQTT: (id, envelope).
    ///
    /// # Errors
    /// sled.
    pub fn pending_downlinks(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([DOWNLINK]) {
            let (k, v) = item?;
            if let Some(id) = keys::u64_at(&k, 1) {
                out.push((id, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Forgets a downlink handed to MQTT.
    ///
    /// # Errors
    /// sled.
    pub fn remove_downlink(&self, id: u64) -> Result<(), StoreError> {
        self.tree.remove(id_key(DOWNLINK, id))?;
        Ok(())
    }

    /// Partners added through the API (JSON values, the caller decodes).
    ///
    /// # Errors
    /// sled.
    pub fn partners<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([PARTNER]) {
            let (k, v) = item?;
            out.push(from_json(
                || format!("partner {:?}", String::from_utf8_lossy(&k[1..])),
                &v,
            )?);
        }
        Ok(out)
    }

    /// Writes or replaces an API partner.
    ///
    /// # Errors
    /// sled or encoding.
    pub fn put_partner<T: Serialize>(&self, id: &str, p: &T) -> Result<(), StoreError> {
        self.tree
            .insert(text_key(PARTNER, id), json("partner", p)?)?;
        Ok(())
    }

    /// Removes an API partner; whether it was there.
    ///
    /// # Errors
    /// sled.
    pub fn remove_partner(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.tree.remove(text_key(PARTNER, id))?.is_some())
    }

    /// A counter's value (0 if never set).
    ///
    /// # Errors
    /// sled.
    pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .get(text_key(COUNTER, name))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Sets a counter into `batch`.
    pub fn put_counter(&self, batch: &mut Batch, name: &str, value: u64) {
        batch.insert(text_key(COUNTER, name), &value.to_be_bytes());
    }
}

fn vin_of(k: &[u8]) -> Result<Vin, StoreError> {
    keys::vin_of(k).map_err(|e| corrupt(format!("key {k:?}"), e))
}

fn vins_after<T>(
    tree: &sled::Tree,
    prefix: u8,
    after: Option<&Vin>,
    limit: usize,
    mut f: impl FnMut(&Vin, &[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let start: Vec<u8> = match after {
        Some(v) => keys::after(&key(prefix, v)),
        None => vec![prefix],
    };
    let mut out = Vec::new();
    for item in tree.range(start..).take(limit) {
        let (k, v) = item?;
        if k.first() != Some(&prefix) {
            break;
        }
        let vin = vin_of(&k)?;
        out.push(f(&vin, &v)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    fn entry(detail: &str) -> TimelineEntry {
        TimelineEntry::Registered {
            detail: detail.to_owned(),
        }
    }

    /// Two batches stamped with the same millisecond keep both entries (the per-batch count
    /// used before let the second overwrite the first), and survive a reopen in order.
    #[test]
    fn timeline_entries_in_one_millisecond_from_two_batches_both_stay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let vin: Vin = "1HGCM82633A004352".parse().expect("valid VIN");
        let at = Timestamp::from_millis(1_772_431_200_000);
        {
            let store = crate::store::sled::SledStore::open(dir.path()).expect("open");
            let fleet = FleetStore::new(store.tree().clone(), store.db().clone());
            for detail in ["first", "second"] {
                let mut batch = Batch::default();
                fleet
                    .put_timeline(&mut batch, &vin, at, &entry(detail))
                    .expect("put");
                store.tree().apply_batch(batch).expect("apply");
            }
            store.db().flush().expect("flush");
        }
        let store = crate::store::sled::SledStore::open(dir.path()).expect("reopen");
        let fleet = FleetStore::new(store.tree().clone(), store.db().clone());
        let mut batch = Batch::default();
        fleet
            .put_timeline(&mut batch, &vin, at, &entry("third"))
            .expect("put");
        store.tree().apply_batch(batch).expect("apply");
        let got: Vec<_> = fleet
            .timeline(&vin, 10)
            .expect("timeline")
            .into_iter()
            .map(|s| (s.at, s.entry))
            .collect();
        assert_eq!(
            got,
            vec![
                (at, entry("first")),
                (at, entry("second")),
                (at, entry("third"))
            ]
        );
    }
}
