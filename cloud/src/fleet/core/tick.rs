//! [`Fleet::tick`]: what time alone made due — layer changes, in-cell re-offers, alert
//! webhooks whose time has come, SLAs run out — driven by the time indexes, never a scan.
//!
//! Owns the order of a tick's work and its limit per index ([`super::TICK_LIMIT`]). Does not
//! own the work itself ([`super::records`], [`super::decide`], [`super::alerts`]).

use std::collections::HashMap;

use rapport_shared::{Timestamp, Vin};

use super::{DEFAULT_CATEGORY, Effects, Fleet, FleetError, TICK_LIMIT, Writes};
use crate::fleet::driver::Driver;
use crate::fleet::strategy::Event;
use crate::store::Batch;

impl Fleet {
    /// Processes what time alone made due at `now`: layer changes, alert webhooks, SLAs,
    /// in-cell re-offers. Writes into `batch`.
    ///
    /// # Errors
    /// The store or the outbox.
    pub fn tick(&mut self, now: Timestamp, batch: &mut Batch) -> Result<Effects, FleetError> {
        let mut w = Writes::new(batch);
        // Layers: `tick` asks for each due vehicle's category and profile.
        let store = self.store.clone();
        let mut drivers: HashMap<Vin, Driver> = HashMap::new();
        let changes = self.layering.tick(now, TICK_LIMIT, |vin| {
            let driver = match store.driver(vin) {
                Ok(Some(d)) => d,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(%vin, cause = %e, "driver unreadable at tick");
                    return None;
                }
            };
            let category = match store.registration(vin) {
                Ok(Some(r)) => r.category,
                _ => DEFAULT_CATEGORY,
            };
            let profile = driver.profile.clone();
            drivers.insert(*vin, driver);
            Some((category, profile))
        });
        for change in &changes {
            if let Some(driver) = drivers.get_mut(&change.vin) {
                let mut d = std::mem::take(driver);
                self.on_layer_change(change, &mut d, change.at, &mut w)?;
                *driver = d;
            }
        }
        for (vin, driver) in &drivers {
            self.schedule_in_cell(vin, driver, now, &w)?;
            self.store.put_driver(w.batch, vin, driver)?;
        }
        // In-cell re-offers.
        for vin in self.in_cell.pop_due(now, TICK_LIMIT) {
            let Some(layers) = self.layering.layers(&vin) else {
                continue;
            };
            let Some(driver) = self.store.driver(&vin)? else {
                continue;
            };
            self.decide_and_act(&vin, &Event::InCell, layers, &driver, now, &mut w)?;
            self.schedule_in_cell(&vin, &driver, now, &w)?;
        }
        // Alert webhooks whose time has come.
        for id in self.send_due.pop_due(now, TICK_LIMIT) {
            if let Some(alert) = self.open.get(&id).cloned() {
                self.send(&alert, now, &mut w)?;
            }
        }
        // SLAs run out: escalate to the fallback partner.
        for id in self.sla_due.pop_due(now, TICK_LIMIT) {
            self.escalate(id, now, &mut w)?;
        }
        Ok(w.fx)
    }
}
