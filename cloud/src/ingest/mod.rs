//! Ingest, the sans-IO core: is an MQTT publish an acceptable uplink ([`check`]), and what
//! does applying it change ([`plan`]). Bytes and the current state in, decisions out; no
//! broker, no store, no clock of its own.
//!
//! Owns the order of the checks and the reasons for refusing a payload ([`RejectReason`]).
//! Does not own: the effects of one record ([`crate::vehicle`]), writing them
//! ([`crate::store`]), or the MQTT session and acks ([`worker`], [`crate::mqtt`]).
//!
//! # What the cloud trusts
//! Nothing in a payload. The size is checked before decoding, the topic must be exactly
//! `rapport/v1/{vin}/up`, the envelope must decode, and its VIN must equal the topic's. The
//! cloud's own check stops at "topic == envelope": tying the topic to the client that
//! published it is the broker's job. At scale, agents connect with mTLS and the broker's ACL
//! lets a client publish only on the topic of the VIN in its certificate (see
//! docs/fleet-engineer.md); the embedded broker has no such ACL and is for one machine and tests.

pub mod worker;

use rapport_shared::topic::{self, Direction};
use rapport_shared::{Record, Timestamp, Uplink, Vin};

use crate::vehicle::VehicleState;

/// Why a publish was refused. Refused publishes are counted, logged and acked (never
/// redelivered forever), and never touch another vehicle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Payload above `ingest.max_payload_bytes`; not decoded.
    Oversize,
    /// Not `rapport/v1/{valid VIN}/up`.
    BadTopic,
    /// The envelope does not decode (version, framing, a body).
    Undecodable,
    /// The envelope's VIN is not the topic's.
    VinMismatch,
    /// One record too large for the record log (the rest of its envelope is applied; its
    /// seq counts as applied).
    RecordTooLarge,
    /// The stored state of the vehicle cannot be read (a store problem, logged as an error).
    StateUnreadable,
}

impl RejectReason {
    /// Every reason, for metrics.
    pub const ALL: [Self; 6] = [
        Self::Oversize,
        Self::BadTopic,
        Self::Undecodable,
        Self::VinMismatch,
        Self::RecordTooLarge,
        Self::StateUnreadable,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Oversize => "oversize",
            Self::BadTopic => "bad_topic",
            Self::Undecodable => "undecodable",
            Self::VinMismatch => "vin_mismatch",
            Self::RecordTooLarge => "record_too_large",
            Self::StateUnreadable => "state_unreadable",
        }
    }

    /// Index into [`RejectReason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A refused publish: why, and details for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub reason: RejectReason,
    /// What exactly (the decoder's message, the two VINs, ...).
    pub detail: String,
}

impl Rejected {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Checks one publish: size, topic, decoding, VIN; returns the envelope.
///
/// # Errors
/// [`Rejected`] with the first check that failed.
pub fn check(topic: &str, payload: &[u8], max_payload_bytes: usize) -> Result<Uplink, Rejected> {
    if payload.len() > max_payload_bytes {
        return Err(Rejected::new(
            RejectReason::Oversize,
            format!(
                "{} bytes, more than the limit of {max_payload_bytes}",
                payload.len()
            ),
        ));
    }
    let vin = match topic::parse(topic) {
        Ok((vin, Direction::Up)) => vin,
        Ok((_, Direction::Down)) => {
            return Err(Rejected::new(
                RejectReason::BadTopic,
                "a downlink topic on the uplink subscription",
            ));
        }
        Err(e) => return Err(Rejected::new(RejectReason::BadTopic, e.to_string())),
    };
    let uplink = Uplink::decode(payload)
        .map_err(|e| Rejected::new(RejectReason::Undecodable, e.to_string()))?;
    if uplink.vin != vin {
        return Err(Rejected::new(
            RejectReason::VinMismatch,
            format!("envelope VIN {} on the topic of {vin}", uplink.vin),
        ));
    }
    Ok(uplink)
}

/// What applying one envelope changes: the vehicle's new state and the records to log, to be
/// written in one atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The vehicle.
    pub vin: Vin,
    /// Its state after the envelope.
    pub state: VehicleState,
    /// Newly applied records for the log: (seq, [`Record::encode`] bytes).
    pub log: Vec<(u64, Vec<u8>)>,
    /// Indexes (into the envelope's records) of the records applied now, in order: what the
    /// fleet side reads.
    pub fresh: Vec<usize>,
    /// Counts for metrics.
    pub stats: PlanStats,
}

/// Counts of one [`Plan`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// Records applied now.
    pub applied: u64,
    /// Records whose seq was applied before (redelivered, replayed): skipped.
    pub duplicates: u64,
    /// Applied records of kinds this build does not know.
    pub unknown: u64,
    /// Seqs given up on to keep the applied set bounded.
    pub abandoned: u64,
    /// Applied records too large for the log.
    pub too_large: u64,
    /// The vehicle had no state before.
    pub new_vehicle: bool,
}

impl Plan {
    /// Whether anything is to be written (a batch of pure duplicates writes nothing).
    pub fn changes_anything(&self) -> bool {
        self.stats.applied > 0 || self.stats.abandoned > 0
    }
}

/// Applies an envelope to the vehicle's state (`None`: first time seen) at `now`.
pub fn plan(uplink: &Uplink, prev: Option<VehicleState>, now: Timestamp) -> Plan {
    let new_vehicle = prev.is_none();
    let mut state = prev.unwrap_or_else(|| VehicleState::new(now));
    let mut stats = PlanStats {
        new_vehicle,
        ..PlanStats::default()
    };
    let mut log = Vec::new();
    let mut fresh = Vec::new();
    for (i, record) in uplink.records.iter().enumerate() {
        let done = state.apply(record, now);
        stats.abandoned = stats.abandoned.saturating_add(done.abandoned);
        if !done.new {
            stats.duplicates += 1;
            continue;
        }
        stats.applied += 1;
        fresh.push(i);
        stats.unknown += u64::from(done.unknown);
        match Record::encode(record) {
            Ok(bytes) => log.push((record.seq, bytes)),
            Err(_) => stats.too_large += 1,
        }
    }
    Plan {
        vin: uplink.vin,
        state,
        log,
        fresh,
        stats,
    }
}

#[cfg(test)]
mod tests;
