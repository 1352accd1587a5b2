//! The operator's owner change: `POST /api/v1/vehicles/{vin}/owner-change`.
//!
//! Body: `{"effective": "YYYY-MM-DD", "owner": "crm-4711", "dealer": "dealer-south"}`
//! (`owner` optional: the operator's opaque reference to the new owner, never a name;
//! `dealer` optional: the new owner's dealer's partner id, else the registry's stays). The car changed hands on
//! `effective` (not later than today on the cloud's clock): the relationship restarts
//! ([`crate::fleet::core::owner`]) — layers start over as a new relationship, consents go
//! off on the cloud and on the car (downlink tag 6), partners see only the new
//! relationship, the car's maintenance history stays. The same effective date again is
//! `"changed": false` and changes nothing; an unknown VIN is 404 `unknown_vehicle`; a bad
//! body is 422 `bad_body` or `bad_owner_change`, nothing changed.
//!
//! The registry import expresses the same with its `owner_since` and `owner` columns
//! ([`crate::fleet::registry`]). Owns this route's body and answer. Does not own what the
//! change does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rapport_shared::{CivilDate, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, Operator, VinPath};
use super::registry::RegistrationView;
use super::state::Shared;
use super::vehicles::unknown_vehicle;
use super::views::ok;
use crate::fleet::model::Registration;
use crate::store::Applied;

/// Longest owner reference accepted.
pub const MAX_OWNER_REF: usize = 128;

/// The owner routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new().routes(routes!(owner_change))
}

/// The body of `POST /api/v1/vehicles/{vin}/owner-change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerChangeBody {
    /// The day the car changed hands (`YYYY-MM-DD`, UTC).
    #[schema(value_type = String, format = Date)]
    pub effective: CivilDate,
    /// The operator's opaque reference to the new owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// The new owner's dealer (a partner id); absent: the registry's dealer stays.
    #[serde(default)]
    pub dealer: Option<String>,
}

/// The answer: the vehicle, whether this call changed the owner, the relationship's start
/// and the registration now.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerChangeView {
    /// The VIN.
    pub vin: String,
    /// `false`: the same effective date was already on record (nothing changed).
    pub changed: bool,
    /// The current owner's relationship start, unix ms (midnight UTC of `effective`).
    pub owner_since: Timestamp,
    /// The owner reference on record, if any.
    pub owner: Option<String>,
    /// The registry entry as it now reads.
    pub registration: RegistrationView,
}

/// What the change came to inside the store's call.
enum Outcome {
    Unknown,
    Future,
    Done(bool, Registration),
}

/// `POST /api/v1/vehicles/{vin}/owner-change` (operator).
#[utoipa::path(operation_id = "changeOwner", post, path = "/api/v1/vehicles/{vin}/owner-change", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$")),
    request_body(content = OwnerChangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The change (or `changed: false` when that date was on record already).", body = OwnerChangeView),
        (status = 400, description = "`bad_vin`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_vehicle`.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body`, `bad_owner_change` (a date after today, an overlong or control-character reference).", body = ErrorBody),
    ))]
async fn owner_change(
    State(s): State<Arc<Shared>>,
    _: Operator,
    VinPath(vin): VinPath,
    JsonBody(b): JsonBody<OwnerChangeBody>,
) -> Result<Response, ApiError> {
    let owner = reference("owner", b.owner)?;
    let dealer = reference("dealer", b.dealer)?;
    let since = b.effective.midnight_utc();
    let outcome = s
        .fleet
        .change(&s.client, move |store, rules, now| {
            if since > now {
                return Ok((Outcome::Future, Applied::default()));
            }
            let old = store.registration(&vin)?;
            if old.is_none() && store.vehicle(&vin)?.is_none() {
                return Ok((Outcome::Unknown, Applied::default()));
            }
            let mut r = old.unwrap_or_else(|| Registration::unregistered(vin));
            if r.owner_since == Some(since) {
                return Ok((Outcome::Done(false, r), Applied::default()));
            }
            r.owner_since = Some(since);
            r.owner = owner;
            if dealer.is_some() {
                r.dealer = dealer;
            }
            let applied = store.register(rules, std::slice::from_ref(&r), false, now)?;
            let stored = store.registration(&vin)?.unwrap_or(r);
            Ok((Outcome::Done(true, stored), applied))
        })
        .await?;
    match outcome {
        Outcome::Unknown => Err(unknown_vehicle(&vin)),
        Outcome::Future => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_owner_change",
            format!("effective: {} is later than today", b.effective),
        )),
        Outcome::Done(changed, r) => ok(&OwnerChangeView {
            vin: vin.to_string(),
            changed,
            owner_since: since,
            owner: r.owner.clone(),
            registration: RegistrationView::new(&r),
        }),
    }
}

/// An optional reference of the body (`owner`, `dealer`): trimmed, empty is absent, at most
/// [`MAX_OWNER_REF`] bytes without control characters.
fn reference(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|o| o.trim().to_owned()) {
        Some(o) if o.is_empty() => Ok(None),
        Some(o) if o.len() > MAX_OWNER_REF || o.chars().any(char::is_control) => {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_owner_change",
                format!(
                    "{field}: at most {MAX_OWNER_REF} bytes without control characters \
                     (an opaque reference, not a name)"
                ),
            ))
        }
        other => Ok(other),
    }
}
