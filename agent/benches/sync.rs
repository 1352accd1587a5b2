//! The sync's measurements (issue 5): how long a 50,000-record backlog takes to drain after
//! the agent connects to a broker on loopback (target ≤ 5 s), and how many bytes a record and
//! a batch cost on the wire, MQTT framing included.
//!
//! Drain: a real `Core` on a sled store in a temp dir holds 50,000 odometer records; a "cloud"
//! subscriber (rumqttc, QoS 1) listens on `rapport/v1/+/up`; then the sync starts with the
//! default `[sync]` values (500 records or 64 KiB a batch, 10 in flight). Timed: from start to
//! the last record acknowledged and removed from the outbox, and to the last record decoded
//! by the cloud. The broker is mosquitto where it is installed, else an embedded rumqttd.
//!
//! Wire bytes: the codec's payloads for typical batches, plus the MQTT PUBLISH framing (fixed
//! header, remaining length, topic, packet id) and the 4-byte PUBACK that comes back. TCP/IP
//! and TLS framing come on top (TLS 1.3: 22 bytes per TLS record of up to 16 KiB).
//!
//! Run: `cargo bench -p rapport-agent --bench sync` (`RAPPORT_SYNC_RECORDS` changes the
//! backlog, `RAPPORT_SYNC_RUNS` the number of runs).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_agent::clock::SystemClock;
use rapport_agent::config::{Loaded, Sync};
use rapport_agent::runtime::Core;
use rapport_agent::sync;
use rapport_agent::sync::batch::{Batcher, Limits, Waiting};
use rapport_harness::mosquitto::{Mosquitto, Options};
use rapport_harness::mqtt::Subscriber;
use rapport_harness::records::odometer_m as odometer_body;
use rapport_harness::wait::{free_port, loopback};
use rapport_harness::{agent, rumqttd};
use rapport_shared::v1::topic;
use rapport_shared::v1::uplink::{
    PromptAction, PromptEvent, PromptKind, Record, RecordBody, Uplink,
};
use rapport_shared::{Timestamp, Vin};

const VIN: &str = "WVWZZZ1KZ8W012345";

/// Mosquitto with room for the backlog where it is installed (it prints a skip line where it
/// is not), else an embedded rumqttd; the broker's port and name.
fn start_broker() -> (Option<Mosquitto>, u16, &'static str) {
    let options = Options::default().config_line("max_queued_messages 100000");
    if let Some(m) = Mosquitto::start(options).unwrap() {
        let port = m.port();
        return (Some(m), port, "mosquitto");
    }
    let port = free_port().unwrap();
    rumqttd::start(port).unwrap();
    (None, port, "rumqttd")
}

fn loaded(port: u16, max_records: u64) -> Loaded {
    let mut config = agent::bare().unwrap();
    config.vehicle.line = "bench".into();
    config.outbox.max_records = max_records;
    config.sync = Some(Sync {
        heartbeat_s: 86_400,
        ..agent::sync_to(&format!("mqtt://127.0.0.1:{port}")).unwrap()
    });
    Loaded { config, dbc: None }
}

/// One drain: returns (time to empty outbox, time to the cloud seeing all, publishes).
async fn drain_once(n: u64) -> (Duration, Duration, u64, &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let (broker, port, name) = start_broker();
    let loaded = loaded(port, n + 1_000);
    let core = Arc::new(
        Core::open(
            &loaded,
            &dir.path().join("agent"),
            Arc::new(SystemClock::default()),
        )
        .unwrap(),
    );
    let mut made = 0;
    while made < n {
        let chunk = (n - made).min(5_000);
        core.append(
            (0..chunk)
                .map(|i| odometer_body(50_000_000 + (made + i) * 100))
                .collect(),
        )
        .unwrap();
        made += chunk;
    }
    let first_seq = core.with(|_, s| s.next_seq()) - n;

    // The cloud.
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = Arc::clone(&seen);
    let cloud = Subscriber::start(
        loopback(port),
        "bench-cloud",
        topic::UPLINK_FILTER,
        move |_, payload| {
            if let Ok(up) = Uplink::decode(payload) {
                sink.lock()
                    .unwrap()
                    .extend(up.records.iter().map(|r| r.seq));
            }
        },
    )
    .await
    .unwrap();

    let settings = rapport_agent::settings::sync(&loaded.config)
        .unwrap()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let handle = sync::spawn(Arc::clone(&core), settings, async move {
        let _ = stopped.await;
    });
    let mut emptied = None;
    let mut all_seen = None;
    while emptied.is_none() || all_seen.is_none() {
        if emptied.is_none() && core.with(|_, s| s.outbox_len()) == 0 {
            emptied = Some(start.elapsed());
        }
        if all_seen.is_none() {
            let seen = seen.lock().unwrap();
            if (first_seq..first_seq + n).all(|s| seen.contains(&s)) {
                all_seen = Some(start.elapsed());
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "drain stuck");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let c = handle.counters();
    let _ = stop.send(());
    handle.join().await.unwrap();
    drop(cloud);
    drop(broker);
    (
        emptied.unwrap_or_default(),
        all_seen.unwrap_or_default(),
        c.published,
        name,
    )
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 128 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Bytes of a QoS 1 PUBLISH of `payload` bytes on the uplink topic.
fn publish_bytes(payload: usize) -> usize {
    let topic = topic::uplink(&VIN.parse::<Vin>().unwrap()).len();
    let remaining = 2 + topic + 2 + payload;
    1 + varint_len(remaining) + remaining
}

const PUBACK: usize = 4;

fn wire_report() {
    let vin: Vin = VIN.parse().unwrap();
    let batcher = Batcher::new(
        vin,
        Limits {
            max_records: 500,
            max_bytes: 64 * 1024,
            max_age: Duration::ZERO,
        },
    );
    let start = 1_767_261_600_000u64;
    let cut = |records: Vec<Record>| {
        let waiting: Vec<Waiting> = records
            .into_iter()
            .map(|r| Waiting::new(r, Duration::ZERO).unwrap())
            .collect();
        batcher
            .cut(&waiting, Duration::ZERO, true)
            .unwrap()
            .unwrap()
    };
    // A reading every 1 km at 100 km/h (36 s apart), as the outbox gets them while driving.
    let odometers = |n: u64| -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                seq: 1_000 + i,
                at: Timestamp::from_millis(start + i * 36_000),
                body: odometer_body(48_213_000 + i * 1_000),
            })
            .collect()
    };
    let prompt = Record {
        seq: 2_000,
        at: Timestamp::from_millis(start),
        body: RecordBody::Prompt(PromptEvent {
            prompt: "maintenance:oil:60000".into(),
            kind: PromptKind::Maintenance,
            subject: "oil".into(),
            critical: false,
            action: PromptAction::Shown,
        }),
    };
    println!("\nbytes on the wire (payload; + MQTT PUBLISH framing; + 4-byte PUBACK back):");
    println!(
        "  topic {:?}: {} bytes",
        topic::uplink(&VIN.parse::<Vin>().unwrap()),
        topic::uplink(&VIN.parse::<Vin>().unwrap()).len()
    );
    for (label, records) in [
        ("1 odometer record alone", odometers(1)),
        ("1 prompt-shown record alone", vec![prompt]),
        (
            "live batch: 2 odometer records (one 30 s write)",
            odometers(2),
        ),
        ("10 odometer records", odometers(10)),
        ("backlog batch: 500 odometer records", odometers(500)),
    ] {
        let n = records.len();
        let c = cut(records);
        assert_eq!(c.count, n);
        let publish = publish_bytes(c.payload.len());
        println!(
            "  {label:<48} payload {:>6} B, publish {:>6} B, +ack {:>6} B  = {:>6.1} B/record",
            c.payload.len(),
            publish,
            publish + PUBACK,
            (publish + PUBACK) as f64 / n as f64
        );
    }
}

fn main() {
    let n: u64 = std::env::var("RAPPORT_SYNC_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runs: usize = std::env::var("RAPPORT_SYNC_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("drain of a {n}-record backlog on loopback, default [sync] values:");
    for run in 1..=runs {
        let (emptied, all_seen, published, broker) = rt.block_on(drain_once(n));
        println!(
            "  run {run} ({broker}): outbox empty after {:.2} s, cloud has all after {:.2} s, \
             {published} publishes, {:.0} records/s",
            emptied.as_secs_f64(),
            all_seen.as_secs_f64(),
            n as f64 / emptied.as_secs_f64().max(1e-9)
        );
    }
    wire_report();
}
