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

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use rapport_shared::{Campaign, CampaignTarget, Priority};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{JsonBody, Operator};
use super::state::Shared;
use super::views::json;
use crate::fleet::model::{CellFilter, DAY_MS};

/// Longest campaign id.
pub const MAX_ID_LEN: usize = 64;
/// Longest validity, days.
pub const MAX_VALID_DAYS: u32 = 365;

/// The campaign routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v1/campaigns", post(to_cell))
}

/// The body of `POST /api/v1/campaigns`.
#[derive(Deserialize)]
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
#[derive(Serialize)]
struct SentView {
    campaign: String,
    sent: u64,
    held_back: u64,
}

/// `POST /api/v1/campaigns` (operator).
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
