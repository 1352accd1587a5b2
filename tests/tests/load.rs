//! The load mode, small: real vehicles' MQTT clients, a real broker, the real cloud, a real
//! partner receiver that verifies signatures. Correctness only — every record acked by the
//! broker and applied by the cloud exactly once, every injected fault delivered to the partner
//! as exactly one verified webhook for its VIN and code — never a timing (the figures are
//! measured by the `load` example and the testbed's `--load`, see the README).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use rapport_testbed::Error;
use rapport_testbed::load::{self, BrokerKind, CloudMode, LoadError, LoadOptions, LoadReport};

fn small(vehicles: usize, seconds: u64, faults: usize) -> LoadOptions {
    LoadOptions {
        vehicles,
        duration: Duration::from_secs(seconds),
        faults,
        seed: 42,
        connect_rate: 500,
        // A reading a second, so a short window still carries a trickle of batches.
        record_interval: Duration::from_secs(1),
        cloud: CloudMode::InProcess,
        drain_timeout: Duration::from_secs(60),
        ..LoadOptions::default()
    }
}

fn assert_correct(report: &LoadReport, vehicles: usize, faults: usize) {
    println!("{report}");
    assert!(report.failures().is_empty(), "{report}");
    // The same, spelled out, so a regression names the broken promise.
    assert_eq!(report.connected, vehicles as u64, "{report}");
    assert!(
        report.records_sent > vehicles as u64,
        "a heartbeat and readings from every vehicle: {report}"
    );
    assert_eq!(report.records_acked, report.records_sent, "{report}");
    assert_eq!(report.cloud_end.applied, report.records_sent, "{report}");
    assert_eq!(report.cloud_end.rejects, 0, "{report}");
    assert_eq!(report.faults, (faults, faults as u64, 0), "{report}");
    let w = report.webhooks;
    assert_eq!(w.critical_matched, faults as u64, "{report}");
    assert_eq!(
        (
            w.critical_extra,
            w.critical_unexpected,
            w.duplicates,
            w.rejected
        ),
        (0, 0, 0, 0),
        "{report}"
    );
    // Each verified delivery is one alert: nothing was delivered twice under two ids.
    assert_eq!(w.delivered, w.critical_matched + w.other, "{report}");
    assert!(report.missing.is_empty(), "{report}");
    assert_eq!(report.latency.map(|l| l.count), Some(faults), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_vehicles_every_record_once_every_fault_one_verified_webhook() {
    let report = load::run(small(200, 10, 20)).await.unwrap();
    assert_correct(&report, 200, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_mosquitto_with_the_cloud_as_its_client() {
    let opts = LoadOptions {
        broker: BrokerKind::Mosquitto,
        ..small(50, 4, 5)
    };
    match load::run(opts).await {
        Err(Error::Load(LoadError::NoMosquitto)) => {
            // The harness printed "skipping" (or failed the run under RAPPORT_REQUIRE_MOSQUITTO).
        }
        other => assert_correct(&other.unwrap(), 50, 5),
    }
}

/// The `rapport-cloud` binary of this build: present after `cargo test --workspace` (the
/// cloud's own tests build it); otherwise built here.
fn cloud_binary() -> PathBuf {
    load::cloud::binary_or_build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_as_a_child_process_of_its_binary() {
    let opts = LoadOptions {
        cloud: CloudMode::Child(Some(cloud_binary())),
        ..small(30, 3, 3)
    };
    let report = load::run(opts).await.unwrap();
    assert!(report.cloud.starts_with("child process"), "{report}");
    assert_correct(&report, 30, 3);
}

#[tokio::test]
async fn options_that_cannot_work_are_refused_with_every_reason() {
    let opts = LoadOptions {
        vehicles: 0,
        faults: 3,
        ..LoadOptions::default()
    };
    match load::run(opts).await {
        Err(Error::Load(LoadError::Options(problems))) => {
            assert_eq!(problems.len(), 2, "{problems:?}");
        }
        other => panic!("{other:?}"),
    }
}
