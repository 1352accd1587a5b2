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

/// The record kind a hypothetical later agent adds: tyre pressure, a tag far above any given
/// (tag 10 was this test's until v1.2 gave it to `wipe_confirmed`).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct TyrePressure {
    axle: u8,
    kpa: u16,
}
const TYRE_TAG: u32 = 1_000;

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
                    class: None,
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
        class: None,
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

/// `DtcEvent` and `DtcSnapshot` as a v1.0 build declares them: what an old cloud decodes.
#[derive(Deserialize, Debug, PartialEq)]
struct DtcEventV10 {
    dtc: Dtc,
    severity: Severity,
    ecu: u32,
}
#[derive(Deserialize, Debug, PartialEq)]
struct DtcSnapshotV10 {
    active: Vec<DtcEventV10>,
    mil: bool,
}

/// The body of a record encoded on its own: `version seq t tag len body`.
fn body_of(record: &[u8]) -> (u32, Vec<u8>) {
    let rest = &record[1..];
    let (_seq, rest) = postcard::take_from_bytes::<u64>(rest).unwrap();
    let (_t, rest) = postcard::take_from_bytes::<i64>(rest).unwrap();
    let (tag, rest) = postcard::take_from_bytes::<u32>(rest).unwrap();
    let (len, rest) = postcard::take_from_bytes::<u64>(rest).unwrap();
    assert_eq!(rest.len() as u64, len);
    (tag, rest.to_vec())
}

fn classed(code: u16, ecu: u32, class: Option<DtcClass>) -> DtcEvent {
    DtcEvent {
        dtc: Dtc::Obd(ObdCode::new(code)),
        severity: Severity::Info,
        ecu,
        class,
    }
}

#[test]
fn dtc_class_reaches_an_old_cloud() {
    // A v1.1 agent: a stored UDS code, and a snapshot listing two classes of one code.
    let stored = DtcEvent {
        dtc: Dtc::Uds(UdsCode::new(0x01331C).unwrap(), UdsStatus(0x20)),
        severity: Severity::Info,
        ecu: 0x7E8,
        class: Some(DtcClass::Stored),
    };
    let record = Record {
        seq: 7,
        at: Timestamp::from_secs(1),
        body: RecordBody::DtcAppeared(stored),
    }
    .encode()
    .unwrap();
    let (tag, body) = body_of(&record);
    assert_eq!(tag, 3);
    // The old cloud's decoder (postcard of the v1.0 struct, trailing bytes ignored).
    let (old, trailing) = postcard::take_from_bytes::<DtcEventV10>(&body).unwrap();
    assert_eq!(
        old,
        DtcEventV10 {
            dtc: stored.dtc,
            severity: Severity::Info,
            ecu: 0x7E8
        }
    );
    assert_eq!(trailing, [0x01, 0x03], "Some(stored) after the v1.0 fields");

    let snapshot = DtcSnapshot {
        active: vec![
            classed(0x0420, 0x7E8, Some(DtcClass::Confirmed)),
            classed(0x0420, 0x7E8, Some(DtcClass::Permanent)),
            classed(0x0171, 0x7E9, None),
        ],
        mil: true,
    };
    let record = Record {
        seq: 8,
        at: Timestamp::from_secs(2),
        body: RecordBody::DtcSnapshot(snapshot.clone()),
    }
    .encode()
    .unwrap();
    let (_, body) = body_of(&record);
    let (old, trailing) = postcard::take_from_bytes::<DtcSnapshotV10>(&body).unwrap();
    assert_eq!(
        old.active.len(),
        3,
        "every event still reaches the old cloud"
    );
    assert_eq!(old.active[2].ecu, 0x7E9);
    assert!(old.mil);
    assert_eq!(trailing, [3, 0x01, 0x00, 0x01, 0x02, 0x00]);
    // And this build reads the classes back.
    assert_eq!(
        Record::decode(&record).unwrap().body,
        RecordBody::DtcSnapshot(snapshot)
    );
}

#[test]
fn dtc_class_absent_in_old_agent_bytes_decodes_as_none() {
    // Every DTC event of the frozen v1.0 batch decodes with class None.
    let bytes: Vec<u8> = (0..GOLDEN_V1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GOLDEN_V1[i..i + 2], 16).unwrap())
        .collect();
    let mut events = 0;
    for r in Uplink::decode(&bytes).unwrap().records {
        match r.body {
            RecordBody::DtcAppeared(e) | RecordBody::DtcCleared(e) => {
                assert_eq!(e.class, None);
                events += 1;
            }
            RecordBody::DtcSnapshot(s) => {
                assert!(s.active.iter().all(|e| e.class.is_none()));
                events += s.active.len();
            }
            _ => {}
        }
    }
    assert_eq!(events, 3);
}

/// A v1.1 batch with classes: a pending OBD code appearing, then a snapshot where it is
/// confirmed and permanent, and a class code 9 from a still newer agent.
/// Never edit this to make a test pass (see [`GOLDEN_V1`]).
const GOLDEN_V1_1_DTC: &str = concat!(
    // version, VIN, 2 records; seq +1, t, tag 3, 8 bytes: OBD P0420, info, ECU 0x7E8,
    // Some(pending)
    "013147314a43353434345237323532333637020180b083c59868030800a00800e80f0101",
    // seq +1, t +500 ms, tag 5, 27 bytes: 3 events in v1.0 shape, MIL off, then 3 classes:
    // Some(confirmed), Some(permanent), Some(other 9)
    "01e807051b0300a00800e80f00a00800e80f00f10200e80f0003010001020109",
);

fn golden_v1_1_dtc() -> Uplink {
    Uplink {
        vin: vin(),
        records: vec![
            Record {
                seq: 1,
                at: Timestamp::from_millis(1_790_000_000_000),
                body: RecordBody::DtcAppeared(classed(0x0420, 0x7E8, Some(DtcClass::Pending))),
            },
            Record {
                seq: 2,
                at: Timestamp::from_millis(1_790_000_000_500),
                body: RecordBody::DtcSnapshot(DtcSnapshot {
                    active: vec![
                        classed(0x0420, 0x7E8, Some(DtcClass::Confirmed)),
                        classed(0x0420, 0x7E8, Some(DtcClass::Permanent)),
                        classed(0x0171, 0x7E8, Some(DtcClass::Other(9))),
                    ],
                    mil: false,
                }),
            },
        ],
    }
}

#[test]
fn frozen_v1_1_dtc_class_bytes_decode_forever() {
    let hex: String = golden_v1_1_dtc()
        .encode()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, GOLDEN_V1_1_DTC);
    let bytes: Vec<u8> = (0..GOLDEN_V1_1_DTC.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GOLDEN_V1_1_DTC[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(Uplink::decode(&bytes).unwrap(), golden_v1_1_dtc());
}

#[test]
fn snapshot_with_a_wrong_number_of_classes_is_refused() {
    let record = Record {
        seq: 1,
        at: Timestamp::from_secs(1),
        body: RecordBody::DtcSnapshot(DtcSnapshot {
            active: vec![classed(0x0420, 0x7E8, Some(DtcClass::Confirmed))],
            mil: false,
        }),
    }
    .encode()
    .unwrap();
    // Declare two classes for the one fault: the trailing list `1, Some(confirmed)` becomes
    // `2, Some(confirmed), None`.
    let (_, mut body) = body_of(&record);
    let head = &record[..record.len() - body.len() - 1];
    let n = body.len();
    assert_eq!(body[n - 3..], [1, 0x01, 0x00]);
    body[n - 3] = 2;
    body.push(0x00);
    let mut bad = head.to_vec();
    bad.push(body.len() as u8);
    bad.extend_from_slice(&body);
    let err = Record::decode(&bad).unwrap_err().to_string();
    assert!(err.contains("2 listed for 1 faults"), "{err}");
}

/// v1.2's owner change (downlink tag 6): frozen bytes, a round trip, and an agent that does
/// not know the tag (any tag it has no arm for decodes as `Unknown`, its id kept) reads the
/// rest of the envelope as before.
#[test]
fn owner_changed_downlink_is_tag_6_and_an_old_agent_skips_it() {
    let env = Downlink {
        vin: vin(),
        messages: vec![
            DownlinkMessage {
                id: 41,
                at: Timestamp::from_secs(7),
                body: DownlinkBody::OwnerChanged(OwnerChanged {
                    since: Timestamp::from_millis(1_800_000_000_000),
                }),
            },
            DownlinkMessage {
                id: 42,
                at: Timestamp::from_secs(8),
                body: DownlinkBody::BookingConfirmed(BookingConfirmed {
                    prompt: "p".into(),
                    item: None,
                    partner: "d".into(),
                    appointment: Timestamp::from_secs(9),
                    location: "x".into(),
                }),
            },
        ],
    };
    assert_eq!(env.messages[0].body.tag(), 6);
    let bytes = env.encode().unwrap();
    assert_eq!(Downlink::decode(&bytes).unwrap(), env);
    // The owner change's item: tag 6, then its length and the postcard body (a varint ms).
    let body = postcard::to_allocvec(&1_800_000_000_000u64).unwrap();
    let mut item = vec![6u8, u8::try_from(body.len()).unwrap()];
    item.extend_from_slice(&body);
    let at = bytes
        .windows(item.len())
        .position(|w| w == item.as_slice())
        .expect("the owner change's tag, length and body in the envelope");
    // An agent built before tag 6: the same bytes with a tag it has no arm for.
    let mut old = bytes.clone();
    old[at] = 99;
    let got = Downlink::decode(&old).unwrap();
    assert_eq!(got.messages[0].id, 41);
    assert!(matches!(
        got.messages[0].body,
        DownlinkBody::Unknown { tag: 99, .. }
    ));
    assert_eq!(got.messages[1], env.messages[1]);
}

// v1.2: the vehicle wipe (downlink tag 5) and its confirmation (record tag 10).

/// What a v1.1 build knows: everything up to these, so the new kinds are `Unknown` to it.
/// Decoding the new kinds' bytes through the frame alone shows what an old side sees.
fn as_old_side_sees(tag: u32, body: &[u8]) -> RecordBody {
    RecordBody::Unknown {
        tag,
        bytes: body.to_vec(),
    }
}

const GOLDEN_V1_2_WIPE_CONFIRMED: &str = "0101c0ca8fc598680a070780d8c1a28c34";
const GOLDEN_V1_2_VEHICLE_WIPE: &str =
    "013147314a43353434345237323532333637010780d8c1a28c34050680d8c1a28c34";

fn wipe_confirmed() -> Record {
    Record {
        seq: 1,
        at: Timestamp::from_millis(1_790_000_100_000),
        body: RecordBody::WipeConfirmed(WipeConfirmed {
            downlink: 7,
            erased_at: Timestamp::from_millis(1_790_000_000_000),
        }),
    }
}

fn vehicle_wipe() -> Downlink {
    Downlink {
        vin: vin(),
        messages: vec![DownlinkMessage {
            id: 7,
            at: Timestamp::from_millis(1_790_000_000_000),
            body: DownlinkBody::VehicleWipe(VehicleWipe {
                erased_at: Timestamp::from_millis(1_790_000_000_000),
            }),
        }],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn frozen_v1_2_wipe_bytes_decode_forever() {
    let r = wipe_confirmed().encode().unwrap();
    assert_eq!(hex(&r), GOLDEN_V1_2_WIPE_CONFIRMED);
    assert_eq!(
        Record::decode(&unhex(GOLDEN_V1_2_WIPE_CONFIRMED)).unwrap(),
        wipe_confirmed()
    );
    let d = vehicle_wipe().encode().unwrap();
    assert_eq!(hex(&d), GOLDEN_V1_2_VEHICLE_WIPE);
    assert_eq!(
        Downlink::decode(&unhex(GOLDEN_V1_2_VEHICLE_WIPE)).unwrap(),
        vehicle_wipe()
    );
    assert_eq!(wipe_confirmed().body.tag(), 10);
    assert_eq!(vehicle_wipe().messages[0].body.tag(), 5);
}

#[test]
fn wipe_confirmed_reaches_an_old_cloud_as_unknown_with_its_seq() {
    // An old cloud decodes tag 10 through the frame alone: the body it cannot read is
    // carried as bytes, the seq and time still apply (the frame is the same as any kind's).
    let r = wipe_confirmed();
    let (tag, body) = body_of(&r.encode().unwrap());
    assert_eq!(tag, 10);
    // The same bytes sent by a newer agent as an unknown kind (a tag this build has not
    // given) decode around it: the frame is what an old cloud relies on.
    let old = Uplink {
        vin: vin(),
        records: vec![
            Record {
                seq: 5,
                at: r.at,
                body: as_old_side_sees(TYRE_TAG, &body),
            },
            Record {
                seq: 6,
                at: r.at,
                body: odo(10),
            },
        ],
    };
    let got = Uplink::decode(&old.encode().unwrap()).unwrap();
    assert_eq!(got, old);
    // And this build reads the body it knows, with fields appended later ignored.
    let mut longer = body.clone();
    longer.extend_from_slice(&[0x05, 0x01]);
    let w: WipeConfirmed = postcard::take_from_bytes(&longer).unwrap().0;
    assert_eq!(RecordBody::WipeConfirmed(w), r.body);
}

#[test]
fn vehicle_wipe_downlink_next_to_a_kind_from_a_newer_cloud() {
    // An old agent sees tag 5 as Unknown (as this build sees 77) and records its id; this
    // build decodes it and still skips a newer kind beside it.
    let mut env = vehicle_wipe();
    env.messages.push(DownlinkMessage {
        id: 8,
        at: Timestamp::from_secs(6),
        body: DownlinkBody::Unknown {
            tag: 77,
            bytes: vec![9],
        },
    });
    let got = Downlink::decode(&env.encode().unwrap()).unwrap();
    assert_eq!(got, env);
    assert_eq!(got.messages[0].body.tag(), 5);
}

/// v1.3's clock record (uplink tag 11): frozen bytes, and an old cloud's view of it.
const GOLDEN_V1_3_CLOCK_UNTRUSTED: &str = "0103d00f0b08e80780d8c1a28c34";

fn clock_untrusted() -> Record {
    Record {
        seq: 3,
        at: Timestamp::from_millis(1_000),
        body: RecordBody::ClockUntrusted(ClockUntrusted {
            observed: Timestamp::from_millis(1_000),
            trusted: Timestamp::from_millis(1_790_000_000_000),
        }),
    }
}

#[test]
fn frozen_v1_3_clock_untrusted_bytes_decode_forever() {
    let r = clock_untrusted().encode().unwrap();
    assert_eq!(hex(&r), GOLDEN_V1_3_CLOCK_UNTRUSTED);
    assert_eq!(
        Record::decode(&unhex(GOLDEN_V1_3_CLOCK_UNTRUSTED)).unwrap(),
        clock_untrusted()
    );
    assert_eq!(clock_untrusted().body.tag(), 11);
    assert_eq!(clock_untrusted().body.kind_name(), "clock_untrusted");
}

#[test]
fn clock_untrusted_reaches_an_old_cloud_as_unknown_with_its_seq() {
    // A v1.2 cloud knows tags up to 10: it reads tag 11 through the frame alone, as Unknown
    // with its seq and time, and the records around it as usual.
    let r = clock_untrusted();
    let (tag, body) = body_of(&r.encode().unwrap());
    assert_eq!(tag, 11);
    let old = Uplink {
        vin: vin(),
        records: vec![
            Record {
                seq: 3,
                at: r.at,
                body: as_old_side_sees(TYRE_TAG, &body),
            },
            Record {
                seq: 4,
                at: r.at,
                body: odo(10),
            },
        ],
    };
    assert_eq!(Uplink::decode(&old.encode().unwrap()).unwrap(), old);
    // This build reads the body, with fields a later version appends ignored.
    let mut longer = body.clone();
    longer.extend_from_slice(&[0x05, 0x01]);
    let c: ClockUntrusted = postcard::take_from_bytes(&longer).unwrap().0;
    assert_eq!(RecordBody::ClockUntrusted(c), r.body);
}

// v1.4: a service case's progress (downlink tag 7) and the driver's answer (record tag 12).

const GOLDEN_V1_4_SERVICE_PROGRESS: &str = "013147314a43353434345237323532333637010c80d8c1a28c34072db51f05503033303001020380d8c1a28c340c4465616c6572204e6f72746801064c69205765690180b59da48c34";
const GOLDEN_V1_4_SERVICE_ANSWER: &str = "0109c0ca8fc598680c03b51f01";

fn service_progress() -> Downlink {
    Downlink {
        vin: vin(),
        messages: vec![DownlinkMessage {
            id: 12,
            at: Timestamp::from_millis(1_790_000_000_000),
            body: DownlinkBody::ServiceProgress(ServiceProgress {
                alert_id: 4_021,
                subject: "P0300".into(),
                critical: true,
                stage: ServiceStage::Dispatched,
                step: 3,
                reached_at: Timestamp::from_millis(1_790_000_000_000),
                partner: "Dealer North".into(),
                advisor: Some("Li Wei".into()),
                eta: Some(Timestamp::from_millis(1_790_003_600_000)),
            }),
        }],
    }
}

fn service_answer() -> Record {
    Record {
        seq: 9,
        at: Timestamp::from_millis(1_790_000_100_000),
        body: RecordBody::ServiceAnswer(ServiceAnswer {
            alert_id: 4_021,
            answer: DriverAnswer::Cancel,
        }),
    }
}

#[test]
fn frozen_v1_4_service_bytes_decode_forever() {
    let d = service_progress().encode().unwrap();
    assert_eq!(hex(&d), GOLDEN_V1_4_SERVICE_PROGRESS);
    assert_eq!(
        Downlink::decode(&unhex(GOLDEN_V1_4_SERVICE_PROGRESS)).unwrap(),
        service_progress()
    );
    let r = service_answer().encode().unwrap();
    assert_eq!(hex(&r), GOLDEN_V1_4_SERVICE_ANSWER);
    assert_eq!(
        Record::decode(&unhex(GOLDEN_V1_4_SERVICE_ANSWER)).unwrap(),
        service_answer()
    );
    assert_eq!(service_progress().messages[0].body.tag(), 7);
    assert_eq!(service_answer().body.tag(), 12);
    assert_eq!(service_answer().body.kind_name(), "service_answer");
}

#[test]
fn service_progress_reaches_an_old_agent_as_unknown_with_its_id() {
    // A v1.3 agent knows downlink tags up to 6: tag 7 is one it has no arm for, so it decodes
    // as Unknown with the message id kept (the agent marks the id applied) and the messages
    // around it as usual. Shown here with a tag this build has not given either.
    let mut env = service_progress();
    env.messages.push(DownlinkMessage {
        id: 13,
        at: Timestamp::from_secs(8),
        body: DownlinkBody::OwnerChanged(OwnerChanged {
            since: Timestamp::from_millis(1_800_000_000_000),
        }),
    });
    let bytes = env.encode().unwrap();
    let DownlinkBody::ServiceProgress(p) = &env.messages[0].body else {
        unreachable!()
    };
    let body = postcard::to_allocvec(p).unwrap();
    let mut item = vec![7u8, u8::try_from(body.len()).unwrap()];
    item.extend_from_slice(&body);
    let at = bytes
        .windows(item.len())
        .position(|w| w == item.as_slice())
        .expect("the progress's tag, length and body in the envelope");
    let mut old = bytes.clone();
    old[at] = 99;
    let got = Downlink::decode(&old).unwrap();
    assert_eq!(got.messages[0].id, 12);
    assert_eq!(
        got.messages[0].body,
        DownlinkBody::Unknown {
            tag: 99,
            bytes: body.clone()
        }
    );
    assert_eq!(got.messages[1], env.messages[1]);
    // This build reads the body with fields a newer cloud appends ignored.
    let mut longer = body;
    longer.extend_from_slice(&[0x05, 0x01]);
    let read: ServiceProgress = postcard::take_from_bytes(&longer).unwrap().0;
    assert_eq!(&read, p);
}

#[test]
fn service_answer_reaches_an_old_cloud_as_unknown_with_its_seq() {
    // A v1.3 cloud knows record tags up to 11: it reads tag 12 through the frame alone, as
    // Unknown with its seq and time, and the records around it as usual.
    let r = service_answer();
    let (tag, body) = body_of(&r.encode().unwrap());
    assert_eq!(tag, 12);
    let old = Uplink {
        vin: vin(),
        records: vec![
            Record {
                seq: 9,
                at: r.at,
                body: as_old_side_sees(TYRE_TAG, &body),
            },
            Record {
                seq: 10,
                at: r.at,
                body: odo(10),
            },
        ],
    };
    assert_eq!(Uplink::decode(&old.encode().unwrap()).unwrap(), old);
    let mut longer = body;
    longer.extend_from_slice(&[0x05, 0x01]);
    let a: ServiceAnswer = postcard::take_from_bytes(&longer).unwrap().0;
    assert_eq!(RecordBody::ServiceAnswer(a), r.body);
}
