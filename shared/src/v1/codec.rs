//! The v1 byte layout of uplinks, downlinks and single records, and its limits.
//!
//! ```text
//! payload  = version:u8(=1) vin:[u8;17] count:varint item*count [future envelope fields]
//! uplink item   = seq_delta:varint t_delta:zigzag tag:varint len:varint body[len]
//! downlink item = id:varint at:varint tag:varint len:varint body[len]
//! record   = version:u8(=1) item            (one record on its own, as the outbox stores it)
//! ```
//! Every integer is a postcard varint and every body is postcard, so the whole payload is
//! postcard. Within a batch, sequence and time are deltas from the previous record (the first
//! from zero), and odometer and engine-hour bodies carry a signed delta from the previous
//! reading of the same kind in the batch: a batch of odometer readings costs ~7 bytes each.
//!
//! Decoding never trusts a length: the payload size is checked first, a declared count must fit
//! in the bytes that remain, a body length must fit in the payload, and nothing is allocated
//! beyond what the input could hold. Unknown record and downlink tags decode to `Unknown`;
//! bytes after a body's known fields and after the last item are ignored (room to grow).
//!
//! Fields appended since v1.0 and how they sit on the wire:
//! ```text
//! dtc_appeared / dtc_cleared = dtc severity ecu | class:Option<DtcClass>          (v1.1)
//! dtc_snapshot = active:[dtc severity ecu]* mil | classes:[Option<DtcClass>]*      (v1.1)
//! ```
//! The v1.1 part is written only when some class is known, so a classless event is byte for
//! byte what v1.0 wrote.
//! Inside a snapshot the events keep their v1.0 shape so a v1.0 cloud reads every one; their
//! classes follow `mil` in the same order.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::downlink::{Downlink, DownlinkBody, DownlinkMessage, tag as dtag};
use super::uplink::{
    DtcClass, DtcEvent, DtcSnapshot, EngineHoursReading, OdometerReading, Record, RecordBody,
    SignalSource, Uplink, kind_name, tag as utag,
};
use crate::{Dtc, EngineHours, Odometer, Severity, Timestamp, VIN_LEN, Vin, WireError};

/// The protocol version this build speaks; the first byte of every payload.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest uplink payload accepted (bytes).
pub const MAX_UPLINK_BYTES: usize = 256 * 1024;
/// Most records in one uplink.
pub const MAX_RECORDS: usize = 16_384;
/// Largest downlink payload accepted (bytes).
pub const MAX_DOWNLINK_BYTES: usize = 64 * 1024;
/// Most messages in one downlink.
pub const MAX_MESSAGES: usize = 256;
/// Largest single stored record (bytes).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Smallest possible encoded item: four one-byte varints and an empty body.
const MIN_ITEM_BYTES: usize = 4;

impl Uplink {
    /// Encodes the envelope.
    ///
    /// # Errors
    /// [`WireError::Encode`] if records are not in strictly increasing sequence order, an
    /// `Unknown` record uses a known tag, or the result exceeds [`MAX_UPLINK_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.records.len() > MAX_RECORDS {
            return Err(WireError::Encode(format!(
                "{} records, more than the limit of {MAX_RECORDS}",
                self.records.len()
            )));
        }
        let mut w = Writer::with_header(Some(&self.vin));
        w.varint(self.records.len() as u64);
        let mut ctx = Deltas::default();
        for r in &self.records {
            w.record(r, &mut ctx)?;
        }
        w.finish(MAX_UPLINK_BYTES)
    }

    /// Decodes an envelope from untrusted bytes.
    ///
    /// # Errors
    /// A [`WireError`] naming what is wrong and at which byte; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::open(bytes, MAX_UPLINK_BYTES)?;
        let vin = r.vin()?;
        let count = r.count(MAX_RECORDS)?;
        // Capacity is capped too: a hostile count that fits the bytes still allocates little.
        let mut records = Vec::with_capacity(count.min(1024));
        let mut ctx = Deltas::default();
        for index in 0..count {
            records.push(r.record(index, &mut ctx)?);
        }
        Ok(Self { vin, records })
    }
}

impl Record {
    /// Encodes one record on its own (version byte first), as the agent's outbox stores it.
    ///
    /// # Errors
    /// As [`Uplink::encode`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::with_header(None);
        w.record(self, &mut Deltas::default())?;
        w.finish(MAX_RECORD_BYTES)
    }

    /// Decodes one record stored with [`Record::encode`].
    ///
    /// # Errors
    /// A [`WireError`] naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Reader::open(bytes, MAX_RECORD_BYTES)?.record(0, &mut Deltas::default())
    }
}

impl Downlink {
    /// Encodes the envelope.
    ///
    /// # Errors
    /// [`WireError::Encode`] if an `Unknown` message uses a known tag or the result is too large.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.messages.len() > MAX_MESSAGES {
            return Err(WireError::Encode(format!(
                "{} messages, more than the limit of {MAX_MESSAGES}",
                self.messages.len()
            )));
        }
        let mut w = Writer::with_header(Some(&self.vin));
        w.varint(self.messages.len() as u64);
        for m in &self.messages {
            w.varint(m.id);
            w.varint(m.at.as_millis());
            let body = match &m.body {
                DownlinkBody::Campaign(b) => to_body(b)?,
                DownlinkBody::ScheduleUpdate(b) => to_body(b)?,
                DownlinkBody::ServiceRecorded(b) => to_body(b)?,
                DownlinkBody::BookingConfirmed(b) => to_body(b)?,
                DownlinkBody::VehicleWipe(b) => to_body(b)?,
                DownlinkBody::OwnerChanged(b) => to_body(b)?,
                DownlinkBody::ServiceProgress(b) => to_body(b)?,
                DownlinkBody::Unknown { tag, bytes } => {
                    if *tag <= dtag::MAX_KNOWN {
                        return Err(WireError::Encode(format!(
                            "downlink tag {tag} is known and cannot be sent as unknown"
                        )));
                    }
                    bytes.clone()
                }
            };
            w.item(m.body.tag(), &body);
        }
        w.finish(MAX_DOWNLINK_BYTES)
    }

    /// Decodes an envelope from untrusted bytes.
    ///
    /// # Errors
    /// A [`WireError`] naming what is wrong and at which byte; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::open(bytes, MAX_DOWNLINK_BYTES)?;
        let vin = r.vin()?;
        let count = r.count(MAX_MESSAGES)?;
        let mut messages = Vec::with_capacity(count.min(64));
        for index in 0..count {
            let id = r.varint("message id")?;
            let at = Timestamp::from_millis(r.varint("message time")?);
            let (tag, at_byte, body) = r.item()?;
            let ctx = |e| WireError::Item {
                index,
                kind: downlink_kind_name(tag),
                offset: at_byte,
                reason: e,
            };
            let body = match tag {
                dtag::CAMPAIGN => DownlinkBody::Campaign(from_body(body).map_err(ctx)?),
                dtag::SCHEDULE_UPDATE => {
                    DownlinkBody::ScheduleUpdate(from_body(body).map_err(ctx)?)
                }
                dtag::SERVICE_RECORDED => {
                    DownlinkBody::ServiceRecorded(from_body(body).map_err(ctx)?)
                }
                dtag::BOOKING_CONFIRMED => {
                    DownlinkBody::BookingConfirmed(from_body(body).map_err(ctx)?)
                }
                dtag::VEHICLE_WIPE => DownlinkBody::VehicleWipe(from_body(body).map_err(ctx)?),
                dtag::OWNER_CHANGED => DownlinkBody::OwnerChanged(from_body(body).map_err(ctx)?),
                dtag::SERVICE_PROGRESS => {
                    DownlinkBody::ServiceProgress(from_body(body).map_err(ctx)?)
                }
                0 => return Err(ctx("tag 0 is reserved".into())),
                _ => DownlinkBody::Unknown {
                    tag,
                    bytes: body.to_vec(),
                },
            };
            messages.push(DownlinkMessage { id, at, body });
        }
        Ok(Self { vin, messages })
    }
}

fn downlink_kind_name(tag: u32) -> &'static str {
    match tag {
        dtag::CAMPAIGN => "campaign",
        dtag::SCHEDULE_UPDATE => "schedule_update",
        dtag::SERVICE_RECORDED => "service_recorded",
        dtag::BOOKING_CONFIRMED => "booking_confirmed",
        dtag::VEHICLE_WIPE => "vehicle_wipe",
        dtag::OWNER_CHANGED => "owner_changed",
        dtag::SERVICE_PROGRESS => "service_progress",
        _ => "unknown",
    }
}

/// Previous values within one batch, for delta coding.
#[derive(Default)]
struct Deltas {
    seq: u64,
    at: u64,
    odometer: u64,
    engine: u64,
}

/// Odometer and engine-hour bodies on the wire: source and a signed delta from the previous
/// reading of the same kind in the batch (from zero for the first).
#[derive(Serialize, Deserialize)]
struct DeltaReading {
    source: SignalSource,
    delta: i64,
}

// Deltas wrap around u64 (two's complement): every u64 reading encodes, a small step in either
// direction stays a short zigzag varint, and no hostile delta can make decoding fail or panic.
// Whether a reading is plausible is the receiver's judgement, not the codec's.
fn signed_delta(value: u64, prev: u64) -> i64 {
    value.wrapping_sub(prev) as i64
}

fn apply_delta(prev: u64, delta: i64) -> u64 {
    prev.wrapping_add(delta as u64)
}

fn to_body<T: Serialize>(v: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_allocvec(v).map_err(|e| WireError::Encode(e.to_string()))
}

/// Decodes a body's known fields; bytes after them belong to fields added later and are ignored.
fn from_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::take_from_bytes::<T>(bytes)
        .map(|(v, _rest)| v)
        .map_err(|e| e.to_string())
}

/// A [`DtcEvent`] as v1.0 sent it: the fields before `class`.
#[derive(Serialize, Deserialize)]
struct DtcEventV10 {
    dtc: Dtc,
    severity: Severity,
    ecu: u32,
}

/// A [`DtcSnapshot`] as v1.0 sent it; v1.1 appends the classes after it.
#[derive(Serialize, Deserialize)]
struct DtcSnapshotV10 {
    active: Vec<DtcEventV10>,
    mil: bool,
}

impl From<&DtcEvent> for DtcEventV10 {
    fn from(e: &DtcEvent) -> Self {
        Self {
            dtc: e.dtc,
            severity: e.severity,
            ecu: e.ecu,
        }
    }
}

/// The value of a field appended after a v1.0 body: `None` when the sender was older and the
/// body ends before it.
fn appended<T: DeserializeOwned>(rest: &[u8], what: &str) -> Result<Option<T>, String> {
    if rest.is_empty() {
        return Ok(None);
    }
    postcard::take_from_bytes::<T>(rest)
        .map(|(v, _later_fields)| Some(v))
        .map_err(|e| format!("{what}: {e}"))
}

/// A DTC event in two steps: the v1.0 fields, then `class` if the body goes on.
fn dtc_event_from_body(bytes: &[u8]) -> Result<DtcEvent, String> {
    let (old, rest) = postcard::take_from_bytes::<DtcEventV10>(bytes).map_err(|e| e.to_string())?;
    Ok(DtcEvent {
        dtc: old.dtc,
        severity: old.severity,
        ecu: old.ecu,
        class: appended::<Option<DtcClass>>(rest, "class")?.flatten(),
    })
}

// Without a class an event or snapshot is written exactly as v1.0 wrote it: `None` and "not
// there" mean the same, and the frozen v1.0 bytes stay what this encoder produces.
fn dtc_event_to_body(e: &DtcEvent) -> Result<Vec<u8>, WireError> {
    let mut body = to_body(&DtcEventV10::from(e))?;
    if e.class.is_some() {
        body.extend_from_slice(&to_body(&e.class)?);
    }
    Ok(body)
}

fn snapshot_to_body(s: &DtcSnapshot) -> Result<Vec<u8>, WireError> {
    let mut body = to_body(&DtcSnapshotV10 {
        active: s.active.iter().map(DtcEventV10::from).collect(),
        mil: s.mil,
    })?;
    if s.active.iter().any(|e| e.class.is_some()) {
        let classes: Vec<Option<DtcClass>> = s.active.iter().map(|e| e.class).collect();
        body.extend_from_slice(&to_body(&classes)?);
    }
    Ok(body)
}

/// A snapshot in two steps: the v1.0 body, then one class per event if the body goes on.
fn snapshot_from_body(bytes: &[u8]) -> Result<DtcSnapshot, String> {
    let (old, rest) =
        postcard::take_from_bytes::<DtcSnapshotV10>(bytes).map_err(|e| e.to_string())?;
    let classes = appended::<Vec<Option<DtcClass>>>(rest, "classes")?;
    if let Some(c) = &classes
        && c.len() != old.active.len()
    {
        return Err(format!(
            "classes: {} listed for {} faults",
            c.len(),
            old.active.len()
        ));
    }
    let mut classes = classes.unwrap_or_default().into_iter();
    let active = old
        .active
        .into_iter()
        .map(|e| DtcEvent {
            dtc: e.dtc,
            severity: e.severity,
            ecu: e.ecu,
            class: classes.next().flatten(),
        })
        .collect();
    Ok(DtcSnapshot {
        active,
        mil: old.mil,
    })
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn with_header(vin: Option<&Vin>) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.push(PROTOCOL_VERSION);
        if let Some(vin) = vin {
            buf.extend_from_slice(vin.as_bytes());
        }
        Self { buf }
    }

    fn varint(&mut self, v: u64) {
        let mut tmp = [0u8; 10];
        // A u64 varint takes at most 10 bytes, so this never fails.
        if let Ok(used) = postcard::to_slice(&v, &mut tmp) {
            self.buf.extend_from_slice(used);
        }
    }

    fn zigzag(&mut self, v: i64) {
        let mut tmp = [0u8; 10];
        if let Ok(used) = postcard::to_slice(&v, &mut tmp) {
            self.buf.extend_from_slice(used);
        }
    }

    fn item(&mut self, tag: u32, body: &[u8]) {
        self.varint(u64::from(tag));
        self.varint(body.len() as u64);
        self.buf.extend_from_slice(body);
    }

    fn record(&mut self, r: &Record, ctx: &mut Deltas) -> Result<(), WireError> {
        if r.seq <= ctx.seq {
            return Err(WireError::Encode(format!(
                "sequence {} does not follow {}: records must be in increasing order from 1",
                r.seq, ctx.seq
            )));
        }
        self.varint(r.seq - ctx.seq);
        self.zigzag(signed_delta(r.at.as_millis(), ctx.at));
        ctx.seq = r.seq;
        ctx.at = r.at.as_millis();
        let body = match &r.body {
            RecordBody::Odometer(o) => {
                let delta = signed_delta(o.odometer.meters(), ctx.odometer);
                ctx.odometer = o.odometer.meters();
                to_body(&DeltaReading {
                    source: o.source,
                    delta,
                })?
            }
            RecordBody::EngineHours(h) => {
                let delta = signed_delta(h.hours.secs(), ctx.engine);
                ctx.engine = h.hours.secs();
                to_body(&DeltaReading {
                    source: h.source,
                    delta,
                })?
            }
            RecordBody::DtcAppeared(b) | RecordBody::DtcCleared(b) => dtc_event_to_body(b)?,
            RecordBody::DtcSnapshot(b) => snapshot_to_body(b)?,
            RecordBody::Maintenance(b) => to_body(b)?,
            RecordBody::Prompt(b) => to_body(b)?,
            RecordBody::Consent(b) => to_body(b)?,
            RecordBody::Heartbeat(b) => to_body(b)?,
            RecordBody::WipeConfirmed(b) => to_body(b)?,
            RecordBody::ClockUntrusted(b) => to_body(b)?,
            RecordBody::ServiceAnswer(b) => to_body(b)?,
            RecordBody::Unknown { tag, bytes } => {
                if *tag <= utag::MAX_KNOWN {
                    return Err(WireError::Encode(format!(
                        "record tag {tag} is known and cannot be sent as unknown"
                    )));
                }
                bytes.clone()
            }
        };
        self.item(r.body.tag(), &body);
        Ok(())
    }

    fn finish(self, max: usize) -> Result<Vec<u8>, WireError> {
        if self.buf.len() > max {
            return Err(WireError::TooLarge {
                len: self.buf.len(),
                max,
            });
        }
        Ok(self.buf)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks size and version; positions after the version byte.
    fn open(buf: &'a [u8], max: usize) -> Result<Self, WireError> {
        let Some(&version) = buf.first() else {
            return Err(WireError::Empty);
        };
        if buf.len() > max {
            return Err(WireError::TooLarge {
                len: buf.len(),
                max,
            });
        }
        if version != PROTOCOL_VERSION {
            return Err(WireError::Version {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        Ok(Self { buf, pos: 1 })
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn malformed(&self, what: &'static str, reason: impl Into<String>) -> WireError {
        WireError::Malformed {
            what,
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take_value<T: DeserializeOwned>(&mut self, what: &'static str) -> Result<T, WireError> {
        let rest = self.rest();
        match postcard::take_from_bytes::<T>(rest) {
            Ok((v, after)) => {
                self.pos += rest.len() - after.len();
                Ok(v)
            }
            Err(e) => Err(self.malformed(what, e.to_string())),
        }
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        self.take_value::<u64>(what)
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let rest = self.rest();
        let Some(b) = rest.get(..n) else {
            return Err(self.malformed(what, format!("{n} bytes declared, {} remain", rest.len())));
        };
        self.pos += n;
        Ok(b)
    }

    fn vin(&mut self) -> Result<Vin, WireError> {
        let at = self.pos;
        let raw = self.bytes(VIN_LEN, "VIN")?;
        Vin::from_bytes(raw).map_err(|e| WireError::Malformed {
            what: "VIN",
            offset: at,
            reason: e.to_string(),
        })
    }

    /// Reads a declared count and checks it against the limit and the bytes left.
    fn count(&mut self, max: usize) -> Result<usize, WireError> {
        let at = self.pos;
        let declared = self.varint("item count")?;
        let fits = self.rest().len() / MIN_ITEM_BYTES;
        match usize::try_from(declared) {
            Ok(n) if n <= max && n <= fits => Ok(n),
            _ => Err(WireError::Malformed {
                what: "item count",
                offset: at,
                reason: format!(
                    "{declared} declared; at most {max}, and the payload holds at most {fits}"
                ),
            }),
        }
    }

    /// Reads `tag len body`; returns the tag, the body's offset and the body.
    fn item(&mut self) -> Result<(u32, usize, &'a [u8]), WireError> {
        let tag = self.varint("item tag")?;
        let tag = u32::try_from(tag).map_err(|_| self.malformed("item tag", "above u32"))?;
        let len = self.varint("item length")?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let at = self.pos;
        let body = self.bytes(len, "item body")?;
        Ok((tag, at, body))
    }

    fn record(&mut self, index: usize, ctx: &mut Deltas) -> Result<Record, WireError> {
        let seq_delta = self.varint("sequence delta")?;
        if seq_delta == 0 {
            return Err(self.malformed("sequence delta", "sequence numbers must increase"));
        }
        let seq = ctx
            .seq
            .checked_add(seq_delta)
            .ok_or_else(|| self.malformed("sequence delta", "sequence overflows u64"))?;
        let t_delta = self.take_value::<i64>("time delta")?;
        let at = apply_delta(ctx.at, t_delta);
        ctx.seq = seq;
        ctx.at = at;
        let (tag, offset, body) = self.item()?;
        let err = |reason: String| WireError::Item {
            index,
            kind: kind_name(tag),
            offset,
            reason,
        };
        let body = match tag {
            utag::ODOMETER => {
                let d: DeltaReading = from_body(body).map_err(err)?;
                ctx.odometer = apply_delta(ctx.odometer, d.delta);
                RecordBody::Odometer(OdometerReading {
                    odometer: Odometer::from_meters(ctx.odometer),
                    source: d.source,
                })
            }
            utag::ENGINE_HOURS => {
                let d: DeltaReading = from_body(body).map_err(err)?;
                ctx.engine = apply_delta(ctx.engine, d.delta);
                RecordBody::EngineHours(EngineHoursReading {
                    hours: EngineHours::from_secs(ctx.engine),
                    source: d.source,
                })
            }
            utag::DTC_APPEARED => RecordBody::DtcAppeared(dtc_event_from_body(body).map_err(err)?),
            utag::DTC_CLEARED => RecordBody::DtcCleared(dtc_event_from_body(body).map_err(err)?),
            utag::DTC_SNAPSHOT => RecordBody::DtcSnapshot(snapshot_from_body(body).map_err(err)?),
            utag::MAINTENANCE => RecordBody::Maintenance(from_body(body).map_err(err)?),
            utag::PROMPT => RecordBody::Prompt(from_body(body).map_err(err)?),
            utag::CONSENT => RecordBody::Consent(from_body(body).map_err(err)?),
            utag::HEARTBEAT => RecordBody::Heartbeat(from_body(body).map_err(err)?),
            utag::WIPE_CONFIRMED => RecordBody::WipeConfirmed(from_body(body).map_err(err)?),
            utag::CLOCK_UNTRUSTED => RecordBody::ClockUntrusted(from_body(body).map_err(err)?),
            utag::SERVICE_ANSWER => RecordBody::ServiceAnswer(from_body(body).map_err(err)?),
            0 => return Err(err("tag 0 is reserved".into())),
            _ => RecordBody::Unknown {
                tag,
                bytes: body.to_vec(),
            },
        };
        Ok(Record {
            seq,
            at: Timestamp::from_millis(at),
            body,
        })
    }
}
