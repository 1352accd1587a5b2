//! Unit tests on small strategy files written here: parsing and every config error with its
//! key path, matching, consents, cadence, cap, cooldown, the history and `next_in_cell`.
#![allow(clippy::unwrap_used)]

use rapport_shared::{CampaignTarget, Odometer, Priority};

use super::*;
use crate::fleet::model::{CarMaturity, Category, Lifecycle, ServiceMaturity};

/// 2026-11-03 09:30 UTC.
pub(super) const T0: u64 = 1_793_698_200_000;
pub(super) const HOUR: u64 = 3_600_000;

pub(super) fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// `"passenger novice junior active new"` → layers.
pub(super) fn l(s: &str) -> Layers {
    let v: Vec<&str> = s.split_whitespace().collect();
    Layers {
        category: v[0].parse().unwrap(),
        car: v[1].parse().unwrap(),
        service: v[2].parse().unwrap(),
        activity: v[3].parse().unwrap(),
        lifecycle: v[4].parse().unwrap(),
    }
}

/// Every cell of the matrix.
pub(super) fn every_cell() -> Vec<Layers> {
    let mut out = Vec::new();
    for &category in Category::ALL {
        for &car in CarMaturity::ALL {
            for &service in ServiceMaturity::ALL {
                for &activity in Activity::ALL {
                    for &lifecycle in Lifecycle::ALL {
                        out.push(Layers {
                            category,
                            car,
                            service,
                            activity,
                            lifecycle,
                        });
                    }
                }
            }
        }
    }
    out
}

pub(super) const BOTH: Consents = Consents {
    partner_sharing: true,
    engagement: true,
};

pub(super) fn ctx(
    layers: Layers,
    consents: Consents,
    history: &ContactHistory,
) -> DriverContext<'_> {
    DriverContext {
        layers,
        consents,
        history,
    }
}

fn strategies(text: &str) -> Strategies {
    Strategies::from_toml("t.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(text: &str) -> Vec<String> {
    let c = StrategyConfig::from_toml("t.toml", text).unwrap();
    c.validate().iter().map(ToString::to_string).collect()
}

pub(super) fn acted(decisions: &[Decision]) -> Vec<(&str, &Action)> {
    decisions
        .iter()
        .filter_map(|d| match &d.outcome {
            Outcome::Act(a) => Some((d.rule.as_str(), a)),
            Outcome::Suppressed { .. } => None,
        })
        .collect()
}

fn reasons(decisions: &[Decision]) -> Vec<(&str, SuppressReason)> {
    decisions
        .iter()
        .filter_map(|d| match &d.outcome {
            Outcome::Suppressed { reason } => Some((d.rule.as_str(), *reason)),
            Outcome::Act(_) => None,
        })
        .collect()
}

const TWO_CAMPAIGNS: &str = r#"
[campaign.hello]
title = "Hello"
text = "Welcome"
valid_days = 10
[campaign.again]
title = "Again"
text = "Still here?"
priority = "high"
valid_days = 3
[campaign.again.target]
min_odometer_km = 1000
max_days_owned = 365
no_active_faults = true
"#;

#[test]
fn an_empty_file_is_the_default_cadence_and_no_rules() {
    let s = strategies("");
    assert_eq!(*s.cadence(), Cadence::default());
    assert_eq!(s.cadence().days(Activity::Active), 3);
    assert_eq!(s.cadence().days(Activity::Dormant), 30);
    assert_eq!(s.rule_names().count(), 0);
    let h = ContactHistory::new();
    let c = ctx(l("passenger novice junior active new"), BOTH, &h);
    assert!(s.decide(&Event::InCell, &c, at(T0)).is_empty());
    assert_eq!(s.next_in_cell(&c, at(T0)), None);
}

#[test]
fn every_config_problem_is_reported_with_its_key_path() {
    let p = problems(
        r#"
[cadence]
active = 0
dormant = 400
max_campaigns_per_30_days = 0

[campaign.ok]
title = "t"
text = "x"
valid_days = 5

[campaign."bad id"]
title = ""
text = " "
valid_days = 0
[campaign."bad id".target]
min_odometer_km = 500
max_odometer_km = 100
min_days_owned = 10
max_days_owned = 1

[[rule]]
name = "r0"
on = "in_cell"
do = "campaign"
campaign = "x"

[[rule]]
name = "r1"
on = "layer_changed"
when = { activity = ["active", "actve"], car = [] , lifecycle = ["lapsed"] }
do = "campaign"
campaign = "ok"
task = "not for campaigns"

[[rule]]
name = "r2"
on = "maintenance_due"
do = "partner_task"
task = "Service {item}"

[[rule]]
name = "r3"
on = "layer_changed"
do = "partner_task"
partner = "dealer"
capability = "tyres"
task = "Oil {item}"
suggestion = { sometimes = "x", declining = "call {code}" }
cooldown_days = 0

[[rule]]
name = "r1"
on = "critical_fault"
do = "partner_task"
partner = "provider"
task = " "

[[rule]]
name = ""
on = "in_cell"
do = "nothing"
campaign = "ok"

[[rule]]
name = "r6"
on = "in_cell"
do = "campaign"

[[rule]]
name = "r7"
on = "in_cell"
do = "campaign"
campaign = "bad id"
"#,
    );
    let expected = [
        "cadence.active: 0 days: must be 1 (daily) to 366",
        "cadence.dormant: 400 days: must be 1 (daily) to 366",
        "cadence.max_campaigns_per_30_days: 0: must be 1 to 64 (to stop campaigns, remove the campaign rules)",
        "campaign.bad id: \"bad id\": a campaign id is letters, digits, - and _ (it names the campaign on the car)",
        "campaign.bad id.title: empty",
        "campaign.bad id.text: empty",
        "campaign.bad id.valid_days: 0: must be 1 to 366",
        "campaign.bad id.target.max_odometer_km: 100 is below min_odometer_km (500): no car would ever match",
        "campaign.bad id.target.max_days_owned: 1 is below min_days_owned (10): no car would ever match",
        "rule[0].campaign: no campaign \"x\" (templates: bad id, ok)",
        "rule[1].when.activity[1]: \"actve\" is not one of active, declining, churned, dormant",
        "rule[1].when.car: an empty list matches no driver; remove the key to match any",
        "rule[1].task: not used by do = \"campaign\"",
        "rule[2].partner: missing: do = \"partner_task\" needs partner = \"dealer\", \"fallback\" or \"provider\"",
        "rule[3].capability: only for partner = \"provider\"",
        "rule[3].cooldown_days: 0: must be 1 to 366 (remove the key for no cooldown)",
        "rule[3].task: {item} is not available on layer_changed: {item} works on maintenance_due, {code} on critical_fault",
        "rule[3].suggestion.sometimes: \"sometimes\" is not a layer value (activity, car or service maturity, lifecycle, category) nor `default`",
        "rule[3].suggestion.default: missing: the text for drivers no other key matches",
        "rule[3].suggestion: {code} is not available on layer_changed: {item} works on maintenance_due, {code} on critical_fault",
        "rule[4].name: \"r1\" is used by an earlier rule; names must be unique",
        "rule[4].capability: missing or empty: partner = \"provider\" needs the capability to look for",
        "rule[4].task: missing or empty: what the partner is asked to do",
        "rule[5].name: empty; every rule needs a name",
        "rule[5].campaign: not used by do = \"nothing\"",
        "rule[6].campaign: missing: do = \"campaign\" needs the id of a [campaign.<id>] template",
    ];
    for e in expected {
        assert!(
            p.iter().any(|x| x == e),
            "missing {e:?} in\n{}",
            p.join("\n")
        );
    }
    // rule[2]'s {item} is fine on maintenance_due; rule[7] refers to a template whose own
    // problems are already listed: nothing more.
    assert_eq!(p.len(), expected.len(), "{}", p.join("\n"));
    // The same through the loader: one error naming the file and listing them all.
    let err = Strategies::from_toml("s.toml", "[cadence]\nactive = 0\n[[rule]]\nname = \"a\"\non = \"in_cell\"\ndo = \"campaign\"\ncampaign = \"nope\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("s.toml: 2 problem(s):\n"), "{text}");
    assert!(text.contains("  cadence.active: 0 days"), "{text}");
    assert!(
        text.contains("  rule[0].campaign: no campaign \"nope\" (templates: none defined)"),
        "{text}"
    );
}

#[test]
fn a_campaign_rule_on_maintenance_and_fault_events_is_fine() {
    let s = strategies(&format!(
        "{TWO_CAMPAIGNS}
[[rule]]
name = \"service_offer\"
on = \"maintenance_due\"
do = \"campaign\"
campaign = \"hello\"
[[rule]]
name = \"fault_note\"
on = \"critical_fault\"
do = \"nothing\"
"
    ));
    let h = ContactHistory::new();
    let c = ctx(l("passenger novice junior active new"), BOTH, &h);
    let d = s.decide(&Event::MaintenanceDue { item: "oil".into() }, &c, at(T0));
    assert_eq!(d.len(), 1);
    assert!(
        d[0].engagement,
        "a campaign is engagement whatever its event"
    );
    assert!(matches!(acted(&d)[0].1, Action::Campaign { .. }));
    let d = s.decide(
        &Event::CriticalFault {
            code: "P0133".parse().unwrap(),
        },
        &c,
        at(T0),
    );
    assert_eq!(acted(&d), vec![("fault_note", &Action::Nothing)]);
    assert!(!d[0].engagement);
}

#[test]
fn syntax_errors_give_the_file_line_column_and_key_path() {
    let text = "[[rule]]\nname = \"a\"\non = \"in_cell\"\ndo = \"nothing\"\n\n[[rule]]\nname = \"b\"\non = \"in_cell\"\ndo = \"nothing\"\ncooldown = 3\n";
    let err = StrategyConfig::from_toml("s.toml", text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("s.toml:10:1: rule[1].cooldown: "), "{msg}");
    assert!(msg.contains("unknown field `cooldown`"), "{msg}");

    let err = StrategyConfig::from_toml(
        "s.toml",
        "[[rule]]\nname = \"a\"\non = \"sometimes\"\ndo = \"nothing\"\n",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("s.toml:3:6: rule[0].on: "), "{msg}");
    assert!(msg.contains("unknown variant `sometimes`"), "{msg}");

    let err = StrategyConfig::from_toml("s.toml", "[cadence]\nactive = \"often\"\n").unwrap_err();
    assert!(
        err.to_string().starts_with("s.toml:2:10: cadence.active: "),
        "{err}"
    );

    let err = StrategyConfig::from_toml(
        "s.toml",
        "[[rule]]\nname = \"a\"\non = \"in_cell\"\ndo = \"partner_task\"\nsuggestion = 3\n",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("s.toml:5:14: rule[0].suggestion: "),
        "{msg}"
    );
    assert!(
        msg.contains("a text, or a table of texts keyed by layer value"),
        "{msg}"
    );

    let err = StrategyConfig::from_toml("s.toml", "[[rule]\n").unwrap_err();
    assert!(err.to_string().starts_with("s.toml:1:"), "{err}");
}

#[test]
fn loading_a_file_names_it_in_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strategies.toml");
    let err = Strategies::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read", path.display())),
        "{err}"
    );

    std::fs::write(&path, "[cadence]\nactive = 3\nweekly = 7\n").unwrap();
    let err = Strategies::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:1: cadence.weekly: ", path.display())),
        "{err}"
    );

    std::fs::write(&path, "[cadence]\ndormant = 0\n").unwrap();
    let err = Strategies::load(&path).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: 1 problem(s):\n  cadence.dormant: ",
            path.display()
        )),
        "{err}"
    );

    std::fs::write(&path, "[cadence]\ndormant = 14\n").unwrap();
    assert_eq!(Strategies::load(&path).unwrap().cadence().dormant, 14);
}

const ENTER_DECLINING: &str = r#"
[campaign.hello]
title = "Hello"
text = "Welcome"
valid_days = 10
[[rule]]
name = "enter"
on = "layer_changed"
when = { car = ["novice"], activity = ["declining", "churned"] }
do = "campaign"
campaign = "hello"
[[rule]]
name = "stay"
on = "in_cell"
when = { activity = ["declining"] }
do = "nothing"
"#;

#[test]
fn layer_changed_fires_on_entering_a_matching_cell_only() {
    let s = strategies(ENTER_DECLINING);
    let h = ContactHistory::new();
    let fire = |from: Option<&str>, to: &str| {
        let to = l(to);
        let d = s.decide(
            &Event::LayerChanged {
                from: from.map(l),
                to,
            },
            &ctx(to, BOTH, &h),
            at(T0),
        );
        d.iter().map(|d| d.rule.clone()).collect::<Vec<_>>()
    };
    // Entering from outside, or a first placement.
    assert_eq!(
        fire(
            Some("passenger novice junior active new"),
            "passenger novice junior declining new"
        ),
        ["enter"]
    );
    assert_eq!(
        fire(None, "commercial novice mature churned lapsed"),
        ["enter"]
    );
    // Moving inside the set of cells (declining → churned, or another axis) is not entering.
    assert!(
        fire(
            Some("passenger novice junior declining new"),
            "passenger novice junior churned new"
        )
        .is_empty()
    );
    assert!(
        fire(
            Some("passenger novice junior declining new"),
            "passenger novice growing declining retained"
        )
        .is_empty()
    );
    // Outside the cells.
    assert!(
        fire(
            Some("passenger novice junior active new"),
            "passenger skilled junior declining new"
        )
        .is_empty()
    );
    assert!(fire(None, "passenger novice junior dormant new").is_empty());
    // in_cell rules ignore layer changes; layer rules ignore other events.
    let c = ctx(l("passenger novice junior declining new"), BOTH, &h);
    let d = s.decide(&Event::InCell, &c, at(T0));
    assert_eq!(acted(&d), vec![("stay", &Action::Nothing)]);
    assert!(
        s.decide(&Event::MaintenanceDue { item: "oil".into() }, &c, at(T0))
            .is_empty()
    );
    let c = ctx(l("passenger novice junior active new"), BOTH, &h);
    assert!(s.decide(&Event::InCell, &c, at(T0)).is_empty());
}

#[test]
fn a_campaign_is_built_from_its_template_with_a_daily_id() {
    let s = strategies(&format!(
        "{TWO_CAMPAIGNS}
[cadence]
active = 1
[[rule]]
name = \"r\"
on = \"in_cell\"
do = \"campaign\"
campaign = \"again\"
"
    ));
    let h = ContactHistory::new();
    let c = ctx(l("passenger novice junior active new"), BOTH, &h);
    let d = s.decide(&Event::InCell, &c, at(T0));
    let Action::Campaign { campaign } = acted(&d)[0].1 else {
        panic!("{d:?}")
    };
    assert_eq!(campaign.campaign_id, "again-2026-11-03");
    assert_eq!(campaign.title, "Again");
    assert_eq!(campaign.text, "Still here?");
    assert_eq!(campaign.priority, Priority::High);
    assert_eq!(campaign.valid_from, at(T0));
    assert_eq!(campaign.valid_until, at(T0 + 3 * DAY_MS));
    assert_eq!(
        campaign.target,
        CampaignTarget {
            min_odometer: Some(Odometer::from_km(1000)),
            max_odometer: None,
            min_days_owned: None,
            max_days_owned: Some(365),
            no_active_faults: true,
        }
    );
    // Later the same UTC day: the same campaign; the next day: a new one.
    let d = s.decide(&Event::InCell, &c, at(1_793_750_399_000));
    let Action::Campaign { campaign: same } = acted(&d)[0].1 else {
        panic!("{d:?}")
    };
    assert_eq!(same.campaign_id, "again-2026-11-03");
    let d = s.decide(&Event::InCell, &c, at(1_793_750_400_000));
    let Action::Campaign { campaign: next } = acted(&d)[0].1 else {
        panic!("{d:?}")
    };
    assert_eq!(next.campaign_id, "again-2026-11-04");
}

#[test]
fn civil_dates_are_utc_calendar_dates() {
    assert_eq!(civil_date(at(0)), (1970, 1, 1));
    assert_eq!(civil_date(at(951_782_400_000)), (2000, 2, 29));
    assert_eq!(civil_date(at(951_782_400_000 - 1)), (2000, 2, 28));
    assert_eq!(civil_date(at(1_700_000_000_000)), (2023, 11, 14));
    assert_eq!(civil_date(at(T0)), (2026, 11, 3));
    assert_eq!(civil_date(at(1_798_761_600_000)), (2027, 1, 1));
    // Far future: no overflow, no panic.
    let (y, m, d) = civil_date(at(u64::MAX));
    assert!(y > 500_000_000 && (1..=12).contains(&m) && (1..=31).contains(&d));
}

const CONSENTS: &str = r#"
[campaign.hello]
title = "Hello"
text = "Welcome"
valid_days = 10
[[rule]]
name = "campaign"
on = "in_cell"
do = "campaign"
campaign = "hello"
[[rule]]
name = "follow_up"
on = "layer_changed"
do = "partner_task"
partner = "fallback"
task = "Call"
[[rule]]
name = "service"
on = "maintenance_due"
do = "partner_task"
partner = "dealer"
task = "Due: {item}"
[[rule]]
name = "fault"
on = "critical_fault"
do = "partner_task"
partner = "provider"
capability = "roadside"
task = "Fault {code}"
suggestion = "Tow {code} if needed"
"#;

#[test]
fn opting_out_of_engagement_stops_campaigns_and_follow_ups_not_service() {
    let s = strategies(CONSENTS);
    let h = ContactHistory::new();
    let layers = l("passenger novice junior active new");
    let no_engagement = Consents {
        partner_sharing: true,
        engagement: false,
    };
    let c = ctx(layers, no_engagement, &h);
    let d = s.decide(&Event::InCell, &c, at(T0));
    assert_eq!(
        reasons(&d),
        vec![("campaign", SuppressReason::NoEngagementConsent)]
    );
    let d = s.decide(
        &Event::LayerChanged {
            from: None,
            to: layers,
        },
        &c,
        at(T0),
    );
    assert_eq!(
        reasons(&d),
        vec![("follow_up", SuppressReason::NoEngagementConsent)]
    );
    // Service still reaches the partner, placeholders filled.
    let d = s.decide(
        &Event::MaintenanceDue {
            item: "brake_fluid".into(),
        },
        &c,
        at(T0),
    );
    assert_eq!(
        acted(&d),
        vec![(
            "service",
            &Action::PartnerTask {
                target: PartnerTarget::Dealer,
                task: "Due: brake_fluid".into(),
                suggestion: String::new(),
            }
        )]
    );
    let d = s.decide(
        &Event::CriticalFault {
            code: "U0100".parse().unwrap(),
        },
        &c,
        at(T0),
    );
    assert_eq!(
        acted(&d),
        vec![(
            "fault",
            &Action::PartnerTask {
                target: PartnerTarget::Provider {
                    capability: "roadside".into()
                },
                task: "Fault U0100".into(),
                suggestion: "Tow U0100 if needed".into(),
            }
        )]
    );
}

#[test]
fn without_sharing_consent_no_partner_task_is_opened() {
    let s = strategies(CONSENTS);
    let h = ContactHistory::new();
    let layers = l("commercial veteran mature churned retained");
    let no_sharing = Consents {
        partner_sharing: false,
        engagement: true,
    };
    let c = ctx(layers, no_sharing, &h);
    for event in [
        Event::LayerChanged {
            from: None,
            to: layers,
        },
        Event::MaintenanceDue { item: "oil".into() },
        Event::CriticalFault {
            code: "P0133".parse().unwrap(),
        },
    ] {
        let d = s.decide(&event, &c, at(T0));
        assert_eq!(d.len(), 1, "{event:?}");
        assert_eq!(
            d[0].outcome,
            Outcome::Suppressed {
                reason: SuppressReason::NoSharingConsent
            },
            "{event:?}"
        );
    }
    // Campaigns do not need sharing.
    assert_eq!(acted(&s.decide(&Event::InCell, &c, at(T0))).len(), 1);
    // Without any consent the sharing reason is given for partner tasks.
    let c = ctx(layers, Consents::default(), &h);
    let d = s.decide(
        &Event::LayerChanged {
            from: None,
            to: layers,
        },
        &c,
        at(T0),
    );
    assert_eq!(
        reasons(&d),
        vec![("follow_up", SuppressReason::NoSharingConsent)]
    );
    assert_eq!(s.next_in_cell(&c, at(T0)), None);
}

#[test]
fn service_tasks_ignore_cadence_and_cap_but_keep_their_cooldown() {
    let s = strategies(
        r#"
[cadence]
max_campaigns_per_30_days = 1
[[rule]]
name = "service"
on = "maintenance_due"
do = "partner_task"
partner = "dealer"
task = "Due"
cooldown_days = 2
[[rule]]
name = "call"
on = "layer_changed"
do = "partner_task"
partner = "dealer"
task = "Call"
"#,
    );
    let layers = l("passenger novice junior dormant new");
    let mut h = ContactHistory::new();
    // A follow-up call: an engagement contact, at the cap now.
    let d = s.decide(
        &Event::LayerChanged {
            from: None,
            to: layers,
        },
        &ctx(layers, BOTH, &h),
        at(T0),
    );
    assert!(d[0].engagement);
    h.record(&d[0], at(T0));
    assert_eq!(h.engagements(), &[at(T0)]);
    let d = s.decide(
        &Event::LayerChanged {
            from: None,
            to: layers,
        },
        &ctx(layers, BOTH, &h),
        at(T0 + HOUR),
    );
    assert_eq!(
        reasons(&d),
        vec![(
            "call",
            SuppressReason::Cadence {
                next_allowed: at(T0 + 30 * DAY_MS)
            }
        )]
    );
    // Service is not held back by either ...
    let due = Event::MaintenanceDue { item: "oil".into() };
    let d = s.decide(&due, &ctx(layers, BOTH, &h), at(T0 + HOUR));
    assert!(!d[0].engagement);
    assert_eq!(acted(&d).len(), 1);
    h.record(&d[0], at(T0 + HOUR));
    assert_eq!(
        h.engagements(),
        &[at(T0)],
        "service is not an engagement contact"
    );
    // ... but by its cooldown.
    let d = s.decide(&due, &ctx(layers, BOTH, &h), at(T0 + 2 * DAY_MS));
    assert_eq!(
        reasons(&d),
        vec![(
            "service",
            SuppressReason::RuleCooldown {
                next_allowed: at(T0 + HOUR + 2 * DAY_MS)
            }
        )]
    );
    let d = s.decide(&due, &ctx(layers, BOTH, &h), at(T0 + HOUR + 2 * DAY_MS));
    assert_eq!(acted(&d).len(), 1);
}

#[test]
fn one_event_sends_at_most_one_engagement_contact() {
    let s = strategies(&format!(
        "{TWO_CAMPAIGNS}
[[rule]]
name = \"first\"
on = \"layer_changed\"
do = \"campaign\"
campaign = \"hello\"
[[rule]]
name = \"note\"
on = \"layer_changed\"
do = \"nothing\"
[[rule]]
name = \"second\"
on = \"layer_changed\"
do = \"campaign\"
campaign = \"again\"
"
    ));
    let h = ContactHistory::new();
    let layers = l("passenger novice junior declining new");
    let d = s.decide(
        &Event::LayerChanged {
            from: None,
            to: layers,
        },
        &ctx(layers, BOTH, &h),
        at(T0),
    );
    let names: Vec<_> = d.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(names, ["first", "note", "second"], "document order");
    assert_eq!(acted(&d).len(), 2);
    assert_eq!(
        reasons(&d),
        vec![(
            "second",
            SuppressReason::Cadence {
                next_allowed: at(T0 + 7 * DAY_MS)
            }
        )]
    );
}

/// Hourly `in_cell` offers for `days` to a driver in `layers`, every acted decision recorded;
/// the engagement contacts' times.
fn simulate_hourly(s: &Strategies, layers: impl Fn(u64) -> Layers, days: u64) -> Vec<u64> {
    let mut h = ContactHistory::new();
    let mut sent = Vec::new();
    for hour in 0..days * 24 {
        let now = T0 + hour * HOUR;
        let d = s.decide(&Event::InCell, &ctx(layers(now), BOTH, &h), at(now));
        for d in &d {
            if matches!(d.outcome, Outcome::Act(_)) && d.engagement {
                sent.push(now);
            }
            h.record(d, at(now));
        }
    }
    sent
}

const EVERY_CELL: &str = r#"
[campaign.hello]
title = "Hello"
text = "Welcome"
valid_days = 10
[[rule]]
name = "offer"
on = "in_cell"
do = "campaign"
campaign = "hello"
[[rule]]
name = "offer_too"
on = "in_cell"
do = "campaign"
campaign = "hello"
"#;

#[test]
fn the_cadence_spaces_campaigns_by_layer() {
    let s = strategies(&format!(
        "[cadence]\nmax_campaigns_per_30_days = 64\n{EVERY_CELL}"
    ));
    let gaps = |sent: &[u64]| {
        sent.windows(2)
            .map(|w| (w[1] - w[0]) / HOUR)
            .collect::<Vec<_>>()
    };
    // Active: every 3 days, exactly (an hourly scan fires as soon as allowed).
    let sent = simulate_hourly(&s, |_| l("passenger novice junior active new"), 90);
    assert_eq!(sent.len(), 30);
    assert!(gaps(&sent).iter().all(|g| *g == 72), "{:?}", gaps(&sent));
    // Declining: weekly. Dormant: monthly.
    let sent = simulate_hourly(&s, |_| l("passenger novice junior declining new"), 90);
    assert!(gaps(&sent).iter().all(|g| *g == 7 * 24) && sent.len() == 13);
    let sent = simulate_hourly(&s, |_| l("passenger novice junior dormant new"), 90);
    assert_eq!(gaps(&sent), [30 * 24, 30 * 24]);
    // Slipping from active to dormant on day 10: the gap after is the dormant one.
    let sent = simulate_hourly(
        &s,
        |now| {
            if now < T0 + 10 * DAY_MS {
                l("passenger novice junior active new")
            } else {
                l("passenger novice junior dormant new")
            }
        },
        90,
    );
    assert_eq!(gaps(&sent), [72, 72, 72, 30 * 24, 30 * 24]);
}

#[test]
fn the_driver_cap_holds_across_layers() {
    let s = strategies(&format!(
        "[cadence]\nactive = 1\ndeclining = 1\nchurned = 1\ndormant = 1\nmax_campaigns_per_30_days = 4\n{EVERY_CELL}"
    ));
    let cells = ["active", "declining", "churned", "dormant"];
    let sent = simulate_hourly(
        &s,
        |now| {
            let day = (now - T0) / DAY_MS;
            l(&format!(
                "passenger novice junior {} new",
                cells[(day % 4) as usize]
            ))
        },
        120,
    );
    // Four on days 0..3, then four more once the first leaves the 30-day window.
    assert_eq!(sent.len(), 16);
    for (i, t) in sent.iter().enumerate() {
        let in_window = sent[..=i].iter().filter(|x| *t - **x < 30 * DAY_MS).count();
        assert!(in_window <= 4, "{i}: {in_window}");
    }
    assert_eq!(sent[4] - sent[0], 30 * DAY_MS);
    // The reason and its time, at the cap.
    let mut h = ContactHistory::new();
    for i in 0..4 {
        let d = s.decide(
            &Event::InCell,
            &ctx(l("passenger novice junior active new"), BOTH, &h),
            at(T0 + i * DAY_MS),
        );
        h.record(&d[0], at(T0 + i * DAY_MS));
    }
    let c = ctx(l("passenger novice junior dormant new"), BOTH, &h);
    let d = s.decide(&Event::InCell, &c, at(T0 + 10 * DAY_MS));
    assert_eq!(
        reasons(&d)[0],
        (
            "offer",
            SuppressReason::DriverCap {
                next_allowed: at(T0 + 30 * DAY_MS)
            }
        )
    );
    assert_eq!(
        s.next_in_cell(&c, at(T0 + 10 * DAY_MS)),
        Some(at(T0 + 30 * DAY_MS))
    );
}

#[test]
fn next_in_cell_gives_the_same_schedule_as_scanning() {
    // Active: the cap (4 in 30 days) binds over the 3-day cadence; declining: the 10-day
    // cooldown binds over the 7-day cadence.
    let s = strategies(
        r#"
[campaign.hello]
title = "Hello"
text = "Welcome"
valid_days = 10
[[rule]]
name = "active_offer"
on = "in_cell"
when = { activity = ["active"] }
do = "campaign"
campaign = "hello"
[[rule]]
name = "declining_offer"
on = "in_cell"
when = { activity = ["declining"] }
do = "campaign"
campaign = "hello"
cooldown_days = 10
"#,
    );
    let layers = |now: u64| {
        if (now - T0) / DAY_MS % 60 < 25 {
            l("passenger novice junior active new")
        } else {
            l("passenger novice junior declining new")
        }
    };
    let scanned = simulate_hourly(&s, layers, 200);
    // Jump from one next_in_cell to the next (and re-ask at each layer change, as the caller
    // would when layering moves the driver).
    let mut h = ContactHistory::new();
    let mut jumped = Vec::new();
    let mut now = T0;
    let end = T0 + 200 * DAY_MS;
    while now < end {
        let c = ctx(layers(now), BOTH, &h);
        let next = s.next_in_cell(&c, at(now)).unwrap().as_millis();
        let change = T0 + ((now - T0) / DAY_MS + 1) * DAY_MS; // the next layering
        if next > now {
            now = next.min(change);
            continue;
        }
        let d = s.decide(&Event::InCell, &c, at(now));
        assert!(
            d.iter().any(|d| matches!(d.outcome, Outcome::Act(_))),
            "next_in_cell said now: {d:?}"
        );
        for d in &d {
            if matches!(d.outcome, Outcome::Act(_)) && d.engagement {
                jumped.push(now);
            }
            h.record(d, at(now));
        }
        let after = s
            .next_in_cell(&ctx(layers(now), BOTH, &h), at(now))
            .unwrap();
        assert!(after > at(now), "recorded: the next offer is later");
    }
    assert!(scanned.len() > 20);
    let gaps: Vec<u64> = scanned.windows(2).map(|w| (w[1] - w[0]) / DAY_MS).collect();
    assert!(gaps.contains(&10), "the cooldown bound: {gaps:?}");
    assert!(
        gaps.contains(&21),
        "the cap bound (day 9 → day 30): {gaps:?}"
    );
    assert_eq!(scanned, jumped);
}

#[test]
fn next_in_cell_takes_the_latest_of_cooldown_cadence_and_cap() {
    let s = strategies(&format!(
        "{EVERY_CELL}
[[rule]]
name = \"quiet\"
on = \"in_cell\"
do = \"nothing\"
"
    ));
    let layers = l("passenger novice junior active new");
    let mut h = ContactHistory::new();
    assert_eq!(s.next_in_cell(&ctx(layers, BOTH, &h), at(T0)), Some(at(T0)));
    let d = s.decide(&Event::InCell, &ctx(layers, BOTH, &h), at(T0));
    for d in &d {
        h.record(d, at(T0));
    }
    assert_eq!(
        s.next_in_cell(&ctx(layers, BOTH, &h), at(T0)),
        Some(at(T0 + 3 * DAY_MS))
    );
    assert_eq!(
        s.next_in_cell(
            &ctx(l("passenger novice junior dormant new"), BOTH, &h),
            at(T0 + DAY_MS)
        ),
        Some(at(T0 + 30 * DAY_MS))
    );
    // Opted out: nothing to schedule (a `nothing` rule is never scheduled).
    let out = Consents {
        partner_sharing: true,
        engagement: false,
    };
    assert_eq!(s.next_in_cell(&ctx(layers, out, &h), at(T0)), None);
}

#[test]
fn the_history_counts_only_acted_decisions_and_stays_bounded() {
    let mut h = ContactHistory::new();
    let suppressed = Decision {
        rule: "r".into(),
        engagement: true,
        outcome: Outcome::Suppressed {
            reason: SuppressReason::NoEngagementConsent,
        },
    };
    h.record(&suppressed, at(T0));
    assert_eq!(h, ContactHistory::new());
    let acted = Decision {
        outcome: Outcome::Act(Action::Nothing),
        ..suppressed
    };
    for i in 0..1000 {
        h.record(&acted, at(T0 + i * HOUR));
    }
    assert_eq!(h.engagements().len(), MAX_RECENT);
    assert_eq!(h.last_engagement(), Some(at(T0 + 999 * HOUR)));
    assert_eq!(h.last_fired("r"), Some(at(T0 + 999 * HOUR)));
    // Older than the window: dropped, except the latest (cadence counts from it).
    h.record(&acted, at(T0 + 2000 * HOUR));
    assert_eq!(h.engagements(), &[at(T0 + 2000 * HOUR)]);
    h.record(
        &Decision {
            engagement: false,
            ..acted.clone()
        },
        at(T0 + 5000 * HOUR),
    );
    assert_eq!(h.engagements().len(), 1, "not an engagement contact");
    assert_eq!(h.last_fired("r"), Some(at(T0 + 5000 * HOUR)));
    // A late record (out of order) keeps the order and the latest.
    h.record(&acted, at(T0 + 1999 * HOUR));
    assert_eq!(
        h.engagements(),
        &[at(T0 + 1999 * HOUR), at(T0 + 2000 * HOUR)]
    );
    assert_eq!(h.last_fired("r"), Some(at(T0 + 5000 * HOUR)));
    h.retain_rules(|name| name != "r");
    assert_eq!(h.last_fired("r"), None);
    // Round trip through serde (the caller stores it).
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(serde_json::from_str::<ContactHistory>(&json).unwrap(), h);
}

#[test]
fn suggestions_pick_activity_then_maturity_then_default() {
    let s = strategies(
        r#"
[[rule]]
name = "due"
on = "maintenance_due"
do = "partner_task"
partner = "dealer"
task = "Due: {item}"
suggestion = { declining = "call ({item})", mature = "loyal", novice = "explain", commercial = "uptime", lapsed = "win back", default = "link" }
"#,
    );
    let h = ContactHistory::new();
    let suggest = |layers: &str| {
        let d = s.decide(
            &Event::MaintenanceDue { item: "oil".into() },
            &ctx(l(layers), BOTH, &h),
            at(T0),
        );
        match acted(&d)[0].1 {
            Action::PartnerTask { suggestion, .. } => suggestion.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        suggest("passenger novice mature declining new"),
        "call (oil)"
    );
    assert_eq!(suggest("passenger novice mature active new"), "loyal");
    assert_eq!(suggest("passenger novice junior active new"), "explain");
    assert_eq!(
        suggest("passenger skilled junior active lapsed"),
        "win back"
    );
    assert_eq!(suggest("commercial skilled junior active new"), "uptime");
    assert_eq!(suggest("passenger skilled junior active new"), "link");
}
