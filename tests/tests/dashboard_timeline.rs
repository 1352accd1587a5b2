//! The dashboard by the cloud's clock, in a real headless chromium (WebDriver): a cloud on a
//! manual clock set two and a half years before the machine's, so any age or time the page
//! took from the browser's clock would read hundreds of days off.
//!
//! The alerts show the cloud's ages, time left and the SLA story (an escalated alert answered
//! late reads `late`, with who has it); the vehicle page draws the readings as SVG charts,
//! lists the timeline's events with the runs of readings folded (and opened on a click),
//! pages to older entries, and narrows the list by kind.
//!
//! Without chromium/chromedriver the test prints a skip line and passes, unless
//! `RAPPORT_REQUIRE_BROWSER=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_harness::bed::{Bed, DEALER_NORTH, NORTH_TOKEN, Plan};
use rapport_harness::browser::Browser;
use rapport_harness::http::client as http;
use rapport_harness::records::{critical, odometer, prompt};
use rapport_shared::{
    Dtc, DtcEvent, EngineHours, EngineHoursReading, ObdCode, PromptAction, PromptKind, RecordBody,
    Severity, SignalSource, Timestamp,
};
use serde_json::Value;

const OPERATOR: &str = "dashboard-operator-token-0123456789";
const MIN: u64 = 60_000;
/// 2024-06-01T00:00:00Z: the cloud's time, years before any machine running this.
const T0: u64 = 1_717_200_000_000;
const WAIT: Duration = Duration::from_secs(20);

/// The long vehicle: 720 records over the 12 hours before T0, then a critical fault.
const LONG: &str = "WVWZZZ1JZXW000001";
/// A critical fault nobody answered in time: escalated, then its dealer acknowledged it.
const LATE: &str = "WDB9066361S000005";

async fn bed() -> Bed {
    let plan = Plan::escalating("dashboard-timeline", T0, &[DEALER_NORTH]);
    Bed::start(plan, |c| c.api.operator_token = Some(OPERATOR.to_owned()))
        .await
        .unwrap()
}

/// Publishes records, each at its own time (unix ms), and waits until the cloud applied them.
async fn send(b: &mut Bed, vin: &str, bodies: Vec<(u64, RecordBody)>) {
    let timed = bodies
        .into_iter()
        .map(|(at, body)| (Timestamp::from_millis(at), body))
        .collect();
    b.send_timed(vin, timed).await;
}

/// An operator call that must succeed: its JSON.
async fn call(b: &Bed, method: &str, path: &str, token: &str, body: Option<&str>) -> Value {
    let (status, json) = b.call(method, path, token, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {json}"
    );
    json
}

async fn get(b: &Bed, path: &str) -> Value {
    call(b, "GET", path, OPERATOR, None).await
}

async fn register(b: &Bed, vin: &str) {
    let body = r#"{"category":"passenger","line":"e-compact 2024","delivered":"2024-05-20","dealer":"dealer-north","region":"north","consents":{"partner_sharing":true,"engagement":true}}"#;
    call(
        b,
        "PUT",
        &format!("/api/v1/vehicles/{vin}/registration"),
        OPERATOR,
        Some(body),
    )
    .await;
}

/// The long vehicle's history: one record a minute over the 12 hours before T0 — engine
/// hours every 20th, an event every 60th (a prompt, a fault appearing, the fault cleared),
/// odometer readings (a kilometre each) between.
fn long_history() -> Vec<(u64, RecordBody)> {
    let start = T0 - 12 * 60 * MIN;
    let dtc = DtcEvent {
        dtc: Dtc::Obd(ObdCode::new(0x0133)),
        severity: Severity::Warning,
        ecu: 0x7E8,
        class: None,
    };
    (1..=720u64)
        .map(|i| {
            let body = if i % 60 == 0 {
                match (i / 60) % 3 {
                    0 => prompt(PromptKind::Maintenance, "oil", PromptAction::Booked),
                    1 => RecordBody::DtcAppeared(dtc),
                    _ => RecordBody::DtcCleared(dtc),
                }
            } else if i % 20 == 10 {
                RecordBody::EngineHours(EngineHoursReading {
                    hours: EngineHours::from_secs(360_000 + i * 60),
                    source: SignalSource::Obd,
                })
            } else {
                odometer(10_000 + i)
            };
            (start + i * MIN, body)
        })
        .collect()
}

fn tid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// The page's formatting of a duration (app.js `formatDuration`).
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_reads_the_cloud_clock_and_folds_the_readings() {
    let Some(browser) = Browser::start().await.unwrap() else {
        return;
    };
    let mut b = bed().await;
    register(&b, LATE).await;
    register(&b, LONG).await;

    // LATE: a critical fault at T0, nobody answers; escalated at +61 min; its dealer
    // acknowledges at +66.
    let now = b.now().as_millis();
    send(
        &mut b,
        LATE,
        vec![(now, odometer(3_000)), (now, critical(0x0300))],
    )
    .await;
    b.advance(61 * MIN).await;
    b.advance(5 * MIN).await;
    let list = get(&b, &format!("/api/v1/alerts?vin={LATE}")).await;
    let late_id = list["alerts"][0]["id"].as_u64().unwrap();
    let acked = call(
        &b,
        "POST",
        &format!("/api/v1/alerts/{late_id}/acknowledge"),
        NORTH_TOKEN,
        None,
    )
    .await;
    assert_eq!(acked["sla_state"], "late", "{acked}");

    // LONG: its history, then a critical fault; seven minutes later the page looks.
    let history = long_history();
    send(&mut b, LONG, history[..360].to_vec()).await;
    send(&mut b, LONG, history[360..].to_vec()).await;
    let now = b.now().as_millis();
    send(&mut b, LONG, vec![(now, critical(0x0301))]).await;
    b.advance(7 * MIN).await;
    // The alert's delivery is on the timeline before the page looks (nothing moves after).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let t = get(&b, &format!("/api/v1/vehicles/{LONG}/timeline?kind=alert")).await;
        let delivered = t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "delivered");
        if delivered {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not delivered: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alerts = get(&b, "/api/v1/alerts").await;
    let long_alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["vin"] == LONG)
        .unwrap()
        .clone();
    assert_eq!(long_alert["age_ms"], 7 * MIN, "{long_alert}");

    let steps = browse(&b, &browser, &long_alert, late_id);
    let status = tid("status");
    browser
        .run_steps("dashboard-timeline-failure", &[&status], steps)
        .await;
    drop(browser);
    b.cloud.shutdown().await.unwrap();
}

async fn browse(
    b: &Bed,
    browser: &Browser,
    long_alert: &Value,
    late_id: u64,
) -> Result<(), rapport_harness::Error> {
    browser
        .open(&format!("{}/#token={OPERATOR}", b.base))
        .await?;
    let id = long_alert["id"].as_u64().unwrap();
    let field = |name: &str, id: u64| tid(&format!("alert-{name}-{id}"));

    // --- Ages are the cloud's: 7 minutes, not the two and a half years the browser's clock
    // would give; the list says what time the cloud has.
    let age = browser
        .wait_text(&field("age", id), WAIT, |t| t == duration(7 * MIN))
        .await?;
    assert_eq!(age, "7 min");
    let updated = browser.text(&tid("alerts-updated")).await?;
    assert_eq!(updated, "cloud time 2024-06-01 01:13 UTC");
    assert_eq!(browser.text(&field("sla", id)).await?, "ok");
    assert_eq!(browser.text(&field("sla-left", id)).await?, "53 min left");
    assert_eq!(browser.text(&field("partner", id)).await?, "dealer-north");

    // --- The escalated alert its dealer answered late: late, and the dealer has it.
    assert_eq!(browser.text(&field("sla", late_id)).await?, "late");
    assert_eq!(
        browser
            .attr(&field("partner", late_id), "data-holder")
            .await?,
        Some("dealer-north".to_owned())
    );
    let partner = browser.text(&field("partner", late_id)).await?;
    assert_eq!(partner, "dealer-north escalated to desk");
    assert_eq!(browser.text(&field("age", late_id)).await?, "1 h 13 min");
    let shot = browser.screenshot("dashboard-timeline-alerts").await?;
    println!("screenshot: {}", shot.display());

    // --- The vehicle page: the readings charted, the events listed, readings folded.
    browser.click(&field("vehicle", id)).await?;
    let readings = get(b, &format!("/api/v1/vehicles/{LONG}/readings")).await;
    let odometer_points = readings["odometer"]["points"].as_array().unwrap().len();
    assert_eq!(
        readings["odometer"]["count"], 672,
        "{}",
        readings["odometer"]
    );
    browser.wait_for(&tid("chart-odometer"), WAIT).await?;
    let drawn = browser.attr(&tid("chart-odometer"), "data-points").await?;
    assert_eq!(drawn, Some(odometer_points.to_string()));
    let line = browser
        .attr(&tid("chart-line-odometer"), "points")
        .await?
        .unwrap_or_default();
    assert_eq!(line.split(' ').count(), odometer_points, "{line}");
    assert_eq!(browser.count(&tid("chart-engine_hours")).await?, 1);

    // The API folds the runs of readings: the whole history's events fit in one page.
    let api = get(
        b,
        &format!("/api/v1/vehicles/{LONG}/timeline?fold=readings"),
    )
    .await;
    let entries = api["entries"].as_array().unwrap();
    assert_eq!(api["next_before"], Value::Null, "{api}");
    let shown = format!("{} > [data-testid=\"timeline-entry\"]", tid("timeline"));
    let more_shown = format!("{}:not([hidden])", tid("timeline-more"));
    let folds = format!("{} > [data-testid=\"timeline-fold\"]", tid("timeline"));
    browser.wait_for(&folds, WAIT).await?;
    // Every entry of the page is listed or in a fold, as the API says, newest first.
    let (want_listed, want_folds) = fold(entries);
    let total = 720 + cloud_entries(b).await + 1;
    assert_eq!(want_listed.len() + want_folds.iter().sum::<usize>(), total);
    let listed = browser.attrs(&shown, "data-kind").await?;
    let listed: Vec<String> = listed.into_iter().map(Option::unwrap_or_default).collect();
    assert_eq!(listed, want_listed);
    let folded: Vec<usize> = browser
        .attrs(&folds, "data-count")
        .await?
        .iter()
        .map(|c| c.as_deref().unwrap().parse::<usize>().unwrap())
        .collect();
    assert_eq!(folded, want_folds);
    assert!(want_folds.len() >= 5, "{want_folds:?}");
    for kind in ["prompt", "dtc_appeared", "dtc_cleared", "alert"] {
        assert!(
            listed.iter().any(|k| k == kind),
            "{kind} not listed: {listed:?}"
        );
    }
    let toggles = browser
        .texts(&format!("{folds} [data-testid=\"timeline-fold-toggle\"]"))
        .await?;
    // The newest run: seq 661 to 719, engine hours at 670, 690 and 710.
    assert_eq!(toggles[0], "… 59 readings (56 odometer, 3 engine hours)");
    assert_eq!(browser.count(&more_shown).await?, 0, "one page");
    let shot = browser.screenshot("dashboard-timeline-vehicle").await?;
    println!("screenshot: {}", shot.display());

    // A fold opens on a click: its readings, as entries.
    let first_fold = browser
        .execute(
            "const f = document.querySelector(arguments[0]); return f ? f.dataset.count : null;",
            vec![Value::from(folds.clone())],
        )
        .await?;
    let n: usize = first_fold.as_str().unwrap().parse().unwrap();
    browser
        .click(&format!("{folds} [data-testid=\"timeline-fold-toggle\"]"))
        .await?;
    let opened =
        format!("{folds} [data-testid=\"timeline-folded\"] [data-testid=\"timeline-entry\"]");
    browser.wait_for(&opened, WAIT).await?;
    assert_eq!(browser.count(&opened).await?, n);
    let kinds = browser.attrs(&opened, "data-kind").await?;
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k.as_deref(), Some("odometer" | "engine_hours"))),
        "{kinds:?}"
    );
    let labels = browser
        .texts(&format!("{opened} [data-testid=\"entry-label\"]"))
        .await?;
    assert!(
        labels.iter().any(|l| l.starts_with("Odometer 10,")),
        "{labels:?}"
    );
    browser
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});",
            vec![Value::from(folds.clone())],
        )
        .await?;
    let shot = browser.screenshot("dashboard-timeline-opened").await?;
    println!("screenshot: {}", shot.display());

    // --- Readings only: 708 of them, listed, 500 a page; the older ones on a click.
    browser
        .click(&format!(
            "{} option[value=\"readings\"]",
            tid("timeline-kind")
        ))
        .await?;
    wait_shown(
        browser,
        &shown,
        &folds,
        "a page of readings",
        |listed, folded| listed == 500 && folded == 0,
    )
    .await?;
    browser.wait_for(&tid("timeline-more"), WAIT).await?;
    browser.click(&tid("timeline-more")).await?;
    wait_shown(
        browser,
        &shown,
        &folds,
        "every reading",
        |listed, folded| listed == 672 + 36 && folded == 0,
    )
    .await?;
    assert_eq!(
        browser.count(&more_shown).await?,
        0,
        "no page after the last"
    );
    let kinds = browser.attrs(&shown, "data-kind").await?;
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k.as_deref(), Some("odometer" | "engine_hours"))),
        "{kinds:?}"
    );

    // --- The kind filter narrows the list to faults: no reading, no fold, in the address.
    browser
        .click(&format!(
            "{} option[value=\"faults\"]",
            tid("timeline-kind")
        ))
        .await?;
    let faults = get(
        b,
        &format!("/api/v1/vehicles/{LONG}/timeline?kind=dtc_appeared,dtc_cleared,dtc_snapshot"),
    )
    .await;
    let want = faults["entries"].as_array().unwrap().len();
    assert_eq!(want, 9, "eight warnings and the critical fault: {faults}");
    wait_shown(browser, &shown, &folds, "the faults", |listed, folded| {
        listed == want && folded == 0
    })
    .await?;
    let kinds = browser.attrs(&shown, "data-kind").await?;
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k.as_deref(), Some("dtc_appeared" | "dtc_cleared"))),
        "{kinds:?}"
    );
    assert_eq!(
        browser.url().await?,
        format!("{}/dashboard/#/vehicle/{LONG}?kind=faults", b.base)
    );
    // And to prompts.
    browser
        .click(&format!(
            "{} option[value=\"prompts\"]",
            tid("timeline-kind")
        ))
        .await?;
    browser
        .wait_attr(&shown, "data-kind", WAIT, |k| k == "prompt")
        .await?;
    wait_shown(browser, &shown, &folds, "four prompts", |listed, folded| {
        listed == 4 && folded == 0
    })
    .await?;
    let shot = browser.screenshot("dashboard-timeline-filtered").await?;
    println!("screenshot: {}", shot.display());

    // --- Nothing broke the CSP or failed in the script.
    let console = browser.console().await?;
    let severe: Vec<_> = console
        .iter()
        .filter(|e| e.level == "SEVERE" || e.message.contains("Content Security Policy"))
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:#?}");
    Ok(())
}

/// How many entries of the cloud's own the long vehicle has.
async fn cloud_entries(b: &Bed) -> usize {
    let cloud = get(
        b,
        &format!(
            "/api/v1/vehicles/{LONG}/timeline?kind=layer,strategy,suppressed,alert,registered"
        ),
    )
    .await;
    cloud["entries"].as_array().unwrap().len()
}

/// What the page shows of a folded timeline page (oldest first from the API), newest
/// first: the kinds listed, and the size of each fold.
fn fold(entries: &[Value]) -> (Vec<String>, Vec<usize>) {
    let (mut listed, mut folds) = (Vec::new(), Vec::new());
    for e in entries.iter().rev() {
        if e["kind"] == "readings" {
            folds.push(e["count"].as_u64().unwrap() as usize);
        } else {
            listed.push(e["kind"].as_str().unwrap_or_default().to_owned());
        }
    }
    (listed, folds)
}

/// Waits until the timeline's (listed entries, entries in folds) satisfy `pred`.
async fn wait_shown(
    browser: &Browser,
    shown: &str,
    folds: &str,
    what: &str,
    pred: impl Fn(usize, usize) -> bool,
) -> Result<(), rapport_harness::Error> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = browser.count(shown).await?;
        let folded: usize = browser
            .attrs(folds, "data-count")
            .await?
            .iter()
            .map(|c| c.as_deref().unwrap_or("0").parse::<usize>().unwrap_or(0))
            .sum();
        if pred(listed, folded) {
            return Ok(());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {listed} listed, {folded} folded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's modules are served like the page: JavaScript, no-cache, the strict policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_modules_are_served_with_strict_headers() {
    let b = bed().await;
    for (name, needle) in [
        ("format.js", "export function formatDuration"),
        ("chart.js", "export function chart"),
    ] {
        let r = http()
            .get(format!("{}/dashboard/{name}", b.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let h = r.headers().clone();
        assert_eq!(
            h["content-type"], "text/javascript; charset=utf-8",
            "{name}"
        );
        assert_eq!(h["cache-control"], "no-cache", "{name}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(r.text().await.unwrap().contains(needle), "{name}");
    }
    b.cloud.shutdown().await.unwrap();
}
