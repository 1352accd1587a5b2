//! Builders of uplink records for tests that feed the cloud by hand: record bodies (a reading,
//! a prompt event, a maintenance change, a critical fault), numbered records (a varied mix, or
//! odometer only) and envelopes of them, and a [`Sequencer`] that numbers records per vehicle
//! as an agent would. Plain values, no I/O.

use std::collections::BTreeMap;

use rapport_shared::v1::uplink::{
    DtcEvent, EngineHoursReading, MaintenanceEvent, MaintenanceStatus, OdometerReading,
    PromptAction, PromptEvent, PromptKind, Record, RecordBody, SignalSource, Uplink,
};
use rapport_shared::{Dtc, EngineHours, ObdCode, Odometer, Severity, Timestamp, Vin};

/// A VIN from a test's literal.
///
/// # Panics
/// If `text` is not a VIN (17 characters, no I, O or Q).
pub fn vin(text: &str) -> Vin {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a VIN: {e}"))
}

/// The time of record `seq` from [`record`] and [`odometer_record`]: 1,750,000,000 s plus
/// `seq` seconds.
pub fn at_seq(seq: u64) -> Timestamp {
    Timestamp::from_millis(1_750_000_000_000 + seq * 1000)
}

/// An OBD-II odometer reading of `km`.
pub fn odometer(km: u64) -> RecordBody {
    RecordBody::Odometer(OdometerReading {
        odometer: Odometer::from_km(km),
        source: SignalSource::Obd,
    })
}

/// An OBD-II odometer reading of `meters`.
pub fn odometer_m(meters: u64) -> RecordBody {
    RecordBody::Odometer(OdometerReading {
        odometer: Odometer::from_meters(meters),
        source: SignalSource::Obd,
    })
}

/// A non-critical prompt event; its text is `"{kind:?}:{subject}"`.
pub fn prompt(kind: PromptKind, subject: &str, action: PromptAction) -> RecordBody {
    RecordBody::Prompt(PromptEvent {
        prompt: format!("{kind:?}:{subject}"),
        kind,
        subject: subject.into(),
        critical: false,
        action,
    })
}

/// A new car's first records: its odometer at `km` and the break-in advice acknowledged
/// (the driver's first engagement).
pub fn first_drive(km: u64) -> Vec<RecordBody> {
    vec![
        odometer(km),
        prompt(PromptKind::BreakIn, "advice", PromptAction::Acknowledged),
    ]
}

/// A maintenance item changing to `status`, due at 5,000 km and read at 5,000 km.
pub fn maintenance(item: &str, status: MaintenanceStatus) -> RecordBody {
    RecordBody::Maintenance(MaintenanceEvent {
        item: item.into(),
        status,
        odometer: Odometer::from_km(5_000),
        due_odometer: Some(Odometer::from_km(5_000)),
        due_at: None,
        due_engine_hours: None,
    })
}

/// A critical OBD-II fault `code` (e.g. `0x0300` for P0300) appearing on the engine ECU.
pub fn critical(code: u16) -> RecordBody {
    RecordBody::DtcAppeared(dtc_event(code, Severity::Critical))
}

fn dtc_event(code: u16, severity: Severity) -> DtcEvent {
    DtcEvent {
        dtc: Dtc::Obd(ObdCode::new(code)),
        severity,
        ecu: 0x7E8,
        class: None,
    }
}

/// A varied record for `seq`: mostly odometer readings (km = seq), with engine hours
/// (`seq % 10 == 3`), a warning fault appearing (`5`) and clearing in the next record (`6`),
/// and a record kind from the future (`9`).
pub fn record(seq: u64) -> Record {
    let fault = |s: u64| dtc_event(0x0100 + (s / 10) as u16, Severity::Warning);
    let body = match seq % 10 {
        3 => RecordBody::EngineHours(EngineHoursReading {
            hours: EngineHours::from_secs(seq * 60),
            source: SignalSource::Obd,
        }),
        5 => RecordBody::DtcAppeared(fault(seq)),
        6 => RecordBody::DtcCleared(fault(seq - 1)),
        9 => RecordBody::Unknown {
            tag: 42,
            bytes: vec![1, 2, 3],
        },
        _ => odometer(seq),
    };
    Record {
        seq,
        at: at_seq(seq),
        body,
    }
}

/// An odometer-only record for `seq` (10 m per seq): the benches' and the stream tests'
/// traffic.
pub fn odometer_record(seq: u64) -> Record {
    Record {
        seq,
        at: at_seq(seq),
        body: odometer_m(seq * 10),
    }
}

/// An envelope of `vin` holding `make(seq)` for each of `seqs`.
pub fn uplink(vin: Vin, seqs: impl IntoIterator<Item = u64>, make: fn(u64) -> Record) -> Uplink {
    Uplink {
        vin,
        records: seqs.into_iter().map(make).collect(),
    }
}

/// Numbers records per vehicle from 1, as an agent's outbox does.
#[derive(Debug, Default, Clone)]
pub struct Sequencer {
    last: BTreeMap<Vin, u64>,
}

impl Sequencer {
    /// An envelope of `bodies` for `vin`, all stamped `at`, numbered after the vehicle's last.
    pub fn uplink(&mut self, vin: Vin, at: Timestamp, bodies: Vec<RecordBody>) -> Uplink {
        self.timed(vin, bodies.into_iter().map(|b| (at, b)))
    }

    /// An envelope of `vin` holding each body at its own time, numbered after the vehicle's
    /// last.
    pub fn timed(
        &mut self,
        vin: Vin,
        bodies: impl IntoIterator<Item = (Timestamp, RecordBody)>,
    ) -> Uplink {
        let seq = self.last.entry(vin).or_insert(0);
        let records = bodies
            .into_iter()
            .map(|(at, body)| {
                *seq += 1;
                Record {
                    seq: *seq,
                    at,
                    body,
                }
            })
            .collect();
        Uplink { vin, records }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_sequencer_numbers_each_vehicle_on_its_own() {
        let a: Vin = "WP0ZZZ99ZTS392124".parse().unwrap();
        let b: Vin = "WVWZZZ1JZXW000001".parse().unwrap();
        let mut s = Sequencer::default();
        let at = Timestamp::from_millis(1);
        let seqs = |u: &Uplink| u.records.iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(&s.uplink(a, at, vec![odometer(1), odometer(2)])),
            [1, 2]
        );
        assert_eq!(seqs(&s.uplink(b, at, vec![odometer(1)])), [1]);
        assert_eq!(seqs(&s.uplink(a, at, vec![critical(0x0300)])), [3]);
    }

    #[test]
    fn the_varied_mix_clears_each_fault_it_raises() {
        let up = uplink("WP0ZZZ99ZTS392124".parse().unwrap(), 1..=20, record);
        let appeared = up
            .records
            .iter()
            .filter(|r| matches!(r.body, RecordBody::DtcAppeared(_)))
            .count();
        let cleared = up
            .records
            .iter()
            .filter(|r| matches!(r.body, RecordBody::DtcCleared(_)))
            .count();
        assert_eq!((appeared, cleared), (2, 2));
        assert_eq!(odometer_record(7).body, odometer_m(70));
    }
}
