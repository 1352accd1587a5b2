//! The scanner's state machine: frames and `now` in, request and flow-control frames and
//! [`Findings`] out. No I/O, no clock of its own.
//!
//! Order of work (each step one request, at most one outstanding, [`Settings::min_gap`] apart):
//! 1. listen for [`Settings::listen`] without sending anything (J1939 sources and their PGNs,
//!    11-bit broadcast ids, and any sign of motion before the first request);
//! 2. OBD-II `01 00` functionally on 0x7DF, then physically on each of 0x7E0–0x7E7 that did
//!    not answer, then functionally on 0x18DB33F1 (29-bit);
//! 3. for each OBD ECU found, the supported-PID bitmap chain (`01 20`, `01 40`, … while the
//!    previous bitmap's last bit says the next range exists), physically;
//! 4. the VIN (`09 02`, multi-frame ISO-TP);
//! 5. UDS: `3E 00` (TesterPresent) to each configured request id; an ECU that answers (even
//!    negatively) gets one `22 <DID>` per DID of [`Settings::dids`].
//!
//! As soon as an OBD ECU says it supports PID 0x0D (its first bitmap answer) the speed is
//! asked (`01 0D`), and again every [`Settings::speed_check_every`] between steps. Any sign of motion — an OBD speed above 0, J1939 CCVS1 or TCO1
//! speed above 0 — ends the scan at once: [`Status::Stopped`], nothing more is sent (not even
//! flow control), and the findings so far stay readable.
//!
//! Does not own: the bus (the shells in [`super::run`]), the config skeleton or the table
//! ([`super::report`]).

use std::collections::VecDeque;
use std::time::Duration;

use embedded_can::Frame as _;

use crate::can::CanFrame;
use crate::proto::isotp::{self, Demux, RxEvent};
use crate::proto::j1939::J1939Id;
use crate::proto::j1939::pgn::CruiseControlVehicleSpeed;
use crate::proto::obd::{self, PidValue};

use super::{
    DidAnswer, Findings, ObdEcu, Settings, Status, StopReason, UdsEcu, tco1_speed_kmh_256,
};

/// PGN of CCVS1 (wheel-based vehicle speed, SPN 84).
const PGN_CCVS1: u32 = 65_265;
/// PGN of TCO1 (tachograph vehicle speed, SPN 1624).
const PGN_TCO1: u32 = 65_132;
/// ISO-TP channels for answers at once (several ECUs answer one functional request).
const MAX_CHANNELS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    ObdFunctional { extended: bool },
    ObdPhysical { ecu: u8 },
    ObdBitmap { response_id: u32, base: u8 },
    SpeedCheck,
    Vin,
    UdsProbe { request_id: u16 },
    UdsDid { ecu: usize, did: u16 },
}

#[derive(Debug)]
struct InFlight {
    job: Job,
    deadline: Duration,
}

/// The sans-IO scanner.
#[derive(Debug)]
pub struct Scanner {
    settings: Settings,
    status: Status,
    started: Option<Duration>,
    queue: VecDeque<Job>,
    planned_obd: bool,
    planned_uds: bool,
    inflight: Option<InFlight>,
    last_request: Option<Duration>,
    last_speed_check: Option<Duration>,
    rx: Demux,
    answer: Vec<u8>,
    findings: Findings,
}

impl Scanner {
    /// A scanner that has sent nothing yet; the listening window starts at the first call.
    pub fn new(settings: Settings) -> Self {
        let isotp = isotp::Config {
            // ISO 15765-4: requests are padded to 8 bytes; flow control likewise.
            padding: Some(0x00),
            ..isotp::Config::default()
        };
        Self {
            rx: Demux::new(isotp, MAX_CHANNELS),
            settings,
            status: Status::Running,
            started: None,
            queue: VecDeque::new(),
            planned_obd: false,
            planned_uds: false,
            inflight: None,
            last_request: None,
            last_speed_check: None,
            answer: Vec::new(),
            findings: Findings::default(),
        }
    }

    /// Running, done, or stopped (and why).
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// What was found so far.
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// One frame received from the bus (not one the scanner sent).
    pub fn on_frame(&mut self, frame: &CanFrame, now: Duration, out: &mut Vec<CanFrame>) {
        if self.status != Status::Running {
            return;
        }
        self.started.get_or_insert(now);
        let id = frame.raw_id();
        let extended = frame.is_extended();
        if extended {
            self.on_extended(id, frame.data(), now);
        } else if !is_diagnostic_11bit(id) {
            *self.findings.broadcast.entry(id).or_default() += 1;
        }
        if self.status != Status::Running {
            return;
        }
        // A UDS probe's answer is a single frame (`7E 00` or `7F 3E nrc`): anything else on the
        // range is someone's traffic, and must not get flow control from us.
        let probing = matches!(
            self.inflight.as_ref().map(|f| f.job),
            Some(Job::UdsProbe { .. })
        );
        if probing && frame.data().first().is_none_or(|b| b >> 4 != 0) {
            return;
        }
        if let Some(flow_to) = self.answer_peer(id, extended) {
            self.on_answer_frame(id, extended, flow_to, frame.data(), now, out);
        }
    }

    /// J1939 traffic (and motion in it); 29-bit ISO-TP answers are handled by the caller.
    fn on_extended(&mut self, id: u32, data: &[u8], now: Duration) {
        let Ok(j) = J1939Id::from_raw(id) else { return };
        // PF 0xDA/0xDB are ISO 15765-4 diagnostics (0x18DAxxF1, 0x18DB33F1), not J1939 groups.
        if matches!((id >> 16) & 0xFF, 0xDA | 0xDB) {
            return;
        }
        let pgn = j.pgn();
        self.findings
            .j1939
            .entry(j.source())
            .or_default()
            .insert(pgn);
        let speed = match pgn {
            PGN_CCVS1 => CruiseControlVehicleSpeed::decode(data)
                .ok()
                .and_then(|c| c.wheel_speed_kmh_256.valid()),
            PGN_TCO1 => tco1_speed_kmh_256(data),
            _ => None,
        };
        if let Some(raw) = speed.filter(|r| *r > 0) {
            let what = if pgn == PGN_CCVS1 { "CCVS1" } else { "TCO1" };
            self.stop(
                StopReason::Moving {
                    source: format!("J1939 {what} from 0x{:02X}", j.source()),
                    kmh: f32::from(raw) / 256.0,
                },
                now,
            );
        }
    }

    /// Where flow control for an answer on `id` goes, if `id` answers the request in flight.
    fn answer_peer(&self, id: u32, extended: bool) -> Option<u32> {
        let job = self.inflight.as_ref()?.job;
        if extended {
            // 0x18DAF1xx answers to the tester 0xF1; flow control to 0x18DAxxF1.
            let obd29 = matches!(job, Job::ObdFunctional { extended: true })
                || matches!(job, Job::ObdBitmap { response_id, .. } if response_id == id)
                || (matches!(job, Job::SpeedCheck | Job::Vin) && self.findings.obd_extended());
            return (obd29 && id & 0x1FFF_FF00 == obd::RESPONSE_ID_29_BASE)
                .then_some(obd::PHYSICAL_REQUEST_ID_29_BASE | ((id & 0xFF) << 8));
        }
        let obd11 = (0x7E8..=0x7EF).contains(&id).then_some(id - 8);
        match job {
            Job::ObdFunctional { extended: false } | Job::SpeedCheck | Job::Vin => obd11,
            Job::ObdFunctional { extended: true } => None,
            Job::ObdPhysical { ecu } => obd11.filter(|_| id == 0x7E8 + u32::from(ecu)),
            Job::ObdBitmap { response_id, .. } => obd11.filter(|_| id == response_id),
            Job::UdsProbe { request_id } => {
                let req = u32::from(request_id);
                (id != req && (0x700..=0x7FF).contains(&id) && !is_request_11bit(id)).then_some(req)
            }
            Job::UdsDid { ecu, .. } => {
                let e = self.findings.uds.get(ecu)?;
                (id == e.response_id).then_some(e.request_id)
            }
        }
    }

    fn on_answer_frame(
        &mut self,
        id: u32,
        extended: bool,
        flow_to: u32,
        data: &[u8],
        now: Duration,
        out: &mut Vec<CanFrame>,
    ) {
        match self.rx.on_frame(id, data, now) {
            Ok(RxEvent::FlowControl(fc)) => {
                out.extend(CanFrame::from_raw(flow_to, extended, fc));
                if let Some(f) = &mut self.inflight {
                    f.deadline = f.deadline.max(now + self.settings.isotp_n_cr);
                }
            }
            Ok(RxEvent::Complete(payload)) => {
                self.answer.clear();
                self.answer.extend_from_slice(payload);
                let answer = std::mem::take(&mut self.answer);
                self.on_answer(id, extended, &answer, now);
                self.answer = answer;
            }
            Ok(RxEvent::Pending) => {}
            Err(_) => self.findings.transport_errors += 1,
        }
    }

    fn on_answer(&mut self, id: u32, extended: bool, payload: &[u8], now: Duration) {
        let Some(f) = &mut self.inflight else { return };
        let job = f.job;
        // 7F <sid> 78: the answer follows within P2*.
        if payload.first() == Some(&0x7F) && payload.get(2) == Some(&0x78) {
            f.deadline = f.deadline.max(now + self.settings.pending_timeout);
            return;
        }
        let physical_done = match job {
            Job::ObdFunctional { .. } | Job::ObdPhysical { .. } | Job::ObdBitmap { .. } => {
                self.on_obd_bitmap(id, extended, payload, now);
                !matches!(job, Job::ObdFunctional { .. })
            }
            Job::SpeedCheck => {
                self.on_obd_data(payload, now);
                false
            }
            Job::Vin => {
                if let Some(vin) = parse_vin(payload) {
                    if let Some(e) = self.findings.obd.get_mut(&id) {
                        e.vin = Some(vin.clone());
                    }
                    self.findings.vin.get_or_insert(vin);
                }
                false
            }
            Job::UdsProbe { request_id } => {
                let positive = payload.first() == Some(&0x7E);
                let negative = payload.starts_with(&[0x7F, 0x3E]);
                if positive || negative {
                    self.findings.uds.push(UdsEcu {
                        request_id: u32::from(request_id),
                        response_id: id,
                        tester_present: positive,
                        dids: Vec::new(),
                    });
                    let ecu = self.findings.uds.len() - 1;
                    // Right after the probe, before the next id is probed.
                    for (i, did) in self.settings.dids.iter().enumerate() {
                        self.queue.insert(i, Job::UdsDid { ecu, did: *did });
                    }
                }
                positive || negative
            }
            Job::UdsDid { ecu, did } => {
                let answer = match payload {
                    [0x62, hi, lo, data @ ..] if u16::from_be_bytes([*hi, *lo]) == did => {
                        DidAnswer::Data(data.to_vec())
                    }
                    [0x7F, 0x22, nrc, ..] => DidAnswer::Refused(*nrc),
                    _ => DidAnswer::Unexpected(payload.to_vec()),
                };
                // serviceNotSupported: this ECU reads no DID at all; ask it no more.
                if answer == DidAnswer::Refused(0x11) {
                    self.queue
                        .retain(|j| !matches!(j, Job::UdsDid { ecu: e, .. } if *e == ecu));
                }
                if let Some(e) = self.findings.uds.get_mut(ecu) {
                    e.dids.push((did, answer));
                }
                true
            }
        };
        if physical_done && self.status == Status::Running {
            self.finish(now);
        }
    }

    /// A mode 01 answer during discovery: the ECU exists, its bitmaps, the next in the chain.
    fn on_obd_bitmap(&mut self, id: u32, extended: bool, payload: &[u8], now: Duration) {
        if payload.first() != Some(&(0x01 + obd::POSITIVE_RESPONSE_OFFSET)) {
            return;
        }
        let request_id = if extended {
            obd::PHYSICAL_REQUEST_ID_29_BASE | ((id & 0xFF) << 8)
        } else {
            id.saturating_sub(8)
        };
        let ecu = self.findings.obd.entry(id).or_insert_with(|| ObdEcu {
            request_id,
            response_id: id,
            extended,
            supported: obd::SupportedPids::default(),
            vin: None,
        });
        if let Ok(values) = obd::parse_current_data(payload) {
            for v in values.flatten() {
                ecu.supported.absorb(&v);
            }
        }
        // The chain continues physically with the next bitmap this ECU advertises.
        if let Some(base) = ecu.supported.next_query() {
            let job = Job::ObdBitmap {
                response_id: id,
                base,
            };
            if !self.queue.contains(&job) {
                self.queue.push_front(job);
            }
        }
        self.on_obd_data(payload, now);
    }

    /// Any mode 01 answer: speed above 0 stops the scan.
    fn on_obd_data(&mut self, payload: &[u8], now: Duration) {
        let Ok(values) = obd::parse_current_data(payload) else {
            return;
        };
        for v in values.flatten() {
            if let PidValue::VehicleSpeed { kmh } = v
                && kmh > 0
            {
                self.stop(
                    StopReason::Moving {
                        source: "OBD-II PID 0x0D".into(),
                        kmh: f32::from(kmh),
                    },
                    now,
                );
                return;
            }
        }
    }

    fn stop(&mut self, reason: StopReason, _now: Duration) {
        self.status = Status::Stopped(reason);
        self.queue.clear();
        self.inflight = None;
    }

    /// The request in flight has had its time (or its one answer).
    fn finish(&mut self, _now: Duration) {
        let Some(f) = self.inflight.take() else {
            return;
        };
        if let Job::UdsDid { ecu, did } = f.job
            && let Some(e) = self.findings.uds.get_mut(ecu)
            && !e.dids.iter().any(|(d, _)| *d == did)
        {
            e.dids.push((did, DidAnswer::Silent));
        }
    }

    /// Advances timers and sends the next request when one is due. Returns when to call again
    /// (`None`: done or stopped).
    pub fn poll(&mut self, now: Duration, out: &mut Vec<CanFrame>) -> Option<Duration> {
        if self.status != Status::Running {
            return None;
        }
        let started = *self.started.get_or_insert(now);
        if self.rx.poll(now).is_err() {
            self.findings.transport_errors += 1;
        }
        if let Some(f) = &self.inflight {
            if now < f.deadline {
                return Some(f.deadline);
            }
            self.finish(now);
        }
        let listen_end = started + self.settings.listen;
        if now < listen_end {
            return Some(listen_end);
        }
        let gap_end = self.last_request.map_or(now, |t| t + self.settings.min_gap);
        if now < gap_end {
            return Some(gap_end);
        }
        let Some(job) = self.next_job(now) else {
            self.status = Status::Done;
            return None;
        };
        self.send(job, now, out);
        self.inflight.as_ref().map(|f| f.deadline)
    }

    fn next_job(&mut self, now: Duration) -> Option<Job> {
        if !self.planned_obd {
            self.planned_obd = true;
            self.queue.push_back(Job::ObdFunctional { extended: false });
            self.queue
                .extend((0..8).map(|ecu| Job::ObdPhysical { ecu }));
            if self.settings.obd_29bit {
                self.queue.push_back(Job::ObdFunctional { extended: true });
            }
        }
        let speed_source = self
            .findings
            .obd
            .values()
            .any(|e| e.supported.contains(0x0D));
        let speed_due = self
            .last_speed_check
            .is_none_or(|t| now >= t + self.settings.speed_check_every);
        // As soon as an ECU says it has the speed (its first bitmap), and then every period.
        if speed_source && speed_due {
            return Some(Job::SpeedCheck);
        }
        if self.queue.is_empty() && !self.planned_uds {
            self.planned_uds = true;
            if !self.findings.obd.is_empty() {
                self.queue.push_back(Job::Vin);
            }
            self.queue.extend(
                self.settings
                    .uds_ids
                    .iter()
                    .map(|&request_id| Job::UdsProbe { request_id }),
            );
        }
        while let Some(job) = self.queue.pop_front() {
            // An ECU found on the functional request needs no physical probe.
            if let Job::ObdPhysical { ecu } = job
                && self.findings.obd.contains_key(&(0x7E8 + u32::from(ecu)))
            {
                continue;
            }
            // An id already found answering (as another probe's response id) is skipped.
            if let Job::UdsProbe { request_id } = job
                && self
                    .findings
                    .uds
                    .iter()
                    .any(|e| e.response_id == u32::from(request_id))
            {
                continue;
            }
            return Some(job);
        }
        None
    }

    fn send(&mut self, job: Job, now: Duration, out: &mut Vec<CanFrame>) {
        let (id, extended, req): (u32, bool, Vec<u8>) = match job {
            Job::ObdFunctional { extended: false } => (
                u32::from(obd::FUNCTIONAL_REQUEST_ID),
                false,
                vec![0x01, 0x00],
            ),
            Job::ObdFunctional { extended: true } => {
                (obd::FUNCTIONAL_REQUEST_ID_29, true, vec![0x01, 0x00])
            }
            Job::ObdPhysical { ecu } => (0x7E0 + u32::from(ecu), false, vec![0x01, 0x00]),
            Job::ObdBitmap { response_id, base } => {
                let Some(e) = self.findings.obd.get(&response_id) else {
                    return;
                };
                (e.request_id, e.extended, vec![0x01, base])
            }
            Job::SpeedCheck | Job::Vin => {
                let extended = self.findings.obd_extended();
                let id = if extended {
                    obd::FUNCTIONAL_REQUEST_ID_29
                } else {
                    u32::from(obd::FUNCTIONAL_REQUEST_ID)
                };
                let req = if job == Job::Vin {
                    vec![0x09, 0x02]
                } else {
                    self.last_speed_check = Some(now);
                    vec![0x01, 0x0D]
                };
                (id, extended, req)
            }
            Job::UdsProbe { request_id } => (u32::from(request_id), false, vec![0x3E, 0x00]),
            Job::UdsDid { ecu, did } => {
                let Some(e) = self.findings.uds.get(ecu) else {
                    return;
                };
                let [hi, lo] = did.to_be_bytes();
                (e.request_id, false, vec![0x22, hi, lo])
            }
        };
        // A single frame, padded to 8 bytes (ISO 15765-4).
        let mut data = [0u8; 8];
        data[0] = req.len() as u8;
        data[1..=req.len()].copy_from_slice(&req);
        let Some(frame) = CanFrame::from_raw(id, extended, &data) else {
            return;
        };
        out.push(frame);
        self.findings.requests += 1;
        self.last_request = Some(now);
        self.inflight = Some(InFlight {
            job,
            deadline: now + self.settings.response_timeout,
        });
    }
}

/// Whether an 11-bit id is an OBD-II request or answer id (not broadcast).
fn is_diagnostic_11bit(id: u32) -> bool {
    (0x7DF..=0x7EF).contains(&id)
}

/// Whether an 11-bit id is an OBD-II request id (functional or physical).
fn is_request_11bit(id: u32) -> bool {
    (0x7DF..=0x7E7).contains(&id)
}

/// The VIN from a `49 02` answer: with the item count byte (ISO 15765-4) or without (some
/// older ECUs), leading zero padding dropped. `None` if it is not 17 valid characters.
fn parse_vin(payload: &[u8]) -> Option<String> {
    let rest = payload.strip_prefix(&[0x49, 0x02])?;
    let body = if rest.len() == 18 {
        rest.get(1..)?
    } else {
        rest
    };
    let body: Vec<u8> = body.iter().copied().skip_while(|b| *b == 0).collect();
    rapport_shared::Vin::from_bytes(&body)
        .ok()
        .map(|v| v.as_str().to_owned())
}
