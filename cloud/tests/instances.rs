//! Several cloud instances on one PostgreSQL store (each "instance" here is a store opened
//! on its own, with its own pool, as a process would): a vehicle's batches that reach two
//! instances in reverse order — one after the other, and at the same moment — end as they
//! do in order; downlinks decided by an instance that died before handing them over go out
//! from another once its claim lapses, never from two; an instance whose database goes away
//! stops acking, says so on `/healthz` and in `rapport_store_up`, and resumes on its own
//! when the database is back, every record applied once.
//!
//! PostgreSQL tests: without a server at 127.0.0.1:5432 they print "skipping" and pass,
//! unless `RAPPORT_REQUIRE_POSTGRES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rapport_cloud::clock::{Clock, ManualClock};
use rapport_cloud::config::{Config, DbUrl};
use rapport_cloud::fleet::core::Rules;
use rapport_cloud::fleet::shell::{FleetSettings, rules_from};
use rapport_cloud::store::Store;
use rapport_harness::cloud::{BrokerKind, StoreKind, TestStore, config, partner, start_with_car};
use rapport_harness::records::{Sequencer, critical, first_drive, maintenance, odometer, vin};
use rapport_shared::{MaintenanceStatus, Timestamp, Uplink, Vin};
use serde_json::Value;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;
const DAY: u64 = 86_400_000;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn rules(c: &Config) -> Rules {
    let settings = FleetSettings {
        layers: c.layers.clone(),
        alerts: c.alerts.clone(),
        partners: c.partner.clone(),
        ..Default::default()
    };
    rules_from(&settings, Vec::new()).unwrap()
}

/// A fresh PostgreSQL store's config with one dealer (`None`: no server, skipped).
fn pg_config(label: &str, dir: &std::path::Path) -> Option<(TestStore, Config)> {
    let target = TestStore::new(StoreKind::Postgres, label).unwrap()?;
    let mut c = config(dir, BrokerKind::Embedded, label).unwrap();
    c.partner = vec![partner(
        "dealer-north",
        "http://127.0.0.1:9/hook".into(),
        SECRET,
        Some("north-token-0123456789abcdef0123456789"),
    )];
    target.configure(&mut c);
    Some((target, c))
}

/// Registers `cars` with the dealer and the consent to share with it (so a critical fault
/// opens an alert).
fn register(store: &Store, rules: &Rules, cars: &[Vin], now: Timestamp) {
    let mut csv = String::from("vin,category,line,delivered,dealer,partner_sharing\n");
    for v in cars {
        csv.push_str(&format!(
            "{v},passenger,golf,2025-12-20,dealer-north,true\n"
        ));
    }
    let entries = rapport_cloud::fleet::registry::parse_csv(&csv).unwrap();
    store.register(rules, &entries, true, now).unwrap();
}

/// A vehicle's story in four envelopes: a first drive, weeks of driving, a maintenance item
/// done and a critical fault, more driving.
fn story(v: Vin) -> Vec<Uplink> {
    let mut seq = Sequencer::default();
    let at = |d: u64| Timestamp::from_millis(T0 + d * DAY);
    vec![
        seq.uplink(v, at(0), first_drive(12)),
        seq.timed(v, (1..=20).map(|d| (at(d), odometer(12 + d * 55)))),
        seq.timed(
            v,
            [
                (at(21), maintenance("oil", MaintenanceStatus::Done)),
                (at(22), critical(0x0102)),
                (at(22), odometer(1_300)),
            ],
        ),
        seq.timed(v, (23..=40).map(|d| (at(d), odometer(1_300 + d * 40)))),
    ]
}

/// Everything the store says about `v` that is the result of its records, whatever order
/// they came in: the vehicle's state, its record log, the driver, its layers, the alerts
/// (state, kind, subject, partner, the faults and checklist they carry), and the timeline's
/// entries other than layer moves, with the layers the moves ended at.
///
/// Left out, on purpose: alert ids and the positions of timeline entries (sequences hand
/// them out in arrival order across vehicles); the odometer an alert quotes (the car's
/// odometer when the cloud learned of the fault — a later batch that arrived first makes
/// it the later reading, which is what the dealer should see); and the path of layer moves
/// (the cloud places a driver on what it knows at each step; with a later batch first the
/// first placement is made on it, and the next batch moves the driver to the same layers).
fn view(store: &Store, v: &Vin) -> Value {
    let mut alerts: Vec<Value> = store
        .alerts(false, Some(v))
        .unwrap()
        .into_iter()
        .map(|a| {
            let mut a = serde_json::to_value(a).unwrap();
            let o = a.as_object_mut().unwrap();
            o.remove("id");
            if let Some(p) = o.get_mut("payload").and_then(Value::as_object_mut) {
                p.remove("alert_id");
                p.remove("odometer_km");
            }
            a
        })
        .collect();
    alerts.sort_by_key(|a| a.to_string());
    let mut timeline = Vec::new();
    let mut last_layers = Value::Null;
    let mut newest_first = store.timeline_newest_first(v, None);
    for e in newest_first.by_ref() {
        let (_, stamped) = e.unwrap();
        let mut e = serde_json::to_value(stamped).unwrap();
        let o = e.as_object_mut().unwrap();
        o.remove("id");
        if o.get("kind").and_then(Value::as_str) == Some("layer") {
            if last_layers.is_null() {
                last_layers = o.get("to").cloned().unwrap_or_default();
            }
            continue;
        }
        timeline.push(e.to_string());
    }
    timeline.sort();
    serde_json::json!({
        "state": store.vehicle(v).unwrap(),
        "records": store.records(v, 0, 10_000).unwrap(),
        "driver": store.driver(v).unwrap(),
        "layers": store.layers(v).unwrap(),
        "alerts": alerts,
        "timeline": timeline,
        "layers_moved_to": last_layers,
    })
}

/// One vehicle's envelopes: in order at one instance, against reversed and split between
/// two instances (the later half at instance B first, then the earlier at A).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicles_batches_at_two_instances_in_reverse_order_end_as_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_in_order_db, in_order)) = pg_config("order_a", dir.path()) else {
        return;
    };
    let Some((_reverse_db, reverse)) = pg_config("order_b", dir.path()) else {
        return;
    };
    let car = vin("WVWZZZ1JZXW000001");
    let envelopes = story(car);
    let now = Timestamp::from_millis(T0 + 41 * DAY);
    tokio::task::block_in_place(|| {
        let r = rules(&in_order);
        let one = Store::open(&in_order).unwrap();
        one.start_fleet(&r, now).unwrap();
        register(&one, &r, &[car], now);
        for e in &envelopes {
            one.ingest(Some(&r), std::slice::from_ref(e), now).unwrap();
        }
        let (a, b) = (
            Store::open(&reverse).unwrap(),
            Store::open(&reverse).unwrap(),
        );
        a.start_fleet(&r, now).unwrap();
        register(&a, &r, &[car], now);
        for e in envelopes[2..].iter().rev() {
            b.ingest(Some(&r), std::slice::from_ref(e), now).unwrap();
        }
        for e in envelopes[..2].iter().rev() {
            a.ingest(Some(&r), std::slice::from_ref(e), now).unwrap();
        }
        let (expected, got) = (view(&one, &car), view(&a, &car));
        assert_eq!(
            expected["records"].as_array().map(Vec::len),
            Some(envelopes.iter().map(|e| e.records.len()).sum())
        );
        assert!(expected["layers"].is_object(), "placed: {expected}");
        assert!(
            !expected["alerts"].as_array().unwrap().is_empty(),
            "the critical fault opened an alert: {expected}"
        );
        if got != expected {
            for key in expected.as_object().unwrap().keys() {
                if got[key] != expected[key] {
                    println!(
                        "{key}:\n in order: {}\n reversed: {}",
                        expected[key], got[key]
                    );
                }
            }
        }
        assert_eq!(got, expected);
        // Both instances read the same.
        assert_eq!(view(&b, &car), expected);
    });
}

/// Forty vehicles, each vehicle's envelopes split between two instances that ingest at the
/// same moment, each walking its share backwards: every vehicle ends as in order (the row
/// lock serializes the two instances' transactions of one vehicle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_ingesting_one_fleet_at_once_in_reverse_order_end_as_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_in_order_db, in_order)) = pg_config("concur_a", dir.path()) else {
        return;
    };
    let Some((_reverse_db, reverse)) = pg_config("concur_b", dir.path()) else {
        return;
    };
    let cars: Vec<Vin> = (0..40)
        .map(|i| vin(&format!("WVWZZZ1JZXW{i:06}")))
        .collect();
    let stories: Vec<Vec<Uplink>> = cars.iter().map(|v| story(*v)).collect();
    let now = Timestamp::from_millis(T0 + 41 * DAY);
    tokio::task::block_in_place(|| {
        let r = Arc::new(rules(&in_order));
        let one = Store::open(&in_order).unwrap();
        one.start_fleet(&r, now).unwrap();
        register(&one, &r, &cars, now);
        for s in &stories {
            for e in s {
                one.ingest(Some(&r), std::slice::from_ref(e), now).unwrap();
            }
        }
        let (a, b) = (
            Store::open(&reverse).unwrap(),
            Store::open(&reverse).unwrap(),
        );
        a.start_fleet(&r, now).unwrap();
        register(&a, &r, &cars, now);
        // Instance A takes envelopes 0 and 3, B takes 1 and 2; each walks backwards, in
        // groups of eight envelopes (several vehicles per transaction, as the ingest groups).
        let share = |picks: [usize; 2]| -> Vec<Uplink> {
            picks
                .iter()
                .rev()
                .flat_map(|&p| stories.iter().map(move |s| s[p].clone()))
                .collect()
        };
        let (for_a, for_b) = (share([0, 3]), share([1, 2]));
        std::thread::scope(|scope| {
            for (store, envelopes) in [(&a, &for_a), (&b, &for_b)] {
                let r = Arc::clone(&r);
                scope.spawn(move || {
                    for group in envelopes.chunks(8) {
                        store.ingest(Some(&r), group, now).unwrap();
                    }
                });
            }
        });
        let mut differing = Vec::new();
        for car in &cars {
            if view(&one, car) != view(&a, car) {
                differing.push(car.to_string());
            }
        }
        assert!(differing.is_empty(), "differ from in order: {differing:?}");
        assert_eq!(a.matrix(None).unwrap(), one.matrix(None).unwrap());
    });
}

/// Downlinks decided by an instance (claimed by it in the deciding transaction) and left
/// over from before (unclaimed): each is claimed by exactly one live instance, and one whose
/// holder died goes out from another once its lease lapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_downlinks_go_out_once_from_another_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let Some((target, c)) = pg_config("downlinks", dir.path()) else {
        return;
    };
    let db = target.db().unwrap();
    let now = T0 + DAY;
    let lease = rapport_cloud::store::DOWNLINK_LEASE.as_millis() as u64;
    tokio::task::block_in_place(|| {
        let (a, b) = (Store::open(&c).unwrap(), Store::open(&c).unwrap());
        let v = "WVWZZZ1JZXW000001";
        // 1: decided by an instance that died before publishing (its claim runs to now +
        // lease); 2: left from before claims (an imported sled queue).
        db.with(move |client| {
            client.execute(
                "INSERT INTO downlinks (id, vin, envelope, claimed_by, lease_until) \
                 VALUES (1, $1, '\\x01', 'dead-instance', $2), (2, $1, '\\x02', NULL, NULL)",
                &[&v, &((now + lease) as i64)],
            )
        })
        .unwrap();
        let at = |t: u64| Timestamp::from_millis(t);
        let ids = |claimed: Vec<(u64, Vec<u8>)>| -> Vec<u64> {
            claimed.into_iter().map(|(id, _)| id).collect()
        };
        assert_eq!(ids(a.claim_downlinks(at(now), 10).unwrap()), vec![2]);
        assert_eq!(
            ids(b.claim_downlinks(at(now), 10).unwrap()),
            Vec::<u64>::new()
        );
        assert_eq!(
            ids(a.claim_downlinks(at(now + 1_000), 10).unwrap()),
            Vec::<u64>::new(),
            "A holds 2 already; 1 is still the dead instance's"
        );
        // The dead instance's lease lapses (and A never handed 2 over either).
        assert_eq!(
            ids(b.claim_downlinks(at(now + lease + 1), 10).unwrap()),
            vec![1, 2]
        );
        assert_eq!(
            ids(a.claim_downlinks(at(now + lease + 2), 10).unwrap()),
            Vec::<u64>::new()
        );
        b.remove_downlink(1).unwrap();
        b.remove_downlink(2).unwrap();
        assert_eq!(
            ids(a.claim_downlinks(at(now + 10 * lease), 10).unwrap()),
            Vec::<u64>::new(),
            "handed over: gone"
        );
    });
    drop(c);
}

/// A TCP proxy between the cloud and PostgreSQL that can cut every connection and refuse
/// new ones, as a database host that went away does.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut2, conns2) = (Arc::clone(&cut), Arc::clone(&conns));
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { port, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn health(api: std::net::SocketAddr) -> (u16, Value) {
    rapport_harness::cloud::get_json(&format!("http://{api}/healthz")).await
}

async fn metric(api: std::net::SocketAddr, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// The database goes away under a running cloud: uplinks are not acked (the broker keeps
/// them), `/healthz` answers 503 and `rapport_store_up` 0; when it is back the cloud resumes
/// on its own (no restart) and every record is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_loses_its_database_stops_acking_and_resumes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let Some((target, mut c)) = pg_config("outage", dir.path()) else {
        return;
    };
    let db = target.db().unwrap();
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    c.store.url = Some(DbUrl::new(
        db.url()
            .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port)),
    ));
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let (cloud, mut car) = start_with_car(&c, &clock, "car-outage").await.unwrap();
    let api = cloud.ready().api;
    let v = vin("WVWZZZ1JZXW000001");
    let mut seq = Sequencer::default();
    let applied = || cloud.metrics().records_applied.load(Ordering::SeqCst);
    rapport_harness::cloud::send_and_wait(
        &cloud,
        &mut car,
        &seq.uplink(v, clock.now(), first_drive(10)),
    )
    .await;
    let before = applied();
    assert_eq!(health(api).await.0, 200);
    assert_eq!(metric(api, "rapport_store_up").await, 1);

    proxy.cut();
    let mut sent = 0;
    for d in 1..=5u64 {
        let up = seq.timed(v, (0..4).map(|i| (clock.now(), odometer(10 + d * 10 + i))));
        sent += up.records.len() as u64;
        car.send(&up).await;
    }
    car.settle().await;
    rapport_harness::wait::wait_until(Duration::from_secs(20), "healthz 503", || {
        !cloud.metrics().is_store_up()
    })
    .await;
    let (status, body) = health(api).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["store"]["up"], false);
    assert_eq!(metric(api, "rapport_store_up").await, 0);
    let acks = cloud.metrics().acks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        applied(),
        before,
        "nothing applied while the database is away"
    );
    assert_eq!(
        cloud.metrics().acks.load(Ordering::SeqCst),
        acks,
        "nothing acked while the database is away"
    );

    proxy.restore();
    rapport_harness::wait::wait_until(
        Duration::from_secs(40),
        "records applied after the outage",
        || applied() == before + sent,
    )
    .await;
    rapport_harness::wait::wait_until(Duration::from_secs(10), "store up", || {
        cloud.metrics().is_store_up()
    })
    .await;
    assert_eq!(health(api).await.0, 200);
    assert!(metric(api, "rapport_store_outages_total").await >= 1);
    let total = before + sent;
    let rows = db
        .with(|client| {
            client
                .query_one("SELECT count(*), count(DISTINCT key) FROM records", &[])
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
        })
        .unwrap();
    assert_eq!(rows, (total as i64, total as i64), "each record once");
    cloud.shutdown().await.unwrap();
}

/// A partner added, and then removed, through one instance's API is in the other
/// instance's directory (its API, its webhook endpoints) within a sweep, without a restart;
/// the layer matrix and the vehicles list answer the same from both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_added_at_one_instance_is_known_at_the_other() {
    use rapport_harness::cloud::OPERATOR;
    use rapport_harness::http::request;
    use reqwest::Method;

    let dir = tempfile::tempdir().unwrap();
    let Some((_db, a_config)) = pg_config("partners", dir.path()) else {
        return;
    };
    let mut b_config = a_config.clone();
    b_config.broker.client_id = "partners-b".into();
    b_config.store.path = dir.path().join("store-b");
    let clock = ManualClock::new(Timestamp::from_millis(T0));
    let (a, mut car) = start_with_car(&a_config, &clock, "car-partners")
        .await
        .unwrap();
    let (b, _car_b) = start_with_car(&b_config, &clock, "car-partners-b")
        .await
        .unwrap();
    let (api_a, api_b) = (a.ready().api, b.ready().api);
    let partners = |api: std::net::SocketAddr| async move {
        let (status, body) = request(
            Method::GET,
            &format!("http://{api}/api/v1/partners"),
            Some(OPERATOR),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let mut ids: Vec<String> = body["partners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(partners(api_b).await, vec!["dealer-north"]);
    let (status, body) = request(
        Method::PUT,
        &format!("http://{api_a}/api/v1/partners/dealer-east"),
        Some(OPERATOR),
        Some(&format!(
            r#"{{"id":"dealer-east","name":"East","kind":"dealer","webhook_url":"http://127.0.0.1:9/east","secret":"{SECRET}","token":"east-token-0123456789abcdef0123456789"}}"#
        )),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    assert_eq!(partners(api_a).await, vec!["dealer-east", "dealer-north"]);
    let endpoint_at_b = || {
        b.fleet()
            .endpoints
            .read()
            .unwrap()
            .contains_key("dealer-east")
    };
    rapport_harness::wait::wait_until(
        rapport_cloud::fleet::shell::SWEEP_EVERY * 3,
        "the partner at instance B",
        endpoint_at_b,
    )
    .await;
    assert_eq!(partners(api_b).await, vec!["dealer-east", "dealer-north"]);

    let (status, body) = request(
        Method::DELETE,
        &format!("http://{api_a}/api/v1/partners/dealer-east"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    rapport_harness::wait::wait_until(
        rapport_cloud::fleet::shell::SWEEP_EVERY * 3,
        "the partner gone at instance B",
        || !endpoint_at_b(),
    )
    .await;
    assert_eq!(partners(api_b).await, vec!["dealer-north"]);

    // What one instance applied, the other reads.
    let v = vin("WVWZZZ1JZXW000001");
    let mut seq = Sequencer::default();
    rapport_harness::cloud::send_and_wait(
        &a,
        &mut car,
        &seq.uplink(v, clock.now(), first_drive(10)),
    )
    .await;
    for path in ["/api/v1/layers", "/api/v1/vehicles"] {
        let (sa, at_a) = request(
            Method::GET,
            &format!("http://{api_a}{path}"),
            Some(OPERATOR),
            None,
        )
        .await;
        let (sb, at_b) = request(
            Method::GET,
            &format!("http://{api_b}{path}"),
            Some(OPERATOR),
            None,
        )
        .await;
        assert_eq!((sa, sb), (200, 200), "{path}: {at_a} {at_b}");
        assert_eq!(at_a, at_b, "{path}");
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Operations change a `[layers]` threshold and restart: every stored driver is re-placed
/// with the new thresholds in the background (the start does not wait for it), the change
/// recorded on each timeline; a start with unchanged thresholds re-places nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_layer_thresholds_re_place_every_driver_after_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let Some((target, before)) = pg_config("thresholds", dir.path()) else {
        return;
    };
    let db = target.db().unwrap();
    let cars: Vec<Vin> = (0..30)
        .map(|i| vin(&format!("WVWZZZ1JZXW{i:06}")))
        .collect();
    let now = Timestamp::from_millis(T0 + 41 * DAY);
    let mut after = before.clone();
    // Delivered 2025-12-20, 53 days before `now`: a novice below 180 days, not below 30.
    after.layers.car.novice_until_days = 30;
    let layers_of = |store: &Store| -> Vec<String> {
        cars.iter()
            .map(|v| {
                let l = serde_json::to_value(store.layers(v).unwrap()).unwrap();
                l["car"].as_str().unwrap_or("none").to_owned()
            })
            .collect()
    };
    let moves = |store: &Store| -> usize {
        cars.iter()
            .map(|v| {
                store
                    .timeline_newest_first(v, None)
                    .filter(|e| matches!(e, Ok((_, s)) if serde_json::to_value(s).unwrap()["kind"] == "layer"))
                    .count()
            })
            .sum()
    };
    let recorded = || {
        db.with(|c| {
            c.query_opt("SELECT value FROM fleet_settings WHERE key = 'layers'", &[])
                .map(|r| r.map(|r| r.get::<_, String>(0)))
        })
        .unwrap()
    };
    tokio::task::block_in_place(|| {
        let r = rules(&before);
        let store = Store::open(&before).unwrap();
        store.start_fleet(&r, now).unwrap();
        register(&store, &r, &cars, now);
        for v in &cars {
            let mut seq = Sequencer::default();
            store
                .ingest(Some(&r), &[seq.uplink(*v, now, first_drive(12))], now)
                .unwrap();
        }
        assert!(layers_of(&store).iter().all(|c| c == "novice"));
        assert_eq!(recorded(), Some(serde_json::to_string(&r.layers).unwrap()));
    });
    let (moves_before, wanted) = tokio::task::block_in_place(|| {
        let r = rules(&after);
        let store = Store::open(&after).unwrap();
        let moves_before = moves(&store);
        store.start_fleet(&r, now).unwrap();
        (moves_before, serde_json::to_string(&r.layers).unwrap())
    });
    rapport_harness::wait::wait_until(Duration::from_secs(30), "the re-placement", || {
        tokio::task::block_in_place(recorded) == Some(wanted.clone())
    })
    .await;
    tokio::task::block_in_place(|| {
        let r = rules(&after);
        let store = Store::open(&after).unwrap();
        let placed = layers_of(&store);
        assert!(
            placed.iter().all(|c| c != "novice" && c != "none"),
            "{placed:?}"
        );
        let moved = moves(&store);
        assert_eq!(
            moved,
            moves_before + cars.len(),
            "one layer move per driver"
        );
        // The same thresholds again: nothing to do.
        store.start_fleet(&r, now).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(moves(&store), moved);
    });
}
