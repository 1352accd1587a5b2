//! A vehicle's erasure reaches the car (docs/data-rights.md, "Erase"), end to end on both
//! store backends: the real `rapport-agent` binary on the simulated car syncing to a cloud
//! in this process (embedded broker, manual clock, a verifying partner receiver). The
//! operator erases the vehicle; the car gets the wipe downlink, forgets its fault and service
//! history and puts its settings back to their defaults (its odometer and maintenance
//! position kept), and confirms once — the same downlink delivered again changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rapport_harness::agent::{self, AgentProcess};
use rapport_harness::bed::{Bed, DEALER_NORTH, Plan, Registration};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use rapport_harness::process::Signal;
use rapport_shared::{RecordBody, Vin, topic};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_rapport-agent");
/// The passenger example's VIN.
const VIN: &str = "WVWZZZ1KZ8W012345";
const WAIT: Duration = Duration::from_secs(30);

fn write_config(dir: &Path, broker: std::net::SocketAddr) -> PathBuf {
    let c = agent::syncing_passenger(dir, broker).unwrap();
    let path = agent::write(&c, dir).unwrap();
    // A fault comes and goes while driving, then a long park (the erasure comes then).
    std::fs::write(
        dir.join("script.toml"),
        r#"
odometer_m = 20000000
[[steps]]
power = "running"
[[steps]]
park = { secs = 5 }
[[steps]]
set_fault = { obd = { code = 0x0300, mil = true } }
[[steps]]
drive = { kmh = 100, secs = 120 }
[[steps]]
clear_fault = { obd = { code = 0x0300, mil = false } }
[[steps]]
park = { secs = 36000 }
"#,
    )
    .unwrap();
    path
}

fn sync_store<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn hmi(
    method: reqwest::Method,
    agent: &AgentProcess,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut r =
        rapport_harness::http::client().request(method, format!("http://{}{path}", agent.hmi));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn wipe_reaches_the_car(kind: StoreKind) {
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let plan = Plan::escalating(
        &format!("rights-wipe-{kind:?}").to_lowercase(),
        now_ms,
        &[DEALER_NORTH],
    );
    let Some(mut bed) = Bed::start_on(kind, plan, |_| {}).await.unwrap() else {
        return;
    };
    bed.register(
        VIN,
        Registration {
            dealer: "dealer-north",
            category: "passenger",
            line: "e-compact 2025",
            delivered: "2025-01-01",
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), bed.cloud.ready().broker.unwrap());
    let mut car = AgentProcess::sim(AGENT, &config, &dir.path().join("script.toml"), 60).unwrap();
    let vin: Vin = VIN.parse().unwrap();

    // The driver's history on the car: settings changed, a service, a fault seen.
    hmi(
        reqwest::Method::PUT,
        &car,
        "/v1/settings",
        Some(serde_json::json!({"engagement_prompts": false, "partner_sharing": true, "muted": ["milestone"]})),
    )
    .await;
    hmi(
        reqwest::Method::POST,
        &car,
        "/v1/service",
        Some(serde_json::json!({"items": ["oil"]})),
    )
    .await;
    let store = bed.cloud.store().clone();
    bed.wait(WAIT, "the car's fault reached the cloud", || {
        sync_store(|| {
            store
                .records(&vin, 0, 100_000)
                .unwrap()
                .iter()
                .any(|r| matches!(r.body, RecordBody::DtcCleared(_)))
        })
    })
    .await;

    // Erase.
    let (status, erased) = bed
        .call(
            "POST",
            &format!("/api/v1/vehicles/{VIN}/erase"),
            OPERATOR,
            Some(r#"{"reason":"driver's request"}"#),
        )
        .await;
    assert_eq!(status, 200, "{erased}");
    let wipe_id = erased["wipe_downlink"].as_u64().unwrap();

    // The car wipes and confirms.
    bed.wait(WAIT, "the car's wipe confirmation", || {
        sync_store(|| store.erasure(&vin).unwrap()).is_some_and(|e| e.confirmed.is_some())
    })
    .await;
    let confirmed = sync_store(|| store.erasure(&vin).unwrap())
        .unwrap()
        .confirmed
        .unwrap();
    let settings = hmi(reqwest::Method::GET, &car, "/v1/settings", None).await;
    assert_eq!(settings["engagement_prompts"], true, "{settings}");
    assert_eq!(settings["partner_sharing"], false, "{settings}");
    assert_eq!(settings["muted"], serde_json::json!([]), "{settings}");

    // The same downlink again (a broker redelivering it): applied once, no second confirmation.
    let envelope = rapport_shared::Downlink {
        vin,
        messages: vec![rapport_shared::DownlinkMessage {
            id: wipe_id,
            at: bed.now(),
            body: rapport_shared::DownlinkBody::VehicleWipe(rapport_shared::VehicleWipe {
                erased_at: bed.now(),
            }),
        }],
    }
    .encode()
    .unwrap();
    bed.car.publish(&topic::downlink(&vin), envelope).await;
    bed.car.settle().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = sync_store(|| store.erasure(&vin).unwrap())
        .unwrap()
        .confirmed
        .unwrap();
    assert_eq!(later, confirmed, "one confirmation");

    car.process.signal(Signal::Term).unwrap();
    assert!(car.process.wait().unwrap().success());
    let dump = agent::store_dump(AGENT, &config).unwrap();
    let vehicle = dump.iter().find(|v| v["kind"] == "vehicle").unwrap();
    assert_eq!(vehicle["services"], 0, "service history wiped: {vehicle}");
    assert_eq!(vehicle["settings_default"], true, "{vehicle}");
    assert!(
        vehicle["odometer_km"].as_f64().unwrap() > 20_000.0,
        "odometer kept: {vehicle}"
    );
    assert!(
        vehicle["downlinks_applied"]
            .as_array()
            .unwrap()
            .contains(&Value::from(wipe_id)),
        "{vehicle}"
    );
    let dtcs: Vec<&Value> = dump.iter().filter(|v| v["kind"] == "dtc").collect();
    assert!(dtcs.is_empty(), "fault history wiped: {dtcs:?}");
    let oil = dump
        .iter()
        .find(|v| v["kind"] == "item" && v["id"] == "oil")
        .unwrap();
    assert_eq!(oil["services"], 1, "the maintenance position stays: {oil}");
    let confirmations = dump
        .iter()
        .filter(|v| {
            v["kind"] == "outbox"
                && v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("wipe_confirmed"))
        })
        .count();
    assert_eq!(confirmations, 0, "the confirmation left the outbox, once");
}

rapport_harness::on_both_backends!(wipe_reaches_the_car);
