#![allow(clippy::unwrap_used, clippy::expect_used)]

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
        .validate()
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
    assert!(c.obd.is_none() && c.uds.is_none() && c.j1939.is_none() && c.dbc.is_none());
    assert!(c.validate().is_empty());
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
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("é\nx", 99), (2, 2));
}
