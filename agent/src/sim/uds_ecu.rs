//! A simulated UDS (ISO 14229) ECU: 0x22 ReadDataByIdentifier for a configurable odometer
//! DID (and the VIN at 0xF190), 0x19 ReadDTCInformation sub-functions 0x01 and 0x02 from the
//! [`VehicleState`]'s UDS faults, 0x10 and 0x3E so a poller's session handling works, and
//! negative responses — including one `7F <sid> 78` responsePending before a slow answer.
//!
//! Modes ([`UdsMode`]), to test a poller with several ECUs: one that never answers, one that
//! answers everything with `7F <sid> 78` first and the real answer later.
//!
//! Does not own: ISO-TP ([`super::link`]) or the state. Silent while the ignition is off.

use core::time::Duration;

use crate::can::CanFrame;
use crate::proto::isotp::Config;

use super::drive::VehicleState;
use super::link::{IsoTpAddress, Link};
use super::{Moment, SimEcu};

/// The VIN DID (ISO 14229-1 annex C).
pub(crate) const DID_VIN: u16 = 0xF190;

/// How a simulated UDS ECU behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UdsMode {
    /// Answers at once (0x19 slowly only if its config says so).
    #[default]
    Normal,
    /// Never answers anything (unpowered, or behind a gateway that drops it).
    Silent,
    /// Answers 0x22 and 0x19 with `7F <sid> 78` at once and for real this much later.
    Slow(Duration),
}

/// How a simulated UDS ECU is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UdsEcuConfig {
    /// Its CAN ids.
    pub(crate) address: IsoTpAddress,
    /// The DID answering the odometer: 3 bytes, big-endian, 0.1 km per bit.
    pub(crate) odometer_did: u16,
    /// VIN for DID 0xF190, if it answers that.
    pub(crate) vin: Option<[u8; 17]>,
    /// DTC status availability mask it reports in 0x59 responses.
    pub(crate) availability_mask: u8,
    /// Services answered slowly: `7F <sid> 78` at once, the answer this much later.
    pub(crate) slow_services: Vec<u8>,
    /// How much later (`None`: every answer at once).
    pub(crate) response_delay: Option<Duration>,
    /// ISO-TP timing and padding of its responses.
    pub(crate) isotp: Config,
    /// Its name in logs.
    pub(crate) name: String,
    /// Never answers anything ([`UdsMode::Silent`]).
    pub(crate) silent: bool,
}

impl UdsEcuConfig {
    /// The config in `mode`.
    pub(crate) fn with_mode(mut self, mode: UdsMode) -> Self {
        match mode {
            UdsMode::Normal => {}
            UdsMode::Silent => self.silent = true,
            UdsMode::Slow(delay) => {
                self.slow_services = vec![0x22, 0x19];
                self.response_delay = Some(delay);
            }
        }
        self
    }
}

impl Default for UdsEcuConfig {
    /// 0x714 → 0x77E, odometer at DID 0xF1A0, availability mask 0xFF, answers at once.
    fn default() -> Self {
        Self {
            address: IsoTpAddress::pair_11bit(0x714, 0x77E),
            odometer_did: 0xF1A0,
            vin: None,
            availability_mask: 0xFF,
            slow_services: vec![0x19],
            response_delay: None,
            isotp: Config::default(),
            name: "uds".into(),
            silent: false,
        }
    }
}

/// A simulated UDS ECU.
#[derive(Debug)]
pub(crate) struct UdsEcu {
    config: UdsEcuConfig,
    link: Link,
    response: Vec<u8>,
    /// A request answered with 0x78, to answer for real at the given time.
    deferred: Vec<u8>,
    deferred_at: Option<Duration>,
}

impl UdsEcu {
    /// An ECU as `config` says.
    pub(crate) fn new(config: UdsEcuConfig) -> Self {
        Self {
            link: Link::new(config.address, config.isotp),
            config,
            response: Vec::with_capacity(64),
            deferred: Vec::with_capacity(16),
            deferred_at: None,
        }
    }

    fn reset(&mut self) {
        self.link.reset();
        self.deferred_at = None;
    }
}

/// Builds the answer to `request` into `resp`; `false`: no answer at all.
fn answer(config: &UdsEcuConfig, state: &VehicleState, request: &[u8], resp: &mut Vec<u8>) -> bool {
    resp.clear();
    let Some((&sid, args)) = request.split_first() else {
        return false;
    };
    let negative = |resp: &mut Vec<u8>, nrc: u8| {
        resp.clear();
        resp.extend_from_slice(&[0x7F, sid, nrc]);
        true
    };
    match sid {
        0x10 => match args {
            // 50 <session> | P2 50 ms | P2* 5000 ms (in 10 ms units)
            [session] => {
                resp.extend_from_slice(&[0x50, *session, 0x00, 0x32, 0x01, 0xF4]);
                true
            }
            _ => negative(resp, 0x13),
        },
        0x3E => match args {
            [0x00] => {
                resp.extend_from_slice(&[0x7E, 0x00]);
                true
            }
            // suppressPosRspMsgIndicationBit: no answer.
            [0x80] => false,
            [_] => negative(resp, 0x12),
            _ => negative(resp, 0x13),
        },
        0x22 => {
            if args.is_empty() || args.len() % 2 != 0 {
                return negative(resp, 0x13);
            }
            resp.push(0x62);
            for pair in args.chunks_exact(2) {
                let &[hi, lo] = pair else { continue };
                let did = u16::from_be_bytes([hi, lo]);
                if did == config.odometer_did {
                    let hm = u32::try_from(state.odometer_mm / 100_000)
                        .unwrap_or(u32::MAX)
                        .min(0x00FF_FFFF);
                    resp.extend_from_slice(pair);
                    resp.extend_from_slice(&hm.to_be_bytes()[1..]);
                } else if let (DID_VIN, Some(vin)) = (did, config.vin) {
                    resp.extend_from_slice(pair);
                    resp.extend_from_slice(&vin);
                }
            }
            if resp.len() == 1 {
                return negative(resp, 0x31);
            }
            true
        }
        0x19 => match args {
            [sub @ (0x01 | 0x02), mask] => {
                let mask = mask & config.availability_mask;
                let matching = state.uds_codes().filter(|(_, st)| st.0 & mask != 0);
                if *sub == 0x01 {
                    let n = u16::try_from(matching.count()).unwrap_or(u16::MAX);
                    let [hi, lo] = n.to_be_bytes();
                    // 59 01 <avail> <format 01 = ISO 14229-1> <count>
                    resp.extend_from_slice(&[0x59, 0x01, config.availability_mask, 0x01, hi, lo]);
                } else {
                    resp.extend_from_slice(&[0x59, 0x02, config.availability_mask]);
                    for (code, status) in matching {
                        resp.extend_from_slice(&code.raw().to_be_bytes()[1..]);
                        resp.push(status.0);
                    }
                }
                true
            }
            [0x01 | 0x02, ..] => negative(resp, 0x13),
            [_, ..] => negative(resp, 0x12),
            [] => negative(resp, 0x13),
        },
        _ => negative(resp, 0x11),
    }
}

impl SimEcu for UdsEcu {
    fn on_frame(&mut self, frame: &CanFrame, at: Moment<'_>, out: &mut Vec<CanFrame>) {
        let Moment { now, state } = at;
        if self.config.silent || !state.power.ecus_awake() {
            self.reset();
            return;
        }
        if !self.link.on_frame(frame, now, out) {
            return;
        }
        // A new request supersedes one still being worked on.
        self.deferred_at = None;
        let request = self.link.request();
        let sid = request.first().copied().unwrap_or(0);
        if let Some(delay) = self.config.response_delay
            && self.config.slow_services.contains(&sid)
        {
            self.deferred.clear();
            self.deferred.extend_from_slice(request);
            self.deferred_at = Some(now.saturating_add(delay));
            self.link.respond(&[0x7F, sid, 0x78], now, out);
            return;
        }
        if answer(&self.config, state, request, &mut self.response) {
            self.link.respond(&self.response, now, out);
        }
    }

    fn poll(&mut self, now: Duration, state: &VehicleState, out: &mut Vec<CanFrame>) {
        if !state.power.ecus_awake() {
            self.reset();
            return;
        }
        if self.deferred_at.is_some_and(|t| t <= now) {
            self.deferred_at = None;
            if answer(&self.config, state, &self.deferred, &mut self.response) {
                self.link.respond(&self.response, now, out);
            }
        }
        self.link.poll(now, out);
    }

    fn next_deadline(&self) -> Option<Duration> {
        match (self.deferred_at, self.link.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn name(&self) -> &str {
        &self.config.name
    }
}
