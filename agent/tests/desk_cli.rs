//! `rapport-agent desk`: the agent against a simulated car from the command line — what an
//! engineer runs on a desk with no car. The recorded trace then replays with the same config.

use std::process::Command;

use rapport_harness::{agent, files, process};

fn agent() -> Command {
    process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"))
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn desk_drive_prints_observations_and_records_a_replayable_trace() {
    let config = files::repo_file("config/passenger.toml");
    let dir = std::env::temp_dir().join(format!("rapport-desk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("drive.log");
    let out = agent()
        .args(["desk", "--minutes", "45", "--config"])
        .arg(&config)
        .arg("--record")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = lines(&out.stdout);
    let summary = live.last().unwrap();
    assert_eq!(summary["kind"], "desk_summary");
    // Default script: 12,000 km + 50 km/h·5 min + 100·15 min + 80·10 min + 50·5 min.
    assert!(
        (summary["final_km"].as_f64().unwrap() - 12_046.666).abs() < 0.01,
        "{summary}"
    );
    let states: Vec<&str> = live
        .iter()
        .filter(|l| l["kind"] == "dtc" && l["code"] == "P0133")
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "cleared"]);
    let speeds = live.iter().filter(|l| l["kind"] == "speed").count();
    assert!(
        speeds < 2 * 45 * 60,
        "speed lines are rate-limited: {speeds}"
    );

    let replay = agent()
        .args(["replay", "--summary", "--config"])
        .arg(&config)
        .arg("--log")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(replay.status.success());
    let replayed = lines(&replay.stdout);
    let last_km = |ls: &[serde_json::Value]| {
        ls.iter()
            .rev()
            .find(|l| l["kind"] == "odometer")
            .and_then(|l| l["km"].as_f64())
    };
    assert_eq!(last_km(&replayed), last_km(&live));
    assert_eq!(replayed.last().unwrap()["kind"], "summary");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run` on a CAN interface that does not exist ends with a failure naming it — not a panic,
/// not a clean exit (systemd must see it failed).
#[test]
fn run_on_a_missing_can_interface_fails_with_the_cause() {
    let dir = std::env::temp_dir().join(format!("rapport-nocan-{}", std::process::id()));
    let mut c = agent::passenger().unwrap();
    c.can.buses[0].interface = "nosuchcan9".into();
    c.hmi.listen = "127.0.0.1:0".parse().unwrap();
    let config = agent::write(&c, &dir).unwrap();
    let out = agent()
        .args(["run", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited {:?}: {stderr}", out.status);
    // A panic would be exit 101 (tests unwind) with "panicked" on stderr.
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("nosuchcan9"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
