//! Partner alerts: what a partner is told about a vehicle, when, and what became of it.
//!
//! Owns [`Alert`] (its lifecycle open → acknowledged → resolved, SLA escalation, when its
//! webhook is due), the JSON payload partners receive ([`payload`]), the webhook event types
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
//! The SLA runs from `send_at` (a partner cannot answer an alert it has not been sent):
//! `sla_due = send_at + sla`. An alert still open at `sla_due` escalates once to the fallback
//! partner ([`Alert::escalate`]), with its own event (`alert.escalated`) and message id.
//!
//! # Data minimisation
//! Only what the partner needs to act leaves the cloud: the payload's keys are exactly
//! [`PAYLOAD_KEYS`] (alert id, event type, creation time, subject, VIN, vehicle line, category,
//! odometer, the due checklist, active faults, the driver's response, the layer and the
//! suggestion). [`AlertContext`] has no place for anything else, so consents, prompt texts,
//! raw records, engine-hours history and position cannot leak into it.

use core::fmt;
use std::time::Duration;

use rapport_shared::{MaintenanceStatus, Severity, Timestamp, Vin};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    "driver_response",
    "layer",
    "suggestion",
];

/// The keys an `alert.escalated` body adds to the alert's payload (under `escalation`).
pub const ESCALATION_KEYS: &[&str] = &["from", "to", "at", "sla_due"];

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
pub enum AlertState {
    /// Raised; nobody has taken it on.
    Open,
    /// A partner has taken it on.
    Acknowledged,
    /// Done.
    Resolved,
}

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
}

impl WebhookEvent {
    /// The event type's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaintenanceDue => "alert.maintenance_due",
            Self::CriticalFault => "alert.critical_fault",
            Self::PartnerTask => "alert.partner_task",
            Self::Escalated => "alert.escalated",
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
/// same id, so a retry or a restart never sends it under another one.
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
    /// The driver's latest response to the prompt.
    pub driver_response: DriverResponse,
    /// Where the driver sits.
    pub layers: Layers,
    /// What the partner should do, for people (depends on the layer).
    pub suggestion: String,
}

/// An alert's escalation to the fallback partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// The fallback partner's id.
    pub to: String,
    /// When it escalated.
    pub at: Timestamp,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique, given by the caller.
    pub id: u64,
    /// What it is about.
    pub kind: AlertKind,
    /// The vehicle.
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
        Self {
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
        }
    }

    /// The event it is first sent as.
    pub const fn event(&self) -> WebhookEvent {
        self.kind.event()
    }

    /// The SLA it was raised with.
    pub fn sla(&self) -> Duration {
        self.sla_due.saturating_since(self.send_at)
    }

    /// Open → acknowledged.
    ///
    /// # Errors
    /// [`AlertError::AlreadyAcknowledged`] or [`AlertError::AlreadyResolved`].
    pub fn acknowledge(&mut self, now: Timestamp) -> Result<(), AlertError> {
        match self.state {
            AlertState::Open => {
                self.state = AlertState::Acknowledged;
                self.acknowledged_at = Some(now);
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
        match self.state {
            AlertState::Open | AlertState::Acknowledged => {
                self.state = AlertState::Resolved;
                self.resolved_at = Some(now);
                Ok(())
            }
            AlertState::Resolved => Err(AlertError::AlreadyResolved { id: self.id }),
        }
    }

    /// Escalates to `fallback` if the alert is still open at or after its SLA and has not
    /// escalated yet; returns the escalation (then send [`Self::escalation_webhook`]). The
    /// alert stays open: the partner or the fallback acknowledges it.
    pub fn escalate(&mut self, now: Timestamp, fallback: &str) -> Option<Escalation> {
        if self.state != AlertState::Open || self.escalated.is_some() || now < self.sla_due {
            return None;
        }
        let escalation = Escalation {
            to: fallback.to_owned(),
            at: now,
        };
        self.escalated = Some(escalation.clone());
        Some(escalation)
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
        Ok(Some(now))
    }

    /// The partners this alert was (or will be) sent to: its recipient, and the fallback if
    /// it escalated (for [`super::partners::may_see`]).
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        core::iter::once(self.partner.as_str())
            .chain(self.escalated.as_ref().map(|e| e.to.as_str()))
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

    /// The escalation's webhook to the fallback partner, once escalated: id
    /// `msg_a<id>_esc`, body the payload with `type` `alert.escalated` and an `escalation`
    /// object ([`ESCALATION_KEYS`]: from, to, at, sla_due).
    pub fn escalation_webhook(&self) -> Option<AlertWebhook> {
        let escalation = self.escalated.as_ref()?;
        let mut body = self.payload.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.insert("type".into(), Value::from(WebhookEvent::Escalated.as_str()));
            let mut e = Map::new();
            e.insert("from".into(), Value::from(self.partner.as_str()));
            e.insert("to".into(), Value::from(escalation.to.as_str()));
            e.insert("at".into(), Value::from(escalation.at.as_millis()));
            e.insert("sla_due".into(), Value::from(self.sla_due.as_millis()));
            fields.insert("escalation".into(), Value::Object(e));
        }
        Some(AlertWebhook {
            id: message_id(self.id, WebhookEvent::Escalated),
            partner: escalation.to.clone(),
            event: WebhookEvent::Escalated,
            body: body.to_string().into_bytes(),
        })
    }
}

const fn response_str(response: DriverResponse) -> &'static str {
    match response {
        DriverResponse::None => "none",
        DriverResponse::Acknowledged => "acknowledged",
        DriverResponse::Snoozed => "snoozed",
        DriverResponse::Dismissed => "dismissed",
        DriverResponse::Booked => "booked",
    }
}

/// The payload partners receive for an alert: exactly [`PAYLOAD_KEYS`]. Times are unix
/// milliseconds, as everywhere in the API; absent due values are `null`. Checklist items
/// carry `item`, `status`, `due_odometer_km`, `due_date`; faults `code`, `severity`, `since`;
/// `layer` the five axes (`category`, `car`, `service`, `activity`, `lifecycle`).
pub fn payload(
    alert_id: u64,
    event: WebhookEvent,
    subject: &str,
    created_at: Timestamp,
    ctx: &AlertContext,
) -> Value {
    let checklist = ctx
        .checklist
        .iter()
        .map(|c| {
            let mut item = Map::new();
            item.insert("item".into(), Value::from(c.item.as_str()));
            item.insert("status".into(), Value::from(c.status.as_str()));
            item.insert("due_odometer_km".into(), Value::from(c.due_odometer_km));
            item.insert(
                "due_date".into(),
                Value::from(c.due_date.map(Timestamp::as_millis)),
            );
            Value::Object(item)
        })
        .collect::<Vec<_>>();
    let faults = ctx
        .active_faults
        .iter()
        .map(|f| {
            let mut fault = Map::new();
            fault.insert("code".into(), Value::from(f.code.as_str()));
            fault.insert("severity".into(), Value::from(f.severity.as_str()));
            fault.insert("since".into(), Value::from(f.since.as_millis()));
            Value::Object(fault)
        })
        .collect::<Vec<_>>();
    let l = &ctx.layers;
    let mut layer = Map::new();
    layer.insert("category".into(), Value::from(l.category.as_str()));
    layer.insert("car".into(), Value::from(l.car.as_str()));
    layer.insert("service".into(), Value::from(l.service.as_str()));
    layer.insert("activity".into(), Value::from(l.activity.as_str()));
    layer.insert("lifecycle".into(), Value::from(l.lifecycle.as_str()));

    let mut p = Map::new();
    p.insert("type".into(), Value::from(event.as_str()));
    p.insert("alert_id".into(), Value::from(alert_id));
    p.insert("created_at".into(), Value::from(created_at.as_millis()));
    p.insert("subject".into(), Value::from(subject));
    p.insert("vin".into(), Value::from(ctx.vin.as_str()));
    p.insert("line".into(), Value::from(ctx.line.as_str()));
    p.insert("category".into(), Value::from(ctx.category.as_str()));
    p.insert("odometer_km".into(), Value::from(ctx.odometer_km));
    p.insert("checklist".into(), Value::Array(checklist));
    p.insert("active_faults".into(), Value::Array(faults));
    p.insert(
        "driver_response".into(),
        Value::from(response_str(ctx.driver_response)),
    );
    p.insert("layer".into(), Value::Object(layer));
    p.insert("suggestion".into(), Value::from(ctx.suggestion.as_str()));
    Value::Object(p)
}

/// `payload` as a JSON value in human-readable formats, as JSON text in compact ones.
mod payload_serde {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};
    use serde_json::Value;

    pub(super) fn serialize<S: Serializer>(value: &Value, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            value.serialize(s)
        } else {
            s.serialize_str(&value.to_string())
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            Value::deserialize(d)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text).map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use super::*;
    use crate::fleet::model::{Activity, CarMaturity, Lifecycle, ServiceMaturity};

    const T0: Timestamp = Timestamp::from_millis(1_760_000_000_000);
    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;

    fn at(offset_ms: u64) -> Timestamp {
        Timestamp::from_millis(T0.as_millis() + offset_ms)
    }

    fn ctx(response: DriverResponse) -> AlertContext {
        AlertContext {
            vin: "WVWZZZ1JZXW000001".parse().unwrap(),
            line: "e-compact 2025".into(),
            category: Category::Passenger,
            odometer_km: 14_950,
            checklist: vec![
                ChecklistItem {
                    item: "oil".into(),
                    status: ChecklistStatus::Due,
                    due_odometer_km: Some(15_000),
                    due_date: None,
                },
                ChecklistItem {
                    item: "brake_fluid".into(),
                    status: ChecklistStatus::Overdue,
                    due_odometer_km: None,
                    due_date: Some(Timestamp::from_millis(1_759_000_000_000)),
                },
            ],
            active_faults: vec![Fault {
                code: "P0300".into(),
                severity: Severity::Warning,
                since: Timestamp::from_millis(1_759_500_000_000),
            }],
            driver_response: response,
            layers: Layers {
                category: Category::Passenger,
                car: CarMaturity::Skilled,
                service: ServiceMaturity::Growing,
                activity: Activity::Declining,
                lifecycle: Lifecycle::Retained,
            },
            suggestion: "declining driver: a personal call is recommended".into(),
        }
    }

    fn alert(kind: AlertKind, response: DriverResponse) -> Alert {
        Alert::new(
            7,
            kind,
            "dealer-north",
            "oil",
            &ctx(response),
            &AlertPolicy::default(),
            T0,
        )
    }

    fn keys(value: &Value) -> BTreeSet<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
        items.iter().copied().collect()
    }

    #[test]
    fn critical_fault_and_partner_task_go_at_once_with_the_sla_from_then() {
        for kind in [AlertKind::CriticalFault, AlertKind::PartnerTask] {
            let a = alert(kind, DriverResponse::None);
            assert_eq!(a.send_at, T0);
            assert_eq!(a.sla_due, at(HOUR));
            assert_eq!(a.sla(), Duration::from_secs(3600));
            assert_eq!(
                (a.state, a.created_at, a.escalated.clone()),
                (AlertState::Open, T0, None)
            );
        }
        let policy = AlertPolicy {
            sla: Duration::from_secs(15 * 60),
            ..AlertPolicy::default()
        };
        let a = Alert::new(
            1,
            AlertKind::CriticalFault,
            "p",
            "P0300",
            &ctx(DriverResponse::None),
            &policy,
            T0,
        );
        assert_eq!(a.sla_due, at(15 * MIN));
    }

    #[test]
    fn maintenance_waits_for_the_drivers_response_at_most_the_policys_wait() {
        let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
        assert_eq!(a.send_at, at(24 * HOUR));
        assert_eq!(a.sla_due, at(25 * HOUR));
        assert_eq!(a.payload["driver_response"], "none");

        // No response is no news.
        assert_eq!(a.driver_responded(DriverResponse::None, at(HOUR)), Ok(None));
        assert_eq!(a.send_at, at(24 * HOUR));

        // The driver books two hours in: the dealer is told now, and the SLA runs from now.
        assert_eq!(
            a.driver_responded(DriverResponse::Booked, at(2 * HOUR)),
            Ok(Some(at(2 * HOUR)))
        );
        assert_eq!((a.send_at, a.sla_due), (at(2 * HOUR), at(3 * HOUR)));
        assert_eq!(a.payload["driver_response"], "booked");
        assert_eq!(a.webhook().body, a.payload.to_string().into_bytes());

        // A later response updates what the API shows; the webhook already went.
        assert_eq!(
            a.driver_responded(DriverResponse::Snoozed, at(5 * HOUR)),
            Ok(None)
        );
        assert_eq!((a.send_at, a.sla_due), (at(2 * HOUR), at(3 * HOUR)));
        assert_eq!(a.payload["driver_response"], "snoozed");

        // Raised after the driver already responded: at once.
        let b = alert(AlertKind::Maintenance, DriverResponse::Dismissed);
        assert_eq!((b.send_at, b.sla_due), (T0, at(HOUR)));
        assert_eq!(b.payload["driver_response"], "dismissed");
    }

    #[test]
    fn a_response_after_the_wait_does_not_move_send_at() {
        let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
        assert_eq!(
            a.driver_responded(DriverResponse::Acknowledged, at(24 * HOUR)),
            Ok(None)
        );
        assert_eq!(a.send_at, at(24 * HOUR));
        assert_eq!(a.payload["driver_response"], "acknowledged");
    }

    #[test]
    fn only_a_live_maintenance_alert_takes_a_response() {
        let mut fault = alert(AlertKind::CriticalFault, DriverResponse::None);
        assert_eq!(
            fault.driver_responded(DriverResponse::Booked, T0),
            Err(AlertError::NotMaintenance {
                id: 7,
                kind: AlertKind::CriticalFault
            })
        );
        assert_eq!(fault.payload["driver_response"], "none");
        let mut done = alert(AlertKind::Maintenance, DriverResponse::None);
        done.resolve(at(MIN)).unwrap();
        assert_eq!(
            done.driver_responded(DriverResponse::Booked, at(2 * MIN)),
            Err(AlertError::AlreadyResolved { id: 7 })
        );
        assert_eq!(done.send_at, at(24 * HOUR));
    }

    #[test]
    fn lifecycle_open_acknowledged_resolved() {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        assert_eq!(a.acknowledge(at(MIN)), Ok(()));
        assert_eq!(
            (a.state, a.acknowledged_at),
            (AlertState::Acknowledged, Some(at(MIN)))
        );
        assert_eq!(
            a.acknowledge(at(2 * MIN)),
            Err(AlertError::AlreadyAcknowledged { id: 7 })
        );
        assert_eq!(a.acknowledged_at, Some(at(MIN)));
        assert_eq!(a.resolve(at(3 * MIN)), Ok(()));
        assert_eq!(
            (a.state, a.resolved_at),
            (AlertState::Resolved, Some(at(3 * MIN)))
        );
        assert_eq!(
            a.resolve(at(4 * MIN)),
            Err(AlertError::AlreadyResolved { id: 7 })
        );
        assert_eq!(
            a.acknowledge(at(4 * MIN)),
            Err(AlertError::AlreadyResolved { id: 7 })
        );
        assert_eq!(a.resolved_at, Some(at(3 * MIN)));
        assert_eq!(
            AlertError::AlreadyAcknowledged { id: 7 }.to_string(),
            "alert 7 is already acknowledged"
        );
    }

    #[test]
    fn an_open_alert_may_be_resolved_directly() {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        assert_eq!(a.resolve(at(MIN)), Ok(()));
        assert_eq!(
            (a.state, a.acknowledged_at, a.resolved_at),
            (AlertState::Resolved, None, Some(at(MIN)))
        );
    }

    #[test]
    fn escalation_exactly_at_the_sla_and_only_once() {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        assert_eq!(a.escalate(at(HOUR - 1), "oem-desk"), None);
        assert_eq!(a.escalated, None);
        let e = a.escalate(at(HOUR), "oem-desk").unwrap();
        assert_eq!(
            e,
            Escalation {
                to: "oem-desk".into(),
                at: at(HOUR)
            }
        );
        assert_eq!(a.escalated, Some(e));
        assert_eq!(a.state, AlertState::Open);
        assert_eq!(a.escalate(at(2 * HOUR), "oem-desk"), None);
        assert_eq!(a.escalated.as_ref().map(|e| e.at), Some(at(HOUR)));
        // Still open: it can be acknowledged late.
        assert_eq!(a.acknowledge(at(2 * HOUR)), Ok(()));
    }

    #[test]
    fn no_escalation_once_acknowledged_or_resolved() {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        a.acknowledge(at(HOUR - 1)).unwrap();
        assert_eq!(a.escalate(at(HOUR), "oem-desk"), None);
        assert_eq!(a.escalate(at(100 * HOUR), "oem-desk"), None);
        let mut b = alert(AlertKind::PartnerTask, DriverResponse::None);
        b.resolve(at(MIN)).unwrap();
        assert_eq!(b.escalate(at(HOUR), "oem-desk"), None);
        assert!(a.escalated.is_none() && b.escalated.is_none());
    }

    #[test]
    fn a_maintenance_sla_runs_from_send_at() {
        let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
        assert_eq!(a.escalate(at(HOUR), "oem-desk"), None);
        assert_eq!(a.escalate(at(25 * HOUR - 1), "oem-desk"), None);
        assert!(a.escalate(at(25 * HOUR), "oem-desk").is_some());
    }

    #[test]
    fn message_ids_are_stable_per_alert_and_event() {
        assert_eq!(message_id(7, WebhookEvent::MaintenanceDue), "msg_a7");
        assert_eq!(message_id(7, WebhookEvent::CriticalFault), "msg_a7");
        assert_eq!(message_id(7, WebhookEvent::Escalated), "msg_a7_esc");
        assert_ne!(
            message_id(7, WebhookEvent::PartnerTask),
            message_id(70, WebhookEvent::PartnerTask)
        );

        let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
        let first = a.webhook();
        assert_eq!(
            (first.id.as_str(), first.partner.as_str()),
            ("msg_a7", "dealer-north")
        );
        assert_eq!(first.event, WebhookEvent::MaintenanceDue);
        a.driver_responded(DriverResponse::Booked, at(MIN)).unwrap();
        a.acknowledge(at(2 * MIN)).unwrap();
        assert_eq!(a.webhook().id, first.id);
        let stored: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(stored.webhook().id, "msg_a7");

        for (event, name) in [
            (WebhookEvent::MaintenanceDue, "alert.maintenance_due"),
            (WebhookEvent::CriticalFault, "alert.critical_fault"),
            (WebhookEvent::PartnerTask, "alert.partner_task"),
            (WebhookEvent::Escalated, "alert.escalated"),
        ] {
            assert_eq!(event.as_str(), name);
            assert_eq!(serde_json::to_value(event).unwrap(), name);
        }
        assert_eq!(
            AlertKind::CriticalFault.event(),
            WebhookEvent::CriticalFault
        );
        assert_eq!(AlertKind::PartnerTask.event(), WebhookEvent::PartnerTask);
    }

    #[test]
    fn payload_has_exactly_the_documented_keys() {
        let a = alert(AlertKind::Maintenance, DriverResponse::Booked);
        let p = &a.payload;
        let expected = set(&[
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
            "driver_response",
            "layer",
            "suggestion",
        ]);
        assert_eq!(keys(p), expected);
        assert_eq!(set(PAYLOAD_KEYS), expected);
        assert_eq!(p["type"], "alert.maintenance_due");
        assert_eq!(p["alert_id"], 7);
        assert_eq!(p["created_at"], T0.as_millis());
        assert_eq!(p["subject"], "oil");
        assert_eq!(p["vin"], "WVWZZZ1JZXW000001");
        assert_eq!(p["line"], "e-compact 2025");
        assert_eq!(p["category"], "passenger");
        assert_eq!(p["odometer_km"], 14_950);
        assert_eq!(p["driver_response"], "booked");
        assert_eq!(
            p["suggestion"],
            "declining driver: a personal call is recommended"
        );

        let checklist = p["checklist"].as_array().unwrap();
        assert_eq!(checklist.len(), 2);
        for item in checklist {
            assert_eq!(
                keys(item),
                set(&["item", "status", "due_odometer_km", "due_date"])
            );
        }
        assert_eq!(checklist[0]["item"], "oil");
        assert_eq!(checklist[0]["status"], "due");
        assert_eq!(checklist[0]["due_odometer_km"], 15_000);
        assert!(checklist[0]["due_date"].is_null());
        assert_eq!(checklist[1]["status"], "overdue");
        assert!(checklist[1]["due_odometer_km"].is_null());
        assert_eq!(checklist[1]["due_date"], 1_759_000_000_000_u64);

        let faults = p["active_faults"].as_array().unwrap();
        assert_eq!(faults.len(), 1);
        assert_eq!(keys(&faults[0]), set(&["code", "severity", "since"]));
        assert_eq!(faults[0]["code"], "P0300");
        assert_eq!(faults[0]["severity"], "warning");
        assert_eq!(faults[0]["since"], 1_759_500_000_000_u64);

        assert_eq!(
            p["layer"],
            serde_json::json!({
                "category": "passenger", "car": "skilled", "service": "growing",
                "activity": "declining", "lifecycle": "retained"
            })
        );
        // The layer as the model serialises it: the same spellings.
        assert_eq!(
            p["layer"],
            serde_json::to_value(ctx(DriverResponse::None).layers).unwrap()
        );
        // The body sent is the payload.
        let body: Value = serde_json::from_slice(&a.webhook().body).unwrap();
        assert_eq!(&body, p);
    }

    #[test]
    fn empty_checklist_and_faults_are_empty_arrays() {
        let mut c = ctx(DriverResponse::None);
        c.checklist.clear();
        c.active_faults.clear();
        let p = payload(9, WebhookEvent::PartnerTask, "mature_churned_call", T0, &c);
        assert_eq!(keys(&p), set(PAYLOAD_KEYS));
        assert_eq!(p["checklist"], serde_json::json!([]));
        assert_eq!(p["active_faults"], serde_json::json!([]));
        assert_eq!(p["type"], "alert.partner_task");
    }

    #[test]
    fn the_escalation_webhook_goes_to_the_fallback_under_its_own_id() {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        assert_eq!(a.escalation_webhook(), None);
        a.escalate(at(HOUR), "oem-desk").unwrap();
        let w = a.escalation_webhook().unwrap();
        assert_eq!(
            (w.id.as_str(), w.partner.as_str()),
            ("msg_a7_esc", "oem-desk")
        );
        assert_eq!(w.event, WebhookEvent::Escalated);
        let body: Value = serde_json::from_slice(&w.body).unwrap();
        let mut expected = set(PAYLOAD_KEYS);
        expected.insert("escalation");
        assert_eq!(keys(&body), expected);
        assert_eq!(body["type"], "alert.escalated");
        assert_eq!(keys(&body["escalation"]), set(ESCALATION_KEYS));
        assert_eq!(body["escalation"]["from"], "dealer-north");
        assert_eq!(body["escalation"]["to"], "oem-desk");
        assert_eq!(body["escalation"]["at"], at(HOUR).as_millis());
        assert_eq!(body["escalation"]["sla_due"], at(HOUR).as_millis());
        assert_eq!(body["checklist"], a.payload["checklist"]);
        // The alert's own webhook is unchanged.
        assert_eq!(a.webhook().event, WebhookEvent::CriticalFault);
        assert_eq!(a.payload["type"], "alert.critical_fault");
        assert_eq!(a.escalation_webhook(), Some(w));
    }

    #[test]
    fn recipients_are_the_partner_and_the_escalation_target() {
        let mut a = alert(AlertKind::CriticalFault, DriverResponse::None);
        assert_eq!(a.recipients().collect::<Vec<_>>(), ["dealer-north"]);
        assert!(a.visible_to("dealer-north") && !a.visible_to("oem-desk"));
        a.escalate(at(HOUR), "oem-desk").unwrap();
        assert_eq!(
            a.recipients().collect::<Vec<_>>(),
            ["dealer-north", "oem-desk"]
        );
        assert!(a.visible_to("oem-desk") && !a.visible_to("prov-b"));
    }

    #[test]
    fn a_stored_alert_round_trips_in_json_and_postcard() {
        let mut a = alert(AlertKind::Maintenance, DriverResponse::None);
        a.driver_responded(DriverResponse::Booked, at(MIN)).unwrap();
        a.escalate(at(HOUR + MIN), "oem-desk").unwrap();
        a.acknowledge(at(2 * HOUR)).unwrap();

        let json = serde_json::to_value(&a).unwrap();
        // In JSON the payload is an object, not a string.
        assert_eq!(json["payload"]["vin"], "WVWZZZ1JZXW000001");
        assert_eq!(json["kind"], "maintenance");
        assert_eq!(json["state"], "acknowledged");
        assert_eq!(serde_json::from_value::<Alert>(json).unwrap(), a);

        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Alert>(&bytes).unwrap(), a);

        let resolved = {
            let mut r = a.clone();
            r.resolve(at(3 * HOUR)).unwrap();
            r
        };
        let text = serde_json::to_string(&resolved).unwrap();
        assert_eq!(serde_json::from_str::<Alert>(&text).unwrap(), resolved);
    }

    #[test]
    fn checklist_status_comes_from_the_cars_maintenance_status() {
        assert_eq!(
            ChecklistStatus::from_maintenance(MaintenanceStatus::DueSoon),
            Some(ChecklistStatus::DueSoon)
        );
        assert_eq!(
            ChecklistStatus::from_maintenance(MaintenanceStatus::Due),
            Some(ChecklistStatus::Due)
        );
        assert_eq!(
            ChecklistStatus::from_maintenance(MaintenanceStatus::Overdue),
            Some(ChecklistStatus::Overdue)
        );
        assert_eq!(
            ChecklistStatus::from_maintenance(MaintenanceStatus::Done),
            None
        );
        assert_eq!(
            serde_json::to_value(ChecklistStatus::DueSoon).unwrap(),
            "due_soon"
        );
    }
}
