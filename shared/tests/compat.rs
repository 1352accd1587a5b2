//! Compatibility across versions in the field (see the crate docs, "Growing the protocol").
//!
//! - A newer agent sends a record kind this build does not know: this build (the "old cloud")
//!   keeps it as `Unknown` with its sequence number and decodes everything around it.
//! - Bytes a v1.0 agent produced are frozen here and must decode to the same values forever,
//!   so every later build (the "new cloud") still understands old agents.

use rapport_shared::*;
use serde::{Deserialize, Serialize};

fn vin() -> Vin {
    "1G1JC5444R7252367".parse().unwrap()
}

/// The record kind a hypothetical v1.1 agent adds: tyre pressure, tag 10.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct TyrePressure {
    axle: u8,
    kpa: u16,
}
const TYRE_TAG: u32 = 10;

fn odo(km: u64) -> RecordBody {
    RecordBody::Odometer(OdometerReading {
        odometer: Odometer::from_km(km),
        source: SignalSource::J1939,
    })
}

#[test]
fn new_record_kind_reaches_an_old_cloud() {
    // What the newer agent puts on the wire: the same framing, a tag this build has never seen.
    let tyre = postcard::to_allocvec(&TyrePressure { axle: 2, kpa: 820 }).unwrap();
    let t = |s: u64| Timestamp::from_secs(1_790_000_000 + s);
    let from_new_agent = Uplink {
        vin: vin(),
        records: vec![
            Record {
                seq: 41,
                at: t(0),
                body: odo(438_978),
            },
            Record {
                seq: 42,
                at: t(1),
                body: RecordBody::Unknown {
                    tag: TYRE_TAG,
                    bytes: tyre.clone(),
                },
            },
            Record {
                seq: 43,
                at: t(2),
                body: odo(438_979),
            },
            Record {
                seq: 44,
                at: t(3),
                body: RecordBody::DtcAppeared(DtcEvent {
                    dtc: Dtc::J1939(
                        Spn::new(110).unwrap(),
                        Fmi::new(0).unwrap(),
                        OccurrenceCount::new(3).unwrap(),
                    ),
                    severity: Severity::Critical,
                    ecu: 0,
                }),
            },
        ],
    }
    .encode()
    .unwrap();

    // This build, as the old cloud: everything known decodes, the new kind is kept with its
    // sequence number and time (so the cloud marks seq 42 applied), nothing is refused.
    let got = Uplink::decode(&from_new_agent).unwrap();
    assert_eq!(got.records.len(), 4);
    assert_eq!(got.records[0].body, odo(438_978));
    assert_eq!(got.records[1].seq, 42);
    assert_eq!(got.records[1].at, t(1));
    assert_eq!(
        got.records[1].body,
        RecordBody::Unknown {
            tag: TYRE_TAG,
            bytes: tyre.clone()
        }
    );
    assert_eq!(
        got.records[2].body,
        odo(438_979),
        "deltas run past the unknown record"
    );
    assert_eq!(got.records[3].body.kind_name(), "dtc_appeared");

    // The new cloud knows the kind: it decodes the very same bytes into the new type.
    let RecordBody::Unknown { bytes, .. } = &got.records[1].body else {
        unreachable!()
    };
    assert_eq!(
        postcard::from_bytes::<TyrePressure>(bytes).unwrap(),
        TyrePressure { axle: 2, kpa: 820 }
    );
}

#[test]
fn fields_appended_by_a_newer_sender_are_ignored() {
    // A newer agent appends a field to the consent body; this build reads the fields it knows.
    let mut body = postcard::to_allocvec(&ConsentChange {
        consent: ConsentKind::PartnerSharing,
        granted: true,
    })
    .unwrap();
    body.extend_from_slice(&[0x01, 0xAC, 0x02]); // Some(300): the hypothetical new field
    let mut b = vec![PROTOCOL_VERSION];
    b.extend_from_slice(vin().as_bytes());
    b.extend_from_slice(&[
        1,
        /* seq */ 1,
        /* t */ 0,
        /* tag consent */ 8,
        body.len() as u8,
    ]);
    b.extend_from_slice(&body);
    b.extend_from_slice(&[0xDE, 0xAD]); // and a future envelope field after the last record
    let got = Uplink::decode(&b).unwrap();
    assert_eq!(
        got.records[0].body,
        RecordBody::Consent(ConsentChange {
            consent: ConsentKind::PartnerSharing,
            granted: true
        })
    );
    // The new kind of prompt is kept as Other, not refused.
    let k: PromptKind = postcard::from_bytes(&postcard::to_allocvec(&42u16).unwrap()).unwrap();
    assert_eq!(k, PromptKind::Other(42));
}

#[test]
fn old_agent_ignores_a_new_downlink_kind_but_keeps_its_id() {
    let env = Downlink {
        vin: vin(),
        messages: vec![
            DownlinkMessage {
                id: 9001,
                at: Timestamp::from_secs(5),
                body: DownlinkBody::Unknown {
                    tag: 77,
                    bytes: vec![1, 2, 3],
                },
            },
            DownlinkMessage {
                id: 9002,
                at: Timestamp::from_secs(6),
                body: DownlinkBody::ServiceRecorded(ServiceRecorded {
                    items: vec!["oil".into()],
                    performed_at: Timestamp::from_secs(6),
                    odometer: Some(Odometer::from_km(10_050)),
                    partner: "dealer-7".into(),
                }),
            },
        ],
    };
    let got = Downlink::decode(&env.encode().unwrap()).unwrap();
    assert_eq!(got.messages[0].id, 9001);
    assert!(matches!(
        got.messages[0].body,
        DownlinkBody::Unknown { tag: 77, .. }
    ));
    assert_eq!(got, env);
}

/// A v1.0 batch: one of every record kind.
fn golden_envelope() -> Uplink {
    let t = |ms: u64| Timestamp::from_millis(1_790_000_000_000 + ms);
    let dtc = DtcEvent {
        dtc: Dtc::Uds(UdsCode::new(0x01331C).unwrap(), UdsStatus(0x2F)),
        severity: Severity::Warning,
        ecu: 0x7E8,
    };
    let bodies = vec![
        RecordBody::Odometer(OdometerReading {
            odometer: Odometer::from_meters(12_345_600),
            source: SignalSource::Obd,
        }),
        RecordBody::Odometer(OdometerReading {
            odometer: Odometer::from_meters(12_345_700),
            source: SignalSource::Obd,
        }),
        RecordBody::EngineHours(EngineHoursReading {
            hours: EngineHours::from_secs(720_180),
            source: SignalSource::J1939,
        }),
        RecordBody::DtcAppeared(dtc),
        RecordBody::DtcCleared(dtc),
        RecordBody::DtcSnapshot(DtcSnapshot {
            active: vec![dtc],
            mil: true,
        }),
        RecordBody::Maintenance(MaintenanceEvent {
            item: "oil".into(),
            status: MaintenanceStatus::Due,
            odometer: Odometer::from_km(12_345),
            due_odometer: Some(Odometer::from_km(12_000)),
            due_at: None,
            due_engine_hours: None,
        }),
        RecordBody::Prompt(PromptEvent {
            prompt: "maintenance:oil:12000".into(),
            kind: PromptKind::Maintenance,
            subject: "oil".into(),
            critical: false,
            action: PromptAction::Snoozed {
                until: t(86_400_000),
            },
        }),
        RecordBody::Consent(ConsentChange {
            consent: ConsentKind::EngagementPrompts,
            granted: false,
        }),
        RecordBody::Heartbeat(Heartbeat {
            agent_version: "0.1.0".into(),
            uptime_s: 60,
            outbox_depth: 9,
            records_dropped: 0,
        }),
    ];
    Uplink {
        vin: vin(),
        records: bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Record {
                seq: 100 + i as u64,
                at: t(i as u64 * 250),
                body,
            })
            .collect(),
    }
}

/// Encoded by rapport-shared 0.1.0 (protocol v1). Never edit this to make a test pass:
/// a change here means agents in the field can no longer be understood.
const GOLDEN_V1: &str = concat!(
    "013147314a433534343452373235323336370a6480b083c598680105008084e30b01f403010300c8",
    "0101f403020402e8f45701f4030308019ce6042f01e80f01f4030408019ce6042f01e80f01f40305",
    "0a01019ce6042f01e80f0101f4030610036f696c01a8bdf1050180b6dc05000001f4030723156d61",
    "696e74656e616e63653a6f696c3a313230303000036f696c00028090dbcb8c3401f4030802000001",
    "f403090905302e312e303c0900",
);

#[test]
fn frozen_v1_bytes_decode_forever() {
    let hex: String = golden_envelope()
        .encode()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bytes: Vec<u8> = (0..GOLDEN_V1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GOLDEN_V1[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(Uplink::decode(&bytes).unwrap(), golden_envelope());
    assert_eq!(
        hex, GOLDEN_V1,
        "the encoder's output changed: is that a protocol change?"
    );
}
