//! The fleet's routes under `/api/v1`: vehicles (list by layer cell with paging, one, its
//! timeline, its registry entry), the registry import, the layer matrix, alerts (list, one,
//! acknowledge, resolve), partners, campaigns to a cell, dead letters (list, re-drive).
//!
//! Every route needs a bearer token ([`super::auth`]). The operator sees everything; a
//! partner sees the vehicles it is the dealer of or was sent an alert about, and its own
//! alerts — anything else answers 404 as if it did not exist (a partner cannot probe other
//! partners' VINs). Owns the request and response shapes of these routes and their checks
//! (every bad input is a 4xx with a stable code). Does not own the decisions
//! ([`crate::fleet::core::Fleet`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rapport_shared::{Campaign, CampaignTarget, Priority, Timestamp, Vin};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Caller, identify, same};
use super::{ApiError, parse_vin};
use crate::cloud::Shared;
use crate::fleet::alerts::{Alert, AlertState};
use crate::fleet::core::FleetError;
use crate::fleet::model::{
    Activity, CarMaturity, Category, Consents, DAY_MS, Layers, Lifecycle, Registration,
    ServiceMaturity,
};
use crate::fleet::partners::{Partner, PartnerConfig, may_see};
use crate::fleet::registry;

/// Largest page.
const MAX_LIMIT: usize = 1000;
/// Default page.
const DEFAULT_LIMIT: usize = 100;

/// The fleet routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/vehicles", get(vehicles))
        .route("/api/v1/vehicles/{vin}/timeline", get(timeline))
        .route("/api/v1/vehicles/{vin}/registration", put(put_registration))
        .route("/api/v1/registry", post(import_registry))
        .route("/api/v1/layers", get(layers))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}", get(alert))
        .route("/api/v1/alerts/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/partners", get(partners))
        .route(
            "/api/v1/partners/{id}",
            put(put_partner).delete(delete_partner),
        )
        .route("/api/v1/campaigns", post(campaign))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/{id}/redrive", post(redrive))
}

/// Who is calling.
pub(crate) fn caller(s: &Shared, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let fleet = &s.fleet;
    identify(headers, &s.operator, |digest| {
        let f = fleet.fleet.lock().ok()?;
        f.directory()
            .iter()
            .find(|p| {
                rapport_shared::hex::decode_array::<32>(&p.token_sha256)
                    .is_some_and(|h| same(&h, digest))
            })
            .map(|p| p.id.clone())
    })
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn fleet_error(e: FleetError) -> ApiError {
    match e {
        FleetError::UnknownAlert(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_alert",
            format!("no alert {id}"),
        ),
        FleetError::Alert(e) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
        other => ApiError::internal(&other),
    }
}

/// Parses `a=b&c=d` (URL-decoded) into pairs; an unknown key is a 400.
fn query(raw: Option<String>, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&raw)?;
    for (k, _) in &pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(
                "bad_query",
                format!(
                    "unknown query parameter {k:?}; allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(pairs)
}

fn serde_urlencoded_pairs(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| -> Result<String, ApiError> {
            let s = s.replace('+', " ");
            let bytes = s.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                match bytes.get(i) {
                    Some(b'%') => {
                        let hex = s
                            .get(i + 1..i + 3)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| bad("bad_query", format!("bad %-escape in {s:?}")))?;
                        out.push(hex);
                        i += 3;
                    }
                    Some(&b) => {
                        out.push(b);
                        i += 1;
                    }
                    None => break,
                }
            }
            String::from_utf8(out).map_err(|_| bad("bad_query", "query is not UTF-8"))
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn limit_of(v: &str) -> Result<usize, ApiError> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(bad(
            "bad_query",
            format!("limit {v:?} is not a number from 1 to {MAX_LIMIT}"),
        )),
    }
}

fn parse_list<T: std::str::FromStr<Err = String>>(key: &str, v: &str) -> Result<Vec<T>, ApiError> {
    v.split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|e| bad("bad_query", format!("{key}: {e}")))
        })
        .collect()
}

/// A selection of layer cells: each axis a set of values (empty: any).
#[derive(Default, Clone, Debug)]
pub(crate) struct CellFilter {
    category: Vec<Category>,
    car: Vec<CarMaturity>,
    service: Vec<ServiceMaturity>,
    activity: Vec<Activity>,
    lifecycle: Vec<Lifecycle>,
}

impl CellFilter {
    fn set(&mut self, key: &str, v: &str) -> Result<bool, ApiError> {
        match key {
            "category" => self.category = parse_list(key, v)?,
            "car" => self.car = parse_list(key, v)?,
            "service" => self.service = parse_list(key, v)?,
            "activity" => self.activity = parse_list(key, v)?,
            "lifecycle" => self.lifecycle = parse_list(key, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn matches(&self, l: &Layers) -> bool {
        fn any<T: PartialEq>(set: &[T], v: &T) -> bool {
            set.is_empty() || set.contains(v)
        }
        any(&self.category, &l.category)
            && any(&self.car, &l.car)
            && any(&self.service, &l.service)
            && any(&self.activity, &l.activity)
            && any(&self.lifecycle, &l.lifecycle)
    }
}

fn layers_json(l: &Layers) -> Value {
    json!({
        "category": l.category.as_str(),
        "car": l.car.as_str(),
        "service": l.service.as_str(),
        "activity": l.activity.as_str(),
        "lifecycle": l.lifecycle.as_str(),
    })
}

/// Whether the caller may see the vehicle (operator: always).
fn visible(s: &Shared, caller: &Caller, vin: &Vin) -> Result<bool, ApiError> {
    let Caller::Partner(p) = caller else {
        return Ok(true);
    };
    let keys = &s.fleet.keys;
    let registration = keys
        .registration(vin)
        .map_err(|e| ApiError::internal(&e))?
        .unwrap_or_else(|| Registration {
            vin: *vin,
            category: Category::Passenger,
            line: String::new(),
            delivered: None,
            dealer: None,
            region: None,
            consents: Consents::default(),
        });
    let ids = keys.alert_ids_of(vin).map_err(|e| ApiError::internal(&e))?;
    let mut recipients = Vec::new();
    for id in ids {
        if let Some(a) = keys
            .alert::<Alert>(id)
            .map_err(|e| ApiError::internal(&e))?
        {
            recipients.extend(a.recipients().map(str::to_owned));
        }
    }
    Ok(may_see(
        p,
        &registration,
        recipients.iter().map(String::as_str),
    ))
}

fn unknown_vehicle(vin: &Vin) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_vehicle",
        format!("no vehicle {vin} (or not yours)"),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// `GET /api/v1/vehicles?category=&car=&service=&activity=&lifecycle=&after=<vin>&limit=`
async fn vehicles(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let pairs = query(
        raw,
        &[
            "category",
            "car",
            "service",
            "activity",
            "lifecycle",
            "after",
            "limit",
        ],
    )?;
    let mut filter = CellFilter::default();
    let (mut after, mut limit) = (None, DEFAULT_LIMIT);
    for (k, v) in &pairs {
        if filter.set(k, v)? {
            continue;
        }
        match k.as_str() {
            "after" => after = Some(parse_vin(v)?),
            "limit" => limit = limit_of(v)?,
            _ => {}
        }
    }
    blocking(move || {
        let mut out = Vec::new();
        let mut cursor = after;
        let mut next = None;
        'pages: loop {
            let vins = s
                .fleet
                .keys
                .vins_after(cursor.as_ref(), 512)
                .map_err(|e| ApiError::internal(&e))?;
            if vins.is_empty() {
                break;
            }
            for vin in &vins {
                cursor = Some(*vin);
                let layers = s
                    .fleet
                    .fleet
                    .lock()
                    .ok()
                    .and_then(|f| f.layering().layers(vin));
                let Some(layers) = layers else { continue };
                if !filter.matches(&layers) || !visible(&s, &caller, vin)? {
                    continue;
                }
                if out.len() == limit {
                    next = out.last().map(|v: &Value| v["vin"].clone());
                    break 'pages;
                }
                out.push(json!({"vin": vin.to_string(), "layers": layers_json(&layers)}));
            }
        }
        Ok(axum::Json(json!({"vehicles": out, "next_after": next})).into_response())
    })
    .await
}

/// `GET /api/v1/vehicles/{vin}`: the ingest's view plus registry, layers and checklist.
pub(crate) async fn vehicle_detail(
    s: Arc<Shared>,
    headers: HeaderMap,
    vin: Vin,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    blocking(move || {
        if !visible(&s, &caller, &vin)? {
            return Err(unknown_vehicle(&vin));
        }
        let state = s.store.vehicle(&vin).map_err(|e| ApiError::internal(&e))?;
        let registration = s
            .fleet
            .keys
            .registration(&vin)
            .map_err(|e| ApiError::internal(&e))?;
        if state.is_none() && registration.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_vehicle",
                format!("no record of {vin} has reached the cloud and it is not registered"),
            ));
        }
        let driver = s
            .fleet
            .keys
            .driver(&vin)
            .map_err(|e| ApiError::internal(&e))?;
        let layers = s
            .fleet
            .fleet
            .lock()
            .ok()
            .and_then(|f| f.layering().layers(&vin));
        let mut body = match &state {
            Some(state) => serde_json::to_value(super::views::VehicleView::new(&vin, state))
                .map_err(|e| ApiError::internal(&e))?,
            None => json!({"vin": vin.to_string()}),
        };
        if let Some(obj) = body.as_object_mut() {
            obj.insert(
                "registration".into(),
                registration_json(registration.as_ref()),
            );
            obj.insert(
                "layers".into(),
                layers.as_ref().map_or(Value::Null, layers_json),
            );
            if let Some(d) = &driver {
                obj.insert(
                    "maintenance".into(),
                    Value::Array(
                        d.items
                            .iter()
                            .map(|i| {
                                json!({
                                    "item": i.item,
                                    "status": i.status,
                                    "due_odometer_km": i.due_odometer_m.map(|m| m / 1000),
                                    "due_at": i.due_at.map(Timestamp::as_millis),
                                    "driver_response": i.response,
                                })
                            })
                            .collect(),
                    ),
                );
                obj.insert(
                    "engagement".into(),
                    json!({
                        "owned_since": d.profile.owned_since.map(Timestamp::as_millis),
                        "last_engagement": d.profile.last_engagement.map(Timestamp::as_millis),
                        "prompt_actions": d.profile.prompt_actions,
                        "bookings": d.profile.bookings,
                        "services": d.profile.services,
                    }),
                );
                if matches!(caller, Caller::Operator) {
                    obj.insert("consents".into(), json!(d.consents));
                }
            }
        }
        Ok(axum::Json(body).into_response())
    })
    .await
}

fn registration_json(r: Option<&Registration>) -> Value {
    r.map_or(Value::Null, |r| {
        json!({
            "category": r.category.as_str(),
            "line": r.line,
            "delivered": r.delivered.map(Timestamp::as_millis),
            "dealer": r.dealer,
            "region": r.region,
        })
    })
}

/// `GET /api/v1/vehicles/{vin}/timeline?limit=`: fleet entries (layers, strategies, alerts)
/// and the car's records (odometer, faults, maintenance, prompts), oldest first.
async fn timeline(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(vin): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let vin = parse_vin(&vin)?;
    let mut limit = 500;
    for (k, v) in query(raw, &["limit"])? {
        if k == "limit" {
            limit = limit_of(&v)?;
        }
    }
    blocking(move || {
        if !visible(&s, &caller, &vin)? {
            return Err(unknown_vehicle(&vin));
        }
        let fleet = s
            .fleet
            .keys
            .timeline(&vin, limit)
            .map_err(|e| ApiError::internal(&e))?;
        let state = s.store.vehicle(&vin).map_err(|e| ApiError::internal(&e))?;
        let after = state
            .as_ref()
            .map_or(0, |st| st.last_seq().saturating_sub(limit as u64 * 4));
        let records = s
            .store
            .records(&vin, after, limit * 4)
            .map_err(|e| ApiError::internal(&e))?;
        let mut entries: Vec<(u64, Value)> = fleet
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("source".into(), Value::from("cloud"));
                }
                (e.at.as_millis(), v)
            })
            .collect();
        for r in &records {
            if matches!(r.body, rapport_shared::RecordBody::Heartbeat(_)) {
                continue;
            }
            let mut v = super::views::record_json(r);
            if let Some(o) = v.as_object_mut() {
                o.insert("source".into(), Value::from("car"));
                o.insert("at".into(), Value::from(r.at.as_millis()));
            }
            entries.push((r.at.as_millis(), v));
        }
        entries.sort_by_key(|(at, _)| *at);
        let skip = entries.len().saturating_sub(limit);
        let list: Vec<Value> = entries.into_iter().skip(skip).map(|(_, v)| v).collect();
        Ok(axum::Json(json!({"vin": vin.to_string(), "entries": list})).into_response())
    })
    .await
}

/// The registry entry body of `PUT /api/v1/vehicles/{vin}/registration`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    category: Category,
    #[serde(default)]
    line: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    delivered: Option<String>,
    #[serde(default)]
    dealer: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    consents: Consents,
}

fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected application/json, got {ct:?}"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            format!("{path}: {}", e.into_inner()),
        )
    })
}

/// `PUT /api/v1/vehicles/{vin}/registration` (operator).
async fn put_registration(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(vin): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let vin = parse_vin(&vin)?;
    let b: RegistrationBody = json_body(&headers, &body)?;
    let delivered = match &b.delivered {
        Some(d) => Some(
            rapport_shared::CivilDate::parse(d)
                .map(rapport_shared::CivilDate::midnight_utc)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bad_body",
                        format!("delivered: {e}"),
                    )
                })?,
        ),
        None => None,
    };
    let r = Registration {
        vin,
        category: b.category,
        line: b.line,
        delivered,
        dealer: b.dealer,
        region: b.region,
        consents: b.consents,
    };
    let r2 = r.clone();
    s.fleet
        .commit(&s.client, move |fleet, batch, now| {
            let fx = fleet.register(&r2, now, batch)?;
            Ok(((), fx))
        })
        .await
        .map_err(fleet_error)?;
    Ok((
        StatusCode::OK,
        axum::Json(json!({"vin": vin.to_string(), "registration": registration_json(Some(&r))})),
    )
        .into_response())
}

/// `POST /api/v1/registry` (operator): a CSV (`text/csv`) or TOML (`application/toml`) file.
async fn import_registry(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = std::str::from_utf8(&body).map_err(|_| bad("bad_body", "the file is not UTF-8"))?;
    let parsed = if ct.starts_with("text/csv") {
        registry::parse_csv(text)
    } else if ct.starts_with("application/toml") {
        registry::parse_toml(text)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected text/csv or application/toml, got {ct:?}"),
        ));
    };
    let entries = parsed.map_err(|errors| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_registry",
            errors
                .iter()
                .take(50)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let n = entries.len();
    s.fleet
        .commit(&s.client, move |fleet, batch, now| {
            let mut fx = crate::fleet::core::Effects::default();
            for r in &entries {
                fx.merge_from(fleet.register(r, now, batch)?);
            }
            Ok(((), fx))
        })
        .await
        .map_err(fleet_error)?;
    Ok(axum::Json(json!({"imported": n})).into_response())
}

/// `GET /api/v1/layers?category=&axis=service|car`: the layer matrix with counts (operator).
async fn layers(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let mut category = None;
    let mut axis = "service".to_owned();
    for (k, v) in query(raw, &["category", "axis"])? {
        match k.as_str() {
            "category" => {
                category = Some(
                    v.parse::<Category>()
                        .map_err(|e| bad("bad_query", format!("category: {e}")))?,
                );
            }
            "axis" if v == "service" || v == "car" => axis = v,
            _ => {
                return Err(bad(
                    "bad_query",
                    format!("axis {v:?} is not service or car"),
                ));
            }
        }
    }
    let m = s
        .fleet
        .fleet
        .lock()
        .map(|f| f.layering().matrix(category))
        .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
    let activities: Vec<&str> = Activity::ALL.iter().map(|a| a.as_str()).collect();
    let rows: Vec<Value> = if axis == "service" {
        ServiceMaturity::ALL
            .iter()
            .map(|sm| {
                json!({"maturity": sm.as_str(), "counts": Activity::ALL.iter().map(|a| m.service_cell(*sm, *a)).collect::<Vec<_>>()})
            })
            .collect()
    } else {
        CarMaturity::ALL
            .iter()
            .map(|cm| {
                json!({"maturity": cm.as_str(), "counts": Activity::ALL.iter().map(|a| m.car_cell(*cm, *a)).collect::<Vec<_>>()})
            })
            .collect()
    };
    Ok(axum::Json(json!({
        "axis": axis,
        "category": category.map(Category::as_str),
        "activities": activities,
        "rows": rows,
        "total": m.total(),
    }))
    .into_response())
}

fn alert_json(a: &Alert, now: Timestamp) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let sla = if a.state != AlertState::Open {
            "met"
        } else if a.escalated.is_some() {
            "escalated"
        } else if now >= a.sla_due {
            "breached"
        } else if now.as_millis() + 15 * 60_000 >= a.sla_due.as_millis() {
            "at_risk"
        } else {
            "ok"
        };
        o.insert("sla_state".into(), Value::from(sla));
    }
    v
}

/// `GET /api/v1/alerts?state=open|acknowledged|resolved|all&vin=&limit=`.
async fn alerts(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let mut state = "unresolved".to_owned();
    let mut vin = None;
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in query(raw, &["state", "vin", "limit"])? {
        match k.as_str() {
            "state"
                if ["open", "acknowledged", "resolved", "unresolved", "all"]
                    .contains(&v.as_str()) =>
            {
                state = v
            }
            "state" => {
                return Err(bad(
                    "bad_query",
                    format!("state {v:?} is not open, acknowledged, resolved, unresolved or all"),
                ));
            }
            "vin" => vin = Some(parse_vin(&v)?),
            "limit" => limit = limit_of(&v)?,
            _ => {}
        }
    }
    blocking(move || {
        let now = s.fleet.clock.now();
        let wanted = |a: &Alert| {
            let st_ok = match state.as_str() {
                "open" => a.state == AlertState::Open,
                "acknowledged" => a.state == AlertState::Acknowledged,
                "resolved" => a.state == AlertState::Resolved,
                "unresolved" => a.state != AlertState::Resolved,
                _ => true,
            };
            let who_ok = match &caller {
                Caller::Operator => true,
                Caller::Partner(p) => a.visible_to(p),
            };
            st_ok && who_ok && vin.is_none_or(|v| a.vin == v)
        };
        let mut list: Vec<Alert> =
            if state == "open" || state == "acknowledged" || state == "unresolved" {
                let f = s
                    .fleet
                    .fleet
                    .lock()
                    .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
                f.open_alerts().filter(|a| wanted(a)).cloned().collect()
            } else {
                let mut out = Vec::new();
                for a in s.fleet.keys.alerts::<Alert>() {
                    let a = a.map_err(|e| ApiError::internal(&e))?;
                    if wanted(&a) {
                        out.push(a);
                    }
                }
                out
            };
        list.sort_by_key(|a| std::cmp::Reverse(a.id));
        list.truncate(limit);
        let out: Vec<Value> = list.iter().map(|a| alert_json(a, now)).collect();
        Ok(axum::Json(json!({"alerts": out})).into_response())
    })
    .await
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        bad(
            "bad_id",
            format!(
                "{:?} is not an alert id",
                text.chars().take(32).collect::<String>()
            ),
        )
    })
}

/// `GET /api/v1/alerts/{id}`.
async fn alert(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let id = parse_id(&id)?;
    blocking(move || {
        let a = s
            .fleet
            .fleet
            .lock()
            .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?
            .alert(id)
            .map_err(fleet_error)?;
        match a {
            Some(a)
                if matches!(&caller, Caller::Operator)
                    || matches!(&caller, Caller::Partner(p) if a.visible_to(p)) =>
            {
                Ok(axum::Json(alert_json(&a, s.fleet.clock.now())).into_response())
            }
            _ => Err(fleet_error(FleetError::UnknownAlert(id))),
        }
    })
    .await
}

async fn transition(
    s: Arc<Shared>,
    headers: HeaderMap,
    id: String,
    resolve: bool,
) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let id = parse_id(&id)?;
    let partner = match caller {
        Caller::Operator => None,
        Caller::Partner(p) => Some(p),
    };
    let now_clock = Arc::clone(&s.fleet.clock);
    let alert = s
        .fleet
        .commit(&s.client, move |fleet, batch, now| {
            let a = if resolve {
                fleet.resolve(id, partner.as_deref(), now, batch)?
            } else {
                fleet.acknowledge(id, partner.as_deref(), now, batch)?
            };
            Ok((a, crate::fleet::core::Effects::default()))
        })
        .await
        .map_err(fleet_error)?;
    Ok(axum::Json(alert_json(&alert, now_clock.now())).into_response())
}

/// `POST /api/v1/alerts/{id}/acknowledge`.
async fn acknowledge(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    transition(s, headers, id, false).await
}

/// `POST /api/v1/alerts/{id}/resolve`.
async fn resolve(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    transition(s, headers, id, true).await
}

/// `GET /api/v1/partners`: all (operator) or itself (partner); never secrets or token hashes.
async fn partners(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = caller(&s, &headers)?;
    let f = s
        .fleet
        .fleet
        .lock()
        .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
    let list: Vec<Value> = f
        .directory()
        .iter()
        .filter(|p| match &caller {
            Caller::Operator => true,
            Caller::Partner(id) => &p.id == id,
        })
        .map(|p: &Partner| serde_json::to_value(p.summary()).unwrap_or(Value::Null))
        .collect();
    let fallback = f.directory().fallback().map(|p| p.id.clone());
    Ok(axum::Json(json!({"partners": list, "fallback": fallback})).into_response())
}

/// `PUT /api/v1/partners/{id}` (operator): add or replace; the body is a `[[partner]]`
/// entry as JSON (with `token`: only its hash is kept; `token_env` is refused, so a request
/// cannot probe the daemon's environment).
async fn put_partner(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let cfg: PartnerConfig = json_body(&headers, &body)?;
    if cfg.id != id {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            format!("id: {:?} is not the id in the path ({id:?})", cfg.id),
        ));
    }
    let partner = cfg
        .resolve("partner", &|v| std::env::var(v).ok())
        .map_err(|problems| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_body",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    {
        let mut f = s
            .fleet
            .fleet
            .lock()
            .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
        f.directory_mut()
            .upsert(partner.clone())
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()))?;
    }
    s.fleet
        .keys
        .put_partner(&partner.id, &partner)
        .map_err(|e| ApiError::internal(&e))?;
    s.store.flush().map_err(|e| ApiError::internal(&e))?;
    s.fleet.refresh_endpoints();
    Ok(axum::Json(serde_json::to_value(partner.summary()).unwrap_or(Value::Null)).into_response())
}

/// `DELETE /api/v1/partners/{id}` (operator).
async fn delete_partner(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    {
        let mut f = s
            .fleet
            .fleet
            .lock()
            .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
        f.directory_mut().remove(&id).map_err(|e| match e {
            crate::fleet::partners::DirectoryError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_partner", e.to_string())
            }
            other => ApiError::new(StatusCode::CONFLICT, "conflict", other.to_string()),
        })?;
    }
    s.fleet
        .keys
        .remove_partner(&id)
        .map_err(|e| ApiError::internal(&e))?;
    s.store.flush().map_err(|e| ApiError::internal(&e))?;
    s.fleet.refresh_endpoints();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of `POST /api/v1/campaigns`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignBody {
    id: String,
    title: String,
    text: String,
    #[serde(default)]
    priority: Option<String>,
    valid_days: u32,
    /// Cell: lists per axis (absent: any).
    #[serde(default)]
    cell: std::collections::BTreeMap<String, Vec<String>>,
}

/// `POST /api/v1/campaigns` (operator): sends a campaign to every driver of a cell who may
/// get it (consent, cadence and caps hold for operators too).
async fn campaign(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let b: CampaignBody = json_body(&headers, &body)?;
    let unprocessable = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_body", m);
    if b.id.is_empty() || b.id.len() > 64 || b.title.is_empty() || b.text.is_empty() {
        return Err(unprocessable(
            "id (1-64 chars), title and text must not be empty".into(),
        ));
    }
    if !(1..=365).contains(&b.valid_days) {
        return Err(unprocessable(format!(
            "valid_days: {} is not 1..=365",
            b.valid_days
        )));
    }
    let priority = match b.priority.as_deref() {
        None | Some("normal") => Priority::Normal,
        Some("low") => Priority::Low,
        Some("high") => Priority::High,
        Some(p) => {
            return Err(unprocessable(format!(
                "priority: {p:?} is not low, normal or high"
            )));
        }
    };
    let mut filter = CellFilter::default();
    for (k, v) in &b.cell {
        if !filter
            .set(k, &v.join(","))
            .map_err(|e| unprocessable(format!("cell.{k}: {}", e.message)))?
        {
            return Err(unprocessable(format!(
                "cell.{k}: not an axis (category, car, service, activity, lifecycle)"
            )));
        }
    }
    let now = s.fleet.clock.now();
    let c = Campaign {
        campaign_id: b.id.clone(),
        title: b.title,
        text: b.text,
        priority,
        valid_from: now,
        valid_until: now.saturating_add(std::time::Duration::from_millis(
            u64::from(b.valid_days) * DAY_MS,
        )),
        target: CampaignTarget::default(),
    };
    let (sent, held) = s
        .fleet
        .commit(&s.client, move |fleet, batch, now| {
            let (fx, sent, held) = fleet.campaign_to_cell(&c, |l| filter.matches(l), now, batch)?;
            Ok(((sent, held), fx))
        })
        .await
        .map_err(fleet_error)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"campaign": b.id, "sent": sent, "held_back": held})),
    )
        .into_response())
}

/// `GET /api/v1/dead-letters?after=&limit=` (operator).
async fn dead_letters(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let mut after = None;
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in query(raw, &["after", "limit"])? {
        match k.as_str() {
            "after" => after = Some(v),
            "limit" => limit = limit_of(&v)?,
            _ => {}
        }
    }
    blocking(move || {
        let f = s
            .fleet
            .fleet
            .lock()
            .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
        let list = f
            .outbox()
            .dead_letters(after.as_deref(), limit)
            .map_err(|e| ApiError::internal(&e))?;
        let out: Vec<Value> = list
            .iter()
            .map(|d| {
                json!({
                    "id": d.message.id,
                    "partner": d.message.partner,
                    "type": d.message.event_type,
                    "attempts": d.message.attempts,
                    "created_at": d.message.created_at.as_millis(),
                    "dead_at": d.dead_at.as_millis(),
                    "reason": format!("{:?}", d.reason),
                    "last_error": d.message.last_error,
                })
            })
            .collect();
        Ok(axum::Json(json!({"dead_letters": out})).into_response())
    })
    .await
}

/// `POST /api/v1/dead-letters/{id}/redrive` (operator): back to the outbox, same id.
async fn redrive(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller(&s, &headers)?.operator()?;
    let s2 = Arc::clone(&s);
    let msg = blocking(move || {
        let now = s2.fleet.clock.now();
        let f = s2
            .fleet
            .fleet
            .lock()
            .map_err(|_| ApiError::internal(&"fleet lock poisoned"))?;
        let m = f.outbox().redrive(&id, now).map_err(|e| match e {
            crate::webhook::outbox::OutboxError::NotDead { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_dead_letter", e.to_string())
            }
            other => ApiError::internal(&other),
        })?;
        s2.store.flush().map_err(|e| ApiError::internal(&e))?;
        Ok(m)
    })
    .await?;
    s.fleet.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(
            json!({"id": msg.id, "partner": msg.partner, "next_at": msg.next_at.as_millis()}),
        ),
    )
        .into_response())
}
