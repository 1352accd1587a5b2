//! The cloud's HTTP API (axum): vehicle reads, health, Prometheus metrics, and the operator's
//! downlink route. Every error is JSON: `{"error":{"code":"...","message":"..."}}`.
//!
//! Owns routes, status codes and error bodies. Does not own the data (the store), the counters
//! ([`crate::metrics`]) or sending ([`crate::downlink`]); JSON shapes live in [`views`].
//!
//! Routes:
//! - `GET /healthz`: liveness, with whether the ingest is subscribed;
//! - `GET /metrics`: Prometheus text;
//! - `GET /api/v1/vehicles/{vin}`: what the cloud knows of a vehicle (404 unknown, 400 bad VIN);
//! - `POST /api/v1/vehicles/{vin}/downlink`: OPERATOR API — pushes a campaign or a service
//!   record to the car. It has no authentication yet: the API listens on loopback by default
//!   and must not be exposed until operator and partner tokens arrive (next issue).

pub mod views;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rapport_shared::{Vin, WireError};
use serde_json::json;

use crate::cloud::Shared;
use views::{DownlinkRequest, VehicleView};

/// The API's routes over a running cloud.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/vehicles/{vin}", get(vehicle))
        .route("/api/v1/vehicles/{vin}/downlink", post(downlink))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// An error response: status and `{"error":{"code","message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(cause = %err, "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

fn parse_vin(text: &str) -> Result<Vin, ApiError> {
    text.parse::<Vin>().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_vin",
            format!(
                "{:?} is not a VIN: {e}",
                text.chars().take(64).collect::<String>()
            ),
        )
    })
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let subscribed = s.metrics.subscribed.load(Ordering::Relaxed);
    axum::Json(json!({
        "status": "ok",
        "version": crate::VERSION,
        "ingest": {"subscribed": subscribed},
    }))
    .into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn vehicle(
    State(s): State<Arc<Shared>>,
    Path(vin): Path<String>,
) -> Result<Response, ApiError> {
    let vin = parse_vin(&vin)?;
    let store = s.store.clone();
    let state = tokio::task::spawn_blocking(move || store.vehicle(&vin))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    match state {
        Some(state) => Ok(axum::Json(VehicleView::new(&vin, &state)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_vehicle",
            format!("no record of {vin} has reached the cloud"),
        )),
    }
}

/// OPERATOR API: pushes one downlink message to a vehicle. No authentication yet (see the
/// module doc).
async fn downlink(
    State(s): State<Arc<Shared>>,
    Path(vin): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let vin = parse_vin(&vin)?;
    let request: DownlinkRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let body = request
        .into_body()
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m))?;
    match s.send_downlink(vin, body).await {
        Ok(id) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"id": id, "topic": rapport_shared::topic::downlink(&vin)})),
        )
            .into_response()),
        Err(crate::Error::Wire(e @ WireError::TooLarge { .. })) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
