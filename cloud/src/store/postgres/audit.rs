//! The audit log in PostgreSQL: the `audit` table (migration 3), rows inserted, read newest
//! first by `seq`, deleted only by age. There is no UPDATE of it anywhere, and a trigger
//! (migration 3) refuses one from anyone.
//!
//! The operator tokens' changes made through the API are one row of `fleet_settings`
//! (key `operator_tokens`, JSON).
//!
//! Owns these statements. Does not own what an entry means ([`crate::audit`]).

use rapport_shared::Timestamp;

use super::PgStore;
use super::vehicles::ms;
use crate::audit::{AuditEntry, AuditQuery, Who};
use crate::store::StoreError;

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStore {
    pub(super) fn append_audit(&self, e: &AuditEntry) -> Result<u64, StoreError> {
        let row = self.conn()?.query_one(
            "INSERT INTO audit (at, who, partner, vin, method, route, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
            &[
                &i64_of(e.at),
                &e.who.as_str(),
                &e.partner,
                &e.vin,
                &e.method,
                &e.route,
                &i32::from(e.status),
            ],
        )?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub(super) fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let before = q.before.map_or(i64::MAX, i64_of);
        let since = q.since.map_or(i64::MIN, i64_of);
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let rows = self.conn()?.query(
            "SELECT seq, at, who, partner, vin, method, route, status FROM audit \
             WHERE seq < $1 AND at >= $2 \
               AND ($3::text IS NULL OR vin = $3) \
               AND ($4::text IS NULL OR partner = $4) \
             ORDER BY seq DESC LIMIT $5",
            &[&before, &since, &q.vin, &q.partner, &limit],
        )?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                let who: String = r.get(2);
                let status: i32 = r.get(7);
                Ok(AuditEntry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    at: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    who: Who::parse(&who).ok_or_else(|| {
                        StoreError::corrupt(format!("audit row {seq}"), format!("who {who:?}"))
                    })?,
                    partner: r.get(3),
                    vin: r.get(4),
                    method: r.get(5),
                    route: r.get(6),
                    status: u16::try_from(status).unwrap_or(0),
                })
            })
            .collect()
    }

    pub(super) fn prune_audit(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM audit WHERE seq IN \
             (SELECT seq FROM audit WHERE at < $1 ORDER BY seq LIMIT $2)",
            &[&ms(before), &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) fn operator_changes(&self) -> Result<Option<String>, StoreError> {
        let row = self.conn()?.query_opt(
            "SELECT value FROM fleet_settings WHERE key = 'operator_tokens'",
            &[],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(super) fn put_operator_changes(&self, json: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO fleet_settings (key, value) VALUES ('operator_tokens', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&json],
        )?;
        Ok(())
    }
}
