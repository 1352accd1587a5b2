//! The durable webhook outbox in sled: pending messages, their due index, dead letters and
//! delivered markers.
//!
//! Owns the key layout below, one message's moves between those states, and their
//! atomicity. Does not own what to do after an attempt ([`super::schedule`] decides) nor
//! sending ([`super::sender`]).
//!
//! # Keys (in the tree it is given, next to the ingest's and the fleet's; layout in
//! [`crate::keys`])
//! - `W` id → [`Message`]: pending (version byte, then postcard);
//! - `w` next_at(u64 big-endian, unix ms) id → empty: the due index, in due order;
//! - `X` id → [`DeadLetter`]: parked after the last try or a 410 (version byte, postcard);
//! - `Y` id → [`Delivered`]: a small marker kept after a 2xx (version byte, postcard);
//! - `y` at(u64 big-endian, unix ms) id → empty: the markers by delivery time, so
//!   [`Outbox::prune_delivered`] reads only the expired ones.
//!
//! A message's id is in exactly one of `W`, `X`, `Y` (plus its `w` entry while pending);
//! every move is one atomic batch. The id is the caller's (`msg_...`), stable across every
//! retry, restart and re-drive: it is the `webhook-id` the partner de-duplicates on.
//!
//! # One alert, one message
//! [`Outbox::enqueue`] reads `W`, `X` and `Y` for the id and, when none has it, adds the
//! message to the caller's batch; otherwise it adds nothing and says where the id is. The
//! read and the caller's `apply_batch` are not one atomic step, so the caller must not
//! enqueue the same id from two places at once: the alert layer enqueues only in the batch
//! that first records the alert, from its single writer, and the id is derived from the alert
//! (so a replayed alert finds its id taken). Two enqueues of one id in the same batch are
//! not detected either.
//!
//! # Durability
//! Writes here do not flush. What the caller enqueues is as durable as the caller's flush
//! of its batch. Attempt outcomes rely on sled's background flush (every 500 ms) and on
//! [`Outbox::flush`] at stop: a crash may lose the last outcomes, and then a delivered
//! message is sent again under the same id (the spec's idempotency key) or a failed one is
//! tried once more — never under a new id, never lost.

use rapport_shared::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::schedule::{DeadReason, Decision};
use crate::keys::{
    DEAD, DELIVERED, DELIVERED_AT, DUE, PENDING, parse_timed as parse_due_key, text_key as key,
    timed_key,
};

/// The version byte in front of every stored value.
pub const VALUE_VERSION: u8 = 1;
/// The longest message id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// The longest partner name or event type, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The largest body (the spec recommends well under 20 kB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// sled failed.
    #[error("webhook outbox: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value this build cannot read.
    #[error("webhook outbox: value at {key} unreadable: {reason}")]
    Corrupt {
        /// The key, printable.
        key: String,
        /// Why.
        reason: String,
    },
    /// A message that cannot be enqueued.
    #[error("webhook message {id:?}: {reason}")]
    Invalid {
        /// The id as given.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Re-drive of an id that is not a dead letter.
    #[error("webhook message {id:?} is not in the dead letters")]
    NotDead {
        /// The id.
        id: String,
    },
}

/// One webhook message: what goes to a partner, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The `webhook-id` (`msg_...`), given by the caller, stable for the message's life.
    pub id: String,
    /// The partner it goes to (looked up in [`super::Endpoints`] at send time).
    pub partner: String,
    /// The event type (`alert.maintenance`), for the API and the metrics.
    pub event_type: String,
    /// The body (JSON), fixed once: every attempt sends these bytes.
    pub body: Vec<u8>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_at: Timestamp,
    /// The last attempt's failure.
    pub last_error: Option<String>,
}

impl Message {
    /// A new message, due at once.
    pub fn new(
        id: impl Into<String>,
        partner: impl Into<String>,
        event_type: impl Into<String>,
        body: Vec<u8>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            partner: partner.into(),
            event_type: event_type.into(),
            body,
            created_at: now,
            attempts: 0,
            next_at: now,
            last_error: None,
        }
    }

    /// This message after one more attempt (what an outbox records it as, whatever the
    /// attempt's outcome).
    pub fn attempted(&self) -> Self {
        let mut after = self.clone();
        after.attempts = self.attempts.saturating_add(1);
        after
    }

    /// Checks what the outbox and the headers need: an id of 1-128 printable ASCII
    /// characters without `.` or spaces (the signed content is `id.timestamp.body`), a
    /// partner and an event type of 1-128 bytes, a body of at most 256 KiB.
    ///
    /// # Errors
    /// [`OutboxError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), OutboxError> {
        let bad = |reason: String| OutboxError::Invalid {
            id: self.id.chars().take(MAX_ID_BYTES).collect(),
            reason,
        };
        if self.id.is_empty() || self.id.len() > MAX_ID_BYTES {
            return Err(bad(format!("id must be 1-{MAX_ID_BYTES} bytes")));
        }
        if !self.id.bytes().all(|b| b.is_ascii_graphic() && b != b'.') {
            return Err(bad(
                "id must be printable ASCII without '.' or spaces".into()
            ));
        }
        for (what, v) in [("partner", &self.partner), ("event_type", &self.event_type)] {
            if v.is_empty() || v.len() > MAX_NAME_BYTES {
                return Err(bad(format!("{what} must be 1-{MAX_NAME_BYTES} bytes")));
            }
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(bad(format!(
                "body is {} bytes; at most {MAX_BODY_BYTES}",
                self.body.len()
            )));
        }
        Ok(())
    }
}

/// A message parked for good until re-driven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The message as it stood after its last attempt (`last_error` set).
    pub message: Message,
    /// When it was parked.
    pub dead_at: Timestamp,
    /// Why.
    pub reason: DeadReason,
}

/// The marker left by a delivered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// When the 2xx came.
    pub at: Timestamp,
    /// Attempts it took.
    pub attempts: u32,
    /// The status.
    pub status: u16,
}

/// Where a message stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageState {
    /// Waiting for its next attempt.
    Pending(Message),
    /// Delivered.
    Delivered(Delivered),
    /// In the dead letters.
    Dead(DeadLetter),
}

/// What [`Outbox::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueue {
    /// Added to the caller's batch.
    Added,
    /// Nothing added: the id is pending.
    AlreadyPending,
    /// Nothing added: the id was delivered.
    AlreadyDelivered,
    /// Nothing added: the id is a dead letter (re-drive it instead).
    AlreadyDead,
}

/// What one scan for due messages found.
#[derive(Clone, Debug, Default)]
pub struct Due {
    /// Due messages, earliest first, at most the limit asked.
    pub messages: Vec<Message>,
    /// When the next message not taken (nor skipped) is due, if any: `now` or earlier when
    /// the limit cut the scan short.
    pub next_at: Option<Timestamp>,
}

/// The webhook outbox over one sled tree; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    tree: sled::Tree,
}

fn due_key(next_at: Timestamp, id: &str) -> Vec<u8> {
    timed_key(DUE, next_at, id)
}

fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, OutboxError> {
    let out = vec![VALUE_VERSION];
    postcard::to_extend(value, out).map_err(|e| OutboxError::Corrupt {
        key: "(encoding)".into(),
        reason: e.to_string(),
    })
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, OutboxError> {
    let corrupt = |reason: String| OutboxError::Corrupt {
        key: printable(key),
        reason,
    };
    match bytes.split_first() {
        Some((&VALUE_VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupt(e.to_string()))
        }
        Some((v, _)) => Err(corrupt(format!(
            "value version {v}, this build reads {VALUE_VERSION}"
        ))),
        None => Err(corrupt("empty value".into())),
    }
}

impl Outbox {
    /// An outbox over `tree` (it uses only its own key prefixes there).
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// Where `id` stands, if the outbox knows it.
    ///
    /// # Errors
    /// sled failures, unreadable values.
    pub fn state(&self, id: &str) -> Result<Option<MessageState>, OutboxError> {
        let k = key(PENDING, id);
        if let Some(v) = self.tree.get(&k)? {
            return Ok(Some(MessageState::Pending(decode(&k, &v)?)));
        }
        let k = key(DELIVERED, id);
        if let Some(v) = self.tree.get(&k)? {
            return Ok(Some(MessageState::Delivered(decode(&k, &v)?)));
        }
        let k = key(DEAD, id);
        if let Some(v) = self.tree.get(&k)? {
            return Ok(Some(MessageState::Dead(decode(&k, &v)?)));
        }
        Ok(None)
    }

    /// Adds `msg` to the caller's `batch` unless its id is already pending, delivered or
    /// dead (see the module doc for who must make sure no two enqueues of one id race).
    /// The caller applies the batch, flushes when it needs durability, then wakes the
    /// sender.
    ///
    /// # Errors
    /// [`OutboxError::Invalid`] for a message [`Message::validate`] refuses; sled failures.
    pub fn enqueue(&self, batch: &mut sled::Batch, msg: &Message) -> Result<Enqueue, OutboxError> {
        msg.validate()?;
        if self.tree.contains_key(key(PENDING, &msg.id))? {
            return Ok(Enqueue::AlreadyPending);
        }
        if self.tree.contains_key(key(DELIVERED, &msg.id))? {
            return Ok(Enqueue::AlreadyDelivered);
        }
        if self.tree.contains_key(key(DEAD, &msg.id))? {
            return Ok(Enqueue::AlreadyDead);
        }
        batch.insert(key(PENDING, &msg.id), encode(msg)?);
        batch.insert(due_key(msg.next_at, &msg.id), Vec::new());
        Ok(Enqueue::Added)
    }

    /// [`Outbox::enqueue`] in a batch of its own, applied at once (not flushed).
    ///
    /// # Errors
    /// As [`Outbox::enqueue`].
    pub fn enqueue_now(&self, msg: &Message) -> Result<Enqueue, OutboxError> {
        let mut batch = sled::Batch::default();
        let done = self.enqueue(&mut batch, msg)?;
        if done == Enqueue::Added {
            self.tree.apply_batch(batch)?;
        }
        Ok(done)
    }

    /// Up to `limit` messages due at `now`, earliest first.
    ///
    /// # Errors
    /// sled failures, unreadable values.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Message>, OutboxError> {
        Ok(self.due_except(now, limit, |_| false)?.messages)
    }

    /// Up to `limit` messages due at `now`, earliest first, passing over ids `skip` says
    /// yes to (those in flight), and when the next one is due.
    ///
    /// # Errors
    /// sled failures, unreadable values.
    pub fn due_except(
        &self,
        now: Timestamp,
        limit: usize,
        mut skip: impl FnMut(&str) -> bool,
    ) -> Result<Due, OutboxError> {
        let mut due = Due::default();
        for entry in self.tree.scan_prefix([DUE]) {
            let (k, _) = entry?;
            let Some((at, id)) = parse_due_key(&k) else {
                return Err(OutboxError::Corrupt {
                    key: printable(&k),
                    reason: "due index key too short or not UTF-8".into(),
                });
            };
            if skip(id) {
                continue;
            }
            if at > now || due.messages.len() >= limit {
                due.next_at = Some(at);
                break;
            }
            let pk = key(PENDING, id);
            match self.tree.get(&pk)? {
                Some(v) => due.messages.push(decode(&pk, &v)?),
                // An index entry without its message cannot come from this module's
                // batches; drop it rather than spin on it.
                None => {
                    self.tree.remove(&k)?;
                }
            }
        }
        Ok(due)
    }

    /// When the earliest pending message is due.
    ///
    /// # Errors
    /// sled failures, a malformed index key.
    pub fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        match self.tree.scan_prefix([DUE]).next() {
            None => Ok(None),
            Some(entry) => {
                let (k, _) = entry?;
                parse_due_key(&k)
                    .map(|(at, _)| Some(at))
                    .ok_or_else(|| OutboxError::Corrupt {
                        key: printable(&k),
                        reason: "due index key too short or not UTF-8".into(),
                    })
            }
        }
    }

    /// Records the attempt made on `msg` (as it was read from the outbox, before the
    /// attempt) at `now`, and what `decision` says follows: all in one batch. Returns the
    /// message as it now stands (attempts counted, error kept).
    ///
    /// A message no longer pending (re-driven or removed meanwhile) is left alone.
    ///
    /// # Errors
    /// sled failures.
    pub fn record(
        &self,
        msg: &Message,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<Message, OutboxError> {
        let pk = key(PENDING, &msg.id);
        let mut after = msg.attempted();
        if !self.tree.contains_key(&pk)? {
            return Ok(after);
        }
        let mut batch = sled::Batch::default();
        batch.remove(due_key(msg.next_at, &msg.id));
        match decision {
            Decision::Delivered { status } => {
                batch.remove(pk);
                let mark = Delivered {
                    at: now,
                    attempts: after.attempts,
                    status: *status,
                };
                batch.insert(key(DELIVERED, &msg.id), encode(&mark)?);
                batch.insert(timed_key(DELIVERED_AT, now, &msg.id), Vec::new());
            }
            Decision::Retry { at, error } => {
                after.next_at = *at;
                after.last_error = Some(error.clone());
                batch.insert(pk, encode(&after)?);
                batch.insert(due_key(after.next_at, &msg.id), Vec::new());
            }
            Decision::Dead { reason, error } => {
                after.last_error = Some(error.clone());
                batch.remove(pk);
                let dead = DeadLetter {
                    message: after.clone(),
                    dead_at: now,
                    reason: *reason,
                };
                batch.insert(key(DEAD, &msg.id), encode(&dead)?);
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(after)
    }

    /// Dead letters in id order, starting after the id `after` (exclusive; `None`: from the
    /// first), at most `limit`. Page by passing the last id seen.
    ///
    /// # Errors
    /// sled failures, unreadable values.
    pub fn dead_letters(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        let start = match after {
            // The smallest key greater than `X` + after: append a zero byte.
            Some(id) => crate::keys::after(&key(DEAD, id)),
            None => vec![DEAD],
        };
        let mut out = Vec::new();
        for entry in self.tree.range(start..vec![DEAD + 1]).take(limit) {
            let (k, v) = entry?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Puts the dead letter `id` back to pending, due at `now`, attempts reset to zero, the
    /// same id (its last error is kept until the next attempt). Atomic.
    ///
    /// # Errors
    /// [`OutboxError::NotDead`] if `id` is not a dead letter; sled failures.
    pub fn redrive(&self, id: &str, now: Timestamp) -> Result<Message, OutboxError> {
        let dk = key(DEAD, id);
        let pk = key(PENDING, id);
        let result = self.tree.transaction(|tx| {
            let Some(v) = tx.get(&dk)? else {
                return Err(ConflictableTransactionError::Abort(OutboxError::NotDead {
                    id: id.to_owned(),
                }));
            };
            let dead: DeadLetter = decode(&dk, &v).map_err(ConflictableTransactionError::Abort)?;
            let mut msg = dead.message;
            msg.attempts = 0;
            msg.next_at = now;
            let value = encode(&msg).map_err(ConflictableTransactionError::Abort)?;
            tx.remove(dk.as_slice())?;
            tx.insert(pk.as_slice(), value)?;
            tx.insert(due_key(now, id), Vec::<u8>::new())?;
            Ok(msg)
        });
        match result {
            Ok(msg) => Ok(msg),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(OutboxError::Sled(e)),
        }
    }

    /// Removes up to `limit` delivered markers older than `before`, oldest first, reading
    /// only those (through the `y` index). Returns how many were removed. Once a marker is
    /// gone its id could be enqueued again, so keep markers longer than an alert can be
    /// replayed: alerts come from records applied exactly once, so that is never, and the
    /// retention ([`crate::config::Webhooks::keep_delivered_days`]) bounds the tree's growth.
    ///
    /// # Errors
    /// sled failures.
    pub fn prune_delivered(&self, before: Timestamp, limit: usize) -> Result<usize, OutboxError> {
        let end = timed_key(DELIVERED_AT, before, "");
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for entry in self.tree.range(vec![DELIVERED_AT]..end).take(limit) {
            let (k, _) = entry?;
            if let Some(id) = k.get(9..) {
                let mut marker = vec![DELIVERED];
                marker.extend_from_slice(id);
                batch.remove(marker);
            }
            batch.remove(k);
            removed += 1;
        }
        if removed > 0 {
            self.tree.apply_batch(batch)?;
        }
        Ok(removed)
    }

    /// How many messages are pending.
    pub fn pending_len(&self) -> usize {
        self.tree.scan_prefix([PENDING]).count()
    }

    /// How many dead letters there are.
    pub fn dead_len(&self) -> usize {
        self.tree.scan_prefix([DEAD]).count()
    }

    /// Flushes the database to disk (see the module doc for when this matters).
    ///
    /// # Errors
    /// sled failures.
    pub fn flush(&self) -> Result<usize, OutboxError> {
        Ok(self.tree.flush()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn outbox() -> (Outbox, sled::Db) {
        let db = rapport_kit::sled_store::open(&sled::Config::new().temporary(true)).unwrap();
        let tree = db.open_tree("cloud").unwrap();
        (Outbox::new(tree), db)
    }

    fn msg(id: &str, at: Timestamp) -> Message {
        Message::new(
            id,
            "dealer-1",
            "alert.maintenance",
            br#"{"a":1}"#.to_vec(),
            at,
        )
    }

    fn retry(at: Timestamp) -> Decision {
        Decision::Retry {
            at,
            error: "HTTP 500".into(),
        }
    }

    #[test]
    fn enqueue_refuses_a_second_message_with_the_same_id() {
        let (ob, _db) = outbox();
        assert_eq!(ob.enqueue_now(&msg("msg_a", T0)).unwrap(), Enqueue::Added);
        assert_eq!(
            ob.enqueue_now(&msg("msg_a", T0)).unwrap(),
            Enqueue::AlreadyPending
        );
        assert_eq!(ob.pending_len(), 1);
        let m = ob.due(T0, 10).unwrap().remove(0);
        ob.record(&m, &Decision::Delivered { status: 200 }, T0)
            .unwrap();
        assert_eq!(
            ob.enqueue_now(&msg("msg_a", T0)).unwrap(),
            Enqueue::AlreadyDelivered
        );
        assert_eq!(ob.pending_len(), 0);
        assert_eq!(
            ob.state("msg_a").unwrap(),
            Some(MessageState::Delivered(Delivered {
                at: T0,
                attempts: 1,
                status: 200
            }))
        );

        ob.enqueue_now(&msg("msg_b", T0)).unwrap();
        let m = ob.due(T0, 10).unwrap().remove(0);
        let dead = Decision::Dead {
            reason: DeadReason::Gone,
            error: "HTTP 410 Gone".into(),
        };
        ob.record(&m, &dead, T0).unwrap();
        assert_eq!(
            ob.enqueue_now(&msg("msg_b", T0)).unwrap(),
            Enqueue::AlreadyDead
        );
        assert_eq!(ob.pending_len(), 0);
        assert_eq!(ob.dead_len(), 1);
    }

    #[test]
    fn due_follows_next_at_and_skips_in_flight() {
        let (ob, _db) = outbox();
        for (i, off) in [30_000u64, 0, 10_000].iter().enumerate() {
            ob.enqueue_now(&msg(
                &format!("msg_{i}"),
                Timestamp::from_millis(T0.as_millis() + off),
            ))
            .unwrap();
        }
        let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(ob.due(T0, 10).unwrap()), ["msg_1"]);
        let later = Timestamp::from_millis(T0.as_millis() + 10_000);
        assert_eq!(ids(ob.due(later, 10).unwrap()), ["msg_1", "msg_2"]);
        assert_eq!(ids(ob.due(later, 1).unwrap()), ["msg_1"]);
        let d = ob.due_except(later, 10, |id| id == "msg_1").unwrap();
        assert_eq!(ids(d.messages), ["msg_2"]);
        assert_eq!(
            d.next_at,
            Some(Timestamp::from_millis(T0.as_millis() + 30_000))
        );
        assert_eq!(ob.next_due().unwrap(), Some(T0));
    }

    #[test]
    fn a_retry_moves_the_message_in_the_due_index_and_keeps_the_error() {
        let (ob, _db) = outbox();
        ob.enqueue_now(&msg("msg_r", T0)).unwrap();
        let m = ob.due(T0, 1).unwrap().remove(0);
        let at = Timestamp::from_millis(T0.as_millis() + 5_000);
        let after = ob.record(&m, &retry(at), T0).unwrap();
        assert_eq!(after.attempts, 1);
        assert!(ob.due(T0, 10).unwrap().is_empty());
        let again = ob.due(at, 10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(again[0].id, "msg_r");
        // Exactly one index entry remains.
        assert_eq!(ob.tree.scan_prefix([DUE]).count(), 1);
    }

    #[test]
    fn dead_letters_page_and_redrive_keeps_the_id() {
        let (ob, _db) = outbox();
        for i in 0..5 {
            ob.enqueue_now(&msg(&format!("msg_{i}"), T0)).unwrap();
        }
        for m in ob.due(T0, 10).unwrap() {
            let d = Decision::Dead {
                reason: DeadReason::Exhausted,
                error: format!("boom {}", m.id),
            };
            ob.record(&m, &d, T0).unwrap();
        }
        let page1 = ob.dead_letters(None, 2).unwrap();
        let page2 = ob.dead_letters(Some(&page1[1].message.id), 2).unwrap();
        let page3 = ob.dead_letters(Some(&page2[1].message.id), 2).unwrap();
        let all: Vec<_> = [page1, page2, page3]
            .concat()
            .into_iter()
            .map(|d| d.message.id)
            .collect();
        assert_eq!(all, ["msg_0", "msg_1", "msg_2", "msg_3", "msg_4"]);
        let d = &ob.dead_letters(Some("msg_1"), 1).unwrap()[0];
        assert_eq!(d.message.last_error.as_deref(), Some("boom msg_2"));
        assert_eq!(d.message.attempts, 1);

        let later = Timestamp::from_millis(T0.as_millis() + 1_000);
        let back = ob.redrive("msg_2", later).unwrap();
        assert_eq!(
            (back.id.as_str(), back.attempts, back.next_at),
            ("msg_2", 0, later)
        );
        assert_eq!(ob.dead_len(), 4);
        assert_eq!(ob.due(later, 10).unwrap()[0].id, "msg_2");
        assert!(matches!(
            ob.redrive("msg_2", later),
            Err(OutboxError::NotDead { .. })
        ));
        assert!(matches!(
            ob.redrive("msg_none", later),
            Err(OutboxError::NotDead { .. })
        ));
    }

    #[test]
    fn prune_removes_only_old_delivered_markers() {
        let (ob, _db) = outbox();
        for (i, at) in [T0, Timestamp::from_secs(1_700_000_100)]
            .into_iter()
            .enumerate()
        {
            ob.enqueue_now(&msg(&format!("msg_{i}"), at)).unwrap();
            let m = ob.due(at, 1).unwrap().remove(0);
            ob.record(&m, &Decision::Delivered { status: 200 }, at)
                .unwrap();
        }
        ob.enqueue_now(&msg("msg_pending", T0)).unwrap();
        assert_eq!(
            ob.prune_delivered(Timestamp::from_secs(1_700_000_050), 10)
                .unwrap(),
            1
        );
        assert_eq!(ob.state("msg_0").unwrap(), None);
        assert!(matches!(
            ob.state("msg_1").unwrap(),
            Some(MessageState::Delivered(_))
        ));
        assert!(matches!(
            ob.state("msg_pending").unwrap(),
            Some(MessageState::Pending(_))
        ));
        assert_eq!(
            ob.prune_delivered(Timestamp::from_secs(1_800_000_000), 0)
                .unwrap(),
            0
        );
        // The index goes with its marker: nothing of msg_0 is left, msg_1's index stays
        // until its own turn.
        let index: Vec<_> = ob
            .tree
            .scan_prefix([DELIVERED_AT])
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(
            index,
            vec![timed_key(
                DELIVERED_AT,
                Timestamp::from_secs(1_700_000_100),
                "msg_1"
            )]
        );
        assert_eq!(
            ob.prune_delivered(Timestamp::from_secs(1_800_000_000), 10)
                .unwrap(),
            1
        );
        assert_eq!(ob.state("msg_1").unwrap(), None);
        assert_eq!(ob.tree.scan_prefix([DELIVERED_AT]).count(), 0);
        assert_eq!(ob.tree.scan_prefix([DELIVERED]).count(), 0);
    }

    #[test]
    fn invalid_messages_are_refused_with_the_field_named() {
        let (ob, _db) = outbox();
        let cases = [
            (msg("msg.with.dots", T0), "'.'"),
            (msg("", T0), "id must be"),
            (msg("msg with space", T0), "'.'"),
            (
                Message {
                    partner: String::new(),
                    ..msg("msg_p", T0)
                },
                "partner",
            ),
            (
                Message {
                    body: vec![b' '; MAX_BODY_BYTES + 1],
                    ..msg("msg_b", T0)
                },
                "body",
            ),
        ];
        for (m, want) in cases {
            let err = ob.enqueue_now(&m).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        assert_eq!(ob.pending_len(), 0);
    }

    #[test]
    fn enqueue_joins_the_callers_batch_only() {
        let (ob, db) = outbox();
        let tree = db.open_tree("cloud").unwrap();
        let mut batch = sled::Batch::default();
        batch.insert(b"Aalert-1".as_slice(), b"open".as_slice());
        assert_eq!(
            ob.enqueue(&mut batch, &msg("msg_x", T0)).unwrap(),
            Enqueue::Added
        );
        // Nothing is written until the caller applies its batch.
        assert_eq!(ob.pending_len(), 0);
        tree.apply_batch(batch).unwrap();
        assert_eq!(ob.pending_len(), 1);
        assert!(tree.contains_key(b"Aalert-1").unwrap());
    }

    #[test]
    fn unreadable_values_are_reported_with_their_key() {
        let (ob, db) = outbox();
        let tree = db.open_tree("cloud").unwrap();
        tree.insert(key(PENDING, "msg_bad"), vec![9, 1, 2]).unwrap();
        let err = ob.state("msg_bad").unwrap_err().to_string();
        assert!(
            err.contains("Wmsg_bad") && err.contains("version 9"),
            "{err}"
        );
    }
}
