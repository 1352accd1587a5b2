//! A vehicle's readings for a chart: the odometer (km) and engine hours (h) over time, each a
//! series of at most `max_points` points however many readings there are (one a kilometre
//! adds up), thinned on the cloud ([`downsample`]).
//!
//! Owns choosing the points and reading them from the record log ([`read`]). Does not own
//! the log (`crate::store`) nor how a page draws them.

use rapport_shared::{RecordBody, Timestamp, Vin};

use crate::store::{Store, StoreError};

/// Records one answer reads at most, newest first: the series then starts at the oldest of
/// them and says it is not complete.
pub const SCAN_BUDGET: usize = 500_000;

/// The fewest and most points a series may be asked for.
pub const MAX_POINTS: core::ops::RangeInclusive<usize> = 2..=2000;

/// One point: when, and the value (km or h).
pub type Point = (Timestamp, f64);

/// The readings of one kind in the time range asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// How many readings were in the range.
    pub count: usize,
    /// The points to draw, oldest first: all readings when they are few, else
    /// [`downsample`]d.
    pub points: Vec<Point>,
}

/// Both series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings {
    /// The odometer, km.
    pub odometer: Series,
    /// Engine hours, h.
    pub engine_hours: Series,
    /// Whether every record of the vehicle was read (else only the newest [`SCAN_BUDGET`]).
    pub complete: bool,
}

/// At most `max` of `points` (oldest first) for a chart: all of them when they fit, else the
/// first, and the last reading of each of `max - 1` equal stretches of time after it (a
/// counter's value at the end of each stretch; the last point is always the last reading).
/// Time buckets rather than every n-th reading: a car that stood for a month and then drove
/// every day still draws its month flat.
pub fn downsample(points: &[Point], max: usize) -> Vec<Point> {
    let max = max.max(2);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    if points.len() <= max {
        return points.to_vec();
    }
    let start = first.0.as_millis();
    let span = last.0.as_millis().saturating_sub(start);
    if span == 0 {
        // All at one moment: the first and the last.
        return vec![*first, *last];
    }
    let buckets = (max - 1) as u64;
    let mut out: Vec<Point> = vec![*first];
    // The bucket of the last point kept (0: the first point's own).
    let mut last_bucket = 0;
    for p in &points[1..] {
        let offset = p.0.as_millis().saturating_sub(start);
        // Buckets 1..=buckets cover (start, start + span]; offset 0 stays with the first.
        let bucket = if offset == 0 {
            0
        } else {
            // offset ≤ span, so this is 1..=buckets; u128 keeps the product exact.
            (u128::from(offset) * u128::from(buckets)).div_ceil(u128::from(span)) as u64
        };
        if bucket == 0 {
            continue;
        }
        if bucket == last_bucket {
            if let Some(slot) = out.last_mut() {
                *slot = *p;
            }
        } else {
            out.push(*p);
            last_bucket = bucket;
        }
    }
    out
}

/// `vin`'s readings whose time is within `since..=until` (either open), each series at
/// most `max_points`.
///
/// # Errors
/// The store.
pub fn read(
    store: &Store,
    vin: &Vin,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    max_points: usize,
) -> Result<Readings, StoreError> {
    let mut odometer = Vec::new();
    let mut hours = Vec::new();
    let mut complete = true;
    for (i, r) in store.records_newest_first(vin, None).enumerate() {
        if i == SCAN_BUDGET {
            complete = false;
            break;
        }
        let r = r?;
        if since.is_some_and(|s| r.at < s) || until.is_some_and(|u| r.at > u) {
            continue;
        }
        match r.body {
            RecordBody::Odometer(o) => odometer.push((r.at, o.odometer.km())),
            RecordBody::EngineHours(h) => hours.push((r.at, h.hours.hours())),
            _ => {}
        }
    }
    let series = |mut points: Vec<Point>| {
        points.reverse();
        // Oldest first by time, whatever order the car's clock put them in by seq.
        points.sort_by_key(|p| p.0);
        Series {
            count: points.len(),
            points: downsample(&points, max_points),
        }
    };
    Ok(Readings {
        odometer: series(odometer),
        engine_hours: series(hours),
        complete,
    })
}
