//! The deployment files keep the fleet engineer's guide (`docs/fleet-engineer.md`) honest:
//!
//! - `deploy/pki/make-certs.sh` issues what it says (a CA, the broker's server certificate, the
//!   cloud's and one client certificate per VIN with CN = VIN, a CRL), keeps what it issued on a
//!   second run, renews and revokes;
//! - the example configs under `deploy/examples/`, staged as `/etc/rapport` with those
//!   certificates, load with the agent's and the cloud's own loaders, and the truck example
//!   replays the recorded truck trace without a warning (where `../shared/data` is present);
//! - Mosquitto running `deploy/mosquitto/rapport.conf` and `deploy/mosquitto/acl` (port and
//!   paths substituted) with those certificates carries the real agent's uplinks to the real
//!   cloud, drops a car's publish under another VIN's topic (observed from the cloud's store),
//!   refuses a client without a certificate and, after a reload, a revoked one, and ignores the
//!   client id a car claims;
//! - the systemd units pass `systemd-analyze verify` (where it exists) and name the binaries,
//!   config files and data directories of the guide's install layout.
//!
//! Mosquitto runs the shipped file through the harness ([`Options::config_file`]): the harness
//! puts in the port and nothing but `user root`, so the point — the shipped config, not one the
//! harness writes — holds, with the harness's skip rule (`skipping: mosquitto not installed`,
//! an error with `RAPPORT_REQUIRE_MOSQUITTO`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rapport_harness::files::repo_file as repo;
use rapport_harness::mosquitto::{Mosquitto, Options};
use rapport_harness::mqtt::{STEP, connect, tls, tls_options};
use rapport_harness::records::odometer;
use rapport_harness::wait::{wait_for, wait_until};
use rapport_shared::{Odometer, Record, Timestamp, Uplink, Vin};
use tempfile::TempDir;

const VIN_A: &str = "WVWZZZ1KZ8W012345";
const VIN_B: &str = "WF0XXXGCDX1234567";
/// The broker address in the example configs, replaced by the test broker's.
const EXAMPLE_BROKER: &str = "mqtts://broker.example.net:8883";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `deploy/pki/make-certs.sh` with `args`.
fn make_certs(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo("deploy/pki/make-certs.sh"))
        .args(args)
        .output()
        .unwrap()
}

/// A PKI for the tests: broker names 127.0.0.1 and localhost, certificates for A and B.
fn pki() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = make_certs(&[
        "--broker-name",
        "127.0.0.1",
        "--broker-name",
        "localhost",
        d,
        VIN_A,
        VIN_B,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    dir
}

/// `openssl x509 -noout <args> -in <cert>`.
fn x509(cert: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-in"])
        .arg(cert)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl verify` of `cert` against the PKI's CA and CRL: Ok, or openssl's complaint.
fn verify(pki: &Path, cert: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(pki.join("ca/ca.crt"))
        .arg("-CRLfile")
        .arg(pki.join("ca/crl.pem"))
        .arg(cert)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

fn vehicle_dir(pki: &Path, vin: &str) -> PathBuf {
    pki.join("vehicles").join(vin)
}

#[test]
fn make_certs_issues_a_ca_a_broker_the_cloud_and_one_certificate_per_vin() {
    let pki = pki();
    let p = pki.path();
    for vin in [VIN_A, VIN_B] {
        let cert = vehicle_dir(p, vin).join("vehicle.crt");
        let shown = x509(
            &cert,
            &["-subject", "-ext", "extendedKeyUsage,basicConstraints"],
        );
        assert!(shown.contains(&format!("CN = {vin}")), "{shown}");
        assert!(shown.contains("TLS Web Client Authentication"), "{shown}");
        assert!(shown.contains("CA:FALSE"), "{shown}");
        assert!(!shown.contains("Server Authentication"), "{shown}");
        verify(p, &cert).unwrap();
        // The folder is /etc/rapport/tls for that car: the CA is in it too.
        assert_eq!(
            read(&vehicle_dir(p, vin).join("ca.crt")),
            read(&p.join("ca/ca.crt"))
        );
    }
    let broker = x509(
        &p.join("broker/broker.crt"),
        &["-ext", "subjectAltName,extendedKeyUsage"],
    );
    assert!(broker.contains("IP Address:127.0.0.1"), "{broker}");
    assert!(broker.contains("DNS:localhost"), "{broker}");
    assert!(broker.contains("TLS Web Server Authentication"), "{broker}");
    let cloud = x509(&p.join("cloud/rapport-cloud.crt"), &["-subject"]);
    assert!(cloud.contains("CN = rapport-cloud"), "{cloud}");
    let ca = x509(&p.join("ca/ca.crt"), &["-ext", "basicConstraints,keyUsage"]);
    assert!(ca.contains("CA:TRUE, pathlen:0"), "{ca}");
    assert!(ca.contains("Certificate Sign, CRL Sign"), "{ca}");

    use std::os::unix::fs::PermissionsExt;
    for key in [
        "ca/ca.key",
        "broker/broker.key",
        "cloud/rapport-cloud.key",
        &format!("vehicles/{VIN_A}/vehicle.key"),
    ] {
        let mode = std::fs::metadata(p.join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }

    // A second run adds a vehicle and keeps what was issued.
    let a_before = read(&vehicle_dir(p, VIN_A).join("vehicle.crt"));
    let vin_c = "1FUJGLDR7CLBP8834";
    let out = make_certs(&[p.to_str().unwrap(), VIN_A, vin_c]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("kept {VIN_A}")),
        "{}",
        text(&out)
    );
    assert_eq!(read(&vehicle_dir(p, VIN_A).join("vehicle.crt")), a_before);
    verify(p, &vehicle_dir(p, vin_c).join("vehicle.crt")).unwrap();

    // A second cloud instance gets its own certificate beside the first.
    let first_cloud = read(&p.join("cloud/rapport-cloud.crt"));
    let out = make_certs(&["--cloud-id", "rapport-cloud-2", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let second = x509(&p.join("cloud/rapport-cloud-2.crt"), &["-subject"]);
    assert!(second.contains("CN = rapport-cloud-2"), "{second}");
    assert_eq!(read(&p.join("cloud/rapport-cloud.crt")), first_cloud);

    // Renewal: a new key and certificate; the old certificate is on the CRL.
    let old = p.join("a-old.crt");
    std::fs::write(&old, &a_before).unwrap();
    let old_key = read(&vehicle_dir(p, VIN_A).join("vehicle.key"));
    let out = make_certs(&["--renew", VIN_A, p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(read(&vehicle_dir(p, VIN_A).join("vehicle.key")), old_key);
    verify(p, &vehicle_dir(p, VIN_A).join("vehicle.crt")).unwrap();
    let err = verify(p, &old).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");

    // Revocation.
    let out = make_certs(&["--revoke", VIN_B, p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let err = verify(p, &vehicle_dir(p, VIN_B).join("vehicle.crt")).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    verify(p, &vehicle_dir(p, vin_c).join("vehicle.crt")).unwrap();

    // Usage errors: exit status 2, nothing issued.
    for bad in [
        vec![p.to_str().unwrap(), "WVWZZZ1KZ8W01234O"],
        vec![p.to_str().unwrap(), "SHORT"],
        vec!["--revoke", "1FUJGLDR7CLBP8835", p.to_str().unwrap()],
        vec!["--cloud-id", "a/b", p.to_str().unwrap()],
        vec!["--frobnicate"],
        vec![],
    ] {
        let out = make_certs(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out));
    }
    assert!(!vehicle_dir(p, "WVWZZZ1KZ8W01234O").exists());
}

/// `/etc/rapport` as the guide installs it on a head unit and on the cloud's server: the
/// agent's and the cloud's example configs, the line's DBC as `vehicle.dbc` (here rapport's
/// own example DBC), and in `tls/` the vehicle's folder from make-certs.sh plus the cloud's
/// certificate. The configs are copied as shipped (their broker is [`EXAMPLE_BROKER`]).
fn stage_etc(pki: &Path, vin: &str) -> TempDir {
    let etc = tempfile::tempdir().unwrap();
    let e = etc.path();
    for name in ["agent.toml", "cloud.toml"] {
        let text = read(&repo(&format!("deploy/examples/{name}")));
        assert!(text.contains(EXAMPLE_BROKER), "{name}");
        std::fs::write(e.join(name), text).unwrap();
    }
    std::fs::copy(repo("agent/fixtures/passenger.dbc"), e.join("vehicle.dbc")).unwrap();
    std::fs::create_dir(e.join("tls")).unwrap();
    for f in ["ca.crt", "vehicle.crt", "vehicle.key"] {
        std::fs::copy(vehicle_dir(pki, vin).join(f), e.join("tls").join(f)).unwrap();
    }
    for (from, to) in [
        ("rapport-cloud.crt", "cloud.crt"),
        ("rapport-cloud.key", "cloud.key"),
    ] {
        std::fs::copy(pki.join("cloud").join(from), e.join("tls").join(to)).unwrap();
    }
    etc
}

#[test]
fn the_example_configs_load_with_the_real_loaders_and_fit_the_units() {
    let pki = pki();
    let etc = stage_etc(pki.path(), VIN_A);
    let e = etc.path();

    let agent = rapport_agent::config::load(&e.join("agent.toml")).unwrap();
    let c = &agent.config;
    assert_eq!(c.vehicle.vin.to_string(), VIN_A);
    assert_eq!(c.vehicle.line, "example-van-2024");
    assert_eq!(c.uds[0].dids.len(), 2);
    assert_eq!(agent.dbc.as_ref().unwrap().plan.signals().len(), 3);
    assert_eq!(c.maintenance.items.len(), 3);
    assert!(c.hmi.listen.ip().is_loopback());
    let sync = c.sync.as_ref().unwrap();
    assert!(sync.broker.tls && sync.uses_tls());
    // The TLS files load into the agent's own rustls client config (key fits certificate).
    assert!(
        rapport_agent::settings::sync(c)
            .unwrap()
            .unwrap()
            .tls
            .is_some()
    );

    // The truck line's config is a desk config: no [sync], so nothing else is needed.
    let truck = rapport_agent::config::load(&repo("deploy/examples/agent-truck.toml")).unwrap();
    assert_eq!(
        truck.config.j1939.as_ref().unwrap().signal_sources,
        Some(vec![0x00])
    );
    assert!(truck.config.sync.is_none());

    let cloud = rapport_cloud::config::load(&e.join("cloud.toml")).unwrap();
    assert!(!cloud.broker.embedded);
    assert!(cloud.api.listen.ip().is_loopback());
    let tls = cloud.broker.tls.as_ref().unwrap();
    rapport_cloud::mqtt::tls_config(&cloud, tls).unwrap();

    // The units' data directories are the configs' stores; their config paths are the
    // guide's /etc/rapport files.
    let agent_unit = read(&repo("deploy/systemd/rapport-agent.service"));
    let cloud_unit = read(&repo("deploy/systemd/rapport-cloud.service"));
    assert_eq!(
        Path::new("/var/lib").join(unit_value(&agent_unit, "StateDirectory")),
        c.store.path
    );
    assert_eq!(truck.config.store.path, c.store.path);
    assert_eq!(
        Path::new("/var/lib").join(unit_value(&cloud_unit, "StateDirectory")),
        cloud.store.path
    );
    assert_eq!(
        unit_value(&agent_unit, "ExecStart"),
        "/usr/bin/rapport-agent run --config /etc/rapport/agent.toml"
    );
    assert_eq!(
        unit_value(&cloud_unit, "ExecStart"),
        "/usr/bin/rapport-cloud run --config /etc/rapport/cloud.toml"
    );
    // The agent's socket families include SocketCAN and the HMI's and broker's TCP.
    let families = unit_value(&agent_unit, "RestrictAddressFamilies");
    for f in ["AF_CAN", "AF_INET", "AF_INET6"] {
        assert!(families.split_whitespace().any(|x| x == f), "{families}");
    }
    // The interface the agent unit waits for is the one the example config reads.
    let bus = &c.can.buses[0].interface;
    assert_eq!(
        unit_value(&agent_unit, "BindsTo"),
        format!("sys-subsystem-net-devices-{bus}.device")
    );
}

/// The value of `key=` in a unit (the first, whole line after `=`); panics if absent.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .trim()
        .to_owned()
}

/// Where the guide's `sudo install` lines put files: every destination path (for a folder
/// destination, the folder joined with each source's file name). `install -d` lines make
/// folders and are skipped.
fn installed_by(guide: &str) -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for line in guide.lines() {
        let Some(rest) = line.trim().strip_prefix("sudo install ") else {
            continue;
        };
        let rest = rest.split("&&").next().unwrap_or_default();
        let mut words = rest.split_whitespace();
        let mut args = Vec::new();
        let mut directory = false;
        while let Some(w) = words.next() {
            match w {
                "-d" => directory = true,
                "-m" | "-g" | "-o" => {
                    words.next();
                }
                _ => args.push(w),
            }
        }
        let Some((dest, sources)) = args.split_last() else {
            continue;
        };
        if directory {
            continue;
        }
        if let Some(dir) = dest.strip_suffix('/') {
            for src in sources {
                let name = Path::new(src).file_name().unwrap();
                out.insert(Path::new(dir).join(name));
            }
        } else {
            out.insert(PathBuf::from(dest));
        }
    }
    out
}

#[test]
fn the_guide_installs_what_the_units_and_configs_name() {
    let guide = read(&repo("docs/fleet-engineer.md"));
    // Every repository file the guide names exists.
    let mut named = 0;
    for word in guide.split(|c: char| c.is_whitespace() || "`()[],;:'\"".contains(c)) {
        let word = word.trim_end_matches('.');
        let in_repo = ["deploy/", "config/", "agent/fixtures/", "docs/", ".cargo/"]
            .iter()
            .any(|p| word.starts_with(p));
        if in_repo && !word.contains('*') && !word.contains('<') {
            named += 1;
            assert!(
                repo(word).exists(),
                "the guide names {word}, which does not exist"
            );
        }
    }
    assert!(
        named >= 10,
        "only {named} repository paths found in the guide"
    );

    let installed = installed_by(&guide);
    let must = |path: &Path, why: &str| {
        assert!(
            installed.contains(path),
            "{why} names {}, which the guide does not install; it installs {installed:#?}",
            path.display()
        );
    };
    // The units' binaries and configs, and the units themselves.
    for unit in ["rapport-agent.service", "rapport-cloud.service"] {
        let text = read(&repo(&format!("deploy/systemd/{unit}")));
        must(
            &Path::new("/etc/systemd/system").join(unit),
            "the guide's layout",
        );
        let exec = unit_value(&text, "ExecStart");
        let mut words = exec.split_whitespace();
        must(Path::new(words.next().unwrap()), unit);
        let config = words.skip_while(|w| *w != "--config").nth(1).unwrap();
        must(Path::new(config), unit);
    }
    // Every file the example configs name, resolved against /etc/rapport.
    let etc = Path::new("/etc/rapport");
    let agent = rapport_agent::config::Config::from_toml(
        "agent.toml",
        &read(&repo("deploy/examples/agent.toml")),
    )
    .unwrap();
    must(&etc.join(&agent.dbc.as_ref().unwrap().file), "agent.toml");
    let tls = agent.sync.as_ref().unwrap().tls.as_ref().unwrap();
    for f in [Some(&tls.ca), tls.cert.as_ref(), tls.key.as_ref()] {
        must(&etc.join(f.unwrap()), "agent.toml [sync.tls]");
    }
    let cloud = rapport_cloud::config::Config::from_toml(
        "cloud.toml",
        &read(&repo("deploy/examples/cloud.toml")),
    )
    .unwrap();
    let tls = cloud.broker.tls.as_ref().unwrap();
    for f in [Some(&tls.ca), tls.cert.as_ref(), tls.key.as_ref()] {
        must(&etc.join(f.unwrap()), "cloud.toml [broker.tls]");
    }
    // Every file the Mosquitto config names, and the config itself.
    must(
        Path::new("/etc/mosquitto/conf.d/rapport.conf"),
        "the guide's layout",
    );
    for line in read(&repo("deploy/mosquitto/rapport.conf")).lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with("/etc/")) {
            must(Path::new(path), "deploy/mosquitto/rapport.conf");
        }
    }
    // The data directories and what the head unit must provide are spelled out.
    for text in [
        "/var/lib/rapport-agent",
        "/var/lib/rapport-cloud",
        "ip link set can0 up type can bitrate 500000",
    ] {
        assert!(guide.contains(text), "the guide does not mention {text}");
    }
}

#[test]
fn the_truck_example_replays_the_recorded_trace_without_a_warning() {
    let Some(trace) =
        rapport_harness::files::shared_data_file("traces/j1939-attack-datasets/normal.log")
    else {
        return;
    };
    let replay = |loaded: &rapport_agent::config::Loaded| {
        let file = std::io::BufReader::new(std::fs::File::open(&trace).unwrap());
        let mut out = Vec::new();
        let options = rapport_agent::replay::Options {
            summary: true,
            no_prompts: true,
        };
        let summary = rapport_agent::replay::run(loaded, file, &mut out, options).unwrap();
        (summary, String::from_utf8(out).unwrap())
    };
    let truck = rapport_agent::config::load(&repo("deploy/examples/agent-truck.toml")).unwrap();
    let (summary, out) = replay(&truck);
    assert_eq!(summary.trace.frames, 19_957, "SOURCES.md: 19,957 frames");
    assert_eq!(summary.warning_total(), 0, "{out}");
    // The guide's figures: 34 odometer readings near 438,978 km, one engine-hours reading,
    // 11 fault lines (the DM1s of SA 0x00 and 0x31).
    assert_eq!(summary.observations.get("odometer"), Some(&34));
    assert_eq!(summary.observations.get("engine_hours"), Some(&1));
    assert_eq!(summary.observations.get("dtc"), Some(&11));
    assert!(
        out.contains(r#""kind":"odometer","km":438978.0,"source":"j1939""#),
        "{out}"
    );

    // Without signal_sources, the second ECU's total is the guide's 30 plausibility warnings.
    let mut all = truck.clone();
    all.config.j1939.as_mut().unwrap().signal_sources = None;
    let (summary, out) = replay(&all);
    assert_eq!(summary.warnings.get("plausibility"), Some(&30), "{out}");
    assert!(out.contains("jumped from 438978"), "{out}");
    assert!(out.contains("to 537151"), "{out}");
}

#[test]
fn the_systemd_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipping: systemd-analyze not installed (the units' layout is checked above)");
        return;
    }
    if !Path::new("/usr/lib/systemd/system/sysinit.target").exists() {
        println!("skipping: no system units in /usr/lib/systemd/system to verify against");
        return;
    }
    let units = ["rapport-agent.service", "rapport-cloud.service"];
    // A root holding the system's own units, the two units, and stand-ins for the binaries
    // (verify checks that ExecStart names an executable).
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system", r.join("usr/lib/systemd/system"))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for bin in ["rapport-agent", "rapport-cloud"] {
        let path = r.join("usr/bin").join(bin);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let verify = |unit: &str, body: &str| -> Vec<String> {
        let path = r.join("etc/systemd/system").join(unit);
        std::fs::write(&path, body).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", r.display()))
            .arg(&path)
            .output()
            .unwrap();
        // Lines about the system's own units (symlinks outside the root) are not ours.
        text(&out)
            .lines()
            .filter(|l| l.contains(unit))
            .map(str::to_owned)
            .collect()
    };
    for unit in units {
        let text = read(&repo(&format!("deploy/systemd/{unit}")));
        let complaints = verify(unit, &text);
        assert!(complaints.is_empty(), "{unit}: {complaints:#?}");
        // The same check sees a broken copy: it is really reading the file.
        let broken = text.replace("TasksMax=", "TasksMax=lots-") + "\n[Service]\nFrob=1\n";
        let complaints = verify(unit, &broken);
        assert!(
            complaints.iter().any(|l| l.contains("'lots-"))
                && complaints.iter().any(|l| l.contains("'Frob'")),
            "{unit}: {complaints:#?}"
        );
    }
}

// --- Mosquitto on the shipped config ------------------------------------------------------

/// Mosquitto running `deploy/mosquitto/rapport.conf` with its files in `etc`, as the guide
/// installs them in /etc/mosquitto/rapport (the shipped `listener 8883` on a free port of
/// loopback). Killed on drop.
struct Broker {
    mosquitto: Mosquitto,
    etc: TempDir,
}

impl Broker {
    /// None (after the harness's skip line) where mosquitto is not installed.
    fn start(pki: &Path) -> Option<Self> {
        let etc = tempfile::tempdir().unwrap();
        let d = etc.path().to_path_buf();
        // The guide's install step: from make-certs.sh's folders to /etc/mosquitto/rapport.
        for (from, to) in [
            ("ca/ca.crt", "ca.crt"),
            ("ca/crl.pem", "crl.pem"),
            ("broker/broker.crt", "broker.crt"),
            ("broker/broker.key", "broker.key"),
        ] {
            std::fs::copy(pki.join(from), d.join(to)).unwrap();
        }
        std::fs::copy(repo("deploy/mosquitto/acl"), d.join("acl")).unwrap();
        let shipped = read(&repo("deploy/mosquitto/rapport.conf"));
        let installed = "/etc/mosquitto/rapport/";
        assert!(shipped.matches(installed).count() >= 5, "{shipped}");
        let listeners = shipped
            .lines()
            .filter(|l| l.trim() == "listener 8883")
            .count();
        assert_eq!(listeners, 1, "one `listener 8883` line expected");
        // The harness runs it as root (CI containers) so mosquitto can read this temporary
        // folder; the guide installs the files for user `mosquitto`.
        let options = Options::default().config_file(move |port| {
            shipped
                .lines()
                .map(|l| {
                    if l.trim() == "listener 8883" {
                        format!("listener {port} 127.0.0.1")
                    } else {
                        l.replace(installed, &format!("{}/", d.display()))
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        let mosquitto = Mosquitto::start(options).unwrap()?;
        Some(Self { mosquitto, etc })
    }

    fn port(&self) -> u16 {
        self.mosquitto.port()
    }

    fn log(&self) -> String {
        self.mosquitto.log()
    }

    /// Installs a new CRL and reloads (SIGHUP, what `systemctl reload mosquitto` sends).
    fn reload_crl(&self, pki: &Path) {
        std::fs::copy(pki.join("ca/crl.pem"), self.etc.path().join("crl.pem")).unwrap();
        let before = self.log().matches("Reloading config").count();
        self.mosquitto.reload().unwrap();
        wait_for(STEP, &format!("a reload:\n{}", self.log()), || {
            self.log().matches("Reloading config").count() > before
        });
    }
}

/// The TLS settings of a client holding `vin`'s certificate from the PKI.
fn car_tls(pki: &Path, vin: &str) -> rumqttc::TlsConfiguration {
    let v = vehicle_dir(pki, vin);
    tls(
        &read(&v.join("ca.crt")),
        Some((&read(&v.join("vehicle.crt")), &read(&v.join("vehicle.key")))),
    )
    .unwrap()
}

/// An uplink of one odometer record.
fn uplink(vin: &str, seq: u64, km: u64) -> Vec<u8> {
    Uplink {
        vin: vin.parse().unwrap(),
        records: vec![Record {
            seq,
            at: Timestamp::from_millis(1_750_000_000_000 + seq),
            body: odometer(km),
        }],
    }
    .encode()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_broker_config_ties_each_car_to_its_vin() {
    let pki = pki();
    let p = pki.path();
    let Some(broker) = Broker::start(p) else {
        return;
    };
    let url = format!("mqtts://127.0.0.1:{}", broker.port());
    let etc = stage_etc(p, VIN_A);
    let data = tempfile::tempdir().unwrap();

    // The cloud on deploy/examples/cloud.toml: its broker, store and API moved to test places.
    let mut config = rapport_cloud::config::load(&etc.path().join("cloud.toml")).unwrap();
    assert_eq!(config.broker.url.as_deref(), Some(EXAMPLE_BROKER));
    config.broker.url = Some(url.clone());
    config.store.path = data.path().join("cloud");
    config.api.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let cloud = rapport_cloud::Cloud::start(&config).await.unwrap();
    assert!(
        cloud.wait_subscribed(Duration::from_secs(20)).await,
        "the cloud did not subscribe:\n{}",
        broker.log()
    );

    // The agent on deploy/examples/agent.toml, driving the desk car: its first heartbeat
    // travels over mTLS as VIN A to the cloud.
    let mut loaded = rapport_agent::config::load(&etc.path().join("agent.toml")).unwrap();
    let sync = loaded.config.sync.as_mut().unwrap();
    assert_eq!(sync.broker.to_string(), EXAMPLE_BROKER);
    sync.broker = rapport_agent::config::BrokerUrl::parse(&url).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = rapport_agent::runtime::Options {
        data_dir: Some(data.path().join("agent")),
        source: rapport_agent::runtime::Source::Sim {
            script: None,
            speedup: 1.0,
        },
        hmi: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
    };
    let agent = tokio::spawn(rapport_agent::runtime::run(
        loaded,
        options,
        async move {
            let _ = stop_rx.await;
        },
        None,
    ));
    let vin_a: Vin = VIN_A.parse().unwrap();
    let vin_b: Vin = VIN_B.parse().unwrap();
    let store = cloud.store().clone();
    wait_until(
        Duration::from_secs(30),
        "the agent's records in the cloud",
        || store.vehicle(&vin_a).unwrap().is_some(),
    )
    .await;

    // Car B's certificate: a publish under A's topic (an envelope that claims A, so the
    // cloud would take it) is dropped by the broker; B's own uplink, sent after it on the
    // same connection, arrives.
    let b = connect(tls_options("b", broker.port(), car_tls(p, VIN_B)))
        .await
        .unwrap();
    let forged = uplink(VIN_A, 900_000, 999_999);
    b.client
        .publish(
            rapport_shared::topic::uplink(&vin_a),
            rumqttc::QoS::AtLeastOnce,
            false,
            forged,
        )
        .await
        .unwrap();
    b.client
        .publish(
            rapport_shared::topic::uplink(&vin_b),
            rumqttc::QoS::AtLeastOnce,
            false,
            uplink(VIN_B, 1, 42),
        )
        .await
        .unwrap();
    wait_until(STEP, "B's own uplink in the cloud", || {
        store.vehicle(&vin_b).unwrap().is_some()
    })
    .await;
    let a_state = store.vehicle(&vin_a).unwrap().unwrap();
    assert!(
        !a_state.applied.contains(900_000),
        "the forged record reached the cloud"
    );
    let forged_km = Odometer::from_km(999_999).meters();
    assert!(a_state.odometer.is_none_or(|r| r.value != forged_km));
    // Nothing was refused by the cloud itself: the broker never delivered the forgery.
    for reason in rapport_cloud::ingest::RejectReason::ALL {
        assert_eq!(cloud.metrics().rejected(reason), 0, "{reason:?}");
    }

    // The broker ignores the client id a car claims: B's certificate asking for A's session
    // gets B's own id, so it displaces B's earlier connection and never A's agent.
    let count = |log: &str, vin: &str| log.matches(&format!(" as {vin} (")).count();
    let before = broker.log();
    let claims_a = connect(tls_options(VIN_A, broker.port(), car_tls(p, VIN_B)))
        .await
        .unwrap();
    let after = broker.log();
    assert_eq!(count(&after, VIN_B), count(&before, VIN_B) + 1, "{after}");
    assert_eq!(count(&after, VIN_A), count(&before, VIN_A), "{after}");
    let takeover = format!("Client {VIN_B} already connected, closing old connection");
    assert!(after.contains(&takeover), "{after}");
    assert!(
        !after.contains(&format!("Client {VIN_A} already connected")),
        "{after}"
    );
    drop(claims_a);
    drop(b);

    // No certificate: refused during the handshake.
    let ca = read(&p.join("ca/ca.crt"));
    let err = connect(tls_options("anon", broker.port(), tls(&ca, None).unwrap()))
        .await
        .expect_err("connected without a client certificate");
    assert!(err.contains("CertificateRequired"), "{err}");

    // B revoked: after the CRL is installed and Mosquitto reloaded, B cannot connect.
    let out = make_certs(&["--revoke", VIN_B, p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    broker.reload_crl(p);
    let refused = connect(tls_options("b-again", broker.port(), car_tls(p, VIN_B))).await;
    assert!(refused.is_err(), "a revoked certificate connected");
    // A still can (its own session is untouched by all of the above).
    assert!(store.vehicle(&vin_a).unwrap().is_some());

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .expect("the agent did not stop")
        .unwrap()
        .unwrap();
    cloud.shutdown().await.unwrap();
}
