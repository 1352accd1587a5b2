//! The webhook outbox in PostgreSQL: one `webhooks` row per message id, its `status`
//! pending, delivered or dead, so an id is in exactly one state and a re-enqueue of a known id
//! adds nothing (`ON CONFLICT DO NOTHING`: the one-alert-one-message rule holds across
//! instances too). Values are the sled outbox's encodings (version byte, postcard).
//!
//! Several instances send from one table: a sender claims due rows (`claimed_by`,
//! `lease_until`) with `FOR UPDATE SKIP LOCKED`, so two instances never take the same row at
//! once; recording the attempt ends the claim, and a claim whose holder died lapses with its
//! lease, after which any instance takes the message under the same id.
//!
//! Owns the queries behind [`OutboxStore`]. Does not own the schedule or sending.

use std::collections::HashSet;
use std::sync::Arc;

use postgres::GenericClient;
use rapport_shared::Timestamp;

use super::vehicles::{at, enqueue, ms};
use super::{Conn, Connections};
use crate::store::{Claim, OutboxStore, StoreError};
use crate::webhook::outbox::{
    DeadLetter, Delivered, Due, Enqueue, Message, MessageState, OutboxError, decode, encode,
};
use crate::webhook::schedule::Decision;

/// Rows read per page while looking for due messages.
const DUE_PAGE: i64 = 256;

/// The outbox over the store's pool.
pub struct PgOutbox {
    pool: Arc<Connections>,
}

fn out(e: StoreError) -> OutboxError {
    OutboxError::Corrupt {
        key: "(postgres)".into(),
        reason: e.to_string(),
    }
}

fn db(e: postgres::Error) -> OutboxError {
    out(super::pg(&e))
}

/// Claims due rows no live claim holds ($1 now, $2 limit, $3 holder, $4 lease end, $5 ids
/// the holder has in flight); rows another instance is claiming at this moment are skipped.
const CLAIM: &str = "WITH due AS (SELECT id FROM webhooks WHERE status = 0 AND next_at <= $1 \
     AND (lease_until IS NULL OR lease_until <= $1) AND NOT (id = ANY($5)) \
     ORDER BY next_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
     UPDATE webhooks w SET claimed_by = $3, lease_until = $4 FROM due WHERE w.id = due.id \
     RETURNING w.id, w.next_at, w.message";

/// When the next pending row (not in flight here, $2) can be taken: the earliest due time of
/// an unclaimed (or lapsed) row, or the end of a live claim. Two index walks, not a scan of
/// every pending row (a partner down for a day leaves a backlog): the first row in `next_at`
/// order that no live claim holds (`webhooks_due`), and the earliest live lease
/// (`webhooks_leased`, schema 2: only rows being sent have one).
const NEXT_DUE: &str = "SELECT LEAST( \
     (SELECT next_at FROM webhooks WHERE status = 0 \
        AND (lease_until IS NULL OR lease_until <= $1) AND NOT (id = ANY($2)) \
        ORDER BY next_at LIMIT 1), \
     (SELECT min(greatest(next_at, lease_until)) FROM webhooks WHERE status = 0 \
        AND lease_until > $1 AND NOT (id = ANY($2))))";

const PENDING: i16 = 0;
const DELIVERED: i16 = 1;
const DEAD: i16 = 2;

impl PgOutbox {
    pub(super) fn new(pool: Arc<Connections>) -> Self {
        Self { pool }
    }

    fn conn(&self) -> Result<Conn, OutboxError> {
        self.pool
            .get()
            .map_err(|e| out(StoreError::Unavailable(format!("no connection: {e}"))))
    }
}

fn state_of(
    id: &str,
    status: i16,
    message: Option<Vec<u8>>,
    marker: Option<Vec<u8>>,
    dead: Option<Vec<u8>>,
) -> Result<Option<MessageState>, OutboxError> {
    let key = |what: &str| format!("{what} {id}");
    let bytes = |b: Option<Vec<u8>>, what: &str| {
        b.ok_or_else(|| OutboxError::Corrupt {
            key: key(what),
            reason: "missing value".into(),
        })
    };
    Ok(Some(match status {
        PENDING => MessageState::Pending(decode(
            key("pending").as_bytes(),
            &bytes(message, "pending")?,
        )?),
        DELIVERED => MessageState::Delivered(decode(
            key("delivered").as_bytes(),
            &bytes(marker, "delivered")?,
        )?),
        DEAD => MessageState::Dead(decode(key("dead").as_bytes(), &bytes(dead, "dead")?)?),
        other => {
            return Err(OutboxError::Corrupt {
                key: key("webhook"),
                reason: format!("status {other}"),
            });
        }
    }))
}

fn read_state(
    c: &mut impl GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<MessageState>, OutboxError> {
    let sql = if lock {
        "SELECT status, message, marker, dead FROM webhooks WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT status, message, marker, dead FROM webhooks WHERE id = $1"
    };
    match c.query_opt(sql, &[&id]).map_err(db)? {
        None => Ok(None),
        Some(r) => state_of(id, r.get(0), r.get(1), r.get(2), r.get(3)),
    }
}

/// A delivered message leaves the queue; its marker stays (`$2` the time, `$3` the marker).
const SET_DELIVERED: &str = "UPDATE webhooks SET status = 1, next_at = NULL, done_at = $2, \
     message = NULL, marker = $3, claimed_by = NULL, lease_until = NULL WHERE id = $1";
/// A message to retry goes back to the queue (`$2` its next time, `$3` the message).
const SET_RETRY: &str = "UPDATE webhooks SET next_at = $2, message = $3, claimed_by = NULL, \
     lease_until = NULL WHERE id = $1";
/// A dead message leaves the queue as a dead letter (`$2` the time, `$3` the dead letter).
const SET_DEAD: &str = "UPDATE webhooks SET status = 2, next_at = NULL, done_at = $2, \
     message = NULL, dead = $3, claimed_by = NULL, lease_until = NULL WHERE id = $1";

impl OutboxStore for PgOutbox {
    fn state(&self, id: &str) -> Result<Option<MessageState>, OutboxError> {
        read_state(&mut *self.conn()?, id, false)
    }

    fn enqueue_now(&self, msg: &Message) -> Result<Enqueue, OutboxError> {
        msg.validate()?;
        let mut c = self.conn()?;
        if enqueue(&mut *c, msg).map_err(out)? {
            return Ok(Enqueue::Added);
        }
        Ok(match read_state(&mut *c, &msg.id, false)? {
            Some(MessageState::Delivered(_)) => Enqueue::AlreadyDelivered,
            Some(MessageState::Dead(_)) => Enqueue::AlreadyDead,
            _ => Enqueue::AlreadyPending,
        })
    }

    fn due_except(
        &self,
        now: Timestamp,
        limit: usize,
        skip: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Due, OutboxError> {
        let mut c = self.conn()?;
        let mut due = Due::default();
        let mut after: (i64, String) = (i64::MIN, String::new());
        loop {
            let rows = c
                .query(
                    "SELECT id, next_at, message FROM webhooks WHERE status = 0 \
                     AND (next_at, id) > ($1, $2) ORDER BY next_at, id LIMIT $3",
                    &[&after.0, &after.1, &DUE_PAGE],
                )
                .map_err(db)?;
            let n = rows.len();
            for r in rows {
                let id: String = r.get(0);
                let next_at: i64 = r.get(1);
                after = (next_at, id.clone());
                if skip(&id) {
                    continue;
                }
                if at(next_at) > now || due.messages.len() >= limit {
                    due.next_at = Some(at(next_at));
                    return Ok(due);
                }
                let bytes: Option<Vec<u8>> = r.get(2);
                let bytes = bytes.ok_or_else(|| OutboxError::Corrupt {
                    key: format!("pending {id}"),
                    reason: "missing value".into(),
                })?;
                due.messages.push(decode(id.as_bytes(), &bytes)?);
            }
            if n < usize::try_from(DUE_PAGE).unwrap_or(0) {
                return Ok(due);
            }
        }
    }

    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        in_flight: &HashSet<String>,
        claim: &Claim,
    ) -> Result<Due, OutboxError> {
        let mut c = self.conn()?;
        let skip: Vec<&str> = in_flight.iter().map(String::as_str).collect();
        let lease = i64::try_from(claim.lease.as_millis()).unwrap_or(i64::MAX);
        let until = ms(now).saturating_add(lease);
        let rows = c
            .query(
                CLAIM,
                &[
                    &ms(now),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                    &claim.holder,
                    &until,
                    &skip,
                ],
            )
            .map_err(db)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get(0);
            let next_at: i64 = r.get(1);
            let bytes: Option<Vec<u8>> = r.get(2);
            let bytes = bytes.ok_or_else(|| OutboxError::Corrupt {
                key: format!("pending {id}"),
                reason: "missing value".into(),
            })?;
            claimed.push((next_at, decode(id.as_bytes(), &bytes)?));
        }
        // RETURNING keeps no order: earliest first, as the sled outbox answers.
        claimed.sort_by(|a: &(i64, Message), b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        let mut due = Due {
            messages: claimed.into_iter().map(|(_, m)| m).collect(),
            next_at: None,
        };
        if due.messages.len() >= limit {
            due.next_at = Some(now);
        } else {
            let mut skip = skip;
            skip.extend(due.messages.iter().map(|m| m.id.as_str()));
            let next: Option<i64> = c
                .query_one(NEXT_DUE, &[&ms(now), &skip])
                .map_err(db)?
                .get(0);
            due.next_at = next.map(at);
        }
        Ok(due)
    }

    fn record(
        &self,
        msg: &Message,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Message, OutboxError> {
        let mut after = msg.attempted();
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        if !matches!(
            read_state(&mut tx, &msg.id, true)?,
            Some(MessageState::Pending(_))
        ) {
            return Ok(after);
        }
        // Each decision: its update ($2 a time, $3 the row's blob).
        let (sql, at, blob) = match decision {
            Decision::Delivered { status } => {
                let mark = Delivered {
                    at: now,
                    attempts: after.attempts,
                    status: *status,
                };
                (SET_DELIVERED, now, encode(&mark)?)
            }
            Decision::Retry { at: next, error } => {
                after.next_at = *next;
                after.last_error = Some(error.clone());
                (SET_RETRY, after.next_at, encode(&after)?)
            }
            Decision::Dead { reason, error } => {
                after.last_error = Some(error.clone());
                let dead = DeadLetter {
                    message: after.clone(),
                    dead_at: now,
                    reason: *reason,
                };
                (SET_DEAD, now, encode(&dead)?)
            }
        };
        tx.execute(sql, &[&msg.id, &ms(at), &blob]).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(after)
    }

    fn dead_letters(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        let mut c = self.conn()?;
        let rows = c
            .query(
                "SELECT id, dead FROM webhooks WHERE status = 2 AND id > $1 ORDER BY id LIMIT $2",
                &[
                    &after.unwrap_or(""),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                let bytes: Option<Vec<u8>> = r.get(1);
                decode(id.as_bytes(), &bytes.unwrap_or_default())
            })
            .collect()
    }

    fn redrive(&self, id: &str, now: Timestamp) -> Result<Message, OutboxError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let Some(MessageState::Dead(dead)) = read_state(&mut tx, id, true)? else {
            return Err(OutboxError::NotDead { id: id.to_owned() });
        };
        let mut msg = dead.message;
        msg.attempts = 0;
        msg.next_at = now;
        tx.execute(
            "UPDATE webhooks SET status = 0, next_at = $2, done_at = NULL, message = $3, \
             dead = NULL, claimed_by = NULL, lease_until = NULL WHERE id = $1",
            &[&id, &ms(now), &encode(&msg)?],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(msg)
    }

    fn prune_delivered(&self, before: Timestamp, limit: usize) -> Result<usize, OutboxError> {
        let mut c = self.conn()?;
        let n = c
            .execute(
                "DELETE FROM webhooks WHERE id IN (SELECT id FROM webhooks \
                 WHERE status = 1 AND done_at < $1 ORDER BY done_at LIMIT $2)",
                &[&ms(before), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn flush(&self) -> Result<(), OutboxError> {
        Ok(())
    }
}
