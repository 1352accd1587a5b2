//! Every message survives encode → decode unchanged; arbitrary and mutated bytes never panic
//! the decoders, and hostile framing is refused with an error that says what and where.

mod common;

use proptest::prelude::*;
use rapport_shared::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn uplink_round_trips(env in common::uplink()) {
        let bytes = env.encode().unwrap();
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(Uplink::decode(&bytes).unwrap(), env);
    }

    #[test]
    fn downlink_round_trips(env in common::downlink()) {
        let bytes = env.encode().unwrap();
        prop_assert_eq!(Downlink::decode(&bytes).unwrap(), env);
    }

    #[test]
    fn single_record_round_trips(r in common::records(2)) {
        for r in r {
            prop_assert_eq!(Record::decode(&r.encode().unwrap()).unwrap(), r);
        }
    }

    #[test]
    fn dtc_code_text_round_trips(d in common::dtc()) {
        let text = d.code().to_string();
        prop_assert_eq!(text.parse::<DtcCode>().unwrap(), d.code());
    }

    #[test]
    fn open_enum_names_round_trip(k in common::prompt_kind()) {
        let json = serde_json::to_string(&k).unwrap();
        if let PromptKind::Other(_) = k {
            prop_assert_eq!(json, "\"other(".to_owned() + &k.code().to_string() + ")\"");
        } else {
            prop_assert_eq!(serde_json::from_str::<PromptKind>(&json).unwrap(), k);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Uplink::decode(&bytes);
        let _ = Downlink::decode(&bytes);
        let _ = Record::decode(&bytes);
        // With a valid version byte and VIN the decoder gets past the header: test deeper too.
        let mut framed = vec![PROTOCOL_VERSION];
        framed.extend_from_slice(b"WP0ZZZ99ZTS392124");
        framed.extend_from_slice(&bytes);
        let _ = Uplink::decode(&framed);
        let _ = Downlink::decode(&framed);
    }

    #[test]
    fn mutated_payloads_never_panic(
        env in common::uplink(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = env.encode().unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let _ = Uplink::decode(&bytes);
        let cut = cut.index(bytes.len() + 1);
        let _ = Uplink::decode(&bytes[..cut]);
    }
}

fn vin() -> Vin {
    "WP0ZZZ99ZTS392124".parse().unwrap()
}

fn header() -> Vec<u8> {
    let mut b = vec![PROTOCOL_VERSION];
    b.extend_from_slice(vin().as_bytes());
    b
}

#[test]
fn hostile_framing_is_refused_with_a_reason() {
    assert_eq!(Uplink::decode(&[]), Err(WireError::Empty));
    assert!(matches!(
        Uplink::decode(&[2, 0, 0]),
        Err(WireError::Version {
            found: 2,
            supported: 1
        })
    ));
    let huge = vec![PROTOCOL_VERSION; MAX_UPLINK_BYTES + 1];
    assert!(matches!(
        Uplink::decode(&huge),
        Err(WireError::TooLarge { .. })
    ));

    // A count of 2^63 records in a 30-byte payload: refused before any allocation.
    let mut b = header();
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    let err = Uplink::decode(&b).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Malformed {
                what: "item count",
                offset: 18,
                ..
            }
        ),
        "{err}"
    );

    // A body length far past the end.
    let mut b = header();
    b.extend_from_slice(&[
        1, /* seq */ 1, /* t */ 0, /* tag */ 1, /* len */ 0xFF, 0x7F, 0, 0,
    ]);
    let err = Uplink::decode(&b).unwrap_err();
    assert!(err.to_string().contains("item body"), "{err}");

    // Sequence delta 0: sequence numbers must increase.
    let mut b = header();
    b.extend_from_slice(&[1, 0, 0, 1, 2, 0, 0]);
    assert!(
        Uplink::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("must increase")
    );

    // A bad VIN in the envelope.
    let mut b = header();
    b[5] = b'I';
    b.push(0);
    assert!(Uplink::decode(&b).unwrap_err().to_string().contains("VIN"));

    // Tag 0 is reserved.
    let mut b = header();
    b.extend_from_slice(&[1, 1, 0, 0, 0]);
    assert!(
        Uplink::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("reserved")
    );

    // An odometer body with a source that does not exist names the record and its kind.
    let mut b = header();
    b.extend_from_slice(&[1, 1, 0, 1, 2, /* source */ 9, /* delta */ 0]);
    let err = Uplink::decode(&b).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Item {
                index: 0,
                kind: "odometer",
                ..
            }
        ),
        "{err}"
    );

    // A J1939 DTC with an SPN over 19 bits inside a body.
    let mut b = header();
    let body = [2u8, 0xFF, 0xFF, 0xFF, 0x0F, 1, 1, 0, 0];
    b.extend_from_slice(&[1, 1, 0, 3, body.len() as u8]);
    b.extend_from_slice(&body);
    let err = Uplink::decode(&b).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Item {
                kind: "dtc_appeared",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn encoder_refuses_what_the_decoder_would() {
    let at = Timestamp::from_secs(1);
    let body = RecordBody::Consent(ConsentChange {
        consent: ConsentKind::PartnerSharing,
        granted: true,
    });
    let out_of_order = Uplink {
        vin: vin(),
        records: vec![
            Record {
                seq: 5,
                at,
                body: body.clone(),
            },
            Record {
                seq: 5,
                at,
                body: body.clone(),
            },
        ],
    };
    assert!(matches!(out_of_order.encode(), Err(WireError::Encode(_))));
    let seq0 = Uplink {
        vin: vin(),
        records: vec![Record { seq: 0, at, body }],
    };
    assert!(seq0.encode().is_err(), "sequence numbers start at 1");
    let fake_unknown = Uplink {
        vin: vin(),
        records: vec![Record {
            seq: 1,
            at,
            body: RecordBody::Unknown {
                tag: 1,
                bytes: vec![],
            },
        }],
    };
    assert!(
        fake_unknown.encode().is_err(),
        "a known tag cannot travel as unknown"
    );
}

#[test]
fn downlink_hostile_bytes() {
    let mut b = header();
    b.extend_from_slice(&[
        1, /* id */ 7, /* at */ 0, /* tag */ 1, /* len */ 3, 0xFF, 0xFF, 0xFF,
    ]);
    let err = Downlink::decode(&b).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Item {
                index: 0,
                kind: "campaign",
                ..
            }
        ),
        "{err}"
    );
    let mut b = header();
    b.extend_from_slice(&[0xFF, 0x01]); // 255 messages in 0 bytes
    assert!(Downlink::decode(&b).is_err());
}
