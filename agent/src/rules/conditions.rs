//! Conditions worth a prompt: from what the agent remembers and the time, the set of prompts
//! that should exist now, each under an id that names its condition — so a changed condition
//! is a new prompt and a dismissed one stays dismissed. Pure: memory, config and `now` in,
//! [`Wanted`] prompts out, with the words the driver reads.
//!
//! Owns: which conditions prompt (maintenance stages, faults by severity, break-in, milestones,
//! anniversaries, campaigns, service progress), their ids, titles and texts. Does not own: when a prompt may be on
//! the screen ([`crate::gate`]), nor its life after creation ([`super::engine`]).

use rapport_shared::Severity;
use rapport_shared::Timestamp;
use rapport_shared::v1::downlink::{Campaign, Priority};
use rapport_shared::v1::uplink::PromptKind;

use crate::config::{Prompts, Vehicle};
use crate::memory::{Memory, Stage};
use crate::rules::calendar;
use crate::rules::maintenance::{DueBy, ItemStatus};

/// One prompt that should exist now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wanted {
    /// Its id (see [`crate::memory::PromptRecord`]).
    pub(crate) id: String,
    /// What it is about.
    pub(crate) kind: PromptKind,
    /// Item id, DTC code, milestone km, campaign id.
    pub(crate) subject: String,
    /// Shown at once, even while driving.
    pub(crate) critical: bool,
    /// Title.
    pub(crate) title: String,
    /// Text.
    pub(crate) text: String,
    /// Order among prompts waiting for the gate (lower first).
    pub(crate) rank: u8,
}

/// Days an anniversary prompt may wait for a safe moment before it lapses.
pub(crate) const ANNIVERSARY_WINDOW_DAYS: i64 = 7;

/// Everything the conditions read.
pub(crate) struct Inputs<'a> {
    /// Memory.
    pub(crate) memory: &'a Memory,
    /// `[vehicle]`.
    pub(crate) vehicle: &'a Vehicle,
    /// `[prompts]`.
    pub(crate) prompts: &'a Prompts,
    /// The maintenance checklist now (items not Ok).
    pub(crate) checklist: &'a [ItemStatus],
    /// Now.
    pub(crate) now: Timestamp,
}

/// Every prompt that should exist now, appended to `out`.
pub(crate) fn wanted(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    faults(inputs, out);
    maintenance(inputs, out);
    engagement(inputs, out);
    campaigns(inputs, out);
    service_cases(inputs, out);
}

/// Each service case's newest step, under `service:<alert id>:<step>`, so a newer step is a
/// new prompt and the older one, not yet shown, goes away unseen. A case the driver cancelled
/// asks for nothing more (its own cancel is not echoed back).
fn service_cases(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    for (id, case) in &inputs.memory.service_cases {
        let Some(p) = case.latest() else { continue };
        if case.cancelled_by_driver() {
            continue;
        }
        let (title, text) = super::service::words(p, inputs.now, inputs.prompts.utc_offset_minutes);
        out.push(Wanted {
            id: format!("service:{id}:{}", p.step),
            kind: PromptKind::ServiceProgress,
            subject: super::service::clean(&p.subject),
            critical: false,
            title,
            text,
            rank: 2,
        });
    }
}

fn title_case(id: &str) -> String {
    let mut s: String = id.replace(['_', '-'], " ");
    if let Some(first) = s.get(..1) {
        let upper = first.to_ascii_uppercase();
        s.replace_range(..1, &upper);
    }
    s
}

fn faults(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    for (code, h) in &inputs.memory.dtcs {
        if !h.active || h.severity == Severity::Info {
            continue;
        }
        let critical = h.severity == Severity::Critical;
        let (title, text) = if critical {
            (
                format!("Serious fault {code}"),
                "Stop safely as soon as you can and contact your dealer.".to_owned(),
            )
        } else {
            (
                format!("Fault {code}"),
                "Have the car checked at your next opportunity.".to_owned(),
            )
        };
        out.push(Wanted {
            id: format!("fault:{code}:{}:{}", h.times_seen, h.severity.as_str()),
            kind: PromptKind::Fault,
            subject: code.to_string(),
            critical,
            title,
            text,
            rank: if critical { 0 } else { 1 },
        });
    }
}

fn due_text(s: &ItemStatus) -> String {
    let km = s.remaining_m.map(|m| m as f64 / 1000.0);
    let days = s.remaining_days;
    match s.stage {
        Stage::Ok | Stage::DueSoon => {
            let mut parts = Vec::new();
            if let Some(km) = km {
                parts.push(format!("{km:.0} km"));
            }
            if let Some(d) = days {
                parts.push(format!("{d} days"));
            }
            if let Some(h) = s.remaining_engine_s {
                parts.push(format!("{:.0} engine hours", h as f64 / 3600.0));
            }
            if parts.is_empty() {
                "Due soon.".to_owned()
            } else {
                format!("Due in {}, whichever comes first.", parts.join(" or "))
            }
        }
        Stage::Due => "Due now: book a visit with your dealer.".to_owned(),
        Stage::Overdue => match (s.due_by, km, days) {
            (Some(DueBy::Distance), Some(km), _) => format!("Overdue by {:.0} km.", -km),
            (Some(DueBy::Time), _, Some(d)) => format!("Overdue by {} days.", -d),
            _ => "Overdue: please book a visit soon.".to_owned(),
        },
    }
}

fn maintenance(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    for s in inputs.checklist {
        if s.stage == Stage::Ok {
            continue;
        }
        let (kind, name) = if s.first_service {
            (PromptKind::FirstService, "First service".to_owned())
        } else {
            (PromptKind::Maintenance, title_case(&s.item))
        };
        let title = match s.stage {
            Stage::Ok | Stage::DueSoon => format!("{name} due soon"),
            Stage::Due => format!("{name} due"),
            Stage::Overdue => format!("{name} overdue"),
        };
        out.push(Wanted {
            id: format!("maintenance:{}:{}:{}", s.item, s.cycle, s.stage.as_str()),
            kind,
            subject: s.item.clone(),
            critical: false,
            title,
            text: due_text(s),
            rank: match s.stage {
                Stage::Overdue => 2,
                Stage::Due => 3,
                Stage::Ok | Stage::DueSoon => 4,
            },
        });
    }
}

fn engagement(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    let mem = inputs.memory;
    let cfg = inputs.prompts;
    let (Some(odo), Some(first)) = (mem.vehicle.odometer, mem.vehicle.first_odometer) else {
        return anniversary(inputs, out);
    };
    let km = odo.meters() / 1000;
    let first_km = first.meters() / 1000;
    let break_in = u64::from(cfg.break_in_km);
    if break_in > 0 && first_km < break_in {
        if km < break_in {
            let since = mem
                .vehicle
                .first_seen
                .map_or(0, |t| calendar::whole_days_between(t, inputs.now));
            let n = since / i64::from(cfg.break_in_repeat_days.max(1));
            out.push(Wanted {
                id: format!("break_in:advice:{n}"),
                kind: PromptKind::BreakIn,
                subject: "break_in".to_owned(),
                critical: false,
                title: "Running in your car".to_owned(),
                text: format!(
                    "For the first {break_in} km, vary your speed, avoid full throttle and \
                     high revs, and avoid towing. {} km to go.",
                    break_in.saturating_sub(km)
                ),
                rank: 6,
            });
        } else {
            out.push(Wanted {
                id: "break_in:complete".to_owned(),
                kind: PromptKind::BreakInComplete,
                subject: "break_in".to_owned(),
                critical: false,
                title: "Break-in complete".to_owned(),
                text: format!("{break_in} km done: your engine is run in. Enjoy the drive!"),
                rank: 6,
            });
        }
    }
    // The highest milestone crossed while the agent watched (older ones are not news).
    if let Some(m) = cfg
        .milestones_km
        .iter()
        .copied()
        .filter(|&m| first_km < u64::from(m) && km >= u64::from(m))
        .max()
    {
        out.push(Wanted {
            id: format!("milestone:{m}"),
            kind: PromptKind::Milestone,
            subject: m.to_string(),
            critical: false,
            title: format!("{m} km together"),
            text: format!("Your car just passed {m} km. Thank you for driving with us."),
            rank: 7,
        });
    }
    anniversary(inputs, out);
}

fn anniversary(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    let offset = inputs.prompts.utc_offset_minutes;
    let delivered = inputs.vehicle.delivered;
    let Some(today) = calendar::local_date(inputs.now, offset) else {
        return;
    };
    let before_date = (today.month, today.day) < (delivered.month, delivered.day);
    let years =
        u32::from(today.year.saturating_sub(delivered.year)).saturating_sub(u32::from(before_date));
    if years == 0 {
        return;
    }
    let date = calendar::add_months_to_day(
        calendar::days_from_civil(delivered),
        years.saturating_mul(12),
    );
    let since = calendar::days_from_civil(today) - date;
    if (0..ANNIVERSARY_WINDOW_DAYS).contains(&since) {
        out.push(Wanted {
            id: format!("anniversary:{years}"),
            kind: PromptKind::Anniversary,
            subject: years.to_string(),
            critical: false,
            title: format!("{years} year{} together", if years == 1 { "" } else { "s" }),
            text: "Happy anniversary with your car!".to_owned(),
            rank: 7,
        });
    }
}

/// Whether a campaign applies to this car now.
pub(crate) fn campaign_applies(c: &Campaign, inputs: &Inputs<'_>) -> bool {
    let now = inputs.now;
    if now < c.valid_from || now >= c.valid_until {
        return false;
    }
    let t = &c.target;
    let odo = inputs.memory.vehicle.odometer;
    if let Some(min) = t.min_odometer
        && odo.is_none_or(|o| o < min)
    {
        return false;
    }
    if let Some(max) = t.max_odometer
        && odo.is_none_or(|o| o > max)
    {
        return false;
    }
    let today = calendar::local_day(now, inputs.prompts.utc_offset_minutes);
    let owned = today - calendar::days_from_civil(inputs.vehicle.delivered);
    if let Some(min) = t.min_days_owned
        && owned < i64::from(min)
    {
        return false;
    }
    if let Some(max) = t.max_days_owned
        && owned > i64::from(max)
    {
        return false;
    }
    if t.no_active_faults
        && inputs
            .memory
            .dtcs
            .values()
            .any(|h| h.active && h.severity != Severity::Info)
    {
        return false;
    }
    true
}

fn campaigns(inputs: &Inputs<'_>, out: &mut Vec<Wanted>) {
    for (id, rec) in &inputs.memory.campaigns {
        let c = &rec.campaign;
        if !campaign_applies(c, inputs) {
            continue;
        }
        out.push(Wanted {
            id: format!("campaign:{id}"),
            kind: PromptKind::Campaign,
            subject: id.clone(),
            critical: false,
            title: c.title.clone(),
            text: c.text.clone(),
            rank: match c.priority {
                Priority::High => 5,
                Priority::Normal => 8,
                Priority::Low => 9,
            },
        });
    }
}
