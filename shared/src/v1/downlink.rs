//! What the cloud tells a car: a [`Downlink`] envelope of [`DownlinkMessage`]s on
//! `rapport/v1/{vin}/down`. Each message carries an id so the agent applies it once, however
//! often the broker delivers it. The maintenance schedule item type lives here too: the agent's
//! config and the schedule-update downlink describe schedules with the same type, and check
//! them the same way ([`super::schedule::check_schedule`]).

use serde::{Deserialize, Serialize};

use super::open_enum::open_enum;
use crate::{Odometer, Timestamp, Vin};

/// One MQTT publish on `rapport/v1/{vin}/down`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Downlink {
    /// The vehicle; the agent checks it is its own.
    pub vin: Vin,
    /// The messages.
    pub messages: Vec<DownlinkMessage>,
}

/// One instruction for a car.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DownlinkMessage {
    /// Unique per message, chosen by the cloud; the agent remembers applied ids.
    pub id: u64,
    /// When the cloud issued it.
    pub at: Timestamp,
    /// What to do.
    pub body: DownlinkBody,
}

/// Downlink kinds; wire tags in [`tag`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DownlinkBody {
    /// Show a campaign to the driver while it is valid and its target conditions hold.
    Campaign(Campaign),
    /// Replace the maintenance schedule.
    ScheduleUpdate(ScheduleUpdate),
    /// A partner recorded a service: reset the items it covers.
    ServiceRecorded(ServiceRecorded),
    /// A booking the driver asked for is confirmed.
    BookingConfirmed(BookingConfirmed),
    /// The driver's data was erased in the cloud: wipe the car's local history (v1.2, tag 5).
    VehicleWipe(VehicleWipe),
    /// The car has a new owner (v1.2): every consent goes back to off until the new owner
    /// gives it; the car's maintenance history and schedule stay.
    OwnerChanged(OwnerChanged),
    /// A service case (a cloud alert about this car) moved to a stage (v1.4, tag 7): the
    /// agent shows it to the driver as it shows prompts, gated for safety.
    ServiceProgress(ServiceProgress),
    /// A kind this build does not know, from a newer cloud: the agent records the id as
    /// applied (so it is not retried forever) and otherwise ignores it.
    Unknown {
        /// The wire tag.
        tag: u32,
        /// The body, undecoded.
        bytes: Vec<u8>,
    },
}

/// Wire tags of the downlink kinds. Append only.
pub mod tag {
    /// [`super::DownlinkBody::Campaign`].
    pub const CAMPAIGN: u32 = 1;
    /// [`super::DownlinkBody::ScheduleUpdate`].
    pub const SCHEDULE_UPDATE: u32 = 2;
    /// [`super::DownlinkBody::ServiceRecorded`].
    pub const SERVICE_RECORDED: u32 = 3;
    /// [`super::DownlinkBody::BookingConfirmed`].
    pub const BOOKING_CONFIRMED: u32 = 4;
    /// [`super::DownlinkBody::VehicleWipe`].
    pub const VEHICLE_WIPE: u32 = 5;
    /// [`super::DownlinkBody::OwnerChanged`].
    pub const OWNER_CHANGED: u32 = 6;
    /// [`super::DownlinkBody::ServiceProgress`].
    pub const SERVICE_PROGRESS: u32 = 7;
    /// The highest tag this build knows.
    pub const MAX_KNOWN: u32 = SERVICE_PROGRESS;
}

impl DownlinkBody {
    /// The wire tag of this kind.
    pub fn tag(&self) -> u32 {
        match self {
            Self::Campaign(_) => tag::CAMPAIGN,
            Self::ScheduleUpdate(_) => tag::SCHEDULE_UPDATE,
            Self::ServiceRecorded(_) => tag::SERVICE_RECORDED,
            Self::BookingConfirmed(_) => tag::BOOKING_CONFIRMED,
            Self::VehicleWipe(_) => tag::VEHICLE_WIPE,
            Self::OwnerChanged(_) => tag::OWNER_CHANGED,
            Self::ServiceProgress(_) => tag::SERVICE_PROGRESS,
            Self::Unknown { tag, .. } => *tag,
        }
    }
}

/// How prominently a campaign is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Priority {
    /// Only in the list.
    Low,
    /// A normal prompt.
    Normal,
    /// Ahead of other engagement prompts (never ahead of safety).
    High,
}

/// A campaign for the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// The campaign's business id (the same campaign may be sent again, updated).
    pub campaign_id: String,
    /// Short title.
    pub title: String,
    /// The text shown.
    pub text: String,
    /// How prominently.
    pub priority: Priority,
    /// Not shown before.
    pub valid_from: Timestamp,
    /// Not shown after; the agent forgets it then.
    pub valid_until: Timestamp,
    /// Conditions the car must meet, checked locally.
    pub target: CampaignTarget,
}

/// Conditions checked on the car before a campaign is shown. All present ones must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTarget {
    /// At least this odometer.
    pub min_odometer: Option<Odometer>,
    /// At most this odometer.
    pub max_odometer: Option<Odometer>,
    /// Owned at least this many days (since delivery).
    pub min_days_owned: Option<u32>,
    /// Owned at most this many days.
    pub max_days_owned: Option<u32>,
    /// Only when no fault is active.
    pub no_active_faults: bool,
}

/// One item of a maintenance schedule: due by distance, time or engine hours, whichever first.
///
/// Used by the agent's config (`[[maintenance.items]]`) and by [`ScheduleUpdate`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceItem {
    /// The item's id (`"oil"`, `"brake_fluid"`, `"first_service"`).
    pub id: String,
    /// Repeats every this many km.
    pub every_km: Option<u32>,
    /// Repeats every this many months.
    pub every_months: Option<u32>,
    /// Repeats every this many engine hours.
    pub every_engine_hours: Option<u32>,
    /// First due at this odometer (a first-service item).
    pub first_at_km: Option<u32>,
    /// First due this many months after delivery.
    pub first_at_months: Option<u32>,
    /// "Due soon" starts this many km before due.
    pub due_soon_km: Option<u32>,
    /// "Due soon" starts this many days before due.
    pub due_soon_days: Option<u32>,
}

/// A new maintenance schedule for the car.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleUpdate {
    /// The vehicle line the schedule belongs to.
    pub line: String,
    /// The whole schedule (it replaces the current one).
    pub items: Vec<MaintenanceItem>,
}

/// A service a partner recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecorded {
    /// The schedule items it covered.
    pub items: Vec<String>,
    /// When it was done.
    pub performed_at: Timestamp,
    /// The odometer at the service, if the partner recorded it.
    pub odometer: Option<Odometer>,
    /// Who did it.
    pub partner: String,
}

/// A booking confirmed by a partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingConfirmed {
    /// The prompt the driver booked from.
    pub prompt: String,
    /// The maintenance item, if the booking is for one.
    pub item: Option<String>,
    /// The partner's name.
    pub partner: String,
    /// The appointment.
    pub appointment: Timestamp,
    /// Where.
    pub location: String,
}

/// The driver's data was erased in the cloud at `erased_at`: the car wipes its local history
/// — prompts, DTC and service history, settings back to their defaults — and keeps its
/// maintenance schedule and odometer; then it confirms with a
/// [`crate::RecordBody::WipeConfirmed`] record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleWipe {
    /// The erasure instant (the cloud's clock).
    pub erased_at: Timestamp,
}

/// The car changed hands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerChanged {
    /// When the new owner's relationship starts (the effective date, midnight UTC).
    pub since: Timestamp,
}

open_enum! {
    /// Where a service case stands: the stages a partner reports. A critical fault goes
    /// raised → contacted → dispatched → on site → resolved; maintenance raised → contacted →
    /// booked → resolved. Cancelled: the driver (or the operator) called it off.
    pub enum ServiceStage {
        /// The cloud raised the case and told the partner.
        Raised = 0 => "raised",
        /// A named advisor reached the driver.
        Contacted = 1 => "contacted",
        /// A technician or a tow is on the way, with an ETA.
        Dispatched = 2 => "dispatched",
        /// The technician is at the car.
        OnSite = 3 => "on_site",
        /// An appointment is booked at a time (maintenance).
        Booked = 4 => "booked",
        /// Done.
        Resolved = 5 => "resolved",
        /// Called off (by the driver from the car, or by the operator).
        Cancelled = 6 => "cancelled",
    }
}

/// A service case (the cloud's alert about this car) reached a stage, or its stage's ETA was
/// revised. The agent keeps the latest per case: one with a `step` not above the one it holds
/// is superseded (a repeat, or an older move delivered late) and is not shown again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceProgress {
    /// The cloud's alert id: the case's handle (the driver's answer names it).
    pub alert_id: u64,
    /// What the case is about: the DTC code (`"P0300"`) or the maintenance item (`"oil"`).
    pub subject: String,
    /// Whether the case is about a critical fault (else maintenance or a partner's task).
    pub critical: bool,
    /// The stage reached.
    pub stage: ServiceStage,
    /// The case's move counter: 1 for the first stage the car is told, one more for every
    /// later stage or revision. Orders the messages of one case.
    pub step: u32,
    /// When the stage was reached (the cloud's clock).
    pub reached_at: Timestamp,
    /// The partner handling the case, by its display name.
    pub partner: String,
    /// The named advisor who contacted the driver, once known.
    pub advisor: Option<String>,
    /// The technician's or tow's expected arrival (dispatched), or the appointment (booked).
    pub eta: Option<Timestamp>,
}
