#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::fleet::layers::classify;
use crate::fleet::model::Lifecycle;
use crate::fleet::test_time::{T0, days, ts};

fn vin(i: usize) -> Vin {
    format!("WVWZZZ1JZXW{i:06}").parse().unwrap()
}

/// A veteran (by distance), retained, mature driver who last engaged at `engaged`: only
/// activity and then lifecycle move with time.
fn seasoned(engaged: u64) -> Profile {
    Profile {
        owned_since: Some(ts(T0 - days(900))),
        odometer_m: 90_000_000,
        last_engagement: Some(ts(engaged)),
        prompt_actions: 10,
        bookings: 2,
        services: 3,
        last_seen: None,
    }
}

fn activity_of(l: Option<Layers>) -> Option<Activity> {
    l.map(|l| l.activity)
}

#[test]
fn time_travel_through_every_activity_then_back_on_engagement() {
    let v = vin(1);
    let mut profile = seasoned(T0);
    let mut layering = Layering::new(LayerConfig::default());
    let first = layering
        .update(v, Category::Passenger, &profile, ts(T0))
        .unwrap();
    assert_eq!(first.from, None);
    assert_eq!(first.to.activity, Activity::Active);
    assert_eq!(layering.next_due(), Some(ts(T0 + days(14))));

    let lookups = Cell::new(0);
    let lookup = |p: &Profile| {
        let p = p.clone();
        let lookups = &lookups;
        move |_: &Vin| {
            lookups.set(lookups.get() + 1);
            Some((Category::Passenger, p.clone()))
        }
    };

    // Nothing due: no work, not even a lookup, and the schedule is untouched.
    let changes = layering.tick(ts(T0 + days(14) - 1), usize::MAX, lookup(&profile));
    assert_eq!(changes, vec![]);
    assert_eq!(lookups.get(), 0);
    assert_eq!(layering.next_due(), Some(ts(T0 + days(14))));

    let steps = [
        (
            14,
            Activity::Active,
            Activity::Declining,
            "no engagement for 14 days, declining after 14",
        ),
        (
            45,
            Activity::Declining,
            Activity::Churned,
            "no engagement for 45 days, churned after 45",
        ),
        (
            120,
            Activity::Churned,
            Activity::Dormant,
            "no engagement for 120 days, dormant after 120",
        ),
    ];
    for (day, from, to, why) in steps {
        let at = ts(T0 + days(day));
        let changes = layering.tick(at, usize::MAX, lookup(&profile));
        assert_eq!(changes.len(), 1, "day {day}: {changes:?}");
        let c = &changes[0];
        assert_eq!((c.vin, c.at), (v, at));
        assert_eq!(activity_of(c.from), Some(from));
        assert_eq!(c.to.activity, to);
        assert_eq!(c.why, format!("activity {from} → {to}: {why}"));
        assert_eq!(activity_of(layering.layers(&v)), Some(to));
        // Ticking again at the same instant finds nothing.
        assert_eq!(layering.tick(at, usize::MAX, lookup(&profile)), vec![]);
    }
    let lapsed = layering.tick(ts(T0 + days(180)), usize::MAX, lookup(&profile));
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0].to.lifecycle, Lifecycle::Lapsed);
    assert_eq!(
        lapsed[0].why,
        "lifecycle retained → lapsed: no engagement for 180 days, lapsed after 180"
    );
    // Veteran, dormant, lapsed: time alone changes nothing any more.
    assert_eq!(layering.next_due(), None);
    assert_eq!(layering.due_len(), 0);
    assert_eq!(lookups.get(), 4, "one lookup per due change");

    // An engagement brings the driver back and reschedules.
    let back = T0 + days(200);
    profile.last_engagement = Some(ts(back));
    profile.prompt_actions += 1;
    let c = layering
        .update(v, Category::Passenger, &profile, ts(back))
        .unwrap();
    assert_eq!(activity_of(c.from), Some(Activity::Dormant));
    assert_eq!(c.to.activity, Activity::Active);
    assert_eq!(c.to.lifecycle, Lifecycle::Retained);
    assert_eq!(c.at, ts(back));
    assert!(
        c.why
            .contains("activity dormant → active: engaged 0 days ago, active below 14"),
        "{}",
        c.why
    );
    assert_eq!(layering.next_due(), Some(ts(back + days(14))));
    // The same profile again is no change.
    assert_eq!(
        layering.update(v, Category::Passenger, &profile, ts(back + 1)),
        None
    );
}

#[test]
fn a_late_tick_reports_every_step_at_its_own_instant() {
    let v = vin(2);
    let profile = seasoned(T0);
    let mut layering = Layering::new(LayerConfig::default());
    layering.update(v, Category::Commercial, &profile, ts(T0));
    let changes = layering.tick(ts(T0 + days(130)), usize::MAX, |_| {
        Some((Category::Commercial, profile.clone()))
    });
    let steps: Vec<_> = changes.iter().map(|c| (c.at, c.to.activity)).collect();
    assert_eq!(
        steps,
        [
            (ts(T0 + days(14)), Activity::Declining),
            (ts(T0 + days(45)), Activity::Churned),
            (ts(T0 + days(120)), Activity::Dormant),
        ]
    );
    assert_eq!(changes[1].from, Some(changes[0].to), "a chain");
    assert_eq!(layering.next_due(), Some(ts(T0 + days(180))));
    let m = layering.matrix(Some(Category::Commercial));
    assert_eq!(
        m.service_cell(ServiceMaturity::Mature, Activity::Dormant),
        1
    );
    assert_eq!(m.total(), 1);
}

#[test]
fn tick_respects_its_limit_and_drops_vanished_vehicles() {
    let mut layering = Layering::new(LayerConfig::default());
    let mut profiles = HashMap::new();
    for i in 0..3 {
        let p = seasoned(T0 + i as u64);
        layering.update(vin(i), Category::Passenger, &p, ts(T0));
        profiles.insert(vin(i), p);
    }
    profiles.remove(&vin(1));
    let lookup = |v: &Vin| profiles.get(v).map(|p| (Category::Passenger, p.clone()));
    let at = ts(T0 + days(15));
    let first = layering.tick(at, 2, lookup);
    assert_eq!(first.len(), 1, "vin 1 is gone: removed, no change");
    assert_eq!(first[0].vin, vin(0));
    assert_eq!(layering.layers(&vin(1)), None);
    assert_eq!(layering.len(), 2);
    let second = layering.tick(at, 2, lookup);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].vin, vin(2), "the one left over by the limit");
    assert_eq!(layering.matrix(None).total(), 2);
}

#[test]
fn place_all_from_scratch_matches_one_by_one_updates() {
    let cfg = LayerConfig::default();
    let profiles: Vec<(Vin, Category, Profile)> = (0..200)
        .map(|i| {
            let p = Profile {
                owned_since: Some(ts(T0 - days(i as u64 * 7))),
                odometer_m: i as u64 * 400_000,
                last_engagement: (i % 3 != 0).then(|| ts(T0 - days(i as u64))),
                prompt_actions: (i % 25) as u32,
                bookings: (i % 4) as u32,
                services: (i % 5) as u32,
                last_seen: None,
            };
            let cat = if i % 2 == 0 {
                Category::Passenger
            } else {
                Category::Commercial
            };
            (vin(i), cat, p)
        })
        .collect();
    let mut bulk = Layering::new(cfg.clone());
    let placed = bulk.place_all(profiles.iter().map(|(v, c, p)| (*v, *c, p)), ts(T0));
    assert_eq!(placed, 200);
    let mut single = Layering::new(cfg.clone());
    for (v, c, p) in &profiles {
        single.update(*v, *c, p, ts(T0));
    }
    for (v, c, p) in &profiles {
        let expected = classify(*c, p, ts(T0), &cfg);
        assert_eq!(bulk.layers(v), Some(expected.layers));
        assert_eq!(bulk.next_change(v), expected.next_change);
        assert_eq!(single.next_change(v), expected.next_change);
    }
    for c in [None, Some(Category::Passenger), Some(Category::Commercial)] {
        assert_eq!(bulk.matrix(c), single.matrix(c));
    }
    assert_eq!(bulk.matrix(None).total(), 200);
    assert_eq!(bulk.due_len(), single.due_len());

    // Placing again forgets everyone else; a VIN given twice counts once, the last wins.
    let p = seasoned(T0);
    let old = seasoned(T0 - days(50));
    let n = bulk.place_all(
        [
            (vin(0), Category::Commercial, &old),
            (vin(0), Category::Passenger, &p),
        ],
        ts(T0),
    );
    assert_eq!((n, bulk.len()), (1, 1));
    assert_eq!(bulk.layers(&vin(0)).unwrap().category, Category::Passenger);
    assert_eq!(bulk.next_change(&vin(0)), Some(ts(T0 + days(14))));
    assert_eq!(bulk.matrix(Some(Category::Commercial)).total(), 0);
    assert_eq!(bulk.matrix(None).total(), 1);
}

#[test]
fn remove_forgets_layers_schedule_and_counts() {
    let mut layering = Layering::new(LayerConfig::default());
    layering.update(vin(7), Category::Passenger, &seasoned(T0), ts(T0));
    assert_eq!(layering.remove(&vin(7)).unwrap().activity, Activity::Active);
    assert_eq!(layering.remove(&vin(7)), None);
    assert!(layering.is_empty());
    assert_eq!(layering.next_due(), None);
    assert_eq!(layering.matrix(None), Matrix::default());
}

/// Counts recomputed by scanning every vehicle.
fn recount(layering: &Layering, category: Option<Category>) -> Matrix {
    let mut m = Matrix::default();
    for (_, l) in layering.iter() {
        if category.is_none_or(|c| c == l.category) {
            m.add(l);
        }
    }
    m
}

#[derive(Debug, Clone)]
enum Op {
    Update(usize, bool, Profile),
    Engage(usize),
    Advance(u64, usize),
    Remove(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..12, any::<bool>(), crate::fleet::layers::tests::any_profile())
            .prop_map(|(i, c, p)| Op::Update(i, c, p)),
        2 => (0usize..12).prop_map(Op::Engage),
        4 => (0u64..days(90), 1usize..6).prop_map(|(d, l)| Op::Advance(d, l)),
        1 => (0usize..12).prop_map(Op::Remove),
    ]
}

proptest! {
    /// After any mix of updates, engagements, ticks (with small limits) and removals, the
    /// matrix equals a recount; and once every due vehicle is processed, every vehicle's
    /// layers and next change are exactly what classifying it now gives (the time index
    /// missed nothing and scheduled nothing wrong).
    #[test]
    fn matrix_and_schedule_stay_exact(ops in proptest::collection::vec(op(), 1..60)) {
        let cfg = LayerConfig::default();
        let mut layering = Layering::new(cfg.clone());
        let mut store: HashMap<Vin, (Category, Profile)> = HashMap::new();
        let mut now = T0 - days(10);
        for op in ops {
            match op {
                Op::Update(i, commercial, p) => {
                    let c = if commercial { Category::Commercial } else { Category::Passenger };
                    let change = layering.update(vin(i), c, &p, ts(now));
                    let had = store.insert(vin(i), (c, p.clone()));
                    if had.is_none() {
                        prop_assert!(change.is_some_and(|c| c.from.is_none()));
                    }
                }
                Op::Engage(i) => {
                    if let Some((c, p)) = store.get_mut(&vin(i)) {
                        p.last_engagement = Some(ts(now));
                        p.prompt_actions += 1;
                        layering.update(vin(i), *c, p, ts(now));
                    }
                }
                Op::Advance(d, limit) => {
                    now += d;
                    let changes = layering.tick(ts(now), limit, |v| store.get(v).cloned());
                    for c in &changes {
                        prop_assert!(c.at <= ts(now));
                        prop_assert_ne!(c.from, Some(c.to));
                    }
                }
                Op::Remove(i) => {
                    store.remove(&vin(i));
                    layering.remove(&vin(i));
                }
            }
            for c in [None, Some(Category::Passenger), Some(Category::Commercial)] {
                prop_assert_eq!(layering.matrix(c), recount(&layering, c));
            }
        }
        layering.tick(ts(now), usize::MAX, |v| store.get(v).cloned());
        prop_assert_eq!(layering.len(), store.len());
        for (v, (c, p)) in &store {
            let expected = classify(*c, p, ts(now), &cfg);
            prop_assert_eq!(layering.layers(v), Some(expected.layers));
            prop_assert_eq!(layering.next_change(v), expected.next_change);
        }
    }
}
