//! Active DTC sets and severities. Each ECU's complete report (an OBD-II mode 03/07/0A
//! answer, a UDS 0x19 0x02 answer, a J1939 DM1) replaces its previous one: codes new in it
//! become [`DtcState::Active`], codes missing from it become [`DtcState::Cleared`].
//!
//! Severity comes from what the ECU says (MIL, J1939 lamps, UDS status bits: the `*_severity`
//! functions) and then per-code config overrides win ([`Overrides`]). Owns those rules and the
//! sets; does not own decoding (see [`super::passive`]).

use rapport_shared::{Dtc, DtcCode, Severity, SignalSource, UdsStatus};

use super::{DtcState, Lamps, Observation};

/// Which report a set comes from. OBD-II's three lists are separate sets: a pending code is
/// not cleared by a stored-codes answer that does not list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DtcList {
    /// OBD-II mode 03.
    ObdStored,
    /// OBD-II mode 07.
    ObdPending,
    /// OBD-II mode 0A.
    ObdPermanent,
    /// UDS 0x19 0x02.
    Uds,
    /// J1939 DM1.
    J1939Dm1,
}

impl DtcList {
    /// The protocol the list belongs to.
    pub(crate) fn source(self) -> SignalSource {
        match self {
            Self::ObdStored | Self::ObdPending | Self::ObdPermanent => SignalSource::Obd,
            Self::Uds => SignalSource::Uds,
            Self::J1939Dm1 => SignalSource::J1939,
        }
    }
}

/// OBD-II: a stored code is a warning unless the ECU said the MIL is off (then info); a
/// pending code is info; a permanent code is a warning.
pub(crate) fn obd_severity(list: DtcList, mil_on: Option<bool>) -> Severity {
    match (list, mil_on) {
        (DtcList::ObdStored, Some(false)) => Severity::Info,
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
/// failed) info.
pub(crate) fn uds_severity(status: UdsStatus) -> Severity {
    if status.has(UdsStatus::WARNING_INDICATOR_REQUESTED) || status.has(UdsStatus::CONFIRMED) {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// Whether a UDS status says the fault is present at all: a record whose only bits are
/// "test not completed" describes a code that has not failed.
pub(crate) fn uds_is_present(status: UdsStatus) -> bool {
    status.0
        & (UdsStatus::TEST_FAILED
            | UdsStatus::TEST_FAILED_THIS_OPERATION_CYCLE
            | UdsStatus::PENDING
            | UdsStatus::CONFIRMED
            | UdsStatus::WARNING_INDICATOR_REQUESTED)
        != 0
}

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

/// The active DTCs of every (list, bus, ECU) seen.
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
            obd_severity(DtcList::ObdStored, Some(true)),
            Severity::Warning
        );
        assert_eq!(obd_severity(DtcList::ObdStored, None), Severity::Warning);
        assert_eq!(
            obd_severity(DtcList::ObdStored, Some(false)),
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
        assert!(uds_is_present(UdsStatus(0x04)));
        assert!(!uds_is_present(UdsStatus(0x50)));
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
            DtcList::ObdStored,
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
            DtcList::ObdStored,
            0x7E8,
            &[(obd("P0300"), w), (obd("P0133"), w)],
            &o,
            &mut out,
        );
        assert!(out.is_empty());
        // another ECU and another list are other sets
        set.report(DtcList::ObdPending, 0x7E8, &[], &o, &mut out);
        set.report(DtcList::ObdStored, 0x7E9, &[], &o, &mut out);
        assert!(out.is_empty());
        // P0133 gone, severity of P0300 unchanged (override), new P0171 as info
        set.report(
            DtcList::ObdStored,
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
        assert_eq!(set.active(DtcList::ObdStored, 0x7E8).len(), 2);
        assert_eq!(
            set.active(DtcList::ObdStored, 0x7E8)[0].0,
            Dtc::Obd(ObdCode::new(0x0300))
        );
    }
}
