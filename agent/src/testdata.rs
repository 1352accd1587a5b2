//! Where tests and benches find real-world data that is not the project's to ship.
//!
//! The files live in the `shared/data` folder beside the checkout (`../shared/data` from the
//! workspace root); they are read from there and never copied into the project. Where the
//! folder is absent, callers skip with a line saying so.

use std::path::PathBuf;

/// The `shared/data` folder beside the workspace, if present. `RAPPORT_SHARED_DATA` overrides.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RAPPORT_SHARED_DATA") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
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
