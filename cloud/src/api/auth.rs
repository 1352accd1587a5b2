//! Who is calling: bearer tokens. The operator's token sees and changes everything; a
//! partner's token sees only its own vehicles and alerts (and acknowledges/resolves its own
//! alerts). No token, or a token nobody holds: 401. A partner on an operator route: 403.
//!
//! Owns the operator's token ([`operator_token`]: the config's, its environment variable's,
//! or one made at first start and kept beside the store; [`previous_operator_token`] during a
//! rotation), the operator tokens' changes kept in the store as digests ([`OperatorChanges`];
//! their routes are [`super::operator`]'s), [`Access`] (the valid digests, the audit
//! settings), reading the `Authorization` header and comparing tokens in constant time
//! (tokens are compared as SHA-256 digests, so neither their length nor a prefix leaks through
//! timing). Answers and logs name tokens by [`fingerprint`] only. Does not own where partner
//! tokens are kept ([`crate::fleet::partners`]).

use std::path::Path;
use std::sync::RwLock;

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

/// The operator's old token during a rotation: `[api].previous_operator_token` or the
/// variable `previous_operator_token_env` names; `None` without either.
///
/// # Errors
/// [`crate::Error::OperatorToken`] when the variable is unset or empty.
pub fn previous_operator_token(api: &Api) -> Result<Option<String>, crate::Error> {
    if let Some(t) = &api.previous_operator_token {
        return Ok(Some(t.trim().to_owned()));
    }
    if let Some(var) = &api.previous_operator_token_env {
        return match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_owned())),
            _ => Err(crate::Error::OperatorToken(format!(
                "api.previous_operator_token_env names {var}, which is unset or empty"
            ))),
        };
    }
    Ok(None)
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

/// A digest's fingerprint for people and the API: `sha256:` and its first 16 hex digits.
pub fn fingerprint(d: &[u8; 32]) -> String {
    let hex = rapport_shared::hex::encode(d);
    format!("sha256:{}", &hex[..16])
}

/// Identifies the caller: the operator's digests first (each compared in constant time),
/// then `partner(digest)`.
///
/// # Errors
/// 401 `unauthorized`.
pub fn identify(
    headers: &HeaderMap,
    operators: &[[u8; 32]],
    partner: impl FnOnce(&[u8; 32]) -> Option<String>,
) -> Result<Caller, ApiError> {
    let token = bearer(headers)?;
    let d = digest(token);
    // Every digest is compared, so the time does not tell which one matched.
    let operator = operators
        .iter()
        .fold(false, |found, op| same(&d, op) | found);
    if operator {
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

/// The operator tokens' changes made through the API, kept in the store so a restart (and,
/// within a minute, every other instance on a shared store) sees them: SHA-256 digests (hex)
/// added, and digests revoked. A revoked token stays revoked even if a config still names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperatorChanges {
    /// Tokens added through the API.
    pub added: Vec<String>,
    /// Tokens revoked through the API.
    pub revoked: Vec<String>,
}

impl OperatorChanges {
    /// The valid digests: the config's, then those added, without the revoked ones.
    fn valid(&self, config: &[[u8; 32]]) -> Vec<[u8; 32]> {
        let added = self
            .added
            .iter()
            .filter_map(|h| rapport_shared::hex::decode_array::<32>(h));
        let revoked: Vec<[u8; 32]> = self
            .revoked
            .iter()
            .filter_map(|h| rapport_shared::hex::decode_array::<32>(h))
            .collect();
        let mut out: Vec<[u8; 32]> = Vec::new();
        for d in config.iter().copied().chain(added) {
            if !revoked.contains(&d) && !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }
}

#[derive(Debug)]
struct Operators {
    config: Vec<[u8; 32]>,
    changes: OperatorChanges,
    valid: Vec<[u8; 32]>,
}

/// Who may call: the operator's valid token digests (more than one during a rotation) and the
/// audit log's retention. Lives in [`super::state::Shared`].
#[derive(Debug)]
pub struct Access {
    operators: RwLock<Operators>,
    /// `[audit]`.
    pub audit: crate::audit::AuditConfig,
}

impl Access {
    /// The operator's tokens from the config (the first is the current one; empty ones are
    /// skipped) and the audit settings.
    pub fn new(operator_tokens: &[String], audit: crate::audit::AuditConfig) -> Self {
        let config: Vec<[u8; 32]> = operator_tokens
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| digest(t))
            .collect();
        Self {
            operators: RwLock::new(Operators {
                valid: config.clone(),
                config,
                changes: OperatorChanges::default(),
            }),
            audit,
        }
    }

    /// The operator's digests now.
    pub fn operators(&self) -> Vec<[u8; 32]> {
        self.operators
            .read()
            .map(|o| o.valid.clone())
            .unwrap_or_default()
    }

    /// Fingerprints of the operator's valid tokens.
    pub fn operator_fingerprints(&self) -> Vec<String> {
        self.operators().iter().map(fingerprint).collect()
    }

    /// The API's changes as the store keeps them (JSON), applied; text that does not parse
    /// is logged and leaves the tokens as they are.
    pub fn load_changes(&self, json: &str) {
        match serde_json::from_str::<OperatorChanges>(json) {
            Ok(changes) => self.apply(changes),
            Err(e) => {
                tracing::error!(cause = %e, "stored operator token changes unreadable; ignored");
            }
        }
    }

    /// Makes `changes` the API's changes.
    pub fn apply(&self, changes: OperatorChanges) {
        if let Ok(mut o) = self.operators.write() {
            o.valid = changes.valid(&o.config);
            o.changes = changes;
        }
    }

    fn changes(&self) -> Result<(Vec<[u8; 32]>, OperatorChanges), ApiError> {
        let o = self
            .operators
            .read()
            .map_err(|_| ApiError::internal(&"operator tokens lock poisoned"))?;
        Ok((o.config.clone(), o.changes.clone()))
    }

    /// The changes that add an operator token (to be stored, then [`Self::apply`]d) and its
    /// fingerprint.
    ///
    /// # Errors
    /// 422 `bad_body` for a token too short or with spaces, 409 `conflict` when it is valid
    /// already or was revoked (a revoked token stays revoked: make a new one).
    pub fn plan_add(&self, token: &str) -> Result<(OperatorChanges, String), ApiError> {
        let min = crate::fleet::partners::MIN_TOKEN_LEN;
        if token.chars().count() < min || token.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ApiError::bad_body(format!(
                "token: must be at least {min} characters without spaces (a random string: \
                 `openssl rand -hex 16`)"
            )));
        }
        let d = digest(token);
        let hex = rapport_shared::hex::encode(&d);
        let (_, mut changes) = self.changes()?;
        if self.operators().iter().any(|o| same(o, &d)) || changes.revoked.contains(&hex) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "this token is valid already, or was revoked: make a new one",
            ));
        }
        changes.added.push(hex);
        Ok((changes, fingerprint(&d)))
    }

    /// The changes that revoke the operator token with this fingerprint.
    ///
    /// # Errors
    /// 404 `unknown_token`; 409 `conflict` for the last one (the API would lock itself out).
    pub fn plan_revoke(&self, fp: &str) -> Result<OperatorChanges, ApiError> {
        let valid = self.operators();
        let Some(d) = valid.iter().find(|o| fingerprint(o) == fp) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_token",
                format!(
                    "no operator token has the fingerprint {:?}",
                    fp.chars().take(40).collect::<String>()
                ),
            ));
        };
        if valid.len() == 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the last operator token cannot be revoked: add its successor first",
            ));
        }
        let hex = rapport_shared::hex::encode(d);
        let (_, mut changes) = self.changes()?;
        changes.added.retain(|h| *h != hex);
        changes.revoked.push(hex);
        Ok(changes)
    }
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
        let op = [digest("op-secret")];
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

    #[test]
    fn operator_tokens_rotate_and_the_last_one_stays() {
        let a = Access::new(
            &["old-operator-token".into()],
            crate::audit::AuditConfig::default(),
        );
        let new = "new-operator-token-0123456789abcdef";
        assert!(a.plan_add("short").is_err());
        let (changes, fp_new) = a.plan_add(new).unwrap();
        a.apply(changes);
        assert_eq!(a.plan_add(new).unwrap_err().status, StatusCode::CONFLICT);
        let ops = a.operators();
        for t in ["Bearer old-operator-token", &format!("Bearer {new}")] {
            assert_eq!(
                identify(&headers(t), &ops, |_| None).unwrap(),
                Caller::Operator
            );
        }
        let fp_old = fingerprint(&digest("old-operator-token"));
        assert_eq!(
            a.operator_fingerprints(),
            vec![fp_old.clone(), fp_new.clone()]
        );
        let changes = a.plan_revoke(&fp_old).unwrap();
        // What the store keeps, read back by a restart with the same config.
        let json = serde_json::to_string(&changes).unwrap();
        assert!(
            !json.contains(new) && !json.contains("old-operator-token"),
            "{json}"
        );
        a.apply(changes);
        let restarted = Access::new(
            &["old-operator-token".into()],
            crate::audit::AuditConfig::default(),
        );
        restarted.load_changes(&json);
        for acc in [&a, &restarted] {
            let ops = acc.operators();
            assert!(identify(&headers("Bearer old-operator-token"), &ops, |_| None).is_err());
            assert!(identify(&headers(&format!("Bearer {new}")), &ops, |_| None).is_ok());
        }
        assert_eq!(
            a.plan_revoke(&fp_new).unwrap_err().status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            a.plan_revoke("sha256:0").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }
}
