//! Where tests and benches find real-world data that is not the project's to ship.
//!
//! The files live in the `shared/data` folder beside the checkout (`../shared/data` from the
//! workspace root); they are read from there and never copied into the project. Where the
//! folder is absent, callers skip with a line saying so.

use std::path::{Path, PathBuf};

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

/// A command that runs one of the workspace's binaries (`env!("CARGO_BIN_EXE_…")`) from a test.
///
/// Tests cross-built for ARM run under qemu-user, which cannot `exec` a foreign binary by
/// itself: `RAPPORT_TEST_RUNNER` (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`, set by
/// `.ci/run`) is put in front of it.
pub fn bin_command(bin: &str) -> std::process::Command {
    let runner = std::env::var("RAPPORT_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut cmd = std::process::Command::new(first);
            cmd.args(words).arg(bin);
            cmd
        }
        None => std::process::Command::new(bin),
    }
}

/// A file of this repository, by its path from the repository root (configs, fixtures).
pub fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Writes the example `config/passenger.toml` into `dir` as `agent.toml`, with its DBC path
/// made absolute and each `(from, to)` replacement applied, for tests that need a variant.
///
/// # Errors
/// Reading or writing fails, or a `from` text is not in the example (it changed: the test
/// must follow).
pub fn passenger_config(dir: &Path, replacements: &[(&str, &str)]) -> std::io::Result<PathBuf> {
    let mut text = std::fs::read_to_string(repo_file("config/passenger.toml"))?;
    let dbc = repo_file("agent/fixtures/passenger.dbc");
    let dbc_line = format!("file = {:?}", dbc.display().to_string());
    let mut all = vec![(
        "file = \"../agent/fixtures/passenger.dbc\"",
        dbc_line.as_str(),
    )];
    all.extend_from_slice(replacements);
    for (from, to) in all {
        if !text.contains(from) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("config/passenger.toml no longer contains {from:?}"),
            ));
        }
        text = text.replace(from, to);
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join("agent.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}
