//! What a route takes from a request, typed and checked before it runs, each refusal a JSON
//! [`ApiError`] with its stable code:
//!
//! - [`Caller`] (401 `unauthorized`) and [`Operator`] (also 403 `forbidden` for a partner);
//! - [`VinPath`] (400 `bad_vin`) and [`AlertId`] (400 `bad_id`) from the path;
//! - [`Query`]: the query string into a typed struct (`deny_unknown_fields`), axum's
//!   URL-decoding, 400 `bad_query` for an unknown key or a bad value; [`CommaList`] and
//!   [`Limit`] for its values;
//! - [`JsonBody`]: `application/json` only (415 `unsupported_media_type`), a body that does
//!   not fit its type is 422 `bad_body` naming the field.
//!
//! axum runs a handler's extractors in the order of its arguments, so a route lists them in
//! the order its checks must answer (who calls before what they send).
//!
//! Owns these checks. Does not own the routes, nor who a token belongs to
//! ([`super::auth`], the fleet's partner directory).

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use rapport_shared::Vin;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use super::auth::{Caller, identify};
use super::error::ApiError;
use super::state::Shared;

/// The largest page any list answers.
pub const MAX_LIMIT: usize = 1000;

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, ApiError> {
        identify(&parts.headers, &s.access.operators(), |digest| {
            let rules = s.fleet.rules().ok()?;
            rules.directory.by_digest(digest).map(|p| p.id.clone())
        })
    }
}

/// The operator, and only the operator: a route of operations staff.
#[derive(Clone, Copy, Debug)]
pub struct Operator;

impl FromRequestParts<Arc<Shared>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, ApiError> {
        Caller::from_request_parts(parts, s).await?.operator()?;
        Ok(Self)
    }
}

/// A VIN, parsed.
///
/// # Errors
/// 400 `bad_vin`, quoting (the start of) the text.
pub fn parse_vin(text: &str) -> Result<Vin, ApiError> {
    text.parse::<Vin>().map_err(|e| {
        ApiError::bad(
            "bad_vin",
            format!(
                "{:?} is not a VIN: {e}",
                text.chars().take(64).collect::<String>()
            ),
        )
    })
}

/// The path's one parameter as text (its own 400 `code` when axum cannot decode it).
async fn path_text<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    code: &'static str,
) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(text)| text)
        .map_err(|e| ApiError::bad(code, e.body_text()))
}

/// The `{vin}` of a route's path.
#[derive(Clone, Copy, Debug)]
pub struct VinPath(pub Vin);

impl<S: Send + Sync> FromRequestParts<S> for VinPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let text = path_text(parts, state, "bad_vin").await?;
        parse_vin(&text).map(Self)
    }
}

/// The `{id}` of an alert route's path.
#[derive(Clone, Copy, Debug)]
pub struct AlertId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for AlertId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let text = path_text(parts, state, "bad_id").await?;
        text.parse::<u64>().map(Self).map_err(|_| {
            ApiError::bad(
                "bad_id",
                format!(
                    "{:?} is not an alert id",
                    text.chars().take(32).collect::<String>()
                ),
            )
        })
    }
}

/// The query string as `T`: axum's [`axum::extract::Query`] (URL-decoding, serde), refused
/// with 400 `bad_query` and what serde says (the key and what is wrong with it).
#[derive(Clone, Debug, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| Self(q))
            .map_err(|e| ApiError::bad("bad_query", e.body_text()))
    }
}

/// A query value that lists items separated by commas (`activity=declining,churned`), each
/// read by its `FromStr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommaList<T>(pub Vec<T>);

impl<T> Default for CommaList<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: FromStr<Err = String>> Deserialize<'de> for CommaList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.split(',')
            .map(|item| item.trim().parse::<T>())
            .collect::<Result<Vec<T>, String>>()
            .map(Self)
            .map_err(D::Error::custom)
    }
}

/// A page size: 1 to [`MAX_LIMIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub usize);

impl Limit {
    /// The size asked for, or `default`.
    pub fn or(limit: Option<Self>, default: usize) -> usize {
        limit.map_or(default, |l| l.0)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Self(n)),
            // serde names the key (`limit: ...`).
            _ => Err(D::Error::custom(format!(
                "{text:?} is not a number from 1 to {MAX_LIMIT}"
            ))),
        }
    }
}

/// A JSON body as `T`: the content type must be `application/json`.
#[derive(Clone, Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected application/json, got {content_type:?}"),
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
        let de = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let path = e.path().to_string();
            ApiError::bad_body(format!("{path}: {}", e.into_inner()))
        })
    }
}
