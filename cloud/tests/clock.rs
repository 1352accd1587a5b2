//! A car with a wrong clock, on both backends, through the real cloud (embedded broker, real
//! store, real HTTP) on a manual clock: the cloud flags the vehicle's clock once per episode
//! (one `clock_untrusted` timeline entry, a field on the vehicle's answer) and clears it when
//! the car's time is plausible again; and the retention judges records by when the cloud
//! received them, so a car at 1970 keeps its fresh records and one a year ahead loses its old
//! ones in time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use rapport_cloud::retention::{Days, Pruned, Pruner};
use rapport_harness::bed::{Bed, DEALER_NORTH, Plan, Registration};
use rapport_harness::cloud::StoreKind;
use rapport_harness::records::odometer;
use rapport_shared::{ClockUntrusted, RecordBody, Timestamp, Vin};

/// 2031-03-01T00:00:00Z.
const T0: u64 = 1_930_176_000_000;
const DAY: u64 = 86_400_000;
const YEAR: u64 = 365 * DAY;
/// The 1970 car.
const V1: &str = "WP0ZZZ99ZTS392124";
/// The car a year ahead.
const V2: &str = "WVWZZZ1JZXW000001";

fn vin(s: &str) -> Vin {
    s.parse().unwrap()
}

async fn start(kind: StoreKind) -> Option<Bed> {
    let plan = Plan::escalating("clock", T0, &[DEALER_NORTH]);
    let bed = Bed::start_on(kind, plan, |c| c.retention.records_days = 30)
        .await
        .unwrap()?;
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
    Some(bed)
}

/// The times of `v`'s `clock_untrusted` timeline entries (car, cloud), from the API.
async fn clock_entries(bed: &Bed, v: &str) -> Vec<(u64, u64)> {
    let page = bed
        .get_as(
            &format!("/api/v1/vehicles/{v}/timeline?kind=clock_untrusted"),
            &bed.operator,
        )
        .await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["car_at"].as_u64().unwrap(),
                e["cloud_at"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn vehicle(bed: &Bed, v: &str) -> serde_json::Value {
    bed.get_as(&format!("/api/v1/vehicles/{v}"), &bed.operator)
        .await
}

async fn a_wrong_car_clock_is_flagged_once_per_episode(kind: StoreKind) {
    let Some(mut bed) = start(kind).await else {
        return;
    };
    let now = bed.now();
    // A plausible start, then the head unit's clock falls back to 1970: the agent's own
    // record of it, and three batches of records stamped 1970.
    bed.send_timed(V1, vec![(now, odometer(1000))]).await;
    assert!(vehicle(&bed, V1).await["clock_untrusted"].is_null());
    let t1970 = Timestamp::from_millis(4_000);
    bed.send_timed(
        V1,
        vec![(
            t1970,
            RecordBody::ClockUntrusted(ClockUntrusted {
                observed: t1970,
                trusted: now,
            }),
        )],
    )
    .await;
    for km in 0..3 {
        bed.advance(60_000).await;
        bed.send_timed(V1, vec![(t1970, odometer(1001 + km))]).await;
    }
    assert_eq!(
        clock_entries(&bed, V1).await,
        vec![(4_000, now.as_millis())]
    );
    let v = vehicle(&bed, V1).await;
    assert_eq!(v["clock_untrusted"]["car_at_ms"], 4_000, "{v}");
    assert_eq!(v["clock_untrusted"]["cloud_at_ms"], now.as_millis(), "{v}");
    // Applied all the same, by seq.
    assert_eq!(v["last_seq"], 5, "{v}");
    assert_eq!(v["odometer"]["meters"], 1_003_000, "{v}");
    // The clock is set right: the flag clears; a second episode (a year ahead) is a second
    // entry.
    let now = bed.now();
    bed.send_timed(V1, vec![(now, odometer(1010))]).await;
    assert!(vehicle(&bed, V1).await["clock_untrusted"].is_null());
    let ahead = Timestamp::from_millis(now.as_millis() + YEAR);
    bed.send_timed(V1, vec![(ahead, odometer(1011)), (ahead, odometer(1012))])
        .await;
    let entries = clock_entries(&bed, V1).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.contains(&(ahead.as_millis(), now.as_millis())));
    // The other car's clock is fine: nothing flagged.
    bed.send_timed(V2, vec![(now, odometer(5))]).await;
    assert!(clock_entries(&bed, V2).await.is_empty());
    assert!(vehicle(&bed, V2).await["clock_untrusted"].is_null());
}

/// The seqs of `v`'s stored records.
fn seqs(bed: &Bed, v: &str) -> Vec<u64> {
    tokio::task::block_in_place(|| bed.cloud.store().records(&vin(v), 0, 10_000))
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

fn prune(bed: &Bed, now: Timestamp) -> u64 {
    let days = Days {
        records: 30,
        timeline: 30,
        delivered: 30,
        dead_letters: 30,
    };
    let pruner = Pruner::new(days, 1000, Arc::new(Pruned::default()));
    let store = bed.cloud.store().clone();
    tokio::task::block_in_place(|| pruner.pass(&store, now))
        .unwrap()
        .records
}

async fn retention_judges_records_by_receipt_not_the_car_clock(kind: StoreKind) {
    let Some(mut bed) = start(kind).await else {
        return;
    };
    // Received now: V1's records say 1970, V2's a year ahead.
    let now = bed.now();
    let t1970 = Timestamp::from_millis(4_000);
    let ahead = Timestamp::from_millis(now.as_millis() + YEAR);
    bed.send_timed(V1, (0..4).map(|i| (t1970, odometer(100 + i))).collect())
        .await;
    bed.send_timed(V2, (0..3).map(|i| (ahead, odometer(200 + i))).collect())
        .await;
    // A day on, a pass: the 1970 records are fresh (received yesterday) and stay; before
    // the fix they were 61 years old and went at once.
    bed.clock.set(Timestamp::from_millis(now.as_millis() + DAY));
    assert_eq!(prune(&bed, bed.now()), 0);
    assert_eq!(seqs(&bed, V1), vec![1, 2, 3, 4]);
    // 40 days on (past the 30 days): both cars' records go — the year-ahead ones too, which
    // the car's clock would have kept for a year and 30 days.
    bed.clock
        .set(Timestamp::from_millis(now.as_millis() + 40 * DAY));
    let later = bed.now();
    bed.send_timed(V1, vec![(t1970, odometer(110))]).await;
    assert_eq!(prune(&bed, later), 7);
    assert_eq!(seqs(&bed, V1), vec![5], "the record received today stays");
    assert!(seqs(&bed, V2).is_empty());
}

rapport_harness::on_both_backends!(
    a_wrong_car_clock_is_flagged_once_per_episode,
    retention_judges_records_by_receipt_not_the_car_clock,
);
