//! The agent's judgement: [`Rules`] holds what the agent remembers ([`Memory`]) and turns
//! observations, time, driver actions and cloud messages into changes of memory, prompts for
//! the screen and records for the cloud. Pure: every input carries `now`; every step returns the
//! [`Changes`] the store must write. The caller persists them and then tells the screen.
//!
//! Owns: the life of a prompt (pending → shown → acted on or resolved, snoozes coming back),
//! fault histories (from DTC class listings, in `faults` beside it), the odometer write policy
//! (coalesced: moved ≥ `store.odometer_every_m` or `store.odometer_every_s` passed), outbox
//! odometer readings (`outbox.odometer_every_m`), and maintenance state reports. Does not own:
//! the key layout ([`crate::store`]), the gate's rules ([`crate::gate`]), the due arithmetic
//! ([`super::maintenance`]), nor the words ([`super::conditions`]). Cloud messages are applied
//! in `downlink` beside it, service cases in `service`.

mod downlink;
mod faults;
mod service;

use std::collections::{BTreeMap, BTreeSet};

use rapport_shared::v1::downlink::MaintenanceItem;
use rapport_shared::v1::uplink::{
    ConsentChange, ConsentKind, DtcEvent, EngineHoursReading, MaintenanceEvent, MaintenanceStatus,
    OdometerReading, PromptAction, PromptEvent, PromptKind, RecordBody,
};
use rapport_shared::{DtcClass, DtcCode, EngineHours, Odometer, SignalSource, Timestamp};

use crate::config::{Maintenance, Prompts, Vehicle};
use crate::gate::{self, Caps as _, Decision, GateContext, Motion};
use crate::memory::{
    self, Changes, ItemRecord, LastService, Memory, PromptRecord, PromptState, ServiceRecord,
    ServiceSource, Stage,
};
use crate::observe::Observation;
use crate::rules::conditions::{self, Wanted};
use crate::rules::maintenance::{self, ItemStatus};

pub use downlink::Applied;

/// What the rules run with (built from the config by `crate::settings::rules`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[vehicle]`.
    pub(crate) vehicle: Vehicle,
    /// `[maintenance]`: the schedule (unless the cloud sent one) and the overdue policy.
    pub(crate) maintenance: Maintenance,
    /// `[prompts]`.
    pub prompts: Prompts,
    /// Write the vehicle state when the odometer moved this many metres since the last
    /// write (`[store] odometer_every_m`)...
    pub(crate) odometer_every_m: u32,
    /// ...or this many seconds passed (`[store] odometer_every_s`).
    pub(crate) odometer_every_s: u32,
    /// An odometer record for the cloud every this many metres (`[outbox] odometer_every_m`).
    pub(crate) outbox_odometer_every_m: u32,
}

/// What the driver did with a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverAction {
    /// Seen, thanks.
    Ack,
    /// Show it again in this many minutes.
    Snooze {
        /// Minutes (1 to a week).
        minutes: u32,
    },
    /// Not interested: stays away until its condition changes.
    Dismiss,
    /// Book a service from it.
    Book,
}

/// Longest snooze: a week.
pub const MAX_SNOOZE_MINUTES: u32 = 7 * 24 * 60;

/// Why a driver's request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// No such prompt (or item).
    #[error("not found: {0}")]
    NotFound(String),
    /// The prompt is not on the screen (pending, or already acted on).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request makes no sense (unknown item, time in the future, bad quiet hours).
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Engine hours between two outbox engine-hours readings.
const OUTBOX_ENGINE_HOURS_EVERY_S: u64 = 3600;
/// Engine-hours change that makes the vehicle state worth writing.
const WRITE_ENGINE_HOURS_EVERY_S: u64 = 360;

/// The agent's judgement over its memory. See the module docs.
#[derive(Debug)]
pub struct Rules {
    cfg: Settings,
    mem: Memory,
    motion: Motion,
    /// Odometer and time of the last vehicle-state write.
    written: Option<(Odometer, Timestamp)>,
    written_hours: Option<EngineHours>,
    outboxed_odo: Option<Odometer>,
    outboxed_hours: Option<EngineHours>,
    /// MIL per ECU (the vehicle's MIL is any of them).
    mil: BTreeMap<u32, bool>,
    /// The (code, ECU, class) listings of prompting classes seen since start, so a code that
    /// leaves one list (pending) while another still has it (confirmed) stays active.
    listed: BTreeSet<(DtcCode, u32, DtcClass)>,
    scratch: Vec<Wanted>,
    last_source: SignalSource,
}

fn prompt_event(p: &PromptRecord, action: PromptAction) -> RecordBody {
    RecordBody::Prompt(PromptEvent {
        prompt: p.id.clone(),
        kind: p.kind,
        subject: p.subject.clone(),
        critical: p.critical,
        action,
    })
}

fn odometer_record(odometer: Odometer, source: SignalSource) -> RecordBody {
    RecordBody::Odometer(OdometerReading { odometer, source })
}

fn engine_hours_record(hours: EngineHours, source: SignalSource) -> RecordBody {
    RecordBody::EngineHours(EngineHoursReading { hours, source })
}

/// Whether `value` is `every` or more `units` away from `*last` (always, without a `last`);
/// if so, it becomes `*last`.
fn moved_by<T: Copy>(last: &mut Option<T>, value: T, every: u64, units: fn(T) -> u64) -> bool {
    if last.is_some_and(|l| units(value).abs_diff(units(l)) < every) {
        return false;
    }
    *last = Some(value);
    true
}

fn maintenance_status(stage: Stage) -> Option<MaintenanceStatus> {
    match stage {
        Stage::Ok => None,
        Stage::DueSoon => Some(MaintenanceStatus::DueSoon),
        Stage::Due => Some(MaintenanceStatus::Due),
        Stage::Overdue => Some(MaintenanceStatus::Overdue),
    }
}

impl Rules {
    /// Rules over `memory` as the store loaded it; the changes record the first start.
    pub fn new(cfg: Settings, memory: Memory, now: Timestamp) -> (Self, Changes) {
        let motion = Motion::new(&cfg.prompts);
        let written = memory
            .vehicle
            .odometer
            .map(|o| (o, memory.vehicle.odometer_at.unwrap_or(now)));
        let mut rules = Self {
            written,
            written_hours: memory.vehicle.engine_hours,
            outboxed_odo: memory.vehicle.odometer,
            outboxed_hours: memory.vehicle.engine_hours,
            mil: BTreeMap::new(),
            listed: BTreeSet::new(),
            cfg,
            mem: memory,
            motion,
            scratch: Vec::new(),
            last_source: SignalSource::Obd,
        };
        let mut ch = Changes::default();
        if rules.mem.vehicle.first_seen.is_none() {
            rules.mem.vehicle.first_seen = Some(now);
            ch.vehicle = true;
        }
        rules.evaluate(now, &mut ch);
        (rules, ch)
    }

    /// What the agent remembers.
    pub fn memory(&self) -> &Memory {
        &self.mem
    }

    /// The config the rules run with.
    pub(crate) fn config(&self) -> &Settings {
        &self.cfg
    }

    /// Whether the car counts as moving now (non-critical prompts stay off the screen).
    pub(crate) fn is_moving(&self, now: Timestamp) -> bool {
        !self.motion.is_stopped(now)
    }

    /// The last park-state reading, if any.
    pub(crate) fn parked(&self) -> Option<bool> {
        self.motion.parked()
    }

    /// The schedule in force: the cloud's if it sent one, else the config's.
    pub fn schedule(&self) -> &[MaintenanceItem] {
        self.mem
            .schedule
            .as_deref()
            .unwrap_or(&self.cfg.maintenance.items)
    }

    /// The maintenance checklist now: every item not Ok, most urgent first.
    ///
    /// An item with no service recorded that was already due when the agent first saw the car
    /// (an agent fitted to a used car) counts from that first sighting: the agent does not
    /// know the car's history and does not nag the driver about services it cannot know were
    /// missed. A service recorded by the dealer (a downlink) or the driver sets it right.
    /// Until the first odometer reading the checklist is empty: the first sighting is not
    /// complete yet.
    pub fn checklist(&self, now: Timestamp) -> Vec<ItemStatus> {
        if self.mem.vehicle.first_odometer.is_none() {
            return Vec::new();
        }
        let inputs = self.maintenance_inputs(now);
        let baseline = self.baseline();
        if baseline.is_empty() {
            return maintenance::checklist(
                self.schedule(),
                &self.mem.items,
                &self.cfg.maintenance,
                &inputs,
            );
        }
        let mut records = self.mem.items.clone();
        for (id, last) in baseline {
            records.entry(id).or_default().last = Some(last);
        }
        maintenance::checklist(self.schedule(), &records, &self.cfg.maintenance, &inputs)
    }

    /// Items without a recorded service that were already due at the agent's first sighting,
    /// with that sighting as their assumed last service.
    fn baseline(&self) -> Vec<(String, LastService)> {
        let v = &self.mem.vehicle;
        let (Some(seen), Some(odo)) = (v.first_seen, v.first_odometer) else {
            return Vec::new();
        };
        let at_first = maintenance::Inputs {
            odometer: Some(odo),
            engine_hours: None,
            now: seen,
            delivered: self.cfg.vehicle.delivered,
            utc_offset_minutes: self.cfg.prompts.utc_offset_minutes,
        };
        let none = ItemRecord::default();
        self.schedule()
            .iter()
            .filter(|item| {
                let rec = self.mem.items.get(&item.id).unwrap_or(&none);
                rec.last.is_none()
                    && maintenance::evaluate(item, rec, &self.cfg.maintenance, &at_first).stage
                        >= Stage::Due
            })
            .map(|item| {
                (
                    item.id.clone(),
                    LastService {
                        at: seen,
                        odometer: Some(odo),
                        engine_hours: None,
                    },
                )
            })
            .collect()
    }

    fn maintenance_inputs(&self, now: Timestamp) -> maintenance::Inputs {
        maintenance::Inputs {
            odometer: self.mem.vehicle.odometer,
            engine_hours: self.mem.vehicle.engine_hours,
            now,
            delivered: self.cfg.vehicle.delivered,
            utc_offset_minutes: self.cfg.prompts.utc_offset_minutes,
        }
    }

    fn gate_context(&self) -> GateContext<'_> {
        GateContext::new(
            &self.cfg.prompts,
            &self.mem.settings,
            &self.motion,
            &self.mem.shows,
        )
    }

    /// The prompts that may be on the screen now, most important first.
    pub fn visible_prompts(&self, now: Timestamp) -> Vec<&PromptRecord> {
        let ctx = self.gate_context();
        let mut v: Vec<&PromptRecord> = self
            .mem
            .prompts
            .values()
            .filter(|p| p.state == PromptState::Shown && gate::visible(p, &ctx, now))
            .collect();
        v.sort_by(|a, b| b.critical.cmp(&a.critical).then(a.created.cmp(&b.created)));
        v
    }

    /// One observation from the bus.
    pub fn on_observation(&mut self, obs: &Observation, now: Timestamp) -> Changes {
        let mut ch = Changes::default();
        let reevaluate = match obs {
            Observation::Odometer { odometer, source } => {
                self.last_source = *source;
                self.on_odometer(*odometer, *source, now, &mut ch)
            }
            Observation::Speed { kmh, .. } => {
                let was = self.motion.is_stopped(now);
                self.motion.on_speed(*kmh, now);
                was != self.motion.is_stopped(now)
            }
            Observation::Park { parked, .. } => {
                let was = self.motion.is_stopped(now);
                self.motion.on_park(*parked, now);
                was != self.motion.is_stopped(now)
            }
            Observation::EngineHours { hours, source } => {
                self.on_engine_hours(*hours, *source, now, &mut ch)
            }
            Observation::Dtc {
                dtc,
                state,
                severity,
                ecu,
                class,
                ..
            } => {
                let event = DtcEvent {
                    dtc: *dtc,
                    severity: *severity,
                    ecu: *ecu,
                    class: Some(*class),
                };
                self.on_dtc(event, *state, now, &mut ch)
            }
            Observation::Lamps { lamps, ecu, .. } => {
                if let Some(mil) = lamps.mil {
                    self.mil.insert(*ecu, mil);
                }
                let any = self.mil.values().any(|m| *m);
                if any != self.mem.vehicle.mil {
                    self.mem.vehicle.mil = any;
                    ch.vehicle = true;
                }
                false
            }
            Observation::Warning { .. } => false,
        };
        if reevaluate {
            self.evaluate(now, &mut ch);
        }
        ch
    }

    /// Ignition (bus activity) on or off. Off ends a trip: the latest odometer is written
    /// and reported.
    pub fn on_power(&mut self, on: bool, now: Timestamp) -> Changes {
        let mut ch = Changes::default();
        self.motion.on_power(on, now);
        if !on {
            if let Some(odo) = self.mem.vehicle.odometer {
                if self.written.is_none_or(|(w, _)| w != odo) {
                    self.written = Some((odo, now));
                    ch.vehicle = true;
                }
                if self.outboxed_odo != Some(odo) {
                    self.outboxed_odo = Some(odo);
                    ch.outbox
                        .push((now, odometer_record(odo, self.last_source)));
                }
            }
            if let Some(h) = self.mem.vehicle.engine_hours
                && self.outboxed_hours != Some(h)
            {
                self.outboxed_hours = Some(h);
                ch.vehicle = true;
                ch.outbox
                    .push((now, engine_hours_record(h, self.last_source)));
            }
        }
        self.evaluate(now, &mut ch);
        ch
    }

    /// Time passing: dates coming due, snoozes ending, anniversaries, campaigns expiring, the
    /// car coming to a stop. Call it about once a second.
    pub fn tick(&mut self, now: Timestamp) -> Changes {
        let mut ch = Changes::default();
        if let Some((odo, at)) = self.written
            && self.mem.vehicle.odometer != Some(odo)
            && now.saturating_since(at).as_secs() >= u64::from(self.cfg.odometer_every_s)
        {
            self.mark_written(now, &mut ch);
        }
        self.evaluate(now, &mut ch);
        ch
    }

    fn mark_written(&mut self, now: Timestamp, ch: &mut Changes) {
        if let Some(odo) = self.mem.vehicle.odometer {
            self.written = Some((odo, now));
        }
        self.written_hours = self.mem.vehicle.engine_hours;
        ch.vehicle = true;
    }

    fn on_odometer(
        &mut self,
        odo: Odometer,
        source: SignalSource,
        now: Timestamp,
        ch: &mut Changes,
    ) -> bool {
        let v = &mut self.mem.vehicle;
        if v.odometer == Some(odo) {
            return false;
        }
        v.odometer = Some(odo);
        v.odometer_at = Some(now);
        if v.first_odometer.is_none() {
            v.first_odometer = Some(odo);
            self.mark_written(now, ch);
        }
        let every_m = u64::from(self.cfg.odometer_every_m);
        let every_s = u64::from(self.cfg.odometer_every_s);
        let due = match self.written {
            None => true,
            Some((w, at)) => {
                odo.meters().abs_diff(w.meters()) >= every_m
                    || now.saturating_since(at).as_secs() >= every_s
            }
        };
        if due {
            self.mark_written(now, ch);
        }
        let outbox_m = u64::from(self.cfg.outbox_odometer_every_m);
        if moved_by(&mut self.outboxed_odo, odo, outbox_m, Odometer::meters) {
            ch.outbox.push((now, odometer_record(odo, source)));
        }
        true
    }

    fn on_engine_hours(
        &mut self,
        hours: EngineHours,
        source: SignalSource,
        now: Timestamp,
        ch: &mut Changes,
    ) -> bool {
        if self.mem.vehicle.engine_hours == Some(hours) {
            return false;
        }
        self.mem.vehicle.engine_hours = Some(hours);
        if self
            .written_hours
            .is_none_or(|w| hours.secs().abs_diff(w.secs()) >= WRITE_ENGINE_HOURS_EVERY_S)
        {
            self.mark_written(now, ch);
        }
        let outbox_s = OUTBOX_ENGINE_HOURS_EVERY_S;
        if moved_by(&mut self.outboxed_hours, hours, outbox_s, EngineHours::secs) {
            ch.outbox.push((now, engine_hours_record(hours, source)));
        }
        true
    }

    /// The heart: which prompts should exist, which went away, which may show now; and the
    /// maintenance state reports.
    fn evaluate(&mut self, now: Timestamp, ch: &mut Changes) {
        self.expire_campaigns(now, ch);
        self.expire_service_cases(now, ch);
        let checklist = self.checklist(now);
        self.report_maintenance(&checklist, now, ch);
        let mut wanted = std::mem::take(&mut self.scratch);
        wanted.clear();
        conditions::wanted(
            &conditions::Inputs {
                memory: &self.mem,
                vehicle: &self.cfg.vehicle,
                prompts: &self.cfg.prompts,
                checklist: &checklist,
                now,
            },
            &mut wanted,
        );
        wanted.sort_by_key(|w| w.rank);
        // Resolve what no longer holds.
        for p in self.mem.prompts.values_mut() {
            if !p.state.is_final() && !wanted.iter().any(|w| w.id == p.id) {
                p.state = PromptState::Resolved;
                p.closed_at = Some(now);
                ch.prompts.insert(p.id.clone());
            }
        }
        // Create what is new.
        for w in &wanted {
            if !self.mem.prompts.contains_key(&w.id) {
                self.mem.prompts.insert(
                    w.id.clone(),
                    PromptRecord {
                        id: w.id.clone(),
                        kind: w.kind,
                        subject: w.subject.clone(),
                        critical: w.critical,
                        title: w.title.clone(),
                        text: w.text.clone(),
                        created: now,
                        state: PromptState::Pending,
                        first_shown: None,
                        times_shown: 0,
                        closed_at: None,
                    },
                );
                ch.prompts.insert(w.id.clone());
            } else if let Some(p) = self.mem.prompts.get_mut(&w.id)
                && !p.state.is_final()
                && p.text != w.text
            {
                // Remaining distance and days change as the car drives: keep the words fresh
                // in memory, but only write them when the prompt changes state.
                p.text.clone_from(&w.text);
            }
        }
        // Show what the gate lets through, most important first.
        for w in &wanted {
            self.try_show(&w.id, now, ch);
        }
        self.scratch = wanted;
    }

    fn try_show(&mut self, id: &str, now: Timestamp, ch: &mut Changes) {
        let decision = match self.mem.prompts.get(id) {
            Some(p) => match p.state {
                PromptState::Pending => gate::decide(p, &self.gate_context(), now),
                PromptState::Snoozed(until) if now >= until => {
                    gate::decide(p, &self.gate_context(), now)
                }
                _ => return,
            },
            None => return,
        };
        if decision != Decision::Show {
            return;
        }
        let offset = self.cfg.prompts.utc_offset_minutes;
        let Some(p) = self.mem.prompts.get_mut(id) else {
            return;
        };
        if p.first_shown.is_none() {
            p.first_shown = Some(now);
            if !p.critical {
                self.mem.shows.record(p.kind, now, offset);
                ch.shows = true;
            }
        }
        p.state = PromptState::Shown;
        p.times_shown = p.times_shown.saturating_add(1);
        ch.prompts.insert(p.id.clone());
        ch.outbox.push((now, prompt_event(p, PromptAction::Shown)));
    }

    fn report_maintenance(&mut self, checklist: &[ItemStatus], now: Timestamp, ch: &mut Changes) {
        for s in checklist {
            let Some(status) = maintenance_status(s.stage) else {
                continue;
            };
            let rec = self.mem.items.entry(s.item.clone()).or_default();
            if rec.reported == Some((s.cycle, s.stage)) {
                continue;
            }
            rec.reported = Some((s.cycle, s.stage));
            ch.items.insert(s.item.clone());
            ch.outbox.push((
                now,
                RecordBody::Maintenance(MaintenanceEvent {
                    item: s.item.clone(),
                    status,
                    odometer: self.mem.vehicle.odometer.unwrap_or_default(),
                    due_odometer: s.due_odometer,
                    due_at: s.due_at,
                    due_engine_hours: s.due_engine_hours,
                }),
            ));
        }
    }

    fn expire_campaigns(&mut self, now: Timestamp, ch: &mut Changes) {
        let expired: Vec<String> = self
            .mem
            .campaigns
            .iter()
            .filter(|(_, c)| now >= c.campaign.valid_until)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.mem.campaigns.remove(&id);
            ch.campaigns.insert(id);
        }
    }

    /// The driver acted on a prompt on the screen.
    ///
    /// # Errors
    /// [`RulesError::NotFound`] for an unknown id; [`RulesError::Conflict`] if the prompt is
    /// not on the screen (pending, snoozed or closed); [`RulesError::Invalid`] for a snooze
    /// outside 1 minute to a week.
    pub fn act(
        &mut self,
        id: &str,
        action: DriverAction,
        now: Timestamp,
    ) -> Result<Changes, RulesError> {
        let p = self
            .mem
            .prompts
            .get_mut(id)
            .ok_or_else(|| RulesError::NotFound(format!("prompt {id:?}")))?;
        if p.state != PromptState::Shown {
            return Err(RulesError::Conflict(format!(
                "prompt {id:?} is {}, not on the screen",
                p.state.as_str()
            )));
        }
        let (state, wire) = match action {
            DriverAction::Ack => (PromptState::Acknowledged, PromptAction::Acknowledged),
            DriverAction::Dismiss => (PromptState::Dismissed, PromptAction::Dismissed),
            DriverAction::Book => (PromptState::Booked, PromptAction::Booked),
            DriverAction::Snooze { minutes } => {
                if !(1..=MAX_SNOOZE_MINUTES).contains(&minutes) {
                    return Err(RulesError::Invalid(format!(
                        "snooze minutes {minutes} outside 1..={MAX_SNOOZE_MINUTES}"
                    )));
                }
                let until =
                    now.saturating_add(core::time::Duration::from_secs(u64::from(minutes) * 60));
                (PromptState::Snoozed(until), PromptAction::Snoozed { until })
            }
        };
        p.state = state;
        if state.is_final() {
            p.closed_at = Some(now);
        }
        let mut ch = Changes {
            durable: true,
            ..Changes::default()
        };
        ch.prompts.insert(p.id.clone());
        ch.outbox.push((now, prompt_event(p, wire)));
        self.evaluate(now, &mut ch);
        Ok(ch)
    }

    /// A service was performed (recorded by the driver, or by a partner through the cloud):
    /// each item starts a new interval.
    ///
    /// # Errors
    /// [`RulesError::Invalid`] for no items, an item not in the schedule, or a time in the
    /// future.
    pub fn record_service(
        &mut self,
        items: &[String],
        odometer: Option<Odometer>,
        at: Option<Timestamp>,
        source: ServiceSource,
        now: Timestamp,
    ) -> Result<Changes, RulesError> {
        if items.is_empty() {
            return Err(RulesError::Invalid("items: at least one item".into()));
        }
        for item in items {
            if !self.schedule().iter().any(|i| &i.id == item) {
                let known: Vec<&str> = self.schedule().iter().map(|i| i.id.as_str()).collect();
                return Err(RulesError::Invalid(format!(
                    "items: {item:?} is not in the schedule ({})",
                    known.join(", ")
                )));
            }
        }
        let at = at.unwrap_or(now);
        if at > now {
            return Err(RulesError::Invalid(format!(
                "at: {} is in the future",
                at.as_millis()
            )));
        }
        let odometer = odometer.or(self.mem.vehicle.odometer);
        let engine_hours = self.mem.vehicle.engine_hours;
        let mut ch = Changes {
            durable: true,
            ..Changes::default()
        };
        for item in items {
            let rec: &mut ItemRecord = self.mem.items.entry(item.clone()).or_default();
            rec.services = rec.services.saturating_add(1);
            rec.last = Some(LastService {
                at,
                odometer,
                engine_hours,
            });
            rec.reported = Some((rec.services, Stage::Ok));
            ch.items.insert(item.clone());
            ch.outbox.push((
                now,
                RecordBody::Maintenance(MaintenanceEvent {
                    item: item.clone(),
                    status: MaintenanceStatus::Done,
                    odometer: odometer.unwrap_or_default(),
                    due_odometer: None,
                    due_at: None,
                    due_engine_hours: None,
                }),
            ));
        }
        self.mem.services.push(ServiceRecord {
            items: items.to_vec(),
            at,
            odometer,
            engine_hours,
            source,
        });
        ch.new_services = 1;
        self.evaluate(now, &mut ch);
        Ok(ch)
    }

    /// The driver changed their settings; consent changes go to the cloud.
    ///
    /// # Errors
    /// [`RulesError::Invalid`] for quiet hours that do not parse.
    pub fn set_settings(
        &mut self,
        settings: memory::Settings,
        now: Timestamp,
    ) -> Result<Changes, RulesError> {
        if let Some(q) = &settings.quiet_hours {
            q.window()
                .map_err(|e| RulesError::Invalid(format!("quiet_hours: {e}")))?;
        }
        if settings.muted.contains(&PromptKind::Fault) {
            // Faults can be muted below critical; critical ones always show (the gate).
        }
        let mut ch = Changes {
            durable: true,
            settings: true,
            ..Changes::default()
        };
        let old = &self.mem.settings;
        for (kind, before, after) in [
            (
                ConsentKind::EngagementPrompts,
                old.engagement_prompts,
                settings.engagement_prompts,
            ),
            (
                ConsentKind::PartnerSharing,
                old.partner_sharing,
                settings.partner_sharing,
            ),
        ] {
            if before != after {
                ch.outbox.push((
                    now,
                    RecordBody::Consent(ConsentChange {
                        consent: kind,
                        granted: after,
                    }),
                ));
            }
        }
        self.mem.settings = settings;
        self.evaluate(now, &mut ch);
        Ok(ch)
    }
}

#[cfg(test)]
mod tests;
