//! With mTLS the agent knows who it is: a client certificate whose subject CN is another VIN
//! is refused by `check-config` and by `run` (exit 2, one problem naming the CN and the VIN),
//! the car's own certificate is accepted — the test PKI's real certificates, the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rapport_agent::config::SyncTls;
use rapport_harness::pki::Ca;

const CAR: &str = "1HGCM82633A004352";
const OTHER: &str = "WVWZZZ1JZXW000001";

/// `agent.toml` in `dir`: the bare car `CAR` syncing over mqtts with the certificate issued to
/// `cn` by a CA in `dir`.
fn config(dir: &Path, cn: &str) -> PathBuf {
    let ca = Ca::generate(dir, "rapport test ca").unwrap();
    let issued = ca.client(cn).unwrap();
    let mut config = rapport_harness::agent::bare().unwrap();
    config.vehicle.vin = CAR.parse().unwrap();
    let mut sync = rapport_harness::agent::sync_to("mqtts://127.0.0.1:8883").unwrap();
    sync.tls = Some(SyncTls {
        ca: ca.cert().to_owned(),
        cert: Some(issued.cert.clone()),
        key: Some(issued.key.clone()),
    });
    config.sync = Some(sync);
    rapport_harness::agent::write(&config, dir).unwrap()
}

fn agent(args: &[&str], config: &Path, data: &Path) -> (i32, String, String) {
    let mut cmd = rapport_harness::process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"));
    cmd.arg(args[0]).arg("--config").arg(config);
    if args[0] == "run" {
        cmd.arg("--data-dir").arg(data);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_certificate_for_another_vin_is_refused_by_check_config_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), OTHER);
    let data = dir.path().join("data");

    // The library's loader (what every subcommand uses) names the key, the CN and the VIN.
    let err = rapport_agent::settings::load(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sync.tls.cert"), "{err}");
    assert!(err.contains(OTHER) && err.contains(CAR), "{err}");

    for command in ["check-config", "run"] {
        let (code, stdout, stderr) = agent(&[command], &path, &data);
        assert_eq!(code, 2, "{command}: {stdout}{stderr}");
        assert!(
            stderr.contains("sync.tls.cert")
                && stderr.contains(&format!("subject CN is \"{OTHER}\""))
                && stderr.contains(&format!("VIN {CAR}")),
            "{command}: {stderr}"
        );
        assert!(!stdout.contains("config OK"), "{command}: {stdout}");
    }
    // `run` refused before it opened anything: no store was made.
    assert!(!data.exists());
}

#[test]
fn the_cars_own_certificate_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), CAR);
    let (code, stdout, stderr) = agent(&["check-config"], &path, dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("config OK"), "{stdout}");
    assert!(
        rapport_agent::settings::sync(&rapport_agent::settings::load(&path).unwrap().config)
            .unwrap()
            .is_some()
    );
}
