//! What applied records and registrations change for one vehicle: the driver updated,
//! re-placed, and every [`Signal`] turned into decisions or alert changes
//! ([`Step::on_records`], [`Step::register`]); a layer change recorded on the timeline and
//! handed to the strategies.
//!
//! Owns the order of those steps. Does not own what a record means for the driver
//! ([`crate::fleet::driver`]), layering's rules, or the decisions ([`super::decide`]).

use rapport_shared::{DriverAnswer, Record, RecordBody};

use super::{FleetError, Step, Vehicle, cell};
use crate::fleet::alerts::AlertKind;
use crate::fleet::driver::{Driver, Signal};
use crate::fleet::layers::{change, classify};
use crate::fleet::model::{Category, LayerChange, Registration};
use crate::fleet::store::TimelineEntry;
use crate::fleet::strategy::Event;
use crate::vehicle::VehicleState;

impl Step<'_> {
    /// The fleet side of one envelope: `records` are the ones the ingest applied now (in
    /// order), `state` the vehicle's ingest state after them.
    ///
    /// # Errors
    /// Ids from the store.
    pub fn on_records<'r>(
        &mut self,
        v: &mut Vehicle,
        state: &VehicleState,
        records: impl IntoIterator<Item = &'r Record>,
    ) -> Result<(), FleetError> {
        let now = self.now;
        let mut driver = match v.driver.take() {
            Some(d) => d,
            None => Driver::new(v.registration.as_ref(), now),
        };
        let mut signals = Vec::new();
        let mut answers = Vec::new();
        let owner_since = v.registration.as_ref().and_then(|r| r.owner_since);
        for r in records {
            // The ingest opened a clock episode with this record: once on the timeline.
            if let Some(c) = state.clock
                && c.seq == r.seq
            {
                self.out.timeline(
                    now,
                    TimelineEntry::ClockUntrusted {
                        car_at: c.car_at,
                        cloud_at: c.cloud_at,
                    },
                );
            }
            // A consent or prompt response of the previous owner arriving late is not the
            // new owner's (see `owner`).
            if super::owner::is_previous_owners(r, owner_since) {
                continue;
            }
            if let RecordBody::ServiceAnswer(a) = &r.body {
                answers.push((*a, r.at));
            }
            signals.extend(driver.apply(r, now));
        }
        let registration = v.registration_or_default();
        if let Some(change) = place(self, v, registration.category, &driver) {
            self.on_layer_change(v, &change, &mut driver)?;
        }
        for signal in signals {
            self.on_signal(v, signal, &registration, state, &mut driver)?;
        }
        // The driver's answers to service cases (ServiceProgress): cancel or left_car.
        for (a, at) in answers {
            let cancel = a.answer == DriverAnswer::Cancel;
            self.driver_answer(v, a.alert_id, cancel, at);
        }
        self.schedule_in_cell(v, &driver);
        v.driver = Some(driver);
        self.out.driver = true;
        Ok(())
    }

    /// A registration created or changed through the API or an import: stored, and the
    /// driver re-placed (its delivery date and category matter).
    ///
    /// # Errors
    /// Ids from the store.
    pub fn register(&mut self, v: &mut Vehicle, r: &Registration) -> Result<(), FleetError> {
        let detail = if v.registration.is_some() {
            "registry entry updated"
        } else {
            "registry entry created"
        };
        let r = &super::owner::merged(v.registration.as_ref(), r);
        let new_owner = super::owner::is_owner_change(v.registration.as_ref(), r)
            .then_some(r.owner_since)
            .flatten();
        v.registration = Some(r.clone());
        self.out.registration = true;
        self.out.timeline(
            self.now,
            TimelineEntry::Registered {
                detail: format!("{detail}: {} {}", r.category, r.line),
            },
        );
        if let Some(since) = new_owner {
            self.owner_changed(v, since, r.owner.as_deref())?;
        }
        // A driver the cloud has heard from is re-placed now; one it has not waits for its
        // first record (nothing to place yet).
        if let Some(mut driver) = v.driver.take() {
            driver.register(r);
            if let Some(change) = place(self, v, r.category, &driver) {
                self.on_layer_change(v, &change, &mut driver)?;
            }
            v.driver = Some(driver);
            self.out.driver = true;
        }
        Ok(())
    }

    /// Records a layer change and runs the strategies on it.
    pub(super) fn on_layer_change(
        &mut self,
        v: &mut Vehicle,
        change: &LayerChange,
        driver: &mut Driver,
    ) -> Result<(), FleetError> {
        self.out.stats.layer_changes += 1;
        self.out.timeline(
            change.at,
            TimelineEntry::Layer {
                from: change.from,
                to: change.to,
                why: change.why.clone(),
            },
        );
        tracing::info!(vin = %change.vin, from = ?change.from.map(|l| cell(&l)), to = %cell(&change.to), why = %change.why, "layer change");
        driver.layers = Some(change.to);
        self.out.driver = true;
        let event = Event::LayerChanged {
            from: change.from,
            to: change.to,
        };
        self.decide_and_act(v, &event, change.to, driver)
    }

    fn on_signal(
        &mut self,
        v: &mut Vehicle,
        signal: Signal,
        registration: &Registration,
        state: &VehicleState,
        driver: &mut Driver,
    ) -> Result<(), FleetError> {
        let now = self.now;
        let Some(layers) = v.layers else {
            return Ok(());
        };
        match signal {
            Signal::MaintenanceDue { item, .. } => {
                if v.open_alert_for(AlertKind::Maintenance, &item).is_some() {
                    return Ok(());
                }
                let event = Event::MaintenanceDue { item: item.clone() };
                self.decide_with_alert(
                    v,
                    &event,
                    Some((AlertKind::Maintenance, &item)),
                    registration,
                    Some(state),
                    layers,
                    driver,
                )?;
            }
            Signal::CriticalFault { code } => {
                let subject = code.to_string();
                if v.open_alert_for(AlertKind::CriticalFault, &subject)
                    .is_some()
                {
                    return Ok(());
                }
                let event = Event::CriticalFault { code };
                self.decide_with_alert(
                    v,
                    &event,
                    Some((AlertKind::CriticalFault, &subject)),
                    registration,
                    Some(state),
                    layers,
                    driver,
                )?;
            }
            Signal::Responded { item, response } => {
                if let Some(id) = v.open_alert_for(AlertKind::Maintenance, &item)
                    && let Some(mut open) = v.alerts.get(&id).cloned()
                {
                    if let Ok(Some(at)) = open.alert.driver_responded(response, now) {
                        open.sla_due = open.alert.promise_due();
                        open.send_due = Some(at);
                    }
                    if open.alert.send_at <= now && open.send_due.is_some() {
                        open.send_due = None;
                        self.send(v, &mut open.alert);
                    }
                    self.out.alert(&open);
                    v.alerts.insert(id, open);
                }
            }
            Signal::ServiceDone { item } => {
                if let Some(id) = v.open_alert_for(AlertKind::Maintenance, &item)
                    && let Some(mut open) = v.alerts.get(&id).cloned()
                {
                    if open.alert.resolve(now).is_ok() {
                        self.out.timeline(
                            now,
                            TimelineEntry::Alert {
                                id,
                                event: "resolved".into(),
                                detail: format!("{item} serviced"),
                            },
                        );
                        // The workshop's service record closes it: stage resolved, by the
                        // cloud (its timeline entry is the one above).
                        self.staged_quiet(v, open);
                    } else {
                        v.alerts.remove(&id);
                        self.out.resolved(&open.alert);
                    }
                }
            }
            Signal::ConsentChanged | Signal::Engaged => {}
        }
        Ok(())
    }
}

/// Re-places a vehicle after something happened to it (a record, an engagement, a registry
/// change) at the step's instant and reschedules its next change; the change, if any
/// (`from: None` for a vehicle not placed before).
fn place(step: &Step<'_>, v: &mut Vehicle, category: Category, d: &Driver) -> Option<LayerChange> {
    let cfg = &step.rules.layers;
    let placed = classify(category, &d.profile, step.now, cfg);
    let old = v.layers.replace(placed.layers);
    v.layer_due = placed.next_change;
    change(v.vin, old, placed.layers, &d.profile, step.now, cfg)
}
