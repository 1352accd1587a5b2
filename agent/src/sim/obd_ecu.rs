//! A simulated OBD-II (SAE J1979) ECU: answers mode 01 (supported-PID bitmaps and the PIDs
//! the agent reads), modes 03/07/0A (DTC lists, multi-frame when long) and 09 02 (VIN) from
//! the [`VehicleState`], on physical and functional ids, 11- or 29-bit.
//!
//! Does not own: ISO-TP segmentation ([`super::link`] over [`crate::proto::isotp`]) nor the
//! state (the [`super::Drive`]). Silent while the ignition is off.

use core::time::Duration;

use crate::can::CanFrame;
use crate::proto::isotp::Config;

use super::drive::VehicleState;
use super::link::{IsoTpAddress, Link};
use super::script::{ObdList, Power};
use super::{Moment, SimEcu};

/// Mode 01 PIDs this ECU can answer besides the bitmaps.
pub(crate) const IMPLEMENTED_PIDS: [u8; 8] = [0x01, 0x05, 0x0C, 0x0D, 0x1F, 0x31, 0x42, 0xA6];

/// How a simulated OBD-II ECU is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObdEcuConfig {
    /// Its CAN ids.
    pub(crate) address: IsoTpAddress,
    /// Which OBD ECU of the [`VehicleState`] faults it reports (0 engine, 1 transmission).
    pub(crate) ecu: u8,
    /// Mode 01 PIDs it supports (those not in [`IMPLEMENTED_PIDS`] are ignored).
    pub(crate) pids: Vec<u8>,
    /// VIN for mode 09 PID 02, if it answers that.
    pub(crate) vin: Option<[u8; 17]>,
    /// ISO-TP timing and padding of its responses.
    pub(crate) isotp: Config,
}

impl ObdEcuConfig {
    /// Engine ECU 0 on 0x7E0/0x7E8 with every implemented PID, 0xA6 included.
    pub fn engine() -> Self {
        Self {
            address: IsoTpAddress::obd_11bit(0),
            ecu: 0,
            pids: IMPLEMENTED_PIDS.to_vec(),
            vin: None,
            isotp: Config::default(),
        }
    }

    /// Transmission ECU 1 on 0x7E1/0x7E9: PIDs 0x01 and 0x0D only.
    pub fn transmission() -> Self {
        Self {
            address: IsoTpAddress::obd_11bit(1),
            ecu: 1,
            pids: vec![0x01, 0x0D],
            vin: None,
            isotp: Config::default(),
        }
    }

    /// The same ECU without `pid` (many cars do not support 0xA6).
    #[cfg(test)]
    #[must_use]
    pub(crate) fn without_pid(mut self, pid: u8) -> Self {
        self.pids.retain(|p| *p != pid);
        self
    }

    /// The same ECU on 29-bit ids at address `ecu` (0x18DA<ecu>F1 / 0x18DAF1<ecu>).
    #[must_use]
    pub(crate) fn extended(mut self, ecu: u8) -> Self {
        self.address = IsoTpAddress::obd_29bit(ecu);
        self
    }
}

/// A simulated OBD-II ECU.
#[derive(Debug)]
pub struct ObdEcu {
    config: ObdEcuConfig,
    /// Supported-PID bitmaps for bases 0x00, 0x20, …, 0xE0, chaining bits included.
    bitmaps: [u32; 8],
    link: Link,
    response: Vec<u8>,
}

impl ObdEcu {
    /// An ECU as `config` says.
    pub fn new(config: ObdEcuConfig) -> Self {
        let mut bitmaps = [0u32; 8];
        for &pid in config.pids.iter().filter(|p| IMPLEMENTED_PIDS.contains(p)) {
            set_pid(&mut bitmaps, pid);
        }
        // Bitmap PID 0x20·k is supported when any PID above it is (chained discovery).
        for base in (1..8u8).rev() {
            let above = bitmaps.iter().skip(usize::from(base)).any(|b| *b != 0);
            if above {
                set_pid(&mut bitmaps, base * 0x20);
            }
        }
        Self {
            link: Link::new(config.address, config.isotp),
            config,
            bitmaps,
            response: Vec::with_capacity(64),
        }
    }

    /// The bitmap it reports for PID `base` (0x00, 0x20, …).
    #[cfg(test)]
    pub(crate) fn supported_bitmap(&self, base: u8) -> u32 {
        self.bitmaps
            .get(usize::from(base / 0x20))
            .copied()
            .unwrap_or(0)
    }

    /// Builds the answer to the link's request into `self.response`; `false`: stay silent.
    fn answer(&mut self, state: &VehicleState, functional: bool) -> bool {
        let request = self.link.request();
        let resp = &mut self.response;
        resp.clear();
        let Some((&mode, args)) = request.split_first() else {
            return false;
        };
        let negative = |resp: &mut Vec<u8>, nrc: u8| {
            resp.clear();
            resp.extend_from_slice(&[0x7F, mode, nrc]);
            // Functional requests get no negative answers (ISO 15765-4): other ECUs answer.
            !functional
        };
        let ecu = self.config.ecu;
        match mode {
            0x01 => {
                if args.is_empty() || args.len() > 6 {
                    return negative(resp, 0x13);
                }
                resp.push(0x41);
                for &pid in args {
                    if supports(&self.bitmaps, pid) {
                        resp.push(pid);
                        pid_data(&self.bitmaps, ecu, pid, state, resp);
                    }
                }
                if resp.len() == 1 {
                    return negative(resp, 0x12);
                }
                true
            }
            0x03 | 0x07 | 0x0A => {
                let list = match mode {
                    0x03 => ObdList::Stored,
                    0x07 => ObdList::Pending,
                    _ => ObdList::Permanent,
                };
                resp.extend_from_slice(&[mode + 0x40, 0]);
                let mut count = 0u8;
                for code in state.obd_codes(ecu, list).take(255) {
                    resp.extend_from_slice(&code.raw().to_be_bytes());
                    count += 1;
                }
                if let Some(c) = resp.get_mut(1) {
                    *c = count;
                }
                true
            }
            0x09 => match (args, self.config.vin) {
                ([0x02], Some(vin)) => {
                    // 49 02 01: one data item, then the 17 VIN characters.
                    resp.extend_from_slice(&[0x49, 0x02, 0x01]);
                    resp.extend_from_slice(&vin);
                    true
                }
                _ => negative(resp, 0x12),
            },
            _ => negative(resp, 0x11),
        }
    }
}

fn supports(bitmaps: &[u32; 8], pid: u8) -> bool {
    if pid == 0x00 {
        return true;
    }
    let (index, bit) = pid_bit(pid);
    bitmaps.get(index).is_some_and(|b| b & bit != 0)
}

/// Appends the data bytes of supported PID `pid` of OBD ECU `ecu`.
fn pid_data(bitmaps: &[u32; 8], ecu: u8, pid: u8, state: &VehicleState, resp: &mut Vec<u8>) {
    let running = state.power == Power::Running;
    match pid {
        0x00 | 0x20 | 0x40 | 0x60 | 0x80 | 0xA0 | 0xC0 | 0xE0 => {
            let bitmap = bitmaps.get(usize::from(pid / 0x20)).copied();
            resp.extend_from_slice(&bitmap.unwrap_or(0).to_be_bytes());
        }
        0x01 => {
            let stored = state.obd_codes(ecu, ObdList::Stored).count();
            let a = (u8::from(state.mil(ecu)) << 7) | stored.min(127) as u8;
            // B: spark ignition, misfire/fuel/component monitors supported and complete.
            resp.extend_from_slice(&[a, 0x07, 0x00, 0x00]);
        }
        // Coolant: warm while running, ambient otherwise (°C + 40).
        0x05 => resp.push(if running { 90 + 40 } else { 20 + 40 }),
        0x0C => {
            let rpm: u16 = if running {
                800 + u16::from(state.speed.kmh()) * 25
            } else {
                0
            };
            resp.extend_from_slice(&(rpm * 4).to_be_bytes());
        }
        0x0D => resp.push(state.speed.kmh()),
        0x1F => {
            let secs = u16::try_from(state.run_time.as_secs()).unwrap_or(u16::MAX);
            resp.extend_from_slice(&secs.to_be_bytes());
        }
        0x31 => {
            let km = u16::try_from(state.km_since_codes_cleared()).unwrap_or(u16::MAX);
            resp.extend_from_slice(&km.to_be_bytes());
        }
        // Control module voltage, mV: the alternator charges with the engine running; the
        // battery alone (12.4 V) with the ignition on or in accessory.
        0x42 => {
            let mv: u16 = if running { 14_200 } else { 12_400 };
            resp.extend_from_slice(&mv.to_be_bytes());
        }
        0xA6 => {
            let hm = u32::try_from(state.odometer_mm / 100_000).unwrap_or(u32::MAX);
            resp.extend_from_slice(&hm.to_be_bytes());
        }
        // `supports` admits only implemented PIDs and bitmaps.
        _ => {}
    }
}

/// Bitmap index and bit of PID `pid` (1..=0xFF): PID base+1 is bit 31 of base's bitmap.
fn pid_bit(pid: u8) -> (usize, u32) {
    let n = pid.wrapping_sub(1);
    (usize::from(n / 0x20), 1u32 << (31 - u32::from(n % 0x20)))
}

fn set_pid(bitmaps: &mut [u32; 8], pid: u8) {
    if pid == 0 {
        return;
    }
    let (index, bit) = pid_bit(pid);
    if let Some(b) = bitmaps.get_mut(index) {
        *b |= bit;
    }
}

impl SimEcu for ObdEcu {
    fn on_frame(&mut self, frame: &CanFrame, at: Moment<'_>, out: &mut Vec<CanFrame>) {
        let Moment { now, state } = at;
        if !state.power.ecus_awake() {
            self.link.reset();
            return;
        }
        if self.link.on_frame(frame, now, out) {
            let functional = self.link.request_functional();
            if self.answer(state, functional) {
                self.link.respond(&self.response, now, out);
            }
        }
    }

    fn poll(&mut self, now: Duration, state: &VehicleState, out: &mut Vec<CanFrame>) {
        if state.power.ecus_awake() {
            self.link.poll(now, out);
        } else {
            self.link.reset();
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.link.next_deadline()
    }

    fn name(&self) -> &str {
        "obd"
    }
}
