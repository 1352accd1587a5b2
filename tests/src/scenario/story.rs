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
    /// The driver answered a service case from the screen (`left_car`, `cancel`).
    DriverAnswered {
        /// The alert's id.
        alert_id: String,
        /// The answer.
        answer: String,
        /// Whether the head unit took it.
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
    /// A partner's receiver got a signed `alert.stage` webhook and verified it.
    StageWebhook {
        /// The webhook's message id (`msg_a<id>_s<step>`).
        message_id: String,
        /// The alert's id.
        alert_id: String,
        /// Its subject (item, code).
        subject: String,
        /// The stage reached.
        stage: String,
        /// The alert's move counter.
        step: u64,
        /// Who moved it (a partner id, `driver`, `operator`, `cloud`).
        by: String,
        /// The advisor (contacted).
        advisor: Option<String>,
        /// The ETA, unix ms (dispatched, booked).
        eta: Option<u64>,
    },
    /// A partner reported a stage through the API.
    StageReported {
        /// The alert's id.
        alert_id: String,
        /// The stage reported.
        stage: String,
        /// The advisor named (contacted).
        advisor: Option<String>,
        /// The ETA given, unix ms (dispatched, booked).
        eta: Option<u64>,
        /// The API's status code.
        status: u16,
        /// The refusal's code, if refused.
        error: Option<String>,
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

/// `, advisor Li Wei, ETA day 3 Wed 09:20` (what is known).
fn details(advisor: Option<&str>, eta: Option<u64>) -> String {
    let mut s = String::new();
    if let Some(a) = advisor {
        s.push_str(&format!(", advisor {a}"));
    }
    if let Some(eta) = eta {
        s.push_str(&format!(
            ", ETA {}",
            local_label(Timestamp::from_millis(eta))
        ));
    }
    s
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
            What::DriverAnswered {
                alert_id,
                answer,
                accepted,
            } => {
                let how = if *accepted { "" } else { ": refused" };
                format!("driver   {car} answers {answer} on service case {alert_id}{how}")
            }
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
            What::StageWebhook {
                alert_id,
                subject,
                stage,
                step,
                by,
                advisor,
                eta,
                ..
            } => format!(
                "partner  {} receives alert.stage {alert_id} #{step}: {subject} for {car} {stage} by {by}{} (signature ok)",
                self.who,
                details(advisor.as_deref(), *eta)
            ),
            What::StageReported {
                alert_id,
                stage,
                advisor,
                eta,
                status,
                error,
            } => {
                let refused = error
                    .as_deref()
                    .map(|c| format!(", refused: {c}"))
                    .unwrap_or_default();
                format!(
                    "partner  {} reports {alert_id} {stage}{} (HTTP {status}{refused})",
                    self.who,
                    details(advisor.as_deref(), *eta)
                )
            }
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
