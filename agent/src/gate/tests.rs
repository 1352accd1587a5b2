#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rapport_shared::Timestamp;
use rapport_shared::v1::uplink::PromptKind;

use super::motion::SPEED_STALE_MS;
use super::quiet::local_day;
use super::*;
use crate::config::{Prompts, defaults};
use crate::memory::QuietHoursError;
use crate::memory::{PromptRecord, PromptState, QuietHours, Settings, ShowCounts};

/// 2023-11-14 22:13:20 UTC; every test time is an offset from here.
const T0: u64 = 1_700_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn at(ms_after_t0: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms_after_t0)
}

/// A UTC time of day on 2023-11-15 (the day after T0).
fn utc(hour: u64, minute: u64) -> Timestamp {
    let day_start = (T0 / 86_400_000 + 1) * 86_400_000;
    Timestamp::from_millis(day_start + hour * HOUR_MS + minute * 60_000)
}

fn quiet(start: &str, end: &str) -> QuietHours {
    QuietHours {
        start: start.to_owned(),
        end: end.to_owned(),
    }
}

fn prompt(kind: PromptKind, state: PromptState) -> PromptRecord {
    PromptRecord {
        id: format!("{kind}:x"),
        kind,
        subject: "x".to_owned(),
        critical: false,
        title: "Title".to_owned(),
        text: "Text".to_owned(),
        created: Timestamp::from_millis(T0 - HOUR_MS),
        state,
        first_shown: match state {
            PromptState::Pending => None,
            _ => Some(Timestamp::from_millis(T0 - HOUR_MS / 2)),
        },
        times_shown: u32::from(state != PromptState::Pending),
        closed_at: None,
    }
}

fn critical(kind: PromptKind, state: PromptState) -> PromptRecord {
    PromptRecord {
        critical: true,
        ..prompt(kind, state)
    }
}

/// Motion that has read 0 km/h every second for 10 s up to `now`.
fn stopped_at(config: &Prompts, now: Timestamp) -> Motion {
    let mut m = Motion::new(config);
    let end = now.as_millis();
    for ms in (end - 10_000..=end).step_by(1_000) {
        assert!(m.on_speed(0.0, Timestamp::from_millis(ms)));
    }
    m
}

/// Motion that read 50 km/h at `now`.
fn moving_at(config: &Prompts, now: Timestamp) -> Motion {
    let mut m = Motion::new(config);
    m.on_speed(50.0, now);
    m
}

/// Decides `p` at `now` with the car stopped, given config, settings and counts.
fn decide_stopped(
    p: &PromptRecord,
    config: &Prompts,
    settings: &Settings,
    shows: &ShowCounts,
    now: Timestamp,
) -> Decision {
    let motion = stopped_at(config, now);
    decide(p, &GateContext::new(config, settings, &motion, shows), now)
}

// ---------------------------------------------------------------- motion

#[test]
fn unknown_motion_is_not_stopped() {
    let m = Motion::new(&Prompts::default());
    assert!(!m.is_stopped(at(0)));
    assert!(m.moving(at(0)));
    assert!(!m.is_stopped(at(3_600_000)));
}

#[test]
fn stopped_after_stopped_for_s_below_threshold() {
    // defaults: below 3 km/h for 3 s
    let mut m = Motion::new(&Prompts::default());
    for s in 0..=3 {
        m.on_speed(1.0, at(s * 1_000));
    }
    assert!(!m.is_stopped(at(2_999)));
    assert!(m.is_stopped(at(3_000)));
    assert!(m.is_stopped(at(4_000)));
}

#[test]
fn single_reading_below_counts_from_that_reading() {
    let mut m = Motion::new(&Prompts::default());
    m.on_speed(0.0, at(0));
    assert!(!m.is_stopped(at(2_000)));
    // no new reading, but the one at 0 is still fresh at 3 s
    assert!(m.is_stopped(at(3_000)));
}

#[test]
fn reading_at_or_above_threshold_resets_the_timer() {
    let mut m = Motion::new(&Prompts::default());
    m.on_speed(0.0, at(0));
    m.on_speed(0.0, at(2_000));
    m.on_speed(3.0, at(2_500)); // exactly the threshold counts as moving
    assert!(!m.is_stopped(at(2_500)));
    m.on_speed(0.0, at(3_000));
    assert!(!m.is_stopped(at(5_999)));
    m.on_speed(0.0, at(5_999));
    assert!(m.is_stopped(at(6_000)));
}

#[test]
fn stale_speed_is_unknown() {
    let mut m = Motion::new(&Prompts::default());
    for s in 0..=5 {
        m.on_speed(0.0, at(s * 1_000));
    }
    // last reading at 5 s: fresh up to 10 s included
    assert!(m.is_stopped(at(5_000 + SPEED_STALE_MS)));
    assert!(!m.is_stopped(at(5_000 + SPEED_STALE_MS + 1)));
}

#[test]
fn gap_between_readings_restarts_the_timer() {
    let mut m = Motion::new(&Prompts::default());
    for s in 0..=4 {
        m.on_speed(0.0, at(s * 1_000));
    }
    assert!(m.is_stopped(at(4_000)));
    // 5.001 s without a reading: the car may have driven off and stopped again
    let back = 4_000 + SPEED_STALE_MS + 1;
    m.on_speed(0.0, at(back));
    assert!(!m.is_stopped(at(back)));
    assert!(!m.is_stopped(at(back + 2_999)));
    assert!(m.is_stopped(at(back + 3_000)));
}

#[test]
fn gap_of_exactly_the_stale_limit_continues_the_run() {
    let mut m = Motion::new(&Prompts::default());
    m.on_speed(0.0, at(0));
    m.on_speed(0.0, at(SPEED_STALE_MS));
    assert!(m.is_stopped(at(SPEED_STALE_MS)));
}

#[test]
fn clock_going_back_restarts_the_timer() {
    let mut m = Motion::new(&Prompts::default());
    for s in 10..=20 {
        m.on_speed(0.0, at(s * 1_000));
    }
    m.on_speed(0.0, at(1_000));
    assert!(!m.is_stopped(at(1_000)));
    assert!(m.is_stopped(at(4_000)));
}

#[test]
fn parked_is_stopped_at_once() {
    let mut m = Motion::new(&Prompts::default());
    m.on_park(true, at(0));
    assert!(m.is_stopped(at(0)));
    // hours later, no speed at all: still parked
    assert!(m.is_stopped(at(10 * HOUR_MS)));
}

#[test]
fn not_parked_needs_the_speed() {
    let mut m = Motion::new(&Prompts::default());
    m.on_park(false, at(0));
    assert!(!m.is_stopped(at(0)));
    m.on_speed(0.0, at(0));
    m.on_speed(0.0, at(3_000));
    assert!(m.is_stopped(at(3_000)));
}

#[test]
fn leaving_park_restarts_the_timer() {
    let mut m = Motion::new(&Prompts::default());
    for s in 0..=10 {
        m.on_speed(0.0, at(s * 1_000));
    }
    m.on_park(true, at(10_000));
    assert!(m.is_stopped(at(10_000)));
    m.on_park(false, at(10_500));
    m.on_speed(0.0, at(11_000));
    assert!(!m.is_stopped(at(11_000)));
    m.on_speed(0.0, at(13_500));
    assert!(m.is_stopped(at(13_500)));
}

#[test]
fn power_off_is_stopped_and_power_on_forgets_the_trip() {
    let mut m = Motion::new(&Prompts::default());
    m.on_park(true, at(0));
    m.on_power(false, at(1_000));
    assert!(m.is_stopped(at(HOUR_MS)));
    m.on_power(true, at(HOUR_MS));
    // the park signal and speeds of the last trip no longer count
    assert!(!m.is_stopped(at(HOUR_MS)));
    m.on_speed(0.0, at(HOUR_MS + 1_000));
    assert!(!m.is_stopped(at(HOUR_MS + 1_000)));
    assert!(m.is_stopped(at(HOUR_MS + 4_000)));
}

#[test]
fn power_on_while_on_keeps_the_state() {
    let mut m = Motion::new(&Prompts::default());
    m.on_park(true, at(0));
    m.on_power(true, at(1_000));
    assert!(m.is_stopped(at(1_000)));
}

#[test]
fn fresh_moving_reading_beats_park_and_power() {
    let mut m = Motion::new(&Prompts::default());
    m.on_park(true, at(0));
    m.on_speed(40.0, at(1_000));
    assert!(!m.is_stopped(at(1_000)));
    assert!(!m.is_stopped(at(1_000 + SPEED_STALE_MS)));
    // once that reading is stale, the park signal counts again
    assert!(m.is_stopped(at(1_001 + SPEED_STALE_MS)));

    let mut m = Motion::new(&Prompts::default());
    m.on_power(false, at(0));
    m.on_speed(40.0, at(1_000));
    assert!(!m.is_stopped(at(2_000)));
}

#[test]
fn implausible_speeds_are_ignored_and_counted() {
    let mut m = Motion::new(&Prompts::default());
    for s in 0..=3 {
        m.on_speed(0.0, at(s * 1_000));
    }
    assert!(m.is_stopped(at(3_000)));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0, -0.001] {
        assert!(!m.on_speed(bad, at(3_500)));
    }
    assert_eq!(m.rejected(), 5);
    assert!(m.is_stopped(at(3_500)));
    // and they do not keep a stale reading alive
    assert!(!m.is_stopped(at(3_001 + SPEED_STALE_MS)));
}

#[test]
fn zero_stopped_for_is_stopped_on_the_first_reading() {
    let mut m = Motion::with_thresholds(3.0, 0);
    m.on_speed(2.9, at(0));
    assert!(m.is_stopped(at(0)));
}

// ---------------------------------------------------------------- quiet hours

#[test]
fn local_time_with_offsets() {
    // 2023-11-15 21:30 UTC
    let now = utc(21, 30);
    assert_eq!(local_minute_of_day(now, 0), 21 * 60 + 30);
    // UTC+05:30: 03:00 the next day
    assert_eq!(local_minute_of_day(now, 330), 3 * 60);
    assert_eq!(local_day(now, 330), local_day(now, 0) + 1);
    // UTC-10:00: 11:30 the same day
    assert_eq!(local_minute_of_day(now, -600), 11 * 60 + 30);
    assert_eq!(local_day(now, -600), local_day(now, 0));
    // near the epoch a negative offset reaches back to 1969-12-31
    assert_eq!(local_day(Timestamp::EPOCH, -60), -1);
    assert_eq!(local_minute_of_day(Timestamp::EPOCH, -60), 23 * 60);
    // extremes do not panic
    assert!(local_minute_of_day(Timestamp::from_millis(u64::MAX), i32::MAX) < 1440);
    assert!(local_minute_of_day(Timestamp::EPOCH, i32::MIN) < 1440);
}

// ---------------------------------------------------------------- caps

#[test]
fn cap_lookup_by_kind_name() {
    let mut config = Prompts::default();
    config.daily_caps.insert("milestone".to_owned(), 1);
    config.daily_caps.insert("other".to_owned(), 0);
    assert_eq!(cap_for(PromptKind::Milestone, &config), 1);
    assert_eq!(
        cap_for(PromptKind::Maintenance, &config),
        defaults::DAILY_CAP
    );
    assert_eq!(cap_for(PromptKind::Other(99), &config), 0);
}

#[test]
fn caps_count_per_kind_and_reset_at_local_midnight() {
    // UTC+02:00: local midnight is 22:00 UTC
    let offset = 120;
    let mut shows = ShowCounts::default();
    let kind = PromptKind::Maintenance;
    assert!(shows.allows(kind, 2, utc(21, 0), offset));
    shows.record(kind, utc(21, 0), offset);
    shows.record(kind, utc(21, 59), offset); // local 23:59
    shows.record(PromptKind::Fault, utc(21, 59), offset);
    assert_eq!(shows.shown_today(kind, utc(21, 59), offset), 2);
    assert!(!shows.allows(kind, 2, utc(21, 59), offset));
    assert!(shows.allows(PromptKind::Fault, 2, utc(21, 59), offset));
    // local 00:00 the next day; still the same UTC day
    assert_eq!(shows.shown_today(kind, utc(22, 0), offset), 0);
    assert!(shows.allows(kind, 2, utc(22, 0), offset));
    shows.record(kind, utc(22, 0), offset);
    assert_eq!(shows.day, local_day(utc(22, 0), offset));
    assert_eq!(shows.per_kind, BTreeMap::from([(kind.code(), 1)]));
    // at UTC the day had not changed yet
    assert_eq!(local_day(utc(21, 59), 0), local_day(utc(22, 0), 0));
}

#[test]
fn cap_zero_allows_nothing() {
    let shows = ShowCounts::default();
    assert!(!shows.allows(PromptKind::Campaign, 0, at(0), 0));
}

#[test]
fn counts_from_another_day_read_as_zero() {
    let mut shows = ShowCounts::default();
    shows.record(PromptKind::Milestone, utc(12, 0), 0);
    shows.record(PromptKind::Milestone, utc(12, 0), 0);
    // the clock went back a day
    let yesterday = Timestamp::from_millis(utc(12, 0).as_millis() - 24 * HOUR_MS);
    assert_eq!(shows.shown_today(PromptKind::Milestone, yesterday, 0), 0);
}

// ---------------------------------------------------------------- decide

#[test]
fn final_states_are_held_even_when_critical() {
    let config = Prompts::default();
    for state in [
        PromptState::Acknowledged,
        PromptState::Dismissed,
        PromptState::Booked,
        PromptState::Resolved,
    ] {
        for p in [
            prompt(PromptKind::Maintenance, state),
            critical(PromptKind::Fault, state),
        ] {
            let d = decide_stopped(
                &p,
                &config,
                &Settings::default(),
                &ShowCounts::default(),
                at(0),
            );
            assert_eq!(d, Decision::Hold(HoldReason::Final), "{state:?}");
        }
    }
}

#[test]
fn snoozed_until_later_is_held_even_when_critical() {
    let config = Prompts::default();
    let until = at(60_000);
    for p in [
        prompt(PromptKind::Maintenance, PromptState::Snoozed(until)),
        critical(PromptKind::Fault, PromptState::Snoozed(until)),
    ] {
        let d = |now| {
            decide_stopped(
                &p,
                &config,
                &Settings::default(),
                &ShowCounts::default(),
                now,
            )
        };
        assert_eq!(d(at(59_999)), Decision::Hold(HoldReason::Snoozed));
        assert_eq!(d(until), Decision::Show);
    }
}

#[test]
fn critical_shows_through_motion_quiet_caps_mutes_and_consent() {
    let config = Prompts {
        quiet_hours: Some(quiet("00:00", "23:59")),
        daily_caps: BTreeMap::from([("fault".to_owned(), 0), ("campaign".to_owned(), 0)]),
        ..Prompts::default()
    };
    let settings = Settings {
        engagement_prompts: false,
        muted: vec![PromptKind::Fault, PromptKind::Campaign],
        ..Settings::default()
    };
    let now = utc(12, 0);
    let motion = moving_at(&config, now);
    let shows = ShowCounts::default();
    let ctx = GateContext::new(&config, &settings, &motion, &shows);
    assert!(ctx.in_quiet_hours(now));
    for p in [
        critical(PromptKind::Fault, PromptState::Pending),
        critical(PromptKind::Campaign, PromptState::Pending),
        critical(PromptKind::Fault, PromptState::Shown),
    ] {
        assert_eq!(decide(&p, &ctx, now), Decision::Show);
    }
    // the same prompt, not critical, is held
    let p = prompt(PromptKind::Fault, PromptState::Pending);
    assert_eq!(decide(&p, &ctx, now), Decision::Hold(HoldReason::Muted));
}

#[test]
fn muted_kind_is_held() {
    let config = Prompts::default();
    let settings = Settings {
        muted: vec![PromptKind::Maintenance],
        ..Settings::default()
    };
    let shows = ShowCounts::default();
    let muted = prompt(PromptKind::Maintenance, PromptState::Shown);
    let other = prompt(PromptKind::FirstService, PromptState::Shown);
    assert_eq!(
        decide_stopped(&muted, &config, &settings, &shows, at(0)),
        Decision::Hold(HoldReason::Muted)
    );
    assert_eq!(
        decide_stopped(&other, &config, &settings, &shows, at(0)),
        Decision::Show
    );
}

#[test]
fn engagement_needs_consent() {
    let config = Prompts::default();
    let no = Settings {
        engagement_prompts: false,
        ..Settings::default()
    };
    let yes = Settings::default();
    let shows = ShowCounts::default();
    for kind in [
        PromptKind::BreakIn,
        PromptKind::BreakInComplete,
        PromptKind::Anniversary,
        PromptKind::Milestone,
        PromptKind::Campaign,
        PromptKind::Other(42),
    ] {
        let p = prompt(kind, PromptState::Pending);
        assert_eq!(
            decide_stopped(&p, &config, &no, &shows, at(0)),
            Decision::Hold(HoldReason::NoConsent),
            "{kind}"
        );
        assert_eq!(
            decide_stopped(&p, &config, &yes, &shows, at(0)),
            Decision::Show,
            "{kind}"
        );
    }
    for kind in [
        PromptKind::Maintenance,
        PromptKind::Fault,
        PromptKind::FirstService,
    ] {
        let p = prompt(kind, PromptState::Pending);
        assert_eq!(
            decide_stopped(&p, &config, &no, &shows, at(0)),
            Decision::Show,
            "{kind}"
        );
    }
}

#[test]
fn moving_holds_non_critical() {
    let config = Prompts::default();
    let settings = Settings::default();
    let shows = ShowCounts::default();
    let p = prompt(PromptKind::Maintenance, PromptState::Pending);
    let motion = moving_at(&config, at(0));
    let ctx = GateContext::new(&config, &settings, &motion, &shows);
    assert_eq!(decide(&p, &ctx, at(0)), Decision::Hold(HoldReason::Moving));
    // unknown motion too
    let motion = Motion::new(&config);
    let ctx = GateContext::new(&config, &settings, &motion, &shows);
    assert_eq!(decide(&p, &ctx, at(0)), Decision::Hold(HoldReason::Moving));
}

#[test]
fn quiet_hours_over_midnight_with_an_offset() {
    let config = Prompts {
        utc_offset_minutes: 60,
        quiet_hours: Some(quiet("22:00", "07:00")),
        ..Prompts::default()
    };
    let settings = Settings::default();
    let shows = ShowCounts::default();
    let p = prompt(PromptKind::Maintenance, PromptState::Pending);
    let d = |now| decide_stopped(&p, &config, &settings, &shows, now);
    assert_eq!(d(utc(20, 59)), Decision::Show); // local 21:59
    assert_eq!(d(utc(21, 0)), Decision::Hold(HoldReason::QuietHours)); // local 22:00
    assert_eq!(d(utc(23, 30)), Decision::Hold(HoldReason::QuietHours)); // local 00:30
    assert_eq!(d(utc(5, 59)), Decision::Hold(HoldReason::QuietHours)); // local 06:59
    assert_eq!(d(utc(6, 0)), Decision::Show); // local 07:00
}

#[test]
fn drivers_quiet_hours_replace_the_configs() {
    let config = Prompts {
        quiet_hours: Some(quiet("22:00", "07:00")),
        ..Prompts::default()
    };
    let shows = ShowCounts::default();
    let p = prompt(PromptKind::Maintenance, PromptState::Pending);
    let own = Settings {
        quiet_hours: Some(quiet("12:00", "13:00")),
        ..Settings::default()
    };
    assert_eq!(
        decide_stopped(&p, &config, &own, &shows, utc(23, 0)),
        Decision::Show
    );
    assert_eq!(
        decide_stopped(&p, &config, &own, &shows, utc(12, 30)),
        Decision::Hold(HoldReason::QuietHours)
    );
    // an empty window turns the config's off
    let off = Settings {
        quiet_hours: Some(quiet("00:00", "00:00")),
        ..Settings::default()
    };
    assert_eq!(
        decide_stopped(&p, &config, &off, &shows, utc(23, 0)),
        Decision::Show
    );
}

#[test]
fn unreadable_quiet_hours_fall_back() {
    let config = Prompts {
        quiet_hours: Some(quiet("22:00", "07:00")),
        ..Prompts::default()
    };
    let bad = Settings {
        quiet_hours: Some(quiet("late", "07:00")),
        ..Settings::default()
    };
    assert!(matches!(
        quiet_window(&config, &bad),
        Err(QuietHoursError::Format { field: "start", .. })
    ));
    let motion = Motion::new(&config);
    let shows = ShowCounts::default();
    // the driver's cannot be read: the config's apply
    let ctx = GateContext::new(&config, &bad, &motion, &shows);
    assert_eq!(ctx.quiet(), QuietWindow::new(22 * 60, 7 * 60));
    // neither can be read: none
    let bad_config = Prompts {
        quiet_hours: Some(quiet("22:00", "25:00")),
        ..Prompts::default()
    };
    let ctx = GateContext::new(&bad_config, &bad, &motion, &shows);
    assert_eq!(ctx.quiet(), None);
    assert!(!ctx.in_quiet_hours(utc(23, 0)));
    assert_eq!(
        quiet_window(&config, &Settings::default()),
        Ok(QuietWindow::new(22 * 60, 7 * 60))
    );
    assert_eq!(
        quiet_window(&Prompts::default(), &Settings::default()),
        Ok(None)
    );
}

#[test]
fn caps_hold_first_shows_only() {
    let config = Prompts::default(); // cap 2
    let settings = Settings::default();
    let now = utc(12, 0);
    let mut shows = ShowCounts::default();
    let kind = PromptKind::Maintenance;
    let pending = prompt(kind, PromptState::Pending);
    assert_eq!(
        decide_stopped(&pending, &config, &settings, &shows, now),
        Decision::Show
    );
    shows.record(kind, now, 0);
    shows.record(kind, now, 0);
    assert_eq!(
        decide_stopped(&pending, &config, &settings, &shows, now),
        Decision::Hold(HoldReason::Capped)
    );
    // another kind is not capped by it
    let fault = prompt(PromptKind::Fault, PromptState::Pending);
    assert_eq!(
        decide_stopped(&fault, &config, &settings, &shows, now),
        Decision::Show
    );
    // already shown, or back from a snooze: not capped
    let shown = prompt(kind, PromptState::Shown);
    let back = prompt(kind, PromptState::Snoozed(at(0)));
    assert_eq!(
        decide_stopped(&shown, &config, &settings, &shows, now),
        Decision::Show
    );
    assert_eq!(
        decide_stopped(&back, &config, &settings, &shows, now),
        Decision::Show
    );
    // the next local day
    let tomorrow = Timestamp::from_millis(now.as_millis() + 24 * HOUR_MS);
    assert_eq!(
        decide_stopped(&pending, &config, &settings, &shows, tomorrow),
        Decision::Show
    );
}

#[test]
fn rules_apply_in_order() {
    // muted, no consent, moving, quiet and capped all at once: muted is reported
    let config = Prompts {
        quiet_hours: Some(quiet("00:00", "23:59")),
        daily_caps: BTreeMap::from([("milestone".to_owned(), 0)]),
        ..Prompts::default()
    };
    let mut settings = Settings {
        engagement_prompts: false,
        muted: vec![PromptKind::Milestone],
        ..Settings::default()
    };
    let now = utc(12, 0);
    let shows = ShowCounts::default();
    let p = prompt(PromptKind::Milestone, PromptState::Pending);
    let moving = moving_at(&config, now);
    let stopped = stopped_at(&config, now);
    let d = |settings: &Settings, motion: &Motion| {
        decide(
            &p,
            &GateContext::new(&config, settings, motion, &shows),
            now,
        )
    };
    assert_eq!(d(&settings, &moving), Decision::Hold(HoldReason::Muted));
    settings.muted.clear();
    assert_eq!(d(&settings, &moving), Decision::Hold(HoldReason::NoConsent));
    settings.engagement_prompts = true;
    assert_eq!(d(&settings, &moving), Decision::Hold(HoldReason::Moving));
    assert_eq!(
        d(&settings, &stopped),
        Decision::Hold(HoldReason::QuietHours)
    );
    settings.quiet_hours = Some(quiet("00:00", "00:00"));
    assert_eq!(d(&settings, &stopped), Decision::Hold(HoldReason::Capped));
}

#[test]
fn shown_prompt_disappears_while_moving_and_returns_when_stopped() {
    let config = Prompts::default();
    let settings = Settings::default();
    let shows = ShowCounts::default();
    let shown = prompt(PromptKind::Maintenance, PromptState::Shown);
    let fault = critical(PromptKind::Fault, PromptState::Shown);
    let mut motion = Motion::new(&config);
    for s in 0..=5 {
        motion.on_speed(0.0, at(s * 1_000));
    }
    // (maintenance visible, critical fault visible) at `now`
    let seen = |m: &Motion, now: Timestamp| {
        let c = GateContext::new(&config, &settings, m, &shows);
        (visible(&shown, &c, now), visible(&fault, &c, now))
    };
    assert_eq!(seen(&motion, at(5_000)), (true, true));
    motion.on_speed(30.0, at(6_000));
    assert_eq!(seen(&motion, at(6_000)), (false, true));
    for s in 7..=10 {
        motion.on_speed(0.0, at(s * 1_000));
    }
    assert_eq!(seen(&motion, at(9_000)), (false, true));
    assert_eq!(seen(&motion, at(10_000)), (true, true));
}

#[test]
fn pending_and_snoozed_prompts_are_not_visible_until_marked_shown() {
    let config = Prompts::default();
    let settings = Settings::default();
    let shows = ShowCounts::default();
    let now = at(0);
    let motion = stopped_at(&config, now);
    let ctx = GateContext::new(&config, &settings, &motion, &shows);
    let pending = prompt(PromptKind::Maintenance, PromptState::Pending);
    let back = prompt(
        PromptKind::Maintenance,
        PromptState::Snoozed(Timestamp::EPOCH),
    );
    assert!(decide(&pending, &ctx, now).is_show());
    assert!(!visible(&pending, &ctx, now));
    assert!(decide(&back, &ctx, now).is_show());
    assert!(!visible(&back, &ctx, now));
    assert!(visible(
        &prompt(PromptKind::Maintenance, PromptState::Shown),
        &ctx,
        now
    ));
}

#[test]
fn reasons_have_distinct_names() {
    let all = [
        HoldReason::Moving,
        HoldReason::QuietHours,
        HoldReason::Capped,
        HoldReason::Muted,
        HoldReason::NoConsent,
        HoldReason::Snoozed,
        HoldReason::Final,
    ];
    let names: std::collections::BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(names.len(), all.len());
    assert_eq!(HoldReason::QuietHours.to_string(), "quiet_hours");
    assert_eq!(
        Decision::Hold(HoldReason::Moving).to_string(),
        "hold (moving)"
    );
    assert_eq!(Decision::Show.to_string(), "show");
}

// ---------------------------------------------------------------- properties

/// One signal in a random drive.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Speed(f32),
    Park(bool),
    Power(bool),
    /// Ask the gate.
    Query,
}

fn speed() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => 0.0f32..6.0,
        2 => 0.0f32..130.0,
        1 => Just(0.0f32),
        1 => prop::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0, -0.0]),
    ]
}

fn signal(speed_only: bool) -> impl Strategy<Value = Signal> {
    let park = if speed_only { 0 } else { 1 };
    prop_oneof![
        6 => speed().prop_map(Signal::Speed),
        park => any::<bool>().prop_map(Signal::Park),
        park => any::<bool>().prop_map(Signal::Power),
        4 => Just(Signal::Query),
    ]
}

/// Time steps, ms: mostly sub-second, sometimes past the stale limit.
fn step() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0u64..1_500, 2 => 0u64..8_000, 1 => Just(0u64), 1 => 5_000u64..5_002]
}

fn drive(speed_only: bool) -> impl Strategy<Value = Vec<(u64, Signal)>> {
    prop::collection::vec((step(), signal(speed_only)), 0..120)
}

/// The brief's definition, recomputed from the history alone (no [`Motion`]): powered off or
/// parked by the latest such signal, or every plausible speed reading below `kmh` back to at
/// least `for_ms` before `now`, with no gap over [`SPEED_STALE_MS`] between them and the last
/// one no older than that.
fn safe_by_history(history: &[(u64, Signal)], now: u64, kmh: f32, for_ms: u64) -> bool {
    let latest =
        |pick: fn(Signal) -> Option<bool>| history.iter().rev().find_map(|&(_, s)| pick(s));
    if latest(|s| match s {
        Signal::Power(on) => Some(!on),
        _ => None,
    }) == Some(true)
    {
        return true;
    }
    if latest(|s| match s {
        Signal::Park(p) => Some(p),
        _ => None,
    }) == Some(true)
    {
        return true;
    }
    let speeds: Vec<(u64, f32)> = history
        .iter()
        .filter_map(|&(t, s)| match s {
            Signal::Speed(v) if v.is_finite() && v >= 0.0 => Some((t, v)),
            _ => None,
        })
        .collect();
    let Some(&(last_t, last_v)) = speeds.last() else {
        return false;
    };
    if now - last_t > SPEED_STALE_MS || last_v >= kmh {
        return false;
    }
    let mut start = last_t;
    for pair in speeds.windows(2).rev() {
        let ((t0, v0), (t1, _)) = (pair[0], pair[1]);
        if v0 >= kmh || t1 - t0 > SPEED_STALE_MS {
            break;
        }
        start = t0;
    }
    now - start >= for_ms
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whenever a non-critical prompt may show or stay visible, the car has been stopped long
    /// enough (or is parked / off) by an independent reading of the signals.
    #[test]
    fn non_critical_shows_only_when_stopped(
        signals in drive(false),
        kmh in 0.5f32..10.0,
        for_s in 0u32..6,
        kind in prop::sample::select(PromptKind::ALL.to_vec()),
        state in prop::sample::select(vec![
            PromptState::Pending,
            PromptState::Shown,
            PromptState::Snoozed(Timestamp::EPOCH),
        ]),
    ) {
        let config = Prompts { stopped_kmh: kmh, stopped_for_s: for_s, ..Prompts::default() };
        let settings = Settings::default();
        let shows = ShowCounts::default();
        let p = prompt(kind, state);
        let mut motion = Motion::new(&config);
        let mut history = Vec::new();
        let mut now = T0;
        for (dt, s) in signals {
            now += dt;
            let ts = Timestamp::from_millis(now);
            match s {
                Signal::Speed(v) => { motion.on_speed(v, ts); }
                Signal::Park(b) => motion.on_park(b, ts),
                Signal::Power(b) => motion.on_power(b, ts),
                Signal::Query => {
                    let ctx = GateContext::new(&config, &settings, &motion, &shows);
                    let shows_now = decide(&p, &ctx, ts).is_show() || visible(&p, &ctx, ts);
                    if shows_now {
                        prop_assert!(
                            safe_by_history(&history, now, kmh, u64::from(for_s) * 1_000),
                            "shown while not stopped at {now}: {history:?}"
                        );
                    }
                }
            }
            history.push((now, s));
        }
    }

    /// With speed alone, the motion tracker agrees exactly with the recomputation: it is not
    /// merely cautious, it shows as soon as the car has been stopped long enough.
    #[test]
    fn speed_only_motion_matches_the_history(
        signals in drive(true),
        kmh in 0.5f32..10.0,
        for_s in 0u32..6,
    ) {
        let mut motion = Motion::with_thresholds(kmh, for_s);
        let mut history = Vec::new();
        let mut now = T0;
        let mut rejected = 0;
        for (dt, s) in signals {
            now += dt;
            if let Signal::Speed(v) = s
                && !motion.on_speed(v, Timestamp::from_millis(now))
            {
                rejected += 1;
            }
            history.push((now, s));
            prop_assert_eq!(
                motion.is_stopped(Timestamp::from_millis(now)),
                safe_by_history(&history, now, kmh, u64::from(for_s) * 1_000),
                "at {}: {:?}", now, history
            );
        }
        prop_assert_eq!(motion.rejected(), rejected);
    }


    /// The local day changes exactly at local midnight, whatever the offset.
    #[test]
    fn caps_reset_at_local_midnight(offset in -720i32..=840, day in 19_000u64..21_000) {
        let offset_ms = i64::from(offset) * 60_000;
        // local midnight of `day` in UTC ms
        let midnight = i64::try_from(day * 86_400_000).unwrap() - offset_ms;
        let before = Timestamp::from_millis(u64::try_from(midnight - 1).unwrap());
        let after = Timestamp::from_millis(u64::try_from(midnight).unwrap());
        prop_assert_eq!(local_minute_of_day(before, offset), 1439);
        prop_assert_eq!(local_minute_of_day(after, offset), 0);
        let mut shows = ShowCounts::default();
        shows.record(PromptKind::Milestone, before, offset);
        prop_assert!(!shows.allows(PromptKind::Milestone, 1, before, offset));
        prop_assert!(shows.allows(PromptKind::Milestone, 1, after, offset));
        prop_assert_eq!(local_day(after, offset), i64::try_from(day).unwrap());
    }
}

// ---------------------------------------------------------------- service progress

#[test]
fn a_new_service_step_settles_then_shows_uncapped_and_never_while_moving() {
    let config = Prompts::default();
    let settings = Settings::default();
    let shows = ShowCounts::default();
    let mut p = prompt(PromptKind::ServiceProgress, PromptState::Pending);
    p.created = at(0);
    let settle = SERVICE_SETTLE_MS;
    assert_eq!(
        decide_stopped(&p, &config, &settings, &shows, at(settle - 1)),
        Decision::Hold(HoldReason::Settling)
    );
    assert_eq!(
        decide_stopped(&p, &config, &settings, &shows, at(settle)),
        Decision::Show
    );
    // Moving: held whatever its age (never critical).
    let motion = moving_at(&config, at(settle * 10));
    let ctx = GateContext::new(&config, &settings, &motion, &shows);
    assert_eq!(
        decide(&p, &ctx, at(settle * 10)),
        Decision::Hold(HoldReason::Moving)
    );
    // Uncapped by default; a configured cap holds it.
    assert_eq!(cap_for(PromptKind::ServiceProgress, &config), u32::MAX);
    let capped = Prompts {
        daily_caps: BTreeMap::from([("service_progress".to_owned(), 0)]),
        ..Prompts::default()
    };
    assert_eq!(
        decide_stopped(&p, &capped, &settings, &shows, at(settle)),
        Decision::Hold(HoldReason::Capped)
    );
}
