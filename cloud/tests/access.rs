//! Accountable, rotatable, rate-limited access to the API, over the real stack (embedded
//! broker, real sled or PostgreSQL, real HTTP, verifying partner receivers) on a manual clock:
//! every request audited (who, when, VIN, route, outcome; refused ones too) and queried by the
//! operator, pruned by age; a webhook secret rotated with a delivery in flight (accepted
//! during the overlap, the old secret failing once retired); a partner's and the operator's
//! tokens rotated (both valid, then the old one 401), through the API and through the config;
//! malformed rotation requests refused without a change; a burst from one partner answered 429
//! with `Retry-After` while another partner's requests in the same moment all succeed; and
//! PostgreSQL refusing an UPDATE of the audit table.

use std::time::Duration;

use rapport_harness::bed::{
    Bed, DEALER_NORTH, DEALER_SOUTH, NORTH_TOKEN, Plan, Registration, SOUTH_TOKEN,
};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use rapport_harness::partner::Reply;
use rapport_harness::records::{critical, odometer};
use rapport_shared::{Record, RecordBody};
use serde_json::Value;

/// 2031-03-01T00:00:00Z.
const T0: u64 = 1_930_176_000_000;
const V1: &str = "WP0ZZZ99ZTS392124";
const V2: &str = "WVWZZZ1JZXW000001";

async fn bed(
    name: &str,
    kind: StoreKind,
    tweak: impl FnOnce(&mut rapport_cloud::config::Config),
) -> Option<Bed> {
    let plan = Plan::escalating(name, T0, &[DEALER_NORTH, DEALER_SOUTH]);
    Bed::start_on(kind, plan, tweak).await.unwrap()
}

async fn sell(b: &Bed, vin: &str, dealer: &str) {
    b.register(
        vin,
        Registration {
            dealer,
            category: "passenger",
            line: "e-compact 2030",
            delivered: "2031-01-10",
        },
    )
    .await;
}

fn at_now(b: &Bed, seq: u64, body: RecordBody) -> Record {
    Record {
        seq,
        at: b.now(),
        body,
    }
}

fn entries(page: &Value) -> Vec<Value> {
    page["entries"].as_array().unwrap().clone()
}

/// How many entries the store's audit log holds (read from the store, not the API).
async fn count(b: &Bed) -> usize {
    let store = b.cloud.store().clone();
    tokio::task::spawn_blocking(move || {
        let all = rapport_cloud::audit::AuditQuery {
            limit: 100_000,
            ..Default::default()
        };
        store.audit_query(&all).unwrap().len()
    })
    .await
    .unwrap()
}

/// One pruning pass on the store.
async fn prune(b: &Bed, before: rapport_shared::Timestamp, limit: usize) -> usize {
    let store = b.cloud.store().clone();
    tokio::task::spawn_blocking(move || store.audit_prune(before, limit).unwrap())
        .await
        .unwrap()
}

/// Every access leaves an entry: who (never the token), when (the cloud's clock), which VIN
/// (the path's, or the alert's vehicle), which route, the outcome; refused ones too. The
/// operator queries by VIN, partner and time, newest first, paged; a partner may not. Old
/// entries are pruned by age.
async fn every_access_is_audited_and_queryable_by_the_operator(kind: StoreKind) {
    let Some(mut b) = bed("access-audit", kind, |c| c.audit.days = 30).await else {
        return;
    };
    sell(&b, V1, "dealer-north").await;
    sell(&b, V2, "dealer-south").await;
    let r = at_now(&b, 1, odometer(1200));
    b.send_records(V1, vec![r]).await;
    let r = at_now(&b, 2, critical(0x0300));
    b.send_records(V1, vec![r]).await;
    let start = b.now().as_millis();

    let (s, _) = b
        .call("GET", &format!("/api/v1/vehicles/{V1}"), NORTH_TOKEN, None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = b
        .call("GET", &format!("/api/v1/vehicles/{V1}"), SOUTH_TOKEN, None)
        .await;
    assert_eq!(s, 404, "south sees north's car");
    let (s, _) = b
        .request(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = b
        .call(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline"),
            "not-a-token-of-anyone-at-all",
            None,
        )
        .await;
    assert_eq!(s, 401);
    b.advance(1000).await;
    let (s, _) = b
        .call(
            "GET",
            &format!("/api/v1/vehicles/{V1}/timeline"),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(s, 200);
    // An alert route: its VIN is the alert's vehicle.
    let alerts = b
        .get_as(&format!("/api/v1/alerts?vin={V1}"), OPERATOR)
        .await;
    let id = alerts["alerts"][0]["id"].as_u64().unwrap();
    let (s, _) = b
        .call("GET", &format!("/api/v1/alerts/{id}"), NORTH_TOKEN, None)
        .await;
    assert_eq!(s, 200);

    let page = b.get_as(&format!("/api/v1/audit?vin={V1}"), OPERATOR).await;
    let text = page.to_string();
    for secret in [
        NORTH_TOKEN,
        SOUTH_TOKEN,
        OPERATOR,
        "not-a-token-of-anyone-at-all",
    ] {
        assert!(!text.contains(secret), "a token in the audit: {text}");
    }
    let got: Vec<(String, Option<String>, String, u64)> = entries(&page)
        .iter()
        .map(|e| {
            (
                e["who"].as_str().unwrap().to_owned(),
                e["partner"].as_str().map(str::to_owned),
                format!(
                    "{} {}",
                    e["method"].as_str().unwrap(),
                    e["route"].as_str().unwrap()
                ),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let north = Some("dealer-north".to_owned());
    let south = Some("dealer-south".to_owned());
    // Newest first; the registration PUT and nothing of V2.
    assert_eq!(
        got[..7],
        [
            (
                "partner".into(),
                north.clone(),
                "GET /api/v1/alerts/{id}".into(),
                200
            ),
            ("operator".into(), None, "GET /api/v1/alerts".into(), 200),
            (
                "operator".into(),
                None,
                "GET /api/v1/vehicles/{vin}/timeline".into(),
                200
            ),
            (
                "unknown".into(),
                None,
                "GET /api/v1/vehicles/{vin}/timeline".into(),
                401
            ),
            (
                "unknown".into(),
                None,
                "GET /api/v1/vehicles/{vin}/timeline".into(),
                401
            ),
            (
                "partner".into(),
                south.clone(),
                "GET /api/v1/vehicles/{vin}".into(),
                404
            ),
            (
                "partner".into(),
                north.clone(),
                "GET /api/v1/vehicles/{vin}".into(),
                200
            ),
        ],
        "{page}"
    );
    assert!(entries(&page).iter().all(|e| e["vin"] == V1), "{page}");
    let seqs: Vec<u64> = entries(&page)
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {seqs:?}"
    );
    assert_eq!(entries(&page)[2]["at"], start + 1000, "the cloud's clock");

    // By partner; since; paged.
    let page = b
        .get_as("/api/v1/audit?partner=dealer-south", OPERATOR)
        .await;
    assert!(!entries(&page).is_empty());
    assert!(
        entries(&page)
            .iter()
            .all(|e| e["partner"] == "dealer-south"),
        "{page}"
    );
    let page = b
        .get_as(
            &format!("/api/v1/audit?vin={V1}&since={}", start + 1000),
            OPERATOR,
        )
        .await;
    // The three reads at start + 1 s and the audit's own query above (it names the VIN).
    let routes: Vec<String> = entries(&page)
        .iter()
        .map(|e| e["route"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        routes,
        [
            "/api/v1/audit",
            "/api/v1/alerts/{id}",
            "/api/v1/alerts",
            "/api/v1/vehicles/{vin}/timeline"
        ],
        "{page}"
    );
    // Pages of one follow each other without a gap or an overlap.
    let two = b
        .get_as(&format!("/api/v1/audit?vin={V1}&limit=2"), OPERATOR)
        .await;
    let first = b
        .get_as(&format!("/api/v1/audit?vin={V1}&limit=1"), OPERATOR)
        .await;
    let next = first["next"].as_u64().unwrap();
    let second = b
        .get_as(
            &format!("/api/v1/audit?vin={V1}&limit=1&before={next}"),
            OPERATOR,
        )
        .await;
    // `first` sees the `two` query as its newest entry; `second` the entry before it.
    assert_eq!(entries(&first)[0]["route"], "/api/v1/audit", "{first}");
    assert_eq!(
        entries(&second)[0]["seq"],
        entries(&two)[0]["seq"],
        "{second} {two}"
    );
    assert!(entries(&second)[0]["seq"].as_u64().unwrap() < next);
    // The audit is the operator's; bad queries are refused.
    let (s, j) = b.call("GET", "/api/v1/audit", NORTH_TOKEN, None).await;
    assert_eq!((s, j["error"]["code"].as_str()), (403, Some("forbidden")));
    // The refusal is audited as well, with its outcome.
    let page = b
        .get_as("/api/v1/audit?partner=dealer-north&limit=1", OPERATOR)
        .await;
    let last = &entries(&page)[0];
    assert_eq!(
        (
            last["route"].as_str(),
            last["status"].as_u64(),
            last["vin"].as_str()
        ),
        (Some("/api/v1/audit"), Some(403), None),
        "{page}"
    );
    for q in ["vin=nope", "limit=0", "since=yesterday", "who=operator"] {
        let (s, j) = b
            .call("GET", &format!("/api/v1/audit?{q}"), OPERATOR, None)
            .await;
        assert_eq!(
            (s, j["error"]["code"].as_str()),
            (400, Some("bad_query")),
            "{q}"
        );
    }

    // Retention (`[audit] days = 30` in this bed): nothing is pruned until entries are older
    // than that on the cloud's clock; a pass on the store is bounded.
    let before = count(&b).await;
    assert!(before >= 10, "{before}");
    assert_eq!(b.cloud.prune_audit_now().await.unwrap(), 0);
    b.clock.advance_ms(29 * 86_400_000);
    assert_eq!(b.cloud.prune_audit_now().await.unwrap(), 0, "29 days");
    b.clock.advance_ms(2 * 86_400_000);
    let (s, _) = b.call("GET", "/api/v1/layers", OPERATOR, None).await;
    assert_eq!(s, 200);
    let cutoff = rapport_cloud::audit::AuditConfig { days: 30 }.cutoff(b.now());
    assert_eq!(prune(&b, cutoff, 3).await, 3, "a bounded pass");
    assert_eq!(
        b.cloud.prune_audit_now().await.unwrap(),
        before - 3,
        "every old entry"
    );
    assert_eq!(count(&b).await, 1, "only the new entry is left");
    b.cloud.shutdown().await.unwrap();
}

/// A partner's webhook secret rotated with a delivery in flight: the retry after the
/// rotation carries both signatures and the receiver, already on the new secret, takes it;
/// once the old secret is retired a receiver still on it refuses, and on the new one takes
/// the retry. Partner and operator tokens: both valid, the old one 401 after revoking. No
/// answer holds a secret or a token; every rotation is audited.
async fn secrets_and_tokens_rotate_without_downtime(kind: StoreKind) {
    const OLD_OP: &str = "previous-operator-token-0123456789";
    let Some(mut b) = bed("access-rotate", kind, |c| {
        c.api.previous_operator_token = Some(OLD_OP.to_owned());
    })
    .await
    else {
        return;
    };
    const NEW_SECRET: &str = "whsec_bmV3LXNlY3JldC1ub3J0aC0wMTIzNDU2Nzg5YWJjZA==";
    sell(&b, V1, "dealer-north").await;
    sell(&b, V2, "dealer-north").await;
    // The first attempt fails: a delivery is in flight across the rotation.
    b.receiver("dealer-north").script([Reply::status(503)]);
    let r = at_now(&b, 1, critical(0x0300));
    b.send_records(V1, vec![r]).await;
    assert!(
        b.receiver("dealer-north")
            .wait_until(Duration::from_secs(20), |s| s.attempts >= 1)
            .await
    );

    let (s, j) = b
        .call(
            "POST",
            "/api/v1/partners/dealer-north/webhook-secret",
            OPERATOR,
            Some(&format!(r#"{{"secret":"{NEW_SECRET}"}}"#)),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["secret_fingerprints"].as_array().unwrap().len(), 2, "{j}");
    assert!(
        !j.to_string().contains("whsec_"),
        "a secret in an answer: {j}"
    );
    // The partner has not switched yet: the retry carries both signatures, and its receiver
    // (still on the old secret) takes it.
    for _ in 0..40 {
        if b.receiver("dealer-north").stats().delivered >= 1 {
            break;
        }
        b.advance(10_000).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = b.receiver("dealer-north").stats();
    assert_eq!(
        (stats.delivered, stats.rejected),
        (1, 0),
        "{:?}",
        b.receiver("dealer-north").rejections()
    );
    // It switches to the new secret: the next alert is taken as well.
    b.receiver("dealer-north")
        .set_secrets(&[NEW_SECRET])
        .unwrap();
    let r = at_now(&b, 1, critical(0x0301));
    b.send_records(V2, vec![r]).await;
    assert!(
        b.receiver("dealer-north")
            .wait_until(Duration::from_secs(20), |s| s.delivered >= 2)
            .await
    );
    assert_eq!(b.receiver("dealer-north").stats().rejected, 0);

    // Retired: a receiver still on the old secret refuses what follows; on the new one it
    // takes the retry.
    let (s, j) = b
        .call(
            "DELETE",
            "/api/v1/partners/dealer-north/webhook-secret/previous",
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["secret_fingerprints"].as_array().unwrap().len(), 1, "{j}");
    b.receiver("dealer-north")
        .set_secrets(&[DEALER_NORTH.secret])
        .unwrap();
    let r = at_now(&b, 2, critical(0x0302));
    b.send_records(V2, vec![r]).await;
    assert!(
        b.receiver("dealer-north")
            .wait_until(Duration::from_secs(20), |s| s.rejected >= 1)
            .await
    );
    assert_eq!(b.receiver("dealer-north").stats().delivered, 2);
    b.receiver("dealer-north")
        .set_secrets(&[NEW_SECRET])
        .unwrap();
    for _ in 0..40 {
        if b.receiver("dealer-north").stats().delivered >= 3 {
            break;
        }
        b.advance(10_000).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b.receiver("dealer-north").stats().delivered,
        3,
        "{:?}",
        b.receiver("dealer-north").rejections()
    );

    // A partner's token: both valid, then the old one refused.
    const NEW_NORTH: &str = "north-token-NEW-0123456789abcdef0123456789";
    let (s, j) = b
        .call(
            "POST",
            "/api/v1/partners/dealer-north/tokens",
            OPERATOR,
            Some(&format!(r#"{{"token":"{NEW_NORTH}"}}"#)),
        )
        .await;
    assert_eq!(s, 200, "{j}");
    assert!(
        !j.to_string().contains(NEW_NORTH) && !j.to_string().contains("north-token"),
        "{j}"
    );
    let fps = j["token_fingerprints"].as_array().unwrap().clone();
    assert_eq!(fps.len(), 2, "{j}");
    for t in [NORTH_TOKEN, NEW_NORTH] {
        let (s, _) = b
            .call("GET", &format!("/api/v1/vehicles/{V1}"), t, None)
            .await;
        assert_eq!(s, 200);
    }
    let (s, j) = b
        .call(
            "DELETE",
            &format!(
                "/api/v1/partners/dealer-north/tokens/{}",
                fps[0].as_str().unwrap()
            ),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(s, 200, "{j}");
    let (s, _) = b
        .call("GET", &format!("/api/v1/vehicles/{V1}"), NORTH_TOKEN, None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = b
        .call("GET", &format!("/api/v1/vehicles/{V1}"), NEW_NORTH, None)
        .await;
    assert_eq!(s, 200);
    // The last token stays.
    let (s, j) = b
        .call(
            "DELETE",
            &format!(
                "/api/v1/partners/dealer-north/tokens/{}",
                fps[1].as_str().unwrap()
            ),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{j}"
    );

    // The operator: the config's previous token works; a new one through the API; revoke.
    const NEW_OP: &str = "operator-token-NEW-0123456789abcdef01234";
    let (s, _) = b.call("GET", "/api/v1/layers", OLD_OP, None).await;
    assert_eq!(s, 200);
    let (s, j) = b
        .call(
            "POST",
            "/api/v1/operator/tokens",
            OPERATOR,
            Some(&format!(r#"{{"token":"{NEW_OP}"}}"#)),
        )
        .await;
    assert_eq!(s, 201, "{j}");
    assert!(!j.to_string().contains(NEW_OP), "{j}");
    let fps = j["tokens"].as_array().unwrap().clone();
    assert_eq!(fps.len(), 3, "{j}");
    for t in [OPERATOR, OLD_OP, NEW_OP] {
        let (s, _) = b.call("GET", "/api/v1/layers", t, None).await;
        assert_eq!(s, 200, "{t}");
    }
    for fp in &fps[..2] {
        let (s, j) = b
            .call(
                "DELETE",
                &format!("/api/v1/operator/tokens/{}", fp.as_str().unwrap()),
                NEW_OP,
                None,
            )
            .await;
        assert_eq!(s, 204, "{j}");
    }
    for t in [OPERATOR, OLD_OP] {
        let (s, _) = b.call("GET", "/api/v1/layers", t, None).await;
        assert_eq!(s, 401, "{t}");
    }
    // Kept in the store (a restart, another instance), as digests only.
    let store = b.cloud.store().clone();
    let kept = tokio::task::spawn_blocking(move || store.operator_token_changes().unwrap())
        .await
        .unwrap()
        .expect("the API's changes are stored");
    let kept: Value = serde_json::from_str(&kept).unwrap();
    let hash = rapport_cloud::fleet::partners::hash_token;
    assert_eq!(kept["added"], serde_json::json!([hash(NEW_OP)]), "{kept}");
    assert_eq!(
        kept["revoked"],
        serde_json::json!([hash(OPERATOR), hash(OLD_OP)]),
        "{kept}"
    );
    let (s, _) = b
        .call("GET", "/api/v1/operator/tokens", NORTH_TOKEN, None)
        .await;
    assert_eq!(s, 401, "north's old token");
    let (s, _) = b
        .call("GET", "/api/v1/operator/tokens", NEW_NORTH, None)
        .await;
    assert_eq!(s, 403, "a partner on an operator route");

    // Every rotation is in the audit log.
    let page = b.get_as("/api/v1/audit?limit=1000", NEW_OP).await;
    let routes: Vec<String> = entries(&page)
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["method"].as_str().unwrap(),
                e["route"].as_str().unwrap(),
                e["status"]
            )
        })
        .collect();
    for want in [
        "POST /api/v1/partners/{id}/webhook-secret 200",
        "DELETE /api/v1/partners/{id}/webhook-secret/previous 200",
        "POST /api/v1/partners/{id}/tokens 200",
        "DELETE /api/v1/partners/{id}/tokens/{fingerprint} 200",
        "POST /api/v1/operator/tokens 201",
        "DELETE /api/v1/operator/tokens/{fingerprint} 204",
    ] {
        assert!(
            routes.iter().any(|r| r == want),
            "{want} not in {routes:#?}"
        );
    }
    b.cloud.shutdown().await.unwrap();
}

/// A refused request: method, path, token, body, status, error code.
type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, u16, &'a str);

/// Malformed or refused rotation requests: each a stable JSON error, nothing changed (the
/// fingerprints are the same after, the old tokens still work).
async fn malformed_rotation_requests_change_nothing(kind: StoreKind) {
    let Some(b) = bed("access-malformed", kind, |_| {}).await else {
        return;
    };
    let before = b.get_as("/api/v1/partners", OPERATOR).await;
    let ops_before = b.get_as("/api/v1/operator/tokens", OPERATOR).await;
    let secret = "/api/v1/partners/dealer-north/webhook-secret";
    let tokens = "/api/v1/partners/dealer-north/tokens";
    let cases: &[Case] = &[
        (
            "POST",
            secret,
            OPERATOR,
            Some(r#"{"secret":"nope"}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            secret,
            OPERATOR,
            Some(r#"{"secret":"whsec_AAAA"}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            secret,
            OPERATOR,
            Some(r#"{"secret":1}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            secret,
            OPERATOR,
            Some(r#"{"secret":"x","extra":1}"#),
            422,
            "bad_body",
        ),
        ("POST", secret, OPERATOR, Some("{"), 422, "bad_body"),
        (
            "POST",
            secret,
            OPERATOR,
            None,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            secret,
            OPERATOR,
            Some(&format!(r#"{{"secret":"{}"}}"#, DEALER_NORTH.secret)),
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/v1/partners/nobody/webhook-secret",
            OPERATOR,
            Some(r#"{"secret":"whsec_bmV3LXNlY3JldC1ub3J0aC0wMTIzNDU2Nzg5YWJjZA=="}"#),
            404,
            "unknown_partner",
        ),
        (
            "POST",
            secret,
            NORTH_TOKEN,
            Some(r#"{"secret":"whsec_bmV3LXNlY3JldC1ub3J0aC0wMTIzNDU2Nzg5YWJjZA=="}"#),
            403,
            "forbidden",
        ),
        (
            "POST",
            tokens,
            OPERATOR,
            Some(r#"{"token":"short"}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            tokens,
            OPERATOR,
            Some(&format!(r#"{{"token":"{SOUTH_TOKEN}"}}"#)),
            409,
            "conflict",
        ),
        (
            "POST",
            tokens,
            OPERATOR,
            Some(&format!(r#"{{"token":"{NORTH_TOKEN}"}}"#)),
            409,
            "conflict",
        ),
        (
            "DELETE",
            "/api/v1/partners/dealer-north/tokens/sha256:0000000000000000",
            OPERATOR,
            None,
            404,
            "unknown_token",
        ),
        (
            "POST",
            tokens,
            SOUTH_TOKEN,
            Some(r#"{"token":"x"}"#),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/api/v1/operator/tokens",
            OPERATOR,
            Some(r#"{"token":"too short"}"#),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/api/v1/operator/tokens",
            OPERATOR,
            Some(r#"{"tok":"x"}"#),
            422,
            "bad_body",
        ),
        (
            "DELETE",
            "/api/v1/operator/tokens/sha256:0000000000000000",
            OPERATOR,
            None,
            404,
            "unknown_token",
        ),
        (
            "GET",
            "/api/v1/operator/tokens",
            NORTH_TOKEN,
            None,
            403,
            "forbidden",
        ),
    ];
    for (method, path, token, body, status, code) in cases {
        let (s, j) = match body {
            Some(body) => b.call(method, path, token, Some(body)).await,
            None if *method == "POST" => {
                // A body that is not JSON.
                let r = rapport_harness::http::client()
                    .post(format!("{}{path}", b.base))
                    .bearer_auth(token)
                    .header("content-type", "text/plain")
                    .body("secret=x")
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                (s, r.json().await.unwrap_or(Value::Null))
            }
            None => b.call(method, path, token, None).await,
        };
        assert_eq!(
            (s, j["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{method} {path} {body:?}: {j}"
        );
        let text = j.to_string();
        for secret in [DEALER_NORTH.secret, NORTH_TOKEN, SOUTH_TOKEN, OPERATOR] {
            assert!(!text.contains(secret), "a secret in an answer: {text}");
        }
    }
    // The operator's only token cannot be revoked.
    let fp = ops_before["tokens"][0].as_str().unwrap().to_owned();
    let (s, j) = b
        .call(
            "DELETE",
            &format!("/api/v1/operator/tokens/{fp}"),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{j}"
    );
    assert_eq!(b.get_as("/api/v1/partners", OPERATOR).await, before);
    assert_eq!(
        b.get_as("/api/v1/operator/tokens", OPERATOR).await,
        ops_before
    );
    for t in [NORTH_TOKEN, SOUTH_TOKEN] {
        let (s, _) = b.call("GET", "/api/v1/partners", t, None).await;
        assert_eq!(s, 200);
    }
    b.cloud.shutdown().await.unwrap();
}

/// A rotation in the config: the new secret with `previous_secret`, the new token with
/// `previous_token`. A receiver still on the old secret takes the deliveries; both tokens work.
async fn a_rotation_in_the_config_keeps_the_old_secret_and_token_working(kind: StoreKind) {
    const NEW_SECRET: &str = "whsec_bmV3LXNlY3JldC1ub3J0aC0wMTIzNDU2Nzg5YWJjZA==";
    const NEW_TOKEN: &str = "north-token-NEW-0123456789abcdef0123456789";
    let Some(mut b) = bed("access-config-rotation", kind, |c| {
        let north = c
            .partner
            .iter_mut()
            .find(|p| p.id == "dealer-north")
            .unwrap();
        north.previous_secret = Some(north.secret.clone());
        north.secret = NEW_SECRET.to_owned();
        north.previous_token = north.token.take();
        north.token = Some(NEW_TOKEN.to_owned());
    })
    .await
    else {
        return;
    };
    sell(&b, V1, "dealer-north").await;
    // The receiver still holds the old secret (the bed started it with it).
    let r = at_now(&b, 1, critical(0x0300));
    b.send_records(V1, vec![r]).await;
    assert!(
        b.receiver("dealer-north")
            .wait_until(Duration::from_secs(20), |s| s.delivered >= 1)
            .await,
        "{:?}",
        b.receiver("dealer-north").rejections()
    );
    // And a receiver on the new one as well.
    b.receiver("dealer-north")
        .set_secrets(&[NEW_SECRET])
        .unwrap();
    sell(&b, V2, "dealer-north").await;
    let r = at_now(&b, 1, critical(0x0301));
    b.send_records(V2, vec![r]).await;
    assert!(
        b.receiver("dealer-north")
            .wait_until(Duration::from_secs(20), |s| s.delivered >= 2)
            .await,
        "{:?}",
        b.receiver("dealer-north").rejections()
    );
    assert_eq!(b.receiver("dealer-north").stats().rejected, 0);
    for t in [NORTH_TOKEN, NEW_TOKEN] {
        let (s, _) = b
            .call("GET", &format!("/api/v1/vehicles/{V1}"), t, None)
            .await;
        assert_eq!(s, 200);
    }
    let list = b.get_as("/api/v1/partners", OPERATOR).await;
    let north = list["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "dealer-north")
        .unwrap();
    assert_eq!(north["secret_fingerprints"].as_array().unwrap().len(), 2);
    assert_eq!(north["token_fingerprints"].as_array().unwrap().len(), 2);
    b.cloud.shutdown().await.unwrap();
}

/// One request with a bearer token: status and `Retry-After`.
async fn hit(client: &reqwest::Client, url: &str, token: &str) -> (u16, Option<String>, Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let json = r.json().await.unwrap_or(Value::Null);
    (status, retry, json)
}

/// A burst from partner A gets 429s with `Retry-After` once its bucket is empty, while
/// partner B's requests in the same moment all succeed; counted per caller; the bucket
/// refills in real time.
async fn a_burst_from_one_partner_does_not_starve_another(kind: StoreKind) {
    let Some(b) = bed("access-ratelimit", kind, |c| {
        c.api.rate_limit = rapport_cloud::api::ratelimit::RateLimit {
            per_second: 100,
            burst: 100,
        };
        if let Some(p) = c.partner.iter_mut().find(|p| p.id == "dealer-north") {
            p.rate_limit = Some(rapport_cloud::api::ratelimit::RateLimit {
                per_second: 1,
                burst: 5,
            });
        }
    })
    .await
    else {
        return;
    };
    let client = rapport_harness::http::client();
    let url = format!("{}/api/v1/partners", b.base);
    let north = futures_join(&client, &url, NORTH_TOKEN, 20);
    let south = futures_join(&client, &url, SOUTH_TOKEN, 20);
    let started = std::time::Instant::now();
    let (north, south) = tokio::join!(north, south);
    // The limiter runs on the monotonic clock at 1 request/s for north: the burst of 5, and
    // one more for each whole second the 20 requests took (none on a quick machine).
    let refilled = usize::try_from(started.elapsed().as_secs()).unwrap();
    let ok = north.iter().filter(|r| r.0 == 200).count();
    let limited: Vec<_> = north.iter().filter(|r| r.0 == 429).collect();
    assert!((5..=5 + refilled).contains(&ok), "the burst: {ok} allowed");
    assert_eq!(limited.len(), 20 - ok);
    for (_, retry, json) in &limited {
        assert_eq!(retry.as_deref(), Some("1"), "whole seconds");
        assert_eq!(json["error"]["code"], "rate_limited", "{json}");
    }
    assert!(south.iter().all(|r| r.0 == 200), "south starved: {south:?}");
    let text = reqwest::get(format!("{}/metrics", b.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        rapport_harness::http::metric(
            &text,
            "rapport_api_rate_limited_total{who=\"partner:dealer-north\"}"
        ),
        Some(u64::try_from(20 - ok).unwrap()),
        "{text}"
    );
    assert_eq!(
        rapport_harness::http::metric(
            &text,
            "rapport_api_rate_limited_total{who=\"partner:dealer-south\"}"
        ),
        None
    );
    // A little over one real second: one more request (the cloud's clock plays no part).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(hit(&client, &url, NORTH_TOKEN).await.0, 200);
    assert_eq!(hit(&client, &url, NORTH_TOKEN).await.0, 429);
    b.cloud.shutdown().await.unwrap();
}

async fn futures_join(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> Vec<(u16, Option<String>, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        set.spawn(async move { hit(&client, &url, &token).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// PostgreSQL refuses an UPDATE of an audit entry, whoever tries; pruning by age deletes.
#[test]
fn the_postgres_audit_table_refuses_updates() {
    use rapport_cloud::config::{Backend, DbUrl};
    let Some(db) = rapport_harness::postgres::TestDb::create("audit-append-only").unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = rapport_harness::cloud::config(
        dir.path(),
        rapport_harness::cloud::BrokerKind::Embedded,
        "audit-append-only",
    )
    .unwrap();
    c.store.backend = Backend::Postgres;
    c.store.url = Some(DbUrl::new(db.url()));
    let store = rapport_cloud::store::Store::open(&c).unwrap();
    let entry = rapport_cloud::audit::AuditEntry {
        seq: 0,
        at: 1_000,
        who: rapport_cloud::audit::Who::Operator,
        partner: None,
        vin: Some(V1.into()),
        method: "GET".into(),
        route: "/api/v1/vehicles/{vin}".into(),
        status: 200,
    };
    let seq = store.audit_append(&entry).unwrap();
    let tried = db
        .with(|c| {
            Ok(c.execute("UPDATE audit SET status = 204", &[])
                .map_err(|e| e.as_db_error().map(|d| d.message().to_owned())))
        })
        .unwrap();
    let err = tried.unwrap_err().unwrap_or_default();
    assert!(err.contains("append-only"), "{err}");
    let kept = store
        .audit_query(&rapport_cloud::audit::AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((kept[0].seq, kept[0].status), (seq, 200));
    assert_eq!(
        store
            .audit_prune(rapport_shared::Timestamp::from_millis(1_001), 10)
            .unwrap(),
        1
    );
}

rapport_harness::on_both_backends!(
    every_access_is_audited_and_queryable_by_the_operator,
    secrets_and_tokens_rotate_without_downtime,
    a_burst_from_one_partner_does_not_starve_another,
    malformed_rotation_requests_change_nothing,
    a_rotation_in_the_config_keeps_the_old_secret_and_token_working,
);
