//! Retention on PostgreSQL: one bounded pass per kind.
//!
//! - Records: at most `limit` rows read in `key` order after the cursor (the `records_key`
//!   index), each judged by its `received` day (the cloud's receipt date, as sled judges by
//!   its receive time — never the car's clock, which may say 1970 or a year ahead), the
//!   expired ones deleted by key (dropping whole old partitions,
//!   [`super::schema::drop_partitions_before`], stays the operator's bulk tool).
//! - Timeline entries and dead letters: a `DELETE … WHERE … IN (SELECT … LIMIT n)` of the
//!   expired rows; no cursor is needed (the predicate finds only expired rows), and a pass
//!   that deleted `limit` says there may be more.
//!
//! Owns only these statements.

use rapport_shared::Timestamp;

use super::PgStore;
use super::vehicles::ms;
use crate::store::StoreError;
use crate::store::{Expiring, Pass};

impl PgStore {
    /// See [`crate::store::Backend::prune_pass`].
    pub(super) fn prune(
        &self,
        what: Expiring,
        before: Timestamp,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pass, StoreError> {
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut c = self.conn()?;
        let by_predicate = |sql: &str, c: &mut super::Conn| -> Result<Pass, StoreError> {
            let pruned = c.execute(sql, &[&ms(before), &n])?;
            Ok(Pass {
                pruned,
                next: (pruned >= limit as u64).then(Vec::new),
            })
        };
        match what {
            Expiring::Timeline => by_predicate(
                "DELETE FROM timeline WHERE (vehicle, at, n) IN \
                 (SELECT vehicle, at, n FROM timeline WHERE at < $1 LIMIT $2)",
                &mut c,
            ),
            Expiring::DeadLetters => by_predicate(
                "DELETE FROM webhooks WHERE id IN \
                 (SELECT id FROM webhooks WHERE status = 2 AND done_at < $1 LIMIT $2)",
                &mut c,
            ),
            Expiring::Records => {
                let after = cursor
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(i64::MIN, i64::from_be_bytes);
                // By the day the cloud received it (a record received on day D expires once
                // all of D is before the cutoff), never by the car's clock.
                let before_day = i32::try_from(before.as_millis() / 86_400_000).unwrap_or(i32::MAX);
                let rows = c.query(
                    "SELECT key, (received - DATE '1970-01-01') FROM records \
                     WHERE key > $1 ORDER BY key LIMIT $2",
                    &[&after, &n],
                )?;
                let mut expired: Vec<i64> = Vec::new();
                let mut last = None;
                for row in &rows {
                    let key: i64 = row.get(0);
                    let day: i32 = row.get(1);
                    last = Some(key);
                    if day < before_day {
                        expired.push(key);
                    }
                }
                let pruned = if expired.is_empty() {
                    0
                } else {
                    c.execute("DELETE FROM records WHERE key = ANY($1)", &[&expired])?
                };
                Ok(Pass {
                    pruned,
                    next: if rows.len() < limit {
                        None
                    } else {
                        last.map(|k| k.to_be_bytes().to_vec())
                    },
                })
            }
        }
    }
}
