//! The HMI server: axum routes over a [`Backend`], JSON errors for every refusal, the
//! server-sent-event stream, and the counters of rejected requests.
//!
//! Owns: HTTP — parsing and checking request bodies, mapping [`BackendError`]s to statuses,
//! shutting streams down with the server. Does not own: what the routes answer (the backend)
//! nor the shapes (`views`). The route table and error codes are in the module doc of
//! [`crate::hmi`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use rapport_shared::{Odometer, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::views::{DriverAction, HmiEvent, ServiceRequest, SettingsView};
#[cfg(feature = "openapi")]
use super::views::{PromptView, ServiceCaseView, ServiceView, VehicleView};
use super::{Backend, BackendError, HmiError};

/// Largest request body accepted: the biggest legitimate one (settings with every kind muted)
/// is a few hundred bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The longest snooze: one week.
pub const MAX_SNOOZE_MINUTES: u32 = 7 * 24 * 60;

/// The largest odometer a recorded service may carry; beyond any vehicle's life.
pub const MAX_ODOMETER_KM: f64 = 10_000_000.0;

/// How often the event stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Rejected requests by status class, for metrics and heartbeats.
#[derive(Debug, Default)]
pub struct Rejections {
    client: AtomicU64,
    server: AtomicU64,
}

impl Rejections {
    /// Requests answered 4xx: the client sent something wrong.
    pub fn client_errors(&self) -> u64 {
        self.client.load(Ordering::Relaxed)
    }

    /// Requests answered 5xx: the backend could not answer.
    pub fn server_errors(&self) -> u64 {
        self.server.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn Backend>,
}

/// Set by [`serve_router`]: flips to `true` when the server shuts down, so event streams end
/// and graceful shutdown does not wait on them forever.
#[derive(Clone)]
struct Closing(watch::Receiver<bool>);

/// A refusal: the status and the JSON error body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// Carried on an error response so the counting layer can log the reason.
#[derive(Clone)]
struct Reason {
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

    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

/// The body of every error answer: `{"error":{"code","message"}}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(super) struct ErrorBody<'a> {
    /// What went wrong.
    error: ErrorDetail<'a>,
}

/// A refusal: its stable code and a message for people.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ErrorDetail<'a> {
    /// Stable, snake_case (`malformed_json`, `not_found`, ...): what a client matches on.
    code: &'a str,
    /// For people; may change between versions.
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        resp.extensions_mut().insert(Reason {
            code: self.code,
            message: self.message,
        });
        resp
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "not_found", m),
            BackendError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            BackendError::Invalid(m) => Self::invalid("invalid", m),
            BackendError::Unavailable(m) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            BackendError::StorageFull(m) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_full", m)
            }
        }
    }
}

/// A JSON request body, with every refusal as an [`ApiError`] (axum's own `Json` extractor
/// answers in plain text).
struct JsonBody<T>(T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_json_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request body is over the limit of {BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!("request body could not be read: {}", rej.body_text()),
                )
            }
        })?;
        decode_json(&bytes).map(JsonBody)
    }
}

/// A request body's JSON as every write route reads it: wrong JSON is 400 `malformed_json`,
/// JSON of the wrong shape 422 `invalid_body`.
fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::invalid("invalid_body", format!("request body: {e}")),
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("request body is not valid JSON: {e}"),
            ),
        }
    })
}

/// The write routes' bodies checked without a server, each as its handler checks the bytes
/// the body extractor read: what the HMI fuzz target drives. Only with the `fuzzing` feature,
/// so no shipped build carries it.
#[cfg(feature = "fuzzing")]
pub mod bodies {
    use super::{
        ActionBody, AnswerBody, ApiError, DriverAction, ServiceBody, ServiceRequest, SettingsView,
        decode_json, parse_action, parse_answer, parse_service,
    };
    use rapport_shared::DriverAnswer;

    /// A refusal: the HTTP status and the error code the route would answer, and its message.
    pub type Refusal = (u16, &'static str, String);

    fn refusal(e: ApiError) -> Refusal {
        (e.status.as_u16(), e.code, e.message)
    }

    /// `POST /v1/prompts/{id}/action`'s body.
    ///
    /// # Errors
    /// The route's refusal.
    pub fn action(bytes: &[u8]) -> Result<DriverAction, Refusal> {
        decode_json::<ActionBody>(bytes)
            .and_then(parse_action)
            .map_err(refusal)
    }

    /// `POST /v1/service`'s body.
    ///
    /// # Errors
    /// The route's refusal.
    pub fn service(bytes: &[u8]) -> Result<ServiceRequest, Refusal> {
        decode_json::<ServiceBody>(bytes)
            .and_then(parse_service)
            .map_err(refusal)
    }

    /// `POST /v1/service/{alert_id}/answer`'s body.
    ///
    /// # Errors
    /// The route's refusal.
    pub fn service_answer(bytes: &[u8]) -> Result<DriverAnswer, Refusal> {
        decode_json::<AnswerBody>(bytes)
            .and_then(parse_answer)
            .map_err(refusal)
    }

    /// `PUT /v1/settings`'s body: the settings accepted, as the backend gets them.
    ///
    /// # Errors
    /// The route's refusal.
    pub fn settings(bytes: &[u8]) -> Result<SettingsView, Refusal> {
        let view = decode_json::<SettingsView>(bytes).map_err(refusal)?;
        match view.to_settings() {
            Ok(_) => Ok(view),
            Err(m) => Err(refusal(ApiError::invalid("invalid_settings", m))),
        }
    }
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |what: String| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{what}; send Content-Type: application/json"),
        )
    };
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(refuse("no Content-Type header".to_owned()));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(refuse(format!("Content-Type is {text:?}")))
    }
}

/// The routes over `backend`, with fresh [`Rejections`] counters nobody reads; see
/// [`router_with`] to keep them.
pub fn router(backend: Arc<dyn Backend>) -> Router {
    router_with(backend, Arc::default())
}

/// The routes over `backend`, counting rejected requests in `rejections`.
pub fn router_with(backend: Arc<dyn Backend>, rejections: Arc<Rejections>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/vehicle", get(vehicle))
        .route("/v1/prompts", get(prompts))
        .route("/v1/prompts/stream", get(prompt_stream))
        .route("/v1/prompts/{id}/action", post(act))
        .route("/v1/service", get(service_cases).post(record_service))
        .route("/v1/service/{alert_id}/answer", post(answer_service))
        .route("/v1/settings", get(settings).put(put_settings))
        .route("/v1/openapi.json", get(openapi_document))
        // After the routes: it applies to the routes present when called.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_route)
        .with_state(AppState { backend })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(rejections, count_rejected))
}

/// Serves [`router`]`(backend)` on `listener` until `shutdown` completes.
///
/// # Errors
/// [`HmiError::Serve`] if accepting connections fails for good.
pub async fn serve(
    listener: tokio::net::TcpListener,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::Error> {
    serve_router(listener, router(backend), shutdown).await
}

/// Serves `router` (from [`router`] or [`router_with`]) on `listener` until `shutdown`
/// completes; then open event streams end and in-flight requests finish before it returns.
///
/// # Errors
/// [`HmiError::Serve`] if accepting connections fails for good.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::Error> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let (closing_tx, closing_rx) = watch::channel(false);
    let app = router.layer(Extension(Closing(closing_rx)));
    tracing::info!(%addr, "HMI API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // No receivers left is fine: no stream open.
            let _ = closing_tx.send(true);
        })
        .await
        .map_err(|source| HmiError::Serve { addr, source }.into())
}

async fn count_rejected(
    State(rejections): State<Arc<Rejections>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    let counter = if status.is_client_error() {
        &rejections.client
    } else if status.is_server_error() {
        &rejections.server
    } else {
        return resp;
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let (code, message) = resp
        .extensions()
        .get::<Reason>()
        .map_or(("", ""), |r| (r.code, r.message.as_str()));
    tracing::warn!(
        %method,
        route = %path,
        status = status.as_u16(),
        code,
        reason = message,
        "HMI request rejected"
    );
    resp
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_route",
        format!("no route {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method} (the Allow header lists what it takes)",
            uri.path()
        ),
    )
}

/// `{"status": "ok", "version": ..., "store": "ok", "store_failed_writes": 0}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Health {
    /// Always `ok`: the agent answers.
    status: &'static str,
    /// The agent's version.
    version: &'static str,
    /// The store: `ok`, `full` (its file system is full: changes are kept in memory and
    /// stored when space returns) or `failed` (another write error).
    store: &'static str,
    /// Writes to the store that failed (or were held back while it failed) since start.
    store_failed_writes: u64,
}

/// Health: the agent answers.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "health", get, path = "/healthz", tag = "hmi",
    responses((status = 200, description = "Up.", body = Health))))]
async fn healthz(State(app): State<AppState>) -> Json<Health> {
    let (store, store_failed_writes) = app.backend.store_health();
    Json(Health {
        status: "ok",
        version: crate::VERSION,
        store,
        store_failed_writes,
    })
}

/// The car's state as the screen shows it.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "getVehicle", get, path = "/v1/vehicle", tag = "hmi",
    responses((status = 200, description = "The car.", body = VehicleView))))]
async fn vehicle(State(app): State<AppState>) -> impl IntoResponse {
    Json(app.backend.vehicle())
}

/// What may be on screen now.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "listPrompts", get, path = "/v1/prompts", tag = "hmi",
    responses((status = 200, description = "The prompts.", body = Vec<PromptView>))))]
async fn prompts(State(app): State<AppState>) -> impl IntoResponse {
    Json(app.backend.prompts())
}

/// The driver's settings.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "getSettings", get, path = "/v1/settings", tag = "hmi",
    responses((status = 200, description = "The settings.", body = SettingsView))))]
async fn settings(State(app): State<AppState>) -> impl IntoResponse {
    Json(app.backend.settings())
}

/// Replaces the driver's settings (checked: `HH:MM` quiet hours with start ≠ end, known
/// prompt kinds in `muted`).
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "putSettings", put, path = "/v1/settings", tag = "hmi",
    request_body(content = SettingsView, content_type = "application/json"),
    responses(
        (status = 200, description = "The settings as stored.", body = SettingsView),
        (status = 400, description = "`malformed_json`, `unreadable_body`.", body = ErrorBody), (status = 413, description = "`body_too_large`: over 16 KiB.", body = ErrorBody), (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_settings`, `invalid`.", body = ErrorBody),
        (status = 503, description = "`storage_full`: the agent's storage is full — the change is applied in memory but not stored until space returns; `unavailable`: the agent's store cannot answer now.", body = ErrorBody),
    )))]
async fn put_settings(
    State(app): State<AppState>,
    JsonBody(view): JsonBody<SettingsView>,
) -> Result<impl IntoResponse, ApiError> {
    view.to_settings()
        .map_err(|m| ApiError::invalid("invalid_settings", m))?;
    Ok(Json(app.backend.put_settings(view)?))
}

/// The action body before checking: `action` as a string and `minutes` as any JSON value, so
/// each mistake gets its own code rather than serde's "unknown variant".
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// `ack`, `snooze`, `dismiss` or `book`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(ack|snooze|dismiss|book)$"))]
    action: String,
    /// Minutes to snooze, 1 to 10080: `snooze` only (and required there).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u32>, minimum = 1, maximum = 10080)
    )]
    minutes: Option<serde_json::Value>,
}

fn parse_action(body: ActionBody) -> Result<DriverAction, ApiError> {
    let minutes = body.minutes.filter(|m| !m.is_null());
    let plain = |a: DriverAction| match &minutes {
        None => Ok(a),
        Some(_) => Err(ApiError::invalid(
            "minutes_not_allowed",
            format!("minutes: only snooze takes minutes, not {}", a.name()),
        )),
    };
    match body.action.as_str() {
        "ack" => plain(DriverAction::Ack),
        "dismiss" => plain(DriverAction::Dismiss),
        "book" => plain(DriverAction::Book),
        "snooze" => {
            let Some(m) = minutes else {
                return Err(ApiError::invalid(
                    "minutes_required",
                    "minutes: snooze needs minutes (1 to 10080)",
                ));
            };
            m.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_SNOOZE_MINUTES).contains(n))
                .map(|minutes| DriverAction::Snooze { minutes })
                .ok_or_else(|| {
                    ApiError::invalid(
                        "minutes_out_of_range",
                        format!(
                            "minutes: must be a whole number from 1 to {MAX_SNOOZE_MINUTES}, got {m}"
                        ),
                    )
                })
        }
        other => Err(ApiError::invalid(
            "unknown_action",
            format!("action: {other:?} is none of ack, snooze, dismiss, book"),
        )),
    }
}

/// The driver acts on a prompt.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "actOnPrompt", post, path = "/v1/prompts/{id}/action", tag = "hmi",
    params(("id" = String, Path, description = "The prompt's id.")),
    request_body(content = ActionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The prompt after the action.", body = PromptView),
        (status = 400, description = "`malformed_json`, `unreadable_body`, `invalid_path`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such prompt.", body = ErrorBody),
        (status = 409, description = "`conflict`: the prompt is already closed.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 16 KiB.", body = ErrorBody), (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `unknown_action`, `minutes_required`, `minutes_out_of_range`, `minutes_not_allowed`, `invalid`.", body = ErrorBody),
        (status = 503, description = "`storage_full`: the agent's storage is full — the change is applied in memory but not stored until space returns; `unavailable`: the agent's store cannot answer now.", body = ErrorBody),
    )))]
async fn act(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<impl IntoResponse, ApiError> {
    let Path(id) = id.map_err(|rej| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("prompt id: {}", rej.body_text()),
        )
    })?;
    let action = parse_action(body)?;
    Ok(Json(app.backend.act(&id, action)?))
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    /// Schedule items covered (`oil`, ...): at least one, none blank.
    items: Vec<String>,
    /// The odometer at the service, km, 0 to 10,000,000 (absent: the current one).
    #[serde(default)]
    odometer_km: Option<f64>,
    /// When, unix ms (absent: now).
    #[serde(default)]
    at: Option<u64>,
}

fn parse_service(body: ServiceBody) -> Result<ServiceRequest, ApiError> {
    let refuse = |m: String| ApiError::invalid("invalid_service", m);
    if body.items.is_empty() {
        return Err(refuse("items: at least one item is needed".to_owned()));
    }
    let mut items: Vec<String> = Vec::with_capacity(body.items.len());
    for (i, item) in body.items.into_iter().enumerate() {
        if item.trim().is_empty() {
            return Err(refuse(format!("items[{i}]: blank item id")));
        }
        if !items.contains(&item) {
            items.push(item);
        }
    }
    let odometer = match body.odometer_km {
        None => None,
        Some(km) if km.is_finite() && (0.0..=MAX_ODOMETER_KM).contains(&km) => {
            // In range, so the cast is exact to the metre.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let m = (km * 1000.0).round() as u64;
            Some(Odometer::from_meters(m))
        }
        Some(km) => {
            return Err(refuse(format!(
                "odometer_km: {km} is not within 0 to {MAX_ODOMETER_KM}"
            )));
        }
    };
    Ok(ServiceRequest {
        items,
        odometer,
        at: body.at.map(Timestamp::from_millis),
    })
}

/// The driver records a service.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "recordService", post, path = "/v1/service", tag = "hmi",
    request_body(content = ServiceBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The service as recorded.", body = ServiceView),
        (status = 400, description = "`malformed_json`, `unreadable_body`.", body = ErrorBody), (status = 413, description = "`body_too_large`: over 16 KiB.", body = ErrorBody), (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_service`, `invalid` (an item not on the schedule).", body = ErrorBody),
        (status = 503, description = "`storage_full`: the agent's storage is full — the change is applied in memory but not stored until space returns; `unavailable`: the agent's store cannot answer now.", body = ErrorBody),
    )))]
async fn record_service(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<ServiceBody>,
) -> Result<impl IntoResponse, ApiError> {
    let req = parse_service(body)?;
    Ok((StatusCode::CREATED, Json(app.backend.record_service(req)?)))
}

/// The service cases the agent holds, with their stages.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "listServiceCases", get, path = "/v1/service", tag = "hmi",
    responses((status = 200, description = "The service cases: open ones, and closed ones for a day after they closed.", body = Vec<ServiceCaseView>))))]
async fn service_cases(State(app): State<AppState>) -> impl IntoResponse {
    Json(app.backend.service_cases())
}

/// The answer body before checking: `answer` as a string, so an unknown one gets its own code.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `left_car` ("I'm no longer with the car") or `cancel`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(left_car|cancel)$"))]
    answer: String,
}

fn parse_answer(body: AnswerBody) -> Result<rapport_shared::DriverAnswer, ApiError> {
    use rapport_shared::DriverAnswer;
    // The wire enum's own names (`left_car`, `cancel`): one table, not a second one here.
    DriverAnswer::ALL
        .iter()
        .copied()
        .find(|a| a.name() == body.answer)
        .ok_or_else(|| {
            ApiError::invalid(
                "unknown_answer",
                format!("answer: {:?} is neither left_car nor cancel", body.answer),
            )
        })
}

/// The driver answers a service case: the answer goes to the cloud (once); a cancel closes
/// the case here at once.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "answerServiceCase", post, path = "/v1/service/{alert_id}/answer", tag = "hmi",
    params(("alert_id" = u64, Path, description = "The case's alert id.")),
    request_body(content = AnswerBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the case after the answer; the answer is on its way to the cloud (`left_car` again on the same case sends nothing more).", body = ServiceCaseView),
        (status = 400, description = "`malformed_json`, `unreadable_body`, `invalid_path` (the alert id is not a whole number).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such case.", body = ErrorBody),
        (status = 409, description = "`conflict`: the case is resolved or cancelled.", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 16 KiB.", body = ErrorBody), (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `unknown_answer`.", body = ErrorBody),
        (status = 503, description = "`storage_full`: the agent's storage is full — the change is applied in memory but not stored until space returns; `unavailable`: the agent's store cannot answer now.", body = ErrorBody),
    )))]
async fn answer_service(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<AnswerBody>,
) -> Result<impl IntoResponse, ApiError> {
    let bad_path = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", m);
    let Path(id) = id.map_err(|rej| bad_path(format!("alert id: {}", rej.body_text())))?;
    let alert_id: u64 = id
        .parse()
        .map_err(|_| bad_path(format!("alert id: {id:?} is not a whole number")))?;
    let answer = parse_answer(body)?;
    let case = app.backend.answer_service(alert_id, answer)?;
    Ok((StatusCode::ACCEPTED, Json(case)))
}

fn sse_event(ev: &HmiEvent) -> Event {
    match ev.sse_data() {
        Ok(data) => Event::default().event(ev.sse_name()).data(data),
        Err(e) => {
            // Not expected for these plain structs; the client refetches everything.
            tracing::warn!(cause = %e, "HMI event not serialisable; sending resync");
            Event::default().event("resync").data("{}")
        }
    }
}

/// Server-sent events: the prompts on screen, then live changes (the module doc of
/// [`crate::hmi`]).
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "streamPrompts", get, path = "/v1/prompts/stream", tag = "hmi",
    responses((status = 200, description = "`prompt`, `closed`, `hidden` and `resync` events; never ends while the agent runs.",
        content_type = "text/event-stream", body = String))))]
async fn prompt_stream(
    State(app): State<AppState>,
    closing: Option<Extension<Closing>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before the snapshot: a change in between comes twice, never zero times.
    let rx = app.backend.subscribe();
    let snapshot: Vec<Result<Event, Infallible>> = app
        .backend
        .prompts()
        .into_iter()
        .map(|p| Ok(sse_event(&HmiEvent::Prompt(p))))
        .collect();
    let closing = closing.map(|Extension(Closing(rx))| rx);
    let live = stream::unfold((rx, closing), |(mut rx, mut closing)| async move {
        let event = tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => sse_event(&ev),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "HMI event stream fell behind; sending resync");
                    sse_event(&HmiEvent::Resync)
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            () = until_closing(&mut closing) => return None,
        };
        Some((Ok(event), (rx, closing)))
    });
    Sse::new(stream::iter(snapshot).chain(live))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

async fn until_closing(closing: &mut Option<watch::Receiver<bool>>) {
    match closing {
        // An error means the server is gone: closing too.
        Some(rx) => {
            let _ = rx.wait_for(|closed| *closed).await;
        }
        None => std::future::pending().await,
    }
}

/// Where the HMI's OpenAPI document is served (the route in [`router_with`]).
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The HMI's OpenAPI document as generated and committed (see [`super::openapi`]).
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

/// This document.
#[cfg_attr(feature = "openapi", utoipa::path(operation_id = "openapi", get, path = "/v1/openapi.json", tag = "hmi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.",
        content_type = "application/json", body = Object))))]
async fn openapi_document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
        .into_response()
}

/// The routes' operations, for [`super::openapi::generate`]: every route of [`router_with`]
/// is listed here (the test `every_route_is_documented_and_every_operation_served` in
/// agent/tests/hmi_api.rs walks both).
#[cfg(feature = "openapi")]
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    healthz,
    vehicle,
    prompts,
    prompt_stream,
    act,
    record_service,
    service_cases,
    answer_service,
    settings,
    put_settings,
    openapi_document,
))]
pub(super) struct Operations;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn action(json: &str) -> Result<DriverAction, &'static str> {
        parse_action(serde_json::from_str(json).unwrap()).map_err(|e| e.code)
    }

    #[test]
    fn actions_parse_with_minutes_for_snooze_only() {
        assert_eq!(action(r#"{"action":"ack"}"#), Ok(DriverAction::Ack));
        assert_eq!(
            action(r#"{"action":"dismiss","minutes":null}"#),
            Ok(DriverAction::Dismiss)
        );
        assert_eq!(
            action(r#"{"action":"snooze","minutes":10080}"#),
            Ok(DriverAction::Snooze { minutes: 10080 })
        );
        assert_eq!(action(r#"{"action":"snooze"}"#), Err("minutes_required"));
        for bad in ["0", "10081", "-5", "1.5", "\"30\"", "4294967297"] {
            assert_eq!(
                action(&format!(r#"{{"action":"snooze","minutes":{bad}}}"#)),
                Err("minutes_out_of_range"),
                "{bad}"
            );
        }
        assert_eq!(
            action(r#"{"action":"book","minutes":5}"#),
            Err("minutes_not_allowed")
        );
        assert_eq!(action(r#"{"action":"ACK"}"#), Err("unknown_action"));
    }

    fn service(json: &str) -> Result<ServiceRequest, String> {
        parse_service(serde_json::from_str(json).unwrap()).map_err(|e| e.message)
    }

    #[test]
    fn service_bodies_are_checked_and_converted() {
        let s =
            service(r#"{"items":["oil","oil","air_filter"],"odometer_km":12345.6789}"#).unwrap();
        assert_eq!(s.items, ["oil", "air_filter"]);
        assert_eq!(s.odometer, Some(Odometer::from_meters(12_345_679)));
        assert_eq!(s.at, None);
        assert!(
            service(r#"{"items":[]}"#)
                .unwrap_err()
                .starts_with("items:")
        );
        assert!(
            service(r#"{"items":["oil"," "]}"#)
                .unwrap_err()
                .starts_with("items[1]")
        );
        assert!(
            service(r#"{"items":["oil"],"odometer_km":-1}"#)
                .unwrap_err()
                .starts_with("odometer_km")
        );
        assert!(service(r#"{"items":["oil"],"odometer_km":1e300}"#).is_err());
    }

    #[test]
    fn answers_parse_by_name() {
        use rapport_shared::DriverAnswer;
        let answer =
            |json: &str| parse_answer(serde_json::from_str(json).unwrap()).map_err(|e| e.code);
        assert_eq!(
            answer(r#"{"answer":"left_car"}"#),
            Ok(DriverAnswer::LeftCar)
        );
        assert_eq!(answer(r#"{"answer":"cancel"}"#), Ok(DriverAnswer::Cancel));
        assert_eq!(answer(r#"{"answer":"Cancel"}"#), Err("unknown_answer"));
        assert!(serde_json::from_str::<AnswerBody>(r#"{"answer":"cancel","x":1}"#).is_err());
    }

    #[test]
    fn content_type_must_be_json_with_any_parameters() {
        let mut h = HeaderMap::new();
        assert!(check_json_content_type(&h).is_err());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(check_json_content_type(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(check_json_content_type(&h).is_ok());
    }
}
