//! A vehicle's erasure (docs/data-rights.md, "Erase"): the tombstone both backends keep
//! ([`Erasure`]) and the sans-IO rule that decides which late records of an erased vehicle
//! are dropped ([`Erasure::sift`]), plus the `vehicle.erased` webhook and the vehicle-wipe
//! downlink an erasure sends.
//!
//! Owns the tombstone's shape, the late-record rule and the erasure's messages. Does not own
//! what is deleted or how (each backend's `erase`), nor the API.
//!
//! **Which records are "from before the erasure".** Until the car confirms its wipe, a
//! record whose car time is before the erasure instant is dropped: the car made it before
//! the driver's data was erased. Once the confirmation (a `wipe_confirmed` record naming the
//! erasure's downlink) arrives, its seq is the line: the agent writes the confirmation into
//! its outbox after every record made before the wipe and numbers records in order, so
//! every record below that seq is older than the wipe, whatever its clock said, and every
//! record above it was made after. The time rule alone would trust a car clock that may be
//! wrong; the seq rule alone cannot be used before the confirmation (and an agent too old to
//! know the wipe never confirms: its records after the erasure instant keep arriving and are
//! kept). The confirmation itself is consumed: noted on the tombstone, not logged.

use rapport_shared::{Record, RecordBody, Timestamp, Uplink, Vin};
use serde::{Deserialize, Serialize};

use crate::webhook::outbox::Message;

/// The event type of the webhook sent to each partner that got alerts about the vehicle.
pub const ERASED_EVENT: &str = "vehicle.erased";

/// The longest erasure reason, in bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// What an erasure removed, counted (the aggregate that stays).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasedCounts {
    /// Logged records.
    pub records: u64,
    /// Timeline entries.
    pub timeline: u64,
    /// Alerts.
    pub alerts: u64,
    /// Webhook messages about its alerts not yet delivered (pending or dead letters).
    pub webhooks: u64,
}

/// The car's confirmation of its wipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WipeConfirmation {
    /// The confirmation record's seq: records below it are from before the wipe.
    pub seq: u64,
    /// The car's time on it.
    pub car_at: Timestamp,
    /// When the cloud received it.
    pub received_at: Timestamp,
}

/// The tombstone of an erased vehicle: the fact, time and reason of the erasure, what it
/// removed (counted), who was told, and what came after. Nothing of the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The vehicle.
    pub vin: Vin,
    /// The erasure's number (unique; names its webhooks).
    pub number: u64,
    /// When it was erased (the cloud's clock).
    pub erased_at: Timestamp,
    /// Why (the operator's words).
    pub reason: String,
    /// The vehicle-wipe downlink's id.
    pub downlink: u64,
    /// Partners sent `vehicle.erased`, in id order.
    pub partners: Vec<String>,
    /// What was removed.
    pub erased: ErasedCounts,
    /// The car's wipe confirmation, once it arrived.
    pub confirmed: Option<WipeConfirmation>,
    /// Late records from before the erasure dropped since.
    pub late_dropped: u64,
}

/// What [`Erasure::sift`] did to one envelope.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sifted {
    /// Records dropped as from before the erasure.
    pub dropped: u64,
    /// The tombstone changed (a confirmation noted, records dropped): write it back.
    pub changed: bool,
}

impl Erasure {
    /// Removes from `uplink` the records from before the erasure (see the module doc) and
    /// the wipe confirmation (noted here); what is left is applied as usual.
    pub fn sift(&mut self, uplink: &mut Uplink, now: Timestamp) -> Sifted {
        let mut out = Sifted::default();
        for r in &uplink.records {
            if self.confirms(r) && self.confirmed.is_none_or(|c| c.seq < r.seq) {
                self.confirmed = Some(WipeConfirmation {
                    seq: r.seq,
                    car_at: r.at,
                    received_at: now,
                });
                out.changed = true;
            }
        }
        let before = uplink.records.len();
        let mut dropped = 0u64;
        uplink.records.retain(|r| {
            if self.confirms(r) {
                return false;
            }
            let late = match self.confirmed {
                Some(c) => r.seq < c.seq,
                None => r.at < self.erased_at,
            };
            dropped += u64::from(late);
            !late
        });
        debug_assert!(uplink.records.len() <= before);
        if dropped > 0 {
            self.late_dropped = self.late_dropped.saturating_add(dropped);
            out.changed = true;
        }
        out.dropped = dropped;
        out
    }

    /// Whether `r` is this erasure's wipe confirmation.
    fn confirms(&self, r: &Record) -> bool {
        matches!(&r.body, RecordBody::WipeConfirmed(w) if w.downlink == self.downlink)
    }

    /// The `vehicle.erased` webhook to `partner`: id `msg_e<number>_<partner>` (the VIN is in
    /// the body only, so the delivered marker left behind names no vehicle).
    pub fn webhook(&self, partner: &str) -> Message {
        let body = serde_json::json!({
            "type": ERASED_EVENT,
            "vin": self.vin.to_string(),
            "erased_at": self.erased_at.as_millis(),
            "erasure": self.number,
        });
        Message::new(
            format!("msg_e{}_{partner}", self.number),
            partner,
            ERASED_EVENT,
            body.to_string().into_bytes(),
            self.erased_at,
        )
    }

    /// The vehicle-wipe downlink, encoded.
    ///
    /// # Errors
    /// The encoder (never for this small message).
    pub fn downlink_envelope(&self) -> Result<Vec<u8>, rapport_shared::WireError> {
        crate::downlink::envelope(
            self.vin,
            self.downlink,
            self.erased_at,
            rapport_shared::DownlinkBody::VehicleWipe(rapport_shared::VehicleWipe {
                erased_at: self.erased_at,
            }),
        )
        .encode()
    }

    /// As stored (JSON).
    ///
    /// # Errors
    /// Never in practice (a plain struct).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// From storage.
    ///
    /// # Errors
    /// A value that does not decode.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Partners an alert's webhooks went to: its partner and, once escalated, the fallback
/// (level 1) and the second level (level 2).
pub fn alert_partners(a: &crate::fleet::alerts::Alert) -> Vec<(String, String)> {
    let mut out = vec![(a.webhook().id, a.partner.clone())];
    for level in [1, 2] {
        if let Some(e) = a.escalation_webhook_at(level) {
            out.push((e.id, e.partner));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rapport_shared::{Heartbeat, WipeConfirmed};

    use super::*;

    fn vin() -> Vin {
        "1G1JC5444R7252367".parse().unwrap()
    }

    fn erasure() -> Erasure {
        Erasure {
            vin: vin(),
            number: 3,
            erased_at: Timestamp::from_secs(1_000),
            reason: "driver asked".into(),
            downlink: 42,
            partners: vec![],
            erased: ErasedCounts::default(),
            confirmed: None,
            late_dropped: 0,
        }
    }

    fn rec(seq: u64, secs: u64) -> Record {
        Record {
            seq,
            at: Timestamp::from_secs(secs),
            body: RecordBody::Heartbeat(Heartbeat {
                agent_version: "t".into(),
                uptime_s: 0,
                outbox_depth: 0,
                records_dropped: 0,
            }),
        }
    }

    fn confirm(seq: u64, secs: u64, downlink: u64) -> Record {
        Record {
            seq,
            at: Timestamp::from_secs(secs),
            body: RecordBody::WipeConfirmed(WipeConfirmed {
                downlink,
                erased_at: Timestamp::from_secs(1_000),
            }),
        }
    }

    fn seqs(u: &Uplink) -> Vec<u64> {
        u.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn before_the_confirmation_car_time_decides() {
        let mut e = erasure();
        let mut u = Uplink {
            vin: vin(),
            records: vec![rec(1, 999), rec(2, 1_000), rec(3, 1_001)],
        };
        let s = e.sift(&mut u, Timestamp::from_secs(2_000));
        assert_eq!(seqs(&u), vec![2, 3]);
        assert_eq!((s.dropped, s.changed, e.late_dropped), (1, true, 1));
    }

    #[test]
    fn after_the_confirmation_its_seq_decides_whatever_the_clock() {
        let mut e = erasure();
        let now = Timestamp::from_secs(2_000);
        // A wrong clock: the records before the confirmation say they are after the erasure.
        let mut u = Uplink {
            vin: vin(),
            records: vec![rec(7, 5_000), confirm(8, 5_001, 42), rec(9, 10)],
        };
        let s = e.sift(&mut u, now);
        assert_eq!(
            seqs(&u),
            vec![9],
            "the confirmation is consumed, 7 is older"
        );
        assert_eq!(s.dropped, 1);
        assert_eq!(e.confirmed.unwrap().seq, 8);
        // A late one below the line, later.
        let mut late = Uplink {
            vin: vin(),
            records: vec![rec(5, 9_999), rec(10, 1)],
        };
        e.sift(&mut late, now);
        assert_eq!(seqs(&late), vec![10]);
        assert_eq!(e.late_dropped, 2);
        // Another erasure's confirmation is an ordinary record.
        let mut other = Uplink {
            vin: vin(),
            records: vec![confirm(11, 9_999, 41)],
        };
        assert!(!e.sift(&mut other, now).changed);
        assert_eq!(seqs(&other), vec![11]);
    }

    #[test]
    fn tombstone_round_trips_and_webhook_names_no_vin_in_its_id() {
        let e = erasure();
        assert_eq!(Erasure::from_json(&e.to_json().unwrap()).unwrap(), e);
        let m = e.webhook("dealer-north");
        assert_eq!(m.id, "msg_e3_dealer-north");
        assert!(!m.id.contains(&vin().to_string()));
        let body: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(body["type"], ERASED_EVENT);
        assert_eq!(body["vin"], vin().to_string());
        let d = rapport_shared::Downlink::decode(&e.downlink_envelope().unwrap()).unwrap();
        assert_eq!(d.messages[0].id, 42);
        assert_eq!(d.messages[0].body.tag(), 5);
    }
}
