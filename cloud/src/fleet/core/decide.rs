//! The strategies' decisions applied: campaigns encoded and queued as downlinks, partner
//! tasks opened as alerts (routed to a partner), suppressed decisions noted on the timeline,
//! in-cell re-offers scheduled, and an operator's campaign to a cell.
//!
//! Owns turning a [`Decision`] into effects and the contact history kept with them. Does not
//! own the rules ([`crate::fleet::strategy`]) or an alert's life after it opens
//! ([`super::alerts`]).

use rapport_shared::{DownlinkBody, Timestamp, Vin};

use super::{ALERT_COUNTER, Effects, Fleet, FleetError, Writes};
use crate::downlink::envelope;
use crate::fleet::alerts::{Alert, AlertContext, AlertKind, ChecklistItem, ChecklistStatus, Fault};
use crate::fleet::driver::Driver;
use crate::fleet::model::{Layers, Registration};
use crate::fleet::store::TimelineEntry;
use crate::fleet::strategy::{
    Action, ContactHistory, Decision, DriverContext, Event, Outcome, SuppressReason,
};
use crate::store::Batch;
use crate::vehicle::VehicleState;

impl Fleet {
    pub(super) fn schedule_in_cell(
        &mut self,
        vin: &Vin,
        driver: &Driver,
        now: Timestamp,
        w: &Writes<'_>,
    ) -> Result<(), FleetError> {
        let Some(layers) = self.layering.layers(vin) else {
            self.in_cell.remove(vin);
            return Ok(());
        };
        let history = self.contacts_of(vin, w)?;
        let ctx = DriverContext {
            layers,
            consents: driver.consents,
            history: &history,
        };
        match self.strategies.next_in_cell(&ctx, now) {
            Some(at) => {
                self.in_cell.set(*vin, at);
            }
            None => {
                self.in_cell.remove(vin);
            }
        }
        Ok(())
    }

    /// Strategies for an event without an alert subject of its own: partner tasks become
    /// `partner_task` alerts about their rule.
    pub(super) fn decide_and_act(
        &mut self,
        vin: &Vin,
        event: &Event,
        layers: Layers,
        driver: &Driver,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        let registration = self
            .store
            .registration(vin)?
            .unwrap_or_else(|| Registration::unregistered(*vin));
        self.decide_with_alert(event, None, &registration, None, layers, driver, now, w)
    }

    /// Runs the strategies for `event` and applies every decision; a partner task becomes
    /// an alert of `alert`'s kind and subject (`None`: a `partner_task` about the rule).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide_with_alert(
        &mut self,
        event: &Event,
        alert: Option<(AlertKind, &str)>,
        registration: &Registration,
        state: Option<&VehicleState>,
        layers: Layers,
        driver: &Driver,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        let vin = registration.vin;
        let mut history = self.contacts_of(&vin, w)?;
        let decisions = self.strategies.decide(
            event,
            &DriverContext {
                layers,
                consents: driver.consents,
                history: &history,
            },
            now,
        );
        if decisions.is_empty() {
            return Ok(());
        }
        for d in &decisions {
            let (kind, subject) = alert.unwrap_or((AlertKind::PartnerTask, d.rule.as_str()));
            self.apply_decision(
                &vin,
                d,
                &mut history,
                Some(AlertSpec {
                    kind,
                    subject: subject.to_string(),
                    registration,
                    layers,
                    driver,
                    state,
                }),
                now,
                w,
            )?;
        }
        self.put_contacts(&vin, history, w)?;
        Ok(())
    }

    fn apply_decision(
        &mut self,
        vin: &Vin,
        d: &Decision,
        history: &mut ContactHistory,
        alert: Option<AlertSpec<'_>>,
        now: Timestamp,
        w: &mut Writes<'_>,
    ) -> Result<(), FleetError> {
        match &d.outcome {
            Outcome::Suppressed { reason } => {
                self.stats.suppressed += 1;
                self.timeline(
                    vin,
                    now,
                    &TimelineEntry::Suppressed {
                        rule: d.rule.clone(),
                        reason: describe(reason),
                    },
                    w,
                )?;
            }
            Outcome::Act(Action::Nothing) => {}
            Outcome::Act(Action::Campaign { campaign }) => {
                let id = self.store_next_downlink_id()?;
                let body = DownlinkBody::Campaign(campaign.clone());
                match envelope(*vin, id, now, body).encode() {
                    Ok(bytes) => {
                        self.store.put_downlink(w.batch, id, &bytes);
                        w.fx.downlinks.push((id, *vin, bytes));
                        history.record(d, now);
                        self.stats.campaigns += 1;
                        self.timeline(
                            vin,
                            now,
                            &TimelineEntry::Strategy {
                                rule: d.rule.clone(),
                                action: format!(
                                    "campaign {} sent (downlink {id})",
                                    campaign.campaign_id
                                ),
                            },
                            w,
                        )?;
                    }
                    Err(e) => {
                        tracing::error!(%vin, rule = %d.rule, cause = %e, "campaign does not encode; not sent");
                    }
                }
            }
            Outcome::Act(Action::PartnerTask {
                target,
                task,
                suggestion,
            }) => {
                let Some(spec) = alert else {
                    return Ok(());
                };
                let partner = self
                    .directory
                    .route_or_fallback(target, spec.registration)
                    .map(|p| p.id.clone());
                let Some(partner) = partner else {
                    self.stats.suppressed += 1;
                    self.timeline(
                        vin,
                        now,
                        &TimelineEntry::Suppressed {
                            rule: d.rule.clone(),
                            reason: format!("no partner for {target:?} and no fallback partner"),
                        },
                        w,
                    )?;
                    return Ok(());
                };
                history.record(d, now);
                let ctx = alert_context(&spec, suggestion);
                self.next_alert += 1;
                let id = self.next_alert;
                self.store.put_counter(w.batch, ALERT_COUNTER, id);
                let alert = Alert::new(
                    id,
                    spec.kind,
                    &partner,
                    &spec.subject,
                    &ctx,
                    &self.policy,
                    now,
                );
                self.stats.alerts_opened += 1;
                self.timeline(
                    vin,
                    now,
                    &TimelineEntry::Alert {
                        id,
                        event: "opened".into(),
                        detail: format!("{} for {partner}: {task}", alert.event().as_str()),
                    },
                    w,
                )?;
                tracing::info!(%vin, id, partner = %partner, kind = alert.event().as_str(), "alert opened");
                self.store.put_alert(w.batch, id, vin, &alert)?;
                self.sla_due.set(id, alert.sla_due);
                self.open.insert(id, alert.clone());
                if alert.send_at <= now {
                    self.send(&alert, now, w)?;
                } else {
                    self.send_due.set(id, alert.send_at);
                }
            }
        }
        Ok(())
    }

    /// Sends an operator's campaign to every driver in a cell who may get it (consent,
    /// cadence, caps apply as for strategies: an operator cannot spam either). Returns how many
    /// got it and how many were held back. Writes into `batch`.
    ///
    /// # Errors
    /// The store.
    pub fn campaign_to_cell(
        &mut self,
        campaign: &rapport_shared::Campaign,
        matches: impl Fn(&Layers) -> bool,
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(Effects, u64, u64), FleetError> {
        let targets: Vec<(Vin, Layers)> = self
            .layering
            .iter()
            .filter(|(_, l)| matches(l))
            .map(|(v, l)| (*v, *l))
            .collect();
        let mut w = Writes::new(batch);
        let (mut sent, mut held) = (0, 0);
        let rule = format!("operator:{}", campaign.campaign_id);
        for (vin, layers) in targets {
            let Some(driver) = self.store.driver(&vin)? else {
                continue;
            };
            let mut history = self.contacts_of(&vin, &w)?;
            let decision = self.strategies.operator_campaign(
                &rule,
                campaign.clone(),
                &DriverContext {
                    layers,
                    consents: driver.consents,
                    history: &history,
                },
                now,
            );
            if matches!(decision.outcome, Outcome::Act(_)) {
                sent += 1;
            } else {
                held += 1;
            }
            self.apply_decision(&vin, &decision, &mut history, None, now, &mut w)?;
            self.put_contacts(&vin, history, &mut w)?;
        }
        Ok((w.fx, sent, held))
    }

    fn store_next_downlink_id(&self) -> Result<u64, FleetError> {
        Ok(self.store.next_id()?)
    }
}

/// What an alert to be opened is about.
struct AlertSpec<'a> {
    kind: AlertKind,
    subject: String,
    registration: &'a Registration,
    layers: Layers,
    driver: &'a Driver,
    state: Option<&'a VehicleState>,
}

fn alert_context(spec: &AlertSpec<'_>, suggestion: &str) -> AlertContext {
    let checklist = spec
        .driver
        .checklist()
        .map(|i| ChecklistItem {
            item: i.item.clone(),
            status: match i.status {
                rapport_shared::MaintenanceStatus::DueSoon => ChecklistStatus::DueSoon,
                rapport_shared::MaintenanceStatus::Overdue => ChecklistStatus::Overdue,
                _ => ChecklistStatus::Due,
            },
            due_odometer_km: i.due_odometer_m.map(|m| m / 1000),
            due_date: i.due_at,
        })
        .collect();
    let active_faults = spec
        .state
        .map(|s| {
            s.active_dtcs()
                .map(|d| Fault {
                    code: d.dtc.code().to_string(),
                    severity: d.severity,
                    since: d.at,
                })
                .collect()
        })
        .unwrap_or_default();
    let driver_response = spec
        .driver
        .item(&spec.subject)
        .map(|i| i.response)
        .unwrap_or_default();
    AlertContext {
        vin: spec.registration.vin,
        line: spec.registration.line.clone(),
        category: spec.registration.category,
        odometer_km: spec.driver.profile.odometer_m / 1000,
        checklist,
        active_faults,
        driver_response,
        layers: spec.layers,
        suggestion: suggestion.to_string(),
    }
}

/// Why a strategy was held back, for people.
fn describe(reason: &SuppressReason) -> String {
    use SuppressReason as R;
    let at = |t: &Timestamp| t.as_millis();
    match reason {
        R::NoEngagementConsent => "the driver opted out of engagement".into(),
        R::NoSharingConsent => "no consent to share with partners".into(),
        R::Cadence { next_allowed } => {
            format!("cadence of the layer: next allowed at {}", at(next_allowed))
        }
        R::DriverCap { next_allowed } => format!(
            "30-day cap per driver reached: next allowed at {}",
            at(next_allowed)
        ),
        R::RuleCooldown { next_allowed } => {
            format!("rule cooldown: next allowed at {}", at(next_allowed))
        }
    }
}
