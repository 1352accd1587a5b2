//! What each party saw, as it happened: the story the testbed prints live and the end-to-end
//! tests assert on. Every event carries the simulated time it happened at and who saw it.

use rapport_shared::{Timestamp, Vin};

use super::cast::local_label;

/// One thing someone saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When (simulated wall time).
    pub at: Timestamp,
    /// The vehicle it is about, if one.
    pub vin: Option<Vin>,
    /// Who saw it: a driver's name, a partner id, `cloud`, `bus`.
    pub who: String,
    /// What.
    pub what: What,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// The truth on the bus: a simulated ECU starts or stops reporting a fault.
    Fault {
        /// What fault.
        name: String,
        /// Appeared (true) or cleared (false).
        appeared: bool,
    },
    /// A prompt appeared on the head unit's screen.
    PromptShown {
        /// The prompt's id.
        id: String,
        /// Its kind (`maintenance`, `fault`, `break_in`, ...).
        kind: String,
        /// Shown as critical (even while driving).
        critical: bool,
        /// Its title.
        title: String,
        /// Its text.
        text: String,
    },
    /// The driver acted on a prompt.
    DriverActed {
        /// The prompt's id.
        id: String,
        /// Its kind.
        kind: String,
        /// What the driver pressed (`ack`, `book`, `snooze 60 min`, `dismiss`).
        action: String,
        /// Whether the head unit took it (false: refused, with why in `action`).
        accepted: bool,
    },
    /// A prompt left the screen for good (acted on, or its condition went away).
    PromptClosed {
        /// The prompt's id.
        id: String,
        /// Its state now.
        state: String,
    },
    /// A partner's receiver got a signed webhook and verified it.
    Webhook {
        /// The event type (`alert.created`, `alert.escalated`).
        event_type: String,
        /// The alert's id.
        alert_id: String,
        /// The alert's kind (`maintenance`, `critical_fault`, ...).
        kind: String,
        /// Its subject (item, code).
        subject: String,
        /// Whether the signature checked out.
        verified: bool,
    },
    /// A partner acknowledged an alert through the API.
    Acknowledged {
        /// The alert's id.
        alert_id: String,
        /// Minutes after the webhook arrived.
        after_min: u64,
        /// The API's status code.
        status: u16,
    },
    /// The dealer's workshop recorded a service (sent to the car by the cloud).
    ServiceRecorded {
        /// Items done.
        items: Vec<String>,
        /// The API's status code.
        status: u16,
    },
    /// The cloud moved a driver to another layer.
    LayerChanged {
        /// Which axis (`activity`, `service_maturity`, `car_maturity`, `lifecycle`).
        axis: String,
        /// From (empty when first placed).
        from: String,
        /// To.
        to: String,
    },
}

impl Event {
    /// One readable line for the live log.
    pub fn line(&self, names: &dyn Fn(&Vin) -> String) -> String {
        let when = local_label(self.at);
        let car = self.vin.as_ref().map(names).unwrap_or_default();
        let body = match &self.what {
            What::Fault { name, appeared } => {
                if *appeared {
                    format!("bus      {car}'s ECU reports {name}")
                } else {
                    format!("bus      {car}'s ECU: {name}")
                }
            }
            What::PromptShown {
                kind,
                critical,
                title,
                text,
                ..
            } => {
                let mark = if *critical { "CRITICAL " } else { "" };
                format!("screen   {car} sees {mark}[{kind}] {title}: {text}")
            }
            What::DriverActed {
                kind,
                action,
                accepted,
                ..
            } => {
                if *accepted {
                    format!("driver   {car} taps {action} on the {kind} prompt")
                } else {
                    format!("driver   {car} tries {action} on the {kind} prompt: refused")
                }
            }
            What::PromptClosed { id, state } => format!("screen   {car}: prompt {id} {state}"),
            What::Webhook {
                event_type,
                alert_id,
                kind,
                subject,
                verified,
            } => {
                let v = if *verified {
                    "signature ok"
                } else {
                    "BAD SIGNATURE"
                };
                format!(
                    "partner  {} receives {event_type} {alert_id}: {kind} {subject} for {car} ({v})",
                    self.who
                )
            }
            What::Acknowledged {
                alert_id,
                after_min,
                status,
            } => format!(
                "partner  {} acknowledges {alert_id} after {after_min} min (HTTP {status})",
                self.who
            ),
            What::ServiceRecorded { items, status } => format!(
                "workshop {} records service [{}] on {car} (HTTP {status})",
                self.who,
                items.join(", ")
            ),
            What::LayerChanged { axis, from, to } => {
                if from.is_empty() {
                    format!("cloud    {car} placed: {axis} {to}")
                } else {
                    format!("cloud    {car}: {axis} {from} -> {to}")
                }
            }
        };
        format!("{when}  {body}")
    }
}
