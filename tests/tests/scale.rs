//! Several cloud instances under chaos, the required test: three `rapport-cloud`
//! processes on one PostgreSQL (a cluster of the test's own, so it can be stopped) behind
//! Mosquitto, sharing the uplinks; 1,000 simulated vehicles (the load mode's real MQTT
//! clients) sending readings, critical faults and maintenance stories (due, booked from the
//! prompt, serviced for half of them). Mid-stream one instance is SIGKILLed twice and another
//! once (each started again on its config after a short pause) and PostgreSQL is stopped for
//! 10 s once — the instances are not restarted for that: each must notice and recover by
//! itself. The SLA is one minute, so every alert nobody answers escalates during the run.
//!
//! Afterwards, from PostgreSQL itself (the load mode's audit, [`load::audit`]) and the
//! verifying receiver's log of webhook ids: every record the vehicles made is in the record
//! log exactly once by (vin, seq); every alert's webhook reached the receiver under its one id;
//! each escalation happened once (one `_esc` id, one timeline entry); no layer change or
//! campaign is twice on any timeline; and the layer matrix read from each of the three
//! instances is the same. Never a timing: the figures are printed (records, what each instance
//! applied, the kills, the webhooks) for docs/performance.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_harness::pgcluster::PgCluster;
use rapport_testbed::Error;
use rapport_testbed::load::{
    self, BrokerKind, Chaos, ChaosEvent, CloudMode, LoadError, LoadOptions, Store, StoreAction,
    StoreControl,
};

/// The `rapport-cloud` binary of this build (built here when `cargo test` did not).
fn cloud_binary() -> PathBuf {
    load::cloud::binary_or_build().unwrap()
}

fn at(seconds: u64, what: Chaos) -> ChaosEvent {
    ChaosEvent {
        at: Duration::from_secs(seconds),
        what,
    }
}

fn kill(instance: usize) -> Chaos {
    Chaos::Kill {
        instance,
        down_for: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_survive_kills_and_a_database_outage_exactly_once() {
    let wall = Instant::now();
    let Some(cluster) = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .unwrap()
        .unwrap()
    else {
        return;
    };
    let url = cluster.create_database("rapport_scale").unwrap();
    let cluster = Arc::new(Mutex::new(cluster));
    let control = {
        let cluster = Arc::clone(&cluster);
        StoreControl::new(move |action| {
            let mut c = cluster.lock().map_err(|e| e.to_string())?;
            match action {
                StoreAction::Stop => c.stop(),
                StoreAction::Start => c.restart(),
            }
            .map_err(|e| e.to_string())
        })
    };
    let opts = LoadOptions {
        vehicles: 1_000,
        duration: Duration::from_secs(50),
        faults: 50,
        maintenance: 50,
        seed: 7,
        connect_rate: 500,
        broker: BrokerKind::Mosquitto,
        cloud: CloudMode::Child(Some(cloud_binary())),
        store: Store::Postgres(url),
        instances: 3,
        sla_minutes: 1,
        // The last alerts go near the end of the window; they escalate a minute later.
        drain_timeout: Duration::from_secs(120),
        chaos: vec![
            at(6, kill(0)),
            at(12, kill(1)),
            at(
                20,
                Chaos::StopStore {
                    down_for: Duration::from_secs(10),
                },
            ),
            at(36, kill(0)),
        ],
        store_control: Some(control),
        // RAPPORT_LOAD_KEEP=<folder> keeps the configs and the instances' logs.
        work_dir: std::env::var_os("RAPPORT_LOAD_KEEP").map(PathBuf::from),
        ..LoadOptions::default()
    };
    let report = match load::run(opts).await {
        Err(Error::Load(LoadError::NoMosquitto)) => return, // "skipping" printed
        other => other.unwrap(),
    };
    println!("{report}");
    println!(
        "scale test: {} vehicles, {} records, 3 instances applied {:?}, {} kills, {} webhooks \
         delivered ({} escalations), wall time {:.1} s",
        report.vehicles,
        report.records_sent,
        report
            .instances
            .iter()
            .map(|i| i.applied)
            .collect::<Vec<_>>(),
        report.chaos.kills,
        report.webhooks.delivered,
        report.webhooks.escalated_matched,
        wall.elapsed().as_secs_f64()
    );
    assert!(report.failures().is_empty(), "{report}");

    // The same promises, spelled out, so a regression names the one it broke.
    assert_eq!(report.connected, 1_000, "{report}");
    assert_eq!(report.records_acked, report.records_sent, "{report}");
    let audit = report.audit.as_ref().expect("audited on PostgreSQL");
    assert_eq!(audit.vehicles, 1_000, "{report}");
    assert_eq!(
        audit.records, report.records_sent,
        "each (vin, seq) once: {report}"
    );
    assert_eq!(audit.distinct_records, report.records_sent, "{report}");
    assert!(audit.problems.is_empty(), "{report}");
    // The chaos happened as planned: instance 1 killed twice, instance 2 once, each started
    // again; the store stopped once and no instance exited because of it.
    assert_eq!(
        (
            report.chaos.kills,
            report.chaos.restarts,
            report.chaos.store_stops
        ),
        (3, 3, 1),
        "{report}"
    );
    let kills: Vec<u32> = report.instances.iter().map(|i| i.kills).collect();
    assert_eq!(kills, vec![2, 1, 0], "{report}");
    assert!(
        report.instances.iter().all(|i| i.exited.is_none()),
        "{report}"
    );
    // Each instance saw the outage and said so (`rapport_store_up 0`), and came back by
    // itself.
    for i in &report.instances {
        assert!(i.store_outages >= 1, "instance {}: {report}", i.number);
        assert_eq!(
            i.store_down.len(),
            i.store_up.len(),
            "instance {}: {report}",
            i.number
        );
    }
    assert!(
        report.instances.iter().all(|i| i.applied > 0),
        "the shared subscription gives every instance a part: {report}"
    );
    // Alerts: one per fault and per story, each delivered once under its id, and every one
    // nobody answered escalated once.
    let w = report.webhooks;
    assert_eq!(w.critical_matched, 50, "{report}");
    assert_eq!(w.maintenance_matched, 50, "{report}");
    assert_eq!(audit.alerts, (50, 50, 0), "{report}");
    assert_eq!(
        w.unanswered, 75,
        "50 faults and 25 stories not serviced: {report}"
    );
    assert_eq!(w.escalated_matched, 75, "{report}");
    assert_eq!(audit.escalated, 75, "{report}");
    assert_eq!(audit.escalations_pending, 0, "{report}");
    // (`other`: the serviced stories' `alert.stage` resolved, sent when the workshop's service
    // record closes an alert — docs/service-promise.md.)
    assert_eq!(
        w.delivered,
        50 + 50 + 75 + w.other,
        "one id per alert, escalation and stage: {report}"
    );
    // The serviced stories moved their drivers (junior -> growing) and the strategies sent a
    // campaign each; the first placements are layer changes too.
    assert!(audit.layer_changes >= 1_000 + 25, "{report}");
    assert!(audit.campaigns >= 25, "{report}");
    // The same matrix from all three, with every vehicle in it.
    assert_eq!(report.matrices.len(), 3, "{report}");
    assert_eq!(report.matrices_agree(), Some(true), "{report}");
    let first = report.matrices[0].1.as_ref().unwrap();
    let matrix: serde_json::Value =
        serde_json::from_str(first.lines().next().unwrap_or_default()).unwrap();
    assert_eq!(matrix["total"], 1_000, "{first}");
    drop(cluster);
}

/// The audit is what the chaos test leans on, so it must see what is wrong: one load run on a
/// PostgreSQL database of its own passes it; then a record twice, a layer change twice, an
/// alert left open past its SLA and a webhook that never arrived are each named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_audit_names_each_thing_that_is_wrong() {
    let Some(db) = rapport_harness::postgres::TestDb::create("load_audit").unwrap() else {
        return;
    };
    let opts = LoadOptions {
        vehicles: 30,
        duration: Duration::from_secs(4),
        faults: 3,
        seed: 11,
        record_interval: Duration::from_secs(1),
        cloud: CloudMode::InProcess,
        store: Store::Postgres(db.url()),
        ..LoadOptions::default()
    };
    let report = load::run(opts.clone()).await.unwrap();
    println!("{report}");
    assert!(report.failures().is_empty(), "{report}");
    let audit = report.audit.clone().expect("audited on PostgreSQL");
    assert_eq!(audit.distinct_records, report.records_sent, "{report}");
    assert_eq!(audit.alerts, (3, 0, 0), "{report}");

    // The same database again: its vehicles would make this run's records duplicates.
    match load::run(opts).await {
        Err(Error::Load(LoadError::Store(m))) => assert!(m.contains("earlier run"), "{m}"),
        other => panic!("a second run on the same database: {other:?}"),
    }

    db.with(|c| {
        c.batch_execute(
            "INSERT INTO records SELECT key, received, body FROM records \
                 ORDER BY key LIMIT 1;
             INSERT INTO timeline (vehicle, at, entry) SELECT vehicle, at, entry FROM timeline \
                 WHERE entry->>'kind' = 'layer' ORDER BY vehicle LIMIT 1;
             UPDATE alerts SET body = jsonb_set(body, '{sla_due}', '1') \
                 WHERE id = (SELECT min(id) FROM alerts);",
        )
    })
    .unwrap();
    let mut delivered: std::collections::HashSet<String> =
        report.webhook_ids.iter().cloned().collect();
    let lost = delivered
        .iter()
        .max()
        .cloned()
        .expect("three webhooks delivered");
    delivered.remove(&lost);
    let (url, made) = (db.url(), report.made.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let audit =
        tokio::task::spawn_blocking(move || load::audit::audit(&url, &made, &delivered, now))
            .await
            .unwrap()
            .unwrap();
    let problems = audit.problems.join("\n");
    println!("{problems}");
    assert_eq!(audit.problems.len(), 4, "{problems}");
    assert!(
        audit
            .problems
            .iter()
            .any(|l| l.contains(" records (") && l.contains(" distinct, seqs 1..")),
        "{problems}"
    );
    assert!(
        problems.contains("is on its timeline 2 times"),
        "{problems}"
    );
    assert!(
        problems.contains("past its SLA and did not escalate"),
        "{problems}"
    );
    assert!(
        problems.contains(&format!("{lost} was due and did not arrive")),
        "{problems}"
    );
}
