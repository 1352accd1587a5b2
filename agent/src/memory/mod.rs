//! What the agent remembers about the car: the types the store persists and the rules read
//! and change, all in one in-memory [`Memory`], plus the [`Changes`] one step of the rules
//! made to it (which entities to write, which outbox records to append).
//!
//! Owns: the shape of remembered state. Does not own: the key layout, encoding and schema
//! version on disk ([`crate::store`]), nor the decisions ([`crate::rules`]). Every type here
//! is postcard-encoded by the store: fields are positional, so a change of shape is a new
//! schema version with a migration in the store, never an edit in place.

mod quiet;

use std::collections::{BTreeMap, BTreeSet};

use rapport_shared::v1::downlink::{Campaign, MaintenanceItem, ServiceProgress, ServiceStage};
use rapport_shared::v1::uplink::{DriverAnswer, PromptKind, RecordBody};
use rapport_shared::{Dtc, DtcCode, EngineHours, Odometer, Severity, Timestamp};
use serde::{Deserialize, Serialize};

pub use quiet::{QuietHours, QuietHoursError, QuietWindow};

/// The car's latest known state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VehicleState {
    /// Latest plausible odometer.
    pub odometer: Option<Odometer>,
    /// When it was read.
    pub odometer_at: Option<Timestamp>,
    /// Latest engine hours.
    pub engine_hours: Option<EngineHours>,
    /// Whether a malfunction indicator lamp is on (any ECU).
    pub(crate) mil: bool,
    /// When this agent first ran in this car.
    pub first_seen: Option<Timestamp>,
    /// The first odometer this agent read (milestones and break-in count only what it saw).
    pub(crate) first_odometer: Option<Odometer>,
}

/// One fault's history, keyed by its identity ([`DtcCode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtcHistory {
    /// The fault as last reported (with status byte / occurrence count).
    pub(crate) dtc: Dtc,
    /// Its latest severity.
    pub(crate) severity: Severity,
    /// The ECU that reported it last.
    pub(crate) ecu: u32,
    /// First time it was ever seen.
    pub(crate) first_seen: Timestamp,
    /// Last time it was reported active.
    pub(crate) last_seen: Timestamp,
    /// How many times it appeared (1 + the times it came back after clearing).
    pub times_seen: u32,
    /// Whether it is active now.
    pub active: bool,
    /// When it last cleared.
    pub(crate) cleared_at: Option<Timestamp>,
}

/// Who recorded a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceSource {
    /// The driver, on the head unit.
    Driver,
    /// A partner, through the cloud (a downlink).
    Partner(String),
}

/// A service performed on the car.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The schedule items it covered.
    pub(crate) items: Vec<String>,
    /// When it was performed.
    pub(crate) at: Timestamp,
    /// Odometer at the service (the current one if not given).
    pub(crate) odometer: Option<Odometer>,
    /// Engine hours at the service.
    pub(crate) engine_hours: Option<EngineHours>,
    /// Who recorded it.
    pub(crate) source: ServiceSource,
}

/// The last service of one schedule item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastService {
    /// When.
    pub(crate) at: Timestamp,
    /// Odometer then.
    pub odometer: Option<Odometer>,
    /// Engine hours then.
    pub(crate) engine_hours: Option<EngineHours>,
}

/// Where a maintenance item stands, as last reported to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Stage {
    /// Not due yet, outside the due-soon window.
    Ok,
    /// Inside the due-soon window.
    DueSoon,
    /// Due.
    Due,
    /// Past due by more than the overdue margin.
    Overdue,
}

impl Stage {
    /// The snake-case name used in JSON and prompt ids.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::DueSoon => "due_soon",
            Self::Due => "due",
            Self::Overdue => "overdue",
        }
    }
}

/// One schedule item's service history and last reported stage, keyed by item id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Services recorded for this item; also the item's cycle number (0: first interval).
    pub services: u32,
    /// The last one.
    pub last: Option<LastService>,
    /// The stage last reported to the outbox, with the cycle it was reported for.
    pub(crate) reported: Option<(u32, Stage)>,
}

/// Where a prompt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptState {
    /// Its condition holds; waiting for the gate (parked, quiet hours, caps).
    Pending,
    /// On the screen (visible whenever the gate allows).
    Shown,
    /// The driver acknowledged it.
    Acknowledged,
    /// The driver snoozed it until this time.
    Snoozed(Timestamp),
    /// The driver dismissed it: it stays away until its condition changes (a new id).
    Dismissed,
    /// The driver asked to book a service from it.
    Booked,
    /// Its condition went away before the driver acted (service recorded, fault cleared,
    /// campaign expired).
    Resolved,
}

impl PromptState {
    /// The snake-case name used in JSON.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Shown => "shown",
            Self::Acknowledged => "acknowledged",
            Self::Snoozed(_) => "snoozed",
            Self::Dismissed => "dismissed",
            Self::Booked => "booked",
            Self::Resolved => "resolved",
        }
    }

    /// Whether the driver acted on it or it went away: it never shows again.
    pub(crate) const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Acknowledged | Self::Dismissed | Self::Booked | Self::Resolved
        )
    }
}

/// A prompt: one condition worth telling the driver, under a stable id.
///
/// Ids name the condition, so a changed condition is a new prompt: `maintenance:oil:2:due`
/// (item, cycle, stage), `fault:P0300:3` (code, occurrence), `milestone:50000`,
/// `anniversary:2`, `break_in:advice:0`, `break_in:complete`, `campaign:<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptRecord {
    /// The id.
    pub id: String,
    /// What it is about.
    pub kind: PromptKind,
    /// Its subject: item id, DTC code, milestone km, campaign id.
    pub subject: String,
    /// Shown at once, even while driving, and marked as critical.
    pub critical: bool,
    /// Short title for the screen.
    pub title: String,
    /// The text.
    pub text: String,
    /// When its condition started.
    pub created: Timestamp,
    /// Where it stands.
    pub state: PromptState,
    /// When it was first shown.
    pub first_shown: Option<Timestamp>,
    /// How many times it was shown (re-shows after a snooze count).
    pub times_shown: u32,
    /// When the driver acted, or it resolved.
    pub closed_at: Option<Timestamp>,
}

/// The driver's settings, changed through the HMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Consent to engagement prompts (milestones, anniversaries, break-in, campaigns).
    pub engagement_prompts: bool,
    /// Consent to sharing the car's data with partners.
    pub partner_sharing: bool,
    /// Prompt kinds the driver turned off (never critical faults).
    pub muted: Vec<PromptKind>,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            engagement_prompts: true,
            partner_sharing: false,
            muted: Vec::new(),
            quiet_hours: None,
        }
    }
}

/// A campaign the cloud sent down, kept until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CampaignRecord {
    /// The campaign.
    pub(crate) campaign: Campaign,
    /// When it arrived.
    pub(crate) received: Timestamp,
}

/// A service case: the cloud's alert about this car, as its progress downlinks told it
/// (`DownlinkBody::ServiceProgress`), keyed by alert id. Only steps above the one held are
/// kept; the newest is the last of `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCase {
    /// The steps received, oldest first, at most [`SERVICE_HISTORY`]; never empty.
    pub history: Vec<ServiceProgress>,
    /// When the newest step arrived (the car's clock).
    pub received: Timestamp,
    /// The driver's answers from the screen, oldest first, with when they were given.
    pub answers: Vec<(DriverAnswer, Timestamp)>,
    /// When the case became final here: a resolved or cancelled step arrived, or the driver
    /// cancelled it. A final case leaves memory [`SERVICE_CLOSED_KEEP_MS`] later.
    pub closed_at: Option<Timestamp>,
}

/// Steps of one service case kept for the screen's history.
pub const SERVICE_HISTORY: usize = 8;

/// How long a final (resolved or cancelled) service case stays listed: 24 h.
pub const SERVICE_CLOSED_KEEP_MS: u64 = 24 * 3600 * 1000;

/// Most service cases held at once; past it the oldest final ones, then the oldest, leave.
pub const MAX_SERVICE_CASES: usize = 32;

impl ServiceCase {
    /// A case from its first step.
    pub(crate) fn new(first: ServiceProgress, now: Timestamp) -> Self {
        let mut case = Self {
            history: Vec::with_capacity(1),
            received: now,
            answers: Vec::new(),
            closed_at: None,
        };
        case.push(first, now);
        case
    }

    /// The newest step.
    pub fn latest(&self) -> Option<&ServiceProgress> {
        self.history.last()
    }

    /// The newest step's number (0 for none).
    pub(crate) fn step(&self) -> u32 {
        self.latest().map_or(0, |p| p.step)
    }

    /// Adds a newer step (the caller checked it is newer); a final stage closes the case.
    pub(crate) fn push(&mut self, p: ServiceProgress, now: Timestamp) {
        if matches!(p.stage, ServiceStage::Resolved | ServiceStage::Cancelled) {
            self.closed_at.get_or_insert(now);
        }
        self.history.push(p);
        if self.history.len() > SERVICE_HISTORY {
            let extra = self.history.len() - SERVICE_HISTORY;
            self.history.drain(..extra);
        }
        self.received = now;
    }

    /// Whether the driver cancelled it from the screen.
    pub fn cancelled_by_driver(&self) -> bool {
        self.answers.iter().any(|(a, _)| *a == DriverAnswer::Cancel)
    }

    /// Whether it is final: resolved, cancelled, or cancelled by the driver.
    pub fn is_closed(&self) -> bool {
        self.closed_at.is_some()
    }
}

/// Prompts shown per kind on one local day, for the frequency caps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowCounts {
    /// Local day number (days since 1970-01-01 in the configured offset).
    pub(crate) day: i64,
    /// Shows per kind code that day.
    pub per_kind: BTreeMap<u16, u32>,
}

/// Everything the agent remembers; the store holds one copy on disk, the agent one in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    /// The car's state.
    pub vehicle: VehicleState,
    /// Fault history by code.
    pub dtcs: BTreeMap<DtcCode, DtcHistory>,
    /// Services, oldest first (append-only).
    pub services: Vec<ServiceRecord>,
    /// Maintenance items by id.
    pub items: BTreeMap<String, ItemRecord>,
    /// Prompts by id.
    pub prompts: BTreeMap<String, PromptRecord>,
    /// The driver's settings.
    pub(crate) settings: Settings,
    /// Campaigns by campaign id.
    pub(crate) campaigns: BTreeMap<String, CampaignRecord>,
    /// Today's prompt counts.
    pub shows: ShowCounts,
    /// A schedule from the cloud that replaces the config's (None: the config's).
    pub(crate) schedule: Option<Vec<MaintenanceItem>>,
    /// Downlink message ids already applied (the sync issue fills it; applied once each).
    pub applied_downlinks: BTreeSet<u64>,
    /// Service cases by the cloud's alert id.
    pub service_cases: BTreeMap<u64, ServiceCase>,
}

/// What one step of the rules changed: the store writes exactly these, in one atomic batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// `Memory::vehicle` changed and should be written.
    pub vehicle: bool,
    /// These fault histories changed.
    pub dtcs: BTreeSet<DtcCode>,
    /// This many services were appended to `Memory::services`.
    pub new_services: usize,
    /// These items changed.
    pub items: BTreeSet<String>,
    /// These prompts changed (written if present in memory, deleted if not).
    pub prompts: BTreeSet<String>,
    /// The settings changed.
    pub settings: bool,
    /// These campaigns changed (written if present, deleted if not).
    pub campaigns: BTreeSet<String>,
    /// The show counts changed.
    pub shows: bool,
    /// The schedule changed.
    pub schedule: bool,
    /// These downlink ids were applied.
    pub downlinks: BTreeSet<u64>,
    /// These service cases changed (written if present in memory, deleted if not).
    pub service_cases: BTreeSet<u64>,
    /// Records for the cloud, in order, with their time.
    pub outbox: Vec<(Timestamp, RecordBody)>,
    /// Make it durable (fsync) before answering: a driver's action, a service.
    pub durable: bool,
    /// Every stored service was forgotten (a vehicle wipe): the store deletes the service
    /// log before writing `new_services`.
    pub wiped_services: bool,
}

impl Changes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        !self.vehicle
            && self.dtcs.is_empty()
            && self.new_services == 0
            && self.items.is_empty()
            && self.prompts.is_empty()
            && !self.settings
            && self.campaigns.is_empty()
            && !self.shows
            && !self.schedule
            && self.downlinks.is_empty()
            && self.service_cases.is_empty()
            && self.outbox.is_empty()
            && !self.wiped_services
    }

    /// Adds `other` after `self` (outbox records keep their order).
    pub fn merge(&mut self, other: Self) {
        self.vehicle |= other.vehicle;
        self.dtcs.extend(other.dtcs);
        self.new_services += other.new_services;
        self.items.extend(other.items);
        self.prompts.extend(other.prompts);
        self.settings |= other.settings;
        self.campaigns.extend(other.campaigns);
        self.shows |= other.shows;
        self.schedule |= other.schedule;
        self.downlinks.extend(other.downlinks);
        self.service_cases.extend(other.service_cases);
        self.outbox.extend(other.outbox);
        self.durable |= other.durable;
        self.wiped_services |= other.wiped_services;
    }
}
