//! The API's OpenAPI document against the running router (docs/api.md): served without a
//! token and equal to the one the library builds; an OpenAPI 3.1 document whose every `$ref`
//! resolves, every `/api/v1` operation behind the bearer scheme with its 401; every documented
//! operation served by the real cloud (not the fallback's 404 or 405), answering with a status
//! its operation documents and, for an error, the stable `{"error":{"code","message"}}`; and
//! no route added to the router outside the documented `routes!()` (the API's sources are
//! walked for it). A new route that is not in the document fails here.

use std::collections::BTreeSet;
use std::path::Path;

use rapport_harness::bed::{Bed, DEALER_NORTH, Plan};
use rapport_harness::cloud::{OPERATOR, StoreKind};
use serde_json::Value;

const T0: u64 = 1_930_176_000_000;
const VIN: &str = "WP0ZZZ99ZTS392124";
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.extend(x.as_str());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// What the document must be, whatever serves it.
fn check_document(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0", "not OpenAPI 3.1");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http");
    assert_eq!(schemes["scheme"], "bearer");
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}: not a schema reference"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().expect("operationId");
            assert!(
                ids.insert(id),
                "{method} {path}: operationId {id} is not unique"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, r) in responses {
                assert!(r["description"].is_string(), "{method} {path} {status}");
                if (status.starts_with('4') || status.starts_with('5')) && path.starts_with("/api/")
                {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}: not the stable error shape"
                    );
                }
            }
            let open = op["security"] == serde_json::json!([{}]);
            if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{"bearer": []}]),
                    "{method} {path}"
                );
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            } else {
                assert!(open, "{method} {path} should need no token");
            }
        }
    }
}

/// The documented operations: `(METHOD, path template)`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The template with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{vin}", VIN).replace("{id}", "1")
}

async fn document_matches_the_router(kind: StoreKind) {
    let Some(b) = Bed::start_on(
        kind,
        Plan::escalating("openapi", T0, &[DEALER_NORTH]),
        |_| {},
    )
    .await
    .unwrap() else {
        return;
    };
    // Served without a token, the library's document exactly.
    let (status, served) = b.request("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200, "{served}");
    let built = serde_json::to_value(rapport_cloud::api::openapi::document()).unwrap();
    assert_eq!(served, built, "the served document is not the built one");
    check_document(&served);

    let ops = operations(&served);
    // The routes of the API before this document, so a route lost from the document fails.
    for want in [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/vehicles"),
        ("GET", "/api/v1/vehicles/{vin}"),
        ("POST", "/api/v1/vehicles/{vin}/downlink"),
        ("GET", "/api/v1/vehicles/{vin}/timeline"),
        ("GET", "/api/v1/vehicles/{vin}/readings"),
        ("PUT", "/api/v1/vehicles/{vin}/registration"),
        ("POST", "/api/v1/registry"),
        ("GET", "/api/v1/layers"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/alerts/{id}"),
        ("POST", "/api/v1/alerts/{id}/acknowledge"),
        ("POST", "/api/v1/alerts/{id}/resolve"),
        ("GET", "/api/v1/partners"),
        ("PUT", "/api/v1/partners/{id}"),
        ("DELETE", "/api/v1/partners/{id}"),
        ("POST", "/api/v1/campaigns"),
        ("GET", "/api/v1/dead-letters"),
        ("POST", "/api/v1/dead-letters/{id}/redrive"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/vehicles/{vin}/export"),
        ("POST", "/api/v1/vehicles/{vin}/erase"),
        ("POST", "/api/v1/vehicles/{vin}/owner-change"),
        ("GET", "/api/v1/audit"),
        ("POST", "/api/v1/partners/{id}/webhook-secret"),
        ("DELETE", "/api/v1/partners/{id}/webhook-secret/previous"),
        ("POST", "/api/v1/partners/{id}/tokens"),
        ("DELETE", "/api/v1/partners/{id}/tokens/{fingerprint}"),
        ("GET", "/api/v1/operator/tokens"),
        ("POST", "/api/v1/operator/tokens"),
        ("DELETE", "/api/v1/operator/tokens/{fingerprint}"),
    ] {
        assert!(
            ops.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} is not in the document"
        );
    }

    // Every documented operation is served: not the fallback's 404, not 405; with a status
    // its operation documents, and an error in the stable shape.
    for (method, path) in &ops {
        let (status, json) = b.call(method, &concrete(path), OPERATOR, None).await;
        assert_ne!(status, 405, "{method} {path}: not served ({json})");
        assert!(
            !(status == 404 && json["error"]["code"] == "not_found"),
            "{method} {path}: the fallback answered, the route is not served"
        );
        let op = &served["paths"][path][method.to_lowercase()];
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which its operation does not document: {json}"
        );
        if status >= 400 {
            assert!(
                json["error"]["code"].is_string() && json["error"]["message"].is_string(),
                "{method} {path} {status}: {json}"
            );
        }
    }
    // Anything else is the fallback.
    for (method, path) in [("GET", "/api/v1/nothing"), ("POST", "/api/v1/vehicles")] {
        let (status, json) = b.call(method, path, OPERATOR, None).await;
        assert!(
            status == 404 || status == 405,
            "{method} {path}: {status} {json}"
        );
    }
    b.cloud.shutdown().await.unwrap();
}

rapport_harness::on_both_backends!(document_matches_the_router);

/// Each `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The router cannot be listed, so its sources are: every API route is added with
/// `routes!(handler)` (which documents it); a plain `.route(` (or a nested or service
/// router) is only the dashboard's static files. A new undocumented route fails here.
#[test]
fn no_route_is_added_outside_the_documented_routes() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    sources(&api, &mut files);
    assert!(files.len() > 10, "{files:?}");
    let mut plain = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dashboard = file.ends_with("dashboard/mod.rs");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let undocumented = [".route(", ".route_service(", ".nest(", ".nest_service("]
                .iter()
                .any(|m| code.contains(m));
            if undocumented && !dashboard {
                plain.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        plain.is_empty(),
        "routes added without routes!() (so not in the OpenAPI document):\n{}",
        plain.join("\n")
    );
}

/// The document alone: OpenAPI 3.1, every reference resolving, the shared answers.
#[test]
fn the_built_document_is_openapi_3_1() {
    let doc = serde_json::to_value(rapport_cloud::api::openapi::document()).unwrap();
    check_document(&doc);
}
