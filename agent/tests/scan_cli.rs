//! `rapport-agent scan --desk`: the scan of the desk car writes a config that `check-config`
//! accepts and that reads a recorded desk drive as the hand-written config does; and a scan of
//! a moving car stops at once, writes nothing and fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rapport_harness::{files, process};

fn agent() -> Command {
    process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rapport-scan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last odometer and the DTC (code, state, source) lines of a replay of `trace` with `config`.
fn replay(config: &Path, trace: &Path) -> (f64, BTreeSet<(String, String, String)>) {
    let out = agent()
        .args(["replay", "--no-prompts", "--config"])
        .arg(config)
        .arg("--log")
        .arg(trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let km = lines
        .iter()
        .rev()
        .find(|l| l["kind"] == "odometer")
        .and_then(|l| l["km"].as_f64())
        .unwrap();
    let dtcs = lines
        .iter()
        .filter(|l| l["kind"] == "dtc")
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            (s("code"), s("state"), s("source"))
        })
        .collect();
    (km, dtcs)
}

#[test]
fn scanned_config_is_accepted_and_reads_a_desk_drive_like_the_hand_written_one() {
    let passenger = files::repo_file("config/passenger.toml");
    let dir = temp_dir("config");
    let skeleton = dir.join("scanned.toml");
    let out = agent()
        .args(["scan", "--desk", "--config"])
        .arg(&passenger)
        .arg("--write-config")
        .arg(&skeleton)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("VIN WVWZZZ1KZ8W012345"), "{table}");
    assert!(table.contains("0x714 -> 0x77E"), "{table}");

    let check = agent()
        .args(["check-config", "--config"])
        .arg(&skeleton)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));

    let trace = dir.join("drive.log");
    let desk = agent()
        .args(["desk", "--minutes", "50", "--config"])
        .arg(&passenger)
        .arg("--record")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(desk.status.success(), "{}", text(&desk));
    let (hand_km, hand_dtcs) = replay(&passenger, &trace);
    let (scan_km, scan_dtcs) = replay(&skeleton, &trace);
    assert!((hand_km - 12_046.6).abs() < 0.1, "{hand_km}");
    assert_eq!(scan_km, hand_km);
    assert!(
        hand_dtcs.contains(&("P0133".into(), "active".into(), "obd".into())),
        "{hand_dtcs:?}"
    );
    assert_eq!(scan_dtcs, hand_dtcs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scan_of_a_moving_desk_car_stops_at_once_and_fails() {
    let passenger = files::repo_file("config/passenger.toml");
    let dir = temp_dir("moving");
    let script = dir.join("drive.toml");
    std::fs::write(
        &script,
        "odometer_m = 5000000\n[[steps]]\npower = \"running\"\n[[steps]]\ndrive = { kmh = 50, secs = 3600 }\n",
    )
    .unwrap();
    let skeleton = dir.join("scanned.toml");
    let out = agent()
        .args(["scan", "--desk", "--config"])
        .arg(&passenger)
        .arg("--script")
        .arg(&script)
        .arg("--write-config")
        .arg(&skeleton)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("STOPPED: the car is moving"), "{table}");
    assert!(table.contains("50.0 km/h"), "{table}");
    // `01 00` on 0x7DF, whose answers say PID 0x0D is there, then `01 0D`: nothing more.
    assert!(table.contains("\n2 request(s) sent"), "{table}");
    assert!(!skeleton.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
