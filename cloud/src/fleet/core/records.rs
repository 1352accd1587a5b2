//! What applied records and registrations change on the fleet side: the driver updated,
//! re-layered, and every [`Signal`] turned into decisions or alert changes
//! ([`Fleet::on_records`], [`Fleet::register`]); a layer change recorded on the timeline and
//! handed to the strategies.
//!
//! Owns the order of those steps. Does not own what a record means for the driver
//! ([`crate::fleet::driver`]), layering's rules, or the decisions ([`super::decide`]).

use rapport_shared::{Timestamp, Vin};

use super::{Effects, Fleet, FleetError, Writes, cell};
use crate::fleet::alerts::AlertKind;
use crate::fleet::driver::{Driver, Signal};
use crate::fleet::model::{LayerChange, Registration};
use crate::fleet::store::TimelineEntry;
use crate::fleet::strategy::Event;
use crate::store::Batch;
use crate::vehicle::VehicleState;

impl Fleet {
    /// Applies the fleet side of one envelope: `records` are the ones the ingest applied now
    /// (in order), `state` the vehicle's ingest state after them. Writes into `batch`.
    ///
    /// # Errors
    /// The store or the outbox.
    pub fn on_records<'r>(
        &mut self,
        vin: &Vin,
        state: &VehicleState,
        records: impl IntoIterator<Item = &'r rapport_shared::Record>,
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<Effects, FleetError> {
        let registration = self.store.registration(vin)?;
        let mut driver = match self.store.driver(vin)? {
            Some(d) => d,
            None => Driver::new(registration.as_ref(), now),
        };
        let mut signals = Vec::new();
        for r in records {
            signals.extend(driver.apply(r, now));
        }
        let registration = registration.unwrap_or_else(|| Registration::unregistered(*vin));
        let mut w = Writes::new(batch);
        if let Some(change) =
            self.layering
                .update(*vin, registration.category, &driver.profile, now)
        {
            self.on_layer_change(&change, &mut driver, now, &mut w)?;
        }
        for signal in signals {
            self.on_signal(signal, &registration, state, &mut driver, now, &mut w)?;
        }
        self.schedule_in_cell(vin, &driver, now, &w)?;
        self.store.put_driver(w.batch, vin, &driver)?;
        Ok(w.fx)
    }

    /// A registration created or changed through the API or an import: stored, and the
    /// driver re-placed (its delivery date and category matter). Writes into `batch`.
    ///
    /// # Errors
    /// The store.
    pub fn register(
        &mut self,
        r: &Registration,
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<Effects, FleetError> {
        let before = self.store.registration(&r.vin)?;
        self.store.put_registration(batch, r)?;
        let mut w = Writes::new(batch);
        let detail = if before.is_some() {
            "registry entry updated"
        } else {
            "registry entry created"
        };
        self.timeline(
            &r.vin,
            now,
            &TimelineEntry::Registered {
                detail: format!("{detail}: {} {}", r.category, r.line),
            },
            &mut w,
        )?;
        // A driver the cloud has heard from is re-placed now; one it has not waits for its
        // first record (nothing to place yet).
        if let Some(mut driver) = self.store.driver(&r.vin)? {
            driver.register(r);
            if let Some(change) = self
                .layering
                .update(r.vin, r.category, &driver.profile, now)
            {
                self.on_layer_change(&change, &mut driver, now, &mut w)?;
            }
            self.store.put_driver(w.batch, &r.vin, &driver)?;
        }
        Ok(w.fx)
    }

    pub(super) fn on_layer_change(
        &mut self,
        change: &LayerChange,
        driver: &mut Driver,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        self.stats.layer_changes += 1;
        w.fx.layer_changes += 1;
        self.timeline(
            &change.vin,
            change.at,
            &TimelineEntry::Layer {
                from: change.from,
                to: change.to,
                why: change.why.clone(),
            },
            w,
        )?;
        tracing::info!(vin = %change.vin, from = ?change.from.map(|l| cell(&l)), to = %cell(&change.to), why = %change.why, "layer change");
        driver.layers = Some(change.to);
        let event = Event::LayerChanged {
            from: change.from,
            to: change.to,
        };
        self.decide_and_act(&change.vin, &event, change.to, driver, now, w)
    }

    fn on_signal(
        &mut self,
        signal: Signal,
        registration: &Registration,
        state: &VehicleState,
        driver: &mut Driver,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        let vin = registration.vin;
        let Some(layers) = self.layering.layers(&vin) else {
            return Ok(());
        };
        match signal {
            Signal::MaintenanceDue { item, .. } => {
                if self
                    .open_alert_for(&vin, AlertKind::Maintenance, &item)
                    .is_some()
                {
                    return Ok(());
                }
                let event = Event::MaintenanceDue { item: item.clone() };
                self.decide_with_alert(
                    &event,
                    Some((AlertKind::Maintenance, &item)),
                    registration,
                    Some(state),
                    layers,
                    driver,
                    now,
                    w,
                )?;
            }
            Signal::CriticalFault { code } => {
                let subject = code.to_string();
                if self
                    .open_alert_for(&vin, AlertKind::CriticalFault, &subject)
                    .is_some()
                {
                    return Ok(());
                }
                let event = Event::CriticalFault { code };
                self.decide_with_alert(
                    &event,
                    Some((AlertKind::CriticalFault, &subject)),
                    registration,
                    Some(state),
                    layers,
                    driver,
                    now,
                    w,
                )?;
            }
            Signal::Responded { item, response } => {
                if let Some(id) = self.open_alert_for(&vin, AlertKind::Maintenance, &item)
                    && let Some(mut alert) = self.open.get(&id).cloned()
                {
                    if let Ok(Some(at)) = alert.driver_responded(response, now) {
                        self.sla_due.set(id, alert.sla_due);
                        self.send_due.set(id, at);
                    }
                    self.store.put_alert(w.batch, id, &vin, &alert)?;
                    self.open.insert(id, alert.clone());
                    if alert.send_at <= now && self.send_due.get(&id).is_some() {
                        self.send_due.remove(&id);
                        self.send(&alert, now, w)?;
                    }
                }
            }
            Signal::ServiceDone { item } => {
                if let Some(id) = self.open_alert_for(&vin, AlertKind::Maintenance, &item)
                    && let Some(mut alert) = self.open.remove(&id)
                {
                    if alert.resolve(now).is_ok() {
                        self.sla_due.remove(&id);
                        self.send_due.remove(&id);
                        self.timeline(
                            &vin,
                            now,
                            &TimelineEntry::Alert {
                                id,
                                event: "resolved".into(),
                                detail: format!("{item} serviced"),
                            },
                            w,
                        )?;
                    }
                    self.store.put_alert(w.batch, id, &vin, &alert)?;
                }
            }
            Signal::ConsentChanged | Signal::Engaged => {}
        }
        Ok(())
    }
}
