//! The example configs in `config/` load and validate, and `check-config` reports broken
//! configs with exit code 2 and the key path or line of each problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rapport_agent::config::{self, Category};
use rapport_harness::files::repo_file;
use rapport_kit::config::Check as _;

fn check(path: &Path) -> (i32, String, String) {
    let out = rapport_harness::process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"))
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn examples_load_and_validate() {
    let p = config::load(&repo_file("config/passenger.toml")).unwrap();
    assert_eq!(p.config.vehicle.category, Category::Passenger);
    assert!(p.config.problems("").is_empty());
    let dbc = p.dbc.unwrap();
    assert_eq!(dbc.plan.signals().len(), 3);
    assert_eq!(p.config.uds[0].dids[0].did, 0xF1A0);
    let c = config::load(&repo_file("config/commercial.toml")).unwrap();
    assert_eq!(c.config.vehicle.category, Category::Commercial);
    assert_eq!(c.config.j1939.unwrap().signal_sources, Some(vec![0x00]));
    assert!(c.dbc.is_none());
    let m = config::load(&repo_file("config/multibus.toml")).unwrap();
    assert!(m.config.problems("").is_empty());
    assert_eq!(m.config.can.buses.len(), 2);
    let names: Vec<_> = m.config.uds.iter().map(|u| u.name.as_deref()).collect();
    assert_eq!(names, [Some("cluster"), Some("gateway"), Some("hybrid")]);
}

#[test]
fn check_config_accepts_the_examples() {
    for name in [
        "config/passenger.toml",
        "config/commercial.toml",
        "config/multibus.toml",
    ] {
        let (code, stdout, stderr) = check(&repo_file(name));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.starts_with("config OK: "), "{stdout}");
    }
}

#[test]
fn check_config_reports_broken_configs() {
    let dir = std::env::temp_dir().join(format!("rapport-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(repo_file("config/passenger.toml")).unwrap();

    // a syntax error: file, line and column
    let syntax = dir.join("syntax.toml");
    std::fs::write(
        &syntax,
        good.replace("line = \"example-hatchback-2021\"", "line = "),
    )
    .unwrap();
    let (code, _, stderr) = check(&syntax);
    assert_eq!(code, 2);
    assert!(stderr.contains("syntax.toml:7:"), "{stderr}");

    // values: every problem with its key path, and the DBC problems naming the DBC file
    let dbc = repo_file("agent/fixtures/passenger.dbc");
    let values = dir.join("values.toml");
    std::fs::write(
        &values,
        good.replace("len = 3", "len = 9")
            .replace("on_ms = 1000", "on_ms = 0")
            .replace("signal = \"VehicleSpeed\"", "signal = \"Speed\"")
            .replace(
                "../agent/fixtures/passenger.dbc",
                &dbc.display().to_string(),
            ),
    )
    .unwrap();
    let (code, _, stderr) = check(&values);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("uds.dids[0].len: must be 1..=8 for unsigned_be"),
        "{stderr}"
    );
    assert!(
        stderr.contains("poller.on_ms: must be more than 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("passenger.dbc") && stderr.contains("no signal Speed"),
        "{stderr}"
    );

    // a missing DBC file
    let missing = dir.join("missing.toml");
    std::fs::write(
        &missing,
        good.replace("../agent/fixtures/passenger.dbc", "nope.dbc"),
    )
    .unwrap();
    let (code, _, stderr) = check(&missing);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("dbc.file: DBC file") && stderr.contains("nope.dbc"),
        "{stderr}"
    );
}
