//! Re-layering cost at fleet scale (issue 6): 1,000,000 synthetic drivers placed from
//! scratch (target ≤ 2 s), and one tick in which 1 % of them (10,000) are due and change
//! layer (target ≤ 50 ms). Also: one update after an event, a tick with nothing due, and
//! the memory the layering keeps per vehicle.
//!
//! Run: `cargo bench -p rapport-cloud --bench layering`. Figures go to the report, not into
//! assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use rapport_cloud::fleet::layering::Layering;
use rapport_cloud::fleet::layers::{LayerConfig, classify, explain};
use rapport_cloud::fleet::model::{Activity, Category, DAY_MS, Layers, Profile};
use rapport_shared::{Timestamp, Vin};

/// Resident memory of this process, bytes (Linux; 0 elsewhere). `unsafe_code` is forbidden
/// in the workspace, so no counting allocator: the RSS difference around building the
/// layering is the figure (its large tables are fresh pages).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of this thread so far, ns (Linux's schedstat; 0 elsewhere). The dev box is
/// shared, so wall time (criterion's figure) includes waiting for a core; CPU time does not.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Mean CPU time of `run` over `n` runs, ms, each after an untimed `setup`.
fn cpu_ms<S, R>(n: u32, mut setup: impl FnMut() -> S, mut run: impl FnMut(&mut S) -> R) -> f64 {
    let mut total = 0;
    for _ in 0..n {
        let mut state = setup();
        let start = cpu_ns();
        black_box(run(&mut state));
        total += cpu_ns() - start;
    }
    total as f64 / f64::from(n) / 1e6
}

const DRIVERS: usize = 1_000_000;
const DUE: usize = DRIVERS / 100;
/// 2026-01-01 00:00 UTC.
const NOW: u64 = 1_767_225_600_000;

/// xorshift64*: deterministic synthetic fleets.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A fleet spread over every cell: owned up to 5 years, engaged up to 300 days ago (one in
/// ten never), up to 150,000 km, a few prompts, bookings and services.
fn fleet() -> Vec<(Vin, Category, Profile)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..DRIVERS)
        .map(|i| {
            let vin: Vin = format!("WVWZZZ1JZXW{i:06}").parse().unwrap();
            let owned = rng.below(5 * 365 * DAY_MS);
            let engaged = rng.below(300 * DAY_MS).min(owned);
            let profile = Profile {
                owned_since: Some(Timestamp::from_millis(NOW - owned)),
                odometer_m: rng.below(150_000_000),
                last_engagement: (rng.below(10) != 0)
                    .then(|| Timestamp::from_millis(NOW - engaged)),
                prompt_actions: rng.below(30) as u32,
                bookings: rng.below(5) as u32,
                services: rng.below(5) as u32,
                last_seen: None,
            };
            let cat = if rng.below(4) == 0 {
                Category::Commercial
            } else {
                Category::Passenger
            };
            (vin, cat, profile)
        })
        .collect()
}

fn place(layering: &mut Layering, fleet: &[(Vin, Category, Profile)]) -> usize {
    layering.place_all(
        fleet.iter().map(|(v, c, p)| (*v, *c, p)),
        Timestamp::from_millis(NOW),
    )
}

fn bench(c: &mut Criterion) {
    let fleet = fleet();
    let cfg = LayerConfig::default();

    let before = rss();
    let mut placed = Layering::new(cfg.clone());
    place(&mut placed, &fleet);
    let bytes = rss().saturating_sub(before);
    println!(
        "layering of {DRIVERS} drivers: {:.1} MB resident, {} bytes per vehicle; {} in the time index",
        bytes as f64 / 1e6,
        bytes / DRIVERS,
        placed.due_len()
    );

    println!(
        "cpu time, place_all of {DRIVERS}: {:.0} ms (mean of 5)",
        cpu_ms(5, || Layering::new(cfg.clone()), |l| place(l, &fleet))
    );

    let mut group = c.benchmark_group("layering");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("place_all_1m_from_scratch", |b| {
        b.iter_batched(
            || Layering::new(cfg.clone()),
            |mut l| {
                black_box(place(&mut l, &fleet));
                l
            },
            BatchSize::PerIteration,
        );
    });

    // The tick instant at which exactly the 1 % earliest-due drivers are due.
    let mut next: Vec<Timestamp> = fleet
        .iter()
        .filter_map(|(v, _, _)| placed.next_change(v))
        .collect();
    let (_, tick_at, _) = next.select_nth_unstable(DUE - 1);
    let tick_at = *tick_at;
    let profiles: HashMap<Vin, (Category, Profile)> = fleet
        .iter()
        .map(|(v, c, p)| (*v, (*c, p.clone())))
        .collect();
    let lookup = |v: &Vin| profiles.get(v).cloned();
    let mut probe = placed.clone();
    let changes = probe.tick(tick_at, usize::MAX, lookup);
    println!(
        "tick at the 1 % instant: {} changes ({} drivers were due)",
        changes.len(),
        next.iter().filter(|t| **t <= tick_at).count()
    );

    println!(
        "cpu time, tick with {DUE} due of {DRIVERS}: {:.1} ms (mean of 10)",
        cpu_ms(
            10,
            || placed.clone(),
            |l| l.tick(tick_at, usize::MAX, lookup).len()
        )
    );

    group.measurement_time(Duration::from_secs(3));
    group.bench_function("tick_1pct_due_of_1m", |b| {
        b.iter_batched(
            || placed.clone(),
            |mut l| {
                black_box(l.tick(tick_at, usize::MAX, lookup).len());
                l
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let mut quiet = placed.clone();
    let nothing_due = Timestamp::from_millis(NOW);
    c.bench_function("layering/tick_nothing_due_of_1m", |b| {
        b.iter(|| black_box(quiet.tick(nothing_due, usize::MAX, lookup).len()));
    });
    let (_, cat0, p0) = &fleet[0];
    let placed0 = classify(*cat0, p0, Timestamp::from_millis(NOW), &cfg);
    c.bench_function("layering/classify_one", |b| {
        b.iter(|| {
            black_box(classify(
                *cat0,
                black_box(p0),
                Timestamp::from_millis(NOW),
                &cfg,
            ))
        });
    });
    // One axis changed, as in a tick.
    let from = Layers {
        activity: if placed0.layers.activity == Activity::Active {
            Activity::Declining
        } else {
            Activity::Active
        },
        ..placed0.layers
    };
    c.bench_function("layering/explain_one_change", |b| {
        b.iter(|| {
            black_box(explain(
                Some(from),
                placed0.layers,
                black_box(p0),
                Timestamp::from_millis(NOW),
                &cfg,
            ))
        });
    });
    let mut live = placed.clone();
    let (vin, cat, mut profile) = fleet[DRIVERS / 2].clone();
    let mut t = NOW;
    c.bench_function("layering/update_after_engagement_of_1m", |b| {
        b.iter(|| {
            t += 1000;
            profile.last_engagement = Some(Timestamp::from_millis(t));
            profile.prompt_actions += 1;
            black_box(live.update(vin, cat, &profile, Timestamp::from_millis(t)))
        });
    });
    black_box(&probe);
}

criterion_group!(benches, bench);
criterion_main!(benches);
