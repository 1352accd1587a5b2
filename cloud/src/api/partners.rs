//! Partners: the list, and the operator adding, replacing and removing them.
//!
//! - `GET /api/v1/partners`: all (operator) or itself (partner), never a secret or a token
//!   hash ([`PartnerSummary`]), and the fallback's id;
//! - `PUT /api/v1/partners/{id}` (operator): add or replace; the body is a `[[partner]]`
//!   entry as JSON, its `token` in clear (only its hash is kept); `token_env` is refused
//!   (422 `token_env_not_allowed`): the daemon's environment is not the caller's to read;
//! - `DELETE /api/v1/partners/{id}` (operator).
//!
//! A partner added here is stored ([`crate::fleet::store::FleetStore::put_partner`]) and
//! its webhook endpoint given to the sender at once. Owns these routes. Does not own what a
//! valid partner is ([`crate::fleet::partners`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rapport_kit::config::one_line;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, Operator};
use super::state::{Shared, blocking};
use super::views::ok;
use crate::fleet::partners::{DirectoryError, PartnerConfig, PartnerSummary};

/// The partner routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(upsert, remove))
}

/// `{"partners": [...], "fallback": id or null}`.
#[derive(Serialize, ToSchema)]
#[schema(as = PartnerList)]
struct ListView<'a> {
    partners: Vec<PartnerSummary<'a>>,
    fallback: Option<&'a str>,
}

/// The partners (a partner: itself), never a secret or a token hash.
#[utoipa::path(operation_id = "listPartners", get, path = "/api/v1/partners", tag = "partners",
    responses((status = 200, description = "The partners and the fallback's id.", body = ListView)))]
async fn list(State(s): State<Arc<Shared>>, caller: Caller) -> Result<Response, ApiError> {
    let rules = s.fleet.rules()?;
    let directory = &rules.directory;
    ok(&ListView {
        partners: directory
            .iter()
            .filter(|p| match &caller {
                Caller::Operator => true,
                Caller::Partner(id) => &p.id == id,
            })
            .map(|p| p.summary())
            .collect(),
        fallback: directory.fallback().map(|p| p.id.as_str()),
    })
}

/// `PUT /api/v1/partners/{id}` (operator). The token comes in clear (`token`): a body naming
/// `token_env` is refused with 422 `token_env_not_allowed` before anything is looked up, so
/// a caller cannot probe which environment variables the daemon has ([`PartnerConfig::resolve`]
/// is given a lookup that finds nothing all the same).
#[utoipa::path(operation_id = "putPartner", put, path = "/api/v1/partners/{id}", tag = "partners",
    params(("id" = String, Path, description = "The partner's id (as in the body).")),
    request_body(content = PartnerConfig, content_type = "application/json"),
    responses(
        (status = 200, description = "The partner as stored (no secret, no token).", body = PartnerSummary),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 409, description = "`conflict`: the directory refuses the change.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body` (a bad field, or an id unlike the path's), `token_env_not_allowed`.", body = ErrorBody),
    ))]
async fn upsert(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path(id): Path<String>,
    JsonBody(cfg): JsonBody<PartnerConfig>,
) -> Result<Response, ApiError> {
    if cfg.token_env.is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "token_env_not_allowed",
            "token_env: not accepted through the API (it would read the daemon's \
             environment); give the token in clear as `token` (only its hash is kept)",
        ));
    }
    if cfg.id != id {
        return Err(ApiError::bad_body(format!(
            "id: {:?} is not the id in the path ({id:?})",
            cfg.id
        )));
    }
    let partner = cfg
        .resolve("partner", &|_| None)
        .map_err(|problems| ApiError::bad_body(one_line(&problems)))?;
    let s2 = Arc::clone(&s);
    let stored = partner.clone();
    blocking(move || {
        // Under the rules' lock: the directory and the store change together.
        let mut rules = s2.fleet.rules_mut()?;
        let before = rules.directory.clone();
        rules
            .directory
            .upsert(stored.clone())
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()))?;
        if let Err(e) = s2.store.put_partner(&stored) {
            rules.directory = before;
            return Err(e.into());
        }
        Ok(())
    })
    .await?;
    s.fleet.refresh_endpoints();
    ok(&partner.summary())
}

/// `DELETE /api/v1/partners/{id}` (operator): 204; 404 `unknown_partner`; 409 for the
/// fallback.
#[utoipa::path(operation_id = "deletePartner", delete, path = "/api/v1/partners/{id}", tag = "partners",
    params(("id" = String, Path, description = "The partner's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_partner`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the fallback cannot be removed.", body = ErrorBody),
    ))]
async fn remove(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s2 = Arc::clone(&s);
    blocking(move || {
        let mut rules = s2.fleet.rules_mut()?;
        let before = rules.directory.clone();
        rules.directory.remove(&id).map_err(|e| match e {
            DirectoryError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_partner", e.to_string())
            }
            other => ApiError::new(StatusCode::CONFLICT, "conflict", other.to_string()),
        })?;
        if let Err(e) = s2.store.remove_partner(&id) {
            rules.directory = before;
            return Err(e.into());
        }
        Ok(())
    })
    .await?;
    s.fleet.refresh_endpoints();
    Ok(StatusCode::NO_CONTENT.into_response())
}
