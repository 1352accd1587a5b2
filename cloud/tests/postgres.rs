//! What only the PostgreSQL store has: an unreachable database at start is a clear error that
//! names host and database and never the password; `rapport-cloud migrate` runs the embedded
//! migrations once and a database a newer build migrated is refused; a sled store made by a
//! real run moves into PostgreSQL (`import-sled`) and the API answers the same; the record
//! log's bytes per record, measured; two instances' webhook senders share one outbox, each
//! message claimed by one of them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Output;
use std::time::Duration;

use rapport_cloud::clock::{Clock, ManualClock};
use rapport_cloud::config::{Backend, Config, DbUrl};
use rapport_cloud::fleet::partners::AlertsConfig;
use rapport_cloud::store::Store;
use rapport_cloud::store::postgres::schema;
use rapport_harness::cloud::{
    BrokerKind, OPERATOR, StoreKind, TestStore, config, get_json, partner, receiver_clock,
    send_and_wait, start_with_car, write,
};
use rapport_harness::partner::Receiver;
use rapport_harness::postgres::TestDb;
use rapport_harness::process::bin_command;
use rapport_harness::records::{critical, maintenance, odometer_record, record, uplink, vin};
use rapport_harness::wait::free_port;
use rapport_shared::{MaintenanceStatus, Timestamp, Uplink};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rapport-cloud");
const PASSWORD: &str = "s3cret-pw-never-shown";
const SECRET_NORTH: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN_NORTH: &str = "north-token-0123456789abcdef0123456789";
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;

fn cli(args: &[&str], config: &std::path::Path) -> Output {
    let mut cmd = bin_command(BIN);
    cmd.args(args).arg("--config").arg(config);
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// No server needed: a port nobody listens on.
#[test]
fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let mut c = config(dir.path(), BrokerKind::Embedded, "unreachable").unwrap();
    c.store.backend = Backend::Postgres;
    c.store.url = Some(DbUrl::new(format!(
        "postgres://rapport:{PASSWORD}@127.0.0.1:{port}/fleetdb"
    )));
    let file = write(&c, dir.path()).unwrap();
    let checked = cli(&["check-config"], &file);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(!text(&checked).contains(PASSWORD));
    for args in [&["run"][..], &["migrate"]] {
        let out = cli(args, &file);
        let all = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {all}");
        assert!(
            all.contains(&format!("127.0.0.1:{port}")) && all.contains("fleetdb"),
            "{args:?}: host and database not named: {all}"
        );
        assert!(
            !all.contains(PASSWORD),
            "{args:?} printed the password: {all}"
        );
    }
    // A URL the config refuses is shown redacted too.
    c.store.url = Some(DbUrl::new(format!("mysql://rapport:{PASSWORD}@h/fleetdb")));
    let file = write(&c, dir.path()).unwrap();
    let out = cli(&["check-config"], &file);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("store.url") && !text(&out).contains(PASSWORD));
}

#[test]
fn migrate_runs_once_and_a_newer_schema_is_refused() {
    let Some(db) = TestDb::create("migrate").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), BrokerKind::Embedded, "migrate").unwrap();
    c.store.backend = Backend::Postgres;
    c.store.url = Some(DbUrl::new(db.url()));
    let file = write(&c, dir.path()).unwrap();
    for _ in 0..2 {
        let out = cli(&["migrate"], &file);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("schema at version {}", schema::LATEST)),
            "{}",
            text(&out)
        );
    }
    let applied: i64 = db
        .with(|c| {
            Ok(c.query_one("SELECT count(*) FROM schema_migrations", &[])?
                .get(0))
        })
        .unwrap();
    assert_eq!(
        applied,
        schema::MIGRATIONS.len() as i64,
        "each migration once, however often migrate runs"
    );
    // Retention is a partition drop: three months made ahead, the two before March dropped.
    let jan = rapport_shared::calendar::days_from_civil(2026, 1, 15);
    let march = rapport_shared::calendar::days_from_civil(2026, 3, 1);
    let (dropped, left) = db
        .with(move |c| {
            for month in 0..3 {
                schema::ensure_partition(c, schema::month_of(jan) + month).unwrap();
            }
            let dropped = schema::drop_partitions_before(c, march).unwrap();
            let left: Vec<String> = c
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records'",
                    &[],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok((dropped, left))
        })
        .unwrap();
    assert_eq!(dropped, ["records_y2026m01", "records_y2026m02"]);
    assert_eq!(left, ["records_y2026m03"]);
    db.with(|c| {
        c.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')",
            &[],
        )
    })
    .unwrap();
    for args in [&["migrate"][..], &["run"]] {
        let out = cli(args, &file);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("schema 99 is newer than {}", schema::LATEST)),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// The answers compared before and after the move.
async fn answers(api: &str, vins: &[&str]) -> Vec<(String, Value)> {
    let mut paths = vec![
        "/api/v1/alerts?state=all".to_owned(),
        "/api/v1/layers".to_owned(),
        "/api/v1/layers?axis=car".to_owned(),
        "/api/v1/vehicles".to_owned(),
        "/api/v1/partners".to_owned(),
        "/api/v1/dead-letters".to_owned(),
    ];
    for v in vins {
        paths.push(format!("/api/v1/vehicles/{v}"));
        paths.push(format!("/api/v1/vehicles/{v}/timeline?limit=1000"));
        paths.push(format!("/api/v1/vehicles/{v}/timeline?limit=3"));
        paths.push(format!("/api/v1/vehicles/{v}/readings"));
    }
    let mut out = Vec::new();
    for p in paths {
        let (status, body) = get_json(&format!("{api}{p}")).await;
        assert_eq!(status, 200, "GET {p}: {body}");
        out.push((p, body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_moves_into_postgres_with_the_same_answers() {
    let Some(target) = TestStore::new(StoreKind::Postgres, "import").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let north = Receiver::start(SECRET_NORTH, receiver_clock(&clock))
        .await
        .unwrap();
    let mut c: Config = config(dir.path(), BrokerKind::Embedded, "import").unwrap();
    c.partner = vec![partner(
        "dealer-north",
        north.url(),
        SECRET_NORTH,
        Some(TOKEN_NORTH),
    )];
    c.alerts = AlertsConfig {
        fallback: Some("dealer-north".into()),
        ..AlertsConfig::default()
    };
    c.fleet.tick_ms = 3_600_000;
    let vins = [
        "WP0ZZZ99ZTS392124",
        "WVWZZZ1JZXW000001",
        "WVWZZZ1JZXW000002",
    ];

    // A real run on sled: records, a registration, a critical fault (an alert delivered), a
    // maintenance item due, an API partner, time moving on.
    let before = {
        let (cloud, mut car) = start_with_car(&c, &clock, "import-car").await.unwrap();
        let api = format!("http://{}", cloud.ready().api);
        let put = |path: String, body: &'static str| {
            let url = format!("{api}{path}");
            async move {
                rapport_harness::http::request(
                    reqwest::Method::PUT,
                    &url,
                    Some(OPERATOR),
                    Some(body),
                )
                .await
            }
        };
        let (status, body) = put(
            format!("/api/v1/vehicles/{}/registration", vins[2]),
            r#"{"category":"commercial","line":"van 2025","delivered":"2025-11-02","dealer":"dealer-north","region":"north","consents":{"partner_sharing":true,"engagement":true}}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = put(
            "/api/v1/partners/desk-2".into(),
            r#"{"id":"desk-2","name":"Desk 2","kind":"dealer","webhook_url":"http://127.0.0.1:9/hook","secret":"whsec_ZGVzay1zZWNyZXQtMTIzNDU2Nzg5MDEyMzQ1Njc4","token":"desk2-token-0123456789abcdef0123456789"}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        for v in vins {
            send_and_wait(&cloud, &mut car, &uplink(vin(v), 1..=120, record)).await;
        }
        let fault = Uplink {
            vin: vin(vins[2]),
            records: vec![rapport_shared::Record {
                seq: 500,
                at: clock.now(),
                body: critical(0x0123),
            }],
        };
        send_and_wait(&cloud, &mut car, &fault).await;
        let due = Uplink {
            vin: vin(vins[1]),
            records: vec![rapport_shared::Record {
                seq: 500,
                at: clock.now(),
                body: maintenance("oil", MaintenanceStatus::Overdue),
            }],
        };
        send_and_wait(&cloud, &mut car, &due).await;
        assert!(
            north
                .wait_until(Duration::from_secs(10), |s| s.delivered >= 1)
                .await,
            "the alert's webhook was not delivered"
        );
        clock.advance_ms(20 * 86_400_000);
        cloud.tick_now().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a = answers(&api, &vins).await;
        cloud.shutdown().await.unwrap();
        a
    };
    let delivered = north.stats().delivered;

    // The move, at the same instant.
    let mut pg = c.clone();
    target.configure(&mut pg);
    let sled_dir = c.store_path();
    let now = clock.now();
    let summary = tokio::task::block_in_place(|| {
        rapport_cloud::store::import::import_sled(&sled_dir, &pg, now)
    })
    .unwrap();
    assert_eq!(summary.vehicles, 3, "{summary}");
    assert_eq!(summary.records, 3 * 120 + 2, "{summary}");
    assert!(summary.alerts >= 1 && summary.webhooks >= 1, "{summary}");
    // A second import is refused: the target is not empty.
    let again = tokio::task::block_in_place(|| {
        rapport_cloud::store::import::import_sled(&sled_dir, &pg, now)
    });
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.to_string().contains("not empty")),
        "{again:?}"
    );

    // The same answers from the PostgreSQL store.
    let (cloud, _car) = start_with_car(&pg, &clock, "import-car-2").await.unwrap();
    let api = format!("http://{}", cloud.ready().api);
    let after = answers(&api, &vins).await;
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "GET {path} differs after the move");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        north.stats().delivered,
        delivered,
        "nothing delivered again"
    );
    assert_eq!(north.stats().duplicates, 0);
    cloud.shutdown().await.unwrap();
}

/// The record log's size per record, indexes included, from small envelopes (the figure in
/// the report; the goal is ≤ 100 B).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_log_takes_few_bytes_per_record() {
    let Some(target) = TestStore::new(StoreKind::Postgres, "bytes").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), BrokerKind::Embedded, "bytes").unwrap();
    target.configure(&mut c);
    const VEHICLES: u64 = 200;
    const PER: u64 = 100;
    let bytes = tokio::task::block_in_place(|| {
        let store = Store::open(&c).unwrap();
        let now = Timestamp::from_millis(T0);
        for round in 0..PER / 4 {
            let group: Vec<Uplink> = (0..VEHICLES)
                .map(|i| {
                    let v = vin(&format!("WVWZZZ1JZXW{i:06}"));
                    uplink(v, round * 4 + 1..=round * 4 + 4, odometer_record)
                })
                .collect();
            store.ingest(None, &group, now).unwrap();
        }
        target
            .db()
            .unwrap()
            .with(|c| {
                c.batch_execute("VACUUM ANALYZE records")?;
                let row = c.query_one(
                    "SELECT sum(pg_total_relation_size(i.inhrelid))::int8, \
                     (SELECT count(*) FROM records) FROM pg_inherits i \
                     JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records'",
                    &[],
                )?;
                Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
            })
            .unwrap()
    });
    let (size, count) = bytes;
    assert_eq!(count as u64, VEHICLES * PER);
    let per = size as f64 / count as f64;
    println!("record log: {size} bytes for {count} records = {per:.1} B per record");
    assert!(per <= 100.0, "{per:.1} B per record");
}

/// A first ingest rate through the store port (no MQTT), small envelopes (1–4 records) in
/// groups of 64, the fleet's decisions on: sled, then PostgreSQL. A measurement for the
/// report, not a timed test: `cargo test -p rapport-cloud --test postgres -- --ignored
/// --nocapture ingest_rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name"]
async fn ingest_rate_through_the_store_port() {
    for kind in [StoreKind::Sled, StoreKind::Postgres] {
        let Some(target) = TestStore::new(kind, "rate").unwrap() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), BrokerKind::Embedded, "rate").unwrap();
        target.configure(&mut c);
        const VEHICLES: u64 = 1_000;
        const ROUNDS: u64 = 20;
        let (records, secs) = tokio::task::block_in_place(|| {
            let store = Store::open(&c).unwrap();
            let settings = rapport_cloud::fleet::shell::FleetSettings {
                layers: c.layers.clone(),
                alerts: c.alerts.clone(),
                ..Default::default()
            };
            let rules = rapport_cloud::fleet::shell::rules_from(&settings, Vec::new()).unwrap();
            let now = Timestamp::from_millis(T0);
            store.start_fleet(&rules, now).unwrap();
            let mut next = vec![1u64; VEHICLES as usize];
            let mut records = 0u64;
            let started = std::time::Instant::now();
            for round in 0..ROUNDS {
                let envelopes: Vec<Uplink> = (0..VEHICLES)
                    .map(|i| {
                        let n = 1 + (i + round) % 4;
                        let first = next[i as usize];
                        next[i as usize] += n;
                        records += n;
                        uplink(
                            vin(&format!("WVWZZZ1JZXW{i:06}")),
                            first..first + n,
                            odometer_record,
                        )
                    })
                    .collect();
                for group in envelopes.chunks(64) {
                    store.ingest(Some(&rules), group, now).unwrap();
                }
            }
            (records, started.elapsed().as_secs_f64())
        });
        println!(
            "{kind:?}: {records} records from {} envelopes in {secs:.2} s = {:.0} records/s",
            VEHICLES * ROUNDS,
            records as f64 / secs
        );
    }
}

/// Two instances' webhook senders on one PostgreSQL outbox: a due message is claimed by one
/// of them (never both at once); a claim whose holder died lapses with its lease and another
/// instance sends the message under the same id, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_send_each_webhook_once_and_a_dead_holders_claim_lapses() {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use rapport_cloud::clock::SharedClock;
    use rapport_cloud::store::{Claim, OutboxStore};
    use rapport_cloud::webhook::{Endpoint, Message, Secret, Sender, SenderConfig};

    let Some(target) = TestStore::new(StoreKind::Postgres, "claims").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), BrokerKind::Embedded, "claims").unwrap();
    target.configure(&mut c);
    // Two instances: two stores, each with its own pool.
    let (a, b) = tokio::task::block_in_place(|| {
        (
            Store::open(&c).unwrap().outbox(),
            Store::open(&c).unwrap().outbox(),
        )
    });
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let now = clock.now();
    const N: usize = 200;
    let claim = |holder: &str| Claim {
        holder: holder.to_owned(),
        lease: Duration::from_secs(60),
    };
    let ids: Vec<String> = (0..N).map(|i| format!("msg_claim{i:04}")).collect();
    tokio::task::block_in_place(|| {
        for id in &ids {
            let body = format!(r#"{{"type":"alert.maintenance","data":{{"alert":"{id}"}}}}"#);
            let msg = Message::new(id, "dealer-north", "alert.maintenance", body.into(), now);
            a.enqueue_now(&msg).unwrap();
        }
    });

    // The claim itself, step by step: what one instance holds, the other cannot take.
    let none = HashSet::new();
    let (first, rest, again) = tokio::task::block_in_place(|| {
        let first = a.claim_due(now, 10, &none, &claim("a")).unwrap();
        let rest = b.claim_due(now, N, &none, &claim("b")).unwrap();
        let again = a.claim_due(now, N, &none, &claim("a")).unwrap();
        (first, rest, again)
    });
    assert_eq!(first.messages.len(), 10);
    assert_eq!(first.next_at, Some(now), "the limit cut the claim short");
    let first_ids: Vec<&str> = first.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        first_ids,
        ids[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(rest.messages.len(), N - 10);
    assert!(
        rest.messages
            .iter()
            .all(|m| !first_ids.contains(&m.id.as_str()))
    );
    assert!(again.messages.is_empty(), "everything is claimed");
    let lapse = Timestamp::from_millis(T0 + 60_000);
    assert_eq!(
        again.next_at,
        Some(lapse),
        "the next chance is the first claim's lapse"
    );
    // Nobody records anything: both instances "died". Their claims lapse together.
    let after = tokio::task::block_in_place(|| a.claim_due(lapse, N, &none, &claim("c")).unwrap());
    assert_eq!(after.messages.len(), N);

    // Senders of two live instances, and one message claimed by an instance that died.
    let later = Timestamp::from_millis(T0 + 120_000);
    clock.set(later);
    let gone = tokio::task::block_in_place(|| {
        let gone = b.claim_due(later, 1, &none, &claim("gone")).unwrap();
        gone.messages[0].id.clone()
    });
    let secret = Secret::generate().unwrap();
    let receiver = Receiver::start(&secret.to_string(), receiver_clock(&clock))
        .await
        .unwrap();
    let endpoints: Arc<HashMap<String, Endpoint>> = Arc::new(HashMap::from([(
        "dealer-north".to_owned(),
        Endpoint {
            url: receiver.url(),
            secret,
            previous: Vec::new(),
        },
    )]));
    let mut running = Vec::new();
    for (holder, outbox) in [("a", a.clone()), ("b", b.clone())] {
        let shared: SharedClock = Arc::new(clock.clone());
        let config = SenderConfig {
            concurrency: 8,
            claim: claim(holder),
            ..SenderConfig::default()
        };
        let sender = Sender::new(outbox, endpoints.clone(), shared, config).unwrap();
        let counters = sender.counters();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4 * N);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sender.run(tx, async {
            let _ = stopped.await;
        }));
        running.push((counters, stop, task));
    }
    assert!(
        receiver
            .wait_until(Duration::from_secs(30), |s| s.delivered == (N - 1) as u64)
            .await,
        "{:?}",
        receiver.stats()
    );
    // The dead instance's claim holds the last one back until its lease lapses.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.stats().delivered, (N - 1) as u64);
    assert_eq!(
        tokio::task::block_in_place(|| a.state(&gone).unwrap())
            .map(|s| matches!(s, rapport_cloud::webhook::MessageState::Pending(_))),
        Some(true)
    );
    clock.set(Timestamp::from_millis(T0 + 180_001));
    assert!(
        receiver
            .wait_until(Duration::from_secs(10), |s| s.delivered == N as u64)
            .await,
        "{:?}",
        receiver.stats()
    );
    let mut attempts = Vec::new();
    for (counters, stop, task) in running {
        let _ = stop.send(());
        task.await.unwrap().unwrap();
        attempts.push(counters.attempts());
    }
    let stats = receiver.stats();
    println!("attempts by instance: {attempts:?}; receiver: {stats:?}");
    assert_eq!(stats.duplicates, 0, "no id sent twice");
    assert_eq!(stats.attempts, N as u64, "one request per message");
    assert_eq!(attempts.iter().sum::<u64>(), N as u64);
    let delivered = tokio::task::block_in_place(|| {
        ids.iter()
            .filter(|id| {
                matches!(
                    a.state(id).unwrap(),
                    Some(rapport_cloud::webhook::MessageState::Delivered(_))
                )
            })
            .count()
    });
    assert_eq!(delivered, N);
}
