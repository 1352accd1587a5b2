//! The `replay` subcommand end to end: the binary over hand-made, garbage and real traces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rapport_harness::files::repo_file;
use rapport_shared::CivilDate;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rapport-replay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `trace` to `<name>.log` in `dir`; its path.
fn write_trace(dir: &Path, name: &str, trace: &str) -> PathBuf {
    let log = dir.join(format!("{name}.log"));
    std::fs::write(&log, trace).unwrap();
    log
}

fn replay(config: &Path, log: &Path) -> (i32, Vec<String>) {
    let out = rapport_harness::process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"))
        .args(["replay", "--summary", "--config"])
        .arg(config)
        .arg("--log")
        .arg(log)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_owned).collect(),
    )
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn hand_made_obd_trace_gives_exact_lines() {
    let log = write_trace(
        &temp_dir("obd"),
        "obd",
        concat!(
            // mode 01 PID A6 (odometer), functional request, padding 0xCC
            "(1436509052.249713) can0 7DF#0201A6CCCCCCCCCC\n",
            // 06 = SF of 6 bytes: 41 A6 00 01 23 C6 -> 0x000123C6 hm = 7469.4 km
            "(1436509052.260000) can0 7E8#0641A6000123C6CC\n",
            // mode 03
            "(1436509052.300000) can0 7DF#0103CCCCCCCCCCCC\n",
            // FF of 8 bytes: 43 03 (3 codes) 01 33 (P0133) 03 00 (P0300) ...
            "(1436509052.310000) can0 7E8#1008430301330300\n",
            // flow control from the tester (ignored by a passive reader)
            "(1436509052.311000) can0 7E0#300000CCCCCCCCCC\n",
            // CF 1: ... 01 71 (P0171)
            "(1436509052.320000) can0 7E8#210171CCCCCCCCCC\n",
        ),
    );
    let (code, lines) = replay(&repo_file("config/passenger.toml"), &log);
    assert_eq!(code, 0);
    assert_eq!(
        lines[..4],
        [
            r#"{"t_ms":1436509052260,"kind":"odometer","km":7469.4,"source":"obd"}"#,
            r#"{"t_ms":1436509052320,"kind":"dtc","code":"P0133","state":"active","class":"confirmed","severity":"warning","source":"obd","ecu":"0x7E8"}"#,
            // overridden in config/passenger.toml
            r#"{"t_ms":1436509052320,"kind":"dtc","code":"P0300","state":"active","class":"confirmed","severity":"critical","source":"obd","ecu":"0x7E8"}"#,
            r#"{"t_ms":1436509052320,"kind":"dtc","code":"P0171","state":"active","class":"confirmed","severity":"warning","source":"obd","ecu":"0x7E8"}"#,
        ]
    );
    // The config's rules: the misfire is critical, so its prompt shows at once (motion is
    // unknown: the warnings wait for the car to be seen stopped).
    assert_eq!(
        lines[4],
        r#"{"t_ms":1436509052320,"kind":"prompt","id":"fault:P0300:1:critical","prompt":"fault","code":"P0300","critical":true,"title":"Serious fault P0300","text":"Stop safely as soon as you can and contact your dealer."}"#
    );
    let summary = json(&lines[5]);
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["frames"], 6);
    assert_eq!(summary["warnings"], 0);
    assert_eq!(lines.len(), 6);
}

/// Each DTC list prints its class; a permanent or stored code never becomes a prompt, even
/// when the config makes it critical, while the same code confirmed does.
#[test]
fn replay_prints_the_class_of_each_dtc_list() {
    let log = write_trace(
        &temp_dir("classes"),
        "classes",
        concat!(
            // mode 0A (permanent): 4A, 1 code, P0300 (critical in config/passenger.toml)
            "(1436509052.000000) can0 7DF#010ACCCCCCCCCCCC\n",
            "(1436509052.010000) can0 7E8#044A010300CCCCCC\n",
            // UDS 0x19 0x02 to the cluster; answer 59 02 FF, P0420-00 status 0x20 (stored)
            "(1436509052.100000) can0 714#031902FFCCCCCCCC\n",
            "(1436509052.110000) can0 77E#075902FF04200020\n",
            // mode 03 (confirmed): P0300
            "(1436509052.200000) can0 7DF#0103CCCCCCCCCCCC\n",
            "(1436509052.210000) can0 7E8#0443010300CCCCCC\n",
        ),
    );
    let (code, lines) = replay(&repo_file("config/passenger.toml"), &log);
    assert_eq!(code, 0);
    assert_eq!(
        lines[..4],
        [
            r#"{"t_ms":1436509052010,"kind":"dtc","code":"P0300","state":"active","class":"permanent","severity":"critical","source":"obd","ecu":"0x7E8"}"#,
            r#"{"t_ms":1436509052110,"kind":"dtc","code":"P0420-00","status":"0x20","state":"active","class":"stored","severity":"info","source":"uds","ecu":"0x77E"}"#,
            r#"{"t_ms":1436509052210,"kind":"dtc","code":"P0300","state":"active","class":"confirmed","severity":"critical","source":"obd","ecu":"0x7E8"}"#,
            r#"{"t_ms":1436509052210,"kind":"prompt","id":"fault:P0300:1:critical","prompt":"fault","code":"P0300","critical":true,"title":"Serious fault P0300","text":"Stop safely as soon as you can and contact your dealer."}"#,
        ]
    );
    assert_eq!(json(&lines[4])["kind"], "summary");
    assert_eq!(json(&lines[4])["warnings"], 0);
    assert_eq!(lines.len(), 5);
}

/// `replay` runs the config's rules with the trace's time as the clock: crossing 10,000 km
/// brings the oil service due (and a milestone), and their prompt lines come once the car has
/// stood still for 3 s.
#[test]
fn replay_prints_the_prompts_the_rules_would_show() {
    let dir = temp_dir("prompts");
    let mut c = rapport_harness::agent::passenger().unwrap();
    // Delivered four months before the trace: by date, nothing is due yet.
    c.vehicle.delivered = CivilDate::parse("2015-03-01").unwrap();
    c.prompts.quiet_hours = None;
    let config = rapport_harness::agent::write(&c, &dir).unwrap();
    let mut trace = String::new();
    let t0 = 1_436_509_052.0_f64;
    let mut frame = |t: f64, id: &str, data: &str| {
        trace.push_str(&format!("({:.6}) can0 {id}#{data}\n", t0 + t));
    };
    // 50 km/h at 9,999.9 km, then 10,000.0 km (oil due: every 10,000 km), then standing still.
    frame(0.0, "7DF", "02010DCCCCCCCCCC");
    frame(0.01, "7E8", "03410D32CCCCCCCC");
    frame(0.1, "7DF", "0201A6CCCCCCCCCC");
    frame(0.11, "7E8", "0641A60001869FCC");
    frame(2.0, "7DF", "0201A6CCCCCCCCCC");
    frame(2.01, "7E8", "0641A6000186A0CC");
    for s in 3..=8 {
        frame(f64::from(s), "7DF", "02010DCCCCCCCCCC");
        frame(f64::from(s) + 0.01, "7E8", "03410D00CCCCCCCC");
    }
    let log = write_trace(&dir, "drive", &trace);
    let (code, lines) = replay(&config, &log);
    assert_eq!(code, 0);
    let prompts: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| json(l))
        .filter(|v| v["kind"] == "prompt")
        .collect();
    // Crossing 10,000 km is also a distance milestone.
    assert_eq!(prompts.len(), 2, "{lines:#?}");
    assert_eq!(prompts[1]["id"], "milestone:10000");
    assert_eq!(prompts[1]["prompt"], "milestone");
    let p = &prompts[0];
    assert_eq!(p["id"], "maintenance:oil:0:due");
    assert_eq!(p["prompt"], "maintenance_due");
    assert_eq!(p["item"], "oil");
    assert_eq!(p["critical"], false);
    // Shown once stopped for 3 s: the first zero-speed answer is at 3.01 s.
    let t = p["t_ms"].as_u64().unwrap();
    assert!(
        (1_436_509_058_010..=1_436_509_059_010).contains(&t),
        "shown at {t}"
    );
    let summary = json(lines.last().unwrap());
    assert_eq!(summary["observations"]["prompt"], 2);

    // --no-prompts: no rules.
    let out = rapport_harness::process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"))
        .args(["replay", "--no-prompts", "--config"])
        .arg(&config)
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"prompt\""));
}

#[test]
fn garbage_trace_gives_warnings_only() {
    let log = write_trace(
        &temp_dir("garbage"),
        "garbage",
        "hello world\n(1.0) can0 7E8#GG\n\u{0}\u{1}\u{2}\n(1.0) can0 7E8#2101\n(2.0) can0 7E8#\n",
    );
    let (code, lines) = replay(&repo_file("config/passenger.toml"), &log);
    assert_eq!(code, 0);
    let (summary, rest) = lines.split_last().unwrap();
    assert!(!rest.is_empty());
    for line in rest {
        assert_eq!(json(line)["kind"], "warning", "{line}");
    }
    assert!(
        rest.iter()
            .any(|l| l.contains(r#""what":"line 2: column 16: expected a hex digit"#)),
        "{rest:#?}"
    );
    // the CF without a FF is malformed traffic, not a crash
    assert!(
        rest.iter().any(|l| l.contains("without a first frame")),
        "{rest:#?}"
    );
    let summary = json(summary);
    assert_eq!(summary["observations"]["warning"], rest.len());
}

#[test]
fn truck_trace_with_commercial_config() {
    let Some(log) =
        rapport_harness::files::shared_data_file("traces/j1939-attack-datasets/normal.log")
    else {
        return;
    };
    let (code, lines) = replay(&repo_file("config/commercial.toml"), &log);
    assert_eq!(code, 0);
    let values: Vec<serde_json::Value> = lines.iter().map(|l| json(l)).collect();
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| values.iter().find(|v| pred(v)).cloned();
    // VECTORS.md §4d: DM1 SA 0 (MIL on -> warning) and SA 0x31 (AWL on -> warning)
    for (code, sa, oc) in [
        ("SPN191/FMI9", "0x00", 8),
        ("SPN84/FMI9", "0x00", 8),
        ("SPN5357/FMI31", "0x00", 1),
        ("SPN96/FMI3", "0x31", 126),
        ("SPN829/FMI3", "0x31", 126),
    ] {
        let v = find(&|v| v["kind"] == "dtc" && v["code"] == code && v["state"] == "active")
            .unwrap_or_else(|| panic!("no {code}"));
        assert_eq!(v["ecu"], sa);
        assert_eq!(v["oc"], oc);
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["source"], "j1939");
    }
    // VECTORS.md §4d: VD total 438978.0 km is the first odometer; CCVS1 23.203 km/h
    let odo = find(&|v| v["kind"] == "odometer").unwrap();
    assert_eq!(odo["km"], 438978.0);
    let speed = find(&|v| v["kind"] == "speed").unwrap();
    assert_eq!(speed["kmh"], 23.203);
    // SA 0x31's own total (537151.605 km) is not a source in this config
    assert!(
        values
            .iter()
            .all(|v| v["kind"] != "odometer" || v["km"].as_f64().unwrap() < 438_979.0)
    );
    let summary = values.last().unwrap();
    assert_eq!(summary["frames"], 19_957);
    assert_eq!(summary["warnings"], 0);
}

#[test]
fn open3e_uds_scan_warns_and_carries_on() {
    let Some(log) = rapport_harness::files::shared_data_file("traces/open3e/candump.log") else {
        return;
    };
    let dir = temp_dir("open3e");
    let config = dir.join("open3e.toml");
    std::fs::write(
        &config,
        r#"
[vehicle]
vin = "WVWZZZ1KZ8W012345"
line = "heating controller"
category = "passenger"
delivered = "2020-01-01"
[[can.buses]]
name = "b"
interface = "can0"
[uds]
bus = "b"
request_id = 0x680
response_id = 0x690
"#,
    )
    .unwrap();
    let (code, lines) = replay(&config, &log);
    assert_eq!(code, 0);
    let summary = json(lines.last().unwrap());
    // SOURCES.md: 229 first frames never followed by consecutive frames
    assert_eq!(summary["warnings_by_kind"]["isotp"], 229);
    assert!(
        summary["warnings_by_kind"]["negative_response"]
            .as_u64()
            .unwrap()
            > 0
    );
    // VECTORS.md §3 (open3e): `10 27 62 01 00 ...` declares 39 bytes and never completes
    assert!(
        lines[0].contains("ISO-TP message from 0x690 abandoned after 6 of 39 bytes"),
        "{}",
        lines[0]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("requestOutOfRange (NRC 0x31)"))
    );
}
