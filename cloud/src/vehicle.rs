//! [`VehicleState`]: what the cloud knows about one vehicle from its records, and how one
//! record changes it ([`VehicleState::apply`]). Pure: no store, no clock of its own.
//!
//! Owns the effects of a record: latest odometer and engine hours (by sequence order, so a
//! late or replayed reading never overwrites a newer one), DTCs per (code, ECU, class)
//! (appeared, cleared, snapshots; again by sequence), the MIL, counts per record kind, first and last seen,
//! and whether the car's clock is believed ([`ClockEpisode`]: a car time more than a day
//! ahead of the cloud's, before 2020, or a `clock_untrusted` record from the agent opens an
//! episode, the first plausible car time closes it).
//! Does not own: whether a payload is acceptable ([`crate::ingest`]), storing the state or the
//! record log ([`crate::store`]), layering, strategies or alerts ([`crate::fleet`], which reads
//! each record as it is applied).

use rapport_shared::{
    Dtc, DtcClass, DtcCode, Record, RecordBody, Severity, SignalSource, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::applied::AppliedSet;

/// Version byte in front of a stored [`VehicleState`]; bump on any change of its layout.
/// Version 1 (no DTC class) is still read, with every class unknown.
pub const STATE_VERSION: u8 = 2;

/// Count slots: index 0 counts unknown kinds, index `tag` the known kind with that tag.
const KIND_SLOTS: usize = rapport_shared::v1::uplink::tag::MAX_KNOWN as usize + 1;

/// Everything the cloud keeps per vehicle (apart from the record log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleState {
    /// Which seqs are applied.
    pub applied: AppliedSet,
    /// The reading of the highest-seq odometer record applied.
    pub odometer: Option<Reading>,
    /// The reading of the highest-seq engine-hours record applied.
    pub engine_hours: Option<Reading>,
    /// Every fault seen, listed or not, keyed by (code, ECU, class).
    pub dtcs: Vec<DtcEntry>,
    /// The malfunction lamp from the highest-seq snapshot: (on, seq).
    pub mil: Option<(bool, u64)>,
    /// Records applied per kind: index 0 unknown kinds, else the wire tag.
    pub counts: Vec<u64>,
    /// Seqs given up on (see [`AppliedSet`]).
    pub abandoned: u64,
    /// When the cloud first applied a record of this vehicle (cloud clock).
    pub first_seen: Timestamp,
    /// When the cloud last applied a record of this vehicle (cloud clock).
    pub last_seen: Timestamp,
    /// The car's clock is not believed now (an open episode). Stored after the fields
    /// above, so a state written before it reads as `None` (see [`VehicleState::to_bytes`]).
    #[serde(skip)]
    pub clock: Option<ClockEpisode>,
}

/// The car's clock cannot be believed: since the record `seq`, whose car time was `car_at`
/// when the cloud's was `cloud_at`. Records are still applied by seq and every time the
/// fleet uses is capped at the cloud's (`fleet::driver`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEpisode {
    /// The record that opened it.
    pub seq: u64,
    /// Its car time.
    pub car_at: Timestamp,
    /// The cloud's time when it was applied.
    pub cloud_at: Timestamp,
}

/// A car time this far ahead of the cloud's is a wrong clock (a day: time zones and drift
/// stay well inside it).
pub const CLOCK_AHEAD_MS: u64 = 86_400_000;
/// No car time before 2020-01-01 is true: an RTC back at 1970, a clock never set.
pub const CLOCK_NOT_BEFORE: Timestamp = Timestamp::from_millis(1_577_836_800_000);

/// Whether `record`'s car time cannot be believed at cloud time `now`.
pub fn clock_untrusted(record: &Record, now: Timestamp) -> bool {
    matches!(record.body, RecordBody::ClockUntrusted(_))
        || record.at < CLOCK_NOT_BEFORE
        || record.at.as_millis() > now.as_millis().saturating_add(CLOCK_AHEAD_MS)
}

/// A reading and the record it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// Metres (odometer) or seconds (engine hours).
    pub value: u64,
    /// Where the car read it.
    pub source: SignalSource,
    /// The record's seq.
    pub seq: u64,
    /// The record's time (car clock).
    pub at: Timestamp,
}

/// One fault of one ECU in one of its lists, and its latest known state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtcEntry {
    /// The fault as last reported (status byte, occurrence count).
    pub dtc: Dtc,
    /// The reporting ECU.
    pub ecu: u32,
    /// Severity as last reported.
    pub severity: Severity,
    /// Listed now (in its class).
    pub active: bool,
    /// Seq of the record that last changed it.
    pub seq: u64,
    /// That record's time (car clock).
    pub at: Timestamp,
    /// Which list: confirmed, pending, stored, …; `None` from agents older than v1.1.
    pub class: Option<DtcClass>,
}

impl DtcEntry {
    /// Whether this is history the ECU keeps (stored, previously active) rather than a fault
    /// present now.
    pub fn is_history(&self) -> bool {
        matches!(
            self.class,
            Some(DtcClass::Stored | DtcClass::PreviouslyActive)
        )
    }
}

/// What applying one record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Applied now (false: its seq was applied before, nothing changed).
    pub new: bool,
    /// A record kind this build does not know (counted, kept in the log).
    pub unknown: bool,
    /// Seqs given up on while inserting this one.
    pub abandoned: u64,
}

impl VehicleState {
    /// A vehicle seen for the first time at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            applied: AppliedSet::default(),
            odometer: None,
            engine_hours: None,
            dtcs: Vec::new(),
            mil: None,
            counts: vec![0; KIND_SLOTS],
            abandoned: 0,
            first_seen: now,
            last_seen: now,
            clock: None,
        }
    }

    /// The highest seq applied (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.applied.max()
    }

    /// Records applied, all kinds.
    pub fn records(&self) -> u64 {
        self.counts.iter().copied().fold(0, u64::saturating_add)
    }

    /// Records applied per kind name, known kinds in tag order then `unknown`; zeros left out.
    pub fn counts_by_kind(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = (1..self.counts.len())
            .filter_map(|tag| {
                let n = self.counts.get(tag).copied().unwrap_or(0);
                let tag = u32::try_from(tag).ok()?;
                (n > 0).then(|| (rapport_shared::v1::uplink::kind_name(tag), n))
            })
            .collect();
        if let Some(&n) = self.counts.first()
            && n > 0
        {
            out.push(("unknown", n));
        }
        out
    }

    /// Faults present now (every class but the history ones), in the order first seen. A
    /// code in two lists (confirmed and permanent) is listed once per list.
    pub fn active_dtcs(&self) -> impl Iterator<Item = &DtcEntry> {
        self.dtcs.iter().filter(|d| d.active && !d.is_history())
    }

    /// Codes the car's ECUs remember (class stored or previously active) and list now, in
    /// the order first seen.
    pub fn stored_dtcs(&self) -> impl Iterator<Item = &DtcEntry> {
        self.dtcs.iter().filter(|d| d.active && d.is_history())
    }

    /// Applies one record once: a seq applied before changes nothing.
    pub fn apply(&mut self, record: &Record, now: Timestamp) -> Applied {
        let inserted = self.applied.insert(record.seq);
        self.abandoned = self.abandoned.saturating_add(inserted.abandoned);
        let mut done = Applied {
            new: inserted.new,
            unknown: false,
            abandoned: inserted.abandoned,
        };
        if !inserted.new {
            return done;
        }
        self.last_seen = self.last_seen.max(now);
        // Episodes follow the newest seq: a late record from before does not reopen or close.
        if record.seq >= self.applied.max() {
            match (clock_untrusted(record, now), self.clock) {
                (true, None) => {
                    self.clock = Some(ClockEpisode {
                        seq: record.seq,
                        car_at: record.at,
                        cloud_at: now,
                    });
                }
                (false, Some(_)) if !matches!(record.body, RecordBody::Heartbeat(_)) => {
                    self.clock = None;
                }
                _ => {}
            }
        }
        let (seq, at) = (record.seq, record.at);
        match &record.body {
            RecordBody::Odometer(o) => newer(
                &mut self.odometer,
                Reading {
                    value: o.odometer.meters(),
                    source: o.source,
                    seq,
                    at,
                },
            ),
            RecordBody::EngineHours(h) => newer(
                &mut self.engine_hours,
                Reading {
                    value: h.hours.secs(),
                    source: h.source,
                    seq,
                    at,
                },
            ),
            RecordBody::DtcAppeared(e) => self.dtc_event(e, true, seq, at),
            RecordBody::DtcCleared(e) => self.dtc_event(e, false, seq, at),
            RecordBody::DtcSnapshot(s) => {
                for entry in &mut self.dtcs {
                    if entry.seq < seq {
                        let listed = s.active.iter().any(|e| {
                            e.dtc.code() == entry.dtc.code()
                                && e.ecu == entry.ecu
                                && e.class == entry.class
                        });
                        if entry.active != listed {
                            entry.active = listed;
                            entry.seq = seq;
                            entry.at = at;
                        }
                    }
                }
                for e in &s.active {
                    self.dtc_event(e, true, seq, at);
                }
                if self.mil.is_none_or(|(_, s)| s < seq) {
                    self.mil = Some((s.mil, seq));
                }
            }
            RecordBody::Unknown { .. } => done.unknown = true,
            // Counted and kept in the log; the fleet core reads them as they are applied
            // (a ServiceAnswer: `fleet::core` moves or notes its alert).
            RecordBody::Maintenance(_)
            | RecordBody::Prompt(_)
            | RecordBody::Consent(_)
            | RecordBody::Heartbeat(_)
            | RecordBody::WipeConfirmed(_)
            | RecordBody::ClockUntrusted(_)
            | RecordBody::ServiceAnswer(_) => {}
        }
        let slot = match &record.body {
            RecordBody::Unknown { .. } => 0,
            body => usize::try_from(body.tag()).unwrap_or(0),
        };
        if self.counts.len() < KIND_SLOTS {
            self.counts.resize(KIND_SLOTS, 0);
        }
        if let Some(n) = self.counts.get_mut(slot) {
            *n = n.saturating_add(1);
        }
        done
    }

    fn dtc_event(&mut self, e: &rapport_shared::DtcEvent, active: bool, seq: u64, at: Timestamp) {
        let code: DtcCode = e.dtc.code();
        let fresh = DtcEntry {
            dtc: e.dtc,
            ecu: e.ecu,
            severity: e.severity,
            active,
            seq,
            at,
            class: e.class,
        };
        match self
            .dtcs
            .iter_mut()
            .find(|d| d.dtc.code() == code && d.ecu == e.ecu && d.class == e.class)
        {
            Some(entry) if entry.seq < seq => *entry = fresh,
            // An older event than what we know (reordered or replayed): no change.
            Some(_) => {}
            None => self.dtcs.push(fresh),
        }
    }

    /// The stored form: [`STATE_VERSION`] then postcard.
    ///
    /// # Errors
    /// A message if postcard fails (it does not for this type).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(64);
        out.push(STATE_VERSION);
        let out = postcard::to_extend(self, out).map_err(|e| e.to_string())?;
        // The clock episode follows the version-2 fields: a build that does not know it reads
        // them and ignores the rest; one that does reads `None` from a state without it.
        postcard::to_extend(&self.clock, out).map_err(|e| e.to_string())
    }

    /// Reads the stored form.
    ///
    /// # Errors
    /// A message naming what is wrong (empty, unknown version, undecodable).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            None => Err("empty vehicle state".into()),
            Some((&STATE_VERSION, body)) => {
                let (mut state, rest): (Self, _) =
                    postcard::take_from_bytes(body).map_err(|e| e.to_string())?;
                if !rest.is_empty() {
                    state.clock = postcard::from_bytes(rest).map_err(|e| e.to_string())?;
                }
                Ok(state)
            }
            Some((&1, body)) => postcard::from_bytes::<v1::VehicleState>(body)
                .map(Self::from)
                .map_err(|e| e.to_string()),
            Some((v, _)) => Err(format!(
                "vehicle state version {v}; this build reads {STATE_VERSION}"
            )),
        }
    }
}

/// The stored layout of version 1, before DTC classes; read, never written.
mod v1 {
    use rapport_shared::{Dtc, Severity, Timestamp};
    use serde::Deserialize;

    use super::{AppliedSet, Reading};

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub(super) struct VehicleState {
        pub(super) applied: AppliedSet,
        pub(super) odometer: Option<Reading>,
        pub(super) engine_hours: Option<Reading>,
        pub(super) dtcs: Vec<DtcEntry>,
        pub(super) mil: Option<(bool, u64)>,
        pub(super) counts: Vec<u64>,
        pub(super) abandoned: u64,
        pub(super) first_seen: Timestamp,
        pub(super) last_seen: Timestamp,
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub(super) struct DtcEntry {
        pub(super) dtc: Dtc,
        pub(super) ecu: u32,
        pub(super) severity: Severity,
        pub(super) active: bool,
        pub(super) seq: u64,
        pub(super) at: Timestamp,
    }
}

impl From<v1::VehicleState> for VehicleState {
    fn from(old: v1::VehicleState) -> Self {
        Self {
            applied: old.applied,
            odometer: old.odometer,
            engine_hours: old.engine_hours,
            dtcs: old
                .dtcs
                .into_iter()
                .map(|d| DtcEntry {
                    dtc: d.dtc,
                    ecu: d.ecu,
                    severity: d.severity,
                    active: d.active,
                    seq: d.seq,
                    at: d.at,
                    class: None,
                })
                .collect(),
            mil: old.mil,
            counts: old.counts,
            abandoned: old.abandoned,
            first_seen: old.first_seen,
            last_seen: old.last_seen,
            clock: None,
        }
    }
}

fn newer(slot: &mut Option<Reading>, reading: Reading) {
    if slot.is_none_or(|r| r.seq < reading.seq) {
        *slot = Some(reading);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rapport_shared::{
        DtcEvent, DtcSnapshot, EngineHours, EngineHoursReading, Heartbeat, ObdCode, Odometer,
        OdometerReading,
    };

    use super::*;

    fn rec(seq: u64, body: RecordBody) -> Record {
        Record {
            seq,
            at: Timestamp::from_millis(1_700_000_000_000 + seq),
            body,
        }
    }

    fn odo(seq: u64, km: u64) -> Record {
        rec(
            seq,
            RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_km(km),
                source: SignalSource::Obd,
            }),
        )
    }

    fn dtc(code: u16, ecu: u32) -> DtcEvent {
        DtcEvent {
            dtc: Dtc::Obd(ObdCode::new(code)),
            severity: Severity::Warning,
            ecu,
            class: None,
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn a_wrong_car_clock_is_one_episode_and_survives_the_store() {
        let mut v = VehicleState::new(NOW);
        let at = |seq, ms| Record {
            at: Timestamp::from_millis(ms),
            ..odo(seq, seq)
        };
        v.apply(&at(1, NOW.as_millis() - 1000), NOW);
        assert_eq!(v.clock, None);
        // 1970 for three records: one episode, opened by the first.
        for seq in 2..=4 {
            v.apply(&at(seq, 5_000 + seq), NOW);
        }
        let open = ClockEpisode {
            seq: 2,
            car_at: Timestamp::from_millis(5_002),
            cloud_at: NOW,
        };
        assert_eq!(v.clock, Some(open));
        // The stored form keeps it; a state written without it reads as None.
        assert_eq!(VehicleState::from_bytes(&v.to_bytes().unwrap()).unwrap(), v);
        let mut without = vec![STATE_VERSION];
        without.extend(postcard::to_allocvec(&v).unwrap());
        assert_eq!(VehicleState::from_bytes(&without).unwrap().clock, None);
        // A late record from before the episode changes nothing; a plausible new one closes it.
        v.apply(&at(0, NOW.as_millis() - 5000), NOW);
        assert_eq!(v.clock, Some(open));
        v.apply(&at(5, NOW.as_millis()), NOW);
        assert_eq!(v.clock, None);
        // A year ahead opens the next one.
        v.apply(&at(6, NOW.as_millis() + 365 * 86_400_000), NOW);
        assert_eq!(v.clock.map(|c| c.seq), Some(6));
    }

    #[test]
    fn latest_reading_is_by_seq_not_arrival() {
        let mut v = VehicleState::new(NOW);
        assert!(v.apply(&odo(5, 500), NOW).new);
        assert!(v.apply(&odo(3, 300), NOW).new, "late but new");
        assert_eq!(v.odometer.unwrap().value, 500_000);
        assert_eq!(v.odometer.unwrap().seq, 5);
        assert!(!v.apply(&odo(5, 999), NOW).new, "replay changes nothing");
        assert_eq!(v.odometer.unwrap().value, 500_000);
        assert_eq!(v.records(), 2);
        assert_eq!(v.last_seq(), 5);
        let h = rec(
            6,
            RecordBody::EngineHours(EngineHoursReading {
                hours: EngineHours::from_secs(3600),
                source: SignalSource::J1939,
            }),
        );
        v.apply(&h, NOW);
        assert_eq!(v.engine_hours.unwrap().value, 3600);
        assert_eq!(
            v.counts_by_kind(),
            vec![("odometer", 2), ("engine_hours", 1)]
        );
    }

    #[test]
    fn dtcs_follow_seq_order() {
        let mut v = VehicleState::new(NOW);
        // Cleared (seq 10) arrives before the appearance it clears (seq 4).
        v.apply(&rec(10, RecordBody::DtcCleared(dtc(0x0133, 0x7E8))), NOW);
        v.apply(&rec(4, RecordBody::DtcAppeared(dtc(0x0133, 0x7E8))), NOW);
        assert_eq!(v.active_dtcs().count(), 0);
        // Same code from another ECU is another fault.
        v.apply(&rec(11, RecordBody::DtcAppeared(dtc(0x0133, 0x7E9))), NOW);
        v.apply(&rec(12, RecordBody::DtcAppeared(dtc(0x0420, 0x7E8))), NOW);
        assert_eq!(v.active_dtcs().count(), 2);
        // A snapshot lists only P0420: P0133@7E9 clears, the MIL is on.
        let snap = DtcSnapshot {
            active: vec![dtc(0x0420, 0x7E8)],
            mil: true,
        };
        v.apply(&rec(13, RecordBody::DtcSnapshot(snap)), NOW);
        let active: Vec<String> = v.active_dtcs().map(|d| d.dtc.to_string()).collect();
        assert_eq!(active, vec!["P0420"]);
        assert_eq!(v.mil, Some((true, 13)));
        // An older snapshot arriving late changes nothing.
        let old = DtcSnapshot {
            active: vec![dtc(0x0133, 0x7E9)],
            mil: false,
        };
        v.apply(&rec(7, RecordBody::DtcSnapshot(old)), NOW);
        assert_eq!(v.active_dtcs().count(), 1);
        assert_eq!(v.mil, Some((true, 13)));
    }

    #[test]
    fn unknown_kinds_count_and_take_their_seq() {
        let mut v = VehicleState::new(NOW);
        let r = rec(
            1,
            RecordBody::Unknown {
                tag: 99,
                bytes: vec![1, 2, 3],
            },
        );
        let a = v.apply(&r, NOW);
        assert!(a.new && a.unknown);
        assert!(!v.apply(&r, NOW).new);
        let hb = rec(
            2,
            RecordBody::Heartbeat(Heartbeat {
                agent_version: "1".into(),
                uptime_s: 1,
                outbox_depth: 0,
                records_dropped: 0,
            }),
        );
        v.apply(&hb, NOW);
        assert_eq!(v.counts_by_kind(), vec![("heartbeat", 1), ("unknown", 1)]);
    }

    fn classed(code: u16, class: DtcClass) -> DtcEvent {
        DtcEvent {
            class: Some(class),
            ..dtc(code, 0x7E8)
        }
    }

    #[test]
    fn each_class_is_its_own_entry_and_history_is_kept_apart() {
        let mut v = VehicleState::new(NOW);
        let appeared = |e| RecordBody::DtcAppeared(e);
        v.apply(&rec(1, appeared(classed(0x0420, DtcClass::Confirmed))), NOW);
        v.apply(&rec(2, appeared(classed(0x0420, DtcClass::Permanent))), NOW);
        v.apply(&rec(3, appeared(classed(0x0171, DtcClass::Stored))), NOW);
        v.apply(
            &rec(4, appeared(classed(0x0110, DtcClass::PreviouslyActive))),
            NOW,
        );
        let names = |it: &mut dyn Iterator<Item = &DtcEntry>| -> Vec<String> {
            it.map(|d| format!("{}:{}", d.dtc, d.class.map_or("?", DtcClass::name)))
                .collect()
        };
        assert_eq!(
            names(&mut v.active_dtcs()),
            ["P0420:confirmed", "P0420:permanent"]
        );
        assert_eq!(
            names(&mut v.stored_dtcs()),
            ["P0171:stored", "P0110:previously_active"]
        );
        // Cleared from confirmed only: still permanent.
        v.apply(
            &rec(
                5,
                RecordBody::DtcCleared(classed(0x0420, DtcClass::Confirmed)),
            ),
            NOW,
        );
        assert_eq!(names(&mut v.active_dtcs()), ["P0420:permanent"]);
        // A snapshot lists (code, ECU, class): what it does not list is no longer listed.
        let snap = DtcSnapshot {
            active: vec![
                classed(0x0420, DtcClass::Confirmed),
                classed(0x0171, DtcClass::Stored),
            ],
            mil: true,
        };
        v.apply(&rec(6, RecordBody::DtcSnapshot(snap)), NOW);
        assert_eq!(names(&mut v.active_dtcs()), ["P0420:confirmed"]);
        assert_eq!(names(&mut v.stored_dtcs()), ["P0171:stored"]);
    }

    #[test]
    fn version_1_state_is_read_with_classes_unknown() {
        let old = v1::VehicleState {
            applied: AppliedSet::default(),
            odometer: None,
            engine_hours: None,
            dtcs: vec![v1::DtcEntry {
                dtc: Dtc::Obd(ObdCode::new(0x0133)),
                ecu: 0x7E8,
                severity: Severity::Warning,
                active: true,
                seq: 4,
                at: NOW,
            }],
            mil: Some((true, 4)),
            counts: vec![0; KIND_SLOTS],
            abandoned: 0,
            first_seen: NOW,
            last_seen: NOW,
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let v = VehicleState::from_bytes(&bytes).unwrap();
        assert_eq!(v.dtcs.len(), 1);
        assert_eq!(v.dtcs[0].class, None);
        assert_eq!(v.active_dtcs().count(), 1, "an unclassed fault is present");
        assert_eq!(v.mil, Some((true, 4)));
        // Written back, it is version 2.
        assert_eq!(v.to_bytes().unwrap()[0], 2);
    }

    #[test]
    fn stored_form_round_trips_and_refuses_other_versions() {
        let mut v = VehicleState::new(NOW);
        v.apply(&odo(1, 10), NOW);
        v.apply(&rec(3, RecordBody::DtcAppeared(dtc(0x0133, 1))), NOW);
        let bytes = v.to_bytes().unwrap();
        assert_eq!(bytes[0], STATE_VERSION);
        assert_eq!(VehicleState::from_bytes(&bytes).unwrap(), v);
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(
            VehicleState::from_bytes(&other)
                .unwrap_err()
                .contains("version 9")
        );
        assert!(VehicleState::from_bytes(&[]).is_err());
        // Cut inside the version-2 fields (the last byte is the clock episode's `None`, which
        // a state written before it lacks: that one still reads).
        assert!(VehicleState::from_bytes(&bytes[..bytes.len() - 2]).is_err());
        assert_eq!(
            VehicleState::from_bytes(&bytes[..bytes.len() - 1]).unwrap(),
            v
        );
    }
}
