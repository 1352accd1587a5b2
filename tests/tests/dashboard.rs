//! The operator dashboard, end to end: a real cloud in-process (embedded broker, sled store,
//! real HTTP), real vehicle records over MQTT, a real partner receiver for the alert's
//! webhook, and a real headless chromium (WebDriver) reading the page.
//!
//! The page must show what the API says — the layer matrix cell by cell for every axis and
//! category, the vehicles of a cell across pages, the open alert with its live SLA state,
//! a vehicle's detail and its whole timeline newest first — escape what it shows, keep the
//! token out of the address bar, and go back to its form on a refused token.
//!
//! Without chromium/chromedriver the browser test prints a skip line and passes, unless
//! `RAPPORT_REQUIRE_BROWSER=1`. The static-file test needs no browser.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_cloud::clock::Clock;
use rapport_harness::Error;
use rapport_harness::bed::{Bed, DEALER_NORTH, Partner, Plan};
use rapport_harness::browser::Browser;
use rapport_harness::partner::Reply;
use rapport_harness::records::{critical, first_drive, odometer, prompt};
use rapport_shared::{PromptAction, PromptKind, Timestamp};
use serde_json::Value;

const OPERATOR: &str = "dashboard-operator-token-0123456789";
const DEALER_TOKEN: &str = "dealer-north-token-0123456789abcdef";
const DAY: u64 = 86_400_000;
/// How long one step in the browser may take (the page refreshes every 5 s).
const WAIT: Duration = Duration::from_secs(20);

// Six vehicles, spread over the matrix (by delivery date, odometer and engagement).
/// Passenger, 5 days old, acknowledged a prompt: novice, active. Its line holds markup
/// that must show as text.
const NEW_CAR: &str = "WVWZZZ1JZXW000001";
/// Passenger, 400 days without engagement: dormant.
const IDLE_CAR: &str = "WVWZZZ1JZXW000002";
/// Passenger, four years old, booked twice today: veteran, active, growing.
const LOYAL_CAR: &str = "WVWZZZ1JZXW000003";
/// Commercial, 30 days old, 70,000 km: veteran by distance, declining.
const BUSY_VAN: &str = "WDB9066361S000004";
/// Commercial, 60 days old, with a critical fault: churned, and an open alert.
const BROKEN_VAN: &str = "WDB9066361S000005";
/// Commercial, 700 days without engagement: dormant.
const IDLE_VAN: &str = "WDB9066361S000006";
const MARKUP_LINE: &str = "e-compact <b>2025</b> <img src=x>";

/// `YYYY-MM-DD` of a day number since 1970-01-01 (civil calendar, proleptic Gregorian).
fn date(days: u64) -> String {
    rapport_shared::Timestamp::from_millis(days * rapport_shared::calendar::MS_PER_DAY)
        .utc_date_string()
}

fn http() -> reqwest::Client {
    rapport_harness::http::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A GET of `path` on the bed's cloud without a token, redirects not followed.
async fn fetch(b: &Bed, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", b.base))
        .send()
        .await
        .unwrap()
}

async fn bed() -> Bed {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let plan = Plan {
        name: "dashboard".into(),
        t0: Timestamp::from_millis(now),
        partners: vec![Partner {
            token: Some(DEALER_TOKEN),
            ..DEALER_NORTH
        }],
        fallback: None,
    };
    Bed::start(plan, |c| {
        c.api.operator_token = Some(OPERATOR.to_owned());
        c.partner[0].name = "Dealer North".into();
    })
    .await
    .unwrap()
}

/// The six vehicles' registry and the operator's reads.
trait Fleet {
    async fn get(&self, path: &str) -> Value;
    async fn import_registry(&self);
}

impl Fleet for Bed {
    async fn get(&self, path: &str) -> Value {
        self.get_as(path, OPERATOR).await
    }

    /// Registers the six vehicles through the registry import (CSV).
    async fn import_registry(&self) {
        let today = self.clock.now().as_millis() / DAY;
        let row = |vin: &str, category: &str, line: &str, age_days: u64| {
            format!(
                "{vin},{category},\"{line}\",{},dealer-north,north,true,true\n",
                date(today - age_days)
            )
        };
        let csv = [
            "vin,category,line,delivered,dealer,region,partner_sharing,engagement\n".to_owned(),
            row(NEW_CAR, "passenger", MARKUP_LINE, 5),
            row(IDLE_CAR, "passenger", "e-compact 2024", 400),
            row(LOYAL_CAR, "passenger", "saloon 2022", 1500),
            row(BUSY_VAN, "commercial", "van 3.5t", 30),
            row(BROKEN_VAN, "commercial", "van 3.5t", 60),
            row(IDLE_VAN, "commercial", "pickup 2.7", 700),
        ]
        .concat();
        let resp = http()
            .post(format!("{}/api/v1/registry", self.base))
            .bearer_auth(OPERATOR)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"imported\":6"), "{body}");
    }
}

/// The dashboard's `data-testid` selector.
fn tid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// Every cell, row total and the grand total of the page's matrix equal the API's matrix.
async fn assert_matrix(b: &Browser, api: &Value) -> Result<(), Error> {
    let axis = api["axis"].as_str().unwrap();
    let category = api["category"].as_str().unwrap_or("all");
    b.wait_attr(&tid("matrix"), "data-axis", WAIT, |v| v == axis)
        .await?;
    b.wait_attr(&tid("matrix"), "data-category", WAIT, |v| v == category)
        .await?;
    let activities: Vec<&str> = api["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let rows = api["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{api}");
    for row in rows {
        let maturity = row["maturity"].as_str().unwrap();
        let mut sum = 0;
        for (i, activity) in activities.iter().enumerate() {
            let expected = row["counts"][i].as_u64().unwrap();
            sum += expected;
            let shown = b.text(&tid(&format!("cell-{maturity}-{activity}"))).await?;
            assert_eq!(
                shown,
                expected.to_string(),
                "{axis}/{category} cell {maturity}-{activity}"
            );
        }
        let total = b.text(&tid(&format!("row-total-{maturity}"))).await?;
        assert_eq!(total, sum.to_string(), "{axis}/{category} row {maturity}");
    }
    let total = b.text(&tid("matrix-total")).await?;
    assert_eq!(total, api["total"].as_u64().unwrap().to_string());
    Ok(())
}

/// The cells of a matrix answer as a flat list of counts.
fn counts(api: &Value) -> Vec<u64> {
    api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["counts"].as_array().unwrap().iter())
        .map(|c| c.as_u64().unwrap())
        .collect()
}

/// The static files: redirects, content types, no-cache, a strict CSP, no token needed —
/// while the data behind them still needs one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_files_are_served_with_strict_headers() {
    let b = bed().await;
    for path in ["/", "/dashboard"] {
        let r = fetch(&b, path).await;
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/dashboard/", "{path}");
    }
    for (path, content_type, needle) in [
        (
            "/dashboard/",
            "text/html; charset=utf-8",
            "<script type=\"module\" src=\"app.js\"></script>",
        ),
        (
            "/dashboard/index.html",
            "text/html; charset=utf-8",
            "data-testid=\"token-form\"",
        ),
        (
            "/dashboard/app.js",
            "text/javascript; charset=utf-8",
            "history.replaceState",
        ),
        ("/dashboard/style.css", "text/css; charset=utf-8", ".matrix"),
        ("/dashboard/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = fetch(&b, path).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle:?}");
    }
    let r = fetch(&b, "/dashboard/secrets.txt").await;
    assert_eq!(r.status(), 404);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    // The page is public; the data is not.
    let r = fetch(&b, "/api/v1/layers").await;
    assert_eq!(r.status(), 401);
    b.cloud.shutdown().await.unwrap();
}

/// The whole dashboard in headless chromium against a cloud holding known data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser_shows_what_the_api_says() {
    let Some(browser) = Browser::start().await.unwrap() else {
        return;
    };
    let mut b = bed().await;
    let known = put_known_data(&mut b).await;
    let (status, login) = (tid("status"), tid("login-message"));
    let steps = browse(&b, &browser, &known);
    browser
        .run_steps("dashboard-failure", &[&status, &login], steps)
        .await;
    drop(browser);
    b.cloud.shutdown().await.unwrap();
}

/// What the API says about the known data, before the browser looks.
struct Known {
    all: Value,
    commercial: Value,
    alert_id: u64,
    timeline: Value,
}

/// Six registered vehicles, records that place them (a minute apart, as cars would send
/// them), a critical fault whose alert reaches the dealer.
async fn put_known_data(b: &mut Bed) -> Known {
    b.import_registry().await;
    let minute = |b: &mut Bed| b.clock.advance_ms(60_000);
    minute(b);
    b.send(NEW_CAR, first_drive(800)).await;
    minute(b);
    b.send(IDLE_CAR, vec![odometer(20_000)]).await;
    minute(b);
    b.send(
        LOYAL_CAR,
        vec![
            odometer(90_000),
            prompt(PromptKind::Maintenance, "oil", PromptAction::Booked),
            prompt(PromptKind::Maintenance, "brakes", PromptAction::Booked),
        ],
    )
    .await;
    minute(b);
    b.send(BUSY_VAN, vec![odometer(70_000)]).await;
    minute(b);
    b.send(BROKEN_VAN, vec![odometer(3_000)]).await;
    minute(b);
    // The dealer answers after half a second and the clock moves on at once, so the alert's
    // "opened" and "delivered" entries get different times: the fleet timeline keys entries
    // by (VIN, millisecond, index within one store batch), and two batches in the same
    // millisecond would overwrite each other's entry.
    b.receiver("dealer-north")
        .set_default(Reply::ok().delay(Duration::from_millis(500)));
    b.send(BROKEN_VAN, vec![critical(0x0300)]).await;
    minute(b);
    b.send(IDLE_VAN, vec![odometer(50_000)]).await;

    let all = b.get("/api/v1/layers").await;
    assert_eq!(all["total"], 6, "{all}");
    let filled = counts(&all).iter().filter(|c| **c > 0).count();
    assert!(filled >= 4, "the data should spread over the matrix: {all}");
    let commercial = b.get("/api/v1/layers?category=commercial").await;
    assert_ne!(counts(&all), counts(&commercial));
    let alerts = b.get("/api/v1/alerts").await;
    let alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["vin"] == BROKEN_VAN && a["kind"] == "critical_fault")
        .unwrap_or_else(|| panic!("no critical-fault alert: {alerts}"))
        .clone();
    assert_eq!(alert["sla_state"], "ok", "{alert}");
    // The alert's webhook reaches the dealer; its delivery lands on the vehicle's timeline,
    // which is then complete (nothing else happens until the test moves the clock).
    assert!(
        b.receiver("dealer-north")
            .wait_until(Duration::from_secs(15), |s| s.delivered >= 1)
            .await,
        "the dealer got no webhook"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let timeline = loop {
        let t = b
            .get(&format!("/api/v1/vehicles/{BROKEN_VAN}/timeline"))
            .await;
        let delivered = t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "alert" && e["event"] == "delivered");
        if delivered {
            break t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery not on the timeline: {t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Known {
        all,
        commercial,
        alert_id: alert["id"].as_u64().unwrap(),
        timeline,
    }
}

/// Clicks `<option value=…>` of a `<select>` by test id (a click selects it and fires change).
async fn choose(browser: &Browser, select: &str, value: &str) -> Result<(), Error> {
    browser
        .click(&format!("{} option[value=\"{value}\"]", tid(select)))
        .await
}

/// The browser's part: every step waits for the page and compares it with the API.
async fn browse(b: &Bed, browser: &Browser, known: &Known) -> Result<(), Error> {
    let session_token = "return sessionStorage.getItem('rapport.operator-token')";

    // --- The page loads with the token in the fragment, which leaves the address bar.
    browser
        .open(&format!("{}/#token={OPERATOR}", b.base))
        .await?;
    browser.wait_for(&tid("matrix"), WAIT).await?;
    assert_eq!(browser.url().await?, format!("{}/dashboard/#/", b.base));
    assert_eq!(browser.execute(session_token, vec![]).await?, OPERATOR);

    // --- The matrix, cell by cell, for both axes and every category.
    assert_matrix(browser, &known.all).await?;
    let shot = browser.screenshot("dashboard-matrix").await?;
    println!("screenshot: {}", shot.display());
    choose(browser, "category", "commercial").await?;
    assert_matrix(browser, &known.commercial).await?;
    choose(browser, "axis", "car").await?;
    let api = b.get("/api/v1/layers?category=commercial&axis=car").await;
    assert_matrix(browser, &api).await?;
    choose(browser, "category", "passenger").await?;
    let api = b.get("/api/v1/layers?category=passenger&axis=car").await;
    assert_matrix(browser, &api).await?;
    assert_eq!(
        browser.url().await?,
        format!("{}/dashboard/#/?axis=car&category=passenger", b.base)
    );
    choose(browser, "category", "").await?;
    let api = b.get("/api/v1/layers?axis=car").await;
    assert_matrix(browser, &api).await?;

    // --- A cell's vehicles, one per page: the page follows `next_after` to the end.
    let (maturity, activity, n) = busiest_cell(&known.all);
    assert!(n >= 2, "a cell with two vehicles: {}", known.all);
    browser
        .open(&format!("{}/dashboard/#/?limit=1", b.base))
        .await?;
    assert_matrix(browser, &known.all).await?;
    let cell = tid(&format!("cell-{maturity}-{activity}"));
    browser.click(&format!("{cell} button")).await?;
    browser.wait_for(&tid("cell-vehicles"), WAIT).await?;
    let rows = |want: usize| move |t: &str| t.lines().count() == want;
    for page in 1..n as usize {
        browser
            .wait_text(&tid("cell-list"), WAIT, rows(page))
            .await?;
        browser.wait_for(&tid("cell-more"), WAIT).await?;
        browser.click(&tid("cell-more")).await?;
    }
    browser
        .wait_text(&tid("cell-list"), WAIT, rows(n as usize))
        .await?;
    let more_shown = format!("{}:not([hidden])", tid("cell-more"));
    assert_eq!(
        browser.count(&more_shown).await?,
        0,
        "no page after the last"
    );
    let shown = browser
        .texts(&format!(
            "{} a[data-testid^=\"vehicle-link-\"]",
            tid("cell-list")
        ))
        .await?;
    let listed = b
        .get(&format!(
            "/api/v1/vehicles?service={maturity}&activity={activity}"
        ))
        .await;
    let expected: Vec<String> = listed["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vin"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, expected, "cell {maturity}-{activity}");
    let shot = browser.screenshot("dashboard-cell").await?;
    println!("screenshot: {}", shot.display());
    let class = browser.attr(&cell, "class").await?.unwrap_or_default();
    assert!(
        class.split(' ').any(|c| c == "selected"),
        "the open cell is marked: {class:?}"
    );

    // --- The open alert with its SLA state, refreshed live as time passes.
    let id = known.alert_id;
    let row = tid(&format!("alert-{id}"));
    browser.wait_for(&row, WAIT).await?;
    let field = |name: &str| tid(&format!("alert-{name}-{id}"));
    assert_eq!(browser.text(&field("kind")).await?, "critical fault");
    assert_eq!(browser.text(&field("vehicle")).await?, BROKEN_VAN);
    assert_eq!(browser.text(&field("partner")).await?, "dealer-north");
    assert_eq!(browser.text(&field("state")).await?, "open");
    assert_eq!(browser.text(&field("sla")).await?, "ok");
    // Its stage and the running promise's clock (contacted within the SLA by default).
    assert_eq!(browser.text(&field("stage")).await?, "raised");
    let before = b.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(before["stage"], "raised", "{before}");
    assert_eq!(before["promise"]["stage"], "contacted", "{before}");
    assert_eq!(
        browser.attr(&field("promise"), "data-due").await?,
        Some(before["promise"]["due"].to_string())
    );
    let clock_before = browser.text(&field("promise")).await?;
    assert!(
        clock_before.starts_with("contacted in "),
        "{clock_before:?}"
    );
    b.clock.advance_ms(50 * 60_000);
    let now = b.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(now["sla_state"], "at_risk", "{now}");
    browser
        .wait_text(&field("sla"), WAIT, |t| t == "at risk")
        .await?;
    // The promise clock runs down with the cloud's time.
    browser
        .wait_text(&field("promise"), WAIT, |t| {
            t.starts_with("contacted in ") && t != clock_before
        })
        .await?;
    assert_eq!(
        browser.attr(&row, "data-sla").await?.as_deref(),
        Some("at_risk")
    );

    // --- The vehicle page: detail and the whole timeline, newest first.
    browser.click(&field("vehicle")).await?;
    browser.wait_for(&tid("timeline"), WAIT).await?;
    assert_eq!(
        browser.url().await?,
        format!("{}/dashboard/#/vehicle/{BROKEN_VAN}", b.base)
    );
    let detail = b.get(&format!("/api/v1/vehicles/{BROKEN_VAN}")).await;
    let entries: Vec<Value> = known.timeline["entries"].as_array().unwrap().clone();
    assert!(entries.len() >= 5, "{}", known.timeline);
    let css = format!("{} [data-testid=\"timeline-entry\"]", tid("timeline"));
    browser
        .wait_text(&tid("timeline"), WAIT, |t| !t.is_empty())
        .await?;
    assert_eq!(browser.count(&css).await?, entries.len());
    let kinds = browser.attrs(&css, "data-kind").await?;
    let sources = browser.attrs(&css, "data-source").await?;
    let ats = browser.attrs(&css, "data-at").await?;
    let labels = browser
        .texts(&format!("{css} [data-testid=\"entry-label\"]"))
        .await?;
    assert_eq!(labels.len(), entries.len());
    let newest_first: Vec<&Value> = entries.iter().rev().collect();
    for (i, e) in newest_first.iter().enumerate() {
        let want = (
            e["kind"].as_str().map(str::to_owned),
            e["source"].as_str().map(str::to_owned),
            Some(e["at"].as_u64().unwrap().to_string()),
        );
        let got = (kinds[i].clone(), sources[i].clone(), ats[i].clone());
        assert_eq!(got, want, "timeline entry {i} (newest first)");
        assert!(!labels[i].is_empty(), "entry {i} has no label");
    }
    let at: Vec<u64> = ats
        .iter()
        .map(|a| a.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    // Readable labels: one entry of each kind (the alert's by event), newest first.
    let checks = [
        ("dtc_appeared", None, "Fault P0300 appeared"),
        ("odometer", None, "Odometer 3,000 km"),
        ("alert", Some("opened"), "Alert #"),
        ("alert", Some("delivered"), "delivered"),
        ("layer", None, "First placed in commercial"),
        ("strategy", None, "Strategy "),
        ("registered", None, "Registry entry"),
    ];
    for (kind, event, needle) in checks {
        let i = newest_first
            .iter()
            .position(|e| e["kind"] == kind && event.is_none_or(|ev| e["event"] == ev))
            .unwrap_or_else(|| panic!("no {kind} {event:?} entry in {}", known.timeline));
        let label = &labels[i];
        assert!(label.contains(needle), "{needle:?} not in {label:?}");
    }
    assert_eq!(browser.text(&tid("vehicle-vin")).await?, BROKEN_VAN);
    assert_eq!(
        browser.text(&tid("detail-line")).await?,
        detail["registration"]["line"].as_str().unwrap()
    );
    for axis in ["car", "service", "activity", "lifecycle"] {
        assert_eq!(
            browser.text(&tid(&format!("layer-{axis}"))).await?,
            detail["layers"][axis].as_str().unwrap(),
            "{axis}"
        );
    }
    assert_eq!(
        browser.text(&tid("detail-faults")).await?,
        "P0300 (critical)"
    );
    let shot = browser.screenshot("dashboard-vehicle").await?;
    println!("screenshot: {}", shot.display());

    // --- Markup from the API is shown as text, never parsed.
    browser
        .open(&format!("{}/dashboard/#/vehicle/{NEW_CAR}", b.base))
        .await?;
    let line = browser
        .wait_text(&tid("detail-line"), WAIT, |t| t == MARKUP_LINE)
        .await?;
    assert_eq!(line, MARKUP_LINE);
    let parsed = format!("{0} img, {0} b", tid("vehicle-detail"));
    assert_eq!(browser.count(&parsed).await?, 0);

    // --- No console error so far: nothing broke the CSP, no script failed, no file missing.
    let console = browser.console().await?;
    let severe: Vec<_> = console.iter().filter(|e| e.level == "SEVERE").collect();
    assert!(severe.is_empty(), "console errors: {severe:#?}");

    // --- A wrong token: back to the form with the reason, forgotten; the form signs in.
    browser
        .open(&format!("{}/dashboard/#token=not-the-operator", b.base))
        .await?;
    browser.wait_for(&tid("token-form"), WAIT).await?;
    let message = browser
        .wait_text(&tid("login-message"), WAIT, |t| !t.is_empty())
        .await?;
    assert!(message.contains("refused (401)"), "{message}");
    let fleet_shown = format!("{}:not([hidden])", tid("view-fleet"));
    assert_eq!(browser.count(&fleet_shown).await?, 0);
    assert_eq!(
        browser.execute(session_token, vec![]).await?,
        Value::Null,
        "a refused token is forgotten"
    );
    browser.type_text(&tid("token-input"), OPERATOR).await?;
    browser.click(&tid("token-submit")).await?;
    browser
        .wait_text(&tid("matrix-total"), WAIT, |t| t == "6")
        .await?;
    let csp: Vec<_> = browser
        .console()
        .await?
        .into_iter()
        .filter(|e| e.message.contains("Content Security Policy"))
        .collect();
    assert!(csp.is_empty(), "CSP violations: {csp:#?}");
    Ok(())
}

/// The matrix cell with the most vehicles: (maturity, activity, count).
fn busiest_cell(api: &Value) -> (String, String, u64) {
    let activities = api["activities"].as_array().unwrap();
    let mut best = (String::new(), String::new(), 0);
    for row in api["rows"].as_array().unwrap() {
        for (count, activity) in row["counts"].as_array().unwrap().iter().zip(activities) {
            let count = count.as_u64().unwrap();
            if count > best.2 {
                best = (
                    row["maturity"].as_str().unwrap().to_owned(),
                    activity.as_str().unwrap().to_owned(),
                    count,
                );
            }
        }
    }
    best
}
