//! The JSON-lines form of observations the replay CLI prints, one object per line, keys in a
//! fixed order (`t_ms`, `kind`, then the kind's fields). A `dtc` line carries `state`
//! (`active` when the code enters one of its ECU's lists, `cleared` when it leaves it) and
//! `class`, the list: `confirmed`, `pending`, `permanent`, `test_failed`, `stored`, `active`,
//! `previously_active` (see `rapport_shared::DtcClass` and `observe::dtc_set`). Owns the shape
//! only; the numbers are rounded to 3 decimals so an f32 speed prints as `23.203`, not
//! `23.203125476837158`.

use core::fmt::Write as _;
use core::time::Duration;

use rapport_shared::{Dtc, SignalSource};

use super::Observation;

/// One JSON object under construction.
struct Obj<'a> {
    out: &'a mut String,
}

impl Obj<'_> {
    fn key(&mut self, key: &str) {
        if !self.out.ends_with('{') {
            self.out.push(',');
        }
        let _ = write!(self.out, "\"{key}\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        // serde_json escapes quotes, control characters and non-ASCII correctly.
        self.out
            .push_str(&serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into()));
    }

    fn num(&mut self, key: &str, value: f64) {
        self.key(key);
        let rounded = (value * 1000.0).round() / 1000.0;
        match serde_json::to_string(&rounded) {
            Ok(text) if rounded.is_finite() => self.out.push_str(&text),
            _ => self.out.push_str("null"),
        }
    }

    fn int(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        self.key(key);
        self.out.push_str(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
    }
}

/// An ECU as JSON shows it: J1939 source address `0x00`, CAN ids `0x7E8` / `0x18DAF110`.
pub(crate) fn ecu_text(source: SignalSource, ecu: u32) -> String {
    match source {
        SignalSource::J1939 => format!("0x{ecu:02X}"),
        _ if ecu <= 0x7FF => format!("0x{ecu:03X}"),
        _ => format!("0x{ecu:08X}"),
    }
}

/// Appends `observation` at `t_ms` as one JSON object (no newline) to `out`.
pub fn write_observation(out: &mut String, t_ms: u64, observation: &Observation) {
    out.push('{');
    let mut o = Obj { out };
    o.int("t_ms", t_ms);
    o.str("kind", observation.kind());
    match observation {
        Observation::Odometer { odometer, source } => {
            o.num("km", odometer.meters() as f64 / 1000.0);
            o.str("source", source.as_str());
        }
        Observation::Speed { kmh, source } => {
            o.num("kmh", f64::from(*kmh));
            o.str("source", source.as_str());
        }
        Observation::Park { parked, source } => {
            o.opt_bool("parked", Some(*parked));
            o.str("source", source.as_str());
        }
        Observation::EngineHours { hours, source } => {
            o.num("hours", hours.secs() as f64 / 3600.0);
            o.str("source", source.as_str());
        }
        Observation::Dtc {
            dtc,
            state,
            severity,
            source,
            bus,
            ecu,
            class,
        } => {
            o.str("code", &dtc.to_string());
            match dtc {
                Dtc::Obd(_) => {}
                Dtc::Uds(_, status) => o.str("status", &format!("0x{:02X}", status.0)),
                Dtc::J1939(spn, fmi, oc) => {
                    o.int("spn", u64::from(spn.get()));
                    o.int("fmi", u64::from(fmi.get()));
                    o.int("oc", u64::from(oc.get()));
                }
            }
            o.str("state", state.as_str());
            o.str("class", class.name());
            o.str("severity", severity.as_str());
            o.str("source", source.as_str());
            o.str("ecu", &ecu_text(*source, *ecu));
            bus_field(&mut o, *bus);
        }
        Observation::Lamps {
            lamps,
            source,
            bus,
            ecu,
        } => {
            o.str("source", source.as_str());
            o.str("ecu", &ecu_text(*source, *ecu));
            bus_field(&mut o, *bus);
            o.opt_bool("mil", lamps.mil);
            o.opt_bool("red_stop", lamps.red_stop);
            o.opt_bool("amber_warning", lamps.amber_warning);
            o.opt_bool("protect", lamps.protect);
        }
        Observation::Warning { what, .. } => o.str("what", what),
    }
    o.out.push('}');
}

/// `"bus"`: the index into `[[can.buses]]` of the bus a DTC or lamp was read on; left out for
/// the first bus, so single-bus output is as it always was.
fn bus_field(o: &mut Obj<'_>, bus: u8) {
    if bus != 0 {
        o.int("bus", u64::from(bus));
    }
}

/// Printing rate limit shared by `replay` and `desk`: speed and engine hours at most once a
/// second per source and only on change; everything else (already a change) always.
#[derive(Debug, Default)]
pub struct RateLimit {
    last: Vec<(&'static str, SignalSource, u64, Duration)>,
}

impl RateLimit {
    /// Whether to print `observation` seen at `at` (monotonic).
    pub fn admit(&mut self, observation: &Observation, at: Duration) -> bool {
        let (kind, source, value) = match observation {
            Observation::Speed { kmh, source } => ("speed", *source, u64::from(kmh.to_bits())),
            Observation::EngineHours { hours, source } => ("hours", *source, hours.secs()),
            _ => return true,
        };
        match self
            .last
            .iter_mut()
            .find(|(k, s, _, _)| *k == kind && *s == source)
        {
            None => {
                self.last.push((kind, source, value, at));
                true
            }
            Some((_, _, last_value, last_at)) => {
                if *last_value == value || at.saturating_sub(*last_at) < Duration::from_secs(1) {
                    return false;
                }
                *last_value = value;
                *last_at = at;
                true
            }
        }
    }
}

/// The `prompt` name of a prompt line: its kind, with the stage for maintenance items
/// (`maintenance_due_soon`, `maintenance_due`, `maintenance_overdue`, `first_service_due`…).
pub(crate) fn prompt_name(p: &crate::memory::PromptRecord) -> String {
    use rapport_shared::v1::uplink::PromptKind;
    match p.kind {
        PromptKind::Maintenance | PromptKind::FirstService => {
            let stage = p.id.rsplit(':').next().unwrap_or("due");
            format!("{}_{stage}", p.kind.name())
        }
        other => other.name().to_owned(),
    }
}

/// Appends a prompt reaching the screen at `t_ms` as one JSON object (no newline) to `out`.
pub(crate) fn write_prompt(out: &mut String, t_ms: u64, p: &crate::memory::PromptRecord) {
    use rapport_shared::v1::uplink::PromptKind;
    out.push('{');
    let mut o = Obj { out };
    o.int("t_ms", t_ms);
    o.str("kind", "prompt");
    o.str("id", &p.id);
    o.str("prompt", &prompt_name(p));
    match p.kind {
        PromptKind::Maintenance | PromptKind::FirstService => o.str("item", &p.subject),
        PromptKind::Fault => o.str("code", &p.subject),
        _ => o.str("subject", &p.subject),
    }
    o.opt_bool("critical", Some(p.critical));
    o.str("title", &p.title);
    o.str("text", &p.text);
    o.out.push('}');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::observe::{DtcState, WarningKind};
    use rapport_shared::{Odometer, Severity};

    fn line(o: &Observation) -> String {
        let mut s = String::new();
        write_observation(&mut s, 1_436_509_052_249, o);
        s
    }

    #[test]
    fn shapes() {
        assert_eq!(
            line(&Observation::Odometer {
                odometer: Odometer::from_meters(12_345_600),
                source: SignalSource::Obd
            }),
            r#"{"t_ms":1436509052249,"kind":"odometer","km":12345.6,"source":"obd"}"#
        );
        assert_eq!(
            line(&Observation::Speed {
                kmh: 5940.0 / 256.0,
                source: SignalSource::J1939
            }),
            r#"{"t_ms":1436509052249,"kind":"speed","kmh":23.203,"source":"j1939"}"#
        );
        let dtc = Dtc::Uds(
            "P0133-1C"
                .parse::<rapport_shared::DtcCode>()
                .map(|c| match c {
                    rapport_shared::DtcCode::Uds(u) => u,
                    _ => unreachable!(),
                })
                .unwrap(),
            rapport_shared::UdsStatus(0x2F),
        );
        assert_eq!(
            line(&Observation::Dtc {
                dtc,
                state: DtcState::Active,
                severity: Severity::Warning,
                source: SignalSource::Uds,
                bus: 0,
                ecu: 0x7E8,
                class: rapport_shared::DtcClass::Confirmed,
            }),
            r#"{"t_ms":1436509052249,"kind":"dtc","code":"P0133-1C","status":"0x2F","state":"active","class":"confirmed","severity":"warning","source":"uds","ecu":"0x7E8"}"#
        );
        assert_eq!(
            line(&Observation::Warning {
                kind: WarningKind::TraceLine,
                what: "line 1: \"x\"\n".into()
            }),
            r#"{"t_ms":1436509052249,"kind":"warning","what":"line 1: \"x\"\n"}"#
        );
    }
}
