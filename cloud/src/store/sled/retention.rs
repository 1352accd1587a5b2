//! Retention on sled: one bounded pass over a key prefix (records `R`, timeline `H`, dead
//! letters `X`), from a cursor key, removing the entries older than the cutoff in one batch.
//!
//! A pass examines at most `limit` keys, so a store with years of records is swept a slice
//! at a time; the cursor is the last key examined. Records are judged by when the cloud
//! received them (kept after the record's bytes, `super::logged`), never by the car's clock
//! — a car at 1970 would lose its fresh records at once, one a year ahead keep them a year
//! too long; records logged before the receive time was kept fall back to the car's time.
//! Timeline entries by the time in their key, dead letters by `dead_at`. An entry
//! that does not decode is kept and logged (retention never deletes what it cannot read).
//! Owns only this walk; the cutoffs and cursors are [`crate::retention`]'s.

use rapport_shared::Timestamp;

use super::SledStore;
use crate::keys::{DEAD, RECORD, TIMELINE, VIN_KEY_LEN};
use crate::store::StoreError;
use crate::store::{Expiring, Pass};
use crate::webhook::outbox::DeadLetter;

impl SledStore {
    /// See [`crate::store::Backend::prune_pass`].
    pub(super) fn prune(
        &self,
        what: Expiring,
        before: Timestamp,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pass, StoreError> {
        let prefix = match what {
            Expiring::Records => RECORD,
            Expiring::Timeline => TIMELINE,
            Expiring::DeadLetters => DEAD,
        };
        let start = match cursor {
            Some(k) if k.first() == Some(&prefix) => crate::keys::after(k),
            _ => vec![prefix],
        };
        let mut batch = sled::Batch::default();
        let (mut pruned, mut examined, mut last) = (0u64, 0usize, None);
        for entry in self.tree.range(start..vec![prefix + 1]).take(limit) {
            let (k, v) = entry?;
            examined += 1;
            let at = match what {
                // By when the cloud received it; a value logged before the receive time was
                // kept has only the car's time, judged as before.
                Expiring::Records => {
                    super::logged::split(&v).map(|(r, _, received)| received.unwrap_or(r.at))
                }
                Expiring::Timeline => k
                    .get(VIN_KEY_LEN..VIN_KEY_LEN + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| Timestamp::from_millis(u64::from_be_bytes(b))),
                Expiring::DeadLetters => crate::webhook::outbox::decode::<DeadLetter>(&k, &v)
                    .map(|d| d.dead_at)
                    .ok(),
            };
            match at {
                Some(at) if at < before => {
                    batch.remove(k.clone());
                    pruned += 1;
                }
                Some(_) => {}
                None => {
                    tracing::warn!(key = ?k, ?what, "retention: an entry does not decode; kept")
                }
            }
            last = Some(k.to_vec());
        }
        if pruned > 0 {
            self.tree.apply_batch(batch)?;
            self.tree.flush()?;
        }
        Ok(Pass {
            pruned,
            next: if examined < limit { None } else { last },
        })
    }
}
