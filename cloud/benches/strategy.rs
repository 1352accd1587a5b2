//! Strategy decisions per driver (run: `cargo bench -p rapport-cloud --bench strategy`).
//!
//! The shipped `config/strategies.toml` on realistic drivers: one `decide` per event kind,
//! `next_in_cell` (what the caller asks after each decision to file the driver in its time
//! index), recording into the history, a sweep over every cell of the matrix, and loading the
//! file. Prints the history's stored size (postcard) once. Figures go to the report, not into
//! assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use rapport_cloud::fleet::model::{
    Activity, CarMaturity, Category, Consents, DAY_MS, Layers, Lifecycle, ServiceMaturity,
};
use rapport_cloud::fleet::strategy::{
    Action, ContactHistory, Decision, DriverContext, Event, Outcome, Strategies,
};
use rapport_shared::Timestamp;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/strategies.toml");
const T0: u64 = 1_793_698_200_000;
const BOTH: Consents = Consents {
    partner_sharing: true,
    engagement: true,
};

fn layers(service: ServiceMaturity, activity: Activity) -> Layers {
    Layers {
        category: Category::Passenger,
        car: CarMaturity::Skilled,
        service,
        activity,
        lifecycle: Lifecycle::Retained,
    }
}

/// A driver contacted three times this month, once by the referral rule (so cadence, cap and
/// cooldown all do real work).
fn history(s: &Strategies) -> ContactHistory {
    let mut h = ContactHistory::new();
    let x = layers(ServiceMaturity::Mature, Activity::Active);
    for day in [0, 4, 9] {
        let now = Timestamp::from_millis(T0 + day * DAY_MS);
        let ctx = DriverContext {
            layers: x,
            consents: BOTH,
            history: &h,
        };
        let mut decisions = s.decide(&Event::InCell, &ctx, now);
        if decisions
            .iter()
            .all(|d| !matches!(d.outcome, Outcome::Act(_)))
        {
            // Another campaign of the month (a since removed rule, say).
            decisions = vec![Decision {
                rule: "spring_campaign".into(),
                engagement: true,
                outcome: Outcome::Act(Action::Nothing),
            }];
        }
        for d in decisions {
            h.record(&d, now);
        }
    }
    h
}

fn bench(c: &mut Criterion) {
    let s = Strategies::load(Path::new(FILE)).unwrap();
    let h = history(&s);
    let bytes = postcard::to_allocvec(&h).unwrap();
    eprintln!(
        "history with {} contacts and 2 rules: {} bytes (postcard)",
        h.engagements().len(),
        bytes.len()
    );
    let now = Timestamp::from_millis(T0 + 12 * DAY_MS);
    let mature_active = DriverContext {
        layers: layers(ServiceMaturity::Mature, Activity::Active),
        consents: BOTH,
        history: &h,
    };
    let mut g = c.benchmark_group("strategy");
    g.bench_function("decide in_cell (suppressed by cap/cooldown)", |b| {
        b.iter(|| s.decide(black_box(&Event::InCell), black_box(&mature_active), now))
    });
    let later = Timestamp::from_millis(T0 + 45 * DAY_MS);
    g.bench_function("decide in_cell (acts: campaign built)", |b| {
        b.iter(|| s.decide(black_box(&Event::InCell), black_box(&mature_active), later))
    });
    let churned = layers(ServiceMaturity::Mature, Activity::Churned);
    let change = Event::LayerChanged {
        from: Some(mature_active.layers),
        to: churned,
    };
    let churned_ctx = DriverContext {
        layers: churned,
        ..mature_active
    };
    g.bench_function("decide layer_changed (dealer call)", |b| {
        b.iter(|| s.decide(black_box(&change), black_box(&churned_ctx), later))
    });
    let due = Event::MaintenanceDue { item: "oil".into() };
    g.bench_function("decide maintenance_due (dealer task)", |b| {
        b.iter(|| s.decide(black_box(&due), black_box(&churned_ctx), now))
    });
    g.bench_function("next_in_cell", |b| {
        b.iter(|| s.next_in_cell(black_box(&mature_active), now))
    });
    let decisions = s.decide(&Event::InCell, &mature_active, later);
    g.bench_function("history record (acted campaign)", |b| {
        b.iter_batched_ref(
            || h.clone(),
            |h| h.record(black_box(&decisions[0]), later),
            criterion::BatchSize::SmallInput,
        )
    });
    let cells = Layers::every_cell();
    g.bench_function(
        "216 drivers: in_cell decide + next_in_cell, every cell",
        |b| {
            b.iter(|| {
                let mut n = 0usize;
                for x in &cells {
                    let ctx = DriverContext {
                        layers: *x,
                        ..mature_active
                    };
                    n += s.decide(&Event::InCell, &ctx, later).len();
                    n += usize::from(s.next_in_cell(&ctx, later).is_some());
                }
                n
            })
        },
    );
    let text = std::fs::read_to_string(FILE).unwrap();
    g.bench_function("load the default file (parse + check)", |b| {
        b.iter(|| Strategies::from_toml("strategies.toml", black_box(&text)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
