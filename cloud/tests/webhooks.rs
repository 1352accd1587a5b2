//! Webhook delivery end to end over real HTTP: the cloud's sender and outbox against the
//! testbed's partner receiver on 127.0.0.1:0, which verifies signatures with its own code.
//! Time is a `ManualClock` the tests move; the sender polls every 50 ms and sees it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rapport_cloud::clock::{Clock, ManualClock, SharedClock, SystemClock};
use rapport_cloud::webhook::schedule::{MAX_ATTEMPTS, SCHEDULE};
use rapport_cloud::webhook::{
    DeadReason, DeliveryReport, Endpoint, Message, MessageState, Outbox, ReportStatus, Secret,
    Sender, SenderConfig, sign,
};
use rapport_harness::cloud::receiver_clock;
use rapport_harness::partner::{Receiver, Rejection, Reply};
use rapport_shared::Timestamp;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

const PARTNER: &str = "dealer-7";
const WAIT: Duration = Duration::from_secs(10);

type Table = Arc<RwLock<HashMap<String, Endpoint>>>;

/// The error of a report that scheduled a retry.
///
/// # Panics
/// On any other report.
fn retry_error(r: &DeliveryReport) -> &str {
    match &r.status {
        ReportStatus::RetryScheduled { error, .. } => error,
        other => panic!("expected a retry, got {other:?}"),
    }
}

/// The endpoint table with one partner, [`PARTNER`], at `receiver`, signed with `secret`.
fn partner_at(receiver: &Receiver, secret: Secret) -> Table {
    let endpoint = Endpoint {
        url: receiver.url(),
        secret,
        previous: Vec::new(),
    };
    Arc::new(RwLock::new(HashMap::from([(PARTNER.to_owned(), endpoint)])))
}

/// A sender running on its own outbox, a receiver, and the clock they share.
struct Rig {
    clock: ManualClock,
    secret: Secret,
    receiver: Receiver,
    endpoints: Table,
    outbox: Outbox,
    db: sled::Db,
    dir: tempfile::TempDir,
    reports: mpsc::Receiver<DeliveryReport>,
    waker: Arc<Notify>,
    counters: Arc<rapport_cloud::webhook::Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

fn open_db(dir: &std::path::Path) -> sled::Db {
    // A dropped sled database releases its file lock a moment later: the kit waits it out.
    rapport_kit::sled_store::open_dir(dir).unwrap_or_else(|e| panic!("reopening sled: {e}"))
}

/// A running sender: its reports, waker, counters, stop signal and task.
type Running = (
    mpsc::Receiver<DeliveryReport>,
    Arc<Notify>,
    Arc<rapport_cloud::webhook::Counters>,
    oneshot::Sender<()>,
    JoinHandle<()>,
);

fn start_sender(
    outbox: &Outbox,
    endpoints: &Table,
    clock: &ManualClock,
    config: SenderConfig,
) -> Running {
    let shared: SharedClock = Arc::new(clock.clone());
    let sender = Sender::new(outbox.clone(), endpoints.clone(), shared, config).unwrap();
    let (tx, rx) = mpsc::channel(1024);
    let (stop, stopped) = oneshot::channel::<()>();
    let waker = sender.waker();
    let counters = sender.counters();
    let task = tokio::spawn(async move {
        sender
            .run(tx, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (rx, waker, counters, stop, task)
}

impl Rig {
    async fn new() -> Self {
        Self::with(SenderConfig::default(), None).await
    }

    /// A rig whose sender signs with `sender_secret` when given (else the partner's).
    async fn with(config: SenderConfig, sender_secret: Option<Secret>) -> Self {
        let clock = ManualClock::new(SystemClock.now());
        let secret = Secret::generate().unwrap();
        let receiver = Receiver::start(&secret.to_string(), receiver_clock(&clock))
            .await
            .unwrap();
        let endpoints = partner_at(&receiver, sender_secret.unwrap_or_else(|| secret.clone()));
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        let outbox = Outbox::new(db.open_tree("cloud").unwrap());
        let (reports, waker, counters, stop, task) =
            start_sender(&outbox, &endpoints, &clock, config);
        Self {
            clock,
            secret,
            receiver,
            endpoints,
            outbox,
            db,
            dir,
            reports,
            waker,
            counters,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn enqueue(&self, id: &str, partner: &str) -> Message {
        let body = format!(r#"{{"type":"alert.maintenance","data":{{"alert":"{id}"}}}}"#);
        let msg = Message::new(
            id,
            partner,
            "alert.maintenance",
            body.into_bytes(),
            self.clock.now(),
        );
        let mut batch = sled::Batch::default();
        self.outbox.enqueue(&mut batch, &msg).unwrap();
        self.db
            .open_tree("cloud")
            .unwrap()
            .apply_batch(batch)
            .unwrap();
        self.waker.notify_one();
        msg
    }

    async fn report(&mut self) -> DeliveryReport {
        tokio::time::timeout(WAIT, self.reports.recv())
            .await
            .expect("no delivery report within 10 s")
            .expect("sender gone")
    }

    /// Moves the clock to `at` and wakes the sender.
    fn jump_to(&self, at: Timestamp) {
        self.clock.set(at);
        self.waker.notify_one();
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT * 2, task).await.unwrap().unwrap();
        }
    }
}

fn assert_jittered(delay: Duration, nominal: Duration) {
    let lo = nominal.mul_f64(0.8);
    let hi = nominal.mul_f64(1.2);
    assert!(
        delay >= lo - Duration::from_millis(1) && delay <= hi + Duration::from_millis(1),
        "delay {delay:?} outside ±20 % of {nominal:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_delivery_is_verified_by_the_independent_receiver() {
    let mut rig = Rig::new().await;
    let msg = rig.enqueue("msg_alert_0001", PARTNER);
    let r = rig.report().await;
    assert_eq!(r.id, "msg_alert_0001");
    assert_eq!(r.attempts, 1);
    assert_eq!(r.status, ReportStatus::Delivered { status: 200 });

    let got = rig.receiver.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, msg.id);
    assert_eq!(got[0].body, msg.body);
    assert_eq!(got[0].timestamp, rig.clock.now().as_millis() / 1000);
    assert_eq!(rig.receiver.stats().rejected, 0);
    assert!(matches!(
        rig.outbox.state(&msg.id).unwrap(),
        Some(MessageState::Delivered(d)) if d.attempts == 1 && d.status == 200
    ));
    assert_eq!(rig.outbox.pending_len(), 0);
    assert_eq!(rig.counters.delivered(), 1);
    assert_eq!(rig.counters.by_partner()[PARTNER].delivered, 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_or_tampered_body_is_refused_by_the_receiver() {
    // The sender signs with a secret the partner does not have.
    let mut rig = Rig::with(SenderConfig::default(), Some(Secret::generate().unwrap())).await;
    rig.enqueue("msg_wrong_key", PARTNER);
    let r = rig.report().await;
    let error = retry_error(&r);
    assert!(error.contains("HTTP 401"), "{error}");
    assert_eq!(rig.receiver.stats().rejected, 1);
    assert_eq!(rig.receiver.stats().attempts, 0);
    assert_eq!(rig.receiver.rejections(), [Rejection::BadSignature]);

    // A request signed with the right secret, whose body was changed on the way.
    let http = reqwest::Client::new();
    let ts = rig.clock.now().as_millis() / 1000;
    let body = br#"{"amount":10}"#;
    let good = sign(&rig.secret, "msg_tamper", ts, body);
    let post = |body: &'static [u8], ts: u64| {
        http.post(rig.receiver.url())
            .header("webhook-id", "msg_tamper")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", good.clone())
            .body(body)
            .send()
    };
    let resp = post(br#"{"amount":99}"#, ts).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(rig.receiver.stats().rejected, 2);
    // The same request untouched is accepted: the refusal was the tampering.
    assert_eq!(post(body, ts).await.unwrap().status(), 200);
    // Replayed six minutes later (signed for then), it is stale.
    rig.clock.advance_ms(6 * 60 * 1000);
    assert_eq!(post(body, ts).await.unwrap().status(), 401);
    let stats = rig.receiver.stats();
    assert_eq!((stats.rejected, stats.delivered), (3, 1));
    assert!(matches!(
        rig.receiver.rejections()[2],
        Rejection::Stale { .. }
    ));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_partner_recovers_and_gets_it_once_under_one_id() {
    let mut rig = Rig::new().await;
    rig.receiver
        .script([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let msg = rig.enqueue("msg_flaky", PARTNER);
    let mut attempted = Vec::new();
    loop {
        let r = rig.report().await;
        attempted.push(r.attempted_at);
        match r.status {
            ReportStatus::RetryScheduled { next_at, error } => {
                assert!(
                    error.starts_with("HTTP 500 Internal Server Error"),
                    "{error}"
                );
                assert_jittered(
                    next_at.saturating_since(r.attempted_at),
                    SCHEDULE[r.attempts as usize],
                );
                rig.jump_to(next_at);
            }
            ReportStatus::Delivered { status } => {
                assert_eq!((status, r.attempts), (200, 4));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let attempts = rig.receiver.attempts();
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    assert!(
        attempts
            .iter()
            .all(|a| a.id == msg.id && a.body == msg.body),
        "{attempts:?}"
    );
    // Each attempt carries its own time, signed.
    let stamps: Vec<u64> = attempts.iter().map(|a| a.timestamp).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    let stats = rig.receiver.stats();
    assert_eq!(
        (stats.delivered, stats.duplicates, stats.rejected),
        (1, 0, 0)
    );
    assert_eq!((rig.counters.retried(), rig.counters.delivered()), (3, 1));

    // Nothing more goes out, however far time moves.
    rig.jump_to(Timestamp::from_millis(
        rig.clock.now().as_millis() + 7 * 86_400_000,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.receiver.attempts().len(), 4);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let mut rig = Rig::new().await;
    rig.receiver.script([Reply::status(429).retry_after("120")]);
    rig.enqueue("msg_throttled", PARTNER);
    let r = rig.report().await;
    let ReportStatus::RetryScheduled { next_at, .. } = r.status else {
        panic!("expected a retry, got {:?}", r.status);
    };
    // The schedule says ~5 s; the partner asked for 120 s, and 120 s it is.
    assert_eq!(
        next_at.saturating_since(r.attempted_at),
        Duration::from_secs(120)
    );

    rig.jump_to(Timestamp::from_millis(r.attempted_at.as_millis() + 119_000));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        rig.receiver.attempts().len(),
        1,
        "retried before Retry-After ran out"
    );

    rig.jump_to(Timestamp::from_millis(r.attempted_at.as_millis() + 120_000));
    let r = rig.report().await;
    assert_eq!(
        (r.status, r.attempts),
        (ReportStatus::Delivered { status: 200 }, 2)
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_is_dead_at_once_and_redrive_delivers_under_the_same_id() {
    let mut rig = Rig::new().await;
    rig.receiver.script([Reply::status(410)]);
    let msg = rig.enqueue("msg_gone", PARTNER);
    let r = rig.report().await;
    assert_eq!(r.attempts, 1);
    assert!(
        matches!(&r.status, ReportStatus::Dead { reason: DeadReason::Gone, error } if error.contains("410")),
        "{:?}",
        r.status
    );
    let dead = rig.outbox.dead_letters(None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadReason::Gone);
    assert_eq!(dead[0].message.id, msg.id);
    assert!(
        dead[0]
            .message
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("HTTP 410 Gone")
    );
    assert_eq!(rig.outbox.pending_len(), 0);
    assert_eq!(rig.counters.dead(), 1);

    // No further tries, whatever the clock says.
    rig.jump_to(Timestamp::from_millis(
        rig.clock.now().as_millis() + 3 * 86_400_000,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.receiver.attempts().len(), 1);

    // The partner is back; an operator re-drives the message.
    rig.outbox.redrive(&msg.id, rig.clock.now()).unwrap();
    rig.waker.notify_one();
    let r = rig.report().await;
    assert_eq!((r.id.as_str(), r.attempts), ("msg_gone", 1));
    assert_eq!(r.status, ReportStatus::Delivered { status: 200 });
    let ids: Vec<String> = rig.receiver.attempts().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["msg_gone", "msg_gone"]);
    assert!(rig.outbox.dead_letters(None, 10).unwrap().is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenth_failure_dead_letters_the_message_with_its_last_error() {
    let mut rig = Rig::new().await;
    rig.receiver.set_default(Reply::status(503));
    let start = rig.clock.now();
    let msg = rig.enqueue("msg_doomed", PARTNER);
    let last = loop {
        let r = rig.report().await;
        match r.status {
            ReportStatus::RetryScheduled { next_at, .. } => rig.jump_to(next_at),
            ReportStatus::Dead { .. } => break r,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(last.attempts, MAX_ATTEMPTS);
    assert!(matches!(
        last.status,
        ReportStatus::Dead {
            reason: DeadReason::Exhausted,
            ..
        }
    ));
    // The last attempt came 75:35:05 after the first, ±20 %.
    assert_jittered(
        last.attempted_at.saturating_since(start),
        Duration::from_secs(75 * 3600 + 35 * 60 + 5),
    );

    let dead = rig.outbox.dead_letters(None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, msg.id);
    assert_eq!(dead[0].message.attempts, 10);
    assert_eq!(dead[0].reason, DeadReason::Exhausted);
    assert_eq!(
        dead[0].message.last_error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
    let attempts = rig.receiver.attempts();
    assert_eq!(attempts.len(), 10);
    assert!(attempts.iter().all(|a| a.id == msg.id));
    assert_eq!((rig.counters.retried(), rig.counters.dead()), (9, 1));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_reopening_and_pending_messages_still_go_out() {
    let mut rig = Rig::new().await;
    rig.receiver.set_default(Reply::status(500));
    let ids = ["msg_dur_a", "msg_dur_b", "msg_dur_c"];
    for id in ids {
        rig.enqueue(id, PARTNER);
    }
    for _ in ids {
        assert!(matches!(
            rig.report().await.status,
            ReportStatus::RetryScheduled { .. }
        ));
    }
    // The cloud stops (the sender flushes), and its store is closed.
    rig.stop().await;
    let Rig {
        clock,
        secret,
        receiver,
        dir,
        outbox,
        db,
        endpoints,
        ..
    } = rig;
    drop((outbox, db, receiver, endpoints));

    // Restart: same directory, a partner that now answers 200 at a new address.
    let db = open_db(dir.path());
    let outbox = Outbox::new(db.open_tree("cloud").unwrap());
    assert_eq!(outbox.pending_len(), 3);
    for id in ids {
        let Some(MessageState::Pending(m)) = outbox.state(id).unwrap() else {
            panic!("{id} not pending after reopening");
        };
        assert_eq!(m.attempts, 1);
        assert!(m.last_error.as_deref().unwrap().contains("500"));
    }
    let receiver = Receiver::start(&secret.to_string(), receiver_clock(&clock))
        .await
        .unwrap();
    let endpoints = partner_at(&receiver, secret);
    clock.advance_ms(60_000);
    let (mut reports, _waker, _counters, stop, task) =
        start_sender(&outbox, &endpoints, &clock, SenderConfig::default());
    for _ in ids {
        let r = tokio::time::timeout(WAIT, reports.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.status, r.attempts),
            (ReportStatus::Delivered { status: 200 }, 2)
        );
    }
    let mut got: Vec<String> = receiver.deliveries().into_iter().map(|d| d.id).collect();
    got.sort();
    assert_eq!(got, ids);
    assert_eq!(outbox.pending_len(), 0);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_unknown_partners_are_retried_with_their_error() {
    let config = SenderConfig {
        timeout: Duration::from_millis(300),
        ..SenderConfig::default()
    };
    let mut rig = Rig::with(config, None).await;
    rig.receiver
        .script([Reply::ok().delay(Duration::from_secs(2))]);
    rig.enqueue("msg_slow", PARTNER);
    let r = rig.report().await;
    let error = retry_error(&r);
    assert!(error.starts_with("timed out"), "{error}");

    rig.enqueue("msg_nobody", "no-such-partner");
    let r = rig.report().await;
    assert_eq!(r.id, "msg_nobody");
    assert_eq!(retry_error(&r), "unknown partner");
    // Once the partner is configured (looked up at send time), the next attempt goes out.
    let url = rig.receiver.url();
    rig.endpoints.write().unwrap().insert(
        "no-such-partner".into(),
        Endpoint {
            url,
            secret: rig.secret.clone(),
            previous: Vec::new(),
        },
    );
    let ReportStatus::RetryScheduled { next_at, .. } = r.status else {
        unreachable!()
    };
    rig.jump_to(next_at.max(Timestamp::from_millis(rig.clock.now().as_millis() + 10_000)));
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        let r = rig.report().await;
        if let ReportStatus::Delivered { .. } = r.status {
            delivered.push(r.id);
        }
    }
    delivered.sort();
    assert_eq!(delivered, ["msg_nobody", "msg_slow"]);
    rig.stop().await;
}

/// A delivered message's marker lives `keep_delivered` on the sender's clock, then goes; a
/// younger one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_markers_are_pruned_after_their_retention() {
    const DAY_MS: u64 = 86_400_000;
    let config = SenderConfig {
        keep_delivered: Duration::from_secs(7 * 86_400),
        ..SenderConfig::default()
    };
    let mut rig = Rig::with(config, None).await;
    let t0 = rig.clock.now();
    rig.enqueue("msg_old", PARTNER);
    assert_eq!(rig.report().await.id, "msg_old");
    rig.jump_to(Timestamp::from_millis(t0.as_millis() + 5 * DAY_MS));
    rig.enqueue("msg_young", PARTNER);
    assert_eq!(rig.report().await.id, "msg_young");
    let delivered = |rig: &Rig, id: &str| {
        matches!(
            rig.outbox.state(id).unwrap(),
            Some(MessageState::Delivered(_))
        )
    };
    assert!(delivered(&rig, "msg_old") && delivered(&rig, "msg_young"));

    // Seven days and two minutes after the first delivery: the sender's next look prunes it.
    rig.jump_to(Timestamp::from_millis(
        t0.as_millis() + 7 * DAY_MS + 120_000,
    ));
    let deadline = std::time::Instant::now() + WAIT;
    while rig.outbox.state("msg_old").unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "old marker still there after 10 s"
        );
        rig.waker.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(delivered(&rig, "msg_young"));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_an_in_flight_request_finish_and_records_it() {
    let mut rig = Rig::new().await;
    rig.receiver
        .script([Reply::ok().delay(Duration::from_millis(600))]);
    let msg = rig.enqueue("msg_inflight", PARTNER);
    assert!(rig.receiver.wait_until(WAIT, |s| s.attempts == 1).await);
    rig.stop().await;
    // The stop waited for the answer and recorded it before returning.
    assert!(matches!(
        rig.outbox.state(&msg.id).unwrap(),
        Some(MessageState::Delivered(_))
    ));
    let r = rig.reports.try_recv().unwrap();
    assert_eq!(r.status, ReportStatus::Delivered { status: 200 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_go_through_tls_and_a_failed_handshake_is_retried() {
    let mut rig = Rig::new().await;
    // The receiver speaks plain HTTP: a TLS handshake with it must fail, cleanly.
    let url = rig.receiver.url().replacen("http://", "https://", 1);
    rig.endpoints.write().unwrap().insert(
        "tls-partner".into(),
        Endpoint {
            url,
            secret: rig.secret.clone(),
            previous: Vec::new(),
        },
    );
    rig.enqueue("msg_tls", "tls-partner");
    let r = rig.report().await;
    let error = retry_error(&r);
    assert!(error.starts_with("cannot connect"), "{error}");
    // Nothing reached the handler: no request was sent in the clear.
    assert_eq!(rig.receiver.stats(), Default::default());
    rig.stop().await;
}
