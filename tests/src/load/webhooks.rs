//! The partner's side of a load run: the receiver ([`rapport_harness::partner::Receiver`], which verifies
//! every signature) on its own thread and current-thread runtime, so the vehicles' load on the
//! main runtime does not delay the moment a webhook is seen; the arrivals stamped with the
//! run's monotonic clock; and matching them to what the run caused: the injected faults by
//! VIN and code, the maintenance stories by VIN and item, and the escalations by alert id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_shared::Vin;
use tokio::sync::oneshot;

use super::LoadError;
use super::report::WebhookTally;
use super::vehicle::{ITEM, Injected};
use rapport_harness::partner::{Receiver, Stats};

/// A webhook as the partner received it.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub(crate) at: Instant,
    /// `webhook-id`.
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) vin: String,
    pub(crate) subject: String,
    /// The body's `alert_id`.
    pub(crate) alert_id: Option<u64>,
}

/// The partner's receiver on its own thread and current-thread runtime.
pub(crate) struct Partner {
    pub(crate) url: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Stats>>,
}

impl Partner {
    pub(crate) fn start(secret: &str) -> Result<Self, LoadError> {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel::<Result<String, rapport_harness::Error>>();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let secret = secret.to_owned();
        let shared = Arc::clone(&arrivals);
        let thread = std::thread::Builder::new()
            .name("load-partner".into())
            .spawn(move || -> Stats {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return Stats::default();
                };
                rt.block_on(async move {
                    let receiver =
                        match Receiver::start(&secret, rapport_harness::partner::system_clock()).await {
                            Ok(r) => r,
                            Err(e) => {
                                let _ = url_tx.send(Err(e));
                                return Stats::default();
                            }
                        };
                    let _ = url_tx.send(Ok(receiver.url()));
                    let total = |s: &Stats| s.attempts + s.rejected;
                    let mut seen_total = 0;
                    let mut seen = 0;
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            _ = receiver.wait_until(Duration::from_secs(1), |s| total(s) > seen_total) => {}
                        }
                        let at = Instant::now();
                        seen_total = total(&receiver.stats());
                        let deliveries = receiver.deliveries();
                        if let Some(new) = deliveries.get(seen..) {
                            let parsed: Vec<Arrival> = new.iter().map(|d| parse_arrival(&d.id, &d.body, at)).collect();
                            if let Ok(mut a) = shared.lock() {
                                a.extend(parsed);
                            }
                        }
                        seen = deliveries.len();
                    }
                    receiver.stats()
                })
            })
            .map_err(|source| LoadError::Io {
                what: "starting a thread for",
                path: "the partner receiver".into(),
                source,
            })?;
        let url = match url_rx.recv() {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                return Err(LoadError::Io {
                    what: "starting",
                    path: "the partner receiver".into(),
                    source: std::io::Error::other("its thread ended"),
                });
            }
        };
        Ok(Self {
            url,
            arrivals,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub(crate) fn stop(&mut self) -> Stats {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn parse_arrival(id: &str, body: &[u8], at: Instant) -> Arrival {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Arrival {
        at,
        id: id.to_owned(),
        kind: field("type"),
        vin: field("vin"),
        subject: field("subject"),
        alert_id: v.get("alert_id").and_then(serde_json::Value::as_u64),
    }
}

/// What an alert id was first delivered as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    Critical,
    Maintenance { serviced: bool },
}

/// Matches webhooks to what the run caused: `faults` injected, maintenance `stories` (VIN →
/// whether it was serviced) told to their vehicles. Returns the tally, bus → webhook
/// latencies of the faults, and what has no webhook (`VIN code`, `VIN oil (maintenance)`).
pub(crate) fn match_webhooks(
    faults: &HashMap<Vin, Injected>,
    stories: &HashMap<Vin, bool>,
    arrivals: &[Arrival],
) -> (WebhookTally, Vec<Duration>, Vec<String>) {
    let mut tally = WebhookTally::default();
    let mut latencies = Vec::new();
    let mut matched: HashSet<Vin> = HashSet::new();
    let mut told: HashSet<Vin> = HashSet::new();
    let mut firsts: HashMap<u64, First> = HashMap::new();
    let mut escalations = Vec::new();
    for a in arrivals {
        let vin = a.vin.parse::<Vin>().ok();
        match a.kind.as_str() {
            "alert.critical_fault" => {
                let injected = vin
                    .and_then(|vin| faults.get(&vin).map(|i| (vin, i)))
                    .filter(|(_, i)| i.codes.contains(&a.subject));
                match injected {
                    Some((vin, i)) if matched.insert(vin) => {
                        tally.critical_matched += 1;
                        latencies.push(a.at.saturating_duration_since(i.on_bus));
                        if let Some(id) = a.alert_id {
                            firsts.insert(id, First::Critical);
                        }
                    }
                    Some(_) => tally.critical_extra += 1,
                    None => tally.critical_unexpected += 1,
                }
            }
            "alert.maintenance_due" => {
                let story = vin
                    .and_then(|vin| stories.get(&vin).map(|s| (vin, *s)))
                    .filter(|_| a.subject == ITEM);
                match story {
                    Some((vin, serviced)) if told.insert(vin) => {
                        tally.maintenance_matched += 1;
                        if let Some(id) = a.alert_id {
                            firsts.insert(id, First::Maintenance { serviced });
                        }
                    }
                    _ => tally.unexpected += 1,
                }
            }
            "alert.escalated" => escalations.push(a),
            _ => tally.other += 1,
        }
    }
    // An escalation is expected for an alert first delivered here and never answered: every
    // critical fault, and every maintenance story the workshop did not close.
    let mut escalated: HashSet<u64> = HashSet::new();
    for a in escalations {
        let expected = a
            .alert_id
            .filter(|id| escalated.insert(*id))
            .and_then(|id| firsts.get(&id))
            .is_some_and(|f| *f != First::Maintenance { serviced: true });
        if expected && a.id.ends_with("_esc") {
            tally.escalated_matched += 1;
        } else {
            tally.unexpected += 1;
        }
    }
    tally.unanswered = firsts
        .values()
        .filter(|f| **f != First::Maintenance { serviced: true })
        .count() as u64;
    let mut missing: Vec<String> = faults
        .iter()
        .filter(|(vin, _)| !matched.contains(*vin))
        .map(|(vin, i)| format!("{vin} {}", i.codes.join("+")))
        .chain(
            stories
                .keys()
                .filter(|vin| !told.contains(*vin))
                .map(|vin| format!("{vin} {ITEM} (maintenance)")),
        )
        .collect();
    missing.sort();
    (tally, latencies, missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::load::plan::vin_of;

    #[test]
    fn webhooks_match_by_vin_and_code_once() {
        let now = Instant::now();
        let vin = vin_of(3).unwrap();
        let mut faults = HashMap::new();
        faults.insert(
            vin,
            Injected {
                on_bus: now,
                published: None,
                acked: None,
                codes: vec!["SPN110/FMI0".into()],
            },
        );
        faults.insert(
            vin_of(4).unwrap(),
            Injected {
                on_bus: now,
                published: None,
                acked: None,
                codes: vec!["SPN100/FMI1".into()],
            },
        );
        let arrival = |kind: &str, vin: &Vin, subject: &str, ms: u64| Arrival {
            at: now + Duration::from_millis(ms),
            id: format!("msg_a{ms}"),
            kind: kind.into(),
            vin: vin.to_string(),
            subject: subject.into(),
            alert_id: Some(ms),
        };
        let arrivals = vec![
            arrival("alert.critical_fault", &vin, "SPN110/FMI0", 40),
            arrival("alert.critical_fault", &vin, "SPN110/FMI0", 50),
            arrival(
                "alert.critical_fault",
                &vin_of(5).unwrap(),
                "SPN110/FMI0",
                60,
            ),
            arrival(
                "alert.critical_fault",
                &vin_of(4).unwrap(),
                "SPN999/FMI1",
                60,
            ),
            arrival("alert.partner_task", &vin, "x", 70),
        ];
        let (tally, latencies, missing) = match_webhooks(&faults, &HashMap::new(), &arrivals);
        assert_eq!(tally.critical_matched, 1);
        assert_eq!(tally.critical_extra, 1);
        assert_eq!(tally.critical_unexpected, 2);
        assert_eq!(tally.other, 1);
        assert_eq!(latencies, vec![Duration::from_millis(40)]);
        assert_eq!(missing, vec![format!("{} SPN100/FMI1", vin_of(4).unwrap())]);
    }

    #[test]
    fn maintenance_and_escalations_match_by_vin_and_alert_id() {
        let now = Instant::now();
        let (booked, serviced, stranger) =
            (vin_of(1).unwrap(), vin_of(2).unwrap(), vin_of(9).unwrap());
        let stories = HashMap::from([
            (booked, false),
            (serviced, true),
            (vin_of(3).unwrap(), false),
        ]);
        let arrival = |kind: &str, id: &str, vin: &Vin, alert: u64| Arrival {
            at: now,
            id: id.into(),
            kind: kind.into(),
            vin: vin.to_string(),
            subject: ITEM.into(),
            alert_id: Some(alert),
        };
        let arrivals = vec![
            arrival("alert.maintenance_due", "msg_a1", &booked, 1),
            arrival("alert.maintenance_due", "msg_a2", &serviced, 2),
            arrival("alert.maintenance_due", "msg_a3", &stranger, 3),
            arrival("alert.maintenance_due", "msg_a4", &booked, 4),
            arrival("alert.escalated", "msg_a1_esc", &booked, 1),
            arrival("alert.escalated", "msg_a2_esc", &serviced, 2),
            arrival("alert.escalated", "msg_a7_esc", &booked, 7),
        ];
        let (tally, _, missing) = match_webhooks(&HashMap::new(), &stories, &arrivals);
        assert_eq!(tally.maintenance_matched, 2);
        assert_eq!(tally.escalated_matched, 1, "only the unserviced story's");
        // The stranger's alert, the second alert for one story, the serviced story's
        // escalation and the escalation of an alert never delivered.
        assert_eq!(tally.unexpected, 4);
        assert_eq!(
            missing,
            vec![format!("{} oil (maintenance)", vin_of(3).unwrap())]
        );
        assert_eq!(
            tally.unanswered, 1,
            "the booked story's alert; the serviced one was answered"
        );
    }
}
