//! DTC sets per class and their severities. Each ECU's complete report of one list (an
//! OBD-II mode 03, 07 or 0A answer, a UDS 0x19 0x02 answer, a J1939 DM1 or DM2) replaces its
//! previous report of that list: codes new in it become [`DtcState::Active`], codes missing
//! from it become [`DtcState::Cleared`]. One (ECU, code) can be in several lists at once —
//! confirmed and permanent, active and previously active — and each list is its own set, so
//! a code leaving one list does not clear it from another.
//!
//! | list            | report                                  | class               |
//! |-----------------|-----------------------------------------|---------------------|
//! | `ObdConfirmed`  | OBD-II mode 03                          | `confirmed`         |
//! | `ObdPending`    | OBD-II mode 07                          | `pending`           |
//! | `ObdPermanent`  | OBD-II mode 0A                          | `permanent`         |
//! | `Uds(class)`    | UDS 0x59 0x02, split by status ([`uds_class`]) | `confirmed`, `pending`, `test_failed`, `stored` |
//! | `J1939Dm1`      | DM1 (PGN 65226)                         | `active`            |
//! | `J1939Dm2`      | DM2 (PGN 65227)                         | `previously_active` |
//!
//! Severity comes from what the ECU says (MIL, J1939 lamps, UDS status bits: the `*_severity`
//! functions) and then per-code config overrides win ([`Overrides`]). Owns those rules and the
//! sets; does not own decoding (see [`super::passive`]) nor which classes may prompt the
//! driver ([`DtcClass::may_prompt`], applied by the rules).

use rapport_shared::{Dtc, DtcClass, DtcCode, Severity, SignalSource, UdsStatus};

use super::{DtcState, Lamps, Observation};

/// Which report a set comes from; each is its own set per ECU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DtcList {
    /// OBD-II mode 03: confirmed ("stored" in J1979) codes.
    ObdConfirmed,
    /// OBD-II mode 07.
    ObdPending,
    /// OBD-II mode 0A.
    ObdPermanent,
    /// UDS 0x19 0x02: the records of one class (see [`uds_class`]). Every answer reports all
    /// of [`UDS_CLASSES`], so a code moving from pending to confirmed leaves the pending set.
    Uds(DtcClass),
    /// J1939 DM1, active.
    J1939Dm1,
    /// J1939 DM2, previously active.
    J1939Dm2,
}

/// The classes one UDS answer is split into.
pub(crate) const UDS_CLASSES: [DtcClass; 4] = [
    DtcClass::Confirmed,
    DtcClass::Pending,
    DtcClass::TestFailed,
    DtcClass::Stored,
];

impl DtcList {
    /// The protocol the list belongs to.
    pub(crate) fn source(self) -> SignalSource {
        match self {
            Self::ObdConfirmed | Self::ObdPending | Self::ObdPermanent => SignalSource::Obd,
            Self::Uds(_) => SignalSource::Uds,
            Self::J1939Dm1 | Self::J1939Dm2 => SignalSource::J1939,
        }
    }

    /// The class of every code in the list.
    pub(crate) fn class(self) -> DtcClass {
        match self {
            Self::ObdConfirmed => DtcClass::Confirmed,
            Self::ObdPending => DtcClass::Pending,
            Self::ObdPermanent => DtcClass::Permanent,
            Self::Uds(class) => class,
            Self::J1939Dm1 => DtcClass::Active,
            Self::J1939Dm2 => DtcClass::PreviouslyActive,
        }
    }
}

/// OBD-II: a confirmed code is a warning unless the ECU said the MIL is off (then info); a
/// pending code is info; a permanent code is a warning.
pub(crate) fn obd_severity(list: DtcList, mil_on: Option<bool>) -> Severity {
    match (list, mil_on) {
        (DtcList::ObdConfirmed, Some(false)) => Severity::Info,
        (DtcList::ObdPending, _) => Severity::Info,
        _ => Severity::Warning,
    }
}

/// J1939 DM1 lamps: red stop → critical; amber warning or MIL → warning; otherwise info
/// (protect lamp or no lamp at all).
pub(crate) fn j1939_severity(lamps: Lamps) -> Severity {
    if lamps.red_stop == Some(true) {
        Severity::Critical
    } else if lamps.amber_warning == Some(true) || lamps.mil == Some(true) {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// UDS status: warningIndicatorRequested or confirmed → warning; otherwise (pending, test
/// failed, stored) info.
pub(crate) fn uds_severity(status: UdsStatus) -> Severity {
    if status.has(UdsStatus::WARNING_INDICATOR_REQUESTED) || status.has(UdsStatus::CONFIRMED) {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// The one class a UDS record's status gives, the strongest it shows:
/// confirmedDTC or warningIndicatorRequested (bits 3, 7) → confirmed; else pendingDTC (bit 2)
/// → pending; else testFailed or testFailedThisOperationCycle (bits 0, 1) → test failed; else
/// testFailedSinceLastClear (bit 5, e.g. 0x20 or 0x60) → stored. `None` when no failure bit
/// is set at all (e.g. 0x50: only "test not completed"): the code has not failed.
pub(crate) fn uds_class(status: UdsStatus) -> Option<DtcClass> {
    if status.has(UdsStatus::CONFIRMED) || status.has(UdsStatus::WARNING_INDICATOR_REQUESTED) {
        Some(DtcClass::Confirmed)
    } else if status.has(UdsStatus::PENDING) {
        Some(DtcClass::Pending)
    } else if status.0 & (UdsStatus::TEST_FAILED | UdsStatus::TEST_FAILED_THIS_OPERATION_CYCLE) != 0
    {
        Some(DtcClass::TestFailed)
    } else if status.has(UdsStatus::TEST_FAILED_SINCE_LAST_CLEAR) {
        Some(DtcClass::Stored)
    } else {
        None
    }
}

/// J1939 DM2: previously active codes are history, info whatever the lamps say (the lamps
/// in a DM2 are the ECU's current ones, already reported with its DM1).
pub(crate) const DM2_SEVERITY: Severity = Severity::Info;

/// Per-code severities from config; they win over lamps and status bits.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    codes: Vec<(DtcCode, Severity)>,
}

impl Overrides {
    /// From `[[dtc.overrides]]` (the first entry for a code wins).
    pub(crate) fn new(codes: Vec<(DtcCode, Severity)>) -> Self {
        Self { codes }
    }

    /// The severity for `code`: the override if there is one, else `base`.
    pub(crate) fn apply(&self, code: DtcCode, base: Severity) -> Severity {
        self.codes
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(base, |(_, s)| *s)
    }
}

#[derive(Debug, Clone)]
struct Set {
    list: DtcList,
    /// The bus (index into `[[can.buses]]`): one id on two buses is two ECUs.
    bus: u8,
    ecu: u32,
    codes: Vec<(Dtc, Severity)>,
}

/// The listed DTCs of every (list, bus, ECU) seen.
#[derive(Debug, Clone, Default)]
pub(crate) struct DtcSet {
    sets: Vec<Set>,
    /// The incoming report after overrides, reused.
    scratch: Vec<(Dtc, Severity)>,
}

impl DtcSet {
    /// The active codes of one ECU's list.
    #[cfg(test)]
    pub(crate) fn active(&self, list: DtcList, ecu: u32) -> &[(Dtc, Severity)] {
        self.sets
            .iter()
            .find(|s| s.list == list && s.ecu == ecu)
            .map_or(&[], |s| &s.codes)
    }

    /// [`DtcSet::report_on`] the first bus.
    #[cfg(test)]
    pub(crate) fn report(
        &mut self,
        list: DtcList,
        ecu: u32,
        entries: &[(Dtc, Severity)],
        overrides: &Overrides,
        out: &mut Vec<Observation>,
    ) {
        self.report_on(0, list, ecu, entries, overrides, out);
    }

    /// Applies one complete report from `ecu` on `bus` and appends the changes to `out`:
    /// codes new or with a new severity as active, codes gone as cleared. A code listed twice
    /// counts once (first wins); a changed UDS status or J1939 count alone is not a change.
    pub(crate) fn report_on(
        &mut self,
        bus: u8,
        list: DtcList,
        ecu: u32,
        entries: &[(Dtc, Severity)],
        overrides: &Overrides,
        out: &mut Vec<Observation>,
    ) {
        self.scratch.clear();
        for (dtc, base) in entries {
            if !self.scratch.iter().any(|(d, _)| d.code() == dtc.code()) {
                self.scratch
                    .push((*dtc, overrides.apply(dtc.code(), *base)));
            }
        }
        let index = match self
            .sets
            .iter()
            .position(|s| s.list == list && s.bus == bus && s.ecu == ecu)
        {
            Some(i) => i,
            None => {
                self.sets.push(Set {
                    list,
                    bus,
                    ecu,
                    codes: Vec::new(),
                });
                self.sets.len() - 1
            }
        };
        let Some(set) = self.sets.get_mut(index) else {
            return;
        };
        let source = list.source();
        let class = list.class();
        for (dtc, severity) in &self.scratch {
            let known = set.codes.iter().find(|(d, _)| d.code() == dtc.code());
            if known.is_none_or(|(_, s)| s != severity) {
                out.push(Observation::Dtc {
                    dtc: *dtc,
                    state: DtcState::Active,
                    severity: *severity,
                    source,
                    bus,
                    ecu,
                    class,
                });
            }
        }
        for (dtc, severity) in &set.codes {
            if !self.scratch.iter().any(|(d, _)| d.code() == dtc.code()) {
                out.push(Observation::Dtc {
                    dtc: *dtc,
                    state: DtcState::Cleared,
                    severity: *severity,
                    source,
                    bus,
                    ecu,
                    class,
                });
            }
        }
        set.codes.clear();
        set.codes.extend_from_slice(&self.scratch);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rapport_shared::ObdCode;

    fn obd(text: &str) -> Dtc {
        match text.parse::<DtcCode>().unwrap() {
            DtcCode::Obd(c) => Dtc::Obd(c),
            other => panic!("{other:?}"),
        }
    }

    fn states(out: &[Observation]) -> Vec<(String, DtcState, Severity)> {
        out.iter()
            .map(|o| match o {
                Observation::Dtc {
                    dtc,
                    state,
                    severity,
                    ..
                } => (dtc.to_string(), *state, *severity),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn obd_mil_and_modes() {
        assert_eq!(
            obd_severity(DtcList::ObdConfirmed, Some(true)),
            Severity::Warning
        );
        assert_eq!(obd_severity(DtcList::ObdConfirmed, None), Severity::Warning);
        assert_eq!(
            obd_severity(DtcList::ObdConfirmed, Some(false)),
            Severity::Info
        );
        assert_eq!(
            obd_severity(DtcList::ObdPending, Some(true)),
            Severity::Info
        );
        assert_eq!(obd_severity(DtcList::ObdPermanent, None), Severity::Warning);
    }

    #[test]
    fn j1939_lamps() {
        let lamps = |mil, rsl, awl, pl| Lamps {
            mil,
            red_stop: rsl,
            amber_warning: awl,
            protect: pl,
        };
        let (on, off) = (Some(true), Some(false));
        assert_eq!(j1939_severity(lamps(off, on, off, off)), Severity::Critical);
        assert_eq!(j1939_severity(lamps(on, on, on, on)), Severity::Critical);
        assert_eq!(j1939_severity(lamps(off, off, on, off)), Severity::Warning);
        // VECTORS.md §4d: SA 0 lamp byte 0x43 = MIL on only
        assert_eq!(j1939_severity(lamps(on, off, off, None)), Severity::Warning);
        assert_eq!(j1939_severity(lamps(off, off, off, on)), Severity::Info);
        assert_eq!(j1939_severity(Lamps::default()), Severity::Info);
    }

    #[test]
    fn uds_status_bits() {
        // VECTORS.md §1 (CanZE #405): status 0x2B = testFailed, tfThisCycle, confirmed, tfSinceClear
        assert_eq!(uds_severity(UdsStatus(0x2B)), Severity::Warning);
        assert_eq!(uds_severity(UdsStatus(0x80)), Severity::Warning);
        assert_eq!(uds_severity(UdsStatus(0x04)), Severity::Info);
        assert_eq!(uds_severity(UdsStatus(0x01)), Severity::Info);
        assert_eq!(uds_severity(UdsStatus(0x20)), Severity::Info);
        assert_eq!(uds_severity(UdsStatus(0x60)), Severity::Info);
    }

    #[test]
    fn uds_status_classes() {
        // ISO 14229-1 D.2 status bits: 0 testFailed, 1 tfThisOperationCycle, 2 pending,
        // 3 confirmed, 4 testNotCompletedSinceLastClear, 5 tfSinceLastClear,
        // 6 testNotCompletedThisOperationCycle, 7 warningIndicatorRequested.
        let class = |s| uds_class(UdsStatus(s));
        assert_eq!(class(0x09), Some(DtcClass::Confirmed)); // failing now and confirmed
        assert_eq!(class(0x2B), Some(DtcClass::Confirmed));
        assert_eq!(class(0x80), Some(DtcClass::Confirmed)); // lamp requested
        assert_eq!(class(0x04), Some(DtcClass::Pending));
        assert_eq!(class(0x25), Some(DtcClass::Pending));
        assert_eq!(class(0x01), Some(DtcClass::TestFailed));
        assert_eq!(class(0x02), Some(DtcClass::TestFailed));
        assert_eq!(class(0x20), Some(DtcClass::Stored)); // failed once since the last clear
        assert_eq!(class(0x60), Some(DtcClass::Stored)); // ... and not tested this cycle
        assert_eq!(class(0x50), None); // never failed
        assert_eq!(class(0x00), None);
    }

    #[test]
    fn overrides_win() {
        let o = Overrides::new(vec![("P0300".parse().unwrap(), Severity::Critical)]);
        assert_eq!(
            o.apply("P0300".parse().unwrap(), Severity::Info),
            Severity::Critical
        );
        assert_eq!(
            o.apply("P0301".parse().unwrap(), Severity::Warning),
            Severity::Warning
        );
        // a UDS code with the same DTC number is a different code
        assert_eq!(
            o.apply("P0300-00".parse().unwrap(), Severity::Info),
            Severity::Info
        );
    }

    #[test]
    fn reports_activate_and_clear() {
        let mut set = DtcSet::default();
        let o = Overrides::new(vec![("P0300".parse().unwrap(), Severity::Critical)]);
        let mut out = Vec::new();
        let w = Severity::Warning;
        set.report(
            DtcList::ObdConfirmed,
            0x7E8,
            &[(obd("P0133"), w), (obd("P0300"), w), (obd("P0133"), w)],
            &o,
            &mut out,
        );
        assert_eq!(
            states(&out),
            [
                ("P0133".into(), DtcState::Active, w),
                ("P0300".into(), DtcState::Active, Severity::Critical)
            ]
        );
        out.clear();
        // same report again: nothing new
        set.report(
            DtcList::ObdConfirmed,
            0x7E8,
            &[(obd("P0300"), w), (obd("P0133"), w)],
            &o,
            &mut out,
        );
        assert!(out.is_empty());
        // another ECU and another list are other sets
        set.report(DtcList::ObdPending, 0x7E8, &[], &o, &mut out);
        set.report(DtcList::ObdConfirmed, 0x7E9, &[], &o, &mut out);
        assert!(out.is_empty());
        // P0133 gone, severity of P0300 unchanged (override), new P0171 as info
        set.report(
            DtcList::ObdConfirmed,
            0x7E8,
            &[
                (obd("P0300"), Severity::Info),
                (obd("P0171"), Severity::Info),
            ],
            &o,
            &mut out,
        );
        assert_eq!(
            states(&out),
            [
                ("P0171".into(), DtcState::Active, Severity::Info),
                ("P0133".into(), DtcState::Cleared, w)
            ]
        );
        assert_eq!(set.active(DtcList::ObdConfirmed, 0x7E8).len(), 2);
        assert_eq!(
            set.active(DtcList::ObdConfirmed, 0x7E8)[0].0,
            Dtc::Obd(ObdCode::new(0x0300))
        );
    }
}
