//! A partner's webhook receiver, for tests and the demo: an HTTP server on loopback that
//! checks Standard Webhooks signatures the way a partner would, answers as scripted, and
//! records what it saw.
//!
//! Owns its own verification, written from the spec and independent of the cloud's signer
//! (this module must not use `rapport_cloud::webhook`, or a bug in the signer would be checked
//! by itself): the `whsec_` secret, the three
//! `webhook-*` headers, HMAC-SHA256 over `id.timestamp.body` compared in constant time with
//! each `v1` signature of the header (a signature under any of the receiver's secrets counts:
//! a partner mid-rotation holds two, [`Receiver::set_secrets`] switches them mid-test), and a
//! timestamp no more than 5 minutes away from the
//! receiver's clock (given, so tests that move a manual clock keep working). A request that
//! fails the check gets 401 and is counted as rejected; it never reaches the script.
//!
//! Does not own retries or de-duplication policy: it records every verified attempt (with
//! the answer it gave) and each id's first success, and counts successes for an id already
//! delivered as duplicates.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use tokio::sync::{Notify, oneshot};

use crate::Error;

/// The path the receiver serves.
pub const PATH: &str = "/webhook";
/// How far a `webhook-timestamp` may be from the receiver's clock.
pub const TOLERANCE_S: u64 = 5 * 60;

/// The receiver's clock: unix seconds.
pub type NowSecs = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock, for the demo.
pub fn system_clock() -> NowSecs {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// One scripted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// A `Retry-After` header to send.
    pub retry_after: Option<String>,
    /// How long to wait before answering (to provoke a sender's timeout).
    pub delay: Duration,
}

impl Reply {
    /// 200, at once.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// `status`, at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    /// With a `Retry-After` header.
    #[must_use]
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    /// Answering after `delay`.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One verified request and the answer it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp` (unix seconds).
    pub timestamp: u64,
    /// The body.
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
}

/// What the receiver counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Verified requests (whatever they were answered).
    pub attempts: u64,
    /// Ids delivered (first 2xx per id).
    pub delivered: u64,
    /// 2xx answers for ids already delivered.
    pub duplicates: u64,
    /// Requests refused by the signature check (missing header, bad signature, stale).
    pub rejected: u64,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A `webhook-*` header is missing or not text.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    BadTimestamp,
    /// The timestamp is more than [`TOLERANCE_S`] away from now.
    Stale {
        /// The timestamp.
        timestamp: u64,
        /// The receiver's now.
        now: u64,
    },
    /// No `v1` signature in the header matches.
    BadSignature,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    attempts: Vec<Attempt>,
    delivered_ids: HashSet<String>,
    deliveries: Vec<Attempt>,
    rejections: Vec<Rejection>,
    stats: Stats,
}

struct Shared {
    /// The secrets' keys it accepts (a partner mid-rotation holds two).
    keys: Mutex<Vec<Vec<u8>>>,
    clock: NowSecs,
    inner: Mutex<Inner>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread may poison the lock; the data is still fine to read.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

/// Decodes a `whsec_<base64>` secret into its key bytes.
///
/// # Errors
/// A description of what is wrong.
pub fn parse_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .trim()
        .strip_prefix("whsec_")
        .ok_or_else(|| "must start with whsec_".to_owned())?;
    let key = B64.decode(b64).map_err(|e| format!("base64: {e}"))?;
    if key.is_empty() {
        return Err("is empty".into());
    }
    Ok(key)
}

/// Checks one request as a partner would (see the module doc).
///
/// # Errors
/// The [`Rejection`].
pub fn check(
    key: &[u8],
    now_s: u64,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, u64), Rejection> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(Rejection::MissingHeader(name))
    };
    let id = get("webhook-id")?;
    let ts_text = get("webhook-timestamp")?;
    let signatures = get("webhook-signature")?;
    let timestamp: u64 = ts_text
        .trim()
        .parse()
        .map_err(|_| Rejection::BadTimestamp)?;
    if timestamp.abs_diff(now_s) > TOLERANCE_S {
        return Err(Rejection::Stale {
            timestamp,
            now: now_s,
        });
    }
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return Err(Rejection::BadSignature);
    };
    // The signed content is exactly `{id}.{timestamp as sent}.{body}`.
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts_text.as_bytes());
    mac.update(b".");
    mac.update(body);
    let ok = signatures
        .split(' ')
        .any(|entry| match entry.split_once(',') {
            Some(("v1", b64)) => B64
                .decode(b64)
                .is_ok_and(|tag| mac.clone().verify_slice(&tag).is_ok()),
            _ => false,
        });
    if ok {
        Ok((id.to_owned(), timestamp))
    } else {
        Err(Rejection::BadSignature)
    }
}

/// [`check`] under each of `keys`: the first that verifies, else the last refusal (a
/// receiver mid-rotation accepts either secret).
///
/// # Errors
/// The [`Rejection`].
pub fn check_any(
    keys: &[Vec<u8>],
    now_s: u64,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, u64), Rejection> {
    let mut last = Rejection::BadSignature;
    for key in keys {
        match check(key, now_s, headers, body) {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = (shared.clock)();
    let keys = shared
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let (id, timestamp) = match check_any(&keys, now, &headers, &body) {
        Ok(v) => v,
        Err(why) => {
            {
                let mut inner = shared.lock();
                inner.stats.rejected += 1;
                inner.rejections.push(why.clone());
            }
            shared.changed.notify_waiters();
            return (StatusCode::UNAUTHORIZED, format!("{why:?}")).into_response();
        }
    };
    let reply = {
        let mut inner = shared.lock();
        let reply = inner
            .script
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or_else(Reply::ok);
        let attempt = Attempt {
            id: id.clone(),
            timestamp,
            body: body.to_vec(),
            status: reply.status,
        };
        inner.stats.attempts += 1;
        if (200..300).contains(&reply.status) {
            if inner.delivered_ids.insert(id) {
                inner.stats.delivered += 1;
                inner.deliveries.push(attempt.clone());
            } else {
                inner.stats.duplicates += 1;
            }
        }
        inner.attempts.push(attempt);
        reply
    };
    shared.changed.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, "").into_response();
    if let Some(v) = reply
        .retry_after
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0` for the partner holding `secret`
    /// (`whsec_<base64>`), judging timestamps by `clock`. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`Error::WebhookSecret`] for a bad secret, [`Error::Listen`] if the socket cannot be
    /// opened.
    pub async fn start(secret: &str, clock: NowSecs) -> Result<Self, Error> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), secret, clock).await
    }

    /// As [`Receiver::start`], on `addr`.
    ///
    /// # Errors
    /// [`Error::WebhookSecret`] for a bad secret, [`Error::Listen`] if the socket cannot be
    /// opened.
    pub async fn start_on(addr: SocketAddr, secret: &str, clock: NowSecs) -> Result<Self, Error> {
        let key = parse_secret(secret).map_err(Error::WebhookSecret)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Listen { addr, source })?;
        let shared = Arc::new(Shared {
            keys: Mutex::new(vec![key]),
            clock,
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route(PATH, post(handle))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// From now on accepts a signature under any of `secrets` (`whsec_<base64>` each) and
    /// no other: a partner switching its secret mid-test.
    ///
    /// # Errors
    /// [`Error::WebhookSecret`] for a bad secret (nothing changed).
    pub fn set_secrets(&self, secrets: &[&str]) -> Result<(), Error> {
        let keys = secrets
            .iter()
            .map(|s| parse_secret(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::WebhookSecret)?;
        *self
            .shared
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to POST webhooks to.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Queues answers for the next verified requests, in order; after them the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().script.extend(replies);
    }

    /// The answer once the script is spent (200 unless set).
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = Some(reply);
    }

    /// Every verified request so far, in arrival order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// The first successful request of each id, in order.
    pub fn deliveries(&self) -> Vec<Attempt> {
        self.shared.lock().deliveries.clone()
    }

    /// Why requests were refused, in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    /// The counts.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// Waits until `done(stats)` holds or `within` passes; returns whether it held.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&Stats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            if done(&self.stats()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.stats());
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A request as signed by a partner's sender.
    struct Vector {
        secret: &'static str,
        id: &'static str,
        ts: u64,
        body: &'static [u8],
        sig: &'static str,
    }

    /// The Standard Webhooks reference libraries' test vector.
    const SPEC: Vector = Vector {
        secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        ts: 1_649_367_553,
        body: br#"{"email":"test@example.com","username":"test_user"}"#,
        sig: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    };

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn accepts_the_spec_vector() {
        let key = parse_secret(SPEC.secret).unwrap();
        let got = check(
            &key,
            SPEC.ts + 10,
            &headers(SPEC.id, &SPEC.ts.to_string(), SPEC.sig),
            SPEC.body,
        );
        assert_eq!(got, Ok((SPEC.id.to_owned(), SPEC.ts)));
        let several = format!("v1a,xyz v1,AAAA {}", SPEC.sig);
        assert!(
            check(
                &key,
                SPEC.ts,
                &headers(SPEC.id, &SPEC.ts.to_string(), &several),
                SPEC.body
            )
            .is_ok()
        );
    }

    #[test]
    fn a_receiver_with_several_secrets_accepts_a_signature_under_any() {
        let right = parse_secret(SPEC.secret).unwrap();
        let wrong = vec![7u8; 24];
        let h = headers(SPEC.id, &SPEC.ts.to_string(), SPEC.sig);
        let ok = Ok((SPEC.id.to_owned(), SPEC.ts));
        assert_eq!(
            check_any(&[wrong.clone(), right.clone()], SPEC.ts, &h, SPEC.body),
            ok
        );
        assert_eq!(
            check_any(&[right, wrong.clone()], SPEC.ts, &h, SPEC.body),
            ok
        );
        assert_eq!(
            check_any(&[wrong], SPEC.ts, &h, SPEC.body),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check_any(&[], SPEC.ts, &h, SPEC.body),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn refuses_tampering_wrong_keys_and_stale_timestamps() {
        let key = parse_secret(SPEC.secret).unwrap();
        let ts = SPEC.ts.to_string();
        let tampered = br#"{"email":"evil@example.com","username":"test_user"}"#;
        assert_eq!(
            check(&key, SPEC.ts, &headers(SPEC.id, &ts, SPEC.sig), tampered),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(
                &key,
                SPEC.ts,
                &headers("msg_other", &ts, SPEC.sig),
                SPEC.body
            ),
            Err(Rejection::BadSignature)
        );
        let other = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            check(&other, SPEC.ts, &headers(SPEC.id, &ts, SPEC.sig), SPEC.body),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(
                &key,
                SPEC.ts + TOLERANCE_S + 1,
                &headers(SPEC.id, &ts, SPEC.sig),
                SPEC.body
            ),
            Err(Rejection::Stale {
                timestamp: SPEC.ts,
                now: SPEC.ts + TOLERANCE_S + 1
            })
        );
        assert!(matches!(
            check(
                &key,
                SPEC.ts - TOLERANCE_S - 1,
                &headers(SPEC.id, &ts, SPEC.sig),
                SPEC.body
            ),
            Err(Rejection::Stale { .. })
        ));
        let v2 = SPEC.sig.replacen("v1,", "v2,", 1);
        assert_eq!(
            check(&key, SPEC.ts, &headers(SPEC.id, &ts, &v2), SPEC.body),
            Err(Rejection::BadSignature)
        );
        let mut h = headers(SPEC.id, &ts, SPEC.sig);
        h.remove("webhook-signature");
        assert_eq!(
            check(&key, SPEC.ts, &h, SPEC.body),
            Err(Rejection::MissingHeader("webhook-signature"))
        );
        assert_eq!(
            check(
                &key,
                SPEC.ts,
                &headers(SPEC.id, "soon", SPEC.sig),
                SPEC.body
            ),
            Err(Rejection::BadTimestamp)
        );
    }

    #[test]
    fn secrets_need_the_prefix_and_base64() {
        assert!(parse_secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err());
        assert!(parse_secret("whsec_***").is_err());
        assert_eq!(parse_secret(SPEC.secret).unwrap().len(), 24);
    }
}
