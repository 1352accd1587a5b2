//! Encoded sizes beside serde_json for the same values (run with `--nocapture` to see them).
//! Cellular bytes cost money: the aim is ≤ 12 bytes per odometer record in a batch of
//! 100; the assertion below keeps the codec honest about it.

use rapport_shared::*;

fn vin() -> Vin {
    "WP0ZZZ99ZTS392124".parse().unwrap()
}

const T0: u64 = 1_790_000_000_000;

fn odo(seq: u64, i: u64) -> Record {
    // One reading a second at ~100 km/h: 27–28 m per step.
    Record {
        seq,
        at: Timestamp::from_millis(T0 + i * 1000),
        body: RecordBody::Odometer(OdometerReading {
            odometer: Odometer::from_meters(48_213_400 + i * 2778 / 100),
            source: SignalSource::Obd,
        }),
    }
}

fn typical_mix() -> Vec<Record> {
    // What ten minutes of a drive look like in the outbox: odometer every 10 s, engine hours
    // every minute, a fault appearing, a prompt shown and acted on, a heartbeat.
    let mut out = Vec::new();
    let mut seq = 1000;
    let mut push = |at: u64, body| {
        seq += 1;
        out.push(Record {
            seq,
            at: Timestamp::from_millis(T0 + at),
            body,
        });
    };
    for i in 0..60u64 {
        push(
            i * 10_000,
            RecordBody::Odometer(OdometerReading {
                odometer: Odometer::from_meters(48_213_400 + i * 278),
                source: SignalSource::Obd,
            }),
        );
        if i % 6 == 0 {
            push(
                i * 10_000 + 5,
                RecordBody::EngineHours(EngineHoursReading {
                    hours: EngineHours::from_secs(1_500_000 + i * 10),
                    source: SignalSource::Obd,
                }),
            );
        }
    }
    let dtc = DtcEvent {
        dtc: Dtc::Obd(ObdCode::new(0x0133)),
        severity: Severity::Warning,
        ecu: 0x7E8,
        class: None,
    };
    push(200_000, RecordBody::DtcAppeared(dtc));
    push(
        200_001,
        RecordBody::DtcSnapshot(DtcSnapshot {
            active: vec![dtc],
            mil: true,
        }),
    );
    push(
        300_000,
        RecordBody::Maintenance(MaintenanceEvent {
            item: "oil".into(),
            status: MaintenanceStatus::DueSoon,
            odometer: Odometer::from_km(48_220),
            due_odometer: Some(Odometer::from_km(49_000)),
            due_at: Some(Timestamp::from_millis(T0 + 30 * 86_400_000)),
            due_engine_hours: None,
        }),
    );
    for action in [PromptAction::Shown, PromptAction::Booked] {
        push(
            400_000,
            RecordBody::Prompt(PromptEvent {
                prompt: "maintenance:oil:49000".into(),
                kind: PromptKind::Maintenance,
                subject: "oil".into(),
                critical: false,
                action,
            }),
        );
    }
    push(
        590_000,
        RecordBody::Heartbeat(Heartbeat {
            agent_version: "0.1.0".into(),
            uptime_s: 3600,
            outbox_depth: 74,
            records_dropped: 0,
        }),
    );
    out
}

fn report(name: &str, env: &Uplink) -> (usize, usize) {
    let wire = env.encode().unwrap().len();
    let json = serde_json::to_vec(env).unwrap().len();
    let n = env.records.len();
    println!(
        "{name:<32} records {n:>4}  postcard {wire:>6} B ({:>5.1} B/record)  serde_json {json:>6} B ({:>6.1} B/record)  {:>4.1}x smaller",
        wire as f64 / n as f64,
        json as f64 / n as f64,
        json as f64 / wire as f64
    );
    assert_eq!(Uplink::decode(&env.encode().unwrap()).unwrap(), *env);
    (wire, json)
}

#[test]
fn encoded_sizes_beside_json() {
    let one = Uplink {
        vin: vin(),
        records: vec![odo(1, 0)],
    };
    let (one_wire, one_json) = report("one odometer record", &one);
    let standalone = one.records[0].encode().unwrap().len();
    println!("one odometer record, outbox form  {standalone} B");

    let hundred = Uplink {
        vin: vin(),
        records: (0..100).map(|i| odo(5_000 + i, i)).collect(),
    };
    let (wire, json) = report("batch of 100 odometer records", &hundred);
    assert!(
        wire <= 12 * 100,
        "{wire} bytes for 100 odometer records: above 12 B each"
    );
    assert!(wire * 4 < json, "postcard should be far smaller than JSON");
    assert!(one_wire < one_json);

    let mix = Uplink {
        vin: vin(),
        records: typical_mix(),
    };
    report("typical mix (10 min of driving)", &mix);
}
