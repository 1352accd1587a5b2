//! The alert lifecycle on one vehicle: stage moves through the API (acknowledge, resolve,
//! the stage route), the driver's answer from the car, the webhook put in the outbox when
//! it is due, the car told each stage (ServiceProgress), a missed promise escalated.
//!
//! Owns keeping a vehicle's open alerts and their due times in step with each change. Does
//! not own the lifecycle's rules ([`crate::fleet::alerts::Alert`]) or delivery (`webhook`).

use rapport_shared::{DownlinkBody, ServiceProgress, Timestamp};

use super::{FleetError, OpenAlert, Step, Vehicle, is_resolved};
use crate::downlink::envelope;
use crate::fleet::alerts::{Actor, Alert, AlertKind, AlertWebhook, Moved, Stage, StageMove};
use crate::fleet::store::TimelineEntry;
use crate::webhook::outbox::Message;

/// An alert transition through the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Acknowledge (contacted, without an advisor's name).
    Acknowledge,
    /// Resolve.
    Resolve,
    /// A stage move (`POST /api/v1/alerts/{id}/stage`).
    Stage(StageMove),
}

impl Step<'_> {
    /// Acknowledges, resolves or moves `alert` (one of `v`'s, as stored) for `partner`
    /// (`None`: the operator); returns it as it now stands.
    ///
    /// # Errors
    /// [`FleetError::UnknownAlert`] for an alert the partner may not see,
    /// [`FleetError::Alert`] or [`FleetError::Stage`] for a move not allowed (nothing
    /// changed then).
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
        let by = partner.map_or(Actor::Operator, Actor::Partner);
        let moved = match what {
            Transition::Acknowledge => {
                open.alert.acknowledge(now, partner)?;
                Moved::Reached
            }
            Transition::Resolve => {
                open.alert.resolve_by(now, by)?;
                Moved::Reached
            }
            Transition::Stage(mv) => open.alert.move_stage(&mv, by, now)?,
        };
        if moved == Moved::Unchanged {
            return Ok(open.alert);
        }
        self.staged(v, open, moved);
        let alert = match v.alerts.get(&id) {
            Some(o) => o.alert.clone(),
            None => self
                .out
                .alerts
                .get(&id)
                .map(|o| o.alert.clone())
                .ok_or(FleetError::UnknownAlert(id))?,
        };
        Ok(alert)
    }

    /// After `open.alert` reached a stage or revised one (its last stage record): the
    /// timeline entry, the `alert.stage` webhooks, the car's ServiceProgress, its due times,
    /// and the alert written (or retired, once final).
    pub(super) fn staged(&mut self, v: &mut Vehicle, open: OpenAlert, moved: Moved) {
        self.staged_with(v, open, moved, true);
    }

    /// [`Self::staged`] without the timeline entry (the caller wrote its own).
    pub(super) fn staged_quiet(&mut self, v: &mut Vehicle, open: OpenAlert) {
        self.staged_with(v, open, Moved::Reached, false);
    }

    fn staged_with(&mut self, v: &mut Vehicle, mut open: OpenAlert, moved: Moved, note: bool) {
        let now = self.now;
        let id = open.alert.id;
        if let Some(r) = open.alert.stages.last().filter(|_| note) {
            let mut detail = format!("by {}", r.by);
            if moved == Moved::Revised {
                detail.push_str(" (revised)");
            }
            if let Some(a) = &r.advisor {
                detail.push_str(&format!(", advisor {a}"));
            }
            if let Some(eta) = r.eta {
                detail.push_str(&format!(", eta {}", eta.as_millis()));
            }
            if let Some(n) = &r.note {
                detail.push_str(&format!(", note {n:?}"));
            }
            let event = match r.stage {
                // The lifecycle's old names stay on the timeline.
                Stage::Contacted if moved == Moved::Reached => "acknowledged".to_owned(),
                s => format!("stage {}", s.as_str()),
            };
            self.out
                .timeline(now, TimelineEntry::Alert { id, event, detail });
        }
        // A webhook not yet sent (a maintenance alert waiting for the driver) is not
        // followed by stage webhooks the partner cannot place.
        if open.send_due.is_none() {
            for hook in open.alert.stage_webhooks() {
                self.push_hook(hook);
            }
            self.progress(v, &mut open.alert);
        }
        open.sla_due = open.alert.promise_due();
        if is_resolved(&open.alert) {
            open.send_due = None;
            open.sla_due = None;
            v.alerts.remove(&id);
            self.out.resolved(&open.alert);
        } else {
            self.out.alert(&open);
            v.alerts.insert(id, open);
        }
    }

    /// Queues a ServiceProgress downlink of `alert`'s latest stage for the car (critical
    /// faults and maintenance only), superseding the one queued before for this alert.
    pub(super) fn progress(&mut self, v: &Vehicle, alert: &mut Alert) {
        if alert.kind == AlertKind::PartnerTask {
            return;
        }
        let Some(r) = alert.stages.last().cloned() else {
            return;
        };
        let holder = alert.holder().to_owned();
        let partner = self
            .rules
            .directory
            .get(&holder)
            .map_or(holder, |p| p.name.clone());
        let advisor = alert.stages.iter().rev().find_map(|s| s.advisor.clone());
        let body = DownlinkBody::ServiceProgress(ServiceProgress {
            alert_id: alert.id,
            subject: alert.subject.clone(),
            critical: alert.kind == AlertKind::CriticalFault,
            stage: r.stage.wire(),
            step: r.step,
            reached_at: r.at,
            partner,
            advisor,
            eta: r.eta,
        });
        let Ok(id) = self.ids.downlink_id() else {
            tracing::error!(alert = alert.id, "no downlink id; ServiceProgress not sent");
            return;
        };
        match envelope(v.vin, id, self.now, body).encode() {
            Ok(bytes) => {
                if let Some(old) = alert.progress_downlink.replace(id) {
                    self.out.superseded.push(old);
                }
                self.out.downlinks.push((id, bytes));
            }
            Err(e) => {
                tracing::error!(alert = alert.id, cause = %e, "ServiceProgress does not encode; not sent");
            }
        }
    }

    fn push_hook(&mut self, hook: AlertWebhook) {
        self.out.webhooks.push(Message::new(
            hook.id,
            hook.partner,
            hook.event.as_str(),
            hook.body,
            self.now,
        ));
    }

    /// Puts an alert's webhook in the outbox, and tells the car the case is raised.
    pub(super) fn send(&mut self, v: &Vehicle, alert: &mut Alert) {
        self.push_hook(alert.webhook());
        self.progress(v, alert);
    }

    /// The driver answered alert `id` from the car at `at`: `cancel` moves it to cancelled
    /// (by the driver), `left_car` reaches the partners concerned as `alert.driver_answer`;
    /// on the timeline either way. An unknown or closed alert is noted and ignored.
    pub fn driver_answer(&mut self, v: &mut Vehicle, id: u64, cancel: bool, at: Timestamp) {
        let now = self.now;
        let answer = if cancel { "cancel" } else { "left_car" };
        let Some(mut open) = v.alerts.get(&id).cloned() else {
            self.out.timeline(
                now,
                TimelineEntry::Alert {
                    id,
                    event: format!("driver answer {answer} ignored"),
                    detail: "no open alert with this id on this vehicle".into(),
                },
            );
            return;
        };
        if cancel {
            let mv = StageMove {
                stage: "cancelled".into(),
                ..StageMove::default()
            };
            match open.alert.move_stage(&mv, Actor::Driver, now) {
                Ok(Moved::Unchanged) => {}
                Ok(moved) => self.staged(v, open, moved),
                Err(e) => tracing::warn!(id, cause = %e, "driver cancel refused"),
            }
            return;
        }
        self.out.timeline(
            now,
            TimelineEntry::Alert {
                id,
                event: "driver answer left_car".into(),
                detail: format!("answered at {}", at.as_millis()),
            },
        );
        if open.send_due.is_none() {
            for hook in open.alert.answer_webhooks(answer, at, open.alert.step()) {
                self.push_hook(hook);
            }
        }
        self.out.alert(&open);
        v.alerts.insert(id, open);
    }

    /// The running promise of alert `id` of `v` ran out: missed, and escalated (level 1 to
    /// the fallback partner, level 2 to `[promises] second_level`) per the alert's rules.
    pub(super) fn escalate(&mut self, v: &mut Vehicle, id: u64) {
        let now = self.now;
        let Some(mut open) = v.alerts.get(&id).cloned() else {
            return;
        };
        let fallback = self.rules.directory.fallback().map(|p| p.id.clone());
        let second = self.rules.promises.second_level.clone();
        let (missed, escalation) = open
            .alert
            .miss_due(now, fallback.as_deref(), second.as_deref());
        if !missed {
            return;
        }
        open.sla_due = open.alert.promise_due();
        let stage = open
            .alert
            .promises
            .iter()
            .rev()
            .find(|p| p.outcome == crate::fleet::alerts::Outcome::Missed)
            .map_or("contacted", |p| p.stage.as_str());
        match escalation {
            Some(e) => {
                self.out.stats.alerts_escalated += 1;
                let level = e.level;
                self.out.timeline(
                    now,
                    TimelineEntry::Alert {
                        id,
                        event: "escalated".into(),
                        detail: format!(
                            "{stage} not reached within its promise; level {level}, sent to {}",
                            e.to
                        ),
                    },
                );
                tracing::warn!(id, vin = %open.alert.vin, level, to = %e.to, stage, "alert escalated");
                if let Some(hook) = open.alert.escalation_webhook_at(level) {
                    self.push_hook(hook);
                }
            }
            None => {
                self.out.timeline(
                    now,
                    TimelineEntry::Alert {
                        id,
                        event: "promise missed".into(),
                        detail: format!("{stage} not reached within its promise"),
                    },
                );
                if fallback.is_none() && open.alert.escalated.is_none() {
                    tracing::warn!(id, "promise missed but no fallback partner is configured");
                }
            }
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
