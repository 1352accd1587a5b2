//! The JSON shapes of the HMI API, and their conversions from what the agent remembers.
//!
//! Owns: the views the screen reads and the CLI parses back (hence `Serialize` and
//! `Deserialize` on each), the screen events, the driver's actions, and the checks on
//! settings the screen sends. Does not own: the remembered types themselves
//! ([`crate::memory`]) nor any decision about what is shown.
//!
//! Names, not codes, go over this API: kinds, states, stages and severities are their
//! snake-case names, times are unix milliseconds, distances kilometres.

use std::str::FromStr;

use rapport_shared::v1::uplink::PromptKind;
use rapport_shared::{Odometer, Timestamp};
use serde::{Deserialize, Serialize};

use rapport_shared::v1::downlink::ServiceProgress;

use crate::memory::{DtcHistory, PromptRecord, QuietHours, ServiceCase, ServiceRecord, Settings};

/// One step of a service case (`GET /v1/service`'s `history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceStepView {
    /// Stage name: `raised`, `contacted`, `dispatched`, `on_site`, `booked`, `resolved`,
    /// `cancelled` (`other` from a newer cloud).
    pub stage: String,
    /// The case's move counter at this step.
    pub step: u32,
    /// When the stage was reached (the cloud's clock), unix ms.
    pub reached_at: u64,
    /// The partner handling the case then, by its display name.
    pub partner: String,
    /// The advisor who contacted the driver, once known.
    pub advisor: Option<String>,
    /// Expected arrival (dispatched) or the appointment (booked), unix ms.
    pub eta: Option<u64>,
}

impl From<&ServiceProgress> for ServiceStepView {
    fn from(p: &ServiceProgress) -> Self {
        Self {
            stage: p.stage.name().to_owned(),
            step: p.step,
            reached_at: p.reached_at.as_millis(),
            partner: p.partner.clone(),
            advisor: p.advisor.clone(),
            eta: p.eta.map(Timestamp::as_millis),
        }
    }
}

/// A service case as the head unit shows its progress (`GET /v1/service`): the newest step's
/// fields at the top, every step kept in `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceCaseView {
    /// The cloud's alert id: what `POST /v1/service/{alert_id}/answer` names.
    pub alert_id: u64,
    /// What it is about: a DTC code (`P0300`) or a maintenance item (`oil`).
    pub subject: String,
    /// Whether it is about a critical fault.
    pub critical: bool,
    /// The newest stage's name (`cancelled` once the driver cancelled it here).
    pub stage: String,
    /// The newest step.
    pub step: u32,
    /// When the newest stage was reached, unix ms.
    pub reached_at: u64,
    /// The partner handling it, by display name.
    pub partner: String,
    /// The advisor, once known (the newest step that named one).
    pub advisor: Option<String>,
    /// Expected arrival or appointment of the newest step, unix ms.
    pub eta: Option<u64>,
    /// Every step kept (at most 8), oldest first.
    pub history: Vec<ServiceStepView>,
    /// The driver's latest answer (`left_car`, `cancel`), if any.
    pub answer: Option<String>,
    /// Whether the case is final (resolved, cancelled): it takes no answer and leaves the list
    /// a day after it closed.
    pub closed: bool,
}

impl ServiceCaseView {
    /// The view of `case` held under `alert_id`.
    pub(crate) fn new(alert_id: u64, case: &ServiceCase) -> Self {
        let history: Vec<ServiceStepView> =
            case.history.iter().map(ServiceStepView::from).collect();
        let latest = history.last().cloned();
        let latest_progress = case.latest();
        let stage = if case.cancelled_by_driver() {
            "cancelled".to_owned()
        } else {
            latest
                .as_ref()
                .map_or_else(String::new, |l| l.stage.clone())
        };
        Self {
            alert_id,
            subject: latest_progress.map_or_else(String::new, |p| p.subject.clone()),
            critical: latest_progress.is_some_and(|p| p.critical),
            stage,
            step: latest.as_ref().map_or(0, |l| l.step),
            reached_at: latest.as_ref().map_or(0, |l| l.reached_at),
            partner: latest
                .as_ref()
                .map_or_else(String::new, |l| l.partner.clone()),
            advisor: case.history.iter().rev().find_map(|p| p.advisor.clone()),
            eta: latest.as_ref().and_then(|l| l.eta),
            history,
            answer: case.answers.last().map(|(a, _)| a.name().to_owned()),
            closed: case.is_closed(),
        }
    }
}

/// A prompt as the screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptView {
    /// Stable id naming the condition (`maintenance:oil:2:due`, `fault:P0300:1`).
    pub id: String,
    /// Prompt kind name (`maintenance`, `fault`, `milestone`, …).
    pub kind: String,
    /// Its subject: item id, DTC code, milestone km, campaign id.
    pub subject: String,
    /// Shown at once, even while driving, and marked as critical.
    pub critical: bool,
    /// Short title.
    pub title: String,
    /// The text.
    pub text: String,
    /// State name (`pending`, `shown`, `acknowledged`, `snoozed`, …).
    pub state: String,
    /// When its condition started, unix ms.
    pub created_ms: u64,
    /// When it was first shown, unix ms.
    pub first_shown_ms: Option<u64>,
}

impl From<&PromptRecord> for PromptView {
    fn from(p: &PromptRecord) -> Self {
        Self {
            id: p.id.clone(),
            kind: p.kind.to_string(),
            subject: p.subject.clone(),
            critical: p.critical,
            title: p.title.clone(),
            text: p.text.clone(),
            state: p.state.as_str().to_owned(),
            created_ms: p.created.as_millis(),
            first_shown_ms: p.first_shown.map(Timestamp::as_millis),
        }
    }
}

/// An active fault as the screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DtcView {
    /// The code (`P0300`, `U0100-87`, `SPN100/FMI1`).
    pub code: String,
    /// Severity name (`info`, `warning`, `critical`).
    pub severity: String,
    /// First time ever seen, unix ms.
    pub first_seen_ms: u64,
    /// Last time reported active, unix ms.
    pub last_seen_ms: u64,
    /// How many times it appeared.
    pub times_seen: u32,
}

impl From<&DtcHistory> for DtcView {
    fn from(h: &DtcHistory) -> Self {
        Self {
            code: h.dtc.code().to_string(),
            severity: h.severity.as_str().to_owned(),
            first_seen_ms: h.first_seen.as_millis(),
            last_seen_ms: h.last_seen.as_millis(),
            times_seen: h.times_seen,
        }
    }
}

/// One maintenance item's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceView {
    /// Item id (`oil`, `brake_fluid`).
    pub item: String,
    /// Stage name (`ok`, `due_soon`, `due`, `overdue`).
    pub stage: String,
    /// Odometer at which it is due, km.
    pub due_km: Option<f64>,
    /// Date it is due, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// Kilometres left (negative: past due).
    pub remaining_km: Option<f64>,
    /// Days left (negative: past due).
    pub remaining_days: Option<i64>,
}

/// The car's state as the screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VehicleView {
    /// The VIN.
    pub vin: String,
    /// Vehicle line (model family).
    pub line: String,
    /// Category name (`passenger`, `commercial`).
    pub category: String,
    /// Latest odometer, km.
    pub odometer_km: Option<f64>,
    /// Latest engine hours.
    pub engine_hours: Option<f64>,
    /// Whether the car is moving.
    pub moving: bool,
    /// Whether it is in park (`None`: no park signal).
    pub parked: Option<bool>,
    /// Malfunction indicator lamp on.
    pub mil: bool,
    /// Active faults.
    pub active_dtcs: Vec<DtcView>,
    /// Maintenance items.
    pub maintenance: Vec<MaintenanceView>,
    /// Records waiting in the outbox.
    pub outbox_depth: u64,
}

/// A service as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceView {
    /// Schedule items it covered.
    pub items: Vec<String>,
    /// When it was performed, unix ms.
    pub at_ms: u64,
    /// Odometer then, km.
    pub odometer_km: Option<f64>,
}

impl From<&ServiceRecord> for ServiceView {
    fn from(s: &ServiceRecord) -> Self {
        Self {
            items: s.items.clone(),
            at_ms: s.at.as_millis(),
            odometer_km: s.odometer.map(Odometer::km),
        }
    }
}

/// A service the driver records, as checked by the server: at least one item, none blank,
/// no duplicates, an odometer in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    /// Schedule item ids (whether they are on the schedule is the backend's to check).
    pub items: Vec<String>,
    /// Odometer at the service; `None`: the current one.
    pub odometer: Option<Odometer>,
    /// When; `None`: now.
    pub at: Option<Timestamp>,
}

/// Quiet hours, `"HH:MM"` to `"HH:MM"`, local time; may span midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuietHoursView {
    /// Start, `"22:00"`.
    pub start: String,
    /// End, `"07:00"`.
    pub end: String,
}

/// The driver's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingsView {
    /// Consent to engagement prompts.
    pub engagement_prompts: bool,
    /// Consent to sharing the car's data with partners.
    pub partner_sharing: bool,
    /// Prompt kind names the driver turned off (critical faults show regardless).
    pub muted: Vec<String>,
    /// Quiet hours, if any.
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursView>,
}

impl From<&Settings> for SettingsView {
    fn from(s: &Settings) -> Self {
        Self {
            engagement_prompts: s.engagement_prompts,
            partner_sharing: s.partner_sharing,
            muted: s.muted.iter().map(ToString::to_string).collect(),
            quiet_hours: s.quiet_hours.as_ref().map(|q| QuietHoursView {
                start: q.start.clone(),
                end: q.end.clone(),
            }),
        }
    }
}

impl SettingsView {
    /// Checks and converts: quiet hours must be `"HH:MM"` with start ≠ end, muted names must
    /// be known prompt kinds; duplicate kinds are dropped (first one kept).
    ///
    /// # Errors
    /// Every problem found, each naming its field, joined with `"; "`.
    pub(crate) fn to_settings(&self) -> Result<Settings, String> {
        let mut problems = Vec::new();
        let mut muted: Vec<PromptKind> = Vec::new();
        for (i, name) in self.muted.iter().enumerate() {
            match PromptKind::from_str(name) {
                Ok(kind) if !muted.contains(&kind) => muted.push(kind),
                Ok(_) => {}
                Err(_) => problems.push(format!(
                    "muted[{i}]: {name:?} is not a prompt kind (expected one of {})",
                    PromptKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        let quiet_hours = match &self.quiet_hours {
            None => None,
            Some(q) => {
                let start = minute_of_day(&q.start);
                let end = minute_of_day(&q.end);
                if start.is_none() {
                    problems.push(format!(
                        "quiet_hours.start: {:?} is not HH:MM (00:00 to 23:59)",
                        q.start
                    ));
                }
                if end.is_none() {
                    problems.push(format!(
                        "quiet_hours.end: {:?} is not HH:MM (00:00 to 23:59)",
                        q.end
                    ));
                }
                if start.is_some() && start == end {
                    problems.push(format!(
                        "quiet_hours: start and end are both {:?}; give a span",
                        q.start
                    ));
                }
                Some(QuietHours {
                    start: q.start.clone(),
                    end: q.end.clone(),
                })
            }
        };
        if problems.is_empty() {
            Ok(Settings {
                engagement_prompts: self.engagement_prompts,
                partner_sharing: self.partner_sharing,
                muted,
                quiet_hours,
            })
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Minutes since midnight for `"HH:MM"` (exactly two digits each, 00:00 to 23:59).
pub(crate) fn minute_of_day(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let h = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
    let m = u16::from(b[3] - b'0') * 10 + u16::from(b[4] - b'0');
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// What the driver did with a prompt. Serialises as the request body of
/// `POST /v1/prompts/{id}/action` (`{"action":"snooze","minutes":30}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DriverAction {
    /// Acknowledged.
    Ack,
    /// Snoozed for this many minutes (`1..=`[`super::MAX_SNOOZE_MINUTES`]).
    Snooze {
        /// How long.
        minutes: u32,
    },
    /// Dismissed: stays away until its condition changes.
    Dismiss,
    /// Asked to book a service.
    Book,
}

impl DriverAction {
    /// The action's name in the request body.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Snooze { .. } => "snooze",
            Self::Dismiss => "dismiss",
            Self::Book => "book",
        }
    }
}

/// Something the screen should know about, sent on `/v1/prompts/stream` (see the module doc
/// of [`crate::hmi`]). As JSON (the CLI's `watch --json`) it is
/// `{"event":"<name>","data":<the event's data>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum HmiEvent {
    /// A prompt became visible, or changed.
    Prompt(PromptView),
    /// A prompt left the screen: the driver acted or its condition went away.
    Closed {
        /// Its id.
        id: String,
        /// Its state now (`acknowledged`, `snoozed`, `dismissed`, `booked`, `resolved`).
        state: String,
    },
    /// The safety gate took a prompt off the screen for now.
    Hidden {
        /// Its id.
        id: String,
    },
    /// Events were lost: GET `/v1/prompts` and replace what is shown.
    Resync,
}

#[derive(Serialize, Deserialize)]
struct ClosedData {
    id: String,
    state: String,
}

#[derive(Serialize, Deserialize)]
struct HiddenData {
    id: String,
}

impl HmiEvent {
    /// The SSE event name.
    pub(crate) const fn sse_name(&self) -> &'static str {
        match self {
            Self::Prompt(_) => "prompt",
            Self::Closed { .. } => "closed",
            Self::Hidden { .. } => "hidden",
            Self::Resync => "resync",
        }
    }

    /// The SSE data line: the event's JSON (`{}` for `resync`: an event without data is not
    /// dispatched by browsers' `EventSource`).
    ///
    /// # Errors
    /// Only if serde_json fails on these plain structs, which it does not.
    pub(crate) fn sse_data(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Prompt(p) => serde_json::to_string(p),
            Self::Closed { id, state } => serde_json::to_string(&ClosedData {
                id: id.clone(),
                state: state.clone(),
            }),
            Self::Hidden { id } => serde_json::to_string(&HiddenData { id: id.clone() }),
            Self::Resync => Ok("{}".to_owned()),
        }
    }

    /// Parses an SSE event; `Ok(None)` for an event name this build does not know (a newer
    /// agent may send more).
    ///
    /// # Errors
    /// The data does not parse as the named event's JSON.
    pub(crate) fn from_sse(name: &str, data: &str) -> Result<Option<Self>, serde_json::Error> {
        Ok(Some(match name {
            "prompt" => Self::Prompt(serde_json::from_str(data)?),
            "closed" => {
                let d: ClosedData = serde_json::from_str(data)?;
                Self::Closed {
                    id: d.id,
                    state: d.state,
                }
            }
            "hidden" => {
                let d: HiddenData = serde_json::from_str(data)?;
                Self::Hidden { id: d.id }
            }
            "resync" => Self::Resync,
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::memory::PromptState;

    fn settings(muted: &[&str], quiet: Option<(&str, &str)>) -> SettingsView {
        SettingsView {
            engagement_prompts: true,
            partner_sharing: false,
            muted: muted.iter().map(|s| (*s).to_owned()).collect(),
            quiet_hours: quiet.map(|(s, e)| QuietHoursView {
                start: s.to_owned(),
                end: e.to_owned(),
            }),
        }
    }

    #[test]
    fn hhmm_accepts_only_two_digit_24_hour_times() {
        assert_eq!(minute_of_day("00:00"), Some(0));
        assert_eq!(minute_of_day("07:30"), Some(450));
        assert_eq!(minute_of_day("23:59"), Some(1439));
        for bad in [
            "24:00", "12:60", "7:30", "07:3", "0730", "07-30", "ab:cd", "", "07:30 ",
        ] {
            assert_eq!(minute_of_day(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn settings_convert_with_kinds_parsed_and_duplicates_dropped() {
        let s = settings(
            &["milestone", "campaign", "milestone"],
            Some(("22:00", "07:00")),
        )
        .to_settings()
        .unwrap();
        assert_eq!(s.muted, [PromptKind::Milestone, PromptKind::Campaign]);
        assert_eq!(s.quiet_hours.unwrap().start, "22:00");
        // And back.
        let back = SettingsView::from(&Settings {
            muted: vec![PromptKind::Fault, PromptKind::Other(99)],
            ..Settings::default()
        });
        assert_eq!(back.muted, ["fault", "other(99)"]);
    }

    #[test]
    fn settings_report_every_problem_with_its_field() {
        let err = settings(&["fault", "nonsense"], Some(("25:00", "7:00")))
            .to_settings()
            .unwrap_err();
        assert!(err.contains("muted[1]: \"nonsense\""), "{err}");
        assert!(err.contains("quiet_hours.start: \"25:00\""), "{err}");
        assert!(err.contains("quiet_hours.end: \"7:00\""), "{err}");
        let err = settings(&[], Some(("22:00", "22:00")))
            .to_settings()
            .unwrap_err();
        assert!(err.contains("start and end are both"), "{err}");
        // "other" is the name of unknown kinds, not a kind one can mute.
        assert!(settings(&["other"], None).to_settings().is_err());
    }

    #[test]
    fn events_round_trip_through_sse_name_and_data() {
        let prompt = PromptView {
            id: "fault:P0300:1".into(),
            kind: "fault".into(),
            subject: "P0300".into(),
            critical: true,
            title: "Misfire".into(),
            text: "Engine misfire detected".into(),
            state: "shown".into(),
            created_ms: 5,
            first_shown_ms: None,
        };
        for ev in [
            HmiEvent::Prompt(prompt),
            HmiEvent::Closed {
                id: "a".into(),
                state: "dismissed".into(),
            },
            HmiEvent::Hidden { id: "b".into() },
            HmiEvent::Resync,
        ] {
            let data = ev.sse_data().unwrap();
            assert_eq!(HmiEvent::from_sse(ev.sse_name(), &data).unwrap(), Some(ev));
        }
        assert_eq!(HmiEvent::from_sse("future_event", "{}").unwrap(), None);
        assert!(HmiEvent::from_sse("closed", "{\"id\":1}").is_err());
        let json = serde_json::to_string(&HmiEvent::Hidden { id: "x".into() }).unwrap();
        assert_eq!(json, r#"{"event":"hidden","data":{"id":"x"}}"#);
    }

    #[test]
    fn driver_action_serialises_as_the_request_body() {
        let body = serde_json::to_string(&DriverAction::Snooze { minutes: 30 }).unwrap();
        assert_eq!(body, r#"{"action":"snooze","minutes":30}"#);
        assert_eq!(
            serde_json::to_string(&DriverAction::Ack).unwrap(),
            r#"{"action":"ack"}"#
        );
    }

    #[test]
    fn prompt_view_names_kind_and_state() {
        let rec = PromptRecord {
            id: "milestone:50000".into(),
            kind: PromptKind::Milestone,
            subject: "50000".into(),
            critical: false,
            title: "50,000 km".into(),
            text: "Congratulations".into(),
            created: Timestamp::from_millis(1_000),
            state: PromptState::Snoozed(Timestamp::from_millis(9_000)),
            first_shown: Some(Timestamp::from_millis(2_000)),
            times_shown: 1,
            closed_at: None,
        };
        let v = PromptView::from(&rec);
        assert_eq!(
            (v.kind.as_str(), v.state.as_str(), v.first_shown_ms),
            ("milestone", "snoozed", Some(2_000))
        );
    }
}
