//! PostgreSQL's writes: the ingest's group commit (one transaction per group: the group's
//! vehicles locked in VIN order, every envelope planned and stepped, records, states and
//! fleet effects written set-based), the tick (due vehicles claimed `FOR UPDATE SKIP LOCKED`
//! and processed in the same transaction), and the API's changes.
//!
//! Owns each operation's transaction. Does not own the decisions ([`crate::fleet::core`]) or
//! the columns ([`super::vehicles`]).

use std::collections::BTreeMap;
use std::time::Instant;

use postgres::Transaction;
use rapport_shared::{Campaign, Timestamp, Uplink, Vin};

use super::PgStore;
use super::vehicles::{self, Row, layers_of, ms};
use crate::fleet::alerts::Alert;
use crate::fleet::core::{Changes, FleetError, Ids, Rules, Step, TICK_LIMIT, Transition};
use crate::fleet::model::{CellFilter, Registration};
use crate::fleet::store::TimelineEntry;
use crate::ingest::plan;
use crate::store::{Applied, Envelope, Ingested, StoreError};

/// Vehicles claimed by one tick transaction (a tick runs several until nothing is due or
/// [`TICK_LIMIT`] is reached).
const TICK_BATCH: i64 = 500;
/// Vehicles of an operator's campaign per transaction.
const CAMPAIGN_BATCH: usize = 500;

/// Ids from the database's sequences.
pub(super) struct PgIds<'a, 'b> {
    /// The transaction the ids are taken in.
    pub tx: &'a mut Transaction<'b>,
}

impl Ids for PgIds<'_, '_> {
    fn alert_id(&mut self) -> Result<u64, StoreError> {
        let row = self.tx.query_one("SELECT nextval('alert_ids')", &[])?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    fn downlink_id(&mut self) -> Result<u64, StoreError> {
        let row = self.tx.query_one("SELECT nextval('downlink_ids')", &[])?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }
}

/// Runs `f` on a step over `tx`'s ids; returns its result and the changes.
fn step<R>(
    tx: &mut Transaction<'_>,
    rules: &Rules,
    now: Timestamp,
    f: impl FnOnce(&mut Step<'_>) -> Result<R, FleetError>,
) -> Result<(R, Changes), FleetError> {
    let mut ids = PgIds { tx };
    let mut s = Step::new(rules, &mut ids, now);
    let r = f(&mut s)?;
    Ok((r, s.take()))
}

fn day_of(now: Timestamp) -> i64 {
    i64::try_from(now.as_millis() / 86_400_000).unwrap_or(i64::MAX)
}

fn into_store(e: FleetError) -> StoreError {
    match e {
        FleetError::Store(e) => e,
        other => StoreError::corrupt("fleet effects", other),
    }
}

impl PgStore {
    /// The ingest's group commit (see the module doc).
    pub(super) fn ingest_group(
        &self,
        rules: Option<&Rules>,
        group: &[Uplink],
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let day = day_of(now);
        self.ensure_partition(day)?;
        let mut c = self.conn()?;
        let started = Instant::now();
        let mut tx = c.transaction()?;
        let vins: Vec<Vin> = group.iter().map(|u| u.vin).collect();
        let mut rows = vehicles::lock(&mut tx, &vins, true)?;
        let mut out = Ingested::default();
        let (group, tombstones_changed, late_dropped) =
            super::erase::sift_group(&mut tx, group, now)?;
        out.late_dropped = late_dropped;
        let mut writes = self.writes(now);
        let mut wrote = tombstones_changed;
        for uplink in &group {
            let Some(row) = rows.get_mut(&uplink.vin) else {
                return Err(StoreError::corrupt(
                    format!("vehicle {}", uplink.vin),
                    "row missing after insert",
                ));
            };
            let prev = match row.vehicle_state() {
                Ok(prev) => prev,
                Err(StoreError::Corrupt { what, reason }) => {
                    out.envelopes.push(Envelope::Unreadable { what, reason });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let plan = plan(uplink, prev, now);
            if plan.changes_anything() {
                wrote = true;
                row.state = Some(plan.state.to_bytes().map_err(|e| {
                    StoreError::corrupt(format!("vehicle {} (encoding)", plan.vin), e)
                })?);
                row.state_changed = true;
                for (seq, bytes) in &plan.log {
                    writes.record(row.id, *seq, bytes.clone())?;
                }
                if let Some(rules) = rules
                    && !plan.fresh.is_empty()
                {
                    let fresh = plan.fresh.iter().filter_map(|&i| uplink.records.get(i));
                    let v = &mut row.fleet;
                    let ((), changes) =
                        step(&mut tx, rules, now, |s| s.on_records(v, &plan.state, fresh))
                            .map_err(into_store)?;
                    writes.changes(row, changes, &mut out.applied)?;
                }
            }
            out.envelopes.push(Envelope::Applied(plan.stats));
        }
        if wrote {
            writes.write(&mut tx, &rows, day, &mut out.applied)?;
            // A row made above for an erased vehicle whose every record was dropped holds
            // nothing: it goes, so the erased VIN has no vehicle row.
            let empty: Vec<i32> = rows
                .values()
                .filter(|r| {
                    r.state.is_none()
                        && !r.state_changed
                        && !r.changed
                        && r.fleet.registration.is_none()
                        && r.fleet.driver.is_none()
                })
                .map(|r| r.id)
                .collect();
            if !empty.is_empty() {
                tx.execute("DELETE FROM vehicles WHERE id = ANY($1)", &[&empty])?;
            }
            tx.commit()?;
            out.durable_micros =
                Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        } else {
            // Nothing to write; rows made for VINs whose every envelope was a duplicate
            // cannot exist (a first envelope always applies), so roll back is exact.
            tx.rollback()?;
        }
        Ok(out)
    }

    /// What time made due at `now`: due vehicles claimed and processed, batch by batch.
    pub(super) fn tick_due(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError> {
        let mut applied = Applied::default();
        let mut done = 0usize;
        let mut c = self.conn()?;
        while done < TICK_LIMIT {
            let mut tx = c.transaction().map_err(StoreError::from)?;
            let claimed = tx
                .query(
                    "SELECT vin FROM vehicles WHERE due_at <= $1 ORDER BY due_at \
                     LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&ms(now), &TICK_BATCH],
                )
                .map_err(StoreError::from)?;
            if claimed.is_empty() {
                break;
            }
            let vins: Vec<Vin> = claimed
                .iter()
                .filter_map(|r| r.get::<_, String>(0).parse().ok())
                .collect();
            // Already ours: this reads them (and their alerts) without waiting.
            let mut rows = vehicles::lock(&mut tx, &vins, false)?;
            let mut writes = self.writes(now);
            for row in rows.values_mut() {
                let v = &mut row.fleet;
                let ((), changes) = step(&mut tx, rules, now, |s| s.due(v))?;
                row.changed = true;
                writes.changes(row, changes, &mut applied)?;
            }
            writes.write(&mut tx, &rows, day_of(now), &mut applied)?;
            tx.commit().map_err(StoreError::from)?;
            done += claimed.len();
            if claimed.len() < usize::try_from(TICK_BATCH).unwrap_or(0) {
                break;
            }
        }
        Ok(applied)
    }

    /// Registrations, in order, in one transaction.
    pub(super) fn register_all(
        &self,
        rules: &Rules,
        registrations: &[Registration],
        skip_unchanged: bool,
        now: Timestamp,
    ) -> Result<Applied, FleetError> {
        let mut applied = Applied::default();
        if registrations.is_empty() {
            return Ok(applied);
        }
        let mut c = self.conn()?;
        for chunk in registrations.chunks(CAMPAIGN_BATCH) {
            let mut tx = c.transaction().map_err(StoreError::from)?;
            let vins: Vec<Vin> = chunk.iter().map(|r| r.vin).collect();
            let mut rows = vehicles::lock(&mut tx, &vins, true)?;
            let mut writes = self.writes(now);
            for r in chunk {
                let Some(row) = rows.get_mut(&r.vin) else {
                    continue;
                };
                if skip_unchanged
                    && crate::fleet::core::owner::unchanged(row.fleet.registration.as_ref(), r)
                {
                    continue;
                }
                let v = &mut row.fleet;
                let ((), changes) = step(&mut tx, rules, now, |s| s.register(v, r))?;
                writes.changes(row, changes, &mut applied)?;
            }
            writes.write(&mut tx, &rows, day_of(now), &mut applied)?;
            tx.commit().map_err(StoreError::from)?;
        }
        Ok(applied)
    }

    /// An alert's transition in the transaction of its vehicle.
    pub(super) fn transition_one(
        &self,
        rules: &Rules,
        id: u64,
        partner: Option<&str>,
        what: Transition,
        now: Timestamp,
    ) -> Result<(Alert, Applied), FleetError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(StoreError::from)?;
        let key = i64::try_from(id).unwrap_or(i64::MAX);
        let Some(found) = tx
            .query_opt("SELECT vin FROM alerts WHERE id = $1", &[&key])
            .map_err(StoreError::from)?
        else {
            return Err(FleetError::UnknownAlert(id));
        };
        let vin: Vin = found
            .get::<_, String>(0)
            .parse()
            .map_err(|e| StoreError::corrupt(format!("alert {id}"), e))?;
        let mut rows = vehicles::lock(&mut tx, &[vin], true)?;
        let row = tx
            .query_one(
                "SELECT body, send_due, sla_due FROM alerts WHERE id = $1",
                &[&key],
            )
            .map_err(StoreError::from)?;
        let alert = vehicles::read_open(&row)?.alert;
        let mut applied = Applied::default();
        let mut writes = self.writes(now);
        let Some(row) = rows.get_mut(&vin) else {
            return Err(FleetError::UnknownAlert(id));
        };
        let v = &mut row.fleet;
        let (alert, changes) = step(&mut tx, rules, now, |s| {
            s.transition(v, alert, partner, what)
        })?;
        writes.changes(row, changes, &mut applied)?;
        writes.write(&mut tx, &rows, day_of(now), &mut applied)?;
        tx.commit().map_err(StoreError::from)?;
        Ok((alert, applied))
    }

    /// An operator's campaign: the placed vehicles in `cells` found without locks, then
    /// locked and stepped batch by batch.
    pub(super) fn campaign_cells(
        &self,
        rules: &Rules,
        campaign: &Campaign,
        cells: &CellFilter,
        now: Timestamp,
    ) -> Result<(Applied, u64, u64), FleetError> {
        let mut c = self.conn()?;
        let candidates = c
            .query(
                "SELECT vin, category, car, service, activity, lifecycle FROM vehicles \
                 WHERE category IS NOT NULL AND driver IS NOT NULL ORDER BY vin",
                &[],
            )
            .map_err(StoreError::from)?;
        let targets: Vec<Vin> = candidates
            .iter()
            .filter(|r| {
                layers_of([r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)])
                    .is_some_and(|l| cells.matches(&l))
            })
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect();
        let mut applied = Applied::default();
        let (mut sent, mut held) = (0, 0);
        for chunk in targets.chunks(CAMPAIGN_BATCH) {
            let mut tx = c.transaction().map_err(StoreError::from)?;
            let mut rows: BTreeMap<Vin, Row> = vehicles::lock(&mut tx, chunk, false)?;
            let mut writes = self.writes(now);
            for row in rows.values_mut() {
                // Placed and in the cells still, now that it is locked?
                if !row.fleet.layers.is_some_and(|l| cells.matches(&l)) {
                    continue;
                }
                let v = &mut row.fleet;
                let (got, changes) =
                    step(&mut tx, rules, now, |s| s.operator_campaign(v, campaign))?;
                match got {
                    Some(true) => sent += 1,
                    Some(false) => held += 1,
                    None => {}
                }
                writes.changes(row, changes, &mut applied)?;
            }
            writes.write(&mut tx, &rows, day_of(now), &mut applied)?;
            tx.commit().map_err(StoreError::from)?;
        }
        Ok((applied, sent, held))
    }

    /// A webhook outcome on its alert's vehicle's timeline (append-only: no lock).
    pub(super) fn note(
        &self,
        alert_id: u64,
        event: &str,
        detail: String,
        now: Timestamp,
    ) -> Result<(), FleetError> {
        let mut c = self.conn()?;
        let entry = vehicles::to_json(
            "timeline entry",
            &TimelineEntry::Alert {
                id: alert_id,
                event: event.into(),
                detail,
            },
        )?;
        c.execute(
            "INSERT INTO timeline (vehicle, at, entry) \
             SELECT v.id, $2, $3 FROM alerts a JOIN vehicles v ON v.vin = a.vin WHERE a.id = $1",
            &[
                &i64::try_from(alert_id).unwrap_or(i64::MAX),
                &ms(now),
                &entry,
            ],
        )
        .map_err(StoreError::from)?;
        Ok(())
    }
}
