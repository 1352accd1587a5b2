//! Reading a schema-1 store into a [`Memory`] and the outbox index at open, and what to do with
//! a value that does not decode.
//!
//! Policy (the car must boot): a meta value (`m/…`) that is not an 8-byte number is an error —
//! without a trustworthy sequence mark the store could reuse sequence numbers, and that is not
//! for this module to paper over. Any other value that fails to decode is *set aside*: logged
//! with its key, moved unchanged to `q/<key>` (kept for analysis, never deleted) and counted;
//! the entity is then as if never stored:
//! - the vehicle state, show counts, schedule, a fault, item, prompt, campaign, service
//!   or service case starts again from nothing (a prompt may show again; a fault is seen as new);
//! - corrupt settings fall back to the privacy-safe choice: engagement prompts and partner
//!   sharing both off, until the driver turns them on again (never consent on their behalf);
//! - a corrupt outbox record cannot be sent: it is counted as dropped (the next heartbeat
//!   reports it); its sequence number still counts toward the high-water mark.
//!
//! A key that fits no part of the layout is logged and left alone.
//!
//! Does not own: the key layout ([`super::keys`]) or writing ([`super::Store`]).

use rapport_shared::DtcCode;
use rapport_shared::v1::uplink::Record;
use serde::de::DeserializeOwned;
use tracing::warn;

use super::keys::{self, Key};
use super::migrate::be_u64;
use super::outbox::{Class, Index};
use super::{StoreError, sled_error};
use crate::memory::{Memory, Settings};

/// What open found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Everything remembered.
    pub(crate) memory: Memory,
    /// The outbox's sequence numbers.
    pub(crate) outbox: Index,
    /// The next sequence number to assign.
    pub(crate) next_seq: u64,
    /// The persisted drop counter, plus the corrupt outbox records found now.
    pub(crate) dropped: u64,
    /// The index the next service is written at.
    pub(crate) service_next: u64,
    /// The latest trusted wall time an earlier run saw (unix ms).
    pub(crate) clock_floor: Option<u64>,
    /// Values to move to `q/`: (key, value).
    pub(crate) set_aside: Vec<(sled::IVec, sled::IVec)>,
}

fn decode<T: DeserializeOwned>(value: &[u8]) -> Result<T, String> {
    postcard::from_bytes(value).map_err(|e| e.to_string())
}

/// Reads every key of the tree.
///
/// # Errors
/// [`StoreError::Corrupt`] for a bad meta value, a sled error.
pub(crate) fn load(tree: &sled::Tree) -> Result<Loaded, StoreError> {
    let mut out = Loaded::default();
    let mut mark = None;
    let mut highest_seq = 0;
    let mut highest_service = None;
    for entry in tree.iter() {
        let (key, value) = entry.map_err(sled_error("reading the store"))?;
        let parsed = match keys::parse(&key) {
            Ok(k) => k,
            Err(keys::UnknownKey) => {
                warn!(key = %keys::Show(&key), "store key not part of the layout: ignored");
                continue;
            }
        };
        let result: Result<(), String> = match parsed {
            Key::Meta(name) => {
                match name {
                    b"next_seq" => mark = Some(be_u64(&key, &value)?),
                    b"dropped" => out.dropped = be_u64(&key, &value)?,
                    b"clock_floor" => out.clock_floor = Some(be_u64(&key, &value)?),
                    b"schema" => {}
                    _ => warn!(key = %keys::Show(&key), "unknown meta key: ignored"),
                }
                Ok(())
            }
            Key::Vehicle => decode(&value).map(|v| out.memory.vehicle = v),
            Key::Dtc(code) => decode::<DtcCode>(code)
                .map_err(|e| format!("key does not hold a DTC code: {e}"))
                .and_then(|code| decode(&value).map(|h| (code, h)))
                .map(|(code, h)| {
                    out.memory.dtcs.insert(code, h);
                }),
            Key::Service(index) => {
                // Even a corrupt service keeps its slot: new ones go after it.
                highest_service = highest_service.max(Some(index));
                decode(&value).map(|s| out.memory.services.push(s))
            }
            Key::Item(id) => decode(&value).map(|r| {
                out.memory.items.insert(id.to_owned(), r);
            }),
            Key::Prompt(id) => decode(&value).map(|r| {
                out.memory.prompts.insert(id.to_owned(), r);
            }),
            Key::Campaign(id) => decode(&value).map(|r| {
                out.memory.campaigns.insert(id.to_owned(), r);
            }),
            Key::Settings => decode(&value)
                .map(|s| out.memory.settings = s)
                .inspect_err(|_| {
                    out.memory.settings = Settings {
                        engagement_prompts: false,
                        partner_sharing: false,
                        ..Settings::default()
                    };
                }),
            Key::Shows => decode(&value).map(|s| out.memory.shows = s),
            Key::Schedule => decode(&value).map(|s| out.memory.schedule = Some(s)),
            Key::Downlink(id) => {
                out.memory.applied_downlinks.insert(id);
                Ok(())
            }
            Key::ServiceCase(id) => decode(&value).map(|c| {
                out.memory.service_cases.insert(id, c);
            }),
            Key::Outbox(seq) => {
                highest_seq = highest_seq.max(seq);
                match Record::decode(&value) {
                    Ok(r) if r.seq == seq => {
                        out.outbox.insert(seq, Class::of(&r.body));
                        Ok(())
                    }
                    Ok(r) => Err(format!("holds record seq {}", r.seq)),
                    Err(e) => Err(e.to_string()),
                }
                .inspect_err(|_| out.dropped += 1)
            }
            Key::Quarantine(original) => {
                warn!(key = %keys::Show(original), "a value set aside earlier is still in q/");
                Ok(())
            }
        };
        if let Err(reason) = result {
            warn!(key = %keys::Show(&key), %reason, "store value does not decode: set aside in q/");
            out.set_aside.push((key, value));
        }
    }
    let derived = highest_seq.saturating_add(1);
    out.next_seq = match mark {
        Some(m) if m >= derived => m,
        Some(m) => {
            warn!(
                mark = m,
                derived, "store sequence mark is behind the outbox: using the outbox"
            );
            derived
        }
        None => derived,
    };
    out.service_next = highest_service.map_or(0, |i| i.saturating_add(1));
    Ok(out)
}
