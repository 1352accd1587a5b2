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
//! - `POST /api/v1/vehicles/{vin}/downlink`: operator only — pushes a campaign or a service
//!   record to the car;
//! - the fleet's routes ([`fleet`]): vehicles by layer cell, timelines, registry, the layer
//!   matrix, alerts, partners, campaigns, dead letters.
//!
//! Every `/api/v1` route needs a bearer token ([`auth`]); `/healthz` and `/metrics` do not
//! (keep the API on loopback or behind a proxy that guards `/metrics`).

pub mod auth;
pub mod dashboard;
pub mod fleet;
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
use views::DownlinkRequest;

/// The API's routes over a running cloud.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/vehicles/{vin}", get(vehicle))
        .route("/api/v1/vehicles/{vin}/downlink", post(downlink))
        .merge(fleet::routes())
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_rejects,
        ))
        .with_state(shared)
}

/// Counts every 4xx answer (bad input, refused tokens) in `rapport_api_rejects_total`.
async fn count_rejects(
    State(s): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status().is_client_error() {
        s.metrics.api_rejects.fetch_add(1, Ordering::Relaxed);
    }
    response
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
        {
            let mut text = s.metrics.render();
            render_fleet(&s, &mut text);
            text
        },
    )
        .into_response()
}

fn render_fleet(s: &Shared, out: &mut String) {
    use std::fmt::Write as _;
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    };
    if let Ok(f) = s.fleet.fleet.lock() {
        let st = f.stats();
        counter(
            "rapport_fleet_layer_changes_total",
            "Layer changes recorded.",
            st.layer_changes,
        );
        counter(
            "rapport_fleet_campaigns_total",
            "Campaigns sent down by strategies and operators.",
            st.campaigns,
        );
        counter(
            "rapport_fleet_alerts_opened_total",
            "Partner alerts opened.",
            st.alerts_opened,
        );
        counter(
            "rapport_fleet_alerts_escalated_total",
            "Alerts escalated after their SLA.",
            st.alerts_escalated,
        );
        counter(
            "rapport_fleet_suppressed_total",
            "Strategy actions held back (consent, cadence, caps, no partner).",
            st.suppressed,
        );
    }
    let w = &s.webhooks;
    counter(
        "rapport_webhook_attempts_total",
        "Webhook delivery attempts.",
        w.attempts(),
    );
    counter(
        "rapport_webhook_delivered_total",
        "Webhooks delivered (2xx).",
        w.delivered(),
    );
    counter(
        "rapport_webhook_retried_total",
        "Webhook attempts failed with a retry scheduled.",
        w.retried(),
    );
    counter(
        "rapport_webhook_dead_total",
        "Webhooks moved to the dead letters.",
        w.dead(),
    );
}

async fn vehicle(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Path(vin): Path<String>,
) -> Result<Response, ApiError> {
    let vin = parse_vin(&vin)?;
    fleet::vehicle_detail(s, headers, vin).await
}

/// Operator only: pushes one downlink message to a vehicle.
async fn downlink(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Path(vin): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    fleet::caller(&s, &headers)?.operator()?;
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
