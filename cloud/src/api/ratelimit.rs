//! Rate limits per bearer token on every `/api/v1` route: a token bucket per caller (the
//! operator, each partner), so one misbehaving integration cannot starve the others.
//!
//! The core is sans-IO ([`super::bucket`]: a [`Bucket`] per caller in a [`Limiter`], `now`
//! passed in). The middleware ([`limit`]) reads the
//! monotonic clock ([`Limiter::monotonic_now`]: a rate is per real second, whatever the
//! cloud's own clock does), identifies the caller the way the routes do, and answers an empty bucket
//! with 429 `rate_limited`, a `Retry-After` in whole seconds (rounded up, at least 1) and the
//! stable JSON error, counted in `rapport_api_rate_limited_total{who="..."}`.
//!
//! Requests without a valid token share one bucket, `unknown` (they are all refused with 401,
//! and each is audited: the bucket keeps a flood of them from flooding the audit log). The
//! bucket of a caller is its identity's, so two tokens of one partner during a rotation share
//! one bucket.
//!
//! Owns the middleware and the 429. Does not own the bucket arithmetic ([`super::bucket`]),
//! the limits' shape ([`RateLimit`], [`crate::config::rate_limit`]) nor who a token belongs
//! to ([`super::auth`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use super::state::Shared;

pub use super::bucket::{Bucket, Limiter, retry_after_secs};
pub use crate::config::rate_limit::{MAX_PER_SECOND, RateLimit, defaults};

/// Who the limiter found a request's token to be (`None`: no valid token), left in the
/// request's extensions for the layers inside it.
#[derive(Clone, Debug)]
pub struct Identified(pub Option<Caller>);

/// The label a caller is counted under: `operator` or `partner:<id>`.
pub fn who(caller: &Caller) -> String {
    match caller {
        Caller::Operator => "operator".to_owned(),
        Caller::Partner(id) => format!("partner:{id}"),
    }
}

/// The middleware: every `/api/v1` request of a known caller takes from its bucket; an empty
/// bucket answers 429 `rate_limited` with `Retry-After`.
pub async fn limit(
    State(s): State<Arc<Shared>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !request.uri().path().starts_with("/api/v1/") && request.uri().path() != "/api/v1" {
        return next.run(request).await;
    }
    let caller = s.caller(request.headers());
    // The audit log (the next layer in) names the same caller: it reads it from here rather
    // than hashing the token against every valid one again.
    request.extensions_mut().insert(Identified(caller.clone()));
    let own = match &caller {
        Some(Caller::Partner(id)) => s
            .fleet
            .rules()
            .ok()
            .and_then(|r| r.directory.get(id).and_then(|p| p.rate_limit)),
        _ => None,
    };
    let who = caller.as_ref().map_or_else(|| "unknown".to_owned(), who);
    match s.limiter.take(&who, own, s.limiter.monotonic_now()) {
        Ok(()) => next.run(request).await,
        Err(wait_us) => {
            s.metrics.rate_limited(&who);
            let secs = retry_after_secs(wait_us);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from {who}; try again in {secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}
