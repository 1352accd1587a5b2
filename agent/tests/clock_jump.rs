//! A wrong wall clock under the real agent: the desk car drives the agent's pipeline (poller,
//! observer, rules, the shared core over a real sled store) while the head unit's wall clock
//! jumps back to 1970 and then a year ahead mid-run; the bus's monotonic time runs on. The
//! agent records one `clock_untrusted` per episode, fires no date rule and shows no prompt on
//! the wrong date, keeps producing records in seq order with the car's time, and applies the
//! leap ahead only once it has held steady (then the year-old oil service is due).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use rapport_agent::clock::ManualClock;
use rapport_agent::runtime::{Core, SimCar};
use rapport_agent::sim::{Power, Script};
use rapport_shared::v1::downlink::MaintenanceItem;
use rapport_shared::{CivilDate, EngineHours, Odometer, Record, RecordBody, Timestamp};

const MIN: Duration = Duration::from_secs(60);
/// 2026-06-01T00:00:00Z.
const T0: u64 = 1_780_272_000_000;
const YEAR: u64 = 365 * 86_400_000;

fn outbox(core: &Core) -> Vec<Record> {
    core.with(|_, store| store.outbox_from(0, 100_000)).unwrap()
}

fn count(records: &[Record], what: fn(&RecordBody) -> bool) -> usize {
    records.iter().filter(|r| what(&r.body)).count()
}

fn is_clock(b: &RecordBody) -> bool {
    matches!(b, RecordBody::ClockUntrusted(_))
}

fn is_dated(b: &RecordBody) -> bool {
    matches!(b, RecordBody::Maintenance(_) | RecordBody::Prompt(_))
}

#[test]
fn a_clock_back_at_1970_then_a_year_ahead_fires_nothing_until_trusted() {
    let mut c = rapport_harness::agent::passenger().unwrap();
    c.sync = None;
    c.vehicle.delivered = CivilDate::parse("2026-06-01").unwrap();
    // Oil by time only: due 12 months after delivery.
    c.maintenance.items = vec![MaintenanceItem {
        id: "oil".into(),
        every_months: Some(12),
        due_soon_days: Some(30),
        ..MaintenanceItem::default()
    }];
    c.prompts.break_in_km = 0;
    c.prompts.milestones_km.clear();
    let dir = tempfile::tempdir().unwrap();
    let loaded = rapport_harness::agent::load(&c, dir.path()).unwrap();
    let t0 = Timestamp::from_millis(T0);
    let clock = ManualClock::new(t0);
    let core = Arc::new(Core::open(&loaded, &dir.path().join("store"), Arc::new(clock)).unwrap());
    let script = Script::new(Odometer::from_km(12_000), EngineHours::from_secs(0))
        .power(Power::Running)
        .drive_for(50, 5 * MIN)
        .park(2 * MIN)
        .drive_for(50, 20 * MIN)
        .park(60 * MIN);
    let car = rapport_agent::desk::car_for(&loaded, script).unwrap();
    let mut sim = SimCar::with_car(&loaded, car, Arc::clone(&core), t0);

    // Five minutes on a good clock: trusted, odometer records with true times.
    sim.run_until(5 * MIN);
    let before = outbox(&core);
    assert!(!before.is_empty());
    assert_eq!(count(&before, is_clock), 0);
    assert_eq!(core.clock_trust(), (true, 0));
    let dated_before = count(&before, is_dated);

    // The RTC falls back to 1970 (one hour after the epoch) and the car drives on.
    let t1970 = Timestamp::from_millis(3_600_000);
    sim.jump_wall(t1970);
    sim.run_until(30 * MIN);
    let during = outbox(&core);
    assert_eq!(count(&during, is_clock), 1, "one record for the episode");
    assert_eq!(core.clock_trust(), (false, 1));
    assert_eq!(
        count(&during, is_dated),
        dated_before,
        "no maintenance state or prompt on the 1970 date"
    );
    // Records written after the jump (a coalesced one from before may come first).
    let episode = during.iter().position(|r| is_clock(&r.body)).unwrap();
    let new = &during[episode..];
    assert!(new.len() > 1, "the agent keeps recording: {}", new.len());
    assert!(
        new.iter().all(|r| r.at < Timestamp::from_millis(T0)),
        "records keep the car's (1970) time: {new:?}"
    );
    match &new[0].body {
        RecordBody::ClockUntrusted(c) => {
            assert_eq!(c.observed.as_millis() / 60_000, 60, "{c:?}");
            assert!(
                c.trusted >= Timestamp::from_millis(T0 + 5 * 60_000),
                "{c:?}"
            );
        }
        other => panic!("not the episode's record: {other:?}"),
    }

    // Set a year ahead: still the same episode, and held for ten minutes of monotonic time.
    let ahead = Timestamp::from_millis(T0 + YEAR + 30 * 60_000);
    sim.jump_wall(ahead);
    sim.run_until(38 * MIN);
    let held = outbox(&core);
    assert_eq!(count(&held, is_clock), 1, "still one episode");
    assert_eq!(
        count(&held, is_dated),
        dated_before,
        "no '12 months overdue' while the leap is held"
    );
    assert!(!core.clock_trust().0);

    // Steady past the confirmation: trusted, and the date rules run on the new date — the
    // oil, a year after delivery, comes due (the rule works; it only waited).
    sim.run_until(50 * MIN);
    let after = outbox(&core);
    assert_eq!(core.clock_trust(), (true, 1));
    assert!(
        after
            .iter()
            .any(|r| matches!(&r.body, RecordBody::Maintenance(m) if m.item == "oil")),
        "the oil comes due once the date is trusted"
    );
    assert_eq!(count(&after, is_clock), 1);
    // Seq order throughout, whatever the times said.
    assert!(after.windows(2).all(|w| w[0].seq < w[1].seq));
    // The store kept the floor: a restart on the same store trusts a time after it only.
    let floor = core.with(|_, store| store.clock_floor()).unwrap();
    assert!(floor >= ahead, "{floor:?}");
}
