//! Checks a [`StrategyConfig`] and turns it into the rules [`super::Strategies`] runs: layer
//! names parsed into masks, campaign references resolved, suggestions indexed by layer value.
//! Every problem is collected with its key path (`rule[3].campaign: no campaign "x"`), so an
//! operator fixes a file in one pass.
//!
//! Owns the meaning of each key and which combinations are allowed, and so the strategy
//! file's [`Check`] (a file checks by compiling). Does not own reading the file
//! ([`super::config`]) or deciding ([`super::Strategies::decide`]).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rapport_shared::{CampaignTarget, Odometer, Priority};

use super::config::{
    ActionKind, Cadence, CampaignTemplate, PartnerKind, RuleConfig, StrategyConfig,
    SuggestionConfig, Trigger, When,
};
use crate::fleet::model::{
    Activity, CarMaturity, Category, DAY_MS, Layers, Lifecycle, PartnerTarget, ServiceMaturity,
};
use rapport_kit::config::{Check, Problem, Problems, key};

/// Largest number of days any day count in the file may say (catches a unit mistake).
pub const MAX_DAYS: u32 = 366;
/// Largest `max_campaigns_per_30_days`: the contact history keeps this many recent contacts.
pub const MAX_CAP: u32 = super::history::MAX_RECENT as u32;

/// A checked strategy file, ready to run.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub cadence: Cadence,
    pub rules: Vec<Rule>,
}

/// One checked rule.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub name: String,
    pub on: Trigger,
    pub cell: Cell,
    pub action: RuleAction,
    pub cooldown_ms: Option<u64>,
}

impl Rule {
    /// Engagement contacts need the engagement consent and count against the driver's cadence
    /// and cap: every campaign, and partner tasks started by the driver's layer (a partner call
    /// to a churned driver is a follow-up, not a service). Partner tasks on maintenance or
    /// faults are service; `nothing` is no contact.
    pub fn is_engagement(&self) -> bool {
        match self.action {
            RuleAction::Campaign { .. } => true,
            RuleAction::PartnerTask { .. } => {
                matches!(self.on, Trigger::LayerChanged | Trigger::InCell)
            }
            RuleAction::Nothing => false,
        }
    }
}

/// A set of cells of the layer matrix: one bit mask per axis (bit = the value's index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    category: u8,
    car: u8,
    service: u8,
    activity: u8,
    lifecycle: u8,
}

impl Cell {
    /// Whether `layers` is one of the cells.
    pub fn matches(&self, layers: &Layers) -> bool {
        bit(self.category, layers.category.index())
            && bit(self.car, layers.car.index())
            && bit(self.service, layers.service.index())
            && bit(self.activity, layers.activity.index())
            && bit(self.lifecycle, layers.lifecycle.index())
    }
}

fn bit(mask: u8, index: usize) -> bool {
    u32::try_from(index)
        .ok()
        .and_then(|i| 1u8.checked_shl(i))
        .is_some_and(|b| mask & b != 0)
}

/// What a checked rule does.
#[derive(Debug, Clone)]
pub(super) enum RuleAction {
    Campaign {
        id: String,
        template: Template,
    },
    PartnerTask {
        target: PartnerTarget,
        task: String,
        suggestion: Box<Suggestion>,
    },
    Nothing,
}

/// A checked campaign template.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub title: String,
    pub text: String,
    pub priority: Priority,
    pub valid_ms: u64,
    pub target: CampaignTarget,
}

/// A suggestion by layer value: the first hit in the order activity, service maturity, car
/// maturity, lifecycle, category; else the default.
#[derive(Debug, Clone, Default)]
pub(super) struct Suggestion {
    activity: [Option<String>; Activity::ALL.len()],
    service: [Option<String>; ServiceMaturity::ALL.len()],
    car: [Option<String>; CarMaturity::ALL.len()],
    lifecycle: [Option<String>; Lifecycle::ALL.len()],
    category: [Option<String>; Category::ALL.len()],
    default: String,
}

impl Suggestion {
    /// The text for a driver in `layers`.
    pub fn for_layers(&self, layers: &Layers) -> &str {
        [
            self.activity.get(layers.activity.index()),
            self.service.get(layers.service.index()),
            self.car.get(layers.car.index()),
            self.lifecycle.get(layers.lifecycle.index()),
            self.category.get(layers.category.index()),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .next()
        .unwrap_or(&self.default)
    }

    /// The place of one layer value's text; `None` when `key` is no layer value.
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        if let Ok(v) = key.parse::<Activity>() {
            self.activity.get_mut(v.index())
        } else if let Ok(v) = key.parse::<ServiceMaturity>() {
            self.service.get_mut(v.index())
        } else if let Ok(v) = key.parse::<CarMaturity>() {
            self.car.get_mut(v.index())
        } else if let Ok(v) = key.parse::<Lifecycle>() {
            self.lifecycle.get_mut(v.index())
        } else if let Ok(v) = key.parse::<Category>() {
            self.category.get_mut(v.index())
        } else {
            None
        }
    }

    /// Every text, for placeholder checks.
    fn texts(&self) -> impl Iterator<Item = &str> {
        self.activity
            .iter()
            .chain(&self.service)
            .chain(&self.car)
            .chain(&self.lifecycle)
            .chain(&self.category)
            .flatten()
            .map(String::as_str)
            .chain([self.default.as_str()])
    }
}

impl Check for StrategyConfig {
    /// Every problem [`compile`] finds, each with its key path under `path`
    /// (`rule[3].campaign` at the file's top).
    fn check(&self, path: &str, problems: &mut Problems) {
        if let Err(found) = compile(self) {
            for p in found {
                problems.push(key(path, &p.path), p.message);
            }
        }
    }
}

/// Checks `config`; the rules to run, or every problem.
pub(super) fn compile(config: &StrategyConfig) -> Result<Compiled, Vec<Problem>> {
    let mut p = Vec::new();
    check_cadence(&config.cadence, &mut p);
    let templates: BTreeMap<&str, Template> = config
        .campaign
        .iter()
        .filter_map(|(id, t)| template(id, t, &mut p).map(|t| (id.as_str(), t)))
        .collect();
    let mut names = BTreeSet::new();
    let mut rules = Vec::with_capacity(config.rule.len());
    for (i, raw) in config.rule.iter().enumerate() {
        let at = format!("rule[{i}]");
        if raw.name.trim().is_empty() {
            p.push(Problem::new(
                format!("{at}.name"),
                "empty; every rule needs a name",
            ));
        } else if !names.insert(raw.name.as_str()) {
            p.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "{:?} is used by an earlier rule; names must be unique",
                    raw.name
                ),
            ));
        }
        if let Some(rule) = rule(&at, raw, &config.campaign, &templates, &mut p) {
            rules.push(rule);
        }
    }
    if p.is_empty() {
        Ok(Compiled {
            cadence: config.cadence,
            rules,
        })
    } else {
        Err(p)
    }
}

fn check_cadence(c: &Cadence, p: &mut Vec<Problem>) {
    for activity in Activity::ALL {
        let days = c.days(*activity);
        if days == 0 || days > MAX_DAYS {
            p.push(Problem::new(
                format!("cadence.{activity}"),
                format!("{days} days: must be 1 (daily) to {MAX_DAYS}"),
            ));
        }
    }
    let cap = c.max_campaigns_per_30_days;
    if cap == 0 || cap > MAX_CAP {
        p.push(Problem::new(
            "cadence.max_campaigns_per_30_days",
            format!("{cap}: must be 1 to {MAX_CAP} (to stop campaigns, remove the campaign rules)"),
        ));
    }
}

fn days_ok(days: u32) -> bool {
    (1..=MAX_DAYS).contains(&days)
}

fn template(id: &str, t: &CampaignTemplate, p: &mut Vec<Problem>) -> Option<Template> {
    let at = format!("campaign.{id}");
    let before = p.len();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        p.push(Problem::new(
            &at,
            format!("{id:?}: a campaign id is letters, digits, - and _ (it names the campaign on the car)"),
        ));
    }
    if t.title.trim().is_empty() {
        p.push(Problem::new(format!("{at}.title"), "empty"));
    }
    if t.text.trim().is_empty() {
        p.push(Problem::new(format!("{at}.text"), "empty"));
    }
    if !days_ok(t.valid_days) {
        p.push(Problem::new(
            format!("{at}.valid_days"),
            format!("{}: must be 1 to {MAX_DAYS}", t.valid_days),
        ));
    }
    let g = &t.target;
    if let (Some(lo), Some(hi)) = (g.min_odometer_km, g.max_odometer_km)
        && lo > hi
    {
        p.push(Problem::new(
            format!("{at}.target.max_odometer_km"),
            format!("{hi} is below min_odometer_km ({lo}): no car would ever match"),
        ));
    }
    if let (Some(lo), Some(hi)) = (g.min_days_owned, g.max_days_owned)
        && lo > hi
    {
        p.push(Problem::new(
            format!("{at}.target.max_days_owned"),
            format!("{hi} is below min_days_owned ({lo}): no car would ever match"),
        ));
    }
    (p.len() == before).then(|| Template {
        title: t.title.clone(),
        text: t.text.clone(),
        priority: t.priority,
        valid_ms: u64::from(t.valid_days) * DAY_MS,
        target: CampaignTarget {
            min_odometer: g.min_odometer_km.map(|km| Odometer::from_km(km.into())),
            max_odometer: g.max_odometer_km.map(|km| Odometer::from_km(km.into())),
            min_days_owned: g.min_days_owned,
            max_days_owned: g.max_days_owned,
            no_active_faults: g.no_active_faults,
        },
    })
}

fn rule(
    at: &str,
    r: &RuleConfig,
    raw_templates: &BTreeMap<String, CampaignTemplate>,
    templates: &BTreeMap<&str, Template>,
    p: &mut Vec<Problem>,
) -> Option<Rule> {
    let before = p.len();
    let cell = cell(at, &r.when, p);
    let cooldown_ms = r.cooldown_days.map(|d| {
        if !days_ok(d) {
            p.push(Problem::new(
                format!("{at}.cooldown_days"),
                format!("{d}: must be 1 to {MAX_DAYS} (remove the key for no cooldown)"),
            ));
        }
        u64::from(d) * DAY_MS
    });
    let unused = |key: &str, present: bool, p: &mut Vec<Problem>| {
        if present {
            p.push(Problem::new(
                format!("{at}.{key}"),
                format!("not used by do = {:?}", do_str(r.action)),
            ));
        }
    };
    let action = match r.action {
        ActionKind::Campaign => {
            unused("partner", r.partner.is_some(), p);
            unused("capability", r.capability.is_some(), p);
            unused("task", r.task.is_some(), p);
            unused("suggestion", r.suggestion.is_some(), p);
            match &r.campaign {
                None => {
                    p.push(Problem::new(
                        format!("{at}.campaign"),
                        "missing: do = \"campaign\" needs the id of a [campaign.<id>] template",
                    ));
                    None
                }
                Some(id) => match templates.get(id.as_str()) {
                    Some(t) => Some(RuleAction::Campaign {
                        id: id.clone(),
                        template: t.clone(),
                    }),
                    // A template with its own problems is reported there.
                    None if raw_templates.contains_key(id) => None,
                    None => {
                        p.push(Problem::new(
                            format!("{at}.campaign"),
                            format!(
                                "no campaign {id:?} (templates: {})",
                                list(raw_templates.keys())
                            ),
                        ));
                        None
                    }
                },
            }
        }
        ActionKind::PartnerTask => {
            unused("campaign", r.campaign.is_some(), p);
            partner_task(at, r, p)
        }
        ActionKind::Nothing => {
            for (key, present) in [
                ("campaign", r.campaign.is_some()),
                ("partner", r.partner.is_some()),
                ("capability", r.capability.is_some()),
                ("task", r.task.is_some()),
                ("suggestion", r.suggestion.is_some()),
            ] {
                unused(key, present, p);
            }
            Some(RuleAction::Nothing)
        }
    };
    let action = action?;
    (p.len() == before).then(|| Rule {
        name: r.name.clone(),
        on: r.on,
        cell,
        action,
        cooldown_ms,
    })
}

fn partner_task(at: &str, r: &RuleConfig, p: &mut Vec<Problem>) -> Option<RuleAction> {
    let target = match (r.partner, &r.capability) {
        (None, _) => {
            p.push(Problem::new(
                format!("{at}.partner"),
                "missing: do = \"partner_task\" needs partner = \"dealer\", \"fallback\" or \"provider\"",
            ));
            None
        }
        (Some(PartnerKind::Provider), Some(c)) if !c.trim().is_empty() => {
            Some(PartnerTarget::Provider {
                capability: c.clone(),
            })
        }
        (Some(PartnerKind::Provider), _) => {
            p.push(Problem::new(
                format!("{at}.capability"),
                "missing or empty: partner = \"provider\" needs the capability to look for",
            ));
            None
        }
        (Some(_), Some(_)) => {
            p.push(Problem::new(
                format!("{at}.capability"),
                "only for partner = \"provider\"",
            ));
            None
        }
        (Some(PartnerKind::Dealer), None) => Some(PartnerTarget::Dealer),
        (Some(PartnerKind::Fallback), None) => Some(PartnerTarget::Fallback),
    };
    let task = match &r.task {
        Some(t) if !t.trim().is_empty() => {
            placeholders(&format!("{at}.task"), t, r.on, p);
            Some(t.clone())
        }
        _ => {
            p.push(Problem::new(
                format!("{at}.task"),
                "missing or empty: what the partner is asked to do",
            ));
            None
        }
    };
    let mut suggestion = Suggestion::default();
    match &r.suggestion {
        None => {}
        Some(SuggestionConfig::Text(t)) => suggestion.default = t.clone(),
        Some(SuggestionConfig::ByLayer(by)) => {
            let mut has_default = false;
            for (key, text) in by {
                if key == "default" {
                    suggestion.default = text.clone();
                    has_default = true;
                } else if let Some(slot) = suggestion.slot(key) {
                    *slot = Some(text.clone());
                } else {
                    p.push(Problem::new(
                        format!("{at}.suggestion.{key}"),
                        format!(
                            "{key:?} is not a layer value (activity, car or service maturity, lifecycle, category) nor `default`"
                        ),
                    ));
                }
            }
            if !has_default {
                p.push(Problem::new(
                    format!("{at}.suggestion.default"),
                    "missing: the text for drivers no other key matches",
                ));
            }
        }
    }
    for text in suggestion.texts() {
        placeholders(&format!("{at}.suggestion"), text, r.on, p);
    }
    Some(RuleAction::PartnerTask {
        target: target?,
        task: task?,
        suggestion: Box::new(suggestion),
    })
}

/// `{item}` is known on maintenance_due rules, `{code}` on critical_fault rules; any other
/// `{...}` is a typo.
fn placeholders(path: &str, text: &str, on: Trigger, p: &mut Vec<Problem>) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open + 1..).unwrap_or("");
        let Some(close) = after.find('}') else {
            p.push(Problem::new(path, "an unclosed {"));
            return;
        };
        let name = after.get(..close).unwrap_or("");
        let ok = matches!(
            (name, on),
            ("item", Trigger::MaintenanceDue) | ("code", Trigger::CriticalFault)
        );
        if !ok {
            p.push(Problem::new(
                path,
                format!(
                    "{{{name}}} is not available on {}: {{item}} works on maintenance_due, {{code}} on critical_fault",
                    on.as_str()
                ),
            ));
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
}

fn cell(at: &str, when: &When, p: &mut Vec<Problem>) -> Cell {
    Cell {
        category: axis::<Category>(at, "category", when.category.as_deref(), Category::index, p),
        car: axis::<CarMaturity>(at, "car", when.car.as_deref(), CarMaturity::index, p),
        service: axis::<ServiceMaturity>(
            at,
            "service",
            when.service.as_deref(),
            ServiceMaturity::index,
            p,
        ),
        activity: axis::<Activity>(at, "activity", when.activity.as_deref(), Activity::index, p),
        lifecycle: axis::<Lifecycle>(
            at,
            "lifecycle",
            when.lifecycle.as_deref(),
            Lifecycle::index,
            p,
        ),
    }
}

fn axis<T: FromStr<Err = String>>(
    at: &str,
    key: &str,
    values: Option<&[String]>,
    index: fn(T) -> usize,
    p: &mut Vec<Problem>,
) -> u8 {
    let Some(values) = values else {
        return u8::MAX;
    };
    if values.is_empty() {
        p.push(Problem::new(
            format!("{at}.when.{key}"),
            "an empty list matches no driver; remove the key to match any",
        ));
    }
    let mut mask = 0u8;
    for (i, v) in values.iter().enumerate() {
        match T::from_str(v) {
            Ok(value) => {
                mask |= u32::try_from(index(value))
                    .ok()
                    .and_then(|i| 1u8.checked_shl(i))
                    .unwrap_or(0);
            }
            Err(e) => p.push(Problem::new(format!("{at}.when.{key}[{i}]"), e)),
        }
    }
    mask
}

fn do_str(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Campaign => "campaign",
        ActionKind::PartnerTask => "partner_task",
        ActionKind::Nothing => "nothing",
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none defined".to_owned()
    } else {
        v.join(", ")
    }
}
