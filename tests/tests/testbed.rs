//! The testbed's story end to end, asserted from each party's side: what the drivers saw on
//! their screens and did, what the partners received (signed, verified by their own code) and
//! answered, what the cloud's API says of the layers, the critical faults' stages (on the
//! driver's screen and in the partners' log, escalating where a promise was missed) and the
//! summary's "promises kept" column against the cloud's share API — plus the same seed
//! telling the same story, and the dashboard showing the testbed's vehicles in a real headless
//! browser.
//!
//! Everything is real: the embedded broker, the cloud on sled, each car an agent on its own
//! sled store reading a virtual CAN bus, MQTT in between, HTTP for the webhooks and the API.

use std::time::Duration;

use rapport_harness::browser::Browser;
use rapport_shared::Vin;
use rapport_testbed::scenario::cast::Kind;
use rapport_testbed::scenario::report::{promises_by_partner, promises_cell};
use rapport_testbed::scenario::story::What;
use rapport_testbed::scenario::{OPERATOR_TOKEN, Options, Testbed, invariants};
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
    get_as(bed, path, OPERATOR_TOKEN).await
}

async fn get_as(bed: &Testbed, path: &str, token: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", bed.api_base()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Sixteen days: break-in, a misfire and a truck's overheating (critical, at once to the
/// dealer), a first service coming due, booked, alerted, acknowledged and done at the
/// workshop; layers moving; every webhook signed; every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_days_as_each_party_saw_them() {
    let bed = run(options(16, 1)).await;
    // Every party's side of the story (the drivers', the partners', the cloud's API and
    // store): the end-of-story invariants the year-long soak checks too.
    let failures = invariants::check(&bed).await;
    assert!(failures.is_empty(), "{failures:#?}");
    // That check names the first vehicle of each kind; with four vehicles they are all here.
    for kind in Kind::ALL {
        assert_eq!(
            bed.vehicles.iter().filter(|v| v.cast.kind == kind).count(),
            1
        );
    }

    stages(&bed).await;
    promises(&bed).await;

    // --- The dashboard shows the testbed's vehicles; a click opens a vehicle's timeline.
    dashboard(&bed).await;
    print_story(&bed).await;
    bed.shutdown().await.unwrap();
}

async fn print_story(bed: &Testbed) {
    let names = |v: &Vin| bed.name_of(v);
    for e in &bed.events {
        println!("{}", e.line(&names));
    }
    println!("{}", bed.report().await.render());
}

/// The critical fault's alert a partner got for a vehicle.
fn critical_alert(bed: &Testbed, partner: &str, vin: Vin) -> u64 {
    bed.partners
        .bodies(partner)
        .iter()
        .find(|b| b["type"] == "alert.critical_fault" && b["vin"] == vin.to_string())
        .and_then(|b| b["alert_id"].as_u64())
        .unwrap_or_else(|| panic!("{partner} got no critical fault for {vin}"))
}

/// The story's two critical faults, stage by stage. Ana's misfire in Shanghai: her dealer
/// keeps every promise (contacted within the hour, on site within 3 h), nothing escalates.
/// Dana's overheating truck in Tibet: the truck centre is slow to call, so at the hour the
/// alert escalates to the OEM's desk, which calls and dispatches a truck a day away; at 24 h
/// the on-site promise is missed too and the alert escalates to the regional service, which
/// sends a local tow (a revised ETA). Each driver's screen lines show the stages with a
/// partner's name; each partner's log has the signed `alert.stage` webhooks.
async fn stages(bed: &Testbed) {
    let names = |v: &Vin| bed.name_of(v);
    let first = |kind: Kind| {
        bed.vehicles
            .iter()
            .find(|v| v.cast.kind == kind)
            .unwrap()
            .vin()
    };
    for (vin, dealer, escalations) in [
        (first(Kind::NewCar), "dealer-north", 0),
        (first(Kind::Truck), "truck-centre", 2),
    ] {
        let id = critical_alert(bed, dealer, vin);
        let alert = get(bed, &format!("/api/v1/alerts/{id}")).await;
        let history: Vec<&str> = alert["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        let path: Vec<&str> = history.iter().copied().fold(Vec::new(), |mut p, s| {
            if p.last() != Some(&s) {
                p.push(s);
            }
            p
        });
        assert_eq!(
            path,
            ["raised", "contacted", "dispatched", "on_site", "resolved"],
            "a{id}: {alert}"
        );
        let outcomes: Vec<&str> = alert["promises"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["outcome"].as_str().unwrap())
            .collect();
        let missed = outcomes.iter().filter(|o| **o == "missed").count();
        assert_eq!(missed, escalations, "a{id}: {outcomes:?}");
        assert!(
            outcomes.iter().all(|o| ["kept", "missed"].contains(o)),
            "{outcomes:?}"
        );
        // The driver's screen lines, as the story prints them.
        let screen: Vec<String> = bed
            .events
            .iter()
            .filter(|e| e.vin == Some(vin))
            .filter(|e| {
                matches!(&e.what, What::PromptShown { id: p, .. }
                    if p.starts_with(&format!("service:{id}:")))
            })
            .map(|e| e.line(&names))
            .collect();
        println!("{}", screen.join("\n"));
        assert!(screen.len() >= 2, "{screen:?}");
        assert!(
            screen
                .iter()
                .all(|l| l.contains("[service_progress]") && !l.contains("CRITICAL")),
            "{screen:?}"
        );
        // The partners' log: every step of the alert, to the dealer, signed and verified.
        let steps = history.len() as u64;
        let log: Vec<(String, u64)> = bed
            .events
            .iter()
            .filter_map(|e| match &e.what {
                What::StageWebhook {
                    alert_id,
                    step,
                    message_id,
                    ..
                } if e.who == dealer && *alert_id == format!("a{id}") => {
                    assert_eq!(*message_id, format!("msg_a{id}_s{step}"));
                    Some((e.line(&names), *step))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            log.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            (2..=steps).collect::<Vec<_>>(),
            "{log:#?}"
        );
        assert!(log.iter().all(|(l, _)| l.contains("signature ok")));
        // Escalations, as their targets received them: the desk at level 1, the regional
        // service at level 2.
        let escalated: Vec<(u64, String)> = ["service-desk", "oem-regional"]
            .into_iter()
            .flat_map(|p| bed.partners.bodies(p))
            .filter(|b| b["type"] == "alert.escalated" && b["alert_id"] == id)
            .map(|b| {
                let e = &b["escalation"];
                (
                    e["level"].as_u64().unwrap(),
                    e["to"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(u64, String)> = [(1, "service-desk"), (2, "oem-regional")]
            .into_iter()
            .take(escalations)
            .map(|(l, p)| (l, p.to_owned()))
            .collect();
        assert_eq!(escalated, want);
    }
    // Dana, told the desk's technician comes tomorrow, left the truck at the depot and said
    // so from the screen; the partners concerned got it, signed.
    let truck = first(Kind::Truck);
    let id = critical_alert(bed, "truck-centre", truck);
    assert!(bed.events.iter().any(|e| {
        e.vin == Some(truck)
            && matches!(&e.what, What::DriverAnswered { alert_id, answer, accepted: true }
                if *alert_id == format!("a{id}") && answer == "left_car")
    }));
    for partner in ["truck-centre", "service-desk"] {
        let answers: Vec<Value> = bed
            .partners
            .bodies(partner)
            .into_iter()
            .filter(|b| b["type"] == "alert.driver_answer" && b["alert_id"] == id)
            .collect();
        assert_eq!(answers.len(), 1, "{partner}: {answers:?}");
        assert_eq!(answers[0]["answer"]["answer"], "left_car");
    }
    // The regional service acted on the truck: it brought the technician forward.
    assert!(bed.events.iter().any(|e| {
        e.who == "oem-regional"
            && matches!(&e.what, What::StageReported { stage, status: 200, .. } if stage == "dispatched")
    }));
}

/// The summary's "promises kept" column is the cloud's share API over the story, which is
/// what the alerts' own promises say; a partner sees its own row only.
async fn promises(bed: &Testbed) {
    let api = get(bed, &format!("/api/v1/promises?{}", bed.window())).await;
    let rows = promises_by_partner(&api);
    let report = bed.report().await;
    let rendered = report.render();
    for p in &report.partners {
        assert_eq!(p.promises, rows.get(&p.id).copied(), "{}: {api}", p.id);
        let cell = promises_cell(p.promises);
        assert!(
            rendered
                .lines()
                .any(|l| l.starts_with(&p.id) && l.ends_with(&cell)),
            "{cell}\n{rendered}"
        );
    }
    // The same counts from every alert's promises settled in the window.
    let (from, to) = (api["from"].as_u64().unwrap(), api["to"].as_u64().unwrap());
    let mut counted = std::collections::BTreeMap::<String, (u64, u64)>::new();
    let mut alerts = std::collections::BTreeSet::new();
    for id in bed.partners.ids() {
        alerts.extend(
            bed.partners
                .bodies(id)
                .iter()
                .filter_map(|b| b["alert_id"].as_u64()),
        );
    }
    for id in alerts {
        let alert = get(bed, &format!("/api/v1/alerts/{id}")).await;
        for p in alert["promises"].as_array().unwrap() {
            let at = p["settled_at"].as_u64();
            // Void ones (resolved or cancelled before due) are not counted.
            if !at.is_some_and(|t| (from..to).contains(&t)) || p["outcome"] == "void" {
                continue;
            }
            let c = counted
                .entry(p["partner"].as_str().unwrap().to_owned())
                .or_default();
            match p["outcome"].as_str() {
                Some("kept") => c.0 += 1,
                Some("missed") => c.1 += 1,
                other => panic!("a{id}: settled promise with outcome {other:?}"),
            }
        }
    }
    for (partner, (kept, missed)) in &counted {
        assert_eq!(
            rows.get(partner),
            Some(&(*kept, *missed)),
            "{partner}: {api}"
        );
    }
    for (partner, row) in &rows {
        if row.0 + row.1 > 0 {
            assert_eq!(counted.get(partner), Some(row), "{partner}: {api}");
        }
    }
    // The story: the north dealer kept all of its (two per case), the slow truck centre missed.
    let north = rows.get("dealer-north").copied().unwrap_or_default();
    assert!(north.0 >= 4 && north.1 == 0, "{north:?}");
    assert!(rows.get("truck-centre").is_some_and(|t| t.1 >= 1), "{api}");
    // Through a partner's eyes: its own row only.
    let token = bed.partners.token("dealer-north").unwrap();
    let own = get_as(bed, &format!("/api/v1/promises?{}", bed.window()), token).await;
    let own_rows = promises_by_partner(&own);
    assert_eq!(
        own_rows.keys().collect::<Vec<_>>(),
        ["dealer-north"],
        "{own}"
    );
    assert_eq!(own_rows["dealer-north"], north);
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
        // The end-of-story check can fail: four days are too short for the first service to
        // come due, be booked and be done, and it says so.
        let failures = invariants::check(&bed).await;
        assert!(
            failures.iter().any(|f| f.contains("first service")),
            "{failures:#?}"
        );
        stories.push(lines);
        bed.shutdown().await.unwrap();
    }
    assert_eq!(stories[0], stories[1]);
    assert_ne!(stories[0], stories[2]);
}
