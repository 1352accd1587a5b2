//! The J1939-21 transport protocol: reassembling messages longer than 8 bytes from TP.CM
//! (PGN 0xEC00) and TP.DT (PGN 0xEB00) frames, broadcast (BAM) and peer-to-peer (RTS/CTS).
//!
//! One session per (originator, destination), so at most one BAM per source at a time, as
//! J1939-21 allows. Two roles:
//! - passive: traffic between other nodes (replays, monitoring) is followed and reassembled;
//!   nothing is ever sent. An RTS/CTS message is delivered on the receiver's EndOfMsgAck.
//! - active: an RTS addressed to [`TpConfig::own_address`] is answered. The reassembler hands
//!   back the CTS, EndOfMsgAck and (on timeout) Abort frames; the caller puts them on the bus.
//!
//! Timeouts follow J1939-21 (T1 750 ms between packets, T2 1250 ms after a CTS, T3 1250 ms
//! for the next CTS or EndOfMsgAck, T4 1050 ms after a hold CTS). Time is passed in; call
//! [`TransportProtocol::poll`] to collect sessions that timed out. Announced sizes are checked
//! against the configured maximum (at most 1785 bytes) before any buffer is reserved, and
//! session buffers are reused, so a warmed-up reassembler does not allocate.
//!
//! Not owned here: sending our own multi-packet messages (we never originate), address
//! claiming, and decoding what the reassembled payload means (see [`super::dm1`]).

use core::time::Duration;

use super::id::{GLOBAL, J1939Id};
use super::{J1939Error, TpErrorKind};
use crate::can::CanFrame;

/// PGN of TP.CM, connection management.
pub(crate) const PGN_TP_CM: u32 = 0xEC00;
/// PGN of TP.DT, data transfer.
pub(crate) const PGN_TP_DT: u32 = 0xEB00;
/// The largest message J1939-21 transport carries: 255 packets × 7 bytes.
pub const MAX_TP_SIZE: usize = 1785;

/// T1: longest gap between data packets (and, for BAM, the only receive timeout).
pub(crate) const T1: Duration = Duration::from_millis(750);
/// T2: longest wait for data after a CTS.
pub(crate) const T2: Duration = Duration::from_millis(1250);
/// T3: longest wait for a CTS or EndOfMsgAck after the last packet of a window.
pub(crate) const T3: Duration = Duration::from_millis(1250);
/// T4: longest wait for the next CTS after a "hold the connection" CTS.
pub(crate) const T4: Duration = Duration::from_millis(1050);

const RTS: u8 = 16;
const CTS: u8 = 17;
const EOM: u8 = 19;
const BAM: u8 = 32;
const ABORT: u8 = 255;
/// Abort reason 3: "a timeout occurred and this is the connection abort to close the session".
const ABORT_TIMEOUT: u8 = 3;
/// TP.CM frames we send go at the default priority of connection management in practice (6).
const CM_PRIORITY: u8 = 6;

/// Reassembler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpConfig {
    /// Our source address: RTS frames to it are answered (active role). `None`: passive only.
    pub own_address: Option<u8>,
    /// Largest message accepted, in bytes; values above [`MAX_TP_SIZE`] act as it.
    pub max_message_len: usize,
    /// Most sessions open at once.
    pub max_sessions: usize,
    /// Packets we ask for per CTS in the active role (at least 1).
    pub cts_window: u8,
}

impl Default for TpConfig {
    fn default() -> Self {
        Self {
            own_address: None,
            max_message_len: MAX_TP_SIZE,
            max_sessions: 32,
            cts_window: 16,
        }
    }
}

/// How a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transfer {
    /// Broadcast announce message: to everyone, no flow control.
    Bam,
    /// Peer-to-peer with RTS/CTS flow control.
    RtsCts,
}

/// A reassembled message, borrowing the reassembler's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The PGN the payload belongs to (from the TP.CM frame).
    pub(crate) pgn: u32,
    /// The originator.
    pub(crate) source: u8,
    /// The destination ([`GLOBAL`] for BAM).
    pub(crate) destination: u8,
    /// How it travelled.
    pub(crate) transfer: Transfer,
    /// Exactly the announced number of bytes (the last packet's padding is dropped).
    pub data: &'a [u8],
}

/// What a frame caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TpEvent<'a> {
    /// A message is complete. In the active role `reply` is the EndOfMsgAck to send.
    Message {
        /// The message.
        message: Message<'a>,
        /// A frame the caller must send, if any.
        reply: Option<CanFrame>,
    },
    /// Active role: send this frame (a CTS).
    Send(CanFrame),
    /// A session was closed by a TP.CM Abort from either side.
    Aborted {
        /// The session's originator.
        source: u8,
        /// The session's destination.
        destination: u8,
        /// The PGN being transferred.
        pgn: u32,
        /// The abort reason byte (J1939-21 table; 0xFF unspecified).
        reason: u8,
    },
}

/// A session that timed out (from [`TransportProtocol::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpTimeout {
    /// The session's originator.
    pub(crate) source: u8,
    /// The session's destination.
    pub(crate) destination: u8,
    /// The PGN being transferred.
    pub(crate) pgn: u32,
    /// BAM or RTS/CTS.
    pub(crate) transfer: Transfer,
    /// Packets received before the timeout, of `packets`.
    pub(crate) received: u8,
    /// Packets announced.
    pub(crate) packets: u8,
    /// Active role: the Abort (reason 3, timeout) the caller must send.
    pub(crate) abort: Option<CanFrame>,
}

/// Running counts, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TpStats {
    /// BAM messages delivered.
    pub(crate) bam_completed: u64,
    /// BAM sessions that timed out.
    pub(crate) bam_timed_out: u64,
    /// RTS/CTS messages delivered.
    pub(crate) rts_completed: u64,
    /// RTS/CTS sessions that timed out.
    pub(crate) rts_timed_out: u64,
    /// Sessions closed by an Abort.
    pub(crate) aborted: u64,
    /// Sessions abandoned because their originator started a new one.
    pub(crate) replaced: u64,
    /// Frames rejected with an error.
    pub(crate) errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// BAM: the next sequence number due.
    Bam { next: u8 },
    /// RTS sent (or the last window done): waiting for the receiver's CTS.
    WaitCts,
    /// A CTS opened packets `first..=last`.
    WaitDt { first: u8, last: u8 },
    /// The receiver asked to hold (CTS with 0 packets).
    Hold,
    /// Passive: all data seen, waiting for the receiver's EndOfMsgAck.
    WaitEom,
}

#[derive(Debug)]
struct Session {
    open: bool,
    /// We are the receiver and answer with CTS/EndOfMsgAck.
    answering: bool,
    source: u8,
    destination: u8,
    pgn: u32,
    size: usize,
    packets: u8,
    max_per_cts: u8,
    buf: Vec<u8>,
    received: [u64; 4],
    state: State,
    deadline: Duration,
}

impl Session {
    fn transfer(&self) -> Transfer {
        if matches!(self.state, State::Bam { .. }) {
            Transfer::Bam
        } else {
            Transfer::RtsCts
        }
    }

    fn has(&self, packet: u8) -> bool {
        let p = usize::from(packet);
        self.received
            .get(p / 64)
            .is_some_and(|w| w & (1 << (p % 64)) != 0)
    }

    fn mark(&mut self, packet: u8, on: bool) {
        let p = usize::from(packet);
        if let Some(w) = self.received.get_mut(p / 64) {
            if on {
                *w |= 1 << (p % 64);
            } else {
                *w &= !(1 << (p % 64));
            }
        }
    }

    fn count(&self) -> u8 {
        let n: u32 = self.received.iter().map(|w| w.count_ones()).sum();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// Copies a DT's 7 data bytes into place; `seq` is 1..=packets (checked by the caller).
    fn store(&mut self, seq: u8, data: &[u8]) {
        let offset = (usize::from(seq).saturating_sub(1)) * 7;
        let n = self.size.saturating_sub(offset).min(7);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(offset..offset + n), data.get(1..1 + n)) {
            dst.copy_from_slice(src);
        }
        self.mark(seq, true);
    }
}

/// What a frame led to, before borrowing the buffer for a [`TpEvent`].
enum Outcome {
    Nothing,
    Deliver {
        slot: usize,
        reply: Option<CanFrame>,
    },
    /// An event that borrows nothing: a CTS to send, an abort.
    Event(TpEvent<'static>),
}

/// The TP.CM fields common to RTS, BAM and EndOfMsgAck.
struct Announce {
    size: usize,
    packets: u8,
    max_per_cts: u8,
    pgn: u32,
}

/// J1939-21 transport reassembler; see the module docs.
#[derive(Debug)]
pub struct TransportProtocol {
    config: TpConfig,
    sessions: Vec<Session>,
    stats: TpStats,
}

impl TransportProtocol {
    /// A reassembler with `config`.
    pub fn new(config: TpConfig) -> Self {
        Self {
            config,
            sessions: Vec::new(),
            stats: TpStats::default(),
        }
    }

    /// The counts so far.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> TpStats {
        self.stats
    }

    /// How many sessions are open.
    pub fn open_sessions(&self) -> usize {
        self.sessions.iter().filter(|s| s.open).count()
    }

    /// The earliest moment [`Self::poll`] has something to report, for the caller's timer.
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.sessions
            .iter()
            .filter(|s| s.open)
            .map(|s| s.deadline)
            .min()
    }

    /// Feeds one frame (any PGN: frames other than TP.CM and TP.DT are ignored).
    ///
    /// `now` is monotonic time; a frame for a session whose deadline has passed first closes
    /// that session as timed out (counted in [`TpStats`]; [`Self::poll`] reports timeouts
    /// when called first).
    ///
    /// # Errors
    /// [`J1939Error::BadId`] for an id wider than 29 bits; [`J1939Error::Transport`] for a
    /// TP frame that breaks J1939-21 (short frame, bad size, DT without session, sequence gap,
    /// …). A session that a bad frame belongs to is dropped.
    pub fn on_frame(
        &mut self,
        id: u32,
        data: &[u8],
        now: Duration,
    ) -> Result<Option<TpEvent<'_>>, J1939Error> {
        let id = J1939Id::from_raw(id)?;
        let outcome = match id.pgn() {
            PGN_TP_CM => self.on_cm(id, data, now),
            PGN_TP_DT => self.on_dt(id, data, now),
            _ => return Ok(None),
        };
        let outcome = outcome.inspect_err(|_| self.stats.errors += 1)?;
        Ok(match outcome {
            Outcome::Nothing => None,
            Outcome::Event(event) => Some(event),
            Outcome::Deliver { slot, reply } => self.sessions.get(slot).map(|s| TpEvent::Message {
                message: Message {
                    pgn: s.pgn,
                    source: s.source,
                    destination: s.destination,
                    transfer: s.transfer(),
                    data: s.buf.get(..s.size).unwrap_or_default(),
                },
                reply,
            }),
        })
    }

    /// Closes the next session whose deadline is before `now` and reports it; call until
    /// `None`.
    pub fn poll(&mut self, now: Duration) -> Option<TpTimeout> {
        let slot = self
            .sessions
            .iter()
            .position(|s| s.open && now > s.deadline)?;
        self.time_out(slot)
    }

    fn time_out(&mut self, slot: usize) -> Option<TpTimeout> {
        let s = self.sessions.get_mut(slot)?;
        s.open = false;
        let transfer = s.transfer();
        match transfer {
            Transfer::Bam => self.stats.bam_timed_out += 1,
            Transfer::RtsCts => self.stats.rts_timed_out += 1,
        }
        let abort = if s.answering {
            let payload = abort_payload(ABORT_TIMEOUT, s.pgn);
            cm_frame(s.destination, s.source, payload).ok()
        } else {
            None
        };
        Some(TpTimeout {
            source: s.source,
            destination: s.destination,
            pgn: s.pgn,
            transfer,
            received: s.count(),
            packets: s.packets,
            abort,
        })
    }

    /// The open session for (source, destination), after closing it if its time is up.
    fn find(&mut self, source: u8, destination: u8, now: Duration) -> Option<usize> {
        let slot = self
            .sessions
            .iter()
            .position(|s| s.open && s.source == source && s.destination == destination)?;
        let expired = self.sessions.get(slot).is_some_and(|s| now > s.deadline);
        if expired {
            self.time_out(slot);
            return None;
        }
        Some(slot)
    }

    fn close(&mut self, slot: usize) {
        if let Some(s) = self.sessions.get_mut(slot) {
            s.open = false;
        }
    }

    fn on_cm(&mut self, id: J1939Id, data: &[u8], now: Duration) -> Result<Outcome, J1939Error> {
        let (sa, da) = (id.source(), id.destination());
        let tp_err = |originator, destination, kind| J1939Error::Transport {
            originator,
            destination,
            kind,
        };
        let Ok(d) = <[u8; 8]>::try_from(data.get(..8).unwrap_or_default()) else {
            let kind = TpErrorKind::ShortFrame {
                what: "TP.CM",
                len: data.len(),
            };
            return Err(tp_err(sa, da, kind));
        };
        let pgn = u32::from_le_bytes([d[5], d[6], d[7], 0]);
        match d[0] {
            BAM | RTS => {
                let bam = d[0] == BAM;
                if bam != (da == GLOBAL) {
                    let what = if bam { "BAM" } else { "RTS" };
                    return Err(tp_err(sa, da, TpErrorKind::BadDestination { what }));
                }
                let announce = self.check_announce(&d).map_err(|k| tp_err(sa, da, k))?;
                let answering = !bam && self.config.own_address == Some(da);
                self.start(sa, da, announce, answering, now)
                    .map_err(|k| tp_err(sa, da, k))
            }
            CTS => {
                // Sent by the receiver (sa) to the originator (da).
                let Some(slot) = self.find(da, sa, now) else {
                    return Ok(Outcome::Nothing);
                };
                self.on_cts(slot, d[1], d[2], now).map_err(|k| {
                    self.close(slot);
                    tp_err(da, sa, k)
                })
            }
            EOM => {
                let Some(slot) = self.find(da, sa, now) else {
                    return Ok(Outcome::Nothing);
                };
                let done = self.sessions.get(slot).is_some_and(|s| {
                    !s.answering && s.state == State::WaitEom && s.count() == s.packets
                });
                self.close(slot);
                if !done {
                    return Err(tp_err(
                        da,
                        sa,
                        TpErrorKind::OutOfTurn {
                            what: "EndOfMsgAck",
                        },
                    ));
                }
                self.stats.rts_completed += 1;
                Ok(Outcome::Deliver { slot, reply: None })
            }
            ABORT => {
                // Either end may abort; a BAM originator aborts towards GLOBAL.
                let slot = match self.find(sa, da, now) {
                    Some(slot) => Some(slot),
                    None => self.find(da, sa, now),
                };
                let Some(s) = slot.and_then(|slot| self.sessions.get_mut(slot)) else {
                    return Ok(Outcome::Nothing);
                };
                s.open = false;
                self.stats.aborted += 1;
                Ok(Outcome::Event(TpEvent::Aborted {
                    source: s.source,
                    destination: s.destination,
                    pgn,
                    reason: d[1],
                }))
            }
            control => Err(tp_err(sa, da, TpErrorKind::UnknownControl { control })),
        }
    }

    /// Validates an RTS/BAM's size and packet count, before anything is reserved.
    fn check_announce(&self, d: &[u8; 8]) -> Result<Announce, TpErrorKind> {
        let size = usize::from(u16::from_le_bytes([d[1], d[2]]));
        let max = self.config.max_message_len.min(MAX_TP_SIZE);
        if size == 0 || size > max {
            return Err(TpErrorKind::BadSize { size, max });
        }
        // size ≤ 1785 keeps this ≤ 255.
        let expected = u8::try_from(size.div_ceil(7)).unwrap_or(u8::MAX);
        if d[3] != expected {
            return Err(TpErrorKind::PacketCount {
                size,
                expected,
                packets: d[3],
            });
        }
        Ok(Announce {
            size,
            packets: expected,
            max_per_cts: if d[4] == 0 { 0xFF } else { d[4] },
            pgn: u32::from_le_bytes([d[5], d[6], d[7], 0]),
        })
    }

    fn start(
        &mut self,
        source: u8,
        destination: u8,
        a: Announce,
        answering: bool,
        now: Duration,
    ) -> Result<Outcome, TpErrorKind> {
        let slot = match self.find(source, destination, now) {
            Some(slot) => {
                // J1939-21: a new announcement from the same originator replaces the old one.
                self.stats.replaced += 1;
                slot
            }
            None => match self.sessions.iter().position(|s| !s.open) {
                Some(slot) => slot,
                None if self.sessions.len() < self.config.max_sessions => {
                    self.sessions.push(Session {
                        open: false,
                        answering: false,
                        source,
                        destination,
                        pgn: 0,
                        size: 0,
                        packets: 0,
                        max_per_cts: 0,
                        buf: Vec::new(),
                        received: [0; 4],
                        state: State::WaitCts,
                        deadline: now,
                    });
                    self.sessions.len() - 1
                }
                None => {
                    return Err(TpErrorKind::TooManySessions {
                        max: self.config.max_sessions,
                    });
                }
            },
        };
        let window = self.config.cts_window.max(1);
        let Some(s) = self.sessions.get_mut(slot) else {
            return Ok(Outcome::Nothing);
        };
        s.open = true;
        s.answering = answering;
        s.source = source;
        s.destination = destination;
        s.pgn = a.pgn;
        s.size = a.size;
        s.packets = a.packets;
        s.max_per_cts = a.max_per_cts;
        s.received = [0; 4];
        // The size was checked against the maximum above; the capacity is reused.
        s.buf.clear();
        s.buf.resize(a.size, 0);
        if destination == GLOBAL {
            s.state = State::Bam { next: 1 };
            s.deadline = now + T1;
            return Ok(Outcome::Nothing);
        }
        if !answering {
            s.state = State::WaitCts;
            s.deadline = now + T3;
            return Ok(Outcome::Nothing);
        }
        let count = a.packets.min(a.max_per_cts).min(window);
        s.state = State::WaitDt {
            first: 1,
            last: count,
        };
        s.deadline = now + T2;
        let frame = cts_frame(s, count, 1)?;
        Ok(Outcome::Event(TpEvent::Send(frame)))
    }

    fn on_cts(
        &mut self,
        slot: usize,
        count: u8,
        next: u8,
        now: Duration,
    ) -> Result<Outcome, TpErrorKind> {
        let Some(s) = self.sessions.get_mut(slot) else {
            return Ok(Outcome::Nothing);
        };
        if s.answering || matches!(s.state, State::Bam { .. } | State::WaitEom) {
            return Err(TpErrorKind::OutOfTurn { what: "CTS" });
        }
        if count == 0 {
            s.state = State::Hold;
            s.deadline = now + T4;
            return Ok(Outcome::Nothing);
        }
        let last = u16::from(next) + u16::from(count) - 1;
        if next == 0 || last > u16::from(s.packets) {
            return Err(TpErrorKind::BadCts {
                count,
                next,
                packets: s.packets,
            });
        }
        let last = u8::try_from(last).unwrap_or(u8::MAX);
        // A CTS for packets already seen asks for a retransmission: wait for them again.
        for p in next..=last {
            s.mark(p, false);
        }
        s.state = State::WaitDt { first: next, last };
        s.deadline = now + T2;
        Ok(Outcome::Nothing)
    }

    fn on_dt(&mut self, id: J1939Id, data: &[u8], now: Duration) -> Result<Outcome, J1939Error> {
        let (sa, da) = (id.source(), id.destination());
        let tp_err = |kind| J1939Error::Transport {
            originator: sa,
            destination: da,
            kind,
        };
        if data.len() < 8 {
            return Err(tp_err(TpErrorKind::ShortFrame {
                what: "TP.DT",
                len: data.len(),
            }));
        }
        let seq = data.first().copied().unwrap_or(0);
        let Some(slot) = self.find(sa, da, now) else {
            return Err(tp_err(TpErrorKind::NoSession { sequence: seq }));
        };
        let window = self.config.cts_window.max(1);
        let result = Self::dt_into(self.sessions.get_mut(slot), seq, data, now, window);
        match result {
            Err(kind) => {
                self.close(slot);
                Err(tp_err(kind))
            }
            Ok(Some(DtDone::Complete { reply })) => {
                self.close(slot);
                match self.sessions.get(slot).map(Session::transfer) {
                    Some(Transfer::Bam) => self.stats.bam_completed += 1,
                    _ => self.stats.rts_completed += 1,
                }
                Ok(Outcome::Deliver { slot, reply })
            }
            Ok(Some(DtDone::Send(frame))) => Ok(Outcome::Event(TpEvent::Send(frame))),
            Ok(None) => Ok(Outcome::Nothing),
        }
    }

    fn dt_into(
        s: Option<&mut Session>,
        seq: u8,
        data: &[u8],
        now: Duration,
        window: u8,
    ) -> Result<Option<DtDone>, TpErrorKind> {
        let Some(s) = s else { return Ok(None) };
        match s.state {
            State::Bam { next } => {
                if seq != next {
                    return Err(TpErrorKind::SequenceGap {
                        expected: next,
                        got: seq,
                    });
                }
                s.store(seq, data);
                if seq == s.packets {
                    return Ok(Some(DtDone::Complete { reply: None }));
                }
                s.state = State::Bam {
                    next: next.saturating_add(1),
                };
                s.deadline = now + T1;
                Ok(None)
            }
            State::WaitDt { first, last } => {
                if seq < first || seq > last {
                    return Err(TpErrorKind::OutOfWindow {
                        got: seq,
                        first,
                        last,
                    });
                }
                if s.has(seq) {
                    // A duplicate: the first copy stands.
                    return Ok(None);
                }
                s.store(seq, data);
                s.deadline = now + T1;
                if (first..=last).any(|p| !s.has(p)) {
                    return Ok(None);
                }
                if s.count() == s.packets {
                    if s.answering {
                        let eom = eom_frame(s)?;
                        return Ok(Some(DtDone::Complete { reply: Some(eom) }));
                    }
                    s.state = State::WaitEom;
                    s.deadline = now + T3;
                    return Ok(None);
                }
                if !s.answering {
                    s.state = State::WaitCts;
                    s.deadline = now + T3;
                    return Ok(None);
                }
                let next = (1..=s.packets).find(|p| !s.has(*p)).unwrap_or(s.packets);
                let left = s.packets - next + 1;
                let count = left.min(s.max_per_cts).min(window);
                // count ≥ 1 and next + count - 1 ≤ packets, so this cannot overflow.
                s.state = State::WaitDt {
                    first: next,
                    last: next + (count - 1),
                };
                s.deadline = now + T2;
                Ok(Some(DtDone::Send(cts_frame(s, count, next)?)))
            }
            State::WaitCts | State::Hold | State::WaitEom => {
                Err(TpErrorKind::OutOfTurn { what: "TP.DT" })
            }
        }
    }
}

enum DtDone {
    Complete { reply: Option<CanFrame> },
    Send(CanFrame),
}

fn pgn_bytes(pgn: u32) -> [u8; 3] {
    let [a, b, c, _] = pgn.to_le_bytes();
    [a, b, c]
}

fn abort_payload(reason: u8, pgn: u32) -> [u8; 8] {
    let [p0, p1, p2] = pgn_bytes(pgn);
    [ABORT, reason, 0xFF, 0xFF, 0xFF, p0, p1, p2]
}

/// A TP.CM frame from `from` to `to`.
fn cm_frame(from: u8, to: u8, payload: [u8; 8]) -> Result<CanFrame, TpErrorKind> {
    let bad = TpErrorKind::OutOfTurn { what: "reply" };
    let id = J1939Id::new(CM_PRIORITY, PGN_TP_CM, to, from).map_err(|_| bad.clone())?;
    CanFrame::from_raw(id.raw(), true, &payload).ok_or(bad)
}

/// Our CTS for `count` packets from `next`, from the session's destination (us) to its source.
fn cts_frame(s: &Session, count: u8, next: u8) -> Result<CanFrame, TpErrorKind> {
    let [p0, p1, p2] = pgn_bytes(s.pgn);
    cm_frame(
        s.destination,
        s.source,
        [CTS, count, next, 0xFF, 0xFF, p0, p1, p2],
    )
}

/// Our EndOfMsgAck for a complete session.
fn eom_frame(s: &Session) -> Result<CanFrame, TpErrorKind> {
    let [s0, s1] = u16::try_from(s.size).unwrap_or(u16::MAX).to_le_bytes();
    let [p0, p1, p2] = pgn_bytes(s.pgn);
    cm_frame(
        s.destination,
        s.source,
        [EOM, s0, s1, s.packets, 0xFF, p0, p1, p2],
    )
}

/// The frame's data as an array, for tests comparing replies.
#[cfg(test)]
fn bytes8(f: &CanFrame) -> [u8; 8] {
    use embedded_can::Frame as _;
    <[u8; 8]>::try_from(f.data()).unwrap_or_default()
}

#[cfg(test)]
#[path = "tp_tests.rs"]
mod tests;
