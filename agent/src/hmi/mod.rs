//! The HMI API: the head unit's screen (and a terminal) talk to the agent over plain HTTP on
//! loopback.
//!
//! Owns: the routes, the JSON views, the error bodies, the server-sent-event stream, the
//! counting of rejected requests, and the small client the `rapport-agent prompts` command
//! uses. Does not own: what is on screen, the safety gate, or storage — all of that sits behind
//! the [`Backend`] trait, implemented by the agent's core.
//!
//! # Routes
//!
//! | Method | Path | Body | Answer |
//! |---|---|---|---|
//! | GET | `/healthz` | — | `{"status":"ok","version":…}` |
//! | GET | `/v1/vehicle` | — | [`VehicleView`] |
//! | GET | `/v1/prompts` | — | a list of [`PromptView`]: what may be on screen now |
//! | GET | `/v1/prompts/stream` | — | server-sent events, below |
//! | POST | `/v1/prompts/{id}/action` | `{"action":"ack"\|"snooze"\|"dismiss"\|"book","minutes":N}` | [`PromptView`] after the action |
//! | POST | `/v1/service` | `{"items":["oil"],"odometer_km":12345.6,"at":1700000000000}` | 201, [`ServiceView`] |
//! | GET | `/v1/service` | — | a list of [`ServiceCaseView`]: the service cases and their stages |
//! | POST | `/v1/service/{alert_id}/answer` | `{"answer":"left_car"\|"cancel"}` | 202, [`ServiceCaseView`] after the answer |
//! | GET | `/v1/settings` | — | [`SettingsView`] |
//! | PUT | `/v1/settings` | [`SettingsView`] (every field but `quiet_hours`, which may be `null` or absent) | [`SettingsView`] as stored |
//! | GET | `/v1/openapi.json` | — | this table as an OpenAPI 3.1 document ([`openapi`]) |
//!
//! Request bodies must be `Content-Type: application/json`, at most [`BODY_LIMIT`] bytes, and
//! carry no unknown fields. `minutes` is required for `snooze` only, a whole number in
//! `1..=`[`MAX_SNOOZE_MINUTES`], and refused with any other action. `at` is unix milliseconds;
//! `odometer_km` a finite number in `0..=`[`MAX_ODOMETER_KM`]; absent, the backend uses the
//! current clock and odometer.
//!
//! A service answer goes to the cloud once: `left_car` again on the same open case answers
//! 202 and sends nothing more; a `cancel` closes the case here at once, so any answer after
//! it is 409. An `alert_id` that is not a whole number is 400 `invalid_path`; one the agent
//! does not hold, 404 `not_found`.
//!
//! Settings are checked here, not left to the backend: quiet hours are `"HH:MM"` (24-hour,
//! two digits each) with start ≠ end (a span over midnight is fine), `muted` holds prompt-kind
//! names ([`rapport_shared::v1::uplink::PromptKind`]); duplicates are dropped. The backend
//! receives only settings that convert with [`SettingsView::to_settings`].
//!
//! # Server-sent events (`/v1/prompts/stream`)
//!
//! On connect the stream first sends one `prompt` event per prompt visible at that moment
//! (taken after subscribing, so nothing falls between the snapshot and the live events; a
//! prompt may come twice — handle events by id). Then, live:
//!
//! - `event: prompt`, `data:` a [`PromptView`]: a prompt became visible, or changed.
//! - `event: closed`, `data: {"id":…,"state":…}`: it left the screen because the driver acted
//!   or its condition went away; `state` says which (`acknowledged`, `snoozed`, `dismissed`,
//!   `booked`, `resolved`). A snoozed prompt comes back later as a new `prompt` event.
//! - `event: hidden`, `data: {"id":…}`: the safety gate took it off the screen (the car moved,
//!   quiet hours began); it comes back as a `prompt` event.
//! - `event: resync`, `data: {}`: events were lost (this client fell behind, or the backend
//!   changed too much at once): GET `/v1/prompts` and replace what is shown.
//!
//! A comment line (`: keep-alive`) goes out every [`KEEP_ALIVE`] so a dead peer is noticed.
//! The stream ends when the server shuts down. There are no event ids: a client that
//! reconnects gets the snapshot again, which is all it needs.
//!
//! # Errors
//!
//! Every failure is JSON, `{"error":{"code":"<stable_snake_case>","message":"…"}}`:
//!
//! | Status | `code` | When |
//! |---|---|---|
//! | 400 | `malformed_json` | the body is not JSON (the message gives line and column) |
//! | 400 | `unreadable_body` | the body could not be read |
//! | 400 | `invalid_path` | a path segment is not valid percent-encoded UTF-8 |
//! | 404 | `unknown_route` | no such path |
//! | 404 | `not_found` | the backend does not know the prompt (or other item) |
//! | 405 | `method_not_allowed` | the path exists, the method does not (`Allow` lists them) |
//! | 409 | `conflict` | the prompt is already closed; the service case is resolved or cancelled |
//! | 413 | `body_too_large` | the body is over [`BODY_LIMIT`] |
//! | 415 | `unsupported_media_type` | the content type is missing or not `application/json` |
//! | 422 | `invalid_body` | JSON of the wrong shape: a missing, unknown or mistyped field |
//! | 422 | `unknown_action` | `action` is none of `ack`, `snooze`, `dismiss`, `book` |
//! | 422 | `minutes_required` | `snooze` without `minutes` |
//! | 422 | `minutes_out_of_range` | `minutes` not a whole number in `1..=10080` |
//! | 422 | `minutes_not_allowed` | `minutes` with an action other than `snooze` |
//! | 422 | `unknown_answer` | `answer` is neither `left_car` nor `cancel` |
//! | 422 | `invalid_service` | no items, a blank item, an odometer out of range |
//! | 422 | `invalid_settings` | a bad `HH:MM`, equal start and end, an unknown kind |
//! | 422 | `invalid` | the backend refused the values (e.g. an item not on the schedule) |
//! | 503 | `unavailable` | the backend cannot answer now (the store failed) |
//!
//! Client input never causes a 500. Each rejected request is counted by status class
//! ([`Rejections`]) and logged at `warn` with its method, path, code and message.

pub mod cli;
pub(crate) mod client;
pub mod openapi;
mod server;
pub(crate) mod views;

use std::net::SocketAddr;

pub use client::{Client, Watch};
#[cfg(feature = "fuzzing")]
pub use server::bodies;
pub use server::{
    BODY_LIMIT, KEEP_ALIVE, MAX_ODOMETER_KM, MAX_SNOOZE_MINUTES, Rejections, router, router_with,
    serve, serve_router,
};
pub use views::{
    DriverAction, DtcView, HmiEvent, MaintenanceView, PromptView, QuietHoursView, ServiceCaseView,
    ServiceRequest, ServiceStepView, ServiceView, SettingsView, VehicleView,
};

/// What the HMI server asks of the agent's core.
///
/// The methods are synchronous and are called directly on the server's async tasks: the core
/// holds its state behind a mutex and a call costs a lock plus, for the writing ones, a sled
/// insert (microseconds; sled flushes in the background). An implementation must not block
/// for longer — no network, no `flush()` waits — or it stalls the runtime thread it runs on.
pub trait Backend: Send + Sync + 'static {
    /// The car's state as the screen shows it.
    fn vehicle(&self) -> VehicleView;

    /// The prompts that may be on the screen now: the backend has applied the safety gate
    /// (driving, quiet hours, caps), so the screen shows exactly these.
    fn prompts(&self) -> Vec<PromptView>;

    /// A receiver of screen events, for one `/v1/prompts/stream` client. A receiver that falls
    /// behind gets `Lagged`, which the stream turns into a `resync` event.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HmiEvent>;

    /// The driver acted on a prompt; returns the prompt as it stands after the action.
    ///
    /// # Errors
    /// [`BackendError::NotFound`] for an unknown id, [`BackendError::Conflict`] when the prompt
    /// is already closed, [`BackendError::Unavailable`] when the store fails.
    fn act(&self, id: &str, action: DriverAction) -> Result<PromptView, BackendError>;

    /// The driver recorded a service.
    ///
    /// # Errors
    /// [`BackendError::Invalid`] for an item not on the car's schedule or a time in the
    /// future (the backend has the clock), [`BackendError::Unavailable`] when the store fails.
    fn record_service(&self, req: ServiceRequest) -> Result<ServiceView, BackendError>;

    /// The service cases the agent holds (open ones, and closed ones for a day), by alert id.
    /// A backend without service cases lists none.
    fn service_cases(&self) -> Vec<ServiceCaseView> {
        Vec::new()
    }

    /// The driver answered a service case; returns the case after the answer.
    ///
    /// # Errors
    /// [`BackendError::NotFound`] for a case not held (the default: a backend without service
    /// cases), [`BackendError::Conflict`] for a resolved or cancelled case,
    /// [`BackendError::Unavailable`] when the store fails.
    fn answer_service(
        &self,
        alert_id: u64,
        answer: rapport_shared::DriverAnswer,
    ) -> Result<ServiceCaseView, BackendError> {
        let _ = answer;
        Err(BackendError::NotFound(format!("service case {alert_id}")))
    }

    /// The driver's settings.
    fn settings(&self) -> SettingsView;

    /// Replaces the driver's settings (already checked: [`SettingsView::to_settings`]
    /// succeeds on them); returns them as stored.
    ///
    /// # Errors
    /// [`BackendError::Invalid`] or [`BackendError::Unavailable`].
    fn put_settings(&self, s: SettingsView) -> Result<SettingsView, BackendError>;

    /// The store's health for `/healthz`: `ok`, `full` or `failed`, and the writes not kept
    /// since start. A backend without a store is always `("ok", 0)`.
    fn store_health(&self) -> (&'static str, u64) {
        ("ok", 0)
    }
}

/// Why the backend refused a request; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No such prompt (or item): 404, code `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state, e.g. the prompt is already closed: 409,
    /// code `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// Values the backend refuses: 422, code `invalid`.
    #[error("{0}")]
    Invalid(String),
    /// The backend cannot answer now (the store failed): 503, code `unavailable`.
    #[error("{0}")]
    Unavailable(String),
    /// The agent's storage is full: the change is applied in memory but not stored (it is
    /// written when space returns): 503, code `storage_full`.
    #[error("{0}")]
    StorageFull(String),
}

/// What can go wrong in the HMI server or client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HmiError {
    /// The server's accept loop failed.
    #[error("HMI server on {addr}: {source}")]
    Serve {
        /// The address it listened on (`?` if unknown).
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The client was pointed at a non-loopback address: this API is plain HTTP with no
    /// authentication and must not leave the head unit.
    #[error("{0}: the HMI API is plain HTTP on loopback only; give a 127.0.0.1 or [::1] address")]
    NotLoopback(SocketAddr),
    /// The agent could not be reached.
    #[error("cannot reach the agent's HMI API at {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// HTTP failed on an open connection.
    #[error("HTTP exchange with {addr}: {source}")]
    Http {
        /// Where.
        addr: SocketAddr,
        /// The cause.
        source: hyper::Error,
    },
    /// The agent did not answer in time.
    #[error("the agent at {addr} did not answer within {secs} s")]
    Timeout {
        /// Where.
        addr: SocketAddr,
        /// The limit.
        secs: u64,
    },
    /// The agent refused the request (the JSON error body, or the raw text if it was not one).
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// What went wrong.
        message: String,
    },
    /// An answer that does not parse.
    #[error("{what}: {message}")]
    Decode {
        /// What was being read ("GET /v1/prompts", "event prompt").
        what: String,
        /// The cause.
        message: String,
    },
}
