//! DTC observations applied to the rules (`Rules::on_dtc`): per-class listings become
//! records for the cloud, and the classes that may prompt ([`DtcClass::may_prompt`]) become
//! the fault histories prompts are made from.
//!
//! Owns: which class listings reach the fault history, and when a listing is news for the
//! cloud. Does not own: the class sets themselves (`crate::observe::dtc_set`), the prompt
//! words (`super::super::conditions`), nor writing the changes (the caller).

use rapport_shared::v1::uplink::{DtcEvent, RecordBody};
use rapport_shared::{DtcClass, Severity, Timestamp};

use super::Rules;
use crate::memory::{Changes, DtcHistory};
use crate::observe::DtcState;

impl Rules {
    /// One DTC class listing appearing or leaving; whether prompts need another look.
    ///
    /// Classes that never prompt ([`DtcClass::may_prompt`]: stored, previously active,
    /// permanent) go to the cloud and nowhere else: the fault history behind prompts (and
    /// campaigns' "no active faults") holds only the others, as before classes existed.
    pub(super) fn on_dtc(
        &mut self,
        event: DtcEvent,
        state: DtcState,
        now: Timestamp,
        ch: &mut Changes,
    ) -> bool {
        let DtcEvent {
            dtc, severity, ecu, ..
        } = event;
        let class = event.class.unwrap_or(DtcClass::Confirmed);
        if !class.may_prompt() {
            ch.outbox.push((
                now,
                match state {
                    DtcState::Active => RecordBody::DtcAppeared(event),
                    DtcState::Cleared => RecordBody::DtcCleared(event),
                },
            ));
            return false;
        }
        let code = dtc.code();
        let key = (code, ecu, class);
        match state {
            DtcState::Active => {
                // Listed under another class since start: this class is news for the cloud.
                let other_class =
                    !self.listed.contains(&key) && self.listed.iter().any(|k| k.0 == code);
                self.listed.insert(key);
                let entry = self.mem.dtcs.entry(code).or_insert(DtcHistory {
                    dtc,
                    severity,
                    ecu,
                    first_seen: now,
                    last_seen: now,
                    times_seen: 0,
                    active: false,
                    cleared_at: None,
                });
                if !entry.active {
                    entry.times_seen = entry.times_seen.saturating_add(1);
                    entry.active = true;
                    ch.outbox.push((now, RecordBody::DtcAppeared(event)));
                } else if entry.severity != severity || other_class {
                    ch.outbox.push((now, RecordBody::DtcAppeared(event)));
                }
                // A critical fault is written at once, so it can leave for the cloud (and the
                // partner) in about a second rather than with the next coalesced write.
                if severity == Severity::Critical {
                    ch.durable = true;
                }
                entry.dtc = dtc;
                entry.severity = severity;
                entry.ecu = ecu;
                entry.last_seen = now;
                ch.dtcs.insert(code);
            }
            DtcState::Cleared => {
                self.listed.remove(&key);
                let still_listed = self.listed.iter().any(|k| k.0 == code);
                if let Some(entry) = self.mem.dtcs.get_mut(&code)
                    && entry.active
                {
                    ch.outbox.push((now, RecordBody::DtcCleared(event)));
                    if !still_listed {
                        entry.active = false;
                        entry.cleared_at = Some(now);
                        ch.dtcs.insert(code);
                    }
                }
            }
        }
        true
    }
}
