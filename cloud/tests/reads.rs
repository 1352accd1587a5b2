//! What the API reads, by the cloud's clock, inside one cloud (embedded broker, real sled,
//! real HTTP, real partner receivers) on a manual clock set years away from the machine's:
//! alert ages and the SLA story (who has the alert, whether the SLA was kept); a vehicle's
//! long timeline paged by its cursor and filtered by kind; its readings as a bounded series;
//! and a partner body naming `token_env` refused without looking at the environment.

use std::collections::BTreeSet;

use rapport_harness::bed::{Bed, DEALER_NORTH, MINUTE_MS as MIN, NORTH_TOKEN, Plan, Registration};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use rapport_harness::records::{critical, odometer, prompt};
use rapport_shared::{
    Dtc, DtcEvent, EngineHours, EngineHoursReading, ObdCode, PromptAction, PromptKind, Record,
    RecordBody, Severity, SignalSource, Timestamp,
};
use serde_json::Value;

/// 2031-03-01T00:00:00Z: years from any machine's clock, so an age read from the wrong clock
/// shows.
const T0: u64 = 1_930_176_000_000;

const V1: &str = "WP0ZZZ99ZTS392124";
const V2: &str = "WVWZZZ1JZXW000001";
/// Registered to nobody a partner could see.
const V3: &str = "WDB9066361S000005";

/// The shared bed with a dealer and the desk it escalates to; `None` when `kind`'s backend
/// is absent.
async fn bed(name: &str, kind: StoreKind) -> Option<Bed> {
    let plan = Plan::escalating(name, T0, &[DEALER_NORTH]);
    Bed::start_on(kind, plan, |_| {}).await.unwrap()
}

/// The reads' verbs on the bed.
trait Reads {
    async fn minutes(&mut self, minutes: u64);
    async fn get(&self, path: &str) -> Value;
    /// Registers `vin` as sold by `dealer`.
    async fn sell(&self, vin: &str, dealer: &str);
    /// The cloud's now, unix ms.
    fn now_ms(&self) -> u64;
}

impl Reads for Bed {
    async fn minutes(&mut self, minutes: u64) {
        self.advance(minutes * MIN).await;
    }

    async fn get(&self, path: &str) -> Value {
        self.get_as(path, OPERATOR).await
    }

    async fn sell(&self, vin: &str, dealer: &str) {
        let r = Registration {
            dealer,
            category: "passenger",
            line: "e-compact 2030",
            delivered: "2031-01-10",
        };
        self.register(vin, r).await;
    }

    fn now_ms(&self) -> u64 {
        self.now().as_millis()
    }
}

fn at_now(bed: &Bed, seq: u64, body: RecordBody) -> Record {
    Record {
        seq,
        at: bed.now(),
        body,
    }
}

/// Each of `queries` on `path` is a 400 `bad_query`.
async fn assert_bad_queries(b: &Bed, path: &str, queries: &[&str]) {
    for query in queries {
        let (status, json) = b
            .call("GET", &format!("{path}?{query}"), OPERATOR, None)
            .await;
        assert_eq!(status, 400, "{query}: {json}");
        assert_eq!(json["error"]["code"], "bad_query", "{query}: {json}");
    }
}

/// The alert of `vin` in the list.
fn alert_of<'a>(list: &'a Value, vin: &str) -> &'a Value {
    list["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["vin"] == vin)
        .unwrap_or_else(|| panic!("no alert of {vin}: {list}"))
}

/// Ages and SLA times are the cloud clock's: `now` in every answer, `age_ms` and
/// `sla_remaining_ms` read at it; escalation and acknowledgement tell one story.
async fn alert_ages_and_sla_read_at_the_cloud_clock_and_tell_one_story(kind: StoreKind) {
    let Some(mut b) = bed("reads-alerts", kind).await else {
        return;
    };
    b.sell(V1, "dealer-north").await;
    b.sell(V2, "dealer-north").await;
    let r = at_now(&b, 1, odometer(1200));
    b.send_records(V1, vec![r]).await;
    let r = at_now(&b, 1, odometer(800));
    b.send_records(V2, vec![r]).await;
    let raised = b.now_ms();
    let r = at_now(&b, 2, critical(0x0300));
    b.send_records(V1, vec![r]).await;
    let r = at_now(&b, 2, critical(0x0301));
    b.send_records(V2, vec![r]).await;

    // Seven minutes on the cloud's clock (years from the machine's).
    b.minutes(7).await;
    let list = b.get("/api/v1/alerts").await;
    assert_eq!(list["now"], b.now_ms(), "{list}");
    let a1 = alert_of(&list, V1).clone();
    let id1 = a1["id"].as_u64().unwrap();
    assert_eq!(a1["created_at"], raised, "{a1}");
    assert_eq!(a1["age_ms"], 7 * MIN, "{a1}");
    assert_eq!(a1["sla_remaining_ms"], 53 * MIN, "{a1}");
    assert_eq!(a1["sla_state"], "ok", "{a1}");
    assert_eq!(a1["holder"], "dealer-north", "{a1}");
    assert_eq!(a1["answered_at"], Value::Null, "{a1}");
    let id2 = alert_of(&list, V2)["id"].as_u64().unwrap();
    let one = b.get(&format!("/api/v1/alerts/{id1}")).await;
    assert_eq!(
        (one["now"].as_u64(), one["age_ms"].as_u64()),
        (Some(b.now_ms()), Some(7 * MIN)),
        "{one}"
    );

    // The operator acknowledges V2's in time: met, still with its dealer.
    let (status, acked) = b.acknowledge(id2, OPERATOR).await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["sla_state"], "met", "{acked}");
    assert_eq!(acked["holder"], "dealer-north", "{acked}");
    assert_eq!(acked["acknowledged_by"], Value::Null, "{acked}");
    assert_eq!(acked["answered_at"], b.now_ms(), "{acked}");
    assert_eq!(acked["sla_remaining_ms"], Value::Null, "{acked}");
    assert_eq!(acked["now"], b.now_ms(), "{acked}");

    // 57 minutes: at risk, three minutes left.
    b.minutes(50).await;
    let a1 = b.get(&format!("/api/v1/alerts/{id1}")).await;
    assert_eq!(a1["sla_state"], "at_risk", "{a1}");
    assert_eq!(a1["sla_remaining_ms"], 3 * MIN, "{a1}");

    // 61 minutes: escalated to the desk, who has it now.
    b.minutes(4).await;
    let a1 = b.get(&format!("/api/v1/alerts/{id1}")).await;
    assert_eq!(a1["sla_state"], "escalated", "{a1}");
    assert_eq!(a1["escalated"]["to"], "desk", "{a1}");
    assert_eq!(a1["holder"], "desk", "{a1}");
    assert_eq!(a1["sla_remaining_ms"], -(MIN as i64), "{a1}");
    assert_eq!(a1["age_ms"], 61 * MIN, "{a1}");

    // The dealer answers after all: late (never "met"), and the dealer has it again.
    b.minutes(9).await;
    let (status, acked) = b.acknowledge(id1, NORTH_TOKEN).await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["sla_state"], "late", "{acked}");
    assert_eq!(acked["holder"], "dealer-north", "{acked}");
    assert_eq!(acked["acknowledged_by"], "dealer-north", "{acked}");
    assert_eq!(acked["escalated"]["to"], "desk", "{acked}");
    // The unresolved list says the same, and keeps saying it as time passes.
    b.minutes(600).await;
    let list = b.get("/api/v1/alerts").await;
    assert_eq!(list["now"], b.now_ms());
    assert_eq!(alert_of(&list, V1)["sla_state"], "late", "{list}");
    assert_eq!(alert_of(&list, V2)["sla_state"], "met", "{list}");
    assert_eq!(alert_of(&list, V1)["age_ms"], (70 + 600) * MIN, "{list}");
    b.cloud.shutdown().await.unwrap();
}

/// The records of the long vehicle: 2,500 odometer readings (one a minute, a kilometre
/// each) with an event every 126th record, alternating prompt, fault, fault cleared, engine
/// hours: 2,520 records, 20 events.
fn long_history(start: u64) -> Vec<Record> {
    (1..=2_520u64)
        .map(|seq| {
            let body = if seq % 126 == 0 {
                match (seq / 126) % 4 {
                    1 => prompt(PromptKind::Maintenance, "oil", PromptAction::Dismissed),
                    2 => RecordBody::DtcAppeared(DtcEvent {
                        dtc: Dtc::Obd(ObdCode::new(0x0133)),
                        severity: Severity::Warning,
                        ecu: 0x7E8,
                        class: None,
                    }),
                    3 => RecordBody::DtcCleared(DtcEvent {
                        dtc: Dtc::Obd(ObdCode::new(0x0133)),
                        severity: Severity::Warning,
                        ecu: 0x7E8,
                        class: None,
                    }),
                    _ => RecordBody::EngineHours(EngineHoursReading {
                        hours: EngineHours::from_secs(seq * 60),
                        source: SignalSource::Obd,
                    }),
                }
            } else {
                odometer(10_000 + seq)
            };
            Record {
                seq,
                at: Timestamp::from_millis(start + seq * MIN),
                body,
            }
        })
        .collect()
}

/// (source, seq or time+kind) of an entry: what makes it one entry.
fn identity(e: &Value) -> String {
    match e["source"].as_str() {
        Some("car") => format!("car {}", e["seq"]),
        _ => format!("cloud {} {} {}", e["at"], e["kind"], e),
    }
}

/// Every page of a timeline query, following `next_before` to the end.
async fn all_pages(b: &Bed, query: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/api/v1/vehicles/{V1}/timeline?{query}");
        if let Some(c) = &before {
            path.push_str(&format!("&before={c}"));
        }
        let page = b.get(&path).await;
        before = page["next_before"].as_str().map(str::to_owned);
        pages.push(page);
        if before.is_none() {
            return pages;
        }
    }
    panic!("no last page for {query}");
}

/// A vehicle with 2,520 records and the cloud's own entries: pages meet exactly across the
/// 1,000-entry limit, a kind filter keeps only its kinds, and an unknown kind is refused.
async fn a_long_timeline_pages_by_cursor_and_filters_by_kind(kind: StoreKind) {
    let Some(mut b) = bed("reads-timeline", kind).await else {
        return;
    };
    b.sell(V1, "dealer-north").await;
    b.sell(V3, "somebody-else").await;
    // The records run over the 42 hours before now.
    let start = T0 - 2_600 * MIN;
    let history = long_history(start);
    for chunk in history.chunks(500) {
        b.send_records(V1, chunk.to_vec()).await;
    }
    b.minutes(1).await;

    // The cloud's own entries, asked for on their own (one page: few of them).
    let cloud_kinds = "kind=layer,strategy,suppressed,alert,registered";
    let cloud = b
        .get(&format!("/api/v1/vehicles/{V1}/timeline?{cloud_kinds}"))
        .await;
    assert_eq!(cloud["next_before"], Value::Null, "{cloud}");
    let cloud_n = cloud["entries"].as_array().unwrap().len();
    assert!(cloud_n >= 2, "registered and placed at least: {cloud}");
    assert!(
        cloud["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] == "cloud")
    );

    // The default page: the newest 500, oldest first, with a cursor.
    let first = b.get(&format!("/api/v1/vehicles/{V1}/timeline")).await;
    assert_eq!(
        first["entries"].as_array().unwrap().len(),
        500,
        "default limit"
    );
    assert!(first["next_before"].is_string(), "{}", first["next_before"]);

    // Every entry, 1,000 a page: each once, in time order across pages.
    let pages = all_pages(&b, "limit=1000").await;
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let mut entries: Vec<Value> = Vec::new();
    for page in pages.iter().rev() {
        let list = page["entries"].as_array().unwrap();
        assert!(list.len() <= 1000);
        entries.extend(list.iter().cloned());
    }
    assert_eq!(entries.len(), 2_520 + cloud_n);
    let ids: BTreeSet<String> = entries.iter().map(identity).collect();
    assert_eq!(ids.len(), entries.len(), "an entry on two pages");
    let ats: Vec<u64> = entries.iter().map(|e| e["at"].as_u64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]), "time order");
    let seqs: BTreeSet<u64> = entries
        .iter()
        .filter(|e| e["source"] == "car")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=2_520).collect());
    // Existing fields stay: a record's kind, seq, data, source and time.
    let odo = entries.iter().find(|e| e["kind"] == "odometer").unwrap();
    for field in ["kind", "seq", "data", "source", "at"] {
        assert!(odo.get(field).is_some(), "{field} missing: {odo}");
    }

    // Kinds: the events only, in one page; several kinds at once; readings paged.
    let events = b
        .get(&format!(
            "/api/v1/vehicles/{V1}/timeline?kind=prompt,dtc_appeared,dtc_cleared"
        ))
        .await;
    let list = events["entries"].as_array().unwrap();
    assert_eq!(list.len(), 15, "{events}");
    assert_eq!(events["next_before"], Value::Null);
    let kinds: BTreeSet<&str> = list.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["prompt", "dtc_appeared", "dtc_cleared"])
    );
    let hours = all_pages(&b, "kind=engine_hours&limit=2").await;
    let n: usize = hours
        .iter()
        .map(|p| p["entries"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 5);
    let odometer_pages = all_pages(&b, "kind=odometer&limit=1000").await;
    let sizes: Vec<usize> = odometer_pages
        .iter()
        .map(|p| p["entries"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1000, 1000, 500]);

    // Folded: each run of readings is one entry, so the events of the whole history fit in
    // the first page; a run's readings are the page its seqs name.
    let folded = b
        .get(&format!("/api/v1/vehicles/{V1}/timeline?fold=readings"))
        .await;
    assert_eq!(folded["next_before"], Value::Null, "one page");
    let list = folded["entries"].as_array().unwrap();
    let runs: Vec<&Value> = list.iter().filter(|e| e["kind"] == "readings").collect();
    // Engine hours are readings too: only the 15 prompts and faults break the runs.
    assert_eq!(
        runs.len(),
        16,
        "a run before, between and after the 15 events"
    );
    assert_eq!(list.len(), 16 + 15 + cloud_n);
    let in_runs: u64 = runs.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(in_runs, 2_505);
    let last = runs[runs.len() - 1];
    assert_eq!(
        (last["first_seq"].as_u64(), last["last_seq"].as_u64()),
        (Some(2_395), Some(2_520)),
        "{last}"
    );
    assert_eq!(
        (&last["count"], &last["odometer"], &last["engine_hours"]),
        (&Value::from(126), &Value::from(125), &Value::from(1))
    );
    assert_eq!(last["source"], "car");
    assert_eq!(last["at"], start + 2_520 * MIN);
    assert_eq!(last["first_at"], start + 2_395 * MIN);
    assert_eq!(
        last["odometer_km"],
        serde_json::json!({"from": 12_395.0, "to": 12_519.0})
    );
    let readings = b
        .get(&format!(
            "/api/v1/vehicles/{V1}/timeline?kind=odometer,engine_hours&before=2521.-&limit=126"
        ))
        .await;
    let seqs: Vec<u64> = readings["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (2_395..=2_520).collect::<Vec<_>>());

    // Refused: an unknown kind (alone or in a list), an empty one, a bad cursor.
    let refused = [
        "kind=odometr",
        "kind=odometer,heartbeat",
        "kind=",
        "before=12",
        "before=abc.-",
        "kind=prompt&colour=red",
        "fold=odometer",
    ];
    assert_bad_queries(&b, &format!("/api/v1/vehicles/{V1}/timeline"), &refused).await;
    let (_, json) = b
        .call(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline?kind=odometr"),
            OPERATOR,
            None,
        )
        .await;
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"odometr\" is not a timeline kind") && message.contains("engine_hours"),
        "{message}"
    );

    // A partner sees the timeline of its own vehicle only.
    let (status, _) = b
        .call(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline?kind=prompt"),
            NORTH_TOKEN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    for path in ["timeline", "readings"] {
        let (status, json) = b
            .call(
                "GET",
                &format!("/api/v1/vehicles/{V3}/{path}"),
                NORTH_TOKEN,
                None,
            )
            .await;
        assert_eq!(status, 404, "{path}: {json}");
        assert_eq!(json["error"]["code"], "unknown_vehicle");
    }

    readings_are_a_bounded_series(&b, start).await;
    b.cloud.shutdown().await.unwrap();
}

/// The same vehicle's readings: 2,500 odometer readings as at most `max_points` points, the
/// first and last kept, a time range, and bad parameters refused.
async fn readings_are_a_bounded_series(b: &Bed, start: u64) {
    let r = b.get(&format!("/api/v1/vehicles/{V1}/readings")).await;
    assert_eq!(r["odometer"]["count"], 2_500, "{}", r["odometer"]["count"]);
    assert_eq!(r["odometer"]["unit"], "km");
    assert_eq!(r["engine_hours"]["count"], 5);
    assert_eq!(r["engine_hours"]["unit"], "h");
    assert_eq!(r["max_points"], 200);
    assert_eq!(r["complete"], true);
    let points = r["odometer"]["points"].as_array().unwrap();
    assert!(
        points.len() <= 200 && points.len() >= 100,
        "{}",
        points.len()
    );
    // [at_ms, km]: the first reading (seq 1, 10,001 km) and the last (seq 2,519; 2,520 is
    // engine hours).
    assert_eq!(points[0], serde_json::json!([start + MIN, 10_001.0]));
    assert_eq!(
        points[points.len() - 1],
        serde_json::json!([start + 2_519 * MIN, 12_519.0])
    );
    let times: Vec<u64> = points.iter().map(|p| p[0].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    let hours = r["engine_hours"]["points"].as_array().unwrap();
    assert_eq!(hours.len(), 5, "few readings come as they are");
    assert_eq!(
        hours[0],
        serde_json::json!([start + 504 * MIN, 504.0 / 60.0])
    );

    let r = b
        .get(&format!("/api/v1/vehicles/{V1}/readings?max_points=10"))
        .await;
    assert!(r["odometer"]["points"].as_array().unwrap().len() <= 10);
    // The first half of the history, by time.
    let until = start + 1_260 * MIN;
    let r = b
        .get(&format!(
            "/api/v1/vehicles/{V1}/readings?since={start}&until={until}&max_points=2000"
        ))
        .await;
    // 1,260 records, of which 10 events (seq 126 … 1,260).
    assert_eq!(r["odometer"]["count"], 1_250, "{}", r["odometer"]["count"]);
    assert_eq!(r["odometer"]["points"].as_array().unwrap().len(), 1_250);
    assert_eq!(
        (r["since"].as_u64(), r["until"].as_u64()),
        (Some(start), Some(until))
    );

    let refused = [
        "max_points=1",
        "max_points=5000",
        "since=abc",
        "since=2000&until=1000",
        "points=10",
    ];
    assert_bad_queries(b, &format!("/api/v1/vehicles/{V1}/readings"), &refused).await;
}

/// A partner body naming `token_env` is refused the same way whether the variable is set
/// (`PATH` is) or not: the caller learns nothing about the daemon's environment.
async fn a_partner_body_naming_token_env_is_refused_whatever_the_environment(kind: StoreKind) {
    let Some(b) = bed("reads-token-env", kind).await else {
        return;
    };
    assert!(std::env::var("PATH").is_ok());
    let body = |var: &str| {
        format!(
            r#"{{"id":"p9","name":"x","kind":"dealer","webhook_url":"http://127.0.0.1:1/","secret":"{}","token_env":"{var}"}}"#,
            DEALER_NORTH.secret
        )
    };
    let mut answers = Vec::new();
    for var in ["PATH", "RAPPORT_TEST_SURELY_UNSET_9F3A"] {
        let (status, json) = b
            .call("PUT", "/api/v1/partners/p9", OPERATOR, Some(&body(var)))
            .await;
        assert_eq!(status, 422, "{var}: {json}");
        assert_eq!(json["error"]["code"], "token_env_not_allowed", "{json}");
        answers.push(json);
    }
    assert_eq!(
        answers[0], answers[1],
        "the answer depends on the environment"
    );
    // Nothing was added.
    let list = b.get("/api/v1/partners").await;
    assert!(
        !list["partners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "p9"),
        "{list}"
    );
    // With the token in clear the same body is taken.
    let clear = body("X").replace(
        r#""token_env":"X""#,
        r#""token":"p9-token-0123456789abcdef0123456789""#,
    );
    let (status, json) = b
        .call("PUT", "/api/v1/partners/p9", OPERATOR, Some(&clear))
        .await;
    assert_eq!(status, 200, "{json}");
    b.cloud.shutdown().await.unwrap();
}

rapport_harness::on_both_backends!(
    alert_ages_and_sla_read_at_the_cloud_clock_and_tell_one_story,
    a_long_timeline_pages_by_cursor_and_filters_by_kind,
    a_partner_body_naming_token_env_is_refused_whatever_the_environment,
);
