//! Playing a [`Script`] against a clock the caller passes in, producing the [`VehicleState`]
//! the simulated ECUs report.
//!
//! Owns: exact distance integration (millimetres plus a remainder, so an hour at 100 km/h is
//! exactly 100 km whatever the call pattern), engine time, and the active faults per ECU.
//! Does not own: the script's steps and units ([`super::script`]), any CAN encoding (the
//! ECUs in [`super`] do that) or a clock.

use core::time::Duration;

use rapport_shared::{Fmi, ObdCode, Odometer, Spn, UdsCode, UdsStatus};

use super::script::{
    ActiveFault, Fault, Lamp, ObdList, Power, RAMP_STAIR, Script, ScriptError, Speed, Step, Until,
};

/// What the car is doing now: the values the simulated ECUs report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VehicleState {
    /// Ignition and engine.
    pub power: Power,
    /// Distance, millimetres (the odometer is this, rounded down to metres).
    pub odometer_mm: u64,
    /// Speed.
    pub speed: Speed,
    /// In park (gear P / parking brake set).
    pub park: bool,
    /// Total engine running time.
    pub engine_time: Duration,
    /// Engine running time since the last start (zero while the engine is off).
    pub run_time: Duration,
    /// Odometer at the script start, millimetres (trip distances count from here).
    pub start_mm: u64,
    /// Odometer at the last OBD clear (or the start), millimetres.
    pub codes_cleared_mm: u64,
    /// Active faults, in the order they appeared.
    pub faults: Vec<ActiveFault>,
    /// J1939 faults that were active and were cleared since (DM2), in the order they cleared;
    /// one that becomes active again leaves this list.
    pub previously_active: Vec<ActiveFault>,
}

impl VehicleState {
    /// The odometer.
    pub fn odometer(&self) -> Odometer {
        Odometer::from_meters(self.odometer_mm / 1000)
    }

    /// Total engine hours, whole seconds.
    #[cfg(test)]
    pub(crate) fn engine_hours(&self) -> rapport_shared::EngineHours {
        rapport_shared::EngineHours::from_secs(self.engine_time.as_secs())
    }

    /// Metres since the script started.
    pub(crate) fn trip_m(&self) -> u64 {
        self.odometer_mm.saturating_sub(self.start_mm) / 1000
    }

    /// Whole km since codes were last cleared (OBD PID 0x31).
    pub(crate) fn km_since_codes_cleared(&self) -> u64 {
        self.odometer_mm.saturating_sub(self.codes_cleared_mm) / 1_000_000
    }

    /// OBD-II codes of ECU `ecu` in list `list`.
    pub(crate) fn obd_codes(&self, ecu: u8, list: ObdList) -> impl Iterator<Item = ObdCode> + '_ {
        self.faults.iter().filter_map(move |f| match f.fault {
            Fault::Obd {
                ecu: e,
                code,
                list: l,
                ..
            } if e == ecu && l == list => Some(code),
            _ => None,
        })
    }

    /// Whether OBD ECU `ecu` lights the MIL.
    pub(crate) fn mil(&self, ecu: u8) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.fault, Fault::Obd { ecu: e, mil: true, .. } if e == ecu))
    }

    /// Active UDS codes with their status bytes.
    pub(crate) fn uds_codes(&self) -> impl Iterator<Item = (UdsCode, UdsStatus)> + '_ {
        self.faults.iter().filter_map(|f| match f.fault {
            Fault::Uds { code, status } => Some((code, status)),
            _ => None,
        })
    }

    /// Active J1939 faults of source address `source`: SPN, FMI, lamp, occurrence count.
    pub(crate) fn j1939_faults(
        &self,
        source: u8,
    ) -> impl Iterator<Item = (Spn, Fmi, Lamp, u8)> + '_ {
        self.faults.iter().filter_map(move |f| match f.fault {
            Fault::J1939 {
                source: s,
                spn,
                fmi,
                lamp,
            } if s == source => Some((spn, fmi, lamp, f.occurrences)),
            _ => None,
        })
    }

    /// Previously active J1939 faults of source address `source` (DM2): SPN, FMI, lamp,
    /// occurrence count.
    pub(crate) fn j1939_previously_active(
        &self,
        source: u8,
    ) -> impl Iterator<Item = (Spn, Fmi, Lamp, u8)> + '_ {
        self.previously_active
            .iter()
            .filter_map(move |f| match f.fault {
                Fault::J1939 {
                    source: s,
                    spn,
                    fmi,
                    lamp,
                } if s == source => Some((spn, fmi, lamp, f.occurrences)),
                _ => None,
            })
    }
}

/// Divisor turning (1/256 km/h) × ns into mm: 256 × 3.6e9 ns/h ÷ 1e6 mm/km.
const MM_DIVISOR: u128 = 256 * 3_600_000;

/// A [`Script`] being played.
#[derive(Debug, Clone)]
pub struct Drive {
    steps: Vec<Step>,
    /// Index of the step in progress (`steps.len()`: the script is over).
    index: usize,
    step_start: Duration,
    /// When the step in progress ends; `None` past the end of the script.
    step_end: Option<Duration>,
    /// State is integrated up to here.
    cursor: Duration,
    /// Distance remainder in mm × [`MM_DIVISOR`], so no fraction is ever lost.
    remainder: u128,
    state: VehicleState,
    /// Faults seen so far with their occurrence count, for J1939 OC.
    history: Vec<(Fault, u8)>,
}

impl Drive {
    /// Starts playing `script` at `start`.
    ///
    /// # Errors
    /// The problems [`Script::validate`] finds.
    pub fn new(script: Script, start: Duration) -> Result<Self, Vec<ScriptError>> {
        script.validate()?;
        let mm = script.odometer_m.saturating_mul(1000);
        let mut drive = Self {
            steps: script.steps,
            index: 0,
            step_start: start,
            step_end: None,
            cursor: start,
            remainder: 0,
            state: VehicleState {
                odometer_mm: mm,
                start_mm: mm,
                codes_cleared_mm: mm,
                engine_time: Duration::from_secs(script.engine_secs),
                park: true,
                ..VehicleState::default()
            },
            history: Vec::new(),
        };
        drive.enter_steps(start);
        Ok(drive)
    }

    /// The state now.
    pub(crate) fn state(&self) -> &VehicleState {
        &self.state
    }

    /// Whether every step has been played.
    #[cfg(test)]
    pub(crate) fn finished(&self) -> bool {
        self.index >= self.steps.len()
    }

    /// When the step in progress ends (power, faults or motion may change then); `None` once
    /// the script is over.
    pub(crate) fn next_event(&self) -> Option<Duration> {
        self.step_end
    }

    /// Plays the script up to `now` and returns the state then. An earlier `now` than the
    /// last call changes nothing.
    pub(crate) fn advance(&mut self, now: Duration) -> &VehicleState {
        while self.cursor < now {
            let Some(end) = self.step_end else {
                // Script over: the car stands still as it was left.
                self.state.speed = Speed::ZERO;
                self.integrate(now);
                break;
            };
            let mut until = end.min(now);
            if let Some(Step::Ramp { from, to, over }) = self.steps.get(self.index).copied() {
                let elapsed = self.cursor.saturating_sub(self.step_start);
                let stair = elapsed.as_nanos() / RAMP_STAIR.as_nanos();
                self.state.speed = ramp_speed(from, to, over, stair);
                let stair_end = self.step_start.saturating_add(
                    RAMP_STAIR.saturating_mul(u32::try_from(stair + 1).unwrap_or(u32::MAX)),
                );
                until = until.min(stair_end);
            }
            self.integrate(until);
            if until >= end {
                self.index += 1;
                self.enter_steps(end);
            }
        }
        &self.state
    }

    /// Moves the cursor to `to` at the current speed and power.
    fn integrate(&mut self, to: Duration) {
        let dt = to.saturating_sub(self.cursor);
        self.cursor = self.cursor.max(to);
        if self.state.power == Power::Running {
            self.state.engine_time = self.state.engine_time.saturating_add(dt);
            self.state.run_time = self.state.run_time.saturating_add(dt);
        }
        let total = u128::from(self.state.speed.raw()) * dt.as_nanos() + self.remainder;
        let mm = u64::try_from(total / MM_DIVISOR).unwrap_or(u64::MAX);
        self.remainder = total % MM_DIVISOR;
        self.state.odometer_mm = self.state.odometer_mm.saturating_add(mm);
    }

    /// Applies the instantaneous steps from `index` on, at time `at`, and starts the first
    /// step that lasts.
    fn enter_steps(&mut self, at: Duration) {
        self.step_start = at;
        while let Some(step) = self.steps.get(self.index).copied() {
            let length = match step {
                Step::Power(p) => {
                    self.set_power(p);
                    None
                }
                Step::SetFault(f) => {
                    self.set_fault(f);
                    None
                }
                Step::ClearFault(f) => {
                    let state = &mut self.state;
                    if let Some(i) = state.faults.iter().position(|a| a.fault.same(&f)) {
                        let cleared = state.faults.remove(i);
                        if matches!(cleared.fault, Fault::J1939 { .. }) {
                            state.previously_active.push(cleared);
                        }
                    }
                    None
                }
                Step::ClearObdCodes => {
                    self.state.faults.retain(|a| {
                        !matches!(
                            a.fault,
                            Fault::Obd {
                                list: ObdList::Stored | ObdList::Pending,
                                ..
                            }
                        )
                    });
                    self.state.codes_cleared_mm = self.state.odometer_mm;
                    None
                }
                Step::Drive { speed, until } => {
                    self.state.speed = speed;
                    self.state.park = false;
                    Some(self.drive_length(speed, until))
                }
                Step::Ramp { from, over, .. } => {
                    self.state.speed = from;
                    self.state.park = false;
                    Some(over)
                }
                Step::Stop(d) => {
                    self.state.speed = Speed::ZERO;
                    self.state.park = false;
                    Some(d)
                }
                Step::Park(d) => {
                    self.state.speed = Speed::ZERO;
                    self.state.park = true;
                    Some(d)
                }
            };
            match length {
                Some(d) if !d.is_zero() => {
                    self.step_end = Some(at.saturating_add(d));
                    return;
                }
                _ => self.index += 1,
            }
        }
        self.step_end = None;
        self.state.speed = Speed::ZERO;
    }

    /// How long driving `until` takes at `speed`, counting the remainder already carried,
    /// so the step ends on the first nanosecond the distance is reached.
    fn drive_length(&self, speed: Speed, until: Until) -> Duration {
        match until {
            Until::Time(d) => d,
            Until::Metres(_) if speed == Speed::ZERO => Duration::ZERO,
            Until::Metres(m) => {
                let need = u128::from(m) * 1000 * MM_DIVISOR;
                let need = need.saturating_sub(self.remainder);
                let ns = need.div_ceil(u128::from(speed.raw()));
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
        }
    }

    fn set_power(&mut self, power: Power) {
        if power != Power::Running {
            self.state.run_time = Duration::ZERO;
            self.state.speed = Speed::ZERO;
        }
        if power == Power::Off {
            self.state.park = true;
        }
        self.state.power = power;
    }

    fn set_fault(&mut self, fault: Fault) {
        self.state
            .previously_active
            .retain(|a| !a.fault.same(&fault));
        if let Some(active) = self.state.faults.iter_mut().find(|a| a.fault.same(&fault)) {
            // Already active: only its status, lamp or list changes.
            active.fault = fault;
            return;
        }
        let occurrences = match self.history.iter_mut().find(|(f, _)| f.same(&fault)) {
            Some((_, n)) => {
                *n = n.saturating_add(1).min(126);
                *n
            }
            None => {
                self.history.push((fault, 1));
                1
            }
        };
        self.state.faults.push(ActiveFault { fault, occurrences });
    }
}

/// Speed on stair `stair` of a ramp from `from` to `to` over `over`.
fn ramp_speed(from: Speed, to: Speed, over: Duration, stair: u128) -> Speed {
    let stairs = (over.as_nanos() / RAMP_STAIR.as_nanos()).max(1);
    if stair + 1 >= stairs {
        return to;
    }
    let (a, b) = (i128::from(from.raw()), i128::from(to.raw()));
    let step = i128::try_from(stair).unwrap_or(i128::MAX);
    let stairs = i128::try_from(stairs).unwrap_or(i128::MAX);
    let raw = a + (b - a) * step / stairs;
    Speed::from_raw(u16::try_from(raw.clamp(0, i128::from(Speed::MAX_RAW))).unwrap_or(0))
        .unwrap_or(Speed::ZERO)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rapport_shared::EngineHours;

    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn hundred_kmh_for_an_hour_is_exactly_100_km() {
        let script = Script::new(Odometer::from_km(1000), EngineHours::from_secs(0))
            .power(Power::Running)
            .drive_for(100, s(3600));
        // Odd call pattern: 7 ms steps, so any per-call rounding would show.
        let mut drive = Drive::new(script.clone(), s(10)).unwrap();
        let mut t = s(10);
        while t < s(3610) {
            t += Duration::from_millis(7);
            drive.advance(t);
        }
        assert_eq!(drive.state().odometer_mm, 1_100_000_000, "1100.000 km");
        assert_eq!(drive.state().engine_hours().secs(), 3600);
        assert_eq!(drive.state().speed, Speed::ZERO, "script over: standing");
        // One call: the same.
        let mut once = Drive::new(script, s(10)).unwrap();
        assert_eq!(once.advance(s(5000)).odometer_mm, 1_100_000_000);
        assert_eq!(once.state().trip_m(), 100_000);
    }

    #[test]
    fn distance_step_ends_when_reached() {
        let script = Script::default()
            .power(Power::Running)
            .drive_distance(36, 1000)
            .park(s(60));
        let mut drive = Drive::new(script, Duration::ZERO).unwrap();
        // 36 km/h = 10 m/s: 1 km takes exactly 100 s.
        assert_eq!(drive.next_event(), Some(s(100)));
        let st = drive.advance(s(99));
        assert_eq!((st.odometer_mm, st.park), (990_000, false));
        let st = drive.advance(s(130));
        assert_eq!(
            (st.odometer_mm, st.park, st.speed),
            (1_000_000, true, Speed::ZERO)
        );
        assert_eq!(drive.next_event(), Some(s(160)));
        drive.advance(s(200));
        assert!(drive.finished());
        assert_eq!(drive.next_event(), None);
    }

    #[test]
    fn ramp_distance_is_the_stair_sum() {
        // 0 → 36 km/h over 1 s: stairs of 100 ms at 0, 3.6, 7.2, … 32.4, then 36 for the last.
        let script = Script::default().power(Power::Running).then(Step::Ramp {
            from: Speed::ZERO,
            to: Speed::from_kmh(36).unwrap(),
            over: s(1),
        });
        let mut drive = Drive::new(script, Duration::ZERO).unwrap();
        drive.advance(Duration::from_millis(450));
        assert_eq!(drive.state().speed.raw(), 36 * 256 * 4 / 10, "stair 4");
        drive.advance(s(2));
        // Stair speeds in 1/256 km/h: floor(9216 k / 10) for k = 0..8 (sum 33174), then
        // 9216: 42390 × 0.1 s = 42390 / 9.216 mm = 4599.6 mm, the fraction carried.
        assert_eq!(drive.state().odometer_mm, 4_599);
    }

    #[test]
    fn faults_and_power() {
        let p0133 = Fault::Obd {
            ecu: 0,
            code: ObdCode::new(0x0133),
            mil: true,
            list: ObdList::Stored,
        };
        let spn = Fault::J1939 {
            source: 0,
            spn: Spn::new(110).unwrap(),
            fmi: Fmi::new(0).unwrap(),
            lamp: Lamp::AmberWarning,
        };
        let script = Script::default()
            .power(Power::Running)
            .then(Step::SetFault(p0133))
            .then(Step::SetFault(spn))
            .then(Step::Stop(s(10)))
            .then(Step::ClearFault(spn))
            .then(Step::Stop(s(10)))
            .then(Step::SetFault(spn))
            .then(Step::ClearObdCodes)
            .power(Power::Off)
            .park(s(10));
        let mut drive = Drive::new(script, Duration::ZERO).unwrap();
        let st = drive.state();
        assert!(st.mil(0) && !st.mil(1));
        assert_eq!(
            st.obd_codes(0, ObdList::Stored).collect::<Vec<_>>(),
            [ObdCode::new(0x0133)]
        );
        assert_eq!(st.j1939_faults(0).count(), 1);
        assert_eq!(st.j1939_previously_active(0).count(), 0);
        let st = drive.advance(s(15));
        assert_eq!(st.j1939_faults(0).count(), 0);
        // Cleared: previously active now (DM2), with its occurrence count.
        let dm2: Vec<_> = st.j1939_previously_active(0).map(|f| (f.0, f.3)).collect();
        assert_eq!(dm2, [(Spn::new(110).unwrap(), 1)]);
        let st = drive.advance(s(25));
        assert_eq!(st.j1939_faults(0).next().unwrap().3, 2, "second occurrence");
        assert_eq!(st.j1939_previously_active(0).count(), 0, "active again");
        assert!(!st.mil(0), "cleared by mode 04");
        assert_eq!(st.power, Power::Off);
        assert_eq!(st.engine_time, s(20));
    }

    #[test]
    fn validation_names_the_step() {
        let script = Script::default().drive_for(50, s(1));
        assert_eq!(
            Drive::new(script, Duration::ZERO).unwrap_err(),
            [ScriptError::MovingWithoutEngine {
                index: 0,
                power: Power::Off
            }]
        );
        let endless = Script::default().power(Power::Running).drive_distance(0, 5);
        assert_eq!(
            endless.validate().unwrap_err(),
            [ScriptError::EndlessDrive { index: 1 }]
        );
        assert!(Speed::try_from(251.0).is_err());
        assert!(Speed::try_from(-1.0).is_err());
        assert_eq!(Speed::try_from(23.203).unwrap().raw(), 0x1734);
    }
}
