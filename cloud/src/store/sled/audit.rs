//! The audit log in sled: its own tree, `audit`, keyed by a big-endian u64 from sled's
//! monotonic id generator (increasing across restarts), each value the entry as JSON. Only
//! appended to; pruned from the front by age.
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

impl SledStore {
    fn audit_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(TREE)?)
    }

    pub(super) fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        let tree = self.audit_tree()?;
        // generate_id starts at 0; seqs start at 1 so 0 means "not stored".
        let seq = self.db.generate_id()?.saturating_add(1);
        let stored = AuditEntry {
            seq,
            ..entry.clone()
        };
        let value =
            serde_json::to_vec(&stored).map_err(|e| StoreError::corrupt("audit entry", e))?;
        tree.insert(seq.to_be_bytes(), value)?;
        Ok(seq)
    }

    pub(super) fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let tree = self.audit_tree()?;
        let upper = query.before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for item in tree.range(..upper.to_be_bytes()).rev() {
            if out.len() >= query.limit {
                break;
            }
            let (k, v) = item?;
            let entry: AuditEntry = serde_json::from_slice(&v)
                .map_err(|e| StoreError::corrupt(format!("audit entry {}", hex_key(&k)), e))?;
            if query.since.is_some_and(|s| entry.at < s) {
                // Appended in the cloud clock's order: everything further is older.
                break;
            }
            if query.matches(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    pub(super) fn prune_audit(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let tree = self.audit_tree()?;
        let mut removed = 0;
        for item in tree.iter() {
            if removed >= limit {
                break;
            }
            let (k, v) = item?;
            let at = serde_json::from_slice::<AuditEntry>(&v).map_or(0, |e| e.at);
            if at >= before.as_millis() {
                break;
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
