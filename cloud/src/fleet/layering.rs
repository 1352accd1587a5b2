//! The fleet's current layers: each vehicle's [`Layers`], a time index of when time alone
//! changes them next, and the layer matrix's counts kept up to date as they change.
//!
//! Owns [`Layering`] (sans-IO: every call takes `now`) and [`Matrix`]. Does not own the
//! rules ([`super::layers`]), the profiles (the caller passes them in, or answers a lookup
//! in [`Layering::tick`]), nor the timeline's storage: changes are returned, the caller
//! records them.
//!
//! Cost: [`Layering::update`] and each due vehicle in [`Layering::tick`] are O(log n); a tick
//! with nothing due is O(1); [`Layering::matrix`] is O(1). Nothing scans the fleet except
//! [`Layering::place_all`], the start-up path. Per vehicle it keeps the VIN and five one-byte
//! layers, plus the VIN and instant of its next change in the time index.

use std::collections::HashMap;

use rapport_shared::{Timestamp, Vin};
use serde::Serialize;

use super::layers::{LayerConfig, change, classify};
use super::model::{
    Activity, CarMaturity, Category, LayerChange, Layers, Profile, ServiceMaturity,
};
use super::schedule::Due;

const ACTIVITIES: usize = Activity::ALL.len();

/// The layer matrix: how many drivers sit in each cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Matrix {
    /// `service[s.index()][a.index()]`: maturity with the service × activity.
    pub service: [[u64; ACTIVITIES]; ServiceMaturity::ALL.len()],
    /// `car[c.index()][a.index()]`: maturity with the car × activity.
    pub car: [[u64; ACTIVITIES]; CarMaturity::ALL.len()],
}

impl Matrix {
    /// Drivers with this service maturity and activity.
    pub fn service_cell(&self, s: ServiceMaturity, a: Activity) -> u64 {
        self.service[s.index()][a.index()]
    }

    /// Drivers with this car maturity and activity.
    pub fn car_cell(&self, c: CarMaturity, a: Activity) -> u64 {
        self.car[c.index()][a.index()]
    }

    /// Every driver counted.
    pub fn total(&self) -> u64 {
        self.service.iter().flatten().sum()
    }

    fn add(&mut self, l: &Layers) {
        self.service[l.service.index()][l.activity.index()] += 1;
        self.car[l.car.index()][l.activity.index()] += 1;
    }

    fn sub(&mut self, l: &Layers) {
        let s = &mut self.service[l.service.index()][l.activity.index()];
        *s = s.saturating_sub(1);
        let c = &mut self.car[l.car.index()][l.activity.index()];
        *c = c.saturating_sub(1);
    }

    fn merge(&mut self, other: &Self) {
        for (row, other) in self.service.iter_mut().zip(&other.service) {
            for (cell, o) in row.iter_mut().zip(other) {
                *cell += o;
            }
        }
        for (row, other) in self.car.iter_mut().zip(&other.car) {
            for (cell, o) in row.iter_mut().zip(other) {
                *cell += o;
            }
        }
    }
}

/// Every vehicle's layers, when they next change with time, and the matrix's counts.
#[derive(Clone, Debug, Default)]
pub struct Layering {
    cfg: LayerConfig,
    current: HashMap<Vin, Layers>,
    due: Due<Vin>,
    /// One matrix per category, by `Category::index`.
    counts: [Matrix; Category::ALL.len()],
}

impl Layering {
    /// An empty fleet layered by `cfg` (validated by the caller).
    pub fn new(cfg: LayerConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// The thresholds in use.
    pub fn config(&self) -> &LayerConfig {
        &self.cfg
    }

    /// Forgets everyone and places every vehicle from scratch at `now` (the start-up path,
    /// from stored profiles; also after a change of thresholds). Returns how many vehicles
    /// are placed (a VIN given twice counts once: the last one wins).
    ///
    /// Records no [`LayerChange`]: a first placement is not a change, and the layers before
    /// a restart are the caller's (its timeline's last entry); a caller that wants the
    /// changes across a downtime compares those with [`Self::layers`] afterwards. A vehicle
    /// first seen later goes through [`Self::update`], which reports it with `from: None`.
    pub fn place_all<'a, I>(&mut self, items: I, now: Timestamp) -> usize
    where
        I: IntoIterator<Item = (Vin, Category, &'a Profile)>,
    {
        let items = items.into_iter();
        self.current.clear();
        self.counts = Default::default();
        self.current.reserve(items.size_hint().0);
        let mut next = Vec::with_capacity(items.size_hint().0);
        let mut duplicates = false;
        for (vin, category, profile) in items {
            let placed = classify(category, profile, now, &self.cfg);
            if let Some(old) = self.current.insert(vin, placed.layers) {
                self.counts[old.category.index()].sub(&old);
                duplicates = true;
            }
            self.counts[category.index()].add(&placed.layers);
            next.push((vin, placed.next_change));
        }
        if duplicates {
            self.due.clear();
            for (vin, at) in next {
                self.schedule(vin, at);
            }
        } else {
            self.due = next
                .into_iter()
                .filter_map(|(vin, at)| Some((vin, at?)))
                .collect();
        }
        self.current.len()
    }

    /// Re-places one vehicle after something happened to it (a record, an engagement, a
    /// registry change) and reschedules its next change. Returns the change, if any
    /// (`from: None` for a vehicle not placed before), dated `now`.
    pub fn update(
        &mut self,
        vin: Vin,
        category: Category,
        profile: &Profile,
        now: Timestamp,
    ) -> Option<LayerChange> {
        let placed = classify(category, profile, now, &self.cfg);
        let old = self.current.insert(vin, placed.layers);
        self.recount(old.as_ref(), &placed.layers);
        self.schedule(vin, placed.next_change);
        change(vin, old, placed.layers, profile, now, &self.cfg)
    }

    /// Processes the vehicles whose layers time alone changes at or before `now`, at most
    /// `limit` of them (the rest stay due for the next tick). Touches nothing else.
    ///
    /// `lookup` gives a due vehicle's category and current profile; `None` means the vehicle
    /// is gone, and it is removed (with no change reported). Each change is dated at the
    /// instant it happened, not at `now`: a late tick (after a downtime) reports every step
    /// on the way (active → declining → churned), in time order per vehicle.
    pub fn tick(
        &mut self,
        now: Timestamp,
        limit: usize,
        mut lookup: impl FnMut(&Vin) -> Option<(Category, Profile)>,
    ) -> Vec<LayerChange> {
        let due = self.due.pop_due_timed(now, limit);
        let mut changes = Vec::with_capacity(due.len());
        for (due_at, vin) in due {
            // Only placed vehicles are ever scheduled, so the lookup is for a known one.
            let Some((category, profile)) = lookup(&vin) else {
                self.remove(&vin);
                continue;
            };
            let Some(slot) = self.current.get_mut(&vin) else {
                continue;
            };
            let old = *slot;
            let (layers, next) = advance(
                &self.cfg,
                vin,
                category,
                &profile,
                old,
                due_at,
                now,
                &mut changes,
            );
            *slot = layers;
            self.recount(Some(&old), &layers);
            self.schedule(vin, next);
        }
        changes
    }

    /// Up to `limit` vehicles due at or before `now`, earliest first, left in place.
    pub fn peek_due(&self, now: Timestamp, limit: usize) -> Vec<Vin> {
        self.due.peek_due(now, limit)
    }

    /// Takes out up to `limit` vehicles due at or before `now`, each with the instant it was
    /// due at, earliest first (the caller advances each with [`advance`] and puts it back
    /// with [`Self::put`]).
    pub fn pop_due(&mut self, now: Timestamp, limit: usize) -> Vec<(Timestamp, Vin)> {
        self.due.pop_due_timed(now, limit)
    }

    /// Sets a vehicle's layers and next change as decided elsewhere (`None`: not placed),
    /// keeping the matrix's counts and the time index in step.
    pub fn put(&mut self, vin: Vin, layers: Option<Layers>, next_change: Option<Timestamp>) {
        match layers {
            Some(l) => {
                let old = self.current.insert(vin, l);
                self.recount(old.as_ref(), &l);
                self.schedule(vin, next_change);
            }
            None => {
                self.remove(&vin);
            }
        }
    }

    /// Forgets a vehicle; returns its last layers.
    pub fn remove(&mut self, vin: &Vin) -> Option<Layers> {
        let old = self.current.remove(vin)?;
        self.due.remove(vin);
        self.counts[old.category.index()].sub(&old);
        Some(old)
    }

    /// A vehicle's current layers.
    pub fn layers(&self, vin: &Vin) -> Option<Layers> {
        self.current.get(vin).copied()
    }

    /// When time alone next changes this vehicle's layers.
    pub fn next_change(&self, vin: &Vin) -> Option<Timestamp> {
        self.due.get(vin)
    }

    /// The layer matrix of one category, or of the whole fleet (`None`). O(1).
    pub fn matrix(&self, category: Option<Category>) -> Matrix {
        match category {
            Some(c) => self.counts[c.index()],
            None => {
                let mut all = Matrix::default();
                for m in &self.counts {
                    all.merge(m);
                }
                all
            }
        }
    }

    /// The earliest instant some vehicle is due: when the shell's next tick has work.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.due.next_at()
    }

    /// Vehicles waiting in the time index (those whose layers time alone still changes).
    pub fn due_len(&self) -> usize {
        self.due.len()
    }

    /// Vehicles placed.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// No vehicle placed.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Every vehicle with its layers, in no particular order (a full scan: for exports and
    /// checks, not for ticks).
    pub fn iter(&self) -> impl Iterator<Item = (&Vin, &Layers)> {
        self.current.iter()
    }

    fn recount(&mut self, old: Option<&Layers>, new: &Layers) {
        if old == Some(new) {
            return;
        }
        if let Some(old) = old {
            self.counts[old.category.index()].sub(old);
        }
        self.counts[new.category.index()].add(new);
    }

    fn schedule(&mut self, vin: Vin, at: Option<Timestamp>) {
        match at {
            Some(at) => {
                self.due.set(vin, at);
            }
            None => {
                self.due.remove(&vin);
            }
        }
    }
}

/// Moves one vehicle's layers through time from `due_at` (when it was due) to `now` with
/// the same profile: every change on the way is pushed to `changes`, dated at the instant it
/// happened (a late tick after a downtime reports active → declining → churned in order).
/// Returns the layers at `now` and the next instant time alone changes them.
#[allow(clippy::too_many_arguments)] // one vehicle's inputs, each a plain value
pub fn advance(
    cfg: &LayerConfig,
    vin: Vin,
    category: Category,
    profile: &Profile,
    old: Layers,
    due_at: Timestamp,
    now: Timestamp,
    changes: &mut Vec<LayerChange>,
) -> (Layers, Option<Timestamp>) {
    let mut at = due_at;
    let mut layers = old;
    let next = loop {
        let placed = classify(category, profile, at, cfg);
        if let Some(c) = change(vin, Some(layers), placed.layers, profile, at, cfg) {
            changes.push(c);
            layers = placed.layers;
        }
        match placed.next_change {
            // `next_change` is always after `at`, so this ends.
            Some(n) if n <= now && n > at => at = n,
            other => break other,
        }
    };
    (layers, next)
}

#[cfg(test)]
mod tests;
