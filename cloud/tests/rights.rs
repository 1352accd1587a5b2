//! Drivers' data rights end to end (docs/data-rights.md) on both store backends: the cloud
//! with its embedded broker, cars publishing over MQTT, the partners' verifying receivers,
//! the API over real HTTP, and the store scanned directly (sled's trees, PostgreSQL's tables)
//! once the cloud is down.
//!
//! - export: exactly what the store holds for the VIN (records, timeline, alerts with their
//!   deliveries, registration, driver) and nothing of the other car's; streamed;
//! - erase: every route about the VIN 404 or empty, the store holds nothing of it but the
//!   tombstone, the partner that got its alert gets a verified `vehicle.erased`, the car is
//!   sent the wipe downlink, late records from before are dropped (by car time before the
//!   confirmation, by seq after it), a repeat changes nothing, malformed requests change
//!   nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use rapport_harness::bed::{
    Bed, DEALER_NORTH, DEALER_SOUTH, MINUTE_MS, NORTH_TOKEN, Plan, Registration, Stopped,
};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use rapport_harness::records::{critical, odometer, vin};
use rapport_shared::{DownlinkBody, Record, RecordBody, Timestamp, Uplink, Vin, WipeConfirmed};
use serde_json::Value;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;
/// The car whose driver asks for erasure (sold by dealer-north).
const A: &str = "WP0ZZZ99ZTS392124";
/// Another car (sold by dealer-south).
const B: &str = "WVWZZZ1JZXW000001";
const WAIT: Duration = Duration::from_secs(10);

async fn bed(name: &str, kind: StoreKind) -> Option<Bed> {
    let plan = Plan::escalating(name, T0, &[DEALER_NORTH, DEALER_SOUTH]);
    let mut bed = Bed::start_on(kind, plan, |_| {}).await.unwrap()?;
    bed.watch_downlinks().await.unwrap();
    for (v, dealer) in [(A, "dealer-north"), (B, "dealer-south")] {
        bed.register(
            v,
            Registration {
                dealer,
                category: "passenger",
                line: "e-compact 2025",
                delivered: "2025-06-01",
            },
        )
        .await;
    }
    Some(bed)
}

/// Records, a critical fault (an alert delivered to the car's dealer) and more records.
async fn history(b: &mut Bed, v: &str, dealer: &str, n: u64) {
    for km in 0..n {
        b.send(v, vec![odometer(1_000 + km)]).await;
    }
    b.send(v, vec![critical(0x0300)]).await;
    let r = b.receiver(dealer);
    assert!(
        r.wait_until(WAIT, |s| s.delivered >= 1).await,
        "{v}'s alert reached {dealer}: {:?}",
        r.stats()
    );
    // The sender records the delivery just after the partner answered: wait for that too.
    let car: Vin = v.parse().unwrap();
    let store = b.cloud.store().clone();
    b.wait(WAIT, "the delivery recorded", || {
        sync(|| {
            store.alerts(false, Some(&car)).unwrap().iter().all(|a| {
                matches!(
                    store.outbox().state(&a.webhook().id).unwrap(),
                    Some(rapport_cloud::webhook::outbox::MessageState::Delivered(_))
                )
            })
        })
    })
    .await;
    b.advance(MINUTE_MS).await;
}

async fn get(b: &Bed, path: &str, token: &str) -> (u16, Value) {
    b.call("GET", path, token, None).await
}

async fn export_text(b: &Bed, v: &str) -> (u16, String) {
    let r = rapport_harness::http::client()
        .get(format!("{}/api/v1/vehicles/{v}/export", b.base))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// The export of `v` is exactly what the store holds of it, and names no other VIN.
async fn export_is_exact(b: &Bed, v: &str, other: &str) {
    let (status, text) = export_text(b, v).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(other), "the export of {v} names {other}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], 1);
    assert_eq!(doc["vin"], v);
    let vin: Vin = v.parse().unwrap();
    let store = b.cloud.store();
    sync(|| {
        // Records: the same seqs, newest first, and the same bodies.
        let held: Vec<Record> = store.records(&vin, 0, usize::MAX).unwrap();
        let exported: Vec<u64> = doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        let mut want: Vec<u64> = held.iter().map(|r| r.seq).collect();
        want.reverse();
        assert_eq!(exported, want, "records of {v}");
        let bodies: Vec<Value> = held
            .iter()
            .rev()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        assert_eq!(doc["records"].as_array().unwrap(), &bodies);
        // Timeline: every entry.
        let timeline: Vec<Value> = store
            .timeline_newest_first(&vin, None)
            .map(|e| serde_json::to_value(e.unwrap().1).unwrap())
            .collect();
        assert!(!timeline.is_empty());
        assert_eq!(doc["timeline"].as_array().unwrap(), &timeline);
        let layer_entries = timeline.iter().filter(|e| e["kind"] == "layer").count();
        assert_eq!(
            doc["layer_history"].as_array().unwrap().len(),
            layer_entries
        );
        // Alerts with their deliveries.
        let alerts = store.alerts(false, Some(&vin)).unwrap();
        let ids: BTreeSet<u64> = alerts.iter().map(|a| a.id).collect();
        let got: BTreeSet<u64> = doc["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert"]["id"].as_u64().unwrap())
            .collect();
        assert_eq!(got, ids);
        assert!(!ids.is_empty());
        assert!(
            doc["alerts"][0]["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["state"] == "delivered"),
            "{}",
            doc["alerts"]
        );
        assert_eq!(
            doc["registration"],
            serde_json::to_value(store.registration(&vin).unwrap().unwrap()).unwrap()
        );
        assert_eq!(
            doc["driver"],
            serde_json::to_value(store.driver(&vin).unwrap().unwrap()).unwrap()
        );
        assert!(
            doc["consents"]["current"].is_object(),
            "{}",
            doc["consents"]
        );
    });
}

/// Runs a store read off the async workers (the PostgreSQL client blocks).
fn sync<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn heartbeat() -> RecordBody {
    RecordBody::Heartbeat(rapport_shared::Heartbeat {
        agent_version: "late".into(),
        uptime_s: 1,
        outbox_depth: 0,
        records_dropped: 0,
    })
}

fn dropped(b: &Bed) -> u64 {
    b.cloud
        .metrics()
        .late_records_dropped
        .load(std::sync::atomic::Ordering::SeqCst)
}

/// Publishes `records` of `v` as a car would and waits until the ingest dropped `more` more.
async fn send_late(b: &mut Bed, v: &str, records: Vec<Record>, more: u64) {
    let before = dropped(b);
    let up = Uplink {
        vin: v.parse().unwrap(),
        records,
    };
    b.car.send(&up).await;
    b.car.settle().await;
    b.wait(WAIT, "late records dropped", || dropped(b) >= before + more)
        .await;
}

/// Where the stopped store still holds `vin`: sled keys and values, or PostgreSQL rows.
fn holders(stopped: &Stopped, vin: &str, vehicle_row: Option<i32>) -> Vec<String> {
    let mut out = Vec::new();
    match stopped.store.db() {
        None => {
            let db = rapport_kit::sled_store::open(&sled::Config::new().path(&stopped.sled_dir))
                .unwrap();
            let needle = vin.as_bytes();
            let has = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle);
            for name in db.tree_names() {
                let tree = db.open_tree(&name).unwrap();
                for item in tree.iter() {
                    let (k, v) = item.unwrap();
                    if has(&k) || has(&v) {
                        out.push(format!(
                            "{}: {}",
                            String::from_utf8_lossy(&name),
                            String::from_utf8_lossy(&k[..k.len().min(1)])
                        ));
                    }
                }
            }
        }
        Some(db) => {
            let vin = vin.to_owned();
            let hex: String = vin.bytes().map(|b| format!("{b:02x}")).collect();
            out = db
                .with(move |c| {
                    let mut out = Vec::new();
                    // Every table with a text, jsonb or bytea column: any row holding the VIN.
                    let tables = c.query(
                        "SELECT table_name FROM information_schema.tables \
                         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                        &[],
                    )?;
                    for t in tables {
                        let name: String = t.get(0);
                        let n: i64 = c
                            .query_one(
                                &format!(
                                    "SELECT count(*) FROM {name} t \
                                     WHERE position($1::bytea IN convert_to(t::text, 'UTF8')) > 0 \
                                        OR position($2 IN t::text) > 0"
                                ),
                                // A bytea column's text is its hex: the VIN's bytes in it.
                                &[&vin.as_bytes(), &hex],
                            )?
                            .get(0);
                        if n > 0 {
                            out.push(format!("{name}: {n} rows"));
                        }
                    }
                    if let Some(id) = vehicle_row {
                        let base = i64::from(id) << 36;
                        let n: i64 = c
                            .query_one(
                                "SELECT count(*) FROM records WHERE key >= $1 AND key < $2",
                                &[&base, &(base + (1 << 36))],
                            )?
                            .get(0);
                        if n > 0 {
                            out.push(format!("records: {n} of the erased row"));
                        }
                        let n: i64 = c
                            .query_one("SELECT count(*) FROM timeline WHERE vehicle = $1", &[&id])?
                            .get(0);
                        if n > 0 {
                            out.push(format!("timeline: {n} of the erased row"));
                        }
                    }
                    Ok(out)
                })
                .unwrap();
        }
    }
    out
}

async fn export_and_erase(kind: StoreKind) {
    let Some(mut b) = bed(&format!("rights-{kind:?}").to_lowercase(), kind).await else {
        return;
    };
    history(&mut b, A, "dealer-north", 30).await;
    history(&mut b, B, "dealer-south", 10).await;

    // Export: exact, each car alone.
    export_is_exact(&b, A, B).await;
    export_is_exact(&b, B, A).await;
    let (status, err) = get(&b, &format!("/api/v1/vehicles/{A}/export"), NORTH_TOKEN).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{err}"
    );
    let (status, err) = get(&b, "/api/v1/vehicles/1G1JC5444R7252360/export", OPERATOR).await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["code"], "unknown_vehicle");
    let (status, err) = get(&b, "/api/v1/vehicles/NOTAVIN/export", OPERATOR).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("bad_vin")),
        "{err}"
    );

    // Malformed erasures: a stable JSON error each, nothing changed.
    let path = format!("/api/v1/vehicles/{A}/erase");
    let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(501));
    for (token, body, status, code) in [
        (NORTH_TOKEN, r#"{"reason":"asked"}"#, 403, "forbidden"),
        (OPERATOR, r#"{}"#, 422, "bad_body"),
        (OPERATOR, r#"{"reason":"   "}"#, 422, "bad_body"),
        (OPERATOR, long.as_str(), 422, "bad_body"),
        (OPERATOR, r#"{"reason":"x","extra":1}"#, 422, "bad_body"),
        (OPERATOR, r#"{"reason":"#, 422, "bad_body"),
    ] {
        let (got, err) = b.call("POST", &path, token, Some(body)).await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {err}"
        );
        assert!(err["error"]["message"].is_string());
    }
    let (got, err) = b
        .call(
            "POST",
            "/api/v1/vehicles/NOTAVIN/erase",
            OPERATOR,
            Some(r#"{"reason":"x"}"#),
        )
        .await;
    assert_eq!((got, err["error"]["code"].as_str()), (400, Some("bad_vin")));
    let (got, err) = b
        .call(
            "POST",
            "/api/v1/vehicles/1G1JC5444R7252360/erase",
            OPERATOR,
            Some(r#"{"reason":"x"}"#),
        )
        .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (404, Some("unknown_vehicle"))
    );
    assert_eq!(
        get(&b, &format!("/api/v1/vehicles/{A}"), OPERATOR).await.0,
        200
    );
    assert!(sync(|| b.cloud.store().erasure(&vin(A)).unwrap()).is_none());

    // The PostgreSQL row id, to look for its records once the row is gone; A's alert.
    let pg_row: Option<i32> = b.test_store().db().map(|db| {
        sync(|| {
            db.with(|c| {
                Ok(
                    c.query_one("SELECT id FROM vehicles WHERE vin = $1", &[&A])?
                        .get(0),
                )
            })
        })
        .unwrap()
    });
    let alert_id = sync(|| b.cloud.store().alerts(false, Some(&vin(A))).unwrap())[0].id;

    // Erase A.
    let erased_at = b.now();
    let (status, first) = b
        .call(
            "POST",
            &path,
            OPERATOR,
            Some(r#"{"reason":"GDPR Art. 17 request #4711"}"#),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["vin"], A);
    assert_eq!(first["erased_at"], erased_at.as_millis());
    assert_eq!(
        first["partners_notified"],
        serde_json::json!(["dealer-north"])
    );
    assert!(
        first["erased"]["records"].as_u64().unwrap() >= 31,
        "{first}"
    );
    assert!(first["erased"]["alerts"].as_u64().unwrap() >= 1, "{first}");
    assert!(first["wipe_confirmed"].is_null());

    // The partner that got A's alert gets a verified vehicle.erased; B's dealer nothing.
    let north = b.receiver("dealer-north");
    assert!(
        north.wait_until(WAIT, |s| s.delivered >= 2).await,
        "{:?}",
        north.stats()
    );
    let erased: Vec<Value> = north
        .deliveries()
        .iter()
        .map(|a| serde_json::from_slice::<Value>(&a.body).unwrap())
        .filter(|v| v["type"] == "vehicle.erased")
        .collect();
    assert_eq!(erased.len(), 1, "{erased:?}");
    assert_eq!(erased[0]["vin"], A);
    assert_eq!(erased[0]["erased_at"], erased_at.as_millis());
    let south_before = b.receiver("dealer-south").stats().delivered;
    // The car is asked to wipe.
    let wipe_id = first["wipe_downlink"].as_u64().unwrap();
    b.wait(WAIT, "the wipe downlink", || {
        b.downlinks().iter().any(|d| {
            d.vin.to_string() == A
                && d.messages.iter().any(|m| {
                    m.id == wipe_id
                        && m.body
                            == DownlinkBody::VehicleWipe(rapport_shared::VehicleWipe { erased_at })
                })
        })
    })
    .await;

    // Idempotent: the same answer, no second wave, no second downlink.
    let (status, again) = b
        .call("POST", &path, OPERATOR, Some(r#"{"reason":"again"}"#))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(north.stats().delivered, 2, "one vehicle.erased");
    // (The critical fault's alert told the car its stage: a ServiceProgress, not counted.)
    assert_eq!(
        b.downlinks()
            .iter()
            .filter(|d| d.vin.to_string() == A)
            .filter(|d| {
                d.messages
                    .iter()
                    .any(|m| matches!(m.body, DownlinkBody::VehicleWipe(_)))
            })
            .count(),
        1
    );
    assert_eq!(b.receiver("dealer-south").stats().delivered, south_before);

    // Every route about A: 404 or empty. B untouched.
    for p in [
        format!("/api/v1/vehicles/{A}"),
        format!("/api/v1/vehicles/{A}/export"),
        format!("/api/v1/alerts/{alert_id}"),
    ] {
        let (status, body) = get(&b, &p, OPERATOR).await;
        assert_eq!(status, 404, "{p}: {body}");
        assert!(body["error"]["code"].is_string());
    }
    let (status, body) = get(&b, &format!("/api/v1/vehicles/{A}"), NORTH_TOKEN).await;
    assert_eq!(status, 404, "{body}");
    for p in [
        format!("/api/v1/vehicles/{A}/timeline"),
        format!("/api/v1/vehicles/{A}/readings"),
    ] {
        let (status, body) = get(&b, &p, OPERATOR).await;
        let empty = body
            .as_object()
            .map(|o| {
                o.values()
                    .all(|v| !v.is_array() || v.as_array().is_some_and(Vec::is_empty))
            })
            .unwrap_or(false);
        assert!(
            status == 404 || (status == 200 && empty),
            "{p}: {status} {body}"
        );
    }
    let (status, alerts) = get(&b, &format!("/api/v1/alerts?vin={A}"), OPERATOR).await;
    assert_eq!(status, 200);
    assert_eq!(alerts["alerts"], serde_json::json!([]), "{alerts}");
    let (_, list) = get(&b, "/api/v1/vehicles", OPERATOR).await;
    assert!(!list.to_string().contains(A), "{list}");
    assert!(list.to_string().contains(B), "{list}");
    export_is_exact(&b, B, A).await;

    // Late records from before the erasure: dropped, not resurrected (car time first).
    let late = |seq: u64, at: Timestamp| Record {
        seq,
        at,
        body: heartbeat(),
    };
    send_late(&mut b, A, vec![late(3, Timestamp::from_millis(T0))], 1).await;
    assert!(sync(|| b.cloud.store().vehicle(&vin(A)).unwrap()).is_none());
    // The car's confirmation: seq 500; from then on, seq decides, whatever the clock says.
    let after = Timestamp::from_millis(erased_at.as_millis() + 60_000);
    let confirm = Record {
        seq: 500,
        at: after,
        body: RecordBody::WipeConfirmed(WipeConfirmed {
            downlink: wipe_id,
            erased_at,
        }),
    };
    send_late(&mut b, A, vec![late(499, after), confirm], 1).await;
    let tomb = sync(|| b.cloud.store().erasure(&vin(A)).unwrap()).unwrap();
    assert_eq!(tomb.confirmed.map(|c| c.seq), Some(500));
    send_late(&mut b, A, vec![late(10, after)], 1).await;
    assert!(sync(|| b.cloud.store().vehicle(&vin(A)).unwrap()).is_none());
    assert!(sync(|| b.cloud.store().records(&vin(A), 0, 10).unwrap()).is_empty());
    let (_, now) = b
        .call("POST", &path, OPERATOR, Some(r#"{"reason":"again"}"#))
        .await;
    assert_eq!(now["late_records_dropped"], 3, "{now}");
    assert_eq!(now["wipe_confirmed"]["seq"], 500, "{now}");
    let metrics = reqwest::get(format!("{}/metrics", b.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        rapport_harness::http::metric(&metrics, "rapport_erasures_total"),
        Some(1)
    );
    assert_eq!(
        rapport_harness::http::metric(&metrics, "rapport_erasure_late_records_dropped_total"),
        Some(3)
    );

    // Nothing of A in the store but its tombstone (B's data is all there), once the
    // vehicle.erased delivery is recorded (its pending message names A).
    let msg = tomb.webhook("dealer-north").id;
    let store = b.cloud.store().clone();
    b.wait(WAIT, "the vehicle.erased delivery recorded", || {
        sync(|| {
            matches!(
                store.outbox().state(&msg).unwrap(),
                Some(rapport_cloud::webhook::outbox::MessageState::Delivered(_))
            )
        })
    })
    .await;
    drop(store);
    let stopped = b.stop().await.unwrap();
    let found = sync(|| holders(&stopped, A, pg_row));
    // The audit log keeps naming A: it is the accountability record (who read or changed
    // A's data, the erasure itself among them) and has its own retention
    // (docs/data-rights.md, "Erase"). It must hold entries of A; nothing else may.
    let (audit, found): (Vec<String>, Vec<String>) =
        found.into_iter().partition(|h| h.starts_with("audit"));
    assert!(
        !audit.is_empty(),
        "the erasure of {A} is not in the audit log"
    );
    let expected = if stopped.store.db().is_some() {
        vec!["erasures: 1 rows".to_owned()]
    } else {
        vec!["ingest: E".to_owned()]
    };
    assert_eq!(found, expected, "what still names {A}");
    assert!(!sync(|| holders(&stopped, B, None)).is_empty());
}

rapport_harness::on_both_backends!(export_and_erase);

/// The export is streamed: with a large car (50,000 records, megabytes of JSON) and a reader
/// that takes one chunk and waits, the producer stops after the channel's few chunks —
/// it never builds the document — and then delivers all of it, whole, as the reader goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_streamed_with_the_producer_bounded() {
    use http_body_util::BodyExt;
    use rapport_cloud::api::rights::{EXPORT_CHANNEL, EXPORT_CHUNK, Head, export_body};
    use rapport_cloud::store::Store;
    use rapport_cloud::store::sled::SledStore;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(SledStore::open(&dir.path().join("store")).unwrap());
    let car = vin(A);
    let total = 50_000u64;
    sync(|| {
        for first in (1..=total).step_by(1000) {
            let records = (first..first + 1000)
                .map(|seq| Record {
                    seq,
                    at: Timestamp::from_millis(T0 + seq * 1000),
                    body: odometer(seq),
                })
                .collect();
            store
                .ingest(
                    None,
                    &[Uplink { vin: car, records }],
                    Timestamp::from_millis(T0),
                )
                .unwrap();
        }
    });
    let head = sync(|| Head::load(&store, &car, Timestamp::from_millis(T0)))
        .unwrap()
        .unwrap();
    let (mut body, produced) = export_body(store.clone(), head);
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let mut got = first.to_vec();
    // The reader waits; the producer runs on until the channel is full, and stops there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ahead = produced.load(std::sync::atomic::Ordering::SeqCst);
    let bound = ((EXPORT_CHANNEL + 2) * (EXPORT_CHUNK + 4096)) as u64;
    assert!(
        ahead <= bound,
        "the producer ran {ahead} bytes ahead (bound {bound})"
    );
    while let Some(frame) = body.frame().await {
        got.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    let len = got.len() as u64;
    assert_eq!(len, produced.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        len > 10 * bound,
        "a document of {len} bytes, far above the bound"
    );
    let doc: Value = serde_json::from_slice(&got).unwrap();
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len() as u64, total);
    assert_eq!(records[0]["seq"], total, "newest first");
    assert_eq!(doc["format"], 1);
}
