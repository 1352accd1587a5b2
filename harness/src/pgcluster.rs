//! A PostgreSQL cluster of a test's own: `initdb` into a temporary folder, the server started
//! with `pg_ctl` on a free loopback port, stopped (`pg_ctl stop -m fast`) and started again on
//! demand — what a test needs to take the database away from a running cloud — and removed
//! (stopped `-m immediate`, folder deleted) on drop.
//!
//! The shared server of [`crate::postgres`] cannot be stopped by one test without breaking
//! every other; this one belongs to the test alone. Its data is thrown away, so it runs with
//! `fsync = off` (a `-m fast` stop is a clean shutdown either way; nothing depends on a crash
//! of the server itself).
//!
//! PostgreSQL refuses to run as root: as root, every `initdb` / `pg_ctl` runs as the
//! `postgres` user through `runuser -u postgres --`, the folder chowned to it; as anyone else
//! they run as that user. The binaries are looked for in `$RAPPORT_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's layout), else on `PATH`. Without them
//! [`PgCluster::start`] prints `skipping: ...` and returns `Ok(None)`; with
//! `RAPPORT_REQUIRE_POSTGRES=1` that skip is an error instead (as [`crate::postgres`] does).
//!
//! Owns the cluster's processes and folder, and a small helper to run SQL on it on a thread
//! of its own ([`PgCluster::with`]). Does not own the cloud's schema or what a test checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::Error;
use crate::wait::free_port;

/// The environment variable naming the folder with `initdb` and `pg_ctl`.
pub const BIN_ENV: &str = "RAPPORT_PG_BIN";
/// The user the server runs as when this process is root.
const RUN_AS: &str = "postgres";
/// Seconds `pg_ctl` waits for a start or stop.
const PG_CTL_WAIT_S: &str = "60";
/// How long the first connection may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// Attempts at a free port (another process may take the one picked).
const START_ATTEMPTS: u32 = 3;

/// A PostgreSQL server of the test's own; stopped and removed on drop.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    /// `Some` as root: the user `initdb` and `pg_ctl` run as.
    run_as: Option<&'static str>,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl PgCluster {
    /// Makes and starts a cluster (superuser `postgres`, trust auth on loopback); `Ok(None)`
    /// after printing why when the binaries are missing.
    ///
    /// # Errors
    /// [`Error::Postgres`] naming where the binaries were looked for when
    /// `RAPPORT_REQUIRE_POSTGRES` is set and they are missing, or when `initdb` / `pg_ctl`
    /// fail (with the end of the server's log); [`Error::Io`] for the folder.
    pub fn start() -> Result<Option<Self>, Error> {
        let Some(bin) = find_bin() else {
            let looked =
                format!("${BIN_ENV}, /usr/lib/postgresql/<version>/bin, PATH (initdb and pg_ctl)");
            if require_from_env() {
                return Err(Error::Postgres(format!(
                    "PostgreSQL's server binaries not found (looked in {looked}) and \
                     {} is set: install them (apt-get install postgresql)",
                    crate::postgres::REQUIRE_ENV
                )));
            }
            println!("skipping: PostgreSQL's server binaries not found (looked in {looked})");
            return Ok(None);
        };
        let run_as = rustix::process::geteuid().is_root().then_some(RUN_AS);
        let dir = crate::files::temp_dir("rapport-pgcluster-", "a PostgreSQL cluster")?;
        let mut cluster = Self {
            bin,
            run_as,
            dir,
            port: 0,
            running: false,
        };
        if let Some(user) = run_as {
            // The folder is root's (mode 0700): the server's user must own it.
            cluster.run(
                Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(cluster.dir.path()),
                "chown",
            )?;
        }
        let data = cluster.data();
        let mut initdb = cluster.pg("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        cluster.run(&mut initdb, "initdb")?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(Some(cluster)),
                Err(_) if attempt < START_ATTEMPTS && cluster.log_tail().contains("in use") => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as user `postgres`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Whether the server is up (started and not stopped since).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The server's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The end of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        crate::process::log_tail(&self.log_path())
    }

    /// Makes database `name` (letters, digits and `_` only) and returns its URL.
    ///
    /// # Errors
    /// [`Error::Postgres`] for a bad name or if the server refuses.
    pub fn create_database(&self, name: &str) -> Result<String, Error> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Postgres(format!(
                "database name {name:?}: use letters, digits and _"
            )));
        }
        let sql = format!("CREATE DATABASE \"{name}\"");
        self.with("postgres", move |c| c.batch_execute(&sql))?;
        Ok(self.url(name))
    }

    /// Runs `f` on a new connection to database `db`, on a thread of its own (the
    /// synchronous client must not block an async runtime's thread).
    ///
    /// # Errors
    /// [`Error::Postgres`] if it cannot connect or `f` fails.
    pub fn with<T: Send + 'static>(
        &self,
        db: &str,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, Error> {
        with_url(&self.url(db), f)
    }

    /// Stops the server as an operator would for maintenance (`pg_ctl stop -m fast`: open
    /// connections are ended, what was committed stays). Does nothing when it is stopped.
    ///
    /// # Errors
    /// [`Error::Postgres`] if `pg_ctl` fails (with the end of the server's log).
    pub fn stop(&mut self) -> Result<(), Error> {
        if !self.running {
            return Ok(());
        }
        self.pg_ctl(&["stop", "-m", "fast"])?;
        self.running = false;
        Ok(())
    }

    /// Starts the server again on the same port and data. Does nothing when it runs.
    ///
    /// # Errors
    /// [`Error::Postgres`] if `pg_ctl` fails (with the end of the server's log).
    pub fn restart(&mut self) -> Result<(), Error> {
        if self.running {
            return Ok(());
        }
        self.start_server()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_server(&mut self) -> Result<(), Error> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.log_path();
        self.pg_ctl(&["start", "-o", &options, "-l", &path_str(&log)])?;
        self.running = true;
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), Error> {
        let mut cmd = self.pg("pg_ctl");
        cmd.arg("-D")
            .arg(self.data())
            .args(["-w", "-t", PG_CTL_WAIT_S])
            .args(args);
        self.run(&mut cmd, "pg_ctl")
    }

    /// A command running `program` of the binaries folder as the server's user.
    fn pg(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(path);
                cmd
            }
            None => Command::new(path),
        }
    }

    fn run(&self, cmd: &mut Command, what: &str) -> Result<(), Error> {
        let out: Output = cmd
            .stdin(Stdio::null())
            .current_dir(self.dir.path())
            .output()
            .map_err(|source| Error::Io {
                what: "starting",
                path: cmd.get_program().into(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Postgres(format!(
            "{what} ({}) failed: {}\n{}{}\n--- the end of the server's log ---\n{}",
            self.dir.path().display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        )))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            // Immediate: the folder goes right after; nothing needs to be written.
            if let Err(e) = self.pg_ctl(&["stop", "-m", "immediate"]) {
                eprintln!("PostgreSQL cluster not stopped: {e}");
            }
            self.running = false;
        }
    }
}

/// Runs `f` on a new connection to `url`, on a thread of its own.
///
/// # Errors
/// [`Error::Postgres`] if it cannot connect or `f` fails.
pub fn with_url<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
) -> Result<T, Error> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| e.to_string())?;
        config.connect_timeout(CONNECT_WAIT);
        let mut client = config.connect(postgres::NoTls).map_err(|e| e.to_string())?;
        f(&mut client).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| Error::Postgres("the database thread panicked".into()))?
    .map_err(Error::Postgres)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `$RAPPORT_PG_BIN`, the newest `/usr/lib/postgresql/<n>/bin`, or the folder of `pg_ctl` on
/// `PATH`: the first that holds both `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os(BIN_ENV) {
        let d = PathBuf::from(d);
        return has_both(&d).then_some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_both(d))
}

fn require_from_env() -> bool {
    std::env::var_os(crate::postgres::REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cluster_starts_stops_and_comes_back_with_its_data() {
        let Some(mut pg) = PgCluster::start().unwrap() else {
            return;
        };
        let url = pg.create_database("pgcluster_test").unwrap();
        assert!(url.ends_with(&format!(":{}/pgcluster_test", pg.port())));
        pg.with("pgcluster_test", |c| {
            c.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        })
        .unwrap();
        pg.stop().unwrap();
        assert!(!pg.is_running());
        assert!(
            matches!(
                pg.with("pgcluster_test", |c| c.batch_execute("SELECT 1")),
                Err(Error::Postgres(_))
            ),
            "a stopped server refuses connections"
        );
        pg.restart().unwrap();
        let x: i32 = pg
            .with("pgcluster_test", |c| {
                c.query_one("SELECT x FROM t", &[]).map(|r| r.get(0))
            })
            .unwrap();
        assert_eq!(x, 7);
        let bad = pg.create_database("no spaces").unwrap_err();
        assert!(bad.to_string().contains("letters, digits"), "{bad}");
    }
}
