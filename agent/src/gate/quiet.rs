//! Local time for the gate: a UTC [`Timestamp`] plus the head unit's fixed offset as a local
//! day and minute, for quiet hours and daily caps.
//!
//! Owns: nothing of its own beyond naming; the arithmetic is the calendar's
//! ([`crate::rules::calendar`]) and the quiet-hours window is
//! [`crate::memory::QuietWindow`]. Does not own: daylight-saving rules (the offset is fixed,
//! from `[prompts] utc_offset_minutes`).

use rapport_shared::Timestamp;

/// The local day number at `now` (days since 1970-01-01 in the offset's time zone): the
/// calendar's, so caps and due dates agree on what "a day" is.
pub(crate) fn local_day(now: Timestamp, utc_offset_minutes: i32) -> i64 {
    crate::rules::calendar::local_day(now, utc_offset_minutes)
}

/// The local minute of the day at `now`, 0..1440 (the calendar's).
pub(crate) fn local_minute_of_day(now: Timestamp, utc_offset_minutes: i32) -> u16 {
    crate::rules::calendar::minute_of_day(now, utc_offset_minutes)
}
