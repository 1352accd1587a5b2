//! Observations: what the car is doing, as the agent learns it from CAN traffic — odometer,
//! speed, park state, engine hours, DTCs appearing and clearing with a severity, warning
//! lamps, and warnings about traffic that made no sense.
//!
//! Sans-IO: [`Observer::on_frame`] takes a [`TimedFrame`] and appends [`Observation`]s to a
//! caller-owned `Vec` (reused across frames, so the common path does not allocate).
//!
//! Several buses: one passive decoder per `[[can.buses]]` entry; [`Observer::on_bus_frame`]
//! says which bus a frame came from ([`Observer::on_frame`]: the first). Odometer plausibility
//! is one, across every source on every bus; DTC sets are per (bus, ECU).
//!
//! Owns: the [`Observation`] type, the passive decoder ([`passive`]) that reads requests and
//! responses off a trace or bus without sending, odometer plausibility ([`plausibility`]), the
//! active DTC sets and their severities ([`dtc_set`]), and conversion of protocol values to the
//! `rapport_shared` types ([`conversions`]). Does not own: polling (it never sends), storage,
//! rate limiting of output (the replay CLI's choice, see [`crate::replay`]), or the JSON form
//! ([`json`]).

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod class_tests;
pub(crate) mod conversions;
pub(crate) mod dtc_set;
pub mod json;
pub(crate) mod passive;
pub(crate) mod plausibility;

use core::time::Duration;

use rapport_shared::{Dtc, DtcClass, DtcCode, EngineHours, Odometer, Severity, SignalSource};

use crate::can::source::TimedFrame;

pub(crate) use dtc_set::{DtcList, DtcSet, Overrides};
pub(crate) use passive::PassiveDecoder;
pub(crate) use plausibility::{Plausibility, Verdict};

/// Whether a DTC is in one of its ECU's lists (its class): appear and clear are per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtcState {
    /// Reported now (new, or with a new severity).
    Active,
    /// Reported before, absent from the ECU's next complete report.
    Cleared,
}

impl DtcState {
    /// The lower-case name used in JSON.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Cleared => "cleared",
        }
    }
}

/// The warning lamps one ECU reports; `None` where it does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Lamps {
    /// Malfunction indicator lamp (emissions; OBD-II PID 01 or J1939 DM1).
    pub(crate) mil: Option<bool>,
    /// J1939 red stop lamp.
    pub(crate) red_stop: Option<bool>,
    /// J1939 amber warning lamp.
    pub(crate) amber_warning: Option<bool>,
    /// J1939 protect lamp.
    pub(crate) protect: Option<bool>,
}

/// What went wrong, for warning counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum WarningKind {
    /// A trace line that is not a candump line.
    TraceLine,
    /// ISO-TP framing, timeouts, abandoned messages.
    IsoTp,
    /// An OBD-II response that does not decode.
    Obd,
    /// A UDS response that does not decode.
    Uds,
    /// An ECU's negative response.
    NegativeResponse,
    /// J1939 transport or parameter groups.
    J1939,
    /// A DBC signal that does not fit its frame.
    Dbc,
    /// An odometer reading rejected by plausibility.
    Plausibility,
}

impl WarningKind {
    /// Every kind, in counting order.
    pub(crate) const ALL: [Self; 8] = [
        Self::TraceLine,
        Self::IsoTp,
        Self::Obd,
        Self::Uds,
        Self::NegativeResponse,
        Self::J1939,
        Self::Dbc,
        Self::Plausibility,
    ];

    /// The snake-case name used in JSON.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::TraceLine => "trace_line",
            Self::IsoTp => "isotp",
            Self::Obd => "obd",
            Self::Uds => "uds",
            Self::NegativeResponse => "negative_response",
            Self::J1939 => "j1939",
            Self::Dbc => "dbc",
            Self::Plausibility => "plausibility",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// One thing learned from the bus.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Observation {
    /// A plausible, new total distance.
    Odometer {
        /// The reading.
        odometer: Odometer,
        /// Where it came from.
        source: SignalSource,
    },
    /// Vehicle speed.
    Speed {
        /// km/h.
        kmh: f32,
        /// Where it came from.
        source: SignalSource,
    },
    /// Park state (gear lever in P; J1939: parking brake set).
    Park {
        /// Parked.
        parked: bool,
        /// Where it came from.
        source: SignalSource,
    },
    /// Engine hours.
    EngineHours {
        /// Total running time.
        hours: EngineHours,
        /// Where it came from.
        source: SignalSource,
    },
    /// A DTC appearing in one of its ECU's lists (or changing severity there) or leaving it.
    Dtc {
        /// The fault as reported.
        dtc: Dtc,
        /// Active or cleared.
        state: DtcState,
        /// How much it matters.
        severity: Severity,
        /// The protocol.
        source: SignalSource,
        /// The bus it was read on (index into `[[can.buses]]`): one id on two buses is two
        /// ECUs.
        bus: u8,
        /// The ECU: OBD/UDS response CAN id, or J1939 source address.
        ecu: u32,
        /// The list it appeared in or left (see `dtc_set` for which report gives which).
        class: DtcClass,
    },
    /// One ECU's lamps, when they change.
    Lamps {
        /// The lamps.
        lamps: Lamps,
        /// The protocol.
        source: SignalSource,
        /// The bus, as for [`Observation::Dtc`].
        bus: u8,
        /// The ECU, as for [`Observation::Dtc`].
        ecu: u32,
    },
    /// Malformed or unexpected traffic (never fatal).
    Warning {
        /// What kind, for counts.
        kind: WarningKind,
        /// What and where.
        what: String,
    },
}

impl Observation {
    /// The lower-case kind name used in JSON and counts.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Odometer { .. } => "odometer",
            Self::Speed { .. } => "speed",
            Self::Park { .. } => "park",
            Self::EngineHours { .. } => "engine_hours",
            Self::Dtc { .. } => "dtc",
            Self::Lamps { .. } => "lamps",
            Self::Warning { .. } => "warning",
        }
    }
}

/// Where the passive decoder delivers what it read; the [`Observer`] implements it.
pub(crate) trait Sink {
    /// A finished observation (speed, park, hours, lamps, warning).
    fn observe(&mut self, observation: Observation);
    /// An odometer reading, before plausibility; `resolution_m` is one step of its source.
    fn odometer(&mut self, meters: u64, resolution_m: u64, source: SignalSource, now: Duration);
    /// A complete DTC report from one ECU: `entries` are every code it lists now, each with
    /// its severity from lamps or status bits (before config overrides).
    fn dtc_report(&mut self, list: DtcList, ecu: u32, entries: &[(Dtc, Severity)]);
}

/// The plausibility check, DTC sets and warning counts: the part of [`Observer`] that
/// turns the decoder's readings into observations.
#[derive(Debug)]
struct Pipeline {
    plausibility: Plausibility,
    dtcs: DtcSet,
    overrides: Overrides,
    warnings: [u64; WarningKind::ALL.len()],
}

struct Delivery<'a> {
    pipeline: &'a mut Pipeline,
    out: &'a mut Vec<Observation>,
    /// The bus the frame came from.
    bus: u8,
}

impl Sink for Delivery<'_> {
    fn observe(&mut self, mut observation: Observation) {
        if let Observation::Lamps { bus, .. } = &mut observation {
            *bus = self.bus;
        }
        if let Observation::Warning { kind, .. } = &observation
            && let Some(n) = self.pipeline.warnings.get_mut(kind.index())
        {
            *n += 1;
        }
        self.out.push(observation);
    }

    fn odometer(&mut self, meters: u64, resolution_m: u64, source: SignalSource, now: Duration) {
        match self.pipeline.plausibility.check(meters, resolution_m, now) {
            Verdict::Accepted => self.out.push(Observation::Odometer {
                odometer: Odometer::from_meters(meters),
                source,
            }),
            Verdict::Unchanged => {}
            rejected => {
                let what = format!("odometer from {}: {rejected}", source.as_str());
                self.observe(Observation::Warning {
                    kind: WarningKind::Plausibility,
                    what,
                });
            }
        }
    }

    fn dtc_report(&mut self, list: DtcList, ecu: u32, entries: &[(Dtc, Severity)]) {
        let Pipeline {
            dtcs, overrides, ..
        } = &mut *self.pipeline;
        dtcs.report_on(self.bus, list, ecu, entries, overrides, self.out);
    }
}

/// What an [`Observer`] reads and how it judges it (built from the config by
/// `crate::settings::observer`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The protocols on each bus, in `[[can.buses]]` order (at least one).
    pub(crate) decoders: Vec<passive::Settings>,
    /// Fastest plausible speed, km/h: an odometer gaining distance faster is rejected.
    pub(crate) max_plausible_kmh: u32,
    /// Per-code severities that win over lamps and status bits.
    pub(crate) overrides: Vec<(DtcCode, Severity)>,
}

/// Frames in, observations out: the passive decoder plus plausibility and DTC sets.
#[derive(Debug)]
pub struct Observer {
    /// One per bus.
    decoders: Vec<PassiveDecoder>,
    pipeline: Pipeline,
}

impl Observer {
    /// An observer for `settings` (its protocols, DID table, DBC plan, plausibility and
    /// overrides).
    pub fn new(settings: &Settings) -> Self {
        Self {
            decoders: if settings.decoders.is_empty() {
                vec![PassiveDecoder::new(&passive::Settings::default())]
            } else {
                settings.decoders.iter().map(PassiveDecoder::new).collect()
            },
            pipeline: Pipeline {
                plausibility: Plausibility::new(settings.max_plausible_kmh),
                dtcs: DtcSet::default(),
                overrides: Overrides::new(settings.overrides.clone()),
                warnings: [0; WarningKind::ALL.len()],
            },
        }
    }

    /// Takes one frame from the first bus; appends what it caused to `out` (not cleared
    /// first).
    pub fn on_frame(&mut self, frame: &TimedFrame, out: &mut Vec<Observation>) {
        self.on_bus_frame(0, frame, out);
    }

    /// How many buses it reads.
    pub fn buses(&self) -> usize {
        self.decoders.len()
    }

    /// Takes one frame from bus `bus` (index into `[[can.buses]]`; a bus it does not have is
    /// ignored); appends what it caused to `out` (not cleared first).
    pub fn on_bus_frame(&mut self, bus: usize, frame: &TimedFrame, out: &mut Vec<Observation>) {
        let Some(decoder) = self.decoders.get_mut(bus) else {
            return;
        };
        let mut sink = Delivery {
            pipeline: &mut self.pipeline,
            out,
            bus: u8::try_from(bus).unwrap_or(u8::MAX),
        };
        decoder.on_frame(frame, &mut sink);
    }

    /// Reports a warning from outside the decoder (a bad trace line), counted like the rest.
    pub(crate) fn warn(&mut self, kind: WarningKind, what: String, out: &mut Vec<Observation>) {
        Delivery {
            pipeline: &mut self.pipeline,
            out,
            bus: 0,
        }
        .observe(Observation::Warning { kind, what });
    }

    /// End of input at `now`: every message still being reassembled is reported as a warning.
    pub(crate) fn finish(&mut self, now: Duration, out: &mut Vec<Observation>) {
        for (bus, decoder) in self.decoders.iter_mut().enumerate() {
            let mut sink = Delivery {
                pipeline: &mut self.pipeline,
                out: &mut *out,
                bus: u8::try_from(bus).unwrap_or(u8::MAX),
            };
            decoder.finish(now, &mut sink);
        }
    }

    /// How many warnings of each kind so far.
    pub fn warning_counts(&self) -> impl Iterator<Item = (WarningKind, u64)> + '_ {
        WarningKind::ALL
            .iter()
            .copied()
            .zip(self.pipeline.warnings.iter().copied())
    }
}

#[cfg(test)]
mod tests;
