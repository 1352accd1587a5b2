//! Parsing, checking and loading strategy files: every problem with its key path and place.
#![allow(clippy::unwrap_used)]

use super::*;

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
