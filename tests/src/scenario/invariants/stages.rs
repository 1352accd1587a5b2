//! The stage invariants: each alert's stages as the cloud's API has them, the signed
//! `alert.stage` and `alert.escalated` webhooks the partners received, and the stages the
//! drivers' screens showed.
//!
//! - every alert's history is in its path's order, one step at a time (a stage repeats only
//!   as a revision of dispatched or booked, and nothing follows resolved or cancelled);
//! - every `alert.stage` webhook a partner received carries message id `msg_a<id>_s<step>`
//!   (`_l1` / `_l2` appended for the escalation levels' copies), is the API's stage for that step, and a partner receives an alert's steps in order;
//! - an alert escalated once to the desk exactly when it missed a promise, and a second time,
//!   to the regional service, exactly when it missed two or more;
//! - on each car, a stage is never shown twice (one prompt per step; a stage again only as a
//!   revision with a new ETA), and the steps shown follow each other.

use std::collections::{BTreeMap, BTreeSet};

use rapport_shared::Vin;
use serde_json::Value;

use super::super::Testbed;
use super::super::cast::{DESK, SECOND_LEVEL};
use super::super::story::What;
use super::{CaseKind, Failures, Stage, get};

/// One step of an alert's history: (stage, eta).
type Steps = BTreeMap<u64, (String, Option<u64>)>;

fn kind_of(alert: &Value) -> Option<CaseKind> {
    match alert["kind"].as_str()? {
        "critical_fault" => Some(CaseKind::CriticalFault),
        "maintenance" => Some(CaseKind::Maintenance),
        "partner_task" => Some(CaseKind::PartnerTask),
        _ => None,
    }
}

fn steps_of(alert: &Value) -> Steps {
    alert["stages"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|s| {
                    Some((
                        s["step"].as_u64()?,
                        (s["stage"].as_str()?.to_owned(), s["eta"].as_u64()),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where a stage is on a path: its index; cancelled after everything open; `None` off it.
fn rank(kind: CaseKind, stage: &str) -> Option<usize> {
    let s = Stage::parse(stage)?;
    if s == Stage::Cancelled {
        return Some(kind.path().len());
    }
    kind.path().iter().position(|p| *p == s)
}

/// Whether a history is in order: steps 1, 2, …; stages along the path, a repeat only for a
/// dispatched or booked revision with another ETA, nothing after a final stage.
pub(super) fn history_in_order(kind: CaseKind, steps: &Steps) -> Result<(), String> {
    let mut prev: Option<(usize, &str, Option<u64>)> = None;
    for (i, (step, (stage, eta))) in steps.iter().enumerate() {
        if *step != i as u64 + 1 {
            return Err(format!("step {step} where {} was due", i + 1));
        }
        let r = rank(kind, stage).ok_or_else(|| format!("{stage} is not on the path"))?;
        if let Some((pr, ps, peta)) = prev {
            if Stage::parse(ps).is_some_and(Stage::is_final) {
                return Err(format!("{stage} after {ps}"));
            }
            let revision = r == pr && matches!(ps, "dispatched" | "booked") && *eta != peta;
            if r < pr || (r == pr && !revision) {
                return Err(format!("{stage} after {ps}"));
            }
        }
        prev = Some((r, stage, *eta));
    }
    Ok(())
}

/// The fleet-wide stage invariants.
pub(super) async fn check(bed: &Testbed, f: &mut Failures) {
    // Every alert any partner heard of, and every webhook of each.
    let mut deliveries: BTreeMap<&str, Vec<(String, Value)>> = BTreeMap::new();
    let mut alerts = BTreeSet::new();
    for id in bed.partners.ids() {
        let d = bed.partners.deliveries(id);
        alerts.extend(d.iter().filter_map(|(_, b)| b["alert_id"].as_u64()));
        deliveries.insert(id, d);
    }
    let mut histories: BTreeMap<u64, Steps> = BTreeMap::new();
    for id in alerts {
        let alert = match get(bed, &format!("/api/v1/alerts/{id}")).await {
            Ok(a) => a,
            Err(e) => {
                f.0.push(e);
                continue;
            }
        };
        let Some(kind) = kind_of(&alert) else {
            f.0.push(format!("a{id}: kind {}", alert["kind"]));
            continue;
        };
        let steps = steps_of(&alert);
        if let Err(e) = history_in_order(kind, &steps) {
            f.0.push(format!(
                "a{id} stages out of order ({e}): {}",
                alert["stages"]
            ));
        }
        // Escalations exactly as the promises missed.
        let missed = alert["promises"]
            .as_array()
            .map_or(0, |p| p.iter().filter(|p| p["outcome"] == "missed").count());
        let mut escalations = BTreeSet::new();
        for (msg, b) in deliveries.values().flatten() {
            if b["type"] == "alert.escalated" && b["alert_id"].as_u64() == Some(id) {
                escalations.insert((
                    b["escalation"]["level"].as_u64().unwrap_or(0),
                    b["escalation"]["to"].as_str().unwrap_or("").to_owned(),
                    msg.clone(),
                ));
            }
        }
        let mut want = BTreeSet::new();
        if missed >= 1 {
            want.insert((1, DESK.0.to_owned(), format!("msg_a{id}_esc")));
        }
        if missed >= 2 {
            want.insert((2, SECOND_LEVEL.0.to_owned(), format!("msg_a{id}_esc2")));
        }
        f.ensure(escalations == want, || {
            format!("a{id}: {missed} promises missed, escalations {escalations:?}")
        });
        histories.insert(id, steps);
    }
    // The partners' stage webhooks.
    for (partner, ds) in &deliveries {
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for (msg, b) in ds {
            if b["type"] != "alert.stage" {
                continue;
            }
            let (Some(id), Some(step)) = (b["alert_id"].as_u64(), b["stage"]["step"].as_u64())
            else {
                f.0.push(format!("{partner}: alert.stage without id or step: {b}"));
                continue;
            };
            // One id per recipient: the alert's partner's, with `_l1` / `_l2` appended for the
            // escalation levels' (the desk's, the regional service's).
            let base = format!("msg_a{id}_s{step}");
            let level = match *partner {
                p if p == DESK.0 => "_l1",
                p if p == SECOND_LEVEL.0 => "_l2",
                _ => "",
            };
            f.ensure(*msg == base || *msg == format!("{base}{level}"), || {
                format!("{partner}: a{id} step {step} has message id {msg}")
            });
            let api = histories.get(&id).and_then(|h| h.get(&step));
            f.ensure(
                api.is_some_and(|(stage, _)| b["stage"]["stage"] == stage.as_str()),
                || {
                    format!(
                        "{partner}: a{id} step {step}: webhook {}, API {api:?}",
                        b["stage"]
                    )
                },
            );
            let prev = last.insert(id, step).unwrap_or(0);
            f.ensure(step > prev, || {
                format!("{partner}: a{id} step {step} received after step {prev}")
            });
        }
    }
    // The drivers' screens.
    for v in &bed.vehicles {
        screen(bed, v.vin(), &histories, f);
    }
}

/// `service:<alert>:<step>`.
pub(super) fn parse_id(id: &str) -> Option<(u64, u64)> {
    let rest = id.strip_prefix("service:")?;
    let (a, s) = rest.split_once(':')?;
    Some((a.parse().ok()?, s.parse().ok()?))
}

fn screen(bed: &Testbed, vin: Vin, histories: &BTreeMap<u64, Steps>, f: &mut Failures) {
    let mut ids = BTreeSet::new();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    let mut shown: BTreeSet<(u64, String, Option<u64>)> = BTreeSet::new();
    for e in bed.events.iter().filter(|e| e.vin == Some(vin)) {
        let What::PromptShown { id, kind, .. } = &e.what else {
            continue;
        };
        if kind != "service_progress" {
            continue;
        }
        f.ensure(ids.insert(id.clone()), || {
            format!("{vin}: {id} shown twice")
        });
        let Some((alert, step)) = parse_id(id) else {
            f.0.push(format!("{vin}: service prompt id {id}"));
            continue;
        };
        let prev = last.insert(alert, step).unwrap_or(0);
        f.ensure(step > prev, || {
            format!("{vin}: {id} shown after step {prev}")
        });
        match histories.get(&alert).and_then(|h| h.get(&step)) {
            None => {
                f.0.push(format!("{vin}: {id} is no step of the cloud's a{alert}"))
            }
            Some((stage, eta)) => {
                f.ensure(shown.insert((alert, stage.clone(), *eta)), || {
                    format!("{vin}: a{alert} {stage} shown twice ({id})")
                });
            }
        }
    }
}

/// A critical fault's stages as its driver saw them: contacted, and dispatched or on site,
/// each naming a partner; and its dealer's log has them as signed `alert.stage` webhooks.
pub(super) async fn on_screen(bed: &Testbed, vin: Vin, id: u64, code: &str, f: &mut Failures) {
    let alert = match get(bed, &format!("/api/v1/alerts/{id}")).await {
        Ok(a) => a,
        Err(e) => {
            f.0.push(e);
            return;
        }
    };
    let steps = steps_of(&alert);
    let names: Vec<&str> = bed
        .partners
        .ids()
        .into_iter()
        .filter_map(|p| bed.partners.name(p))
        .collect();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for e in bed.events.iter().filter(|e| e.vin == Some(vin)) {
        if let What::PromptShown {
            id: pid,
            kind,
            text,
            title,
            ..
        } = &e.what
            && kind == "service_progress"
            && let Some((a, step)) = parse_id(pid)
            && a == id
            && let Some((stage, _)) = steps.get(&step)
        {
            seen.insert(stage.clone(), format!("{title}: {text}"));
        }
    }
    for want in [&["contacted"][..], &["dispatched", "on_site"][..]] {
        match want.iter().find_map(|s| seen.get(*s).map(|t| (*s, t))) {
            None => f.0.push(format!(
                "{code} (a{id}): {} never on {vin}'s screen; it showed {seen:?}",
                want.join(" or ")
            )),
            Some((stage, text)) => f.ensure(names.iter().any(|n| text.contains(n)), || {
                format!("{code} (a{id}): the {stage} line names no partner: {text}")
            }),
        }
    }
    let logged: BTreeSet<&str> = bed
        .events
        .iter()
        .filter_map(|e| match &e.what {
            What::StageWebhook {
                alert_id, stage, ..
            } if *alert_id == format!("a{id}") => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    f.ensure(
        logged.contains("contacted")
            && (logged.contains("dispatched") || logged.contains("on_site")),
        || format!("{code} (a{id}): the partners' log has the stages {logged:?}"),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn steps(list: &[(&str, Option<u64>)]) -> Steps {
        list.iter()
            .enumerate()
            .map(|(i, (s, eta))| (i as u64 + 1, ((*s).to_owned(), *eta)))
            .collect()
    }

    #[test]
    fn a_history_in_order_passes_and_any_disorder_is_named() {
        let cf = CaseKind::CriticalFault;
        let ok = steps(&[
            ("raised", None),
            ("contacted", None),
            ("dispatched", Some(5)),
            ("dispatched", Some(3)),
            ("on_site", None),
            ("resolved", None),
        ]);
        assert_eq!(history_in_order(cf, &ok), Ok(()));
        // Skipping is allowed here (the cloud refuses it to partners, but resolved may come
        // from any open stage); going back, repeating without a new ETA, or after the end
        // is not.
        assert!(history_in_order(cf, &steps(&[("raised", None), ("resolved", None)])).is_ok());
        let back = steps(&[
            ("raised", None),
            ("dispatched", Some(1)),
            ("contacted", None),
        ]);
        assert!(history_in_order(cf, &back).is_err());
        let twice = steps(&[("raised", None), ("contacted", None), ("contacted", None)]);
        assert!(history_in_order(cf, &twice).is_err());
        let same_eta = steps(&[
            ("raised", None),
            ("dispatched", Some(1)),
            ("dispatched", Some(1)),
        ]);
        assert!(history_in_order(cf, &same_eta).is_err());
        let after_end = steps(&[("raised", None), ("cancelled", None), ("resolved", None)]);
        assert!(history_in_order(cf, &after_end).is_err());
        let off_path = steps(&[("raised", None), ("booked", Some(1))]);
        assert!(history_in_order(cf, &off_path).is_err());
        assert!(history_in_order(CaseKind::Maintenance, &off_path).is_ok());
        let gap: Steps = [
            (1, ("raised".to_owned(), None)),
            (3, ("contacted".to_owned(), None)),
        ]
        .into_iter()
        .collect();
        assert!(history_in_order(cf, &gap).is_err());
    }

    #[test]
    fn service_prompt_ids_parse() {
        assert_eq!(parse_id("service:12:3"), Some((12, 3)));
        assert_eq!(parse_id("service:12"), None);
        assert_eq!(parse_id("fault:P0300"), None);
        assert_eq!(parse_id("service:x:3"), None);
    }
}
