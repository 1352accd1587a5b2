//! The checks of a maintenance schedule ([`MaintenanceItem`]s), wherever it comes from: the
//! agent's config (`[[maintenance.items]]`) and a [`super::downlink::ScheduleUpdate`] from
//! the cloud are held to the same rules, so a schedule the config would refuse is refused
//! when it arrives by downlink too.
//!
//! Owns: the rules and their messages, as a structured list ([`ScheduleProblem`]) that says
//! which item and which field. Does not own: key paths in a file (the agent turns each
//! problem into a config problem under its own path), nor what to do with a refused schedule.

use core::fmt;

use super::downlink::MaintenanceItem;

/// Longest item id: ids are part of prompt ids and records.
pub const MAX_ITEM_ID_LEN: usize = 64;

/// One problem with one item of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleProblem {
    /// The item's position in the schedule.
    pub index: usize,
    /// The field (`"every_km"`), or `None` when the problem is with the item as a whole.
    pub field: Option<&'static str>,
    /// What is wrong, e.g. `must be at least 1 (leave it out for no interval)`.
    pub message: String,
}

impl fmt::Display for ScheduleProblem {
    /// `items[2].every_km: …`, or `items[3]: …` for the item as a whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "items[{}]", self.index)?;
        if let Some(field) = self.field {
            write!(f, ".{field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem with a schedule, in item order; empty when fine.
///
/// Checks: ids present, unique, at most [`MAX_ITEM_ID_LEN`] bytes, without `:` (prompt ids
/// use it as a separator), spaces or control characters; at least one interval; no zero
/// interval; a due-soon window shorter than the intervals it applies to (a month counts as
/// 28 days) and not set without one.
pub fn check_schedule(items: &[MaintenanceItem]) -> Vec<ScheduleProblem> {
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut bad = |field: Option<&'static str>, message: String| {
            problems.push(ScheduleProblem {
                index: i,
                field,
                message,
            });
        };

        let id = item.id.as_str();
        if id.trim().is_empty() {
            bad(Some("id"), "must not be empty".into());
        } else if id
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
        {
            bad(
                Some("id"),
                format!("{id:?} must not contain ':', spaces or control characters"),
            );
        } else if id.len() > MAX_ITEM_ID_LEN {
            bad(
                Some("id"),
                format!("must be at most {MAX_ITEM_ID_LEN} bytes"),
            );
        }
        if let Some(j) = items.iter().take(i).position(|other| other.id == item.id) {
            bad(Some("id"), format!("{id:?} is used by items[{j}]"));
        }

        let intervals = [
            ("every_km", item.every_km),
            ("every_months", item.every_months),
            ("every_engine_hours", item.every_engine_hours),
            ("first_at_km", item.first_at_km),
            ("first_at_months", item.first_at_months),
        ];
        if intervals.iter().all(|(_, v)| v.is_none()) {
            bad(
                None,
                "has no interval: set every_km, every_months, every_engine_hours, \
                 first_at_km or first_at_months"
                    .into(),
            );
            continue;
        }
        for (field, value) in intervals {
            if value == Some(0) {
                bad(
                    Some(field),
                    "must be at least 1 (leave it out for no interval)".into(),
                );
            }
        }

        if let Some(window) = item.due_soon_km {
            let limits = [
                ("every_km", item.every_km),
                ("first_at_km", item.first_at_km),
            ];
            if limits.iter().all(|(_, v)| v.is_none()) {
                bad(
                    Some("due_soon_km"),
                    "has no effect without every_km or first_at_km".into(),
                );
            }
            for (field, limit) in limits {
                if let Some(km) = limit.filter(|&km| km > 0 && window >= km) {
                    bad(
                        Some("due_soon_km"),
                        format!("must be less than {field} ({km} km), not {window}"),
                    );
                }
            }
        }
        if let Some(window) = item.due_soon_days {
            let limits = [
                ("every_months", item.every_months),
                ("first_at_months", item.first_at_months),
            ];
            if limits.iter().all(|(_, v)| v.is_none()) {
                bad(
                    Some("due_soon_days"),
                    "has no effect without every_months or first_at_months".into(),
                );
            }
            for (field, limit) in limits {
                let shortest = limit.map(|months| u64::from(months) * 28);
                if let Some(days) = shortest.filter(|&d| d > 0 && u64::from(window) >= d) {
                    bad(
                        Some("due_soon_days"),
                        format!("must be less than {field} (at least {days} days), not {window}"),
                    );
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> MaintenanceItem {
        MaintenanceItem {
            id: id.into(),
            ..MaintenanceItem::default()
        }
    }

    #[test]
    fn problems_name_the_item_and_the_field() {
        let items = [
            MaintenanceItem {
                every_km: Some(10_000),
                ..item("oil")
            },
            item("tyres"),
            MaintenanceItem {
                every_months: Some(0),
                ..item("oil")
            },
        ];
        let got: Vec<String> = check_schedule(&items)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "items[1]: has no interval: set every_km, every_months, every_engine_hours, \
                 first_at_km or first_at_months",
                "items[2].id: \"oil\" is used by items[0]",
                "items[2].every_months: must be at least 1 (leave it out for no interval)",
            ]
        );
        assert_eq!(
            check_schedule(&items)[1],
            ScheduleProblem {
                index: 2,
                field: Some("id"),
                message: "\"oil\" is used by items[0]".into(),
            }
        );
        assert!(check_schedule(&items[..1]).is_empty());
        assert!(check_schedule(&[]).is_empty());
    }
}
