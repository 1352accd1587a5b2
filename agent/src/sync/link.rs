//! The sync's async shell: one task owns rumqttc's event loop and the client, reads the outbox,
//! publishes what [`Uplink`] cuts, feeds it the client's events, applies and acknowledges
//! downlinks, writes heartbeats, and sleeps the backoff between connection attempts.
//!
//! The event loop's `poll` future is never dropped half-way while connected (rumqttc writes a
//! publish to the socket inside it; a cancelled poll could leave a publish recorded as sent but
//! never written): it is pinned across the other wake-ups (outbox written, batch age, heartbeat)
//! and only abandoned at shutdown.
//!
//! After a connection error, rumqttc moves its unacknowledged publishes into its pending queue
//! to resend them; the shell removes them there, because the [`Uplink`] resends from the outbox
//! itself, and a publish the tracker did not make would break its packet-id mapping.
//!
//! Blocking store writes (a downlink's fsync, a heartbeat) run on tokio's blocking pool; outbox
//! reads and removals are short sled calls made in place.
//!
//! Owns: the I/O order. Does not own: any decision (the pure modules beside it).

use core::time::Duration;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Outgoing, Publish, QoS,
    Request, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::time::Instant;
use tracing::{Instrument, debug, error, info, warn};

use super::backoff::{Backoff, XorShift};
use super::batch::Batcher;
use super::uplink::Uplink;
use super::{Agent, Counters, Settings, downlink};
use rapport_shared::v1::topic;

/// Largest packet read from the broker: the downlink limit with room to spare, so a message
/// somewhat over the limit is still read, refused, counted and acknowledged (a larger one
/// breaks the connection each time it is redelivered: the broker's ACL and size limit must
/// keep those out).
const MAX_INCOMING_PACKET: usize = 4 * rapport_shared::MAX_DOWNLINK_BYTES;
/// Largest packet sent: the uplink limit plus the topic and MQTT headers.
const MAX_OUTGOING_PACKET: usize = rapport_shared::MAX_UPLINK_BYTES + 1024;
/// TCP + TLS + MQTT connect must finish within this, seconds (a cellular link is slow).
const CONNECT_TIMEOUT_S: u64 = 10;
/// A wait before trying again after a store read fails (the store is likely broken).
const STORE_RETRY: Duration = Duration::from_secs(5);

/// Runs the sync until `shutdown` resolves. Connection problems are retried forever; only the
/// shutdown ends it.
///
/// # Errors
/// None today: the signature leaves room for fatal errors.
pub(crate) async fn run<A: Agent>(
    agent: Arc<A>,
    settings: Settings,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::Error> {
    let span = tracing::info_span!("sync", vin = %settings.vin, broker = %settings.broker);
    Link::new(agent, settings, counters)
        .run(shutdown)
        .instrument(span)
        .await
}

struct Link<A> {
    agent: Arc<A>,
    settings: Settings,
    counters: Arc<Counters>,
    up_topic: String,
    down_topic: String,
    uplink: Uplink,
    backoff: Backoff,
    start: Instant,
    connected: bool,
    /// Downlinks applied (or refused) whose acknowledgement the client has not taken yet.
    acks: VecDeque<Publish>,
    /// The client's request queue was full: no publishing until the next event.
    blocked: bool,
    /// A store read failed: no reading before then.
    store_retry_at: Option<Instant>,
}

impl<A: Agent> Link<A> {
    fn new(agent: Arc<A>, settings: Settings, counters: Arc<Counters>) -> Self {
        let batcher = Batcher::new(settings.vin, settings.limits);
        let seed = XorShift::seed_from_time(&settings.client_id);
        Self {
            up_topic: topic::uplink(&settings.vin),
            down_topic: topic::downlink(&settings.vin),
            uplink: Uplink::new(batcher, settings.inflight),
            backoff: Backoff::new(
                settings.backoff_min,
                settings.backoff_max,
                XorShift::new(seed),
            ),
            agent,
            settings,
            counters,
            start: Instant::now(),
            connected: false,
            acks: VecDeque::new(),
            blocked: false,
            store_retry_at: None,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn options(&self) -> MqttOptions {
        let s = &self.settings;
        let mut o = MqttOptions::new(s.client_id.clone(), s.broker.host.clone(), s.broker.port);
        // The config's check keeps it at 5 s or more; rumqttc panics under 1 s.
        o.set_keep_alive(s.keep_alive.max(Duration::from_secs(1)));
        if !s.client_id.is_empty() {
            // A persistent session: downlinks queued while offline arrive on reconnect.
            // (rumqttc panics on a persistent session without a client id; the VIN default
            // and the config's check rule that out.)
            o.set_clean_session(false);
        }
        o.set_manual_acks(true);
        o.set_inflight(super::CLIENT_WINDOW);
        o.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
        if let Some(tls) = &s.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::clone(tls),
            )));
        }
        o
    }

    async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), crate::Error> {
        // Room for every publish in flight, the acks of a broker's whole window of downlinks,
        // and a subscribe.
        let capacity = self.settings.inflight + usize::from(super::CLIENT_WINDOW) + 8;
        let (client, mut eventloop) = AsyncClient::new(self.options(), capacity);
        let mut net = eventloop.network_options();
        net.set_connection_timeout(CONNECT_TIMEOUT_S);
        eventloop.set_network_options(net);

        let mut heartbeat = tokio::time::interval(self.settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_at: Option<Instant> = None;
        tokio::pin!(shutdown);
        info!(client_id = %self.settings.client_id, tls = self.settings.tls.is_some(), "sync starting");

        loop {
            if let Some(at) = retry_at.take() {
                loop {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return self.stopped(),
                        () = tokio::time::sleep_until(at) => break,
                        _ = heartbeat.tick() => self.heartbeat().await,
                    }
                }
            }
            let event = {
                let poll = eventloop.poll();
                tokio::pin!(poll);
                loop {
                    self.pump(&client);
                    self.flush_acks(&client);
                    let deadline = self.deadline();
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return self.stopped(),
                        event = &mut poll => break event,
                        () = self.agent.outbox_written() => self.uplink.on_written(),
                        _ = heartbeat.tick() => self.heartbeat().await,
                        () = sleep_until_opt(deadline), if deadline.is_some() => {}
                    }
                }
            };
            self.blocked = false;
            match event {
                Ok(event) => {
                    if let Err(reason) = self.on_event(event, &client).await {
                        warn!(%reason, "resetting the connection");
                        Counters::add(&self.counters.reconnects, 1);
                        eventloop.clean();
                        self.disconnected(&mut eventloop);
                        retry_at = Some(Instant::now() + self.settings.backoff_min);
                    }
                }
                Err(e) => {
                    self.disconnected(&mut eventloop);
                    let delay = self.backoff.next_delay(self.now());
                    Counters::add(&self.counters.reconnects, 1);
                    log_connection_error(&e, delay, &self.backoff, &self.counters);
                    retry_at = Some(Instant::now() + delay);
                }
            }
        }
    }

    fn stopped(&self) -> Result<(), crate::Error> {
        let c = self.counters.snapshot();
        info!(
            published = c.published,
            acked_records = c.acked_records,
            resent_records = c.resent_records,
            in_flight = self.uplink.in_flight(),
            "sync stopped"
        );
        self.counters.connected.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// When the next partial batch is due (only while it could be published).
    fn deadline(&self) -> Option<Instant> {
        let read_blocked = self.store_retry_at.is_some_and(|t| t > Instant::now());
        if let Some(t) = self.store_retry_at.filter(|_| read_blocked) {
            return Some(t);
        }
        if !self.connected || self.blocked {
            return None;
        }
        self.uplink.deadline().map(|d| self.start + d)
    }

    /// Reads the outbox and publishes while the window has room and a batch is due.
    fn pump(&mut self, client: &AsyncClient) {
        if !self.connected || self.blocked {
            return;
        }
        loop {
            if self.store_retry_at.is_some_and(|t| t > Instant::now()) {
                return;
            }
            self.store_retry_at = None;
            if let Some((from, limit)) = self.uplink.wants_read() {
                match self.agent.outbox_from(from, limit) {
                    Ok(records) => {
                        let bad = self.uplink.on_read(records, limit, self.now());
                        if !bad.is_empty() {
                            error!(seqs = ?bad, "outbox records that cannot be encoded: dropped");
                            self.remove(&bad);
                        }
                    }
                    Err(e) => {
                        Counters::add(&self.counters.store_errors, 1);
                        error!(cause = %e, from, "reading the outbox failed; retrying later");
                        self.store_retry_at = Some(Instant::now() + STORE_RETRY);
                        return;
                    }
                }
            }
            let mut ready = match self.uplink.next(self.now()) {
                Ok(Some(ready)) => ready,
                Ok(None) => return,
                Err(e) => {
                    if let Some(seq) = self.uplink.skip_first() {
                        error!(seq, cause = %e, "outbox record cannot be sent: dropped");
                        self.remove(&[seq]);
                    }
                    continue;
                }
            };
            let records = ready.seqs.len() as u64;
            let bytes = ready.payload.len();
            match client.try_publish(
                self.up_topic.as_str(),
                QoS::AtLeastOnce,
                false,
                std::mem::take(&mut ready.payload),
            ) {
                Ok(()) => {
                    let first = ready.seqs.first().copied().unwrap_or_default();
                    let resent = self.uplink.sent(ready) as u64;
                    Counters::add(&self.counters.published, 1);
                    Counters::add(&self.counters.published_records, records);
                    Counters::add(&self.counters.resent_records, resent);
                    debug!(first, records, bytes, resent, "uplink published");
                }
                Err(e) => {
                    debug!(cause = %e, "client queue full; publishing after the next event");
                    self.blocked = true;
                    return;
                }
            }
        }
    }

    fn remove(&self, seqs: &[u64]) {
        if let Err(e) = self.agent.outbox_remove(seqs) {
            // The records stay and are sent again later; the cloud drops the duplicates.
            Counters::add(&self.counters.store_errors, 1);
            error!(cause = %e, "removing acked records from the outbox failed");
        }
    }

    /// Hands queued downlink acks to the client, in order, as far as its queue takes them.
    fn flush_acks(&mut self, client: &AsyncClient) {
        while let Some(p) = self.acks.front() {
            if client.try_ack(p).is_err() {
                return;
            }
            self.acks.pop_front();
        }
    }

    async fn heartbeat(&self) {
        let agent = Arc::clone(&self.agent);
        let uptime = self.start.elapsed().as_secs();
        let written =
            tokio::task::spawn_blocking(move || agent.heartbeat(crate::VERSION, uptime)).await;
        match written {
            Ok(Ok(())) => debug!(uptime, "heartbeat written"),
            Ok(Err(e)) => {
                // Counted; the store's failing and recovery are logged once by the core.
                Counters::add(&self.counters.store_errors, 1);
                debug!(cause = %e, "heartbeat not written (kept for the next write)");
            }
            Err(e) => warn!(cause = %e, "heartbeat task failed"),
        }
    }

    /// One event from the client. An `Err` asks for the connection to be reset.
    async fn on_event(&mut self, event: Event, client: &AsyncClient) -> Result<(), String> {
        match event {
            Event::Incoming(Incoming::ConnAck(ack)) => {
                self.connected = true;
                self.counters.connected.store(true, Ordering::Relaxed);
                Counters::add(&self.counters.connects, 1);
                self.backoff.on_connected(self.now());
                self.uplink.reset();
                if !ack.session_present {
                    // A new session has no subscription: (re)subscribe. A resumed one keeps it.
                    if let Err(e) = client.try_subscribe(self.down_topic.as_str(), QoS::AtLeastOnce)
                    {
                        return Err(format!("cannot subscribe: {e}"));
                    }
                }
                let c = self.counters.snapshot();
                info!(
                    session_present = ack.session_present,
                    connects = c.connects,
                    reconnects = c.reconnects,
                    "connected"
                );
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                self.uplink.on_outgoing(pkid).map_err(|e| e.to_string())?;
            }
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                self.uplink.on_await_ack(pkid).map_err(|e| e.to_string())?;
            }
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(seqs) = self.uplink.on_puback(ack.pkid) {
                    self.remove(&seqs);
                    Counters::add(&self.counters.acked, 1);
                    Counters::add(&self.counters.acked_records, seqs.len() as u64);
                }
            }
            Event::Incoming(Incoming::Publish(publish)) => self.on_downlink(publish).await?,
            Event::Incoming(Incoming::SubAck(ack)) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    // The broker's ACL refused: uplink still works; say so loudly.
                    error!(topic = %self.down_topic, "downlink subscription refused by the broker");
                } else {
                    Counters::add(&self.counters.subscribed, 1);
                    info!(topic = %self.down_topic, "downlink subscribed");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A downlink publish: check, apply (on disk before the ack), queue its ack.
    async fn on_downlink(&mut self, publish: Publish) -> Result<(), String> {
        match downlink::check(&publish.topic, &publish.payload, &self.settings.vin) {
            Err(rejected) => {
                Counters::add(&self.counters.downlinks_rejected, 1);
                warn!(reason = %rejected, "downlink refused (acknowledged, not applied)");
            }
            Ok(message) => {
                let agent = Arc::clone(&self.agent);
                let count = message.messages.len() as u64;
                let applied = tokio::task::spawn_blocking(move || {
                    let mut refused = 0u64;
                    for m in &message.messages {
                        if agent.downlink(m)?.is_some() {
                            refused += 1;
                        }
                    }
                    Ok::<u64, A::Error>(refused)
                })
                .await;
                match applied {
                    Ok(Ok(refused)) => {
                        // The agent logged why it refused a message; here it is counted.
                        Counters::add(&self.counters.downlinks_applied, count - refused);
                        Counters::add(&self.counters.downlinks_rejected, refused);
                        debug!(messages = count, refused, "downlink applied");
                    }
                    Ok(Err(e)) => {
                        // Not acknowledged: the broker redelivers it after a reconnect, and the
                        // acks after it must not overtake it.
                        Counters::add(&self.counters.store_errors, 1);
                        return Err(format!("downlink not written: {e}"));
                    }
                    Err(e) => return Err(format!("downlink task failed: {e}")),
                }
            }
        }
        self.acks.push_back(publish);
        Ok(())
    }

    /// The connection is gone (or being reset): forget what was in flight.
    fn disconnected(&mut self, eventloop: &mut EventLoop) {
        if self.connected {
            self.counters.connected.store(false, Ordering::Relaxed);
        }
        self.connected = false;
        // rumqttc's own resend copies: the uplink resends from the outbox instead.
        eventloop
            .pending
            .retain(|r| !matches!(r, Request::Publish(_)));
        self.uplink.reset();
        // The broker redelivers unacknowledged downlinks; their acks go with the new delivery.
        self.acks.clear();
    }
}

/// One line per failed attempt or lost connection: what failed, the wait before the next attempt,
/// and where the backoff stands (its attempt count and the ceiling the wait was drawn under),
/// so a log shows a partition's reconnects backing off.
fn log_connection_error(
    e: &ConnectionError,
    delay: Duration,
    backoff: &Backoff,
    counters: &Counters,
) {
    let c = counters.snapshot();
    warn!(
        cause = %e,
        retry_in_ms = delay.as_millis() as u64,
        attempt = backoff.attempt(),
        ceiling_ms = backoff.last_ceiling().as_millis() as u64,
        reconnects = c.reconnects,
        acked_records = c.acked_records,
        "broker connection lost or refused"
    );
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
