//! [`Driver`]: what the fleet side of the cloud keeps per vehicle beyond the ingest's
//! [`crate::vehicle::VehicleState`] — the layering inputs ([`Profile`]), effective consents,
//! the maintenance checklist, the driver's latest response per maintenance item, and the
//! layers last recorded — and how one applied record changes it ([`Driver::apply`]), as
//! [`Signal`]s for strategies and alerts. Pure: no store, no clock of its own.
//!
//! What counts as *engagement* (the activity axis): the driver acknowledging or booking from a
//! prompt, and a service being done. A snooze or a dismissal is counted as a prompt action
//! (service maturity) but is not engagement: the driver pushed the service away.
//! Times come from the record (the car's clock, when it happened), never later than the
//! cloud's `now` (a car clock running ahead must not keep a driver "active" for ever).

use rapport_shared::{
    ConsentKind, MaintenanceStatus, PromptAction, PromptKind, Record, RecordBody, Severity,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use super::model::{Consents, DriverResponse, Layers, Profile, Registration};

/// Version byte in front of a stored [`Driver`].
pub const DRIVER_VERSION: u8 = 1;

/// One maintenance item's latest state as the car reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    /// The schedule item (`"oil"`).
    pub item: String,
    /// Its latest status.
    pub status: MaintenanceStatus,
    /// Due at this odometer (metres), if by distance.
    pub due_odometer_m: Option<u64>,
    /// Due at this time, if by time.
    pub due_at: Option<Timestamp>,
    /// The driver's latest response to this item's prompt (reset when the item is done).
    pub response: DriverResponse,
    /// Seq of the record that last changed the status.
    pub seq: u64,
    /// When (car clock).
    pub at: Timestamp,
}

/// The fleet's per-vehicle record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Driver {
    /// Layering inputs.
    pub profile: Profile,
    /// Effective consents: the registry's at sale, then the car's consent records (newest
    /// seq wins).
    pub consents: Consents,
    /// Seqs of the consent records applied: `[engagement, partner_sharing]` (0: none yet, the
    /// registry's value holds).
    pub consent_seq: [u64; 2],
    /// Maintenance items the car reported, in first-reported order.
    pub items: Vec<ItemState>,
    /// The layers last recorded (`None`: never placed).
    pub layers: Option<Layers>,
}

/// What an applied record means for strategies and alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// An item became due or overdue.
    MaintenanceDue {
        /// The item.
        item: String,
        /// Due or overdue.
        status: MaintenanceStatus,
    },
    /// An item was serviced.
    ServiceDone {
        /// The item.
        item: String,
    },
    /// A critical fault appeared.
    CriticalFault {
        /// Its code.
        code: rapport_shared::DtcCode,
    },
    /// The driver responded to a maintenance prompt.
    Responded {
        /// The item.
        item: String,
        /// How.
        response: DriverResponse,
    },
    /// A consent changed.
    ConsentChanged,
    /// The driver engaged (activity).
    Engaged,
}

impl Driver {
    /// A driver first seen now, with its registration if there is one.
    pub fn new(registration: Option<&Registration>, first_record_at: Timestamp) -> Self {
        let mut d = Self::default();
        d.profile.owned_since = Some(first_record_at);
        if let Some(r) = registration {
            d.register(r);
        }
        d
    }

    /// Takes a (new or changed) registration: delivery date and the consents given at sale,
    /// unless the car has since reported its own.
    pub fn register(&mut self, r: &Registration) {
        // The current owner's start: an owner change's, else the delivery.
        if let Some(since) = r.owner_since.or(r.delivered) {
            self.profile.owned_since = Some(since);
        }
        if self.consent_seq[0] == 0 {
            self.consents.engagement = r.consents.engagement;
        }
        if self.consent_seq[1] == 0 {
            self.consents.partner_sharing = r.consents.partner_sharing;
        }
    }

    /// The item's state, if the car reported it.
    pub fn item(&self, item: &str) -> Option<&ItemState> {
        self.items.iter().find(|i| i.item == item)
    }

    /// Items due or overdue now, for the alert's checklist (due soon ones too: a dealer
    /// booking a visit does them at once).
    pub fn checklist(&self) -> impl Iterator<Item = &ItemState> {
        self.items
            .iter()
            .filter(|i| i.status != MaintenanceStatus::Done)
    }

    /// Applies one record (applied for the first time: ingest guarantees once) at `now`
    /// (cloud clock); returns what it means.
    pub fn apply(&mut self, record: &Record, now: Timestamp) -> Vec<Signal> {
        let at = record.at.min(now);
        let seq = record.seq;
        let mut out = Vec::new();
        if self.profile.last_seen.is_none_or(|t| t < at) {
            self.profile.last_seen = Some(at);
        }
        match &record.body {
            RecordBody::Odometer(o) => {
                self.profile.odometer_m = self.profile.odometer_m.max(o.odometer.meters());
            }
            // Only a fault present now alerts: a stored, previously active or permanent code
            // is context (the alert's stored codes), never an alert of its own, whatever its
            // severity. Agents older than v1.1 send no class and only present codes.
            RecordBody::DtcAppeared(e)
                if e.severity == Severity::Critical && e.class.is_none_or(|c| c.may_prompt()) =>
            {
                out.push(Signal::CriticalFault { code: e.dtc.code() });
            }
            RecordBody::Maintenance(m) => self.maintenance(m, seq, at, &mut out),
            RecordBody::Prompt(p) => {
                let response = match p.action {
                    PromptAction::Shown => None,
                    PromptAction::Acknowledged => Some(DriverResponse::Acknowledged),
                    PromptAction::Snoozed { .. } => Some(DriverResponse::Snoozed),
                    PromptAction::Dismissed => Some(DriverResponse::Dismissed),
                    PromptAction::Booked => Some(DriverResponse::Booked),
                };
                if let Some(response) = response {
                    self.profile.prompt_actions = self.profile.prompt_actions.saturating_add(1);
                    if response == DriverResponse::Booked {
                        self.profile.bookings = self.profile.bookings.saturating_add(1);
                    }
                    if matches!(
                        response,
                        DriverResponse::Acknowledged | DriverResponse::Booked
                    ) {
                        self.engaged(at, &mut out);
                    }
                    if matches!(p.kind, PromptKind::Maintenance | PromptKind::FirstService)
                        && let Some(item) = self.items.iter_mut().find(|i| i.item == p.subject)
                    {
                        item.response = response;
                        out.push(Signal::Responded {
                            item: p.subject.clone(),
                            response,
                        });
                    }
                }
            }
            RecordBody::Consent(c) => {
                let slot = match c.consent {
                    ConsentKind::EngagementPrompts => Some(0),
                    ConsentKind::PartnerSharing => Some(1),
                    _ => None,
                };
                if let Some(slot) = slot
                    && self.consent_seq[slot] < seq
                {
                    self.consent_seq[slot] = seq;
                    if slot == 0 {
                        self.consents.engagement = c.granted;
                    } else {
                        self.consents.partner_sharing = c.granted;
                    }
                    out.push(Signal::ConsentChanged);
                }
            }
            _ => {}
        }
        out
    }

    fn engaged(&mut self, at: Timestamp, out: &mut Vec<Signal>) {
        if self.profile.last_engagement.is_none_or(|t| t < at) {
            self.profile.last_engagement = Some(at);
        }
        out.push(Signal::Engaged);
    }

    fn maintenance(
        &mut self,
        m: &rapport_shared::MaintenanceEvent,
        seq: u64,
        at: Timestamp,
        out: &mut Vec<Signal>,
    ) {
        let fresh = ItemState {
            item: m.item.clone(),
            status: m.status,
            due_odometer_m: m.due_odometer.map(rapport_shared::Odometer::meters),
            due_at: m.due_at,
            response: DriverResponse::None,
            seq,
            at,
        };
        match self.items.iter_mut().find(|i| i.item == m.item) {
            // A reordered older report changes nothing.
            Some(existing) if existing.seq > seq => return,
            Some(existing) => {
                let response = existing.response;
                let same_cycle = existing.status != MaintenanceStatus::Done
                    && m.status != MaintenanceStatus::Done;
                *existing = fresh;
                if same_cycle {
                    existing.response = response;
                }
            }
            None => self.items.push(fresh),
        }
        match m.status {
            MaintenanceStatus::Due | MaintenanceStatus::Overdue => {
                out.push(Signal::MaintenanceDue {
                    item: m.item.clone(),
                    status: m.status,
                })
            }
            MaintenanceStatus::Done => {
                self.profile.services = self.profile.services.saturating_add(1);
                self.engaged(at, out);
                out.push(Signal::ServiceDone {
                    item: m.item.clone(),
                });
            }
            _ => {}
        }
    }

    /// The stored form: [`DRIVER_VERSION`] then postcard.
    ///
    /// # Errors
    /// A message if postcard fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let out = vec![DRIVER_VERSION];
        postcard::to_extend(self, out).map_err(|e| e.to_string())
    }

    /// Reads the stored form.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            None => Err("empty driver record".into()),
            Some((&DRIVER_VERSION, body)) => postcard::from_bytes(body).map_err(|e| e.to_string()),
            Some((v, _)) => Err(format!(
                "driver record version {v}; this build reads {DRIVER_VERSION}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rapport_shared::{
        ConsentChange, Dtc, DtcClass, DtcEvent, MaintenanceEvent, ObdCode, Odometer,
        OdometerReading, PromptEvent, SignalSource,
    };

    use super::*;
    use crate::fleet::model::{Category, Consents};

    const T0: u64 = 1_800_000_000_000;

    fn rec(seq: u64, at_ms: u64, body: RecordBody) -> Record {
        Record {
            seq,
            at: Timestamp::from_millis(at_ms),
            body,
        }
    }

    fn maint(item: &str, status: MaintenanceStatus) -> RecordBody {
        RecordBody::Maintenance(MaintenanceEvent {
            item: item.into(),
            status,
            odometer: Odometer::from_meters(5_000_000),
            due_odometer: Some(Odometer::from_meters(5_000_000)),
            due_at: None,
            due_engine_hours: None,
        })
    }

    fn prompt(kind: PromptKind, subject: &str, action: PromptAction) -> RecordBody {
        RecordBody::Prompt(PromptEvent {
            prompt: format!("x:{subject}"),
            kind,
            subject: subject.into(),
            critical: false,
            action,
        })
    }

    fn now() -> Timestamp {
        Timestamp::from_millis(T0 + 10 * 86_400_000)
    }

    #[test]
    fn maintenance_cycle_response_and_service() {
        let mut d = Driver::new(None, Timestamp::from_millis(T0));
        let s = d.apply(&rec(1, T0, maint("oil", MaintenanceStatus::Due)), now());
        assert_eq!(
            s,
            vec![Signal::MaintenanceDue {
                item: "oil".into(),
                status: MaintenanceStatus::Due
            }]
        );
        let s = d.apply(
            &rec(
                2,
                T0 + 1,
                prompt(PromptKind::Maintenance, "oil", PromptAction::Booked),
            ),
            now(),
        );
        assert!(s.contains(&Signal::Engaged));
        assert!(s.contains(&Signal::Responded {
            item: "oil".into(),
            response: DriverResponse::Booked
        }));
        assert_eq!(d.item("oil").unwrap().response, DriverResponse::Booked);
        // Overdue in the same cycle keeps the response; Done resets it and counts a service.
        d.apply(
            &rec(3, T0 + 2, maint("oil", MaintenanceStatus::Overdue)),
            now(),
        );
        assert_eq!(d.item("oil").unwrap().response, DriverResponse::Booked);
        assert_eq!(d.checklist().count(), 1);
        let s = d.apply(
            &rec(4, T0 + 3, maint("oil", MaintenanceStatus::Done)),
            now(),
        );
        assert!(s.contains(&Signal::ServiceDone { item: "oil".into() }));
        assert_eq!(d.item("oil").unwrap().response, DriverResponse::None);
        assert_eq!(d.checklist().count(), 0);
        assert_eq!(
            (
                d.profile.prompt_actions,
                d.profile.bookings,
                d.profile.services
            ),
            (1, 1, 1)
        );
        // A reordered older report changes nothing.
        let s = d.apply(&rec(2, T0 + 1, maint("oil", MaintenanceStatus::Due)), now());
        assert!(s.is_empty());
        assert_eq!(d.item("oil").unwrap().status, MaintenanceStatus::Done);
    }

    #[test]
    fn snooze_and_dismiss_are_actions_not_engagement() {
        let mut d = Driver::new(None, Timestamp::from_millis(T0));
        for (seq, action) in [
            (
                1,
                PromptAction::Snoozed {
                    until: Timestamp::from_millis(T0 + 1),
                },
            ),
            (2, PromptAction::Dismissed),
            (3, PromptAction::Shown),
        ] {
            let s = d.apply(
                &rec(seq, T0, prompt(PromptKind::Milestone, "m", action)),
                now(),
            );
            assert!(!s.contains(&Signal::Engaged));
        }
        assert_eq!(d.profile.prompt_actions, 2);
        assert_eq!(d.profile.last_engagement, None);
        d.apply(
            &rec(
                4,
                T0 + 5,
                prompt(PromptKind::Milestone, "m", PromptAction::Acknowledged),
            ),
            now(),
        );
        assert_eq!(
            d.profile.last_engagement,
            Some(Timestamp::from_millis(T0 + 5))
        );
    }

    #[test]
    fn car_clock_ahead_is_capped_at_now() {
        let mut d = Driver::new(None, Timestamp::from_millis(T0));
        let future = now().as_millis() + 365 * 86_400_000;
        d.apply(
            &rec(
                1,
                future,
                prompt(PromptKind::Campaign, "c", PromptAction::Acknowledged),
            ),
            now(),
        );
        assert_eq!(d.profile.last_engagement, Some(now()));
    }

    #[test]
    fn consents_registry_then_car_newest_seq_wins() {
        let reg = Registration {
            vin: "WP0ZZZ99ZTS392124".parse().unwrap(),
            category: Category::Passenger,
            line: "x".into(),
            delivered: Some(Timestamp::from_millis(T0 - 1000)),
            dealer: None,
            region: None,
            consents: Consents {
                partner_sharing: true,
                engagement: true,
            },
            owner_since: None,
            owner: None,
        };
        let mut d = Driver::new(Some(&reg), Timestamp::from_millis(T0));
        assert_eq!(
            d.profile.owned_since,
            Some(Timestamp::from_millis(T0 - 1000))
        );
        assert!(d.consents.engagement && d.consents.partner_sharing);
        let opt_out = |granted| {
            RecordBody::Consent(ConsentChange {
                consent: ConsentKind::EngagementPrompts,
                granted,
            })
        };
        assert_eq!(
            d.apply(&rec(5, T0, opt_out(false)), now()),
            vec![Signal::ConsentChanged]
        );
        assert!(!d.consents.engagement);
        // An older consent record (reordered) does not undo the newer one.
        assert!(d.apply(&rec(3, T0, opt_out(true)), now()).is_empty());
        assert!(!d.consents.engagement);
        // Re-registering keeps the car's own answer.
        d.register(&reg);
        assert!(!d.consents.engagement && d.consents.partner_sharing);
    }

    #[test]
    fn critical_faults_signal_and_odometer_only_grows() {
        let mut d = Driver::new(None, Timestamp::from_millis(T0));
        let fault = |severity| {
            RecordBody::DtcAppeared(DtcEvent {
                dtc: Dtc::Obd(ObdCode::new(0x0300)),
                severity,
                ecu: 0x7E8,
                class: None,
            })
        };
        assert!(
            d.apply(&rec(1, T0, fault(Severity::Warning)), now())
                .is_empty()
        );
        assert_eq!(
            d.apply(&rec(2, T0, fault(Severity::Critical)), now()),
            vec![Signal::CriticalFault {
                code: "P0300".parse().unwrap()
            }]
        );
        // Critical by a config override but only stored or permanent: no alert; confirmed: one.
        let classed = |seq, class| {
            let RecordBody::DtcAppeared(e) = fault(Severity::Critical) else {
                unreachable!()
            };
            rec(
                seq,
                T0,
                RecordBody::DtcAppeared(DtcEvent {
                    class: Some(class),
                    ..e
                }),
            )
        };
        for (seq, class) in [
            (10, DtcClass::Stored),
            (11, DtcClass::PreviouslyActive),
            (12, DtcClass::Permanent),
        ] {
            assert!(d.apply(&classed(seq, class), now()).is_empty(), "{class}");
        }
        assert_eq!(d.apply(&classed(13, DtcClass::Confirmed), now()).len(), 1);
        let odo = |m| {
            RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(m),
                source: SignalSource::Obd,
            })
        };
        d.apply(&rec(3, T0, odo(2_000)), now());
        d.apply(&rec(4, T0, odo(1_000)), now());
        assert_eq!(d.profile.odometer_m, 2_000);
    }

    #[test]
    fn stored_form_round_trips_and_refuses_garbage() {
        let mut d = Driver::new(None, Timestamp::from_millis(T0));
        d.apply(&rec(1, T0, maint("oil", MaintenanceStatus::Due)), now());
        assert_eq!(Driver::from_bytes(&d.to_bytes().unwrap()).unwrap(), d);
        assert!(Driver::from_bytes(&[]).is_err());
        assert!(
            Driver::from_bytes(&[9, 1, 2])
                .unwrap_err()
                .contains("version 9")
        );
    }
}
