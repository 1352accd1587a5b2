//! Partners: the list, and the operator adding, replacing and removing them.
//!
//! - `GET /api/v1/partners`: all (operator) or itself (partner), never a secret or a token
//!   hash ([`PartnerSummary`]), and the fallback's id;
//! - `PUT /api/v1/partners/{id}` (operator): add or replace; the body is a `[[partner]]`
//!   entry as JSON, its `token` in clear (only its hash is kept); `token_env` is refused
//!   (422 `token_env_not_allowed`): the daemon's environment is not the caller's to read;
//! - `DELETE /api/v1/partners/{id}` (operator);
//! - rotation (operator, docs/api-access.md): `POST /api/v1/partners/{id}/webhook-secret`
//!   (`{"secret"}`: signs beside the old one), `DELETE .../webhook-secret/previous` (retire
//!   the old ones), `POST /api/v1/partners/{id}/tokens` (`{"token"}`: another valid token),
//!   `DELETE /api/v1/partners/{id}/tokens/{fingerprint}` (revoke). Answers show fingerprints,
//!   never a secret or a token.
//!
//! A partner added here is stored ([`crate::fleet::store::FleetStore::put_partner`]) and
//! its webhook endpoint given to the sender at once. Owns these routes. Does not own what a
//! valid partner is ([`crate::fleet::partners`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rapport_kit::config::one_line;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, Operator};
use super::state::{Shared, blocking};
use super::views::ok;
use crate::fleet::partners::{
    DirectoryError, Partner, PartnerConfig, PartnerSummary, check_secret, hash_token,
    token_fingerprint,
};

/// The partner routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(upsert, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(retire_secrets))
        .routes(routes!(add_token))
        .routes(routes!(revoke_token))
}

/// `POST /api/v1/partners/{id}/webhook-secret`: the new secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// `whsec_` + base64 of 24 to 64 random bytes.
    pub secret: String,
}

/// Changes partner `id` with `change` under the rules' lock: the directory and the store
/// change together (or neither), then the sender's endpoints are refreshed. Answers the
/// partner's summary (fingerprints, never a secret).
async fn change_partner(
    s: Arc<Shared>,
    id: String,
    change: impl FnOnce(&mut Partner) -> Result<(), ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let s2 = Arc::clone(&s);
    let changed = blocking(move || {
        let mut rules = s2.fleet.rules_mut()?;
        let mut partner = rules.directory.get(&id).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_partner",
                format!("no partner {id:?}"),
            )
        })?;
        change(&mut partner)?;
        let before = rules.directory.clone();
        rules
            .directory
            .upsert(partner.clone())
            .map_err(|e| match e {
                DirectoryError::Invalid { problems } => ApiError::bad_body(one_line(&problems)),
                other => ApiError::new(StatusCode::CONFLICT, "conflict", other.to_string()),
            })?;
        if let Err(e) = s2.store.put_partner(&partner) {
            rules.directory = before;
            return Err(e.into());
        }
        Ok(partner)
    })
    .await?;
    s.fleet.refresh_endpoints();
    ok(&changed.summary())
}

/// `POST /api/v1/partners/{id}/webhook-secret` (operator): the new secret signs every
/// delivery from now on, beside the ones before it (each delivery carries every signature)
/// until they are retired. 422 for a secret that is not `whsec_` + 24..64 bytes, 409 when it
/// is one of the partner's already.
#[utoipa::path(operation_id = "rotatePartnerWebhookSecret", post, path = "/api/v1/partners/{id}/webhook-secret", tag = "partners",
    params(("id" = String, Path, description = "The partner's id.")),
    request_body(content = NewSecret, content_type = "application/json"),
    responses(
        (status = 200, description = "The partner (fingerprints of its secrets, never a secret).", body = PartnerSummary),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_partner`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the secret is one of the partner's already.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body`: not `whsec_` + base64 of 24 to 64 bytes.", body = ErrorBody),
    ))]
async fn rotate_secret(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewSecret>,
) -> Result<Response, ApiError> {
    check_secret(&body.secret).map_err(|e| ApiError::bad_body(format!("secret: {e}")))?;
    let who = id.clone();
    let answer = change_partner(s, id, move |p| {
        if p.secrets().any(|kept| kept == body.secret) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this secret is one of the partner's already",
            ));
        }
        let old = std::mem::replace(&mut p.secret, body.secret);
        p.previous_secrets.insert(0, old);
        Ok(())
    })
    .await?;
    tracing::info!(partner = %who, "webhook secret rotated; the previous one still signs until retired");
    Ok(answer)
}

/// `DELETE /api/v1/partners/{id}/webhook-secret/previous` (operator): only the current
/// secret signs from now on.
#[utoipa::path(operation_id = "retirePartnerWebhookSecrets", delete, path = "/api/v1/partners/{id}/webhook-secret/previous", tag = "partners",
    params(("id" = String, Path, description = "The partner's id.")),
    responses(
        (status = 200, description = "The partner, only its current secret signing.", body = PartnerSummary),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_partner`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the directory refuses the change.", body = ErrorBody),
    ))]
async fn retire_secrets(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = id.clone();
    let answer = change_partner(s, id, |p| {
        p.previous_secrets.clear();
        Ok(())
    })
    .await?;
    tracing::info!(partner = %who, "previous webhook secrets retired");
    Ok(answer)
}

/// `POST /api/v1/partners/{id}/tokens` (operator): another API token for the partner, valid
/// at once beside its others (`{"token": "..."}`, only its hash kept).
#[utoipa::path(operation_id = "addPartnerToken", post, path = "/api/v1/partners/{id}/tokens", tag = "partners",
    params(("id" = String, Path, description = "The partner's id.")),
    request_body(content = crate::api::operator::NewToken, content_type = "application/json"),
    responses(
        (status = 200, description = "The partner (fingerprints of its tokens, never a token).", body = PartnerSummary),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_partner`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the token is one of the partner's already.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body`: not a usable token.", body = ErrorBody),
    ))]
async fn add_token(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<crate::api::operator::NewToken>,
) -> Result<Response, ApiError> {
    crate::fleet::partners::check_token(&body.token)
        .map_err(|e| ApiError::bad_body(format!("token: {e}")))?;
    let hash = hash_token(&body.token);
    let who = id.clone();
    let answer = change_partner(s, id, move |p| {
        if p.token_hashes().any(|h| h == hash) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this token is one of the partner's already",
            ));
        }
        p.other_tokens_sha256.push(hash);
        Ok(())
    })
    .await?;
    tracing::info!(partner = %who, "partner API token added");
    Ok(answer)
}

/// `DELETE /api/v1/partners/{id}/tokens/{fingerprint}` (operator): the token no longer
/// opens anything. 404 `unknown_token`; 409 for the partner's last token.
#[utoipa::path(operation_id = "revokePartnerToken", delete, path = "/api/v1/partners/{id}/tokens/{fingerprint}", tag = "partners",
    params(("id" = String, Path, description = "The partner's id."),
        ("fingerprint" = String, Path, description = "The token's fingerprint (`sha256:` + 16 hex digits).")),
    responses(
        (status = 200, description = "The partner without that token.", body = PartnerSummary),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_partner`, `unknown_token`.", body = ErrorBody),
        (status = 409, description = "`conflict`: the partner's last token.", body = ErrorBody),
    ))]
async fn revoke_token(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path((id, fp)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let who = id.clone();
    let answer = change_partner(s, id, move |p| {
        let mut hashes: Vec<String> = p.token_hashes().map(str::to_owned).collect();
        let Some(i) = hashes.iter().position(|h| token_fingerprint(h) == fp) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_token",
                format!(
                    "the partner has no token with the fingerprint {:?}",
                    fp.chars().take(40).collect::<String>()
                ),
            ));
        };
        if hashes.len() == 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the partner's last token cannot be revoked: add its successor first",
            ));
        }
        hashes.remove(i);
        p.token_sha256 = hashes.remove(0);
        p.other_tokens_sha256 = hashes;
        Ok(())
    })
    .await?;
    tracing::info!(partner = %who, "partner API token revoked");
    Ok(answer)
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
