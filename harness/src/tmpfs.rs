//! A small tmpfs of a test's own, to fill (a full flash) or remount read-only (a broken one).
//!
//! [`Tmpfs::mount`] mounts `size` bytes at a fresh directory and unmounts it on drop — also
//! when the test panics (the drop runs while unwinding), lazily (`umount -l`) so a process
//! still holding a file there does not keep the mount. Mounting needs root (or
//! `CAP_SYS_ADMIN`): where it is refused, `mount` answers `Ok(None)` and prints why, so the
//! test can return early; with `RAPPORT_REQUIRE_MOUNT=1` (set by `.ci/run`) the refusal is
//! [`Error::MountRefused`] instead.
//!
//! Filling is deterministic: [`Tmpfs::fill`] writes a ballast file until the file system
//! answers `ENOSPC`, so every later write by anyone fails; [`Tmpfs::free`] removes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// Set (to anything) to make a refused mount an error rather than a skip.
pub const REQUIRE_ENV: &str = "RAPPORT_REQUIRE_MOUNT";

/// The ballast file's name in the mount.
const BALLAST: &str = "ballast";

/// A mounted tmpfs; unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
    /// The parent made for the mount point, removed after unmounting.
    _parent: tempfile::TempDir,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn run(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .arg(dir)
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB at a new directory. `Ok(None)` (after printing a
    /// `skipped:` line naming `test`) when mounting is refused and [`REQUIRE_ENV`] is unset.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be made, [`Error::MountRefused`] when mounting is
    /// refused and [`REQUIRE_ENV`] is set.
    pub fn mount(test: &str, size_kib: u64) -> Result<Option<Self>, Error> {
        let parent = tempfile::Builder::new()
            .prefix("rapport-tmpfs-")
            .tempdir()
            .map_err(io("making a mount point", &std::env::temp_dir()))?;
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).map_err(io("making a mount point", &dir))?;
        let size = format!("size={size_kib}k");
        match run(&["mount", "-t", "tmpfs", "-o", &size, "tmpfs"], &dir) {
            Ok(()) => Ok(Some(Self {
                dir,
                _parent: parent,
            })),
            Err(why) if std::env::var_os(REQUIRE_ENV).is_some() => Err(Error::MountRefused(why)),
            Err(why) => {
                println!(
                    "skipped: {test}: cannot mount a tmpfs ({why}); set {REQUIRE_ENV}=1 to fail instead"
                );
                Ok(None)
            }
        }
    }

    /// The mounted directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a ballast file until the file system is full (`ENOSPC`); returns its size.
    ///
    /// # Errors
    /// [`Error::Io`] for any error but `ENOSPC`.
    pub fn fill(&self) -> Result<u64, Error> {
        let path = self.dir.join(BALLAST);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("creating the ballast", &path))?;
        let block = vec![0x5a_u8; 4096];
        let mut written = 0u64;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(io("writing the ballast", &path)(e)),
            }
        }
        // A partial block may still fit a few bytes: fill those too.
        loop {
            match file.write(&[0x5a]) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(io("writing the ballast", &path)(e)),
            }
        }
        Ok(written)
    }

    /// Removes the ballast: space is back.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be removed.
    pub fn free(&self) -> Result<(), Error> {
        let path = self.dir.join(BALLAST);
        std::fs::remove_file(&path).map_err(io("removing the ballast", &path))
    }

    /// Remounts the file system read-only (what is in it stays readable).
    ///
    /// # Errors
    /// [`Error::MountRefused`] if the remount fails.
    pub fn read_only(&self) -> Result<(), Error> {
        run(&["mount", "-o", "remount,ro"], &self.dir).map_err(Error::MountRefused)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Err(why) = run(&["umount", "-l"], &self.dir) {
            eprintln!("tmpfs: {why}");
        }
    }
}
