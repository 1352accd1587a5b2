//! A simulated J1939 engine ECU: broadcasts CCVS1 (speed, parking brake), VD and VDHR
//! (total and trip distance), HOURS (engine hours) and DM1 (lamps and active DTCs, over a
//! BAM transport session when they do not fit one frame), and answers the Request PGN —
//! also for DM2 (previously active DTCs: faults the script cleared), which it never
//! broadcasts on its own.
//!
//! Owns the J1939 *transmit* side it needs: 29-bit id building, payload encoding for those
//! PGNs, TP.CM BAM announce and TP.DT packets paced ≥ 50 ms apart (J1939-21). Does not own
//! J1939 decoding ([`crate::proto::j1939`]) or the state. Silent while the ignition is off.

use core::time::Duration;

use embedded_can::Frame;

use crate::can::CanFrame;

use rapport_shared::{Fmi, Spn};

use super::drive::VehicleState;
use super::script::Lamp;
use super::{Moment, SimEcu};

/// PGN 65265 Cruise Control/Vehicle Speed 1.
pub(crate) const PGN_CCVS1: u32 = 0xFEF1;
/// PGN 65248 Vehicle Distance.
pub(crate) const PGN_VD: u32 = 0xFEE0;
/// PGN 65217 High Resolution Vehicle Distance.
pub(crate) const PGN_VDHR: u32 = 0xFEC1;
/// PGN 65253 Engine Hours, Revolutions.
pub(crate) const PGN_HOURS: u32 = 0xFEE5;
/// PGN 65226 DM1, active diagnostic trouble codes.
pub(crate) const PGN_DM1: u32 = 0xFECA;
/// PGN 65227 DM2, previously active diagnostic trouble codes (sent only when requested).
pub(crate) const PGN_DM2: u32 = 0xFECB;
/// PGN 59904 Request.
pub(crate) const PGN_REQUEST: u32 = 0xEA00;
/// PGN 60416 Transport Protocol, Connection Management.
pub(crate) const PGN_TP_CM: u32 = 0xEC00;
/// PGN 60160 Transport Protocol, Data Transfer.
pub(crate) const PGN_TP_DT: u32 = 0xEB00;
/// Global destination address.
pub const GLOBAL: u8 = 0xFF;

/// Most DTCs one DM1 carries: a BAM holds at most 255 packets of 7 bytes.
const MAX_DM1_DTCS: usize = (255 * 7 - 2) / 4;

/// The 29-bit id of `pgn` at `priority` (0–7) from `source` to `destination` (the
/// destination only counts for PDU1 PGNs, PF < 240).
pub(crate) fn j1939_id(priority: u8, pgn: u32, destination: u8, source: u8) -> u32 {
    let pf = (pgn >> 8) & 0xFF;
    let ps = if pf < 240 {
        u32::from(destination)
    } else {
        pgn & 0xFF
    };
    (u32::from(priority & 7) << 26)
        | (((pgn >> 16) & 3) << 24)
        | (pf << 16)
        | (ps << 8)
        | u32::from(source)
}

/// How the simulated J1939 ECU is set up. A `None` period turns that broadcast off (the
/// PGN is still answered on request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct J1939EcuConfig {
    /// Its source address.
    pub source_address: u8,
    /// CCVS1 period (J1939-71: 100 ms).
    pub ccvs1_period: Option<Duration>,
    /// VD period.
    pub vd_period: Option<Duration>,
    /// VDHR period.
    pub vdhr_period: Option<Duration>,
    /// HOURS period (J1939-71: on request; broadcast here for pollers that only listen).
    pub hours_period: Option<Duration>,
    /// DM1 period (J1939-73: 1 s).
    pub dm1_period: Option<Duration>,
    /// Gap between BAM packets (J1939-21: 50 to 200 ms).
    pub bam_gap: Duration,
}

impl Default for J1939EcuConfig {
    /// Engine at SA 0x00 with the standard rates: CCVS1 100 ms, the others 1 s, BAM 50 ms.
    fn default() -> Self {
        let second = Some(Duration::from_secs(1));
        Self {
            source_address: 0x00,
            ccvs1_period: Some(Duration::from_millis(100)),
            vd_period: second,
            vdhr_period: second,
            hours_period: second,
            dm1_period: second,
            bam_gap: Duration::from_millis(50),
        }
    }
}

/// The broadcasts, in the order of [`J1939Ecu::due`].
const PGNS: [u32; 5] = [PGN_CCVS1, PGN_VD, PGN_VDHR, PGN_HOURS, PGN_DM1];

#[derive(Debug, Clone, Copy)]
struct Bam {
    /// Packets in the session.
    packets: u8,
    /// The next packet's sequence number (1-based).
    next: u8,
    /// When it is due.
    at: Duration,
}

/// A simulated J1939 engine ECU.
#[derive(Debug)]
pub struct J1939Ecu {
    config: J1939EcuConfig,
    /// Next due time of each of [`PGNS`].
    due: [Option<Duration>; 5],
    awake: bool,
    /// The message a BAM session is sending.
    bam_data: Vec<u8>,
    bam: Option<Bam>,
    payload: Vec<u8>,
}

impl J1939Ecu {
    /// An ECU as `config` says.
    pub fn new(config: J1939EcuConfig) -> Self {
        Self {
            config,
            due: [None; 5],
            awake: false,
            bam_data: Vec::with_capacity(64),
            bam: None,
            payload: Vec::with_capacity(64),
        }
    }

    fn periods(&self) -> [Option<Duration>; 5] {
        let c = &self.config;
        [
            c.ccvs1_period,
            c.vd_period,
            c.vdhr_period,
            c.hours_period,
            c.dm1_period,
        ]
    }

    fn frame(&self, priority: u8, pgn: u32, data: &[u8]) -> Option<CanFrame> {
        let id = j1939_id(priority, pgn, GLOBAL, self.config.source_address);
        CanFrame::from_raw(id, true, data)
    }

    /// Sends `pgn` now: one frame, or a BAM announce when it is longer than 8 bytes (a
    /// session already running makes this DM1 wait for the next period).
    fn send(&mut self, pgn: u32, now: Duration, state: &VehicleState, out: &mut Vec<CanFrame>) {
        encode(pgn, self.config.source_address, state, &mut self.payload);
        if self.payload.len() <= 8 {
            self.payload.resize(8, 0xFF);
            if let Some(f) = self.frame(6, pgn, &self.payload) {
                out.push(f);
            }
            return;
        }
        if self.bam.is_some() {
            return;
        }
        core::mem::swap(&mut self.bam_data, &mut self.payload);
        let len = self.bam_data.len();
        let packets = u8::try_from(len.div_ceil(7)).unwrap_or(u8::MAX);
        let [len_lo, len_hi] = u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes();
        let [p0, p1, p2, _] = pgn.to_le_bytes();
        // TP.CM BAM: 20 | size | packets | FF | PGN
        let announce = [0x20, len_lo, len_hi, packets, 0xFF, p0, p1, p2];
        if let Some(f) = self.frame(7, PGN_TP_CM, &announce) {
            out.push(f);
        }
        self.bam = Some(Bam {
            packets,
            next: 1,
            at: now.saturating_add(self.config.bam_gap),
        });
    }

    fn send_bam_packet(&mut self, now: Duration, out: &mut Vec<CanFrame>) {
        let Some(bam) = self.bam.as_mut() else {
            return;
        };
        if bam.at > now {
            return;
        }
        let start = usize::from(bam.next - 1) * 7;
        let chunk = self.bam_data.get(start..).unwrap_or_default();
        let chunk = chunk.get(..7).unwrap_or(chunk);
        // TP.DT: sequence | 7 bytes, the last packet padded with FF.
        let mut dt = [0xFF; 8];
        dt[0] = bam.next;
        if let Some(dst) = dt.get_mut(1..1 + chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        let id = j1939_id(7, PGN_TP_DT, GLOBAL, self.config.source_address);
        if let Some(f) = CanFrame::from_raw(id, true, &dt) {
            out.push(f);
        }
        if bam.next >= bam.packets {
            self.bam = None;
        } else {
            bam.next += 1;
            bam.at = now.saturating_add(self.config.bam_gap);
        }
    }

    fn sleep(&mut self) {
        self.awake = false;
        self.due = [None; 5];
        self.bam = None;
    }
}

/// Encodes `pgn`'s payload for `source` into `out` (unpadded; DM1 may exceed 8 bytes).
fn encode(pgn: u32, source: u8, state: &VehicleState, out: &mut Vec<u8>) {
    out.clear();
    // J1939-71 caps valid values at 0xFAFFFFFF; above is error / not available.
    let cap = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).min(0xFAFF_FFFF);
    let odometer_m = state.odometer_mm / 1000;
    match pgn {
        PGN_CCVS1 => {
            // Byte 1: parking brake switch (SPN 70) in bits 3-4, the rest not available.
            let byte1 = 0xF3 | (u8::from(state.park) << 2);
            let [lo, hi] = state.speed.raw().to_le_bytes();
            out.extend_from_slice(&[byte1, lo, hi, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        PGN_VD => {
            // SPN 244 trip, SPN 245 total: 0.125 km per bit.
            out.extend_from_slice(&cap(state.trip_m() / 125).to_le_bytes());
            out.extend_from_slice(&cap(odometer_m / 125).to_le_bytes());
        }
        PGN_VDHR => {
            // SPN 917 total, SPN 918 trip: 5 m per bit.
            out.extend_from_slice(&cap(odometer_m / 5).to_le_bytes());
            out.extend_from_slice(&cap(state.trip_m() / 5).to_le_bytes());
        }
        PGN_HOURS => {
            // SPN 247: 0.05 h = 180 s per bit; SPN 249 revolutions not available.
            out.extend_from_slice(&cap(state.engine_time.as_secs() / 180).to_le_bytes());
            out.extend_from_slice(&[0xFF; 4]);
        }
        PGN_DM1 | PGN_DM2 => {
            // The lamps are the ECU's current ones in both (J1939-73).
            let mut lamps = 0u8;
            for (_, _, lamp, _) in state.j1939_faults(source) {
                lamps |= match lamp {
                    Lamp::None => 0,
                    Lamp::Mil => 0x40,
                    Lamp::RedStop => 0x10,
                    Lamp::AmberWarning => 0x04,
                    Lamp::Protect => 0x01,
                };
            }
            // Lamp status, then flash status "not available".
            out.extend_from_slice(&[lamps, 0xFF]);
            let mut dtc = |(spn, fmi, _, oc): (Spn, Fmi, Lamp, u8)| {
                let [s0, s1, s2, _] = spn.get().to_le_bytes();
                // SPN low, mid, (SPN high 3 bits | FMI), (CM 0 | OC)
                out.extend_from_slice(&[s0, s1, ((s2 & 0x07) << 5) | fmi.get(), oc & 0x7F]);
            };
            if pgn == PGN_DM1 {
                state
                    .j1939_faults(source)
                    .take(MAX_DM1_DTCS)
                    .for_each(&mut dtc);
            } else {
                state
                    .j1939_previously_active(source)
                    .take(MAX_DM1_DTCS)
                    .for_each(&mut dtc);
            }
            if out.len() == 2 {
                // No DTC: an all-zero DTC, as trucks send (J1939-73).
                out.extend_from_slice(&[0, 0, 0, 0]);
            }
        }
        _ => {}
    }
}

impl SimEcu for J1939Ecu {
    fn on_frame(&mut self, frame: &CanFrame, at: Moment<'_>, out: &mut Vec<CanFrame>) {
        let Moment { now, state } = at;
        if !state.power.ecus_awake() || !frame.is_extended() {
            return;
        }
        let id = frame.raw_id();
        let pf = (id >> 16) & 0xFF;
        let ps = ((id >> 8) & 0xFF) as u8;
        if pf != PGN_REQUEST >> 8 || (ps != self.config.source_address && ps != GLOBAL) {
            return;
        }
        let &[p0, p1, p2, ..] = frame.data() else {
            return;
        };
        let pgn = u32::from_le_bytes([p0, p1, p2, 0]);
        if PGNS.contains(&pgn) || pgn == PGN_DM2 {
            self.send(pgn, now, state, out);
        }
    }

    fn poll(&mut self, now: Duration, state: &VehicleState, out: &mut Vec<CanFrame>) {
        if !state.power.ecus_awake() {
            self.sleep();
            return;
        }
        if !self.awake {
            self.awake = true;
            self.due = self.periods().map(|p| p.map(|_| now));
        }
        self.send_bam_packet(now, out);
        let periods = self.periods();
        for (i, pgn) in PGNS.into_iter().enumerate() {
            let (Some(due), Some(Some(period))) =
                (self.due.get(i).copied().flatten(), periods.get(i))
            else {
                continue;
            };
            if due > now {
                continue;
            }
            self.send(pgn, now, state, out);
            let mut next = due.saturating_add(*period);
            if next <= now {
                // Behind (a long gap between polls): no burst of stale frames.
                next = now.saturating_add(*period);
            }
            if let Some(d) = self.due.get_mut(i) {
                *d = Some(next);
            }
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.due
            .iter()
            .flatten()
            .copied()
            .chain(self.bam.map(|b| b.at))
            .min()
    }

    fn name(&self) -> &str {
        "j1939"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_match_known_frames() {
        // VECTORS.md §4f (cantools): prio 5, PF 0x12, PS 0x34, SA 0x56 → 0x14123456.
        assert_eq!(j1939_id(5, 0x1200, 0x34, 0x56), 0x1412_3456);
        // §4d real truck: DM1 from SA 0 at priority 6, TP.CM/DT at priority 7.
        assert_eq!(j1939_id(6, PGN_DM1, GLOBAL, 0), 0x18FE_CA00);
        assert_eq!(j1939_id(7, PGN_TP_CM, GLOBAL, 0), 0x1CEC_FF00);
        assert_eq!(j1939_id(7, PGN_TP_DT, GLOBAL, 0x31), 0x1CEB_FF31);
        assert_eq!(
            j1939_id(6, PGN_VD, 0x12, 0),
            0x18FE_E000,
            "PDU2 ignores destination"
        );
    }

    #[test]
    fn dm2_is_sent_only_on_request_with_the_previously_active_faults() {
        use crate::sim::script::{ActiveFault, Fault, Power};
        let j1939 = |spn: u32, fmi: u8, occurrences: u8| ActiveFault {
            fault: Fault::J1939 {
                source: 0,
                spn: Spn::new(spn).unwrap(),
                fmi: Fmi::new(fmi).unwrap(),
                lamp: Lamp::AmberWarning,
            },
            occurrences,
        };
        let state = VehicleState {
            power: Power::Running,
            faults: vec![j1939(110, 0, 3)],
            previously_active: vec![j1939(100, 3, 1)],
            ..VehicleState::default()
        };
        let mut out = Vec::new();
        encode(PGN_DM2, 0, &state, &mut out);
        // Current lamps (AWL on), flash n/a; SPN 100 FMI 3 OC 1 — not the active SPN 110.
        assert_eq!(out, [0x04, 0xFF, 0x64, 0x00, 0x03, 0x01]);

        let mut ecu = J1939Ecu::new(J1939EcuConfig {
            source_address: 0,
            ..J1939EcuConfig::default()
        });
        assert!(!PGNS.contains(&PGN_DM2), "never broadcast on its own");
        // Request (PGN 59904) from the tool at 0xF9 to the engine for PGN 65227.
        let request = CanFrame::from_raw(
            j1939_id(6, PGN_REQUEST, 0x00, 0xF9),
            true,
            &[0xCB, 0xFE, 0x00],
        )
        .unwrap();
        let mut frames = Vec::new();
        let at = Moment {
            now: Duration::from_secs(1),
            state: &state,
        };
        ecu.on_frame(&request, at, &mut frames);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].raw_id(), 0x18FE_CB00);
        assert_eq!(
            frames[0].data(),
            [0x04, 0xFF, 0x64, 0x00, 0x03, 0x01, 0xFF, 0xFF]
        );
    }

    #[test]
    fn payloads_match_known_encodings() {
        let mut state = VehicleState {
            // VECTORS.md §4a VD: total raw 0x00061480 = 49808.0 km.
            odometer_mm: 49_808_000_000,
            start_mm: 49_808_000_000,
            ..VehicleState::default()
        };
        state.speed = crate::sim::Speed::from_raw(0x1734).unwrap();
        let mut out = Vec::new();
        encode(PGN_VD, 0, &state, &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0x80, 0x14, 0x06, 0x00]);
        encode(PGN_VDHR, 0, &state, &mut out);
        // 49808 km / 5 m = 9 961 600 = 0x0098_0080
        assert_eq!(out, [0x80, 0x00, 0x98, 0x00, 0, 0, 0, 0]);
        encode(PGN_CCVS1, 0, &state, &mut out);
        // §4d CCVS1: speed bytes 34 17 = 23.203 km/h; not parked → bits 3-4 = 00.
        assert_eq!(out[..3], [0xF3, 0x34, 0x17]);
        encode(PGN_DM1, 0, &state, &mut out);
        // §4d: no DTC → lamps off, flash N/A, all-zero DTC.
        assert_eq!(out, [0x00, 0xFF, 0, 0, 0, 0]);
    }
}
