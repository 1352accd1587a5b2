#![allow(clippy::unwrap_used, clippy::expect_used)]

use rapport_shared::v1::downlink::MaintenanceItem;

use super::sections::schedule_problems;
use super::*;

const MINIMAL: &str = r#"
[vehicle]
vin = "WVWZZZ1KZ8W012345"
line = "test"
category = "passenger"
delivered = "2021-03-15"

[[can.buses]]
name = "pt"
interface = "can0"
"#;

fn parse(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml("test.toml", &format!("{MINIMAL}{extra}"))
}

fn problems(extra: &str) -> Vec<String> {
    parse(extra)
        .unwrap()
        .problems("")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn minimal_config_has_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.vehicle.vin.as_str(), "WVWZZZ1KZ8W012345");
    assert_eq!(c.vehicle.category, Category::Passenger);
    assert_eq!(c.vehicle.delivered.to_string(), "2021-03-15");
    assert_eq!(c.poller, Poller::default());
    assert_eq!(c.observe.max_plausible_kmh, 300);
    assert!(c.obd.is_none() && c.uds.is_empty() && c.j1939.is_none() && c.dbc.is_none());
    assert!(c.problems("").is_empty());
}

#[test]
fn toml_date_literal_is_accepted() {
    let text = MINIMAL.replace("\"2021-03-15\"", "2021-03-15");
    let c = Config::from_toml("t.toml", &text).unwrap();
    assert_eq!(
        c.vehicle.delivered,
        CivilDate {
            year: 2021,
            month: 3,
            day: 15
        }
    );
    let bad = MINIMAL.replace("2021-03-15", "2021-02-30");
    let err = Config::from_toml("t.toml", &bad).unwrap_err().to_string();
    assert!(err.contains("day 30"), "{err}");
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    // line 3 column 7: `line = ` with no value
    let err = Config::from_toml(
        "x.toml",
        "[vehicle]\nvin = \"WVWZZZ1KZ8W012345\"\nline = \n",
    )
    .unwrap_err();
    match &err {
        ConfigError::Syntax { file, line, .. } => {
            assert_eq!(file, "x.toml");
            assert_eq!(*line, 3);
        }
        other => panic!("{other:?}"),
    }
    // unknown key in [observe]: reported at its line (MINIMAL has 10 lines before)
    let err = parse("[observe]\nmax_speed = 3\n").unwrap_err().to_string();
    assert!(err.starts_with("test.toml:12:1:"), "{err}");
    assert!(err.contains("max_speed"), "{err}");
}

#[test]
fn bad_vin_and_dtc_code_are_syntax_errors_with_position() {
    let text = MINIMAL.replace("WVWZZZ1KZ8W012345", "WVWZZZ1KZ8W01234I");
    let err = Config::from_toml("t.toml", &text).unwrap_err().to_string();
    assert!(err.starts_with("t.toml:3:"), "{err}");
    let err = parse("[[dtc.overrides]]\ncode = \"X9\"\nseverity = \"info\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("X9") && err.starts_with("test.toml:12:"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let got = problems(
        r#"
[uds]
bus = "chassis"
request_id = 0x7E0
response_id = 0x7E0
[[uds.dids]]
did = 0xF40D
len = 3
kind = "unsigned_be"
role = "odometer"
[[uds.dids]]
did = 0x0100
len = 9
kind = "unsigned_be"
[[uds.dids]]
did = 0xF40D
len = 17
kind = "ascii"
role = "odometer"
[poller]
on_ms = 0
[observe]
max_plausible_kmh = 0
[[dtc.overrides]]
code = "P0300"
severity = "critical"
[[dtc.overrides]]
code = "p0300"
severity = "info"
"#,
    );
    let expect = [
        "uds.bus: no [[can.buses]] is named \"chassis\"",
        "uds.response_id: must differ from uds.request_id",
        "uds.dids[1].len: must be 1..=8 for unsigned_be",
        "uds.dids[2].did: DID 0xF40D is listed twice",
        "uds.dids[2].role: Odometer needs a numeric kind, not ascii",
        "uds.dids[2].role: another DID already has role Odometer",
        "poller.on_ms: must be more than 0",
        "poller.min_gap_ms: must be less than poller.on_ms",
        "observe.max_plausible_kmh: must be 1..=1000, not 0",
        "dtc.overrides[1].code: P0300 is listed twice",
    ];
    for e in expect {
        assert!(
            got.iter().any(|g| g.starts_with(e)),
            "missing {e:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), expect.len(), "{got:#?}");
}

#[test]
fn obd_dtc_modes_and_j1939_dm2() {
    let c = parse("[obd]\nbus = \"pt\"\n[j1939]\nbus = \"pt\"\n").unwrap();
    let obd = c.obd.unwrap();
    assert!(obd.dtcs);
    assert_eq!(
        obd.dtc_modes,
        [
            ObdDtcMode::Confirmed,
            ObdDtcMode::Pending,
            ObdDtcMode::Permanent
        ]
    );
    assert!(!c.j1939.unwrap().dm2, "off unless asked");
    let c = parse(
        "[obd]\nbus = \"pt\"\ndtc_modes = [\"0A\", \"03\"]\n[j1939]\nbus = \"pt\"\ndm2 = true\n",
    )
    .unwrap();
    assert_eq!(
        c.obd.unwrap().dtc_modes,
        [ObdDtcMode::Permanent, ObdDtcMode::Confirmed]
    );
    assert!(c.j1939.unwrap().dm2);
    // A mode that is not a DTC list is refused with its place in the file.
    let err = parse("[obd]\nbus = \"pt\"\ndtc_modes = [\"04\"]\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.toml:13:14: obd.dtc_modes[0]: unknown variant `04`, expected one of `03`, `07`, `0A`"
    );
}

#[test]
fn obd_and_j1939_checks() {
    let got = problems(
        "[obd]\nbus = \"pt\"\nid_bits = 12\npids = [0x0D, 0xFF, 0x0D]\n\
         [j1939]\nbus = \"pt\"\nown_address = 0xFF\nsignal_sources = [0, 0xFE]\n",
    );
    assert_eq!(
        got,
        [
            "obd.id_bits: must be 11 or 29, not 12",
            "obd.pids[1]: mode 01 PID 0xFF has no known length, so its answer cannot be decoded",
            "obd.pids[2]: PID 0x0D is listed twice",
            "j1939.own_address: 0xFF is reserved (0xFE null, 0xFF global); use 0x00-0xFD",
            "j1939.signal_sources[1]: 0xFE is not a source address (0x00-0xFD)",
        ]
    );
}

#[test]
fn sync_section_defaults_and_broker_urls() {
    let c = parse("[sync]\nbroker = \"mqtt://127.0.0.1\"\n").unwrap();
    let s = c.sync.as_ref().unwrap();
    assert_eq!(s.broker.port, 1883);
    assert!(!s.broker.tls && !s.uses_tls());
    assert_eq!(s.client_id, None);
    assert_eq!(s.batch_max_records, defaults::SYNC_BATCH_MAX_RECORDS);
    assert_eq!(s.inflight, defaults::SYNC_INFLIGHT);
    assert_eq!(s.heartbeat_s, 3_600);
    assert!(c.problems("").is_empty(), "{:?}", c.problems(""));
    assert!(parse("").unwrap().sync.is_none());

    for (text, host, port, tls) in [
        ("mqtts://broker.example", "broker.example", 8883, true),
        ("mqtt://broker.example:1884/", "broker.example", 1884, false),
        ("mqtts://[::1]:9000", "::1", 9000, true),
        ("mqtt://10.0.0.7", "10.0.0.7", 1883, false),
    ] {
        let url = BrokerUrl::parse(text).unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.tls),
            (host, port, tls),
            "{text}"
        );
        assert_eq!(BrokerUrl::parse(&url.to_string()).unwrap(), url);
    }
    for bad in [
        "tcp://h:1",
        "mqtt://",
        "mqtt://h:0",
        "mqtt://h:70000",
        "mqtt://user@h",
        "mqtt://h/path",
        "mqtts://[::1",
        "mqtt://[nothost]:1",
        "mqtt:// h",
    ] {
        assert!(BrokerUrl::parse(bad).is_err(), "{bad} accepted");
    }
    // A bad URL is refused where it stands, with the text.
    let err = parse("[sync]\nbroker = \"http://x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("test.toml:12:") && err.contains("http://x"),
        "{err}"
    );
}

#[test]
fn sync_values_are_checked_with_their_paths() {
    let got = problems(
        r#"
[sync]
broker = "mqtts://broker.example"
client_id = "has space"
keep_alive_s = 2
batch_max_records = 0
batch_max_bytes = 300000
batch_max_age_ms = 700000
inflight = 51
backoff_min_ms = 0
backoff_max_ms = 4000000
heartbeat_s = 0
"#,
    );
    let expect = [
        "sync.client_id: \"has space\" must be 1-128 printable ASCII",
        "sync.keep_alive_s: must be 5..=65535 s, not 2",
        "sync.batch_max_records: must be 1..=16384",
        "sync.batch_max_bytes: must be 1024..=262144 bytes",
        "sync.batch_max_age_ms: must be at most 600000 ms",
        "sync.inflight: must be 1..=50",
        "sync.backoff_min_ms: must be at least 1 ms",
        "sync.backoff_max_ms: must be at most 3600000 ms",
        "sync.heartbeat_s: must be 1..=86400 s, not 0",
        "sync.tls.ca: an mqtts broker needs [sync.tls]",
    ];
    for e in expect {
        assert!(
            got.iter().any(|g| g.starts_with(e)),
            "missing {e:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), expect.len(), "{got:#?}");

    let got = problems(
        "[sync]\nbroker = \"mqtt://h\"\nbackoff_min_ms = 5000\nbackoff_max_ms = 100\n\
         [sync.tls]\nca = \"ca.pem\"\ncert = \"agent.pem\"\n",
    );
    assert_eq!(
        got,
        [
            "sync.backoff_max_ms: must be at least sync.backoff_min_ms",
            "sync.tls.key: a client certificate needs its key",
        ]
    );
    // Unknown keys are refused, in [sync] and in [sync.tls].
    assert!(parse("[sync]\nbroker = \"mqtt://h\"\nbatch_size = 3\n").is_err());
    assert!(
        parse("[sync]\nbroker = \"mqtt://h\"\n[sync.tls]\nca = \"a\"\npassword = \"x\"\n").is_err()
    );
}

/// Two good items, as a fleet engineer writes them: oil every 10,000 km or 12 months (due
/// soon 1,000 km / 30 days before), and a one-off first service at 5,000 km or 6 months.
fn good_items() -> [MaintenanceItem; 2] {
    let c = parse(
        "[[maintenance.items]]\nid = \"oil\"\nevery_km = 10000\nevery_months = 12\n\
         due_soon_km = 1000\ndue_soon_days = 30\n\
         [[maintenance.items]]\nid = \"first_service\"\nfirst_at_km = 5000\n\
         first_at_months = 6\ndue_soon_km = 500\ndue_soon_days = 14\n",
    )
    .unwrap();
    let [oil, first_service] = <[MaintenanceItem; 2]>::try_from(c.maintenance.items).unwrap();
    [oil, first_service]
}

#[test]
fn schedule_problems_name_every_problem_with_its_path() {
    let [oil, first_service] = good_items();
    let item = |id: &str| MaintenanceItem {
        id: id.into(),
        ..MaintenanceItem::default()
    };
    let items = vec![
        oil.clone(), // [0] fine
        MaintenanceItem {
            every_km: Some(1),
            ..item("")
        }, // [1]
        MaintenanceItem {
            every_km: Some(5_000),
            ..item("oil")
        }, // [2] duplicate id
        item("tyres"), // [3] no interval at all
        MaintenanceItem {
            every_months: Some(0),
            ..item("brake:fluid")
        }, // [4] ':' in the id, zero interval
        MaintenanceItem {
            every_km: Some(10_000),
            due_soon_km: Some(10_000),
            ..item("filter")
        }, // [5] window as long as the interval
        MaintenanceItem {
            first_at_km: Some(1_000),
            every_km: Some(15_000),
            due_soon_km: Some(1_000),
            ..item("first")
        }, // [6] window as long as the first interval only
        MaintenanceItem {
            every_months: Some(1),
            due_soon_days: Some(28),
            ..item("coolant")
        }, // [7] window as long as the shortest month
        MaintenanceItem {
            every_engine_hours: Some(500),
            due_soon_km: Some(100),
            ..item("wipers")
        }, // [8] a km window without a km interval
        MaintenanceItem {
            every_km: Some(60_000),
            due_soon_days: Some(30),
            ..item("belt")
        }, // [9] a days window without a months interval
        MaintenanceItem {
            every_km: Some(1),
            ..item(&"x".repeat(65))
        }, // [10] too long
        first_service.clone(), // [11] fine
        MaintenanceItem {
            every_km: Some(1_000),
            every_months: Some(6),
            due_soon_km: Some(999),
            due_soon_days: Some(167),
            ..item("edge")
        }, // [12] fine: windows just under the intervals (6 × 28 = 168)
    ];
    let mut problems = Problems::new();
    schedule_problems(&items, "maintenance.items", &mut problems);
    let got: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    let expected = [
        ("maintenance.items[1].id", "must not be empty"),
        ("maintenance.items[2].id", "\"oil\" is used by items[0]"),
        (
            "maintenance.items[3]",
            "has no interval: set every_km, every_months, every_engine_hours, first_at_km or first_at_months",
        ),
        (
            "maintenance.items[4].id",
            "\"brake:fluid\" must not contain ':', spaces or control characters",
        ),
        (
            "maintenance.items[4].every_months",
            "must be at least 1 (leave it out for no interval)",
        ),
        (
            "maintenance.items[5].due_soon_km",
            "must be less than every_km (10000 km), not 10000",
        ),
        (
            "maintenance.items[6].due_soon_km",
            "must be less than first_at_km (1000 km), not 1000",
        ),
        (
            "maintenance.items[7].due_soon_days",
            "must be less than every_months (at least 28 days), not 28",
        ),
        (
            "maintenance.items[8].due_soon_km",
            "has no effect without every_km or first_at_km",
        ),
        (
            "maintenance.items[9].due_soon_days",
            "has no effect without every_months or first_at_months",
        ),
        ("maintenance.items[10].id", "must be at most 64 bytes"),
    ];
    assert_eq!(got, expected);
    let mut fine = Problems::new();
    schedule_problems(&[oil, first_service], "x", &mut fine);
    assert!(fine.is_empty());
}

#[test]
fn store_cache_has_a_head_unit_default_and_a_range() {
    let c = parse("").unwrap();
    assert_eq!(c.store.cache_kb, 2_048);
    let c = parse("[store]\ncache_kb = 512\n").unwrap();
    assert_eq!(c.store.cache_kb, 512);
    assert!(c.problems("").is_empty());
    for (value, shown) in [("0", "0"), ("255", "255"), ("2000000", "2000000")] {
        assert_eq!(
            problems(&format!("[store]\ncache_kb = {value}\n")),
            [format!(
                "store.cache_kb: must be 256..=1048576 KiB, not {shown}"
            )]
        );
    }
}

/// `parse` (what the config fuzz target drives) checks text as `load` checks the file: the
/// same config and DBC signals from the repo's example, the DBC asked of the caller by the
/// path `[dbc]` names, and every problem listed under the text's name.
#[test]
fn parse_checks_text_as_load_checks_the_file() {
    let path = rapport_harness::files::repo_file("config/passenger.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let dbc_text = std::fs::read_to_string(rapport_harness::files::repo_file(
        "agent/fixtures/passenger.dbc",
    ))
    .unwrap();
    let mut asked = None;
    let from_text = super::parse("passenger.toml", &text, |p| {
        asked = Some(p.to_owned());
        DbcFile::parse("passenger.dbc", &dbc_text)
    })
    .unwrap();
    let from_file = load(&path).unwrap();
    assert_eq!(
        asked,
        Some(PathBuf::from("../agent/fixtures/passenger.dbc"))
    );
    assert_eq!(
        Config {
            path: None,
            ..from_file.config
        },
        from_text.config
    );
    assert_eq!(
        from_text.dbc.map(|d| d.roles),
        from_file.dbc.map(|d| d.roles)
    );

    let bad = text.replace("line = \"example-hatchback-2021\"", "line = \" \"");
    let err = super::parse("bad.toml", &bad, |_| DbcFile::parse("x.dbc", "not a DBC"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("vehicle.line: must not be empty"), "{err}");
    assert!(err.contains("dbc.file"), "{err}");
}
