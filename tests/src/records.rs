//! Builders of uplink record bodies for tests that feed the cloud by hand (the fleet's API
//! tests, the dashboard's): a reading, a prompt event, a maintenance change, a critical fault.
//! Plain values, no I/O.

use rapport_shared::v1::uplink::{
    DtcEvent, MaintenanceEvent, MaintenanceStatus, OdometerReading, PromptAction, PromptEvent,
    PromptKind, RecordBody, SignalSource,
};
use rapport_shared::{Dtc, ObdCode, Odometer, Severity};

/// An OBD-II odometer reading of `km`.
pub fn odometer(km: u64) -> RecordBody {
    RecordBody::Odometer(OdometerReading {
        odometer: Odometer::from_km(km),
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
    RecordBody::DtcAppeared(DtcEvent {
        dtc: Dtc::Obd(ObdCode::new(code)),
        severity: Severity::Critical,
        ecu: 0x7E8,
    })
}
