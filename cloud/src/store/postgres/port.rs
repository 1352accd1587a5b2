//! The PostgreSQL backend behind the store port: [`Backend`] for [`PgStore`], each call
//! mapped onto its transaction ([`super::fleet`]) or query ([`super::reads`]).
//!
//! Owns the mapping only.

use std::sync::Arc;
use std::time::Duration;

use rapport_shared::{Campaign, Record, Timestamp, Uplink, Vin};
use serde_json::Value;

use super::PgStore;
use super::vehicles::{ms, to_json};
use crate::fleet::alerts::Alert;
use crate::fleet::core::{FleetError, Rules, Transition};
use crate::fleet::driver::Driver;
use crate::fleet::layering::Matrix;
use crate::fleet::model::{Category, CellFilter, Layers, Registration};
use crate::fleet::partners::Partner;
use crate::store::{
    Applied, Backend, DOWNLINK_LEASE, Ingested, Listed, OutboxStore, Records, StoreError, Timeline,
};
use crate::vehicle::VehicleState;

impl Backend for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn start_fleet(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError> {
        // Nothing to load: the fleet lives in its rows. The partitions of this month and the
        // next are made ahead; drivers placed with other layer thresholds are re-placed in
        // the background.
        let day = i64::try_from(now.as_millis() / 86_400_000).unwrap_or(0);
        self.ensure_partition(day)?;
        self.ensure_partition(day + 31)?;
        self.replace_if_layers_changed(rules, now)?;
        Ok(Applied::default())
    }

    fn ingest(
        &self,
        rules: Option<&Rules>,
        group: &[Uplink],
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        self.ingest_group(rules, group, now)
    }

    fn tick(&self, rules: &Rules, now: Timestamp) -> Result<Applied, FleetError> {
        self.tick_due(rules, now)
    }

    fn next_due(&self, _now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        Ok(None)
    }

    fn register(
        &self,
        rules: &Rules,
        registrations: &[Registration],
        skip_unchanged: bool,
        now: Timestamp,
    ) -> Result<Applied, FleetError> {
        self.register_all(rules, registrations, skip_unchanged, now)
    }

    fn transition(
        &self,
        rules: &Rules,
        id: u64,
        partner: Option<&str>,
        what: Transition,
        now: Timestamp,
    ) -> Result<(Alert, Applied), FleetError> {
        self.transition_one(rules, id, partner, what, now)
    }

    fn campaign(
        &self,
        rules: &Rules,
        campaign: &Campaign,
        cells: &CellFilter,
        now: Timestamp,
    ) -> Result<(Applied, u64, u64), FleetError> {
        self.campaign_cells(rules, campaign, cells, now)
    }

    fn note_outcome(
        &self,
        alert_id: u64,
        event: &str,
        detail: String,
        now: Timestamp,
    ) -> Result<(), FleetError> {
        self.note(alert_id, event, detail, now)
    }

    fn vehicle(&self, vin: &Vin) -> Result<Option<VehicleState>, StoreError> {
        self.read_vehicle(vin)
    }

    fn count_vehicles(&self) -> Result<u64, StoreError> {
        self.count()
    }

    fn records(&self, vin: &Vin, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.read_records(vin, after, limit)
    }

    fn records_newest_first<'a>(&'a self, vin: &Vin, below: Option<u64>) -> Records<'a> {
        self.records_lazy(vin, below)
    }

    fn timeline_newest_first<'a>(&'a self, vin: &Vin, below: Option<&[u8]>) -> Timeline<'a> {
        self.timeline_lazy(vin, below)
    }

    fn registration(&self, vin: &Vin) -> Result<Option<Registration>, StoreError> {
        self.read_registration(vin)
    }

    fn driver(&self, vin: &Vin) -> Result<Option<Driver>, StoreError> {
        self.read_driver(vin)
    }

    fn layers(&self, vin: &Vin) -> Result<Option<Layers>, StoreError> {
        self.read_layers(vin)
    }

    fn matrix(&self, category: Option<Category>) -> Result<Matrix, StoreError> {
        self.read_matrix(category)
    }

    fn vehicles_after(&self, after: Option<&Vin>, limit: usize) -> Result<Vec<Listed>, StoreError> {
        self.read_vehicles_after(after, limit)
    }

    fn alert(&self, id: u64) -> Result<Option<Alert>, StoreError> {
        self.read_alert(id)
    }

    fn alerts(&self, unresolved_only: bool, vin: Option<&Vin>) -> Result<Vec<Alert>, StoreError> {
        self.read_alerts(unresolved_only, vin)
    }

    fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.read_partners()
    }

    fn put_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let body: Value = to_json("partner", partner)?;
        self.conn()?.execute(
            "INSERT INTO partners (id, body) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
            &[&partner.id, &body],
        )?;
        Ok(())
    }

    fn remove_partner(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute("DELETE FROM partners WHERE id = $1", &[&id])?;
        Ok(n > 0)
    }

    fn next_downlink_id(&self) -> Result<u64, StoreError> {
        let row = self
            .conn()?
            .query_one("SELECT nextval('downlink_ids')", &[])?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    fn claim_downlinks(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let lease_until = ms(now).saturating_add(super::lease_ms(DOWNLINK_LEASE));
        let rows = self.conn()?.query(
            "WITH lapsed AS ( \
                 SELECT id FROM downlinks \
                 WHERE lease_until IS NULL OR lease_until <= $1 \
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE downlinks d SET claimed_by = $3, lease_until = $4 \
             FROM lapsed WHERE d.id = lapsed.id \
             RETURNING d.id, d.envelope",
            &[
                &ms(now),
                &i64::try_from(limit).unwrap_or(i64::MAX),
                &self.holder(),
                &lease_until,
            ],
        )?;
        let mut rows: Vec<_> = rows
            .iter()
            .map(|r| (u64::try_from(r.get::<_, i64>(0)).unwrap_or(0), r.get(1)))
            .collect();
        rows.sort_by_key(|(id, _)| *id);
        Ok(rows)
    }

    fn shared(&self) -> bool {
        true
    }

    fn ping(&self, wait: Duration) -> Result<(), StoreError> {
        self.conn_within(wait)?.batch_execute("SELECT 1")?;
        Ok(())
    }

    fn remove_downlink(&self, id: u64) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM downlinks WHERE id = $1",
            &[&i64::try_from(id).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::clone(&self.outbox) as Arc<dyn OutboxStore>
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
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
        self.erasure_of(vin)
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
        self.contacts_of(vin)
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
