//! Matching rules to events and cells, building actions, consents and suggestions.
#![allow(clippy::unwrap_used)]

use super::*;

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
