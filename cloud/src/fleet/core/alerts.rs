//! The alert lifecycle on the fleet: acknowledge and resolve through the API, the webhook
//! put in the outbox when it is due, escalation when the SLA ran out, and webhook outcomes
//! noted on the timeline.
//!
//! Owns keeping the open alerts and their time indexes in step with each change. Does not own
//! the lifecycle's rules ([`crate::fleet::alerts::Alert`]) or delivery (`webhook`).

use rapport_shared::{Timestamp, Vin};

use super::{Fleet, FleetError, Writes};
use crate::fleet::alerts::{Alert, AlertError, AlertKind, AlertState};
use crate::fleet::store::TimelineEntry;
use crate::store::Batch;
use crate::webhook::outbox::{Enqueue, Message};

impl Fleet {
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
        batch: &mut Batch,
    ) -> Result<Alert, FleetError> {
        self.transition(id, partner, now, batch, "acknowledged", |a, now| {
            a.acknowledge(now, partner)
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
        batch: &mut Batch,
    ) -> Result<Alert, FleetError> {
        self.transition(id, partner, now, batch, "resolved", |a, now| a.resolve(now))
    }

    fn transition(
        &mut self,
        id: u64,
        partner: Option<&str>,
        now: Timestamp,
        batch: &mut Batch,
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
        let mut w = Writes::new(batch);
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

    pub(super) fn open_alert_for(&self, vin: &Vin, kind: AlertKind, subject: &str) -> Option<u64> {
        self.open
            .values()
            .filter(|a| a.vin == *vin && a.kind == kind && a.subject == subject)
            .map(|a| a.id)
            .next()
    }

    /// Puts an alert's webhook in the outbox (in the batch).
    pub(super) fn send(
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

    pub(super) fn escalate(
        &mut self,
        id: u64,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
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
        batch: &mut Batch,
    ) -> Result<(), FleetError> {
        let Some(id) = alert_id_of_message(message_id) else {
            return Ok(());
        };
        let Some(alert) = self.alert(id)? else {
            return Ok(());
        };
        let mut w = Writes::new(batch);
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

/// The alert id of a webhook message id (`msg_a<id>` or `msg_a<id>_esc`).
fn alert_id_of_message(id: &str) -> Option<u64> {
    let rest = id.strip_prefix("msg_a")?;
    let digits = rest.split('_').next()?;
    digits.parse().ok()
}
