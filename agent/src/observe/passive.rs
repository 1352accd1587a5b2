//! The passive decoder: reads OBD-II, UDS, J1939 and DBC traffic off a trace or bus without
//! ever sending, and hands readings, DTC reports and warnings to a [`Sink`].
//!
//! - ISO-TP: a passive [`Demux`] on the response ids (0x7E8–0x7EF and 0x18DAF1xx when
//!   `[obd]` is configured, each `[[uds]]` ECU's response id), and a passive [`Receiver`] of its
//!   own for each ECU with extended addressing (its frames start with an address byte, and ECUs
//!   may share ids); each UDS ECU's answers are decoded with its own DID table; the last
//!   single-frame request seen on each request id is kept so a negative response can name
//!   what it refused.
//! - J1939: a passive [`TransportProtocol`] plus DM1, VD, VDHR, HOURS and CCVS1.
//! - DBC: the config's [`DecodePlan`].
//!
//! Owns the routing of frames to those decoders and the mapping of their values to
//! readings. Does not own plausibility or DTC sets (the [`Sink`] does) nor bus interfaces (one
//! bus per decoder: the [`super::Observer`] keeps one per bus and tells the sink which).

use core::time::Duration;

use embedded_can::Frame as _;
use rapport_shared::{Dtc, EngineHours, Severity, SignalSource, hex};

use super::conversions::j1939_dtc;
use super::dtc_set::{
    DM2_SEVERITY, DtcList, UDS_CLASSES, j1939_severity, obd_severity, uds_class, uds_severity,
};
use super::{Lamps, Observation, Sink, WarningKind};
use crate::can::source::TimedFrame;
use crate::config::{DbcRole, DidRole};
use crate::proto::dbc::DecodePlan;
use crate::proto::isotp::{self, Demux, Interrupted, Receiver, RxEvent};
use crate::proto::j1939::dm1::{PGN_DM1, PGN_DM2};
use crate::proto::j1939::pgn::{
    CruiseControlVehicleSpeed, EngineHours as HoursPgn, HighResVehicleDistance, PGN_CCVS1,
    PGN_HOURS, PGN_VD, PGN_VDHR, VehicleDistance,
};
use crate::proto::j1939::{Dm1, J1939Id, TpConfig, TpEvent, TransportProtocol};
use crate::proto::obd::{self, DtcMode, PidValue};
use crate::proto::uds::{self, DidTable, Nrc, Outcome, Service};

mod settings;
pub(crate) use settings::{DbcSettings, J1939Settings, Settings, UdsSettings};

/// Most ECUs reassembled at once (one functional OBD-II request answers from up to 8, plus
/// 29-bit ECUs and the UDS ECU).
const MAX_ISOTP_CHANNELS: usize = 16;
/// Most request ids remembered.
const MAX_REQUESTS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Request {
    id: u32,
    bytes: [u8; 7],
    len: u8,
}

impl Request {
    fn payload(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// Decodes diagnostic payloads; split from the ISO-TP demux so a borrowed payload and this
/// state can be used at once.
#[derive(Debug)]
struct Diag {
    obd: Option<u8>,
    /// The UDS ECUs on this bus.
    uds: Vec<UdsPart>,
    /// For answers from no configured UDS ECU.
    no_dids: DidTable,
    requests: Vec<Request>,
    /// MIL per OBD-II response id, from PID 01.
    mil: Vec<(u32, bool)>,
    scratch: Vec<(Dtc, Severity)>,
}

/// One UDS ECU as the decoder knows it.
#[derive(Debug)]
struct UdsPart {
    request_id: u32,
    response_id: u32,
    /// Extended addressing: (its address, ours).
    address: Option<(u8, u8)>,
    dids: DidTable,
    /// (DID, role, in metres).
    did_roles: Vec<(u16, DidRole, bool)>,
}

#[derive(Debug)]
struct J1939Pgns {
    sources: Option<Vec<u8>>,
    lamps: Vec<(u8, Lamps)>,
    park: Option<bool>,
    scratch: Vec<(Dtc, Severity)>,
}

#[derive(Debug)]
struct DbcPart {
    plan: DecodePlan,
    roles: Vec<DbcRole>,
    /// Raw values of the park signal that mean "parked": the config's `parked_values`, labels
    /// resolved through the DBC's `VAL_` table once here, so the per-frame check is a compare.
    parked_raw: Vec<i128>,
    odometer_in_m: bool,
    /// Resolution of the odometer signal in m (its factor).
    odometer_step_m: u64,
    /// The last park state, to report changes only (the signal repeats every cycle).
    park: Option<bool>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct PassiveDecoder {
    demux: Demux,
    /// (index into `diag.uds`, its receiver) for each ECU with extended addressing.
    addressed: Vec<(usize, Receiver)>,
    diag: Diag,
    tp: Option<TransportProtocol>,
    pgns: J1939Pgns,
    dbc: Option<DbcPart>,
}

fn warn(sink: &mut impl Sink, kind: WarningKind, what: String) {
    sink.observe(Observation::Warning { kind, what });
}

/// A warning about an answer from the ECU at `rx`.
fn warn_from(sink: &mut impl Sink, kind: WarningKind, rx: u32, err: impl core::fmt::Display) {
    warn(sink, kind, format!("from {}: {err}", id_text(rx)));
}

/// A CAN id as config and JSON write it: 3 hex digits for 11-bit, 8 for 29-bit.
fn id_text(id: u32) -> String {
    if id <= 0x7FF {
        format!("0x{id:03X}")
    } else {
        format!("0x{id:08X}")
    }
}

impl PassiveDecoder {
    /// A decoder for the protocols `settings` names.
    pub(crate) fn new(settings: &Settings) -> Self {
        let uds: Vec<UdsPart> = settings
            .uds
            .iter()
            .map(|u| UdsPart {
                request_id: u.request_id,
                response_id: u.response_id,
                address: u.address,
                // The config's checks refuse bad DIDs; an empty table only loses decoding.
                dids: DidTable::new(u.dids.iter().map(|(spec, _)| spec.clone()).collect())
                    .unwrap_or_default(),
                did_roles: u
                    .dids
                    .iter()
                    .filter_map(|(spec, role)| {
                        role.map(|r| (spec.did, r, spec.unit.as_deref() == Some("m")))
                    })
                    .collect(),
            })
            .collect();
        let addressed = uds
            .iter()
            .enumerate()
            .filter_map(|(i, u)| {
                let (ecu, tester) = u.address?;
                let rx = Receiver::new_passive(u.response_id, isotp::Config::default());
                Some((i, rx.with_extended_address(tester, ecu)))
            })
            .collect();
        let dbc = settings.dbc.as_ref().map(|d| {
            let odometer = d
                .roles
                .iter()
                .position(|r| *r == DbcRole::Odometer)
                .and_then(|i| d.plan.signals().get(i));
            let odometer_in_m = odometer.is_some_and(|s| s.unit.trim() == "m");
            let factor = odometer.map_or(1.0, |s| s.factor.abs());
            let step = if odometer_in_m {
                factor
            } else {
                factor * 1000.0
            };
            DbcPart {
                plan: d.plan.clone(),
                roles: d.roles.clone(),
                parked_raw: parked_raw(d),
                odometer_in_m,
                odometer_step_m: if step.is_finite() && step >= 1.0 {
                    step.ceil() as u64
                } else {
                    1
                },
                park: None,
            }
        });
        Self {
            demux: Demux::new_passive(isotp::Config::default(), MAX_ISOTP_CHANNELS),
            addressed,
            diag: Diag {
                obd: settings.obd_id_bits,
                uds,
                no_dids: DidTable::default(),
                requests: Vec::new(),
                mil: Vec::new(),
                scratch: Vec::new(),
            },
            tp: settings.j1939.as_ref().map(|_| {
                TransportProtocol::new(TpConfig {
                    own_address: None,
                    ..TpConfig::default()
                })
            }),
            pgns: J1939Pgns {
                sources: settings
                    .j1939
                    .as_ref()
                    .and_then(|j| j.signal_sources.clone()),
                lamps: Vec::new(),
                park: None,
                scratch: Vec::new(),
            },
            dbc,
        }
    }

    /// Takes one frame.
    pub(crate) fn on_frame(&mut self, tf: &TimedFrame, sink: &mut impl Sink) {
        let frame = &tf.frame;
        if frame.is_remote_frame() {
            return;
        }
        let (id, ext, data, now) = (frame.raw_id(), frame.is_extended(), frame.data(), tf.at);
        self.poll_isotp(now, sink);
        if let Some(k) = self.addressed.iter().position(|(i, _)| {
            self.diag.uds.get(*i).is_some_and(|u| {
                u.response_id == id && u.address.map(|a| a.1) == data.first().copied()
            })
        }) {
            self.on_addressed_response(k, data, now, sink);
        } else if self.diag.is_request(id, ext) {
            self.diag.remember(id, data);
        } else if self.diag.is_response(id, ext) {
            self.on_response(id, data, now, sink);
        }
        if ext && self.tp.is_some() {
            self.on_j1939(id, data, now, sink);
        }
        if let Some(dbc) = &mut self.dbc {
            dbc.on_frame(tf, sink);
        }
    }

    /// End of input: reports every reception still open as a warning.
    pub(crate) fn finish(&mut self, now: Duration, sink: &mut impl Sink) {
        let end = self
            .demux
            .deadline()
            .map_or(now, |d| d.max(now))
            .saturating_add(Duration::from_secs(3600));
        self.poll_isotp(end, sink);
        if let Some(tp) = &mut self.tp {
            while let Some(t) = tp.poll(end) {
                warn(
                    sink,
                    WarningKind::J1939,
                    format!(
                        "J1939 TP from 0x{:02X} (PGN {}) incomplete at the end: {} of {} packets",
                        t.source, t.pgn, t.received, t.packets
                    ),
                );
            }
        }
    }

    fn poll_isotp(&mut self, now: Duration, sink: &mut impl Sink) {
        for (_, rx) in &mut self.addressed {
            if let Err(err) = rx.poll(now) {
                warn(sink, WarningKind::IsoTp, err.to_string());
            }
        }
        if self.demux.deadline().is_none_or(|d| d > now) {
            return;
        }
        // Each call reports one timeout and resets that channel; a channel count bounds it.
        for _ in 0..=MAX_ISOTP_CHANNELS {
            match self.demux.poll(now) {
                Ok(()) => break,
                Err(err) => warn(sink, WarningKind::IsoTp, err.to_string()),
            }
        }
    }

    /// A frame from the extended-addressing ECU `addressed[k]`.
    fn on_addressed_response(
        &mut self,
        k: usize,
        data: &[u8],
        now: Duration,
        sink: &mut impl Sink,
    ) {
        let Some((part, rx)) = self.addressed.get_mut(k) else {
            return;
        };
        let id = rx.id();
        match rx.on_frame(data, now) {
            Ok(RxEvent::Complete(payload)) => self.diag.decode(id, Some(*part), payload, now, sink),
            Ok(RxEvent::Pending | RxEvent::FlowControl(_)) => {}
            Err(err) => warn(sink, WarningKind::IsoTp, err.to_string()),
        }
    }

    fn on_response(&mut self, id: u32, data: &[u8], now: Duration, sink: &mut impl Sink) {
        let part = self
            .diag
            .uds
            .iter()
            .position(|u| u.response_id == id && u.address.is_none());
        match self.demux.on_frame(id, data, now) {
            Ok(RxEvent::Complete(payload)) => self.diag.decode(id, part, payload, now, sink),
            Ok(RxEvent::Pending | RxEvent::FlowControl(_)) => {}
            Err(err) => warn(sink, WarningKind::IsoTp, err.to_string()),
        }
        if let Some(lost) = self.demux.receiver(id).and_then(|rx| rx.interrupted()) {
            let (by, received, expected) = match lost {
                Interrupted::BySingleFrame { received, expected } => {
                    ("single frame", received, expected)
                }
                Interrupted::ByFirstFrame { received, expected } => {
                    ("first frame", received, expected)
                }
            };
            warn(
                sink,
                WarningKind::IsoTp,
                format!(
                    "ISO-TP message from {} abandoned after {received} of {expected} bytes: a new {by} started",
                    id_text(id)
                ),
            );
        }
    }

    fn on_j1939(&mut self, id: u32, data: &[u8], now: Duration, sink: &mut impl Sink) {
        let Some(tp) = &mut self.tp else {
            return;
        };
        while let Some(t) = tp.poll(now) {
            warn(
                sink,
                WarningKind::J1939,
                format!(
                    "J1939 TP from 0x{:02X} to 0x{:02X} (PGN {}) timed out after {} of {} packets",
                    t.source, t.destination, t.pgn, t.received, t.packets
                ),
            );
        }
        match tp.on_frame(id, data, now) {
            Ok(Some(TpEvent::Message { message, .. })) => {
                self.pgns
                    .decode(message.pgn, message.source, message.data, now, sink);
            }
            Ok(Some(TpEvent::Aborted {
                source,
                pgn,
                reason,
                ..
            })) => warn(
                sink,
                WarningKind::J1939,
                format!("J1939 TP from 0x{source:02X} (PGN {pgn}) aborted, reason {reason}"),
            ),
            Ok(Some(TpEvent::Send(_)) | None) => {}
            Err(err) => warn(sink, WarningKind::J1939, err.to_string()),
        }
        if let Ok(jid) = J1939Id::from_raw(id) {
            self.pgns.decode(jid.pgn(), jid.source(), data, now, sink);
        }
    }
}

impl Diag {
    fn is_request(&self, id: u32, ext: bool) -> bool {
        if self.uds.iter().any(|u| u.request_id == id) {
            return true;
        }
        match (self.obd, ext) {
            (Some(11), false) => id == 0x7DF || (0x7E0..=0x7E7).contains(&id),
            (Some(29), true) => {
                id == obd::FUNCTIONAL_REQUEST_ID_29
                    || id & 0x1FFF_00FF == obd::PHYSICAL_REQUEST_ID_29_BASE
            }
            _ => false,
        }
    }

    fn is_response(&self, id: u32, ext: bool) -> bool {
        if self
            .uds
            .iter()
            .any(|u| u.response_id == id && u.address.is_none())
        {
            return true;
        }
        match self.obd {
            Some(bits) => (bits == 29) == ext && obd::ecu_from_response_id(id, ext).is_some(),
            None => false,
        }
    }

    fn remember(&mut self, id: u32, data: &[u8]) {
        // Under extended addressing the request starts with the ECU's address.
        let addressed = self
            .uds
            .iter()
            .any(|u| u.request_id == id && u.address.is_some_and(|a| data.first() == Some(&a.0)));
        let data = if addressed {
            data.get(1..).unwrap_or_default()
        } else {
            data
        };
        // Requests are single frames; anything else is not worth remembering.
        let Ok(isotp::Frame::Single(payload)) = isotp::Frame::parse(data) else {
            return;
        };
        let mut bytes = [0u8; 7];
        let len = payload.len().min(bytes.len());
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), payload.get(..len)) {
            dst.copy_from_slice(src);
        }
        let request = Request {
            id,
            bytes,
            len: len as u8,
        };
        if let Some(slot) = self.requests.iter_mut().find(|r| r.id == id) {
            *slot = request;
        } else if self.requests.len() < MAX_REQUESTS {
            self.requests.push(request);
        }
    }

    /// The last request the response on `rx` answers: the configured UDS pair, the physical
    /// request of that ECU, or the functional request.
    fn request_for(&self, rx: u32) -> Option<&Request> {
        let physical = match self.uds.iter().find(|u| u.response_id == rx) {
            Some(u) => Some(u.request_id),
            None if rx <= 0x7FF => rx.checked_sub(8),
            None => Some(obd::physical_request_id_29((rx & 0xFF) as u8)),
        };
        let functional = if rx <= 0x7FF {
            u32::from(obd::FUNCTIONAL_REQUEST_ID)
        } else {
            obd::FUNCTIONAL_REQUEST_ID_29
        };
        physical
            .and_then(|p| self.requests.iter().find(|r| r.id == p))
            .or_else(|| self.requests.iter().find(|r| r.id == functional))
    }

    /// A whole answer from `rx`; `part`: the UDS ECU it is (for its DID table).
    fn decode(
        &mut self,
        rx: u32,
        part: Option<usize>,
        payload: &[u8],
        now: Duration,
        sink: &mut impl Sink,
    ) {
        let Some(&sid) = payload.first() else {
            return;
        };
        match sid {
            0x41 => self.current_data(rx, payload, now, sink),
            0x43 => self.obd_dtcs(rx, payload, DtcMode::Stored, sink),
            0x47 => self.obd_dtcs(rx, payload, DtcMode::Pending, sink),
            0x4A => self.obd_dtcs(rx, payload, DtcMode::Permanent, sink),
            0x62 => self.read_data(rx, part, payload, now, sink),
            0x59 => self.uds_dtcs(rx, payload, sink),
            0x7F => self.negative(rx, payload, sink),
            // VIN, sessions, tester present, …: nothing rapport observes.
            _ => {}
        }
    }

    fn current_data(&mut self, rx: u32, payload: &[u8], now: Duration, sink: &mut impl Sink) {
        let values = match obd::parse_current_data(payload) {
            Ok(v) => v,
            Err(err) => {
                return warn_from(sink, WarningKind::Obd, rx, err);
            }
        };
        for value in values {
            match value {
                Ok(PidValue::Odometer { hectometres }) => {
                    sink.odometer(u64::from(hectometres) * 100, 100, SignalSource::Obd, now)
                }
                Ok(PidValue::VehicleSpeed { kmh }) => sink.observe(Observation::Speed {
                    kmh: f32::from(kmh),
                    source: SignalSource::Obd,
                }),
                Ok(PidValue::MonitorStatus(status)) => {
                    let changed = match self.mil.iter_mut().find(|(e, _)| *e == rx) {
                        Some((_, mil)) => core::mem::replace(mil, status.mil_on) != status.mil_on,
                        None => {
                            self.mil.push((rx, status.mil_on));
                            true
                        }
                    };
                    if changed {
                        sink.observe(Observation::Lamps {
                            lamps: Lamps {
                                mil: Some(status.mil_on),
                                ..Lamps::default()
                            },
                            source: SignalSource::Obd,
                            // The observer sets the bus.
                            bus: 0,
                            ecu: rx,
                        });
                    }
                }
                Ok(_) => {}
                Err(err) => warn_from(sink, WarningKind::Obd, rx, err),
            }
        }
    }

    fn obd_dtcs(&mut self, rx: u32, payload: &[u8], mode: DtcMode, sink: &mut impl Sink) {
        let response = match obd::parse_dtc_response(payload, mode) {
            Ok(r) => r,
            Err(err) => {
                return warn_from(sink, WarningKind::Obd, rx, err);
            }
        };
        let list = match mode {
            DtcMode::Stored => DtcList::ObdConfirmed,
            DtcMode::Pending => DtcList::ObdPending,
            DtcMode::Permanent => DtcList::ObdPermanent,
        };
        let mil = self.mil.iter().find(|(e, _)| *e == rx).map(|(_, m)| *m);
        let severity = obd_severity(list, mil);
        self.scratch.clear();
        self.scratch
            .extend(response.codes.map(|c| (Dtc::Obd(c), severity)));
        sink.dtc_report(list, rx, &self.scratch);
    }

    fn read_data(
        &mut self,
        rx: u32,
        part: Option<usize>,
        payload: &[u8],
        now: Duration,
        sink: &mut impl Sink,
    ) {
        let part = part.and_then(|i| self.uds.get(i));
        let dids = part.map_or(&self.no_dids, |u| &u.dids);
        let roles = part.map_or(&[][..], |u| &u.did_roles[..]);
        let records = match uds::parse_read_data_by_identifier(payload, dids) {
            Ok(Outcome::Positive(records)) => records,
            Ok(Outcome::Pending) => return,
            Err(err) => {
                return warn_from(sink, WarningKind::Uds, rx, err);
            }
        };
        for record in records {
            let record = match record {
                Ok(r) => r,
                Err(err) => {
                    warn_from(sink, WarningKind::Uds, rx, err);
                    break;
                }
            };
            let Some(&(_, role, in_m)) = roles.iter().find(|(d, _, _)| *d == record.did()) else {
                continue;
            };
            let uds::DidValue::Number(value) = record.value() else {
                continue;
            };
            match role {
                DidRole::Odometer => {
                    let meters = if in_m { value } else { value * 1000.0 };
                    if meters.is_finite() && meters >= 0.0 && meters < u64::MAX as f64 {
                        let step = if in_m {
                            record.spec.factor.abs()
                        } else {
                            record.spec.factor.abs() * 1000.0
                        };
                        sink.odometer(
                            meters.round() as u64,
                            step.ceil().max(1.0) as u64,
                            SignalSource::Uds,
                            now,
                        );
                    } else {
                        warn(
                            sink,
                            WarningKind::Uds,
                            format!(
                                "from {}: odometer DID 0x{:04X} reads {value}, not a distance",
                                id_text(rx),
                                record.did()
                            ),
                        );
                    }
                }
                DidRole::Speed => sink.observe(Observation::Speed {
                    kmh: value as f32,
                    source: SignalSource::Uds,
                }),
            }
        }
    }

    fn uds_dtcs(&mut self, rx: u32, payload: &[u8], sink: &mut impl Sink) {
        // Only reportDTCByStatusMask is a complete list; other sub-functions are not reports.
        if payload.get(1) != Some(&uds::dtc::REPORT_DTC_BY_STATUS_MASK) {
            return;
        }
        let report = match uds::parse_report_dtc_by_status_mask(payload) {
            Ok(Outcome::Positive(r)) => r,
            Ok(Outcome::Pending) => return,
            Err(err) => {
                return warn_from(sink, WarningKind::Uds, rx, err);
            }
        };
        // One answer is a complete report of every class: each class set gets its part, an
        // empty part included (so a code that moved from pending to confirmed leaves pending).
        for class in UDS_CLASSES {
            self.scratch.clear();
            for record in report.records.clone() {
                if uds_class(record.status) == Some(class) {
                    self.scratch
                        .push((Dtc::from(record), uds_severity(record.status)));
                }
            }
            sink.dtc_report(DtcList::Uds(class), rx, &self.scratch);
        }
    }

    fn negative(&self, rx: u32, payload: &[u8], sink: &mut impl Sink) {
        let [_, service, nrc, ..] = *payload else {
            return warn(
                sink,
                WarningKind::NegativeResponse,
                format!(
                    "truncated negative response from {}: {}",
                    id_text(rx),
                    hex::encode_spaced(payload)
                ),
            );
        };
        let nrc = Nrc(nrc);
        if nrc == Nrc::RESPONSE_PENDING {
            return;
        }
        let request = self
            .request_for(rx)
            .filter(|r| r.payload().first() == Some(&service))
            .map(|r| format!(" (request {})", hex::encode_spaced(r.payload())))
            .unwrap_or_default();
        warn(
            sink,
            WarningKind::NegativeResponse,
            format!(
                "negative response from {} to {}{request}: {nrc}",
                id_text(rx),
                Service(service)
            ),
        );
    }
}

impl J1939Pgns {
    fn trusted(&self, source: u8) -> bool {
        self.sources.as_ref().is_none_or(|s| s.contains(&source))
    }

    fn decode(&mut self, pgn: u32, source: u8, data: &[u8], now: Duration, sink: &mut impl Sink) {
        let bad = |sink: &mut _, err: crate::proto::j1939::J1939Error| {
            warn(
                sink,
                WarningKind::J1939,
                format!("from 0x{source:02X}: {err}"),
            );
        };
        match pgn {
            PGN_DM1 => match Dm1::parse(data) {
                Ok(dm1) => self.dm1(source, &dm1, sink),
                Err(err) => bad(sink, err),
            },
            // DM2 has DM1's layout; its codes are history (previously active).
            PGN_DM2 => match Dm1::parse(data) {
                Ok(dm2) => {
                    self.scratch.clear();
                    self.scratch.extend(
                        dm2.dtcs()
                            .filter_map(j1939_dtc)
                            .map(|dtc| (dtc, DM2_SEVERITY)),
                    );
                    sink.dtc_report(DtcList::J1939Dm2, u32::from(source), &self.scratch);
                }
                Err(err) => bad(sink, err),
            },
            PGN_VD | PGN_VDHR | PGN_HOURS | PGN_CCVS1 if !self.trusted(source) => {}
            PGN_VD => match VehicleDistance::decode(data) {
                Ok(vd) => {
                    if let Some(m) = vd.total_m.valid() {
                        sink.odometer(m, 125, SignalSource::J1939, now);
                    }
                }
                Err(err) => bad(sink, err),
            },
            PGN_VDHR => match HighResVehicleDistance::decode(data) {
                Ok(vd) => {
                    if let Some(m) = vd.total_m.valid() {
                        sink.odometer(m, 5, SignalSource::J1939, now);
                    }
                }
                Err(err) => bad(sink, err),
            },
            PGN_HOURS => match HoursPgn::decode(data) {
                Ok(h) => {
                    if let Some(secs) = h.total_seconds().valid() {
                        sink.observe(Observation::EngineHours {
                            hours: EngineHours::from_secs(secs),
                            source: SignalSource::J1939,
                        });
                    }
                }
                Err(err) => bad(sink, err),
            },
            PGN_CCVS1 => match CruiseControlVehicleSpeed::decode(data) {
                Ok(c) => {
                    if let Some(raw) = c.wheel_speed_kmh_256.valid() {
                        sink.observe(Observation::Speed {
                            kmh: f32::from(raw) / 256.0,
                            source: SignalSource::J1939,
                        });
                    }
                    if let Some(parked) = c.parking_brake.valid()
                        && self.park != Some(parked)
                    {
                        self.park = Some(parked);
                        sink.observe(Observation::Park {
                            parked,
                            source: SignalSource::J1939,
                        });
                    }
                }
                Err(err) => bad(sink, err),
            },
            _ => {}
        }
    }

    fn dm1(&mut self, source: u8, dm1: &Dm1<'_>, sink: &mut impl Sink) {
        let lamps = Lamps::from(dm1.lamps);
        let changed = match self.lamps.iter_mut().find(|(sa, _)| *sa == source) {
            Some((_, old)) => core::mem::replace(old, lamps) != lamps,
            None => {
                self.lamps.push((source, lamps));
                true
            }
        };
        if changed {
            sink.observe(Observation::Lamps {
                lamps,
                source: SignalSource::J1939,
                // The observer sets the bus.
                bus: 0,
                ecu: u32::from(source),
            });
        }
        let severity = j1939_severity(lamps);
        self.scratch.clear();
        self.scratch
            .extend(dm1.dtcs().filter_map(j1939_dtc).map(|dtc| (dtc, severity)));
        sink.dtc_report(DtcList::J1939Dm1, u32::from(source), &self.scratch);
    }
}

impl DbcPart {
    fn on_frame(&mut self, tf: &TimedFrame, sink: &mut impl Sink) {
        for value in self.plan.decode(&tf.frame) {
            let value = match value {
                Ok(v) => v,
                Err(err) => {
                    warn(sink, WarningKind::Dbc, err.to_string());
                    continue;
                }
            };
            let Some(role) = self.roles.get(value.signal.index()) else {
                continue;
            };
            // Out-of-range values are the DBC's "not available" (e.g. 0xFFFF speed).
            if value.out_of_range || !value.value.is_finite() {
                continue;
            }
            match role {
                DbcRole::Odometer => {
                    let m = if self.odometer_in_m {
                        value.value
                    } else {
                        value.value * 1000.0
                    };
                    if m >= 0.0 && m < u64::MAX as f64 {
                        sink.odometer(
                            m.round() as u64,
                            self.odometer_step_m,
                            SignalSource::Dbc,
                            tf.at,
                        );
                    }
                }
                DbcRole::Speed => sink.observe(Observation::Speed {
                    kmh: value.value as f32,
                    source: SignalSource::Dbc,
                }),
                DbcRole::Park => {
                    let parked = self.parked_raw.contains(&value.raw.as_i128());
                    if self.park == Some(parked) {
                        continue;
                    }
                    self.park = Some(parked);
                    sink.observe(Observation::Park {
                        parked,
                        source: SignalSource::Dbc,
                    });
                }
            }
        }
    }
}

/// The raw values meaning "parked": each configured value is a number, or a label of the park
/// signal's `VAL_` table (`"P"`).
fn parked_raw(d: &DbcSettings) -> Vec<i128> {
    let labels = d
        .roles
        .iter()
        .position(|r| *r == DbcRole::Park)
        .and_then(|i| d.plan.signals().get(i))
        .map(|info| info.labels.as_slice())
        .unwrap_or_default();
    let mut raw = Vec::new();
    for p in &d.parked_values {
        if let Ok(n) = p.trim().parse::<i128>() {
            raw.push(n);
        }
        raw.extend(
            labels
                .iter()
                .filter(|(_, l)| l == p)
                .map(|(v, _)| i128::from(*v)),
        );
    }
    raw
}
