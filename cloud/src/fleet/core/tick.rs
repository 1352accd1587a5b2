//! What time alone made due for one vehicle — layer changes, an in-cell re-offer, alert
//! webhooks whose time has come, SLAs run out — and the start-up re-placement of a driver
//! (layers recorded before a stop compared with where the driver sits now).
//!
//! Owns the order of a vehicle's due work (layers, in-cell, sends, SLAs: the order a tick
//! has always taken them in). Does not own finding due vehicles (each backend's time index)
//! nor the work itself ([`super::records`], [`super::decide`], [`super::alerts`]).

use super::{DEFAULT_CATEGORY, FleetError, Step, Vehicle};
use crate::fleet::layering::advance;
use crate::fleet::layers::explain;
use crate::fleet::model::LayerChange;
use crate::fleet::strategy::Event;

impl Step<'_> {
    /// Every kind of work due for `v` at the step's instant, in a tick's order.
    ///
    /// # Errors
    /// Ids from the store.
    pub fn due(&mut self, v: &mut Vehicle) -> Result<(), FleetError> {
        self.layers_due(v)?;
        self.in_cell_due(v)?;
        self.sends_due(v);
        self.slas_due(v);
        Ok(())
    }

    /// Layer changes time made due (if its layers are due): each recorded at its instant and
    /// handed to the strategies; the next change and the in-cell re-offer rescheduled.
    ///
    /// # Errors
    /// Ids from the store.
    pub fn layers_due(&mut self, v: &mut Vehicle) -> Result<(), FleetError> {
        let Some(due_at) = v.layer_due.filter(|t| *t <= self.now) else {
            return Ok(());
        };
        let (Some(old), Some(mut driver)) = (v.layers, v.driver.take()) else {
            // Only placed vehicles with a driver are scheduled; anything else is forgotten.
            v.layers = None;
            v.layer_due = None;
            return Ok(());
        };
        let category = v
            .registration
            .as_ref()
            .map_or(DEFAULT_CATEGORY, |r| r.category);
        let mut changes = Vec::new();
        let (layers, next) = advance(
            &self.rules.layers,
            v.vin,
            category,
            &driver.profile,
            old,
            due_at,
            self.now,
            &mut changes,
        );
        v.layers = Some(layers);
        v.layer_due = next;
        for change in &changes {
            let mut at_change = Step {
                rules: self.rules,
                ids: &mut *self.ids,
                now: change.at,
                out: std::mem::take(&mut self.out),
            };
            let done = at_change.on_layer_change(v, change, &mut driver);
            self.out = at_change.out;
            done?;
        }
        self.schedule_in_cell(v, &driver);
        v.driver = Some(driver);
        self.out.driver = true;
        Ok(())
    }

    /// The in-cell re-offer, if due.
    ///
    /// # Errors
    /// Ids from the store.
    pub fn in_cell_due(&mut self, v: &mut Vehicle) -> Result<(), FleetError> {
        if v.in_cell_due.is_none_or(|t| t > self.now) {
            return Ok(());
        }
        v.in_cell_due = None;
        let (Some(layers), Some(driver)) = (v.layers, v.driver.clone()) else {
            return Ok(());
        };
        self.decide_and_act(v, &Event::InCell, layers, &driver)?;
        self.schedule_in_cell(v, &driver);
        Ok(())
    }

    /// Alert webhooks whose time has come, into the outbox.
    pub fn sends_due(&mut self, v: &mut Vehicle) {
        let now = self.now;
        let due: Vec<u64> = v
            .alerts
            .values()
            .filter(|a| a.send_due.is_some_and(|t| t <= now))
            .map(|a| a.alert.id)
            .collect();
        for id in due {
            if let Some(mut open) = v.alerts.get(&id).cloned() {
                open.send_due = None;
                self.send(v, &mut open.alert);
                self.out.alert(&open);
                v.alerts.insert(id, open);
            }
        }
    }

    /// Alerts whose SLA ran out, escalated to the fallback partner (tried once: without a
    /// fallback partner an alert is not tried again until the next start of a sled store).
    pub fn slas_due(&mut self, v: &mut Vehicle) {
        let now = self.now;
        let due: Vec<u64> = v
            .alerts
            .values()
            .filter(|a| a.sla_due.is_some_and(|t| t <= now))
            .map(|a| a.alert.id)
            .collect();
        for id in due {
            if let Some(open) = v.alerts.get_mut(&id) {
                open.sla_due = None;
                let open = open.clone();
                self.out.alert(&open);
                self.escalate(v, id);
            }
        }
    }

    /// The start-up path of a store that keeps layers in memory: `v.layers` holds where the
    /// driver sits at the step's instant (placed from scratch), its driver the layers last
    /// recorded; a difference (a change while the cloud was down, or new thresholds) is
    /// recorded and acted on. The in-cell re-offer is rescheduled either way.
    ///
    /// # Errors
    /// Ids from the store.
    pub fn replaced(&mut self, v: &mut Vehicle) -> Result<(), FleetError> {
        let Some(mut driver) = v.driver.take() else {
            return Ok(());
        };
        if let Some(to) = v.layers
            && driver.layers != Some(to)
        {
            let change = LayerChange {
                vin: v.vin,
                from: driver.layers,
                to,
                at: self.now,
                why: explain(
                    driver.layers,
                    to,
                    &driver.profile,
                    self.now,
                    &self.rules.layers,
                ),
            };
            self.on_layer_change(v, &change, &mut driver)?;
        }
        self.schedule_in_cell(v, &driver);
        v.driver = Some(driver);
        Ok(())
    }
}
