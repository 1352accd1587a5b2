//! The settings' tests: what a config turns into (filters, sync and its TLS files, the HMI
//! address).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use embedded_can::Frame as _;

use super::*;

fn example(name: &str) -> Loaded {
    config::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config")
            .join(name),
    )
    .unwrap()
}

fn passes(f: &[KernelFilter], id: u32, ext: bool) -> bool {
    f.iter().any(|k| k.matches(id, ext))
}

#[test]
fn passenger_filters_pass_what_it_reads_and_nothing_else() {
    let f = kernel_filters(&example("passenger.toml"), 0);
    for (id, ext) in [
        (0x7E8, false),
        (0x7EF, false),
        (0x77E, false),
        (0x500, false),
    ] {
        assert!(passes(&f, id, ext), "0x{id:X} must pass");
    }
    for (id, ext) in [
        (0x7DF, false),
        (0x7E0, false),
        (0x123, false),
        (0x501, false),
        (0x7E8, true),
    ] {
        assert!(!passes(&f, id, ext), "0x{id:X} must not pass");
    }
}

#[test]
fn commercial_filters_pass_j1939_groups_from_any_source_and_priority() {
    let f = kernel_filters(&example("commercial.toml"), 0);
    // From the real truck trace: DM1 and TP at priority 7, VD, VDHR from SA 0x31, CCVS1.
    for id in [
        0x18FE_CA00,
        0x1CEC_FF00,
        0x1CEB_FF31,
        0x18FE_E000,
        0x18FE_C131,
        0x18FE_F100,
        0x18FE_E500,
    ] {
        assert!(passes(&f, id, true), "0x{id:X} must pass");
    }
    // EEC1 (engine speed) and a standard id are not read.
    assert!(!passes(&f, 0x0CF0_0400, true));
    assert!(!passes(&f, 0x18FE_CA00 & 0x7FF, false));
}

/// A minimal config in `dir` with `[sync]` set to `sync`.
fn config_in(dir: &Path, sync: &str) -> Config {
    let text = format!(
        r#"
[vehicle]
vin = "WVWZZZ1KZ8W012345"
line = "t"
category = "passenger"
delivered = "2021-03-15"
{sync}"#
    );
    let mut c = Config::from_toml("t.toml", &text).unwrap();
    c.path = Some(dir.join("agent.toml"));
    c
}

#[test]
fn plain_links_need_nothing_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let plain = config_in(dir.path(), "[sync]\nbroker = \"mqtt://127.0.0.1\"\n");
    assert!(sync(&plain).unwrap().unwrap().tls.is_none());
    assert!(sync(&config_in(dir.path(), "")).unwrap().is_none());

    let tls = config_in(dir.path(), "[sync]\nbroker = \"mqtts://broker.example\"\n");
    let Err(SyncError::Config { problems }) = sync(&tls) else {
        panic!("an mqtts broker without [sync.tls] was accepted");
    };
    assert_eq!(problems[0].path, "sync.tls.ca");
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    let tls = config_in(
        dir.path(),
        "[sync]\nbroker = \"mqtts://broker.example\"\n[sync.tls]\nca = \"ca.pem\"\n\
         cert = \"missing.pem\"\nkey = \"missing.key\"\n",
    );
    let Err(SyncError::Config { problems }) = sync(&tls) else {
        panic!("unusable TLS files were accepted");
    };
    // Each file named where the config names it (the messages: `sync::tls`'s tests).
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["sync.tls.ca", "sync.tls.cert", "sync.tls.key"]);
    assert!(
        problems[0]
            .message
            .contains(&dir.path().join("ca.pem").display().to_string())
    );
}

#[test]
fn load_lists_the_tls_files_problems_with_the_config_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        "[vehicle]\nvin = \"WVWZZZ1KZ8W012345\"\nline = \"\"\ncategory = \"passenger\"\n\
         delivered = \"2021-03-15\"\n[sync]\nbroker = \"mqtts://h\"\n[sync.tls]\nca = \"ca.pem\"\n",
    )
    .unwrap();
    let err = load(&path).unwrap_err();
    let got: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("vehicle.line: must not be empty"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("sync.tls.ca: ") && got[1].contains("ca.pem"),
        "{got:#?}"
    );
    // config::load alone does not read the files.
    assert_eq!(config::load(&path).unwrap_err().problems().len(), 1);
}

#[test]
fn address_defaults_to_loopback_8686_and_hmi_wins() {
    assert_eq!(
        hmi_address(None, None).unwrap(),
        "127.0.0.1:8686".parse().unwrap()
    );
    let given: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert_eq!(
        hmi_address(Some(given), Some(Path::new("/nonexistent"))).unwrap(),
        given
    );
    assert!(hmi_address(None, Some(Path::new("/nonexistent/agent.toml"))).is_err());
}

#[test]
fn obd_dtc_modes_and_j1939_dm2_reach_the_poller() {
    let mut loaded = example("commercial.toml");
    let p = poller(&loaded.config);
    assert!(
        p.j1939.as_ref().unwrap().dtc_request_pgns.is_empty(),
        "dm2 is off by default"
    );
    loaded.config.j1939.as_mut().unwrap().dm2 = true;
    let mut p = crate::poller::Poller::new(poller(&loaded.config));
    p.set_power(crate::poller::PowerState::On, Duration::ZERO);
    // Over 35 s: engine hours (65253) each data round, DM2 (65227) once per 30 s DTC round.
    let (mut hours, mut dm2) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    for ms in (0..35_000).step_by(10) {
        let now = Duration::from_millis(ms);
        p.poll(now, &mut out);
        for f in out.drain(..) {
            assert_eq!(f.raw_id() & 0x00FF_FF00, 0x00EA_FF00, "a global request");
            match f.data() {
                [0xE5, 0xFE, 0x00] => hours.push(ms),
                [0xCB, 0xFE, 0x00] => dm2.push(ms / 1000),
                other => panic!("{other:02X?}"),
            }
        }
    }
    assert!(hours.len() >= 30, "{hours:?}");
    assert_eq!(dm2, [0, 30]);

    // [obd] dtc_modes: the default asks 03, 07 and 0A; a list picks.
    let mut loaded = example("passenger.toml");
    let modes = |l: &Loaded| poller(&l.config).obd.unwrap().dtc_modes;
    use crate::proto::obd::DtcMode;
    assert_eq!(
        modes(&loaded),
        [DtcMode::Stored, DtcMode::Pending, DtcMode::Permanent]
    );
    loaded.config.obd.as_mut().unwrap().dtc_modes = vec![config::ObdDtcMode::Confirmed];
    assert_eq!(modes(&loaded), [DtcMode::Stored]);
    loaded.config.obd.as_mut().unwrap().dtcs = false;
    assert!(modes(&loaded).is_empty());
}
