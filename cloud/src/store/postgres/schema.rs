//! The PostgreSQL schema: the migrations embedded in the binary (`cloud/migrations/*.sql`,
//! each run once in its own transaction and noted in `schema_migrations`), the refusal of a
//! database a newer build migrated, and the record log's partitions — one per month, made
//! ahead by the cloud, dropped whole for retention.
//!
//! Why no migration crate: two statements' worth of bookkeeping (a version table, an ordered
//! list of files, an advisory lock so two instances starting together migrate once) is less
//! to trust than a dependency with its own client and macros.
//!
//! Owns the version bookkeeping and the partition names. Does not own what the tables hold
//! (the other modules of the backend).

use rapport_shared::calendar::{civil_from_days, days_from_civil};

use crate::store::StoreError;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "fleet_settings",
        include_str!("../../../migrations/0002_fleet_settings.sql"),
    ),
    (
        3,
        "erasures",
        include_str!("../../../migrations/0003_erasures.sql"),
    ),
    (
        4,
        "audit",
        include_str!("../../../migrations/0004_audit.sql"),
    ),
];

/// The newest schema this build knows.
pub const LATEST: u32 = 4;

/// The advisory lock key held while migrating (any fixed number; "rapport" in ASCII).
const MIGRATION_LOCK: i64 = 0x0072_6170_706f_7274;

/// Brings the database to [`LATEST`], each missing migration in its own transaction, under an
/// advisory lock; returns the version it is at.
///
/// # Errors
/// [`StoreError::Schema`] for a database at a newer version than this build knows; the store.
pub fn migrate(client: &mut postgres::Client) -> Result<u32, StoreError> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = migrate_locked(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    let version = result?;
    unlocked?;
    Ok(version)
}

fn migrate_locked(client: &mut postgres::Client) -> Result<u32, StoreError> {
    let current = version(client)?;
    if current > LATEST {
        return Err(StoreError::Schema {
            found: current,
            known: LATEST,
        });
    }
    for (v, name, sql) in MIGRATIONS {
        if *v <= current {
            continue;
        }
        let mut tx = client.transaction()?;
        tx.batch_execute(sql).map_err(|e| {
            StoreError::Postgres(format!("migration {v} ({name}): {}", super::pg(&e)))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&i32::try_from(*v).unwrap_or(i32::MAX), name],
        )?;
        tx.commit()?;
        tracing::info!(version = v, name, "schema migrated");
    }
    version(client)
}

/// The version the database is at (0: none).
///
/// # Errors
/// The store.
pub fn version(client: &mut postgres::Client) -> Result<u32, StoreError> {
    let row = client.query_one(
        "SELECT COALESCE(max(version), 0) FROM schema_migrations",
        &[],
    )?;
    let v: i32 = row.get(0);
    Ok(u32::try_from(v).unwrap_or(0))
}

/// The month of a day (days since 1970-01-01) as `year * 12 + month - 1`.
pub fn month_of(day: i64) -> i64 {
    let (y, m, _) = civil_from_days(day);
    y * 12 + i64::from(m) - 1
}

/// The first day (days since 1970-01-01) of a month number of [`month_of`].
fn first_day(month: i64) -> i64 {
    let (y, m) = (month.div_euclid(12), month.rem_euclid(12) + 1);
    days_from_civil(y, u8::try_from(m).unwrap_or(1), 1)
}

/// The partition of a month: `records_y2026m01`.
pub fn partition_name(month: i64) -> String {
    let (y, m) = (month.div_euclid(12), month.rem_euclid(12) + 1);
    format!("records_y{y:04}m{m:02}")
}

/// Makes the record partition of `month` unless it exists.
///
/// # Errors
/// The store.
pub fn ensure_partition(client: &mut postgres::Client, month: i64) -> Result<(), StoreError> {
    let (from, to) = (first_day(month), first_day(month + 1));
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF records \
         FOR VALUES FROM (DATE '1970-01-01' + {from}) TO (DATE '1970-01-01' + {to})",
        partition_name(month)
    );
    match client.batch_execute(&sql) {
        Ok(()) => Ok(()),
        // Two instances making the same partition at once: the other one won.
        Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_TABLE) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Retention: drops every record partition wholly before the day `before` (days since
/// 1970-01-01); returns the partitions dropped. A drop, not a delete: no dead rows, no
/// vacuum.
///
/// # Errors
/// The store.
pub fn drop_partitions_before(
    client: &mut postgres::Client,
    before: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = client.query(
        "SELECT c.relname FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'records' ORDER BY c.relname",
        &[],
    )?;
    let mut dropped = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let Some(month) = parse_partition(&name) else {
            continue;
        };
        if first_day(month + 1) <= before {
            client.batch_execute(&format!("DROP TABLE IF EXISTS {name}"))?;
            dropped.push(name);
        }
    }
    Ok(dropped)
}

fn parse_partition(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("records_y")?;
    let (y, m) = rest.split_once('m')?;
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn months_and_partition_names() {
        let jan_2026 = days_from_civil(2026, 1, 1);
        let m = month_of(jan_2026 + 30);
        assert_eq!(partition_name(m), "records_y2026m01");
        assert_eq!(first_day(m), jan_2026);
        assert_eq!(first_day(m + 1), days_from_civil(2026, 2, 1));
        assert_eq!(partition_name(m + 11), "records_y2026m12");
        assert_eq!(partition_name(m + 12), "records_y2027m01");
        assert_eq!(parse_partition("records_y2027m01"), Some(m + 12));
        assert_eq!(parse_partition("records_default"), None);
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(LATEST));
    }
}
