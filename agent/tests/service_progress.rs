//! The driver is told, end to end over the real stack: the real `rapport-agent` binary on the
//! simulated car, syncing to a real mosquitto; the test plays the cloud — it publishes
//! `ServiceProgress` downlinks on the car's topic and decodes every uplink.
//!
//! What is shown:
//! - two stages of one case arrive while the car drives: nothing is on the screen while it
//!   moves; once it stands still (the agent run again on a parked script, the same store) only
//!   the newest is shown, and the cloud hears of that one only;
//! - a downlink id published again is applied once (the case's history holds each step once);
//! - two stages queued in the broker while the agent is offline arrive when it returns: only
//!   the newer is shown;
//! - `GET /v1/service` lists the cases with their stage, advisor, ETA and history;
//!   `POST /v1/service/{id}/answer` `cancel` closes the case (a second cancel is 409) and
//!   sends one `ServiceAnswer` record that reaches the broker; `left_car` twice sends one;
//! - the cases are kept in the store (`rapport-agent store`).
//!
//! Skipped with a message when mosquitto is not installed, unless
//! `RAPPORT_REQUIRE_MOSQUITTO=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rapport_harness::agent::{self, AgentProcess};
use rapport_harness::mosquitto::{Mosquitto, Options};
use rapport_harness::mqtt::Subscriber;
use rapport_shared::v1::downlink::{Downlink, DownlinkBody, DownlinkMessage};
use rapport_shared::v1::topic;
use rapport_shared::{
    DriverAnswer, PromptAction, PromptKind, RecordBody, ServiceProgress, ServiceStage, Timestamp,
    Uplink, Vin,
};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_rapport-agent");
/// How long any one wait may take before the test fails (a hang, not a slowness check).
const PATIENCE: Duration = Duration::from_secs(90);

async fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    rapport_harness::wait::wait_until(PATIENCE, what, ok).await;
}

fn write_script(dir: &Path, name: &str, step: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("odometer_m = 20000000\n[[steps]]\npower = \"running\"\n[[steps]]\n{step}\n"),
    )
    .unwrap();
    path
}

#[allow(clippy::too_many_arguments)]
fn progress(
    vin: Vin,
    id: u64,
    alert_id: u64,
    step: u32,
    stage: ServiceStage,
    subject: &str,
    advisor: Option<&str>,
    eta: Option<u64>,
) -> Vec<u8> {
    let now = rapport_agent::clock::wall_now();
    Downlink {
        vin,
        messages: vec![DownlinkMessage {
            id,
            at: now,
            body: DownlinkBody::ServiceProgress(ServiceProgress {
                alert_id,
                subject: subject.into(),
                critical: subject.starts_with('P'),
                stage,
                step,
                reached_at: now,
                partner: "Dealer North".into(),
                advisor: advisor.map(Into::into),
                eta: eta.map(Timestamp::from_millis),
            }),
        }],
    }
    .encode()
    .unwrap()
}

/// What the test's cloud decoded from the car's uplinks, in order.
type Seen = Arc<Mutex<Vec<RecordBody>>>;

fn shown(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|b| match b {
            RecordBody::Prompt(p)
                if p.kind == PromptKind::ServiceProgress && p.action == PromptAction::Shown =>
            {
                Some(p.prompt.clone())
            }
            _ => None,
        })
        .collect()
}

fn answers(seen: &Seen) -> Vec<(u64, DriverAnswer)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|b| match b {
            RecordBody::ServiceAnswer(a) => Some((a.alert_id, a.answer)),
            _ => None,
        })
        .collect()
}

struct Hmi {
    http: reqwest::Client,
    addr: SocketAddr,
}

impl Hmi {
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn case(&self, alert_id: u64) -> Option<Value> {
        let cases = self.get("/v1/service").await;
        cases
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["alert_id"] == json!(alert_id))
            .cloned()
    }

    async fn service_prompts(&self) -> Vec<(String, String)> {
        self.get("/v1/prompts")
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "service_progress")
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// Polls `f` until it says done (or the patience runs out).
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_reach_the_driver_gated_superseded_and_answered() {
    let Some(broker) = Mosquitto::start(Options::default()).unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = agent::syncing_passenger(dir.path(), broker.addr()).unwrap();
    let vin = config.vehicle.vin;
    let offset = i64::from(config.prompts.utc_offset_minutes);
    let config_path = agent::write(&config, dir.path()).unwrap();
    let driving = write_script(
        dir.path(),
        "drive.toml",
        "drive = { kmh = 60, secs = 36000 }",
    );
    let parked = write_script(dir.path(), "park.toml", "park = { secs = 36000 }");

    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let cloud = Subscriber::start(
        broker.addr(),
        "test-cloud",
        topic::UPLINK_FILTER,
        move |_, payload| {
            if let Ok(up) = Uplink::decode(payload) {
                sink.lock()
                    .unwrap()
                    .extend(up.records.into_iter().map(|r| r.body));
            }
        },
    )
    .await
    .unwrap();
    let down = topic::downlink(&vin);
    let http = reqwest::Client::new();

    // 1. Driving: two stages of case 7 arrive. Published again until applied (the agent
    // subscribes once connected); every repeat has the same id and is applied once.
    let mut car = AgentProcess::sim(AGENT, &config_path, &driving, 1).unwrap();
    let hmi = Hmi {
        http: http.clone(),
        addr: car.hmi,
    };
    until("the car drives", || async {
        hmi.get("/v1/vehicle").await["moving"] == json!(true)
    })
    .await;
    let eta = rapport_agent::clock::wall_now().as_millis() + 3_600_000;
    let contacted = progress(
        vin,
        101,
        7,
        2,
        ServiceStage::Contacted,
        "P0300",
        Some("Li Wei"),
        None,
    );
    let dispatched = progress(
        vin,
        102,
        7,
        3,
        ServiceStage::Dispatched,
        "P0300",
        None,
        Some(eta),
    );
    until("case 7 at step 3 on the car", || async {
        cloud.publish(&down, contacted.clone()).await;
        cloud.publish(&down, dispatched.clone()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        hmi.case(7).await.is_some_and(|c| c["step"] == json!(3))
    })
    .await;
    cloud.publish(&down, dispatched.clone()).await;
    let case = hmi.case(7).await.unwrap();
    let steps: Vec<u64> = case["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [2, 3], "each step once: {case}");
    assert_eq!(case["stage"], "dispatched");
    assert_eq!(case["advisor"], "Li Wei");
    assert_eq!(case["eta"], json!(eta));
    assert_eq!(case["partner"], "Dealer North");
    assert_eq!(case["closed"], json!(false));
    // Moving (the drive lasts ten hours): nothing about the case on the screen.
    assert_eq!(hmi.get("/v1/vehicle").await["moving"], json!(true));
    assert!(hmi.service_prompts().await.is_empty());
    car.process.terminate(Duration::from_secs(20)).unwrap();

    // 2. Offline: two stages of maintenance case 8 wait in the broker for the car's session.
    let booked_at = rapport_agent::clock::wall_now().as_millis() + 2 * 86_400_000;
    let raised = progress(vin, 103, 8, 1, ServiceStage::Raised, "oil", None, None);
    let booked = progress(
        vin,
        104,
        8,
        2,
        ServiceStage::Booked,
        "oil",
        None,
        Some(booked_at),
    );
    cloud.publish(&down, raised).await;
    cloud.publish(&down, booked).await;

    // 3. Back, standing still: case 7's newest stage and case 8's newer one are shown, no more.
    let mut car = AgentProcess::sim(AGENT, &config_path, &parked, 1).unwrap();
    let hmi = Hmi {
        http,
        addr: car.hmi,
    };
    until("both cases' newest stages on the screen", || async {
        let ids: Vec<String> = hmi
            .service_prompts()
            .await
            .into_iter()
            .map(|p| p.0)
            .collect();
        ids.contains(&"service:7:3".to_owned()) && ids.contains(&"service:8:2".to_owned())
    })
    .await;
    let prompts = hmi.service_prompts().await;
    let ids: Vec<&str> = prompts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(ids.len(), 2, "{prompts:?}");
    let eta_local = i64::try_from(eta / 60_000).unwrap() + offset;
    let hhmm = format!(
        "{:02}:{:02}",
        eta_local.rem_euclid(1440) / 60,
        eta_local.rem_euclid(60)
    );
    let text7 = &prompts.iter().find(|p| p.0 == "service:7:3").unwrap().1;
    assert!(
        text7.starts_with("Dealer North: technician on the way, arriving ")
            && text7.contains(&hhmm)
            && text7.ends_with("(P0300)"),
        "{text7} (expected {hhmm})"
    );
    let text8 = &prompts.iter().find(|p| p.0 == "service:8:2").unwrap().1;
    assert!(
        text8.starts_with("Dealer North: appointment booked for "),
        "{text8}"
    );
    // The cloud hears of the shown ones only (records go out in order: a shown 7:2 or 8:1
    // would come before the later ones).
    wait_for("both shows reach the cloud", || {
        let s = shown(&seen);
        s.contains(&"service:7:3".to_owned()) && s.contains(&"service:8:2".to_owned())
    })
    .await;
    let mut s = shown(&seen);
    s.sort();
    assert_eq!(s, ["service:7:3", "service:8:2"]);
    let case8 = hmi.case(8).await.unwrap();
    assert_eq!(case8["stage"], "booked");
    assert_eq!(case8["eta"], json!(booked_at));
    assert_eq!(case8["critical"], json!(false));

    // 4. The driver answers.
    let (status, body) = hmi
        .post("/v1/service/7/answer", r#"{"answer":"cancel"}"#)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["closed"], json!(true));
    assert_eq!(body["stage"], "cancelled");
    assert_eq!(body["answer"], "cancel");
    let (status, body) = hmi
        .post("/v1/service/7/answer", r#"{"answer":"cancel"}"#)
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("conflict")),
        "{body}"
    );
    for _ in 0..2 {
        let (status, body) = hmi
            .post("/v1/service/8/answer", r#"{"answer":"left_car"}"#)
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["answer"], "left_car");
        assert_eq!(body["closed"], json!(false));
    }
    for (path, body, want, code) in [
        (
            "/v1/service/999/answer",
            r#"{"answer":"cancel"}"#,
            404,
            "not_found",
        ),
        (
            "/v1/service/abc/answer",
            r#"{"answer":"cancel"}"#,
            400,
            "invalid_path",
        ),
        (
            "/v1/service/8/answer",
            r#"{"answer":"later"}"#,
            422,
            "unknown_answer",
        ),
        (
            "/v1/service/8/answer",
            r#"{"answer":"cancel","x":1}"#,
            422,
            "invalid_body",
        ),
        ("/v1/service/8/answer", "{", 400, "malformed_json"),
    ] {
        let (status, got) = hmi.post(path, body).await;
        assert_eq!(
            (status, &got["error"]["code"]),
            (want, &json!(code)),
            "{path} {body}: {got}"
        );
    }
    // The cancelled case leaves the screen.
    let ids: Vec<String> = hmi
        .service_prompts()
        .await
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(ids, ["service:8:2"]);
    // One record per answer reaches the broker. A consent change after them marks the end:
    // records leave in order, so once it is seen any second answer would have been too.
    let mut settings = hmi.get("/v1/settings").await;
    let granted = !settings["partner_sharing"].as_bool().unwrap();
    settings["partner_sharing"] = json!(granted);
    let put = hmi
        .http
        .put(format!("http://{}/v1/settings", hmi.addr))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    wait_for("the consent change after the answers", || {
        seen.lock().unwrap().iter().any(|b| {
            matches!(b, RecordBody::Consent(c) if c.granted == granted
                && c.consent == rapport_shared::ConsentKind::PartnerSharing)
        })
    })
    .await;
    assert_eq!(
        answers(&seen),
        [(7, DriverAnswer::Cancel), (8, DriverAnswer::LeftCar)]
    );
    car.process.terminate(Duration::from_secs(20)).unwrap();
    drop(cloud);

    // 5. Kept in the store (sled): both cases, the cancelled one closed.
    let dump = agent::store_dump(AGENT, &config_path).unwrap();
    let cases: Vec<(u64, u64, bool, u64)> = dump
        .iter()
        .filter(|l| l["kind"] == "service_case")
        .map(|l| {
            (
                l["alert_id"].as_u64().unwrap(),
                l["step"].as_u64().unwrap(),
                l["closed"].as_bool().unwrap(),
                l["answers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(cases, [(7, 3, true, 1), (8, 2, false, 1)]);
}
