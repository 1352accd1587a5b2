//! Vehicles: the list by layer cell with paging, one vehicle (what the ingest knows, its
//! registry entry, layers, checklist and engagement), and the operator's downlink to it.
//! Its timeline and readings: [`super::timeline`].
//!
//! - `GET /api/v1/vehicles?category=&car=&service=&activity=&lifecycle=&after=<vin>&limit=`
//! - `GET /api/v1/vehicles/{vin}`
//! - `POST /api/v1/vehicles/{vin}/downlink` (operator)
//!
//! The operator sees every vehicle; a partner the vehicles it may see
//! ([`crate::fleet::reads`]): any other answers 404 as if it did not exist, so a partner
//! cannot probe other partners' VINs. Owns these routes' queries and views. Does not own
//! the rules of visibility or layering.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rapport_shared::{MaintenanceStatus, Timestamp, Vin, WireError, topic};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{CommaList, Limit, Operator, Query, VinPath, parse_vin};
use super::registry::RegistrationView;
use super::state::{Shared, blocking};
use super::views::{DownlinkRequest, VehicleView, json, ok};
use crate::fleet::model::{
    Activity, CarMaturity, Category, CellFilter, Consents, DriverResponse, Layers, Lifecycle,
    ServiceMaturity,
};

/// A page when the query names none.
pub const DEFAULT_LIMIT: usize = 100;

/// The vehicle routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/vehicles", get(list))
        .route("/api/v1/vehicles/{vin}", get(detail))
        .route("/api/v1/vehicles/{vin}/downlink", post(downlink))
}

/// Whether the caller may see the vehicle (the operator: always).
pub(super) fn visible(s: &Shared, caller: &Caller, vin: &Vin) -> Result<bool, ApiError> {
    match caller {
        Caller::Operator => Ok(true),
        Caller::Partner(p) => Ok(s.fleet.partner_may_see(p, vin)?),
    }
}

/// 404 `unknown_vehicle`, for a VIN the caller may not see as for one that does not exist.
pub(super) fn unknown_vehicle(vin: &Vin) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_vehicle",
        format!("no vehicle {vin} (or not yours)"),
    )
}

/// The query of the list: a set of cells (lists per axis, absent: any) and paging.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    category: CommaList<Category>,
    car: CommaList<CarMaturity>,
    service: CommaList<ServiceMaturity>,
    activity: CommaList<Activity>,
    lifecycle: CommaList<Lifecycle>,
    /// A VIN: the page starts after it.
    after: Option<String>,
    limit: Option<Limit>,
}

/// The list's answer.
#[derive(Serialize)]
struct ListView {
    vehicles: Vec<ListedVehicle>,
    /// The VIN to ask after for the next page; null on the last.
    next_after: Option<String>,
}

#[derive(Serialize)]
struct ListedVehicle {
    vin: String,
    layers: Layers,
}

/// `GET /api/v1/vehicles`.
async fn list(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let after = q.after.as_deref().map(parse_vin).transpose()?;
    let limit = Limit::or(q.limit, DEFAULT_LIMIT);
    let cells = CellFilter {
        category: q.category.0,
        car: q.car.0,
        service: q.service.0,
        activity: q.activity.0,
        lifecycle: q.lifecycle.0,
    };
    blocking(move || {
        let partner = match &caller {
            Caller::Operator => None,
            Caller::Partner(p) => Some(p.as_str()),
        };
        let page = s.fleet.vehicles(&cells, partner, after, limit)?;
        ok(&ListView {
            vehicles: page
                .vehicles
                .iter()
                .map(|(vin, layers)| ListedVehicle {
                    vin: vin.to_string(),
                    layers: *layers,
                })
                .collect(),
            next_after: page.next_after.map(|v| v.to_string()),
        })
    })
    .await
}

/// `GET /api/v1/vehicles/{vin}`: the ingest's view (or only the VIN, for a vehicle
/// registered but not heard from yet) with the fleet's.
#[derive(Serialize)]
struct DetailView {
    #[serde(flatten)]
    ingest: IngestPart,
    /// The registry entry, or null.
    registration: Option<RegistrationView>,
    /// Where the driver sits, or null (not placed yet).
    layers: Option<Layers>,
    /// The maintenance checklist (only once the fleet has a driver record).
    #[serde(skip_serializing_if = "Option::is_none")]
    maintenance: Option<Vec<MaintenanceView>>,
    /// The layering inputs (only once the fleet has a driver record).
    #[serde(skip_serializing_if = "Option::is_none")]
    engagement: Option<EngagementView>,
    /// The driver's consents: the operator only.
    #[serde(skip_serializing_if = "Option::is_none")]
    consents: Option<Consents>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum IngestPart {
    /// Records have reached the cloud (boxed: the view is large beside `Unseen`).
    Seen(Box<VehicleView>),
    /// Registered only.
    Unseen { vin: String },
}

/// One item of the checklist.
#[derive(Serialize)]
struct MaintenanceView {
    item: String,
    status: MaintenanceStatus,
    due_odometer_km: Option<u64>,
    due_at: Option<Timestamp>,
    driver_response: DriverResponse,
}

/// What layering counts from.
#[derive(Serialize)]
struct EngagementView {
    owned_since: Option<Timestamp>,
    last_engagement: Option<Timestamp>,
    prompt_actions: u32,
    bookings: u32,
    services: u32,
}

/// `GET /api/v1/vehicles/{vin}`.
async fn detail(
    State(s): State<Arc<Shared>>,
    VinPath(vin): VinPath,
    caller: Caller,
) -> Result<Response, ApiError> {
    blocking(move || {
        if !visible(&s, &caller, &vin)? {
            return Err(unknown_vehicle(&vin));
        }
        let state = s.store.vehicle(&vin)?;
        let registration = s.store.registration(&vin)?;
        if state.is_none() && registration.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_vehicle",
                format!("no record of {vin} has reached the cloud and it is not registered"),
            ));
        }
        let driver = s.store.driver(&vin)?;
        let layers = s.fleet.layers_of(&vin);
        let view = DetailView {
            ingest: match &state {
                Some(state) => IngestPart::Seen(Box::new(VehicleView::new(&vin, state))),
                None => IngestPart::Unseen {
                    vin: vin.to_string(),
                },
            },
            registration: registration.as_ref().map(RegistrationView::new),
            layers,
            maintenance: driver.as_ref().map(|d| {
                d.items
                    .iter()
                    .map(|i| MaintenanceView {
                        item: i.item.clone(),
                        status: i.status,
                        due_odometer_km: i.due_odometer_m.map(|m| m / 1000),
                        due_at: i.due_at,
                        driver_response: i.response,
                    })
                    .collect()
            }),
            engagement: driver.as_ref().map(|d| EngagementView {
                owned_since: d.profile.owned_since,
                last_engagement: d.profile.last_engagement,
                prompt_actions: d.profile.prompt_actions,
                bookings: d.profile.bookings,
                services: d.profile.services,
            }),
            consents: driver
                .as_ref()
                .filter(|_| matches!(caller, Caller::Operator))
                .map(|d| d.consents),
        };
        ok(&view)
    })
    .await
}

/// The answer to a downlink: its id and topic.
#[derive(Serialize)]
struct SentView {
    id: u64,
    topic: String,
}

/// `POST /api/v1/vehicles/{vin}/downlink` (operator): pushes one downlink message (a
/// campaign or a service record) to the car. A body that does not fit is 400 `bad_request`.
async fn downlink(
    State(s): State<Arc<Shared>>,
    _: Operator,
    VinPath(vin): VinPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: DownlinkRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad("bad_request", e.to_string()))?;
    let body = request
        .into_body()
        .map_err(|m| ApiError::bad("bad_request", m))?;
    match s.send_downlink(vin, body).await {
        Ok(id) => json(
            StatusCode::ACCEPTED,
            &SentView {
                id,
                topic: topic::downlink(&vin),
            },
        ),
        Err(crate::Error::Wire(e @ WireError::TooLarge { .. })) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(&e)),
    }
}
