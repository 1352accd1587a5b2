//! Decode throughput on one core (issue 3, part 8): `Observer::on_frame` over the mixed trace
//! of `common` (target ≥ 10 million frames/s), per frame kind, over a real truck trace when
//! `../shared/data` is present, and the DBC plan, ISO-TP demux and J1939 transport layers alone.
//!
//! Owns the timing only; the traffic is built once, outside every timed loop, by `common`.
//! Run: `cargo bench -p rapport-agent --bench decode -- --warm-up-time 1 --measurement-time 3`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::BufReader;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use embedded_can::Frame as _;
use rapport_agent::can::candump::TraceReader;
use rapport_agent::can::source::TimedFrame;
use rapport_agent::config::{self, Loaded};
use rapport_agent::observe::{Observation, Observer};
use rapport_agent::proto::isotp::{self, Demux};
use rapport_agent::proto::j1939::{J1939Id, TpConfig, TransportProtocol};
use rapport_harness::files::shared_data_file;

use common::Kind;

/// Seconds of mixed traffic per timed pass (about 40,000 frames).
const SECS: u64 = 10;

/// Every frame through a fresh observer (built outside the timing: plausibility needs time
/// to move forward, so a pass cannot reuse the last pass's observer).
fn bench_observer(
    c: &mut Criterion,
    group: &str,
    name: &str,
    loaded: &Loaded,
    frames: &[TimedFrame],
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || {
                (
                    Observer::new(&rapport_agent::settings::observer(loaded)),
                    Vec::<Observation>::with_capacity(64),
                )
            },
            |(observer, out)| {
                let mut n = 0usize;
                for f in frames {
                    out.clear();
                    observer.on_frame(f, out);
                    n += out.len();
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn observer(c: &mut Criterion) {
    let loaded = common::loaded();
    let frames = common::mixed(SECS);
    println!(
        "mixed trace: {} frames in {SECS} s: {:?}",
        frames.len(),
        common::composition(&frames)
    );
    bench_observer(c, "observer", "mixed", &loaded, &frames);
    for kind in Kind::ALL {
        let only = common::only(&frames, kind);
        bench_observer(c, "observer_by_kind", kind.name(), &loaded, &only);
    }
}

/// `normal.log` of the J1939 attack datasets (a real truck), with the example truck config.
fn real_truck(c: &mut Criterion) {
    let Some(path) = shared_data_file("traces/j1939-attack-datasets/normal.log") else {
        return;
    };
    let reader = TraceReader::new(BufReader::new(File::open(path).unwrap()));
    let frames: Vec<TimedFrame> = reader
        .filter_map(Result::ok)
        .map(|tf| TimedFrame {
            frame: tf.frame,
            at: tf.timestamp.map(|t| t.as_duration()).unwrap_or_default(),
            wall: None,
        })
        .collect();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/commercial.toml");
    let loaded = config::load(&cfg).unwrap();
    println!("real truck trace: {} frames", frames.len());
    bench_observer(c, "observer", "real_truck_normal_log", &loaded, &frames);
}

fn layers(c: &mut Criterion) {
    let loaded = common::loaded();
    let frames = common::mixed(SECS);
    let plan = &loaded.dbc.as_ref().unwrap().plan;
    let mut g = c.benchmark_group("layers");

    let cluster = common::only(&frames, Kind::Dbc);
    g.throughput(Throughput::Elements(cluster.len() as u64));
    g.bench_function("dbc_plan_cluster_1", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for f in &cluster {
                for v in plan.decode(&f.frame).flatten() {
                    sum += v.value;
                }
            }
            black_box(sum)
        });
    });
    // Every frame of the mix through the plan: mostly the id lookup missing.
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("dbc_plan_mixed", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for f in &frames {
                n += plan.decode(&f.frame).count();
            }
            black_box(n)
        });
    });

    let responses: Vec<TimedFrame> = frames
        .iter()
        .filter(|f| !f.frame.is_extended() && (0x7E8..=0x7EF).contains(&f.frame.raw_id()))
        .copied()
        .collect();
    g.throughput(Throughput::Elements(responses.len() as u64));
    g.bench_function("isotp_demux_obd_responses", |b| {
        b.iter_batched_ref(
            || Demux::new_passive(isotp::Config::default(), 16),
            |demux| {
                let mut n = 0usize;
                for f in &responses {
                    if let Ok(isotp::RxEvent::Complete(p)) =
                        demux.on_frame(f.frame.raw_id(), f.frame.data(), f.at)
                    {
                        n += p.len();
                    }
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        );
    });

    let extended: Vec<TimedFrame> = frames
        .iter()
        .filter(|f| f.frame.is_extended())
        .copied()
        .collect();
    g.throughput(Throughput::Elements(extended.len() as u64));
    g.bench_function("j1939_id_and_tp", |b| {
        b.iter_batched_ref(
            || {
                TransportProtocol::new(TpConfig {
                    own_address: None,
                    ..TpConfig::default()
                })
            },
            |tp| {
                let mut n = 0u64;
                for f in &extended {
                    let id = f.frame.raw_id();
                    if let Ok(Some(_)) = tp.on_frame(id, f.frame.data(), f.at) {
                        n += 1;
                    }
                    if let Ok(jid) = J1939Id::from_raw(id) {
                        n += u64::from(jid.pgn());
                    }
                }
                black_box(n)
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, observer, real_truck, layers);
criterion_main!(benches);
