//! rapport's wire protocol: the one home of the types the agent and the cloud both use, and
//! their postcard encoding.
//!
//! - [`Vin`], [`Dtc`]/[`DtcCode`], [`Odometer`], [`EngineHours`], [`Timestamp`]: parsed once,
//!   valid after that, fixed-point (no floats on the wire).
//! - [`v1::uplink`]: the [`Uplink`] envelope of sequence-numbered [`Record`]s (car → cloud).
//! - [`v1::downlink`]: the [`Downlink`] envelope of id-carrying messages (cloud → car).
//! - [`v1::topic`]: `rapport/v1/{vin}/up` and `rapport/v1/{vin}/down`.
//! - [`v1::schedule`]: the checks a maintenance schedule passes, from a config or a downlink.
//! - [`v1::codec`]: the byte layout and its limits; decoding untrusted bytes never panics and
//!   never allocates beyond what the input could hold.
//!
//! No tokio and no I/O here.
//!
//! # Growing the protocol without breaking cars in the field
//!
//! Agents live in cars for a decade and are updated late or never, so old and new agents and
//! clouds must understand each other. The layout is built for it (see [`v1::codec`]):
//! every record and downlink is `tag, length, body`, and decoders skip what they don't know.
//!
//! **Adding a record kind** (or a downlink kind): give it the next unused tag in
//! [`v1::uplink::tag`] (never reuse or renumber one), a variant in [`RecordBody`], and its
//! arms in the codec.
//! - *New agent → old cloud*: the old cloud decodes the new record as
//!   [`RecordBody::Unknown`] — tag, bytes, and its sequence number and time. It applies the
//!   sequence number (so dedup and ordering hold), counts it, and everything else in the batch
//!   is applied as usual.
//! - *Old agent → new cloud*: the old agent never sends the new kind; every kind it does send
//!   is decoded by the same arm as before.
//! - An old agent receiving a new downlink kind sees [`DownlinkBody::Unknown`], records its id
//!   as applied and ignores it.
//!
//! The test `compat::new_record_kind_reaches_an_old_cloud` in `tests/compat.rs` proves both
//! directions for one added kind, and frozen v1 bytes there keep old encodings decoding forever.
//!
//! **Adding a field to an existing kind**: append it at the *end* of the body struct, as an
//! `Option` (postcard is positional: never reorder, remove or retype a field).
//! - *New sender → old receiver*: the old receiver decodes the fields it knows and ignores the
//!   bytes after them (bodies are length-delimited, and trailing bytes are ignored).
//! - *Old sender → new receiver*: the body ends before the new field. postcard itself fails on
//!   a missing trailing field, so a receiver that adds one decodes the body in two steps: the
//!   old struct first, then the new field from the bytes left (`None` when there are none).
//! - A struct that also sits inside a list of another body (as [`DtcEvent`] inside
//!   [`DtcSnapshot::active`]) keeps its old shape inside the list, and the new field of every
//!   element follows the outer body's last field as one trailing list; otherwise an old
//!   receiver would read the new bytes as the next element. [`DtcEvent::class`] (v1.1) is the
//!   worked example: `compat::dtc_class_*` in `tests/compat.rs` proves both directions.
//!
//! **Adding a variant to an enum inside a body**: only to the *open* enums ([`PromptKind`],
//! [`ConsentKind`], [`DtcClass`]), which decode unknown codes as `Other(code)`. The closed ones
//! ([`Severity`], [`MaintenanceStatus`], [`SignalSource`], [`PromptAction`], [`Priority`])
//! never grow: a new meaning there is a new record kind.
//!
//! **Breaking change**: a new version byte (`2`), a `v2` module beside `v1`, and a cloud that
//! speaks both for as long as v1 cars are on the road.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod calendar;
mod dtc;
mod error;
pub mod hex;
mod units;
pub mod v1;
mod vin;

pub use calendar::CivilDate;
pub use dtc::{
    Dtc, DtcCode, DtcError, Fmi, ObdCode, OccurrenceCount, Severity, Spn, UdsCode, UdsStatus,
};
pub use error::WireError;
pub use units::{EngineHours, Odometer, Timestamp};
pub use v1::codec::{
    MAX_DOWNLINK_BYTES, MAX_MESSAGES, MAX_RECORD_BYTES, MAX_RECORDS, MAX_UPLINK_BYTES,
    PROTOCOL_VERSION,
};
pub use v1::downlink::{
    BookingConfirmed, Campaign, CampaignTarget, Downlink, DownlinkBody, DownlinkMessage,
    MaintenanceItem, OwnerChanged, Priority, ScheduleUpdate, ServiceProgress, ServiceRecorded,
    ServiceStage, VehicleWipe,
};
pub use v1::schedule::{ScheduleProblem, check_schedule};
pub use v1::topic;
pub use v1::uplink::{
    ClockUntrusted, ConsentChange, ConsentKind, DriverAnswer, DtcClass, DtcEvent, DtcSnapshot,
    EngineHoursReading, Heartbeat, MaintenanceEvent, MaintenanceStatus, OdometerReading,
    PromptAction, PromptEvent, PromptKind, Record, RecordBody, ServiceAnswer, SignalSource, Uplink,
    WipeConfirmed,
};
pub use vin::{VIN_LEN, Vin, VinError};
