//! Strategies: what the cloud does about a driver when something happens — an engagement
//! campaign sent down to the car, a task opened for a partner, or nothing — as config written
//! by operations staff (`config/strategies.toml`), capped and consent-aware.
//!
//! A rule reacts to one kind of [`Event`] in a set of cells of the layer matrix:
//! `layer_changed` fires when the driver *enters* a matching cell, `in_cell` is re-offered
//! while the driver stays in one (as often as cadence and cooldown allow; ask
//! [`Strategies::next_in_cell`] when), `maintenance_due` and `critical_fault` fire on those
//! events for drivers in matching cells. Every matching rule fires, in document order.
//!
//! Limits, checked in this order:
//! - **Consent.** A partner task needs `partner_sharing` (critical faults too: the car warns the
//!   driver itself, whatever the consents, so a fault is never hidden from the driver — only
//!   the partner is not told). An engagement contact needs `engagement`: after an opt-out no
//!   campaign is sent and no partner is asked to follow the driver up.
//! - **Rule cooldown** (`cooldown_days`): a rule acts at most once per cooldown per driver.
//! - **Cadence** by the driver's activity layer and a **cap** per driver over any 30 days,
//!   for engagement contacts only: every campaign (whatever its event) and partner tasks
//!   started by the layer (`layer_changed`, `in_cell`: a follow-up call is a contact with the
//!   driver). Partner tasks on `maintenance_due` and `critical_fault` are service, not
//!   marketing: no cadence, no cap (their rule cooldown still holds).
//!
//! Within one [`Strategies::decide`] the first engagement contact takes the slot: a later rule
//! of the same call is suppressed by the cadence, so one event never sends two campaigns.
//!
//! Pure and clock-in: state (a [`ContactHistory`]) + event + `now` → [`Decision`]s. The caller
//! records acted decisions ([`ContactHistory::record`]), sends campaigns, opens partner tasks,
//! and stores the history. Owns the rules and their limits; does not own the layers
//! ([`crate::fleet::model`]), sending, alerts or storage.

mod compile;
mod config;
mod history;

#[cfg(test)]
mod tests;

use std::path::Path;

use rapport_shared::{Campaign, DtcCode, Timestamp};
use serde::{Deserialize, Serialize};

use self::compile::{Compiled, Rule, RuleAction, Template};
pub use self::compile::{MAX_CAP, MAX_DAYS};
pub use self::config::{
    ActionKind, Cadence, CampaignTemplate, PartnerKind, RuleConfig, StrategyConfig,
    SuggestionConfig, TargetConfig, Trigger, When, defaults,
};
pub use self::history::{CAP_WINDOW_MS, ContactHistory, MAX_RECENT};
use crate::fleet::model::{Activity, Consents, DAY_MS, Layers, PartnerTarget};
use rapport_kit::config::{ConfigError, Problem};

/// Something that happened to a driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Layering placed the driver in a new cell.
    LayerChanged {
        /// Before (`None`: first placement).
        from: Option<Layers>,
        /// Now (the same as the context's layers).
        to: Layers,
    },
    /// The driver is still in their cell: re-offer `in_cell` rules (the caller asks at
    /// [`Strategies::next_in_cell`]).
    InCell,
    /// A maintenance item fell due.
    MaintenanceDue {
        /// The schedule item (`"oil"`); `{item}` in task texts.
        item: String,
    },
    /// The car reported a critical fault.
    CriticalFault {
        /// The fault; `{code}` in task texts.
        code: DtcCode,
    },
}

/// What the strategies know of the driver.
#[derive(Clone, Copy, Debug)]
pub struct DriverContext<'a> {
    /// Where the driver sits now.
    pub layers: Layers,
    /// What the driver consented to.
    pub consents: Consents,
    /// The driver's contacts so far.
    pub history: &'a ContactHistory,
}

/// One matching rule's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The rule's name.
    pub rule: String,
    /// An engagement contact (counts against cadence and cap when acted): campaigns, and
    /// partner tasks on layer events.
    pub engagement: bool,
    /// Act, or why not.
    pub outcome: Outcome,
}

/// Act, or why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Do this.
    Act(Action),
    /// The rule matched but may not act.
    Suppressed {
        /// Why.
        reason: SuppressReason,
    },
}

/// Why a matching rule did not act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressReason {
    /// The driver opted out of engagement.
    NoEngagementConsent,
    /// The driver did not consent to sharing with partners.
    NoSharingConsent,
    /// Too soon after the last engagement contact for the driver's activity layer.
    Cadence {
        /// The earliest time the cadence allows another.
        next_allowed: Timestamp,
    },
    /// The driver had the most engagement contacts allowed in 30 days.
    DriverCap {
        /// When the oldest counted contact leaves the window.
        next_allowed: Timestamp,
    },
    /// This rule acted for the driver within its `cooldown_days`.
    RuleCooldown {
        /// When the cooldown ends.
        next_allowed: Timestamp,
    },
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send this campaign down to the car.
    Campaign {
        /// Built from the template; its id is `<template id>-<UTC date>`, so a re-send the
        /// same day is the same campaign.
        campaign: Campaign,
    },
    /// Open a task for a partner.
    PartnerTask {
        /// Who.
        target: PartnerTarget,
        /// What (placeholders filled in).
        task: String,
        /// The suggested next step for this driver's layer (may be empty).
        suggestion: String,
    },
    /// Nothing (a rule that leaves the cell alone on purpose).
    Nothing,
}

/// A checked strategy file, ready to decide.
#[derive(Clone, Debug)]
pub struct Strategies {
    compiled: Compiled,
}

impl Strategies {
    /// Checks a parsed file.
    ///
    /// # Errors
    /// Every problem, each with its key path.
    pub fn new(config: &StrategyConfig) -> Result<Self, Vec<Problem>> {
        compile::compile(config).map(|compiled| Self { compiled })
    }

    /// Parses and checks TOML text; `file` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] (line, column, key path) or [`ConfigError::Invalid`] (every
    /// problem with its key path, and its line and column: of the value, or for a missing key
    /// of its table).
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        let config = StrategyConfig::from_toml(file, text)?;
        Self::new(&config).map_err(|problems| ConfigError::Invalid {
            file: file.to_owned(),
            problems: problems
                .into_iter()
                .map(|p| match config::locate(text, &p.path) {
                    Some((line, column)) => Problem {
                        message: format!("{} (line {line}, column {column})", p.message),
                        ..p
                    },
                    None => p,
                })
                .collect(),
        })
    }

    /// Reads, parses and checks a strategy file.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Syntax`] or [`ConfigError::Invalid`], naming the
    /// file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (file, text) = rapport_kit::config::read_text(path)?;
        Self::from_toml(&file, &text)
    }

    /// The cadence in force.
    pub fn cadence(&self) -> &Cadence {
        &self.compiled.cadence
    }

    /// The rules' names, in document order (to tidy histories with
    /// [`ContactHistory::retain_rules`]).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.compiled.rules.iter().map(|r| r.name.as_str())
    }

    /// What every rule matching `event` for this driver says, in document order. Rules that do
    /// not match say nothing. The caller records the acted ones in the driver's history.
    pub fn decide(&self, event: &Event, ctx: &DriverContext<'_>, now: Timestamp) -> Vec<Decision> {
        let layers = match event {
            Event::LayerChanged { to, .. } => *to,
            _ => ctx.layers,
        };
        let mut taken = 0usize;
        let mut out = Vec::new();
        for rule in &self.compiled.rules {
            if !fires(rule, event, &layers) {
                continue;
            }
            let engagement = rule.is_engagement();
            let outcome = match self.gate(rule, ctx, layers.activity, taken, now) {
                Err(reason) => Outcome::Suppressed { reason },
                Ok(()) => {
                    if engagement {
                        taken += 1;
                    }
                    Outcome::Act(act(rule, event, &layers, now))
                }
            };
            out.push(Decision {
                rule: rule.name.clone(),
                engagement,
                outcome,
            });
        }
        out
    }

    /// The earliest time (at or after `now`) an `in_cell` rule could act for this driver as
    /// things stand, so the caller can put the driver in a time index rather than scan.
    /// `None`: no `in_cell` rule applies to the driver's cell with their consents (ask again
    /// when the layers or consents change, or after recording a decision). `nothing` rules are
    /// never scheduled.
    pub fn next_in_cell(&self, ctx: &DriverContext<'_>, now: Timestamp) -> Option<Timestamp> {
        self.compiled
            .rules
            .iter()
            .filter(|r| {
                r.on == Trigger::InCell
                    && !matches!(r.action, RuleAction::Nothing)
                    && r.cell.matches(&ctx.layers)
                    && consent(r, &ctx.consents).is_ok()
            })
            .map(|r| {
                let mut at = now;
                if let Some(t) = cooldown_until(r, ctx.history) {
                    at = at.max(t);
                }
                if r.is_engagement() {
                    if let Some(t) = self.cadence_until(ctx.history, ctx.layers.activity, 0, now) {
                        at = at.max(t);
                    }
                    if let Some(t) = self.cap_until(ctx.history, 0, now) {
                        at = at.max(t);
                    }
                }
                at
            })
            .min()
    }

    /// An operator's campaign to one driver, gated like an engagement rule (consent, the
    /// cadence of the driver's activity layer, the 30-day cap): operators cannot spam either.
    pub fn operator_campaign(
        &self,
        rule: &str,
        campaign: rapport_shared::Campaign,
        ctx: &DriverContext<'_>,
        now: Timestamp,
    ) -> Decision {
        let cadence = self
            .cadence_until(ctx.history, ctx.layers.activity, 0, now)
            .filter(|t| *t > now);
        let cap = self.cap_until(ctx.history, 0, now).filter(|t| *t > now);
        let outcome = if !ctx.consents.engagement {
            Outcome::Suppressed {
                reason: SuppressReason::NoEngagementConsent,
            }
        } else if let Some(next_allowed) = cadence {
            Outcome::Suppressed {
                reason: SuppressReason::Cadence { next_allowed },
            }
        } else if let Some(next_allowed) = cap {
            Outcome::Suppressed {
                reason: SuppressReason::DriverCap { next_allowed },
            }
        } else {
            Outcome::Act(Action::Campaign { campaign })
        };
        Decision {
            rule: rule.to_owned(),
            engagement: true,
            outcome,
        }
    }

    /// Whether `rule` may act now; `taken` engagement contacts were already decided in this
    /// call (not yet in the history).
    fn gate(
        &self,
        rule: &Rule,
        ctx: &DriverContext<'_>,
        activity: Activity,
        taken: usize,
        now: Timestamp,
    ) -> Result<(), SuppressReason> {
        consent(rule, &ctx.consents)?;
        if let Some(next_allowed) = cooldown_until(rule, ctx.history)
            && next_allowed > now
        {
            return Err(SuppressReason::RuleCooldown { next_allowed });
        }
        if rule.is_engagement() {
            if let Some(next_allowed) = self.cadence_until(ctx.history, activity, taken, now)
                && next_allowed > now
            {
                return Err(SuppressReason::Cadence { next_allowed });
            }
            if let Some(next_allowed) = self.cap_until(ctx.history, taken, now)
                && next_allowed > now
            {
                return Err(SuppressReason::DriverCap { next_allowed });
            }
        }
        Ok(())
    }

    /// The end of the cadence after the last engagement contact (`taken` > 0: one at `now`).
    fn cadence_until(
        &self,
        history: &ContactHistory,
        activity: Activity,
        taken: usize,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let last = match (taken, history.last_engagement()) {
            (0, last) => last?,
            (_, Some(last)) => last.max(now),
            (_, None) => now,
        };
        let gap = u64::from(self.compiled.cadence.days(activity)) * DAY_MS;
        Some(Timestamp::from_millis(last.as_millis().saturating_add(gap)))
    }

    fn cap_until(
        &self,
        history: &ContactHistory,
        taken: usize,
        now: Timestamp,
    ) -> Option<Timestamp> {
        history.cap_until(self.compiled.cadence.max_campaigns_per_30_days, taken, now)
    }
}

/// Whether `rule` applies to `event` for a driver now in `layers`.
fn fires(rule: &Rule, event: &Event, layers: &Layers) -> bool {
    match (rule.on, event) {
        // Entering: in a matching cell now, and not in one before.
        (Trigger::LayerChanged, Event::LayerChanged { from, .. }) => {
            rule.cell.matches(layers) && !from.is_some_and(|f| rule.cell.matches(&f))
        }
        (Trigger::InCell, Event::InCell)
        | (Trigger::MaintenanceDue, Event::MaintenanceDue { .. })
        | (Trigger::CriticalFault, Event::CriticalFault { .. }) => rule.cell.matches(layers),
        _ => false,
    }
}

/// The consents `rule` needs.
fn consent(rule: &Rule, consents: &Consents) -> Result<(), SuppressReason> {
    if matches!(rule.action, RuleAction::PartnerTask { .. }) && !consents.partner_sharing {
        return Err(SuppressReason::NoSharingConsent);
    }
    if rule.is_engagement() && !consents.engagement {
        return Err(SuppressReason::NoEngagementConsent);
    }
    Ok(())
}

fn cooldown_until(rule: &Rule, history: &ContactHistory) -> Option<Timestamp> {
    let cooldown = rule.cooldown_ms?;
    let last = history.last_fired(&rule.name)?;
    Some(Timestamp::from_millis(
        last.as_millis().saturating_add(cooldown),
    ))
}

/// The action of a rule allowed to act.
fn act(rule: &Rule, event: &Event, layers: &Layers, now: Timestamp) -> Action {
    match &rule.action {
        RuleAction::Campaign { id, template } => Action::Campaign {
            campaign: campaign(id, template, now),
        },
        RuleAction::PartnerTask {
            target,
            task,
            suggestion,
        } => Action::PartnerTask {
            target: target.clone(),
            task: fill(task, event),
            suggestion: fill(suggestion.for_layers(layers), event),
        },
        RuleAction::Nothing => Action::Nothing,
    }
}

/// `{item}` and `{code}` filled from the event (the file's check allows each only where its
/// event has it).
fn fill(text: &str, event: &Event) -> String {
    match event {
        Event::MaintenanceDue { item } => text.replace("{item}", item),
        Event::CriticalFault { code } => text.replace("{code}", &code.to_string()),
        _ => text.to_owned(),
    }
}

/// A campaign from its template, sent at `now`.
fn campaign(id: &str, t: &Template, now: Timestamp) -> Campaign {
    let (y, m, d) = now.utc_date();
    Campaign {
        campaign_id: format!("{id}-{y:04}-{m:02}-{d:02}"),
        title: t.title.clone(),
        text: t.text.clone(),
        priority: t.priority,
        valid_from: now,
        valid_until: Timestamp::from_millis(now.as_millis().saturating_add(t.valid_ms)),
        target: t.target.clone(),
    }
}
