//! One lightweight simulated vehicle of the load mode: a real rumqttc client speaking the real
//! protocol, as the agent's sync does it, without the agent's store, rules or HMI.
//!
//! What it does like the agent (`agent/src/sync/`): client id = VIN, a persistent session
//! (`clean_session = false`), a QoS 1 subscription to its downlink topic, postcard
//! [`Uplink`] envelopes on `rapport/v1/{vin}/up` with per-vehicle sequence numbers from 1 that
//! never repeat, a heartbeat first, batches cut by count or by the age of their oldest record,
//! at most `inflight` publishes unacknowledged, a record counted as delivered only when the
//! broker acknowledged the very publish that carried it (packet ids tracked from rumqttc's
//! `Outgoing::Publish` events), and on a lost session everything unacknowledged sent again.
//!
//! What it sends: an odometer reading every `record_interval` (a truck at about 80 km/h) and an
//! engine-hours reading every sixth; and, when told, the `DtcAppeared` record of a fault that
//! appeared on its virtual bus ([`super::truck`]), cut into a batch at once (the agent would
//! hold a partial batch up to its `batch_max_age_ms`, 2 s by default: see the module doc of
//! [`super`]). When told, the steps of a maintenance story as the agent reports them
//! ([`Step`]): the oil service falls due (`Maintenance` due, and the maintenance prompt
//! shown), the driver books it from the prompt (`Prompt` booked), the workshop services it
//! (`Maintenance` done, what the agent sends when the service is recorded); each step goes at
//! once. It counts the downlinks it receives and the message ids it saw twice.
//!
//! Owns the MQTT event loop (one task per vehicle) and the uplink bookkeeping. Does not own the
//! schedule of faults, the counters' meaning in the report, or the cloud.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rapport_agent::config::Loaded;
use rapport_shared::v1::uplink::{EngineHoursReading, Heartbeat, OdometerReading};
use rapport_shared::{
    Downlink, EngineHours, MAX_UPLINK_BYTES, MaintenanceEvent, MaintenanceStatus, Odometer,
    PromptAction, PromptEvent, PromptKind, Record, RecordBody, SignalSource, Timestamp, Uplink,
    Vin, topic,
};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, watch};

use super::truck;

/// rumqttc's own window of packet ids (as the agent: `rapport_agent::sync::CLIENT_WINDOW`).
const CLIENT_WINDOW: u16 = 100;
/// Largest packet the vehicle accepts (downlinks are at most 64 KiB).
const MAX_INCOMING_PACKET: usize = 80 * 1024;
/// Largest packet it sends: an uplink plus the topic and framing.
const MAX_OUTGOING_PACKET: usize = MAX_UPLINK_BYTES + 1024;
/// Seconds rumqttc waits for a TCP connect and the CONNACK.
const CONNECT_TIMEOUT_S: u64 = 20;
/// Reconnect backoff, as the agent's defaults (`[sync] backoff_min_ms`, `backoff_max_ms`): the
/// wait doubles from the floor up to the ceiling after each failed attempt, jittered
/// ([`backoff`]) so 10,000 vehicles do not come back in one burst.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// See [`BACKOFF_MIN`].
const BACKOFF_MAX: Duration = Duration::from_secs(120);
/// Odometer step per record: 80 km/h for the default 5 s interval is about 111 m.
const METRES_PER_RECORD: u64 = 111;
/// An engine-hours reading every this many odometer readings.
const HOURS_EVERY: u64 = 6;

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connect, send the trickle, take faults.
    Run,
    /// No new readings; send what is waiting at once and wait for the acks.
    Drain,
    /// Disconnect and end.
    Stop,
}

/// What the fault injector tells a vehicle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultOrder {
    /// J1939 SPN.
    pub spn: u32,
    /// J1939 FMI.
    pub fmi: u8,
}

/// A step of a vehicle's maintenance story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The oil service falls due; the prompt is shown.
    Due,
    /// The driver books it from the prompt.
    Booked,
    /// The workshop serviced it.
    Done,
}

/// The maintenance item of the stories (the truck config's oil service).
pub(crate) const ITEM: &str = "oil";

/// What the run tells a vehicle.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order {
    /// Put a critical fault on the bus.
    Fault(FaultOrder),
    /// The next step of its maintenance story.
    Maintenance(Step),
}

/// A fault that was put on a vehicle's bus.
#[derive(Debug, Clone)]
pub(crate) struct Injected {
    /// When the DM1 frame appeared on the bus.
    pub on_bus: Instant,
    /// When the publish carrying it was handed to the MQTT client.
    pub published: Option<Instant>,
    /// When the broker acknowledged that publish.
    pub acked: Option<Instant>,
    /// Its codes as the cloud names them.
    pub codes: Vec<String>,
}

/// Counters every vehicle adds to.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Vehicles that got a CONNACK at least once.
    pub connected: AtomicU64,
    /// CONNACKs after a vehicle's first one.
    pub reconnects: AtomicU64,
    /// Connection errors (refused, reset, timed out).
    pub connection_errors: AtomicU64,
    /// Records made (each seq once).
    pub records: AtomicU64,
    /// Records whose publish the broker acknowledged.
    pub records_acked: AtomicU64,
    /// Records sent again after a session was lost.
    pub records_resent: AtomicU64,
    /// Publishes handed to MQTT (first sends only).
    pub publishes: AtomicU64,
    /// Publishes acknowledged.
    pub publishes_acked: AtomicU64,
    /// Downlink messages received.
    pub downlinks: AtomicU64,
    /// Faults put on a bus and turned into records.
    pub faults: AtomicU64,
    /// Fault orders that failed (the message is in [`Shared::problems`]).
    pub fault_errors: AtomicU64,
    /// Maintenance stories' steps sent: due, booked, done.
    pub maintenance: [AtomicU64; 3],
    /// Downlink messages whose id the vehicle had already received.
    pub downlink_repeats: AtomicU64,
    /// Downlinks that did not decode.
    pub downlink_errors: AtomicU64,
}

/// What every vehicle shares.
pub(crate) struct Shared {
    /// The counters.
    pub counters: Counters,
    /// Injected faults by VIN.
    pub faults: std::sync::Mutex<HashMap<Vin, Injected>>,
    /// The first problems seen (connection errors, fault errors), for the report.
    pub problems: std::sync::Mutex<Vec<String>>,
    /// Records each vehicle made (its seqs are `1..=made`), by index.
    pub made: Box<[AtomicU64]>,
    /// The trucks' agent config.
    pub truck: Arc<Loaded>,
    /// How vehicles behave.
    pub settings: Settings,
}

/// Most problems kept for the report.
const MAX_PROBLEMS: usize = 20;

impl Shared {
    pub(crate) fn problem(&self, text: String) {
        if let Ok(mut p) = self.problems.lock()
            && p.len() < MAX_PROBLEMS
        {
            p.push(text);
        }
    }

    fn note_fault(&self, vin: &Vin, f: impl FnOnce(&mut Injected)) {
        if let Ok(mut faults) = self.faults.lock()
            && let Some(i) = faults.get_mut(vin)
        {
            f(i);
        }
    }
}

/// How vehicles behave (from the load options).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The broker's host.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// An odometer reading this often.
    pub record_interval: Duration,
    /// A partial batch goes when its oldest record waited this long.
    pub batch_max_age: Duration,
    /// A batch goes when it holds this many records.
    pub batch_max_records: usize,
    /// Publishes unacknowledged at most.
    pub inflight: usize,
}

/// A publish and what it carries.
#[derive(Debug)]
struct Batch {
    records: Vec<Record>,
    fault: bool,
}

/// One vehicle.
pub(crate) struct Vehicle {
    index: usize,
    vin: Vin,
    topic: String,
    shared: Arc<Shared>,
    next_seq: u64,
    odometer_m: u64,
    readings: u64,
    next_reading: Instant,
    pending: Vec<Record>,
    oldest: Option<Instant>,
    /// Send what is pending at once (a fault, or draining).
    eager: bool,
    /// Handed to rumqttc, packet id not seen yet (in request order).
    unnumbered: VecDeque<Batch>,
    /// Sent, awaiting the broker's PUBACK.
    by_pkid: HashMap<u16, Batch>,
    connected: bool,
    ever_connected: bool,
    /// Failed connection attempts since the last CONNACK.
    failures: u32,
    phase: Phase,
    /// Downlink message ids received.
    downlink_ids: HashSet<u64>,
}

fn wall_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_millis(ms)
}

impl Vehicle {
    /// Vehicle `index` with `vin`, its first reading after `first_reading`.
    pub(crate) fn new(
        index: usize,
        vin: Vin,
        shared: Arc<Shared>,
        first_reading: Duration,
    ) -> Self {
        // Trucks somewhere between 10,000 and 500,000 km, spread by index.
        let odometer_m = 10_000_000 + (index as u64 % 4_900) * 100_000;
        Self {
            index,
            vin,
            topic: topic::uplink(&vin),
            shared,
            next_seq: 1,
            odometer_m,
            readings: 0,
            next_reading: Instant::now() + first_reading,
            pending: Vec::new(),
            oldest: None,
            eager: false,
            unnumbered: VecDeque::new(),
            by_pkid: HashMap::new(),
            connected: false,
            ever_connected: false,
            failures: 0,
            phase: Phase::Run,
            downlink_ids: HashSet::new(),
        }
    }

    fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    fn options(&self) -> MqttOptions {
        let s = self.settings();
        let mut o = MqttOptions::new(self.vin.as_str(), s.host.clone(), s.port);
        o.set_keep_alive(s.keep_alive.max(Duration::from_secs(1)));
        o.set_clean_session(false);
        o.set_inflight(CLIENT_WINDOW);
        o.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
        o
    }

    fn push(&mut self, body: RecordBody) {
        let record = Record {
            seq: self.next_seq,
            at: wall_now(),
            body,
        };
        self.next_seq += 1;
        self.pending.push(record);
        self.oldest.get_or_insert_with(Instant::now);
        self.shared.counters.records.fetch_add(1, Ordering::Relaxed);
        if let Some(made) = self.shared.made.get(self.index) {
            made.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn in_flight(&self) -> usize {
        self.unnumbered.len() + self.by_pkid.len()
    }

    fn window_full(&self) -> bool {
        self.in_flight() >= self.settings().inflight
    }

    /// Whether a batch should go now.
    fn batch_due(&self, now: Instant) -> bool {
        !self.pending.is_empty()
            && (self.eager
                || self.pending.len() >= self.settings().batch_max_records
                || self
                    .oldest
                    .is_some_and(|o| now.duration_since(o) >= self.settings().batch_max_age))
    }

    /// Publishes every batch that is due while the window has room.
    fn pump(&mut self, client: &AsyncClient) {
        if !self.connected {
            return;
        }
        let now = Instant::now();
        while !self.window_full() && self.batch_due(now) {
            let take = self.pending.len().min(self.settings().batch_max_records);
            let records: Vec<Record> = self.pending.drain(..take).collect();
            let envelope = Uplink {
                vin: self.vin,
                records,
            };
            let payload = match envelope.encode() {
                Ok(p) => p,
                Err(e) => {
                    // Never expected: the records are well-formed and few.
                    self.shared
                        .problem(format!("{}: uplink does not encode: {e}", self.vin));
                    self.pending.splice(0..0, envelope.records);
                    return;
                }
            };
            match client.try_publish(self.topic.clone(), QoS::AtLeastOnce, false, payload) {
                Ok(()) => {
                    let fault = envelope
                        .records
                        .iter()
                        .any(|r| matches!(r.body, RecordBody::DtcAppeared(_)));
                    if fault {
                        self.shared
                            .note_fault(&self.vin, |i| i.published = Some(Instant::now()));
                    }
                    self.shared
                        .counters
                        .publishes
                        .fetch_add(1, Ordering::Relaxed);
                    self.unnumbered.push_back(Batch {
                        records: envelope.records,
                        fault,
                    });
                }
                Err(_) => {
                    // The request queue is full (or closed): keep the records, try later.
                    self.pending.splice(0..0, envelope.records);
                    return;
                }
            }
            self.oldest = (!self.pending.is_empty()).then_some(now);
        }
        if self.pending.is_empty() && self.phase == Phase::Run {
            self.eager = false;
        }
    }

    /// When the loop must wake up without an event.
    fn deadline(&self) -> Option<Instant> {
        let reading = (self.phase == Phase::Run).then_some(self.next_reading);
        let batch = (self.connected && !self.window_full())
            .then_some(self.oldest)
            .flatten()
            .map(|o| o + self.settings().batch_max_age);
        match (reading, batch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        while self.phase == Phase::Run && self.next_reading <= now {
            self.readings += 1;
            self.odometer_m += METRES_PER_RECORD;
            self.push(RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(self.odometer_m),
                source: SignalSource::J1939,
            }));
            if self.readings.is_multiple_of(HOURS_EVERY) {
                // Engine time grows with the readings: 5 s of running per reading.
                let secs = 3_600_000 + self.readings * self.settings().record_interval.as_secs();
                self.push(RecordBody::EngineHours(EngineHoursReading {
                    hours: EngineHours::from_secs(secs),
                    source: SignalSource::J1939,
                }));
            }
            self.next_reading += self.settings().record_interval;
        }
    }

    fn on_fault(&mut self, order: FaultOrder) {
        match truck::inject(&self.shared.truck, order.spn, order.fmi) {
            Ok(decoded) => {
                if let Ok(mut faults) = self.shared.faults.lock() {
                    faults.insert(
                        self.vin,
                        Injected {
                            on_bus: decoded.on_bus,
                            published: None,
                            acked: None,
                            codes: decoded.codes,
                        },
                    );
                }
                for body in decoded.records {
                    self.push(body);
                }
                self.shared.counters.faults.fetch_add(1, Ordering::Relaxed);
                self.eager = true;
            }
            Err(e) => {
                self.shared
                    .counters
                    .fault_errors
                    .fetch_add(1, Ordering::Relaxed);
                self.shared.problem(format!("{}: {e}", self.vin));
            }
        }
    }

    fn on_maintenance(&mut self, step: Step) {
        let odometer = Odometer::from_meters(self.odometer_m);
        let maintenance = |status| {
            RecordBody::Maintenance(MaintenanceEvent {
                item: ITEM.into(),
                status,
                odometer,
                due_odometer: (status != MaintenanceStatus::Done).then_some(odometer),
                due_at: None,
                due_engine_hours: None,
            })
        };
        // The agent's prompt id for the item's first cycle at the due stage.
        let prompt = |action| {
            RecordBody::Prompt(PromptEvent {
                prompt: format!("maintenance:{ITEM}:0:due"),
                kind: PromptKind::Maintenance,
                subject: ITEM.into(),
                critical: false,
                action,
            })
        };
        let slot = match step {
            Step::Due => {
                self.push(maintenance(MaintenanceStatus::Due));
                self.push(prompt(PromptAction::Shown));
                0
            }
            Step::Booked => {
                self.push(prompt(PromptAction::Booked));
                1
            }
            Step::Done => {
                self.push(maintenance(MaintenanceStatus::Done));
                2
            }
        };
        self.shared.counters.maintenance[slot].fetch_add(1, Ordering::Relaxed);
        self.eager = true;
    }

    fn on_downlink(&mut self, payload: &[u8]) {
        let c = &self.shared.counters;
        c.downlinks.fetch_add(1, Ordering::Relaxed);
        match Downlink::decode(payload) {
            Ok(d) => {
                for m in d.messages {
                    if !self.downlink_ids.insert(m.id) {
                        c.downlink_repeats.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                c.downlink_errors.fetch_add(1, Ordering::Relaxed);
                self.shared.problem(format!(
                    "{}: a downlink that does not decode: {e}",
                    self.vin
                ));
            }
        }
    }

    fn on_event(&mut self, event: Event, client: &AsyncClient) {
        let c = &self.shared.counters;
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                self.connected = true;
                self.failures = 0;
                if self.ever_connected {
                    c.reconnects.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.ever_connected = true;
                    c.connected.fetch_add(1, Ordering::Relaxed);
                }
                if !ack.session_present {
                    // rumqttc dropped what it had not delivered: send it again, in seq order.
                    self.resend_all();
                    let _ = client.try_subscribe(topic::downlink(&self.vin), QoS::AtLeastOnce);
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                // A resend after a reconnect keeps its packet id; a new publish takes the next
                // batch handed over (rumqttc sends requests in order).
                if !self.by_pkid.contains_key(&pkid)
                    && let Some(batch) = self.unnumbered.pop_front()
                {
                    self.by_pkid.insert(pkid, batch);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(batch) = self.by_pkid.remove(&ack.pkid) {
                    c.publishes_acked.fetch_add(1, Ordering::Relaxed);
                    c.records_acked
                        .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
                    if batch.fault {
                        self.shared
                            .note_fault(&self.vin, |i| i.acked = Some(Instant::now()));
                    }
                }
            }
            Event::Incoming(Packet::Publish(p)) => self.on_downlink(&p.payload),
            _ => {}
        }
    }

    /// Everything unacknowledged goes back to the front of `pending`, in seq order.
    fn resend_all(&mut self) {
        let mut batches: Vec<Batch> = self.unnumbered.drain(..).collect();
        batches.extend(self.by_pkid.drain().map(|(_, b)| b));
        if batches.is_empty() {
            return;
        }
        let mut records: Vec<Record> = batches.into_iter().flat_map(|b| b.records).collect();
        self.shared
            .counters
            .records_resent
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        records.append(&mut self.pending);
        records.sort_by_key(|r| r.seq);
        self.pending = records;
        self.oldest = Some(Instant::now());
        self.eager = true;
    }

    fn on_disconnect(&mut self, error: &rumqttc::ConnectionError) {
        self.connected = false;
        let c = &self.shared.counters;
        c.connection_errors.fetch_add(1, Ordering::Relaxed);
        self.shared
            .problem(format!("{}: connection: {error}", self.vin));
    }

    /// Runs until the phase says stop (or the phase sender is gone).
    pub(crate) async fn run(
        mut self,
        mut orders: mpsc::UnboundedReceiver<Order>,
        mut phase: watch::Receiver<Phase>,
    ) {
        let capacity = self.settings().inflight + 8;
        let (client, mut eventloop) = AsyncClient::new(self.options(), capacity);
        let mut net = eventloop.network_options();
        net.set_connection_timeout(CONNECT_TIMEOUT_S);
        eventloop.set_network_options(net);
        self.push(RecordBody::Heartbeat(Heartbeat {
            agent_version: concat!("rapport-load/", env!("CARGO_PKG_VERSION")).into(),
            uptime_s: 0,
            outbox_depth: 0,
            records_dropped: 0,
        }));
        loop {
            let step = {
                let poll = eventloop.poll();
                tokio::pin!(poll);
                loop {
                    self.pump(&client);
                    let deadline = self.deadline();
                    tokio::select! {
                        biased;
                        changed = phase.changed() => {
                            let next = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Stop };
                            self.phase = next;
                            match next {
                                Phase::Stop => break None,
                                Phase::Drain => self.eager = true,
                                Phase::Run => {}
                            }
                        }
                        Some(order) = orders.recv() => match order {
                            Order::Fault(f) => self.on_fault(f),
                            Order::Maintenance(step) => self.on_maintenance(step),
                        },
                        event = &mut poll => break Some(event),
                        () = sleep_until(deadline) => self.on_timer(),
                    }
                }
            };
            match step {
                None => return self.stop(&client, &mut eventloop).await,
                Some(Ok(event)) => self.on_event(event, &client),
                Some(Err(e)) => {
                    self.on_disconnect(&e);
                    self.failures = self.failures.saturating_add(1);
                    let wait = tokio::time::sleep(backoff(self.index, self.failures));
                    tokio::pin!(wait);
                    loop {
                        tokio::select! {
                            () = &mut wait => break,
                            changed = phase.changed() => {
                                let next = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Stop };
                                self.phase = next;
                                if next == Phase::Stop {
                                    return;
                                }
                                self.eager = next == Phase::Drain;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends DISCONNECT and gives it a moment to leave.
    async fn stop(self, client: &AsyncClient, eventloop: &mut EventLoop) {
        if !self.connected || client.try_disconnect().is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while let Ok(event) = eventloop.poll().await {
                if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                    return;
                }
            }
        })
        .await;
    }
}

/// The wait before attempt `failures + 1`: the floor doubled per failure up to the ceiling,
/// then between half and all of that, spread by the vehicle's index and the attempt.
fn backoff(index: usize, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = BACKOFF_MIN.saturating_mul(1 << exp).min(BACKOFF_MAX);
    // A cheap hash of (index, failures) into [0, 1).
    let h = (index as u64 ^ (u64::from(failures) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let frac = (h >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.5 + 0.5 * frac)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_ceiling_and_is_jittered_within_half_of_it() {
        for index in [0usize, 1, 7, 9_999] {
            for failures in 1..=12u32 {
                let base = BACKOFF_MIN
                    .saturating_mul(1 << (failures - 1))
                    .min(BACKOFF_MAX);
                let d = backoff(index, failures);
                assert!(d >= base / 2 && d <= base, "{index} {failures}: {d:?}");
            }
        }
        assert_ne!(backoff(1, 3), backoff(2, 3), "spread by vehicle");
        assert!(backoff(5, 40) <= BACKOFF_MAX);
    }
}
