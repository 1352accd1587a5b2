//! The fleet's decisions for ONE vehicle, pure: a snapshot of the vehicle in ([`Vehicle`]:
//! registration, driver, layers and their next change, contact history, open alerts with
//! their due times), records or time in, the new snapshot and its [`Changes`] out (timeline
//! entries, alerts written, webhook messages, downlinks, counts). No store, no clock, no
//! lock: the store port's backends load the snapshot, run a [`Step`] and persist what it
//! changed in their one batch or transaction (see [`crate::store`]).
//!
//! Owns the flow: records → [`Signal`](super::driver::Signal)s → placement → strategies →
//! campaigns and alerts; time (layer changes due, in-cell re-offers, alert webhooks whose
//! time has come, SLAs run out); the alert lifecycle through the API; an operator's
//! campaign to one driver. Does not own the rules of any part (layers, strategies, alerts,
//! partners, webhooks) — those come in [`Rules`] — nor ids ([`Ids`], the backend's), nor what
//! is global to the fleet (the matrix, the partner directory's storage, time indexes).
//!
//! By concern: [`records`] (an envelope's records, a registration, a layer change),
//! [`tick`] (what time made due, and the start-up re-placement), [`decide`] (strategies'
//! decisions: campaigns, partner tasks, operator campaigns), [`alerts`] (the alert lifecycle
//! and its webhooks).

mod alerts;
mod decide;
pub mod owner;
mod records;
mod tick;

use std::collections::BTreeMap;

use rapport_shared::{Timestamp, Vin};

pub use self::alerts::{Transition, alert_id_of_message};
use super::alerts::{Alert, AlertError, AlertPolicy, AlertState};
use super::driver::Driver;
use super::layers::LayerConfig;
use super::model::{Layers, Registration};
use super::partners::Directory;
use super::store::TimelineEntry;
use super::strategy::{ContactHistory, Strategies};
use crate::store::error::StoreError;
use crate::webhook::outbox::Message;

pub use super::model::DEFAULT_CATEGORY;

/// Most due entries of each kind processed per tick (the rest wait for the next tick).
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
    /// A stage move that is not allowed.
    #[error(transparent)]
    Stage(#[from] super::alerts::StageError),
    /// No such alert (or not one the caller may see).
    #[error("no alert {0}")]
    UnknownAlert(u64),
}

/// The fleet's rules: what every step reads and nothing writes (the partner directory
/// changes through the API, under the shell's lock).
#[derive(Clone)]
pub struct Rules {
    /// `[layers]`.
    pub layers: LayerConfig,
    /// The strategies.
    pub strategies: Strategies,
    /// The partners.
    pub directory: Directory,
    /// `[alerts]`' SLA and response wait.
    pub policy: AlertPolicy,
    /// `[promises]`: the promise rules, urban regions and second escalation level.
    pub promises: super::alerts::PromiseRules,
}

/// An alert not resolved, with its time-driven work.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAlert {
    /// The alert.
    pub alert: Alert,
    /// When its webhook goes to the outbox (`None`: queued already, or not to go).
    pub send_due: Option<Timestamp>,
    /// When it escalates (`None`: acknowledged, escalated, or tried already).
    pub sla_due: Option<Timestamp>,
}

impl OpenAlert {
    /// The earliest of its due times.
    pub fn due(&self) -> Option<Timestamp> {
        earliest(self.send_due, self.sla_due)
    }
}

/// The earlier of two optional instants.
pub fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// One vehicle as the fleet's decisions see it: loaded by a backend, changed by a [`Step`],
/// persisted by the backend.
#[derive(Clone, Debug)]
pub struct Vehicle {
    /// The vehicle.
    pub vin: Vin,
    /// Its registry entry.
    pub registration: Option<Registration>,
    /// Its driver (from the first record on).
    pub driver: Option<Driver>,
    /// Where its driver sits now (`None`: not placed).
    pub layers: Option<Layers>,
    /// When time alone changes its layers next.
    pub layer_due: Option<Timestamp>,
    /// The driver's contact history.
    pub contacts: ContactHistory,
    /// When `in_cell` rules are offered again.
    pub in_cell_due: Option<Timestamp>,
    /// Its alerts not resolved, by id.
    pub alerts: BTreeMap<u64, OpenAlert>,
}

impl Vehicle {
    /// A vehicle the fleet knows nothing of.
    pub fn new(vin: Vin) -> Self {
        Self {
            vin,
            registration: None,
            driver: None,
            layers: None,
            layer_due: None,
            contacts: ContactHistory::default(),
            in_cell_due: None,
            alerts: BTreeMap::new(),
        }
    }

    /// The earliest instant of any time-driven work of this vehicle (what a backend indexes
    /// to find due vehicles).
    pub fn due(&self) -> Option<Timestamp> {
        let alerts = self.alerts.values().filter_map(OpenAlert::due).min();
        earliest(earliest(self.layer_due, self.in_cell_due), alerts)
    }

    /// The registration, or what the cloud assumes of an unregistered vehicle.
    pub fn registration_or_default(&self) -> Registration {
        self.registration
            .clone()
            .unwrap_or_else(|| Registration::unregistered(self.vin))
    }

    fn open_alert_for(&self, kind: super::alerts::AlertKind, subject: &str) -> Option<u64> {
        self.alerts
            .values()
            .find(|a| a.alert.kind == kind && a.alert.subject == subject)
            .map(|a| a.alert.id)
    }
}

/// Fresh ids, from the backend (a persisted counter or a database sequence).
pub trait Ids {
    /// A new alert id (never used before, never 0).
    ///
    /// # Errors
    /// The store.
    fn alert_id(&mut self) -> Result<u64, StoreError>;
    /// A new downlink message id (never used before, never 0).
    ///
    /// # Errors
    /// The store.
    fn downlink_id(&mut self) -> Result<u64, StoreError>;
}

/// Counters of what the fleet did (since start: the API's `/metrics`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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

impl FleetStats {
    /// Adds another's counts.
    pub fn add(&mut self, o: &Self) {
        self.layer_changes += o.layer_changes;
        self.campaigns += o.campaigns;
        self.alerts_opened += o.alerts_opened;
        self.alerts_escalated += o.alerts_escalated;
        self.suppressed += o.suppressed;
        self.unreadable += o.unreadable;
    }
}

/// What steps on one vehicle changed beyond its snapshot: for the backend to persist in the
/// same batch or transaction as the snapshot.
#[derive(Debug, Default)]
pub struct Changes {
    /// Timeline entries, in order.
    pub timeline: Vec<(Timestamp, TimelineEntry)>,
    /// Alerts written (new or changed; resolved ones too), by id, as they end.
    pub alerts: BTreeMap<u64, OpenAlert>,
    /// Webhook messages to enqueue (an id already known to the outbox is not enqueued again).
    pub webhooks: Vec<Message>,
    /// Downlinks decided: (id, encoded envelope), queued and published after the commit.
    pub downlinks: Vec<(u64, Vec<u8>)>,
    /// Queued downlinks superseded (a newer ServiceProgress of the same alert): dropped
    /// from the queue if not yet handed to MQTT.
    pub superseded: Vec<u64>,
    /// What happened, counted.
    pub stats: FleetStats,
    /// The driver changed.
    pub driver: bool,
    /// The registration changed.
    pub registration: bool,
    /// The contact history changed.
    pub contacts: bool,
}

impl Changes {
    fn timeline(&mut self, at: Timestamp, entry: TimelineEntry) {
        self.timeline.push((at, entry));
    }

    fn alert(&mut self, a: &OpenAlert) {
        self.alerts.insert(a.alert.id, a.clone());
    }

    fn resolved(&mut self, alert: &Alert) {
        self.alerts.insert(
            alert.id,
            OpenAlert {
                alert: alert.clone(),
                send_due: None,
                sla_due: None,
            },
        );
    }
}

/// What a change decided that the shell must do after it is durable.
#[derive(Debug, Default)]
pub struct Effects {
    /// Downlinks to publish: (id, vin, encoded envelope). Also queued in the store.
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

/// Decisions on vehicles at one instant, with the rules and the ids they need, gathering
/// what they change beyond each snapshot into [`Changes`] (one per vehicle: take it with
/// [`Step::take`] before moving on to the next).
pub struct Step<'a> {
    rules: &'a Rules,
    ids: &'a mut dyn Ids,
    now: Timestamp,
    out: Changes,
}

impl<'a> Step<'a> {
    /// Decisions at `now` under `rules`, with ids from `ids`.
    pub fn new(rules: &'a Rules, ids: &'a mut dyn Ids, now: Timestamp) -> Self {
        Self {
            rules,
            ids,
            now,
            out: Changes::default(),
        }
    }

    /// The instant the step decides at.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Takes what the steps so far changed, leaving an empty [`Changes`].
    pub fn take(&mut self) -> Changes {
        std::mem::take(&mut self.out)
    }

    /// Notes an entry on the vehicle's timeline (a webhook outcome, say).
    pub fn note(&mut self, at: Timestamp, entry: TimelineEntry) {
        self.out.timeline(at, entry);
    }
}

/// Whether an alert is resolved (then it leaves a snapshot's open alerts).
pub fn is_resolved(a: &Alert) -> bool {
    a.state == AlertState::Resolved
}

/// A cell's name for logs: `growing/declining`.
pub fn cell(l: &Layers) -> String {
    format!("{}/{}", l.service, l.activity)
}
