//! The vehicle registry (operator): one vehicle's entry, and a whole file imported.
//!
//! - `PUT /api/v1/vehicles/{vin}/registration`: the entry as JSON;
//! - `POST /api/v1/registry`: a CSV (`text/csv`) or TOML (`application/toml`) file.
//!
//! Owns these routes' bodies and views ([`RegistrationView`]: how an entry reads in the
//! API). Does not own the file formats ([`crate::fleet::registry`]) or what registering
//! changes ([`crate::fleet::core::Fleet::register`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rapport_kit::config::one_line;
use rapport_shared::{CivilDate, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, Operator, VinPath};
use super::state::Shared;
use super::views::ok;
use crate::fleet::model::{Category, Consents, Registration};
use crate::fleet::registry;

/// Most problems of an import file an answer lists.
pub const MAX_LISTED_PROBLEMS: usize = 50;

/// The registry routes, each with its OpenAPI operation ([`super::openapi`]).
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(put_registration))
        .routes(routes!(import))
}

/// A registry entry as the API shows it (times in unix ms).
#[derive(Debug, Serialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    category: Category,
    #[serde(default)]
    line: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    delivered: Option<CivilDate>,
    #[serde(default)]
    dealer: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    consents: Consents,
}

/// `{"vin": ..., "registration": {...}}`.
#[derive(Serialize, ToSchema)]
struct RegisteredView {
    vin: String,
    registration: RegistrationView,
}

/// Creates or replaces one vehicle's registry entry (operator).
#[utoipa::path(operation_id = "putRegistration", put, path = "/api/v1/vehicles/{vin}/registration", tag = "registry",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$")),
    request_body(content = RegistrationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The entry as stored.", body = RegisteredView),
        (status = 400, description = "`bad_vin`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body`: a field missing, unknown or of the wrong type (named).", body = ErrorBody),
    ))]
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
#[derive(Serialize, ToSchema)]
struct ImportedView {
    imported: usize,
}

/// `POST /api/v1/registry` (operator): every entry of the file created or updated, or the
/// file's problems (422 `bad_registry`, the first [`MAX_LISTED_PROBLEMS`]).
#[utoipa::path(operation_id = "importRegistry", post, path = "/api/v1/registry", tag = "registry",
    request_body(description = "A registry file: CSV (`text/csv`) or TOML (`application/toml`), as in docs/fleet-engineer.md.",
        content((String = "text/csv"), (String = "application/toml"))),
    responses(
        (status = 200, description = "How many entries were created or updated.", body = ImportedView),
        (status = 400, description = "`bad_body`: the file is not UTF-8.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: neither CSV nor TOML.", body = ErrorBody),
        (status = 422, description = "`bad_registry`: the file's problems, each with its line.", body = ErrorBody),
    ))]
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
