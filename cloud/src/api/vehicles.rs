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

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rapport_shared::{MaintenanceStatus, Timestamp, Vin, WireError, topic};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
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

/// The vehicle routes, each with its OpenAPI operation ([`super::openapi`]).
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(downlink))
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
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    /// Categories, comma-separated (`passenger,commercial`); absent: any.
    #[param(value_type = Option<String>)]
    category: CommaList<Category>,
    /// Maturities with the car (`novice`, `skilled`, `veteran`), comma-separated.
    #[param(value_type = Option<String>)]
    car: CommaList<CarMaturity>,
    /// Maturities with the service (`junior`, `growing`, `mature`), comma-separated.
    #[param(value_type = Option<String>)]
    service: CommaList<ServiceMaturity>,
    /// Activities (`active`, `declining`, `churned`, `dormant`), comma-separated.
    #[param(value_type = Option<String>)]
    activity: CommaList<Activity>,
    /// Lifecycles (`new`, `retained`, `lapsed`), comma-separated.
    #[param(value_type = Option<String>)]
    lifecycle: CommaList<Lifecycle>,
    /// A VIN: the page starts after it.
    after: Option<String>,
    /// The page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<Limit>,
}

/// The list's answer.
#[derive(Serialize, ToSchema)]
#[schema(as = VehicleList)]
struct ListView {
    vehicles: Vec<ListedVehicle>,
    /// The VIN to ask after for the next page; null on the last.
    next_after: Option<String>,
}

/// One vehicle of a list.
#[derive(Serialize, ToSchema)]
struct ListedVehicle {
    vin: String,
    layers: Layers,
}

/// The vehicles, by layer cell, in VIN order (a partner: the ones it may see).
#[utoipa::path(operation_id = "listVehicles", get, path = "/api/v1/vehicles", tag = "vehicles", params(ListQuery),
    responses(
        (status = 200, description = "A page of vehicles.", body = ListView),
        (status = 400, description = "`bad_query` (an unknown key or value), `bad_vin` (`after`).", body = ErrorBody),
    ))]
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
#[derive(Serialize, ToSchema)]
#[schema(as = VehicleDetail)]
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

/// The ingest's part of the answer: [`VehicleView`], or only `vin` for a vehicle registered
/// but not heard from yet. Documented as `anyOf` by hand: both shapes carry `vin`, so the
/// `oneOf` a derive would write could not tell them apart.
impl utoipa::PartialSchema for IngestPart {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
        AnyOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("VehicleView"))
            .item(
                ObjectBuilder::new()
                    .property("vin", ObjectBuilder::new().schema_type(Type::String))
                    .required("vin"),
            )
            .into()
    }
}

impl ToSchema for IngestPart {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        out.push((
            "VehicleView".to_owned(),
            <VehicleView as utoipa::PartialSchema>::schema(),
        ));
        <VehicleView as ToSchema>::schemas(out);
    }
}

/// One item of the checklist.
#[derive(Serialize, ToSchema)]
struct MaintenanceView {
    item: String,
    status: MaintenanceStatus,
    due_odometer_km: Option<u64>,
    due_at: Option<Timestamp>,
    driver_response: DriverResponse,
}

/// What layering counts from.
#[derive(Serialize, ToSchema)]
struct EngagementView {
    owned_since: Option<Timestamp>,
    last_engagement: Option<Timestamp>,
    prompt_actions: u32,
    bookings: u32,
    services: u32,
}

/// One vehicle: what the ingest knows, its registry entry, layers, checklist and engagement
/// (consents: the operator only).
#[utoipa::path(operation_id = "getVehicle", get, path = "/api/v1/vehicles/{vin}", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$")),
    responses(
        (status = 200, description = "The vehicle.", body = DetailView),
        (status = 400, description = "`bad_vin`.", body = ErrorBody),
        (status = 404, description = "`unknown_vehicle`: not known, or not the caller's.", body = ErrorBody),
    ))]
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
#[derive(Serialize, ToSchema)]
#[schema(as = DownlinkSent)]
struct SentView {
    id: u64,
    topic: String,
}

/// `POST /api/v1/vehicles/{vin}/downlink` (operator): pushes one downlink message (a
/// campaign or a service record) to the car. A body that does not fit is 400 `bad_request`.
#[utoipa::path(operation_id = "sendDownlink", post, path = "/api/v1/vehicles/{vin}/downlink", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$")),
    request_body(content = DownlinkRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued for the car.", body = SentView),
        (status = 400, description = "`bad_vin`, `bad_request` (a body that does not fit).", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
        (status = 413, description = "`too_large`: the message is over the wire's limit.", body = ErrorBody),
    ))]
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
