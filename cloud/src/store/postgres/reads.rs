//! PostgreSQL's reads for the port: a vehicle's state, driver, registration and layers; its
//! record log and timeline newest first, in pages as the caller goes; the layer matrix as a
//! `GROUP BY` over the cells' index; the vehicles list; alerts; partners; downlinks.
//!
//! Owns the queries. Does not own what the answers mean.

use postgres::types::ToSql;
use rapport_shared::{Record, Vin};
use serde_json::Value;

use super::PgStore;
use super::vehicles::{SEQ_BITS, at, from_json, layers_of, record_range};
use crate::fleet::alerts::Alert;
use crate::fleet::driver::Driver;
use crate::fleet::layering::Matrix;
use crate::fleet::model::{Activity, CarMaturity, Category, Layers, Registration, ServiceMaturity};
use crate::fleet::partners::Partner;
use crate::fleet::store::{Stamped, TimelineEntry};
use crate::store::{Listed, Records, StoreError, Timeline};
use crate::vehicle::VehicleState;

/// Rows one page of a lazy read fetches.
const PAGE: i64 = 256;

fn decode_record(vin: &Vin, key: i64, body: &[u8]) -> Result<Record, StoreError> {
    let seq = key & ((1 << SEQ_BITS) - 1);
    Record::decode(body).map_err(|e| StoreError::corrupt(format!("record {vin} seq {seq}"), e))
}

impl PgStore {
    /// One column of a vehicle's row.
    fn column<T: for<'a> postgres::types::FromSql<'a>>(
        &self,
        column: &str,
        vin: &Vin,
    ) -> Result<Option<T>, StoreError> {
        let mut c = self.conn()?;
        let row = c.query_opt(
            &format!("SELECT {column} FROM vehicles WHERE vin = $1"),
            &[&vin.to_string()],
        )?;
        Ok(row.and_then(|r| r.get::<_, Option<T>>(0)))
    }

    /// The row id of a vehicle.
    pub(super) fn vehicle_id(&self, vin: &Vin) -> Result<Option<i32>, StoreError> {
        self.column::<i32>("id", vin)
    }

    pub(super) fn read_vehicle(&self, vin: &Vin) -> Result<Option<VehicleState>, StoreError> {
        self.column::<Vec<u8>>("state", vin)?
            .map(|b| {
                VehicleState::from_bytes(&b)
                    .map_err(|e| StoreError::corrupt(format!("vehicle {vin}"), e))
            })
            .transpose()
    }

    pub(super) fn read_driver(&self, vin: &Vin) -> Result<Option<Driver>, StoreError> {
        self.column::<Vec<u8>>("driver", vin)?
            .map(|b| {
                Driver::from_bytes(&b).map_err(|e| StoreError::corrupt(format!("driver {vin}"), e))
            })
            .transpose()
    }

    pub(super) fn read_registration(&self, vin: &Vin) -> Result<Option<Registration>, StoreError> {
        self.column::<Value>("registration", vin)?
            .map(|j| from_json(|| format!("registration {vin}"), j))
            .transpose()
    }

    pub(super) fn read_layers(&self, vin: &Vin) -> Result<Option<Layers>, StoreError> {
        let mut c = self.conn()?;
        let row = c.query_opt(
            "SELECT category, car, service, activity, lifecycle FROM vehicles WHERE vin = $1",
            &[&vin.to_string()],
        )?;
        Ok(row.and_then(|r| layers_of([r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)])))
    }

    pub(super) fn count(&self) -> Result<u64, StoreError> {
        let mut c = self.conn()?;
        let row = c.query_one("SELECT count(*) FROM vehicles WHERE state IS NOT NULL", &[])?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub(super) fn read_records(
        &self,
        vin: &Vin,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let Some(id) = self.vehicle_id(vin)? else {
            return Ok(Vec::new());
        };
        let (first, end) = record_range(id);
        if after >= (1 << SEQ_BITS) - 1 {
            return Ok(Vec::new());
        }
        let from = first + i64::try_from(after).unwrap_or(0);
        let mut c = self.conn()?;
        let rows = c.query(
            "SELECT key, body FROM records WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3",
            &[&from, &end, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        rows.iter()
            .map(|r| decode_record(vin, r.get(0), &r.get::<_, Vec<u8>>(1)))
            .collect()
    }

    /// One page of a vehicle's records with seq below `below`, newest first.
    fn records_page(&self, id: i32, vin: &Vin, below: i64) -> Result<Vec<Record>, StoreError> {
        let (first, end) = record_range(id);
        let until = first.saturating_add(below.clamp(0, 1 << SEQ_BITS)).min(end);
        let mut c = self.conn()?;
        let rows = c.query(
            "SELECT key, body FROM records WHERE key >= $1 AND key < $2 \
             ORDER BY key DESC LIMIT $3",
            &[&first, &until, &PAGE],
        )?;
        rows.iter()
            .map(|r| decode_record(vin, r.get(0), &r.get::<_, Vec<u8>>(1)))
            .collect()
    }

    pub(super) fn records_lazy<'a>(&'a self, vin: &Vin, below: Option<u64>) -> Records<'a> {
        let vin = *vin;
        let id = match self.vehicle_id(&vin) {
            Ok(Some(id)) => id,
            Ok(None) => return Box::new(std::iter::empty()),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let start = below.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        paged(
            start,
            move |below| self.records_page(id, &vin, *below),
            |r: &Record| i64::try_from(r.seq).unwrap_or(0),
        )
    }

    /// One page of a vehicle's timeline below (at, n), newest first.
    fn timeline_page(
        &self,
        id: i32,
        vin: &Vin,
        below: (i64, i64),
    ) -> Result<Vec<(Vec<u8>, Stamped)>, StoreError> {
        let mut c = self.conn()?;
        let rows = c.query(
            "SELECT at, n, entry FROM timeline WHERE vehicle = $1 AND (at, n) < ($2, $3) \
             ORDER BY at DESC, n DESC LIMIT $4",
            &[&id, &below.0, &below.1, &PAGE],
        )?;
        rows.iter()
            .map(|r| {
                let (t, n): (i64, i64) = (r.get(0), r.get(1));
                let entry: TimelineEntry =
                    from_json(|| format!("timeline entry of {vin}"), r.get::<_, Value>(2))?;
                let mut position = Vec::with_capacity(16);
                position.extend_from_slice(&u64::try_from(t).unwrap_or(0).to_be_bytes());
                position.extend_from_slice(&u64::try_from(n).unwrap_or(0).to_be_bytes());
                Ok((position, Stamped { at: at(t), entry }))
            })
            .collect()
    }

    pub(super) fn timeline_lazy<'a>(&'a self, vin: &Vin, below: Option<&[u8]>) -> Timeline<'a> {
        let vin = *vin;
        let id = match self.vehicle_id(&vin) {
            Ok(Some(id)) => id,
            Ok(None) => return Box::new(std::iter::empty()),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let start = below.map_or((i64::MAX, i64::MAX), position);
        paged(
            start,
            move |below| self.timeline_page(id, &vin, *below),
            |(p, _): &(Vec<u8>, Stamped)| position(p),
        )
    }

    pub(super) fn read_matrix(&self, category: Option<Category>) -> Result<Matrix, StoreError> {
        let mut c = self.conn()?;
        let cat: Option<i16> = category.map(|c| i16::try_from(c.index()).unwrap_or(0));
        let rows = c.query(
            "SELECT service, car, activity, count(*) FROM vehicles \
             WHERE category IS NOT NULL AND ($1::int2 IS NULL OR category = $1) \
             GROUP BY category, service, car, activity",
            &[&cat],
        )?;
        let mut m = Matrix::default();
        for r in rows {
            let idx = |i: usize| usize::try_from(r.get::<_, i16>(i)).unwrap_or(usize::MAX);
            let n = u64::try_from(r.get::<_, i64>(3)).unwrap_or(0);
            let (s, car, a) = (idx(0), idx(1), idx(2));
            if s < ServiceMaturity::ALL.len() && a < Activity::ALL.len() {
                m.service[s][a] += n;
            }
            if car < CarMaturity::ALL.len() && a < Activity::ALL.len() {
                m.car[car][a] += n;
            }
        }
        Ok(m)
    }

    pub(super) fn read_vehicles_after(
        &self,
        after: Option<&Vin>,
        limit: usize,
    ) -> Result<Vec<Listed>, StoreError> {
        let mut c = self.conn()?;
        let after = after.map_or_else(String::new, ToString::to_string);
        let rows = c.query(
            "SELECT vin, category, car, service, activity, lifecycle FROM vehicles \
             WHERE driver IS NOT NULL AND vin > $1 ORDER BY vin LIMIT $2",
            &[&after, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        rows.iter()
            .map(|r| {
                let text: String = r.get(0);
                let vin: Vin = text
                    .parse()
                    .map_err(|e| StoreError::corrupt(format!("vehicle row {text:?}"), e))?;
                Ok((
                    vin,
                    layers_of([r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)]),
                ))
            })
            .collect()
    }

    pub(super) fn read_alert(&self, id: u64) -> Result<Option<Alert>, StoreError> {
        let mut c = self.conn()?;
        let row = c.query_opt(
            "SELECT body FROM alerts WHERE id = $1",
            &[&i64::try_from(id).unwrap_or(i64::MAX)],
        )?;
        row.map(|r| from_json(|| format!("alert {id}"), r.get::<_, Value>(0)))
            .transpose()
    }

    pub(super) fn read_alerts(
        &self,
        unresolved_only: bool,
        vin: Option<&Vin>,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut c = self.conn()?;
        let vin = vin.map(ToString::to_string);
        let params: [&(dyn ToSql + Sync); 2] = [&unresolved_only, &vin];
        let rows = c.query(
            "SELECT body FROM alerts WHERE (NOT $1 OR state <> 2) \
             AND ($2::text IS NULL OR vin = $2) ORDER BY id",
            &params,
        )?;
        rows.iter()
            .map(|r| from_json(|| "alert".to_owned(), r.get::<_, Value>(0)))
            .collect()
    }

    pub(super) fn read_partners(&self) -> Result<Vec<Partner>, StoreError> {
        let mut c = self.conn()?;
        let rows = c.query("SELECT id, body FROM partners ORDER BY id", &[])?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                from_json(|| format!("partner {id:?}"), r.get::<_, Value>(1))
            })
            .collect()
    }
}

/// Items read page by page as the caller goes: `page(bound)` reads up to [`PAGE`] items
/// below `bound`, `bound_of` gives the next bound from a page's last item; an error ends the
/// read after it is handed on.
fn paged<'a, T: 'a, B: 'a>(
    start: B,
    mut page: impl FnMut(&B) -> Result<Vec<T>, StoreError> + 'a,
    bound_of: impl Fn(&T) -> B + 'a,
) -> Box<dyn Iterator<Item = Result<T, StoreError>> + 'a> {
    let mut bound = start;
    let mut done = false;
    Box::new(
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match page(&bound) {
                Ok(items) => {
                    done = items.len() < usize::try_from(PAGE).unwrap_or(0);
                    bound = bound_of(items.last()?);
                    Some(items.into_iter().map(Ok).collect::<Vec<_>>())
                }
                Err(e) => {
                    done = true;
                    Some(vec![Err(e)])
                }
            }
        })
        .flatten(),
    )
}

/// A timeline position (time and number, 8 bytes each, big-endian) as the two columns; a
/// shorter one reads as zeros after its end (before every entry of that prefix).
fn position(p: &[u8]) -> (i64, i64) {
    let word = |from: usize| {
        let mut b = [0u8; 8];
        for (i, x) in b.iter_mut().enumerate() {
            *x = p.get(from + i).copied().unwrap_or(0);
        }
        i64::try_from(u64::from_be_bytes(b)).unwrap_or(i64::MAX)
    };
    (word(0), word(8))
}
