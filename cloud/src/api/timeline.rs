//! A vehicle's timeline and its readings.
//!
//! - `GET /api/v1/vehicles/{vin}/timeline?kind=&fold=readings&before=&limit=`: the cloud's
//!   entries (layers, strategies, alerts, registry) and the car's records (readings, faults,
//!   maintenance, prompts, consents), oldest first: the newest `limit` (default 500, at most
//!   1000) below the cursor `before` (the previous page's `next_before`), of the kinds in
//!   `kind` (a comma list; absent: all; an unknown kind is 400 `bad_query` naming every kind).
//!   `fold=readings` answers each run of two or more readings as one entry of kind
//!   `readings` ([`RunView`]). `next_before` is null on the last page. See
//!   [`crate::timeline`] for the order, the cursor and folding.
//! - `GET /api/v1/vehicles/{vin}/readings?since=&until=&max_points=`: the odometer (km) and
//!   engine hours (h) as `[at_ms, value]` points, at most `max_points` (default 200, 2 to
//!   2000) per series however many readings there are ([`crate::timeline::readings`]).
//!
//! Who may see them is who may see the vehicle ([`super::vehicles`]). Owns these routes'
//! queries and views. Does not own reading or merging the logs ([`crate::timeline`]).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rapport_shared::{Odometer, Timestamp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{CommaList, Limit, Query, VinPath};
use super::state::{Shared, blocking};
use super::vehicles::{unknown_vehicle, visible};
use super::views::{RecordView, ok};
use crate::fleet::store::Stamped;
use crate::timeline::readings::{self, MAX_POINTS, Point, Series};
use crate::timeline::{Cursor, Entry, Kind, KindSet, read_page};

/// A timeline's entries when the query names no limit.
pub const DEFAULT_TIMELINE: usize = 500;
/// A readings series' points when the query names no `max_points`.
pub const DEFAULT_POINTS: usize = 200;

/// The timeline routes, each with its OpenAPI operation ([`super::openapi`]).
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(timeline))
        .routes(routes!(readings))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct TimelineQuery {
    /// The page size, 1 to 1000 (default 500).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<Limit>,
    /// The kinds to keep, comma-separated (absent: all; an unknown kind is 400 naming every
    /// kind).
    #[param(value_type = Option<String>)]
    kind: CommaList<Kind>,
    /// What to fold (absent: nothing).
    #[param(value_type = Option<Fold>, inline)]
    fold: Option<Fold>,
    /// The previous page's `next_before`.
    #[param(value_type = Option<String>)]
    before: Option<CursorParam>,
}

/// What a timeline page may fold.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Fold {
    /// Runs of readings.
    Readings,
}

/// A cursor in a query.
#[derive(Debug)]
struct CursorParam(Cursor);

impl<'de> Deserialize<'de> for CursorParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map(Self).map_err(D::Error::custom)
    }
}

/// `{"vin": ..., "entries": [...], "next_before": cursor or null}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Timeline)]
struct TimelineView {
    vin: String,
    entries: Vec<TimelineItem>,
    /// The cursor of the next (older) page; null on the last.
    next_before: Option<String>,
}

/// One entry: the fleet's (`"source": "cloud"`) or one of the car's records
/// (`"source": "car"`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum TimelineItem {
    Cloud {
        #[serde(flatten)]
        entry: Stamped,
        source: &'static str,
    },
    Car {
        #[serde(flatten)]
        record: RecordView,
        source: &'static str,
        #[schema(value_type = u64)]
        at: Timestamp,
    },
    Readings(RunView),
}

/// A run of readings, folded (`fold=readings`): `{"kind": "readings", "source": "car", "at":
/// <the newest's time>, "first_at", "count", "odometer", "engine_hours", "first_seq",
/// "last_seq", "odometer_km": {"from", "to"} or null}`. Its readings are the page
/// `?kind=odometer,engine_hours&before=<last_seq + 1>.-&limit=<count>`.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    kind: &'static str,
    source: &'static str,
    /// The newest reading's time.
    at: Timestamp,
    /// The oldest reading's time.
    first_at: Timestamp,
    count: u64,
    /// Odometer readings among them.
    odometer: u64,
    /// Engine-hours readings among them.
    engine_hours: u64,
    /// The oldest reading's seq.
    first_seq: u64,
    /// The newest reading's seq.
    last_seq: u64,
    /// The odometer at the oldest and the newest odometer reading, km.
    odometer_km: Option<KmRange>,
}

/// From one odometer reading to another, km.
#[derive(Serialize, ToSchema)]
struct KmRange {
    from: f64,
    to: f64,
}

impl From<Entry> for TimelineItem {
    fn from(e: Entry) -> Self {
        match e {
            Entry::Cloud(entry) => Self::Cloud {
                entry,
                source: "cloud",
            },
            Entry::Car(r) => Self::Car {
                record: RecordView::new(&r),
                source: "car",
                at: r.at,
            },
            Entry::Readings(run) => Self::Readings(RunView {
                kind: "readings",
                source: "car",
                at: run.newest.at,
                first_at: run.oldest_at,
                count: run.count(),
                odometer: run.odometer,
                engine_hours: run.engine_hours,
                first_seq: run.oldest_seq,
                last_seq: run.newest.seq,
                odometer_km: run.odometer_m.map(|(from, to)| KmRange {
                    from: Odometer::from_meters(from).km(),
                    to: Odometer::from_meters(to).km(),
                }),
            }),
        }
    }
}

/// A vehicle's timeline: the cloud's entries and the car's records, oldest first, paged
/// backwards by `before`.
#[utoipa::path(operation_id = "getTimeline", get, path = "/api/v1/vehicles/{vin}/timeline", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$"), TimelineQuery),
    responses(
        (status = 200, description = "A page of the timeline.", body = TimelineView),
        (status = 400, description = "`bad_vin`, `bad_query`.", body = ErrorBody),
        (status = 404, description = "`unknown_vehicle`: not the caller's.", body = ErrorBody),
    ))]
async fn timeline(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    VinPath(vin): VinPath,
    Query(q): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let limit = Limit::or(q.limit, DEFAULT_TIMELINE);
    let kinds = KindSet::of(q.kind.0);
    let from = q.before.map(|c| c.0).unwrap_or_default();
    let fold = matches!(q.fold, Some(Fold::Readings));
    blocking(move || {
        if !visible(&s, &caller, &vin)? {
            return Err(unknown_vehicle(&vin));
        }
        let mut page = read_page(&s.store, &vin, kinds, fold, from, limit)?;
        // A partner sees only the current owner's relationship (`fleet::owner`).
        if let Caller::Partner(_) = &caller
            && let Some(since) = s.fleet.owner_since(&vin)?
        {
            page.entries
                .retain(|e| crate::fleet::owner::partner_sees_entry(e, Some(since)));
        }
        ok(&TimelineView {
            vin: vin.to_string(),
            entries: page.entries.into_iter().map(TimelineItem::from).collect(),
            next_before: page.next.map(|c| c.to_string()),
        })
    })
    .await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct ReadingsQuery {
    /// From this time, unix ms (absent: the first reading).
    #[param(value_type = Option<u64>)]
    since: Option<Millis>,
    /// Up to this time, unix ms (absent: the last reading).
    #[param(value_type = Option<u64>)]
    until: Option<Millis>,
    /// Most points per series, 2 to 2000 (default 200).
    #[param(value_type = Option<u32>, minimum = 2, maximum = 2000)]
    max_points: Option<MaxPoints>,
}

/// A time in a query: unix ms.
#[derive(Clone, Copy, Debug)]
struct Millis(Timestamp);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<u64>()
            .map(|ms| Self(Timestamp::from_millis(ms)))
            .map_err(|_| D::Error::custom(format!("{text:?} is not a time in unix milliseconds")))
    }
}

/// How many points a series may have at most.
#[derive(Clone, Copy, Debug)]
struct MaxPoints(usize);

impl<'de> Deserialize<'de> for MaxPoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse::<usize>() {
            Ok(n) if MAX_POINTS.contains(&n) => Ok(Self(n)),
            _ => Err(D::Error::custom(format!(
                "{text:?} is not a number from {} to {}",
                MAX_POINTS.start(),
                MAX_POINTS.end()
            ))),
        }
    }
}

/// `GET /api/v1/vehicles/{vin}/readings`.
#[derive(Serialize, ToSchema)]
#[schema(as = Readings)]
struct ReadingsView {
    vin: String,
    /// The range asked for (null: open).
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    max_points: usize,
    /// Whether every record was read (else the series start at the newest 500,000).
    complete: bool,
    odometer: SeriesView,
    engine_hours: SeriesView,
}

/// One series: `{"unit": "km", "count": 2500, "points": [[at_ms, value], ...]}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Series)]
struct SeriesView {
    unit: &'static str,
    /// Readings in the range (the points are at most `max_points` of them).
    count: usize,
    /// `[at_ms, value]` pairs.
    #[schema(value_type = Vec<Vec<f64>>)]
    points: Vec<Point>,
}

impl SeriesView {
    fn new(unit: &'static str, s: Series) -> Self {
        Self {
            unit,
            count: s.count,
            points: s.points,
        }
    }
}

/// A vehicle's odometer (km) and engine hours (h) as `[at_ms, value]` points for a chart.
#[utoipa::path(operation_id = "getReadings", get, path = "/api/v1/vehicles/{vin}/readings", tag = "vehicles",
    params(("vin" = String, Path, description = "The VIN: 17 characters, letters (not I, O, Q) and digits.", pattern = "^[A-HJ-NPR-Z0-9]{17}$"), ReadingsQuery),
    responses(
        (status = 200, description = "The two series.", body = ReadingsView),
        (status = 400, description = "`bad_vin`, `bad_query` (also `until` before `since`).", body = ErrorBody),
        (status = 404, description = "`unknown_vehicle`: not the caller's.", body = ErrorBody),
    ))]
async fn readings(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    VinPath(vin): VinPath,
    Query(q): Query<ReadingsQuery>,
) -> Result<Response, ApiError> {
    let since = q.since.map(|m| m.0);
    let until = q.until.map(|m| m.0);
    if let (Some(a), Some(b)) = (since, until)
        && b < a
    {
        return Err(ApiError::bad("bad_query", "until: before since"));
    }
    let max_points = q.max_points.map_or(DEFAULT_POINTS, |m| m.0);
    blocking(move || {
        if !visible(&s, &caller, &vin)? {
            return Err(unknown_vehicle(&vin));
        }
        let r = readings::read(&s.store, &vin, since, until, max_points)?;
        ok(&ReadingsView {
            vin: vin.to_string(),
            since,
            until,
            max_points,
            complete: r.complete,
            odometer: SeriesView::new("km", r.odometer),
            engine_hours: SeriesView::new("h", r.engine_hours),
        })
    })
    .await
}
