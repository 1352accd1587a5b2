//! The layer matrix (operator): how many drivers sit in each cell.
//!
//! - `GET /api/v1/layers?category=&axis=service|car`: one row per maturity on the axis
//!   (default `service`), one count per activity, and the total.
//!
//! Owns the route and its view. Does not own the counts ([`crate::fleet::layering`]).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Operator, Query};
use super::state::{Shared, blocking};
use super::views::ok;
use crate::fleet::model::{Activity, CarMaturity, Category, ServiceMaturity};

/// The layer routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new().routes(routes!(matrix))
}

/// The maturity a matrix's rows are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Axis {
    /// Maturity with the service.
    #[default]
    Service,
    /// Maturity with the car.
    Car,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct MatrixQuery {
    /// One category; absent: both.
    #[param(value_type = Option<Category>)]
    category: Option<Category>,
    /// The rows' maturity (default `service`).
    #[param(value_type = Option<Axis>)]
    axis: Axis,
}

/// The matrix.
#[derive(Serialize, ToSchema)]
#[schema(as = LayerMatrix)]
struct MatrixView {
    axis: Axis,
    category: Option<Category>,
    /// The columns, in order.
    activities: &'static [Activity],
    rows: Vec<RowView>,
    total: u64,
}

/// One maturity's counts, one per activity.
#[derive(Serialize, ToSchema)]
#[schema(as = LayerRow)]
struct RowView {
    maturity: &'static str,
    counts: Vec<u64>,
}

/// The layer matrix: drivers per cell (operator).
#[utoipa::path(operation_id = "getLayerMatrix", get, path = "/api/v1/layers", tag = "layers", params(MatrixQuery),
    responses(
        (status = 200, description = "The matrix.", body = MatrixView),
        (status = 400, description = "`bad_query`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
    ))]
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
