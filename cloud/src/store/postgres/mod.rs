//! The PostgreSQL backend of the store port: nothing of the fleet in memory, every change one
//! transaction over the rows it touches.
//!
//! - [`schema`]: the embedded migrations (`cloud/migrations/*.sql`), the version check, the
//!   record log's monthly partitions made ahead and dropped for retention;
//! - [`vehicles`]: a vehicle's snapshot loaded from its locked row (and its open alerts), and
//!   stepped vehicles persisted with set-based statements;
//! - [`fleet`]: the ingest's group commit, the tick's claim (`FOR UPDATE SKIP LOCKED`), the
//!   API's changes;
//! - [`reads`]: the reads, the matrix as a `GROUP BY`;
//! - [`outbox`]: the webhook outbox over the `webhooks` table.
//!
//! Concurrency (correct with several instances where it costs nothing now): vehicles are
//! locked `FOR UPDATE` in VIN order, due vehicles are claimed `FOR UPDATE SKIP LOCKED` inside
//! the transaction that processes them, alert and downlink ids come from sequences, and the
//! webhook sender claims the rows it sends with a lease (`claimed_by`/`lease_until`, see
//! [`outbox`]); a downlink is claimed by the instance that decided it, in the same
//! transaction, and one whose claim lapsed is claimed by another
//! ([`crate::store::Backend::claim_downlinks`]).
//!
//! The client is the synchronous `postgres` crate (tokio-postgres underneath) with an r2d2
//! pool: the port is synchronous and runs on threads, as sled does. Owns the pool, the
//! connection settings (statement timeout, application name) and the mapping of the port
//! onto SQL. Does not own any decision or encoding of its own (values are stored in the sled
//! store's encodings).

mod audit;
mod erase;
mod fleet;
mod import;
mod outbox;
mod port;
mod reads;
mod retention;
pub mod schema;
mod vehicles;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::NoTls;
use r2d2_postgres::r2d2;

use crate::config::DbUrl;
use crate::store::StoreError;

pub use outbox::PgOutbox;

/// A pooled connection.
pub type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;
type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The pool, shared by the store and its outbox. Closing a synchronous client blocks on its
/// own runtime, which must not happen on an async runtime's thread: the last holder dropped
/// there closes the connections on a thread of their own.
pub(crate) struct Connections(Option<Pool>);

impl Connections {
    /// A connection.
    ///
    /// # Errors
    /// None comes within the pool's wait (the server is gone, the pool is exhausted).
    pub(crate) fn get(&self) -> Result<Conn, String> {
        match &self.0 {
            Some(p) => p.get().map_err(|e| e.to_string()),
            None => Err("the pool is closed".into()),
        }
    }

    /// A connection within `wait` (the health probe must not wait the pool's 30 s).
    ///
    /// # Errors
    /// None comes in time.
    pub(crate) fn get_within(&self, wait: Duration) -> Result<Conn, String> {
        match &self.0 {
            Some(p) => p.get_timeout(wait).map_err(|e| e.to_string()),
            None => Err("the pool is closed".into()),
        }
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let closing = std::thread::Builder::new()
                    .name("rapport-pg-close".into())
                    .spawn(move || drop(pool));
                if let Err(e) = closing {
                    tracing::warn!(cause = %e, "PostgreSQL connections not closed cleanly");
                }
            } else {
                drop(pool);
            }
        }
    }
}

/// The advisory lock key held while re-placing drivers ("replace" in ASCII).
const REPLACE_LOCK: i64 = 0x0072_6570_6c61_6365;

/// Records the `[layers]` thresholds the stored drivers are placed with.
fn record_layers(c: &mut Conn, layers: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO fleet_settings (key, value) VALUES ('layers', $1) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&layers],
    )?;
    Ok(())
}

/// The pool's own reports of failed connection attempts, at debug: during an outage it
/// retries every few hundred milliseconds, and the outage is logged once by whoever meets
/// it (the ingest, the tick, the sender, the probe) — r2d2's default logs each at error.
#[derive(Debug)]
struct QuietPoolErrors;

impl r2d2::HandleError<postgres::Error> for QuietPoolErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::debug!(cause = %error, "PostgreSQL pool: a connection attempt failed");
    }
}

/// How long the first connection at start may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free connection of the pool (then the store is
/// [`StoreError::Unavailable`]: the ingest retries, the API answers 503).
const POOL_WAIT: Duration = Duration::from_secs(10);

/// The PostgreSQL store.
pub struct PgStore {
    pool: Arc<Connections>,
    url: DbUrl,
    /// Months (`year * 12 + month - 1`) whose record partition is known to exist.
    months: Mutex<HashSet<i64>>,
    outbox: Arc<PgOutbox>,
    /// This instance's name on the downlinks it claims (host, pid, a random part).
    holder: String,
}

/// A lease in ms.
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// SQLSTATEs that mean "the server cannot serve now", not "this statement is wrong": class 08
/// (connection exception), 57P01–57P03 (admin shutdown, crash shutdown, cannot connect now),
/// 53300 (too many connections), 57014 (a statement cancelled by the statement timeout: an
/// overloaded server), 40001/40P01 (serialization failure, deadlock: the
/// transaction was rolled back and may simply run again).
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "57014" | "40001" | "40P01"
        )
}

/// A postgres error as text (its display never holds the URL): [`StoreError::Unavailable`]
/// when the server is gone or cannot serve now (worth retrying), else
/// [`StoreError::Postgres`].
pub(crate) fn pg(e: &postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if unavailable_code(db.code().code()) => {
            StoreError::Unavailable(format!("{} ({})", db.message(), db.code().code()))
        }
        Some(db) => StoreError::Postgres(format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.detail().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        // No answer from a server: the connection closed or broke, I/O failed, or the
        // connect timed out (the client's error kinds are private; these are its own words).
        None if e.is_closed()
            || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            || e.to_string().starts_with("timeout waiting for server") =>
        {
            StoreError::Unavailable(e.to_string())
        }
        None => StoreError::Postgres(e.to_string()),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        pg(&e)
    }
}

/// The client's settings for `url`: connect timeout, the statement timeout, a name in
/// `pg_stat_activity`.
///
/// # Errors
/// The URL does not parse as a connection string (its text is never in the message).
pub fn client_config(
    url: &DbUrl,
    statement_timeout_ms: u64,
) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url
        .expose()
        .parse()
        .map_err(|e: postgres::Error| StoreError::Postgres(format!("{}: {e}", url.redacted())))?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("rapport-cloud")
        .options(&format!("-c statement_timeout={statement_timeout_ms}"));
    Ok(config)
}

/// Connects once, outside the pool (start, `migrate`): a clear error naming host and
/// database if the server cannot be reached.
///
/// # Errors
/// [`StoreError::Unreachable`].
pub fn connect(url: &DbUrl, statement_timeout_ms: u64) -> Result<postgres::Client, StoreError> {
    client_config(url, statement_timeout_ms)?
        .connect(NoTls)
        .map_err(|e| StoreError::Unreachable {
            target: url.target(),
            reason: match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => e.to_string(),
            },
        })
}

/// `rapport-cloud migrate`: connects to the database `[store]` names and brings it to this
/// build's schema; the version it is at.
///
/// # Errors
/// Not a PostgreSQL store, [`StoreError::Unreachable`], [`StoreError::Schema`], the store.
pub fn migrate(config: &crate::config::Store) -> Result<u32, StoreError> {
    if config.backend != crate::config::Backend::Postgres {
        return Err(StoreError::Postgres(
            "[store] backend is not \"postgres\" (a sled store needs no migration)".into(),
        ));
    }
    let url = config
        .postgres_url(&|v| std::env::var(v).ok())
        .map_err(|(k, m)| StoreError::Postgres(format!("store.{k}: {m}")))?;
    let mut client = connect(&url, config.statement_timeout_ms)?;
    schema::migrate(&mut client)
}

impl PgStore {
    /// Opens the store `[store]` names (the URL from `url` or the `url_env` variable read
    /// with `env`): connects, migrates to this build's schema (refusing a newer one), makes
    /// the record partitions of this month and the next, and builds the pool.
    ///
    /// # Errors
    /// [`StoreError::Unreachable`] naming host and database, [`StoreError::Schema`], the
    /// store.
    pub fn open(
        config: &crate::config::Store,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, StoreError> {
        let url = config
            .postgres_url(env)
            .map_err(|(k, m)| StoreError::Postgres(format!("store.{k}: {m}")))?;
        let mut client = connect(&url, config.statement_timeout_ms)?;
        let version = schema::migrate(&mut client)?;
        tracing::info!(url = %url, schema = version, "PostgreSQL store open");
        drop(client);
        let manager = PostgresConnectionManager::new(
            client_config(&url, config.statement_timeout_ms)?,
            NoTls,
        );
        let pool = Arc::new(Connections(Some(
            r2d2::Pool::builder()
                .max_size(config.pool_size)
                .min_idle(Some(0))
                .connection_timeout(POOL_WAIT)
                .error_handler(Box::new(QuietPoolErrors))
                .build_unchecked(manager),
        )));
        let store = Self {
            outbox: Arc::new(PgOutbox::new(Arc::clone(&pool))),
            pool,
            url,
            months: Mutex::new(HashSet::new()),
            holder: crate::store::instance_name(),
        };
        Ok(store)
    }

    /// A connection from the pool.
    ///
    /// # Errors
    /// [`StoreError::Postgres`] when none comes in time (the server is gone, the pool is
    /// exhausted).
    pub fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get().map_err(|e| {
            StoreError::Unavailable(format!("no connection to {}: {e}", self.url.target()))
        })
    }

    /// A connection within `wait`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when none comes in time.
    pub fn conn_within(&self, wait: Duration) -> Result<Conn, StoreError> {
        self.pool.get_within(wait).map_err(|e| {
            StoreError::Unavailable(format!("no connection to {}: {e}", self.url.target()))
        })
    }

    /// This instance's name on what it claims.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Gathers one transaction's writes; the downlinks it decides are claimed by this
    /// instance until `now` + [`crate::store::DOWNLINK_LEASE`].
    fn writes(&self, now: rapport_shared::Timestamp) -> vehicles::Writes {
        vehicles::Writes::claimed_by(
            self.holder.clone(),
            vehicles::ms(now).saturating_add(lease_ms(crate::store::DOWNLINK_LEASE)),
        )
    }

    /// Another handle on the same pool and outbox (a background task's).
    fn sibling(&self) -> Self {
        Self {
            pool: Arc::clone(&self.pool),
            url: self.url.clone(),
            months: Mutex::new(HashSet::new()),
            outbox: Arc::clone(&self.outbox),
            holder: self.holder.clone(),
        }
    }

    /// If the stored drivers were placed with other `[layers]` thresholds than `rules`'
    /// (or with thresholds not on record, from before schema 2), re-places every driver on a
    /// thread of its own — the instance serves meanwhile: a million drivers must not hold up
    /// a start — under an advisory lock, so of several instances starting together one does
    /// it; then records the thresholds. A database without drivers only records them.
    ///
    /// # Errors
    /// The store (reading what is recorded, starting the thread).
    pub(super) fn replace_if_layers_changed(
        &self,
        rules: &crate::fleet::core::Rules,
        now: rapport_shared::Timestamp,
    ) -> Result<(), StoreError> {
        let wanted =
            serde_json::to_string(&rules.layers).map_err(|e| StoreError::corrupt("[layers]", e))?;
        let mut c = self.conn()?;
        let stored: Option<String> = c
            .query_opt("SELECT value FROM fleet_settings WHERE key = 'layers'", &[])?
            .map(|r| r.get(0));
        if stored.as_deref() == Some(wanted.as_str()) {
            return Ok(());
        }
        let placed: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM vehicles WHERE driver IS NOT NULL)",
                &[],
            )?
            .get(0);
        if !placed {
            record_layers(&mut c, &wanted)?;
            return Ok(());
        }
        drop(c);
        let (store, rules) = (self.sibling(), rules.clone());
        std::thread::Builder::new()
            .name("rapport-replace".into())
            .spawn(move || match store.replace_all(&rules, &wanted, now) {
                Ok(Some(n)) => tracing::info!(
                    layer_changes = n,
                    "drivers re-placed with the new [layers] thresholds"
                ),
                Ok(None) => tracing::info!(
                    "another instance re-places the drivers with the new [layers] thresholds"
                ),
                Err(e) => tracing::error!(
                    cause = %e,
                    "re-placing the drivers with the new [layers] thresholds failed; tried again at the next start"
                ),
            })
            .map_err(|e| StoreError::Postgres(format!("cannot start the re-placement: {e}")))?;
        tracing::info!("[layers] thresholds changed: re-placing every driver in the background");
        Ok(())
    }

    /// The re-placement under its advisory lock; `None` when another instance holds it.
    fn replace_all(
        &self,
        rules: &crate::fleet::core::Rules,
        wanted: &str,
        now: rapport_shared::Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        let mut lock = self.conn()?;
        let got: bool = lock
            .query_one("SELECT pg_try_advisory_lock($1)", &[&REPLACE_LOCK])?
            .get(0);
        if !got {
            return Ok(None);
        }
        let result = self.place_all(rules, now);
        let unlocked = lock.execute("SELECT pg_advisory_unlock($1)", &[&REPLACE_LOCK]);
        let applied = result?;
        unlocked?;
        record_layers(&mut lock, wanted)?;
        Ok(Some(applied.stats.layer_changes))
    }

    /// The URL, redacted (logs).
    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// Makes sure the record partition of the month of `day` (days since 1970-01-01)
    /// exists; remembered once made.
    ///
    /// # Errors
    /// The store.
    pub fn ensure_partition(&self, day: i64) -> Result<(), StoreError> {
        let month = schema::month_of(day);
        if self
            .months
            .lock()
            .map(|m| m.contains(&month))
            .unwrap_or(false)
        {
            return Ok(());
        }
        let mut c = self.conn()?;
        schema::ensure_partition(&mut c, month)?;
        if let Ok(mut m) = self.months.lock() {
            m.insert(month);
        }
        Ok(())
    }
}
