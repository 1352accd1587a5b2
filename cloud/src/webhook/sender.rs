//! The webhook sender: the async shell that takes due messages from the outbox, POSTs them
//! to partners, and records what happened.
//!
//! Owns the HTTP client (hyper's pooled HTTP/1.1 client, rustls with ring and the system's CA
//! roots for https, no redirects: a 3xx is a failure as the spec says), the
//! bounded concurrency, the wake-ups, the stop, the [`DeliveryReport`]s and the
//! [`Counters`]. Does not own decisions ([`super::schedule`]), storage ([`super::outbox`]) or
//! where partners live ([`Endpoints`], asked at send time so a rotated secret or a moved URL
//! applies to the next attempt).
//!
//! The loop: claim up to `concurrency − in flight` due messages (skipping those in flight;
//! on a shared PostgreSQL outbox the claim keeps other instances off them, see
//! [`crate::store::Claim`]),
//! start one task per message (sign with the attempt's time, POST, read a bounded answer),
//! then sleep until a task ends, an enqueue wakes it ([`Sender::waker`]), or the poll
//! interval passes (capped by the next due time; the poll also catches a test clock that
//! jumps). Each end is classified, decided and recorded in one outbox batch, counted, and
//! reported. On stop, no new attempt starts; in-flight ones get `stop_grace` to finish and
//! be recorded, the rest are abandoned (still pending: re-sent under the same id after a
//! restart), and the outbox is flushed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rapport_shared::Timestamp;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::outbox::{Message, OutboxError};
use super::schedule::{self, Answer, DeadReason, Decision, Jitter, Outcome};
use super::sign::{Secret, sign};
use crate::clock::SharedClock;
use crate::store::{Claim, OutboxStore};

/// How much of a failed answer's body is kept for the error text.
const ERROR_BODY_BYTES: usize = 512;
/// How much of a successful answer's body is read (so the connection can be reused).
const DRAIN_BODY_BYTES: usize = 64 * 1024;
/// The `user-agent` of every attempt.
const USER_AGENT: &str = concat!("rapport-cloud/", env!("CARGO_PKG_VERSION"), " webhooks");

/// Where one partner receives webhooks.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The URL POSTed to.
    pub url: String,
    /// The partner's signing secret.
    pub secret: Secret,
    /// Secrets of a rotation in progress: each attempt carries one signature per secret,
    /// space-separated in `webhook-signature` (Standard Webhooks), so a receiver holding the
    /// old or the new secret verifies it.
    pub previous: Vec<Secret>,
}

impl Endpoint {
    /// The `webhook-signature` value: the current secret's signature, then one per previous
    /// secret, space-separated.
    pub fn signature(&self, msg_id: &str, timestamp_s: u64, body: &[u8]) -> String {
        std::iter::once(&self.secret)
            .chain(&self.previous)
            .map(|s| sign(s, msg_id, timestamp_s, body))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Partner endpoints, looked up at send time.
pub trait Endpoints: Send + Sync + 'static {
    /// The endpoint of `partner`; `None` for a partner not known (the attempt fails with
    /// "unknown partner" and is retried on the schedule).
    fn endpoint(&self, partner: &str) -> Option<Endpoint>;
}

impl Endpoints for HashMap<String, Endpoint> {
    fn endpoint(&self, partner: &str) -> Option<Endpoint> {
        self.get(partner).cloned()
    }
}

impl Endpoints for RwLock<HashMap<String, Endpoint>> {
    fn endpoint(&self, partner: &str) -> Option<Endpoint> {
        self.read().ok()?.get(partner).cloned()
    }
}

/// How the sender runs.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Timeout of one attempt: connect, request and reading the answer.
    pub timeout: Duration,
    /// Longest sleep between looks at the outbox.
    pub poll: Duration,
    /// How long in-flight requests may run on after the stop signal.
    pub stop_grace: Duration,
    /// How long a delivered message's marker is kept before it is pruned.
    pub keep_delivered: Duration,
    /// This instance's claim on the messages it sends (a shared outbox: several instances);
    /// its lease must outlast an attempt's `timeout`.
    pub claim: Claim,
}

/// How often (on the sender's clock) expired delivered markers are looked for.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most markers removed in one pass; a full pass is followed by another at the next look.
pub const PRUNE_BATCH: usize = 1_000;

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(50),
            stop_grace: Duration::from_secs(10),
            keep_delivered: Duration::from_secs(30 * 86_400),
            claim: Claim {
                holder: crate::store::instance_name(),
                lease: Duration::from_secs(60),
            },
        }
    }
}

/// Why the sender could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// The TLS setup failed.
    #[error("webhook sender: TLS setup: {0}")]
    Tls(String),
    /// A setting that cannot work.
    #[error("webhook sender: {0}")]
    Config(String),
}

/// Where a message stands after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportStatus {
    /// A 2xx came back: done.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// It failed; the next attempt is scheduled.
    RetryScheduled {
        /// When the next attempt is due.
        next_at: Timestamp,
        /// What went wrong.
        error: String,
    },
    /// It is in the dead letters.
    Dead {
        /// Why.
        reason: DeadReason,
        /// The last failure.
        error: String,
    },
}

/// One attempt's result, for the alert layer to show delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The message id (`webhook-id`).
    pub id: String,
    /// The partner.
    pub partner: String,
    /// The event type.
    pub event_type: String,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// When this attempt started (its `webhook-timestamp`, in ms).
    pub attempted_at: Timestamp,
    /// Where the message stands.
    pub status: ReportStatus,
}

/// Per-partner counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartnerCounts {
    /// Messages delivered.
    pub delivered: u64,
    /// Failed attempts with a retry scheduled.
    pub retried: u64,
    /// Messages dead-lettered.
    pub dead: u64,
}

/// The sender's counters (since start).
#[derive(Debug, Default)]
pub struct Counters {
    attempts: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    by_partner: Mutex<HashMap<String, PartnerCounts>>,
}

impl Counters {
    /// Attempts made (requests sent, and unknown-partner failures).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
    /// Messages delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    /// Failed attempts with a retry scheduled.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }
    /// Messages dead-lettered.
    pub fn dead(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }
    /// Counts by partner.
    pub fn by_partner(&self) -> BTreeMap<String, PartnerCounts> {
        self.by_partner
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    fn count(&self, partner: &str, status: &ReportStatus) {
        let (total, pick): (&AtomicU64, fn(&mut PartnerCounts) -> &mut u64) = match status {
            ReportStatus::Delivered { .. } => (&self.delivered, |c| &mut c.delivered),
            ReportStatus::RetryScheduled { .. } => (&self.retried, |c| &mut c.retried),
            ReportStatus::Dead { .. } => (&self.dead, |c| &mut c.dead),
        };
        total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.by_partner.lock() {
            match m.get_mut(partner) {
                Some(c) => *pick(c) += 1,
                None => {
                    let mut c = PartnerCounts::default();
                    *pick(&mut c) += 1;
                    m.insert(partner.to_owned(), c);
                }
            }
        }
    }
}

/// The webhook sender (see the module doc). Build it, keep its [`Sender::waker`] and
/// [`Sender::counters`], then [`Sender::run`] it on a task.
pub struct Sender {
    outbox: Arc<dyn OutboxStore>,
    endpoints: Arc<dyn Endpoints>,
    clock: SharedClock,
    config: SenderConfig,
    client: HttpClient,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
}

/// What one attempt task hands back.
struct Attempt {
    msg: Message,
    at: Timestamp,
    outcome: Outcome,
}

impl Sender {
    /// A sender over `outbox`, asking `endpoints` where partners live and `clock` the time.
    ///
    /// Certificates of `https` endpoints are checked against the system's CA roots; if it
    /// has none, a warning is logged and `https` attempts fail (plain `http` still works).
    ///
    /// # Errors
    /// [`SenderError`] if `concurrency` is zero or the HTTP client cannot be built.
    pub fn new(
        outbox: impl OutboxStore,
        endpoints: Arc<dyn Endpoints>,
        clock: SharedClock,
        config: SenderConfig,
    ) -> Result<Self, SenderError> {
        if config.concurrency == 0 {
            return Err(SenderError::Config("concurrency must be at least 1".into()));
        }
        if config.claim.lease <= config.timeout {
            return Err(SenderError::Config(format!(
                "the claim's lease ({:?}) must outlast an attempt's timeout ({:?})",
                config.claim.lease, config.timeout
            )));
        }
        let client = http_client(&config)?;
        Ok(Self {
            outbox: Arc::new(outbox),
            endpoints,
            clock,
            config,
            client,
            wake: Arc::new(Notify::new()),
            counters: Arc::new(Counters::default()),
        })
    }

    /// Wakes the sender at once (`notify_one()` after enqueuing) instead of at its next poll.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The counters, shared with the running sender.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Runs until `shutdown` completes, then lets in-flight requests finish (within
    /// `stop_grace`), records them and flushes the outbox. Every attempt's result goes to
    /// `reports` (the sender waits when the channel is full; a closed channel is ignored).
    ///
    /// Store failures while running are logged and the message stays pending (retried at
    /// the next look).
    ///
    /// # Errors
    /// The final flush failed.
    pub async fn run(
        self,
        reports: mpsc::Sender<DeliveryReport>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), OutboxError> {
        let mut tasks: JoinSet<Attempt> = JoinSet::new();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut task_ids: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut next_prune = Timestamp::EPOCH;
        // The outbox failing (a database outage) is logged when it starts and when it ends,
        // not at every poll.
        let mut failing = false;
        loop {
            let now = self.clock.now();
            if now >= next_prune {
                next_prune = self.prune(now).await;
            }
            let free = self.config.concurrency.saturating_sub(in_flight.len());
            let mut next_at = None;
            if free > 0 {
                let (skip, claim) = (in_flight.clone(), self.config.claim.clone());
                match self
                    .blocking(move |o| o.claim_due(now, free, &skip, &claim))
                    .await
                {
                    Ok(due) => {
                        if failing {
                            failing = false;
                            tracing::info!("webhook outbox readable again");
                        }
                        next_at = due.next_at;
                        for msg in due.messages {
                            match self.endpoints.endpoint(&msg.partner) {
                                Some(ep) => {
                                    in_flight.insert(msg.id.clone());
                                    let id = msg.id.clone();
                                    let handle = tasks.spawn(attempt(
                                        self.client.clone(),
                                        Arc::clone(&self.clock),
                                        self.config.timeout,
                                        ep,
                                        msg,
                                        now,
                                    ));
                                    task_ids.insert(handle.id(), id);
                                }
                                None => {
                                    let outcome = schedule::transport_failure("unknown partner");
                                    self.finish(
                                        Attempt {
                                            msg,
                                            at: now,
                                            outcome,
                                        },
                                        &reports,
                                    )
                                    .await;
                                }
                            }
                        }
                    }
                    Err(e) if !failing => {
                        failing = true;
                        warn!(cause = %e, "webhook outbox: cannot read due messages (logged again when it can)");
                    }
                    Err(e) => tracing::debug!(cause = %e, "webhook outbox still unreadable"),
                }
            }
            let wait = match next_at {
                Some(at) if at > now => self.config.poll.min(at.saturating_since(now)),
                _ => self.config.poll,
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    self.joined(joined, &mut in_flight, &mut task_ids, &reports).await;
                    while let Some(joined) = tasks.try_join_next_with_id() {
                        self.joined(joined, &mut in_flight, &mut task_ids, &reports).await;
                    }
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }

        let grace = tokio::time::sleep(self.config.stop_grace);
        let mut grace = std::pin::pin!(grace);
        while !tasks.is_empty() {
            tokio::select! {
                Some(joined) = tasks.join_next_with_id() => {
                    self.joined(joined, &mut in_flight, &mut task_ids, &reports).await;
                }
                () = &mut grace => {
                    warn!(
                        abandoned = tasks.len(),
                        "webhook sender: stop grace over; unfinished attempts stay pending"
                    );
                    tasks.abort_all();
                    break;
                }
            }
        }
        self.blocking(|o| o.flush()).await
    }

    /// Runs an outbox call on tokio's blocking threads (the store port blocks).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn OutboxStore) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let outbox = Arc::clone(&self.outbox);
        tokio::task::spawn_blocking(move || f(outbox.as_ref()))
            .await
            .map_err(|e| OutboxError::Corrupt {
                key: "(outbox task)".into(),
                reason: e.to_string(),
            })?
    }

    /// Removes delivered markers older than `keep_delivered`; returns when to look again.
    async fn prune(&self, now: Timestamp) -> Timestamp {
        let before = Timestamp::from_millis(now.as_millis().saturating_sub(
            u64::try_from(self.config.keep_delivered.as_millis()).unwrap_or(u64::MAX),
        ));
        match self
            .blocking(move |o| o.prune_delivered(before, PRUNE_BATCH))
            .await
        {
            Ok(n) if n == PRUNE_BATCH => now,
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(removed = n, "webhook outbox: old delivered markers pruned");
                }
                now.saturating_add(PRUNE_EVERY)
            }
            Err(e) => {
                warn!(cause = %e, "webhook outbox: cannot prune delivered markers");
                now.saturating_add(PRUNE_EVERY)
            }
        }
    }

    async fn joined(
        &self,
        joined: Result<(tokio::task::Id, Attempt), tokio::task::JoinError>,
        in_flight: &mut HashSet<String>,
        task_ids: &mut HashMap<tokio::task::Id, String>,
        reports: &mpsc::Sender<DeliveryReport>,
    ) {
        match joined {
            Ok((tid, done)) => {
                task_ids.remove(&tid);
                in_flight.remove(&done.msg.id);
                self.finish(done, reports).await;
            }
            Err(e) => {
                // The attempt task did not return (it panicked or was cancelled): its message
                // is still pending in the outbox and will be taken again.
                if let Some(id) = task_ids.remove(&e.id()) {
                    warn!(cause = %e, id = %id, "webhook attempt task ended abnormally");
                    in_flight.remove(&id);
                }
            }
        }
    }

    /// Decides, records, counts and reports one attempt.
    async fn finish(&self, done: Attempt, reports: &mpsc::Sender<DeliveryReport>) {
        let Attempt { msg, at, outcome } = done;
        self.counters.attempts.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let decision = schedule::decide(
            msg.attempts.saturating_add(1),
            outcome,
            Jitter::random(),
            now,
        );
        let recorded = {
            let (msg, decision) = (msg.clone(), decision.clone());
            self.blocking(move |o| o.record(&msg, &decision, now)).await
        };
        let after = match recorded {
            Ok(after) => after,
            Err(e) => {
                warn!(cause = %e, id = %msg.id, "webhook outbox: cannot record an attempt; it will be made again");
                return;
            }
        };
        let status = match decision {
            Decision::Delivered { status } => {
                debug!(id = %msg.id, partner = %msg.partner, attempts = after.attempts, "webhook delivered");
                ReportStatus::Delivered { status }
            }
            Decision::Retry { at: next_at, error } => {
                debug!(id = %msg.id, partner = %msg.partner, attempts = after.attempts, %error, next_at = %next_at, "webhook attempt failed; retry scheduled");
                ReportStatus::RetryScheduled { next_at, error }
            }
            Decision::Dead { reason, error } => {
                info!(id = %msg.id, partner = %msg.partner, attempts = after.attempts, %error, %reason, "webhook dead-lettered");
                ReportStatus::Dead { reason, error }
            }
        };
        self.counters.count(&msg.partner, &status);
        let report = DeliveryReport {
            id: msg.id,
            partner: msg.partner,
            event_type: msg.event_type,
            attempts: after.attempts,
            attempted_at: at,
            status,
        };
        // A closed channel means nobody listens; delivery goes on regardless.
        let _ = reports.send(report).await;
    }
}

/// The pooled HTTP/1.1 client (http and https).
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One attempt: sign with the attempt's time, POST, classify the answer.
async fn attempt(
    client: HttpClient,
    clock: SharedClock,
    timeout: Duration,
    ep: Endpoint,
    msg: Message,
    at: Timestamp,
) -> Attempt {
    let outcome = match tokio::time::timeout(timeout, post(&client, &clock, &ep, &msg, at)).await {
        Ok(outcome) => outcome,
        Err(_) => schedule::transport_failure(format!("timed out after {timeout:?}")),
    };
    Attempt { msg, at, outcome }
}

async fn post(
    client: &HttpClient,
    clock: &SharedClock,
    ep: &Endpoint,
    msg: &Message,
    at: Timestamp,
) -> Outcome {
    let ts = at.as_millis() / 1000;
    let signature = ep.signature(&msg.id, ts, &msg.body);
    let uri: hyper::Uri = match ep.url.parse() {
        Ok(uri) => uri,
        Err(e) => return schedule::transport_failure(format!("bad URL {:?}: {e}", ep.url)),
    };
    let request = hyper::Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, USER_AGENT)
        .header("webhook-id", msg.id.as_str())
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(Full::new(Bytes::from(msg.body.clone())));
    let request = match request {
        Ok(r) => r,
        Err(e) => return schedule::transport_failure(format!("bad request: {e}")),
    };
    let response = match client.request(request).await {
        Ok(r) => r,
        Err(e) => return schedule::transport_failure(describe(&e)),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let keep = if status.is_success() {
        0
    } else {
        ERROR_BODY_BYTES
    };
    let body = read_bounded(response.into_body(), keep, DRAIN_BODY_BYTES).await;
    schedule::classify(
        &Answer {
            status: status.as_u16(),
            reason: status.canonical_reason(),
            retry_after: retry_after.as_deref(),
            body: &body,
        },
        clock.now(),
    )
}

/// Reads up to `drain` bytes of the body (so the pooled connection can be reused) and keeps
/// the first `keep`. Errors end the read; a longer body is dropped with its connection.
async fn read_bounded(mut body: hyper::body::Incoming, keep: usize, drain: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while read < drain {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read += data.len();
                    let room = keep.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..room.min(data.len())]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    kept
}

/// A client error with its causes, the way an operator wants to read it.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn http_client(config: &SenderConfig) -> Result<HttpClient, SenderError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        warn!(
            errors = ?native.errors,
            "webhook sender: no system CA roots; https endpoints will fail"
        );
    } else if ignored > 0 {
        debug!(
            added,
            ignored, "webhook sender: some system CA roots could not be used"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SenderError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(config.timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(config.concurrency)
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::webhook::sign::verify;

    #[test]
    fn a_rotating_endpoint_signs_with_every_secret() {
        let (new, old, other) = (
            Secret::generate().unwrap(),
            Secret::generate().unwrap(),
            Secret::generate().unwrap(),
        );
        let ep = Endpoint {
            url: "http://127.0.0.1:1/hook".into(),
            secret: new.clone(),
            previous: vec![old.clone()],
        };
        let header = ep.signature("msg_1", 1_700_000_000, b"{}");
        assert_eq!(header.split(' ').count(), 2, "{header}");
        assert!(header.starts_with(&sign(&new, "msg_1", 1_700_000_000, b"{}")));
        for s in [&new, &old] {
            assert!(verify(s, "msg_1", 1_700_000_000, b"{}", &header));
        }
        assert!(!verify(&other, "msg_1", 1_700_000_000, b"{}", &header));
        let single = Endpoint {
            previous: Vec::new(),
            ..ep
        };
        assert!(!single.signature("msg_1", 1, b"").contains(' '));
    }
}
