//! Retention on a manual clock, on both backends: a cloud (embedded broker, real store, real
//! HTTP) holds records and timeline entries of two ages; after the clock moves past the
//! retention, bounded passes (fewer entries per pass than there are to prune) remove exactly
//! the expired ones — the store is read back, not the API — and the running cloud's own
//! retention loop counts what it prunes in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use rapport_cloud::retention::{Days, Pruned, Pruner, cutoff};
use rapport_cloud::webhook::outbox::MessageState;
use rapport_harness::bed::{Bed, DEALER_NORTH, Plan, Registration};
use rapport_harness::cloud::StoreKind;
use rapport_harness::records::{critical, odometer};
use rapport_shared::{Timestamp, Vin};

/// 2031-03-01T00:00:00Z.
const T0: u64 = 1_930_176_000_000;
const DAY: u64 = 86_400_000;
const V1: &str = "WP0ZZZ99ZTS392124";
const V2: &str = "WVWZZZ1JZXW000001";

fn vin(s: &str) -> Vin {
    s.parse().unwrap()
}

fn dead_letters(bed: &Bed) -> usize {
    tokio::task::block_in_place(|| bed.cloud.store().outbox().dead_letters(None, 100))
        .unwrap()
        .len()
}

fn outbox_state(bed: &Bed, id: &str) -> Option<MessageState> {
    tokio::task::block_in_place(|| bed.cloud.store().outbox().state(id)).unwrap()
}

fn alert_ids(bed: &Bed, v: &str) -> Vec<u64> {
    tokio::task::block_in_place(|| bed.cloud.store().alerts(false, Some(&vin(v))))
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect()
}

/// (seq, at) of every stored record of `v` (the store port blocks: off the async threads).
fn records(bed: &Bed, v: &str) -> Vec<(u64, Timestamp)> {
    tokio::task::block_in_place(|| records_now(bed, v))
}

fn records_now(bed: &Bed, v: &str) -> Vec<(u64, Timestamp)> {
    let mut out: Vec<_> = bed
        .cloud
        .store()
        .records(&vin(v), 0, 10_000)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.at))
        .collect();
    out.sort_unstable();
    out
}

/// The time of every stored timeline entry of `v`.
fn timeline(bed: &Bed, v: &str) -> Vec<Timestamp> {
    tokio::task::block_in_place(|| timeline_now(bed, v))
}

fn timeline_now(bed: &Bed, v: &str) -> Vec<Timestamp> {
    bed.cloud
        .store()
        .timeline_newest_first(&vin(v), None)
        .map(|e| e.unwrap().1.at)
        .collect()
}

async fn retention_prunes_exactly_the_expired_in_bounded_passes(kind: StoreKind) {
    let plan = Plan::escalating("retention", T0, &[DEALER_NORTH]);
    // The bed's fleet tick (and so the retention loop) is an hour of real time: only the
    // passes this test makes run here.
    let Some(mut bed) = Bed::start_on(kind, plan, |c| {
        c.retention.records_days = 30;
        c.retention.timeline_days = 30;
    })
    .await
    .unwrap() else {
        return;
    };
    for v in [V1, V2] {
        bed.register(
            v,
            Registration {
                dealer: DEALER_NORTH.id,
                category: "passenger",
                line: "Golf",
                delivered: "2030-06-01",
            },
        )
        .await;
    }
    // Old: records dated 10 days before T0 and at T0 (both expire), sent at T0.
    let old = Timestamp::from_millis(T0 - 10 * DAY);
    let now = bed.now();
    bed.send_timed(
        V1,
        (0..5u64)
            .map(|i| (old, odometer(1000 + i)))
            .chain((0..2).map(|i| (now, odometer(1100 + i))))
            .collect(),
    )
    .await;
    bed.send_timed(V2, (0..3u64).map(|i| (old, odometer(500 + i))).collect())
        .await;
    // A delivered webhook (V1's critical fault) and a dead letter (V2's: the endpoint says
    // 410 Gone), both at T0.
    bed.send(V1, vec![critical(0x0300)]).await;
    bed.wait(Duration::from_secs(10), "V1's alert delivered", || {
        bed.receiver(DEALER_NORTH.id).deliveries().len() == 1
    })
    .await;
    bed.receiver(DEALER_NORTH.id)
        .set_default(rapport_harness::partner::Reply::status(410));
    bed.send(V2, vec![critical(0x0301)]).await;
    bed.wait(Duration::from_secs(10), "V2's alert dead", || {
        dead_letters(&bed) == 1
    })
    .await;
    let delivered_id = format!("msg_a{}", alert_ids(&bed, V1)[0]);
    assert!(matches!(
        outbox_state(&bed, &delivered_id),
        Some(MessageState::Delivered(_))
    ));
    // 40 days on: new records and timeline entries (kept).
    bed.clock.set(Timestamp::from_millis(T0 + 40 * DAY));
    let now = bed.now();
    bed.send_timed(V1, (0..4u64).map(|i| (now, odometer(2000 + i))).collect())
        .await;
    for v in [V1, V2] {
        bed.register(
            v,
            Registration {
                dealer: DEALER_NORTH.id,
                category: "passenger",
                line: "Golf Variant",
                delivered: "2030-06-01",
            },
        )
        .await;
    }

    let before = cutoff(now, 30);
    let expect_records = |v| -> Vec<(u64, Timestamp)> {
        records(&bed, v)
            .into_iter()
            .filter(|r| r.1 >= before)
            .collect()
    };
    let expect_timeline = |v| -> Vec<Timestamp> {
        timeline(&bed, v)
            .into_iter()
            .filter(|t| *t >= before)
            .collect()
    };
    let (r1, r2) = (expect_records(V1), expect_records(V2));
    let (t1, t2) = (expect_timeline(V1), expect_timeline(V2));
    let records_expired = records(&bed, V1).len() + records(&bed, V2).len() - r1.len() - r2.len();
    let timeline_expired =
        timeline(&bed, V1).len() + timeline(&bed, V2).len() - t1.len() - t2.len();
    assert_eq!(
        records_expired, 12,
        "8 of V1 and 4 of V2 are older than 30 days"
    );
    assert!(
        timeline_expired > 3,
        "more old timeline entries than a pass takes"
    );
    assert_eq!(r1.len(), 4);
    assert!(!t1.is_empty() && !t2.is_empty());

    // Bounded passes: 3 entries examined per kind and pass.
    let pruned = Arc::new(Pruned::default());
    let days = Days {
        records: 30,
        timeline: 30,
        delivered: 30,
        dead_letters: 30,
    };
    assert_eq!(dead_letters(&bed), 1);
    let pruner = Pruner::new(days, 3, Arc::clone(&pruned));
    let (mut passes, mut records_pruned, mut timeline_pruned) = (0, 0, 0);
    loop {
        let store = bed.cloud.store().clone();
        let swept = {
            let pruner = &pruner;
            tokio::task::block_in_place(|| pruner.pass(&store, now)).unwrap()
        };
        assert!(swept.records <= 3 && swept.timeline <= 3, "{swept:?}");
        records_pruned += swept.records;
        timeline_pruned += swept.timeline;
        passes += 1;
        if !swept.more {
            break;
        }
        assert!(passes < 1000, "the sweep never ends");
    }
    assert!(passes > 3, "{passes} passes");
    assert_eq!(
        dead_letters(&bed),
        0,
        "the dead letter is older than 30 days"
    );
    assert_eq!(
        pruned
            .dead_letters
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        outbox_state(&bed, &delivered_id),
        None,
        "the delivered marker is pruned"
    );
    assert_eq!(records_pruned, records_expired as u64);
    assert_eq!(timeline_pruned, timeline_expired as u64);
    assert_eq!(
        records(&bed, V1),
        r1,
        "exactly the expired records of V1 are gone"
    );
    assert_eq!(records(&bed, V2), r2);
    assert!(r2.is_empty());
    assert_eq!(
        timeline(&bed, V1),
        t1,
        "exactly the expired timeline entries are gone"
    );
    assert_eq!(timeline(&bed, V2), t2);
    assert_eq!(
        pruned.records.load(std::sync::atomic::Ordering::Relaxed),
        records_expired as u64
    );
}

/// The running cloud's own retention loop, on its clock: at the fleet tick's pace, a sweep
/// every `every_s` of the cloud's clock, counted in `/metrics`.
async fn the_cloud_prunes_on_its_clock(kind: StoreKind) {
    let plan = Plan::escalating("retention-loop", T0, &[DEALER_NORTH]);
    let Some(mut bed) = Bed::start_on(kind, plan, |c| {
        c.retention.records_days = 30;
        c.retention.pass_limit = 2;
        c.retention.every_s = 3600;
        c.fleet.tick_ms = 50;
    })
    .await
    .unwrap() else {
        return;
    };
    // Records are judged by when the cloud received them (never the car's clock): five now.
    let now = bed.now();
    bed.send_timed(V1, (0..5u64).map(|i| (now, odometer(1000 + i))).collect())
        .await;
    // The sweep at start found nothing; the next is due an hour of the cloud's clock later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        records(&bed, V1).len(),
        5,
        "nothing pruned before the sweep is due"
    );
    // 35 days on (past the 30): two new records, and the loop's next sweep takes the five.
    bed.clock.set(Timestamp::from_millis(T0 + 35 * DAY));
    let now = bed.now();
    bed.send_timed(V1, (0..2u64).map(|i| (now, odometer(2000 + i))).collect())
        .await;
    // The pass counts what it pruned after the deletions are visible: wait for both.
    let pruned_5 = "rapport_retention_pruned_total{kind=\"records\"} 5";
    bed.wait(
        Duration::from_secs(20),
        "the retention loop prunes and counts",
        || records(&bed, V1).len() == 2 && bed.cloud.metrics().render().contains(pruned_5),
    )
    .await;
    let metrics = bed.cloud.metrics().render();
    assert!(metrics.contains(pruned_5), "{metrics}");
    assert!(
        metrics.contains("rapport_retention_errors_total 0"),
        "{metrics}"
    );
}

rapport_harness::on_both_backends!(
    retention_prunes_exactly_the_expired_in_bounded_passes,
    the_cloud_prunes_on_its_clock,
);
