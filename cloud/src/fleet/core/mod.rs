//! [`Fleet`]: the fleet's decisions over the store — what an applied record means for the
//! driver's layers, the strategies and the partners' alerts, and what time alone changes on a
//! tick. Every effect is written into the caller's [`sled::Batch`]: for records, the same
//! batch as the ingest's applied set, so a record's fleet effects happen exactly once.
//!
//! Owns the flow: records → [`Signal`]s → layering → strategies → campaigns (downlinks queued
//! under `Q`) and alerts (with their webhooks in the outbox); ticks (layer changes due, alerts
//! whose webhook is due, SLAs run out, in-cell re-offers due) driven by time indexes, never a
//! scan; the alert lifecycle through the API. Does not own the rules of any part (layers,
//! strategies, alerts, partners, webhooks) nor I/O (the shells commit, flush, publish).
//!
//! In memory: every vehicle's layers and next change ([`Layering`]), the alerts not yet
//! resolved, and three time indexes. All of it is rebuilt from the store at start
//! ([`Fleet::load`]), so a crash loses nothing that was flushed. Every read and write of the
//! store goes through [`FleetStore`] and the outbox; this module never touches sled.
//!
//! By concern: [`load`] (start), [`records`] (an envelope's records, a registration),
//! [`tick`] (what time made due), [`decide`] (strategies' decisions: campaigns, partner
//! tasks, operator campaigns), [`alerts`] (the alert lifecycle and its webhooks).

mod alerts;
mod decide;
mod load;
mod records;
mod tick;

use std::collections::HashMap;

use rapport_shared::{Timestamp, Vin};

use super::alerts::{Alert, AlertError, AlertPolicy};
use super::layering::Layering;
use super::model::{Category, Layers};
use super::partners::Directory;
use super::schedule::Due;
use super::store::{FleetStore, TimelineEntry};
use super::strategy::{ContactHistory, Strategies};
use crate::store::{Batch, StoreError};
use crate::webhook::outbox::Outbox;

/// The counter key of the last alert id.
const ALERT_COUNTER: &str = "alert";

/// Most due entries of each index processed per tick (the rest wait for the next tick).
pub const TICK_LIMIT: usize = 50_000;

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The webhook outbox failed.
    #[error(transparent)]
    Outbox(#[from] crate::webhook::outbox::OutboxError),
    /// An alert transition that is not allowed.
    #[error(transparent)]
    Alert(#[from] AlertError),
    /// No such alert (or not one the caller may see).
    #[error("no alert {0}")]
    UnknownAlert(u64),
}

/// What a step decided that the shell must do after the batch is durable.
#[derive(Debug, Default)]
pub struct Effects {
    /// Downlinks to publish: (id, vin, encoded envelope). Also queued under `Q`.
    pub downlinks: Vec<(u64, Vin, Vec<u8>)>,
    /// Webhooks enqueued (wake the sender).
    pub webhooks: usize,
    /// Layer changes recorded.
    pub layer_changes: usize,
}

impl Effects {
    /// Adds another step's effects.
    pub fn merge_from(&mut self, other: Self) {
        self.downlinks.extend(other.downlinks);
        self.webhooks += other.webhooks;
        self.layer_changes += other.layer_changes;
    }
}

/// Counters since start (the API's `/metrics`).
#[derive(Debug, Default, Clone, Copy)]
pub struct FleetStats {
    /// Layer changes recorded.
    pub layer_changes: u64,
    /// Campaigns sent down by strategies.
    pub campaigns: u64,
    /// Alerts opened.
    pub alerts_opened: u64,
    /// Alerts escalated.
    pub alerts_escalated: u64,
    /// Strategy decisions suppressed (consent, cadence, caps, cooldowns, no partner).
    pub suppressed: u64,
    /// Unreadable stored values skipped at load.
    pub unreadable: u64,
}

/// One batch being built: the store's writes plus timeline numbering.
struct Writes<'a> {
    batch: &'a mut Batch,
    fx: Effects,
    /// Contact histories written in this batch: later reads in the same step see them (the
    /// store does not until the batch is applied).
    contacts: HashMap<Vin, ContactHistory>,
}

impl<'a> Writes<'a> {
    fn new(batch: &'a mut Batch) -> Self {
        Self {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        }
    }
}

/// The fleet's state and decisions.
pub struct Fleet {
    store: FleetStore,
    outbox: Outbox,
    layering: Layering,
    strategies: Strategies,
    directory: Directory,
    policy: AlertPolicy,
    /// Alerts not resolved, by id.
    open: HashMap<u64, Alert>,
    /// Alerts whose webhook is not yet in the outbox, by when it is to go.
    send_due: Due<u64>,
    /// Open, unacknowledged, unescalated alerts by SLA deadline.
    sla_due: Due<u64>,
    /// Drivers to re-offer `in_cell` rules to, by when.
    in_cell: Due<Vin>,
    next_alert: u64,
    stats: FleetStats,
}

pub use super::model::DEFAULT_CATEGORY;

impl Fleet {
    /// The counters.
    pub fn stats(&self) -> FleetStats {
        self.stats
    }

    /// The layering (matrix, a vehicle's layers).
    pub fn layering(&self) -> &Layering {
        &self.layering
    }

    /// The partner directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The partner directory, to change (the API's partner routes).
    pub fn directory_mut(&mut self) -> &mut Directory {
        &mut self.directory
    }

    /// The strategies.
    pub fn strategies(&self) -> &Strategies {
        &self.strategies
    }

    /// The alerts not resolved.
    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.open.values()
    }

    /// An alert, open or not.
    ///
    /// # Errors
    /// The store.
    pub fn alert(&self, id: u64) -> Result<Option<Alert>, FleetError> {
        if let Some(a) = self.open.get(&id) {
            return Ok(Some(a.clone()));
        }
        Ok(self.store.alert(id)?)
    }

    /// The webhook outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// When the next time-driven work is due (layers, sends, SLAs, re-offers).
    pub fn next_due(&self) -> Option<Timestamp> {
        [
            self.layering.next_due(),
            self.send_due.next_at(),
            self.sla_due.next_at(),
            self.in_cell.next_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn category(&self, vin: &Vin) -> Category {
        match self.store.registration(vin) {
            Ok(Some(r)) => r.category,
            Ok(None) => DEFAULT_CATEGORY,
            Err(e) => {
                tracing::error!(%vin, cause = %e, "registration unreadable; passenger assumed");
                DEFAULT_CATEGORY
            }
        }
    }

    /// The driver's contact history as of this batch.
    fn contacts_of(&self, vin: &Vin, w: &Writes<'_>) -> Result<ContactHistory, FleetError> {
        match w.contacts.get(vin) {
            Some(h) => Ok(h.clone()),
            None => Ok(self.store.contacts(vin)?),
        }
    }

    fn put_contacts(
        &self,
        vin: &Vin,
        history: ContactHistory,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        self.store.put_contacts(w.batch, vin, &history)?;
        w.contacts.insert(*vin, history);
        Ok(())
    }

    fn timeline(
        &self,
        vin: &Vin,
        at: Timestamp,
        entry: &TimelineEntry,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        self.store.put_timeline(w.batch, vin, at, entry)?;
        Ok(())
    }
}

/// A cell's name for logs: `growing/declining`.
pub fn cell(l: &Layers) -> String {
    format!("{}/{}", l.service, l.activity)
}
