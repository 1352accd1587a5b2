//! The store: what one typical commit costs, and what a driving hour writes.
//!
//! Timed (criterion): a commit of the vehicle state and one odometer record — the commonest
//! step while driving — non-durable and durable (fsync), with the outbox acked every 100
//! commits (online), and with a full outbox (offline, every commit drops the oldest reading).
//!
//! Printed (one run each, not timed):
//! - one simulated driving hour at the default cadence (`[store].odometer_every_m = 100`,
//!   `odometer_every_s = 60`, `[outbox].odometer_every_m = 1000`) at 100 km/h, online (the sync
//!   acks every 10 s), with a heartbeat every 5 min and one prompt shown and acted on (durable):
//!   logical bytes written (keys + values, removals as keys; target ≤ 1 MB/hour), the bytes
//!   the process handed to `write()` (`wchar` in `/proc/self/io`: sled's log, what the flash
//!   sees before the file system), and the size on disk after 10 such hours;
//! - the size on disk after 100,000 commits of vehicle + one odometer record, acked and not
//!   acked, and whether it levels off when sled's background thread gets time to reclaim.
//!
//! Run: `cargo bench -p rapport-agent --bench store`.
//!
//! Figures on the shared 2-core x86 dev box (bench profile, short criterion runs): a commit of
//! vehicle + 1 record 22–35 µs, durable 120–185 µs (tmp dir fsync), with a full outbox 38–50 µs;
//! a driving hour 900 commits, ~29 KB logical, ~80 KB to `write()`; 100,000 unacked records
//! ~51 MB on disk (sled's node rewrites: ~500 B per commit), acked churn levels off at 7–14 MB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rapport_agent::memory::{Changes, Memory, PromptRecord, PromptState};
use rapport_agent::store::{Store, StoreOptions};
use rapport_shared::v1::uplink::{
    EngineHoursReading, Heartbeat, OdometerReading, PromptAction, PromptEvent, PromptKind,
    RecordBody, SignalSource,
};
use rapport_shared::{EngineHours, Odometer, Timestamp};

fn options(max_outbox: u64) -> StoreOptions {
    StoreOptions {
        max_outbox,
        flush_every_ms: Some(1_000),
        ..StoreOptions::default()
    }
}

fn odometer_record(m: u64) -> RecordBody {
    RecordBody::Odometer(OdometerReading {
        odometer: Odometer::from_meters(m),
        source: SignalSource::Obd,
    })
}

/// One typical step: the vehicle state moved on, one odometer record for the cloud.
fn odometer_step(memory: &mut Memory, m: u64, at: u64, durable: bool) -> Changes {
    memory.vehicle.odometer = Some(Odometer::from_meters(m));
    memory.vehicle.odometer_at = Some(Timestamp::from_millis(at));
    Changes {
        vehicle: true,
        outbox: vec![(Timestamp::from_millis(at), odometer_record(m))],
        durable,
        ..Changes::default()
    }
}

/// A memory as after some months: a few faults' worth of prompts and items.
fn lived_in() -> Memory {
    let mut m = Memory::default();
    m.vehicle.first_seen = Some(Timestamp::from_millis(1_700_000_000_000));
    m.vehicle.engine_hours = Some(EngineHours::from_secs(400 * 3600));
    for i in 0..20 {
        let id = format!("maintenance:item{i}:3:due");
        m.prompts
            .insert(id.clone(), prompt(&id, PromptState::Dismissed));
    }
    m
}

fn prompt(id: &str, state: PromptState) -> PromptRecord {
    PromptRecord {
        id: id.into(),
        kind: PromptKind::Maintenance,
        subject: "oil".into(),
        critical: false,
        title: "Oil change".into(),
        text: "Your oil change is due within 1,000 km.".into(),
        created: Timestamp::from_millis(1),
        state,
        first_shown: None,
        times_shown: 0,
        closed_at: None,
    }
}

/// `wchar` of this process: bytes handed to write-like syscalls (0 where unavailable).
fn wchar() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar:").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

/// Drives `hours` simulated hours; returns (commits, records appended).
fn drive(store: &Store, memory: &mut Memory, hour0: u64, hours: u64) -> (u64, u64) {
    const SPEED_MPS: f64 = 100.0 / 3.6;
    let (mut commits, mut records) = (0, 0);
    let mut m = memory.vehicle.odometer.map_or(0, |o| o.meters());
    let (mut saved_m, mut saved_s, mut sent_m) = (m, 0u64, m);
    let mut unacked: Vec<u64> = Vec::new();
    for s in hour0 * 3600..(hour0 + hours) * 3600 {
        let at = 1_750_000_000_000 + s * 1000;
        m = (s as f64 * SPEED_MPS) as u64;
        let mut changes = Changes::default();
        if m - saved_m >= 100 || s - saved_s >= 60 {
            memory.vehicle.odometer = Some(Odometer::from_meters(m));
            memory.vehicle.odometer_at = Some(Timestamp::from_millis(at));
            changes.vehicle = true;
            (saved_m, saved_s) = (m, s);
        }
        if m - sent_m >= 1000 {
            changes
                .outbox
                .push((Timestamp::from_millis(at), odometer_record(m)));
            sent_m = m;
        }
        if s % 300 == 0 {
            changes.outbox.push((
                Timestamp::from_millis(at),
                RecordBody::EngineHours(EngineHoursReading {
                    hours: EngineHours::from_secs(400 * 3600 + s),
                    source: SignalSource::J1939,
                }),
            ));
            changes.outbox.push((
                Timestamp::from_millis(at),
                RecordBody::Heartbeat(Heartbeat {
                    agent_version: "0.1.0".into(),
                    uptime_s: s,
                    outbox_depth: store.outbox_len(),
                    records_dropped: 0,
                }),
            ));
        }
        if s % 3600 == 1800 {
            // One prompt an hour: shown, then acted on.
            let id = format!("milestone:{s}");
            let mut p = prompt(&id, PromptState::Acknowledged);
            p.times_shown = 1;
            memory.prompts.insert(id.clone(), p);
            memory.shows.per_kind.insert(6, 1);
            changes.prompts = BTreeSet::from([id.clone()]);
            changes.shows = true;
            changes.outbox.push((
                Timestamp::from_millis(at),
                RecordBody::Prompt(PromptEvent {
                    prompt: id,
                    kind: PromptKind::Milestone,
                    subject: "50000".into(),
                    critical: false,
                    action: PromptAction::Acknowledged,
                }),
            ));
            changes.durable = true;
        }
        if !changes.is_empty() || changes.durable {
            records += changes.outbox.len() as u64;
            let c = store.commit(memory, &changes).unwrap();
            unacked.extend(c.seqs);
            commits += 1;
        }
        if s % 10 == 0 && !unacked.is_empty() {
            store.outbox_remove(&unacked).unwrap();
            unacked.clear();
        }
    }
    (commits, records)
}

fn figures() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut memory) = Store::open(dir.path(), options(100_000)).unwrap();
    let mut lived = lived_in();
    lived.vehicle.odometer = memory.vehicle.odometer;
    memory = lived;
    let w0 = wchar();
    let (commits, records) = drive(&store, &mut memory, 0, 1);
    store.flush().unwrap();
    let w1 = wchar();
    let st = store.stats();
    println!(
        "driving hour (online): {commits} commits, {records} records, {} keys, \
         {} logical bytes, {} bytes to write(), {} flushes; size on disk {} bytes",
        st.keys_written,
        st.bytes_written,
        w1 - w0,
        st.flushes,
        store.size_on_disk().unwrap()
    );
    drive(&store, &mut memory, 1, 9);
    store.flush().unwrap();
    let w10 = wchar();
    println!(
        "after 10 driving hours: {} logical bytes, {} bytes to write(), size on disk {} bytes",
        store.stats().bytes_written,
        w10 - w0,
        store.size_on_disk().unwrap()
    );
    drop(store);

    for (label, ack) in [("acked every 100", true), ("never acked", false)] {
        for n in [100_000u64] {
            let dir = tempfile::tempdir().unwrap();
            let (store, mut memory) = Store::open(dir.path(), options(100_000)).unwrap();
            let w0 = wchar();
            let mut batch = Vec::new();
            for i in 0..n {
                let changes = odometer_step(&mut memory, i * 100, i, false);
                let c = store.commit(&memory, &changes).unwrap();
                batch.extend(c.seqs);
                if ack && batch.len() == 100 {
                    store.outbox_remove(&batch).unwrap();
                    batch.clear();
                }
            }
            store.flush().unwrap();
            let right_after = store.size_on_disk().unwrap();
            std::thread::sleep(std::time::Duration::from_secs(3));
            println!(
                "{n} commits (vehicle + 1 odometer record), {label}: outbox {}, {} logical \
                 bytes, {} bytes to write(), size on disk {right_after} bytes right after, \
                 {} after 3 s idle (sled's segment cleanup)",
                store.outbox_len(),
                store.stats().bytes_written,
                wchar() - w0,
                store.size_on_disk().unwrap()
            );
        }
    }

    // sled reclaims space in its background thread, on its own clock: give it time between
    // rounds and watch whether the size levels off.
    let dir = tempfile::tempdir().unwrap();
    let (store, mut memory) = Store::open(dir.path(), options(100_000)).unwrap();
    let mut sizes = Vec::new();
    let mut i = 0;
    for _ in 0..5 {
        let mut batch = Vec::new();
        for _ in 0..20_000 {
            i += 1;
            let changes = odometer_step(&mut memory, i * 100, i, false);
            batch.extend(store.commit(&memory, &changes).unwrap().seqs);
            if batch.len() == 100 {
                store.outbox_remove(&batch).unwrap();
                batch.clear();
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        sizes.push(store.size_on_disk().unwrap() / 1024);
    }
    println!("size on disk (KiB) after each 20,000 acked commits and 2 s idle: {sizes:?}");
}

fn commit(c: &mut Criterion) {
    figures();
    let mut group = c.benchmark_group("store_commit");
    for (name, durable) in [("odometer", false), ("odometer_durable", true)] {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), options(100_000)).unwrap();
        let mut memory = lived_in();
        let mut i = 0u64;
        let mut unacked = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let changes = odometer_step(&mut memory, i * 100, i, durable);
                let c = store.commit(&memory, &changes).unwrap();
                unacked.extend(c.seqs);
                if unacked.len() == 100 {
                    store.outbox_remove(&unacked).unwrap();
                    unacked.clear();
                }
                black_box(&unacked);
            });
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(10_000)).unwrap();
    let mut memory = lived_in();
    for i in 0..10_000 {
        let changes = odometer_step(&mut memory, i * 100, i, false);
        store.commit(&memory, &changes).unwrap();
    }
    let mut i = 10_000u64;
    group.bench_function("odometer_full_outbox", |b| {
        b.iter(|| {
            i += 1;
            let changes = odometer_step(&mut memory, i * 100, i, false);
            black_box(store.commit(&memory, &changes).unwrap());
        });
    });
    group.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
