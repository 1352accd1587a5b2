//! The audit log in sled: its own tree, `audit`, keyed by a big-endian u64 from sled's
//! monotonic id generator (increasing across restarts), each value the entry as JSON, and two
//! index trees (`audit_vin`, `audit_partner`: the text, a 0 byte, the seq) written in the same
//! transaction, so a query by VIN or partner reads only its own entries. Only appended to;
//! pruned from the front by age (an entry's index keys go first).
//!
//! Beside it, the tree `access` keeps the operator tokens' changes made through the API
//! (one key, `operator_tokens`, JSON).
//!
//! Owns these layouts. Does not own what an entry means ([`crate::audit`]).

use rapport_shared::Timestamp;

use super::SledStore;
use crate::audit::{AuditEntry, AuditQuery};
use crate::store::StoreError;

/// The tree's name.
pub const TREE: &str = "audit";
/// The index by VIN: `vin 0x00 seq` (big-endian) → nothing.
pub const BY_VIN: &str = "audit_vin";
/// The index by partner: `partner id 0x00 seq` (big-endian) → nothing.
pub const BY_PARTNER: &str = "audit_partner";

/// An index key: the text, a 0 byte (neither VINs nor partner ids hold one), the seq.
fn index_key(text: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(text.len() + 9);
    k.extend_from_slice(text.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The seq at the end of an index key.
fn seq_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

fn decode(k: &[u8], v: &[u8]) -> Result<AuditEntry, StoreError> {
    serde_json::from_slice(v)
        .map_err(|e| StoreError::corrupt(format!("audit entry {}", hex_key(k)), e))
}

impl SledStore {
    fn audit_trees(&self) -> Result<(sled::Tree, sled::Tree, sled::Tree), StoreError> {
        Ok((
            self.db.open_tree(TREE)?,
            self.db.open_tree(BY_VIN)?,
            self.db.open_tree(BY_PARTNER)?,
        ))
    }

    pub(super) fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        use sled::Transactional as _;
        let (tree, by_vin, by_partner) = self.audit_trees()?;
        // generate_id starts at 0; seqs start at 1 so 0 means "not stored".
        let seq = self.db.generate_id()?.saturating_add(1);
        let stored = AuditEntry {
            seq,
            ..entry.clone()
        };
        let value =
            serde_json::to_vec(&stored).map_err(|e| StoreError::corrupt("audit entry", e))?;
        // The entry and its index keys together, or none of them.
        (&tree, &by_vin, &by_partner)
            .transaction(|(t, v, p)| {
                t.insert(&seq.to_be_bytes(), value.as_slice())?;
                if let Some(vin) = &stored.vin {
                    v.insert(index_key(vin, seq), &[])?;
                }
                if let Some(partner) = &stored.partner {
                    p.insert(index_key(partner, seq), &[])?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::corrupt("audit entry", "transaction aborted")
                }
            })?;
        Ok(seq)
    }

    /// Newest first: through the VIN's index when the query names one, else the partner's,
    /// else the whole log; the other filters applied to each entry.
    pub(super) fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let (tree, by_vin, by_partner) = self.audit_trees()?;
        let upper = query.before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut take = |entry: AuditEntry| -> bool {
            if query.since.is_some_and(|s| entry.at < s) {
                // Appended in the cloud clock's order: everything further is older.
                return false;
            }
            if query.matches(&entry) {
                out.push(entry);
            }
            out.len() < query.limit
        };
        if query.limit == 0 {
            return Ok(out);
        }
        let index = match (&query.vin, &query.partner) {
            (Some(vin), _) => Some((by_vin, vin)),
            (None, Some(partner)) => Some((by_partner, partner)),
            (None, None) => None,
        };
        match index {
            Some((index, text)) => {
                let low = index_key(text, 0);
                let high = index_key(text, upper);
                for item in index.range(low..high).rev() {
                    let (k, _) = item?;
                    let Some(seq) = seq_of(&k) else { continue };
                    // A key whose entry is gone (pruned meanwhile) is skipped.
                    let Some(v) = tree.get(seq.to_be_bytes())? else {
                        continue;
                    };
                    if !take(decode(&seq.to_be_bytes(), &v)?) {
                        break;
                    }
                }
            }
            None => {
                for item in tree.range(..upper.to_be_bytes()).rev() {
                    let (k, v) = item?;
                    if !take(decode(&k, &v)?) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) fn prune_audit(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let (tree, by_vin, by_partner) = self.audit_trees()?;
        let mut removed = 0;
        for item in tree.iter() {
            if removed >= limit {
                break;
            }
            let (k, v) = item?;
            let entry = serde_json::from_slice::<AuditEntry>(&v).ok();
            if entry.as_ref().is_some_and(|e| e.at >= before.as_millis()) {
                break;
            }
            if let Some(e) = &entry {
                if let Some(vin) = &e.vin {
                    by_vin.remove(index_key(vin, e.seq))?;
                }
                if let Some(partner) = &e.partner {
                    by_partner.remove(index_key(partner, e.seq))?;
                }
            }
            tree.remove(k)?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// The key, in the audit tree's neighbour `access`, of the operator tokens' API changes.
const OPERATOR_TOKENS: &[u8] = b"operator_tokens";

impl SledStore {
    pub(super) fn operator_changes(&self) -> Result<Option<String>, StoreError> {
        let tree = self.db.open_tree("access")?;
        tree.get(OPERATOR_TOKENS)?
            .map(|v| {
                String::from_utf8(v.to_vec())
                    .map_err(|e| StoreError::corrupt("operator token changes", e))
            })
            .transpose()
    }

    pub(super) fn put_operator_changes(&self, json: &str) -> Result<(), StoreError> {
        let tree = self.db.open_tree("access")?;
        tree.insert(OPERATOR_TOKENS, json.as_bytes())?;
        tree.flush()?;
        Ok(())
    }
}

fn hex_key(k: &[u8]) -> String {
    rapport_shared::hex::encode(k)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::tests_support::entry;

    fn q(vin: Option<&str>, partner: Option<&str>, before: Option<u64>) -> AuditQuery {
        AuditQuery {
            vin: vin.map(str::to_owned),
            partner: partner.map(str::to_owned),
            since: None,
            before,
            limit: 100,
        }
    }

    #[test]
    fn indexes_answer_by_vin_and_partner_and_pruning_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let plan = [
            (1, Some("V1"), Some("p")),
            (2, Some("V2"), Some("p")),
            (3, Some("V1"), None),
            (4, None, Some("q")),
            (5, Some("V1"), Some("q")),
        ];
        let seqs: Vec<u64> = plan
            .iter()
            .map(|(at, v, p)| s.append_audit(&entry(*at, *v, *p)).unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let ats = |r: Vec<AuditEntry>| r.iter().map(|e| e.at).collect::<Vec<_>>();
        assert_eq!(
            ats(s.query_audit(&q(Some("V1"), None, None)).unwrap()),
            [5, 3, 1]
        );
        assert_eq!(
            ats(s.query_audit(&q(None, Some("p"), None)).unwrap()),
            [2, 1]
        );
        assert_eq!(
            ats(s.query_audit(&q(Some("V1"), Some("q"), None)).unwrap()),
            [5]
        );
        assert_eq!(
            ats(s.query_audit(&q(Some("V1"), None, Some(seqs[4]))).unwrap()),
            [3, 1]
        );
        assert_eq!(
            ats(s.query_audit(&q(None, None, None)).unwrap()),
            [5, 4, 3, 2, 1]
        );
        assert!(s.query_audit(&q(Some("V"), None, None)).unwrap().is_empty());
        // Pruning the three oldest removes their index keys too.
        assert_eq!(s.prune_audit(Timestamp::from_millis(4), 100).unwrap(), 3);
        assert_eq!(ats(s.query_audit(&q(Some("V1"), None, None)).unwrap()), [5]);
        let (_, by_vin, by_partner) = s.audit_trees().unwrap();
        assert_eq!(by_vin.len(), 1);
        assert_eq!(by_partner.len(), 2);
    }
}
