//! The limits: cooldown, cadence by layer, the per-driver cap, the history and `next_in_cell`.
#![allow(clippy::unwrap_used)]

use super::*;

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
fn a_stored_history_out_of_order_is_still_read_right() {
    let s = strategies(&format!(
        "[cadence]\nactive = 1\nmax_campaigns_per_30_days = 4\n{EVERY_CELL}"
    ));
    let days = [3, 0, 2, 1].map(|d| T0 + d * DAY_MS);
    let json = format!(
        r#"{{"engagements":[{},{},{},{}],"rules":{{}}}}"#,
        days[0], days[1], days[2], days[3]
    );
    let mut h: ContactHistory = serde_json::from_str(&json).unwrap();
    assert_eq!(h.last_engagement(), Some(at(T0 + 3 * DAY_MS)));
    let layers = l("passenger novice junior active new");
    let d = s.decide(&Event::InCell, &ctx(layers, BOTH, &h), at(T0 + 10 * DAY_MS));
    assert_eq!(
        reasons(&d)[0],
        (
            "offer",
            SuppressReason::DriverCap {
                next_allowed: at(T0 + 30 * DAY_MS)
            }
        )
    );
    // Recording sorts it again.
    let d = s.decide(&Event::InCell, &ctx(layers, BOTH, &h), at(T0 + 30 * DAY_MS));
    h.record(&d[0], at(T0 + 30 * DAY_MS));
    assert_eq!(h.engagements(), &[1, 2, 3, 30].map(|d| at(T0 + d * DAY_MS)));
}
