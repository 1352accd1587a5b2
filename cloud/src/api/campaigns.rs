//! Campaigns to a cell (operator): one campaign sent to every driver of a set of layer cells
//! who may get it — consent, cadence and caps hold for operators too.
//!
//! - `POST /api/v1/campaigns`: `{"id", "title", "text", "priority"?, "valid_days",
//!   "cell"?: {axis: [values]}}` → 202 `{"campaign", "sent", "held_back"}`.
//!
//! Owns the body's checks and the answer. Does not own who gets it
//! ([`crate::fleet::core::Fleet::campaign_to_cell`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rapport_shared::{Campaign, CampaignTarget, Priority};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, Operator};
use super::state::Shared;
use super::views::json;
use crate::fleet::model::{CellFilter, DAY_MS};

/// Longest campaign id.
pub const MAX_ID_LEN: usize = 64;
/// Longest validity, days.
pub const MAX_VALID_DAYS: u32 = 365;

/// The campaign routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new().routes(routes!(to_cell))
}

/// The body of `POST /api/v1/campaigns`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CampaignBody {
    id: String,
    title: String,
    text: String,
    /// `low`, `normal` (default) or `high`.
    #[serde(default)]
    priority: Option<Priority>,
    valid_days: u32,
    /// The cells: values per axis (an absent axis: any).
    #[serde(default)]
    cell: BTreeMap<String, Vec<String>>,
}

/// The answer: how many drivers got it and how many were held back.
#[derive(Serialize, ToSchema)]
#[schema(as = CampaignSent)]
struct SentView {
    campaign: String,
    sent: u64,
    held_back: u64,
}

/// One campaign to every driver of a set of layer cells who may get it (operator).
#[utoipa::path(operation_id = "sendCampaign", post, path = "/api/v1/campaigns", tag = "campaigns",
    request_body(content = CampaignBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Sent to `sent` drivers, held back for `held_back`.", body = SentView),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body`: a field missing, unknown, of the wrong type or out of range (named).", body = ErrorBody),
    ))]
async fn to_cell(
    State(s): State<Arc<Shared>>,
    _: Operator,
    JsonBody(b): JsonBody<CampaignBody>,
) -> Result<Response, ApiError> {
    if b.id.is_empty() || b.id.len() > MAX_ID_LEN || b.title.is_empty() || b.text.is_empty() {
        return Err(ApiError::bad_body(format!(
            "id (1-{MAX_ID_LEN} chars), title and text must not be empty"
        )));
    }
    if !(1..=MAX_VALID_DAYS).contains(&b.valid_days) {
        return Err(ApiError::bad_body(format!(
            "valid_days: {} is not 1..={MAX_VALID_DAYS}",
            b.valid_days
        )));
    }
    let mut cells = CellFilter::default();
    for (axis, values) in &b.cell {
        cells
            .set(axis, values)
            .map_err(|e| ApiError::bad_body(format!("cell.{axis}: {e}")))?;
    }
    let now = s.fleet.clock.now();
    let campaign = Campaign {
        campaign_id: b.id.clone(),
        title: b.title,
        text: b.text,
        priority: b.priority.unwrap_or(Priority::Normal),
        valid_from: now,
        valid_until: now.saturating_add(Duration::from_millis(u64::from(b.valid_days) * DAY_MS)),
        target: CampaignTarget::default(),
    };
    let (sent, held_back) = s
        .fleet
        .change(&s.client, move |store, rules, now| {
            let (applied, sent, held) = store.campaign(rules, &campaign, &cells, now)?;
            Ok(((sent, held), applied))
        })
        .await?;
    json(
        StatusCode::ACCEPTED,
        &SentView {
            campaign: b.id,
            sent,
            held_back,
        },
    )
}
