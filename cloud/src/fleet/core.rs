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
//! ([`Fleet::load`]), so a crash loses nothing that was flushed.

use std::collections::HashMap;

use rapport_shared::{DownlinkBody, Timestamp, Vin};

use super::alerts::{
    Alert, AlertContext, AlertError, AlertKind, AlertPolicy, AlertState, ChecklistItem,
    ChecklistStatus, Fault,
};
use super::driver::{Driver, Signal};
use super::layering::Layering;
use super::model::{Category, Consents, LayerChange, Layers, Registration};
use super::partners::Directory;
use super::schedule::Due;
use super::store::{FleetStore, TimelineEntry};
use super::strategy::{
    Action, ContactHistory, Decision, DriverContext, Event, Outcome, Strategies,
};
use crate::downlink::envelope;
use crate::store::StoreError;
use crate::vehicle::VehicleState;
use crate::webhook::outbox::{Enqueue, Message, Outbox};

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
    batch: &'a mut sled::Batch,
    fx: Effects,
    /// Contact histories written in this batch: later reads in the same step see them (the
    /// store does not until the batch is applied).
    contacts: HashMap<Vin, ContactHistory>,
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

/// The category of a vehicle with no registry entry: passenger (the registry says otherwise).
pub const DEFAULT_CATEGORY: Category = Category::Passenger;

fn unregistered(vin: Vin) -> Registration {
    Registration {
        vin,
        category: DEFAULT_CATEGORY,
        line: String::new(),
        delivered: None,
        dealer: None,
        region: None,
        consents: Consents::default(),
    }
}

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
        batch: &mut sled::Batch,
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
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
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
                    why: super::layers::explain(
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
        batch: &mut sled::Batch,
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
        let registration = registration.unwrap_or_else(|| unregistered(*vin));
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
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
        batch: &mut sled::Batch,
    ) -> Result<Effects, FleetError> {
        let before = self.store.registration(&r.vin)?;
        self.store.put_registration(batch, r)?;
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
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

    /// Processes what time alone made due at `now`: layer changes, alert webhooks, SLAs,
    /// in-cell re-offers. Writes into `batch`.
    ///
    /// # Errors
    /// The store or the outbox.
    pub fn tick(&mut self, now: Timestamp, batch: &mut sled::Batch) -> Result<Effects, FleetError> {
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
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

    /// Acknowledges an alert for `partner` (`None`: the operator). Writes into `batch`.
    ///
    /// # Errors
    /// [`FleetError::UnknownAlert`] (also for an alert the partner may not see),
    /// [`FleetError::Alert`] for a transition not allowed.
    pub fn acknowledge(
        &mut self,
        id: u64,
        partner: Option<&str>,
        now: Timestamp,
        batch: &mut sled::Batch,
    ) -> Result<Alert, FleetError> {
        self.transition(id, partner, now, batch, "acknowledged", |a, now| {
            a.acknowledge(now)
        })
    }

    /// Resolves an alert for `partner` (`None`: the operator). Writes into `batch`.
    ///
    /// # Errors
    /// As [`Fleet::acknowledge`].
    pub fn resolve(
        &mut self,
        id: u64,
        partner: Option<&str>,
        now: Timestamp,
        batch: &mut sled::Batch,
    ) -> Result<Alert, FleetError> {
        self.transition(id, partner, now, batch, "resolved", |a, now| a.resolve(now))
    }

    fn transition(
        &mut self,
        id: u64,
        partner: Option<&str>,
        now: Timestamp,
        batch: &mut sled::Batch,
        event: &str,
        f: impl FnOnce(&mut Alert, Timestamp) -> Result<(), AlertError>,
    ) -> Result<Alert, FleetError> {
        let mut alert = match self.open.get(&id) {
            Some(a) => a.clone(),
            None => self
                .store
                .alert::<Alert>(id)?
                .ok_or(FleetError::UnknownAlert(id))?,
        };
        if let Some(p) = partner
            && !alert.visible_to(p)
        {
            return Err(FleetError::UnknownAlert(id));
        }
        f(&mut alert, now)?;
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
        self.sla_due.remove(&id);
        let by = partner.unwrap_or("operator");
        self.timeline(
            &alert.vin,
            now,
            &TimelineEntry::Alert {
                id,
                event: event.into(),
                detail: format!("by {by}"),
            },
            &mut w,
        )?;
        self.store.put_alert(w.batch, id, &alert.vin, &alert)?;
        if alert.state == AlertState::Resolved {
            self.open.remove(&id);
            self.send_due.remove(&id);
        } else {
            self.open.insert(id, alert.clone());
        }
        Ok(alert)
    }

    /// Sends an operator's campaign to every driver in a cell who may get it (consent,
    /// cadence, caps apply as for strategies: an operator cannot spam either). Returns how many
    /// got it and how many were held back. Writes into `batch`.
    ///
    /// # Errors
    /// The store.
    pub fn campaign_to_cell(
        &mut self,
        campaign: &rapport_shared::Campaign,
        matches: impl Fn(&Layers) -> bool,
        now: Timestamp,
        batch: &mut sled::Batch,
    ) -> Result<(Effects, u64, u64), FleetError> {
        let targets: Vec<(Vin, Layers)> = self
            .layering
            .iter()
            .filter(|(_, l)| matches(l))
            .map(|(v, l)| (*v, *l))
            .collect();
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
        let (mut sent, mut held) = (0, 0);
        let rule = format!("operator:{}", campaign.campaign_id);
        for (vin, layers) in targets {
            let Some(driver) = self.store.driver(&vin)? else {
                continue;
            };
            let mut history = self.contacts_of(&vin, &w)?;
            let decision = self.strategies.operator_campaign(
                &rule,
                campaign.clone(),
                &DriverContext {
                    layers,
                    consents: driver.consents,
                    history: &history,
                },
                now,
            );
            if matches!(decision.outcome, Outcome::Act(_)) {
                sent += 1;
            } else {
                held += 1;
            }
            self.apply_decision(&vin, &decision, &mut history, None, now, &mut w)?;
            self.put_contacts(&vin, history, &mut w)?;
        }
        Ok((w.fx, sent, held))
    }

    // ----- internals -----

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

    fn on_layer_change(
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

    fn open_alert_for(&self, vin: &Vin, kind: AlertKind, subject: &str) -> Option<u64> {
        self.open
            .values()
            .filter(|a| a.vin == *vin && a.kind == kind && a.subject == subject)
            .map(|a| a.id)
            .next()
    }

    fn schedule_in_cell(
        &mut self,
        vin: &Vin,
        driver: &Driver,
        now: Timestamp,
        w: &Writes<'_>,
    ) -> Result<(), FleetError> {
        let Some(layers) = self.layering.layers(vin) else {
            self.in_cell.remove(vin);
            return Ok(());
        };
        let history = self.contacts_of(vin, w)?;
        let ctx = DriverContext {
            layers,
            consents: driver.consents,
            history: &history,
        };
        match self.strategies.next_in_cell(&ctx, now) {
            Some(at) => {
                self.in_cell.set(*vin, at);
            }
            None => {
                self.in_cell.remove(vin);
            }
        }
        Ok(())
    }

    /// Strategies for an event without an alert subject of its own: partner tasks become
    /// `partner_task` alerts about their rule.
    fn decide_and_act(
        &mut self,
        vin: &Vin,
        event: &Event,
        layers: Layers,
        driver: &Driver,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        let registration = self
            .store
            .registration(vin)?
            .unwrap_or_else(|| unregistered(*vin));
        self.decide_with_alert(event, None, &registration, None, layers, driver, now, w)
    }

    /// Runs the strategies for `event` and applies every decision; a partner task becomes
    /// an alert of `alert`'s kind and subject (`None`: a `partner_task` about the rule).
    #[allow(clippy::too_many_arguments)]
    fn decide_with_alert(
        &mut self,
        event: &Event,
        alert: Option<(AlertKind, &str)>,
        registration: &Registration,
        state: Option<&VehicleState>,
        layers: Layers,
        driver: &Driver,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        let vin = registration.vin;
        let mut history = self.contacts_of(&vin, w)?;
        let decisions = self.strategies.decide(
            event,
            &DriverContext {
                layers,
                consents: driver.consents,
                history: &history,
            },
            now,
        );
        if decisions.is_empty() {
            return Ok(());
        }
        for d in &decisions {
            let (kind, subject) = alert.unwrap_or((AlertKind::PartnerTask, d.rule.as_str()));
            self.apply_decision(
                &vin,
                d,
                &mut history,
                Some(AlertSpec {
                    kind,
                    subject: subject.to_string(),
                    registration,
                    layers,
                    driver,
                    state,
                }),
                now,
                w,
            )?;
        }
        self.put_contacts(&vin, history, w)?;
        Ok(())
    }

    fn apply_decision(
        &mut self,
        vin: &Vin,
        d: &Decision,
        history: &mut ContactHistory,
        alert: Option<AlertSpec<'_>>,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        match &d.outcome {
            Outcome::Suppressed { reason } => {
                self.stats.suppressed += 1;
                self.timeline(
                    vin,
                    now,
                    &TimelineEntry::Suppressed {
                        rule: d.rule.clone(),
                        reason: describe(reason),
                    },
                    w,
                )?;
            }
            Outcome::Act(Action::Nothing) => {}
            Outcome::Act(Action::Campaign { campaign }) => {
                let id = self.store_next_downlink_id()?;
                let body = DownlinkBody::Campaign(campaign.clone());
                match envelope(*vin, id, now, body).encode() {
                    Ok(bytes) => {
                        self.store.put_downlink(w.batch, id, &bytes);
                        w.fx.downlinks.push((id, *vin, bytes));
                        history.record(d, now);
                        self.stats.campaigns += 1;
                        self.timeline(
                            vin,
                            now,
                            &TimelineEntry::Strategy {
                                rule: d.rule.clone(),
                                action: format!(
                                    "campaign {} sent (downlink {id})",
                                    campaign.campaign_id
                                ),
                            },
                            w,
                        )?;
                    }
                    Err(e) => {
                        tracing::error!(%vin, rule = %d.rule, cause = %e, "campaign does not encode; not sent");
                    }
                }
            }
            Outcome::Act(Action::PartnerTask {
                target,
                task,
                suggestion,
            }) => {
                let Some(spec) = alert else {
                    return Ok(());
                };
                let partner = self
                    .directory
                    .route_or_fallback(target, spec.registration)
                    .map(|p| p.id.clone());
                let Some(partner) = partner else {
                    self.stats.suppressed += 1;
                    self.timeline(
                        vin,
                        now,
                        &TimelineEntry::Suppressed {
                            rule: d.rule.clone(),
                            reason: format!("no partner for {target:?} and no fallback partner"),
                        },
                        w,
                    )?;
                    return Ok(());
                };
                history.record(d, now);
                let ctx = alert_context(&spec, suggestion);
                self.next_alert += 1;
                let id = self.next_alert;
                self.store.put_counter(w.batch, ALERT_COUNTER, id);
                let alert = Alert::new(
                    id,
                    spec.kind,
                    &partner,
                    &spec.subject,
                    &ctx,
                    &self.policy,
                    now,
                );
                self.stats.alerts_opened += 1;
                self.timeline(
                    vin,
                    now,
                    &TimelineEntry::Alert {
                        id,
                        event: "opened".into(),
                        detail: format!("{} for {partner}: {task}", alert.event().as_str()),
                    },
                    w,
                )?;
                tracing::info!(%vin, id, partner = %partner, kind = alert.event().as_str(), "alert opened");
                self.store.put_alert(w.batch, id, vin, &alert)?;
                self.sla_due.set(id, alert.sla_due);
                self.open.insert(id, alert.clone());
                if alert.send_at <= now {
                    self.send(&alert, now, w)?;
                } else {
                    self.send_due.set(id, alert.send_at);
                }
            }
        }
        Ok(())
    }

    fn store_next_downlink_id(&self) -> Result<u64, FleetError> {
        Ok(self.store.next_id()?)
    }

    /// Puts an alert's webhook in the outbox (in the batch).
    fn send(
        &mut self,
        alert: &Alert,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        let hook = alert.webhook();
        let msg = Message::new(hook.id, hook.partner, hook.event.as_str(), hook.body, now);
        if self.outbox.enqueue(w.batch, &msg)? == Enqueue::Added {
            w.fx.webhooks += 1;
        }
        Ok(())
    }

    fn escalate(&mut self, id: u64, now: Timestamp, w: &mut Writes<'_>) -> Result<(), FleetError> {
        let Some(mut alert) = self.open.get(&id).cloned() else {
            return Ok(());
        };
        let Some(fallback) = self.directory.fallback().map(|p| p.id.clone()) else {
            tracing::warn!(id, "SLA ran out but no fallback partner is configured");
            return Ok(());
        };
        let Some(escalation) = alert.escalate(now, &fallback) else {
            return Ok(());
        };
        self.stats.alerts_escalated += 1;
        self.timeline(
            &alert.vin,
            now,
            &TimelineEntry::Alert {
                id,
                event: "escalated".into(),
                detail: format!(
                    "not acknowledged by {} within its SLA; sent to {}",
                    alert.partner, escalation.to
                ),
            },
            w,
        )?;
        tracing::warn!(id, vin = %alert.vin, from = %alert.partner, to = %escalation.to, "alert escalated");
        if let Some(hook) = alert.escalation_webhook() {
            let msg = Message::new(hook.id, hook.partner, hook.event.as_str(), hook.body, now);
            if self.outbox.enqueue(w.batch, &msg)? == Enqueue::Added {
                w.fx.webhooks += 1;
            }
        }
        self.store.put_alert(w.batch, id, &alert.vin, &alert)?;
        self.open.insert(id, alert);
        Ok(())
    }

    /// Records a webhook's final outcome on its alert's timeline (delivered or dead letter).
    ///
    /// # Errors
    /// The store.
    pub fn delivery_outcome(
        &mut self,
        message_id: &str,
        event: &str,
        detail: String,
        now: Timestamp,
        batch: &mut sled::Batch,
    ) -> Result<(), FleetError> {
        let Some(id) = alert_id_of_message(message_id) else {
            return Ok(());
        };
        let Some(alert) = self.alert(id)? else {
            return Ok(());
        };
        let mut w = Writes {
            batch,
            fx: Effects::default(),
            contacts: HashMap::new(),
        };
        self.timeline(
            &alert.vin,
            now,
            &TimelineEntry::Alert {
                id,
                event: event.into(),
                detail,
            },
            &mut w,
        )
    }
}

/// What an alert to be opened is about.
struct AlertSpec<'a> {
    kind: AlertKind,
    subject: String,
    registration: &'a Registration,
    layers: Layers,
    driver: &'a Driver,
    state: Option<&'a VehicleState>,
}

fn alert_context(spec: &AlertSpec<'_>, suggestion: &str) -> AlertContext {
    let checklist = spec
        .driver
        .checklist()
        .map(|i| ChecklistItem {
            item: i.item.clone(),
            status: match i.status {
                rapport_shared::MaintenanceStatus::DueSoon => ChecklistStatus::DueSoon,
                rapport_shared::MaintenanceStatus::Overdue => ChecklistStatus::Overdue,
                _ => ChecklistStatus::Due,
            },
            due_odometer_km: i.due_odometer_m.map(|m| m / 1000),
            due_date: i.due_at,
        })
        .collect();
    let active_faults = spec
        .state
        .map(|s| {
            s.active_dtcs()
                .map(|d| Fault {
                    code: d.dtc.code().to_string(),
                    severity: d.severity,
                    since: d.at,
                })
                .collect()
        })
        .unwrap_or_default();
    let driver_response = spec
        .driver
        .item(&spec.subject)
        .map(|i| i.response)
        .unwrap_or_default();
    AlertContext {
        vin: spec.registration.vin,
        line: spec.registration.line.clone(),
        category: spec.registration.category,
        odometer_km: spec.driver.profile.odometer_m / 1000,
        checklist,
        active_faults,
        driver_response,
        layers: spec.layers,
        suggestion: suggestion.to_string(),
    }
}

/// A cell's name for logs: `growing/declining`.
pub fn cell(l: &Layers) -> String {
    format!("{}/{}", l.service, l.activity)
}

/// Why a strategy was held back, for people.
fn describe(reason: &super::strategy::SuppressReason) -> String {
    use super::strategy::SuppressReason as R;
    let at = |t: &Timestamp| t.as_millis();
    match reason {
        R::NoEngagementConsent => "the driver opted out of engagement".into(),
        R::NoSharingConsent => "no consent to share with partners".into(),
        R::Cadence { next_allowed } => {
            format!("cadence of the layer: next allowed at {}", at(next_allowed))
        }
        R::DriverCap { next_allowed } => format!(
            "30-day cap per driver reached: next allowed at {}",
            at(next_allowed)
        ),
        R::RuleCooldown { next_allowed } => {
            format!("rule cooldown: next allowed at {}", at(next_allowed))
        }
    }
}

/// The alert id of a webhook message id (`msg_a<id>` or `msg_a<id>_esc`).
fn alert_id_of_message(id: &str) -> Option<u64> {
    let rest = id.strip_prefix("msg_a")?;
    let digits = rest.split('_').next()?;
    digits.parse().ok()
}
