//! Bytes written to the store per simulated driving hour (issue 4; target ≤ 1 MB/hour).
//!
//! One hour of mixed driving on the desk car (virtual ECUs, the real poller and decoders)
//! through the rules and a real sled store in a temporary directory, writing as the agent does:
//! changes coalesced by the runtime's `Coalescer` and written — one batch, fsynced — every
//! `[store].write_every_s` of *simulated* time, so the disk sees as many writes as in a real
//! hour (the simulation runs much faster than real time; `RAPPORT_WRITE_EVERY_S` overrides the
//! interval to compare). Reported: logical bytes (keys +
//! values the agent asked to write), bytes the process actually wrote to disk
//! (`/proc/self/io` `write_bytes`, sled's log and page overhead included), and the size on disk.
//!
//! Run: `cargo bench -p rapport-agent --bench store_hour`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use rapport_agent::rules::Rules;
use rapport_agent::runtime::core::Coalescer;
use rapport_agent::sim::Script;
use rapport_agent::store::{Store, StoreOptions};
use rapport_shared::Timestamp;

/// 2026-01-01T10:00:00Z.
const START: u64 = 1_767_261_600_000;

fn disk_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run once
    // either way (a measurement, not a criterion timing).
    let dir = std::env::temp_dir().join(format!("rapport-store-hour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = rapport_harness::agent::passenger().unwrap();
    c.vehicle.delivered = rapport_shared::CivilDate::parse("2025-06-01").unwrap();
    let loaded = rapport_harness::agent::load(&c, &dir).unwrap();
    let cfg = &loaded.config;

    let script: Script = toml::from_str(
        r#"
odometer_m = 23456000
[[steps]]
power = "running"
[[steps]]
drive = { kmh = 50, secs = 600 }
[[steps]]
drive = { kmh = 110, secs = 1800 }
[[steps]]
stop = { secs = 60 }
[[steps]]
set_fault = { obd = { code = 0x0133, mil = true } }
[[steps]]
drive = { kmh = 80, secs = 1080 }
[[steps]]
stop = { secs = 20 }
[[steps]]
clear_fault = { obd = { code = 0x0133, mil = true } }
[[steps]]
park = { secs = 40 }
"#,
    )
    .unwrap();
    let mut car = rapport_agent::desk::car_for(&loaded, script).unwrap();
    let (store, memory) = Store::open(
        &dir.join("data"),
        StoreOptions {
            max_outbox: cfg.outbox.max_records,
            flush_every_ms: None,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let (mut rules, first) = Rules::new(
        rapport_agent::settings::rules(cfg),
        memory,
        Timestamp::from_millis(START),
    );
    store.commit(rules.memory(), &first).unwrap();
    store.flush().unwrap();
    let disk_before = disk_write_bytes();
    let every_s: u64 = std::env::var("RAPPORT_WRITE_EVERY_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::from(cfg.store.write_every_s));
    let mut coalescer = Coalescer::new(Duration::from_secs(every_s));
    let mut next_tick = START;
    let mut commits = 0u64;
    let mut records = 0usize;
    let summary = rapport_agent::desk::run(
        &loaded,
        &mut car,
        Duration::from_secs(3600),
        Timestamp::from_millis(START),
        None,
        |t, obs| {
            let mut changes = rules.on_observation(obs, t);
            if t.as_millis() >= next_tick {
                next_tick = t.as_millis() + 1000;
                changes.merge(rules.tick(t));
            }
            records += changes.outbox.len();
            if let Some(batch) = coalescer.push(changes, t) {
                store.commit(rules.memory(), &batch).unwrap();
                store.flush().unwrap();
                commits += 1;
            }
        },
    );
    if let Some(batch) = coalescer.drain() {
        store.commit(rules.memory(), &batch).unwrap();
    }
    store.flush().unwrap();
    let disk = disk_before
        .zip(disk_write_bytes())
        .map(|(a, b)| b.saturating_sub(a));
    let stats = store.stats();
    let size = store.size_on_disk().unwrap();
    println!(
        "one simulated driving hour ({:.1} km): {commits} commits, {records} outbox records, \
         {} keys written",
        (summary.final_odometer.meters() - 23_456_000) as f64 / 1000.0,
        stats.keys_written
    );
    println!(
        "logical bytes written: {} B ({:.1} KB)",
        stats.bytes_written,
        stats.bytes_written as f64 / 1000.0
    );
    match disk {
        Some(d) => println!(
            "bytes written to disk (/proc/self/io, a fsynced write every {every_s} s simulated): \
             {d} B ({:.3} MB; target ≤ 1 MB)",
            d as f64 / 1e6
        ),
        None => println!("bytes written to disk: /proc/self/io not available here"),
    }
    println!("store size on disk at the end: {size} B");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
