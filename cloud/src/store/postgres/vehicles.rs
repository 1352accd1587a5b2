//! Vehicles in PostgreSQL: their rows locked and read into snapshots ([`lock`]), and what a
//! transaction's steps changed written back with set-based statements ([`Writes`]).
//!
//! Owns the columns' encodings (layers as the enums' indexes, times as unix ms, values in the
//! sled store's encodings). Does not own any decision.

use std::collections::BTreeMap;

use postgres::Transaction;
use rapport_shared::{Timestamp, Vin};
use serde_json::Value;

use crate::fleet::alerts::{Alert, AlertState};
use crate::fleet::core::{Changes, OpenAlert, Vehicle};
use crate::fleet::driver::Driver;
use crate::fleet::model::{
    Activity, CarMaturity, Category, Layers, Lifecycle, Registration, ServiceMaturity,
};
use crate::store::{Applied, StoreError};
use crate::vehicle::VehicleState;
use crate::webhook::outbox::{Message, encode};

/// A locked vehicle row.
pub(super) struct Row {
    /// The row id (the record log's key).
    pub id: i32,
    /// The ingest state as stored (decoded by the ingest, which may find it unreadable).
    pub state: Option<Vec<u8>>,
    /// The ingest state was changed.
    pub state_changed: bool,
    /// The fleet's snapshot.
    pub fleet: Vehicle,
    /// The row is to be written back.
    pub changed: bool,
}

impl Row {
    /// The ingest state, decoded.
    pub fn vehicle_state(&self) -> Result<Option<VehicleState>, StoreError> {
        self.state
            .as_deref()
            .map(|b| {
                VehicleState::from_bytes(b)
                    .map_err(|e| StoreError::corrupt(format!("vehicle {}", self.fleet.vin), e))
            })
            .transpose()
    }
}

/// Milliseconds as stored.
pub(super) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// Stored milliseconds as a time.
pub(super) fn at(v: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(v).unwrap_or(0))
}

fn index(i: usize) -> i16 {
    i16::try_from(i).unwrap_or(i16::MAX)
}

/// Layers as five smallints (`None`: not placed).
pub(super) fn layer_columns(l: Option<Layers>) -> [Option<i16>; 5] {
    match l {
        None => [None; 5],
        Some(l) => [
            Some(index(l.category.index())),
            Some(index(l.car.index())),
            Some(index(l.service.index())),
            Some(index(l.activity.index())),
            Some(index(l.lifecycle.index())),
        ],
    }
}

fn pick<T: Copy>(all: &[T], i: Option<i16>) -> Option<T> {
    all.get(usize::try_from(i?).ok()?).copied()
}

/// Five smallints back as layers (any missing or out of range: not placed).
pub(super) fn layers_of(c: [Option<i16>; 5]) -> Option<Layers> {
    Some(Layers {
        category: pick(Category::ALL, c[0])?,
        car: pick(CarMaturity::ALL, c[1])?,
        service: pick(ServiceMaturity::ALL, c[2])?,
        activity: pick(Activity::ALL, c[3])?,
        lifecycle: pick(Lifecycle::ALL, c[4])?,
    })
}

/// An alert's state as stored.
pub(super) fn alert_state(a: &Alert) -> i16 {
    match a.state {
        AlertState::Open => 0,
        AlertState::Acknowledged => 1,
        AlertState::Resolved => 2,
    }
}

/// Decodes a JSON column.
pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    what: impl FnOnce() -> String,
    v: Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::corrupt(what(), e))
}

/// Encodes a JSON column.
pub(super) fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::corrupt(format!("{what} (encoding)"), e))
}

const COLUMNS: &str = "id, vin, state, driver, registration, contacts, category, car, \
                       service, activity, lifecycle, layer_due, in_cell_due";

/// Locks the rows of `vins` (sorted and made unique here) `FOR UPDATE` in VIN order and reads
/// them with their open alerts; with `create`, rows are made first for VINs not known yet.
///
/// # Errors
/// The store, or a stored value that does not decode (the ingest state excepted: kept raw).
pub(super) fn lock(
    tx: &mut Transaction<'_>,
    vins: &[Vin],
    create: bool,
) -> Result<BTreeMap<Vin, Row>, StoreError> {
    let mut sorted: Vec<String> = vins.iter().map(ToString::to_string).collect();
    sorted.sort_unstable();
    sorted.dedup();
    if create {
        tx.execute(
            "INSERT INTO vehicles (vin) SELECT v FROM unnest($1::text[]) AS v ORDER BY v \
             ON CONFLICT (vin) DO NOTHING",
            &[&sorted],
        )?;
    }
    let rows = tx.query(
        &format!("SELECT {COLUMNS} FROM vehicles WHERE vin = ANY($1) ORDER BY vin FOR UPDATE"),
        &[&sorted],
    )?;
    let mut out = BTreeMap::new();
    for row in rows {
        let r = read_row(&row)?;
        out.insert(r.fleet.vin, r);
    }
    let alerts = tx.query(
        "SELECT body, send_due, sla_due FROM alerts WHERE vin = ANY($1) AND state <> 2",
        &[&sorted],
    )?;
    for a in alerts {
        let open = read_open(&a)?;
        if let Some(r) = out.get_mut(&open.alert.vin) {
            r.fleet.alerts.insert(open.alert.id, open);
        }
    }
    Ok(out)
}

/// Reads one `vehicles` row of [`COLUMNS`].
pub(super) fn read_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let vin_text: String = row.get(1);
    let vin: Vin = vin_text
        .parse()
        .map_err(|e| StoreError::corrupt(format!("vehicle row {vin_text:?}"), e))?;
    let mut v = Vehicle::new(vin);
    let driver: Option<Vec<u8>> = row.get(3);
    v.driver = driver
        .map(|b| {
            Driver::from_bytes(&b).map_err(|e| StoreError::corrupt(format!("driver {vin}"), e))
        })
        .transpose()?;
    let registration: Option<Value> = row.get(4);
    v.registration = registration
        .map(|j| from_json::<Registration>(|| format!("registration {vin}"), j))
        .transpose()?;
    let contacts: Option<Value> = row.get(5);
    if let Some(j) = contacts {
        v.contacts = from_json(|| format!("contact history {vin}"), j)?;
    }
    v.layers = layers_of([row.get(6), row.get(7), row.get(8), row.get(9), row.get(10)]);
    v.layer_due = row.get::<_, Option<i64>>(11).map(at);
    v.in_cell_due = row.get::<_, Option<i64>>(12).map(at);
    Ok(Row {
        id: row.get(0),
        state: row.get(2),
        state_changed: false,
        fleet: v,
        changed: false,
    })
}

/// Reads an `alerts` row of (body, send_due, sla_due).
pub(super) fn read_open(row: &postgres::Row) -> Result<OpenAlert, StoreError> {
    let body: Value = row.get(0);
    let alert: Alert = from_json(|| "alert".to_owned(), body)?;
    Ok(OpenAlert {
        alert,
        send_due: row.get::<_, Option<i64>>(1).map(at),
        sla_due: row.get::<_, Option<i64>>(2).map(at),
    })
}

/// What a transaction writes beyond the vehicle rows, gathered from its steps and written
/// with one statement per table.
#[derive(Default)]
pub(super) struct Writes {
    records: (Vec<i64>, Vec<Vec<u8>>),
    timeline: (Vec<i32>, Vec<i64>, Vec<Value>),
    alerts: BTreeMap<u64, OpenAlert>,
    webhooks: Vec<Message>,
    downlinks: Vec<(i64, String, Vec<u8>)>,
    /// Queued downlinks superseded (dropped if not yet handed to MQTT).
    superseded: Vec<i64>,
    /// Who the downlinks decided here are claimed by, and until when (ms).
    downlink_claim: Option<(String, i64)>,
}

impl Writes {
    /// Writes whose downlinks are claimed by `holder` until `until` (ms).
    pub fn claimed_by(holder: String, until: i64) -> Self {
        Self {
            downlink_claim: Some((holder, until)),
            ..Self::default()
        }
    }

    /// A record for the log.
    ///
    /// # Errors
    /// A seq or a vehicle id beyond the log key's range ([`record_key`]).
    pub fn record(&mut self, vehicle: i32, seq: u64, body: Vec<u8>) -> Result<(), StoreError> {
        self.records.0.push(record_key(vehicle, seq)?);
        self.records.1.push(body);
        Ok(())
    }

    /// A step's changes to `row` (its snapshot already changed in place).
    pub fn changes(
        &mut self,
        row: &mut Row,
        changes: Changes,
        applied: &mut Applied,
    ) -> Result<(), StoreError> {
        row.changed = true;
        let vin = row.fleet.vin;
        for (t, entry) in &changes.timeline {
            self.timeline.0.push(row.id);
            self.timeline.1.push(ms(*t));
            self.timeline.2.push(to_json("timeline entry", entry)?);
        }
        self.alerts.extend(changes.alerts);
        self.webhooks.extend(changes.webhooks);
        for (id, bytes) in changes.downlinks {
            self.downlinks.push((
                i64::try_from(id).unwrap_or(i64::MAX),
                vin.to_string(),
                bytes.clone(),
            ));
            applied.effects.downlinks.push((id, vin, bytes));
        }
        for id in &changes.superseded {
            let id = i64::try_from(*id).unwrap_or(i64::MAX);
            self.downlinks.retain(|(d, _, _)| *d != id);
            self.superseded.push(id);
        }
        applied
            .effects
            .downlinks
            .retain(|(id, _, _)| !changes.superseded.contains(id));
        applied.effects.layer_changes += usize::try_from(changes.stats.layer_changes).unwrap_or(0);
        applied.stats.add(&changes.stats);
        Ok(())
    }

    /// Writes the changed rows and everything gathered.
    ///
    /// # Errors
    /// The store.
    pub fn write(
        self,
        tx: &mut Transaction<'_>,
        rows: &BTreeMap<Vin, Row>,
        received_day: i64,
        applied: &mut Applied,
    ) -> Result<(), StoreError> {
        write_rows(tx, rows.values().filter(|r| r.changed || r.state_changed))?;
        if !self.records.0.is_empty() {
            insert_records(tx, received_day, &self.records.0, &self.records.1)?;
        }
        if !self.timeline.0.is_empty() {
            tx.execute(
                "INSERT INTO timeline (vehicle, at, entry) \
                 SELECT * FROM unnest($1::int4[], $2::int8[], $3::jsonb[])",
                &[&self.timeline.0, &self.timeline.1, &self.timeline.2],
            )?;
        }
        for open in self.alerts.values() {
            tx.execute(
                "INSERT INTO alerts (id, vin, state, body, send_due, sla_due) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                 state = EXCLUDED.state, body = EXCLUDED.body, \
                 send_due = EXCLUDED.send_due, sla_due = EXCLUDED.sla_due",
                &[
                    &i64::try_from(open.alert.id).unwrap_or(i64::MAX),
                    &open.alert.vin.to_string(),
                    &alert_state(&open.alert),
                    &to_json("alert", &open.alert)?,
                    &open.send_due.map(ms),
                    &open.sla_due.map(ms),
                ],
            )?;
        }
        for msg in &self.webhooks {
            if enqueue(tx, msg)? {
                applied.effects.webhooks += 1;
            }
        }
        let (holder, until) = match &self.downlink_claim {
            Some((h, u)) => (Some(h.as_str()), Some(*u)),
            None => (None, None),
        };
        if !self.superseded.is_empty() {
            tx.execute(
                "DELETE FROM downlinks WHERE id = ANY($1)",
                &[&self.superseded],
            )?;
        }
        for (id, vin, bytes) in &self.downlinks {
            tx.execute(
                "INSERT INTO downlinks (id, vin, envelope, claimed_by, lease_until) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[id, vin, bytes, &holder, &until],
            )?;
        }
        Ok(())
    }
}

/// Bits of a record key that hold the seq.
pub(super) const SEQ_BITS: u32 = 36;

/// The record log's key of (vehicle row id, seq): `id · 2^36 + seq`.
///
/// # Errors
/// A seq of 2^36 or more, or an id outside 0..2^27 (the key would not sort by (id, seq)).
pub(super) fn record_key(vehicle: i32, seq: u64) -> Result<i64, StoreError> {
    let id = i64::from(vehicle);
    if seq >= 1 << SEQ_BITS || !(0..1 << (63 - SEQ_BITS)).contains(&id) {
        return Err(StoreError::corrupt(
            format!("record {seq} of vehicle row {vehicle}"),
            "beyond the PostgreSQL record log's key (seqs below 2^36, vehicle ids below 2^27)",
        ));
    }
    Ok(id << SEQ_BITS | i64::try_from(seq).unwrap_or(0))
}

/// The first key of a vehicle's records, and the first after them.
pub(super) fn record_range(vehicle: i32) -> (i64, i64) {
    let base = i64::from(vehicle) << SEQ_BITS;
    (base, base + (1 << SEQ_BITS))
}

/// Appends records (keys and bodies) to the log's partition of `received_day`.
///
/// # Errors
/// The store.
pub(super) fn insert_records(
    tx: &mut impl postgres::GenericClient,
    received_day: i64,
    keys: &[i64],
    bodies: &[Vec<u8>],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO records (key, received, body) \
         SELECT u.k, DATE '1970-01-01' + $1::int4, u.b \
         FROM unnest($2::int8[], $3::bytea[]) AS u(k, b)",
        &[
            &i32::try_from(received_day).unwrap_or(i32::MAX),
            &keys,
            &bodies,
        ],
    )?;
    Ok(())
}

/// Adds a pending webhook unless its id is known; whether it was added.
///
/// # Errors
/// The store; a message the outbox refuses.
pub(super) fn enqueue(
    tx: &mut impl postgres::GenericClient,
    msg: &Message,
) -> Result<bool, StoreError> {
    msg.validate()
        .map_err(|e| StoreError::corrupt(format!("webhook {}", msg.id), e))?;
    let bytes = encode(msg).map_err(|e| StoreError::corrupt(format!("webhook {}", msg.id), e))?;
    let n = tx.execute(
        "INSERT INTO webhooks (id, status, next_at, message) VALUES ($1, 0, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
        &[&msg.id, &ms(msg.next_at), &bytes],
    )?;
    Ok(n == 1)
}

fn write_rows<'a>(
    tx: &mut Transaction<'_>,
    rows: impl Iterator<Item = &'a Row>,
) -> Result<(), StoreError> {
    let mut ids = Vec::new();
    let mut states: Vec<Option<Vec<u8>>> = Vec::new();
    let mut drivers: Vec<Option<Vec<u8>>> = Vec::new();
    let mut registrations: Vec<Option<Value>> = Vec::new();
    let mut contacts: Vec<Option<Value>> = Vec::new();
    let mut layers: [Vec<Option<i16>>; 5] = Default::default();
    let mut layer_due = Vec::new();
    let mut in_cell_due = Vec::new();
    let mut alert_due = Vec::new();
    for r in rows {
        let v = &r.fleet;
        ids.push(r.id);
        states.push(r.state.clone());
        drivers.push(
            v.driver
                .as_ref()
                .map(|d| {
                    d.to_bytes()
                        .map_err(|e| StoreError::corrupt(format!("driver {} (encoding)", v.vin), e))
                })
                .transpose()?,
        );
        registrations.push(
            v.registration
                .as_ref()
                .map(|x| to_json("registration", x))
                .transpose()?,
        );
        contacts.push(Some(to_json("contact history", &v.contacts)?));
        for (col, value) in layers.iter_mut().zip(layer_columns(v.layers)) {
            col.push(value);
        }
        layer_due.push(v.layer_due.map(ms));
        in_cell_due.push(v.in_cell_due.map(ms));
        alert_due.push(v.alerts.values().filter_map(OpenAlert::due).min().map(ms));
    }
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "UPDATE vehicles v SET state = u.state, driver = u.driver, \
         registration = u.registration, contacts = u.contacts, category = u.category, \
         car = u.car, service = u.service, activity = u.activity, lifecycle = u.lifecycle, \
         layer_due = u.layer_due, in_cell_due = u.in_cell_due, alert_due = u.alert_due \
         FROM unnest($1::int4[], $2::bytea[], $3::bytea[], $4::jsonb[], $5::jsonb[], \
                     $6::int2[], $7::int2[], $8::int2[], $9::int2[], $10::int2[], \
                     $11::int8[], $12::int8[], $13::int8[]) \
              AS u(id, state, driver, registration, contacts, category, car, service, \
                   activity, lifecycle, layer_due, in_cell_due, alert_due) \
         WHERE v.id = u.id",
        &[
            &ids,
            &states,
            &drivers,
            &registrations,
            &contacts,
            &layers[0],
            &layers[1],
            &layers[2],
            &layers[3],
            &layers[4],
            &layer_due,
            &in_cell_due,
            &alert_due,
        ],
    )?;
    Ok(())
}
