//! The partners of the story: dealers and the OEM's service desk, each a webhook receiver that
//! verifies every signature with its own code ([`rapport_harness::partner::Receiver`]) and a desk that
//! answers through the cloud's API with its own token — acknowledging alerts after a seeded
//! while (one dealer is slow, so its alerts escalate), resolving faults the next day, and, when
//! a driver booked a service, recording it at the workshop a day or two later (sent to the car
//! by the cloud as the dealer-management integration would).

use std::collections::BTreeMap;
use std::time::Duration;

use rapport_cloud::clock::{Clock as _, ManualClock};
use rapport_cloud::fleet::partners::{PartnerConfig, PartnerKind};
use rapport_shared::{Timestamp, Vin};
use serde_json::Value;

use super::cast::{DEALERS, DESK};
use super::rng::Rng;
use super::story::{Event, What};
use crate::Error;
use rapport_harness::partner::{NowSecs, Receiver};

/// One partner: its receiver, token and habits.
struct Desk {
    id: &'static str,
    name: &'static str,
    secret: String,
    token: String,
    receiver: Receiver,
    seen: usize,
    /// Minutes it takes to acknowledge (range).
    ack_min: (u64, u64),
}

/// Something a partner will do at a given time.
#[derive(Debug, Clone)]
enum Task {
    Acknowledge {
        partner: usize,
        alert: u64,
        received: Timestamp,
    },
    Resolve {
        partner: usize,
        alert: u64,
    },
    Service {
        partner: usize,
        vin: Vin,
        items: Vec<String>,
    },
}

/// The partners.
pub struct Partners {
    desks: Vec<Desk>,
    tasks: BTreeMap<(Timestamp, u64), Task>,
    next_task: u64,
    rng: Rng,
    /// Webhooks received, by partner id (verified).
    pub received: BTreeMap<String, u64>,
    /// Acknowledgements the API accepted, by partner id.
    pub acknowledged: BTreeMap<String, u64>,
    /// Services recorded.
    pub services: u64,
}

fn secret(i: usize) -> String {
    use base64::Engine as _;
    let raw = format!("rapport-testbed-partner-secret-{i:02}");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

impl Partners {
    /// Starts the receivers, judging webhook timestamps by the story's clock.
    ///
    /// # Errors
    /// A receiver could not start.
    pub async fn start(clock: &ManualClock, seed: u64) -> Result<Self, Error> {
        let c = clock.clone();
        let now: NowSecs = std::sync::Arc::new(move || c.now().as_millis() / 1000);
        let mut desks = Vec::new();
        let habits = [(10, 40), (70, 95), (5, 20), (5, 15)];
        for (i, ((id, name), ack_min)) in DEALERS
            .iter()
            .copied()
            .chain([DESK])
            .zip(habits)
            .enumerate()
        {
            let secret = secret(i);
            let receiver = Receiver::start(&secret, now.clone())
                .await
                .map_err(|e| Error::Scenario(format!("partner {id}: {e}")))?;
            desks.push(Desk {
                id,
                name,
                token: format!("{id}-api-token-0123456789abcdef0123456789"),
                secret,
                receiver,
                seen: 0,
                ack_min,
            });
        }
        Ok(Self {
            desks,
            tasks: BTreeMap::new(),
            next_task: 0,
            rng: Rng::new(seed, 77),
            received: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            services: 0,
        })
    }

    /// The partners as the cloud's config has them.
    pub fn configs(&self) -> Vec<PartnerConfig> {
        self.desks
            .iter()
            .map(|d| PartnerConfig {
                id: d.id.into(),
                name: d.name.into(),
                kind: PartnerKind::Dealer,
                webhook_url: d.receiver.url(),
                secret: d.secret.clone(),
                regions: Vec::new(),
                capabilities: Vec::new(),
                token: Some(d.token.clone()),
                token_env: None,
                previous_secret: None,
                previous_token: None,
                previous_token_env: None,
                rate_limit: None,
            })
            .collect()
    }

    /// A partner's API token (tests use it to look through the partner's eyes).
    pub fn token(&self, id: &str) -> Option<&str> {
        self.desks
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.token.as_str())
    }

    /// Every verified webhook body a partner received, in order.
    pub fn bodies(&self, id: &str) -> Vec<Value> {
        self.desks
            .iter()
            .find(|d| d.id == id)
            .map(|d| {
                d.receiver
                    .deliveries()
                    .iter()
                    .filter_map(|a| serde_json::from_slice(&a.body).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Signatures the receivers refused (should stay zero).
    pub fn rejected(&self) -> u64 {
        self.desks.iter().map(|d| d.receiver.stats().rejected).sum()
    }

    /// The partner ids.
    pub fn ids(&self) -> Vec<&'static str> {
        self.desks.iter().map(|d| d.id).collect()
    }

    fn plan(&mut self, at: Timestamp, task: Task) {
        self.next_task += 1;
        self.tasks.insert((at, self.next_task), task);
    }

    /// New webhooks since the last look: logged, and the partner's answers planned.
    pub fn collect(&mut self, now: Timestamp, vin_of: impl Fn(&str) -> Option<Vin>) -> Vec<Event> {
        let mut out = Vec::new();
        for i in 0..self.desks.len() {
            let fresh: Vec<_> = {
                let d = &mut self.desks[i];
                let all = d.receiver.deliveries();
                let fresh = all.get(d.seen..).map(<[_]>::to_vec).unwrap_or_default();
                d.seen = all.len();
                fresh
            };
            for a in fresh {
                let Ok(body) = serde_json::from_slice::<Value>(&a.body) else {
                    continue;
                };
                let id = self.desks[i].id;
                *self.received.entry(id.to_owned()).or_default() += 1;
                let event_type = body["type"].as_str().unwrap_or("?").to_owned();
                let alert = body["alert_id"].as_u64().unwrap_or(0);
                let kind = event_type.trim_start_matches("alert.").to_owned();
                let subject = body["subject"].as_str().unwrap_or("").to_owned();
                let vin = body["vin"].as_str().and_then(&vin_of);
                out.push(Event {
                    at: now,
                    vin,
                    who: id.to_owned(),
                    what: What::Webhook {
                        event_type: event_type.clone(),
                        alert_id: format!("a{alert}"),
                        kind: kind.clone(),
                        subject: subject.clone(),
                        verified: true,
                    },
                });
                let (lo, hi) = self.desks[i].ack_min;
                let after = self.rng.range(lo, hi);
                let when = now.saturating_add(Duration::from_secs(after * 60));
                self.plan(
                    when,
                    Task::Acknowledge {
                        partner: i,
                        alert,
                        received: now,
                    },
                );
                if event_type == "alert.critical_fault" {
                    self.plan(
                        when.saturating_add(Duration::from_secs(20 * 3600)),
                        Task::Resolve { partner: i, alert },
                    );
                }
                let booked = body["driver_response"].as_str() == Some("booked");
                if event_type == "alert.maintenance_due"
                    && booked
                    && let Some(vin) = vin
                {
                    let days = self.rng.range(1, 2);
                    let at = now.saturating_add(Duration::from_secs(days * 86_400));
                    self.plan(
                        at,
                        Task::Service {
                            partner: i,
                            vin,
                            items: vec![subject.clone()],
                        },
                    );
                }
            }
        }
        out
    }

    /// Does what is due by `now` through the cloud's API at `base`.
    pub async fn act(&mut self, now: Timestamp, http: &reqwest::Client, base: &str) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(entry) = self.tasks.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let task = entry.remove();
            match task {
                Task::Acknowledge {
                    partner,
                    alert,
                    received,
                } => {
                    let d = &self.desks[partner];
                    let status = post(
                        http,
                        &format!("{base}/api/v1/alerts/{alert}/acknowledge"),
                        &d.token,
                        "{}",
                    )
                    .await;
                    if status == 200 {
                        *self.acknowledged.entry(d.id.to_owned()).or_default() += 1;
                    }
                    let after_min = now.saturating_since(received).as_secs() / 60;
                    out.push(Event {
                        at: now,
                        vin: None,
                        who: d.id.to_owned(),
                        what: What::Acknowledged {
                            alert_id: format!("a{alert}"),
                            after_min,
                            status,
                        },
                    });
                }
                Task::Resolve { partner, alert } => {
                    let d = &self.desks[partner];
                    let _ = post(
                        http,
                        &format!("{base}/api/v1/alerts/{alert}/resolve"),
                        &d.token,
                        "{}",
                    )
                    .await;
                }
                Task::Service {
                    partner,
                    vin,
                    items,
                } => {
                    let d = &self.desks[partner];
                    let body = serde_json::json!({
                        "kind": "service_recorded",
                        "items": items,
                        "performed_at_ms": now.as_millis(),
                        "partner": d.id,
                    });
                    let status = post(
                        http,
                        &format!("{base}/api/v1/vehicles/{vin}/downlink"),
                        super::OPERATOR_TOKEN,
                        &body.to_string(),
                    )
                    .await;
                    if status == 200 || status == 202 {
                        self.services += 1;
                    }
                    out.push(Event {
                        at: now,
                        vin: Some(vin),
                        who: d.id.to_owned(),
                        what: What::ServiceRecorded { items, status },
                    });
                }
            }
        }
        out
    }

    /// Stops the receivers.
    pub fn stop(self) {
        drop(self.desks);
    }
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: &str) -> u16 {
    match http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            tracing::warn!(cause = %e, %url, "partner request failed");
            0
        }
    }
}
