//! A full or broken flash: the real agent binary drives the simulated car with its data
//! directory on a 4 MiB tmpfs of the test's own, syncing to an embedded rumqttd. While it
//! drives, the test fills the file system with a ballast file (every later write by the agent
//! fails with `ENOSPC`), checks what must hold while the disk is full, removes the ballast and
//! checks that everything resumes. A second test starts the agent on a read-only data
//! directory. Both skip (with a line saying so) where mounting is refused, and fail instead
//! with `RAPPORT_REQUIRE_MOUNT=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rapport_harness::agent;
use rapport_harness::mqtt::Subscriber;
use rapport_harness::process::{Process, bin_command};
use rapport_harness::tmpfs::Tmpfs;
use rapport_harness::wait::{free_port, loopback, wait_for};
use rapport_shared::v1::topic;
use rapport_shared::v1::uplink::{RecordBody, Uplink};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_rapport-agent");
const WAIT: Duration = Duration::from_secs(90);

/// A tiny HTTP/1.1 client for loopback.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn get(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, "");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn prompt_ids(addr: SocketAddr) -> BTreeSet<String> {
    get(addr, "/v1/prompts")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// What the "cloud" (a subscriber on the broker) received, by seq.
#[derive(Default)]
struct Seen {
    records: BTreeMap<u64, RecordBody>,
    duplicates: u64,
}

fn kind(body: &RecordBody) -> &'static str {
    match body {
        RecordBody::Heartbeat(_) => "heartbeat",
        RecordBody::Odometer(_) => "odometer",
        RecordBody::EngineHours(_) => "engine_hours",
        RecordBody::DtcSnapshot(_) => "snapshot",
        _ => "event",
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flash_keeps_the_car_going_and_everything_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount("flash_full::a_full_flash", 4096).unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    rapport_harness::rumqttd::start(port).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = Arc::clone(&seen);
    let _cloud = Subscriber::start(
        loopback(port),
        "cloud",
        topic::UPLINK_FILTER,
        move |_, p| {
            if let Ok(up) = Uplink::decode(p) {
                let mut seen = sink.lock().unwrap();
                for r in up.records {
                    if seen.records.insert(r.seq, r.body).is_some() {
                        seen.duplicates += 1;
                    }
                }
            }
        },
    )
    .await
    .unwrap();

    let mut c = agent::syncing_passenger(dir.path(), loopback(port)).unwrap();
    c.store.path = fs.path().join("data");
    c.prompts.daily_caps.insert("fault".into(), 20);
    // A record every 100 m: at 100 km/h and 30 times real time, about 8 a second.
    c.outbox.odometer_every_m = 100;
    c.outbox.max_records = 100;
    // Critical, so it reaches the screen while the car moves (as P0300 does in the example).
    c.dtc.overrides.push(
        serde_json::from_value(serde_json::json!({"code": "P0171", "severity": "critical"}))
            .unwrap(),
    );
    let config = agent::write(&c, dir.path()).unwrap();
    // P0300 at once; P0171 about 25 s (real) later, while the disk is full.
    let script = r#"
odometer_m = 9990000
[[steps]]
power = "running"
[[steps]]
park = { secs = 15 }
[[steps]]
set_fault = { obd = { code = 0x0300, mil = true } }
[[steps]]
drive = { kmh = 100, secs = 750 }
[[steps]]
set_fault = { obd = { code = 0x0171, mil = true } }
[[steps]]
drive = { kmh = 100, secs = 20000 }
"#;
    let script_path = dir.path().join("script.toml");
    std::fs::write(&script_path, script).unwrap();
    let log = dir.path().join("agent.log");
    let mut command = bin_command(AGENT);
    command
        .args(["run", "--sim", "--speedup", "30", "--config"])
        .arg(&config)
        .arg("--script")
        .arg(&script_path)
        .env("RUST_LOG", "info");
    let mut process = Process::spawn("rapport-agent", command, Some(&log)).unwrap();
    let hmi: SocketAddr = process
        .wait_line(WAIT, |l| {
            l.strip_prefix(agent::HMI_LINE)?.trim().parse().ok()
        })
        .unwrap();

    // Driving, the first fault on screen, its records synced.
    let fault_on_screen = |code: &str| {
        prompt_ids(hmi)
            .into_iter()
            .find(|id| id.starts_with(&format!("fault:{code}:")))
    };
    wait_for(WAIT, "P0300 on screen", || {
        fault_on_screen("P0300").is_some()
    });
    let p0300 = fault_on_screen("P0300").unwrap();
    let health = get(hmi, "/healthz");
    assert_eq!(health["store"], "ok", "{health}");
    assert_eq!(health["store_failed_writes"], 0, "{health}");

    // The flash fills.
    let ballast = fs.fill().unwrap();
    assert!(
        fault_on_screen("P0171").is_none(),
        "the second fault came before the disk was full: the machine is too slow for this script"
    );
    wait_for(WAIT, "/healthz to say the store is full", || {
        get(hmi, "/healthz")["store"] == "full"
    });
    let max_seq_before = seen.lock().unwrap().records.keys().last().copied();

    // Prompts work from memory: the fault raised while the disk is full reaches the screen.
    wait_for(WAIT, "P0171 on screen while the disk is full", || {
        fault_on_screen("P0171").is_some()
    });
    // The agent keeps reading the bus.
    let km = |v: &Value| v["odometer_km"].as_f64().unwrap();
    let before = km(&get(hmi, "/v1/vehicle"));
    wait_for(WAIT, "the odometer to move while the disk is full", || {
        km(&get(hmi, "/v1/vehicle")) > before + 1.0
    });
    // Writes the agent cannot keep: 503 with a stable code.
    let settings = get(hmi, "/v1/settings");
    let refused = [
        http(
            hmi,
            "POST",
            &format!("/v1/prompts/{p0300}/action"),
            r#"{"action":"ack"}"#,
        ),
        http(hmi, "POST", "/v1/service", r#"{"items":["oil"]}"#),
        http(hmi, "PUT", "/v1/settings", &settings.to_string()),
    ];
    for (status, body) in &refused {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"]["code"], "storage_full", "{body}");
    }
    let full = get(hmi, "/healthz");
    assert_eq!(full["store"], "full", "{full}");
    let failed_while_full = full["store_failed_writes"].as_u64().unwrap();
    assert!(failed_while_full >= 3, "{full}");
    // Hold the disk full long enough for the memory to pass the outbox's bound (100).
    std::thread::sleep(Duration::from_secs(15));

    // Space returns.
    fs.free().unwrap();
    wait_for(WAIT, "/healthz to say the store is ok again", || {
        get(hmi, "/healthz")["store"] == "ok"
    });
    let (status, body) = http(hmi, "PUT", "/v1/settings", &settings.to_string());
    assert_eq!(status, 200, "HMI writes succeed again: {body}");
    // New records are stored and synced: both faults' events, and readings after them.
    wait_for(
        WAIT,
        "the records since the disk was full to be synced",
        || {
            let seen = seen.lock().unwrap();
            let p0171 = seen.records.values().any(|b| {
            matches!(b, RecordBody::DtcAppeared(e) if e.dtc.to_string().starts_with("P0171"))
        });
            let last = seen.records.keys().last().copied().unwrap_or(0);
            p0171
                && seen
                    .records
                    .iter()
                    .any(|(s, b)| *s > last.saturating_sub(5) && kind(b) == "odometer")
                && get(hmi, "/v1/vehicle")["outbox_depth"].as_u64() < Some(5)
        },
    );
    let health = get(hmi, "/healthz");
    process.terminate(Duration::from_secs(30)).unwrap();

    let seen = seen.lock().unwrap();
    let last = *seen.records.keys().last().unwrap();
    let gone: Vec<u64> = (1..=last)
        .filter(|s| !seen.records.contains_key(s))
        .collect();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for b in seen.records.values() {
        *by_kind.entry(kind(b)).or_default() += 1;
    }
    let events: Vec<(u64, String)> = seen
        .records
        .iter()
        .filter(|(_, b)| kind(b) == "event")
        .map(|(s, b)| (*s, format!("{b:?}").chars().take(60).collect()))
        .collect();
    let log = std::fs::read_to_string(&log).unwrap();
    println!(
        "ballast {ballast} B; synced before full up to seq {max_seq_before:?}; {} records synced, \
         {} duplicates, last seq {last}; {} seqs burned by unflushed commits ({:?}..{:?}); synced by kind {by_kind:?}; \
         events {events:?}; failed writes {}; log {} lines",
        seen.records.len(),
        seen.duplicates,
        gone.len(),
        gone.first(),
        gone.last(),
        health["store_failed_writes"],
        log.lines().count(),
    );
    // The outbox's bound held by value: of what was made while the disk was full (far more
    // than the bound: one write attempt per observation), at most the bound's 100 reached the
    // cloud, readings trimmed and every event kept. `gone` are seqs given to commits sled
    // accepted in memory but never flushed: burned, never reused.
    let after: Vec<&RecordBody> = seen
        .records
        .range(max_seq_before.unwrap_or(0) + 1..)
        .map(|(_, b)| b)
        .collect();
    let readings = after.iter().filter(|b| kind(b) == "odometer").count();
    assert!(
        readings <= 100,
        "the outbox's bound was passed: {readings} readings"
    );
    assert!(readings >= 90, "the newest readings were kept: {readings}");
    for fault in ["P0300", "P0171"] {
        assert!(
            seen.records.values().any(|b| matches!(
                b, RecordBody::DtcAppeared(e) if e.dtc.to_string().starts_with(fault)
            )),
            "the {fault} event was lost; events: {events:?}"
        );
    }
    assert!(
        events.iter().any(|(_, e)| e.contains("Prompt")),
        "the driver's ack (applied in memory while full) reached the cloud: {events:?}"
    );
    // The log says it once each way, and nothing panicked.
    assert_eq!(count(&log, "store writes failing"), 1, "{log}");
    assert_eq!(count(&log, "store recovered"), 1, "{log}");
    assert_eq!(count(&log, "panicked"), 0, "{log}");
    assert_eq!(count(&log, "ERROR rapport_agent"), 0, "{log}");
    // sled logs its own I/O error where it hits it (a few lines, not one per write).
    assert!(count(&log, "ERROR sled") <= 5, "{log}");
    assert!(health["store_failed_writes"].as_u64().unwrap() >= failed_while_full);
}

#[test]
fn a_read_only_data_directory_is_one_clear_error_at_start() {
    let Some(fs) = Tmpfs::mount("flash_full::a_read_only_data_directory", 1024).unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = fs.path().join("data");
    std::fs::create_dir(&data).unwrap();
    fs.read_only().unwrap();
    let mut c = agent::bare().unwrap();
    c.store.path = data.clone();
    c.hmi.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = agent::write(&c, dir.path()).unwrap();
    for sub in ["run", "check-config"] {
        let out = bin_command(AGENT)
            .args([sub, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{sub}: {:?}: {stderr}", out.status.code());
        assert!(!out.status.success(), "{sub} must fail: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{sub}: one line: {stderr}");
        assert!(
            stderr.contains(&data.display().to_string()),
            "{sub} names the directory: {stderr}"
        );
        assert!(
            stderr.contains("Read-only file system"),
            "{sub} names the cause: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
    }
}
