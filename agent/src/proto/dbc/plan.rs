//! The decode plan: the named signals compiled, per CAN id, into precomputed layouts,
//! scaling, ranges and multiplexor gates; and decoding a frame against it.
//!
//! Owns compiling (and the checks `check-config` reports) and the per-frame hot path:
//! a binary search on a sorted vec, a few bit extractions, no allocation. Does not own
//! parsing the file (the parent module) or the bit numbering itself (`bits`).

use std::sync::Arc;

use can_dbc::{Message, MultiplexIndicator, NumericValue, Signal, SignalExtendedValueType};

use super::bits::{BitLayout, ByteOrder};
use super::{DbcError, DbcFile, MessageSelector, WantedSignal, message_label};
use crate::can::frame::CanFrame;

/// Most multiplexor signals one message may need decoded (nested ones included). Selector
/// values live in a fixed array per frame, so the limit keeps decoding allocation-free.
pub const MAX_MULTIPLEXORS: usize = 8;

const EXTENDED_FLAG: u32 = 1 << 31;

/// A compiled signal: its position in the `wanted` list given to [`DbcFile::compile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalId(usize);

impl SignalId {
    /// The position in the `wanted` list.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// A raw (unscaled) value: two's complement for signed signals, the bits otherwise
/// (for float signals, the IEEE bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawValue {
    /// An unsigned signal, or a float signal's bits.
    Unsigned(u64),
    /// A signed signal, sign-extended from its length.
    Signed(i64),
}

impl RawValue {
    /// As an `i128`, which holds both kinds exactly.
    pub(crate) fn as_i128(self) -> i128 {
        match self {
            Self::Unsigned(v) => i128::from(v),
            Self::Signed(v) => i128::from(v),
        }
    }
}

/// How the raw bits become a number before factor and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// An integer of the signal's length (the usual case).
    Integer,
    /// `SIG_VALTYPE_ ... : 1`: an IEEE 754 single, 32 bits.
    Float32,
    /// `SIG_VALTYPE_ ... : 2`: an IEEE 754 double, 64 bits.
    Float64,
}

/// One decoded signal. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalValue {
    /// Which wanted signal this is.
    pub(crate) signal: SignalId,
    /// The value before factor and offset.
    pub(crate) raw: RawValue,
    /// `raw * factor + offset`.
    pub value: f64,
    /// The value lies outside the DBC's `[min|max]` (only checked when the DBC gives a
    /// range other than `[0|0]`). The value is still returned: the caller decides.
    pub(crate) out_of_range: bool,
}

/// What the plan knows about one compiled signal, for logging and labels.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SignalInfo {
    /// The message name.
    pub(crate) message: Arc<str>,
    /// The CAN id (11 or 29 bits).
    pub(crate) can_id: u32,
    /// Whether the id is 29-bit.
    pub(crate) extended: bool,
    /// The signal name.
    pub(crate) name: Arc<str>,
    /// The unit, as written.
    pub(crate) unit: String,
    /// Where its bits are.
    pub(crate) layout: BitLayout,
    /// Integer or float.
    pub(crate) kind: ValueKind,
    /// Scale.
    pub(crate) factor: f64,
    /// Offset.
    pub(crate) offset: f64,
    /// `[min, max]` if the DBC gives one (not `[0|0]`).
    pub(crate) range: Option<(f64, f64)>,
    /// Whether a multiplexor gates it.
    pub(crate) multiplexed: bool,
    /// The `VAL_` table: raw value → label.
    pub(crate) labels: Vec<(i64, String)>,
}

impl SignalInfo {
    /// The `VAL_` label for a raw value (e.g. 0 → "P"), if the DBC has one.
    #[cfg(test)]
    pub(crate) fn label(&self, raw: RawValue) -> Option<&str> {
        let raw = raw.as_i128();
        self.labels
            .iter()
            .find(|(v, _)| i128::from(*v) == raw)
            .map(|(_, l)| l.as_str())
    }
}

/// A frame could not give a wanted signal. Cheap to build: names are shared, not copied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The signal's bits run past the frame's data.
    #[error(
        "CAN {can_id:#X} ({message}) signal {signal}: needs {needed} data bytes, frame has {len}"
    )]
    PastFrameEnd {
        /// Which wanted signal.
        id: SignalId,
        /// The CAN id.
        can_id: u32,
        /// The message name.
        message: Arc<str>,
        /// The signal name.
        signal: Arc<str>,
        /// Bytes needed.
        needed: usize,
        /// Bytes in the frame.
        len: usize,
    },
    /// The multiplexor that gates the signal runs past the frame's data.
    #[error(
        "CAN {can_id:#X} ({message}) signal {signal}: its multiplexor {multiplexor} needs \
         {needed} data bytes, frame has {len}"
    )]
    MultiplexorPastFrameEnd {
        /// Which wanted signal.
        id: SignalId,
        /// The CAN id.
        can_id: u32,
        /// The message name.
        message: Arc<str>,
        /// The signal name.
        signal: Arc<str>,
        /// The multiplexor's name.
        multiplexor: Arc<str>,
        /// Bytes the multiplexor needs.
        needed: usize,
        /// Bytes in the frame.
        len: usize,
    },
}

/// Signals to decode, grouped by CAN id. Built by [`DbcFile::compile`].
#[derive(Debug, Clone, Default)]
pub struct DecodePlan {
    /// Sorted by `key`, searched per frame.
    messages: Vec<MessagePlan>,
    /// Indexed by [`SignalId`].
    signals: Vec<SignalInfo>,
}

#[derive(Debug, Clone)]
struct MessagePlan {
    /// The DBC's raw id: CAN id, bit 31 set if extended.
    key: u32,
    can_id: u32,
    name: Arc<str>,
    /// In dependency order: a selector's own gate only refers to earlier selectors.
    selectors: Vec<Selector>,
    signals: Vec<PlannedSignal>,
}

#[derive(Debug, Clone)]
struct Selector {
    name: Arc<str>,
    layout: BitLayout,
    gate: Option<Gate>,
}

/// Decode only when selector number `selector` has a value in one of `ranges`.
#[derive(Debug, Clone)]
struct Gate {
    selector: usize,
    ranges: Vec<(u64, u64)>,
}

#[derive(Debug, Clone)]
struct PlannedSignal {
    id: SignalId,
    name: Arc<str>,
    layout: BitLayout,
    kind: ValueKind,
    factor: f64,
    offset: f64,
    range: Option<(f64, f64)>,
    gate: Option<Gate>,
}

#[derive(Debug, Clone, Copy)]
enum SelectorState {
    Value(u64),
    /// Its own gate is closed: signals it gates are absent.
    Inactive,
    /// Selector number `.0` (this one or one gating it) ran past the frame.
    PastEnd(usize),
}

enum Open {
    Yes,
    No,
    PastEnd(usize),
}

impl Gate {
    fn open(&self, states: &[SelectorState]) -> Open {
        match states.get(self.selector) {
            Some(SelectorState::Value(v)) => {
                if self.ranges.iter().any(|(lo, hi)| lo <= v && v <= hi) {
                    Open::Yes
                } else {
                    Open::No
                }
            }
            Some(SelectorState::PastEnd(i)) => Open::PastEnd(*i),
            Some(SelectorState::Inactive) | None => Open::No,
        }
    }
}

impl DecodePlan {
    /// Decodes every wanted signal the frame carries. Frames of other ids, and remote
    /// frames, yield nothing. Signals gated off by their multiplexor are skipped.
    pub fn decode<'p, 'f>(&'p self, frame: &'f CanFrame) -> Decoded<'p, 'f> {
        use embedded_can::Frame;
        if frame.is_remote_frame() {
            return Decoded::none(frame.data());
        }
        self.decode_raw(frame.raw_id(), frame.is_extended(), frame.data())
    }

    /// As [`decode`](Self::decode), from an id and data bytes (any length).
    pub fn decode_raw<'p, 'f>(
        &'p self,
        can_id: u32,
        extended: bool,
        data: &'f [u8],
    ) -> Decoded<'p, 'f> {
        let key = (can_id & 0x1FFF_FFFF) | if extended { EXTENDED_FLAG } else { 0 };
        let Some(message) = self
            .messages
            .binary_search_by_key(&key, |m| m.key)
            .ok()
            .and_then(|i| self.messages.get(i))
        else {
            return Decoded::none(data);
        };
        let mut selectors = [SelectorState::Inactive; MAX_MULTIPLEXORS];
        for (i, sel) in message.selectors.iter().enumerate() {
            let state = match sel.gate.as_ref().map(|g| g.open(&selectors)) {
                Some(Open::No) => SelectorState::Inactive,
                Some(Open::PastEnd(j)) => SelectorState::PastEnd(j),
                Some(Open::Yes) | None => match sel.layout.extract(data) {
                    Some(v) => SelectorState::Value(v),
                    None => SelectorState::PastEnd(i),
                },
            };
            if let Some(slot) = selectors.get_mut(i) {
                *slot = state;
            }
        }
        Decoded {
            message: Some(message),
            data,
            selectors,
            next: 0,
        }
    }

    /// What the plan knows about a compiled signal.
    #[cfg(test)]
    pub(crate) fn signal(&self, id: SignalId) -> Option<&SignalInfo> {
        self.signals.get(id.0)
    }

    /// All compiled signals, indexed by [`SignalId::index`].
    pub fn signals(&self) -> &[SignalInfo] {
        &self.signals
    }

    /// The CAN ids (with their 29-bit flag) the plan decodes: the frames worth filtering for.
    pub fn can_ids(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        self.messages
            .iter()
            .map(|m| (m.can_id, m.key & EXTENDED_FLAG != 0))
    }
}

/// The signals of one frame, decoded lazily as the iterator advances.
#[derive(Debug)]
pub struct Decoded<'p, 'f> {
    message: Option<&'p MessagePlan>,
    data: &'f [u8],
    selectors: [SelectorState; MAX_MULTIPLEXORS],
    next: usize,
}

impl<'f> Decoded<'_, 'f> {
    fn none(data: &'f [u8]) -> Self {
        Self {
            message: None,
            data,
            selectors: [SelectorState::Inactive; MAX_MULTIPLEXORS],
            next: 0,
        }
    }
}

impl Iterator for Decoded<'_, '_> {
    type Item = Result<SignalValue, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let message = self.message?;
        while let Some(signal) = message.signals.get(self.next) {
            self.next += 1;
            match signal.gate.as_ref().map(|g| g.open(&self.selectors)) {
                Some(Open::No) => continue,
                Some(Open::PastEnd(j)) => {
                    let (multiplexor, needed) = message
                        .selectors
                        .get(j)
                        .map(|s| (s.name.clone(), s.layout.bytes_needed()))
                        .unwrap_or_else(|| (Arc::from("?"), 0));
                    return Some(Err(DecodeError::MultiplexorPastFrameEnd {
                        id: signal.id,
                        can_id: message.can_id,
                        message: message.name.clone(),
                        signal: signal.name.clone(),
                        multiplexor,
                        needed,
                        len: self.data.len(),
                    }));
                }
                Some(Open::Yes) | None => {}
            }
            return Some(signal.decode(message, self.data));
        }
        None
    }
}

impl PlannedSignal {
    #[inline]
    fn decode(&self, message: &MessagePlan, data: &[u8]) -> Result<SignalValue, DecodeError> {
        let Some(bits) = self.layout.extract(data) else {
            return Err(DecodeError::PastFrameEnd {
                id: self.id,
                can_id: message.can_id,
                message: message.name.clone(),
                signal: self.name.clone(),
                needed: self.layout.bytes_needed(),
                len: data.len(),
            });
        };
        let (raw, number) = match self.kind {
            ValueKind::Integer if self.layout.is_signed() => {
                let v = self.layout.sign_extend(bits);
                (RawValue::Signed(v), v as f64)
            }
            ValueKind::Integer => (RawValue::Unsigned(bits), bits as f64),
            // The layout is exactly 32 bits for Float32 (checked when compiling).
            ValueKind::Float32 => (
                RawValue::Unsigned(bits),
                f64::from(f32::from_bits(bits as u32)),
            ),
            ValueKind::Float64 => (RawValue::Unsigned(bits), f64::from_bits(bits)),
        };
        let value = number * self.factor + self.offset;
        let out_of_range = self.range.is_some_and(|(lo, hi)| {
            // Scaling in f64 lands a hair off exact bounds (16777200 * 0.1); a millionth of
            // a step is far below any real signal's resolution.
            let tol = (self.factor.abs() * 1e-6).max(lo.abs().max(hi.abs()) * 1e-12);
            // Written so that NaN counts as out of range.
            !(value >= lo - tol && value <= hi + tol)
        });
        Ok(SignalValue {
            signal: self.id,
            raw,
            value,
            out_of_range,
        })
    }
}

/// Compiles what it can; the plan is only meaningful when the error list is empty.
pub(super) fn build(file: &DbcFile, wanted: &[WantedSignal]) -> (DecodePlan, Vec<DbcError>) {
    let mut plan = DecodePlan::default();
    let mut errors = Vec::new();
    for (index, w) in wanted.iter().enumerate() {
        match compile_one(file, w, SignalId(index), &mut plan.messages) {
            Ok(info) => plan.signals.push(info),
            Err(err) => errors.push(err),
        }
    }
    plan.messages.sort_by_key(|m| m.key);
    (plan, errors)
}

fn find_message<'d>(dbc: &'d can_dbc::Dbc, selector: &MessageSelector) -> Option<&'d Message> {
    dbc.messages.iter().find(|m| match selector {
        MessageSelector::Name(name) => m.name == *name,
        MessageSelector::Id(id) => m.id.raw() == *id,
    })
}

fn compile_one(
    file: &DbcFile,
    wanted: &WantedSignal,
    id: SignalId,
    messages: &mut Vec<MessagePlan>,
) -> Result<SignalInfo, DbcError> {
    let dbc = file.dbc();
    let message = find_message(dbc, &wanted.message).ok_or_else(|| DbcError::UnknownMessage {
        file: file.name().to_owned(),
        message: wanted.message.to_string(),
    })?;
    let label = message_label(message);
    let signal = message
        .signals
        .iter()
        .find(|s| s.name == wanted.signal)
        .ok_or_else(|| DbcError::UnknownSignal {
            file: file.name().to_owned(),
            message: label.clone(),
            signal: wanted.signal.clone(),
        })?;
    let invalid = |reason: String| DbcError::Signal {
        file: file.name().to_owned(),
        message: label.clone(),
        signal: signal.name.clone(),
        reason,
    };
    let (can_id, extended) = match message.id {
        can_dbc::MessageId::Standard(raw) if raw <= 0x7FF => (u32::from(raw), false),
        can_dbc::MessageId::Standard(raw) => {
            return Err(invalid(format!("message id {raw:#X} does not fit 11 bits")));
        }
        can_dbc::MessageId::Extended(raw) => (raw, true),
    };
    let signed = signal.value_type == can_dbc::ValueType::Signed;
    let layout = signal_layout(message, signal, signed).map_err(|e| match e {
        Misfit::Layout(source) => DbcError::Layout {
            file: file.name().to_owned(),
            message: label.clone(),
            signal: signal.name.clone(),
            source,
        },
        Misfit::Outside { needed } => DbcError::OutsideMessage {
            file: file.name().to_owned(),
            message: label.clone(),
            signal: signal.name.clone(),
            needed,
            dlc: message.size,
        },
    })?;
    let kind = match dbc.extended_value_type_for_signal(message.id, &signal.name) {
        None | Some(SignalExtendedValueType::SignedOrUnsignedInteger) => ValueKind::Integer,
        Some(SignalExtendedValueType::IEEEfloat32Bit) if layout.length() == 32 => {
            ValueKind::Float32
        }
        Some(SignalExtendedValueType::IEEEdouble64bit) if layout.length() == 64 => {
            ValueKind::Float64
        }
        Some(other) => {
            return Err(invalid(format!(
                "SIG_VALTYPE_ {other:?} does not match its length of {} bits",
                layout.length()
            )));
        }
    };
    if !signal.factor.is_finite() || !signal.offset.is_finite() {
        return Err(invalid(
            "factor or offset is not a finite number".to_owned(),
        ));
    }
    let range = match (numeric(signal.min), numeric(signal.max)) {
        (lo, hi) if lo == 0.0 && hi == 0.0 => None,
        // An inverted or non-numeric range says nothing usable: do not flag against it.
        (lo, hi) if lo <= hi => Some((lo, hi)),
        _ => None,
    };
    let labels = dbc
        .value_descriptions_for_signal(message.id, &signal.name)
        .map(|v| v.iter().map(|d| (d.id, d.description.clone())).collect())
        .unwrap_or_default();

    let key = message.id.raw();
    let position = match messages.iter().position(|m| m.key == key) {
        Some(p) => p,
        None => {
            messages.push(MessagePlan {
                key,
                can_id,
                name: Arc::from(message.name.as_str()),
                selectors: Vec::new(),
                signals: Vec::new(),
            });
            messages.len() - 1
        }
    };
    let Some(plan) = messages.get_mut(position) else {
        return Err(invalid("internal: message plan vanished".to_owned()));
    };
    let gate = gate_for(dbc, message, signal, &mut plan.selectors, 0).map_err(invalid)?;
    let name: Arc<str> = Arc::from(signal.name.as_str());
    plan.signals.push(PlannedSignal {
        id,
        name: name.clone(),
        layout,
        kind,
        factor: signal.factor,
        offset: signal.offset,
        range,
        gate: gate.clone(),
    });
    Ok(SignalInfo {
        message: plan.name.clone(),
        can_id,
        extended,
        name,
        unit: signal.unit.clone(),
        layout,
        kind,
        factor: signal.factor,
        offset: signal.offset,
        range,
        multiplexed: gate.is_some(),
        labels,
    })
}

enum Misfit {
    Layout(super::LayoutError),
    Outside { needed: usize },
}

fn signal_layout(message: &Message, signal: &Signal, signed: bool) -> Result<BitLayout, Misfit> {
    let order = match signal.byte_order {
        can_dbc::ByteOrder::LittleEndian => ByteOrder::LittleEndian,
        can_dbc::ByteOrder::BigEndian => ByteOrder::BigEndian,
    };
    let layout =
        BitLayout::new(signal.start_bit, signal.size, order, signed).map_err(Misfit::Layout)?;
    let needed = layout.bytes_needed();
    if needed as u64 > message.size {
        return Err(Misfit::Outside { needed });
    }
    Ok(layout)
}

fn numeric(v: NumericValue) -> f64 {
    match v {
        NumericValue::Uint(u) => u as f64,
        NumericValue::Int(i) => i as f64,
        NumericValue::Double(d) => d,
    }
}

/// The gate for `signal`, adding the selectors it needs (and theirs) to `selectors` first,
/// so the list stays in dependency order. `depth` stops cycles in a hostile file.
fn gate_for(
    dbc: &can_dbc::Dbc,
    message: &Message,
    signal: &Signal,
    selectors: &mut Vec<Selector>,
    depth: usize,
) -> Result<Option<Gate>, String> {
    let extended = dbc
        .extended_multiplex
        .iter()
        .find(|e| e.message_id == message.id && e.signal_name == signal.name);
    let (selector_name, ranges): (&str, Vec<(u64, u64)>) = if let Some(ext) = extended {
        let ranges = ext
            .mappings
            .iter()
            .map(|m| (m.min_value, m.max_value))
            .collect();
        (&ext.multiplexor_signal_name, ranges)
    } else {
        match signal.multiplexer_indicator {
            MultiplexIndicator::MultiplexedSignal(n)
            | MultiplexIndicator::MultiplexorAndMultiplexedSignal(n) => {
                let mut plain = message
                    .signals
                    .iter()
                    .filter(|s| s.multiplexer_indicator == MultiplexIndicator::Multiplexor);
                match (plain.next(), plain.next()) {
                    (Some(m), None) => (m.name.as_str(), vec![(n, n)]),
                    (None, _) => {
                        return Err(format!("m{n} but the message has no multiplexor (M)"));
                    }
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "m{n} but the message has several multiplexors (M) and no \
                             SG_MUL_VAL_ says which one"
                        ));
                    }
                }
            }
            MultiplexIndicator::Plain | MultiplexIndicator::Multiplexor => return Ok(None),
        }
    };
    if let Some(index) = selectors.iter().position(|s| &*s.name == selector_name) {
        return Ok(Some(Gate {
            selector: index,
            ranges,
        }));
    }
    if depth >= MAX_MULTIPLEXORS {
        return Err(format!(
            "multiplexors nest deeper than {MAX_MULTIPLEXORS} (or in a cycle) at {selector_name}"
        ));
    }
    let selector = message
        .signals
        .iter()
        .find(|s| s.name == selector_name)
        .ok_or_else(|| format!("its multiplexor {selector_name} is not in the message"))?;
    // Multiplexor values are compared as unsigned raw bits, as SG_MUL_VAL_ ranges are.
    let layout = signal_layout(message, selector, false).map_err(|e| match e {
        Misfit::Layout(err) => format!("its multiplexor {selector_name}: {err}"),
        Misfit::Outside { needed } => format!(
            "its multiplexor {selector_name} needs {needed} bytes but the message is {} bytes long",
            message.size
        ),
    })?;
    let own_gate = gate_for(dbc, message, selector, selectors, depth + 1)?;
    if selectors.len() >= MAX_MULTIPLEXORS {
        return Err(format!(
            "the message needs more than {MAX_MULTIPLEXORS} multiplexors decoded"
        ));
    }
    selectors.push(Selector {
        name: Arc::from(selector_name),
        layout,
        gate: own_gate,
    });
    Ok(Some(Gate {
        selector: selectors.len() - 1,
        ranges,
    }))
}
