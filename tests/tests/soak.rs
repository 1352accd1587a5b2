//! The soak, short: the testbed's story for three cars (a new car, one coming up to its first
//! service, a year-old one; the truck's 100 ms broadcast would double the cost) over 30
//! simulated days in this (debug) build, with a sample every 10 simulated days — the year-long
//! run with many cars is `rapport-testbed --samples`, docs/reliability.md section 5; the debug
//! build simulates about one car-day a second, so a year does not fit in CI.
//!
//! Everything is real, as in `testbed.rs`: the embedded broker, the cloud on sled, each car an
//! agent on its own sled store, MQTT in between, HTTP for webhooks and the API. Asserted: the
//! end-of-story invariants (the same check as the 16-day test) hold at the end; memory is
//! bounded (the last resident set within twice the first period's); the stores grow with the
//! records they take and not faster (the last period's bytes per record within twice the
//! run's). Never a timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rapport_testbed::scenario::Options;
use rapport_testbed::soak::{Sample, SoakOptions, run};

/// Samples taken (after the one at the start).
const SAMPLES: u32 = 3;
/// Simulated days between two samples.
const EVERY_DAYS: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_story_keeps_memory_and_stores_bounded_and_every_invariant() {
    let report = run(SoakOptions {
        story: Options {
            vehicles: 3,
            days: EVERY_DAYS * SAMPLES,
            speedup: 0.0,
            seed: 3,
            ..Options::default()
        },
        every_days: EVERY_DAYS,
        csv: None,
    })
    .await
    .unwrap();
    println!("{}", report.render());
    assert!(report.failures.is_empty(), "{:#?}", report.failures);

    let s: &[Sample] = &report.samples;
    // Day 0, then the end of every month.
    assert_eq!(s.len(), SAMPLES as usize + 1, "{s:?}");
    for (m, sample) in s.iter().enumerate() {
        assert!(
            (sample.day - f64::from(EVERY_DAYS) * m as f64).abs() < 0.01,
            "{sample:?}"
        );
    }
    // Every month the cars drove and the cloud took their records.
    for w in s.windows(2) {
        assert!(w[1].records > w[0].records, "no records in a period: {s:?}");
        assert!(
            w[1].cloud_store_bytes > 0 && w[1].agent_store_bytes > 0,
            "{s:?}"
        );
        assert!(w[1].agents_store_bytes >= w[1].agent_store_bytes, "{s:?}");
    }
    assert!(s.iter().all(|x| x.rss_kib > 0), "no VmRSS read: {s:?}");

    // Memory bounded: the last resident set is within twice the first period's (a leak of
    // the records ingested, which grow by the period, would not be).
    let first = s[1].rss_kib;
    let last = s[s.len() - 1].rss_kib;
    assert!(
        last <= 2 * first,
        "RSS {first} KiB after a period, {last} KiB at the end"
    );

    // The stores grow with the records, not faster: over the last period each store added
    // at most twice its bytes per record over the whole run (sled grows its file in steps,
    // so a period, not a record, is the finest honest grain), and the cloud's store holds
    // under 4 KiB per record it applied (a few hundred bytes: the first sled segments).
    let n = s.len() - 1;
    let records = (s[n].records - s[0].records) as f64;
    let last_records = (s[n].records - s[n - 1].records) as f64;
    for (store, bytes) in [
        (
            "cloud",
            s.iter().map(|x| x.cloud_store_bytes).collect::<Vec<_>>(),
        ),
        (
            "all agents",
            s.iter().map(|x| x.agents_store_bytes).collect(),
        ),
    ] {
        let average = bytes[n].saturating_sub(bytes[0]) as f64 / records;
        let last = bytes[n].saturating_sub(bytes[n - 1]) as f64 / last_records;
        assert!(
            last <= 2.0 * average,
            "{store} store: {average:.0} bytes/record over the run, {last:.0} in the last period: {s:?}"
        );
    }
    let per_record = s[n].cloud_store_bytes as f64 / s[n].records as f64;
    assert!(
        per_record < 4096.0,
        "cloud store: {per_record:.0} bytes/record"
    );
}
