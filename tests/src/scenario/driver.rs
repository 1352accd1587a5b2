//! The simulated driver: what a person of each persona does with a prompt on the screen, and
//! how long they take — seeded choices, so a seed always gives the same taps.

use std::time::Duration;

use rapport_agent::rules::DriverAction;

use super::cast::Persona;
use super::rng::Rng;

/// What the driver will do with a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Press this, after this long.
    Act(DriverAction, Duration),
    /// Leave it on the screen.
    Ignore,
}

/// Label of an action for the log.
pub fn label(action: DriverAction) -> String {
    match action {
        DriverAction::Ack => "ack".into(),
        DriverAction::Book => "book".into(),
        DriverAction::Dismiss => "dismiss".into(),
        DriverAction::Snooze { minutes } => format!("snooze {minutes} min"),
    }
}

/// Decides for a prompt of `kind` (`critical` ones are always acknowledged).
pub fn decide(persona: Persona, kind: &str, critical: bool, rng: &mut Rng) -> Choice {
    use DriverAction::{Ack, Book, Dismiss};
    const I: Option<DriverAction> = None;
    let snooze = |minutes| Some(DriverAction::Snooze { minutes });
    let delay = Duration::from_secs(rng.range(8, 90));
    // The service desk's news ("technician on the way") is read, not tapped: a tap would be
    // an uplink written while the car runs its step, and the cloud's answer to it (a campaign
    // for the engaged driver) would reach the car at a moment real time decides.
    if kind == "service_progress" {
        return Choice::Ignore;
    }
    if critical {
        return Choice::Act(Ack, delay);
    }
    let maintenance = matches!(kind, "maintenance" | "first_service");
    let table: Vec<(u64, Option<DriverAction>)> = match (persona, maintenance, kind) {
        (Persona::Engaged, true, _) => vec![(85, Some(Book)), (15, snooze(24 * 60))],
        (Persona::Casual, true, _) => {
            vec![(45, Some(Book)), (35, snooze(24 * 60)), (20, Some(Dismiss))]
        }
        (Persona::Distant, true, _) => vec![(55, Some(Dismiss)), (45, I)],
        (Persona::Fleet, true, _) => vec![(90, Some(Book)), (10, Some(Ack))],
        (Persona::Engaged, false, "fault") => vec![(60, Some(Book)), (40, Some(Ack))],
        (_, false, "fault") => vec![(70, Some(Ack)), (30, snooze(60))],
        (Persona::Engaged, false, "campaign") => vec![(70, Some(Ack)), (30, Some(Dismiss))],
        (Persona::Casual, false, "campaign") => {
            vec![(45, Some(Ack)), (30, snooze(120)), (25, Some(Dismiss))]
        }
        (Persona::Engaged, false, _) => vec![(90, Some(Ack)), (10, Some(Dismiss))],
        (Persona::Casual, false, _) => vec![(60, Some(Ack)), (20, Some(Dismiss)), (20, I)],
        (Persona::Distant, false, _) => vec![(40, Some(Dismiss)), (60, I)],
        (Persona::Fleet, false, _) => vec![(80, Some(Dismiss)), (20, Some(Ack))],
    };
    match rng.pick(&table).copied().flatten() {
        Some(action) => Choice::Act(action, delay),
        None => Choice::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_prompts_are_always_acknowledged() {
        let mut rng = Rng::new(3, 3);
        for persona in [
            Persona::Engaged,
            Persona::Casual,
            Persona::Distant,
            Persona::Fleet,
        ] {
            for _ in 0..50 {
                assert!(matches!(
                    decide(persona, "fault", true, &mut rng),
                    Choice::Act(DriverAction::Ack, _)
                ));
            }
        }
    }

    #[test]
    fn service_progress_is_read_not_tapped() {
        let mut rng = Rng::new(5, 5);
        for persona in [
            Persona::Engaged,
            Persona::Casual,
            Persona::Distant,
            Persona::Fleet,
        ] {
            assert_eq!(
                decide(persona, "service_progress", false, &mut rng),
                Choice::Ignore
            );
        }
    }

    #[test]
    fn engaged_drivers_mostly_book_and_distant_ones_never_do() {
        let mut rng = Rng::new(9, 1);
        let books = (0..1000)
            .filter(|_| {
                matches!(
                    decide(Persona::Engaged, "maintenance", false, &mut rng),
                    Choice::Act(DriverAction::Book, _)
                )
            })
            .count();
        assert!((780..=920).contains(&books), "{books}");
        assert!((0..1000).all(|_| !matches!(
            decide(Persona::Distant, "maintenance", false, &mut rng),
            Choice::Act(DriverAction::Book, _)
        )));
    }
}
