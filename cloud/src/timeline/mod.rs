//! A vehicle's timeline as the API pages it: the car's records (the ingest's log, by seq)
//! and the cloud's own entries (the fleet's timeline: layers, strategies, alerts, registry),
//! merged newest first, filtered by kind, in pages that follow a [`Cursor`]; and the
//! vehicle's readings (odometer, engine hours) as a series bounded in size for a chart
//! ([`readings`]).
//!
//! # Order and paging
//! Both logs are read newest first — the records by seq, the entries by (time, number) — and
//! merged by time, the newer first (a record before an entry of the same millisecond): with
//! a car whose clock is right this is time order. A page is the newest `limit` entries below
//! its cursor, answered oldest first. The next page's [`Cursor`] says where each log stands:
//! records below a seq, entries below a key; `None` once both logs are read to the end.
//!
//! A page reads at most a budget of stored items from each log (kept or filtered out), so a
//! filter that matches little on a long log answers in bounded time: such a page may hold
//! fewer than `limit` entries, even none, and its cursor goes on from where it stopped (each
//! page moves at least one log on, so following the cursors always ends).
//!
//! # Folding
//! Asked to, a page folds each run of readings (odometer, engine hours) with nothing else
//! between them into one entry ([`Run`]: how many, their times, seqs and kilometres), so a
//! page of `limit` entries shows events however many readings lie between them; a run is
//! folded to its end even past `limit` (within the budget), and a lone reading stays as it
//! is. The readings of a run are a page of the readings kinds below its newest seq.
//!
//! Owns the kinds, the cursor, the merge ([`merge`]) and reading both logs for it, folded or
//! not ([`read_page`]). Does not own the logs' keys and encodings ([`crate::store`],
//! [`crate::fleet::store`]) nor HTTP (`crate::api::timeline`).

mod read;
pub mod readings;

#[cfg(test)]
mod tests;

use core::fmt;
use core::str::FromStr;

use rapport_shared::{RecordBody, Timestamp};

pub use self::read::{Entry, Run, read_page};
use crate::fleet::store::TimelineEntry;

/// Stored items one page reads at most from each log (kept or filtered out).
pub const SCAN_BUDGET: usize = 50_000;

/// What a timeline entry is about: the car's record kinds (heartbeats are never on it) and
/// the cloud's entry kinds, named as the API names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An odometer reading (car).
    Odometer,
    /// An engine-hours reading (car).
    EngineHours,
    /// A fault appeared (car).
    DtcAppeared,
    /// A fault cleared (car).
    DtcCleared,
    /// The active faults (car).
    DtcSnapshot,
    /// A maintenance item's status (car).
    Maintenance,
    /// A prompt shown and the driver's response (car).
    Prompt,
    /// A consent given or withdrawn (car).
    Consent,
    /// A record of a kind this build does not know (car).
    Unknown,
    /// A layer change (cloud).
    Layer,
    /// A strategy acted (cloud).
    Strategy,
    /// A strategy was held back (cloud).
    Suppressed,
    /// An alert opened, changed state, escalated or was delivered (cloud).
    Alert,
    /// The registry entry was created or changed (cloud).
    Registered,
    /// The car's clock stopped being believable (cloud; one per episode).
    ClockUntrusted,
}

impl Kind {
    /// Every kind, in the API's order.
    pub const ALL: [Self; 15] = [
        Self::Odometer,
        Self::EngineHours,
        Self::DtcAppeared,
        Self::DtcCleared,
        Self::DtcSnapshot,
        Self::Maintenance,
        Self::Prompt,
        Self::Consent,
        Self::Unknown,
        Self::Layer,
        Self::Strategy,
        Self::Suppressed,
        Self::Alert,
        Self::Registered,
        Self::ClockUntrusted,
    ];

    /// Its name in the API (the entries' `kind`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Odometer => "odometer",
            Self::EngineHours => "engine_hours",
            Self::DtcAppeared => "dtc_appeared",
            Self::DtcCleared => "dtc_cleared",
            Self::DtcSnapshot => "dtc_snapshot",
            Self::Maintenance => "maintenance",
            Self::Prompt => "prompt",
            Self::Consent => "consent",
            Self::Unknown => "unknown",
            Self::Layer => "layer",
            Self::Strategy => "strategy",
            Self::Suppressed => "suppressed",
            Self::Alert => "alert",
            Self::Registered => "registered",
            Self::ClockUntrusted => "clock_untrusted",
        }
    }

    /// One of the car's record kinds (else the cloud's).
    pub const fn is_car(self) -> bool {
        matches!(
            self,
            Self::Odometer
                | Self::EngineHours
                | Self::DtcAppeared
                | Self::DtcCleared
                | Self::DtcSnapshot
                | Self::Maintenance
                | Self::Prompt
                | Self::Consent
                | Self::Unknown
        )
    }

    /// A reading (odometer, engine hours): many, and charted rather than listed.
    pub const fn is_reading(self) -> bool {
        matches!(self, Self::Odometer | Self::EngineHours)
    }

    /// The kind of a car's record; `None` for a heartbeat (never on the timeline).
    pub const fn of_record(body: &RecordBody) -> Option<Self> {
        Some(match body {
            RecordBody::Odometer(_) => Self::Odometer,
            RecordBody::EngineHours(_) => Self::EngineHours,
            RecordBody::DtcAppeared(_) => Self::DtcAppeared,
            RecordBody::DtcCleared(_) => Self::DtcCleared,
            RecordBody::DtcSnapshot(_) => Self::DtcSnapshot,
            RecordBody::Maintenance(_) => Self::Maintenance,
            RecordBody::Prompt(_) => Self::Prompt,
            RecordBody::Consent(_) => Self::Consent,
            RecordBody::Unknown { .. } => Self::Unknown,
            // The cloud's own `clock_untrusted` entry (one per episode) stands for it; for
            // a driver's answer to a service case, the alert entry it made.
            RecordBody::Heartbeat(_)
            | RecordBody::WipeConfirmed(_)
            | RecordBody::ClockUntrusted(_)
            | RecordBody::ServiceAnswer(_) => return None,
        })
    }

    /// The kind of a cloud entry.
    pub const fn of_entry(entry: &TimelineEntry) -> Self {
        match entry {
            TimelineEntry::Layer { .. } => Self::Layer,
            TimelineEntry::Strategy { .. } => Self::Strategy,
            TimelineEntry::Suppressed { .. } => Self::Suppressed,
            TimelineEntry::Alert { .. } => Self::Alert,
            TimelineEntry::Registered { .. } => Self::Registered,
            TimelineEntry::ClockUntrusted { .. } => Self::ClockUntrusted,
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    /// # Errors
    /// The text and every kind there is.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "{:?} is not a timeline kind (one of {})",
                    s.chars().take(40).collect::<String>(),
                    names.join(", ")
                )
            })
    }
}

/// The kinds a page keeps; empty keeps every kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindSet(u16);

impl KindSet {
    /// Every kind.
    pub const ALL: Self = Self(0);

    /// The set of `kinds` (none: every kind).
    pub fn of(kinds: impl IntoIterator<Item = Kind>) -> Self {
        Self(kinds.into_iter().fold(0, |bits, k| bits | k.bit()))
    }

    /// Whether it keeps `kind`.
    pub const fn has(self, kind: Kind) -> bool {
        self.0 == 0 || self.0 & kind.bit() != 0
    }

    /// Whether it keeps any of the car's kinds (else the record log need not be read).
    pub fn any_car(self) -> bool {
        Kind::ALL.iter().any(|k| k.is_car() && self.has(*k))
    }

    /// Whether it keeps any of the cloud's kinds.
    pub fn any_cloud(self) -> bool {
        Kind::ALL.iter().any(|k| !k.is_car() && self.has(*k))
    }
}

/// Where one log stands for the next page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Bound<P> {
    /// Nothing read yet: from the newest.
    #[default]
    Newest,
    /// What lies below this position (exclusive) is still to read.
    Below(P),
    /// Read to the end.
    Done,
}

/// Where the next page starts, in both logs. As text (the API's `next_before` and
/// `before=`): `<records>.<entries>`, `<records>` the seq below which the car's records are
/// still to read, `<entries>` the hex of the fleet timeline key (after the VIN: time and
/// number) below which the cloud's entries are; either is `-` when that log is read to the
/// end (`*`, from the newest, is the first page's and is never answered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The car's records.
    pub records: Bound<u64>,
    /// The cloud's entries.
    pub entries: Bound<Vec<u8>>,
}

impl Cursor {
    /// Whether both logs are read to the end.
    pub fn is_done(&self) -> bool {
        self.records == Bound::Done && self.entries == Bound::Done
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.records {
            Bound::Newest => f.write_str("*")?,
            Bound::Below(seq) => write!(f, "{seq}")?,
            Bound::Done => f.write_str("-")?,
        }
        f.write_str(".")?;
        match &self.entries {
            Bound::Newest => f.write_str("*"),
            Bound::Below(key) => f.write_str(&rapport_shared::hex::encode(key)),
            Bound::Done => f.write_str("-"),
        }
    }
}

impl FromStr for Cursor {
    type Err = String;

    /// # Errors
    /// What is wrong with the text.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{:?} is not a timeline cursor ({why}; pass back a page's next_before)",
                s.chars().take(80).collect::<String>()
            )
        };
        let (records, entries) = s
            .split_once('.')
            .ok_or_else(|| bad("no '.' between its two parts"))?;
        let records = match records {
            "*" => Bound::Newest,
            "-" => Bound::Done,
            seq => Bound::Below(seq.parse::<u64>().map_err(|_| bad("the seq"))?),
        };
        let entries = match entries {
            "*" => Bound::Newest,
            "-" => Bound::Done,
            hex => Bound::Below(decode_key(hex).ok_or_else(|| bad("the key"))?),
        };
        Ok(Self { records, entries })
    }
}

/// A fleet timeline key's part after the VIN from hex: time and number (8 + 8 bytes; 8 + 4
/// in older stores), or that with a zero byte after it (the bound just above an entry).
fn decode_key(hex: &str) -> Option<Vec<u8>> {
    use rapport_shared::hex::decode_array;
    match hex.len() / 2 {
        12 => decode_array::<12>(hex).map(|k| k.to_vec()),
        13 => decode_array::<13>(hex).map(|k| k.to_vec()),
        16 => decode_array::<16>(hex).map(|k| k.to_vec()),
        17 => decode_array::<17>(hex).map(|k| k.to_vec()),
        _ => None,
    }
}

/// One stored item as a log yields it, newest first: its position, its time, and the item if
/// the page keeps it (`None`: read, but filtered out).
#[derive(Clone, Debug, PartialEq)]
pub struct Scanned<P, T> {
    /// Its position in its log.
    pub position: P,
    /// Its time.
    pub at: Timestamp,
    /// The item, if kept.
    pub item: Option<T>,
}

/// A position in a log that the next page can start below.
pub trait Position: Clone {
    /// The smallest position above this one (the bound that still includes it).
    fn just_above(&self) -> Self;
}

impl Position for u64 {
    fn just_above(&self) -> Self {
        self.saturating_add(1)
    }
}

impl Position for Vec<u8> {
    fn just_above(&self) -> Self {
        let mut k = self.clone();
        k.push(0);
        k
    }
}

/// One log being merged: its items, the one waiting, where it stands, what it may still read.
struct Log<P, T, I> {
    items: I,
    head: Option<(P, Timestamp, T)>,
    bound: Bound<P>,
    budget: usize,
}

impl<P: Position, T, E, I: Iterator<Item = Result<Scanned<P, T>, E>>> Log<P, T, I> {
    fn new(items: I, bound: Bound<P>, budget: usize) -> Self {
        Self {
            items,
            head: None,
            bound,
            budget,
        }
    }

    /// Reads until an item is kept, the log ends or its budget is spent.
    fn fill(&mut self) -> Result<(), E> {
        while self.head.is_none() && !matches!(self.bound, Bound::Done) && self.budget > 0 {
            match self.items.next() {
                None => self.bound = Bound::Done,
                Some(scanned) => {
                    self.budget -= 1;
                    let s = scanned?;
                    match s.item {
                        Some(item) => {
                            self.bound = Bound::Below(s.position.just_above());
                            self.head = Some((s.position, s.at, item));
                        }
                        None => self.bound = Bound::Below(s.position),
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether it is known what comes next (an item waits, or the log ended).
    fn settled(&self) -> bool {
        self.head.is_some() || matches!(self.bound, Bound::Done)
    }

    fn take(&mut self) -> Option<T> {
        let (position, _, item) = self.head.take()?;
        self.bound = Bound::Below(position);
        Some(item)
    }
}

/// An entry that may take the next (older) one into itself: a fold of readings takes the next
/// reading. Entries that never fold answer `false`.
pub trait Absorb {
    /// Whether `next`, the entry just older than this one, goes into it.
    fn absorbs(&self, next: &Self) -> bool;
    /// Takes `next` in (called only when [`Self::absorbs`] said so).
    fn absorb(&mut self, next: Self);
}

/// One page: its entries oldest first, and where the next starts (`None`: this was the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The entries, oldest first.
    pub entries: Vec<T>,
    /// The next (older) page's cursor; `None` when both logs are read to the end.
    pub next: Option<Cursor>,
}

/// Merges the two logs (each newest first, starting at the cursor's bounds) into one page of
/// at most `limit` entries, reading at most `budget` (at least 1) items of each (see the
/// module's "Order and paging").
///
/// # Errors
/// The first error either log yields.
pub fn merge<T: Absorb, E>(
    records: impl Iterator<Item = Result<Scanned<u64, T>, E>>,
    entries: impl Iterator<Item = Result<Scanned<Vec<u8>, T>, E>>,
    from: Cursor,
    limit: usize,
    budget: usize,
) -> Result<Page<T>, E> {
    let budget = budget.max(1);
    let mut car = Log::new(records, from.records, budget);
    let mut cloud = Log::new(entries, from.entries, budget);
    let mut out: Vec<T> = Vec::new();
    loop {
        car.fill()?;
        cloud.fill()?;
        // A log that stopped on the budget may hold something newer than the other's head.
        if !car.settled() || !cloud.settled() {
            break;
        }
        let take_car = match (&car.head, &cloud.head) {
            (Some((_, a, _)), Some((_, b, _))) => a >= b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_car {
            car.head.as_ref().map(|h| &h.2)
        } else {
            cloud.head.as_ref().map(|h| &h.2)
        };
        let absorbed = match (out.last(), next) {
            (Some(last), Some(next)) => last.absorbs(next),
            _ => false,
        };
        // A full page still takes what its last entry absorbs (a fold goes on to its end).
        if !absorbed && out.len() >= limit {
            break;
        }
        let Some(item) = (if take_car { car.take() } else { cloud.take() }) else {
            break;
        };
        match out.last_mut() {
            Some(last) if absorbed => last.absorb(item),
            _ => out.push(item),
        }
    }
    // Whether anything is left: look one item further (within what the budget allows).
    car.fill()?;
    cloud.fill()?;
    out.reverse();
    let cursor = Cursor {
        records: car.bound,
        entries: cloud.bound,
    };
    Ok(Page {
        entries: out,
        next: (!cursor.is_done()).then_some(cursor),
    })
}
