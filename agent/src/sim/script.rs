//! The script of a simulated drive: its steps (power, drive, ramp, stop, park, faults), the
//! units they use and how they deserialise (e.g. from TOML), with the checks a script must
//! pass. Playing a script against a clock is [`super::drive`]'s job, not this file's.

use core::time::Duration;

use rapport_shared::{EngineHours, Fmi, ObdCode, Odometer, Spn, UdsCode, UdsStatus};
use serde::Deserialize;

/// A speed in 1/256 km/h, the J1939 CCVS1 resolution (0 to 250.996 km/h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Speed(u16);

impl Speed {
    /// Standing still.
    pub(crate) const ZERO: Self = Self(0);
    /// The largest speed J1939 can carry (0xFAFF / 256 km/h).
    pub(crate) const MAX_RAW: u16 = 0xFAFF;

    /// Whole km/h; `None` above 250 km/h.
    pub(crate) const fn from_kmh(kmh: u16) -> Option<Self> {
        if kmh > 250 {
            None
        } else {
            Some(Self(kmh * 256))
        }
    }

    /// From 1/256 km/h; `None` above [`Speed::MAX_RAW`].
    pub(crate) const fn from_raw(raw: u16) -> Option<Self> {
        if raw > Self::MAX_RAW {
            None
        } else {
            Some(Self(raw))
        }
    }

    /// In 1/256 km/h.
    pub(crate) const fn raw(self) -> u16 {
        self.0
    }

    /// Whole km/h, rounded down (what OBD PID 0x0D sends).
    pub(crate) const fn kmh(self) -> u8 {
        (self.0 / 256) as u8
    }
}

impl TryFrom<f64> for Speed {
    type Error = ScriptError;
    fn try_from(kmh: f64) -> Result<Self, ScriptError> {
        let raw = (kmh * 256.0).round();
        if !(0.0..=f64::from(Self::MAX_RAW)).contains(&raw) {
            return Err(ScriptError::Speed(kmh));
        }
        Ok(Self(raw as u16))
    }
}

/// Ignition and engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    /// Key out: every ECU is silent.
    #[default]
    Off,
    /// Accessory: diagnostics answer, the engine does not run.
    Accessory,
    /// Ignition on, engine stopped.
    On,
    /// Ignition on and the engine running: engine hours count.
    Running,
}

impl Power {
    /// Whether the ECUs are powered (anything but [`Power::Off`]).
    pub(crate) fn ecus_awake(self) -> bool {
        self != Self::Off
    }
}

/// Which OBD-II DTC list a code is in (modes 03, 07, 0A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObdList {
    /// Mode 03, confirmed.
    #[default]
    Stored,
    /// Mode 07.
    Pending,
    /// Mode 0A; survives a clear.
    Permanent,
}

/// A J1939 DM1 lamp a fault lights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lamp {
    /// No lamp.
    #[default]
    None,
    /// Malfunction indicator lamp.
    Mil,
    /// Red stop lamp.
    RedStop,
    /// Amber warning lamp.
    AmberWarning,
    /// Protect lamp.
    Protect,
}

/// A fault as a script sets or clears it. ECUs are named by their OBD index (0 engine,
/// 1 transmission), UDS by the one UDS ECU, J1939 by source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// An OBD-II code.
    Obd {
        /// OBD ECU index (0–7); 0 by default.
        #[serde(default)]
        ecu: u8,
        /// The code (`0x0133` is P0133).
        code: ObdCode,
        /// Whether it lights the MIL.
        #[serde(default)]
        mil: bool,
        /// Which list.
        #[serde(default)]
        list: ObdList,
    },
    /// A UDS code with its status byte.
    Uds {
        /// The 24-bit DTC.
        code: UdsCode,
        /// ISO 14229 status byte.
        status: UdsStatus,
    },
    /// A J1939 DM1 entry.
    J1939 {
        /// Source address of the ECU reporting it; 0 (engine) by default.
        #[serde(default)]
        source: u8,
        /// Suspect parameter number.
        spn: Spn,
        /// Failure mode.
        fmi: Fmi,
        /// The lamp it lights.
        #[serde(default)]
        lamp: Lamp,
    },
}

impl Fault {
    /// Whether `self` and `other` are the same fault (status, lamp and list aside).
    pub(crate) fn same(&self, other: &Fault) -> bool {
        match (self, other) {
            (
                Self::Obd { ecu, code, .. },
                Self::Obd {
                    ecu: e, code: c, ..
                },
            ) => ecu == e && code == c,
            (Self::Uds { code, .. }, Self::Uds { code: c, .. }) => code == c,
            (
                Self::J1939 {
                    source, spn, fmi, ..
                },
                Self::J1939 {
                    source: s,
                    spn: p,
                    fmi: f,
                    ..
                },
            ) => source == s && spn == p && fmi == f,
            _ => false,
        }
    }
}

/// An active fault and, for J1939, how often it has appeared in this drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveFault {
    /// The fault.
    pub fault: Fault,
    /// Times it became active (1 the first time); the J1939 occurrence count, capped at 126.
    pub occurrences: u8,
}

/// How long a [`Step::Drive`] lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// For this long.
    Time(Duration),
    /// Until this many metres are covered.
    Metres(u64),
}

/// One step of a [`Script`]. Steps with no duration take effect at the moment the previous
/// step ends.
///
/// In TOML, one `[[steps]]` table each, e.g. `power = "running"`,
/// `drive = { kmh = 100, secs = 3600 }`, `drive = { kmh = 50, km = 12.5 }`,
/// `ramp = { from_kmh = 0, to_kmh = 100, secs = 20 }`, `stop = { secs = 30 }`,
/// `park = { secs = 600 }`, `set_fault = { obd = { code = 0x0133, mil = true } }`,
/// `clear_fault = { j1939 = { spn = 110, fmi = 0 } }`, `clear_obd_codes = {}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "StepDef")]
pub enum Step {
    /// Turn the key.
    Power(Power),
    /// Drive at a constant speed; needs [`Power::Running`].
    Drive {
        /// The speed.
        speed: Speed,
        /// For how long or how far.
        until: Until,
    },
    /// Change speed linearly in 100 ms stairs; needs [`Power::Running`].
    Ramp {
        /// Speed at the start.
        from: Speed,
        /// Speed at the end (held by the last stair).
        to: Speed,
        /// How long.
        over: Duration,
    },
    /// Stand still, not parked (a traffic light).
    Stop(Duration),
    /// Stand still in park.
    Park(Duration),
    /// A fault appears (or its status, lamp or list changes).
    SetFault(Fault),
    /// A fault goes away.
    ClearFault(Fault),
    /// OBD-II mode 04 as a tester would send it: stored and pending codes go, permanent stay;
    /// "distance since codes cleared" restarts.
    ClearObdCodes,
}

/// Stair width of [`Step::Ramp`]: speed is constant within a stair, so distance stays exact.
pub(crate) const RAMP_STAIR: Duration = Duration::from_millis(100);

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StepDef {
    Power(Power),
    Drive {
        kmh: f64,
        #[serde(default)]
        secs: Option<f64>,
        #[serde(default)]
        km: Option<f64>,
    },
    Ramp {
        from_kmh: f64,
        to_kmh: f64,
        secs: f64,
    },
    Stop {
        secs: f64,
    },
    Park {
        secs: f64,
    },
    SetFault(Fault),
    ClearFault(Fault),
    ClearObdCodes {},
}

fn secs(value: f64) -> Result<Duration, ScriptError> {
    Duration::try_from_secs_f64(value).map_err(|_| ScriptError::Duration(value))
}

impl TryFrom<StepDef> for Step {
    type Error = ScriptError;
    fn try_from(def: StepDef) -> Result<Self, ScriptError> {
        Ok(match def {
            StepDef::Power(p) => Self::Power(p),
            StepDef::Drive { kmh, secs: s, km } => {
                let until = match (s, km) {
                    (Some(s), None) => Until::Time(secs(s)?),
                    (None, Some(km)) if km.is_finite() && km >= 0.0 => {
                        Until::Metres((km * 1000.0).round() as u64)
                    }
                    (None, Some(km)) => return Err(ScriptError::Distance(km)),
                    _ => return Err(ScriptError::DriveUntil),
                };
                Self::Drive {
                    speed: Speed::try_from(kmh)?,
                    until,
                }
            }
            StepDef::Ramp {
                from_kmh,
                to_kmh,
                secs: s,
            } => Self::Ramp {
                from: Speed::try_from(from_kmh)?,
                to: Speed::try_from(to_kmh)?,
                over: secs(s)?,
            },
            StepDef::Stop { secs: s } => Self::Stop(secs(s)?),
            StepDef::Park { secs: s } => Self::Park(secs(s)?),
            StepDef::SetFault(f) => Self::SetFault(f),
            StepDef::ClearFault(f) => Self::ClearFault(f),
            StepDef::ClearObdCodes {} => Self::ClearObdCodes,
        })
    }
}

/// What is wrong with a script.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// A speed outside 0–250.996 km/h.
    #[error("speed {0} km/h is outside 0 to 250.996")]
    Speed(f64),
    /// A negative or non-finite number of seconds.
    #[error("duration {0} s is not a non-negative number of seconds")]
    Duration(f64),
    /// A negative or non-finite distance.
    #[error("distance {0} km is not a non-negative number")]
    Distance(f64),
    /// A drive step with both or neither of `secs` and `km`.
    #[error("a drive step needs exactly one of `secs` and `km`")]
    DriveUntil,
    /// A moving step while the engine is not running.
    #[error("step {index}: moving while power is {power:?} (needs `running`)")]
    MovingWithoutEngine {
        /// Step index, from 0.
        index: usize,
        /// Power at that step.
        power: Power,
    },
    /// A distance-bounded drive at speed zero would never end.
    #[error("step {index}: driving a distance at 0 km/h never ends")]
    EndlessDrive {
        /// Step index, from 0.
        index: usize,
    },
}

/// A scripted drive: where the car starts and what happens to it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Odometer at the start, metres.
    #[serde(default)]
    pub(crate) odometer_m: u64,
    /// Engine hours at the start, seconds.
    #[serde(default)]
    pub(crate) engine_secs: u64,
    /// The steps, in order.
    #[serde(default)]
    pub(crate) steps: Vec<Step>,
}

impl Script {
    /// An empty script starting at `odometer` and `engine`.
    pub fn new(odometer: Odometer, engine: EngineHours) -> Self {
        Self {
            odometer_m: odometer.meters(),
            engine_secs: engine.secs(),
            steps: Vec::new(),
        }
    }

    /// Appends a step (builder style).
    #[must_use]
    pub fn then(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Appends `power`.
    #[must_use]
    pub fn power(self, power: Power) -> Self {
        self.then(Step::Power(power))
    }

    /// Appends a constant-speed drive for `time`; `kmh` is clamped to 250.
    #[must_use]
    pub fn drive_for(self, kmh: u16, time: Duration) -> Self {
        let speed = Speed::from_kmh(kmh.min(250)).unwrap_or(Speed::ZERO);
        self.then(Step::Drive {
            speed,
            until: Until::Time(time),
        })
    }

    /// Appends a constant-speed drive over `metres`; `kmh` is clamped to 250.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn drive_distance(self, kmh: u16, metres: u64) -> Self {
        let speed = Speed::from_kmh(kmh.min(250)).unwrap_or(Speed::ZERO);
        self.then(Step::Drive {
            speed,
            until: Until::Metres(metres),
        })
    }

    /// Appends a park of `time`.
    #[must_use]
    pub fn park(self, time: Duration) -> Self {
        self.then(Step::Park(time))
    }

    /// Checks the steps in order against the power they run under.
    ///
    /// # Errors
    /// Every problem found: moving without the engine running, a distance at 0 km/h.
    pub fn validate(&self) -> Result<(), Vec<ScriptError>> {
        let mut power = Power::Off;
        let mut problems = Vec::new();
        for (index, step) in self.steps.iter().enumerate() {
            match *step {
                Step::Power(p) => power = p,
                Step::Drive { speed, until } => {
                    if power != Power::Running {
                        problems.push(ScriptError::MovingWithoutEngine { index, power });
                    }
                    if speed == Speed::ZERO && matches!(until, Until::Metres(m) if m > 0) {
                        problems.push(ScriptError::EndlessDrive { index });
                    }
                }
                Step::Ramp { .. } if power != Power::Running => {
                    problems.push(ScriptError::MovingWithoutEngine { index, power });
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn step_def_conversion() {
        let step = Step::try_from(StepDef::Drive {
            kmh: 50.0,
            secs: None,
            km: Some(12.5),
        })
        .unwrap();
        assert_eq!(
            step,
            Step::Drive {
                speed: Speed::from_kmh(50).unwrap(),
                until: Until::Metres(12_500)
            }
        );
        let both = StepDef::Drive {
            kmh: 50.0,
            secs: Some(1.0),
            km: Some(1.0),
        };
        assert_eq!(Step::try_from(both), Err(ScriptError::DriveUntil));
        assert_eq!(
            Step::try_from(StepDef::Park { secs: -1.0 }),
            Err(ScriptError::Duration(-1.0))
        );
    }

    /// Every step shape of the [`Step`] docs, in TOML, played to the end.
    const TOML_SCRIPT: &str = r#"
odometer_m = 12345
engine_secs = 7200

[[steps]]
power = "running"

[[steps]]
drive = { kmh = 100, secs = 36 }      # 1000 m

[[steps]]
ramp = { from_kmh = 0, to_kmh = 36, secs = 1 }   # 4599.6 mm, see drive.rs

[[steps]]
drive = { kmh = 36, km = 0.5 }        # 500 m at 10 m/s: 50 s

[[steps]]
stop = { secs = 30 }

[[steps]]
set_fault = { obd = { code = 0x0133, mil = true } }

[[steps]]
set_fault = { uds = { code = 0x01331C, status = 0x2F } }

[[steps]]
set_fault = { j1939 = { spn = 110, fmi = 0, lamp = "amber_warning" } }

[[steps]]
clear_obd_codes = {}

[[steps]]
drive = { kmh = 90, km = 1.5 }        # 1500 m at 25 m/s: 60 s

[[steps]]
power = "off"

[[steps]]
clear_fault = { j1939 = { spn = 110, fmi = 0 } }

[[steps]]
park = { secs = 600 }
"#;

    #[test]
    fn toml_script_drives_to_the_expected_odometer() {
        use super::super::Drive;

        let script: Script = toml::from_str(TOML_SCRIPT).unwrap();
        assert_eq!(script.steps.len(), 13);
        assert_eq!(
            script.steps[5],
            Step::SetFault(Fault::Obd {
                ecu: 0,
                code: ObdCode::new(0x0133),
                mil: true,
                list: ObdList::Stored
            })
        );
        let mut drive = Drive::new(script, Duration::ZERO).unwrap();
        drive.advance(Duration::from_secs(3600));
        assert!(drive.finished());
        let st = drive.state();
        // 12 345 m + 1000 m + 4.5996 m + 500 m + 1500 m.
        assert_eq!(st.odometer_mm, 15_349_599);
        assert_eq!(st.odometer(), Odometer::from_meters(15_349));
        assert_eq!(st.trip_m(), 3_004);
        assert_eq!(st.km_since_codes_cleared(), 1, "1.5 km since mode 04");
        // 7200 s + 36 + 1 + 50 + 30 (stopped, engine running) + 60 = 7377 s, less 60.937 µs:
        // the ramp's carried 0.609375 mm (42390 / 9.216 mm) counts towards the 500 m step,
        // which at 10 m/s ends that much sooner. Engine hours round down to whole seconds.
        assert_eq!(
            st.engine_time,
            Duration::from_secs(7_377) - Duration::from_nanos(60_937)
        );
        assert_eq!(st.engine_hours(), EngineHours::from_secs(7_376));
        assert_eq!(st.power, Power::Off);
        assert!(!st.mil(0), "cleared by mode 04");
        assert_eq!(st.obd_codes(0, ObdList::Stored).count(), 0);
        assert_eq!(
            st.uds_codes().collect::<Vec<_>>(),
            [(UdsCode::new(0x01_331C).unwrap(), UdsStatus(0x2F))]
        );
        assert_eq!(st.j1939_faults(0).count(), 0);
    }

    #[test]
    fn toml_script_errors_name_the_problem() {
        let err = toml::from_str::<Script>("[[steps]]\ndrive = { kmh = 50, secs = 1, km = 1 }")
            .unwrap_err();
        assert!(
            err.to_string().contains("exactly one of `secs` and `km`"),
            "{err}"
        );
        let err =
            toml::from_str::<Script>("[[steps]]\ndrive = { kmh = 300, secs = 1 }").unwrap_err();
        assert!(err.to_string().contains("300"), "{err}");
        let err = toml::from_str::<Script>("[[steps]]\nfly = { secs = 1 }").unwrap_err();
        assert!(err.to_string().contains("fly"), "{err}");
        // Valid TOML, but moving before the engine runs: Drive refuses it.
        let script: Script = toml::from_str("[[steps]]\ndrive = { kmh = 50, secs = 1 }").unwrap();
        assert_eq!(
            super::super::Drive::new(script, Duration::ZERO).unwrap_err(),
            [ScriptError::MovingWithoutEngine {
                index: 0,
                power: Power::Off
            }]
        );
    }
}
