//! The sled backend's fleet side: what it keeps in memory (every vehicle's layers and next
//! change with the matrix's counts, the open alerts, the time indexes of alert sends, SLAs
//! and in-cell re-offers, the last alert id), a vehicle's snapshot built from its keys and
//! that memory, and a stepped vehicle persisted into a batch with the memory kept in step.
//!
//! Owns the memory and its rebuild at start ([`SledStore::start_fleet_memory`]). Does not
//! own any decision ([`crate::fleet::core`]) or the key encodings
//! ([`crate::fleet::store`], [`crate::webhook::outbox`]).
//!
//! Everything here runs under the store's one fleet mutex, taken for one decision and its
//! batch: the ingest thread, the tick and the API never interleave inside one.

use std::collections::{BTreeSet, HashMap};

use rapport_shared::{Timestamp, Vin};

use super::{Batch, SledStore};
use crate::fleet::alerts::{Alert, AlertState};
use crate::fleet::core::{
    Changes, Effects, FleetError, FleetStats, Ids, OpenAlert, Rules, Step, TICK_LIMIT, Vehicle,
    is_resolved,
};
use crate::fleet::layering::Layering;
use crate::fleet::model::DEFAULT_CATEGORY;
use crate::fleet::schedule::Due;
use crate::fleet::store::FleetStore;
use crate::store::{Applied, StoreError};
use crate::webhook::outbox::Enqueue;

/// The counter key of the last alert id.
pub(crate) const ALERT_COUNTER: &str = "alert";

/// The fleet in memory (see the module doc).
#[derive(Default)]
pub(super) struct Memory {
    pub layering: Layering,
    /// Alerts not resolved, by id.
    pub open: HashMap<u64, Alert>,
    /// Open alert ids by vehicle.
    pub open_by_vin: HashMap<Vin, BTreeSet<u64>>,
    /// Alerts whose webhook is not yet in the outbox, by when it is to go.
    pub send_due: Due<u64>,
    /// Open, unacknowledged, unescalated alerts by SLA deadline.
    pub sla_due: Due<u64>,
    /// Drivers to re-offer `in_cell` rules to, by when.
    pub in_cell: Due<Vin>,
    /// The last alert id given.
    pub next_alert: u64,
    /// Whether [`SledStore::start_fleet_memory`] ran (without it, nothing fleet-side runs).
    pub loaded: bool,
}

/// Ids from the memory's alert counter and sled's id generator.
struct SledIds<'a> {
    next_alert: &'a mut u64,
    alert_used: bool,
    keys: &'a FleetStore,
}

impl Ids for SledIds<'_> {
    fn alert_id(&mut self) -> Result<u64, StoreError> {
        *self.next_alert += 1;
        self.alert_used = true;
        Ok(*self.next_alert)
    }

    fn downlink_id(&mut self) -> Result<u64, StoreError> {
        self.keys.next_id()
    }
}

impl Memory {
    /// The snapshot of `vin`: its keys, and what memory holds of it.
    pub fn snapshot(&self, keys: &FleetStore, vin: &Vin) -> Result<Vehicle, StoreError> {
        let mut v = Vehicle::new(*vin);
        v.registration = keys.registration(vin)?;
        v.driver = keys.driver(vin)?;
        v.layers = self.layering.layers(vin);
        v.layer_due = self.layering.next_change(vin);
        v.contacts = keys.contacts(vin)?;
        v.in_cell_due = self.in_cell.get(vin);
        for id in self.open_by_vin.get(vin).into_iter().flatten() {
            if let Some(a) = self.open.get(id) {
                v.alerts.insert(
                    *id,
                    OpenAlert {
                        alert: a.clone(),
                        send_due: self.send_due.get(id),
                        sla_due: self.sla_due.get(id),
                    },
                );
            }
        }
        Ok(v)
    }

    /// Runs `f` on a [`Step`] with this memory's ids; returns what it returned and whether
    /// an alert id was used (the counter then goes into the batch).
    pub fn step<R>(
        &mut self,
        keys: &FleetStore,
        rules: &Rules,
        now: Timestamp,
        f: impl FnOnce(&mut Step<'_>) -> Result<R, FleetError>,
    ) -> Result<(R, Changes, bool), FleetError> {
        let mut ids = SledIds {
            next_alert: &mut self.next_alert,
            alert_used: false,
            keys,
        };
        let mut step = Step::new(rules, &mut ids, now);
        let r = f(&mut step)?;
        let changes = step.take();
        drop(step);
        let used = ids.alert_used;
        Ok((r, changes, used))
    }

    /// Persists a stepped vehicle and its changes into `batch`, and keeps memory in step.
    pub fn persist(
        &mut self,
        store: &SledStore,
        v: &Vehicle,
        changes: Changes,
        alert_used: bool,
        batch: &mut Batch,
        applied: &mut Applied,
    ) -> Result<(), FleetError> {
        let keys = &store.keys;
        let vin = v.vin;
        if changes.registration
            && let Some(r) = &v.registration
        {
            keys.put_registration(batch, r)?;
        }
        if changes.driver
            && let Some(d) = &v.driver
        {
            keys.put_driver(batch, &vin, d)?;
        }
        if changes.contacts {
            keys.put_contacts(batch, &vin, &v.contacts)?;
        }
        for (at, entry) in &changes.timeline {
            keys.put_timeline(batch, &vin, *at, entry)?;
        }
        for (id, open) in &changes.alerts {
            keys.put_alert(batch, *id, &open.alert.vin, &open.alert)?;
            if is_resolved(&open.alert) {
                self.open.remove(id);
                if let Some(ids) = self.open_by_vin.get_mut(&open.alert.vin) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.open_by_vin.remove(&open.alert.vin);
                    }
                }
            } else {
                self.open.insert(*id, open.alert.clone());
                self.open_by_vin
                    .entry(open.alert.vin)
                    .or_default()
                    .insert(*id);
            }
            match open.send_due {
                Some(at) => self.send_due.set(*id, at),
                None => self.send_due.remove(id),
            };
            match open.sla_due {
                Some(at) => self.sla_due.set(*id, at),
                None => self.sla_due.remove(id),
            };
        }
        if alert_used {
            keys.put_counter(batch, ALERT_COUNTER, self.next_alert);
        }
        for msg in &changes.webhooks {
            if store.outbox.enqueue(batch, msg)? == Enqueue::Added {
                applied.effects.webhooks += 1;
            }
        }
        for (id, bytes) in changes.downlinks {
            keys.put_downlink(batch, id, &bytes);
            applied.effects.downlinks.push((id, vin, bytes));
        }
        for id in &changes.superseded {
            keys.drop_downlink(batch, *id);
        }
        applied
            .effects
            .downlinks
            .retain(|(id, _, _)| !changes.superseded.contains(id));
        applied.effects.layer_changes += usize::try_from(changes.stats.layer_changes).unwrap_or(0);
        applied.stats.add(&changes.stats);
        if self.layering.layers(&vin) != v.layers || self.layering.next_change(&vin) != v.layer_due
        {
            self.layering.put(vin, v.layers, v.layer_due);
        }
        match v.in_cell_due {
            Some(at) => self.in_cell.set(vin, at),
            None => self.in_cell.remove(&vin),
        };
        Ok(())
    }
}

impl SledStore {
    /// Rebuilds the fleet's memory from the store at `now`: every driver placed from scratch,
    /// the layers recorded before compared (changes while down recorded and acted on), the
    /// unresolved alerts back with their time indexes. Applied and flushed.
    pub(super) fn start_fleet_memory(
        &self,
        rules: &Rules,
        now: Timestamp,
    ) -> Result<Applied, FleetError> {
        let mut mem = self.lock_fleet()?;
        *mem = Memory {
            layering: Layering::new(rules.layers.clone()),
            next_alert: self.keys.counter(ALERT_COUNTER)?,
            loaded: true,
            ..Memory::default()
        };
        let mut applied = Applied::default();
        // Alerts not resolved: back into memory and the time indexes.
        for a in self.keys.alerts::<Alert>() {
            let alert = match a {
                Ok(a) => a,
                Err(e) => {
                    applied.stats.unreadable += 1;
                    tracing::error!(cause = %e, "alert unreadable; skipped");
                    continue;
                }
            };
            if alert.state == AlertState::Resolved {
                continue;
            }
            if self.outbox.state(&alert.webhook().id)?.is_none() {
                mem.send_due.set(alert.id, alert.send_at);
            }
            if let Some(due) = alert.promise_due() {
                mem.sla_due.set(alert.id, due);
            }
            mem.open_by_vin
                .entry(alert.vin)
                .or_default()
                .insert(alert.id);
            mem.open.insert(alert.id, alert);
        }
        // Drivers: place all, then compare with the layers last recorded.
        let mut drivers = Vec::new();
        for item in self.keys.drivers() {
            match item {
                Ok((vin, d)) => {
                    let category = match self.keys.registration(&vin) {
                        Ok(Some(r)) => r.category,
                        Ok(None) => DEFAULT_CATEGORY,
                        Err(e) => {
                            tracing::error!(%vin, cause = %e, "registration unreadable; passenger assumed");
                            DEFAULT_CATEGORY
                        }
                    };
                    drivers.push((vin, category, d));
                }
                Err(e) => {
                    applied.stats.unreadable += 1;
                    tracing::error!(cause = %e, "driver record unreadable; skipped");
                }
            }
        }
        mem.layering.place_all(
            drivers.iter().map(|(vin, c, d)| (*vin, *c, &d.profile)),
            now,
        );
        drop(drivers);
        let vins: Vec<Vin> = mem.layering.iter().map(|(v, _)| *v).collect();
        let mut batch = Batch::default();
        for vin in vins {
            let mut v = mem.snapshot(&self.keys, &vin)?;
            let ((), changes, used) = mem.step(&self.keys, rules, now, |s| s.replaced(&mut v))?;
            mem.persist(self, &v, changes, used, &mut batch, &mut applied)?;
        }
        drop(mem);
        self.apply(batch)?;
        self.flush()?;
        Ok(applied)
    }

    /// The fleet's memory, locked.
    pub(super) fn lock_fleet(&self) -> Result<std::sync::MutexGuard<'_, Memory>, FleetError> {
        self.fleet
            .lock()
            .map_err(|_| FleetError::Store(StoreError::corrupt("fleet lock", "poisoned")))
    }

    /// What time made due at `now`: each due vehicle (layers, in-cell, alert sends, SLAs;
    /// at most [`TICK_LIMIT`] of each kind) stepped once, all in one batch, flushed.
    pub(super) fn tick_memory(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError> {
        let mut applied = Applied::default();
        {
            let mut mem = self.lock_fleet()?;
            let mut seen = std::collections::HashSet::new();
            let mut vins = Vec::new();
            let alerts_vin = |mem: &Memory, ids: Vec<u64>| -> Vec<Vin> {
                ids.iter()
                    .filter_map(|id| mem.open.get(id).map(|a| a.vin))
                    .collect()
            };
            let lists = [
                mem.layering.peek_due(now, TICK_LIMIT),
                mem.in_cell.peek_due(now, TICK_LIMIT),
                alerts_vin(&mem, mem.send_due.peek_due(now, TICK_LIMIT)),
                alerts_vin(&mem, mem.sla_due.peek_due(now, TICK_LIMIT)),
            ];
            for vin in lists.into_iter().flatten() {
                if seen.insert(vin) {
                    vins.push(vin);
                }
            }
            // Ids in the due indexes whose alert is gone (resolved meanwhile) are dropped.
            for id in mem.send_due.peek_due(now, TICK_LIMIT) {
                if !mem.open.contains_key(&id) {
                    mem.send_due.remove(&id);
                }
            }
            for id in mem.sla_due.peek_due(now, TICK_LIMIT) {
                if !mem.open.contains_key(&id) {
                    mem.sla_due.remove(&id);
                }
            }
            if vins.is_empty() {
                return Ok(applied);
            }
            let mut batch = Batch::default();
            for vin in vins {
                let mut v = mem.snapshot(&self.keys, &vin)?;
                let ((), changes, used) = mem.step(&self.keys, rules, now, |s| s.due(&mut v))?;
                mem.persist(self, &v, changes, used, &mut batch, &mut applied)?;
            }
            self.apply(batch)?;
        }
        self.flush()?;
        Ok(applied)
    }

    /// When the next time-driven work is due.
    pub(super) fn next_due_memory(&self) -> Result<Option<Timestamp>, FleetError> {
        let mem = self.lock_fleet()?;
        Ok([
            mem.layering.next_due(),
            mem.send_due.next_at(),
            mem.sla_due.next_at(),
            mem.in_cell.next_at(),
        ]
        .into_iter()
        .flatten()
        .min())
    }

    /// Steps one vehicle under the lock, persists it into its own batch, applies it (not
    /// flushed); returns what `f` returned.
    pub(super) fn one_vehicle<R>(
        &self,
        rules: &Rules,
        vin: &Vin,
        now: Timestamp,
        applied: &mut Applied,
        f: impl FnOnce(&mut Step<'_>, &mut Vehicle) -> Result<R, FleetError>,
    ) -> Result<R, FleetError> {
        let mut mem = self.lock_fleet()?;
        let mut v = mem.snapshot(&self.keys, vin)?;
        let (r, changes, used) = mem.step(&self.keys, rules, now, |s| f(s, &mut v))?;
        let mut batch = Batch::default();
        mem.persist(self, &v, changes, used, &mut batch, applied)?;
        self.apply(batch)?;
        Ok(r)
    }
}

/// Effects and counts of nothing.
pub(super) fn nothing() -> Applied {
    Applied {
        effects: Effects::default(),
        stats: FleetStats::default(),
    }
}
