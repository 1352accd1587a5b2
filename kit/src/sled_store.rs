//! Opening a sled database: the one path both daemons' stores (and their tests) open sled by.
//!
//! sled 0.34 takes an exclusive `flock` on its file and releases it only when its background
//! threads have let go of the file, which can be a little after the `Db` was dropped
//! (spacejam/sled#1234): a reopen in the same process right after a drop fails with
//! "could not acquire lock". [`open`] waits that out for up to [`LOCK_WAIT`]. A store really
//! held by another live process is held far longer than the wait, so that still fails, a
//! second later.
//!
//! Owns: the open and its wait. Does not own: a store's key layout, schema or flush policy.

use std::path::Path;
use std::time::{Duration, Instant};

/// How long [`open`] waits for sled's file lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens (or creates) the sled database `config` describes, waiting up to [`LOCK_WAIT`] for a
/// lock a just-dropped handle still holds.
///
/// # Errors
/// sled's error: the lock still held after the wait (another process has the store), or I/O.
pub fn open(config: &sled::Config) -> sled::Result<sled::Db> {
    let start = Instant::now();
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if is_lock_error(&e) && start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// [`open`] with sled's defaults at `dir`.
///
/// # Errors
/// As [`open`].
pub fn open_dir(dir: &Path) -> sled::Result<sled::Db> {
    open(&sled::Config::new().path(dir))
}

/// Whether sled failed for want of its file lock (sled 0.34.7 wraps it as
/// `ErrorKind::Other` with this text).
pub fn is_lock_error(e: &std::io::Error) -> bool {
    e.to_string().starts_with("could not acquire lock")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reopens_right_after_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0u8..20 {
            let db = open_dir(dir.path()).unwrap();
            db.insert([i], &[i]).unwrap();
            db.flush().unwrap();
            drop(db);
        }
        let db = open_dir(dir.path()).unwrap();
        assert_eq!(db.len(), 20);
    }

    #[test]
    fn a_store_held_open_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let _held = open_dir(dir.path()).unwrap();
        let started = Instant::now();
        // The lock is per process for flock on Linux only across file descriptions: a second
        // open in the same process while the first lives fails the same way a second process
        // would.
        match open_dir(dir.path()) {
            Err(sled::Error::Io(e)) => {
                assert!(is_lock_error(&e), "{e}");
                assert!(started.elapsed() >= LOCK_WAIT);
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a held store opened twice"),
        }
    }
}
