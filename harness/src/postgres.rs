//! PostgreSQL for tests: a uniquely named database per test on the server at 127.0.0.1:5432
//! (trust auth, user `postgres`), dropped when the test ends — its connections terminated
//! first, so a cloud the test left running cannot keep it.
//!
//! Without a server, [`TestDb::create`] prints `skipping: no PostgreSQL at 127.0.0.1:5432` and
//! returns `Ok(None)`, so the test can return early; with `RAPPORT_REQUIRE_POSTGRES=1` (set by
//! `.ci/run`) that skip is an error instead (as [`crate::mosquitto`] does for its binary).
//!
//! The admin work runs on a thread of its own (the synchronous client must not block an async
//! runtime's thread), so the calls work from sync and async tests alike.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;

/// Set (to anything but empty or `0`) to make a missing server an error, not a skip.
pub const REQUIRE_ENV: &str = "RAPPORT_REQUIRE_POSTGRES";
/// The server's admin URL (its `postgres` database).
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long the first connection may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A database made for one test; dropped (with its connections) on drop.
#[derive(Debug)]
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// Makes a database `rapport_test_<label>_<pid>_<n>_<time>`; `Ok(None)` (after printing
    /// the skip) without a server.
    ///
    /// # Errors
    /// [`Error::PostgresMissing`] instead of the skip when [`REQUIRE_ENV`] is set;
    /// [`Error::Postgres`] if the server refuses.
    pub fn create(label: &str) -> Result<Option<Self>, Error> {
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() % 1_000_000_000);
        let name = format!(
            "rapport_test_{label}_{}_{}_{stamp}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let sql = format!("CREATE DATABASE \"{name}\"");
        match admin(move |c| c.batch_execute(&sql)) {
            Ok(()) => Ok(Some(Self { name })),
            Err(AdminError::Connect(e)) => {
                if require_from_env() {
                    return Err(Error::PostgresMissing(e));
                }
                println!("skipping: no PostgreSQL at 127.0.0.1:5432 ({e})");
                Ok(None)
            }
            Err(AdminError::Query(e)) => Err(Error::Postgres(e)),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL a cloud uses to reach it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Runs `f` on a connection to this database, on a thread of its own (for checks of
    /// what the cloud stored).
    ///
    /// # Errors
    /// [`Error::Postgres`] if it cannot connect or `f` fails.
    pub fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let url = self.url();
        run_on_thread(move || {
            let mut c = connect(&url).map_err(|e| e.to_string())?;
            f(&mut c).map_err(|e| e.to_string())
        })
        .and_then(|r| r)
        .map_err(Error::Postgres)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = admin(move |c| {
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )?;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        });
        if let Err(e) = dropped {
            eprintln!("test database {} not dropped: {e:?}", self.name);
        }
    }
}

#[derive(Debug)]
enum AdminError {
    Connect(String),
    Query(String),
}

fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(CONNECT_WAIT);
    config.connect(postgres::NoTls)
}

fn admin(
    f: impl FnOnce(&mut postgres::Client) -> Result<(), postgres::Error> + Send + 'static,
) -> Result<(), AdminError> {
    run_on_thread(move || {
        let mut c = connect(ADMIN_URL).map_err(|e| AdminError::Connect(e.to_string()))?;
        f(&mut c).map_err(|e| AdminError::Query(e.to_string()))
    })
    .map_err(AdminError::Query)?
}

fn run_on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    std::thread::spawn(f)
        .join()
        .map_err(|_| "the database thread panicked".to_owned())
}

fn require_from_env() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}
