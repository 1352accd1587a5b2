//! The layer matrix (operator): how many drivers sit in each cell.
//!
//! - `GET /api/v1/layers?category=&axis=service|car`: one row per maturity on the axis
//!   (default `service`), one count per activity, and the total.
//!
//! Owns the route and its view. Does not own the counts ([`crate::fleet::layering`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Operator, Query};
use super::state::{Shared, blocking};
use super::views::ok;
use crate::fleet::model::{Activity, CarMaturity, Category, ServiceMaturity};

/// The layer routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v1/layers", get(matrix))
}

/// The maturity a matrix's rows are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Axis {
    /// Maturity with the service.
    #[default]
    Service,
    /// Maturity with the car.
    Car,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MatrixQuery {
    /// One category; absent: both.
    category: Option<Category>,
    axis: Axis,
}

/// The matrix.
#[derive(Serialize)]
struct MatrixView {
    axis: Axis,
    category: Option<Category>,
    /// The columns, in order.
    activities: &'static [Activity],
    rows: Vec<RowView>,
    total: u64,
}

/// One maturity's counts, one per activity.
#[derive(Serialize)]
struct RowView {
    maturity: &'static str,
    counts: Vec<u64>,
}

/// `GET /api/v1/layers` (operator).
async fn matrix(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Query(q): Query<MatrixQuery>,
) -> Result<Response, ApiError> {
    let category = q.category;
    let store = s.store.clone();
    let m = blocking(move || Ok(store.matrix(category)?)).await?;
    let rows = match q.axis {
        Axis::Service => ServiceMaturity::ALL
            .iter()
            .map(|sm| RowView {
                maturity: sm.as_str(),
                counts: Activity::ALL
                    .iter()
                    .map(|a| m.service_cell(*sm, *a))
                    .collect(),
            })
            .collect(),
        Axis::Car => CarMaturity::ALL
            .iter()
            .map(|cm| RowView {
                maturity: cm.as_str(),
                counts: Activity::ALL.iter().map(|a| m.car_cell(*cm, *a)).collect(),
            })
            .collect(),
    };
    ok(&MatrixView {
        axis: q.axis,
        category: q.category,
        activities: Activity::ALL,
        rows,
        total: m.total(),
    })
}
