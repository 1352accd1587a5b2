//! The API's one error answer: a status and `{"error":{"code":"...","message":"..."}}`, with
//! a stable code per kind of refusal (`bad_query`, `bad_vin`, `unknown_alert`, ...), and the
//! mapping of the fleet's errors onto it.
//!
//! Owns the error body and the codes' statuses. Does not own when a route refuses (each
//! route, [`super::extract`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::fleet::core::FleetError;
use crate::store::StoreError;

/// An error response: status and `{"error":{"code","message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// The body of every error answer: `{"error":{"code","message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// What went wrong.
    pub error: ErrorDetail<'a>,
}

/// A refusal: its stable code and a message for people.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, snake_case (`bad_query`, `unknown_vehicle`, `forbidden`, ...): what a client
    /// matches on.
    pub code: &'a str,
    /// For people; may change between versions.
    pub message: &'a str,
}

impl ApiError {
    /// An error with its status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422 `bad_body`: a well-formed body with values that cannot be used.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_body", message)
    }

    /// 500 `internal`, logged.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(cause = %err, "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )
    }
}

impl From<FleetError> for ApiError {
    /// An unknown (or invisible) alert is 404 `unknown_alert`, a transition the alert does
    /// not allow 409 `conflict`, a stage move refused its stable code (409 `alert_closed`,
    /// `stage_skipped`, `stage_backwards`; 422 `stage_not_on_path`, `advisor_required`,
    /// `invalid_eta`, `invalid_note`; 403 `cancel_not_allowed`), anything else 500.
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::UnknownAlert(id) => Self::new(
                StatusCode::NOT_FOUND,
                "unknown_alert",
                format!("no alert {id}"),
            ),
            FleetError::Alert(e) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            FleetError::Stage(e) => {
                use crate::fleet::alerts::StageError as S;
                let status = match &e {
                    S::Closed { .. } | S::Skipped { .. } | S::Backwards { .. } => {
                        StatusCode::CONFLICT
                    }
                    S::CancelNotAllowed => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Self::new(status, e.code(), e.to_string())
            }
            FleetError::Store(e) => e.into(),
            other => Self::internal(&other),
        }
    }
}

impl From<StoreError> for ApiError {
    /// A store that does not answer now is 503 `store_unavailable` (try again); any other
    /// store failure is 500 `internal`.
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store does not answer now; try again shortly".to_owned(),
            )
        } else {
            Self::internal(&e)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
