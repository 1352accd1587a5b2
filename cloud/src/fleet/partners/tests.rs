//! The partners' unit tests: routing, tokens, the config's checks, the directory's changes.

#![allow(clippy::unwrap_used)]
use std::time::Duration;

use rapport_kit::config::Problem;
use serde::Deserialize;

use super::*;
use crate::fleet::alerts::AlertPolicy;
use crate::fleet::model::{Category, Consents, PartnerTarget, Registration};

// The Standard Webhooks spec's example secret: 24 bytes.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NO_ENV: &dyn Fn(&str) -> Option<String> = &|_| None;

fn token(id: &str) -> String {
    format!("tok-{id}-0123456789abcdef0123456789abcdef")
}

fn config(id: &str, kind: PartnerKind, regions: &[&str], caps: &[&str]) -> PartnerConfig {
    PartnerConfig {
        id: id.into(),
        name: format!("Partner {id}"),
        kind,
        webhook_url: format!("https://{id}.example.com/hooks"),
        secret: SECRET.into(),
        regions: regions.iter().map(|s| (*s).to_owned()).collect(),
        capabilities: caps.iter().map(|s| (*s).to_owned()).collect(),
        token: Some(token(id)),
        token_env: None,
        previous_secret: None,
        previous_token: None,
        previous_token_env: None,
        rate_limit: None,
    }
}

fn fleet_configs() -> Vec<PartnerConfig> {
    vec![
        config("dealer-north", PartnerKind::Dealer, &[], &[]),
        // A dealer with a low id, a region and a capability: never picked as a provider.
        config("a-dealer", PartnerKind::Dealer, &["north"], &["tyres"]),
        config(
            "prov-b",
            PartnerKind::ServiceProvider,
            &["north"],
            &["roadside", "tyres"],
        ),
        config(
            "prov-a",
            PartnerKind::ServiceProvider,
            &["north", "west"],
            &["tyres"],
        ),
        config(
            "prov-c",
            PartnerKind::ServiceProvider,
            &["south"],
            &["roadside"],
        ),
        config("oem-desk", PartnerKind::Dealer, &[], &[]),
    ]
}

fn alerts_config() -> AlertsConfig {
    AlertsConfig {
        fallback: Some("oem-desk".into()),
        ..AlertsConfig::default()
    }
}

fn directory() -> Directory {
    Directory::from_config(&fleet_configs(), &alerts_config(), NO_ENV).unwrap()
}

fn registration(dealer: Option<&str>, region: Option<&str>) -> Registration {
    Registration {
        vin: "WVWZZZ1JZXW000001".parse().unwrap(),
        category: Category::Passenger,
        line: "e-compact 2025".into(),
        delivered: None,
        dealer: dealer.map(str::to_owned),
        region: region.map(str::to_owned),
        consents: Consents::default(),
        owner_since: None,
        owner: None,
    }
}

fn provider(capability: &str) -> PartnerTarget {
    PartnerTarget::Provider {
        capability: capability.into(),
    }
}

fn routed<'a>(dir: &'a Directory, target: &PartnerTarget, reg: &Registration) -> Option<&'a str> {
    dir.route(target, reg).map(|p| p.id.as_str())
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

#[test]
fn dealer_route_is_the_registrations_dealer_if_it_exists() {
    let dir = directory();
    let dealer = PartnerTarget::Dealer;
    assert_eq!(
        routed(&dir, &dealer, &registration(Some("dealer-north"), None)),
        Some("dealer-north")
    );
    assert_eq!(
        routed(&dir, &dealer, &registration(Some("gone-dealer"), None)),
        None
    );
    assert_eq!(
        routed(&dir, &dealer, &registration(None, Some("north"))),
        None
    );
    // Someone must be told: the fallback.
    let reg = registration(Some("gone-dealer"), None);
    assert_eq!(
        dir.route_or_fallback(&dealer, &reg).map(|p| p.id.as_str()),
        Some("oem-desk")
    );
}

#[test]
fn provider_route_matches_region_and_capability_lowest_id_first() {
    let dir = directory();
    let north = registration(None, Some("north"));
    // prov-a and prov-b both cover north with tyres: the lower id wins; dealers never do.
    assert_eq!(routed(&dir, &provider("tyres"), &north), Some("prov-a"));
    assert_eq!(routed(&dir, &provider("roadside"), &north), Some("prov-b"));
    assert_eq!(
        routed(&dir, &provider("tyres"), &registration(None, Some("west"))),
        Some("prov-a")
    );
    assert_eq!(
        routed(
            &dir,
            &provider("roadside"),
            &registration(None, Some("south"))
        ),
        Some("prov-c")
    );
    // Region covered, capability not; capability offered, region not; no region at all.
    assert_eq!(routed(&dir, &provider("ev_battery"), &north), None);
    assert_eq!(
        routed(&dir, &provider("tyres"), &registration(None, Some("south"))),
        None
    );
    assert_eq!(
        routed(&dir, &provider("tyres"), &registration(None, None)),
        None
    );
    // Codes are exact.
    assert_eq!(routed(&dir, &provider("Tyres"), &north), None);
    assert_eq!(
        routed(&dir, &provider("tyres"), &registration(None, Some("North"))),
        None
    );
}

#[test]
fn provider_route_does_not_depend_on_insertion_order() {
    let mut reversed = fleet_configs();
    reversed.reverse();
    let a = directory();
    let b = Directory::from_config(&reversed, &alerts_config(), NO_ENV).unwrap();
    assert_eq!(a, b);
    // And through the API: prov-a added last still wins over prov-b.
    let mut c = directory();
    let prov_a = c.get("prov-a").unwrap().clone();
    c.remove("prov-a").unwrap();
    assert_eq!(
        routed(&c, &provider("tyres"), &registration(None, Some("north"))),
        Some("prov-b")
    );
    c.upsert(prov_a).unwrap();
    assert_eq!(
        routed(&c, &provider("tyres"), &registration(None, Some("north"))),
        Some("prov-a")
    );
}

#[test]
fn fallback_route_is_the_configured_fallback_or_none() {
    let reg = registration(Some("dealer-north"), Some("north"));
    assert_eq!(
        routed(&directory(), &PartnerTarget::Fallback, &reg),
        Some("oem-desk")
    );
    let none = Directory::from_config(&fleet_configs(), &AlertsConfig::default(), NO_ENV).unwrap();
    assert_eq!(routed(&none, &PartnerTarget::Fallback, &reg), None);
    assert!(
        none.route_or_fallback(&PartnerTarget::Dealer, &registration(None, None))
            .is_none()
    );
}

#[test]
fn token_finds_its_partner_only() {
    let dir = directory();
    assert_eq!(
        dir.by_token(&token("prov-b")).map(|p| p.id.as_str()),
        Some("prov-b")
    );
    assert_eq!(
        dir.by_token(&token("oem-desk")).map(|p| p.id.as_str()),
        Some("oem-desk")
    );
    assert!(dir.by_token(&token("nobody")).is_none());
    assert!(dir.by_token("").is_none());
    // A stored hash presented as the token is not the token.
    let hash = dir.get("prov-b").unwrap().token_sha256.clone();
    assert!(dir.by_token(&hash).is_none());
}

#[test]
fn tokens_are_never_kept_in_clear() {
    let dir = directory();
    for partner in dir.iter() {
        let clear = token(&partner.id);
        assert_eq!(partner.token_sha256, hash_token(&clear));
        let stored = serde_json::to_string(partner).unwrap();
        assert!(!stored.contains(&clear), "{stored}");
        let debug = format!("{partner:?}");
        assert!(!debug.contains(&clear) && !debug.contains(&partner.token_sha256));
        assert!(!debug.contains(SECRET), "{debug}");
        let summary = serde_json::to_string(&partner.summary()).unwrap();
        assert!(!summary.contains("whsec_") && !summary.contains(&partner.token_sha256));
    }
    // The known SHA-256 of "abc".
    assert_eq!(
        hash_token("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn token_env_is_read_through_the_lookup() {
    let mut c = config("dealer-env", PartnerKind::Dealer, &[], &[]);
    c.token = None;
    c.token_env = Some("DEALER_TOKEN".into());
    let env = |name: &str| (name == "DEALER_TOKEN").then(|| token("env"));
    let partner = c.resolve("partner[0]", &env).unwrap();
    assert_eq!(partner.token_sha256, hash_token(&token("env")));

    let problems = c.resolve("partner[0]", NO_ENV).unwrap_err();
    assert_eq!(paths(&problems), ["partner[0].token_env"]);
    assert!(
        problems[0].message.contains("DEALER_TOKEN"),
        "{}",
        problems[0]
    );

    let short = |_: &str| Some("tiny-token".to_owned());
    let problems = c.resolve("partner[0]", &short).unwrap_err();
    assert_eq!(paths(&problems), ["partner[0].token_env"]);
    assert!(
        problems[0].message.contains("shorter than 32"),
        "{}",
        problems[0]
    );
    assert!(
        !problems[0].message.contains("tiny-token"),
        "{}",
        problems[0]
    );
}

/// The config file's partner part, as the lead will nest it in `Config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "partner")]
    partners: Vec<PartnerConfig>,
    #[serde(default)]
    alerts: AlertsConfig,
}

const GOOD: &str = r#"
[alerts]
fallback = "oem-desk"
sla_minutes = 30

[[partner]]
id = "oem-desk"
name = "OEM service desk"
kind = "dealer"
webhook_url = "https://desk.example.com/rapport"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
token_env = "OEM_DESK_TOKEN"

[[partner]]
id = "roadside-north"
name = "Roadside North"
kind = "service_provider"
webhook_url = "http://127.0.0.1:9000/hooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
regions = ["north"]
capabilities = ["roadside"]
token = "a-long-random-token-0123456789abcdef"
"#;

#[test]
fn a_good_file_builds_a_directory() {
    let file: File = toml::from_str(GOOD).unwrap();
    let env = |name: &str| (name == "OEM_DESK_TOKEN").then(|| token("desk"));
    assert!(validate(&file.partners, &file.alerts, &env).is_empty());
    let dir = Directory::from_config(&file.partners, &file.alerts, &env).unwrap();
    assert_eq!(dir.len(), 2);
    assert_eq!(
        dir.fallback().map(|p| p.name.as_str()),
        Some("OEM service desk")
    );
    assert_eq!(
        dir.by_token(&token("desk")).map(|p| p.id.as_str()),
        Some("oem-desk")
    );
    let policy = file.alerts.policy();
    assert_eq!(policy.sla, Duration::from_secs(30 * 60));
    assert_eq!(policy.response_wait, Duration::from_secs(24 * 3600));
}

#[test]
fn alerts_defaults_are_one_hour_and_one_day() {
    let file: File = toml::from_str("").unwrap();
    assert_eq!(file.alerts, AlertsConfig::default());
    assert_eq!(file.alerts.policy(), AlertPolicy::default());
    assert_eq!(file.alerts.policy().sla, Duration::from_secs(3600));
    assert_eq!(
        file.alerts.policy().response_wait,
        Duration::from_secs(86_400)
    );
    assert!(toml::from_str::<File>("[alerts]\nsla_minute = 5").is_err());
    assert!(toml::from_str::<File>(&format!("{GOOD}\nwebhook = \"x\"")).is_err());
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let mut partners = fleet_configs();
    partners[0].webhook_url = "ftp://dealer.example.com/".into();
    partners[1].secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(); // no prefix
    partners[2].secret = "whsec_c2hvcnQ=".into(); // 5 bytes
    partners[3].secret = "whsec_not base64!".into();
    partners[4].id = "prov-b".into(); // duplicate of partner[2]
    partners[5].webhook_url = "https://user:pw@desk.example.com/".into();
    partners.push(config("no-scheme", PartnerKind::Dealer, &[], &[]));
    partners[6].webhook_url = "desk.example.com/hooks".into();
    partners[6].token = Some(token("prov-a")); // partner[3]'s token
    partners.push(config(
        "bad id!",
        PartnerKind::ServiceProvider,
        &[],
        &["x y"],
    ));
    partners[7].webhook_url = "https://seven.example.com/".into();
    partners[7].token_env = Some("T".into()); // and token: both
    let alerts = AlertsConfig {
        fallback: Some("nobody".into()),
        sla_minutes: 0,
        response_wait_hours: 10_000,
    };
    let problems = validate(&partners, &alerts, NO_ENV);
    assert_eq!(
        paths(&problems),
        [
            "partner[0].webhook_url",
            "partner[1].secret",
            "partner[2].secret",
            "partner[3].secret",
            "partner[4].id",
            "partner[5].webhook_url",
            "partner[6].webhook_url",
            "partner[6].token",
            "partner[7].token",
            "partner[7].id",
            "partner[7].regions",
            "partner[7].capabilities[0]",
            "alerts.fallback",
            "alerts.sla_minutes",
            "alerts.response_wait_hours",
        ],
        "{problems:#?}"
    );
    let message = |path: &str| {
        problems
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.message.clone())
            .unwrap()
    };
    assert!(message("partner[0].webhook_url").contains("http:// or https://"));
    assert!(message("partner[1].secret").contains("whsec_"));
    assert!(message("partner[2].secret").contains("5 bytes"));
    assert!(message("partner[3].secret").contains("base64"));
    assert!(message("partner[4].id").contains("partner[2]"));
    assert!(message("partner[5].webhook_url").contains("user or password"));
    assert!(message("partner[6].token").contains("partner[3]"));
    assert!(message("alerts.fallback").contains("nobody"));
    // Secrets are never repeated in messages.
    assert!(problems.iter().all(|p| !p.message.contains("MfKQ9r8G")));
}

#[test]
fn a_missing_token_is_reported() {
    let mut partners = vec![config("dealer-x", PartnerKind::Dealer, &[], &[])];
    partners[0].token = None;
    let problems = validate(&partners, &AlertsConfig::default(), NO_ENV);
    assert_eq!(paths(&problems), ["partner[0].token"]);
    partners[0].token = Some("too-short".into());
    let problems = validate(&partners, &AlertsConfig::default(), NO_ENV);
    assert_eq!(paths(&problems), ["partner[0].token"]);
    assert!(!problems[0].message.contains("too-short"));
}

#[test]
fn secret_bounds_are_24_to_64_bytes() {
    use base64::engine::general_purpose::STANDARD;
    let secret = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7_u8; n]));
    assert!(check_secret(&secret(23)).is_err());
    assert!(check_secret(&secret(24)).is_ok());
    assert!(check_secret(&secret(64)).is_ok());
    assert!(check_secret(&secret(65)).is_err());
    assert!(check_secret(SECRET).is_ok());
    assert!(check_webhook_url("https://[::1]:8443/x?y=1").is_ok());
    assert!(check_webhook_url("https://").is_err());
    assert!(check_webhook_url("mailto:ops@example.com").is_err());
}

#[test]
fn upsert_and_remove_for_the_api() {
    let mut dir = directory();
    let mut new = config(
        "prov-d",
        PartnerKind::ServiceProvider,
        &["east"],
        &["tyres"],
    )
    .resolve("partner", NO_ENV)
    .unwrap();
    assert_eq!(dir.upsert(new.clone()).unwrap(), None);
    let east = registration(None, Some("east"));
    assert_eq!(routed(&dir, &provider("tyres"), &east), Some("prov-d"));
    // Replacing returns the old one.
    new.name = "Renamed".into();
    assert_eq!(
        dir.upsert(new.clone()).unwrap().map(|p| p.name),
        Some("Partner prov-d".into())
    );
    assert_eq!(dir.get("prov-d").unwrap().name, "Renamed");

    let mut thief = new.clone();
    thief.id = "prov-e".into();
    assert_eq!(
        dir.upsert(thief).unwrap_err(),
        DirectoryError::TokenInUse {
            id: "prov-e".into(),
            other: "prov-d".into()
        }
    );
    let mut broken = new.clone();
    broken.webhook_url = "not a url".into();
    broken.token_sha256 = "XYZ".into();
    match dir.upsert(broken).unwrap_err() {
        DirectoryError::Invalid { problems } => {
            assert_eq!(
                paths(&problems),
                ["partner.webhook_url", "partner.token_sha256"]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dir.get("prov-d").unwrap().webhook_url, new.webhook_url);

    // A new token replaces the old one; the old one opens nothing any more.
    let old_token = token("prov-d");
    assert_eq!(
        dir.by_token(&old_token).map(|p| p.id.as_str()),
        Some("prov-d")
    );
    new.token_sha256 = hash_token("rotated-token-0123456789abcdef0123456789");
    dir.upsert(new.clone()).unwrap();
    assert!(dir.by_token(&old_token).is_none());
    assert_eq!(
        dir.by_token("rotated-token-0123456789abcdef0123456789")
            .map(|p| p.id.as_str()),
        Some("prov-d")
    );
    // The old token is free for another partner.
    let mut other = new.clone();
    other.id = "prov-e".into();
    other.token_sha256 = hash_token(&old_token);
    dir.upsert(other).unwrap();
    assert_eq!(
        dir.by_token(&old_token).map(|p| p.id.as_str()),
        Some("prov-e")
    );
    dir.remove("prov-e").unwrap();
    assert!(dir.by_token(&old_token).is_none());

    assert_eq!(dir.remove("prov-d").unwrap().id, "prov-d");
    assert_eq!(routed(&dir, &provider("tyres"), &east), None);
    assert_eq!(
        dir.remove("prov-d").unwrap_err(),
        DirectoryError::Unknown("prov-d".into())
    );
    assert_eq!(
        dir.remove("oem-desk").unwrap_err(),
        DirectoryError::IsFallback("oem-desk".into())
    );
    assert!(dir.fallback().is_some());
}

#[test]
fn a_partner_sees_its_dealer_vehicles_and_what_it_was_alerted_about() {
    let reg = registration(Some("dealer-north"), Some("north"));
    assert!(may_see("dealer-north", &reg, []));
    assert!(!may_see("prov-b", &reg, []));
    assert!(may_see("prov-b", &reg, ["prov-c", "prov-b"]));
    assert!(!may_see("oem-desk", &reg, ["prov-b"]));
    assert!(!may_see(
        "dealer-north",
        &registration(None, None),
        ["prov-b"]
    ));
}

#[test]
fn a_rotation_in_the_config_keeps_both_secrets_and_both_tokens() {
    const NEW: &str = "whsec_bmV3LXNlY3JldC1ub3J0aC0wMTIzNDU2Nzg5YWJjZA==";
    let old_token = "old-token-0123456789abcdef0123456789";
    let mut north = config("dealer-north", PartnerKind::Dealer, &[], &[]);
    north.secret = NEW.into();
    north.previous_secret = Some(SECRET.into());
    north.previous_token = Some(old_token.into());
    let dir = Directory::from_config(&[north.clone()], &AlertsConfig::default(), NO_ENV).unwrap();
    let p = dir.get("dealer-north").unwrap();
    assert_eq!(p.secrets().collect::<Vec<_>>(), [NEW, SECRET]);
    for t in [token("dealer-north"), old_token.to_owned()] {
        assert_eq!(
            dir.by_token(&t).map(|p| p.id.as_str()),
            Some("dealer-north")
        );
    }
    // The summary shows fingerprints only.
    let shown = serde_json::to_string(&p.summary()).unwrap();
    assert!(
        !shown.contains("whsec_") && !shown.contains("token-0123"),
        "{shown}"
    );
    assert_eq!(
        p.summary().secret_fingerprints,
        [fingerprint(NEW), fingerprint(SECRET)]
    );
    assert_eq!(
        p.summary().token_fingerprints,
        [fingerprint(&token("dealer-north")), fingerprint(old_token)]
    );
    // Replacing the partner without the old token: the old token opens nothing.
    let mut dir2 = dir.clone();
    let mut replaced = p.clone();
    replaced.other_tokens_sha256.clear();
    dir2.upsert(replaced).unwrap();
    assert!(dir2.by_token(old_token).is_none());
    assert!(dir2.by_token(&token("dealer-north")).is_some());
    // Another partner's token as a previous token, and a bad previous secret, are refused.
    let mut south = config("dealer-south", PartnerKind::Dealer, &[], &[]);
    south.previous_token = Some(old_token.into());
    south.previous_secret = Some("whsec_short".into());
    let problems = validate(&[north, south], &AlertsConfig::default(), NO_ENV);
    let p = paths(&problems);
    assert!(p.contains(&"partner[1].previous_token"), "{problems:?}");
    assert!(p.contains(&"partner[1].previous_secret"), "{problems:?}");
}
