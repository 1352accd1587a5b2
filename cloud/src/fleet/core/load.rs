//! [`Fleet::load`]: the fleet rebuilt from the store at start — every driver placed from
//! scratch (changes that happened while the cloud was down recorded and acted on), the
//! unresolved alerts back in memory and in their time indexes.
//!
//! Owns the start. Does not own what a change or an alert then does ([`super::records`],
//! [`super::alerts`]).

use std::collections::HashMap;

use rapport_shared::Timestamp;

use super::{ALERT_COUNTER, Effects, Fleet, FleetError, FleetStats, Writes};
use crate::fleet::alerts::{Alert, AlertPolicy, AlertState};
use crate::fleet::layering::Layering;
use crate::fleet::model::LayerChange;
use crate::fleet::partners::Directory;
use crate::fleet::schedule::Due;
use crate::fleet::store::FleetStore;
use crate::fleet::strategy::Strategies;
use crate::store::Batch;
use crate::webhook::outbox::Outbox;

impl Fleet {
    /// Loads everything from the store and places every driver from scratch at `now`; layer
    /// changes that happened while the cloud was down are recorded (and acted on) into
    /// `batch`.
    ///
    /// # Errors
    /// The store or the outbox failed (an unreadable single value is counted and skipped).
    #[allow(clippy::too_many_arguments)] // the fleet's parts, each built by the shell
    pub fn load(
        store: FleetStore,
        outbox: Outbox,
        layering: Layering,
        strategies: Strategies,
        directory: Directory,
        policy: AlertPolicy,
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(Self, Effects), FleetError> {
        let next_alert = store.counter(ALERT_COUNTER)?;
        let mut fleet = Self {
            store,
            outbox,
            layering,
            strategies,
            directory,
            policy,
            open: HashMap::new(),
            send_due: Due::new(),
            sla_due: Due::new(),
            in_cell: Due::new(),
            next_alert,
            stats: FleetStats::default(),
        };
        // Drivers: place all, then compare with the layers last recorded.
        let mut drivers = Vec::new();
        for item in fleet.store.drivers() {
            match item {
                Ok((vin, d)) => {
                    let category = fleet.category(&vin);
                    drivers.push((vin, category, d));
                }
                Err(e) => {
                    fleet.stats.unreadable += 1;
                    tracing::error!(cause = %e, "driver record unreadable; skipped");
                }
            }
        }
        fleet.layering.place_all(
            drivers.iter().map(|(vin, c, d)| (*vin, *c, &d.profile)),
            now,
        );
        let mut w = Writes::new(batch);
        for (vin, _, mut driver) in drivers {
            let now_layers = fleet.layering.layers(&vin);
            if let Some(to) = now_layers
                && driver.layers != Some(to)
            {
                let change = LayerChange {
                    vin,
                    from: driver.layers,
                    to,
                    at: now,
                    why: crate::fleet::layers::explain(
                        driver.layers,
                        to,
                        &driver.profile,
                        now,
                        fleet.layering.config(),
                    ),
                };
                fleet.on_layer_change(&change, &mut driver, now, &mut w)?;
                fleet.store.put_driver(w.batch, &vin, &driver)?;
            }
            fleet.schedule_in_cell(&vin, &driver, now, &w)?;
        }
        // Alerts not resolved: back into memory and the time indexes.
        let alerts: Vec<Alert> = fleet
            .store
            .alerts::<Alert>()
            .filter_map(|a| match a {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!(cause = %e, "alert unreadable; skipped");
                    None
                }
            })
            .filter(|a| a.state != AlertState::Resolved)
            .collect();
        for alert in alerts {
            if fleet.outbox.state(&alert.webhook().id)?.is_none() {
                fleet.send_due.set(alert.id, alert.send_at);
            }
            if alert.state == AlertState::Open && alert.escalated.is_none() {
                fleet.sla_due.set(alert.id, alert.sla_due);
            }
            fleet.open.insert(alert.id, alert);
        }
        let fx = w.fx;
        Ok((fleet, fx))
    }
}
