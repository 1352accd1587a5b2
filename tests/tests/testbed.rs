//! The testbed's story end to end, asserted from each party's side: what the drivers saw on
//! their screens and did, what the partners received (signed, verified by their own code) and
//! answered, what the cloud's API says of the layers — plus the same seed telling the same
//! story, and the dashboard showing the testbed's vehicles in a real headless browser.
//!
//! Everything is real: the embedded broker, the cloud on sled, each car an agent on its own
//! sled store reading a virtual CAN bus, MQTT in between, HTTP for the webhooks and the API.

use std::collections::BTreeMap;
use std::time::Duration;

use rapport_harness::browser::Browser;
use rapport_shared::Vin;
use rapport_testbed::scenario::cast::Kind;
use rapport_testbed::scenario::story::{Event, What};
use rapport_testbed::scenario::{OPERATOR_TOKEN, Options, Testbed};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn options(days: u32, seed: u64) -> Options {
    Options {
        vehicles: 4,
        days,
        speedup: 0.0,
        seed,
        ..Options::default()
    }
}

async fn run(options: Options) -> Testbed {
    let mut bed = Testbed::start(options).await.unwrap();
    while !bed.finished() {
        bed.step().await.unwrap();
    }
    bed
}

async fn get(bed: &Testbed, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", bed.api_base()))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

fn vin_of(bed: &Testbed, kind: Kind) -> Vin {
    bed.vehicles
        .iter()
        .find(|v| v.cast.kind == kind)
        .map(|v| v.vin())
        .unwrap()
}

fn of(bed: &Testbed, vin: Vin) -> Vec<&Event> {
    bed.events.iter().filter(|e| e.vin == Some(vin)).collect()
}

fn shown<'a>(events: &[&'a Event], kind: &str) -> Vec<&'a Event> {
    events
        .iter()
        .copied()
        .filter(|e| matches!(&e.what, What::PromptShown { kind: k, .. } if k == kind))
        .collect()
}

/// Sixteen days: break-in, a misfire and a truck's overheating (critical, at once to the
/// dealer), a first service coming due, booked, alerted, acknowledged and done at the
/// workshop; layers moving; every webhook signed; every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_days_as_each_party_saw_them() {
    let bed = run(options(16, 1)).await;
    let new_car = vin_of(&bed, Kind::NewCar);
    let first = vin_of(&bed, Kind::FirstService);
    let truck = vin_of(&bed, Kind::Truck);

    // --- The drivers. The new car's driver was told how to run the car in.
    let ana = of(&bed, new_car);
    assert!(!shown(&ana, "break_in").is_empty(), "no break-in advice");
    let ana_km = bed.truth(&new_car).0 as f64 / 1000.0;
    if ana_km > 1_510.0 {
        assert_eq!(shown(&ana, "break_in_complete").len(), 1, "{ana_km} km");
    }
    // The misfire: on the bus, then on the screen as critical within a glance (30 s), acked.
    for (vin, code, partner) in [
        (new_car, "P0300", "dealer-north"),
        (truck, "SPN110/FMI0", "truck-centre"),
    ] {
        let events = of(&bed, vin);
        let appeared = events
            .iter()
            .find(|e| matches!(&e.what, What::Fault { appeared: true, .. }))
            .unwrap_or_else(|| panic!("{code}: no fault on the bus"));
        let faults = shown(&events, "fault");
        let prompt = faults
            .iter()
            .find(|e| matches!(&e.what, What::PromptShown { critical: true, title, .. } if title.contains(code)))
            .unwrap_or_else(|| panic!("{code}: no critical prompt: {faults:?}"));
        let late = prompt.at.saturating_since(appeared.at);
        assert!(
            late <= Duration::from_secs(30),
            "{code} shown {late:?} after"
        );
        assert!(events.iter().any(|e| matches!(&e.what,
            What::DriverActed { kind, accepted: true, .. } if kind == "fault")));
        // The dealer got it, signed, with the vehicle, the code and no consents.
        let bodies = bed.partners.bodies(partner);
        let alert = bodies
            .iter()
            .find(|b| b["type"] == "alert.critical_fault" && b["vin"] == vin.to_string())
            .unwrap_or_else(|| panic!("{partner} got no critical fault for {vin}: {bodies:?}"));
        assert_eq!(alert["subject"], code);
        assert!(alert.get("consents").is_none() && alert.get("partner_sharing").is_none());
        let created = alert["created_at"].as_u64().unwrap();
        let delay = created.saturating_sub(appeared.at.as_millis());
        // The cloud sees the record after the step it was written in (10 simulated minutes).
        assert!(
            delay <= 11 * 60_000,
            "{code}: alert {delay} ms after the fault"
        );
    }

    // --- The first service: due soon, due, booked; the dealer told, acknowledges; the
    // workshop records it; the alert resolves.
    let ben = of(&bed, first);
    let services = shown(&ben, "first_service");
    assert!(services.len() >= 2, "{services:?}");
    assert!(ben.iter().any(|e| matches!(&e.what,
        What::DriverActed { kind, action, accepted: true, .. } if kind == "first_service" && action == "book")));
    let north = bed.partners.bodies("dealer-north");
    let maintenance = north
        .iter()
        .find(|b| b["type"] == "alert.maintenance_due" && b["vin"] == first.to_string())
        .unwrap_or_else(|| panic!("no maintenance alert for {first}: {north:?}"));
    assert_eq!(maintenance["subject"], "first_service");
    assert_eq!(maintenance["driver_response"], "booked");
    let id = maintenance["alert_id"].as_u64().unwrap();
    let acked = bed.events.iter().any(|e| {
        e.who == "dealer-north"
            && matches!(&e.what, What::Acknowledged { alert_id, status: 200, .. } if *alert_id == format!("a{id}"))
    });
    assert!(acked, "dealer-north never acknowledged a{id}");
    assert!(bed.events.iter().any(|e| e.vin == Some(first)
        && matches!(&e.what, What::ServiceRecorded { status, .. } if (200..300).contains(status))));
    let alert = get(&bed, &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(alert["state"], "resolved", "{alert}");
    let detail = get(&bed, &format!("/api/v1/vehicles/{first}")).await;
    let checklist = detail["maintenance"].as_array().unwrap();
    let item = checklist
        .iter()
        .find(|i| i["item"] == "first_service")
        .unwrap_or_else(|| panic!("{detail}"));
    assert_ne!(item["status"], "due", "{item}");
    assert_ne!(item["status"], "overdue", "{item}");

    // --- Escalations: an alert acknowledged after the hour went to the desk, and only those.
    let desk = bed.partners.bodies("service-desk");
    for e in &bed.events {
        if let What::Acknowledged {
            alert_id,
            after_min,
            ..
        } = &e.what
            && e.who != "service-desk"
        {
            let escalated = desk.iter().any(|b| {
                b["type"] == "alert.escalated" && format!("a{}", b["alert_id"]) == *alert_id
            });
            assert_eq!(
                escalated,
                *after_min >= 60,
                "{alert_id} acked after {after_min} min"
            );
        }
    }
    assert_eq!(bed.partners.rejected(), 0, "a signature failed to verify");
    assert_eq!(bed.cloud.webhook_counters().dead(), 0);

    // --- The cloud's layers, as its API gives them, are where the story's changes led.
    let mut last: BTreeMap<(Vin, String), String> = BTreeMap::new();
    for e in &bed.events {
        if let (Some(vin), What::LayerChanged { axis, to, .. }) = (e.vin, &e.what) {
            last.insert((vin, axis.clone()), to.clone());
        }
    }
    for v in &bed.vehicles {
        let vin = v.vin();
        let d = get(&bed, &format!("/api/v1/vehicles/{vin}")).await;
        let l = &d["layers"];
        for (axis, key) in [
            ("car maturity", "car"),
            ("service maturity", "service"),
            ("activity", "activity"),
            ("lifecycle", "lifecycle"),
        ] {
            assert_eq!(
                l[key].as_str(),
                last.get(&(vin, axis.to_owned())).map(String::as_str),
                "{vin} {axis}: {l}"
            );
        }
        assert_eq!(l["category"], v.cast.kind.category());
    }
    // The booking engaged the driver: no longer junior, and active at the end of the story.
    assert_ne!(last[&(first, "service maturity".to_owned())], "junior");
    let matrix = get(&bed, "/api/v1/layers").await;
    assert_eq!(matrix["total"], 4, "{matrix}");

    // --- Odometers: the agent's reading is the car's; the cloud's is the agent's last upload
    // (an odometer record every km). Every record reached the cloud exactly once.
    let mut written = 0;
    for v in &bed.vehicles {
        let vin = v.vin();
        let truth = bed.truth(&vin).0 as f64 / 1000.0;
        let agent = v
            .core
            .with(|r, _| r.memory().vehicle.odometer)
            .unwrap()
            .meters() as f64
            / 1000.0;
        assert!(
            (truth - agent).abs() < 0.2,
            "{vin}: car {truth} agent {agent}"
        );
        let cloud = bed.cloud.store().vehicle(&vin).unwrap().unwrap();
        let cloud_km = cloud.odometer.as_ref().unwrap().value as f64 / 1000.0;
        assert!(
            (agent - cloud_km).abs() <= 1.1,
            "{vin}: agent {agent} cloud {cloud_km}"
        );
        let (queued, last_seq) = v.outbox();
        assert_eq!(queued, 0);
        assert_eq!(cloud.applied.through(), last_seq, "{vin}");
        assert_eq!(cloud.applied.gaps(), 0);
        written += last_seq;
    }
    let applied = bed
        .cloud
        .metrics()
        .records_applied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(applied, written);

    // --- The dashboard shows the testbed's vehicles; a click opens a vehicle's timeline.
    dashboard(&bed).await;
    print_story(&bed);
    bed.shutdown().await.unwrap();
}

fn print_story(bed: &Testbed) {
    let names = |v: &Vin| bed.name_of(v);
    for e in &bed.events {
        println!("{}", e.line(&names));
    }
    println!("{}", bed.report().render());
}

async fn dashboard(bed: &Testbed) {
    let Some(browser) = Browser::start().await.unwrap() else {
        return;
    };
    let tid = |id: &str| format!("[data-testid=\"{id}\"]");
    browser.open(&bed.dashboard_url()).await.unwrap();
    browser.wait_for(&tid("matrix"), WAIT).await.unwrap();
    browser
        .wait_text(&tid("matrix-total"), WAIT, |t| t == "4")
        .await
        .unwrap();
    let shot = browser.screenshot("testbed-matrix").await.unwrap();
    println!("screenshot: {}", shot.display());
    // Any non-empty cell, then its first vehicle.
    let cell = "#matrix td.cell:not([data-count=\"0\"]) button";
    browser.wait_for(cell, WAIT).await.unwrap();
    browser.click(cell).await.unwrap();
    browser.wait_for(&tid("cell-list"), WAIT).await.unwrap();
    let link = "[data-testid^=\"vehicle-link-\"]";
    browser.wait_for(link, WAIT).await.unwrap();
    let vin = browser.text(link).await.unwrap();
    browser.click(link).await.unwrap();
    browser
        .wait_for(&tid("timeline-entry"), WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&tid("vehicle-vin")).await.unwrap(), vin);
    let api = get(bed, &format!("/api/v1/vehicles/{vin}/timeline")).await;
    let entries = browser.count(&tid("timeline-entry")).await.unwrap();
    assert!(entries >= 3, "{entries} entries");
    assert!(
        entries <= api["entries"].as_array().map_or(usize::MAX, Vec::len),
        "{entries} entries on the page, the API has {api}"
    );
    let shot = browser.screenshot("testbed-vehicle").await.unwrap();
    println!("screenshot: {}", shot.display());
}

/// The same seed tells the same story; another seed another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_tells_the_same_story() {
    let mut stories = Vec::new();
    for seed in [7, 7, 8] {
        let bed = run(options(4, seed)).await;
        let names = |v: &Vin| bed.name_of(v);
        let lines: Vec<String> = bed.events.iter().map(|e| e.line(&names)).collect();
        assert!(lines.len() > 10, "{lines:?}");
        stories.push(lines);
        bed.shutdown().await.unwrap();
    }
    assert_eq!(stories[0], stories[1]);
    assert_ne!(stories[0], stories[2]);
}
