//! The cloud's HTTP API (axum), one file per resource. Every error is JSON:
//! `{"error":{"code":"...","message":"..."}}` ([`error`]).
//!
//! - [`health`]: `GET /healthz`, `GET /metrics` (no token);
//! - [`vehicles`]: the list by layer cell, one vehicle, the operator's downlink;
//! - [`timeline`]: a vehicle's timeline (paged, by kind) and its readings for a chart;
//! - [`registry`]: a vehicle's registry entry, a registry file imported (operator);
//! - [`layers`]: the layer matrix (operator);
//! - [`alerts`]: list, one, acknowledge, resolve;
//! - [`partners`]: list, add or replace, remove (operator);
//! - [`campaigns`]: a campaign to a set of cells (operator);
//! - [`dead_letters`]: list, re-drive (operator);
//! - [`dashboard`]: the operator's page (static files);
//! - [`rights`]: a vehicle's export and erasure (operator).
//! - [`audit`]: the audit log (operator) and the middleware writing it;
//! - [`auth`]: who calls;
//! - [`operator`]: the operator's token rotation (operator);
//! - [`ratelimit`]: every caller's token bucket (middleware).
//! - [`openapi`]: the OpenAPI 3.1 document of all of the above but the page, generated from
//!   the routes (`GET /api/v1/openapi.json`, no token).
//!
//! Every `/api/v1` route needs a bearer token ([`auth`]): the operator sees everything, a
//! partner what concerns it. What a route takes from a request is typed and checked before it
//! runs ([`extract`]); what it answers is a typed view written by [`views::json`]. The routes
//! reach the running cloud through [`state::Shared`], which [`crate::cloud`] builds.
//!
//! Owns routes, status codes, request and answer shapes. Does not own the data (the store,
//! the fleet), the decisions ([`crate::fleet::core::Fleet`]), the counters
//! ([`crate::metrics`]) or sending ([`crate::downlink`]).

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod bucket;
pub mod campaigns;
pub mod dashboard;
pub mod dead_letters;
pub mod error;
pub mod extract;
pub mod health;
pub mod layers;
pub mod openapi;
pub mod operator;
pub mod owner;
pub mod partners;
pub mod ratelimit;
pub mod registry;
pub mod rights;
pub mod state;
pub mod timeline;
pub mod vehicles;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use self::error::ApiError;
use self::state::Shared;

/// The API's routes over a running cloud: the documented ones ([`documented`]) and the
/// dashboard's static files.
pub fn router(shared: Arc<Shared>) -> Router {
    let (api, _) = documented().split_for_parts();
    Router::new()
        .merge(api)
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost: the audit log sees every request that passed the rate limit, with its
        // route template and its answer's status.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_rejects,
        ))
        .with_state(shared)
}

/// Every route of the API but the dashboard's files, each with its OpenAPI operation: a new
/// resource's `routes()` is merged here (and is then in [`openapi::document`]).
pub fn documented() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(vehicles::routes())
        .merge(timeline::routes())
        .merge(registry::routes())
        .merge(layers::routes())
        .merge(alerts::routes())
        .merge(partners::routes())
        .merge(campaigns::routes())
        .merge(dead_letters::routes())
        .merge(openapi::routes())
        .merge(owner::routes())
        .merge(rights::routes())
        .merge(audit::routes())
        .merge(operator::routes())
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
