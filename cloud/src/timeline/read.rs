//! Reading a page of a vehicle's timeline from the store: the car's records and the cloud's
//! entries as the merge takes them ([`read_page`]), each run of readings folded into a
//! [`Run`] when asked.
//!
//! Owns turning stored values into entries and runs. Does not own the order, the paging or
//! the budget ([`super::merge`]).

use rapport_shared::{Record, RecordBody, Timestamp, Vin};

use super::{Absorb, Bound, Cursor, Kind, KindSet, Page, SCAN_BUDGET, Scanned, merge};
use crate::fleet::store::Stamped;
use crate::store::{Store, StoreError};

/// One timeline entry as read from its log.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// One of the car's records.
    Car(Record),
    /// One of the cloud's entries.
    Cloud(Stamped),
    /// A run of the car's readings, folded (only when a page is asked to fold).
    Readings(Run),
}

impl Entry {
    /// Its time (a run's: its newest reading's).
    pub const fn at(&self) -> Timestamp {
        match self {
            Self::Car(r) => r.at,
            Self::Cloud(s) => s.at,
            Self::Readings(run) => run.newest.at,
        }
    }
}

impl Absorb for Entry {
    fn absorbs(&self, next: &Self) -> bool {
        matches!((self, next), (Self::Readings(_), Self::Readings(_)))
    }

    fn absorb(&mut self, next: Self) {
        if let (Self::Readings(run), Self::Readings(older)) = (self, next) {
            run.take_older(&older);
        }
    }
}

/// Readings with nothing else between them, folded: read newest first, so each one taken in
/// is older than those before it.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The newest reading.
    pub newest: Record,
    /// The oldest reading's seq and time.
    pub oldest_seq: u64,
    /// The oldest reading's time.
    pub oldest_at: Timestamp,
    /// Odometer readings in the run.
    pub odometer: u64,
    /// Engine-hours readings in the run.
    pub engine_hours: u64,
    /// The odometer, metres, at the oldest and the newest odometer reading.
    pub odometer_m: Option<(u64, u64)>,
}

impl Run {
    /// A run of one reading (`None`: `r` is no reading).
    pub fn of(r: Record) -> Option<Self> {
        let (odometer, engine_hours, odometer_m) = match &r.body {
            RecordBody::Odometer(o) => (1, 0, Some((o.odometer.meters(), o.odometer.meters()))),
            RecordBody::EngineHours(_) => (0, 1, None),
            _ => return None,
        };
        Some(Self {
            oldest_seq: r.seq,
            oldest_at: r.at,
            odometer,
            engine_hours,
            odometer_m,
            newest: r,
        })
    }

    /// How many readings.
    pub const fn count(&self) -> u64 {
        self.odometer + self.engine_hours
    }

    fn take_older(&mut self, older: &Self) {
        self.oldest_seq = older.oldest_seq;
        self.oldest_at = older.oldest_at;
        self.odometer += older.odometer;
        self.engine_hours += older.engine_hours;
        self.odometer_m = match (older.odometer_m, self.odometer_m) {
            (Some((from, _)), Some((_, to))) => Some((from, to)),
            (a, b) => b.or(a),
        };
    }
}

/// A page of `vin`'s timeline from the store: the entries of the kinds in `kinds`, below
/// `from`; with `fold`, each run of two or more readings as one [`Entry::Readings`].
///
/// # Errors
/// The store (a value that does not decode is an error, not skipped: the log is the cloud's).
pub fn read_page(
    store: &Store,
    vin: &Vin,
    kinds: KindSet,
    fold: bool,
    from: Cursor,
    limit: usize,
) -> Result<Page<Entry>, StoreError> {
    let records_from = match (&from.records, kinds.any_car()) {
        (_, false) | (Bound::Done, _) => None,
        (Bound::Newest, true) => Some(None),
        (Bound::Below(seq), true) => Some(Some(*seq)),
    };
    let entries_from = match (&from.entries, kinds.any_cloud()) {
        (_, false) | (Bound::Done, _) => None,
        (Bound::Newest, true) => Some(None),
        (Bound::Below(key), true) => Some(Some(key.as_slice())),
    };
    let records = records_from
        .map(|below| store.records_newest_first(vin, below))
        .into_iter()
        .flatten()
        .map(|r| {
            r.map(|r| {
                let kind = Kind::of_record(&r.body).filter(|k| kinds.has(*k));
                let (position, at) = (r.seq, r.at);
                let item = match kind {
                    None => None,
                    Some(k) if fold && k.is_reading() => Run::of(r).map(Entry::Readings),
                    Some(_) => Some(Entry::Car(r)),
                };
                Scanned { position, at, item }
            })
        });
    let entries = entries_from
        .map(|below| store.timeline_newest_first(vin, below))
        .into_iter()
        .flatten()
        .map(|e| {
            e.map(|(position, s)| Scanned {
                position,
                at: s.at,
                item: kinds
                    .has(Kind::of_entry(&s.entry))
                    .then_some(Entry::Cloud(s)),
            })
        });
    // A log the filter leaves out (or read to the end) counts as read to the end.
    let from = Cursor {
        records: if records_from.is_some() {
            from.records
        } else {
            Bound::Done
        },
        entries: if entries_from.is_some() {
            from.entries
        } else {
            Bound::Done
        },
    };
    let mut page = merge(records, entries, from, limit, SCAN_BUDGET)?;
    // A lone reading is no run: it stays as it is.
    page.entries = page
        .entries
        .into_iter()
        .map(|e| match e {
            Entry::Readings(run) if run.count() == 1 => Entry::Car(run.newest),
            e => e,
        })
        .collect();
    Ok(page)
}
