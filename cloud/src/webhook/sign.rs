//! Standard Webhooks signatures: the `whsec_` secret and the `v1` HMAC-SHA256 scheme.
//!
//! Owns [`Secret`] (parsing, generation, display), [`sign`] and [`verify`]. The content signed
//! is `{msg_id}.{timestamp}.{body}`, the signature `v1,<base64 of the HMAC-SHA256>`; several
//! space-separated signatures may stand in one header (secret rotation). Does not own the
//! headers' transport ([`super::sender`]) nor timestamp tolerance (a receiver's business;
//! [`verify`] checks the signature only).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The prefix of a serialized symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The version tag of a symmetric signature.
pub const SIGNATURE_VERSION: &str = "v1";
/// The fewest key bytes a secret may have (the spec: at least 24 bytes).
pub const MIN_SECRET_BYTES: usize = 24;
/// The most key bytes a secret may have (the spec: 512 bits).
pub const MAX_SECRET_BYTES: usize = 64;
/// How many key bytes [`Secret::generate`] draws.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// Why a secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("webhook secret must start with \"whsec_\" (got {0:?}…)")]
    Prefix(String),
    /// The part after `whsec_` is not standard base64.
    #[error("webhook secret: the part after \"whsec_\" is not standard base64: {0}")]
    Base64(String),
    /// The key is shorter or longer than the spec allows.
    #[error("webhook secret: key is {0} bytes; it must be {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES}")]
    Length(usize),
    /// The operating system's random generator failed.
    #[error("webhook secret: no randomness from the operating system: {0}")]
    Random(String),
}

/// A symmetric signing secret (the raw key bytes); shown as `whsec_<base64>`.
///
/// `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    /// [`SecretError`] naming what is wrong: the prefix, the base64, or the key length.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let s = s.trim();
        let Some(b64) = s.strip_prefix(SECRET_PREFIX) else {
            // Show only a few characters: this may be a real key written in the wrong place.
            return Err(SecretError::Prefix(s.chars().take(6).collect()));
        };
        let key = B64
            .decode(b64)
            .map_err(|e| SecretError::Base64(e.to_string()))?;
        Self::from_bytes(key)
    }

    /// A secret from raw key bytes.
    ///
    /// # Errors
    /// [`SecretError::Length`] outside 24–64 bytes.
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, SecretError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self(key))
    }

    /// A new random secret of [`GENERATED_SECRET_BYTES`] bytes from the OS generator.
    ///
    /// # Errors
    /// [`SecretError::Random`] if the OS has no randomness to give.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self(key))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> HmacSha256 {
        // `new_from_slice` fails only for MACs with a fixed key length; HMAC takes any
        // length (and a `Secret` holds 24-64 bytes), so this branch cannot be reached.
        let Ok(mac) = HmacSha256::new_from_slice(&self.0) else {
            unreachable!("HMAC accepts keys of every length")
        };
        mac
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}{}", B64.encode(&self.0))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl std::str::FromStr for Secret {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn signed_mac(secret: &Secret, msg_id: &str, timestamp_s: u64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for one attempt: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
pub fn sign(secret: &Secret, msg_id: &str, timestamp_s: u64, body: &[u8]) -> String {
    let tag = signed_mac(secret, msg_id, timestamp_s, body)
        .finalize()
        .into_bytes();
    format!("{SIGNATURE_VERSION},{}", B64.encode(tag))
}

/// Whether `header` (one or more space-separated `version,base64` signatures) holds a valid
/// `v1` signature of `msg_id.timestamp_s.body` under `secret`. Other versions (`v1a`) and
/// malformed entries are skipped; the comparison is constant-time. The timestamp's freshness
/// is the caller's check.
pub fn verify(secret: &Secret, msg_id: &str, timestamp_s: u64, body: &[u8], header: &str) -> bool {
    let mac = signed_mac(secret, msg_id, timestamp_s, body);
    header
        .split(' ')
        .filter_map(|sig| sig.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, b64)| B64.decode(b64).ok())
        .any(|tag| mac.clone().verify_slice(&tag).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The published test vector of the Standard Webhooks reference libraries
    // (standard-webhooks/standard-webhooks, libraries/rust `test_sign`).
    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SPEC_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SPEC_TS: u64 = 1_649_367_553;
    const SPEC_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SPEC_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_spec_test_vector() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(sign(&secret, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    }

    #[test]
    fn verifies_the_spec_vector_and_refuses_changes() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        assert!(verify(&secret, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG));
        // Any change to id, timestamp, body or key breaks it.
        assert!(!verify(&secret, "msg_other", SPEC_TS, SPEC_BODY, SPEC_SIG));
        assert!(!verify(&secret, SPEC_ID, SPEC_TS + 1, SPEC_BODY, SPEC_SIG));
        assert!(!verify(&secret, SPEC_ID, SPEC_TS, b"{}", SPEC_SIG));
        let other = Secret::generate().unwrap();
        assert!(!verify(&other, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG));
    }

    #[test]
    fn verify_accepts_one_good_signature_among_several() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        // Signature lists from the reference libraries' multi-signature tests.
        let wrong = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= \
                     v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= \
                     v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=";
        assert!(!verify(&secret, SPEC_ID, SPEC_TS, SPEC_BODY, wrong));
        let with_good = format!("v1a,AAAA garbage {wrong} {SPEC_SIG}");
        assert!(verify(&secret, SPEC_ID, SPEC_TS, SPEC_BODY, &with_good));
        // The right bytes under another version tag do not count.
        let v2 = SPEC_SIG.replacen("v1,", "v2,", 1);
        assert!(!verify(&secret, SPEC_ID, SPEC_TS, SPEC_BODY, &v2));
    }

    #[test]
    fn secret_round_trips_through_display() {
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(s.to_string(), SPEC_SECRET);
        assert_eq!(s.as_bytes().len(), 24);
        let g = Secret::generate().unwrap();
        assert_eq!(g.as_bytes().len(), GENERATED_SECRET_BYTES);
        assert!(g.to_string().starts_with("whsec_"));
        assert_eq!(Secret::parse(&g.to_string()).unwrap(), g);
        assert_ne!(
            Secret::generate().unwrap(),
            g,
            "two draws gave the same key"
        );
        assert!(
            !format!("{g:?}").contains(&g.to_string()[6..]),
            "Debug leaks the key"
        );
    }

    #[test]
    fn bad_secrets_say_what_is_wrong() {
        assert!(matches!(
            Secret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::Prefix(p)) if p == "C2FVsB"
        ));
        assert!(matches!(
            Secret::parse("whsec_not*base64!"),
            Err(SecretError::Base64(_))
        ));
        // 16 bytes: too short for the spec.
        assert_eq!(
            Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(SecretError::Length(16))
        );
        assert_eq!(
            Secret::from_bytes(vec![7; 65]),
            Err(SecretError::Length(65))
        );
        let msg = Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAA==")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("16 bytes"), "{msg}");
    }
}
