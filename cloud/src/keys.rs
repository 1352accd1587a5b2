//! The key layout of the cloud's sled tree (`ingest`): the one place that knows what a key
//! looks like, for the ingest's store ([`crate::store`]), the fleet's
//! ([`crate::fleet::store`]) and the webhook outbox ([`crate::webhook::outbox`]).
//!
//! Every part keeps its keys in the same tree, so one `apply_batch` writes a record, its
//! fleet effects and the webhooks they enqueue together (sled applies a batch on one tree
//! atomically). A key is one prefix byte, then the entity's id; numbers are big-endian so
//! sled's byte order is their numeric order (a vehicle's records by seq, its timeline by
//! time, the due index by due time).
//!
//! | prefix | key after it                     | value                                   |
//! |--------|----------------------------------|-----------------------------------------|
//! | `M`    | name (`schema`)                  | meta: the schema byte                   |
//! | `V`    | vin(17)                          | ingest: vehicle state (version, postcard) |
//! | `R`    | vin(17) seq(u64)                 | ingest: the record (`Record::encode`)   |
//! | `F`    | vin(17)                          | fleet: driver (version, postcard)       |
//! | `G`    | vin(17)                          | fleet: registration (JSON)              |
//! | `H`    | vin(17) at(u64 ms) n(u64)        | fleet: timeline entry (JSON)            |
//! | `A`    | id(u64)                          | fleet: alert (JSON)                     |
//! | `a`    | vin(17) id(u64)                  | fleet: a vehicle's alerts (empty)       |
//! | `K`    | vin(17)                          | fleet: contact history (JSON)           |
//! | `Q`    | id(u64)                          | fleet: downlink to publish (envelope)   |
//! | `P`    | partner id (UTF-8)               | fleet: partner added by the API (JSON)  |
//! | `N`    | name (UTF-8)                     | fleet: counter (u64)                    |
//! | `W`    | message id (UTF-8)               | outbox: pending message (version, postcard) |
//! | `w`    | next_at(u64 ms) message id       | outbox: due index (empty)               |
//! | `X`    | message id                       | outbox: dead letter (version, postcard) |
//! | `Y`    | message id                       | outbox: delivered marker (version, postcard) |
//! | `y`    | at(u64 ms) message id            | outbox: markers by delivery time (empty) |
//! | `E`    | vin(17)                          | rights: erasure tombstone (JSON)        |
//!
//! Owns the prefixes and how keys are built and read back. Does not own the values' meaning
//! or encodings (each store module), nor when anything is written.

use rapport_shared::{Timestamp, Vin, VinError};

/// Meta keys (`Mschema`).
pub const META: u8 = b'M';
/// Ingest: a vehicle's state.
pub const VEHICLE: u8 = b'V';
/// Ingest: the record log.
pub const RECORD: u8 = b'R';
/// Fleet: a driver.
pub const DRIVER: u8 = b'F';
/// Fleet: a registration.
pub const REGISTRATION: u8 = b'G';
/// Fleet: the timeline.
pub const TIMELINE: u8 = b'H';
/// Fleet: an alert.
pub const ALERT: u8 = b'A';
/// Fleet: a vehicle's alerts.
pub const ALERT_BY_VIN: u8 = b'a';
/// Fleet: a driver's contact history.
pub const CONTACTS: u8 = b'K';
/// Fleet: a downlink to publish.
pub const DOWNLINK: u8 = b'Q';
/// Fleet: a partner added through the API.
pub const PARTNER: u8 = b'P';
/// Fleet: a counter.
pub const COUNTER: u8 = b'N';
/// Outbox: a pending message.
pub const PENDING: u8 = b'W';
/// Outbox: the due index.
pub const DUE: u8 = b'w';
/// Outbox: a dead letter.
pub const DEAD: u8 = b'X';
/// Outbox: a delivered marker.
pub const DELIVERED: u8 = b'Y';
/// Outbox: the delivered markers' time index.
pub const DELIVERED_AT: u8 = b'y';

/// Rights: a vehicle's erasure tombstone.
pub const ERASURE: u8 = b'E';

/// Every prefix with its name, in the table's order.
pub const ALL: [(u8, &str); 18] = [
    (META, "meta"),
    (VEHICLE, "vehicle"),
    (RECORD, "record"),
    (DRIVER, "driver"),
    (REGISTRATION, "registration"),
    (TIMELINE, "timeline"),
    (ALERT, "alert"),
    (ALERT_BY_VIN, "alert by vin"),
    (CONTACTS, "contacts"),
    (DOWNLINK, "downlink"),
    (PARTNER, "partner"),
    (COUNTER, "counter"),
    (PENDING, "pending webhook"),
    (DUE, "webhook due index"),
    (DEAD, "dead letter"),
    (DELIVERED, "delivered webhook"),
    (DELIVERED_AT, "delivered index"),
    (ERASURE, "erasure"),
];

/// The store's schema byte.
pub const SCHEMA: &[u8] = b"Mschema";

/// Length of a key of one prefix and a VIN.
pub const VIN_KEY_LEN: usize = 1 + 17;

/// `prefix` vin.
pub fn vin_key(prefix: u8, vin: &Vin) -> [u8; VIN_KEY_LEN] {
    let mut k = [0u8; VIN_KEY_LEN];
    k[0] = prefix;
    k[1..].copy_from_slice(vin.as_bytes());
    k
}

/// `prefix` vin n(u64): a vehicle's entry numbered `n` (records by seq, alerts by id).
pub fn vin_id_key(prefix: u8, vin: &Vin, n: u64) -> [u8; VIN_KEY_LEN + 8] {
    let mut k = [0u8; VIN_KEY_LEN + 8];
    k[..VIN_KEY_LEN].copy_from_slice(&vin_key(prefix, vin));
    k[VIN_KEY_LEN..].copy_from_slice(&n.to_be_bytes());
    k
}

/// `prefix` id(u64).
pub fn id_key(prefix: u8, id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// `prefix` text: a key named by a string id.
pub fn text_key(prefix: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(prefix);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `prefix` at(u64 ms) text: an index by time.
pub fn timed_key(prefix: u8, at: Timestamp, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + id.len());
    k.push(prefix);
    k.extend_from_slice(&at.as_millis().to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// A vehicle's state.
pub fn vehicle(vin: &Vin) -> [u8; VIN_KEY_LEN] {
    vin_key(VEHICLE, vin)
}

/// A logged record.
pub fn record(vin: &Vin, seq: u64) -> [u8; VIN_KEY_LEN + 8] {
    vin_id_key(RECORD, vin, seq)
}

/// A timeline entry: the vehicle, its time, and a number unique in the database that tells
/// entries of the same millisecond apart.
pub fn timeline(vin: &Vin, at: Timestamp, n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(VIN_KEY_LEN + 16);
    k.extend_from_slice(&vin_key(TIMELINE, vin));
    k.extend_from_slice(&at.as_millis().to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// An entry of a vehicle's alert index.
pub fn alert_of_vehicle(vin: &Vin, id: u64) -> [u8; VIN_KEY_LEN + 8] {
    vin_id_key(ALERT_BY_VIN, vin, id)
}

/// The smallest key after every key that starts with `key` (for an exclusive range start
/// after `key` itself: a zero byte appended).
pub fn after(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// The VIN of a `prefix` vin … key.
///
/// # Errors
/// The key is too short, or its bytes are no VIN.
pub fn vin_of(key: &[u8]) -> Result<Vin, VinError> {
    Vin::from_bytes(key.get(1..VIN_KEY_LEN).unwrap_or_default())
}

/// The big-endian `u64` at `offset` of a key, if the key is long enough.
pub fn u64_at(key: &[u8], offset: usize) -> Option<u64> {
    key.get(offset..offset + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// The time and text of a [`timed_key`] (the due index, the delivered index).
pub fn parse_timed(key: &[u8]) -> Option<(Timestamp, &str)> {
    let at = u64_at(key, 1)?;
    let id = std::str::from_utf8(key.get(9..)?).ok()?;
    Some((Timestamp::from_millis(at), id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_prefix_is_distinct() {
        let bytes: BTreeSet<u8> = ALL.iter().map(|(b, _)| *b).collect();
        assert_eq!(bytes.len(), ALL.len(), "{ALL:?}");
        let names: BTreeSet<&str> = ALL.iter().map(|(_, n)| *n).collect();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(SCHEMA.first(), Some(&META));
    }

    #[test]
    fn keys_carry_their_prefix_and_sort_by_their_numbers() {
        let vin: Vin = "WP0ZZZ99ZTS392124".parse().unwrap();
        assert_eq!(vehicle(&vin)[0], VEHICLE);
        assert_eq!(vin_of(&vehicle(&vin)).unwrap(), vin);
        assert!(record(&vin, 2) < record(&vin, 256));
        assert_eq!(u64_at(&record(&vin, 7), VIN_KEY_LEN), Some(7));
        let t = |ms| Timestamp::from_millis(ms);
        assert!(timeline(&vin, t(1), 9) < timeline(&vin, t(2), 0));
        assert!(timeline(&vin, t(1), 1) < timeline(&vin, t(1), 2));
        assert!(timeline(&vin, t(1), 0).starts_with(&vin_key(TIMELINE, &vin)));
        assert_eq!(alert_of_vehicle(&vin, 5)[0], ALERT_BY_VIN);
        assert!(id_key(ALERT, 255) < id_key(ALERT, 256));
        assert!(timed_key(DUE, t(9), "b") < timed_key(DUE, t(10), "a"));
        assert_eq!(
            parse_timed(&timed_key(DUE, t(9), "msg_1")),
            Some((t(9), "msg_1"))
        );
        assert_eq!(parse_timed(b"w123"), None);
        assert_eq!(text_key(PARTNER, "p1"), b"Pp1");
        let k = text_key(DEAD, "msg");
        assert!(after(&k) > k && after(&k) < text_key(DEAD, "msg_"));
        assert!(vin_of(b"V").is_err());
    }
}
