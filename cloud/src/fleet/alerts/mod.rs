//! Partner alerts: what a partner is told about a vehicle, when, and what became of it.
//!
//! Owns [`Alert`] (its stages and promises — [`stages`]: raised → contacted → … → resolved
//! or cancelled, each promised stage's clock, escalation levels 1 and 2 —, the older
//! open → acknowledged → resolved view of them, when its webhook is due), the JSON payload partners receive ([`payload`]), the webhook event types
//! ([`WebhookEvent`]) and the stable webhook message ids ([`message_id`]: one alert, one id
//! per event, whatever the retries). Pure: the clock is passed in, nothing is stored or sent.
//!
//! Does not own: choosing the partner ([`super::partners::Directory::route`]), deciding that
//! an alert is needed (strategies, maintenance, faults), storing alerts and their time
//! indexes (the caller), or delivering webhooks (signing, outbox, retries: `webhook`).
//!
//! # When an alert's webhook goes ([`Alert::send_at`])
//! - A critical-fault alert and a partner task go at once.
//! - A maintenance alert follows the seeds' flow "the car prompts, the driver responds, the
//!   dealer is told": it waits for the driver's response to the maintenance prompt
//!   (acknowledged, snoozed, dismissed, booked: [`Alert::driver_responded`] pulls `send_at`
//!   to that moment) for at most [`AlertPolicy::response_wait`], so the dealer gets the
//!   response with the checklist instead of an alert that is stale an hour later. One that is
//!   raised when the driver has already responded goes at once.
//!
//! The webhook's body is fixed when it is enqueued, so build it ([`Alert::webhook`]) when
//! `send_at` has come, not before. A response after that updates the stored payload (the API
//! shows it) but sends nothing more.
//!
//! # SLA and escalation
//! The SLA is the first promise (by default "contacted within `[alerts] sla_minutes`"; see
//! [`stages`] for the promises per stage). It runs from `send_at` (a partner cannot answer an
//! alert it has not been sent): `sla_due = send_at + sla`. A missed promise escalates: the
//! first miss to the fallback partner ([`Alert::escalate`], [`Alert::miss_due`]), the second
//! to `[promises] second_level`, each with its own event (`alert.escalated`) and message id.
//!
//! One story, read at the cloud's `now` ([`Alert::sla_state`], [`Alert::holder`]): an alert
//! is answered when it is acknowledged, or resolved without an acknowledgement. Open, it is
//! `ok`, `at_risk` (its SLA ends within [`AT_RISK_WITHIN`]), `breached` (past `sla_due`, not
//! escalated yet) or `escalated` (past `sla_due`, with the fallback). Answered, it is `met`
//! only when the answer came before `sla_due`, else `late` — an alert that escalated was
//! answered late, whoever answered. Who has it ([`Alert::holder`]) is the partner that
//! acknowledged it, else the fallback once escalated, else its partner.
//!
//! # Data minimisation
//! Only what the partner needs to act leaves the cloud: the payload's keys are exactly
//! [`PAYLOAD_KEYS`] (alert id, event type, creation time, subject, VIN, vehicle line, category,
//! odometer, the due checklist, active faults, the codes the car's ECUs remember, the driver's
//! response, the layer and the suggestion). [`AlertContext`] has no place for anything else, so consents, prompt texts,
//! raw records, engine-hours history and position cannot leak into it.

mod payload;
pub mod stages;

#[cfg(test)]
mod stage_tests;
#[cfg(test)]
mod tests;

use core::fmt;
use std::time::Duration;

use rapport_shared::{DtcClass, MaintenanceStatus, Severity, Timestamp, Vin};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::payload::payload;
use self::payload::{payload_serde, response_str};
pub use self::stages::{
    Actor, Moved, Outcome, Planned, Promise, PromiseRules, Stage, StageError, StageMove,
    StageRecord,
};
use super::model::{Category, DriverResponse, Layers};

/// The top-level keys of every alert payload, in the order they are written.
pub const PAYLOAD_KEYS: &[&str] = &[
    "type",
    "alert_id",
    "created_at",
    "subject",
    "vin",
    "line",
    "category",
    "odometer_km",
    "checklist",
    "active_faults",
    "stored_codes",
    "driver_response",
    "layer",
    "suggestion",
];

/// The keys an `alert.escalated` body adds to the alert's payload (under `escalation`).
pub const ESCALATION_KEYS: &[&str] = &["from", "to", "at", "sla_due", "level", "stage"];

/// The timing rules of alerts (from the config's `[alerts]` section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertPolicy {
    /// An alert not acknowledged this long after it was sent escalates.
    pub sla: Duration,
    /// A maintenance alert waits at most this long for the driver's response.
    pub response_wait: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            sla: Duration::from_secs(60 * 60),
            response_wait: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum AlertKind {
    /// Maintenance is due (the subject is the schedule item).
    Maintenance,
    /// A critical fault is active (the subject is the DTC code).
    CriticalFault,
    /// A strategy asks a partner to act, e.g. call a churned driver (the subject is the rule).
    PartnerTask,
}

impl AlertKind {
    /// The webhook event an alert of this kind is first sent as.
    pub const fn event(self) -> WebhookEvent {
        match self {
            Self::Maintenance => WebhookEvent::MaintenanceDue,
            Self::CriticalFault => WebhookEvent::CriticalFault,
            Self::PartnerTask => WebhookEvent::PartnerTask,
        }
    }
}

/// Where an alert is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum AlertState {
    /// Raised; nobody has taken it on.
    Open,
    /// A partner has taken it on.
    Acknowledged,
    /// Done.
    Resolved,
}

/// How an alert stands against its SLA ([`Alert::sla_state`]), as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum SlaState {
    /// Answered (acknowledged, or resolved without an acknowledgement) before its SLA ended,
    /// never escalated: the SLA was kept.
    Met,
    /// Answered at or after the end of its SLA (escalated or not): the SLA was not kept.
    Late,
    /// Open, and escalated to the fallback partner.
    Escalated,
    /// Open past its SLA, not escalated yet (the next tick escalates it, if a fallback is
    /// configured).
    Breached,
    /// Open, its SLA ending within [`AT_RISK_WITHIN`].
    AtRisk,
    /// Open, with time to spare (or not sent yet: the SLA starts when it is).
    Ok,
}

impl SlaState {
    /// Whether the alert has been answered (the SLA's outcome is final).
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Met | Self::Late)
    }
}

/// An open alert whose SLA ends within this is at risk.
pub const AT_RISK_WITHIN: Duration = Duration::from_secs(15 * 60);

/// The webhook event types partners receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// `alert.maintenance_due`.
    #[serde(rename = "alert.maintenance_due")]
    MaintenanceDue,
    /// `alert.critical_fault`.
    #[serde(rename = "alert.critical_fault")]
    CriticalFault,
    /// `alert.partner_task`.
    #[serde(rename = "alert.partner_task")]
    PartnerTask,
    /// `alert.escalated`: sent to the fallback partner when the SLA passed unacknowledged.
    #[serde(rename = "alert.escalated")]
    Escalated,
    /// `alert.stage`: the alert reached a stage (or its ETA was revised).
    #[serde(rename = "alert.stage")]
    Stage,
    /// `alert.driver_answer`: the driver answered from the car (e.g. left the car).
    #[serde(rename = "alert.driver_answer")]
    DriverAnswer,
}

impl WebhookEvent {
    /// The event type's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaintenanceDue => "alert.maintenance_due",
            Self::CriticalFault => "alert.critical_fault",
            Self::PartnerTask => "alert.partner_task",
            Self::Escalated => "alert.escalated",
            Self::Stage => "alert.stage",
            Self::DriverAnswer => "alert.driver_answer",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The webhook message id of an alert's event: `msg_a<id>` for the alert itself,
/// `msg_a<id>_esc` for its escalation. Stable: the same alert and event always give the
/// same id, so a retry or a restart never sends it under another one. (Stage moves, driver
/// answers and the second escalation level: [`Alert::stage_webhooks`],
/// [`Alert::answer_webhooks`], [`Alert::escalation_webhook`].)
pub fn message_id(alert_id: u64, event: WebhookEvent) -> String {
    match event {
        WebhookEvent::Escalated => format!("msg_a{alert_id}_esc"),
        _ => format!("msg_a{alert_id}"),
    }
}

/// A due maintenance item's state (a done item is not on a checklist).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecklistStatus {
    /// Within the due-soon window.
    DueSoon,
    /// Due now.
    Due,
    /// Past due.
    Overdue,
}

impl ChecklistStatus {
    /// The spelling in payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DueSoon => "due_soon",
            Self::Due => "due",
            Self::Overdue => "overdue",
        }
    }

    /// From the car's maintenance status; `None` for a done item.
    pub const fn from_maintenance(status: MaintenanceStatus) -> Option<Self> {
        match status {
            MaintenanceStatus::DueSoon => Some(Self::DueSoon),
            MaintenanceStatus::Due => Some(Self::Due),
            MaintenanceStatus::Overdue => Some(Self::Overdue),
            MaintenanceStatus::Done => None,
        }
    }
}

/// One due item of the maintenance checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// The schedule item (`"oil"`, `"first_service"`, …).
    pub item: String,
    /// How due it is.
    pub status: ChecklistStatus,
    /// Due at this odometer, km, if due by distance.
    pub due_odometer_km: Option<u64>,
    /// Due at this time, if due by time.
    pub due_date: Option<Timestamp>,
}

/// An active fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The DTC as text (`"P0300"`, `"SPN110/FMI0"`).
    pub code: String,
    /// How much it matters.
    pub severity: Severity,
    /// Active since.
    pub since: Timestamp,
}

/// A code the car's ECUs remember but that is not a fault now (class `stored`: failed since
/// the last clear, or `previously_active`: J1939 DM2): context for the dealer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCode {
    /// The DTC as text (`"P0420-00"`, `"SPN110/FMI0"`).
    pub code: String,
    /// `stored` or `previously_active`.
    pub class: DtcClass,
    /// Listed since (the car's time of the record that listed it).
    pub since: Timestamp,
}

/// Everything an alert's payload may carry, and nothing else (see the module's data
/// minimisation rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertContext {
    /// The vehicle.
    pub vin: Vin,
    /// Its line (model).
    pub line: String,
    /// Passenger or commercial.
    pub category: Category,
    /// Latest odometer, whole km.
    pub odometer_km: u64,
    /// Due maintenance items.
    pub checklist: Vec<ChecklistItem>,
    /// Active faults.
    pub active_faults: Vec<Fault>,
    /// Codes the ECUs remember (stored, previously active).
    pub stored_codes: Vec<StoredCode>,
    /// The driver's latest response to the prompt.
    pub driver_response: DriverResponse,
    /// Where the driver sits.
    pub layers: Layers,
    /// What the partner should do, for people (depends on the layer).
    pub suggestion: String,
}

/// An alert's escalation to the fallback partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Escalation {
    /// The partner's id (level 1: the fallback; level 2: `[promises] second_level`).
    pub to: String,
    /// When it escalated.
    pub at: Timestamp,
    /// 1 (the first missed promise) or 2 (the second); 0 read as 1 (stored before levels).
    #[serde(default)]
    pub level: u8,
    /// The stage whose promise was missed (none: stored before stages).
    #[serde(default)]
    pub stage: Option<Stage>,
}

/// Why a lifecycle step was refused (the API answers 409 Conflict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// Acknowledged already.
    #[error("alert {id} is already acknowledged")]
    AlreadyAcknowledged {
        /// The alert.
        id: u64,
    },
    /// Resolved already; nothing more happens to it.
    #[error("alert {id} is already resolved")]
    AlreadyResolved {
        /// The alert.
        id: u64,
    },
    /// Only a maintenance alert waits for the driver's response.
    #[error("alert {id} is a {kind:?} alert, not a maintenance alert")]
    NotMaintenance {
        /// The alert.
        id: u64,
        /// What it is.
        kind: AlertKind,
    },
}

/// A webhook to enqueue for an alert: its stable id, recipient, event type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertWebhook {
    /// The webhook message id ([`message_id`]).
    pub id: String,
    /// The recipient partner's id.
    pub partner: String,
    /// The event type.
    pub event: WebhookEvent,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// An alert to a partner. Serialisable for storage: JSON keeps `payload` as an object;
/// compact formats (postcard) as its JSON text, since they cannot carry a free-form value.
/// Fields are only ever appended (postcard is positional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Unique, given by the caller.
    pub id: u64,
    /// What it is about.
    pub kind: AlertKind,
    /// The vehicle.
    #[schema(value_type = String)]
    pub vin: Vin,
    /// The recipient partner's id.
    pub partner: String,
    /// The item, DTC code or rule it is about.
    pub subject: String,
    /// Lifecycle state.
    pub state: AlertState,
    /// Raised at.
    pub created_at: Timestamp,
    /// Acknowledged at.
    pub acknowledged_at: Option<Timestamp>,
    /// Resolved at.
    pub resolved_at: Option<Timestamp>,
    /// Escalates if still open at this time (`send_at` + the SLA).
    pub sla_due: Timestamp,
    /// The escalation, once it happened.
    pub escalated: Option<Escalation>,
    /// When its webhook should go.
    pub send_at: Timestamp,
    /// What the partner is sent ([`payload`]).
    #[serde(with = "payload_serde")]
    pub payload: Value,
    /// The partner that acknowledged it; `None` when it is not acknowledged, when the
    /// operator acknowledged it, or for an alert stored before this was kept.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// The stage history, oldest first ([`stages`]); empty for an alert stored before
    /// stages were kept (read from its state then).
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// The promise plan it was raised with.
    #[serde(default)]
    pub plan: Vec<Planned>,
    /// Its promises, in the order their clocks started.
    #[serde(default)]
    pub promises: Vec<Promise>,
    /// The second-level escalation, once it happened.
    #[serde(default)]
    pub escalated2: Option<Escalation>,
    /// The partner that last moved it or it last escalated to (see [`Alert::holder`]).
    #[serde(default)]
    pub held_by: Option<String>,
    /// The id of the last ServiceProgress downlink queued for it (superseded by the next).
    #[serde(default)]
    pub progress_downlink: Option<u64>,
}

impl Alert {
    /// A new open alert. Critical faults and partner tasks are to be sent at once; a
    /// maintenance alert when the driver responds or after the policy's wait (at once if
    /// `ctx` already carries a response). The SLA runs from then.
    pub fn new(
        id: u64,
        kind: AlertKind,
        partner: &str,
        subject: &str,
        ctx: &AlertContext,
        policy: &AlertPolicy,
        now: Timestamp,
    ) -> Self {
        let send_at = match kind {
            AlertKind::Maintenance if ctx.driver_response == DriverResponse::None => {
                now.saturating_add(policy.response_wait)
            }
            _ => now,
        };
        let mut a = Self {
            id,
            kind,
            vin: ctx.vin,
            partner: partner.to_owned(),
            subject: subject.to_owned(),
            state: AlertState::Open,
            created_at: now,
            acknowledged_at: None,
            resolved_at: None,
            sla_due: send_at.saturating_add(policy.sla),
            escalated: None,
            send_at,
            payload: payload(id, kind.event(), subject, now, ctx),
            acknowledged_by: None,
            stages: vec![StageRecord {
                stage: Stage::Raised,
                step: 1,
                at: now,
                by: "cloud".into(),
                advisor: None,
                eta: None,
                note: None,
            }],
            plan: Vec::new(),
            promises: Vec::new(),
            escalated2: None,
            held_by: None,
            progress_downlink: None,
        };
        let plan = vec![Planned {
            stage: Stage::Contacted,
            within_ms: u64::try_from(policy.sla.as_millis()).unwrap_or(u64::MAX),
        }];
        a.set_plan(plan);
        a
    }

    /// The event it is first sent as.
    pub const fn event(&self) -> WebhookEvent {
        self.kind.event()
    }

    /// The SLA it was raised with.
    pub fn sla(&self) -> Duration {
        self.sla_due.saturating_since(self.send_at)
    }

    /// When the alert was answered: acknowledged, or resolved without an acknowledgement;
    /// `None` while it is open.
    pub fn answered_at(&self) -> Option<Timestamp> {
        match self.state {
            AlertState::Open => None,
            AlertState::Acknowledged | AlertState::Resolved => {
                self.acknowledged_at.or(self.resolved_at)
            }
        }
    }

    /// How the alert stands against its SLA at `now` (the module's "SLA and escalation"):
    /// answered, `met` if before `sla_due` and never escalated, else `late`; open,
    /// `escalated`, `breached` (past `sla_due`), `at_risk` (within [`AT_RISK_WITHIN`] of it)
    /// or `ok`.
    pub fn sla_state(&self, now: Timestamp) -> SlaState {
        if self.state != AlertState::Open {
            // An answered alert with no time (never written so) counts as answered now.
            let answered = self.answered_at().unwrap_or(now);
            if answered < self.sla_due && self.escalated.is_none() {
                SlaState::Met
            } else {
                SlaState::Late
            }
        } else if self.escalated.is_some() {
            SlaState::Escalated
        } else if now >= self.sla_due {
            SlaState::Breached
        } else if now.saturating_add(AT_RISK_WITHIN) >= self.sla_due {
            SlaState::AtRisk
        } else {
            SlaState::Ok
        }
    }

    /// How long ago it was raised, at `now`.
    pub fn age(&self, now: Timestamp) -> Duration {
        now.saturating_since(self.created_at)
    }

    /// While it is open, milliseconds until `sla_due` at `now` (negative once past it);
    /// `None` once answered (the SLA's outcome is final: [`Self::sla_state`]).
    pub fn sla_remaining_ms(&self, now: Timestamp) -> Option<i64> {
        if self.state != AlertState::Open {
            return None;
        }
        let due = i128::from(self.sla_due.as_millis());
        let now = i128::from(now.as_millis());
        // Both are u64 milliseconds: the difference fits an i128, and i64 for any real time.
        Some(i64::try_from(due - now).unwrap_or(if due > now { i64::MAX } else { i64::MIN }))
    }

    /// The partner the alert is with: the one that acknowledged it, else the fallback once
    /// it escalated, else its partner. A resolved alert names the one it was with.
    pub fn holder(&self) -> &str {
        if let Some(by) = &self.held_by {
            by
        } else if let Some(by) = &self.acknowledged_by {
            by
        } else if let Some(e) = &self.escalated {
            &e.to
        } else {
            &self.partner
        }
    }

    /// Open → acknowledged, by `partner` (`None`: the operator, who takes nothing over).
    ///
    /// # Errors
    /// [`AlertError::AlreadyAcknowledged`] or [`AlertError::AlreadyResolved`].
    pub fn acknowledge(&mut self, now: Timestamp, partner: Option<&str>) -> Result<(), AlertError> {
        match self.state {
            AlertState::Open => {
                let by = partner.map_or(Actor::Operator, Actor::Partner);
                self.reach(Stage::Contacted, by, None, None, None, now);
                Ok(())
            }
            AlertState::Acknowledged => Err(AlertError::AlreadyAcknowledged { id: self.id }),
            AlertState::Resolved => Err(AlertError::AlreadyResolved { id: self.id }),
        }
    }

    /// Open or acknowledged → resolved. Resolving an open alert directly is allowed (the
    /// fault cleared, the service was recorded); `acknowledged_at` then stays empty.
    ///
    /// # Errors
    /// [`AlertError::AlreadyResolved`].
    pub fn resolve(&mut self, now: Timestamp) -> Result<(), AlertError> {
        self.resolve_by(now, Actor::Cloud)
    }

    /// [`Self::resolve`], by `by` (recorded in the stage history).
    ///
    /// # Errors
    /// [`AlertError::AlreadyResolved`].
    pub fn resolve_by(&mut self, now: Timestamp, by: Actor<'_>) -> Result<(), AlertError> {
        match self.state {
            AlertState::Open | AlertState::Acknowledged => {
                self.reach(Stage::Resolved, by, None, None, None, now);
                Ok(())
            }
            AlertState::Resolved => Err(AlertError::AlreadyResolved { id: self.id }),
        }
    }

    /// Escalates to `fallback` if the alert is still open at or after its SLA and has not
    /// escalated yet; returns the escalation (then send [`Self::escalation_webhook`]). The
    /// alert stays open: the partner or the fallback acknowledges it.
    pub fn escalate(&mut self, now: Timestamp, fallback: &str) -> Option<Escalation> {
        self.miss_due(now, Some(fallback), None).1
    }

    /// The driver responded to the maintenance prompt: the payload records the response,
    /// and if the webhook has not gone yet (`now < send_at`) it goes now, the SLA moving
    /// with it. Returns the new `send_at` when it moved (re-index the alert); `None` when
    /// the webhook was already due or `response` is [`DriverResponse::None`] (nothing
    /// changes then).
    ///
    /// # Errors
    /// [`AlertError::NotMaintenance`] or [`AlertError::AlreadyResolved`].
    pub fn driver_responded(
        &mut self,
        response: DriverResponse,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, AlertError> {
        if self.kind != AlertKind::Maintenance {
            return Err(AlertError::NotMaintenance {
                id: self.id,
                kind: self.kind,
            });
        }
        if self.state == AlertState::Resolved {
            return Err(AlertError::AlreadyResolved { id: self.id });
        }
        if response == DriverResponse::None {
            return Ok(None);
        }
        if let Some(fields) = self.payload.as_object_mut() {
            fields.insert(
                "driver_response".into(),
                Value::from(response_str(response)),
            );
        }
        if now >= self.send_at {
            return Ok(None);
        }
        let sla = self.sla();
        self.send_at = now;
        self.sla_due = now.saturating_add(sla);
        self.restart_first(now);
        Ok(Some(now))
    }

    /// The partners this alert was (or will be) sent to: its recipient, and the fallback if
    /// it escalated (for [`super::partners::may_see`]).
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        core::iter::once(self.partner.as_str())
            .chain(self.escalated.as_ref().map(|e| e.to.as_str()))
            .chain(self.escalated2.as_ref().map(|e| e.to.as_str()))
    }

    /// Whether a partner may see and act on this alert (one of its [`Self::recipients`]).
    pub fn visible_to(&self, partner_id: &str) -> bool {
        self.recipients().any(|id| id == partner_id)
    }

    /// The alert's webhook to its partner: id `msg_a<id>`, body the payload.
    pub fn webhook(&self) -> AlertWebhook {
        AlertWebhook {
            id: message_id(self.id, self.event()),
            partner: self.partner.clone(),
            event: self.event(),
            body: self.payload.to_string().into_bytes(),
        }
    }

    /// The escalation's webhook, once escalated: level 1 to the fallback partner, id
    /// `msg_a<id>_esc`; level 2 (`level` 2) to the second level, id `msg_a<id>_esc2`. Body:
    /// the payload with `type` `alert.escalated` and an `escalation` object
    /// ([`ESCALATION_KEYS`]: from, to, at, sla_due, level, stage).
    pub fn escalation_webhook(&self) -> Option<AlertWebhook> {
        self.escalation_webhook_at(1)
    }

    /// The escalation webhook of `level` (1 or 2), once it happened.
    pub fn escalation_webhook_at(&self, level: u8) -> Option<AlertWebhook> {
        let escalation = if level >= 2 {
            self.escalated2.as_ref()?
        } else {
            self.escalated.as_ref()?
        };
        let from = if level >= 2 {
            self.escalated
                .as_ref()
                .map_or(self.partner.as_str(), |e| e.to.as_str())
        } else {
            self.partner.as_str()
        };
        let mut body = self.payload.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.insert("type".into(), Value::from(WebhookEvent::Escalated.as_str()));
            let mut e = Map::new();
            e.insert("from".into(), Value::from(from));
            e.insert("to".into(), Value::from(escalation.to.as_str()));
            e.insert("at".into(), Value::from(escalation.at.as_millis()));
            e.insert("sla_due".into(), Value::from(self.sla_due.as_millis()));
            e.insert("level".into(), Value::from(escalation.level.max(1)));
            e.insert(
                "stage".into(),
                Value::from(escalation.stage.unwrap_or(Stage::Contacted).as_str()),
            );
            fields.insert("escalation".into(), Value::Object(e));
        }
        let id = if level >= 2 {
            format!("msg_a{}_esc2", self.id)
        } else {
            message_id(self.id, WebhookEvent::Escalated)
        };
        Some(AlertWebhook {
            id,
            partner: escalation.to.clone(),
            event: WebhookEvent::Escalated,
            body: body.to_string().into_bytes(),
        })
    }

    /// The partners concerned, each once, with the message id suffix of each: its partner
    /// (none), the level-1 target (`_l1`), the level-2 target (`_l2`).
    fn concerned(&self) -> Vec<(&str, &'static str)> {
        let mut out: Vec<(&str, &'static str)> = vec![(self.partner.as_str(), "")];
        for (e, suffix) in [(&self.escalated, "_l1"), (&self.escalated2, "_l2")] {
            if let Some(e) = e
                && !out.iter().any(|(p, _)| *p == e.to)
            {
                out.push((e.to.as_str(), suffix));
            }
        }
        out
    }

    /// `alert.stage` webhooks of its latest stage record, one to each partner concerned
    /// (each one the alert was sent to so far): id `msg_a<id>_s<step>` to its partner,
    /// with `_l1` / `_l2` appended for the escalation targets. Body: the payload with
    /// `type` `alert.stage` and `stage` {stage, step, at, by, advisor, eta, note}.
    pub fn stage_webhooks(&self) -> Vec<AlertWebhook> {
        let Some(r) = self.stages.last() else {
            return Vec::new();
        };
        let mut body = self.payload.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.insert("type".into(), Value::from(WebhookEvent::Stage.as_str()));
            let record = serde_json::to_value(r).unwrap_or(Value::Null);
            fields.insert("stage".into(), record);
        }
        let body = body.to_string().into_bytes();
        self.concerned()
            .into_iter()
            .map(|(partner, suffix)| AlertWebhook {
                id: format!("msg_a{}_s{}{suffix}", self.id, r.step),
                partner: partner.to_owned(),
                event: WebhookEvent::Stage,
                body: body.clone(),
            })
            .collect()
    }

    /// `alert.driver_answer` webhooks, one to each partner concerned: id
    /// `msg_a<id>_ans<n>` (`n`: the answer's count on this alert, from 1) with the same
    /// suffixes as [`Self::stage_webhooks`]. Body: the payload with `type`
    /// `alert.driver_answer` and `answer` {answer, at}.
    pub fn answer_webhooks(&self, answer: &str, at: Timestamp, n: u32) -> Vec<AlertWebhook> {
        let mut body = self.payload.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.insert(
                "type".into(),
                Value::from(WebhookEvent::DriverAnswer.as_str()),
            );
            let mut a = Map::new();
            a.insert("answer".into(), Value::from(answer));
            a.insert("at".into(), Value::from(at.as_millis()));
            fields.insert("answer".into(), Value::Object(a));
        }
        let body = body.to_string().into_bytes();
        self.concerned()
            .into_iter()
            .map(|(partner, suffix)| AlertWebhook {
                id: format!("msg_a{}_ans{n}{suffix}", self.id),
                partner: partner.to_owned(),
                event: WebhookEvent::DriverAnswer,
                body: body.clone(),
            })
            .collect()
    }
}
