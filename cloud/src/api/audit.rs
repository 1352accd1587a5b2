//! The audit log's HTTP side: the middleware that writes one entry per `/api/v1` request, the
//! operator's `GET /api/v1/audit?vin=&partner=&since=&before=&limit=`, and the pruning loop.
//!
//! The middleware is layered on the whole router ([`super::router`]), so every route,
//! including routes added later, is audited without doing anything itself: who (operator,
//! partner id, or unknown — never the token), when (the cloud's clock), the VIN (the path's
//! `{vin}`, the vehicle of the alert in an `/api/v1/alerts/{id}` path, or a list's `?vin=`),
//! the method and route template ([`MatchedPath`]; the raw path, cut short, when no route
//! matched) and the answer's status. Refused requests (401, 403, 404, 4xx) are audited too; requests refused
//! by the rate limiter (429) are not (they are counted in the metrics instead, so a flood
//! does not flood the store). The entry is written before the answer leaves; a store that
//! cannot take it is logged and counted (`rapport_api_audit_failures_total`), and the answer
//! goes out all the same.
//!
//! Owns these. Does not own the entry's shape or the retention arithmetic
//! ([`crate::audit`]), nor storing ([`crate::store::Backend::audit_append`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{Limit, Operator, Query};
use super::state::{Shared, blocking};
use super::views::ok;
use crate::audit::{AuditEntry, AuditQuery, PRUNE_BATCH, PRUNE_EVERY, Who};

/// The longest route or VIN text kept for a request that matched no route.
const MAX_TEXT: usize = 200;
/// The page size when the query names none.
const DEFAULT_LIMIT: usize = 100;

/// The audit route.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new().routes(routes!(list))
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// The middleware: one [`AuditEntry`] per `/api/v1` request (see the module doc).
pub async fn record(
    State(s): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if !(path == "/api/v1" || path.starts_with("/api/v1/")) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| cut(&path), |m| m.as_str().to_owned());
    let method = request.method().to_string();
    let caller = request
        .extensions()
        .get::<super::ratelimit::Identified>()
        .map_or_else(|| s.caller(request.headers()), |i| i.0.clone());
    let (who, partner) = match caller {
        Some(Caller::Operator) => (Who::Operator, None),
        Some(Caller::Partner(id)) => (Who::Partner, Some(id)),
        None => (Who::Unknown, None),
    };
    let (mut parts, body) = request.into_parts();
    let (vin, alert) = match RawPathParams::from_request_parts(&mut parts, &s).await {
        Ok(params) => {
            let vin = params
                .iter()
                .find(|(k, _)| *k == "vin")
                .map(|(_, v)| cut(v));
            let alert = route
                .starts_with("/api/v1/alerts/{id}")
                .then(|| params.iter().find(|(k, _)| *k == "id"))
                .flatten()
                .and_then(|(_, v)| v.parse::<u64>().ok());
            (vin, alert)
        }
        Err(_) => (None, None),
    };
    // A list narrowed to one vehicle (`?vin=`) reads that vehicle's data too.
    let vin = vin.or_else(|| {
        axum::extract::Query::<VinQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.vin)
            .map(|v| cut(&v))
    });
    let request = axum::extract::Request::from_parts(parts, body);
    let at = s.fleet.clock.now().as_millis();
    let response = next.run(request).await;
    let mut entry = AuditEntry {
        seq: 0,
        at,
        who,
        partner,
        vin,
        method,
        route,
        status: response.status().as_u16(),
    };
    let s2 = Arc::clone(&s);
    let written = tokio::task::spawn_blocking(move || {
        if let Some(id) = alert
            && entry.vin.is_none()
        {
            entry.vin = s2.store.alert(id).ok().flatten().map(|a| a.vin.to_string());
        }
        s2.store.audit_append(&entry)
    })
    .await;
    match written {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            s.metrics.audit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(cause = %e, "audit entry not written");
        }
        Err(e) => {
            s.metrics.audit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(cause = %e, "audit task failed");
        }
    }
    response
}

/// The `vin` of any route's query string, for the audit (other keys ignored).
#[derive(Deserialize)]
struct VinQuery {
    vin: Option<String>,
}

/// The query of `GET /api/v1/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only this VIN (checked: 400 `bad_query` when it is no VIN).
    pub vin: Option<String>,
    /// Only this partner id.
    pub partner: Option<String>,
    /// Only entries at or after this time, unix ms.
    pub since: Option<u64>,
    /// Only entries older than this seq (the previous page's `next`).
    pub before: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<Limit>,
}

/// One entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Its place in the log.
    pub seq: u64,
    /// When, by the cloud's clock, unix ms.
    pub at: u64,
    /// `operator`, `partner` or `unknown`.
    pub who: &'static str,
    /// The partner's id, for a partner.
    pub partner: Option<String>,
    /// The VIN concerned, if any.
    pub vin: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
    /// The answer's status.
    pub status: u16,
}

/// The answer of `GET /api/v1/audit`: newest first; `next` is the `before` of the next page
/// (null at the end).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The entries, newest first.
    pub entries: Vec<AuditView>,
    /// Pass as `before` for the next (older) page; null when this page is the last.
    pub next: Option<u64>,
}

/// `GET /api/v1/audit` (operator).
#[utoipa::path(operation_id = "listAudit", get, path = "/api/v1/audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "Audit entries, newest first, and the cursor of the next page.", body = AuditPage),
        (status = 400, description = "`bad_query`: a VIN that is no VIN, an unknown key, a bad number.", body = ErrorBody),
        (status = 403, description = "`forbidden`: operator only.", body = ErrorBody),
    ))]
pub async fn list(
    State(s): State<Arc<Shared>>,
    _: Operator,
    Query(p): Query<AuditParams>,
) -> Result<Response, ApiError> {
    if let Some(v) = &p.vin {
        super::extract::parse_vin(v).map_err(|e| ApiError::bad("bad_query", e.message))?;
    }
    let limit = Limit::or(p.limit, DEFAULT_LIMIT);
    let query = AuditQuery {
        vin: p.vin,
        partner: p.partner,
        since: p.since,
        before: p.before,
        limit,
    };
    let s2 = Arc::clone(&s);
    let entries = blocking(move || Ok(s2.store.audit_query(&query)?)).await?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    ok(&AuditPage {
        entries: entries
            .into_iter()
            .map(|e| AuditView {
                seq: e.seq,
                at: e.at,
                who: e.who.as_str(),
                partner: e.partner,
                vin: e.vin,
                method: e.method,
                route: e.route,
                status: e.status,
            })
            .collect(),
        next,
    })
}

/// One pruning pass at the cloud's `now`: entries older than `[audit] days` go, up to
/// [`PRUNE_BATCH`]; how many.
///
/// # Errors
/// The store.
pub fn prune_once(s: &Shared) -> Result<usize, crate::store::StoreError> {
    let before = s.access.audit.cutoff(s.fleet.clock.now());
    s.store.audit_prune(before, PRUNE_BATCH)
}

/// Reads the operator tokens' changes made through the API from the store (at start, and
/// every minute: another instance on a shared store may have made some).
pub async fn reload_operator_tokens(s: &Arc<Shared>) {
    let s2 = Arc::clone(s);
    match tokio::task::spawn_blocking(move || s2.store.operator_token_changes()).await {
        Ok(Ok(Some(json))) => s.access.load_changes(&json),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!(cause = %e, "operator token changes unreadable now"),
        Err(e) => tracing::warn!(cause = %e, "operator token reload task failed"),
    }
}

/// Prunes the audit log every [`PRUNE_EVERY`] of the cloud's clock (looking every minute of
/// the machine's, so a test clock that jumps is noticed), again at once after a full batch;
/// each minute also re-reads the operator tokens' changes ([`reload_operator_tokens`]).
pub async fn prune_loop(s: Arc<Shared>) {
    let mut next = s.fleet.clock.now();
    loop {
        reload_operator_tokens(&s).await;
        if s.fleet.clock.now() >= next {
            let s2 = Arc::clone(&s);
            match tokio::task::spawn_blocking(move || prune_once(&s2)).await {
                Ok(Ok(n)) if n == PRUNE_BATCH => continue,
                Ok(Ok(n)) => {
                    if n > 0 {
                        tracing::info!(removed = n, "audit log pruned");
                    }
                }
                Ok(Err(e)) => tracing::warn!(cause = %e, "audit log: cannot prune"),
                Err(e) => tracing::warn!(cause = %e, "audit prune task failed"),
            }
            next = s.fleet.clock.now().saturating_add(PRUNE_EVERY);
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}
