#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::fleet::test_time::{T0, days, ts};

fn cfg() -> LayerConfig {
    LayerConfig::default()
}

/// A driver who took the car `owned` ms before `T0`, engaged `idle` ms before `T0`.
fn profile(owned: u64, idle: Option<u64>, km: u64) -> Profile {
    Profile {
        owned_since: Some(ts(T0 - owned)),
        odometer_m: km * 1000,
        last_engagement: idle.map(|i| ts(T0 - i)),
        ..Profile::default()
    }
}

fn at_t0(p: &Profile) -> Placement {
    classify(Category::Passenger, p, ts(T0), &cfg())
}

#[test]
fn defaults_are_the_documented_ones_and_valid() {
    let c = cfg();
    assert_eq!(
        (c.car.novice_until_days, c.car.novice_until_km),
        (180, 10_000)
    );
    assert_eq!(
        (c.car.veteran_from_days, c.car.veteran_from_km),
        (1095, 60_000)
    );
    assert_eq!(
        (
            c.service.prompt_action_points,
            c.service.booking_points,
            c.service.service_points,
            c.service.growing_from,
            c.service.mature_from
        ),
        (1, 3, 5, 5, 20)
    );
    assert_eq!(
        (
            c.activity.declining_after_days,
            c.activity.churned_after_days,
            c.activity.dormant_after_days
        ),
        (14, 45, 120)
    );
    assert_eq!(
        (
            c.lifecycle.lapsed_after_days,
            c.lifecycle.retained_after_days
        ),
        (180, 365)
    );
    assert_eq!(c.problems("layers"), vec![]);
    // An empty table and a partial one fill in the defaults.
    assert_eq!(toml::from_str::<LayerConfig>("").unwrap(), c);
    let partial: LayerConfig = toml::from_str("[activity]\ndeclining_after_days = 7\n").unwrap();
    assert_eq!(partial.activity.declining_after_days, 7);
    assert_eq!(partial.activity.churned_after_days, 45);
}

#[test]
fn unknown_keys_are_refused() {
    let err = toml::from_str::<LayerConfig>("[activity]\ndeclinig_after_days = 7\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("declinig_after_days"), "{err}");
    assert!(toml::from_str::<LayerConfig>("[actvity]\n").is_err());
}

fn paths(c: &LayerConfig) -> Vec<String> {
    c.problems("layers").into_iter().map(|p| p.path).collect()
}

#[test]
fn validation_names_every_problem_by_key_path() {
    let mut c = cfg();
    c.activity.churned_after_days = 14; // not above declining (14)
    c.activity.dormant_after_days = 10; // not above churned
    assert_eq!(
        paths(&c),
        [
            "layers.activity.churned_after_days",
            "layers.activity.dormant_after_days"
        ]
    );
    let msg = c.problems("layers")[0].to_string();
    assert!(
        msg.contains("layers.activity.churned_after_days")
            && msg.contains("activity.declining_after_days"),
        "{msg}"
    );

    let mut c = cfg();
    c.car.veteran_from_days = 100;
    c.car.veteran_from_km = 10_000;
    c.service.mature_from = 5;
    assert_eq!(
        paths(&c),
        [
            "layers.car.veteran_from_days",
            "layers.car.veteran_from_km",
            "layers.service.mature_from"
        ]
    );

    let mut c = cfg();
    c.activity.declining_after_days = 0;
    c.lifecycle.lapsed_after_days = 86_400_000;
    c.service.growing_from = 0;
    assert_eq!(
        paths(&c),
        [
            "layers.activity.declining_after_days",
            "layers.lifecycle.lapsed_after_days",
            "layers.service.growing_from"
        ]
    );

    let mut c = cfg();
    c.service.prompt_action_points = 0;
    c.service.booking_points = 0;
    c.service.service_points = 0;
    assert_eq!(paths(&c), ["layers.service"]);
}

#[test]
fn car_maturity_boundaries() {
    let car = |owned, km| at_t0(&profile(owned, Some(0), km)).layers.car;
    // Novice needs both: owned < 180 days and < 10,000 km.
    assert_eq!(car(days(180) - 1, 9_999), CarMaturity::Novice);
    assert_eq!(car(days(180), 0), CarMaturity::Skilled);
    assert_eq!(car(0, 10_000), CarMaturity::Skilled);
    let just_under = Profile {
        odometer_m: 9_999_999,
        ..profile(0, Some(0), 0)
    };
    assert_eq!(at_t0(&just_under).layers.car, CarMaturity::Novice);
    // Veteran from either: 3 years or 60,000 km.
    assert_eq!(car(days(1095) - 1, 59_999), CarMaturity::Skilled);
    assert_eq!(car(days(1095), 0), CarMaturity::Veteran);
    assert_eq!(car(0, 60_000), CarMaturity::Veteran);
}

#[test]
fn service_maturity_boundaries() {
    let service = |prompt_actions, bookings, services| {
        let p = Profile {
            prompt_actions,
            bookings,
            services,
            ..profile(0, Some(0), 0)
        };
        at_t0(&p).layers.service
    };
    assert_eq!(service(4, 0, 0), ServiceMaturity::Junior);
    assert_eq!(service(5, 0, 0), ServiceMaturity::Growing);
    assert_eq!(service(1, 1, 0), ServiceMaturity::Junior, "score 4");
    assert_eq!(service(2, 1, 0), ServiceMaturity::Growing, "score 5");
    assert_eq!(service(0, 0, 1), ServiceMaturity::Growing, "score 5");
    assert_eq!(service(4, 0, 3), ServiceMaturity::Growing, "score 19");
    assert_eq!(service(0, 0, 4), ServiceMaturity::Mature, "score 20");
    assert_eq!(service(2, 1, 3), ServiceMaturity::Mature, "score 20");
    assert_eq!(
        service(u32::MAX, u32::MAX, u32::MAX),
        ServiceMaturity::Mature
    );
}

#[test]
fn activity_boundaries() {
    let activity = |idle| at_t0(&profile(days(1000), Some(idle), 0)).layers.activity;
    assert_eq!(activity(0), Activity::Active);
    assert_eq!(activity(days(14) - 1), Activity::Active);
    assert_eq!(activity(days(14)), Activity::Declining);
    assert_eq!(activity(days(45) - 1), Activity::Declining);
    assert_eq!(activity(days(45)), Activity::Churned);
    assert_eq!(activity(days(120) - 1), Activity::Churned);
    assert_eq!(activity(days(120)), Activity::Dormant);
    // No engagement: counted from the ownership start.
    let never = |owned| at_t0(&profile(owned, None, 0)).layers.activity;
    assert_eq!(never(days(14) - 1), Activity::Active);
    assert_eq!(never(days(14)), Activity::Declining);
    // An engagement in the future (a car clock ahead) is "just now".
    let ahead = Profile {
        last_engagement: Some(ts(T0 + days(3))),
        ..profile(days(1000), None, 0)
    };
    assert_eq!(at_t0(&ahead).layers.activity, Activity::Active);
}

#[test]
fn lifecycle_boundaries() {
    let life = |owned, idle| at_t0(&profile(owned, Some(idle), 0)).layers.lifecycle;
    assert_eq!(life(days(365) - 1, 0), Lifecycle::New);
    assert_eq!(life(days(365), 0), Lifecycle::Retained);
    assert_eq!(life(days(1000), days(180) - 1), Lifecycle::Retained);
    assert_eq!(life(days(1000), days(180)), Lifecycle::Lapsed);
    // Lapsed wins over new.
    assert_eq!(
        at_t0(&profile(days(200), None, 0)).layers.lifecycle,
        Lifecycle::Lapsed
    );
}

#[test]
fn next_change_is_the_earliest_axis_change() {
    // Owned 170 days, engaged 10 days ago: declining in 4 days comes before skilled in 10.
    let p = profile(days(170), Some(days(10)), 100);
    assert_eq!(at_t0(&p).next_change, Some(ts(T0 + days(4))));
    // Owned 176 days: skilled in 4 days, declining in 4 days too.
    let p = profile(days(176), Some(days(10)), 100);
    assert_eq!(at_t0(&p).next_change, Some(ts(T0 + days(4))));
    // Retained, churned: dormant in 20 days.
    let p = profile(days(800), Some(days(100)), 100);
    assert_eq!(at_t0(&p).next_change, Some(ts(T0 + days(20))));
    // Dormant, retained: lapsed in 10 days.
    let p = profile(days(800), Some(days(170)), 100);
    assert_eq!(at_t0(&p).next_change, Some(ts(T0 + days(10))));
    // New but lapsed: skilled (veteran later) changes the car axis.
    let p = profile(days(200), None, 100);
    assert_eq!(at_t0(&p).next_change, Some(ts(T0 + days(1095 - 200))));
}

#[test]
fn time_alone_changes_nothing_for_a_veteran_dormant_lapsed_driver() {
    let p = profile(days(2000), Some(days(400)), 100_000);
    let placed = at_t0(&p);
    assert_eq!(
        (
            placed.layers.car,
            placed.layers.activity,
            placed.layers.lifecycle
        ),
        (CarMaturity::Veteran, Activity::Dormant, Lifecycle::Lapsed)
    );
    assert_eq!(placed.next_change, None);
}

#[test]
fn without_any_date_time_changes_nothing() {
    let p = Profile {
        odometer_m: 5_000_000,
        ..Profile::default()
    };
    let placed = at_t0(&p);
    assert_eq!(
        (
            placed.layers.car,
            placed.layers.activity,
            placed.layers.lifecycle
        ),
        (CarMaturity::Novice, Activity::Active, Lifecycle::New)
    );
    assert_eq!(placed.next_change, None);
    // An engagement alone is enough to count from.
    let p = Profile {
        last_engagement: Some(ts(T0)),
        ..p
    };
    assert_eq!(at_t0(&p).next_change, Some(ts(T0 + days(14))));
}

#[test]
fn explain_names_the_changed_axes_with_figures_and_thresholds() {
    let p = profile(days(800), Some(days(45)), 70_000);
    let placed = at_t0(&p);
    let from = Layers {
        activity: Activity::Declining,
        ..placed.layers
    };
    assert_eq!(
        explain(Some(from), placed.layers, &p, ts(T0), &cfg()),
        "activity declining → churned: no engagement for 45 days, churned after 45"
    );

    let from = Layers {
        activity: Activity::Declining,
        lifecycle: Lifecycle::New,
        service: ServiceMaturity::Growing,
        ..placed.layers
    };
    let why = explain(Some(from), placed.layers, &p, ts(T0), &cfg());
    assert_eq!(
        why,
        "service growing → junior: score 0 (0 prompt actions, 0 bookings, 0 services), \
         junior below 5; activity declining → churned: no engagement for 45 days, churned \
         after 45; lifecycle new → retained: owned 800 days, retained from 365 days"
    );

    let first = explain(None, placed.layers, &p, ts(T0), &cfg());
    assert!(first.starts_with("first placement: category passenger; car veteran: owned 800 days, 70000 km, veteran from 1095 days or 60000 km;"), "{first}");
    assert_eq!(
        explain(Some(placed.layers), placed.layers, &p, ts(T0), &cfg()),
        ""
    );
    assert!(
        change(
            "WP0ZZZ99ZTS392124".parse().unwrap(),
            Some(placed.layers),
            placed.layers,
            &p,
            ts(T0),
            &cfg()
        )
        .is_none()
    );
}

/// A valid config with random thresholds.
fn config() -> impl Strategy<Value = LayerConfig> {
    (
        (1u32..400, 1u32..400, 1u32..50_000, 1u32..50_000),
        (0u32..4, 0u32..6, 1u32..8, 1u32..30, 1u32..30),
        (1u32..60, 1u32..60, 1u32..200),
        (1u32..400, 1u32..800),
    )
        .prop_map(|(car, svc, act, life)| LayerConfig {
            car: CarThresholds {
                novice_until_days: car.0,
                veteran_from_days: car.0 + car.1,
                novice_until_km: car.2,
                veteran_from_km: car.2 + car.3,
            },
            service: ServiceThresholds {
                prompt_action_points: svc.0,
                booking_points: svc.1,
                service_points: svc.2,
                growing_from: svc.3,
                mature_from: svc.3 + svc.4,
            },
            activity: ActivityThresholds {
                declining_after_days: act.0,
                churned_after_days: act.0 + act.1,
                dormant_after_days: act.0 + act.1 + act.2,
            },
            lifecycle: LifecycleThresholds {
                lapsed_after_days: life.0,
                retained_after_days: life.1,
            },
        })
}

/// Profiles around `T0`: dates up to 5 years before and a few days after (clock skew).
pub(crate) fn any_profile() -> impl Strategy<Value = Profile> {
    let date = proptest::option::weighted(0.9, (T0 - days(1800))..(T0 + days(5)));
    (
        date.clone(),
        date,
        0u64..150_000_000,
        0u32..30,
        0u32..8,
        0u32..6,
    )
        .prop_map(|(since, eng, odo, pa, b, s)| Profile {
            owned_since: since.map(ts),
            odometer_m: odo,
            last_engagement: eng.map(ts),
            prompt_actions: pa,
            bookings: b,
            services: s,
            last_seen: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// `next_change` is exactly the first instant time alone changes something: nothing
    /// changes before it (at its last millisecond, nor at a random point in between), and
    /// something changes there. `None`: nothing ever changes.
    #[test]
    fn next_change_is_exact(
        p in any_profile(),
        cfg in prop_oneof![Just(LayerConfig::default()), config()],
        now in (T0 - days(100))..(T0 + days(100)),
        frac in 0.0f64..1.0,
        commercial in any::<bool>(),
    ) {
        prop_assert_eq!(cfg.problems("layers"), vec![]);
        let cat = if commercial { Category::Commercial } else { Category::Passenger };
        let here = classify(cat, &p, ts(now), &cfg);
        match here.next_change {
            Some(t) => {
                let t = t.as_millis();
                prop_assert!(t > now);
                prop_assert_eq!(classify(cat, &p, ts(t - 1), &cfg).layers, here.layers);
                let between = now + ((t - 1 - now) as f64 * frac) as u64;
                prop_assert_eq!(classify(cat, &p, ts(between), &cfg).layers, here.layers);
                let there = classify(cat, &p, ts(t), &cfg);
                prop_assert_ne!(there.layers, here.layers);
                prop_assert!(there.next_change.is_none_or(|n| n.as_millis() > t));
            }
            None => {
                for later in [now + 1, now + days(3650), now + days(36_500), u64::MAX] {
                    prop_assert_eq!(classify(cat, &p, ts(later), &cfg).layers, here.layers);
                }
            }
        }
    }
}
