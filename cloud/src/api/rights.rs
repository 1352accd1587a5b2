//! Drivers' data rights (docs/data-rights.md): a vehicle's export and its erasure.
//!
//! - `GET /api/v1/vehicles/{vin}/export` (operator): everything held about the vehicle as
//!   ONE JSON document (format [`EXPORT_FORMAT`]), streamed: a blocking producer reads the
//!   store's lazy iterators and writes the document in chunks into a bounded channel that
//!   the response body drains ([`export_body`]), so a car with years of records is never in
//!   memory — at most [`EXPORT_CHANNEL`] chunks of about [`EXPORT_CHUNK`] bytes are.
//! - `POST /api/v1/vehicles/{vin}/erase` (operator), body `{"reason": "..."}`: the vehicle's
//!   data erased ([`crate::store::Backend::erase`]), the partners told, the car asked to
//!   wipe; idempotent.
//!
//! Owns these routes' request and answer shapes and the export document's writing. Does not
//! own what is stored or deleted (the store), nor the late-record rule
//! ([`crate::store::erasure`]).

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use rapport_shared::{RecordBody, Timestamp, Vin};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, Operator, VinPath};
use super::state::{Shared, blocking};
use super::vehicles::unknown_vehicle;
use super::views::ok;
use crate::fleet::alerts::Alert;
use crate::fleet::store::TimelineEntry;
use crate::store::erasure::{ErasedCounts, Erasure, MAX_REASON_BYTES, WipeConfirmation};
use crate::store::{Store, StoreError};
use crate::webhook::outbox::MessageState;

/// The export document's format version (its top-level `format`).
pub const EXPORT_FORMAT: u32 = 1;
/// About how many bytes the producer writes before handing a chunk to the body.
pub const EXPORT_CHUNK: usize = 64 * 1024;
/// How many chunks may wait between the producer and the body.
pub const EXPORT_CHANNEL: usize = 4;

/// The rights routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(erase))
}

/// The body of an erase.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Why (kept on the tombstone; 1 to [`MAX_REASON_BYTES`] bytes, not only blanks).
    pub reason: String,
}

/// The answer to an erase (the first and every repeat): the tombstone.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// The vehicle.
    pub vin: String,
    /// When it was erased (unix ms).
    pub erased_at: Timestamp,
    /// Why.
    pub reason: String,
    /// The partners sent `vehicle.erased`.
    pub partners_notified: Vec<String>,
    /// The vehicle-wipe downlink's id.
    pub wipe_downlink: u64,
    /// What was removed, counted.
    pub erased: ErasedCounts,
    /// The car's wipe confirmation, once it arrived.
    pub wipe_confirmed: Option<WipeConfirmation>,
    /// Records from before the erasure that arrived late and were dropped.
    pub late_records_dropped: u64,
}

impl ErasureView {
    /// The view of a tombstone.
    pub fn new(e: &Erasure) -> Self {
        Self {
            vin: e.vin.to_string(),
            erased_at: e.erased_at,
            reason: e.reason.clone(),
            partners_notified: e.partners.clone(),
            wipe_downlink: e.downlink,
            erased: e.erased,
            wipe_confirmed: e.confirmed,
            late_records_dropped: e.late_dropped,
        }
    }
}

/// `POST /api/v1/vehicles/{vin}/erase` (operator).
#[utoipa::path(operation_id = "eraseVehicle", post, path = "/api/v1/vehicles/{vin}/erase", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$")),
    request_body(content = EraseRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The erasure's tombstone (the same for every repeat: an erase is idempotent).", body = ErasureView),
        (status = 400, description = "`bad_vin`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_vehicle`.", body = ErrorBody),
        (status = 413, description = "`bad_body`: the body is too large.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `application/json`.", body = ErrorBody),
        (status = 422, description = "`bad_body`: no reason, a blank or overlong one, another field.", body = ErrorBody),
    ))]
async fn erase(
    State(s): State<Arc<Shared>>,
    _: Operator,
    VinPath(vin): VinPath,
    JsonBody(request): JsonBody<EraseRequest>,
) -> Result<Response, ApiError> {
    let reason = request.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::bad_body("reason: must not be empty"));
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::bad_body(format!(
            "reason: {} bytes, at most {MAX_REASON_BYTES}",
            reason.len()
        )));
    }
    let done = s
        .fleet
        .change(&s.client, move |store, _rules, now| {
            Ok(match store.erase(&vin, &reason, now)? {
                Some((e, first, applied)) => (Some((e, first)), applied),
                None => (None, crate::store::Applied::default()),
            })
        })
        .await?;
    let Some((erasure, first)) = done else {
        return Err(unknown_vehicle(&vin));
    };
    if first {
        s.metrics.erasures.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            %vin,
            partners = erasure.partners.len(),
            downlink = erasure.downlink,
            "vehicle erased"
        );
    } else {
        tracing::info!(%vin, "vehicle already erased; nothing changed");
    }
    ok(&ErasureView::new(&erasure))
}

/// `GET /api/v1/vehicles/{vin}/export` (operator): the document, streamed.
#[utoipa::path(operation_id = "exportVehicle", get, path = "/api/v1/vehicles/{vin}/export", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$")),
    responses(
        (status = 200, description = "Everything the store holds about the vehicle, as one JSON document streamed as it is read (its schema: docs/data-rights.md, \"Export\").", body = Object, content_type = "application/json"),
        (status = 400, description = "`bad_vin`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 404, description = "`unknown_vehicle`.", body = ErrorBody),
    ))]
async fn export(
    State(s): State<Arc<Shared>>,
    _: Operator,
    VinPath(vin): VinPath,
) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let now = s.fleet.clock.now();
    let head =
        blocking(move || Head::load(&store, &vin, now)?.ok_or_else(|| unknown_vehicle(&vin)))
            .await?;
    s.metrics.exports.fetch_add(1, Ordering::Relaxed);
    let (body, _produced) = export_body(s.store.clone(), head);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// One alert with its webhook messages, as exported.
#[derive(Debug, Serialize)]
struct AlertExport<'a> {
    alert: &'a Alert,
    deliveries: Vec<Delivery>,
}

/// One webhook message about an alert: where it stands in the outbox.
#[derive(Debug, Serialize)]
struct Delivery {
    /// The `webhook-id`.
    id: String,
    /// The partner it goes to.
    partner: String,
    /// `pending`, `delivered` or `dead`.
    state: &'static str,
    /// Attempts made.
    attempts: u32,
    /// When it was delivered or parked (unix ms); null while pending.
    done_at: Option<Timestamp>,
    /// The last attempt's failure, if any.
    last_error: Option<String>,
}

/// What the export reads before it streams: everything but the records and the timeline
/// (small: one vehicle's registration, state, driver, alerts).
pub struct Head {
    vin: Vin,
    exported_at: Timestamp,
    registration: Option<serde_json::Value>,
    ingest: Option<serde_json::Value>,
    driver: Option<serde_json::Value>,
    consents: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
    contacts: Option<serde_json::Value>,
    alerts: Vec<serde_json::Value>,
}

fn value<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::corrupt("export", e))
}

impl Head {
    /// Reads the head of `vin`'s export at `now`; `None`: the store holds nothing of it.
    ///
    /// # Errors
    /// The store.
    pub fn load(store: &Store, vin: &Vin, now: Timestamp) -> Result<Option<Self>, ApiError> {
        let registration = store.registration(vin)?;
        let ingest = store.vehicle(vin)?;
        let driver = store.driver(vin)?;
        let alerts = store.alerts(false, Some(vin))?;
        if registration.is_none() && ingest.is_none() && driver.is_none() && alerts.is_empty() {
            return Ok(None);
        }
        let outbox = store.outbox();
        let mut exported = Vec::with_capacity(alerts.len());
        for a in &alerts {
            let mut deliveries = Vec::new();
            for (id, partner) in crate::store::erasure::alert_partners(a) {
                let Some(state) = outbox.state(&id).map_err(|e| ApiError::internal(&e))? else {
                    continue;
                };
                deliveries.push(match state {
                    MessageState::Pending(m) => Delivery {
                        id,
                        partner,
                        state: "pending",
                        attempts: m.attempts,
                        done_at: None,
                        last_error: m.last_error,
                    },
                    MessageState::Delivered(d) => Delivery {
                        id,
                        partner,
                        state: "delivered",
                        attempts: d.attempts,
                        done_at: Some(d.at),
                        last_error: None,
                    },
                    MessageState::Dead(d) => Delivery {
                        id,
                        partner,
                        state: "dead",
                        attempts: d.message.attempts,
                        done_at: Some(d.dead_at),
                        last_error: d.message.last_error,
                    },
                });
            }
            exported.push(value(&AlertExport {
                alert: a,
                deliveries,
            })?);
        }
        let consents = match (&driver, &registration) {
            (Some(d), r) => Some(serde_json::json!({
                "current": value(&d.consents)?,
                "at_sale": r.as_ref().map(|r| value(&r.consents)).transpose()?,
            })),
            (None, Some(r)) => Some(serde_json::json!({
                "current": value(&r.consents)?,
                "at_sale": value(&r.consents)?,
            })),
            (None, None) => None,
        };
        Ok(Some(Self {
            vin: *vin,
            exported_at: now,
            registration: registration.as_ref().map(value).transpose()?,
            ingest: ingest.as_ref().map(value).transpose()?,
            driver: driver.as_ref().map(value).transpose()?,
            consents,
            layers: store.layers(vin)?.as_ref().map(value).transpose()?,
            contacts: store.contacts(vin)?.as_ref().map(value).transpose()?,
            alerts: exported,
        }))
    }
}

/// The export's body and a count of the bytes its producer wrote so far (the producer runs
/// ahead of the reader by at most [`EXPORT_CHANNEL`] chunks).
pub fn export_body(store: Store, head: Head) -> (Body, Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel(EXPORT_CHANNEL);
    let produced = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&produced);
    tokio::task::spawn_blocking(move || {
        let vin = head.vin;
        let mut w = Chunks {
            buf: Vec::with_capacity(EXPORT_CHUNK + 4096),
            tx,
            produced: counter,
        };
        match write_document(&store, head, &mut w).and_then(|()| w.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::info!(%vin, "export abandoned by the client");
            }
            Err(e) => {
                tracing::error!(%vin, cause = %e, "export failed midway; the document is cut short");
                let _ = w.tx.blocking_send(Err(e));
            }
        }
    });
    (Body::new(ChannelBody(rx)), produced)
}

/// Writes the document (see docs/data-rights.md, "Export").
fn write_document(store: &Store, head: Head, w: &mut Chunks) -> std::io::Result<()> {
    let vin = head.vin;
    w.write_all(b"{")?;
    field(w, "format", &EXPORT_FORMAT, true)?;
    field(w, "vin", &vin.to_string(), false)?;
    field(w, "exported_at", &head.exported_at, false)?;
    field(w, "registration", &head.registration, false)?;
    field(w, "ingest", &head.ingest, false)?;
    field(w, "driver", &head.driver, false)?;
    field(w, "consents", &head.consents, false)?;
    field(w, "layers", &head.layers, false)?;
    field(w, "contacts", &head.contacts, false)?;
    field(w, "alerts", &head.alerts, false)?;
    // Layer history: the timeline's layer entries, newest first.
    array(
        w,
        "layer_history",
        store
            .timeline_newest_first(&vin, None)
            .filter_map(|e| match e {
                Ok((_, s)) if matches!(s.entry, TimelineEntry::Layer { .. }) => Some(Ok(s)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }),
    )?;
    // Consent history: the car's consent records, newest first.
    array(
        w,
        "consent_history",
        store
            .records_newest_first(&vin, None)
            .filter(|r| !matches!(r, Ok(r) if !matches!(r.body, RecordBody::Consent(_)))),
    )?;
    array(
        w,
        "timeline",
        store
            .timeline_newest_first(&vin, None)
            .map(|e| e.map(|(_, s)| s)),
    )?;
    array(w, "records", store.records_newest_first(&vin, None))?;
    w.write_all(b"}")?;
    Ok(())
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `"name":value`, after a comma unless `first`.
fn field<T: Serialize>(w: &mut Chunks, name: &str, v: &T, first: bool) -> std::io::Result<()> {
    if !first {
        w.write_all(b",")?;
    }
    serde_json::to_writer(&mut *w, name).map_err(io)?;
    w.write_all(b":")?;
    serde_json::to_writer(&mut *w, v).map_err(io)
}

/// `,"name":[...]` from a lazy iterator.
fn array<T: Serialize>(
    w: &mut Chunks,
    name: &str,
    items: impl Iterator<Item = Result<T, StoreError>>,
) -> std::io::Result<()> {
    w.write_all(b",")?;
    serde_json::to_writer(&mut *w, name).map_err(io)?;
    w.write_all(b":[")?;
    for (i, item) in items.enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        serde_json::to_writer(&mut *w, &item.map_err(io)?).map_err(io)?;
    }
    w.write_all(b"]")
}

/// The producer's writer: fills a buffer and hands it to the body in chunks, blocking while
/// the channel is full (the reader is slower).
struct Chunks {
    buf: Vec<u8>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    produced: Arc<AtomicU64>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(EXPORT_CHUNK + 4096),
        ));
        let n = chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        self.produced.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= EXPORT_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A response body fed by the producer's channel.
struct ChannelBody(mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(Frame::data)))
    }
}
