//! The timeline's unit tests: kinds, the cursor's text, the merge and its paging (in memory
//! and over a real store), the readings' downsampling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

use rapport_shared::{Odometer, OdometerReading, Record, SignalSource, Vin};

use super::readings::{Point, downsample};
use super::*;
use crate::fleet::store::{FleetStore, TimelineEntry};
use crate::store::Store;
use crate::store::sled::{Batch, SledStore};

const T0: u64 = 1_767_225_600_000;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

#[test]
fn kinds_read_and_print_their_api_names() {
    for k in Kind::ALL {
        assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        assert_eq!(k.to_string(), k.as_str());
    }
    let e = "heartbeat".parse::<Kind>().unwrap_err();
    assert!(e.contains("\"heartbeat\" is not a timeline kind"), "{e}");
    assert!(e.contains("odometer, engine_hours"), "{e}");
    assert!(Kind::Odometer.is_reading() && Kind::EngineHours.is_reading());
    assert!(!Kind::Prompt.is_reading() && !Kind::Alert.is_reading());
    assert_eq!(Kind::ALL.iter().filter(|k| k.is_car()).count(), 9);
}

#[test]
fn a_kind_set_keeps_its_kinds_and_empty_keeps_all() {
    let all = KindSet::of([]);
    assert_eq!(all, KindSet::ALL);
    assert!(Kind::ALL.iter().all(|k| all.has(*k)));
    assert!(all.any_car() && all.any_cloud());
    let faults = KindSet::of([Kind::DtcAppeared, Kind::DtcCleared]);
    assert!(faults.has(Kind::DtcAppeared) && !faults.has(Kind::Odometer));
    assert!(faults.any_car() && !faults.any_cloud());
    let alerts = KindSet::of([Kind::Alert]);
    assert!(!alerts.any_car() && alerts.any_cloud());
}

#[test]
fn the_cursor_reads_back_what_it_printed_and_refuses_anything_else() {
    let key = {
        let mut k = T0.to_be_bytes().to_vec();
        k.extend_from_slice(&42u64.to_be_bytes());
        k
    };
    for c in [
        Cursor {
            records: Bound::Below(2417),
            entries: Bound::Below(key.clone()),
        },
        Cursor {
            records: Bound::Done,
            entries: Bound::Below(key.just_above()),
        },
        Cursor {
            records: Bound::Below(1),
            entries: Bound::Done,
        },
        Cursor {
            records: Bound::Below(9),
            entries: Bound::Below(key[..12].to_vec()),
        },
        Cursor {
            records: Bound::Below(9),
            entries: Bound::Newest,
        },
    ] {
        let text = c.to_string();
        assert_eq!(text.parse::<Cursor>(), Ok(c), "{text}");
    }
    assert_eq!(
        Cursor {
            records: Bound::Below(7),
            entries: Bound::Done
        }
        .to_string(),
        "7.-"
    );
    for bad in ["", "7", "x.-", "-.zz", "-.00", "7.0011", "-1.-", "7.-.-"] {
        let e = bad.parse::<Cursor>().unwrap_err();
        assert!(e.contains("is not a timeline cursor"), "{bad}: {e}");
    }
}

/// Plain test items never fold.
impl Absorb for String {
    fn absorbs(&self, _: &Self) -> bool {
        false
    }

    fn absorb(&mut self, _: Self) {}
}

/// A log in memory, newest first: (position, time, kept?).
fn log<P: Clone>(items: &[(P, u64, bool)]) -> Vec<Result<Scanned<P, String>, Infallible>> {
    items
        .iter()
        .map(|(p, at, keep)| {
            Ok(Scanned {
                position: p.clone(),
                at: t(*at),
                item: keep.then(|| format!("{}", at)),
            })
        })
        .collect()
}

fn key(n: u8) -> Vec<u8> {
    vec![n]
}

/// Pages through both logs with `limit` and `budget`, following each cursor, until the last.
fn all_pages(
    car: &[(u64, u64, bool)],
    cloud: &[(Vec<u8>, u64, bool)],
    limit: usize,
    budget: usize,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut from = Cursor::default();
    for _ in 0..1000 {
        let below_car = |p: &u64| match &from.records {
            Bound::Newest => true,
            Bound::Below(b) => p < b,
            Bound::Done => false,
        };
        let below_cloud = |p: &Vec<u8>| match &from.entries {
            Bound::Newest => true,
            Bound::Below(b) => p < b,
            Bound::Done => false,
        };
        let c: Vec<_> = car.iter().filter(|i| below_car(&i.0)).cloned().collect();
        let f: Vec<_> = cloud
            .iter()
            .filter(|i| below_cloud(&i.0))
            .cloned()
            .collect();
        let page = merge(
            log(&c).into_iter(),
            log(&f).into_iter(),
            from.clone(),
            limit,
            budget,
        )
        .unwrap();
        pages.push(page.entries);
        match page.next {
            Some(next) => from = next,
            None => return pages,
        }
    }
    panic!("no last page");
}

#[test]
fn the_merge_goes_newest_first_by_time_and_answers_oldest_first() {
    // Records at 10, 20, 30; entries at 15, 30 (same time as a record: the record is newer).
    let car = [(3, 30, true), (2, 20, true), (1, 10, true)];
    let cloud = [(key(2), 30, true), (key(1), 15, true)];
    let page = merge(
        log(&car).into_iter(),
        log(&cloud).into_iter(),
        Cursor::default(),
        10,
        100,
    )
    .unwrap();
    assert_eq!(page.entries, ["10", "15", "20", "30", "30"]);
    assert_eq!(page.next, None);
    // The newest 2: the page holds the two of time 30, the next starts below both.
    let page = merge(
        log(&car).into_iter(),
        log(&cloud).into_iter(),
        Cursor::default(),
        2,
        100,
    )
    .unwrap();
    assert_eq!(page.entries, ["30", "30"]);
    assert_eq!(
        page.next,
        // Each log stands just above its next entry (record 2, entry 1), looked at already.
        Some(Cursor {
            records: Bound::Below(3),
            entries: Bound::Below(key(1).just_above()),
        })
    );
}

#[test]
fn paging_visits_every_kept_entry_once_whatever_the_limit_and_budget() {
    // 40 records (every third filtered out) and 12 entries (every fourth filtered out).
    let car: Vec<(u64, u64, bool)> = (1..=40u64).rev().map(|s| (s, s * 10, s % 3 != 0)).collect();
    let cloud: Vec<(Vec<u8>, u64, bool)> = (1..=12u8)
        .rev()
        .map(|n| (key(n), u64::from(n) * 33, n % 4 != 0))
        .collect();
    let expected: Vec<String> = {
        let mut all: Vec<(u64, u8, String)> = car
            .iter()
            .filter(|i| i.2)
            .map(|i| (i.1, 1, i.1.to_string()))
            .chain(
                cloud
                    .iter()
                    .filter(|i| i.2)
                    .map(|i| (i.1, 0, i.1.to_string())),
            )
            .collect();
        all.sort();
        all.into_iter().map(|i| i.2).collect()
    };
    for limit in [1, 2, 3, 7, 100] {
        for budget in [1, 2, 5, 1000] {
            let pages = all_pages(&car, &cloud, limit, budget);
            assert!(pages.iter().all(|p| p.len() <= limit));
            // Pages go back in time; each is oldest first.
            let seen: Vec<String> = pages.into_iter().rev().flatten().collect();
            assert_eq!(seen.len(), expected.len(), "limit {limit} budget {budget}");
            let numeric = |v: &Vec<String>| {
                v.iter()
                    .map(|s| s.parse::<u64>().unwrap())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                numeric(&seen),
                numeric(&expected),
                "limit {limit} budget {budget}"
            );
        }
    }
}

#[test]
fn a_page_stops_on_its_budget_and_goes_on_from_there() {
    // 10 records, only the oldest kept: a budget of 4 answers nothing, with a cursor.
    let car: Vec<(u64, u64, bool)> = (1..=10u64).rev().map(|s| (s, s, s == 1)).collect();
    let page = merge(
        log(&car).into_iter(),
        std::iter::empty::<Result<Scanned<Vec<u8>, String>, Infallible>>(),
        Cursor::default(),
        5,
        4,
    )
    .unwrap();
    assert!(page.entries.is_empty());
    // Each log has its own budget: the empty one is known to be read to the end.
    assert_eq!(
        page.next,
        Some(Cursor {
            records: Bound::Below(7),
            entries: Bound::Done,
        })
    );
    assert_eq!(page.next.unwrap().to_string(), "7.-");
    assert_eq!(all_pages(&car, &[], 5, 4).concat(), ["1"]);
}

fn odometer(seq: u64, at: Timestamp, km: u64) -> Record {
    Record {
        seq,
        at,
        body: RecordBody::Odometer(OdometerReading {
            odometer: Odometer::from_km(km),
            source: SignalSource::Obd,
        }),
    }
}

/// One vehicle in a real sled store (kept while the directory lives): its `records` and a
/// registration entry of the cloud at each `(at, detail)`.
fn stored(
    records: impl IntoIterator<Item = Record>,
    entries: impl IntoIterator<Item = (Timestamp, String)>,
) -> (tempfile::TempDir, Store, Vin) {
    let dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(dir.path()).unwrap();
    let fleet = FleetStore::new(sled.tree().clone(), sled.db().clone());
    let tree = sled.tree().clone();
    let store = Store::new(sled);
    let vin: Vin = "WVWZZZ1JZXW000001".parse().unwrap();
    let mut batch = Batch::default();
    for r in records {
        batch.insert(&crate::keys::record(&vin, r.seq), r.encode().unwrap());
    }
    for (at, detail) in entries {
        let entry = TimelineEntry::Registered { detail };
        fleet.put_timeline(&mut batch, &vin, at, &entry).unwrap();
    }
    tree.apply_batch(batch).unwrap();
    (dir, store, vin)
}

/// The same merge over a real store: records by seq, entries by key, a kind filter, pages
/// that meet exactly.
#[test]
fn read_page_pages_a_stored_vehicle_with_a_kind_filter() {
    let records = (1..=30u64).map(|seq| odometer(seq, t(seq * 1000), seq));
    let entries = (0..3u64).map(|i| (t(i * 10_000 + 500), format!("entry {i}")));
    let (_dir, store, vin) = stored(records, entries);

    let page = |kinds: KindSet, from: Cursor, limit: usize| {
        read_page(&store, &vin, kinds, false, from, limit).unwrap()
    };
    let first = page(KindSet::ALL, Cursor::default(), 10);
    let ats: Vec<u64> = first
        .entries
        .iter()
        .map(|e| e.at().as_millis() - T0)
        .collect();
    assert_eq!(
        ats,
        [
            21_000, 22_000, 23_000, 24_000, 25_000, 26_000, 27_000, 28_000, 29_000, 30_000
        ]
    );
    let mut all = first.entries.clone();
    let mut next = first.next;
    while let Some(c) = next {
        let p = page(KindSet::ALL, c.clone(), 10);
        assert!(!p.entries.is_empty(), "an empty page before the end at {c}");
        let mut older = p.entries;
        older.extend(all);
        all = older;
        next = p.next;
    }
    assert_eq!(all.len(), 33);
    assert!(all.windows(2).all(|w| w[0].at() <= w[1].at()));

    // The cloud's entries only: the record log is not read at all.
    let only = page(KindSet::of([Kind::Registered]), Cursor::default(), 10);
    assert_eq!(only.entries.len(), 3);
    assert!(only.entries.iter().all(|e| matches!(e, Entry::Cloud(_))));
    assert_eq!(only.next, None);
    // Readings only, 2 a page: the cursor text goes through the API and back.
    let odo = page(KindSet::of([Kind::Odometer]), Cursor::default(), 2);
    assert_eq!(odo.entries.len(), 2);
    let text = odo.next.unwrap().to_string();
    assert_eq!(text, "29.-");
    let more = page(KindSet::of([Kind::Odometer]), text.parse().unwrap(), 2);
    let seqs: Vec<u64> = more
        .entries
        .iter()
        .map(|e| match e {
            Entry::Car(r) => r.seq,
            Entry::Cloud(_) | Entry::Readings(_) => 0,
        })
        .collect();
    assert_eq!(seqs, [27, 28]);
}

fn points(n: u64, step: u64) -> Vec<Point> {
    (0..n).map(|i| (t(i * step), i as f64)).collect()
}

#[test]
fn downsampling_keeps_few_points_as_they_are() {
    let p = points(5, 1000);
    assert_eq!(downsample(&p, 5), p);
    assert_eq!(downsample(&p, 200), p);
    assert!(downsample(&[], 10).is_empty());
}

#[test]
fn downsampling_bounds_the_points_and_keeps_the_ends() {
    let p = points(2500, 60_000);
    for max in [2, 3, 10, 200, 2000] {
        let d = downsample(&p, max);
        assert!(d.len() <= max && d.len() >= 2, "{max}: {}", d.len());
        assert_eq!(d.first(), p.first(), "{max}");
        assert_eq!(d.last(), p.last(), "{max}");
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "{max}: oldest first");
    }
    // Evenly spread readings fill every bucket.
    assert_eq!(downsample(&p, 200).len(), 200);
}

#[test]
fn downsampling_is_by_time_so_a_pause_stays_flat() {
    // 1000 readings in the first hour, one a day later: the late one is the last point and
    // the hour is squeezed into the first bucket or two, not spread over the chart.
    let mut p = points(1000, 3_600);
    p.push((t(86_400_000), 1000.0));
    let d = downsample(&p, 10);
    assert_eq!(d.last(), p.last());
    assert!(d.len() <= 3, "{d:?}");
    // All at the same moment: the first and the last.
    let same: Vec<Point> = (0..50).map(|i| (t(0), f64::from(i))).collect();
    assert_eq!(downsample(&same, 10), vec![same[0], same[49]]);
}

fn engine_hours(seq: u64, at: Timestamp) -> Record {
    Record {
        seq,
        at,
        body: RecordBody::EngineHours(rapport_shared::EngineHoursReading {
            hours: rapport_shared::EngineHours::from_secs(seq * 60),
            source: SignalSource::Obd,
        }),
    }
}

fn prompt_record(seq: u64, at: Timestamp) -> Record {
    Record {
        seq,
        at,
        body: RecordBody::Prompt(rapport_shared::PromptEvent {
            prompt: "maintenance:oil:20000".into(),
            kind: rapport_shared::PromptKind::Maintenance,
            subject: "oil".into(),
            action: rapport_shared::PromptAction::Booked,
            critical: false,
        }),
    }
}

/// What a folded page holds, oldest first: `R<count>` a run, `c<seq>` a record, `e` an entry.
fn shape(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Entry::Readings(run) => format!("R{}", run.count()),
            Entry::Car(r) => format!("c{}", r.seq),
            Entry::Cloud(_) => "e".into(),
        })
        .collect()
}

/// Folding: each run of readings is one entry however long, a lone reading stays, a cloud
/// entry or an event breaks a run, a run goes on past `limit` to its end.
#[test]
fn a_folded_page_shows_events_with_the_runs_of_readings_between_them() {
    // seq 1..=40 readings (every 10th engine hours) but 21 a prompt and 31 alone between
    // prompts 30 and 32; a cloud entry between 10 and 11.
    let records = (1..=40u64).map(|seq| {
        let at = t(seq * 1000);
        match seq {
            21 | 30 | 32 => prompt_record(seq, at),
            s if s % 10 == 5 => engine_hours(s, at),
            s => odometer(s, at, 100 + s),
        }
    });
    let entries = [(t(10_500), "between 10 and 11".to_owned())];
    let (_dir, store, vin) = stored(records, entries);
    let page = |from: Cursor, limit: usize| {
        read_page(&store, &vin, KindSet::ALL, true, from, limit).unwrap()
    };

    let all = page(Cursor::default(), 100);
    assert_eq!(
        shape(&all.entries),
        ["R10", "e", "R10", "c21", "R8", "c30", "c31", "c32", "R8"]
    );
    assert_eq!(all.next, None);
    let Entry::Readings(run) = &all.entries[0] else {
        panic!("a run first");
    };
    assert_eq!((run.oldest_seq, run.newest.seq), (1, 10));
    assert_eq!((run.odometer, run.engine_hours), (9, 1));
    assert_eq!(run.odometer_m, Some((101_000, 110_000)));
    assert_eq!((run.oldest_at, run.newest.at), (t(1000), t(10_000)));

    // Two a page: the newest run goes to its end; pages meet.
    let first = page(Cursor::default(), 2);
    assert_eq!(shape(&first.entries), ["c32", "R8"]);
    let second = page(first.next.clone().unwrap(), 2);
    assert_eq!(shape(&second.entries), ["c30", "c31"]);
    let third = page(second.next.unwrap(), 3);
    assert_eq!(shape(&third.entries), ["R10", "c21", "R8"]);
    let fourth = page(third.next.unwrap(), 3);
    assert_eq!(shape(&fourth.entries), ["R10", "e"]);
    assert_eq!(fourth.next, None);

    // Not folded, the same store lists every record.
    let plain = read_page(&store, &vin, KindSet::ALL, false, Cursor::default(), 100).unwrap();
    assert_eq!(plain.entries.len(), 41);
}

#[test]
fn a_run_cut_by_the_budget_goes_on_in_the_next_page() {
    // 10 readings and the budget of 4 a log: runs of 4, 4 and 2 over three pages.
    let car: Vec<Result<Scanned<u64, Entry>, Infallible>> = (1..=10u64)
        .rev()
        .map(|s| {
            Ok(Scanned {
                position: s,
                at: t(s),
                item: Run::of(odometer(s, t(s), s)).map(Entry::Readings),
            })
        })
        .collect();
    let page = merge(
        car.into_iter(),
        std::iter::empty::<Result<Scanned<Vec<u8>, Entry>, Infallible>>(),
        Cursor::default(),
        100,
        4,
    )
    .unwrap();
    assert_eq!(shape(&page.entries), ["R4"]);
    assert_eq!(page.next.unwrap().to_string(), "7.-");
}
