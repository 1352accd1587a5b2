//! An owner change end to end over the real stack: the real `rapport-agent` binary on the
//! simulated car, syncing to a real cloud (embedded broker, sled store, real HTTP). The
//! driver gives both consents on the car's screen; the cloud sees them. The operator records
//! an owner change; the cloud turns both consents off, the car receives the owner-changed
//! downlink (tag 6), turns both off on its side, and confirms them with consent records the
//! cloud applies — consents off on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rapport_harness::agent::{self, AgentProcess};
use rapport_harness::bed::{Bed, DEALER_NORTH, DEALER_SOUTH, Plan, Registration};
use rapport_shared::{CivilDate, ConsentKind, RecordBody, Vin};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_rapport-agent");
const VIN: &str = "WVWZZZ1KZ8W012345";

fn write_config(dir: &Path, broker: std::net::SocketAddr) -> PathBuf {
    let c = agent::syncing_passenger(dir, broker).unwrap();
    let path = agent::write(&c, dir).unwrap();
    std::fs::write(
        dir.join("script.toml"),
        "odometer_m = 20000000\n[[steps]]\npower = \"running\"\n[[steps]]\npark = { secs = 36000 }\n",
    )
    .unwrap();
    path
}

/// The cloud's consent records of the car, in seq order: (kind, granted).
fn cloud_consents(bed: &Bed) -> Vec<(ConsentKind, bool)> {
    let vin: Vin = VIN.parse().unwrap();
    tokio::task::block_in_place(|| bed.cloud.store().records(&vin, 0, 10_000))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.body {
            RecordBody::Consent(c) => Some((c.consent, c.granted)),
            _ => None,
        })
        .collect()
}

fn cloud_driver_consents(bed: &Bed) -> Option<(bool, bool)> {
    let vin: Vin = VIN.parse().unwrap();
    tokio::task::block_in_place(|| bed.cloud.store().driver(&vin))
        .unwrap()
        .map(|d| (d.consents.engagement, d.consents.partner_sharing))
}

async fn car_settings(http: &reqwest::Client, hmi: std::net::SocketAddr) -> Value {
    http.get(format!("http://{hmi}/v1/settings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_change_turns_consents_off_in_the_cloud_and_on_the_car() {
    let now = rapport_agent::clock::wall_now();
    let plan = Plan::escalating("owner-e2e", now.as_millis(), &[DEALER_NORTH, DEALER_SOUTH]);
    let mut bed = Bed::start(plan, |_| {}).await.unwrap();
    bed.watch_downlinks().await.unwrap();
    bed.register(
        VIN,
        Registration {
            dealer: DEALER_NORTH.id,
            category: "passenger",
            line: "compact-2024",
            delivered: "2025-01-10",
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), bed.cloud.ready().broker.unwrap());
    let mut car = AgentProcess::sim(AGENT, &config, &dir.path().join("script.toml"), 1).unwrap();
    let http = reqwest::Client::new();

    // The first owner gives both consents on the car's screen; the cloud sees them.
    let mut wanted = car_settings(&http, car.hmi).await;
    wanted["engagement_prompts"] = json!(true);
    wanted["partner_sharing"] = json!(true);
    let put = http
        .put(format!("http://{}/v1/settings", car.hmi))
        .json(&wanted)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    bed.wait(
        Duration::from_secs(30),
        "the car's consents reach the cloud",
        || cloud_driver_consents(&bed) == Some((true, true)),
    )
    .await;
    let before = cloud_consents(&bed).len();

    // Sold today to an owner whose dealer is south.
    let today = CivilDate::of(bed.now()).to_string();
    let (status, answer) = bed
        .call(
            "POST",
            &format!("/api/v1/vehicles/{VIN}/owner-change"),
            &bed.operator,
            Some(&format!(
                r#"{{"effective":"{today}","dealer":"{}"}}"#,
                DEALER_SOUTH.id
            )),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], true);
    // Off in the cloud at once.
    assert_eq!(cloud_driver_consents(&bed), Some((false, false)));

    // The car applies the downlink: both off on its side...
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = car_settings(&http, car.hmi).await;
        if s["engagement_prompts"] == json!(false) && s["partner_sharing"] == json!(false) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the car's consents stayed on: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ... and confirms both to the cloud, which stays off.
    bed.wait(Duration::from_secs(30), "the car's confirmation", || {
        cloud_consents(&bed).len() >= before + 2
    })
    .await;
    let all = cloud_consents(&bed);
    let confirmed = &all[before..];
    assert!(
        confirmed.contains(&(ConsentKind::EngagementPrompts, false))
            && confirmed.contains(&(ConsentKind::PartnerSharing, false)),
        "{confirmed:?}"
    );
    assert_eq!(cloud_driver_consents(&bed), Some((false, false)));
    assert_eq!(
        bed.downlinks()
            .iter()
            .flat_map(|d| &d.messages)
            .filter(|m| matches!(m.body, rapport_shared::DownlinkBody::OwnerChanged(_)))
            .count(),
        1
    );
    car.process.kill().unwrap();
}
