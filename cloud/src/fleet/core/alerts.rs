//! The alert lifecycle on one vehicle: acknowledge and resolve through the API, the webhook
//! put in the outbox when it is due, escalation when the SLA ran out.
//!
//! Owns keeping a vehicle's open alerts and their due times in step with each change. Does
//! not own the lifecycle's rules ([`crate::fleet::alerts::Alert`]) or delivery (`webhook`).

use super::{FleetError, OpenAlert, Step, Vehicle, is_resolved};
use crate::fleet::alerts::{Alert, AlertError};
use crate::fleet::store::TimelineEntry;
use crate::webhook::outbox::Message;

/// An alert transition through the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Acknowledge.
    Acknowledge,
    /// Resolve.
    Resolve,
}

impl Step<'_> {
    /// Acknowledges or resolves `alert` (one of `v`'s, as stored) for `partner` (`None`: the
    /// operator); returns it as it now stands.
    ///
    /// # Errors
    /// [`FleetError::UnknownAlert`] for an alert the partner may not see,
    /// [`FleetError::Alert`] for a transition not allowed.
    pub fn transition(
        &mut self,
        v: &mut Vehicle,
        alert: Alert,
        partner: Option<&str>,
        what: Transition,
    ) -> Result<Alert, FleetError> {
        let now = self.now;
        let id = alert.id;
        let mut open = match v.alerts.get(&id) {
            Some(o) => o.clone(),
            None => OpenAlert {
                alert,
                send_due: None,
                sla_due: None,
            },
        };
        if let Some(p) = partner
            && !open.alert.visible_to(p)
        {
            return Err(FleetError::UnknownAlert(id));
        }
        let (event, done): (&str, Result<(), AlertError>) = match what {
            Transition::Acknowledge => ("acknowledged", open.alert.acknowledge(now, partner)),
            Transition::Resolve => ("resolved", open.alert.resolve(now)),
        };
        done?;
        open.sla_due = None;
        let by = partner.unwrap_or("operator");
        self.out.timeline(
            now,
            TimelineEntry::Alert {
                id,
                event: event.into(),
                detail: format!("by {by}"),
            },
        );
        if is_resolved(&open.alert) {
            v.alerts.remove(&id);
            self.out.resolved(&open.alert);
        } else {
            self.out.alert(&open);
            v.alerts.insert(id, open.clone());
        }
        Ok(open.alert)
    }

    /// Puts an alert's webhook in the outbox.
    pub(super) fn send(&mut self, alert: &Alert) {
        let hook = alert.webhook();
        self.out.webhooks.push(Message::new(
            hook.id,
            hook.partner,
            hook.event.as_str(),
            hook.body,
            self.now,
        ));
    }

    /// Escalates alert `id` of `v` to the fallback partner (its SLA ran out).
    pub(super) fn escalate(&mut self, v: &mut Vehicle, id: u64) {
        let now = self.now;
        let Some(mut open) = v.alerts.get(&id).cloned() else {
            return;
        };
        let Some(fallback) = self.rules.directory.fallback().map(|p| p.id.clone()) else {
            tracing::warn!(id, "SLA ran out but no fallback partner is configured");
            return;
        };
        let Some(escalation) = open.alert.escalate(now, &fallback) else {
            return;
        };
        self.out.stats.alerts_escalated += 1;
        self.out.timeline(
            now,
            TimelineEntry::Alert {
                id,
                event: "escalated".into(),
                detail: format!(
                    "not acknowledged by {} within its SLA; sent to {}",
                    open.alert.partner, escalation.to
                ),
            },
        );
        tracing::warn!(id, vin = %open.alert.vin, from = %open.alert.partner, to = %escalation.to, "alert escalated");
        if let Some(hook) = open.alert.escalation_webhook() {
            self.out.webhooks.push(Message::new(
                hook.id,
                hook.partner,
                hook.event.as_str(),
                hook.body,
                now,
            ));
        }
        self.out.alert(&open);
        v.alerts.insert(id, open);
    }
}

/// The alert id of a webhook message id (`msg_a<id>` or `msg_a<id>_esc`).
pub fn alert_id_of_message(id: &str) -> Option<u64> {
    let rest = id.strip_prefix("msg_a")?;
    let digits = rest.split('_').next()?;
    digits.parse().ok()
}
