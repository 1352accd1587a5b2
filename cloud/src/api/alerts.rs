//! Alerts: the list, one alert, and its acknowledgement and resolution.
//!
//! - `GET /api/v1/alerts?state=open|acknowledged|resolved|unresolved|all&vin=&limit=`
//!   (default `unresolved`), newest first;
//! - `GET /api/v1/alerts/{id}`;
//! - `POST /api/v1/alerts/{id}/acknowledge`, `POST /api/v1/alerts/{id}/resolve`;
//! - `POST /api/v1/alerts/{id}/stage` (a stage move: `docs/service-promise.md`);
//! - `GET /api/v1/promises?from=&to=` (the promise-kept share per partner and stage).
//!
//! The operator sees and changes every alert, a partner the alerts it was sent (as the
//! recipient or the escalation target); any other answers 404 `unknown_alert`. Every alert
//! reads as stored, with what the cloud's clock says of it ([`AlertView`]: `sla_state`,
//! `age_ms`, `sla_remaining_ms`, `holder`, `answered_at`), and every answer carries the
//! cloud's `now` (unix ms): a page shows ages and SLA times from these, never from its own
//! clock (the cloud may run on simulated time). Owns these routes' queries and views. Does
//! not own the lifecycle's rules ([`crate::fleet::alerts`]).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use rapport_shared::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{AlertId, Limit, Query, parse_vin};
use super::state::{Shared, blocking};
use super::vehicles::DEFAULT_LIMIT;
use super::views::ok;
use axum::body::Bytes;
use serde_json::Value;

use crate::fleet::alerts::stages::{PartnerTally, Tally, shares};
use crate::fleet::alerts::{Alert, AlertState, SlaState, Stage, StageMove};
use crate::fleet::core::FleetError;
use crate::store::Transition;

/// The alert routes, each with its OpenAPI operation ([`super::openapi`]).
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(acknowledge))
        .routes(routes!(resolve))
        .routes(routes!(stage))
        .routes(routes!(promises))
}

/// An alert as stored, and how it stands at the cloud's `now`.
#[derive(Serialize, ToSchema)]
pub struct AlertView<'a> {
    /// The alert's fields.
    #[serde(flatten)]
    pub alert: &'a Alert,
    /// Open: `ok`, `at_risk`, `breached` or `escalated`; answered: `met` (before its SLA
    /// ended, never escalated) or `late` ([`Alert::sla_state`]).
    pub sla_state: SlaState,
    /// Milliseconds since it was raised, by the cloud's clock.
    pub age_ms: u64,
    /// While open, milliseconds until `sla_due` (negative past it); null once answered.
    pub sla_remaining_ms: Option<i64>,
    /// When it was answered (acknowledged, or resolved without an acknowledgement), or null.
    pub answered_at: Option<Timestamp>,
    /// The partner it is with ([`Alert::holder`]).
    pub holder: &'a str,
    /// The stage it is in.
    pub stage: Stage,
    /// Its move counter (1: raised).
    pub step: u32,
    /// The running promise, or null.
    pub promise: Option<RunningView>,
}

/// The running promise of an alert: its stage, due time and what is left at `now`.
#[derive(Serialize, ToSchema)]
pub struct RunningView {
    /// The promised stage.
    pub stage: Stage,
    /// Due at, ms.
    pub due: Timestamp,
    /// Milliseconds until due at the cloud's `now` (negative past it).
    pub remaining_ms: i64,
}

/// `due - now` in ms, saturating.
pub fn remaining(due: Timestamp, now: Timestamp) -> i64 {
    let d = i128::from(due.as_millis()) - i128::from(now.as_millis());
    i64::try_from(d).unwrap_or(if d > 0 { i64::MAX } else { i64::MIN })
}

impl<'a> AlertView<'a> {
    /// The view of `alert` at `now`.
    pub fn new(alert: &'a Alert, now: Timestamp) -> Self {
        Self {
            alert,
            sla_state: alert.sla_state(now),
            age_ms: u64::try_from(alert.age(now).as_millis()).unwrap_or(u64::MAX),
            sla_remaining_ms: alert.sla_remaining_ms(now),
            answered_at: alert.answered_at(),
            holder: alert.holder(),
            stage: alert.stage(),
            step: alert.step(),
            promise: alert.running().map(|p| RunningView {
                stage: p.stage,
                due: p.due,
                remaining_ms: remaining(p.due, now),
            }),
        }
    }
}

/// One alert's answer: its view and the cloud's `now`.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertAnswer)]
struct OneView<'a> {
    #[serde(flatten)]
    view: AlertView<'a>,
    /// The cloud's clock, unix ms.
    now: Timestamp,
}

impl<'a> OneView<'a> {
    fn new(alert: &'a Alert, now: Timestamp) -> Self {
        Self {
            view: AlertView::new(alert, now),
            now,
        }
    }
}

/// Which alerts a list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum StateFilter {
    Open,
    Acknowledged,
    Resolved,
    /// Open or acknowledged.
    #[default]
    Unresolved,
    All,
}

impl StateFilter {
    fn admits(self, state: AlertState) -> bool {
        match self {
            Self::Open => state == AlertState::Open,
            Self::Acknowledged => state == AlertState::Acknowledged,
            Self::Resolved => state == AlertState::Resolved,
            Self::Unresolved => state != AlertState::Resolved,
            Self::All => true,
        }
    }

    /// Whether every alert it admits is in the fleet's memory (unresolved ones are).
    fn unresolved_only(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged | Self::Unresolved)
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    /// Which alerts (default `unresolved`: open or acknowledged).
    #[param(value_type = Option<StateFilter>, inline)]
    state: StateFilter,
    /// Only this vehicle's.
    vin: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<Limit>,
}

/// `{"alerts": [...], "now": ms}`.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertList)]
struct ListView<'a> {
    alerts: Vec<AlertView<'a>>,
    /// The cloud's clock, unix ms: what every alert's age and SLA times were read at.
    now: Timestamp,
}

/// The alerts the caller may see, newest first.
#[utoipa::path(operation_id = "listAlerts", get, path = "/api/v1/alerts", tag = "alerts", params(ListQuery),
    responses(
        (status = 200, description = "The alerts and the cloud's `now`.", body = ListView),
        (status = 400, description = "`bad_query`, `bad_vin`.", body = ErrorBody),
    ))]
async fn list(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let vin = q.vin.as_deref().map(parse_vin).transpose()?;
    let limit = Limit::or(q.limit, DEFAULT_LIMIT);
    blocking(move || {
        let now = s.fleet.clock.now();
        let wanted = |a: &Alert| {
            let who_ok = match &caller {
                Caller::Operator => true,
                Caller::Partner(p) => a.visible_to(p),
            };
            q.state.admits(a.state) && who_ok && vin.is_none_or(|v| a.vin == v)
        };
        let mut list: Vec<Alert> = s
            .store
            .alerts(q.state.unresolved_only(), vin.as_ref())?
            .into_iter()
            .filter(|a| wanted(a))
            .collect();
        // A partner sees only alerts of each car's current owner (`fleet::owner`).
        if let Caller::Partner(_) = &caller {
            let mut since = std::collections::HashMap::new();
            let mut kept = Vec::with_capacity(list.len());
            for a in list {
                let s_of = match since.get(&a.vin) {
                    Some(t) => *t,
                    None => {
                        let t = s.fleet.owner_since(&a.vin)?;
                        since.insert(a.vin, t);
                        t
                    }
                };
                if crate::fleet::owner::alert_of_current_owner(&a, s_of) {
                    kept.push(a);
                }
            }
            list = kept;
        }
        list.sort_by_key(|a| std::cmp::Reverse(a.id));
        list.truncate(limit);
        ok(&ListView {
            alerts: list.iter().map(|a| AlertView::new(a, now)).collect(),
            now,
        })
    })
    .await
}

/// One alert.
#[utoipa::path(operation_id = "getAlert", get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = u64, Path, description = "The alert's id.")),
    responses(
        (status = 200, description = "The alert and the cloud's `now`.", body = OneView),
        (status = 400, description = "`bad_id`.", body = ErrorBody),
        (status = 404, description = "`unknown_alert`: none, or not the caller's.", body = ErrorBody),
    ))]
async fn one(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    AlertId(id): AlertId,
) -> Result<Response, ApiError> {
    blocking(move || {
        let alert = s.store.alert(id)?;
        match alert {
            Some(a)
                if matches!(&caller, Caller::Operator)
                    || (matches!(&caller, Caller::Partner(p) if a.visible_to(p))
                        && crate::fleet::owner::alert_of_current_owner(
                            &a,
                            s.fleet.owner_since(&a.vin)?,
                        )) =>
            {
                ok(&OneView::new(&a, s.fleet.clock.now()))
            }
            _ => Err(FleetError::UnknownAlert(id).into()),
        }
    })
    .await
}

/// Acknowledges or resolves, for the caller (a partner: only an alert it was sent).
async fn transition(
    s: Arc<Shared>,
    caller: Caller,
    id: u64,
    what: Transition,
) -> Result<Response, ApiError> {
    let partner = match caller {
        Caller::Operator => None,
        Caller::Partner(p) => Some(p),
    };
    let alert = s
        .fleet
        .change(&s.client, move |store, rules, now| {
            store.transition(rules, id, partner.as_deref(), what, now)
        })
        .await?;
    ok(&OneView::new(&alert, s.fleet.clock.now()))
}

/// Acknowledges an alert (a partner: only one it was sent).
#[utoipa::path(operation_id = "acknowledgeAlert", post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = u64, Path, description = "The alert's id.")),
    responses(
        (status = 200, description = "The alert after the change.", body = OneView),
        (status = 400, description = "`bad_id`.", body = ErrorBody),
        (status = 404, description = "`unknown_alert`: none, or not the caller's.", body = ErrorBody),
        (status = 409, description = "`conflict`: the alert's state does not allow it.", body = ErrorBody),
    ))]
async fn acknowledge(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    AlertId(id): AlertId,
) -> Result<Response, ApiError> {
    transition(s, caller, id, Transition::Acknowledge).await
}

/// Resolves an alert (a partner: only one it was sent).
#[utoipa::path(operation_id = "resolveAlert", post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = u64, Path, description = "The alert's id.")),
    responses(
        (status = 200, description = "The alert after the change.", body = OneView),
        (status = 400, description = "`bad_id`.", body = ErrorBody),
        (status = 404, description = "`unknown_alert`: none, or not the caller's.", body = ErrorBody),
        (status = 409, description = "`conflict`: the alert's state does not allow it.", body = ErrorBody),
    ))]
async fn resolve(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    AlertId(id): AlertId,
) -> Result<Response, ApiError> {
    transition(s, caller, id, Transition::Resolve).await
}

/// A stage move's body, read by hand so that a malformed `eta` is 422 `invalid_eta` and
/// anything not JSON (or not an object, or without a `stage` text) is 400 `bad_request`.
fn stage_move(body: &[u8]) -> Result<StageMove, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad("bad_request", e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad(
            "bad_request",
            "the body is not a JSON object",
        ));
    };
    for k in fields.keys() {
        if !["stage", "advisor", "eta", "note"].contains(&k.as_str()) {
            return Err(ApiError::bad(
                "bad_request",
                format!("unknown field {k:?}: expected stage, advisor, eta, note"),
            ));
        }
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match fields.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => Ok(Some(t.clone())),
            Some(_) => Err(ApiError::bad("bad_request", format!("{k} must be text"))),
        }
    };
    let stage = text("stage")?.ok_or_else(|| ApiError::bad("bad_request", "stage is required"))?;
    let eta = match fields.get("eta") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().map(Timestamp::from_millis).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_eta",
                format!("eta {v} is not a time: milliseconds since the epoch, a whole number"),
            )
        })?),
    };
    Ok(StageMove {
        stage,
        advisor: text("advisor")?,
        eta,
        note: text("note")?,
    })
}

/// Moves an alert to a stage (a partner it was sent to, or the operator): the next stage on
/// its path, `resolved` from any open stage, `cancelled` (operator only); a repeat with the
/// same fields changes nothing, a repeat of dispatched or booked with another `eta` is a
/// revision (`docs/service-promise.md`).
#[utoipa::path(operation_id = "moveAlertStage", post, path = "/api/v1/alerts/{id}/stage", tag = "alerts", params(("id" = u64, Path, description = "The alert's id.")),
    request_body(content = StageMove, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert after the move (unchanged for a repeat).", body = OneView),
        (status = 400, description = "`bad_id`, `bad_request` (not JSON, not an object, no `stage`, an unknown field).", body = ErrorBody),
        (status = 403, description = "`cancel_not_allowed`: only the driver or the operator cancels.", body = ErrorBody),
        (status = 404, description = "`unknown_alert`: none, or not the caller's.", body = ErrorBody),
        (status = 409, description = "`stage_skipped`, `stage_backwards`, `alert_closed`; nothing changed.", body = ErrorBody),
        (status = 422, description = "`stage_not_on_path`, `advisor_required`, `invalid_eta`, `invalid_note`; nothing changed.", body = ErrorBody),
    ))]
async fn stage(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    AlertId(id): AlertId,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mv = stage_move(&body)?;
    transition(s, caller, id, Transition::Stage(mv)).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
struct WindowQuery {
    /// From (ms, included); default: 30 days before `to`.
    from: Option<u64>,
    /// To (ms, included); default: the cloud's now.
    to: Option<u64>,
}

/// `{"from","to","partners":[...]}`.
#[derive(Serialize, ToSchema)]
#[schema(as = PromiseShares)]
struct SharesView {
    from: Timestamp,
    to: Timestamp,
    partners: Vec<PartnerTally>,
}

/// The window of the promise-kept share: `[from, to)`, 30 days before now by default.
pub const SHARE_WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The promise-kept share per partner and per stage over a window: each promise counted
/// when it settled in it (kept: when its stage was reached; missed: at its due), for the
/// partner holding the alert when its clock started. The operator sees every partner, a
/// partner its own row only.
#[utoipa::path(operation_id = "promiseShares", get, path = "/api/v1/promises", tag = "alerts", params(WindowQuery),
    responses(
        (status = 200, description = "The window and each partner's kept and missed promises.", body = SharesView),
        (status = 400, description = "`bad_query`: not numbers, or `from` after `to`.", body = ErrorBody),
    ))]
async fn promises(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    Query(q): Query<WindowQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let now = s.fleet.clock.now();
        let to = q.to.map_or(now, Timestamp::from_millis);
        let from = q.from.map_or_else(
            || Timestamp::from_millis(to.as_millis().saturating_sub(ms(SHARE_WINDOW))),
            Timestamp::from_millis,
        );
        if from > to {
            return Err(ApiError::bad(
                "bad_query",
                format!("from {} is after to {}", from.as_millis(), to.as_millis()),
            ));
        }
        let alerts = s.store.alerts(false, None)?;
        let mut partners = shares(&alerts, from, to, now);
        if let Caller::Partner(p) = &caller {
            partners.retain(|t| &t.partner == p);
            if partners.is_empty() {
                partners.push(PartnerTally {
                    partner: p.clone(),
                    tally: Tally::default(),
                    stages: Vec::new(),
                });
            }
        }
        ok(&SharesView { from, to, partners })
    })
    .await
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
