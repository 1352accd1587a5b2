//! The store's key layout, schema version 1: the one place that knows what a key looks like.
//!
//! Everything lives in sled's default tree, so one `apply_batch` is atomic across all of it
//! (sled seals a batch in its log: after a crash either the whole batch is recovered or none).
//! Keys are a short ASCII prefix and, where an entity has an id, the id's bytes:
//!
//! | key                        | value (postcard unless noted)                  |
//! |----------------------------|------------------------------------------------|
//! | `m/schema`                 | schema version, `u64` big-endian (8 bytes)     |
//! | `m/next_seq`               | next outbox sequence number, `u64` BE          |
//! | `m/dropped`                | records dropped from a full outbox, `u64` BE   |
//! | `m/clock_floor`            | latest trusted wall time, unix ms, `u64` BE ([`crate::clock_guard`]) |
//! | `v`                        | [`VehicleState`](crate::memory::VehicleState)  |
//! | `d/<postcard DtcCode>`     | [`DtcHistory`](crate::memory::DtcHistory)      |
//! | `s/<u64 BE index>`         | [`ServiceRecord`](crate::memory::ServiceRecord)|
//! | `i/<item id UTF-8>`        | [`ItemRecord`](crate::memory::ItemRecord)      |
//! | `p/<prompt id UTF-8>`      | [`PromptRecord`](crate::memory::PromptRecord)  |
//! | `c/<campaign id UTF-8>`    | [`CampaignRecord`](crate::memory::CampaignRecord) |
//! | `x`                        | [`Settings`](crate::memory::Settings)          |
//! | `n`                        | [`ShowCounts`](crate::memory::ShowCounts)      |
//! | `h`                        | `Vec<MaintenanceItem>` (absent: the config's)  |
//! | `l/<u64 BE downlink id>`   | empty                                          |
//! | `a/<u64 BE alert id>`      | [`ServiceCase`](crate::memory::ServiceCase) (added in 1.4, same schema: an older agent logs and ignores it) |
//! | `o/<u64 BE seq>`           | `Record::encode` bytes (versioned wire codec)  |
//! | `q/<original key>`         | a value that failed to decode at open, kept as it was |
//!
//! Big-endian numbers make sled's byte order the numeric order, so the outbox iterates in
//! sequence order and services in the order they were appended. A `DtcCode` is keyed by its
//! postcard bytes: deterministic, and stable as long as the enum only grows at the end (the
//! same rule the wire follows). Meta values are fixed-width integers, not postcard, so a
//! reader of any later schema can always read the version.
//!
//! Does not own: what the values mean ([`crate::memory`]) or when they are written
//! ([`super::Store::commit`]).

use std::fmt;

use rapport_shared::DtcCode;

/// `m/schema`.
pub(crate) const SCHEMA: &[u8] = b"m/schema";
/// `m/next_seq`.
pub(crate) const NEXT_SEQ: &[u8] = b"m/next_seq";
/// `m/dropped`.
pub(crate) const DROPPED: &[u8] = b"m/dropped";
/// `m/clock_floor`.
pub(crate) const CLOCK_FLOOR: &[u8] = b"m/clock_floor";
/// The vehicle state.
pub(crate) const VEHICLE: &[u8] = b"v";
/// The settings.
pub(crate) const SETTINGS: &[u8] = b"x";
/// The show counts.
pub(crate) const SHOWS: &[u8] = b"n";
/// The schedule from the cloud.
pub(crate) const SCHEDULE: &[u8] = b"h";

/// Prefix of fault histories.
pub(crate) const DTC: &[u8] = b"d/";
/// Prefix of services.
pub(crate) const SERVICE: &[u8] = b"s/";
/// Prefix of maintenance items.
pub(crate) const ITEM: &[u8] = b"i/";
/// Prefix of prompts.
pub(crate) const PROMPT: &[u8] = b"p/";
/// Prefix of campaigns.
pub(crate) const CAMPAIGN: &[u8] = b"c/";
/// Prefix of applied downlink ids.
pub(crate) const DOWNLINK: &[u8] = b"l/";
/// Prefix of service cases.
pub(crate) const SERVICE_CASE: &[u8] = b"a/";
/// Prefix of outbox records.
pub(crate) const OUTBOX: &[u8] = b"o/";
/// Prefix of quarantined values.
pub(crate) const QUARANTINE: &[u8] = b"q/";
/// Prefix of meta keys.
pub(crate) const META: &[u8] = b"m/";

fn with(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + rest.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(rest);
    k
}

/// The key of a fault history.
pub(crate) fn dtc(code: &DtcCode) -> Vec<u8> {
    // postcard of a DtcCode (an enum of small integers) cannot fail; an empty suffix would only
    // ever be written for a code that does not serialize, which would be a bug in `shared`.
    with(DTC, &postcard::to_allocvec(code).unwrap_or_default())
}

/// The key of the service at `index` (0: the first ever recorded).
pub(crate) fn service(index: u64) -> Vec<u8> {
    with(SERVICE, &index.to_be_bytes())
}

/// The key of a maintenance item.
pub(crate) fn item(id: &str) -> Vec<u8> {
    with(ITEM, id.as_bytes())
}

/// The key of a prompt.
pub(crate) fn prompt(id: &str) -> Vec<u8> {
    with(PROMPT, id.as_bytes())
}

/// The key of a campaign.
pub(crate) fn campaign(id: &str) -> Vec<u8> {
    with(CAMPAIGN, id.as_bytes())
}

/// The key of an applied downlink id.
pub(crate) fn downlink(id: u64) -> Vec<u8> {
    with(DOWNLINK, &id.to_be_bytes())
}

/// The key of a service case (the cloud's alert id).
pub(crate) fn service_case(alert_id: u64) -> Vec<u8> {
    with(SERVICE_CASE, &alert_id.to_be_bytes())
}

/// The key of the outbox record `seq`.
pub(crate) fn outbox(seq: u64) -> Vec<u8> {
    with(OUTBOX, &seq.to_be_bytes())
}

/// Where a value that failed to decode is set aside.
pub(crate) fn quarantine(original: &[u8]) -> Vec<u8> {
    with(QUARANTINE, original)
}

/// A parsed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    /// `m/<name>`.
    Meta(&'a [u8]),
    /// `v`.
    Vehicle,
    /// `d/<code>` (the code's bytes, decoded by the loader).
    Dtc(&'a [u8]),
    /// `s/<index>`.
    Service(u64),
    /// `i/<id>`.
    Item(&'a str),
    /// `p/<id>`.
    Prompt(&'a str),
    /// `c/<id>`.
    Campaign(&'a str),
    /// `x`.
    Settings,
    /// `n`.
    Shows,
    /// `h`.
    Schedule,
    /// `l/<id>`.
    Downlink(u64),
    /// `a/<alert id>`.
    ServiceCase(u64),
    /// `o/<seq>`.
    Outbox(u64),
    /// `q/<original>`.
    Quarantine(&'a [u8]),
}

/// A key that fits no prefix of this layout (or whose id is malformed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownKey;

fn be_u64(rest: &[u8]) -> Result<u64, UnknownKey> {
    <[u8; 8]>::try_from(rest)
        .map(u64::from_be_bytes)
        .map_err(|_| UnknownKey)
}

fn utf8(rest: &[u8]) -> Result<&str, UnknownKey> {
    std::str::from_utf8(rest).map_err(|_| UnknownKey)
}

/// Parses a key of this layout.
///
/// # Errors
/// [`UnknownKey`] for anything this layout never writes.
pub(crate) fn parse(key: &[u8]) -> Result<Key<'_>, UnknownKey> {
    match key {
        VEHICLE => return Ok(Key::Vehicle),
        SETTINGS => return Ok(Key::Settings),
        SHOWS => return Ok(Key::Shows),
        SCHEDULE => return Ok(Key::Schedule),
        _ => {}
    }
    let (prefix, rest) = key.split_at(key.len().min(2));
    match prefix {
        META => Ok(Key::Meta(rest)),
        DTC => Ok(Key::Dtc(rest)),
        SERVICE => be_u64(rest).map(Key::Service),
        ITEM => utf8(rest).map(Key::Item),
        PROMPT => utf8(rest).map(Key::Prompt),
        CAMPAIGN => utf8(rest).map(Key::Campaign),
        DOWNLINK => be_u64(rest).map(Key::Downlink),
        SERVICE_CASE => be_u64(rest).map(Key::ServiceCase),
        OUTBOX => be_u64(rest).map(Key::Outbox),
        QUARANTINE => Ok(Key::Quarantine(rest)),
        _ => Err(UnknownKey),
    }
}

/// A key as a person reads it in a log or an error: `o/42`, `p/fault:P0300:1`, `d/<hex>`.
pub(crate) struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match parse(self.0) {
            Ok(Key::Service(n)) => write!(f, "s/{n}"),
            Ok(Key::Downlink(n)) => write!(f, "l/{n}"),
            Ok(Key::ServiceCase(n)) => write!(f, "a/{n}"),
            Ok(Key::Outbox(n)) => write!(f, "o/{n}"),
            Ok(Key::Dtc(code)) => match postcard::from_bytes::<DtcCode>(code) {
                Ok(c) => write!(f, "d/{c}"),
                Err(_) => write!(f, "d/{}", Escaped(code)),
            },
            _ => write!(f, "{}", Escaped(self.0)),
        }
    }
}

struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{}", std::ascii::escape_default(*b))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rapport_shared::{Fmi, ObdCode, Spn};

    #[test]
    fn parse_inverts_every_builder() {
        assert_eq!(parse(&outbox(7)), Ok(Key::Outbox(7)));
        assert_eq!(parse(&service(3)), Ok(Key::Service(3)));
        assert_eq!(parse(&downlink(u64::MAX)), Ok(Key::Downlink(u64::MAX)));
        assert_eq!(parse(&service_case(42)), Ok(Key::ServiceCase(42)));
        assert_eq!(
            parse(&prompt("fault:P0300:1")),
            Ok(Key::Prompt("fault:P0300:1"))
        );
        assert_eq!(parse(&item("oil")), Ok(Key::Item("oil")));
        assert_eq!(parse(&campaign("spring")), Ok(Key::Campaign("spring")));
        assert_eq!(parse(VEHICLE), Ok(Key::Vehicle));
        assert_eq!(parse(SCHEMA), Ok(Key::Meta(b"schema")));
        let code = DtcCode::Obd(ObdCode::new(0x0133));
        let key = dtc(&code);
        let Ok(Key::Dtc(bytes)) = parse(&key) else {
            panic!("not a dtc key")
        };
        assert_eq!(postcard::from_bytes::<DtcCode>(bytes), Ok(code));
    }

    #[test]
    fn malformed_keys_are_unknown() {
        assert_eq!(parse(b"o/123"), Err(UnknownKey)); // not 8 bytes
        assert_eq!(parse(b"p/\xff"), Err(UnknownKey)); // not UTF-8
        assert_eq!(parse(b"zz"), Err(UnknownKey));
        assert_eq!(parse(b""), Err(UnknownKey));
    }

    #[test]
    fn outbox_keys_sort_by_seq() {
        assert!(outbox(255) < outbox(256));
        assert!(outbox(1) < outbox(u64::MAX));
    }

    #[test]
    fn keys_show_readably() {
        assert_eq!(Show(&outbox(42)).to_string(), "o/42");
        assert_eq!(Show(&prompt("a b")).to_string(), "p/a b");
        assert_eq!(Show(b"p/\xff").to_string(), "p/\\xff");
        let code = DtcCode::J1939(Spn::new(110).unwrap(), Fmi::new(0).unwrap());
        assert_eq!(Show(&dtc(&code)).to_string(), "d/SPN110/FMI0");
    }
}
