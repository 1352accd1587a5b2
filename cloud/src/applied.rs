//! [`AppliedSet`]: which sequence numbers of one vehicle have been applied, so each record is
//! applied once however often, and in whatever order, the broker delivers it.
//!
//! Owns the set and its bound; not where it is stored (the vehicle's state, [`crate::store`])
//! nor what applying a record does ([`crate::vehicle`]).
//!
//! The set is a contiguous high-water mark (every seq `1..=through` applied) plus the applied
//! ranges above it. Agents send in order, so the ranges are usually none; a batch that arrives
//! after its successor opens one gap until it comes. Ranges (not single numbers) keep the set
//! small when a gap never closes (the agent's outbox dropped records when full): the range above
//! a permanent gap grows in place. The number of gaps is bounded ([`MAX_GAPS`]); past it, the
//! lowest gap is given up: its seqs count as applied and a record arriving for one later is
//! skipped as a duplicate. [`Inserted::abandoned`] reports how many were given up.

use serde::{Deserialize, Serialize};

/// Most gaps kept open per vehicle; past this the lowest is given up.
pub const MAX_GAPS: usize = 1024;

/// The applied sequence numbers of one vehicle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedSet {
    /// Every seq in `1..=through` is applied.
    through: u64,
    /// Applied ranges `(first, last)` (inclusive) above `through + 1`: sorted, disjoint and
    /// not adjacent to each other or to `through`.
    above: Vec<(u64, u64)>,
}

/// What [`AppliedSet::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inserted {
    /// The seq was not applied before: apply the record.
    pub new: bool,
    /// Seqs given up on to keep the gaps bounded (now counted as applied, never applied).
    pub abandoned: u64,
}

impl AppliedSet {
    /// Every seq up to and including this one is applied.
    pub fn through(&self) -> u64 {
        self.through
    }

    /// The highest applied seq (0 when none).
    pub fn max(&self) -> u64 {
        self.above.last().map_or(self.through, |r| r.1)
    }

    /// Open gaps: runs of missing seqs below [`AppliedSet::max`].
    pub fn gaps(&self) -> usize {
        self.above.len()
    }

    /// Seqs missing below [`AppliedSet::max`].
    pub fn missing(&self) -> u64 {
        let mut prev = self.through;
        let mut missing = 0u64;
        for &(first, last) in &self.above {
            missing = missing.saturating_add(first - prev - 1);
            prev = last;
        }
        missing
    }

    /// Whether `seq` is applied. Seq 0 never exists on the wire and counts as applied.
    pub fn contains(&self, seq: u64) -> bool {
        if seq <= self.through {
            return true;
        }
        let i = self.above.partition_point(|r| r.1 < seq);
        self.above.get(i).is_some_and(|r| r.0 <= seq)
    }

    /// Marks `seq` applied; says whether it was new.
    pub fn insert(&mut self, seq: u64) -> Inserted {
        let mut done = Inserted {
            new: false,
            abandoned: 0,
        };
        if self.contains(seq) {
            return done;
        }
        done.new = true;
        // seq > through, so through + 1 cannot overflow.
        if seq == self.through + 1 {
            self.through = seq;
            self.absorb();
            return done;
        }
        let i = self.above.partition_point(|r| r.1 < seq);
        let joins_prev = i > 0 && self.above.get(i - 1).is_some_and(|p| p.1 + 1 == seq);
        let joins_next = self.above.get(i).is_some_and(|n| seq + 1 == n.0);
        match (joins_prev, joins_next) {
            (true, true) => {
                let next_last = self.above.get(i).map_or(seq, |n| n.1);
                if let Some(p) = self.above.get_mut(i - 1) {
                    p.1 = next_last;
                }
                self.above.remove(i);
            }
            (true, false) => {
                if let Some(p) = self.above.get_mut(i - 1) {
                    p.1 = seq;
                }
            }
            (false, true) => {
                if let Some(n) = self.above.get_mut(i) {
                    n.0 = seq;
                }
            }
            (false, false) => self.above.insert(i, (seq, seq)),
        }
        while self.above.len() > MAX_GAPS {
            let (first, last) = self.above.remove(0);
            done.abandoned = done.abandoned.saturating_add(first - self.through - 1);
            self.through = last;
            self.absorb();
        }
        done
    }

    /// Moves ranges that now touch `through` into it.
    fn absorb(&mut self) {
        while let Some(&(first, last)) = self.above.first() {
            if first != self.through.saturating_add(1) {
                break;
            }
            self.through = last;
            self.above.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn in_order_stays_a_high_water_mark() {
        let mut s = AppliedSet::default();
        for seq in 1..=1000 {
            assert!(s.insert(seq).new);
        }
        assert_eq!(
            (s.through(), s.max(), s.gaps(), s.missing()),
            (1000, 1000, 0, 0)
        );
        assert!(!s.insert(500).new);
        assert!(!s.insert(1000).new);
    }

    #[test]
    fn a_late_batch_closes_its_gap() {
        let mut s = AppliedSet::default();
        for seq in (1..=10).chain(21..=30) {
            s.insert(seq);
        }
        assert_eq!(
            (s.through(), s.max(), s.gaps(), s.missing()),
            (10, 30, 1, 10)
        );
        assert!(s.contains(25) && !s.contains(15));
        for seq in (11..=20).rev() {
            assert!(s.insert(seq).new);
        }
        assert_eq!((s.through(), s.max(), s.gaps()), (30, 30, 0));
    }

    #[test]
    fn a_permanent_gap_costs_one_range() {
        let mut s = AppliedSet::default();
        s.insert(1);
        for seq in 100..100_000 {
            s.insert(seq);
        }
        assert_eq!(s.gaps(), 1);
        assert_eq!(s.missing(), 98);
        // The value stays tiny.
        assert!(postcard::to_allocvec(&s).unwrap().len() < 16);
    }

    #[test]
    fn gaps_are_bounded_and_the_lowest_is_given_up() {
        let mut s = AppliedSet::default();
        // Every even seq: each one opens a gap below it.
        let mut abandoned = 0;
        for i in 1..=(MAX_GAPS as u64 + 10) {
            abandoned += s.insert(2 * i).abandoned;
        }
        assert_eq!(s.gaps(), MAX_GAPS);
        // 10 gaps of one seq each were given up (seqs 1, 3, ..., 19) and 20 absorbed.
        assert_eq!(abandoned, 10);
        assert_eq!(s.through(), 20);
        assert!(!s.insert(3).new, "a given-up seq is skipped");
        assert!(s.insert(21).new);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut s = AppliedSet::default();
        assert!(s.insert(u64::MAX).new);
        assert!(s.insert(u64::MAX - 1).new);
        assert!(!s.insert(u64::MAX).new);
        assert_eq!(s.max(), u64::MAX);
        assert!(s.contains(0));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(seqs in proptest::collection::vec(1u64..300, 0..400)) {
            let mut s = AppliedSet::default();
            let mut model = BTreeSet::new();
            for seq in seqs {
                let new = model.insert(seq);
                prop_assert_eq!(s.insert(seq).new, new);
                prop_assert_eq!(s.max(), model.last().copied().unwrap_or(0));
            }
            for seq in 1..300 {
                prop_assert_eq!(s.contains(seq), model.contains(&seq));
            }
            let through = (1..).take_while(|q| model.contains(q)).last().unwrap_or(0);
            prop_assert_eq!(s.through(), through);
            let ranges = s.above.clone();
            for w in ranges.windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "ranges sorted, disjoint, apart");
            }
        }
    }
}
