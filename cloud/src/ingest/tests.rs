#![allow(clippy::unwrap_used)]

use rapport_shared::{
    Odometer, OdometerReading, Record, RecordBody, SignalSource, Timestamp, Uplink, Vin, topic,
};

use super::*;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn vin(s: &str) -> Vin {
    s.parse().unwrap()
}

fn batch(vin: Vin, seqs: impl IntoIterator<Item = u64>) -> Uplink {
    Uplink {
        vin,
        records: seqs
            .into_iter()
            .map(|seq| Record {
                seq,
                at: Timestamp::from_millis(1_700_000_000_000 + seq * 1000),
                body: RecordBody::Odometer(OdometerReading {
                    odometer: Odometer::from_meters(seq * 100),
                    source: SignalSource::Obd,
                }),
            })
            .collect(),
    }
}

#[test]
fn a_good_uplink_passes() {
    let v = vin("WP0ZZZ99ZTS392124");
    let bytes = batch(v, 1..=3).encode().unwrap();
    let up = check(&topic::uplink(&v), &bytes, 1000).unwrap();
    assert_eq!(up.records.len(), 3);
}

#[test]
fn every_check_names_its_reason() {
    let v = vin("WP0ZZZ99ZTS392124");
    let other = vin("WVWZZZ1JZXW000001");
    let good = batch(v, 1..=3).encode().unwrap();
    let reason = |topic: &str, payload: &[u8]| check(topic, payload, 1000).unwrap_err().reason;

    // Size first: an oversize payload is not even decoded, whatever its topic.
    assert_eq!(reason("nonsense", &[0; 1001]), RejectReason::Oversize);
    assert_eq!(
        reason("rapport/v1/NOTAVIN/up", &good),
        RejectReason::BadTopic
    );
    assert_eq!(reason(&topic::downlink(&v), &good), RejectReason::BadTopic);
    assert_eq!(
        reason(&topic::uplink(&v), b"garbage"),
        RejectReason::Undecodable
    );
    assert_eq!(reason(&topic::uplink(&v), b""), RejectReason::Undecodable);
    assert_eq!(
        reason(&topic::uplink(&other), &good),
        RejectReason::VinMismatch
    );
    let detail = check(&topic::uplink(&other), &good, 1000)
        .unwrap_err()
        .detail;
    assert!(detail.contains("WP0ZZZ99ZTS392124") && detail.contains("WVWZZZ1JZXW000001"));
}

#[test]
fn duplicates_and_replays_change_nothing() {
    let v = vin("WP0ZZZ99ZTS392124");
    let first = plan(&batch(v, 1..=10), None, NOW);
    assert_eq!(first.stats.applied, 10);
    assert!(first.stats.new_vehicle);
    assert_eq!(first.log.len(), 10);
    let again = plan(&batch(v, 1..=10), Some(first.state.clone()), NOW);
    assert_eq!((again.stats.applied, again.stats.duplicates), (0, 10));
    assert!(!again.changes_anything());
    assert_eq!(again.state, first.state);
    // A batch overlapping the old one applies only what is new.
    let overlap = plan(&batch(v, 8..=12), Some(first.state), NOW);
    assert_eq!((overlap.stats.applied, overlap.stats.duplicates), (2, 3));
    let seqs: Vec<u64> = overlap.log.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![11, 12]);
    // The log holds the records themselves.
    let r = Record::decode(&overlap.log[0].1).unwrap();
    assert_eq!(r.seq, 11);
}

#[test]
fn reordered_batches_end_in_the_same_state() {
    let v = vin("WP0ZZZ99ZTS392124");
    let batches: Vec<Uplink> = (0..5).map(|i| batch(v, i * 10 + 1..=i * 10 + 10)).collect();
    let apply = |order: &[usize]| {
        let mut state = None;
        for &i in order {
            state = Some(plan(&batches[i], state, NOW).state);
        }
        state.unwrap()
    };
    let in_order = apply(&[0, 1, 2, 3, 4]);
    let shuffled = apply(&[3, 0, 4, 2, 1, 3, 0]);
    assert_eq!(in_order, shuffled);
    assert_eq!(in_order.records(), 50);
    assert_eq!(in_order.odometer.unwrap().seq, 50);
    assert_eq!(in_order.applied.gaps(), 0);
}

#[test]
fn unknown_kinds_are_applied_and_kept() {
    let v = vin("WP0ZZZ99ZTS392124");
    let up = Uplink {
        vin: v,
        records: vec![Record {
            seq: 1,
            at: NOW,
            body: RecordBody::Unknown {
                tag: 200,
                bytes: vec![7; 5],
            },
        }],
    };
    let bytes = up.encode().unwrap();
    let checked = check(&topic::uplink(&v), &bytes, 1000).unwrap();
    let p = plan(&checked, None, NOW);
    assert_eq!((p.stats.applied, p.stats.unknown), (1, 1));
    assert_eq!(p.log.len(), 1);
    assert!(matches!(
        Record::decode(&p.log[0].1).unwrap().body,
        RecordBody::Unknown { tag: 200, .. }
    ));
}

#[test]
fn a_record_too_large_for_the_log_is_counted() {
    let v = vin("WP0ZZZ99ZTS392124");
    let up = Uplink {
        vin: v,
        records: vec![
            Record {
                seq: 1,
                at: NOW,
                body: RecordBody::Unknown {
                    tag: 200,
                    bytes: vec![7; rapport_shared::MAX_RECORD_BYTES + 10],
                },
            },
            batch(v, [2]).records.remove(0),
        ],
    };
    let p = plan(&up, None, NOW);
    assert_eq!((p.stats.applied, p.stats.too_large), (2, 1));
    assert_eq!(p.log.len(), 1);
    assert!(p.state.applied.contains(1));
}
