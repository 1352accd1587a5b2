//! The words of a service case's progress on the driver's screen: one wording per stage, the
//! partner's name first, the ETA (or appointment) in the car's local time. Pure: the step,
//! `now` and the head unit's UTC offset in, a title and a text out.
//!
//! Owns: the wording and the cleaning of the cloud's strings (control characters dropped,
//! each bounded to [`MAX_FIELD_CHARS`]). Does not own: which step is shown
//! (`super::engine`), nor when ([`crate::gate`]).

use rapport_shared::Timestamp;
use rapport_shared::v1::downlink::{ServiceProgress, ServiceStage};

use super::calendar;

/// Longest partner, advisor or subject shown, in characters (longer ones end in `…`).
pub(crate) const MAX_FIELD_CHARS: usize = 48;

/// A string from the cloud as the screen shows it: control characters dropped, trimmed,
/// at most [`MAX_FIELD_CHARS`] characters.
pub(crate) fn clean(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    let s = s.trim();
    if s.chars().count() <= MAX_FIELD_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_FIELD_CHARS - 1).collect();
    out.push('…');
    out
}

/// `at` on the car's wall clock: `14:20` on the local day of `now`, `14:20 tomorrow` on the
/// next, else `14:20 on 2026-12-09`.
pub(crate) fn local_time(at: Timestamp, now: Timestamp, utc_offset_minutes: i32) -> String {
    let minute = calendar::minute_of_day(at, utc_offset_minutes);
    let hhmm = format!("{:02}:{:02}", minute / 60, minute % 60);
    let day = calendar::local_day(at, utc_offset_minutes);
    let today = calendar::local_day(now, utc_offset_minutes);
    if day == today {
        hhmm
    } else if day == today + 1 {
        format!("{hhmm} tomorrow")
    } else {
        match calendar::local_date(at, utc_offset_minutes) {
            Some(date) => format!("{hhmm} on {date}"),
            None => hhmm,
        }
    }
}

/// The title and text of `p` on the screen at `now`.
pub(crate) fn words(
    p: &ServiceProgress,
    now: Timestamp,
    utc_offset_minutes: i32,
) -> (String, String) {
    let partner = clean(&p.partner);
    let partner = if partner.is_empty() {
        "Your service partner".to_owned()
    } else {
        partner
    };
    let subject = clean(&p.subject);
    let advisor = p.advisor.as_deref().map(clean).filter(|a| !a.is_empty());
    let eta = p.eta.map(|t| local_time(t, now, utc_offset_minutes));
    let title = format!("Service {subject}");
    let what = match (p.stage, advisor, eta) {
        (ServiceStage::Raised, _, _) => "your case is open; they will contact you".to_owned(),
        (ServiceStage::Contacted, Some(a), _) => format!("{a} is handling your case"),
        (ServiceStage::Contacted, None, _) => "an advisor is handling your case".to_owned(),
        (ServiceStage::Dispatched, _, Some(eta)) => {
            format!("technician on the way, arriving {eta}")
        }
        (ServiceStage::Dispatched, _, None) => "technician on the way".to_owned(),
        (ServiceStage::OnSite, _, _) => "the technician is at your car".to_owned(),
        (ServiceStage::Booked, _, Some(eta)) => format!("appointment booked for {eta}"),
        (ServiceStage::Booked, _, None) => "appointment booked".to_owned(),
        (ServiceStage::Resolved, _, _) => "your case is resolved".to_owned(),
        (ServiceStage::Cancelled, _, _) => "your case was cancelled".to_owned(),
        (ServiceStage::Other(_), _, _) => "your case moved on".to_owned(),
    };
    (title, format!("{partner}: {what} ({subject})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T12:00:00Z.
    const NOON: u64 = 1_796_644_800_000;

    fn progress(stage: ServiceStage, eta: Option<u64>, advisor: Option<&str>) -> ServiceProgress {
        ServiceProgress {
            alert_id: 7,
            subject: "P0300".into(),
            critical: true,
            stage,
            step: 3,
            reached_at: Timestamp::from_millis(NOON),
            partner: "Dealer North".into(),
            advisor: advisor.map(Into::into),
            eta: eta.map(Timestamp::from_millis),
        }
    }

    fn text(stage: ServiceStage, eta: Option<u64>, advisor: Option<&str>, offset: i32) -> String {
        words(
            &progress(stage, eta, advisor),
            Timestamp::from_millis(NOON),
            offset,
        )
        .1
    }

    #[test]
    fn each_stage_has_its_wording_with_partner_and_subject() {
        let eta = Some(NOON + 140 * 60_000); // 14:20 UTC
        assert_eq!(
            text(ServiceStage::Dispatched, eta, None, 0),
            "Dealer North: technician on the way, arriving 14:20 (P0300)"
        );
        assert_eq!(
            text(ServiceStage::Contacted, None, Some("Li Wei"), 0),
            "Dealer North: Li Wei is handling your case (P0300)"
        );
        let all = [
            ServiceStage::Raised,
            ServiceStage::Contacted,
            ServiceStage::Dispatched,
            ServiceStage::OnSite,
            ServiceStage::Booked,
            ServiceStage::Resolved,
            ServiceStage::Cancelled,
            ServiceStage::Other(99),
        ];
        let texts: Vec<String> = all.iter().map(|s| text(*s, None, None, 0)).collect();
        for (i, t) in texts.iter().enumerate() {
            assert!(
                t.starts_with("Dealer North: ") && t.ends_with("(P0300)"),
                "{t}"
            );
            assert!(!texts[..i].contains(t), "two stages read alike: {t}");
        }
    }

    #[test]
    fn eta_is_in_the_cars_local_time() {
        let eta = Some(NOON + 140 * 60_000);
        // UTC+8: 22:20 the same day.
        assert!(text(ServiceStage::Dispatched, eta, None, 480).contains("arriving 22:20 ("));
        // UTC+10: 00:20 the next local day.
        assert!(text(ServiceStage::Dispatched, eta, None, 600).contains("arriving 00:20 tomorrow"));
        let booked = Some(NOON + 3 * 86_400_000 - 150 * 60_000); // 2026-12-10 09:30 UTC
        assert_eq!(
            text(ServiceStage::Booked, booked, None, 0),
            "Dealer North: appointment booked for 09:30 on 2026-12-10 (P0300)"
        );
    }

    #[test]
    fn cloud_strings_are_cleaned_and_bounded() {
        assert_eq!(clean(" Dealer\u{7}\nNorth "), "DealerNorth");
        let long = "x".repeat(500);
        let c = clean(&long);
        assert_eq!(c.chars().count(), MAX_FIELD_CHARS);
        assert!(c.ends_with('…'));
        let mut p = progress(ServiceStage::OnSite, None, None);
        p.partner = "\n".into();
        let (_, t) = words(&p, Timestamp::from_millis(NOON), 0);
        assert!(t.starts_with("Your service partner: "), "{t}");
    }
}
