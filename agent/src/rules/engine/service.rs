//! Service cases ([`crate::memory::ServiceCase`]): a progress downlink applied to the case it
//! names, the driver's answer from the screen, and final cases leaving after a while.
//!
//! Rules: a step not above the one held is superseded — a repeat, or an older move delivered
//! late — and changes nothing (it is never shown, and never shown twice). A resolved or
//! cancelled step closes the case; so does the driver's cancel, at once, before the cloud
//! hears of it. A closed case leaves memory [`SERVICE_CLOSED_KEEP_MS`] after it closed; at
//! most [`MAX_SERVICE_CASES`] are held (the oldest closed ones go first, then the oldest).
//! The prompts are made from the cases by `conditions`; their life is the engine's.
//!
//! Owns: the cases' state. Does not own: the words (`crate::rules::service`), the screen
//! (`crate::gate`), nor writing (the caller).

use rapport_shared::Timestamp;
use rapport_shared::v1::downlink::ServiceProgress;
use rapport_shared::v1::uplink::{DriverAnswer, RecordBody, ServiceAnswer};

use super::{Rules, RulesError};
use crate::memory::{Changes, MAX_SERVICE_CASES, SERVICE_CLOSED_KEEP_MS, ServiceCase};

impl Rules {
    /// A progress message from the cloud (once per downlink id, the caller checked): taken
    /// when its step is above the one held (or the case is new), else superseded and ignored.
    pub(super) fn apply_service_progress(
        &mut self,
        p: &ServiceProgress,
        now: Timestamp,
        ch: &mut Changes,
    ) {
        let id = p.alert_id;
        match self.mem.service_cases.get_mut(&id) {
            Some(case) if p.step <= case.step() => {
                let held = case.step();
                tracing::info!(
                    alert = id,
                    step = p.step,
                    held,
                    "service step superseded: ignored"
                );
                return;
            }
            Some(case) => case.push(p.clone(), now),
            None => {
                self.mem
                    .service_cases
                    .insert(id, ServiceCase::new(p.clone(), now));
            }
        }
        tracing::info!(alert = id, step = p.step, stage = %p.stage, "service case moved");
        ch.service_cases.insert(id);
        self.bound_service_cases(ch);
    }

    /// The driver answered a service case from the screen: one `ServiceAnswer` record per
    /// answer. `left_car` again on the same case changes nothing (no second record); a cancel
    /// closes the case here at once.
    ///
    /// # Errors
    /// [`RulesError::NotFound`] for a case not held; [`RulesError::Conflict`] for a case
    /// already resolved or cancelled.
    pub fn answer_service(
        &mut self,
        alert_id: u64,
        answer: DriverAnswer,
        now: Timestamp,
    ) -> Result<Changes, RulesError> {
        let case = self
            .mem
            .service_cases
            .get_mut(&alert_id)
            .ok_or_else(|| RulesError::NotFound(format!("service case {alert_id}")))?;
        if case.is_closed() {
            let how = if case.cancelled_by_driver() {
                "cancelled by the driver".to_owned()
            } else {
                case.latest()
                    .map_or_else(|| "closed".to_owned(), |p| p.stage.to_string())
            };
            return Err(RulesError::Conflict(format!(
                "service case {alert_id} is already {how}"
            )));
        }
        let mut ch = Changes {
            durable: true,
            ..Changes::default()
        };
        if case.answers.iter().any(|(a, _)| *a == answer) {
            // Only left_car can repeat on an open case: already told.
            return Ok(ch);
        }
        case.answers.push((answer, now));
        if answer == DriverAnswer::Cancel {
            case.closed_at = Some(now);
        }
        ch.service_cases.insert(alert_id);
        ch.outbox.push((
            now,
            RecordBody::ServiceAnswer(ServiceAnswer { alert_id, answer }),
        ));
        self.evaluate(now, &mut ch);
        Ok(ch)
    }

    /// Closed cases past their keep time leave; past [`MAX_SERVICE_CASES`], the oldest closed
    /// ones, then the oldest, leave too.
    pub(super) fn expire_service_cases(&mut self, now: Timestamp, ch: &mut Changes) {
        let keep = core::time::Duration::from_millis(SERVICE_CLOSED_KEEP_MS);
        let gone: Vec<u64> = self
            .mem
            .service_cases
            .iter()
            .filter(|(_, c)| {
                c.closed_at
                    .is_some_and(|at| now.saturating_since(at) >= keep)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.mem.service_cases.remove(&id);
            ch.service_cases.insert(id);
        }
    }

    fn bound_service_cases(&mut self, ch: &mut Changes) {
        while self.mem.service_cases.len() > MAX_SERVICE_CASES {
            let oldest = self
                .mem
                .service_cases
                .iter()
                .min_by_key(|(_, c)| (!c.is_closed(), c.received))
                .map(|(id, _)| *id);
            let Some(id) = oldest else { break };
            tracing::warn!(alert = id, "too many service cases held: the oldest leaves");
            self.mem.service_cases.remove(&id);
            ch.service_cases.insert(id);
        }
    }
}
