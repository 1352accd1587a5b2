//! Where tests and benches find files: the repository's own (example configs, fixtures) and
//! real-world data that is not the project's to ship.
//!
//! The real-world files live in the `shared/data` folder beside the checkout (`../shared/data`
//! from the workspace root); they are read from there and never copied into the project. Where
//! the folder is absent, [`shared_data_file`] prints a line saying so and the caller skips.
//!
//! Owns paths, temporary directories ([`temp_dir`]) and writing a typed config as TOML
//! ([`write_toml`]); it reads nothing but a directory's sizes ([`dir_size`]). Unit tests inside the agent and the cloud may use these:
//! none takes an agent or cloud type.

use std::path::{Path, PathBuf};

use crate::Error;

/// The environment variable that names the shared-data folder instead of `../shared/data`.
pub const SHARED_DATA_ENV: &str = "RAPPORT_SHARED_DATA";

/// The workspace root (the folder of the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// A file of this repository, by its path from the repository root (configs, fixtures).
pub fn repo_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// The `shared/data` folder beside the workspace, if present. `RAPPORT_SHARED_DATA` overrides.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(SHARED_DATA_ENV) {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let dir = workspace_root().join("../shared/data");
    dir.is_dir().then_some(dir)
}

/// A file under `shared/data`, or `None` after printing why the caller should skip.
pub fn shared_data_file(relative: &str) -> Option<PathBuf> {
    match shared_data_dir() {
        Some(dir) if dir.join(relative).is_file() => Some(dir.join(relative)),
        _ => {
            println!("skipping: ../shared/data/{relative} not found beside the checkout");
            None
        }
    }
}

/// The bytes of every file below `path` (0 for what cannot be read): a store's size on disk.
pub fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| {
                    let p = entry.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        entry.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Writes `value` as TOML to `dir/name` (`dir` made if missing); returns the file's path.
///
/// # Errors
/// [`Error::Config`] if it does not serialize, [`Error::Io`] if it cannot be written.
pub fn write_toml(value: &impl serde::Serialize, dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    let text = toml::to_string(value).map_err(|e| config_error(&path, e))?;
    let io = |what, source| Error::Io {
        what,
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io("creating the folder of", e))?;
    std::fs::write(&path, text).map_err(|e| io("writing", e))?;
    Ok(path)
}

/// A fresh temporary directory `<prefix>…` for `what` (removed when dropped).
///
/// # Errors
/// [`Error::Io`] naming `what`.
pub fn temp_dir(prefix: &str, what: &str) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| Error::Io {
            what: "creating a directory for",
            path: what.into(),
            source,
        })
}

/// [`Error::Config`] naming `file`.
pub(crate) fn config_error(file: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repo_files_are_found_from_the_workspace_root() {
        assert!(repo_file("config/passenger.toml").is_file());
        assert!(repo_file("Cargo.toml").is_file());
    }

    #[test]
    fn dir_size_adds_up_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 10]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 5]).unwrap();
        assert_eq!(dir_size(dir.path()), 15);
        assert_eq!(dir_size(&dir.path().join("none")), 0);
    }
}
