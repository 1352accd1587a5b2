//! Store tests on real sled files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use rapport_shared::v1::uplink::{
    ConsentChange, ConsentKind, DtcSnapshot, EngineHoursReading, Heartbeat, OdometerReading,
    PromptAction, PromptEvent, PromptKind, Record, RecordBody, SignalSource,
};
use rapport_shared::{
    Campaign, CampaignTarget, Dtc, DtcCode, EngineHours, Fmi, MaintenanceItem, ObdCode,
    OccurrenceCount, Odometer, Priority, Severity, Spn, Timestamp, UdsCode, UdsStatus,
};

use super::outbox::Class;
use super::*;
use crate::memory::{
    CampaignRecord, DtcHistory, ItemRecord, LastService, PromptRecord, PromptState, QuietHours,
    ServiceRecord, ServiceSource, Settings, ShowCounts, Stage, VehicleState,
};

// ---------------------------------------------------------------------------------------------
// builders

fn opts(max_outbox: u64) -> StoreOptions {
    StoreOptions {
        max_outbox,
        flush_every_ms: Some(500),
        ..StoreOptions::default()
    }
}

fn open(dir: &Path) -> (Store, Memory) {
    Store::open(dir, opts(1000)).unwrap()
}

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn odo(m: u64) -> RecordBody {
    RecordBody::Odometer(OdometerReading {
        odometer: Odometer::from_meters(m),
        source: SignalSource::Obd,
    })
}

fn hours(s: u64) -> RecordBody {
    RecordBody::EngineHours(EngineHoursReading {
        hours: EngineHours::from_secs(s),
        source: SignalSource::J1939,
    })
}

fn heartbeat() -> RecordBody {
    RecordBody::Heartbeat(Heartbeat {
        agent_version: "0.1.0".into(),
        uptime_s: 1,
        outbox_depth: 0,
        records_dropped: 0,
    })
}

fn snapshot() -> RecordBody {
    RecordBody::DtcSnapshot(DtcSnapshot {
        active: vec![],
        mil: false,
    })
}

fn event(prompt: &str) -> RecordBody {
    RecordBody::Prompt(PromptEvent {
        prompt: prompt.into(),
        kind: PromptKind::Fault,
        subject: "P0300".into(),
        critical: true,
        action: PromptAction::Shown,
    })
}

fn obd(raw: u16) -> DtcCode {
    DtcCode::Obd(ObdCode::new(raw))
}

fn history(code: u16, at: u64) -> DtcHistory {
    DtcHistory {
        dtc: Dtc::Obd(ObdCode::new(code)),
        severity: Severity::Warning,
        ecu: 0x7E8,
        first_seen: t(at),
        last_seen: t(at + 1),
        times_seen: 1,
        active: true,
        cleared_at: None,
    }
}

fn prompt(id: &str, state: PromptState) -> PromptRecord {
    PromptRecord {
        id: id.into(),
        kind: PromptKind::Maintenance,
        subject: "oil".into(),
        critical: false,
        title: "Oil".into(),
        text: "Oil change due".into(),
        created: t(10),
        state,
        first_shown: Some(t(11)),
        times_shown: 2,
        closed_at: None,
    }
}

fn campaign(id: &str) -> CampaignRecord {
    CampaignRecord {
        campaign: Campaign {
            campaign_id: id.into(),
            title: "Spring check".into(),
            text: "20 % off".into(),
            priority: Priority::Normal,
            valid_from: t(0),
            valid_until: t(1_000_000),
            target: CampaignTarget {
                min_odometer: Some(Odometer::from_km(1000)),
                ..CampaignTarget::default()
            },
        },
        received: t(5),
    }
}

fn service(at: u64) -> ServiceRecord {
    ServiceRecord {
        items: vec!["oil".into(), "filter".into()],
        at: t(at),
        odometer: Some(Odometer::from_km(15_000)),
        engine_hours: None,
        source: ServiceSource::Partner("dealer-7".into()),
    }
}

/// A memory with something in every field.
fn populated() -> Memory {
    let mut m = Memory {
        vehicle: VehicleState {
            odometer: Some(Odometer::from_meters(12_345_600)),
            odometer_at: Some(t(99)),
            engine_hours: Some(EngineHours::from_secs(3600 * 400)),
            mil: true,
            first_seen: Some(t(1)),
            first_odometer: Some(Odometer::from_km(12)),
        },
        services: vec![service(100), service(200)],
        settings: Settings {
            engagement_prompts: false,
            partner_sharing: true,
            muted: vec![PromptKind::Milestone, PromptKind::Other(77)],
            quiet_hours: Some(QuietHours {
                start: "22:00".into(),
                end: "07:00".into(),
            }),
        },
        shows: ShowCounts {
            day: 20_000,
            per_kind: BTreeMap::from([(0, 1), (6, 2)]),
        },
        schedule: Some(vec![MaintenanceItem {
            id: "oil".into(),
            every_km: Some(15_000),
            every_months: Some(12),
            every_engine_hours: None,
            first_at_km: None,
            first_at_months: None,
            due_soon_km: Some(1000),
            due_soon_days: Some(30),
        }]),
        applied_downlinks: BTreeSet::from([3, 9, u64::MAX]),
        ..Memory::default()
    };
    m.dtcs.insert(obd(0x0300), history(0x0300, 50));
    let uds = UdsCode::new(0x01_33_1C).unwrap();
    m.dtcs.insert(
        DtcCode::Uds(uds),
        DtcHistory {
            dtc: Dtc::Uds(uds, UdsStatus(0x09)),
            ..history(0x0133, 60)
        },
    );
    let (spn, fmi) = (Spn::new(110).unwrap(), Fmi::new(0).unwrap());
    m.dtcs.insert(
        DtcCode::J1939(spn, fmi),
        DtcHistory {
            dtc: Dtc::J1939(spn, fmi, OccurrenceCount::new(3).unwrap()),
            ..history(0, 70)
        },
    );
    m.items.insert(
        "oil".into(),
        ItemRecord {
            services: 1,
            last: Some(LastService {
                at: t(100),
                odometer: Some(Odometer::from_km(15_000)),
                engine_hours: None,
            }),
            reported: Some((1, Stage::DueSoon)),
        },
    );
    for (id, state) in [
        ("maintenance:oil:1:due_soon", PromptState::Snoozed(t(500))),
        ("fault:P0300:1", PromptState::Shown),
    ] {
        m.prompts.insert(id.into(), prompt(id, state));
    }
    m.campaigns.insert("spring".into(), campaign("spring"));
    let step = rapport_shared::ServiceProgress {
        alert_id: 41,
        subject: "P0300".into(),
        critical: true,
        stage: rapport_shared::ServiceStage::Dispatched,
        step: 3,
        reached_at: t(300),
        partner: "Dealer North".into(),
        advisor: Some("Li Wei".into()),
        eta: Some(t(900)),
    };
    let mut case = crate::memory::ServiceCase::new(step, t(301));
    case.answers
        .push((rapport_shared::DriverAnswer::LeftCar, t(302)));
    m.service_cases.insert(41, case);
    m
}

/// Changes that name everything in `m`.
fn everything(m: &Memory) -> Changes {
    Changes {
        vehicle: true,
        dtcs: m.dtcs.keys().copied().collect(),
        new_services: m.services.len(),
        items: m.items.keys().cloned().collect(),
        prompts: m.prompts.keys().cloned().collect(),
        settings: true,
        campaigns: m.campaigns.keys().cloned().collect(),
        shows: true,
        schedule: true,
        downlinks: m.applied_downlinks.clone(),
        service_cases: m.service_cases.keys().copied().collect(),
        outbox: vec![],
        durable: false,
        wiped_services: false,
    }
}

fn outbox_only(bodies: Vec<RecordBody>) -> Changes {
    Changes {
        outbox: bodies.into_iter().map(|b| (t(1), b)).collect(),
        ..Changes::default()
    }
}

fn all_seqs(store: &Store) -> Vec<u64> {
    store
        .outbox_from(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

/// sled directly, waiting out the file lock a just-dropped `Db` may still hold (sled#1234).
fn raw_db(dir: &Path) -> sled::Db {
    rapport_kit::sled_store::open_dir(dir).unwrap()
}

// ---------------------------------------------------------------------------------------------
// roundtrip and what is written

#[test]
fn a_new_store_is_empty_and_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let (store, memory) = open(dir.path());
    assert_eq!(memory, Memory::default());
    assert_eq!(store.next_seq(), 1);
    assert_eq!(store.outbox_len(), 0);
    drop(store);
    assert_eq!(migrate::version(&raw_db(dir.path())).unwrap(), Some(1));
}

#[test]
fn a_store_open_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, _) = open(dir.path());
    let err = Store::open(dir.path(), opts(10)).unwrap_err();
    assert!(err.to_string().contains("another agent"), "{err}");
}

#[test]
fn populated_memory_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let m = populated();
    {
        let (store, _) = open(dir.path());
        store.commit(&m, &everything(&m)).unwrap();
    }
    let (_, back) = open(dir.path());
    assert_eq!(back, m);
}

#[test]
fn only_what_changes_name_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = populated();
    {
        let (store, _) = open(dir.path());
        store.commit(&m, &everything(&m)).unwrap();
        // Change two things, name one.
        m.vehicle.odometer = Some(Odometer::from_km(99_999));
        m.shows.day += 1;
        let changes = Changes {
            vehicle: true,
            ..Changes::default()
        };
        store.commit(&m, &changes).unwrap();
    }
    let (_, back) = open(dir.path());
    assert_eq!(back.vehicle, m.vehicle);
    assert_eq!(back.shows.day, m.shows.day - 1);
}

#[test]
fn keyed_entities_absent_from_memory_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = populated();
    {
        let (store, _) = open(dir.path());
        store.commit(&m, &everything(&m)).unwrap();
        m.prompts.remove("fault:P0300:1");
        m.campaigns.remove("spring");
        m.dtcs.remove(&obd(0x0300));
        m.items.remove("oil");
        m.applied_downlinks.remove(&3);
        m.schedule = None;
        let changes = Changes {
            prompts: BTreeSet::from(["fault:P0300:1".to_owned()]),
            campaigns: BTreeSet::from(["spring".to_owned()]),
            dtcs: BTreeSet::from([obd(0x0300)]),
            items: BTreeSet::from(["oil".to_owned()]),
            downlinks: BTreeSet::from([3]),
            schedule: true,
            ..Changes::default()
        };
        store.commit(&m, &changes).unwrap();
    }
    let (_, back) = open(dir.path());
    assert_eq!(back, m);
    assert!(!back.prompts.contains_key("fault:P0300:1"));
    assert!(back.prompts.contains_key("maintenance:oil:1:due_soon"));
    assert!(back.campaigns.is_empty());
    assert_eq!(back.schedule, None);
}

#[test]
fn services_append_in_order_across_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Memory::default();
    {
        let (store, _) = open(dir.path());
        for at in [10, 20, 30] {
            m.services.push(service(at));
            let changes = Changes {
                new_services: 1,
                ..Changes::default()
            };
            store.commit(&m, &changes).unwrap();
        }
    }
    let (store, mut back) = open(dir.path());
    assert_eq!(back.services, m.services);
    back.services.push(service(40));
    back.services.push(service(50));
    let two = Changes {
        new_services: 2,
        ..Changes::default()
    };
    store.commit(&back, &two).unwrap();
    drop(store);
    let (_, again) = open(dir.path());
    let ats: Vec<u64> = again.services.iter().map(|s| s.at.as_millis()).collect();
    assert_eq!(ats, vec![10, 20, 30, 40, 50]);
}

#[test]
fn changes_that_do_not_fit_memory_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let m = populated();
    let mut changes = everything(&m);
    changes.new_services = 3; // memory holds 2
    changes.outbox = vec![(t(1), odo(5))];
    let err = store.commit(&m, &changes).unwrap_err();
    assert!(matches!(err, StoreError::InvalidChanges(_)), "{err}");
    assert_eq!(store.next_seq(), 1);
    assert_eq!(store.stats(), StoreStats::default());
    drop(store);
    let (_, back) = open(dir.path());
    assert_eq!(back, Memory::default());
}

#[test]
fn stats_count_keys_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let mut m = Memory::default();
    m.vehicle.odometer = Some(Odometer::from_meters(1000));
    let changes = Changes {
        vehicle: true,
        outbox: vec![(t(7), odo(1000))],
        ..Changes::default()
    };
    store.commit(&m, &changes).unwrap();
    let vehicle = 1 + postcard::to_allocvec(&m.vehicle).unwrap().len();
    let record = Record {
        seq: 1,
        at: t(7),
        body: odo(1000),
    };
    let outbox = 10 + record.encode().unwrap().len();
    let next_seq = keys::NEXT_SEQ.len() + 8;
    let s = store.stats();
    assert_eq!(s.bytes_written, (vehicle + outbox + next_seq) as u64);
    assert_eq!((s.keys_written, s.batches, s.flushes), (3, 1, 0));
    store.outbox_remove(&[1]).unwrap();
    let s = store.stats();
    assert_eq!(s.bytes_written, (vehicle + outbox + next_seq + 10) as u64);
    assert_eq!((s.keys_written, s.batches), (4, 2));
    store
        .commit(
            &m,
            &Changes {
                durable: true,
                ..Changes::default()
            },
        )
        .unwrap();
    assert_eq!(store.stats().flushes, 1);
    assert_eq!(store.stats().batches, 2, "an empty commit writes nothing");
    assert!(store.size_on_disk().unwrap() > 0);
}

// ---------------------------------------------------------------------------------------------
// sequence numbers and the outbox

#[test]
fn seqs_grow_across_reopen_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let m = Memory::default();
    {
        let (store, _) = open(dir.path());
        let c = store
            .commit(&m, &outbox_only(vec![odo(1), odo(2), event("a")]))
            .unwrap();
        assert_eq!(c.seqs, vec![1, 2, 3]);
        store.outbox_remove(&[1, 2, 3]).unwrap();
        assert_eq!(store.outbox_len(), 0);
        assert_eq!(store.next_seq(), 4);
    }
    {
        let (store, _) = open(dir.path());
        assert_eq!(store.next_seq(), 4, "removal must not lower the mark");
        let c = store.commit(&m, &outbox_only(vec![odo(3)])).unwrap();
        assert_eq!(c.seqs, vec![4]);
    }
    let (store, _) = open(dir.path());
    assert_eq!(all_seqs(&store), vec![4]);
    assert_eq!(store.next_seq(), 5);
}

#[test]
fn outbox_from_reads_in_order_from_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let bodies: Vec<RecordBody> = (0..300).map(odo).collect();
    store
        .commit(&Memory::default(), &outbox_only(bodies.clone()))
        .unwrap();
    let got = store.outbox_from(255, 3).unwrap();
    assert_eq!(
        got.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [255, 256, 257]
    );
    assert_eq!(got[0].body, bodies[254]);
    assert!(store.outbox_from(301, 10).unwrap().is_empty());
    store.outbox_remove(&[256, 9999]).unwrap();
    let got = store.outbox_from(255, 2).unwrap();
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [255, 257]);
    assert_eq!(store.outbox_len(), 299);
}

#[test]
fn full_outbox_drops_the_least_valuable_first() {
    let dir = tempfile::tempdir().unwrap();
    let m = Memory::default();
    let (store, _) = Store::open(dir.path(), opts(6)).unwrap();
    // seq: 1 event, 2 odo, 3 heartbeat, 4 hours, 5 odo, 6 snapshot
    store
        .commit(
            &m,
            &outbox_only(vec![
                event("a"),
                odo(1),
                heartbeat(),
                hours(1),
                odo(2),
                snapshot(),
            ]),
        )
        .unwrap();
    // 7 hours: over by one -> the heartbeat.
    let c = store.commit(&m, &outbox_only(vec![hours(2)])).unwrap();
    assert_eq!((c.seqs.clone(), c.dropped.clone()), (vec![7], vec![3]));
    // 8 event, 9 event: the older odometer (2) and engine hours (4).
    let c = store
        .commit(&m, &outbox_only(vec![event("b"), event("c")]))
        .unwrap();
    assert_eq!(c.dropped, vec![2, 4]);
    // 10, 11, 12 events: then the newest readings, oldest first: 5 (odo), 6 (snap), 7 (hours).
    let c = store
        .commit(&m, &outbox_only(vec![event("d"), event("e"), event("f")]))
        .unwrap();
    assert_eq!(c.dropped, vec![5, 6, 7]);
    // 13 heartbeat: only events left, the oldest goes... after the new heartbeat itself.
    let c = store.commit(&m, &outbox_only(vec![heartbeat()])).unwrap();
    assert_eq!(c.dropped, vec![13]);
    // 14 event: the oldest event.
    let c = store.commit(&m, &outbox_only(vec![event("g")])).unwrap();
    assert_eq!(c.dropped, vec![1]);
    assert_eq!(all_seqs(&store), vec![8, 9, 10, 11, 12, 14]);
    assert_eq!(store.outbox_len(), 6);
    assert_eq!(store.next_seq(), 15);
    drop(store);

    // The drop counter and the bound's effects are on disk; taking resets it, on disk too.
    let (store, _) = Store::open(dir.path(), opts(6)).unwrap();
    assert_eq!(all_seqs(&store), vec![8, 9, 10, 11, 12, 14]);
    assert_eq!(store.take_dropped().unwrap(), 8);
    assert_eq!(store.take_dropped().unwrap(), 0);
    drop(store);
    let (store, _) = Store::open(dir.path(), opts(6)).unwrap();
    assert_eq!(store.take_dropped().unwrap(), 0);
}

#[test]
fn a_lowered_bound_trims_on_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let m = Memory::default();
    {
        let (store, _) = open(dir.path());
        store
            .commit(&m, &outbox_only((0..10).map(|_| event("x")).collect()))
            .unwrap();
    }
    let (store, _) = Store::open(dir.path(), opts(4)).unwrap();
    assert_eq!(store.outbox_len(), 10);
    let c = store.commit(&m, &outbox_only(vec![event("y")])).unwrap();
    assert_eq!(c.dropped, (1..=7).collect::<Vec<_>>());
    assert_eq!(all_seqs(&store), vec![8, 9, 10, 11]);
}

// ---------------------------------------------------------------------------------------------
// schema and migrations

/// A schema 0 store: the v1 layout without meta keys.
fn write_v0(dir: &Path, extra: Option<(&[u8], &[u8])>) -> Memory {
    let m = populated();
    let db = raw_db(dir);
    db.insert(keys::VEHICLE, postcard::to_allocvec(&m.vehicle).unwrap())
        .unwrap();
    for (id, p) in &m.prompts {
        db.insert(keys::prompt(id), postcard::to_allocvec(p).unwrap())
            .unwrap();
    }
    for seq in [5u64, 9] {
        let r = Record {
            seq,
            at: t(seq),
            body: odo(seq),
        };
        db.insert(keys::outbox(seq), r.encode().unwrap()).unwrap();
    }
    if let Some((k, v)) = extra {
        db.insert(k, v).unwrap();
    }
    db.flush().unwrap();
    Memory {
        vehicle: m.vehicle,
        prompts: m.prompts,
        ..Memory::default()
    }
}

#[test]
fn schema_0_is_migrated_to_1() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_v0(dir.path(), None);
    let (store, memory) = open(dir.path());
    assert_eq!(memory, expected);
    assert_eq!(all_seqs(&store), vec![5, 9]);
    assert_eq!(store.next_seq(), 10);
    drop(store);
    let db = raw_db(dir.path());
    assert_eq!(migrate::version(&db).unwrap(), Some(1));
    assert_eq!(
        db.get(keys::NEXT_SEQ).unwrap().unwrap().as_ref(),
        10u64.to_be_bytes()
    );
}

#[test]
fn schema_0_with_foreign_keys_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    write_v0(dir.path(), Some((b"vehicles/WVW1", b"{}")));
    let err = Store::open(dir.path(), opts(10)).unwrap_err();
    match &err {
        StoreError::Migration { from: 0, reason } => assert!(reason.contains("vehicles/WVW1")),
        other => panic!("{other}"),
    }
    let db = raw_db(dir.path());
    assert_eq!(migrate::version(&db).unwrap(), None);
    assert!(db.get(keys::NEXT_SEQ).unwrap().is_none());
}

fn step_1_to_2(tree: &sled::Tree) -> Result<sled::Batch, StoreError> {
    // A made-up schema 2: the vehicle key renamed to `V`.
    let mut batch = sled::Batch::default();
    if let Some(v) = tree.get(keys::VEHICLE).map_err(sled_error("test"))? {
        batch.remove(keys::VEHICLE);
        batch.insert(b"V".as_slice(), v);
    }
    Ok(batch)
}

fn failing_step(_: &sled::Tree) -> Result<sled::Batch, StoreError> {
    Err(StoreError::Migration {
        from: 1,
        reason: "test".into(),
    })
}

#[test]
fn migrations_run_in_order_each_bumping_the_version() {
    let dir = tempfile::tempdir().unwrap();
    write_v0(dir.path(), None);
    let db = raw_db(dir.path());
    let found = migrate::run(&db, &[migrate::MIGRATIONS[0], step_1_to_2]).unwrap();
    assert_eq!(found, None, "schema 0 has no version key");
    assert_eq!(migrate::version(&db).unwrap(), Some(2));
    assert!(db.get(keys::VEHICLE).unwrap().is_none());
    assert!(db.get(b"V").unwrap().is_some());
    assert!(
        db.get(keys::NEXT_SEQ).unwrap().is_some(),
        "step 0 ran first"
    );
    // At the target: nothing runs.
    assert_eq!(
        migrate::run(&db, &[failing_step, failing_step]).unwrap(),
        Some(2)
    );
}

#[test]
fn a_failing_step_keeps_the_version_it_reached() {
    let dir = tempfile::tempdir().unwrap();
    write_v0(dir.path(), None);
    let db = raw_db(dir.path());
    let err = migrate::run(&db, &[migrate::MIGRATIONS[0], failing_step]).unwrap_err();
    assert!(matches!(err, StoreError::Migration { from: 1, .. }));
    assert_eq!(migrate::version(&db).unwrap(), Some(1));
    assert!(db.get(keys::VEHICLE).unwrap().is_some());
}

#[test]
fn a_newer_schema_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = raw_db(dir.path());
        db.insert(keys::SCHEMA, 2u64.to_be_bytes().to_vec())
            .unwrap();
        db.insert(b"V", b"whatever".to_vec()).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), opts(10)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 2,
                supported: 1
            }
        ),
        "{err}"
    );
    let db = raw_db(dir.path());
    assert_eq!(migrate::version(&db).unwrap(), Some(2));
    assert_eq!(db.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// corrupt values

#[test]
fn corrupt_values_are_set_aside_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let m = populated();
    {
        let (store, _) = open(dir.path());
        let mut changes = everything(&m);
        changes.outbox = vec![(t(1), event("a")), (t(2), odo(2))];
        store.commit(&m, &changes).unwrap();
    }
    {
        let db = raw_db(dir.path());
        db.insert(keys::prompt("fault:P0300:1"), vec![0xFF; 3])
            .unwrap();
        db.insert(keys::SETTINGS, vec![]).unwrap();
        db.insert(keys::outbox(1), vec![9, 9, 9]).unwrap();
        db.insert(keys::service(0), vec![0xFF]).unwrap();
        db.flush().unwrap();
    }
    let (store, back) = open(dir.path());
    assert_eq!(store.set_aside_on_open(), 4);
    // The corrupt prompt is gone, the other stays.
    assert!(!back.prompts.contains_key("fault:P0300:1"));
    assert!(back.prompts.contains_key("maintenance:oil:1:due_soon"));
    // Settings fall back to no consent.
    assert!(!back.settings.engagement_prompts && !back.settings.partner_sharing);
    // The corrupt record counts as dropped; the other stays; its seq is not reused.
    assert_eq!(all_seqs(&store), vec![2]);
    assert_eq!(store.next_seq(), 3);
    // The corrupt service keeps its slot.
    assert_eq!(back.services, m.services[1..]);
    assert_eq!(back.vehicle, m.vehicle);
    let mut more = back.clone();
    more.services.push(service(999));
    store
        .commit(
            &more,
            &Changes {
                new_services: 1,
                ..Changes::default()
            },
        )
        .unwrap();
    drop(store);

    // The bytes are kept under q/, the originals gone, the drop counted on disk.
    {
        let db = raw_db(dir.path());
        let q = keys::quarantine(&keys::prompt("fault:P0300:1"));
        assert_eq!(db.get(q).unwrap().unwrap().as_ref(), [0xFF; 3]);
        assert!(db.get(keys::outbox(1)).unwrap().is_none());
        assert!(db.get(keys::service(2)).unwrap().is_some());
    }
    let (store, again) = open(dir.path());
    assert_eq!(store.set_aside_on_open(), 0, "set aside once");
    assert_eq!(again.services.len(), 2);
    assert_eq!(store.take_dropped().unwrap(), 1);
}

#[test]
fn a_corrupt_meta_value_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = raw_db(dir.path());
        db.insert(keys::NEXT_SEQ, vec![1, 2, 3]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), opts(10)).unwrap_err();
    match err {
        StoreError::Corrupt { key, .. } => assert_eq!(key, "m/next_seq"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_record_under_the_wrong_key_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = raw_db(dir.path());
        let r = Record {
            seq: 3,
            at: t(1),
            body: odo(1),
        };
        db.insert(keys::outbox(8), r.encode().unwrap()).unwrap();
        db.flush().unwrap();
    }
    let (store, _) = open(dir.path());
    assert_eq!(store.set_aside_on_open(), 1);
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(
        store.next_seq(),
        9,
        "a seq seen on disk is never given again"
    );
}

// ---------------------------------------------------------------------------------------------
// property: any memory survives a commit and reopen; classes match what was stored

fn arb_code() -> impl Strategy<Value = (DtcCode, Dtc)> {
    prop_oneof![
        any::<u16>().prop_map(|r| (obd(r), Dtc::Obd(ObdCode::new(r)))),
        (0u32..0x100_0000, any::<u8>()).prop_map(|(r, s)| {
            let c = UdsCode::new(r).unwrap();
            (DtcCode::Uds(c), Dtc::Uds(c, UdsStatus(s)))
        }),
        (0u32..=Spn::MAX, 0u8..32, 0u8..128).prop_map(|(s, f, o)| {
            let (s, f) = (Spn::new(s).unwrap(), Fmi::new(f).unwrap());
            (
                DtcCode::J1939(s, f),
                Dtc::J1939(s, f, OccurrenceCount::new(o).unwrap()),
            )
        }),
    ]
}

fn arb_state() -> impl Strategy<Value = PromptState> {
    prop_oneof![
        Just(PromptState::Pending),
        Just(PromptState::Shown),
        Just(PromptState::Dismissed),
        any::<u64>().prop_map(|ms| PromptState::Snoozed(t(ms))),
    ]
}

fn arb_memory() -> impl Strategy<Value = Memory> {
    (
        (
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            proptest::collection::vec(arb_code(), 0..6),
            proptest::collection::vec(any::<u64>(), 0..4),
        ),
        proptest::collection::btree_map("[a-z_:0-9]{1,24}", arb_state(), 0..8),
        proptest::collection::btree_map("\\PC{1,12}", any::<u32>(), 0..4),
        proptest::collection::btree_set(any::<u64>(), 0..6),
        (any::<bool>(), any::<bool>(), any::<i64>()),
    )
        .prop_map(
            |((odo_m, mil, codes, services), prompts, items, downlinks, (e, p, day))| {
                let mut m = Memory {
                    vehicle: VehicleState {
                        odometer: odo_m.map(Odometer::from_meters),
                        mil,
                        ..VehicleState::default()
                    },
                    services: services.into_iter().map(service).collect(),
                    applied_downlinks: downlinks,
                    settings: Settings {
                        engagement_prompts: e,
                        partner_sharing: p,
                        ..Settings::default()
                    },
                    shows: ShowCounts {
                        day,
                        per_kind: BTreeMap::new(),
                    },
                    ..Memory::default()
                };
                for (code, dtc) in codes {
                    m.dtcs.insert(
                        code,
                        DtcHistory {
                            dtc,
                            ..history(0, 1)
                        },
                    );
                }
                for (id, state) in prompts {
                    m.prompts.insert(id.clone(), prompt(&id, state));
                }
                for (id, services) in items {
                    m.items.insert(
                        id.clone(),
                        ItemRecord {
                            services,
                            ..ItemRecord::default()
                        },
                    );
                    m.campaigns.insert(id.clone(), campaign(&id));
                }
                m
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_memory_roundtrips(m in arb_memory(), later in arb_memory()) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = open(dir.path());
            store.commit(&m, &everything(&m)).unwrap();
        }
        let (store, back) = open(dir.path());
        prop_assert_eq!(&back, &m);

        // Replace everything with `later`: keys only in `m` must go, services append.
        let mut changes = everything(&later);
        changes.dtcs.extend(m.dtcs.keys().copied());
        changes.prompts.extend(m.prompts.keys().cloned());
        changes.items.extend(m.items.keys().cloned());
        changes.campaigns.extend(m.campaigns.keys().cloned());
        changes.downlinks.extend(m.applied_downlinks.iter().copied());
        store.commit(&later, &changes).unwrap();
        drop(store);
        let (_, back) = open(dir.path());
        let mut expected = later.clone();
        expected.services = m.services.iter().chain(&later.services).cloned().collect();
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn classes_match_records(kinds in proptest::collection::vec(0u8..5, 1..40), max in 1u64..20) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), opts(max)).unwrap();
        let bodies: Vec<RecordBody> = kinds.iter().map(|k| match k {
            0 => heartbeat(),
            1 => odo(1),
            2 => hours(1),
            3 => snapshot(),
            _ => RecordBody::Consent(ConsentChange { consent: ConsentKind::PartnerSharing, granted: true }),
        }).collect();
        for b in &bodies {
            store.commit(&Memory::default(), &outbox_only(vec![b.clone()])).unwrap();
        }
        prop_assert_eq!(store.outbox_len(), max.min(bodies.len() as u64));
        prop_assert_eq!(store.outbox_len(), all_seqs(&store).len() as u64);
        // Events are never dropped while anything else is left.
        let kept = store.outbox_from(0, usize::MAX).unwrap();
        let events_kept = kept.iter().filter(|r| Class::of(&r.body) == Class::Event).count();
        let events = bodies.iter().filter(|b| Class::of(b) == Class::Event).count();
        prop_assert_eq!(events_kept, events.min(max as usize));
    }
}
