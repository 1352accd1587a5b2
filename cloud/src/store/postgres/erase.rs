//! The PostgreSQL backend's erasure (docs/data-rights.md, "Erase"): one transaction over the
//! vehicle's locked row deletes its records, timeline, alerts, undelivered webhooks, pending
//! downlinks and the row itself, and writes the tombstone (`erasures`), the `vehicle.erased`
//! webhooks and the wipe downlink; and the ingest's sifting of erased vehicles' envelopes.
//!
//! Owns which rows an erasure removes. Does not own the tombstone's shape or the late-record
//! rule ([`crate::store::erasure`]).

use std::collections::{BTreeMap, BTreeSet};

use postgres::Transaction;
use rapport_shared::{Timestamp, Uplink, Vin};

use super::PgStore;
use super::vehicles::{self, from_json, ms, record_range, to_json};
use crate::fleet::alerts::Alert;
use crate::fleet::core::FleetError;
use crate::store::erasure::{ErasedCounts, Erasure, alert_partners};
use crate::store::{Applied, StoreError};

/// The tombstones of `vins`, locked (`FOR UPDATE`): the caller holds the vehicles' rows too.
///
/// # Errors
/// The store or decoding.
pub(super) fn erasures_of(
    tx: &mut Transaction<'_>,
    vins: &[String],
) -> Result<BTreeMap<Vin, Erasure>, StoreError> {
    let mut out = BTreeMap::new();
    for row in tx.query(
        "SELECT body FROM erasures WHERE vin = ANY($1) ORDER BY vin FOR UPDATE",
        &[&vins],
    )? {
        let e: Erasure = from_json(|| "erasure".to_owned(), row.get(0))?;
        out.insert(e.vin, e);
    }
    Ok(out)
}

/// Writes a tombstone.
///
/// # Errors
/// The store.
pub(super) fn put_erasure(tx: &mut Transaction<'_>, e: &Erasure) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO erasures (vin, body) VALUES ($1, $2) \
         ON CONFLICT (vin) DO UPDATE SET body = EXCLUDED.body",
        &[&e.vin.to_string(), &to_json("erasure", e)?],
    )?;
    Ok(())
}

/// Sifts the group's envelopes of erased vehicles (in the ingest's transaction, after the
/// vehicles' rows are locked): the envelopes to apply, the tombstones written back, and how
/// many records were dropped.
///
/// # Errors
/// The store.
pub(super) fn sift_group(
    tx: &mut Transaction<'_>,
    group: &[Uplink],
    now: Timestamp,
) -> Result<(Vec<Uplink>, bool, u64), StoreError> {
    let vins: Vec<String> = group.iter().map(|u| u.vin.to_string()).collect();
    let mut tombstones = erasures_of(tx, &vins)?;
    if tombstones.is_empty() {
        return Ok((group.to_vec(), false, 0));
    }
    let mut dropped = 0;
    let mut changed = BTreeSet::new();
    let mut out = Vec::with_capacity(group.len());
    for u in group {
        let mut u = u.clone();
        if let Some(e) = tombstones.get_mut(&u.vin) {
            let s = e.sift(&mut u, now);
            dropped += s.dropped;
            if s.changed {
                changed.insert(u.vin);
            }
        }
        out.push(u);
    }
    for vin in &changed {
        if let Some(e) = tombstones.get(vin) {
            put_erasure(tx, e)?;
        }
    }
    Ok((out, !changed.is_empty(), dropped))
}

impl PgStore {
    /// [`crate::store::Backend::erasure`] on PostgreSQL.
    pub(super) fn erasure_of(&self, vin: &Vin) -> Result<Option<Erasure>, StoreError> {
        let mut c = self.conn()?;
        c.query_opt(
            "SELECT body FROM erasures WHERE vin = $1",
            &[&vin.to_string()],
        )?
        .map(|row| from_json(|| format!("erasure {vin}"), row.get(0)))
        .transpose()
    }

    /// [`crate::store::Backend::erase`] on PostgreSQL.
    pub(super) fn erase_vehicle(
        &self,
        vin: &Vin,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<(Erasure, bool, Applied)>, FleetError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        let text = vin.to_string();
        // The vehicle's row is the lock every change of it takes (the ingest's too); the
        // tombstone's row is taken next, in the same order as the ingest.
        let rows = vehicles::lock(&mut tx, &[*vin], false)?;
        if let Some(done) = erasures_of(&mut tx, std::slice::from_ref(&text))?.remove(vin) {
            return Ok(Some((done, false, Applied::default())));
        }
        let alerts: Vec<Alert> = tx
            .query(
                "SELECT body FROM alerts WHERE vin = $1 ORDER BY id",
                &[&text],
            )
            .map_err(StoreError::from)?
            .into_iter()
            .map(|r| from_json(|| format!("alert of {vin}"), r.get(0)))
            .collect::<Result<_, _>>()?;
        let Some(row) = rows.get(vin) else {
            if alerts.is_empty() {
                return Ok(None);
            }
            return Err(StoreError::corrupt(format!("alerts of {vin}"), "no vehicle row").into());
        };
        let mut counts = ErasedCounts::default();
        let mut partners = BTreeSet::new();
        let mut ids = Vec::new();
        let mut who = BTreeMap::new();
        for a in &alerts {
            for (msg_id, partner) in alert_partners(a) {
                who.insert(msg_id.clone(), partner);
                ids.push(msg_id);
            }
        }
        for r in tx
            .query(
                "SELECT id, status FROM webhooks WHERE id = ANY($1)",
                &[&ids],
            )
            .map_err(StoreError::from)?
        {
            let id: String = r.get(0);
            let status: i16 = r.get(1);
            if let Some(p) = who.get(&id) {
                partners.insert(p.clone());
            }
            if status != 1 {
                counts.webhooks += 1;
            }
        }
        // Pending messages and dead letters carry the alert's body; a delivered marker
        // names neither vehicle nor driver and stays.
        tx.execute(
            "DELETE FROM webhooks WHERE id = ANY($1) AND status <> 1",
            &[&ids],
        )
        .map_err(StoreError::from)?;
        counts.alerts = tx
            .execute("DELETE FROM alerts WHERE vin = $1", &[&text])
            .map_err(StoreError::from)?;
        let (from, to) = record_range(row.id);
        counts.records = tx
            .execute(
                "DELETE FROM records WHERE key >= $1 AND key < $2",
                &[&from, &to],
            )
            .map_err(StoreError::from)?;
        counts.timeline = tx
            .execute("DELETE FROM timeline WHERE vehicle = $1", &[&row.id])
            .map_err(StoreError::from)?;
        tx.execute("DELETE FROM downlinks WHERE vin = $1", &[&text])
            .map_err(StoreError::from)?;
        tx.execute("DELETE FROM vehicles WHERE id = $1", &[&row.id])
            .map_err(StoreError::from)?;
        let next = |tx: &mut Transaction<'_>| -> Result<u64, StoreError> {
            let v: i64 = tx.query_one("SELECT nextval('downlink_ids')", &[])?.get(0);
            Ok(u64::try_from(v).unwrap_or(0))
        };
        let number = next(&mut tx)?;
        let downlink = next(&mut tx)?;
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
        put_erasure(&mut tx, &erasure)?;
        let mut applied = Applied::default();
        for p in &erasure.partners {
            if vehicles::enqueue(&mut tx, &erasure.webhook(p))? {
                applied.effects.webhooks += 1;
            }
        }
        let envelope = erasure
            .downlink_envelope()
            .map_err(|e| StoreError::corrupt("vehicle wipe downlink", e))?;
        let until = ms(now).saturating_add(super::lease_ms(crate::store::DOWNLINK_LEASE));
        tx.execute(
            "INSERT INTO downlinks (id, vin, envelope, claimed_by, lease_until) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &i64::try_from(downlink).unwrap_or(i64::MAX),
                &text,
                &envelope,
                &self.holder,
                &until,
            ],
        )
        .map_err(StoreError::from)?;
        applied.effects.downlinks.push((downlink, *vin, envelope));
        tx.commit().map_err(StoreError::from)?;
        Ok(Some((erasure, true, applied)))
    }

    /// [`crate::store::Backend::contacts`] on PostgreSQL.
    pub(super) fn contacts_of(
        &self,
        vin: &Vin,
    ) -> Result<Option<crate::fleet::strategy::ContactHistory>, StoreError> {
        let mut c = self.conn()?;
        let Some(row) = c.query_opt(
            "SELECT contacts FROM vehicles WHERE vin = $1",
            &[&vin.to_string()],
        )?
        else {
            return Ok(None);
        };
        row.get::<_, Option<serde_json::Value>>(0)
            .map(|j| from_json(|| format!("contact history {vin}"), j))
            .transpose()
    }
}
