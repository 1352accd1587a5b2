//! What the API reads of the running fleet beyond single stored values: who may see a
//! vehicle ([`FleetHandle::partner_may_see`], after [`may_see`]'s rule) and a page of
//! vehicles in a set of layer cells ([`FleetHandle::vehicles`]).
//!
//! Owns gathering what those answers need (registration, the vehicle's alerts, the layers in
//! store port), each read on its own: nothing here writes. Does not own the rules (partners,
//! layering) nor HTTP (`crate::api`).

use rapport_shared::Vin;

use super::core::FleetError;
use super::model::{CellFilter, Layers, Registration};
use super::partners::may_see;
use super::shell::FleetHandle;

/// VINs read from the store at once while paging.
const SCAN: usize = 512;

/// One page of [`FleetHandle::vehicles`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VehiclePage {
    /// The vehicles, in VIN order, with their layers.
    pub vehicles: Vec<(Vin, Layers)>,
    /// The VIN to ask after for the next page; `None`: this was the last.
    pub next_after: Option<Vin>,
}

impl FleetHandle {
    /// A vehicle's layers, if it is placed.
    pub fn layers_of(&self, vin: &Vin) -> Option<Layers> {
        self.store.layers(vin).ok().flatten()
    }

    /// Whether partner `partner` may see the vehicle: its dealer in the registry, or a
    /// recipient of one of its alerts ([`may_see`]).
    ///
    /// # Errors
    /// The store.
    pub fn partner_may_see(&self, partner: &str, vin: &Vin) -> Result<bool, FleetError> {
        let registration = self
            .store
            .registration(vin)?
            .unwrap_or_else(|| Registration::unregistered(*vin));
        let mut recipients = Vec::new();
        for a in self.store.alerts(false, Some(vin))? {
            // The previous owner's alerts give no partner a view of the car
            // (`fleet::owner`).
            if super::owner::alert_of_current_owner(&a, registration.owner_since) {
                recipients.extend(a.recipients().map(str::to_owned));
            }
        }
        Ok(may_see(
            partner,
            &registration,
            recipients.iter().map(String::as_str),
        ))
    }

    /// Up to `limit` placed vehicles after `after` (exclusive), in VIN order, whose layers
    /// are in `cells` and, for a partner, that it may see.
    ///
    /// # Errors
    /// The store.
    pub fn vehicles(
        &self,
        cells: &CellFilter,
        partner: Option<&str>,
        after: Option<Vin>,
        limit: usize,
    ) -> Result<VehiclePage, FleetError> {
        let mut page = VehiclePage::default();
        let mut cursor = after;
        loop {
            let vins = self.store.vehicles_after(cursor.as_ref(), SCAN)?;
            if vins.is_empty() {
                return Ok(page);
            }
            for (vin, layers) in vins {
                cursor = Some(vin);
                let Some(layers) = layers else {
                    continue;
                };
                if !cells.matches(&layers) {
                    continue;
                }
                if let Some(p) = partner
                    && !self.partner_may_see(p, &vin)?
                {
                    continue;
                }
                if page.vehicles.len() == limit {
                    page.next_after = page.vehicles.last().map(|(v, _)| *v);
                    return Ok(page);
                }
                page.vehicles.push((vin, layers));
            }
        }
    }
}
