//! The operator's token routes: `GET|POST /api/v1/operator/tokens` and
//! `DELETE /api/v1/operator/tokens/{fingerprint}` (a rotation of the operator's token without
//! downtime, docs/api-access.md). Never a token in an answer or a log line: fingerprints only.
//!
//! Owns the routes and their shapes. Does not own the digests, their checks or how changes are
//! kept ([`super::auth::Access`]).

use axum::http::StatusCode;

use super::auth::OperatorChanges;
use super::error::ApiError;

/// The operator's token routes: `GET /api/v1/operator/tokens` (fingerprints),
/// `POST /api/v1/operator/tokens` (`{"token": "..."}`: a second token, valid at once) and
/// `DELETE /api/v1/operator/tokens/{fingerprint}` (revoke). Never a token in an answer.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<std::sync::Arc<super::state::Shared>> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(
            list_operator_tokens,
            add_operator_token
        ))
        .routes(utoipa_axum::routes!(revoke_operator_token))
}

/// A token in clear, given to be added (only its hash is kept).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The token: a random string of at least 32 characters.
    pub token: String,
}

/// The operator's valid tokens, by fingerprint (the current one first).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TokensView {
    /// `sha256:` and the first 16 hex digits of each token's SHA-256.
    pub tokens: Vec<String>,
}

/// `GET /api/v1/operator/tokens` (operator).
#[utoipa::path(operation_id = "listOperatorTokens", get, path = "/api/v1/operator/tokens", tag = "operator",
    responses(
        (status = 200, description = "The valid operator tokens' fingerprints, the current one first.", body = TokensView),
        (status = 403, description = "`forbidden`: operator only.", body = super::error::ErrorBody),
    ))]
pub async fn list_operator_tokens(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<super::state::Shared>>,
    _: super::extract::Operator,
) -> Result<axum::response::Response, ApiError> {
    super::views::ok(&TokensView {
        tokens: s.access.operator_fingerprints(),
    })
}

/// Stores the operator tokens' changes, then applies them (a store that fails changes
/// nothing).
async fn store_changes(
    s: &std::sync::Arc<super::state::Shared>,
    changes: OperatorChanges,
) -> Result<(), ApiError> {
    let json = serde_json::to_string(&changes).map_err(|e| ApiError::internal(&e))?;
    let s2 = std::sync::Arc::clone(s);
    super::state::blocking(move || Ok(s2.store.put_operator_token_changes(&json)?)).await?;
    s.access.apply(changes);
    Ok(())
}

/// `POST /api/v1/operator/tokens` (operator): 201 and the fingerprints.
#[utoipa::path(operation_id = "addOperatorToken", post, path = "/api/v1/operator/tokens", tag = "operator",
    request_body(content = NewToken, content_type = "application/json"),
    responses(
        (status = 201, description = "Added: valid at once beside the others; every valid token's fingerprint.", body = TokensView),
        (status = 403, description = "`forbidden`: operator only.", body = super::error::ErrorBody),
        (status = 409, description = "`conflict`: the token is valid already, or was revoked.", body = super::error::ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = super::error::ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = super::error::ErrorBody),
        (status = 422, description = "`bad_body`: not a usable token.", body = super::error::ErrorBody),
    ))]
pub async fn add_operator_token(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<super::state::Shared>>,
    _: super::extract::Operator,
    super::extract::JsonBody(body): super::extract::JsonBody<NewToken>,
) -> Result<axum::response::Response, ApiError> {
    let (changes, fp) = s.access.plan_add(&body.token)?;
    store_changes(&s, changes).await?;
    tracing::info!(fingerprint = %fp, "operator token added");
    let mut r = super::views::ok(&TokensView {
        tokens: s.access.operator_fingerprints(),
    })?;
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// `DELETE /api/v1/operator/tokens/{fingerprint}` (operator): 204.
#[utoipa::path(operation_id = "revokeOperatorToken", delete, path = "/api/v1/operator/tokens/{fingerprint}", tag = "operator",
    params(("fingerprint" = String, Path, description = "The token's fingerprint (`sha256:` + 16 hex digits).")),
    responses(
        (status = 204, description = "Revoked: the token opens nothing from now on."),
        (status = 403, description = "`forbidden`: operator only.", body = super::error::ErrorBody),
        (status = 404, description = "`unknown_token`.", body = super::error::ErrorBody),
        (status = 409, description = "`conflict`: the last operator token.", body = super::error::ErrorBody),
    ))]
pub async fn revoke_operator_token(
    axum::extract::State(s): axum::extract::State<std::sync::Arc<super::state::Shared>>,
    _: super::extract::Operator,
    axum::extract::Path(fp): axum::extract::Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let changes = s.access.plan_revoke(&fp)?;
    store_changes(&s, changes).await?;
    tracing::info!(fingerprint = %fp, "operator token revoked");
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}
