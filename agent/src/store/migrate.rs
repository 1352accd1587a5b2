//! The store's schema version and the migrations that bring an older store up to it.
//!
//! The version lives in `m/schema` (a `u64`, big-endian). At open:
//! - no version and an empty database: a new store, written at [`SCHEMA_VERSION`];
//! - no version and data: schema 0 (below), migrated;
//! - a version below this build's: each step runs in order;
//! - this build's version: nothing to do;
//! - a higher version: [`StoreError::SchemaTooNew`], and nothing is touched — a downgraded
//!   agent must not destroy what a newer one wrote.
//!
//! A step reads the tree and returns one [`sled::Batch`] of its changes; the runner adds the
//! version bump to that same batch, applies it and flushes. So after a crash a store is at one
//! version or the next, never half-migrated, and a step that fails changes nothing. (Holding a
//! step's changes in memory is fine at this store's size: the outbox is bounded.)
//!
//! Schema 0 is the layout of `store::keys` without its `m/` meta keys: a store written
//! before the version and the sequence high-water mark were persisted. No released build
//! wrote it; it is what a store looks like if its meta keys are missing, and it gives the
//! runner a real step that tests exercise. Its step refuses a database holding any key the
//! layout does not know (so pointing the agent at some other sled directory changes nothing),
//! and sets the next sequence number to one past the highest outbox record, the best that
//! can be known once the mark is gone.
//!
//! Does not own: the layout itself (`store::keys`) or decoding values (`store::load`).

use tracing::info;

use super::keys;
use super::{StoreError, sled_error};

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: u64 = 1;

/// One migration step: reads the tree at version `n` and returns the changes that make it
/// version `n + 1` (without the version bump, which the runner adds to the same batch).
pub type Step = fn(&sled::Tree) -> Result<sled::Batch, StoreError>;

/// This build's steps: `MIGRATIONS[n]` migrates version `n` to `n + 1`, so the list is as
/// long as [`SCHEMA_VERSION`].
pub(crate) const MIGRATIONS: &[Step] = &[v0_to_v1];
const _: () = assert!(MIGRATIONS.len() as u64 == SCHEMA_VERSION);

/// Reads the stored schema version (`None`: not written).
///
/// # Errors
/// [`StoreError::Corrupt`] if the value is not 8 bytes; a sled error.
pub(crate) fn version(tree: &sled::Tree) -> Result<Option<u64>, StoreError> {
    let value = tree
        .get(keys::SCHEMA)
        .map_err(sled_error("reading the schema version"))?;
    value.map(|v| be_u64(keys::SCHEMA, &v)).transpose()
}

/// A meta value: a `u64`, big-endian.
pub(super) fn be_u64(key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: keys::Show(key).to_string(),
            reason: format!("expected an 8-byte number, found {} bytes", value.len()),
        })
}

/// Brings `tree` to version `steps.len()`, running `steps` from its current version on.
/// Returns the version found at open (`None` for a new store).
///
/// # Errors
/// [`StoreError::SchemaTooNew`] if the store is newer than `steps` know (nothing is changed),
/// [`StoreError::Migration`] if a step refuses, a sled error.
pub(crate) fn run(tree: &sled::Tree, steps: &[Step]) -> Result<Option<u64>, StoreError> {
    let target = steps.len() as u64;
    let found = version(tree)?;
    let mut at = match found {
        Some(v) => v,
        None if tree.is_empty() => {
            tree.insert(keys::SCHEMA, target.to_be_bytes().to_vec())
                .map_err(sled_error("writing the schema version"))?;
            tree.flush().map_err(sled_error("flushing"))?;
            return Ok(None);
        }
        None => 0,
    };
    if at > target {
        return Err(StoreError::SchemaTooNew {
            found: at,
            supported: target,
        });
    }
    while let Some(step) = usize::try_from(at).ok().and_then(|i| steps.get(i)) {
        let mut batch = step(tree)?;
        batch.insert(keys::SCHEMA, (at + 1).to_be_bytes().to_vec());
        tree.apply_batch(batch)
            .map_err(sled_error("applying a migration"))?;
        tree.flush().map_err(sled_error("flushing a migration"))?;
        info!(from = at, to = at + 1, "store migrated");
        at += 1;
    }
    Ok(found)
}

/// Schema 0 → 1: checks every key fits the layout and writes the meta keys.
fn v0_to_v1(tree: &sled::Tree) -> Result<sled::Batch, StoreError> {
    let refuse = |reason: String| StoreError::Migration { from: 0, reason };
    let mut highest = 0;
    for entry in tree.iter() {
        let (key, _) = entry.map_err(sled_error("reading a schema 0 store"))?;
        match keys::parse(&key) {
            Ok(keys::Key::Outbox(seq)) => highest = highest.max(seq),
            Ok(keys::Key::Meta(_) | keys::Key::Quarantine(_)) | Err(_) => {
                return Err(refuse(format!(
                    "key {} is not part of schema 0: not a rapport agent store?",
                    keys::Show(&key)
                )));
            }
            Ok(_) => {}
        }
    }
    let mut batch = sled::Batch::default();
    batch.insert(
        keys::NEXT_SEQ,
        highest.saturating_add(1).to_be_bytes().to_vec(),
    );
    batch.insert(keys::DROPPED, 0u64.to_be_bytes().to_vec());
    Ok(batch)
}
