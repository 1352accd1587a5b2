//! An alert's stages and promises, pure (the clock is passed in): where a service case
//! stands ([`Stage`], its history [`StageRecord`]), the validated moves between stages
//! ([`Alert::move_stage`]), the promise plan an alert is raised with ([`PromiseRules::plan`]),
//! each promise's clock and outcome ([`Promise`]), the misses and their escalation levels
//! ([`Alert::miss_due`]) and the promise-kept share over a window ([`shares`]).
//!
//! # One story
//! The old lifecycle (open → acknowledged → resolved, one SLA) is a view of the stages:
//! `acknowledged` is `contacted` or later, `resolved` is resolved or cancelled, and the old
//! SLA is the default plan "contacted within `[alerts] sla_minutes`" (`sla_due` keeps the
//! first promise's due). An alert keeps the plan it was raised with (a config change applies
//! to new alerts).
//!
//! # Paths
//! critical_fault: raised → contacted → dispatched → on_site → resolved; maintenance:
//! raised → contacted → booked → resolved; partner_task: raised → contacted → resolved. A
//! partner moves only to the NEXT stage; `resolved` from any open stage; `cancelled` from any
//! open stage by the driver or the operator. Resolved and cancelled are final.
//!
//! # Promises
//! A promised stage's clock starts when the previous promised stage on the path was reached
//! (the first one's when the alert was sent). Kept: reached at or before due. Missed: due
//! passed unreached (settled at due). Void: the alert closed before it was due. Does not own
//! storage, delivery, or the region lookup (the caller passes the region class).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rapport_shared::{ServiceStage, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Alert, AlertKind, AlertState, Escalation};

/// Where a service case stands.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The cloud raised the alert.
    Raised,
    /// A named advisor reached the driver.
    Contacted,
    /// A technician or a tow is on the way (with an ETA).
    Dispatched,
    /// The technician is at the car.
    OnSite,
    /// An appointment is booked (maintenance, with its time).
    Booked,
    /// Done.
    Resolved,
    /// Called off by the driver or the operator.
    Cancelled,
}

impl Stage {
    /// The spelling in the API and the config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Contacted => "contacted",
            Self::Dispatched => "dispatched",
            Self::OnSite => "on_site",
            Self::Booked => "booked",
            Self::Resolved => "resolved",
            Self::Cancelled => "cancelled",
        }
    }

    /// From its spelling.
    pub fn parse(s: &str) -> Option<Self> {
        ALL_STAGES.iter().copied().find(|st| st.as_str() == s)
    }

    /// Resolved or cancelled.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Resolved | Self::Cancelled)
    }

    /// The wire stage of the car's downlink.
    pub const fn wire(self) -> ServiceStage {
        match self {
            Self::Raised => ServiceStage::Raised,
            Self::Contacted => ServiceStage::Contacted,
            Self::Dispatched => ServiceStage::Dispatched,
            Self::OnSite => ServiceStage::OnSite,
            Self::Booked => ServiceStage::Booked,
            Self::Resolved => ServiceStage::Resolved,
            Self::Cancelled => ServiceStage::Cancelled,
        }
    }
}

/// Every stage.
pub const ALL_STAGES: &[Stage] = &[
    Stage::Raised,
    Stage::Contacted,
    Stage::Dispatched,
    Stage::OnSite,
    Stage::Booked,
    Stage::Resolved,
    Stage::Cancelled,
];

/// The stages of a kind's path, in order (without cancelled).
pub const fn path(kind: AlertKind) -> &'static [Stage] {
    match kind {
        AlertKind::CriticalFault => &[
            Stage::Raised,
            Stage::Contacted,
            Stage::Dispatched,
            Stage::OnSite,
            Stage::Resolved,
        ],
        AlertKind::Maintenance => &[
            Stage::Raised,
            Stage::Contacted,
            Stage::Booked,
            Stage::Resolved,
        ],
        AlertKind::PartnerTask => &[Stage::Raised, Stage::Contacted, Stage::Resolved],
    }
}

fn position(kind: AlertKind, stage: Stage) -> Option<usize> {
    path(kind).iter().position(|s| *s == stage)
}

/// One stage reached (or a revision of it), as the alert's history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageRecord {
    /// The stage.
    pub stage: Stage,
    /// The alert's move counter: 1 for raised, one more for every later move or revision.
    pub step: u32,
    /// When (the cloud's clock).
    pub at: Timestamp,
    /// Who: a partner id, `operator`, `driver` or `cloud` (raised, fault cleared, service
    /// record).
    pub by: String,
    /// The advisor who contacted the driver (contacted).
    pub advisor: Option<String>,
    /// The ETA (dispatched) or the appointment (booked), ms.
    pub eta: Option<Timestamp>,
    /// A short note (≤ [`MAX_NOTE`] characters).
    pub note: Option<String>,
}

/// How a promise ended (or that it runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its stage was reached at or before due.
    Kept,
    /// Due passed with its stage unreached.
    Missed,
    /// Its clock runs.
    Running,
    /// The alert closed before it was due: not counted.
    Void,
}

/// One promise of an alert: a stage to reach by `due`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Promise {
    /// The promised stage.
    pub stage: Stage,
    /// When its clock started.
    pub starts_at: Timestamp,
    /// When it is due.
    pub due: Timestamp,
    /// The partner holding the alert when its clock started (who the outcome is
    /// attributed to).
    pub partner: String,
    /// Kept, missed, running or void.
    pub outcome: Outcome,
    /// When it settled (kept: when the stage was reached; missed: its due; void: the close).
    pub settled_at: Option<Timestamp>,
}

/// One entry of an alert's promise plan: `stage` within `within_ms` of its clock's start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Planned {
    /// The promised stage.
    pub stage: Stage,
    /// Milliseconds from its clock's start.
    pub within_ms: u64,
}

/// The region class a promise rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionClass {
    /// A region listed in `[promises] urban_regions`.
    Urban,
    /// Any other region (or none known).
    Other,
}

/// One `[[promises.rule]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromiseRule {
    /// The alert kind.
    pub kind: AlertKind,
    /// The promised stage (on the kind's path, not raised, not cancelled).
    pub stage: Stage,
    /// Minutes from the clock's start.
    pub within_minutes: u64,
    /// `urban` or `other`; absent: any region.
    #[serde(default)]
    pub region: Option<RegionClass>,
}

/// Longest promise a rule may give: 90 days.
pub const MAX_WITHIN_MINUTES: u64 = 90 * 24 * 60;
/// Longest note on a stage move, characters.
pub const MAX_NOTE: usize = 200;
/// Longest advisor name, characters.
pub const MAX_ADVISOR: usize = 100;
/// An ETA must be within this of the cloud's now.
pub const MAX_ETA_AHEAD: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The `[promises]` section: the rules, the urban regions and the second escalation level.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromiseRules {
    /// A `[[partner]]` id: where an alert's second miss escalates.
    pub second_level: Option<String>,
    /// Registry region codes that count as urban.
    pub urban_regions: Vec<String>,
    /// The rules; none: each kind gets "contacted within `[alerts] sla_minutes`".
    pub rule: Vec<PromiseRule>,
}

impl PromiseRules {
    /// The class of a registry region.
    pub fn class(&self, region: Option<&str>) -> RegionClass {
        match region {
            Some(r) if self.urban_regions.iter().any(|u| u.eq_ignore_ascii_case(r)) => {
                RegionClass::Urban
            }
            _ => RegionClass::Other,
        }
    }

    /// The plan of an alert of `kind` in a region of `class`: per stage on the path, the
    /// rule for that region class, else the rule for any region; `sla` when no rule at all
    /// is configured (contacted within it).
    pub fn plan(&self, kind: AlertKind, class: RegionClass, sla: Duration) -> Vec<Planned> {
        if self.rule.is_empty() {
            return vec![Planned {
                stage: Stage::Contacted,
                within_ms: millis(sla),
            }];
        }
        path(kind)
            .iter()
            .filter_map(|stage| {
                let of = |r: &&PromiseRule| r.kind == kind && r.stage == *stage;
                let rule = self
                    .rule
                    .iter()
                    .filter(of)
                    .find(|r| r.region == Some(class))
                    .or_else(|| self.rule.iter().filter(of).find(|r| r.region.is_none()))?;
                Some(Planned {
                    stage: *stage,
                    within_ms: rule.within_minutes.saturating_mul(60_000),
                })
            })
            .collect()
    }

    /// Every problem, each with its key path under `path` (`promises.rule[1].stage`).
    pub fn problems(&self, path: &str, partners: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(s) = &self.second_level
            && !partners.contains(&s.as_str())
        {
            out.push((
                format!("{path}.second_level"),
                format!("{s:?} is no [[partner]] id"),
            ));
        }
        let mut seen = HashMap::new();
        for (i, r) in self.rule.iter().enumerate() {
            let at = format!("{path}.rule[{i}]");
            if position(r.kind, r.stage).is_none_or(|p| p == 0) || r.stage.is_final() {
                out.push((
                    format!("{at}.stage"),
                    format!(
                        "{} is not a promised stage of {:?} (one after raised, before resolved, on its path)",
                        r.stage.as_str(),
                        r.kind
                    ),
                ));
            }
            if r.within_minutes == 0 || r.within_minutes > MAX_WITHIN_MINUTES {
                out.push((
                    format!("{at}.within_minutes"),
                    format!(
                        "{} must be 1 to {MAX_WITHIN_MINUTES} (minutes)",
                        r.within_minutes
                    ),
                ));
            }
            if let Some(first) = seen.insert((r.kind, r.stage, r.region), i) {
                out.push((
                    at,
                    format!("the same kind, stage and region as promises.rule[{first}]"),
                ));
            }
        }
        out
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn plus_ms(t: Timestamp, ms: u64) -> Timestamp {
    t.saturating_add(Duration::from_millis(ms))
}

/// Who moves a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor<'a> {
    /// A partner, by id.
    Partner(&'a str),
    /// The operator.
    Operator,
    /// The driver, from the car.
    Driver,
    /// The cloud itself (the fault cleared, the workshop's service record).
    Cloud,
}

impl Actor<'_> {
    /// The `by` of a stage record.
    pub fn name(&self) -> String {
        match self {
            Self::Partner(p) => (*p).to_owned(),
            Self::Operator => "operator".into(),
            Self::Driver => "driver".into(),
            Self::Cloud => "cloud".into(),
        }
    }
}

/// A requested stage move.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    /// The stage to move to.
    #[schema(value_type = String)]
    pub stage: String,
    /// The advisor's name (required for contacted).
    pub advisor: Option<String>,
    /// The ETA or appointment, ms (required for dispatched and booked).
    #[schema(value_type = Option<u64>)]
    pub eta: Option<Timestamp>,
    /// A short note (≤ 200 characters).
    pub note: Option<String>,
}

/// Why a stage move was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The alert is resolved or cancelled.
    #[error("alert {id} is {stage} already; nothing more happens to it")]
    Closed {
        /// The alert.
        id: u64,
        /// Its final stage.
        stage: &'static str,
    },
    /// A stage after the next one.
    #[error("alert {id} is {from}: the next stage is {next}, not {to}")]
    Skipped {
        /// The alert.
        id: u64,
        /// Its stage.
        from: &'static str,
        /// The next one on its path.
        next: &'static str,
        /// The one asked.
        to: &'static str,
    },
    /// A stage before the current one.
    #[error("alert {id} is {from} already; it does not go back to {to}")]
    Backwards {
        /// The alert.
        id: u64,
        /// Its stage.
        from: &'static str,
        /// The one asked.
        to: &'static str,
    },
    /// Not a stage of this kind's path (or no stage at all).
    #[error("{to} is not a stage of a {kind} alert")]
    NotOnPath {
        /// The alert's kind.
        kind: &'static str,
        /// The one asked.
        to: String,
    },
    /// Only the driver or the operator cancels.
    #[error("only the driver or the operator cancels an alert")]
    CancelNotAllowed,
    /// Contacted without an advisor's name.
    #[error("contacted needs the advisor's name (advisor, 1 to {MAX_ADVISOR} characters)")]
    AdvisorRequired,
    /// A missing, past or too far ETA.
    #[error("{0}")]
    InvalidEta(String),
    /// A note too long.
    #[error("note has {0} characters; at most {MAX_NOTE}")]
    NoteTooLong(usize),
}

impl StageError {
    /// The stable error code of the API.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "alert_closed",
            Self::Skipped { .. } => "stage_skipped",
            Self::Backwards { .. } => "stage_backwards",
            Self::NotOnPath { .. } => "stage_not_on_path",
            Self::CancelNotAllowed => "cancel_not_allowed",
            Self::AdvisorRequired => "advisor_required",
            Self::InvalidEta(_) => "invalid_eta",
            Self::NoteTooLong(_) => "invalid_note",
        }
    }
}

/// What a move did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    /// A repeat with the same fields: nothing changed.
    Unchanged,
    /// A new stage reached.
    Reached,
    /// The current stage's ETA revised (step + 1, the promise clock not restarted).
    Revised,
}

const fn kind_str(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Maintenance => "maintenance",
        AlertKind::CriticalFault => "critical_fault",
        AlertKind::PartnerTask => "partner_task",
    }
}

impl Alert {
    /// The stage it is in (an alert stored before stages were kept: from its state).
    pub fn stage(&self) -> Stage {
        match self.stages.last() {
            Some(r) => r.stage,
            None => match self.state {
                AlertState::Open => Stage::Raised,
                AlertState::Acknowledged => Stage::Contacted,
                AlertState::Resolved => Stage::Resolved,
            },
        }
    }

    /// The move counter: 1 for raised, one more for every later move or revision.
    pub fn step(&self) -> u32 {
        u32::try_from(self.stages.len()).unwrap_or(u32::MAX).max(1)
    }

    /// The running promise, if any.
    pub fn running(&self) -> Option<&Promise> {
        self.promises
            .iter()
            .rev()
            .find(|p| p.outcome == Outcome::Running)
    }

    /// When the running promise is due (what the tick escalates at); for an alert stored
    /// before promises were kept, its SLA while open and not escalated.
    pub fn promise_due(&self) -> Option<Timestamp> {
        if self.plan.is_empty() && self.promises.is_empty() {
            return (self.state == AlertState::Open && self.escalated.is_none())
                .then_some(self.sla_due);
        }
        self.running().map(|p| p.due)
    }

    /// Gives an alert stored before stages and promises were kept its history and plan
    /// (raised, contacted if acknowledged, resolved if resolved; contacted within its SLA).
    pub(super) fn upgrade(&mut self) {
        if self.stages.is_empty() {
            let mut push = |stage, at, by: Option<&String>| {
                let step = u32::try_from(self.stages.len() + 1).unwrap_or(u32::MAX);
                self.stages.push(StageRecord {
                    stage,
                    step,
                    at,
                    by: by.cloned().unwrap_or_else(|| "cloud".into()),
                    advisor: None,
                    eta: None,
                    note: None,
                });
            };
            push(Stage::Raised, self.created_at, None);
            if let Some(at) = self.acknowledged_at {
                let by = self.acknowledged_by.clone();
                push(Stage::Contacted, at, by.as_ref());
            }
            if let Some(at) = self.resolved_at {
                push(Stage::Resolved, at, None);
            }
        }
        if self.plan.is_empty() && self.promises.is_empty() {
            self.plan = vec![Planned {
                stage: Stage::Contacted,
                within_ms: millis(self.sla()),
            }];
            let (outcome, settled_at) = match self.answered_at() {
                Some(t) if self.acknowledged_at.is_some() && t <= self.sla_due => {
                    (Outcome::Kept, Some(t))
                }
                Some(t) if t < self.sla_due => (Outcome::Void, Some(t)),
                Some(_) => (Outcome::Missed, Some(self.sla_due)),
                None if self.escalated.is_some() => (Outcome::Missed, Some(self.sla_due)),
                None => (Outcome::Running, None),
            };
            self.promises.push(Promise {
                stage: Stage::Contacted,
                starts_at: self.send_at,
                due: self.sla_due,
                partner: self.partner.clone(),
                outcome,
                settled_at,
            });
        }
    }

    /// Sets the promise plan (at raise, before anything happened to the alert) and starts
    /// the first promise's clock at `send_at`; `sla_due` becomes its due.
    pub fn set_plan(&mut self, plan: Vec<Planned>) {
        self.plan = plan;
        self.promises.clear();
        self.start_after(Stage::Raised, self.send_at);
        if let Some(p) = self.running() {
            self.sla_due = p.due;
        }
    }

    /// Moves the first promise's clock with `send_at` (a maintenance alert the driver
    /// answered before its wait ended).
    pub(super) fn restart_first(&mut self, send_at: Timestamp) {
        if self.promises.len() == 1
            && let Some(p) = self.promises.first_mut()
            && p.outcome == Outcome::Running
        {
            let within = p.due.saturating_since(p.starts_at);
            p.starts_at = send_at;
            p.due = send_at.saturating_add(within);
        }
    }

    /// Starts the clock of the first promised stage after `stage` on the path, at `at`.
    fn start_after(&mut self, stage: Stage, at: Timestamp) {
        let Some(from) = position(self.kind, stage) else {
            return;
        };
        let next = path(self.kind)
            .iter()
            .skip(from + 1)
            .find_map(|s| self.plan.iter().find(|p| p.stage == *s).cloned());
        if let Some(p) = next {
            let partner = self.holder().to_owned();
            self.promises.push(Promise {
                stage: p.stage,
                starts_at: at,
                due: plus_ms(at, p.within_ms),
                partner,
                outcome: Outcome::Running,
                settled_at: None,
            });
        }
    }

    /// Validates and applies a move at `now` by `by` (who may move this alert at all is the
    /// caller's check). Returns what changed.
    ///
    /// # Errors
    /// [`StageError`]; nothing changed then.
    pub fn move_stage(
        &mut self,
        mv: &StageMove,
        by: Actor<'_>,
        now: Timestamp,
    ) -> Result<Moved, StageError> {
        let Some(to) = Stage::parse(&mv.stage) else {
            return Err(StageError::NotOnPath {
                kind: kind_str(self.kind),
                to: mv.stage.chars().take(40).collect(),
            });
        };
        let current = self.stage();
        if let Some(n) = &mv.note {
            let len = n.chars().count();
            if len > MAX_NOTE {
                return Err(StageError::NoteTooLong(len));
            }
        }
        if current.is_final() {
            if to == current {
                return Ok(Moved::Unchanged);
            }
            return Err(StageError::Closed {
                id: self.id,
                stage: current.as_str(),
            });
        }
        if to == Stage::Cancelled {
            if matches!(by, Actor::Partner(_)) {
                return Err(StageError::CancelNotAllowed);
            }
            self.reach(to, by, None, None, mv.note.clone(), now);
            return Ok(Moved::Reached);
        }
        let (Some(cur), Some(target)) = (position(self.kind, current), position(self.kind, to))
        else {
            return Err(StageError::NotOnPath {
                kind: kind_str(self.kind),
                to: to.as_str().into(),
            });
        };
        let advisor = mv
            .advisor
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        if to == Stage::Contacted
            && target > cur
            && advisor.is_none_or(|a| a.chars().count() > MAX_ADVISOR)
        {
            return Err(StageError::AdvisorRequired);
        }
        let needs_eta = matches!(to, Stage::Dispatched | Stage::Booked);
        if target == cur {
            let held = self.stages.last().and_then(|r| r.eta);
            return match mv.eta {
                Some(eta) if needs_eta && Some(eta) != held => {
                    check_eta(eta, now)?;
                    let mut record = self.stages.last().cloned().unwrap_or_else(|| StageRecord {
                        stage: to,
                        step: 0,
                        at: now,
                        by: by.name(),
                        advisor: None,
                        eta: None,
                        note: None,
                    });
                    record.step = self.step().saturating_add(1);
                    record.at = now;
                    record.by = by.name();
                    record.eta = Some(eta);
                    record.note = mv.note.clone();
                    self.stages.push(record);
                    if let Actor::Partner(p) = by {
                        self.held_by = Some(p.to_owned());
                    }
                    Ok(Moved::Revised)
                }
                _ => Ok(Moved::Unchanged),
            };
        }
        if target < cur {
            return Err(StageError::Backwards {
                id: self.id,
                from: current.as_str(),
                to: to.as_str(),
            });
        }
        if target > cur + 1 && to != Stage::Resolved {
            let next = path(self.kind).get(cur + 1).copied().unwrap_or(to);
            return Err(StageError::Skipped {
                id: self.id,
                from: current.as_str(),
                next: next.as_str(),
                to: to.as_str(),
            });
        }
        let eta = if needs_eta {
            let eta = mv.eta.ok_or_else(|| {
                StageError::InvalidEta(format!("{} needs an eta (ms)", to.as_str()))
            })?;
            check_eta(eta, now)?;
            Some(eta)
        } else {
            None
        };
        self.reach(
            to,
            by,
            advisor.map(str::to_owned),
            eta,
            mv.note.clone(),
            now,
        );
        Ok(Moved::Reached)
    }

    /// Records `stage` reached at `now` (validated already): settles the running promise,
    /// starts the next one, keeps the old state fields in step.
    pub(super) fn reach(
        &mut self,
        stage: Stage,
        by: Actor<'_>,
        advisor: Option<String>,
        eta: Option<Timestamp>,
        note: Option<String>,
        now: Timestamp,
    ) {
        self.upgrade();
        let step = self.step().saturating_add(1);
        self.stages.push(StageRecord {
            stage,
            step,
            at: now,
            by: by.name(),
            advisor,
            eta,
            note,
        });
        if let Some(p) = self
            .promises
            .iter_mut()
            .rev()
            .find(|p| p.outcome == Outcome::Running)
        {
            if p.stage == stage {
                if now <= p.due {
                    p.outcome = Outcome::Kept;
                    p.settled_at = Some(now);
                } else {
                    p.outcome = Outcome::Missed;
                    p.settled_at = Some(p.due);
                }
            } else if stage.is_final() {
                if now < p.due {
                    p.outcome = Outcome::Void;
                    p.settled_at = Some(now);
                } else {
                    p.outcome = Outcome::Missed;
                    p.settled_at = Some(p.due);
                }
            }
        }
        if let Actor::Partner(p) = by {
            self.held_by = Some(p.to_owned());
        }
        match stage {
            Stage::Resolved | Stage::Cancelled => {
                self.state = AlertState::Resolved;
                self.resolved_at = Some(now);
            }
            Stage::Raised => {}
            _ => {
                if self.state == AlertState::Open {
                    self.state = AlertState::Acknowledged;
                    self.acknowledged_at = Some(now);
                    self.acknowledged_by = match by {
                        Actor::Partner(p) => Some(p.to_owned()),
                        _ => None,
                    };
                }
            }
        }
        if !stage.is_final()
            && self.running().is_none()
            && self.plan.iter().any(|p| p.stage == stage)
        {
            self.start_after(stage, now);
        }
    }

    /// The running promise if it is due at `now`: marks it missed (settled at its due) and
    /// escalates — the alert's first miss to `fallback` (level 1), its second to
    /// `second_level` (level 2); later misses only count. Returns the escalation made, if
    /// any (then send [`Alert::escalation_webhook`] for it), and whether a promise was
    /// missed.
    pub fn miss_due(
        &mut self,
        now: Timestamp,
        fallback: Option<&str>,
        second_level: Option<&str>,
    ) -> (bool, Option<Escalation>) {
        self.upgrade();
        let Some(p) = self
            .promises
            .iter_mut()
            .rev()
            .find(|p| p.outcome == Outcome::Running && p.due <= now)
        else {
            return (false, None);
        };
        p.outcome = Outcome::Missed;
        p.settled_at = Some(p.due);
        let stage = p.stage;
        let misses = self
            .promises
            .iter()
            .filter(|p| p.outcome == Outcome::Missed)
            .count();
        let (level, to) = match misses {
            1 if self.escalated.is_none() => (1, fallback),
            2 if self.escalated2.is_none() => (2, second_level),
            _ => return (true, None),
        };
        let Some(to) = to else {
            return (true, None);
        };
        let e = Escalation {
            to: to.to_owned(),
            at: now,
            level,
            stage: Some(stage),
        };
        if level == 1 {
            self.escalated = Some(e.clone());
        } else {
            self.escalated2 = Some(e.clone());
        }
        self.held_by = Some(to.to_owned());
        (true, Some(e))
    }
}

fn check_eta(eta: Timestamp, now: Timestamp) -> Result<(), StageError> {
    if eta <= now {
        return Err(StageError::InvalidEta(format!(
            "eta {} is not after the cloud's now {}",
            eta.as_millis(),
            now.as_millis()
        )));
    }
    if eta > now.saturating_add(MAX_ETA_AHEAD) {
        return Err(StageError::InvalidEta(format!(
            "eta {} is more than 30 days after the cloud's now {}",
            eta.as_millis(),
            now.as_millis()
        )));
    }
    Ok(())
}

/// Kept and missed promises of one stage or one partner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Kept.
    pub kept: u64,
    /// Missed.
    pub missed: u64,
    /// kept / (kept + missed); null when nothing settled.
    pub share: Option<f64>,
}

impl Tally {
    fn add(&mut self, kept: bool) {
        if kept {
            self.kept += 1;
        } else {
            self.missed += 1;
        }
        let all = self.kept + self.missed;
        #[allow(clippy::cast_precision_loss)]
        let share = self.kept as f64 / all as f64;
        self.share = Some(share);
    }
}

/// One stage's tally.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StageTally {
    /// The stage.
    pub stage: Stage,
    /// Its counts.
    #[serde(flatten)]
    pub tally: Tally,
}

/// One partner's tally, and per stage.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PartnerTally {
    /// The partner's id.
    pub partner: String,
    /// Its counts.
    #[serde(flatten)]
    pub tally: Tally,
    /// Per stage, in path order.
    pub stages: Vec<StageTally>,
}

/// Each promise settled in `[from, to]` (both included) at `now`, counted for the partner that held the
/// alert when its clock started: kept when its stage was reached, missed at its due (a
/// running promise past due counts as missed even before a tick marked it). Void and
/// running promises do not count. Partners by id, stages in path order.
pub fn shares<'a>(
    alerts: impl IntoIterator<Item = &'a Alert>,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> Vec<PartnerTally> {
    let mut by: BTreeMap<String, (Tally, BTreeMap<Stage, Tally>)> = BTreeMap::new();
    for a in alerts {
        let mut a = a.clone();
        a.upgrade();
        for p in &a.promises {
            let (kept, at) = match (p.outcome, p.settled_at) {
                (Outcome::Kept, Some(t)) => (true, t),
                (Outcome::Missed, Some(t)) => (false, t),
                (Outcome::Missed, None) => (false, p.due),
                (Outcome::Running, _) if p.due < now => (false, p.due),
                _ => continue,
            };
            if at < from || at > to {
                continue;
            }
            let entry = by.entry(p.partner.clone()).or_default();
            entry.0.add(kept);
            entry.1.entry(p.stage).or_default().add(kept);
        }
    }
    by.into_iter()
        .map(|(partner, (tally, stages))| PartnerTally {
            partner,
            tally,
            stages: stages
                .into_iter()
                .map(|(stage, tally)| StageTally { stage, tally })
                .collect(),
        })
        .collect()
}
