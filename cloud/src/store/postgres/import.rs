//! A sled store's keys copied into the PostgreSQL tables in one transaction (all or nothing),
//! then every driver placed at the import's instant (a change since the layers last recorded
//! is recorded and acted on, as the sled store's start does) with its next changes
//! scheduled.
//!
//! Values keep their encodings (the tables hold the sled store's bytes and JSON). The record
//! log's receive day is unknown in sled: imported records go to the import day's partition.
//! Ids continue where sled left off: `alert_ids` after its alert counter, `downlink_ids`
//! after every id sled's generator ever gave (downlinks and timeline numbers share it).
//!
//! Owns the copy. Does not own the key layouts ([`crate::keys`]) or any decision.

use std::collections::BTreeMap;

use postgres::Transaction;
use rapport_shared::{Timestamp, Vin};
use serde_json::Value;

use super::PgStore;
use super::fleet::PgIds;
use super::vehicles::{self, Writes, ms};
use crate::fleet::alerts::{Alert, AlertState};
use crate::fleet::core::{Rules, Step};
use crate::fleet::layers::classify;
use crate::fleet::model::{DEFAULT_CATEGORY, Registration};
use crate::keys;
use crate::store::import::Summary;
use crate::store::sled::SledStore;
use crate::store::{Applied, StoreError};
use crate::webhook::outbox::{DeadLetter, Delivered, Message, decode};

/// Rows per insert statement.
const CHUNK: usize = 5_000;

#[derive(Default)]
struct VehicleRow {
    state: Option<Vec<u8>>,
    driver: Option<Vec<u8>>,
    registration: Option<Value>,
    contacts: Option<Value>,
}

fn json(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<Value, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(what(), e))
}

fn vin_of(k: &[u8]) -> Result<Vin, StoreError> {
    keys::vin_of(k).map_err(|e| StoreError::corrupt(format!("sled key {k:?}"), e))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Copies `sled` into this (empty) store and places every driver at `now` under `rules`.
    ///
    /// # Errors
    /// [`StoreError::Import`] for a store that is not empty; the stores.
    pub fn import_sled(
        &self,
        sled: &SledStore,
        rules: &Rules,
        now: Timestamp,
    ) -> Result<Summary, StoreError> {
        let mut c = self.conn()?;
        let held: i64 = c
            .query_one(
                "SELECT (SELECT count(*) FROM vehicles) + (SELECT count(*) FROM alerts) \
                 + (SELECT count(*) FROM webhooks) + (SELECT count(*) FROM partners) \
                 + (SELECT count(*) FROM downlinks) + (SELECT count(*) FROM timeline)",
                &[],
            )?
            .get(0);
        if held > 0 {
            return Err(StoreError::Import(format!(
                "the PostgreSQL store at {} is not empty ({held} rows): import into a new \
                 database",
                self.url().target()
            )));
        }
        let day = i64::try_from(now.as_millis() / 86_400_000).unwrap_or(0);
        self.ensure_partition(day)?;
        let tree = sled.tree();
        let mut summary = Summary::default();
        let mut tx = c.transaction()?;

        // Vehicles: every VIN of the ingest's state, a driver, a registration, contacts.
        let mut rows: BTreeMap<Vin, VehicleRow> = BTreeMap::new();
        for (prefix, what) in [
            (keys::VEHICLE, "vehicle"),
            (keys::DRIVER, "driver"),
            (keys::REGISTRATION, "registration"),
            (keys::CONTACTS, "contacts"),
        ] {
            for item in tree.scan_prefix([prefix]) {
                let (k, v) = item?;
                let vin = vin_of(&k)?;
                let row = rows.entry(vin).or_default();
                match prefix {
                    keys::VEHICLE => row.state = Some(v.to_vec()),
                    keys::DRIVER => row.driver = Some(v.to_vec()),
                    keys::REGISTRATION => {
                        row.registration = Some(json(|| format!("{what} {vin}"), &v)?);
                    }
                    _ => row.contacts = Some(json(|| format!("{what} {vin}"), &v)?),
                }
            }
        }
        summary.vehicles = rows.len() as u64;
        let list: Vec<(Vin, VehicleRow)> = rows.into_iter().collect();
        for chunk in list.chunks(CHUNK) {
            let vins: Vec<String> = chunk.iter().map(|(v, _)| v.to_string()).collect();
            let states: Vec<Option<Vec<u8>>> = chunk.iter().map(|(_, r)| r.state.clone()).collect();
            let drivers: Vec<Option<Vec<u8>>> =
                chunk.iter().map(|(_, r)| r.driver.clone()).collect();
            let regs: Vec<Option<Value>> =
                chunk.iter().map(|(_, r)| r.registration.clone()).collect();
            let contacts: Vec<Option<Value>> =
                chunk.iter().map(|(_, r)| r.contacts.clone()).collect();
            tx.execute(
                "INSERT INTO vehicles (vin, state, driver, registration, contacts) \
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[], \
                 $5::jsonb[])",
                &[&vins, &states, &drivers, &regs, &contacts],
            )?;
        }
        let ids: BTreeMap<String, i32> = tx
            .query("SELECT vin, id FROM vehicles", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let id_of = |vin: &Vin| {
            ids.get(&vin.to_string())
                .copied()
                .ok_or_else(|| StoreError::corrupt(format!("vehicle {vin}"), "no row"))
        };

        // The record logs.
        let mut batch: (Vec<i64>, Vec<Vec<u8>>) = Default::default();
        let flush_records = |tx: &mut Transaction<'_>, b: &mut (Vec<i64>, Vec<Vec<u8>>)| {
            if !b.0.is_empty() {
                vehicles::insert_records(tx, day, &b.0, &b.1)?;
            }
            *b = Default::default();
            Ok::<(), StoreError>(())
        };
        for item in tree.scan_prefix([keys::RECORD]) {
            let (k, v) = item?;
            let vin = vin_of(&k)?;
            let seq = keys::u64_at(&k, keys::VIN_KEY_LEN)
                .ok_or_else(|| StoreError::corrupt(format!("record key {k:?}"), "short key"))?;
            batch.0.push(vehicles::record_key(id_of(&vin)?, seq)?);
            // Without the sled log's receive time: the row's `received` day keeps it.
            let body = crate::store::sled::logged::split(&v).map_or(&v[..], |(_, b, _)| b);
            batch.1.push(body.to_vec());
            summary.records += 1;
            if batch.0.len() == CHUNK {
                flush_records(&mut tx, &mut batch)?;
            }
        }
        flush_records(&mut tx, &mut batch)?;

        // Timelines, with their numbers (the order within one millisecond).
        let mut t: (Vec<i32>, Vec<i64>, Vec<i64>, Vec<Value>) = Default::default();
        let mut entries = tree.scan_prefix([keys::TIMELINE]).peekable();
        while let Some(item) = entries.next() {
            let (k, v) = item?;
            let vin = vin_of(&k)?;
            let at = keys::u64_at(&k, keys::VIN_KEY_LEN)
                .ok_or_else(|| StoreError::corrupt(format!("timeline key {k:?}"), "short key"))?;
            // Older stores numbered entries with a u32.
            let n = keys::u64_at(&k, keys::VIN_KEY_LEN + 8).unwrap_or_else(|| {
                k.get(keys::VIN_KEY_LEN + 8..)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, |b| u64::from(u32::from_be_bytes(b)))
            });
            t.0.push(id_of(&vin)?);
            t.1.push(i64_of(at));
            t.2.push(i64_of(n));
            t.3.push(json(|| format!("timeline entry of {vin}"), &v)?);
            summary.timeline += 1;
            if t.0.len() == CHUNK || entries.peek().is_none() {
                tx.execute(
                    "INSERT INTO timeline (vehicle, at, n, entry) OVERRIDING SYSTEM VALUE \
                     SELECT * FROM unnest($1::int4[], $2::int8[], $3::int8[], $4::jsonb[])",
                    &[&t.0, &t.1, &t.2, &t.3],
                )?;
                t = Default::default();
            }
        }
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('timeline', 'n'), \
             GREATEST((SELECT max(n) FROM timeline), 1))",
            &[],
        )?;

        // The outbox: pending, delivered markers, dead letters (kept in their encodings).
        for item in tree.scan_prefix([keys::PENDING]) {
            let (k, v) = item?;
            let msg: Message = decode(&k, &v).map_err(|e| StoreError::corrupt("webhook", e))?;
            tx.execute(
                "INSERT INTO webhooks (id, status, next_at, message) VALUES ($1, 0, $2, $3)",
                &[&msg.id, &ms(msg.next_at), &v.to_vec()],
            )?;
            summary.webhooks += 1;
        }
        for item in tree.scan_prefix([keys::DELIVERED]) {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned();
            let mark: Delivered = decode(&k, &v).map_err(|e| StoreError::corrupt("webhook", e))?;
            tx.execute(
                "INSERT INTO webhooks (id, status, done_at, marker) VALUES ($1, 1, $2, $3)",
                &[&id, &ms(mark.at), &v.to_vec()],
            )?;
            summary.webhooks += 1;
        }
        for item in tree.scan_prefix([keys::DEAD]) {
            let (k, v) = item?;
            let dead: DeadLetter = decode(&k, &v).map_err(|e| StoreError::corrupt("webhook", e))?;
            tx.execute(
                "INSERT INTO webhooks (id, status, done_at, dead) VALUES ($1, 2, $2, $3)",
                &[&dead.message.id, &ms(dead.dead_at), &v.to_vec()],
            )?;
            summary.webhooks += 1;
        }

        // Alerts, with their time-driven work as the sled store's start rebuilds it.
        for a in sled.keys().alerts::<Alert>() {
            let alert = a?;
            let queued = tx
                .query_opt(
                    "SELECT 1 FROM webhooks WHERE id = $1",
                    &[&alert.webhook().id],
                )?
                .is_some();
            let resolved = alert.state == AlertState::Resolved;
            let send_due = (!resolved && !queued).then(|| ms(alert.send_at));
            let sla_due = alert.promise_due().map(ms);
            tx.execute(
                "INSERT INTO alerts (id, vin, state, body, send_due, sla_due) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &i64_of(alert.id),
                    &alert.vin.to_string(),
                    &vehicles::alert_state(&alert),
                    &vehicles::to_json("alert", &alert)?,
                    &send_due,
                    &sla_due,
                ],
            )?;
            summary.alerts += 1;
        }

        // Downlinks queued, partners added through the API.
        for (id, envelope) in sled.keys().pending_downlinks()? {
            let vin = rapport_shared::Downlink::decode(&envelope)
                .map(|d| d.vin.to_string())
                .map_err(|e| StoreError::corrupt(format!("downlink {id}"), e))?;
            tx.execute(
                "INSERT INTO downlinks (id, vin, envelope) VALUES ($1, $2, $3)",
                &[&i64_of(id), &vin, &envelope],
            )?;
            summary.downlinks += 1;
        }
        for item in tree.scan_prefix([keys::PARTNER]) {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned();
            tx.execute(
                "INSERT INTO partners (id, body) VALUES ($1, $2)",
                &[&id, &json(|| format!("partner {id:?}"), &v)?],
            )?;
            summary.partners += 1;
        }

        // Ids go on after sled's.
        let last_alert = sled.keys().counter(crate::store::sled::ALERT_COUNTER)?;
        if last_alert > 0 {
            tx.execute("SELECT setval('alert_ids', $1)", &[&i64_of(last_alert)])?;
        }
        let last_id = sled.next_downlink_id()?;
        tx.execute("SELECT setval('downlink_ids', $1)", &[&i64_of(last_id)])?;
        tx.commit()?;

        self.place_all(rules, now)?;
        Ok(summary)
    }

    /// Every driver placed at `now` and compared with the layers it last recorded (a change
    /// recorded and acted on), its next changes scheduled; then each vehicle's earliest alert
    /// work noted. Downlinks it decides are left unclaimed: the next sweep of any instance
    /// publishes them.
    pub(super) fn place_all(&self, rules: &Rules, now: Timestamp) -> Result<Applied, StoreError> {
        let mut c = self.conn()?;
        let vins: Vec<Vin> = c
            .query(
                "SELECT vin FROM vehicles WHERE driver IS NOT NULL ORDER BY vin",
                &[],
            )?
            .iter()
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect();
        let mut applied = Applied::default();
        let day = i64::try_from(now.as_millis() / 86_400_000).unwrap_or(0);
        for chunk in vins.chunks(500) {
            let mut tx = c.transaction()?;
            let mut rows = vehicles::lock(&mut tx, chunk, false)?;
            let mut writes = Writes::default();
            for row in rows.values_mut() {
                let v = &mut row.fleet;
                let Some(driver) = &v.driver else {
                    continue;
                };
                let category = v
                    .registration
                    .as_ref()
                    .map_or(DEFAULT_CATEGORY, |r: &Registration| r.category);
                let placed = classify(category, &driver.profile, now, &rules.layers);
                v.layers = Some(placed.layers);
                v.layer_due = placed.next_change;
                let mut ids = PgIds { tx: &mut tx };
                let mut step = Step::new(rules, &mut ids, now);
                step.replaced(v)
                    .map_err(|e| StoreError::corrupt("placement", e))?;
                let changes = step.take();
                drop(step);
                writes.changes(row, changes, &mut applied)?;
            }
            writes.write(&mut tx, &rows, day, &mut applied)?;
            tx.commit()?;
        }
        c.execute(
            "UPDATE vehicles v SET alert_due = (SELECT min(LEAST(a.send_due, a.sla_due)) \
             FROM alerts a WHERE a.vin = v.vin AND a.state <> 2)",
            &[],
        )?;
        Ok(applied)
    }
}
