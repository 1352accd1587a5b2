//! The poller: what the agent *asks* the ECUs, and when. Sans-IO — frames and `now` in,
//! request and flow-control frames out.
//!
//! One poller per bus: the runtime keeps one for each `[[can.buses]]` entry, so the minimum
//! gap and the one request in flight are per bus.
//!
//! It owns the asking only: schedules per power state (far fewer requests with the engine off —
//! none by default), OBD-II supported-PID discovery (a PID no ECU advertises is never asked; a
//! DID an ECU refuses with `requestOutOfRange` is never asked again), one request in flight at a
//! time with a minimum gap between requests so the bus is never flooded, flow control for
//! multi-frame answers, and several UDS ECUs taking turns ([`uds_ecu`]): their DIDs interleaved
//! round robin, an ECU that sends `responsePending` (0x78) waited for up to P2* while the
//! others are asked, one that stays silent losing only the rest of its round and then backed
//! off (asked ever less often, counted) so it never stalls the others. It does not decode
//! values: every frame on the bus, answers included, also goes to the observer, which turns
//! them into observations the same way live and in a replayed trace.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::can::CanFrame;
use crate::proto::isotp::{self, Demux, RxEvent};
use crate::proto::obd::{self, DtcMode, SupportedPids};
use crate::proto::uds::{self, Outcome};

pub(crate) mod uds_ecu;
#[cfg(any(test, feature = "desk"))]
pub use uds_ecu::UdsEcuStats;

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
    /// Its name, for logs and counters.
    pub(crate) name: String,
    /// Request CAN id.
    pub(crate) request_id: u32,
    /// Response CAN id.
    pub(crate) response_id: u32,
    /// 29-bit ids.
    pub(crate) extended: bool,
    /// ISO 15765-2 extended addressing: (its address, ours), the first data byte of our
    /// requests and of its answers. `None`: normal addressing.
    pub(crate) address: Option<(u8, u8)>,
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
    /// PGNs to request once per DTC round instead (DM2: a fault list, maybe multi-packet,
    /// that changes rarely and would only load the bus every data round).
    pub(crate) dtc_request_pgns: Vec<u32>,
}

/// What and how often to ask: the poller's settings (built from the config by
/// `crate::settings::poller`).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// OBD-II, if the vehicle line has it.
    pub(crate) obd: Option<ObdTarget>,
    /// The UDS ECUs on this bus, asked in turn.
    pub(crate) uds: Vec<UdsTarget>,
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
            uds: Vec::new(),
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
    /// ECU (index into the settings' `uds`), DID.
    UdsDid(u8, u16),
    /// ECU, status mask.
    UdsDtc(u8, u8),
    J1939Request(u32),
    ObdIgnition,
}

impl Job {
    /// The UDS ECU it asks, if a UDS job.
    fn uds_ecu(self) -> Option<usize> {
        match self {
            Self::UdsDid(e, _) | Self::UdsDtc(e, _) => Some(usize::from(e)),
            _ => None,
        }
    }
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
    /// (ECU, DID) pairs refused with requestOutOfRange.
    refused_dids: BTreeSet<(u8, u16)>,
    /// The UDS ECUs, in the settings' order.
    uds: Vec<uds_ecu::UdsEcu>,
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
        // Jobs name an ECU by a byte: 255 per bus is far more than any car has.
        let uds = cfg
            .uds
            .iter()
            .take(usize::from(u8::MAX))
            .map(|t| uds_ecu::UdsEcu::new(t.clone(), cfg.isotp))
            .collect();
        Self {
            uds,
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

    /// Each UDS ECU's name and counters, in the settings' order.
    #[cfg(any(test, feature = "desk"))]
    pub(crate) fn uds_stats(&self) -> Vec<(String, UdsEcuStats)> {
        self.uds
            .iter()
            .map(|e| (e.target.name.clone(), e.stats))
            .collect()
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
            for ecu in &mut self.uds {
                ecu.waiting = None;
            }
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
        for i in 0..self.uds.len() {
            let Some(ecu) = self.uds.get_mut(i) else {
                continue;
            };
            if ecu.rx.poll(now).is_err() {
                self.stats.transport_errors += 1;
            }
            // A responsePending not followed by the answer within P2*.
            if ecu.waiting.is_some_and(|w| now >= w.deadline) {
                ecu.waiting = None;
                self.stats.timeouts += 1;
                self.uds_timed_out(i);
            }
        }
        if let Some(f) = &self.inflight
            && now >= f.deadline
        {
            self.finish(now);
        }
        // A round is planned once nothing is queued (jobs of an ECU working on a
        // responsePending wait for its answer; the other ECUs' go on meanwhile).
        if self.inflight.is_none() && self.queue.is_empty() {
            self.plan_rounds(now);
        }
        if self.inflight.is_none()
            && self
                .last_request
                .is_none_or(|t| now >= t + self.cfg.min_gap)
            && let Some(job) = self.next_job()
        {
            self.send(job, now, out);
        }
        self.next_deadline()
    }

    /// The first queued job whose ECU is not working on an earlier request.
    fn next_job(&mut self) -> Option<Job> {
        let uds = &self.uds;
        let i = self.queue.iter().position(|j| {
            j.uds_ecu()
                .and_then(|e| uds.get(e))
                .is_none_or(|e| e.waiting.is_none())
        })?;
        self.queue.remove(i)
    }

    /// A request to UDS ECU `i` went unanswered: it loses the rest of this round.
    fn uds_timed_out(&mut self, i: usize) {
        if let Some(ecu) = self.uds.get_mut(i)
            && ecu.timed_out()
        {
            tracing::info!(ecu = %ecu.target.name, timeouts = ecu.stats.timeouts,
                "UDS ECU not answering: asked less often until it does");
        }
        self.queue.retain(|j| j.uds_ecu() != Some(i));
    }

    fn next_deadline(&self) -> Option<Duration> {
        let mut next: Option<Duration> = self.rx.deadline();
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n| n.min(t)));
        for ecu in &self.uds {
            if let Some(t) = ecu.rx.deadline() {
                consider(t);
            }
            if let Some(w) = ecu.waiting {
                consider(w.deadline);
            }
        }
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
            self.queue_uds_data();
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
            for (i, ecu) in self.uds.iter_mut().enumerate() {
                let Some(mask) = ecu.target.dtc_status_mask else {
                    continue;
                };
                // A silent ECU is probed by its data rounds; one without DIDs by this.
                let ask = if ecu.target.dids.is_empty() {
                    ecu.take_round()
                } else {
                    !ecu.is_silent()
                };
                if ask && let Ok(e) = u8::try_from(i) {
                    self.queue.push_back(Job::UdsDtc(e, mask));
                }
            }
            if let Some(j) = &self.cfg.j1939 {
                for pgn in &j.dtc_request_pgns {
                    self.queue.push_back(Job::J1939Request(*pgn));
                }
            }
        }
    }

    /// Each UDS ECU's DIDs for one data round, interleaved (the first DID of every ECU, then
    /// the second …) so no ECU waits behind another's whole list; a silent ECU sits the round
    /// out or is probed with one DID.
    fn queue_uds_data(&mut self) {
        let mut lists: Vec<Vec<u16>> = Vec::with_capacity(self.uds.len());
        for (i, ecu) in self.uds.iter_mut().enumerate() {
            let e = u8::try_from(i).unwrap_or(u8::MAX);
            let mut dids: Vec<u16> = ecu
                .target
                .dids
                .iter()
                .copied()
                .filter(|d| !self.refused_dids.contains(&(e, *d)))
                .collect();
            if dids.is_empty() || !ecu.take_round() {
                dids.clear();
            } else if ecu.is_silent() {
                dids.truncate(1);
            }
            lists.push(dids);
        }
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..longest {
            for (i, dids) in lists.iter().enumerate() {
                if let (Some(did), Ok(e)) = (dids.get(k), u8::try_from(i)) {
                    self.queue.push_back(Job::UdsDid(e, *did));
                }
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
            Job::UdsDid(e, did) => {
                let [hi, lo] = did.to_be_bytes();
                self.uds_request(e, &mut payload, &[0x22, hi, lo])
            }
            Job::UdsDtc(e, mask) => self.uds_request(
                e,
                &mut payload,
                &uds::encode_report_dtc_by_status_mask(mask),
            ),
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
        if let Some(ecu) = job.uds_ecu().and_then(|e| self.uds.get_mut(e)) {
            ecu.stats.requests += 1;
        }
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
        self.addressed_single_frame(buf, None, req)
    }

    /// A single-frame request, after the target address byte under extended addressing (which
    /// leaves 6 bytes for the request; every request the poller sends fits).
    fn addressed_single_frame(&self, buf: &mut [u8; 8], address: Option<u8>, req: &[u8]) -> usize {
        let pad = self.cfg.isotp.padding;
        let a = usize::from(address.is_some());
        if let Some(target) = address {
            buf[0] = target;
        }
        let n = req.len().min(7 - a);
        buf[a] = n as u8;
        buf[a + 1..=a + n].copy_from_slice(&req[..n]);
        match pad {
            Some(p) => {
                buf[a + n + 1..].fill(p);
                8
            }
            None => a + n + 1,
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

    fn uds_request(&self, e: u8, buf: &mut [u8; 8], req: &[u8]) -> (Option<u32>, bool, usize) {
        let Some(u) = self.uds.get(usize::from(e)).map(|e| &e.target) else {
            return (None, false, 0);
        };
        let len = self.addressed_single_frame(buf, u.address.map(|(ecu, _)| ecu), req);
        (Some(u.request_id), u.extended, len)
    }

    /// The request id that flow control for an OBD-II answer on `response_id` goes to.
    fn flow_control_id(&self, response_id: u32, extended: bool) -> Option<u32> {
        let ecu = obd::ecu_from_response_id(response_id, extended)?;
        if extended {
            Some(obd::physical_request_id_29(ecu))
        } else {
            obd::physical_request_id(ecu).map(u32::from)
        }
    }

    fn is_answer_id(&self, id: u32, extended: bool) -> bool {
        self.cfg
            .obd
            .as_ref()
            .is_some_and(|o| o.extended == extended)
            && obd::ecu_from_response_id(id, extended).is_some()
    }

    /// A frame from UDS ECU `i`: reassembled on its own receiver, flow control to its request
    /// id, the answer matched with what it owes.
    fn on_uds_frame(&mut self, i: usize, frame: &CanFrame, now: Duration, out: &mut Vec<CanFrame>) {
        use embedded_can::Frame;
        let Some(ecu) = self.uds.get_mut(i) else {
            return;
        };
        let owes = ecu.waiting.is_some()
            || self.inflight.as_ref().and_then(|f| f.job.uds_ecu()) == Some(i);
        if !owes {
            return;
        }
        let (req_id, extended) = (ecu.target.request_id, ecu.target.extended);
        match ecu.rx.on_frame(frame.data(), now) {
            Ok(RxEvent::FlowControl(fc)) => {
                if let Some(f) = CanFrame::from_raw(req_id, extended, fc) {
                    out.push(f);
                }
                let n_cr = self.cfg.isotp.n_cr;
                if let Some(f) = self
                    .inflight
                    .as_mut()
                    .filter(|f| f.job.uds_ecu() == Some(i))
                {
                    f.deadline = f.deadline.max(now + n_cr);
                }
                if let Some(w) = &mut ecu.waiting {
                    w.deadline = w.deadline.max(now + n_cr);
                }
            }
            Ok(RxEvent::Complete(payload)) => {
                self.answer.clear();
                self.answer.extend_from_slice(payload);
                let answer = std::mem::take(&mut self.answer);
                self.on_uds_answer(i, &answer, now);
                self.answer = answer;
            }
            Ok(RxEvent::Pending) => {}
            Err(_) => self.stats.transport_errors += 1,
        }
    }

    /// A whole answer from UDS ECU `i` to the request it owes (the one waiting after a
    /// `responsePending`, else the one in flight).
    fn on_uds_answer(&mut self, i: usize, payload: &[u8], now: Duration) {
        let pending_timeout = self.cfg.pending_timeout;
        let Some(ecu) = self.uds.get_mut(i) else {
            return;
        };
        let in_flight = self.inflight.as_ref().map(|f| f.job);
        let Some(job) = ecu.waiting.map(|w| w.job).or(in_flight) else {
            return;
        };
        let sid = match job {
            Job::UdsDid(..) => 0x22,
            _ => 0x19,
        };
        match uds::positive_body(payload, sid) {
            Ok(Outcome::Pending) => {
                self.stats.pending += 1;
                ecu.stats.pending += 1;
                // It is working on it: the bus is free for the others meanwhile.
                ecu.waiting = Some(uds_ecu::Waiting {
                    job,
                    deadline: now + pending_timeout,
                });
                if in_flight.is_some_and(|j| j.uds_ecu() == Some(i)) {
                    self.inflight = None;
                }
                return;
            }
            Ok(Outcome::Positive(_)) => self.stats.answers += 1,
            Err(e) => {
                self.stats.negative += 1;
                ecu.stats.negative += 1;
                if let (Job::UdsDid(ei, did), uds::UdsError::Negative { nrc, .. }) = (job, e)
                    && nrc == uds::Nrc(0x31)
                {
                    // This ECU does not have the DID: never ask it again.
                    self.refused_dids.insert((ei, did));
                }
            }
        }
        if ecu.answered() {
            tracing::info!(ecu = %ecu.target.name, "UDS ECU answering again");
        }
        if ecu.waiting.take().is_none() {
            self.inflight = None;
        }
    }

    /// Takes a frame from the bus; may queue flow control in `out`.
    pub(crate) fn on_frame(&mut self, frame: &CanFrame, now: Duration, out: &mut Vec<CanFrame>) {
        use embedded_can::Frame;
        let id = frame.raw_id();
        let extended = frame.is_extended();
        if let Some(i) = self
            .uds
            .iter()
            .position(|e| e.is_its(id, extended, frame.data()))
        {
            return self.on_uds_frame(i, frame, now, out);
        }
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
            // UDS answers go through `on_uds_answer`.
            Job::UdsDid(..) | Job::UdsDtc(..) => {}
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
        if let Some(i) = f.job.uds_ecu() {
            // A UDS answer ends the request at once, so reaching the deadline means silence.
            self.uds_timed_out(i);
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
mod tests;
