//! Who is calling: bearer tokens. The operator's token sees and changes everything; a
//! partner's token sees only its own vehicles and alerts (and acknowledges/resolves its own
//! alerts). No token, or a token nobody holds: 401. A partner on an operator route: 403.
//!
//! Owns the operator's token ([`operator_token`]: the config's, its environment variable's,
//! or one made at first start and kept beside the store), reading the `Authorization` header
//! and comparing tokens in constant time (tokens are compared as SHA-256 digests, so neither
//! their length nor a prefix leaks through timing). Does not own where partner tokens are
//! kept ([`crate::fleet::partners`]).

use std::path::Path;

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Api;

/// The file beside the store's data that keeps a token the cloud made itself.
pub const TOKEN_FILE: &str = "operator-token";

/// Reads the operator token: `[api].operator_token`, the variable `operator_token_env`
/// names, or one kept in (or first written to) `<store_dir>/operator-token`, mode 0600.
///
/// # Errors
/// [`crate::Error::OperatorToken`] when the variable is unset or empty, or the file cannot be
/// used.
pub fn operator_token(api: &Api, store_dir: &Path) -> Result<String, crate::Error> {
    let fail = |m: String| crate::Error::OperatorToken(m);
    if let Some(t) = &api.operator_token {
        return Ok(t.clone());
    }
    if let Some(var) = &api.operator_token_env {
        return match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
            _ => Err(fail(format!(
                "api.operator_token_env names {var}, which is unset or empty"
            ))),
        };
    }
    let path = store_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_owned()),
        Ok(_) | Err(_) => {}
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| fail(format!("no randomness: {e}")))?;
    let token = rapport_shared::hex::encode(&bytes);
    write_private(&path, &token)
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
    tracing::warn!(path = %path.display(), "no operator token configured: one was made and saved here");
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Operations staff: everything.
    Operator,
    /// A partner, by id: its own vehicles and alerts.
    Partner(String),
}

impl Caller {
    /// The operator only.
    ///
    /// # Errors
    /// 403 `forbidden` for a partner.
    pub fn operator(&self) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            Self::Partner(id) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("partner {id:?} may not use this route (operator only)"),
            )),
        }
    }
}

/// The SHA-256 digest of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether two digests are equal, in constant time.
pub fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// The bearer token of a request.
///
/// # Errors
/// 401 `unauthorized` when there is none or the header is malformed.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("no Authorization header (Bearer token expected)"))?;
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("the Authorization header is not a Bearer token"))?
        .trim();
    if token.is_empty() {
        return Err(unauthorized("empty Bearer token"));
    }
    Ok(token)
}

/// Identifies the caller: the operator's digest first, then `partner(digest)`.
///
/// # Errors
/// 401 `unauthorized`.
pub fn identify(
    headers: &HeaderMap,
    operator: &[u8; 32],
    partner: impl FnOnce(&[u8; 32]) -> Option<String>,
) -> Result<Caller, ApiError> {
    let token = bearer(headers)?;
    let d = digest(token);
    if same(&d, operator) {
        return Ok(Caller::Operator);
    }
    partner(&d).map(Caller::Partner).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the Bearer token is not valid",
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::HeaderValue;

    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn operator_partner_and_refusals() {
        let op = digest("op-secret");
        let partner_digest = digest("dealer-secret");
        let lookup = |d: &[u8; 32]| same(d, &partner_digest).then(|| "dealer-1".to_string());
        assert_eq!(
            identify(&headers("Bearer op-secret"), &op, lookup).unwrap(),
            Caller::Operator
        );
        assert_eq!(
            identify(&headers("Bearer dealer-secret"), &op, lookup).unwrap(),
            Caller::Partner("dealer-1".into())
        );
        for bad in ["Bearer nope", "Basic b3A6eA==", "Bearer ", "op-secret"] {
            let e = identify(&headers(bad), &op, lookup).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{bad}"
            );
        }
        let e = identify(&HeaderMap::new(), &op, lookup).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let e = Caller::Partner("dealer-1".into()).operator().unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, "forbidden"));
    }
}
