//! A time index: which keys are due when, so a tick touches only the due ones.
//!
//! Owns [`Due`]: at most one instant per key, ordered by time (ties by key, so the order
//! is deterministic). Does not own what is due or what happens then ([`super::layering`]),
//! nor the clock (every call takes `now`).
//!
//! A `BTreeSet<(Timestamp, K)>` gives the time order and a `HashMap<K, Timestamp>` finds a
//! key's entry to replace or remove it: every operation is O(log n), and popping the due
//! ones costs only what is due, never a scan. (A binary heap with lazy deletion was the
//! alternative; it keeps stale entries until they surface, which grows memory with every
//! reschedule, and needs the same map anyway.)

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use rapport_shared::Timestamp;

/// Keys with the instant each is next due.
#[derive(Clone, Debug)]
pub struct Due<K> {
    by_time: BTreeSet<(Timestamp, K)>,
    at: HashMap<K, Timestamp>,
}

impl<K> Default for Due<K> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            at: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> Due<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `key` due at `at`, replacing any earlier instant; returns that instant.
    pub fn set(&mut self, key: K, at: Timestamp) -> Option<Timestamp> {
        let previous = self.at.insert(key.clone(), at);
        if let Some(old) = previous {
            if old == at {
                return previous;
            }
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
        previous
    }

    /// Forgets `key`; returns the instant it was due at.
    pub fn remove(&mut self, key: &K) -> Option<Timestamp> {
        let at = self.at.remove(key)?;
        self.by_time.remove(&(at, key.clone()));
        Some(at)
    }

    /// Takes out up to `limit` keys due at or before `now`, earliest first (the rest stay
    /// for the next call).
    pub fn pop_due(&mut self, now: Timestamp, limit: usize) -> Vec<K> {
        self.pop_due_timed(now, limit)
            .into_iter()
            .map(|(_, key)| key)
            .collect()
    }

    /// [`Self::pop_due`], each key with the instant it was due at.
    pub fn pop_due_timed(&mut self, now: Timestamp, limit: usize) -> Vec<(Timestamp, K)> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.by_time.first() {
                Some((at, _)) if *at <= now => {}
                _ => break,
            }
            if let Some((at, key)) = self.by_time.pop_first() {
                self.at.remove(&key);
                out.push((at, key));
            }
        }
        out
    }

    /// Up to `limit` keys due at or before `now`, earliest first, left in place.
    pub fn peek_due(&self, now: Timestamp, limit: usize) -> Vec<K> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The earliest instant anything is due at.
    pub fn next_at(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// When `key` is due.
    pub fn get(&self, key: &K) -> Option<Timestamp> {
        self.at.get(key).copied()
    }

    /// How many keys are due at some instant.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Nothing is due, ever.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.by_time.clear();
        self.at.clear();
    }
}

/// Builds an index in bulk (a later instant for the same key replaces an earlier one).
/// Faster than `set` one by one: the ordered set is built from sorted input in one pass.
impl<K: Ord + Hash + Clone> FromIterator<(K, Timestamp)> for Due<K> {
    fn from_iter<I: IntoIterator<Item = (K, Timestamp)>>(iter: I) -> Self {
        // Collected first: a filtered iterator's size hint is 0, and growing the map step
        // by step rehashes it many times.
        let entries: Vec<(K, Timestamp)> = iter.into_iter().collect();
        let mut at = HashMap::with_capacity(entries.len());
        at.extend(entries);
        let mut sorted: Vec<(Timestamp, K)> = at.iter().map(|(k, t)| (*t, k.clone())).collect();
        sorted.sort_unstable();
        Self {
            by_time: sorted.into_iter().collect(),
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn pops_in_time_order_up_to_now_and_limit() {
        let mut due = Due::new();
        due.set("c", t(30));
        due.set("a", t(10));
        due.set("b", t(20));
        due.set("late", t(100));
        assert_eq!(due.next_at(), Some(t(10)));
        assert_eq!(due.pop_due(t(9), 10), Vec::<&str>::new(), "nothing due yet");
        assert_eq!(due.pop_due(t(30), 2), vec!["a", "b"], "limit 2");
        assert_eq!(due.pop_due(t(30), 10), vec!["c"], "due exactly at now");
        assert_eq!(due.len(), 1);
        assert_eq!(due.next_at(), Some(t(100)));
        assert_eq!(due.pop_due(t(u64::MAX), 0), Vec::<&str>::new(), "limit 0");
    }

    #[test]
    fn set_replaces_and_remove_forgets() {
        let mut due = Due::new();
        assert_eq!(due.set(1, t(50)), None);
        assert_eq!(due.set(1, t(10)), Some(t(50)));
        assert_eq!(due.set(1, t(10)), Some(t(10)), "same instant again");
        assert_eq!(due.len(), 1);
        assert_eq!(due.get(&1), Some(t(10)));
        assert_eq!(
            due.pop_due(t(49), 10),
            vec![1],
            "only the new instant counts"
        );
        assert!(due.is_empty());
        due.set(2, t(5));
        assert_eq!(due.remove(&2), Some(t(5)));
        assert_eq!(due.remove(&2), None);
        assert_eq!(due.pop_due(t(100), 10), Vec::<i32>::new());
        assert_eq!(due.next_at(), None);
    }

    #[test]
    fn ties_pop_in_key_order() {
        let mut due = Due::new();
        for k in [3, 1, 2] {
            due.set(k, t(7));
        }
        assert_eq!(due.pop_due(t(7), 10), vec![1, 2, 3]);
    }

    #[test]
    fn bulk_build_keeps_the_last_instant_per_key() {
        let mut due: Due<u32> = [(1, t(5)), (2, t(3)), (1, t(9))].into_iter().collect();
        assert_eq!(due.len(), 2);
        assert_eq!(due.get(&1), Some(t(9)));
        assert_eq!(due.pop_due(t(100), 10), vec![2, 1]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, u16),
        Remove(u8),
        Pop(u16, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u16>()).prop_map(|(k, a)| Op::Set(k, a)),
            any::<u8>().prop_map(Op::Remove),
            (any::<u16>(), any::<u8>()).prop_map(|(n, l)| Op::Pop(n, l)),
        ]
    }

    proptest! {
        /// Against a plain map scanned in full: same answers after any sequence.
        #[test]
        fn behaves_like_a_scanned_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut due = Due::new();
            let mut model: BTreeMap<u8, u16> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(k, a) => {
                        prop_assert_eq!(due.set(k, t(a.into())), model.insert(k, a).map(|a| t(a.into())));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(due.remove(&k), model.remove(&k).map(|a| t(a.into())));
                    }
                    Op::Pop(now, limit) => {
                        let mut expected: Vec<(u16, u8)> =
                            model.iter().filter(|(_, a)| **a <= now).map(|(k, a)| (*a, *k)).collect();
                        expected.sort_unstable();
                        expected.truncate(limit.into());
                        for (_, k) in &expected {
                            model.remove(k);
                        }
                        let keys: Vec<u8> = expected.into_iter().map(|(_, k)| k).collect();
                        prop_assert_eq!(due.pop_due(t(now.into()), limit.into()), keys);
                    }
                }
                prop_assert_eq!(due.len(), model.len());
                prop_assert_eq!(due.next_at(), model.values().min().map(|a| t((*a).into())));
            }
        }
    }
}
