//! The sled backend behind the store port: [`Backend`] for [`SledStore`] (the ingest's
//! envelope-by-envelope batches under one flush, the fleet's changes under its mutex, reads
//! from the tree and the memory) and [`OutboxStore`] for the sled [`Outbox`].
//!
//! Owns how each port call maps onto the sled store. Does not own the key layouts or any
//! decision.

use std::sync::Arc;
use std::time::Instant;

use rapport_shared::{Campaign, Record, Timestamp, Uplink, Vin};

use super::fleet::nothing;
use super::{Batch, SledStore};
use crate::fleet::alerts::Alert;
use crate::fleet::core::{FleetError, Rules, Transition};
use crate::fleet::driver::Driver;
use crate::fleet::layering::Matrix;
use crate::fleet::model::{Category, CellFilter, Layers, Registration};
use crate::fleet::partners::Partner;
use crate::fleet::store::TimelineEntry;
use crate::ingest::plan;
use crate::store::{
    Applied, Backend, Envelope, Ingested, Listed, OutboxStore, Records, StoreError, Timeline,
};
use crate::vehicle::VehicleState;
use crate::webhook::outbox::{
    DeadLetter, Due, Enqueue, Message, MessageState, Outbox, OutboxError,
};
use crate::webhook::schedule::Decision;

impl SledStore {
    /// One envelope: its plan, and with `rules` its fleet effects, in one batch (not flushed).
    /// Under the fleet lock throughout, so an erasure never interleaves: an erased vehicle's
    /// envelope is sifted first ([`crate::store::erasure::Erasure::sift`]) and its tombstone
    /// written in the same batch.
    fn ingest_one(
        &self,
        rules: Option<&Rules>,
        uplink: &Uplink,
        now: Timestamp,
        applied: &mut Applied,
        late_dropped: &mut u64,
    ) -> Result<(Envelope, bool), StoreError> {
        let mut mem = self.lock_fleet().map_err(into_store)?;
        let mut batch = Batch::default();
        let mut tombstone_changed = false;
        let sifted;
        let uplink = match self.erasure_of(uplink.vin)? {
            None => uplink,
            Some(mut erasure) => {
                let mut u = uplink.clone();
                let s = erasure.sift(&mut u, now);
                *late_dropped += s.dropped;
                if s.changed {
                    self.put_erasure(&mut batch, &erasure)?;
                    tombstone_changed = true;
                }
                sifted = u;
                &sifted
            }
        };
        let prev = match SledStore::vehicle(self, &uplink.vin) {
            Ok(prev) => prev,
            Err(StoreError::Corrupt { what, reason }) => {
                return Ok((Envelope::Unreadable { what, reason }, false));
            }
            Err(e) => return Err(e),
        };
        let plan = plan(uplink, prev, now);
        let wrote = plan.changes_anything();
        if wrote {
            match rules {
                Some(rules) if !plan.fresh.is_empty() && mem.loaded => {
                    // One lock for the fleet's decisions and the commit: ticks and API
                    // changes commit between envelopes, never inside one.
                    let mut v = mem.snapshot(&self.keys, &plan.vin)?;
                    let fresh = plan.fresh.iter().filter_map(|&i| uplink.records.get(i));
                    let ((), changes, used) = mem
                        .step(&self.keys, rules, now, |s| {
                            s.on_records(&mut v, &plan.state, fresh)
                        })
                        .map_err(into_store)?;
                    mem.persist(self, &v, changes, used, &mut batch, applied)
                        .map_err(into_store)?;
                    self.commit_with(&plan, batch)?;
                }
                _ => self.commit_with(&plan, batch)?,
            }
        } else if tombstone_changed {
            self.apply(batch)?;
        }
        drop(mem);
        Ok((Envelope::Applied(plan.stats), wrote || tombstone_changed))
    }
}

fn into_store(e: FleetError) -> StoreError {
    match e {
        FleetError::Store(e) => e,
        other => StoreError::corrupt("fleet effects", other),
    }
}

impl Backend for SledStore {
    fn kind(&self) -> &'static str {
        "sled"
    }

    fn start_fleet(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError> {
        self.start_fleet_memory(rules, now)
    }

    fn ingest(
        &self,
        rules: Option<&Rules>,
        group: &[Uplink],
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        let mut out = Ingested::default();
        let mut wrote = false;
        for uplink in group {
            let (envelope, w) =
                self.ingest_one(rules, uplink, now, &mut out.applied, &mut out.late_dropped)?;
            wrote |= w;
            out.envelopes.push(envelope);
        }
        if wrote {
            let started = Instant::now();
            SledStore::flush(self)?;
            out.durable_micros =
                Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        Ok(out)
    }

    fn tick(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError> {
        self.tick_memory(rules, now)
    }

    fn next_due(&self, _now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        self.next_due_memory().map_err(into_store)
    }

    fn register(
        &self,
        rules: &Rules,
        registrations: &[Registration],
        skip_unchanged: bool,
        now: Timestamp,
    ) -> Result<Applied, FleetError> {
        let mut applied = nothing();
        for r in registrations {
            if skip_unchanged
                && crate::fleet::core::owner::unchanged(self.keys.registration(&r.vin)?.as_ref(), r)
            {
                continue;
            }
            self.one_vehicle(rules, &r.vin, now, &mut applied, |s, v| s.register(v, r))?;
        }
        SledStore::flush(self)?;
        Ok(applied)
    }

    fn transition(
        &self,
        rules: &Rules,
        id: u64,
        partner: Option<&str>,
        what: Transition,
        now: Timestamp,
    ) -> Result<(Alert, Applied), FleetError> {
        let alert = Backend::alert(self, id)?.ok_or(FleetError::UnknownAlert(id))?;
        let mut applied = nothing();
        let vin = alert.vin;
        let alert = self.one_vehicle(rules, &vin, now, &mut applied, |s, v| {
            s.transition(v, alert, partner, what)
        })?;
        SledStore::flush(self)?;
        Ok((alert, applied))
    }

    fn campaign(
        &self,
        rules: &Rules,
        campaign: &Campaign,
        cells: &CellFilter,
        now: Timestamp,
    ) -> Result<(Applied, u64, u64), FleetError> {
        let mut applied = nothing();
        let (mut sent, mut held) = (0, 0);
        {
            let mut mem = self.lock_fleet()?;
            let targets: Vec<Vin> = mem
                .layering
                .iter()
                .filter(|(_, l)| cells.matches(l))
                .map(|(v, _)| *v)
                .collect();
            let mut batch = Batch::default();
            for vin in targets {
                let mut v = mem.snapshot(&self.keys, &vin)?;
                let (got, changes, used) = mem.step(&self.keys, rules, now, |s| {
                    s.operator_campaign(&mut v, campaign)
                })?;
                match got {
                    Some(true) => sent += 1,
                    Some(false) => held += 1,
                    None => {}
                }
                mem.persist(self, &v, changes, used, &mut batch, &mut applied)?;
            }
            self.apply(batch)?;
        }
        SledStore::flush(self)?;
        Ok((applied, sent, held))
    }

    fn note_outcome(
        &self,
        alert_id: u64,
        event: &str,
        detail: String,
        now: Timestamp,
    ) -> Result<(), FleetError> {
        // Read under the lock: an erasure in between removes the alert, and then nothing is
        // noted on the erased vehicle's timeline.
        let mem = self.lock_fleet()?;
        let alert = match mem.open.get(&alert_id) {
            Some(a) => Some(a.clone()),
            None => self.keys.alert::<Alert>(alert_id)?,
        };
        let Some(alert) = alert else {
            return Ok(());
        };
        let mut batch = Batch::default();
        self.keys.put_timeline(
            &mut batch,
            &alert.vin,
            now,
            &TimelineEntry::Alert {
                id: alert_id,
                event: event.into(),
                detail,
            },
        )?;
        self.apply(batch)?;
        drop(mem);
        Ok(())
    }

    fn vehicle(&self, vin: &Vin) -> Result<Option<VehicleState>, StoreError> {
        SledStore::vehicle(self, vin)
    }

    fn count_vehicles(&self) -> Result<u64, StoreError> {
        Ok(SledStore::count_vehicles(self))
    }

    fn records(&self, vin: &Vin, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        SledStore::records(self, vin, after, limit)
    }

    fn records_newest_first<'a>(&'a self, vin: &Vin, below: Option<u64>) -> Records<'a> {
        Box::new(SledStore::records_newest_first(self, vin, below))
    }

    fn timeline_newest_first<'a>(&'a self, vin: &Vin, below: Option<&[u8]>) -> Timeline<'a> {
        Box::new(self.keys.timeline_newest_first(vin, below))
    }

    fn registration(&self, vin: &Vin) -> Result<Option<Registration>, StoreError> {
        self.keys.registration(vin)
    }

    fn driver(&self, vin: &Vin) -> Result<Option<Driver>, StoreError> {
        self.keys.driver(vin)
    }

    fn layers(&self, vin: &Vin) -> Result<Option<Layers>, StoreError> {
        let mem = self.lock_fleet().map_err(into_store)?;
        Ok(mem.layering.layers(vin))
    }

    fn matrix(&self, category: Option<Category>) -> Result<Matrix, StoreError> {
        let mem = self.lock_fleet().map_err(into_store)?;
        Ok(mem.layering.matrix(category))
    }

    fn vehicles_after(&self, after: Option<&Vin>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let vins = self.keys.vins_after(after, limit)?;
        let mem = self.lock_fleet().map_err(into_store)?;
        Ok(vins
            .into_iter()
            .map(|v| (v, mem.layering.layers(&v)))
            .collect())
    }

    fn alert(&self, id: u64) -> Result<Option<Alert>, StoreError> {
        {
            let mem = self.lock_fleet().map_err(into_store)?;
            if let Some(a) = mem.open.get(&id) {
                return Ok(Some(a.clone()));
            }
        }
        self.keys.alert(id)
    }

    fn alerts(&self, unresolved_only: bool, vin: Option<&Vin>) -> Result<Vec<Alert>, StoreError> {
        if unresolved_only {
            let mem = self.lock_fleet().map_err(into_store)?;
            return Ok(mem
                .open
                .values()
                .filter(|a| vin.is_none_or(|v| a.vin == *v))
                .cloned()
                .collect());
        }
        match vin {
            Some(v) => {
                let mut out = Vec::new();
                for id in self.keys.alert_ids_of(v)? {
                    if let Some(a) = self.keys.alert::<Alert>(id)? {
                        out.push(a);
                    }
                }
                Ok(out)
            }
            None => self.keys.alerts::<Alert>().collect(),
        }
    }

    fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.keys.partners()
    }

    fn put_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        self.keys.put_partner(&partner.id, partner)?;
        SledStore::flush(self).map(drop)
    }

    fn remove_partner(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.keys.remove_partner(id)?;
        SledStore::flush(self)?;
        Ok(removed)
    }

    fn next_downlink_id(&self) -> Result<u64, StoreError> {
        SledStore::next_downlink_id(self)
    }

    fn claim_downlinks(
        &self,
        _now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        // One instance: everything pending is this one's.
        let mut all = self.keys.pending_downlinks()?;
        all.truncate(limit);
        Ok(all)
    }

    fn remove_downlink(&self, id: u64) -> Result<(), StoreError> {
        self.keys.remove_downlink(id)
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(self.outbox.clone())
    }

    fn flush(&self) -> Result<(), StoreError> {
        SledStore::flush(self).map(drop)
    }
    fn prune_pass(
        &self,
        what: crate::store::Expiring,
        before: Timestamp,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<crate::store::Pass, StoreError> {
        self.prune(what, before, cursor, limit)
    }

    fn erasure(&self, vin: &Vin) -> Result<Option<crate::store::Erasure>, StoreError> {
        self.erasure_of(*vin)
    }

    fn erase(
        &self,
        vin: &Vin,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<(crate::store::Erasure, bool, Applied)>, FleetError> {
        self.erase_vehicle(vin, reason, now)
    }

    fn contacts(
        &self,
        vin: &Vin,
    ) -> Result<Option<crate::fleet::strategy::ContactHistory>, StoreError> {
        if !self
            .tree
            .contains_key(crate::keys::vin_key(crate::keys::CONTACTS, vin))?
        {
            return Ok(None);
        }
        self.keys.contacts(vin).map(Some)
    }

    fn audit_append(&self, entry: &crate::audit::AuditEntry) -> Result<u64, StoreError> {
        self.append_audit(entry)
    }

    fn audit_query(
        &self,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEntry>, StoreError> {
        self.query_audit(query)
    }

    fn audit_prune(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        self.prune_audit(before, limit)
    }

    fn operator_token_changes(&self) -> Result<Option<String>, StoreError> {
        self.operator_changes()
    }

    fn put_operator_token_changes(&self, json: &str) -> Result<(), StoreError> {
        self.put_operator_changes(json)
    }
}

impl OutboxStore for Outbox {
    fn state(&self, id: &str) -> Result<Option<MessageState>, OutboxError> {
        Outbox::state(self, id)
    }

    fn enqueue_now(&self, msg: &Message) -> Result<Enqueue, OutboxError> {
        Outbox::enqueue_now(self, msg)
    }

    fn due_except(
        &self,
        now: Timestamp,
        limit: usize,
        skip: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Due, OutboxError> {
        Outbox::due_except(self, now, limit, skip)
    }

    fn record(
        &self,
        msg: &Message,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Message, OutboxError> {
        Outbox::record(self, msg, decision, now)
    }

    fn dead_letters(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        Outbox::dead_letters(self, after, limit)
    }

    fn redrive(&self, id: &str, now: Timestamp) -> Result<Message, OutboxError> {
        Outbox::redrive(self, id, now)
    }

    fn prune_delivered(&self, before: Timestamp, limit: usize) -> Result<usize, OutboxError> {
        Outbox::prune_delivered(self, before, limit)
    }

    fn flush(&self) -> Result<(), OutboxError> {
        Outbox::flush(self).map(drop)
    }
}
