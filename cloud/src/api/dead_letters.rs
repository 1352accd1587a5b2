//! Dead letters (operator): webhooks parked after their last attempt or a 410, and sending
//! one again.
//!
//! - `GET /api/v1/dead-letters?after=&limit=`: in id order, paged by the last id seen;
//! - `POST /api/v1/dead-letters/{id}/redrive`: back to the outbox under the same id, due now
//!   → 202 `{"id", "partner", "next_at"}`.
//!
//! Owns these routes and views. Does not own the outbox ([`crate::webhook::outbox`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rapport_shared::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Limit, Operator, Query};
use super::state::{Shared, blocking};
use super::vehicles::DEFAULT_LIMIT;
use super::views::{json, ok};
use crate::webhook::outbox::{DeadLetter, OutboxError};
use crate::webhook::schedule::DeadReason;

/// The dead-letter routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(redrive))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    /// A message id: the page starts after it.
    after: Option<String>,
    /// The page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<Limit>,
}

/// `{"dead_letters": [...]}`.
#[derive(Serialize, ToSchema)]
#[schema(as = DeadLetterList)]
struct ListView<'a> {
    dead_letters: Vec<DeadLetterView<'a>>,
}

/// One dead letter (its body stays in the outbox).
#[derive(Serialize, ToSchema)]
#[schema(as = DeadLetter)]
struct DeadLetterView<'a> {
    id: &'a str,
    partner: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    attempts: u32,
    created_at: Timestamp,
    dead_at: Timestamp,
    reason: DeadReason,
    last_error: Option<&'a str>,
}

impl<'a> DeadLetterView<'a> {
    fn new(d: &'a DeadLetter) -> Self {
        Self {
            id: &d.message.id,
            partner: &d.message.partner,
            event_type: &d.message.event_type,
            attempts: d.message.attempts,
            created_at: d.message.created_at,
            dead_at: d.dead_at,
            reason: d.reason,
            last_error: d.message.last_error.as_deref(),
        }
    }
}

/// Webhooks parked after their last attempt or a 410, in id order (operator).
#[utoipa::path(operation_id = "listDeadLetters", get, path = "/api/v1/dead-letters", tag = "webhooks", params(ListQuery),
    responses(
        (status = 200, description = "A page of dead letters.", body = ListView),
        (status = 400, description = "`bad_query`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
    ))]
async fn list(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = Limit::or(q.limit, DEFAULT_LIMIT);
    blocking(move || {
        let list = s
            .store
            .outbox()
            .dead_letters(q.after.as_deref(), limit)
            .map_err(|e| ApiError::internal(&e))?;
        ok(&ListView {
            dead_letters: list.iter().map(DeadLetterView::new).collect(),
        })
    })
    .await
}

/// The answer to a re-drive.
#[derive(Serialize, ToSchema)]
#[schema(as = Redriven)]
struct RedrivenView {
    id: String,
    partner: String,
    next_at: Timestamp,
}

/// `POST /api/v1/dead-letters/{id}/redrive` (operator): 404 `unknown_dead_letter` for an id
/// that is not a dead letter.
#[utoipa::path(operation_id = "redriveDeadLetter", post, path = "/api/v1/dead-letters/{id}/redrive", tag = "webhooks",
    params(("id" = String, Path, description = "The message id.")),
    responses(
        (status = 202, description = "Back in the outbox, due now.", body = RedrivenView),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_dead_letter`.", body = ErrorBody),
    ))]
async fn redrive(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s2 = Arc::clone(&s);
    let msg = blocking(move || {
        let now = s2.fleet.clock.now();
        let m = s2.store.outbox().redrive(&id, now).map_err(|e| match e {
            OutboxError::NotDead { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_dead_letter", e.to_string())
            }
            other => ApiError::internal(&other),
        })?;
        s2.store.flush()?;
        Ok(m)
    })
    .await?;
    s.fleet.wake.notify_one();
    json(
        StatusCode::ACCEPTED,
        &RedrivenView {
            id: msg.id,
            partner: msg.partner,
            next_at: msg.next_at,
        },
    )
}
