//! The emulated head unit (`tests/headunit/`): Debian 12's arm64 kernel under
//! qemu-system-aarch64 (machine virt, Cortex-A53, 512 MiB, TCG, no network device), the static
//! release agent on the kernel's own SocketCAN, and can-utils on the other side of the bus. One
//! boot runs every scenario of `tests/headunit/guest/scenarios.sh`; this test builds the image,
//! boots it, and asserts on what comes back in the shared folder (kept in
//! `target/headunit/run/` for a look afterwards):
//!
//! - the truck trace replayed by canplayer under a cangen flood gives the store and the HMI
//!   exactly what `replay` gives on the host (odometer, the DM1 faults of SA 0x00 and 0x31),
//!   the kernel's filters pass the agent exactly the trace's frames it needs (the flood none)
//!   and the agent read every one of them;
//! - CAN FD frames (8 and 64 bytes) on an FD interface are read and decoded;
//! - the interface set down and up, deleted and created again: the agent says so, waits and
//!   reads again without a restart; an interface missing at start is a clear error;
//! - bad lines, frames too short for their parameter groups, error frames: warnings, no crash;
//! - SIGKILLed while writing, three times: the store opens, no confirmed service is lost;
//! - the ECU simulator (`rapport-ecu-sim`) plays the passenger car on another interface: the
//!   agent reads the odometer and the fault codes it was told to serve over OBD-II and UDS,
//!   through the kernel, ISO-TP flow control and all, and its screen and store show them;
//! - a saturated bus with the HMI on and the sync pointed at nothing: the peak RSS (at most
//!   16 MiB, the head unit's goal) and where it is (binary, heap, stacks), printed;
//! - the binary is the head unit's build: at most 4 MiB stripped.
//!
//! Skips (prints "skipping: …" and passes) without qemu-system-aarch64, the host tools the image
//! build needs, the head unit's static agent (`cargo build --release -p rapport-agent
//! --no-default-features --target aarch64-unknown-linux-musl`), the ECU simulator (`cargo build
//! --release -p rapport-agent --bin rapport-ecu-sim --target aarch64-unknown-linux-musl`) or
//! the truck trace; with `RAPPORT_REQUIRE_HEADUNIT=1` (CI) a skip fails.
//! `RAPPORT_HEADUNIT_SOAK` sets the footprint run's guest seconds (default 60).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rapport_shared::{Record, RecordBody};
use serde_json::Value;

const TRACE: &str = "traces/j1939-attack-datasets/normal.log";
const AGENT_TARGET: &str = "aarch64-unknown-linux-musl";

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Prints why, and passes — unless `RAPPORT_REQUIRE_HEADUNIT` is set.
fn skip(why: &str) {
    assert!(
        std::env::var_os("RAPPORT_REQUIRE_HEADUNIT").is_none(),
        "RAPPORT_REQUIRE_HEADUNIT is set, but: {why}"
    );
    println!("skipping: {why}");
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// The static agent: `RAPPORT_HEADUNIT_AGENT`, or the musl release build in the target folder.
fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RAPPORT_HEADUNIT_AGENT") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo("target"), PathBuf::from);
    target
        .join(AGENT_TARGET)
        .join("release")
        .join("rapport-agent")
}

/// The ECU simulator: `RAPPORT_HEADUNIT_ECU_SIM`, or beside the default agent.
fn ecu_sim_binary(agent: &Path) -> PathBuf {
    std::env::var_os("RAPPORT_HEADUNIT_ECU_SIM")
        .map_or_else(|| agent.with_file_name("rapport-ecu-sim"), PathBuf::from)
}

/// What is missing to build and boot the head unit, if anything.
fn missing(agent: &Path, headunit_dir: &Path) -> Option<String> {
    for tool in [
        "qemu-system-aarch64",
        "cpio",
        "depmod",
        "dpkg-deb",
        "apt-get",
        "awk",
    ] {
        if !on_path(tool) && !Path::new("/sbin").join(tool).is_file() {
            return Some(format!(
                "{tool} not found (apt-get install qemu-system-arm cpio kmod)"
            ));
        }
    }
    if !Path::new("/usr/aarch64-linux-gnu/lib/libc.so.6").is_file() {
        return Some("no ARM cross glibc (apt-get install libc6-arm64-cross)".into());
    }
    // The arm64 packages: cached, or downloadable (the arm64 architecture is added, or the
    // script may add it as root).
    let cached = std::fs::read_dir(headunit_dir.join("debs"))
        .map(|d| d.count() >= 3)
        .unwrap_or(false);
    let arm64 = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == "arm64")
        });
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !cached && !arm64 && !root {
        return Some(
            "no arm64 packages: run `dpkg --add-architecture arm64 && apt-get update` as root"
                .into(),
        );
    }
    if !agent.is_file() {
        return Some(format!(
            "no static agent at {} (cargo build --release -p rapport-agent \
             --no-default-features --target {AGENT_TARGET})",
            agent.display()
        ));
    }
    let sim = ecu_sim_binary(agent);
    if !sim.is_file() {
        return Some(format!(
            "no ECU simulator at {} (cargo build --release -p rapport-agent --bin \
             rapport-ecu-sim --target {AGENT_TARGET})",
            sim.display()
        ));
    }
    None
}

/// Whether an ELF file asks for a program interpreter (a dynamic loader): `PT_INTERP`.
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let phoff = usize::try_from(u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap())).unwrap();
    let (size, count) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

fn run(what: &str, cmd: &mut Command) -> f64 {
    let start = Instant::now();
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what}: {status}");
    start.elapsed().as_secs_f64()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `results.txt`: one NAME=VALUE per line.
fn results(dir: &Path) -> BTreeMap<String, String> {
    read(&dir.join("results.txt"))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The `key=value` fields of the agent's last log line containing `message` (colours off).
fn log_fields(log: &str, message: &str) -> BTreeMap<String, String> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(message))
        .unwrap_or_else(|| panic!("no {message:?} in the log:\n{log}"));
    let plain: String = strip_ansi(line);
    plain
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The agent's kernel filters on `interface` from a `/proc/net/can/rcvlist_fil` copy:
/// `(id, mask, matches)` with the EFF flag as the kernel shows it.
fn kernel_filters(text: &str, interface: &str) -> Vec<(u32, u32, u64)> {
    text.lines()
        .map(str::split_whitespace)
        .filter_map(|mut w| {
            (w.next()? == interface).then_some(())?;
            let id = u32::from_str_radix(w.next()?, 16).ok()?;
            let mask = u32::from_str_radix(w.next()?, 16).ok()?;
            let matches = w.nth(2)?.parse().ok()?;
            Some((id, mask, matches))
        })
        .collect()
}

/// What the host's `replay` makes of the trace: the last odometer, and per fault code its
/// reporting ECU, how often it appeared and whether it is active at the end.
struct Expected {
    odometer_km: f64,
    first_odometer_km: f64,
    faults: BTreeMap<String, (String, u64, bool)>,
}

fn expected(loaded: &rapport_agent::config::Loaded, trace: &Path) -> Expected {
    let file = std::io::BufReader::new(std::fs::File::open(trace).unwrap());
    let mut out = Vec::new();
    let options = rapport_agent::replay::Options {
        summary: false,
        no_prompts: true,
    };
    rapport_agent::replay::run(loaded, file, &mut out, options).unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let odometers: Vec<f64> = lines
        .iter()
        .filter(|v| v["kind"] == "odometer")
        .map(|v| v["km"].as_f64().unwrap())
        .collect();
    let mut faults: BTreeMap<String, (String, u64, bool)> = BTreeMap::new();
    for v in lines.iter().filter(|v| v["kind"] == "dtc") {
        let f = faults
            .entry(v["code"].as_str().unwrap().to_owned())
            .or_insert_with(|| (v["ecu"].as_str().unwrap().to_owned(), 0, false));
        let active = v["state"] == "active";
        f.1 += u64::from(active);
        f.2 = active;
    }
    Expected {
        odometer_km: *odometers.last().unwrap(),
        first_odometer_km: odometers[0],
        faults,
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn num(r: &BTreeMap<String, String>, key: &str) -> f64 {
    r.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("results.txt: no number {key}"))
}

#[test]
fn the_release_agent_on_an_emulated_arm_head_unit() {
    let Some(trace) = rapport_harness::files::shared_data_file(TRACE) else {
        // shared_data_file said "skipping" already.
        assert!(
            std::env::var_os("RAPPORT_REQUIRE_HEADUNIT").is_none(),
            "RAPPORT_REQUIRE_HEADUNIT is set, but ../shared/data/{TRACE} is missing"
        );
        return;
    };
    let headunit_dir =
        std::env::var_os("HEADUNIT_DIR").map_or_else(|| repo("target/headunit"), PathBuf::from);
    let agent = agent_binary();
    if let Some(why) = missing(&agent, &headunit_dir) {
        skip(&why);
        return;
    }
    let soak: u64 = std::env::var("RAPPORT_HEADUNIT_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    // The binary needs nothing from the guest's libc: no program interpreter at all.
    let elf = std::fs::read(&agent).unwrap();
    assert!(!has_interpreter(&elf), "{} is not static", agent.display());
    // The head unit's build leaves the desk car out (`--no-default-features`): 4 MiB at most.
    assert!(
        elf.len() <= 4 << 20,
        "{}: {} B, more than 4 MiB: is it the head unit's build (--no-default-features)?",
        agent.display(),
        elf.len()
    );
    let ecu_sim = ecu_sim_binary(&agent);
    let sim_elf = std::fs::read(&ecu_sim).unwrap();
    assert!(
        !has_interpreter(&sim_elf),
        "{} is not static",
        ecu_sim.display()
    );

    let build_s = run(
        "build-image.sh",
        Command::new("bash")
            .arg(repo("tests/headunit/build-image.sh"))
            .arg(&agent)
            .arg(&trace)
            .env("HEADUNIT_DIR", &headunit_dir)
            .env("ECU_SIM", &ecu_sim),
    );
    let out = headunit_dir.join("run");
    let _ = std::fs::remove_dir_all(&out);
    let boot_s = run(
        "run-guest.sh",
        Command::new("bash")
            .arg(repo("tests/headunit/run-guest.sh"))
            .arg(&out)
            .arg(format!("soak={soak}"))
            .env("HEADUNIT_DIR", &headunit_dir)
            .stdout(std::process::Stdio::null()),
    );
    let r = results(&out);
    let get = |k: &str| r.get(k).map_or("", String::as_str);
    let console = read(&out.join("console.log"));
    assert!(
        !get("done").is_empty(),
        "the scenarios did not finish:\n{console}"
    );

    // --- the guest and the binary -----------------------------------------------------------------
    assert_eq!(get("guest.musl_loader"), "0", "the guest has no musl");
    assert_eq!(
        get("guest.agent_version"),
        format!("rapport-agent {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(get("vcan0.mtu"), "16");
    assert_eq!(get("vcan1.mtu"), "72");

    // --- replay: the guest agent's store and screen say what `replay` says on the host ----------
    let loaded =
        rapport_agent::config::load(&headunit_dir.join("rootfs/etc/rapport/agent.toml")).unwrap();
    let want = expected(&loaded, &trace);
    assert_eq!(want.first_odometer_km, 438_978.0);
    let replay = out.join("replay");
    assert_eq!(get("replay.canplayer_rc"), "0");
    assert_eq!(get("replay.agent_stop_rc"), "0");
    assert_eq!(get("replay.store_rc"), "0");
    let vehicle: Value = serde_json::from_str(&read(&replay.join("vehicle.json"))).unwrap();
    assert_eq!(vehicle["odometer_km"].as_f64(), Some(want.odometer_km));
    let active: BTreeSet<&str> = vehicle["active_dtcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    let want_active: BTreeSet<&str> = want
        .faults
        .iter()
        .filter(|(_, f)| f.2)
        .map(|(c, _)| c.as_str())
        .collect();
    assert_eq!(active, want_active);
    let store = json_lines(&read(&replay.join("store.jsonl")));
    // The store notes the odometer every 0.1 km or minute (README), the screen shows it live.
    let stored_km = store[0]["odometer_km"].as_f64().unwrap();
    assert!(
        (want.odometer_km - 0.1..=want.odometer_km).contains(&stored_km),
        "stored {stored_km} km, replay ends at {} km",
        want.odometer_km
    );
    let mut stored = BTreeMap::new();
    let mut appeared = BTreeMap::new();
    let mut first_odometer = None;
    for v in &store {
        if v["kind"] == "dtc" {
            stored.insert(
                v["code"].as_str().unwrap().to_owned(),
                (
                    v["times_seen"].as_u64().unwrap(),
                    v["active"].as_bool().unwrap(),
                ),
            );
        }
        if v["kind"] == "outbox" {
            match Record::decode(&hex_bytes(v["record"].as_str().unwrap()))
                .unwrap()
                .body
            {
                RecordBody::DtcAppeared(d) => {
                    appeared.insert(d.dtc.code().to_string(), format!("0x{:02X}", d.ecu));
                }
                RecordBody::Odometer(o) if first_odometer.is_none() => {
                    first_odometer = Some(o.odometer.km());
                }
                _ => {}
            }
        }
    }
    assert_eq!(first_odometer, Some(438_978.0));
    for (code, (ecu, times, active)) in &want.faults {
        assert_eq!(
            stored.get(code),
            Some(&(*times, *active)),
            "{code} in the store"
        );
        assert_eq!(appeared.get(code), Some(ecu), "{code}'s ECU in the outbox");
    }
    for (code, ecu) in [
        ("SPN191/FMI9", "0x00"),
        ("SPN84/FMI9", "0x00"),
        ("SPN5357/FMI31", "0x00"),
        ("SPN96/FMI3", "0x31"),
        ("SPN829/FMI3", "0x31"),
    ] {
        assert_eq!(appeared.get(code).map(String::as_str), Some(ecu), "{code}");
    }

    // --- kernel filters: the agent got exactly the trace's frames it needs, the flood none ------
    let trace_ids: Vec<(u32, bool)> = read(&trace)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|id| (u32::from_str_radix(id, 16).unwrap(), id.len() == 8))
        .collect();
    let filters = rapport_agent::settings::kernel_filters(&loaded, 0);
    let kernel = kernel_filters(&read(&replay.join("rcvlist_fil")), "vcan0");
    assert_eq!(
        kernel.len(),
        filters.len(),
        "one kernel filter per config filter"
    );
    const EFF: u32 = 0x8000_0000;
    for f in &filters {
        let want_matches = trace_ids
            .iter()
            .filter(|(id, ext)| f.matches(*id, *ext))
            .count() as u64;
        let (_, _, got) = kernel
            .iter()
            .find(|(id, mask, _)| *id == f.id | EFF && *mask == f.mask | EFF)
            .unwrap_or_else(|| panic!("no kernel filter for {f:?}"));
        assert_eq!(*got, want_matches, "frames through {f:?}");
    }
    let matched: u64 = kernel.iter().map(|k| k.2).sum();
    let agent_log = read(&replay.join("agent.log"));
    let stopped = log_fields(&agent_log, "bus loop stopped");
    assert_eq!(stopped["frames"], matched.to_string(), "read = matched");
    assert_eq!(stopped["lost"], "0");
    assert!(read(&replay.join("rcvlist_all")).contains("(vcan0: no entry)"));
    let sent: u64 = stopped["sent"].parse().unwrap();
    let flood = num(&r, "replay.vcan0_tx") as u64 - trace_ids.len() as u64 - sent;
    let replay_s = num(&r, "replay.canplayer_end") - num(&r, "replay.canplayer_start");
    assert!(flood > trace_ids.len() as u64, "the flood: {flood} frames");

    // --- CAN FD -------------------------------------------------------------------------------------
    assert_eq!(get("fd.odometer_vd8"), "450000.0");
    assert_eq!(get("fd.odometer_vd64"), "450000.125");
    assert_eq!(get("fd.odometer_classic"), "450000.25");
    assert_eq!(get("fd.agent_stop_rc"), "0");
    let fd_stopped = log_fields(&read(&out.join("fd/agent.log")), "bus loop stopped");
    assert_eq!(
        fd_stopped["frames"], "3",
        "the 64-byte frame of id 0x123 is filtered out"
    );

    // --- the ECU simulator: the passenger car over OBD-II and UDS, through the kernel ----------------
    let ecu = ecu_checks(&r, &out.join("ecu"), &headunit_dir);

    // --- the interface down, up, deleted, created again; missing at start -------------------------
    for k in [
        "ifdown.alive_while_down",
        "ifdown.alive_while_deleted",
        "ifdown.agent_alive",
    ] {
        assert_eq!(get(k), "yes", "{k}");
    }
    for k in ["ifdown.resumed_after_up", "ifdown.resumed_after_recreate"] {
        assert!(get(k).parse::<f64>().is_ok(), "{k}: {}", get(k));
    }
    let ifdown_log = strip_ansi(&read(&out.join("ifdown/agent.log")));
    assert_eq!(
        ifdown_log.matches("CAN interface lost").count(),
        2,
        "{ifdown_log}"
    );
    assert_eq!(
        ifdown_log.matches("CAN interface back").count(),
        2,
        "{ifdown_log}"
    );
    assert_eq!(get("ifdown.missing_rc"), "1");
    let missing_log = read(&out.join("ifdown/missing.log"));
    assert!(
        missing_log.contains("opening CAN interface vcan7: No such device"),
        "{missing_log}"
    );

    // --- bad input: warnings, never a crash ---------------------------------------------------------
    assert_eq!(get("badinput.agent_alive"), "yes");
    assert_eq!(get("badinput.error_frames_seen_by_candump"), "2");
    for needle in [
        "PGN 65248: 2 data bytes, need at least 8",
        "TP.CM has 2 bytes",
        "TP.DT sequence 1 with no session open",
        "error=bus off",
        "error=controller problem",
    ] {
        assert!(ifdown_log.contains(needle), "{needle:?} not in the log");
    }

    // --- SIGKILL mid-write: the store opens, nothing confirmed is lost ------------------------------
    for round in 1..=3 {
        assert_eq!(get(&format!("sigkill.round{round}.exit")), "137");
        assert_eq!(get(&format!("sigkill.round{round}.store_rc")), "0");
    }
    assert!(num(&r, "sigkill.services_stored") >= num(&r, "sigkill.confirmed"));
    assert_eq!(get("sigkill.restart_hmi"), "yes");
    let after_kills = json_lines(&read(&out.join("sigkill/store3.jsonl")));
    for code in want.faults.keys() {
        assert!(
            after_kills
                .iter()
                .any(|v| v["kind"] == "dtc" && v["code"] == code.as_str()),
            "{code} survived the kills"
        );
    }

    // --- the soak: a saturated bus, HMI on, sync to nowhere --------------------------------------------
    assert_eq!(get("soak.agent_alive"), "yes");
    assert_eq!(get("soak.agent_stop_rc"), "0");
    assert_eq!(get("soak.store_rc"), "0");
    let soak_stopped = log_fields(&read(&out.join("sigkill/agent.log")), "bus loop stopped");
    let soak_matched: u64 = kernel_filters(&read(&out.join("soak/rcvlist_fil")), "vcan0")
        .iter()
        .map(|k| k.2)
        .sum();
    assert_eq!(soak_stopped["frames"], soak_matched.to_string());
    let hwm_kb = num(&r, "soak.vmhwm_kb");
    assert!(
        hwm_kb <= 16.0 * 1024.0,
        "VmHWM {hwm_kb} kB, over the head unit's 16 MiB"
    );
    let mem = |at: &str| {
        format!(
            "binary {} + heap {} + thread stacks {} + main stack {} kB, {} threads",
            get(&format!("{at}.mem_file_kb")),
            get(&format!("{at}.mem_heap_kb")),
            get(&format!("{at}.mem_stacks_kb")),
            get(&format!("{at}.mem_stack_kb")),
            get(&format!("{at}.threads")),
        )
    };

    let span = |s: &str| num(&r, &format!("{s}.end")) - num(&r, &format!("{s}.begin"));
    println!(
        "head unit: image built in {build_s:.1} s, booted and ran in {boot_s:.1} s (host wall)\n\
         guest: init to scenarios {:.2} s after boot; agent exec {:.2} s, HMI {:.2} s, socket \
         open {:.2} s, first observation {:.2} s after boot\n\
         replay: {replay_s:.1} s, {} trace frames + {flood} flood frames ({:.0} frames/s), \
         kernel passed {matched} to the agent, agent read {}\n\
         scenarios (guest s): replay {:.1}, fd {:.1}, ecu {:.1}, ifdown {:.1}, badinput {:.1}, \
         sigkill {:.1}, soak {:.1}\n\
         ecu: simulator ready {:.2} s, everything on the screen {:.2} s after boot, {} frames on \
         vcan2; agent VmHWM {} kB, simulator {} kB ({} B)\n\
         footprint: VmHWM {} kB after HMI ready, {} kB after the replay, {hwm_kb} kB after a \
         {} s soak ({} frames on vcan0); binary {} B\n\
         memory after the soak: {}",
        num(&r, "boot.scenarios_start"),
        num(&r, "replay.agent_exec"),
        num(&r, "replay.hmi_ready"),
        num(&r, "replay.socket_open"),
        num(&r, "replay.first_observation"),
        trace_ids.len(),
        (trace_ids.len() as f64 + flood as f64) / replay_s,
        stopped["frames"],
        span("replay"),
        span("fd"),
        span("ecu"),
        span("ifdown"),
        span("badinput"),
        span("sigkill"),
        span("soak"),
        num(&r, "ecu.sim_ready"),
        num(&r, "ecu.all_seen"),
        ecu.frames,
        get("ecu.vmhwm_kb"),
        get("ecu.sim_vmhwm_kb"),
        sim_elf.len(),
        get("replay.vmhwm_ready_kb"),
        get("replay.vmhwm_kb"),
        get("soak.duration_s"),
        get("soak.vcan0_tx"),
        elf.len(),
        mem("soak"),
    );
}

/// What the ECU scenario's checks found, for the summary.
struct EcuRun {
    frames: usize,
}

/// The `ecu` scenario: the agent shows what the simulator serves (tests/headunit/guest/
/// passenger-drive.toml), read over OBD-II and UDS — which the bus's own record says, decoded
/// on the host by `replay` with the same config — with ISO-TP flow control both ways.
fn ecu_checks(r: &BTreeMap<String, String>, dir: &Path, headunit_dir: &Path) -> EcuRun {
    let get = |k: &str| r.get(k).map_or("", String::as_str);
    const ODOMETER: f64 = 23_456.7;
    const CODES: [&str; 5] = ["P0133", "P0133-1C", "P0171", "P0420", "P0562-13"];
    assert_eq!(get("ecu.agent_alive"), "yes");
    assert_eq!(get("ecu.sim_alive"), "yes");
    assert_eq!(get("ecu.agent_stop_rc"), "0");
    assert_eq!(get("ecu.sim_stop_rc"), "0");
    assert_eq!(get("ecu.store_rc"), "0");
    // The screen.
    assert_eq!(get("ecu.odometer"), "23456.7");
    assert_eq!(get("ecu.active_codes"), CODES.join(","));
    let vehicle: Value = serde_json::from_str(&read(&dir.join("vehicle.json"))).unwrap();
    assert_eq!(vehicle["odometer_km"].as_f64(), Some(ODOMETER));
    assert_eq!(vehicle["mil"], true, "P0133 lights the MIL");
    // The store.
    let store = json_lines(&read(&dir.join("store.jsonl")));
    assert_eq!(store[0]["odometer_km"].as_f64(), Some(ODOMETER));
    let stored: BTreeSet<&str> = store
        .iter()
        .filter(|v| v["kind"] == "dtc" && v["active"] == true)
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(stored, CODES.into_iter().collect());
    // The bus: what went over vcan2, decoded on the host with the same config.
    let log = read(&dir.join("vcan2.log"));
    let frames: Vec<(u32, Vec<u8>)> = log
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.split_once('#'))
        .map(|(id, data)| (u32::from_str_radix(id, 16).unwrap(), hex_bytes(data)))
        .collect();
    // A first frame from the ECU, the agent's flow control, a consecutive frame: both ways.
    for (ecu, tester, what) in [(0x7E8, 0x7E0, "OBD-II"), (0x77E, 0x714, "UDS")] {
        let first = frames
            .iter()
            .position(|(id, d)| *id == ecu && d[0] >> 4 == 1)
            .unwrap_or_else(|| panic!("no {what} first frame from 0x{ecu:X}"));
        let fc = frames[first..]
            .iter()
            .position(|(id, d)| *id == tester && d[0] >> 4 == 3)
            .unwrap_or_else(|| panic!("no flow control to 0x{ecu:X} ({what})"))
            + first;
        assert!(
            frames[fc..]
                .iter()
                .any(|(id, d)| *id == ecu && d[0] >> 4 == 2),
            "no {what} consecutive frame after the flow control"
        );
    }
    let loaded =
        rapport_agent::config::load(&headunit_dir.join("rootfs/etc/rapport/passenger.toml"))
            .unwrap();
    let mut out = Vec::new();
    rapport_agent::replay::run(
        &loaded,
        std::io::BufReader::new(log.as_bytes()),
        &mut out,
        rapport_agent::replay::Options {
            summary: false,
            no_prompts: true,
        },
    )
    .unwrap();
    let seen = json_lines(&String::from_utf8(out).unwrap());
    // The odometer answers, reassembled from the bus (replay reports the odometer only when it
    // changes, and the cluster's broadcast says it first): PID 0xA6 from the engine ECU and
    // DID 0xF1A0 from the cluster's UDS ECU both carry 234,567 × 0.1 km.
    let answers = |ecu: u32| -> Vec<Vec<u8>> {
        let mut rx = rapport_agent::proto::isotp::Receiver::new_passive(
            ecu,
            rapport_agent::proto::isotp::Config::default(),
        );
        frames
            .iter()
            .filter(|(id, _)| *id == ecu)
            .filter_map(|(_, d)| match rx.on_frame(d, std::time::Duration::ZERO) {
                Ok(rapport_agent::proto::isotp::RxEvent::Complete(p)) => Some(p.to_vec()),
                _ => None,
            })
            .collect()
    };
    let km = 234_567u32.to_be_bytes();
    let pid_a6 = [[0xA6].as_slice(), &km].concat();
    assert!(
        answers(0x7E8)
            .iter()
            .any(|p| p[0] == 0x41 && p.windows(5).any(|w| w == pid_a6)),
        "no OBD-II answer with PID 0xA6 = 23456.7 km from 0x7E8"
    );
    assert!(
        answers(0x77E).contains(&[[0x62, 0xF1, 0xA0].as_slice(), &km[1..]].concat()),
        "no UDS answer with DID 0xF1A0 = 23456.7 km from 0x77E"
    );
    for (code, source, ecu) in [
        ("P0133", "obd", "0x7E8"),
        ("P0171", "obd", "0x7E8"),
        ("P0420", "obd", "0x7E8"),
        ("P0133-1C", "uds", "0x77E"),
        ("P0562-13", "uds", "0x77E"),
    ] {
        assert!(
            seen.iter().any(|v| v["kind"] == "dtc"
                && v["code"] == code
                && v["source"] == source
                && v["ecu"] == ecu
                && v["state"] == "active"),
            "{code} from {ecu} over {source} on the bus"
        );
    }
    EcuRun {
        frames: frames.len(),
    }
}
