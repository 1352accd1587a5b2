//! The gate: whether a prompt may be on the driver's screen now — the driver's safety first,
//! then their patience. Pure: state and `now` in, a [`Decision`] out; no I/O, no clock.
//!
//! Owns: the rules of [`decide`] and [`visible`], and their parts: [`Motion`] (is the car
//! stopped), [`QuietWindow`] (quiet hours, local time) and [`Caps`] (daily caps). Does not
//! own: prompt creation and state changes (the rules mark a prompt shown and call
//! [`Caps::record`] when [`decide`] says [`Decision::Show`]), persistence, the HMI.
//!
//! The rules, in order (the first that applies wins):
//! 1. A final prompt (acknowledged, dismissed, booked, resolved): [`HoldReason::Final`].
//! 2. Snoozed and the snooze not over: [`HoldReason::Snoozed`].
//! 3. Critical: [`Decision::Show`], whatever the motion, quiet hours, caps, mutes and consent
//!    (a critical fault is always shown, marked critical).
//! 4. Its kind muted by the driver: [`HoldReason::Muted`].
//! 5. An engagement kind ([`is_engagement`]) without the driver's consent:
//!    [`HoldReason::NoConsent`].
//! 6. The car not stopped ([`Motion::is_stopped`]): [`HoldReason::Moving`].
//! 7. Inside quiet hours: [`HoldReason::QuietHours`].
//! 8. Never shown yet and its kind's daily cap reached: [`HoldReason::Capped`]. Caps count
//!    first shows only: a prompt already on the screen, or back from a snooze, is not held by
//!    them (the driver already met it; hiding it again would lose it, not spare them).
//! 9. A service case's step ([`PromptKind::ServiceProgress`]) never shown yet and created
//!    less than [`SERVICE_SETTLE_MS`] ago: [`HoldReason::Settling`]. Steps queued while the
//!    car was offline arrive in a burst when it returns; each newer one supersedes the older,
//!    so after the settle only the newest shows, never each in turn.
//! 10. Otherwise [`Decision::Show`].

mod caps;
pub(crate) mod motion;
mod quiet;
#[cfg(test)]
mod tests;

use core::fmt;

use rapport_shared::Timestamp;
use rapport_shared::v1::uplink::PromptKind;

use crate::config::Prompts;
use crate::memory::{PromptRecord, PromptState, QuietHours, QuietWindow, Settings, ShowCounts};

pub(crate) use caps::{Caps, cap_for};

/// How long a new service step waits before its first show (rule 9 of the module doc).
pub(crate) const SERVICE_SETTLE_MS: u64 = 2_000;
pub(crate) use motion::Motion;
pub(crate) use quiet::local_minute_of_day;

/// Whether a prompt may be shown now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It may be on the screen.
    Show,
    /// Not now, for this reason.
    Hold(HoldReason),
}

impl Decision {
    /// Whether it is [`Decision::Show`].
    pub(crate) fn is_show(self) -> bool {
        self == Self::Show
    }
}

/// Why a prompt is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HoldReason {
    /// The car is not stopped (or not known to be).
    Moving,
    /// Inside quiet hours.
    QuietHours,
    /// Its kind reached its daily cap.
    Capped,
    /// The driver muted its kind.
    Muted,
    /// An engagement prompt without the driver's consent.
    NoConsent,
    /// Snoozed and the snooze is not over.
    Snoozed,
    /// The driver acted on it or it went away: it never shows again.
    Final,
    /// A new service step waiting [`SERVICE_SETTLE_MS`] for a newer one queued behind it.
    Settling,
}

impl HoldReason {
    /// The snake-case name, for logs and metrics.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Moving => "moving",
            Self::QuietHours => "quiet_hours",
            Self::Capped => "capped",
            Self::Muted => "muted",
            Self::NoConsent => "no_consent",
            Self::Snoozed => "snoozed",
            Self::Final => "final",
            Self::Settling => "settling",
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Show => f.write_str("show"),
            Self::Hold(reason) => write!(f, "hold ({reason})"),
        }
    }
}

/// Whether prompts of `kind` need the driver's consent to engagement prompts: break-in
/// advice and its end, anniversaries, milestones and campaigns. Kinds this build does not
/// know need it too (safer to ask than to assume). Maintenance, faults and the first-service
/// reminder do not.
pub(crate) fn is_engagement(kind: PromptKind) -> bool {
    match kind {
        PromptKind::Maintenance
        | PromptKind::Fault
        | PromptKind::FirstService
        | PromptKind::ServiceProgress => false,
        PromptKind::BreakIn
        | PromptKind::BreakInComplete
        | PromptKind::Anniversary
        | PromptKind::Milestone
        | PromptKind::Campaign
        | PromptKind::Other(_) => true,
    }
}

/// The quiet hours that apply: the driver's when set, else the config's, else none.
///
/// # Errors
/// [`crate::memory::QuietHoursError`] when the applicable value does not parse (the driver's, when set).
/// [`GateContext::new`] then falls back to the config's quiet hours, then to none.
#[cfg(test)]
pub(crate) fn quiet_window(
    config: &Prompts,
    settings: &Settings,
) -> Result<Option<QuietWindow>, crate::memory::QuietHoursError> {
    settings
        .quiet_hours
        .as_ref()
        .or(config.quiet_hours.as_ref())
        .map(QuietHours::window)
        .transpose()
}

/// Everything [`decide`] reads besides the prompt and the time.
#[derive(Debug, Clone)]
pub(crate) struct GateContext<'a> {
    config: &'a Prompts,
    settings: &'a Settings,
    motion: &'a Motion,
    shows: &'a ShowCounts,
    quiet: Option<QuietWindow>,
}

impl<'a> GateContext<'a> {
    /// The gate's view of the config, the driver's settings, the car's motion and today's
    /// show counts. Quiet hours are resolved once here: the driver's replace the config's;
    /// a value that does not parse is skipped (the driver's → the config's → none). Check
    /// them with [`quiet_window`] or [`QuietHours::window`] where they come in, to report it.
    pub(crate) fn new(
        config: &'a Prompts,
        settings: &'a Settings,
        motion: &'a Motion,
        shows: &'a ShowCounts,
    ) -> Self {
        let parsed = |q: Option<&QuietHours>| q.and_then(|q| q.window().ok());
        let quiet =
            parsed(settings.quiet_hours.as_ref()).or_else(|| parsed(config.quiet_hours.as_ref()));
        Self {
            config,
            settings,
            motion,
            shows,
            quiet,
        }
    }

    /// The quiet hours in force.
    #[cfg(test)]
    pub(crate) fn quiet(&self) -> Option<QuietWindow> {
        self.quiet
    }

    /// Whether `now` is inside the quiet hours in force.
    pub(crate) fn in_quiet_hours(&self, now: Timestamp) -> bool {
        self.quiet
            .is_some_and(|w| w.contains(local_minute_of_day(now, self.config.utc_offset_minutes)))
    }
}

/// Whether `prompt` may be shown at `now`, and if not, why (the rules are in the module doc).
pub(crate) fn decide(prompt: &PromptRecord, ctx: &GateContext<'_>, now: Timestamp) -> Decision {
    if prompt.state.is_final() {
        return Decision::Hold(HoldReason::Final);
    }
    if let PromptState::Snoozed(until) = prompt.state
        && now < until
    {
        return Decision::Hold(HoldReason::Snoozed);
    }
    if prompt.critical {
        return Decision::Show;
    }
    if ctx.settings.muted.contains(&prompt.kind) {
        return Decision::Hold(HoldReason::Muted);
    }
    if is_engagement(prompt.kind) && !ctx.settings.engagement_prompts {
        return Decision::Hold(HoldReason::NoConsent);
    }
    if ctx.motion.moving(now) {
        return Decision::Hold(HoldReason::Moving);
    }
    if ctx.in_quiet_hours(now) {
        return Decision::Hold(HoldReason::QuietHours);
    }
    if is_first_show(prompt) {
        let cap = cap_for(prompt.kind, ctx.config);
        if !ctx
            .shows
            .allows(prompt.kind, cap, now, ctx.config.utc_offset_minutes)
        {
            return Decision::Hold(HoldReason::Capped);
        }
        let settle = core::time::Duration::from_millis(SERVICE_SETTLE_MS);
        if prompt.kind == PromptKind::ServiceProgress
            && now.saturating_since(prompt.created) < settle
        {
            return Decision::Hold(HoldReason::Settling);
        }
    }
    Decision::Show
}

/// Whether `prompt` may be on the screen right now (the filter of the HMI's prompt list):
/// it was marked [`PromptState::Shown`] and [`decide`] still says show. A non-critical prompt
/// disappears while the car moves, in quiet hours, or once muted, and comes back when that
/// ends; a pending or snoozed prompt is not visible until the rules mark it shown (and count
/// it against the caps).
pub(crate) fn visible(prompt: &PromptRecord, ctx: &GateContext<'_>, now: Timestamp) -> bool {
    prompt.state == PromptState::Shown && decide(prompt, ctx, now).is_show()
}

/// Whether showing `prompt` now would be its first show (the only shows caps count).
fn is_first_show(prompt: &PromptRecord) -> bool {
    prompt.state == PromptState::Pending && prompt.first_shown.is_none()
}
