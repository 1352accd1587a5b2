//! Webhook delivery throughput, messages per second (run:
//! `cargo bench -p rapport-cloud --bench webhooks`).
//!
//! 1. `sign`: one Standard Webhooks signature over a 400-byte body.
//! 2. `deliver/<concurrency>`: N messages enqueued in the sled outbox (not timed), then the
//!    clock runs from the sender's wake-up until every message is reported delivered by the
//!    real sender to the testbed's partner receiver on loopback, which verifies each
//!    signature. Each message costs one HTTP/1.1 POST on a pooled connection, one signature
//!    check, one outbox batch (pending → delivered marker). Target: ≥ 2,000 messages/s.
//!
//! Prints the store's size on disk at the end. Figures go to the report, not into assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rapport_cloud::clock::{SharedClock, SystemClock};
use rapport_cloud::webhook::{
    Endpoint, Message, Outbox, ReportStatus, Secret, Sender, SenderConfig, sign,
};
use rapport_harness::files::dir_size;
use rapport_harness::partner::{Receiver, system_clock};
use tokio::sync::{mpsc, oneshot};

const N: u64 = 2_000;
const PARTNER: &str = "dealer-bench";

fn body(i: u64) -> Vec<u8> {
    // ~400 bytes, the size of a maintenance alert with a short checklist.
    format!(
        r#"{{"type":"alert.maintenance","timestamp":"2026-11-23T10:00:00Z","data":{{"alert":"alert-{i:08}","vin":"WVWZZZ1JZXW000001","dealer":"{PARTNER}","checklist":["oil","oil filter","air filter","brake fluid"],"faults":["P0133"],"driver_response":"booked","suggestion":"declining driver: a personal call is recommended","layer":{{"maturity":"skilled","activity":"declining"}},"odometer_km":15012}}}}"#
    )
    .into_bytes()
}

fn bench_sign(c: &mut Criterion) {
    let secret = Secret::generate().unwrap();
    let b = body(1);
    let mut g = c.benchmark_group("webhook");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |bench| {
        bench.iter(|| sign(&secret, "msg_0123456789abcdef", 1_763_892_000, &b));
    });
    g.finish();
}

fn bench_deliver(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let secret = Secret::generate().unwrap();
    let receiver = rt
        .block_on(Receiver::start(&secret.to_string(), system_clock()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = rapport_kit::sled_store::open_dir(dir.path()).unwrap();
    let outbox = Outbox::new(db.open_tree("cloud").unwrap());
    let clock: SharedClock = Arc::new(SystemClock);
    let endpoints = Arc::new(HashMap::from([(
        PARTNER.to_owned(),
        Endpoint {
            url: receiver.url(),
            secret: secret.clone(),
            previous: Vec::new(),
        },
    )]));
    let next_id = AtomicU64::new(0);

    let mut g = c.benchmark_group("webhook/deliver");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    for concurrency in [8usize, 64, 256] {
        let config = SenderConfig {
            concurrency,
            ..SenderConfig::default()
        };
        let sender = Sender::new(outbox.clone(), endpoints.clone(), clock.clone(), config).unwrap();
        let waker = sender.waker();
        let (tx, mut reports) = mpsc::channel(8192);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = rt.spawn(sender.run(tx, async {
            let _ = stopped.await;
        }));
        g.bench_function(format!("{concurrency}"), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let now = clock.now();
                    for _ in 0..N {
                        let i = next_id.fetch_add(1, Ordering::Relaxed);
                        let msg = Message::new(
                            format!("msg_{i:012}"),
                            PARTNER,
                            "alert.maintenance",
                            body(i),
                            now,
                        );
                        outbox.enqueue_now(&msg).unwrap();
                    }
                    let started = Instant::now();
                    waker.notify_one();
                    rt.block_on(async {
                        let mut delivered = 0;
                        while delivered < N {
                            let r = reports.recv().await.unwrap();
                            assert!(matches!(r.status, ReportStatus::Delivered { .. }), "{r:?}");
                            delivered += 1;
                        }
                    });
                    total += started.elapsed();
                }
                total
            });
        });
        let _ = stop.send(());
        rt.block_on(task).unwrap().unwrap();
    }
    g.finish();
    let stats = receiver.stats();
    assert_eq!(stats.rejected, 0);
    assert_eq!(stats.duplicates, 0);
    outbox.flush().unwrap();
    println!(
        "webhooks: {} delivered to the receiver, 0 rejected, 0 duplicates; store on disk {:.1} MB ({} delivered markers, {} pending)",
        stats.delivered,
        dir_size(dir.path()) as f64 / 1e6,
        stats.delivered,
        outbox.pending_len(),
    );
}

criterion_group!(benches, bench_sign, bench_deliver);
criterion_main!(benches);
