//! The poller: what the agent *asks* the ECUs, and when. Sans-IO — frames and `now` in,
//! request and flow-control frames out.
//!
//! It owns the asking only: schedules per power state (far fewer requests with the engine off —
//! none by default), OBD-II supported-PID discovery (a PID no ECU advertises is never asked; a
//! DID an ECU refuses with `requestOutOfRange` is never asked again), one request in flight at a
//! time with a minimum gap between requests so the bus is never flooded, flow control for
//! multi-frame answers, UDS `responsePending` (0x78) stretching the wait to P2*, and carrying on
//! when an ECU stays silent. It does not decode values: every frame on the bus, answers
//! included, also goes to the observer, which turns them into observations the same way live
//! and in a replayed trace.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::can::CanFrame;
use crate::proto::isotp::{self, Demux, RxEvent};
use crate::proto::obd::{self, DtcMode, SupportedPids};
use crate::proto::uds::{self, Outcome};

/// The vehicle's power state, which decides how much the poller asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PowerState {
    /// Ignition off: ECUs sleep; asking would wake the bus and drain the battery.
    Off,
    /// Accessory: some ECUs powered, engine off.
    Accessory,
    /// Ignition on / engine running.
    On,
}

/// OBD-II polling (SAE J1979 over ISO 15765-4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObdTarget {
    /// Use 29-bit ids (0x18DB33F1 / 0x18DAF1xx) instead of 11-bit (0x7DF / 0x7E8–0x7EF).
    pub(crate) extended: bool,
    /// Mode 01 PIDs wanted (those no ECU supports are dropped after discovery).
    pub(crate) pids: Vec<u8>,
    /// DTC lists to read (modes 03, 07, 0A).
    pub(crate) dtc_modes: Vec<DtcMode>,
}

/// UDS polling of one ECU (ISO 14229 over ISO-TP, physical addressing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UdsTarget {
    /// Request CAN id.
    pub(crate) request_id: u32,
    /// Response CAN id.
    pub(crate) response_id: u32,
    /// 29-bit ids.
    pub(crate) extended: bool,
    /// DIDs to read with 0x22, one request each.
    pub(crate) dids: Vec<u16>,
    /// Read DTCs with 0x19 02 and this status mask (`None`: don't).
    pub(crate) dtc_status_mask: Option<u8>,
}

/// J1939 parameter groups to request (most arrive by broadcast and need no request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct J1939Target {
    /// Our source address.
    pub(crate) own_address: u8,
    /// PGNs to request with PGN 59904 (e.g. 65253 engine hours, often sent only on request).
    pub(crate) request_pgns: Vec<u32>,
}

/// What and how often to ask: the poller's settings (built from the config by
/// `crate::settings::poller`).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// OBD-II, if the vehicle line has it.
    pub(crate) obd: Option<ObdTarget>,
    /// UDS, if configured.
    pub(crate) uds: Option<UdsTarget>,
    /// J1939 requests, if configured.
    pub(crate) j1939: Option<J1939Target>,
    /// Data round period with the ignition on.
    pub(crate) interval_on: Duration,
    /// Data round period in accessory.
    pub(crate) interval_accessory: Duration,
    /// Data round period with the ignition off (`None`: ask nothing while off).
    pub(crate) interval_off: Option<Duration>,
    /// DTC round period (ignition on only: ECUs run their monitors with the engine on).
    pub(crate) dtc_interval: Duration,
    /// Minimum time between two requests we send.
    pub(crate) min_gap: Duration,
    /// How long to collect answers to a request (P2 plus margin; all ECUs of a functional
    /// request answer within it).
    pub(crate) response_timeout: Duration,
    /// How long to wait after a UDS `responsePending` (P2*).
    pub(crate) pending_timeout: Duration,
    /// ISO-TP settings for answers (flow control we send).
    pub(crate) isotp: isotp::Config,
    /// `[ignition] source = "obd"`: ask engine speed, vehicle speed and module voltage every
    /// round and, with the ignition off, at the accessory cadence (see
    /// `crate::runtime::power::ObdIgnition`).
    pub(crate) ignition_probe: Option<IgnitionProbe>,
}

/// The ignition probe's thresholds (`[ignition]`), read by the rule, carried here so the rule
/// and the requests are set up from one place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct IgnitionProbe {
    /// Module voltage at or above which the engine runs, V.
    pub(crate) on_volts: f32,
    /// Probes in a row without an answer before the ignition counts as off.
    pub(crate) off_after_silent: u32,
}

/// The probe's request: `01 0C 0D 42` (engine speed, vehicle speed, module voltage).
pub(crate) const IGNITION_PROBE: [u8; 4] = [0x01, 0x0C, 0x0D, 0x42];

impl Default for Settings {
    fn default() -> Self {
        Self {
            obd: None,
            uds: None,
            j1939: None,
            interval_on: Duration::from_secs(1),
            interval_accessory: Duration::from_secs(10),
            interval_off: None,
            dtc_interval: Duration::from_secs(30),
            min_gap: Duration::from_millis(20),
            response_timeout: Duration::from_millis(100),
            pending_timeout: uds::P2_STAR_DEFAULT,
            isotp: isotp::Config::default(),
            ignition_probe: None,
        }
    }
}

/// PGN 65253 (HOURS): many engines send it only when asked, so it is requested every round.
pub(crate) const PGN_ENGINE_HOURS: u32 = 65_253;

/// Counters, for the heartbeat and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollerStats {
    /// Requests sent.
    pub requests: u64,
    /// Complete answers received.
    pub answers: u64,
    /// Requests nobody answered in time.
    pub timeouts: u64,
    /// Negative responses.
    pub(crate) negative: u64,
    /// `responsePending` received.
    pub(crate) pending: u64,
    /// Answers that failed ISO-TP reassembly.
    pub(crate) transport_errors: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    ObdDiscover(u8),
    ObdData {
        pids: [u8; obd::MAX_PIDS_PER_REQUEST],
        n: u8,
    },
    ObdDtc(DtcMode),
    UdsDid(u16),
    UdsDtc(u8),
    J1939Request(u32),
    ObdIgnition,
}

#[derive(Debug)]
struct InFlight {
    job: Job,
    deadline: Duration,
    answered: BTreeSet<u32>,
}

/// The sans-IO poller.
#[derive(Debug)]
pub(crate) struct Poller {
    cfg: Settings,
    power: PowerState,
    /// Supported PIDs per OBD response id, from discovery.
    supported: BTreeMap<u32, SupportedPids>,
    asked_bases: u8,
    discovery_done: bool,
    /// Mode 01 PIDs to poll after discovery.
    pids: Vec<u8>,
    refused_dids: BTreeSet<u16>,
    queue: VecDeque<Job>,
    next_data: Duration,
    next_dtc: Duration,
    /// With the ignition off: the next ignition probe.
    next_probe: Duration,
    inflight: Option<InFlight>,
    last_request: Option<Duration>,
    rx: Demux,
    answer: Vec<u8>,
    stats: PollerStats,
}

const MAX_ECUS: usize = 16;

impl Poller {
    /// A poller that starts with the ignition off (nothing asked until [`Poller::set_power`]).
    pub(crate) fn new(cfg: Settings) -> Self {
        let rx = Demux::new(cfg.isotp, MAX_ECUS);
        Self {
            cfg,
            power: PowerState::Off,
            supported: BTreeMap::new(),
            asked_bases: 0,
            discovery_done: false,
            pids: Vec::new(),
            refused_dids: BTreeSet::new(),
            queue: VecDeque::new(),
            next_data: Duration::ZERO,
            next_dtc: Duration::ZERO,
            next_probe: Duration::ZERO,
            inflight: None,
            last_request: None,
            rx,
            answer: Vec::new(),
            stats: PollerStats::default(),
        }
    }

    /// Counters so far.
    /// (The simulated ECUs and the desk use it; the head unit does not.)
    #[cfg(any(test, feature = "desk"))]
    pub(crate) fn stats(&self) -> PollerStats {
        self.stats
    }

    /// The PIDs each OBD ECU (by response id) advertised.
    #[cfg(test)]
    pub(crate) fn supported_pids(&self) -> &BTreeMap<u32, SupportedPids> {
        &self.supported
    }

    /// Mode 01 PIDs being polled (after discovery: wanted ∩ supported by some ECU).
    #[cfg(test)]
    pub(crate) fn polled_pids(&self) -> &[u8] {
        &self.pids
    }

    /// Changes the power state. Turning the ignition on starts rounds at once and repeats
    /// discovery (an ECU may have been replaced or reflashed while the car was off).
    pub(crate) fn set_power(&mut self, power: PowerState, now: Duration) {
        if power == self.power {
            return;
        }
        if self.power == PowerState::Off {
            self.discovery_done = false;
            self.asked_bases = 0;
            self.supported.clear();
            self.next_data = now;
            self.next_dtc = now;
        }
        if power == PowerState::Off {
            self.queue.clear();
            // The first request with the ignition off waits a whole off-interval.
            if let Some(off) = self.cfg.interval_off {
                self.next_data = now + off;
            }
            self.next_probe = now + self.cfg.interval_accessory;
        }
        self.power = power;
    }

    fn data_interval(&self) -> Option<Duration> {
        match self.power {
            PowerState::On => Some(self.cfg.interval_on),
            PowerState::Accessory => Some(self.cfg.interval_accessory),
            PowerState::Off => self.cfg.interval_off,
        }
    }

    /// Advances timers, sends the next request when one is due; returns when to call again.
    pub(crate) fn poll(&mut self, now: Duration, out: &mut Vec<CanFrame>) -> Option<Duration> {
        // Receiving a multi-frame answer too slowly is the sender's fault: drop it, count it.
        if self.rx.poll(now).is_err() {
            self.stats.transport_errors += 1;
        }
        if let Some(f) = &self.inflight
            && now >= f.deadline
        {
            self.finish(now);
        }
        if self.inflight.is_none() && self.queue.is_empty() {
            self.plan_rounds(now);
        }
        if self.inflight.is_none()
            && !self.queue.is_empty()
            && self
                .last_request
                .is_none_or(|t| now >= t + self.cfg.min_gap)
            && let Some(job) = self.queue.pop_front()
        {
            self.send(job, now, out);
        }
        self.next_deadline()
    }

    fn next_deadline(&self) -> Option<Duration> {
        let mut next: Option<Duration> = self.rx.deadline();
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(f) = &self.inflight {
            consider(f.deadline);
        } else if !self.queue.is_empty() {
            consider(
                self.last_request
                    .map_or(Duration::ZERO, |t| t + self.cfg.min_gap),
            );
        } else if self.data_interval().is_some() {
            consider(self.next_data);
            if self.power == PowerState::On {
                consider(self.next_dtc);
            }
        }
        if self.probing_off() && self.inflight.is_none() && self.queue.is_empty() {
            consider(self.next_probe);
        }
        next
    }

    /// Whether the ignition probe runs on its own timer (ignition off).
    fn probing_off(&self) -> bool {
        self.power == PowerState::Off && self.cfg.ignition_probe.is_some() && self.cfg.obd.is_some()
    }

    fn plan_rounds(&mut self, now: Duration) {
        // With the ignition off, the probe at the accessory cadence and never more often: the
        // one request that may wake a sleeping bus.
        if self.probing_off() && now >= self.next_probe {
            self.next_probe = now + self.cfg.interval_accessory;
            self.queue.push_back(Job::ObdIgnition);
        }
        let Some(interval) = self.data_interval() else {
            return;
        };
        if now >= self.next_data {
            self.next_data = now + interval;
            // With the ignition off only UDS is asked (a cluster often answers on battery
            // power); OBD-II and J1939 ECUs sleep, and asking them would only wake the bus.
            let off = self.power == PowerState::Off;
            if self.cfg.obd.is_some() && !off && self.cfg.ignition_probe.is_some() {
                self.queue.push_back(Job::ObdIgnition);
            }
            if self.cfg.obd.is_some() && !off {
                if self.discovery_done {
                    self.queue_obd_data();
                } else {
                    // Discovery comes before any mode 01 data, and is retried each round until
                    // an ECU answers; UDS and J1939 go on meanwhile.
                    self.asked_bases = 0;
                    self.queue.push_back(Job::ObdDiscover(0));
                }
            }
            if let Some(uds) = &self.cfg.uds {
                for did in &uds.dids {
                    if !self.refused_dids.contains(did) {
                        self.queue.push_back(Job::UdsDid(*did));
                    }
                }
            }
            if let Some(j) = self.cfg.j1939.as_ref().filter(|_| !off) {
                for pgn in &j.request_pgns {
                    self.queue.push_back(Job::J1939Request(*pgn));
                }
            }
        }
        if self.power == PowerState::On && now >= self.next_dtc {
            self.next_dtc = now + self.cfg.dtc_interval;
            if let Some(obd) = &self.cfg.obd {
                for mode in &obd.dtc_modes {
                    self.queue.push_back(Job::ObdDtc(*mode));
                }
            }
            if let Some(mask) = self.cfg.uds.as_ref().and_then(|u| u.dtc_status_mask) {
                self.queue.push_back(Job::UdsDtc(mask));
            }
        }
    }

    fn queue_obd_data(&mut self) {
        for chunk in self.pids.chunks(obd::MAX_PIDS_PER_REQUEST) {
            let mut pids = [0u8; obd::MAX_PIDS_PER_REQUEST];
            pids[..chunk.len()].copy_from_slice(chunk);
            self.queue.push_back(Job::ObdData {
                pids,
                n: chunk.len() as u8,
            });
        }
    }

    fn send(&mut self, job: Job, now: Duration, out: &mut Vec<CanFrame>) {
        let mut payload = [0u8; 8];
        let (id, extended, len) = match job {
            Job::ObdDiscover(base) => self.obd_request(&mut payload, &[0x01, base]),
            Job::ObdData { pids, n } => {
                let mut req = [0u8; 7];
                req[0] = 0x01;
                let n = usize::from(n);
                req[1..=n].copy_from_slice(&pids[..n]);
                self.obd_request(&mut payload, &req[..=n])
            }
            Job::ObdDtc(mode) => self.obd_request(&mut payload, &[mode.request_sid()]),
            Job::ObdIgnition => self.obd_request(&mut payload, &IGNITION_PROBE),
            Job::UdsDid(did) => {
                let [hi, lo] = did.to_be_bytes();
                self.uds_request(&mut payload, &[0x22, hi, lo])
            }
            Job::UdsDtc(mask) => {
                self.uds_request(&mut payload, &uds::encode_report_dtc_by_status_mask(mask))
            }
            Job::J1939Request(pgn) => {
                let sa = self.cfg.j1939.as_ref().map_or(0xF9, |j| j.own_address);
                // PGN 59904 (Request), priority 6, to global; data = requested PGN, LSB first.
                let id = 0x18EA_FF00 | u32::from(sa);
                let [a, b, c, _] = pgn.to_le_bytes();
                payload[..3].copy_from_slice(&[a, b, c]);
                (Some(id), true, 3)
            }
        };
        let Some(id) = id else { return };
        let Some(frame) = CanFrame::from_raw(id, extended, &payload[..len]) else {
            return;
        };
        out.push(frame);
        self.stats.requests += 1;
        self.last_request = Some(now);
        // A J1939 request is answered by broadcast; nothing to wait for.
        if !matches!(job, Job::J1939Request(_)) {
            self.inflight = Some(InFlight {
                job,
                deadline: now + self.cfg.response_timeout,
                answered: BTreeSet::new(),
            });
        }
    }

    /// A single-frame ISO-TP request, padded per ISO 15765-4.
    fn single_frame(&self, buf: &mut [u8; 8], req: &[u8]) -> usize {
        let pad = self.cfg.isotp.padding;
        let n = req.len().min(7);
        buf[0] = n as u8;
        buf[1..=n].copy_from_slice(&req[..n]);
        match pad {
            Some(p) => {
                buf[n + 1..].fill(p);
                8
            }
            None => n + 1,
        }
    }

    fn obd_request(&self, buf: &mut [u8; 8], req: &[u8]) -> (Option<u32>, bool, usize) {
        let extended = self.cfg.obd.as_ref().is_some_and(|o| o.extended);
        let id = if extended {
            obd::FUNCTIONAL_REQUEST_ID_29
        } else {
            u32::from(obd::FUNCTIONAL_REQUEST_ID)
        };
        (Some(id), extended, self.single_frame(buf, req))
    }

    fn uds_request(&self, buf: &mut [u8; 8], req: &[u8]) -> (Option<u32>, bool, usize) {
        let Some(u) = &self.cfg.uds else {
            return (None, false, 0);
        };
        (Some(u.request_id), u.extended, self.single_frame(buf, req))
    }

    /// The request id that flow control for an answer on `response_id` goes to.
    fn flow_control_id(&self, response_id: u32, extended: bool) -> Option<u32> {
        if let Some(u) = &self.cfg.uds
            && u.response_id == response_id
        {
            return Some(u.request_id);
        }
        let ecu = obd::ecu_from_response_id(response_id, extended)?;
        if extended {
            Some(obd::physical_request_id_29(ecu))
        } else {
            obd::physical_request_id(ecu).map(u32::from)
        }
    }

    fn is_answer_id(&self, id: u32, extended: bool) -> bool {
        let uds = self
            .cfg
            .uds
            .as_ref()
            .is_some_and(|u| u.response_id == id && u.extended == extended);
        let obd = self
            .cfg
            .obd
            .as_ref()
            .is_some_and(|o| o.extended == extended)
            && obd::ecu_from_response_id(id, extended).is_some();
        uds || obd
    }

    /// Takes a frame from the bus; may queue flow control in `out`.
    pub(crate) fn on_frame(&mut self, frame: &CanFrame, now: Duration, out: &mut Vec<CanFrame>) {
        use embedded_can::Frame;
        let id = frame.raw_id();
        let extended = frame.is_extended();
        if !self.is_answer_id(id, extended) || self.inflight.is_none() {
            return;
        }
        let fc_id = self.flow_control_id(id, extended);
        match self.rx.on_frame(id, frame.data(), now) {
            Ok(RxEvent::FlowControl(fc)) => {
                if let Some(f) = fc_id.and_then(|fid| CanFrame::from_raw(fid, extended, fc)) {
                    out.push(f);
                }
                // A multi-frame answer is on its way: keep waiting for it (N_Cr guards it).
                if let Some(f) = &mut self.inflight {
                    f.deadline = f.deadline.max(now + self.cfg.isotp.n_cr);
                }
                return;
            }
            Ok(RxEvent::Complete(payload)) => {
                // The payload borrows the demux; copy it into the reused answer buffer.
                self.answer.clear();
                self.answer.extend_from_slice(payload);
            }
            Ok(RxEvent::Pending) => return,
            Err(_) => {
                self.stats.transport_errors += 1;
                return;
            }
        }
        let answer = std::mem::take(&mut self.answer);
        self.on_answer(id, &answer, now);
        self.answer = answer;
    }

    fn on_answer(&mut self, ecu: u32, payload: &[u8], now: Duration) {
        let Some(f) = &mut self.inflight else { return };
        let job = f.job;
        match job {
            Job::ObdDiscover(_) | Job::ObdData { .. } | Job::ObdDtc(_) | Job::ObdIgnition => {
                if let Job::ObdDiscover(_) = job
                    && let Ok(values) = obd::parse_current_data(payload)
                {
                    let s = self.supported.entry(ecu).or_default();
                    for v in values.flatten() {
                        s.absorb(&v);
                    }
                }
                if payload.first() == Some(&obd::NEGATIVE_RESPONSE_SID) {
                    if payload.get(2) == Some(&0x78) {
                        self.stats.pending += 1;
                        f.deadline = f.deadline.max(now + self.cfg.pending_timeout);
                        return;
                    }
                    self.stats.negative += 1;
                }
                self.stats.answers += 1;
                f.answered.insert(ecu);
                // A functional request may be answered by several ECUs: finish early only when
                // every ECU known from discovery has answered.
                let known = self.supported.len();
                if !matches!(job, Job::ObdDiscover(_)) && known > 0 && f.answered.len() >= known {
                    self.finish(now);
                }
            }
            Job::UdsDid(did) => match uds::positive_body(payload, 0x22) {
                Ok(Outcome::Pending) => {
                    self.stats.pending += 1;
                    f.deadline = now + self.cfg.pending_timeout;
                }
                Ok(Outcome::Positive(_)) => {
                    self.stats.answers += 1;
                    self.inflight = None;
                }
                Err(e) => {
                    self.stats.negative += 1;
                    if let uds::UdsError::Negative { nrc, .. } = e
                        && nrc == uds::Nrc(0x31)
                    {
                        // This ECU does not have the DID: never ask again.
                        self.refused_dids.insert(did);
                    }
                    self.inflight = None;
                }
            },
            Job::UdsDtc(_) => match uds::positive_body(payload, 0x19) {
                Ok(Outcome::Pending) => {
                    self.stats.pending += 1;
                    f.deadline = now + self.cfg.pending_timeout;
                }
                Ok(Outcome::Positive(_)) => {
                    self.stats.answers += 1;
                    self.inflight = None;
                }
                Err(_) => {
                    self.stats.negative += 1;
                    self.inflight = None;
                }
            },
            Job::J1939Request(_) => {}
        }
    }

    /// Ends the request in flight at its deadline (or when all ECUs answered).
    fn finish(&mut self, _now: Duration) {
        let Some(f) = self.inflight.take() else {
            return;
        };
        if f.answered.is_empty() {
            self.stats.timeouts += 1;
        }
        if let Job::ObdDiscover(base) = f.job {
            self.asked_bases |= 1 << (base / 0x20);
            // Ask the next bitmap any ECU advertises and nobody has been asked for yet.
            let next = self
                .supported
                .values()
                .filter_map(SupportedPids::next_query)
                .filter(|b| self.asked_bases & (1 << (b / 0x20)) == 0)
                .min();
            match next {
                Some(b) => self.queue.push_front(Job::ObdDiscover(b)),
                None if self.supported.is_empty() => {} // nobody answered: retry next round
                None => {
                    self.discovery_done = true;
                    let wanted = self
                        .cfg
                        .obd
                        .as_ref()
                        .map(|o| o.pids.clone())
                        .unwrap_or_default();
                    self.pids = wanted
                        .into_iter()
                        .filter(|p| self.supported.values().any(|s| s.contains(*p)))
                        .collect();
                    self.queue_obd_data();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use embedded_can::Frame;

    const MS: Duration = Duration::from_millis(1);

    fn bitmap(base: u8, pids: &[u8]) -> [u8; 4] {
        let mut m = 0u32;
        for p in pids {
            m |= 1 << (31 - u32::from(p - base - 1));
        }
        m.to_be_bytes()
    }

    fn sf(id: u32, payload: &[u8]) -> CanFrame {
        let mut d = [0xAAu8; 8];
        d[0] = payload.len() as u8;
        d[1..=payload.len()].copy_from_slice(payload);
        CanFrame::from_raw(id, false, &d).unwrap()
    }

    fn cfg() -> Settings {
        Settings {
            obd: Some(ObdTarget {
                extended: false,
                pids: vec![0x0D, 0x1F, 0x31, 0xA6, 0x5C],
                dtc_modes: vec![DtcMode::Stored],
            }),
            ..Settings::default()
        }
    }

    /// Runs the poller to `until`, answering each request with `answer`; returns every frame sent
    /// with its time.
    fn run(
        p: &mut Poller,
        from: Duration,
        until: Duration,
        mut answer: impl FnMut(&CanFrame) -> Vec<CanFrame>,
    ) -> Vec<(Duration, CanFrame)> {
        let mut sent = Vec::new();
        let mut now = from;
        let mut out = Vec::new();
        while now < until {
            p.poll(now, &mut out);
            while let Some(req) = out.pop() {
                sent.push((now, req));
                for a in answer(&req) {
                    p.on_frame(&a, now + MS, &mut out);
                }
            }
            now += MS;
        }
        sent
    }

    /// Two ECUs: the engine (0x7E8) advertises a chain of bitmaps down to 0xA6; the gearbox
    /// (0x7E9) only 0x0D.
    fn two_ecus(req: &CanFrame) -> Vec<CanFrame> {
        let d = req.data();
        if req.raw_id() != 0x7DF || d[1] != 0x01 {
            return vec![];
        }
        let engine: &[(u8, &[u8])] = &[
            (0x00, &[0x01, 0x0D, 0x1F, 0x20]),
            (0x20, &[0x31, 0x40]),
            (0x40, &[0x60]),
            (0x60, &[0x80]),
            (0x80, &[0xA0]),
            (0xA0, &[0xA6]),
        ];
        let mut out = vec![];
        if d[0] == 2 && d[2].is_multiple_of(0x20) {
            let base = d[2];
            if let Some((_, pids)) = engine.iter().find(|(b, _)| *b == base) {
                let m = bitmap(base, pids);
                out.push(sf(0x7E8, &[0x41, base, m[0], m[1], m[2], m[3]]));
            }
            if base == 0 {
                let m = bitmap(0, &[0x0D]);
                out.push(sf(0x7E9, &[0x41, 0, m[0], m[1], m[2], m[3]]));
            }
        }
        out
    }

    #[test]
    fn off_asks_nothing() {
        let mut p = Poller::new(cfg());
        let sent = run(&mut p, Duration::ZERO, Duration::from_secs(60), two_ecus);
        assert!(sent.is_empty());
    }

    #[test]
    fn discovery_follows_the_bitmap_chain_and_never_asks_unsupported_pids() {
        let mut p = Poller::new(cfg());
        p.set_power(PowerState::On, Duration::ZERO);
        let sent = run(&mut p, Duration::ZERO, Duration::from_secs(5), two_ecus);
        let asked: Vec<u8> = sent
            .iter()
            .filter(|(_, f)| f.data()[0] == 2 && f.data()[1] == 1 && f.data()[2] % 0x20 == 0)
            .map(|(_, f)| f.data()[2])
            .take(6)
            .collect();
        assert_eq!(asked, [0x00, 0x20, 0x40, 0x60, 0x80, 0xA0]);
        assert_eq!(p.polled_pids(), &[0x0D, 0x1F, 0x31, 0xA6]);
        let data: Vec<&[u8]> = sent
            .iter()
            .map(|(_, f)| f.data())
            .filter(|d| d[1] == 0x01 && d[0] > 2)
            .collect();
        assert!(!data.is_empty());
        for d in &data {
            assert_eq!(
                &d[..6],
                &[5, 0x01, 0x0D, 0x1F, 0x31, 0xA6],
                "one request, 4 PIDs"
            );
        }
        assert!(
            sent.iter()
                .all(|(_, f)| !f.data()[2..].contains(&0x5C) || f.data()[1] != 1),
            "0x5C is supported by no ECU and is never asked"
        );
        assert!(
            sent.iter().any(|(_, f)| f.data()[..2] == [1, 0x03]),
            "mode 03 asked"
        );
        assert_eq!(p.supported_pids().len(), 2);
    }

    #[test]
    fn requests_are_spaced_and_silence_is_survived() {
        let mut c = cfg();
        c.uds = Some(UdsTarget {
            request_id: 0x714,
            response_id: 0x77E,
            extended: false,
            dids: vec![0xF1A0, 0x0101, 0x0102],
            dtc_status_mask: Some(0x09),
        });
        let mut p = Poller::new(c);
        p.set_power(PowerState::On, Duration::ZERO);
        // Nobody answers anything.
        let sent = run(&mut p, Duration::ZERO, Duration::from_secs(10), |_| vec![]);
        for w in sent.windows(2) {
            assert!(w[1].0 - w[0].0 >= Duration::from_millis(20), "min gap kept");
        }
        assert!(p.stats().timeouts >= 10);
        let uds_asked = sent.iter().filter(|(_, f)| f.raw_id() == 0x714).count();
        assert!(
            uds_asked >= 3 * 9,
            "UDS goes on while OBD discovery keeps failing: {uds_asked}"
        );
        assert!(
            sent.len() < 10 * 15,
            "at most a round a second: {}",
            sent.len()
        );
    }

    #[test]
    fn uds_pending_waits_and_refused_dids_are_dropped() {
        let c = Settings {
            uds: Some(UdsTarget {
                request_id: 0x714,
                response_id: 0x77E,
                extended: false,
                dids: vec![0xF1A0, 0x0BAD],
                dtc_status_mask: None,
            }),
            ..Settings::default()
        };
        let mut p = Poller::new(c);
        p.set_power(PowerState::On, Duration::ZERO);
        let mut out = Vec::new();
        p.poll(Duration::ZERO, &mut out);
        assert_eq!(out.pop().unwrap().data()[..4], [3, 0x22, 0xF1, 0xA0]);
        // 0x78: keep waiting well past the normal 100 ms.
        p.on_frame(&sf(0x77E, &[0x7F, 0x22, 0x78]), 10 * MS, &mut out);
        p.poll(500 * MS, &mut out);
        assert!(out.is_empty(), "still waiting for the pending answer");
        p.on_frame(
            &sf(0x77E, &[0x62, 0xF1, 0xA0, 0x01, 0x02, 0x03]),
            600 * MS,
            &mut out,
        );
        p.poll(620 * MS, &mut out);
        assert_eq!(out.pop().unwrap().data()[..4], [3, 0x22, 0x0B, 0xAD]);
        p.on_frame(&sf(0x77E, &[0x7F, 0x22, 0x31]), 630 * MS, &mut out);
        let sent = run(&mut p, 640 * MS, Duration::from_secs(5), |_| vec![]);
        assert!(
            sent.iter().all(|(_, f)| f.data()[2..4] != [0x0B, 0xAD]),
            "0x0BAD never again"
        );
        assert!(
            sent.iter()
                .filter(|(_, f)| f.data()[2..4] == [0xF1, 0xA0])
                .count()
                >= 4
        );
        assert_eq!(p.stats().pending, 1);
    }

    #[test]
    fn multi_frame_answers_get_flow_control_on_the_physical_id() {
        let mut c = cfg();
        c.obd.as_mut().unwrap().pids = vec![];
        let mut p = Poller::new(c);
        p.set_power(PowerState::On, Duration::ZERO);
        let mut out = Vec::new();
        // Discovery first; answer it so DTCs follow.
        p.poll(Duration::ZERO, &mut out);
        out.clear();
        let m = bitmap(0, &[0x01]);
        p.on_frame(&sf(0x7E8, &[0x41, 0, m[0], m[1], m[2], m[3]]), MS, &mut out);
        let mut now = 2 * MS;
        let mut asked_mode3 = false;
        while now < Duration::from_secs(1) && !asked_mode3 {
            p.poll(now, &mut out);
            asked_mode3 = out.drain(..).any(|f| f.data()[..2] == [1, 0x03]);
            now += MS;
        }
        assert!(asked_mode3);
        // A first frame of 10 bytes (43 03 + 3 codes + padding) from 0x7E8.
        let ff = CanFrame::from_raw(
            0x7E8,
            false,
            &[0x10, 0x08, 0x43, 0x03, 0x01, 0x33, 0x02, 0x01],
        )
        .unwrap();
        p.on_frame(&ff, now, &mut out);
        let fc = out.pop().unwrap();
        assert_eq!(
            fc.raw_id(),
            0x7E0,
            "flow control goes to the ECU's physical id"
        );
        assert_eq!(fc.data()[0] & 0xF0, 0x30);
    }
}
