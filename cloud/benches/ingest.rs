//! Ingest throughput, records per second (run: `cargo bench -p rapport-cloud --bench ingest`).
//!
//! 1. `core`: check + plan + commit + flush on a real sled store, no MQTT: the ceiling the
//!    MQTT paths can reach; with a flush per envelope and per group of envelopes.
//! 2. `embedded` and `mosquitto`: the whole path. N publishers (one per vehicle, each its own
//!    MQTT connection) send batches of 500 odometer records as fast as the broker acks them;
//!    the clock runs from the first publish until the cloud has applied every record.
//!
//! Prints one line per case and the store's size on disk. Figures go to the report, not into
//! assertions. Set `INGEST_BENCH_QUICK=1` for a short run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rapport_cloud::Cloud;
use rapport_cloud::ingest::worker::wall_now;
use rapport_cloud::ingest::{check, plan};
use rapport_cloud::store::sled::SledStore;
use rapport_harness::cloud::{BrokerKind, config, mosquitto_options};
use rapport_harness::files::dir_size;
use rapport_harness::mosquitto::Mosquitto;
use rapport_harness::mqtt::Publisher;
use rapport_harness::records::{odometer_record as odometer, uplink, vin};
use rapport_harness::wait::wait_until;
use rapport_shared::{Uplink, Vin, topic};

const PER_BATCH: u64 = 500;

/// Encoded uplinks with their topics.
type Batches = Vec<(String, Vec<u8>)>;

fn vins(n: usize) -> Vec<Vin> {
    (0..n).map(|i| vin(&format!("WVWZZZ1JZXW{i:06}"))).collect()
}

/// Encoded batches, vehicle by vehicle interleaved, seqs continuing per vehicle.
fn batches(vins: &[Vin], per_vehicle: u64) -> Batches {
    let mut out = Vec::new();
    for b in 0..per_vehicle {
        for v in vins {
            let up: Uplink = uplink(*v, b * PER_BATCH + 1..=(b + 1) * PER_BATCH, odometer);
            out.push((topic::uplink(v), up.encode().unwrap()));
        }
    }
    out
}

fn core(vehicles: usize, per_vehicle: u64, group: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let input = batches(&vins(vehicles), per_vehicle);
    let records = input.len() as u64 * PER_BATCH;
    let started = Instant::now();
    let (mut decode, mut apply) = (Duration::ZERO, Duration::ZERO);
    for chunk in input.chunks(group) {
        for (t, bytes) in chunk {
            let t0 = Instant::now();
            let up = check(t, bytes, rapport_shared::MAX_UPLINK_BYTES).unwrap();
            let t1 = Instant::now();
            let prev = store.vehicle(&up.vin).unwrap();
            let p = plan(&up, prev, wall_now());
            store.commit(&p).unwrap();
            decode += t1 - t0;
            apply += t1.elapsed();
        }
        store.flush().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "core      flush every {group:>3} envelope(s): {:>9.0} records/s  \
         ({records} records, decode {:.0} ns/record, plan+commit {:.0} ns/record, \
         store {:.1} MB on disk)",
        records as f64 / secs,
        decode.as_nanos() as f64 / records as f64,
        apply.as_nanos() as f64 / records as f64,
        dir_size(dir.path()) as f64 / 1e6,
    );
}

async fn end_to_end(
    name: &str,
    broker: BrokerKind,
    vehicles: usize,
    per_vehicle: u64,
    group: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), broker, &format!("bench-{name}-{group}")).unwrap();
    c.ingest.group_max_envelopes = group;
    let cloud = Cloud::start(&c).await.unwrap();
    assert!(cloud.wait_subscribed(Duration::from_secs(20)).await);
    let addr = match broker {
        BrokerKind::Embedded => cloud.ready().broker.unwrap(),
        BrokerKind::External(a) => a,
    };
    let vins = vins(vehicles);
    let total = vehicles as u64 * per_vehicle * PER_BATCH;
    let mut pubs = Vec::new();
    for (i, v) in vins.iter().enumerate() {
        pubs.push((
            Publisher::connect(addr, &format!("bench-car-{name}-{group}-{i}")).await,
            *v,
        ));
    }
    // Encode before the clock starts.
    let work: Vec<(Publisher, Batches)> = pubs
        .into_iter()
        .map(|(p, v)| (p, batches(&[v], per_vehicle)))
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|(mut p, batches)| {
            tokio::spawn(async move {
                for (t, bytes) in batches {
                    p.publish(&t, bytes).await;
                }
                p.settle().await;
                p
            })
        })
        .collect();
    let m = cloud.metrics();
    wait_until(Duration::from_secs(300), "every record applied", || {
        m.records_applied.load(Ordering::Relaxed) >= total
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    for t in tasks {
        drop(t.await.unwrap());
    }
    let flushes = m.flushes.load(Ordering::Relaxed).max(1);
    println!(
        "{name:<9} flush group ≤{group:>3}: {:>9.0} records/s  ({vehicles} publishers, {total} \
         records in {:.2} s, {:.1} envelopes per flush, {:.2} ms per flush)",
        total as f64 / secs,
        secs,
        m.batches.load(Ordering::Relaxed) as f64 / flushes as f64,
        m.flush_micros.load(Ordering::Relaxed) as f64 / flushes as f64 / 1000.0,
    );
    cloud.shutdown().await.unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let quick = std::env::var("INGEST_BENCH_QUICK").is_ok();
    let (vehicles, per_vehicle) = if quick { (4, 10) } else { (8, 50) };
    println!(
        "ingest bench: {vehicles} vehicles × {per_vehicle} batches × {PER_BATCH} odometer records"
    );
    for group in [1, 64] {
        core(vehicles, per_vehicle, group);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for group in [1, 64] {
            end_to_end(
                "embedded",
                BrokerKind::Embedded,
                vehicles,
                per_vehicle,
                group,
            )
            .await;
        }
        match Mosquitto::start(mosquitto_options()).unwrap() {
            Some(m) => {
                for group in [1, 64] {
                    end_to_end(
                        "mosquitto",
                        BrokerKind::External(m.addr()),
                        vehicles,
                        per_vehicle,
                        group,
                    )
                    .await;
                }
            }
            None => println!("mosquitto: skipped"),
        }
    });
}
