//! Cloud messages applied to the rules ([`Rules::apply_downlink`]): campaigns, schedule
//! updates (held to the checks a config's schedule passes), services a partner recorded,
//! bookings, an owner change (consents off, confirmed by consent records), a service case's
//! progress (`service` beside it). Each id is
//! applied once.
//!
//! Owns: what each downlink kind does to memory. Does not own: decoding or checking the
//! envelope (`crate::sync::downlink`), nor writing the changes (the caller).

use rapport_shared::v1::downlink::{DownlinkBody, DownlinkMessage};
use rapport_shared::{ConsentChange, ConsentKind, RecordBody, Timestamp, WipeConfirmed};

use super::Rules;
use crate::memory::{CampaignRecord, Changes, ServiceSource};

impl Rules {
    /// A message from the cloud, applied once per id. A message that cannot be applied as
    /// sent — a schedule that fails the checks a config's schedule passes — is refused: logged
    /// with what is wrong, and marked applied all the same (so a broker redelivering it does
    /// not retry it forever), changing nothing else; the old schedule stays.
    pub fn apply_downlink(&mut self, msg: &DownlinkMessage, now: Timestamp) -> Applied {
        let mut ch = Changes::default();
        if !self.mem.applied_downlinks.insert(msg.id) {
            return Applied {
                changes: ch,
                refused: None,
            };
        }
        ch.downlinks.insert(msg.id);
        ch.durable = true;
        let mut refused = None;
        match &msg.body {
            DownlinkBody::Campaign(c) => {
                if now < c.valid_until {
                    self.mem.campaigns.insert(
                        c.campaign_id.clone(),
                        CampaignRecord {
                            campaign: c.clone(),
                            received: now,
                        },
                    );
                    ch.campaigns.insert(c.campaign_id.clone());
                }
            }
            DownlinkBody::ScheduleUpdate(u) => {
                let problems = rapport_shared::check_schedule(&u.items);
                if u.line == self.cfg.vehicle.line && problems.is_empty() {
                    self.mem.schedule = Some(u.items.clone());
                    ch.schedule = true;
                } else if u.line == self.cfg.vehicle.line {
                    let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    let why = format!("schedule update refused: {}", why.join("; "));
                    tracing::warn!(id = msg.id, "{why}; the schedule in force stays");
                    refused = Some(why);
                } else {
                    tracing::warn!(
                        line = %u.line,
                        ours = %self.cfg.vehicle.line,
                        "schedule update for another vehicle line ignored"
                    );
                }
            }
            DownlinkBody::ServiceRecorded(s) => {
                let known: Vec<String> = s
                    .items
                    .iter()
                    .filter(|i| self.schedule().iter().any(|k| &&k.id == i))
                    .cloned()
                    .collect();
                if known.len() != s.items.len() {
                    tracing::warn!(items = ?s.items, "service names items not in the schedule");
                }
                let at = s.performed_at.min(now);
                if let Ok(more) = self.record_service(
                    &known,
                    s.odometer,
                    Some(at),
                    ServiceSource::Partner(s.partner.clone()),
                    now,
                ) {
                    ch.merge(more);
                }
            }
            DownlinkBody::BookingConfirmed(b) => {
                tracing::info!(prompt = %b.prompt, partner = %b.partner, "booking confirmed");
            }
            DownlinkBody::VehicleWipe(w) => {
                self.wipe(&mut ch);
                tracing::info!(id = msg.id, "local history wiped as the cloud asked");
                ch.outbox.push((
                    now,
                    RecordBody::WipeConfirmed(WipeConfirmed {
                        downlink: msg.id,
                        erased_at: w.erased_at,
                    }),
                ));
            }
            DownlinkBody::OwnerChanged(o) => {
                // A new owner has given no consent yet: both go off, and both are confirmed
                // to the cloud as consent records (even one that was off already), so the
                // cloud sees the car's state after the change. The maintenance history, the
                // schedule and the odometer belong to the car and stay.
                tracing::info!(since = %o.since, "owner changed: consents off");
                self.mem.settings.engagement_prompts = false;
                self.mem.settings.partner_sharing = false;
                ch.settings = true;
                for kind in [ConsentKind::EngagementPrompts, ConsentKind::PartnerSharing] {
                    ch.outbox.push((
                        now,
                        RecordBody::Consent(ConsentChange {
                            consent: kind,
                            granted: false,
                        }),
                    ));
                }
            }
            DownlinkBody::ServiceProgress(p) => {
                self.apply_service_progress(p, now, &mut ch);
            }
            _ => {
                tracing::warn!(id = msg.id, "downlink of a kind this agent does not know");
            }
        }
        self.evaluate(now, &mut ch);
        Applied {
            changes: ch,
            refused,
        }
    }
}

impl Rules {
    /// The driver's data was erased in the cloud: forget prompts, campaigns, fault and
    /// service history, service cases, today's show counts, and put the settings (consents, muted kinds,
    /// quiet hours) back to their defaults. The schedule in force, the per-item service
    /// state it runs on (count and last service: the car's maintenance position), the
    /// odometer and engine hours stay. Consent records are not sent for the reset: the cloud
    /// erased its copy and starts from the same defaults.
    fn wipe(&mut self, ch: &mut Changes) {
        ch.prompts
            .extend(std::mem::take(&mut self.mem.prompts).into_keys());
        ch.campaigns
            .extend(std::mem::take(&mut self.mem.campaigns).into_keys());
        ch.dtcs
            .extend(std::mem::take(&mut self.mem.dtcs).into_keys());
        ch.service_cases
            .extend(std::mem::take(&mut self.mem.service_cases).into_keys());
        self.mem.services.clear();
        ch.wiped_services = true;
        self.mem.settings = crate::memory::Settings::default();
        ch.settings = true;
        self.mem.shows = crate::memory::ShowCounts::default();
        ch.shows = true;
        self.mem.vehicle.mil = false;
        ch.vehicle = true;
    }
}

/// What a downlink message did ([`Rules::apply_downlink`]).
#[derive(Debug, Default)]
pub struct Applied {
    /// What the store must write: the message's id as applied (unless it already was) and
    /// what the message changed.
    pub changes: Changes,
    /// Why the message was refused, when it was (it is marked applied all the same).
    pub(crate) refused: Option<String>,
}
