#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;

fn example() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cloud.toml");
    load(&path).unwrap()
}

fn problems(text: &str) -> Vec<String> {
    let c = Config::from_toml("t.toml", text).unwrap();
    c.validate().iter().map(ToString::to_string).collect()
}

#[test]
fn the_example_loads_and_matches_the_defaults() {
    let c = example();
    assert!(c.broker.embedded);
    assert_eq!(c.broker.listen_addr(), defaults::BROKER_LISTEN);
    assert_eq!(c.broker.uplink_filter(), "rapport/v1/+/up");
    assert_eq!(c.api.listen, defaults::API_LISTEN);
    assert_eq!(c.ingest, Ingest::default());
    assert!(c.store_path().ends_with("config/data/cloud"));
    // Apart from the paths, the example is the defaults written out.
    let mut d = Config::default();
    d.broker.listen = Some(defaults::BROKER_LISTEN);
    d.store.path = "data/cloud".into();
    d.path = c.path.clone();
    // ... plus the example's own partners, fallback, strategy file and registry.
    assert_eq!(c.partner.len(), 3);
    assert_eq!(c.alerts.fallback.as_deref(), Some("service-desk"));
    d.partner = c.partner.clone();
    d.alerts.fallback = c.alerts.fallback.clone();
    d.fleet.strategies = Some("strategies.toml".into());
    d.fleet.registry = Some("registry.example.csv".into());
    assert_eq!(c, d);
    // The files it names load.
    let strategies = c.resolve(c.fleet.strategies.as_deref().unwrap_or(Path::new("")));
    crate::fleet::strategy::Strategies::load(&strategies).unwrap();
    let registry = c.resolve(c.fleet.registry.as_deref().unwrap_or(Path::new("")));
    let text = std::fs::read_to_string(registry).unwrap();
    assert!(!crate::fleet::registry::parse_csv(&text).unwrap().is_empty());
}

#[test]
fn an_empty_file_is_the_defaults() {
    let c = Config::from_toml("t.toml", "").unwrap();
    assert!(c.validate().is_empty());
    assert_eq!(c, Config::default());
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let err = Config::from_toml(
        "t.toml",
        "[broker]\nembedded = false\nurl = \"mqtts://b:8883\"\n[broker.tls]\nca = \"ca.pem\"\ncrt = \"x\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("t.toml:6:1: broker.tls.crt: "), "{text}");
    assert!(text.contains("unknown field `crt`"), "{text}");
    let err = Config::from_toml("t.toml", "[ingest]\nmax_payload_bytes = \"big\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ingest.max_payload_bytes"), "{text}");
    assert!(text.starts_with("t.toml:2:"), "{text}");
    let err = Config::from_toml("t.toml", "[nonsense]\n").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `nonsense`"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let p = problems(
        r#"
[broker]
embedded = true
url = "mqtt://x"
client_id = ""
share_group = "a/b"
keep_alive_s = 1
max_packet_bytes = 100
[broker.tls]
ca = "ca.pem"
cert = "c.pem"
[ingest]
max_payload_bytes = 0
group_max_envelopes = 0
[webhooks]
concurrency = 0
timeout_s = 301
keep_delivered_days = 0
"#,
    );
    let paths: Vec<&str> = p.iter().map(|s| s.split(':').next().unwrap()).collect();
    assert_eq!(
        paths,
        vec![
            "broker.url",
            "broker.tls",
            "broker.tls.key",
            "broker.client_id",
            "broker.share_group",
            "broker.keep_alive_s",
            "broker.max_packet_bytes",
            "ingest.max_payload_bytes",
            "ingest.group_max_envelopes",
            "webhooks.concurrency",
            "webhooks.timeout_s",
            "webhooks.keep_delivered_days",
        ],
        "{p:#?}"
    );
}

#[test]
fn external_broker_rules() {
    assert_eq!(
        problems("[broker]\nembedded = false\n"),
        vec!["broker.url: required when embedded = false (mqtt://host:port or mqtts://host:port)"]
    );
    let p = problems("[broker]\nembedded = false\nurl = \"mqtts://b\"\n");
    assert!(
        p[0].starts_with("broker.tls: required for mqtts://"),
        "{p:?}"
    );
    let p = problems("[broker]\nembedded = false\nurl = \"mqtt://b\"\n[broker.tls]\nca = \"x\"\n");
    assert!(
        p[0].starts_with("broker.tls: set, but broker.url is plain"),
        "{p:?}"
    );
    let p = problems("[broker]\nembedded = false\nlisten = \"127.0.0.1:1\"\nurl = \"tcp://b\"\n");
    assert!(p[0].starts_with("broker.listen:"), "{p:?}");
    assert!(
        p[1].starts_with("broker.url:") && p[1].contains("mqtt://"),
        "{p:?}"
    );
    assert!(
        problems(
            "[broker]\nembedded = false\nurl = \"mqtt://10.0.0.1:1884\"\nshare_group = \"g\"\n"
        )
        .is_empty()
    );
}

#[test]
fn broker_urls() {
    let u = BrokerUrl::parse("mqtt://broker.local").unwrap();
    assert_eq!(
        (u.tls, u.host.as_str(), u.port),
        (false, "broker.local", 1883)
    );
    let u = BrokerUrl::parse("mqtts://b:9000/").unwrap();
    assert_eq!((u.tls, u.host.as_str(), u.port), (true, "b", 9000));
    let u = BrokerUrl::parse("mqtt://[::1]:1999").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
    let u = BrokerUrl::parse("mqtts://[::1]").unwrap();
    assert_eq!(u.port, 8883);
    for bad in [
        "b:1883",
        "http://b",
        "mqtt://",
        "mqtt://:1883",
        "mqtt://b:0",
        "mqtt://b:99999",
        "mqtt://b/path",
        "mqtt://u@b",
        "mqtt://[::1",
    ] {
        assert!(BrokerUrl::parse(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn shared_group_filter() {
    let c = Config::from_toml("t.toml", "[broker]\nshare_group = \"cloud\"\n").unwrap();
    assert_eq!(c.broker.uplink_filter(), "$share/cloud/rapport/v1/+/up");
}

#[test]
fn retention_days_are_checked_and_webhooks_keep_delivered_days_is_an_alias() {
    let p = problems("[retention]\nrecords_days = 0\ndelivered_days = 40000\npass_limit = 0\n");
    for key in [
        "retention.records_days",
        "retention.delivered_days",
        "retention.pass_limit",
    ] {
        assert!(p.iter().any(|m| m.starts_with(key)), "{key}: {p:?}");
    }
    let c = Config::from_toml("t.toml", "[webhooks]\nkeep_delivered_days = 12\n").unwrap();
    assert_eq!(
        c.retention.days(c.webhooks.keep_delivered_days).delivered,
        12
    );
    assert_eq!(c.retention.audit_days, retention::AUDIT_DAYS);
    let c = Config::from_toml(
        "t.toml",
        "[webhooks]\nkeep_delivered_days = 12\n[retention]\ndelivered_days = 7\n",
    )
    .unwrap();
    assert_eq!(
        c.retention.days(c.webhooks.keep_delivered_days).delivered,
        7
    );
}

#[test]
fn promises_are_checked_with_their_key_paths() {
    let p = problems(
        "[promises]\nsecond_level = \"nobody\"\nurban_regions = [\"SH\"]\n\
         [[promises.rule]]\nkind = \"critical_fault\"\nstage = \"booked\"\nwithin_minutes = 60\n\
         [[promises.rule]]\nkind = \"maintenance\"\nstage = \"contacted\"\nwithin_minutes = 0\n",
    );
    for key in [
        "promises.second_level",
        "promises.rule[0].stage",
        "promises.rule[1].within_minutes",
    ] {
        assert!(p.iter().any(|m| m.starts_with(key)), "{key}: {p:?}");
    }
    // An unknown kind, stage or region is a syntax error naming where.
    let e = Config::from_toml(
        "t.toml",
        "[[promises.rule]]\nkind = \"critical_fault\"\nstage = \"contacted\"\nwithin_minutes = 60\nregion = \"suburb\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("promises.rule"), "{e}");
    let ok = Config::from_toml(
        "t.toml",
        "[promises]\nurban_regions = [\"SH\"]\n[[promises.rule]]\nkind = \"critical_fault\"\nstage = \"on_site\"\nwithin_minutes = 180\nregion = \"urban\"\n",
    )
    .unwrap();
    assert!(ok.validate().is_empty(), "{:?}", ok.validate());
    assert_eq!(ok.promises.rule[0].within_minutes, 180);
}
