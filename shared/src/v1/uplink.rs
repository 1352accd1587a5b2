//! What a car tells the cloud: an [`Uplink`] envelope holding a batch of sequence-numbered
//! [`Record`]s. Every event and state change on the agent becomes one record; the cloud applies
//! each (VIN, sequence) once. The byte layout is [`super::codec`]'s business, not this file's.

use serde::{Deserialize, Serialize};

use super::open_enum::open_enum;
use crate::{Dtc, EngineHours, Odometer, Severity, Timestamp, Vin};

/// One MQTT publish on `rapport/v1/{vin}/up`: a vehicle and a batch of its records.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Uplink {
    /// The vehicle; the cloud checks it equals the VIN in the topic.
    pub vin: Vin,
    /// Records in strictly increasing sequence order.
    pub records: Vec<Record>,
}

/// One thing that happened on the car, numbered per vehicle so the cloud applies it once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// Per-vehicle sequence number, starting at 1, never reused.
    pub seq: u64,
    /// When it happened on the car (the agent's wall clock).
    pub at: Timestamp,
    /// What happened.
    pub body: RecordBody,
}

/// Record kinds. The wire tag of each is fixed forever (see [`RecordBody::kind`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    /// An accepted odometer reading.
    Odometer(OdometerReading),
    /// An accepted engine-hours reading.
    EngineHours(EngineHoursReading),
    /// A fault became active.
    DtcAppeared(DtcEvent),
    /// A fault is no longer reported.
    DtcCleared(DtcEvent),
    /// All faults active now (sent on start and periodically, so the cloud can reconcile).
    DtcSnapshot(DtcSnapshot),
    /// A maintenance item changed state (due soon, due, overdue, done).
    Maintenance(MaintenanceEvent),
    /// A prompt was shown to the driver or the driver acted on it.
    Prompt(PromptEvent),
    /// The driver changed a consent.
    Consent(ConsentChange),
    /// The agent is alive: version, uptime, outbox depth, records dropped.
    Heartbeat(Heartbeat),
    /// The car wiped its local history as a vehicle-wipe downlink asked (v1.2, tag 10).
    WipeConfirmed(WipeConfirmed),
    /// The agent stopped trusting its wall clock (v1.3, tag 11): once per episode.
    ClockUntrusted(ClockUntrusted),
    /// The driver answered a service case from the car's screen (v1.4, tag 12).
    ServiceAnswer(ServiceAnswer),
    /// A record kind this build does not know, from a newer agent: kept as bytes, never
    /// refused, so its sequence number is still applied.
    Unknown {
        /// The wire tag.
        tag: u32,
        /// The body, undecoded.
        bytes: Vec<u8>,
    },
}

/// Wire tags of the record kinds. Append only; never reuse or renumber.
pub mod tag {
    /// [`super::RecordBody::Odometer`].
    pub const ODOMETER: u32 = 1;
    /// [`super::RecordBody::EngineHours`].
    pub const ENGINE_HOURS: u32 = 2;
    /// [`super::RecordBody::DtcAppeared`].
    pub const DTC_APPEARED: u32 = 3;
    /// [`super::RecordBody::DtcCleared`].
    pub const DTC_CLEARED: u32 = 4;
    /// [`super::RecordBody::DtcSnapshot`].
    pub const DTC_SNAPSHOT: u32 = 5;
    /// [`super::RecordBody::Maintenance`].
    pub const MAINTENANCE: u32 = 6;
    /// [`super::RecordBody::Prompt`].
    pub const PROMPT: u32 = 7;
    /// [`super::RecordBody::Consent`].
    pub const CONSENT: u32 = 8;
    /// [`super::RecordBody::Heartbeat`].
    pub const HEARTBEAT: u32 = 9;
    /// [`super::RecordBody::WipeConfirmed`].
    pub const WIPE_CONFIRMED: u32 = 10;
    /// [`super::RecordBody::ClockUntrusted`].
    pub const CLOCK_UNTRUSTED: u32 = 11;
    /// [`super::RecordBody::ServiceAnswer`].
    pub const SERVICE_ANSWER: u32 = 12;
    /// The highest tag this build knows.
    pub const MAX_KNOWN: u32 = SERVICE_ANSWER;
}

impl RecordBody {
    /// The wire tag of this record kind.
    pub fn tag(&self) -> u32 {
        match self {
            Self::Odometer(_) => tag::ODOMETER,
            Self::EngineHours(_) => tag::ENGINE_HOURS,
            Self::DtcAppeared(_) => tag::DTC_APPEARED,
            Self::DtcCleared(_) => tag::DTC_CLEARED,
            Self::DtcSnapshot(_) => tag::DTC_SNAPSHOT,
            Self::Maintenance(_) => tag::MAINTENANCE,
            Self::Prompt(_) => tag::PROMPT,
            Self::Consent(_) => tag::CONSENT,
            Self::Heartbeat(_) => tag::HEARTBEAT,
            Self::WipeConfirmed(_) => tag::WIPE_CONFIRMED,
            Self::ClockUntrusted(_) => tag::CLOCK_UNTRUSTED,
            Self::ServiceAnswer(_) => tag::SERVICE_ANSWER,
            Self::Unknown { tag, .. } => *tag,
        }
    }

    /// A short lower-case name of the kind, for logs and metrics.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.tag())
    }
}

/// The name of a record kind by wire tag (`"unknown"` for tags this build does not know).
pub fn kind_name(tag: u32) -> &'static str {
    match tag {
        tag::ODOMETER => "odometer",
        tag::ENGINE_HOURS => "engine_hours",
        tag::DTC_APPEARED => "dtc_appeared",
        tag::DTC_CLEARED => "dtc_cleared",
        tag::DTC_SNAPSHOT => "dtc_snapshot",
        tag::MAINTENANCE => "maintenance",
        tag::PROMPT => "prompt",
        tag::CONSENT => "consent",
        tag::HEARTBEAT => "heartbeat",
        tag::WIPE_CONFIRMED => "wipe_confirmed",
        tag::CLOCK_UNTRUSTED => "clock_untrusted",
        tag::SERVICE_ANSWER => "service_answer",
        _ => "unknown",
    }
}

/// Where a reading came from on the car.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalSource {
    /// OBD-II mode 01 (SAE J1979).
    Obd,
    /// UDS ReadDataByIdentifier (ISO 14229).
    Uds,
    /// J1939 broadcast PGNs.
    J1939,
    /// A DBC-defined broadcast signal.
    Dbc,
}

impl SignalSource {
    /// The lower-case name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Obd => "obd",
            Self::Uds => "uds",
            Self::J1939 => "j1939",
            Self::Dbc => "dbc",
        }
    }
}

/// An odometer reading the agent accepted (plausibility is checked before it gets here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OdometerReading {
    /// Total distance.
    pub odometer: Odometer,
    /// Where it was read.
    pub source: SignalSource,
}

/// An engine-hours reading the agent accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineHoursReading {
    /// Total engine running time.
    pub hours: EngineHours,
    /// Where it was read.
    pub source: SignalSource,
}

open_enum! {
    /// Which of an ECU's fault lists a code is in. One (ECU, code) can be in several lists at
    /// once (confirmed and permanent, active and previously active); each list is its own set.
    pub enum DtcClass {
        /// OBD-II mode 03 (a confirmed, "stored" emissions code), or a UDS record with
        /// confirmedDTC or warningIndicatorRequested set.
        Confirmed = 0 => "confirmed",
        /// OBD-II mode 07, or a UDS record with pendingDTC set (and not confirmed).
        Pending = 1 => "pending",
        /// OBD-II mode 0A: a permanent code, cleared only by the ECU itself after a drive
        /// cycle that passes.
        Permanent = 2 => "permanent",
        /// A UDS record whose only failure bit is testFailedSinceLastClear (status 0x20 or
        /// 0x60): it failed once since the last clear and is neither failing, pending nor
        /// confirmed now. History, never a driver prompt.
        Stored = 3 => "stored",
        /// A UDS record failing now (testFailed or testFailedThisOperationCycle) but not yet
        /// pending or confirmed.
        TestFailed = 4 => "test_failed",
        /// J1939 DM1: active now.
        Active = 5 => "active",
        /// J1939 DM2 (PGN 65227): previously active. History, never a driver prompt.
        PreviouslyActive = 6 => "previously_active",
    }
}

impl DtcClass {
    /// Whether a code of this class may become a driver prompt (by its severity): codes the
    /// ECU only remembers (stored, previously active) or keeps for emissions inspection
    /// (permanent) never do; a permanent code that matters is confirmed too.
    pub const fn may_prompt(self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::Pending | Self::TestFailed | Self::Active
        )
    }
}

/// A fault appearing or clearing, as reported by one ECU.
///
/// `class` was appended in v1.1 (see "Growing the protocol"): a v1.0 agent's events decode with
/// `None`, and a v1.0 cloud reads the three fields before it and ignores the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtcEvent {
    /// The fault (its family tells the protocol).
    pub dtc: Dtc,
    /// How much it matters, from lamps, status bits and config overrides.
    pub severity: Severity,
    /// The reporting ECU: OBD/UDS response CAN id, or J1939 source address.
    pub ecu: u32,
    /// Which of the ECU's lists it is in; `None` from an agent older than v1.1 (which sent
    /// only present codes: confirmed, pending, permanent, active).
    #[serde(default)]
    pub class: Option<DtcClass>,
}

/// Every fault active at one moment, with the lamp state. On the wire the events keep their
/// v1.0 shape and their classes follow `mil` as one trailing list (see [`super::codec`]), so a
/// v1.0 cloud still reads every event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtcSnapshot {
    /// Active faults.
    pub active: Vec<DtcEvent>,
    /// Whether the malfunction indicator lamp is on.
    pub mil: bool,
}

/// Maintenance item states, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MaintenanceStatus {
    /// Within the due-soon window.
    DueSoon,
    /// Due now.
    Due,
    /// Past due.
    Overdue,
    /// Serviced: the item starts a new interval.
    Done,
}

/// A maintenance item changed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceEvent {
    /// The schedule item (`"oil"`, `"first_service"`, …).
    pub item: String,
    /// Its new state.
    pub status: MaintenanceStatus,
    /// The odometer when the state changed.
    pub odometer: Odometer,
    /// Due at this distance, if the item is due by distance.
    pub due_odometer: Option<Odometer>,
    /// Due at this time, if the item is due by time.
    pub due_at: Option<Timestamp>,
    /// Due at this engine time, if the item is due by engine hours.
    pub due_engine_hours: Option<EngineHours>,
}

open_enum! {
    /// What a prompt is about.
    pub enum PromptKind {
        /// A maintenance item is due soon, due or overdue.
        Maintenance = 0 => "maintenance",
        /// A fault was found.
        Fault = 1 => "fault",
        /// Break-in advice while under the break-in distance.
        BreakIn = 2 => "break_in",
        /// The break-in period is over.
        BreakInComplete = 3 => "break_in_complete",
        /// The first service is coming up.
        FirstService = 4 => "first_service",
        /// An ownership anniversary.
        Anniversary = 5 => "anniversary",
        /// A distance milestone.
        Milestone = 6 => "milestone",
        /// A campaign pushed down by the cloud.
        Campaign = 7 => "campaign",
        /// A service case's progress (contacted, technician on the way, …; v1.4).
        ServiceProgress = 8 => "service_progress",
    }
}

/// What happened to a prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptAction {
    /// Shown to the driver.
    Shown,
    /// The driver acknowledged it.
    Acknowledged,
    /// The driver snoozed it until a time.
    Snoozed {
        /// When it may show again.
        until: Timestamp,
    },
    /// The driver dismissed it: it stays away until its condition changes.
    Dismissed,
    /// The driver asked to book a service from it.
    Booked,
}

/// A prompt event: shown, or acted on by the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptEvent {
    /// The prompt's id on the agent (stable for one condition, e.g. `maintenance:oil:20000`).
    pub prompt: String,
    /// What it is about.
    pub kind: PromptKind,
    /// Its subject: the maintenance item, DTC, milestone or campaign id.
    pub subject: String,
    /// Whether it was shown as critical (at once, even while driving).
    pub critical: bool,
    /// What happened.
    pub action: PromptAction,
}

open_enum! {
    /// A consent the driver gives or withdraws.
    pub enum ConsentKind {
        /// Engagement prompts (milestones, anniversaries, campaigns).
        EngagementPrompts = 0 => "engagement_prompts",
        /// Sharing the car's data with partners (dealer, service providers).
        PartnerSharing = 1 => "partner_sharing",
    }
}

/// The driver gave or withdrew a consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChange {
    /// Which consent.
    pub consent: ConsentKind,
    /// Given (`true`) or withdrawn.
    pub granted: bool,
}

/// The agent is alive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's version string.
    pub agent_version: String,
    /// Seconds since the agent started.
    pub uptime_s: u64,
    /// Records waiting in the outbox.
    pub outbox_depth: u64,
    /// Records dropped from a full outbox since the last heartbeat.
    pub records_dropped: u64,
}

/// The car wiped its local history (prompts, DTC and service history, settings back to
/// defaults; the schedule and odometer kept) as the vehicle-wipe downlink `downlink` asked.
/// Sent once, when the wipe is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeConfirmed {
    /// The id of the [`crate::DownlinkBody::VehicleWipe`] message applied.
    pub downlink: u64,
    /// The erasure instant the downlink carried (the cloud's clock).
    pub erased_at: Timestamp,
}

/// The agent stopped trusting its wall clock: it read a time before the latest trusted time it
/// had seen (a real-time clock back at 1970) or a leap ahead that the monotonic clock does not
/// account for (a year ahead). Sent once when an episode begins; the record's own time is the
/// car's wall clock then (`observed`), like every record's. Until the clock is trusted again
/// the agent runs its date rules on `trusted` carried forward by the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockUntrusted {
    /// The wall clock as read (the untrusted time).
    pub observed: Timestamp,
    /// The agent's trusted time at that moment: the latest trusted wall time carried forward
    /// by the monotonic clock.
    pub trusted: Timestamp,
}

open_enum! {
    /// What the driver answered about a service case.
    pub enum DriverAnswer {
        /// "I'm no longer with the car": the case goes on; the technician must know.
        LeftCar = 0 => "left_car",
        /// "Cancel": the driver calls the case off.
        Cancel = 1 => "cancel",
    }
}

/// The driver answered a service case ([`crate::ServiceProgress`]) from the car's screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAnswer {
    /// The case: the cloud's alert id the progress downlink carried.
    pub alert_id: u64,
    /// The answer.
    pub answer: DriverAnswer,
}
