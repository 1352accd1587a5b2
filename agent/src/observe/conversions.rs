//! The one place protocol-level values become `rapport_shared` types: UDS records and J1939
//! DTCs, and J1939 lamps. OBD-II decoding yields [`rapport_shared::ObdCode`] itself, so it
//! needs nothing here. Owns no decoding (the protocol modules do) and no severity rules
//! ([`super::dtc_set`]).

use rapport_shared::{Dtc, Fmi, OccurrenceCount, Spn};

use super::Lamps;
use crate::proto::j1939::{self, LampStatus};
use crate::proto::uds;

impl From<uds::DtcRecord> for Dtc {
    fn from(record: uds::DtcRecord) -> Self {
        Dtc::Uds(record.dtc, record.status)
    }
}

/// A DM1 DTC as a shared [`Dtc`]; an unavailable occurrence count becomes
/// [`OccurrenceCount::NOT_AVAILABLE`]. `None` only for out-of-range fields, which the 19/5/7
/// bit layout cannot produce.
pub(crate) fn j1939_dtc(dtc: j1939::Dtc) -> Option<Dtc> {
    let oc = dtc.occurrences.unwrap_or(OccurrenceCount::NOT_AVAILABLE);
    Some(Dtc::J1939(
        Spn::new(dtc.spn).ok()?,
        Fmi::new(dtc.fmi).ok()?,
        OccurrenceCount::new(oc).ok()?,
    ))
}

fn lamp(status: LampStatus) -> Option<bool> {
    match status {
        LampStatus::On => Some(true),
        LampStatus::Off => Some(false),
        LampStatus::Error | LampStatus::NotAvailable => None,
    }
}

impl From<j1939::Lamps> for Lamps {
    fn from(l: j1939::Lamps) -> Self {
        Self {
            mil: lamp(l.mil.status),
            red_stop: lamp(l.rsl.status),
            amber_warning: lamp(l.awl.status),
            protect: lamp(l.pl.status),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rapport_shared::{ObdCode, UdsCode, UdsStatus};

    use super::*;

    #[test]
    fn j1939_dtc_converts() {
        // VECTORS.md §4a (j1939-84 DiagnosticTroubleCodeTest): `61 02 13 81` = SPN 609 FMI 19
        // CM 1 OC 1 (legacy layout, decoded by the j1939 module).
        let d = j1939::Dtc::from_bytes_version4([0x61, 0x02, 0x13, 0x81]);
        let shared = j1939_dtc(d).unwrap();
        assert_eq!(shared.to_string(), "SPN609/FMI19");
        // OC 0x7F = not available
        let d = j1939::Dtc::from_bytes([0x00, 0x00, 0x1F, 0x7F]);
        assert_eq!(
            j1939_dtc(d).unwrap(),
            Dtc::J1939(
                Spn::new(0).unwrap(),
                Fmi::new(31).unwrap(),
                OccurrenceCount::new(0x7F).unwrap()
            )
        );
    }

    #[test]
    fn obd_and_uds_dtcs_convert() {
        assert_eq!(Dtc::Obd(ObdCode::new(0x0133)).to_string(), "P0133");
        let rec = uds::DtcRecord {
            dtc: UdsCode::new(0x01_331C).unwrap(),
            status: UdsStatus(0x2F),
        };
        assert_eq!(Dtc::from(rec).to_string(), "P0133-1C");
    }

    #[test]
    fn lamps_convert() {
        // VECTORS.md §4d: DM1 SA 0 lamp byte 0x43 → MIL on, RSL off, AWL off, PL n/a.
        let l = Lamps::from(j1939::Lamps::from_bytes(0x43, 0xFF));
        assert_eq!(
            l,
            Lamps {
                mil: Some(true),
                red_stop: Some(false),
                amber_warning: Some(false),
                protect: None
            }
        );
    }
}
