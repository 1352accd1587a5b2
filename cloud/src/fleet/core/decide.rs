//! The strategies' decisions applied to one vehicle: campaigns encoded and queued as
//! downlinks, partner tasks opened as alerts (routed to a partner), suppressed decisions
//! noted on the timeline, in-cell re-offers scheduled, and an operator's campaign.
//!
//! Owns turning a [`Decision`] into effects and the contact history kept with them. Does not
//! own the rules ([`crate::fleet::strategy`]) or an alert's life after it opens
//! ([`super::alerts`]).

use rapport_shared::{Campaign, DownlinkBody, Timestamp};

use super::{FleetError, OpenAlert, Step, Vehicle};
use crate::downlink::envelope;
use crate::fleet::alerts::{
    Alert, AlertContext, AlertKind, ChecklistItem, ChecklistStatus, Fault, StoredCode,
};
use crate::fleet::driver::Driver;
use crate::fleet::model::{Layers, Registration};
use crate::fleet::store::TimelineEntry;
use crate::fleet::strategy::{
    Action, ContactHistory, Decision, DriverContext, Event, Outcome, SuppressReason,
};
use crate::vehicle::VehicleState;

impl Step<'_> {
    /// When `in_cell` rules are next offered to the driver (none for one not placed).
    pub(super) fn schedule_in_cell(&mut self, v: &mut Vehicle, driver: &Driver) {
        let Some(layers) = v.layers else {
            v.in_cell_due = None;
            return;
        };
        let ctx = DriverContext {
            layers,
            consents: driver.consents,
            history: &v.contacts,
        };
        v.in_cell_due = self.rules.strategies.next_in_cell(&ctx, self.now);
    }

    /// Strategies for an event without an alert subject of its own: partner tasks become
    /// `partner_task` alerts about their rule.
    pub(super) fn decide_and_act(
        &mut self,
        v: &mut Vehicle,
        event: &Event,
        layers: Layers,
        driver: &Driver,
    ) -> Result<(), FleetError> {
        let registration = v.registration_or_default();
        self.decide_with_alert(v, event, None, &registration, None, layers, driver)
    }

    /// Runs the strategies for `event` and applies every decision; a partner task becomes
    /// an alert of `alert`'s kind and subject (`None`: a `partner_task` about the rule).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decide_with_alert(
        &mut self,
        v: &mut Vehicle,
        event: &Event,
        alert: Option<(AlertKind, &str)>,
        registration: &Registration,
        state: Option<&VehicleState>,
        layers: Layers,
        driver: &Driver,
    ) -> Result<(), FleetError> {
        let mut history = v.contacts.clone();
        let decisions = self.rules.strategies.decide(
            event,
            &DriverContext {
                layers,
                consents: driver.consents,
                history: &history,
            },
            self.now,
        );
        if decisions.is_empty() {
            return Ok(());
        }
        for d in &decisions {
            let (kind, subject) = alert.unwrap_or((AlertKind::PartnerTask, d.rule.as_str()));
            self.apply_decision(
                v,
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
            )?;
        }
        v.contacts = history;
        self.out.contacts = true;
        Ok(())
    }

    fn apply_decision(
        &mut self,
        v: &mut Vehicle,
        d: &Decision,
        history: &mut ContactHistory,
        alert: Option<AlertSpec<'_>>,
    ) -> Result<(), FleetError> {
        let (now, vin) = (self.now, v.vin);
        match &d.outcome {
            Outcome::Suppressed { reason } => {
                self.out.stats.suppressed += 1;
                self.out.timeline(
                    now,
                    TimelineEntry::Suppressed {
                        rule: d.rule.clone(),
                        reason: describe(reason),
                    },
                );
            }
            Outcome::Act(Action::Nothing) => {}
            Outcome::Act(Action::Campaign { campaign }) => {
                let id = self.ids.downlink_id()?;
                let body = DownlinkBody::Campaign(campaign.clone());
                match envelope(vin, id, now, body).encode() {
                    Ok(bytes) => {
                        self.out.downlinks.push((id, bytes));
                        history.record(d, now);
                        self.out.stats.campaigns += 1;
                        self.out.timeline(
                            now,
                            TimelineEntry::Strategy {
                                rule: d.rule.clone(),
                                action: format!(
                                    "campaign {} sent (downlink {id})",
                                    campaign.campaign_id
                                ),
                            },
                        );
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
                    .rules
                    .directory
                    .route_or_fallback(target, spec.registration)
                    .map(|p| p.id.clone());
                let Some(partner) = partner else {
                    self.out.stats.suppressed += 1;
                    self.out.timeline(
                        now,
                        TimelineEntry::Suppressed {
                            rule: d.rule.clone(),
                            reason: format!("no partner for {target:?} and no fallback partner"),
                        },
                    );
                    return Ok(());
                };
                history.record(d, now);
                let ctx = alert_context(&spec, suggestion);
                let id = self.ids.alert_id()?;
                let mut alert = Alert::new(
                    id,
                    spec.kind,
                    &partner,
                    &spec.subject,
                    &ctx,
                    &self.rules.policy,
                    now,
                );
                let promises = &self.rules.promises;
                let class = promises.class(spec.registration.region.as_deref());
                alert.set_plan(promises.plan(spec.kind, class, self.rules.policy.sla));
                self.out.stats.alerts_opened += 1;
                self.out.timeline(
                    now,
                    TimelineEntry::Alert {
                        id,
                        event: "opened".into(),
                        detail: format!("{} for {partner}: {task}", alert.event().as_str()),
                    },
                );
                tracing::info!(%vin, id, partner = %partner, kind = alert.event().as_str(), "alert opened");
                let mut open = OpenAlert {
                    sla_due: alert.promise_due(),
                    send_due: None,
                    alert,
                };
                if open.alert.send_at <= now {
                    self.send(v, &mut open.alert);
                } else {
                    open.send_due = Some(open.alert.send_at);
                }
                self.out.alert(&open);
                v.alerts.insert(id, open);
            }
        }
        Ok(())
    }

    /// An operator's campaign to this driver (consent, cadence and caps apply as for
    /// strategies: an operator cannot spam either). Whether it was sent; `None` for a
    /// vehicle without a driver or layers (not a target).
    ///
    /// # Errors
    /// Ids from the store.
    pub fn operator_campaign(
        &mut self,
        v: &mut Vehicle,
        campaign: &Campaign,
    ) -> Result<Option<bool>, FleetError> {
        let (Some(layers), Some(driver)) = (v.layers, v.driver.clone()) else {
            return Ok(None);
        };
        let rule = format!("operator:{}", campaign.campaign_id);
        let mut history = v.contacts.clone();
        let decision = self.rules.strategies.operator_campaign(
            &rule,
            campaign.clone(),
            &DriverContext {
                layers,
                consents: driver.consents,
                history: &history,
            },
            self.now,
        );
        let sent = matches!(decision.outcome, Outcome::Act(_));
        self.apply_decision(v, &decision, &mut history, None)?;
        v.contacts = history;
        self.out.contacts = true;
        Ok(Some(sent))
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
    let stored_codes = spec
        .state
        .map(|s| {
            s.stored_dtcs()
                .filter_map(|d| {
                    Some(StoredCode {
                        code: d.dtc.code().to_string(),
                        class: d.class?,
                        since: d.at,
                    })
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
        stored_codes,
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
