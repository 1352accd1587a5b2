//! The vehicle registry (operator): one vehicle's entry, and a whole file imported.
//!
//! - `PUT /api/v1/vehicles/{vin}/registration`: the entry as JSON;
//! - `POST /api/v1/registry`: a CSV (`text/csv`) or TOML (`application/toml`) file.
//!
//! Owns these routes' bodies and views ([`RegistrationView`]: how an entry reads in the
//! API). Does not own the file formats ([`crate::fleet::registry`]) or what registering
//! changes ([`crate::fleet::core::Fleet::register`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{post, put};
use rapport_kit::config::one_line;
use rapport_shared::{CivilDate, Timestamp};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{JsonBody, Operator, VinPath};
use super::state::Shared;
use super::views::ok;
use crate::fleet::model::{Category, Consents, Registration};
use crate::fleet::registry;

/// Most problems of an import file an answer lists.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// The registry routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/vehicles/{vin}/registration", put(put_registration))
        .route("/api/v1/registry", post(import))
}

/// A registry entry as the API shows it (times in unix ms).
#[derive(Debug, Serialize)]
pub struct RegistrationView {
    /// `passenger` or `commercial`.
    pub category: Category,
    /// The vehicle line.
    pub line: String,
    /// Delivered (midnight UTC of the day), or null.
    pub delivered: Option<Timestamp>,
    /// The dealer's partner id, or null.
    pub dealer: Option<String>,
    /// The region code, or null.
    pub region: Option<String>,
}

impl RegistrationView {
    /// The view of an entry.
    pub fn new(r: &Registration) -> Self {
        Self {
            category: r.category,
            line: r.line.clone(),
            delivered: r.delivered,
            dealer: r.dealer.clone(),
            region: r.region.clone(),
        }
    }
}

/// The body of `PUT /api/v1/vehicles/{vin}/registration`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    category: Category,
    #[serde(default)]
    line: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    delivered: Option<CivilDate>,
    #[serde(default)]
    dealer: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    consents: Consents,
}

/// `{"vin": ..., "registration": {...}}`.
#[derive(Serialize)]
struct RegisteredView {
    vin: String,
    registration: RegistrationView,
}

/// `PUT /api/v1/vehicles/{vin}/registration` (operator).
async fn put_registration(
    State(s): State<Arc<Shared>>,
    _: Operator,
    VinPath(vin): VinPath,
    JsonBody(b): JsonBody<RegistrationBody>,
) -> Result<Response, ApiError> {
    let r = Registration {
        vin,
        category: b.category,
        line: b.line,
        delivered: b.delivered.map(CivilDate::midnight_utc),
        dealer: b.dealer,
        region: b.region,
        consents: b.consents,
        owner_since: None,
        owner: None,
    };
    let view = RegisteredView {
        vin: vin.to_string(),
        registration: RegistrationView::new(&r),
    };
    s.fleet
        .change(&s.client, move |store, rules, now| {
            Ok(((), store.register(rules, &[r], false, now)?))
        })
        .await?;
    ok(&view)
}

/// `{"imported": n}`.
#[derive(Serialize)]
struct ImportedView {
    imported: usize,
}

/// `POST /api/v1/registry` (operator): every entry of the file created or updated, or the
/// file's problems (422 `bad_registry`, the first [`MAX_LISTED_PROBLEMS`]).
async fn import(
    State(s): State<Arc<Shared>>,
    _: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad("bad_body", "the file is not UTF-8"))?;
    let parsed = if content_type.starts_with("text/csv") {
        registry::parse_csv(text)
    } else if content_type.starts_with("application/toml") {
        registry::parse_toml(text)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected text/csv or application/toml, got {content_type:?}"),
        ));
    };
    let entries = parsed.map_err(|errors| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_registry",
            one_line(errors.iter().take(MAX_LISTED_PROBLEMS)),
        )
    })?;
    let imported = entries.len();
    s.fleet
        .change(&s.client, move |store, rules, now| {
            Ok(((), store.register(rules, &entries, false, now)?))
        })
        .await?;
    ok(&ImportedView { imported })
}
