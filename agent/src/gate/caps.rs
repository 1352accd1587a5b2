//! Daily frequency caps: how many prompts of one kind may be shown for the first time on one
//! local day ([`cap_for`]), and the counting over [`ShowCounts`] ([`Caps`]).
//!
//! Owns: the cap lookup and the day rollover. Does not own: persisting the counts (the caller
//! writes [`ShowCounts`] when [`Caps::record`] changed it), nor which shows count (only first
//! shows, see [`super::decide`]).

use rapport_shared::Timestamp;
use rapport_shared::v1::uplink::PromptKind;

use super::quiet::local_day;
use crate::config::{Prompts, defaults};
use crate::memory::ShowCounts;

/// The most prompts of `kind` shown for the first time per local day: the config's
/// `daily_caps` entry for the kind's name, else [`defaults::DAILY_CAP`] — except
/// `service_progress`, uncapped unless named: it answers the driver's own case (a critical
/// fault may pass five stages in an afternoon), and a newer step of a case supersedes the
/// older one, so one case never stacks up. A cap of 0 keeps the kind's non-critical prompts
/// off the screen. Kinds this build does not know are looked up as `"other"`.
pub(crate) fn cap_for(kind: PromptKind, config: &Prompts) -> u32 {
    let default = match kind {
        PromptKind::ServiceProgress => u32::MAX,
        _ => defaults::DAILY_CAP,
    };
    config
        .daily_caps
        .get(kind.name())
        .copied()
        .unwrap_or(default)
}

/// Daily counting over [`ShowCounts`]. The counts belong to one local day; a count from
/// another day (earlier, or later after the clock went back) reads as zero and is reset by
/// the next [`Caps::record`].
pub(crate) trait Caps {
    /// How many prompts of `kind` were shown today (local day at `now`).
    fn shown_today(&self, kind: PromptKind, now: Timestamp, utc_offset_minutes: i32) -> u32;

    /// Whether one more prompt of `kind` may be shown today under `cap`.
    fn allows(&self, kind: PromptKind, cap: u32, now: Timestamp, utc_offset_minutes: i32) -> bool {
        self.shown_today(kind, now, utc_offset_minutes) < cap
    }

    /// Counts one show of `kind` today, starting a fresh day first if the local day changed.
    fn record(&mut self, kind: PromptKind, now: Timestamp, utc_offset_minutes: i32);
}

impl Caps for ShowCounts {
    fn shown_today(&self, kind: PromptKind, now: Timestamp, utc_offset_minutes: i32) -> u32 {
        if self.day != local_day(now, utc_offset_minutes) {
            return 0;
        }
        self.per_kind.get(&kind.code()).copied().unwrap_or(0)
    }

    fn record(&mut self, kind: PromptKind, now: Timestamp, utc_offset_minutes: i32) {
        let today = local_day(now, utc_offset_minutes);
        if self.day != today {
            self.day = today;
            self.per_kind.clear();
        }
        let count = self.per_kind.entry(kind.code()).or_insert(0);
        *count = count.saturating_add(1);
    }
}
