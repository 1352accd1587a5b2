//! Child processes of tests: the workspace's binaries (tests pass `env!("CARGO_BIN_EXE_…")`),
//! run through `RAPPORT_TEST_RUNNER` where tests are cross-built, with their stdout read line by
//! line (the "ready" lines) and their stderr in a log file; signals; the end of a log.
//!
//! Owns starting, signalling, killing and reaping a child and reading its output. Does not own
//! what a binary prints or means by it: [`crate::agent`] and [`crate::cloud`] know their ready
//! lines. A [`Process`] is killed (SIGKILL) and reaped when dropped.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// The environment variable with the runner put in front of workspace binaries
/// (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`, set by `.ci/run`).
pub const RUNNER_ENV: &str = "RAPPORT_TEST_RUNNER";

/// How much of a log an error carries, bytes.
const LOG_TAIL: u64 = 4_000;
/// How often a wait for an exit looks.
const STEP: Duration = Duration::from_millis(10);

/// A signal to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop cleanly.
    Term,
    /// SIGKILL: die now, as on a power loss.
    Kill,
    /// SIGSTOP: freeze (a broker that cannot answer).
    Stop,
    /// SIGCONT: thaw after [`Signal::Stop`].
    Cont,
    /// SIGHUP: reload (what `systemctl reload` sends Mosquitto).
    Hup,
}

impl Signal {
    fn raw(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Self::Term => S::TERM,
            Self::Kill => S::KILL,
            Self::Stop => S::STOP,
            Self::Cont => S::CONT,
            Self::Hup => S::HUP,
        }
    }
}

/// Sends `signal` to `child`.
///
/// # Errors
/// [`Error::Io`] if the process is gone or may not be signalled.
pub fn signal(child: &Child, signal: Signal) -> Result<(), Error> {
    send(child, signal, false)
}

/// Sends `signal` to the process group `child` leads (spawned with `process_group(0)`).
///
/// # Errors
/// [`Error::Io`] if the group is gone or may not be signalled.
pub fn signal_group(child: &Child, signal: Signal) -> Result<(), Error> {
    send(child, signal, true)
}

fn send(child: &Child, signal: Signal, group: bool) -> Result<(), Error> {
    let pid = rustix::process::Pid::from_child(child);
    let (sent, whom) = if group {
        (
            rustix::process::kill_process_group(pid, signal.raw()),
            "process group",
        )
    } else {
        (rustix::process::kill_process(pid, signal.raw()), "process")
    };
    sent.map_err(|errno| Error::Io {
        what: "signalling",
        path: format!("{whom} {}", child.id()).into(),
        source: errno.into(),
    })
}

/// SIGKILL and reap: `kill` fails only when the process is already gone; `wait` reaps it then.
///
/// # Errors
/// [`Error::Io`] if waiting fails.
pub fn reap(mut child: Child) -> Result<ExitStatus, Error> {
    let _ = child.kill();
    child.wait().map_err(|source| Error::Io {
        what: "waiting for",
        path: format!("process {}", child.id()).into(),
        source,
    })
}

/// The end of a log file (its last 4,000 bytes), for a failing test's message.
pub fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The CPU time process `pid` has used so far, user and system, its threads' (live and ended)
/// together: fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks of `getconf CLK_TCK`
/// (USER_HZ, 100 on every Linux ABI this project runs on, the fallback).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read (the process is gone) or does not parse.
pub fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let bad = |path: &Path, why: &str| Error::Io {
        what: "parsing",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned()),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        what: "reading",
        path: path.clone(),
        source,
    })?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad(&path, "no ')' after the command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let tick = |i: usize| -> Result<u64, Error> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(&path, "no utime/stime"))
    };
    let ticks = tick(14 - 3)? + tick(15 - 3)?;
    let per_second = clock_ticks();
    Ok(Duration::from_millis(ticks * 1000 / per_second))
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// A command that runs one of the workspace's binaries (`env!("CARGO_BIN_EXE_…")`) from a test.
///
/// Tests cross-built for ARM run under qemu-user, which cannot `exec` a foreign binary by
/// itself: `RAPPORT_TEST_RUNNER` (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`, set by
/// `.ci/run`) is put in front of it.
pub fn bin_command(bin: impl AsRef<OsStr>) -> Command {
    let runner = std::env::var(RUNNER_ENV).unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

/// A running child: its stdout lines come through a channel (a thread drains the pipe, so the
/// child never blocks on it), its stderr goes to a log file or nowhere.
#[derive(Debug)]
pub struct Process {
    what: String,
    /// `None` once killed or reaped.
    child: Option<Child>,
    log: Option<PathBuf>,
    lines: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `command` (stdin closed, stdout piped, stderr into `log` when given); `what`
    /// names it in errors.
    ///
    /// # Errors
    /// [`Error::Io`] if the log cannot be created or the program not started.
    pub fn spawn(what: &str, mut command: Command, log: Option<&Path>) -> Result<Self, Error> {
        let stderr = match log {
            Some(path) => Stdio::from(File::create(path).map_err(|source| Error::Io {
                what: "creating",
                path: path.to_path_buf(),
                source,
            })?),
            None => Stdio::null(),
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Io {
                what: "starting",
                path: command.get_program().into(),
                source,
            })?;
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let spawned = std::thread::Builder::new()
                .name(format!("{what}-stdout"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        // Nobody listening any more: keep draining all the same.
                        let _ = tx.send(line);
                    }
                });
            if let Err(source) = spawned {
                let _ = reap(child);
                return Err(Error::Io {
                    what: "starting a thread for",
                    path: what.into(),
                    source,
                });
            }
        }
        Ok(Self {
            what: what.to_owned(),
            child: Some(child),
            log: log.map(Path::to_path_buf),
            lines,
        })
    }

    /// Reads stdout lines until `pick` returns something, for at most `within`.
    ///
    /// # Errors
    /// [`Error::Exited`] if the output ends first (the process exited), [`Error::NotReady`]
    /// after `within`; both with the end of the log. The process keeps running after a
    /// `NotReady` (dropping it kills it).
    pub fn wait_line<T>(
        &mut self,
        within: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = pick(&line) {
                        return Ok(found);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait()?;
                    return Err(Error::Exited {
                        what: self.what.clone(),
                        status,
                        log: self.log_tail(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::NotReady {
                        what: self.what.clone(),
                        waited: within,
                        log: self.log_tail(),
                    });
                }
            }
        }
    }

    /// The name given at [`Process::spawn`].
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The child's process id (`None` once reaped).
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends `signal` (see [`signal`]).
    ///
    /// # Errors
    /// [`Error::Io`], also when it was already reaped.
    pub fn signal(&self, sig: Signal) -> Result<(), Error> {
        match &self.child {
            Some(child) => signal(child, sig),
            None => Err(self.gone()),
        }
    }

    /// SIGKILL, as a power loss would, and reap.
    ///
    /// # Errors
    /// [`Error::Io`] if waiting fails or it was already reaped.
    pub fn kill(&mut self) -> Result<ExitStatus, Error> {
        let child = self.child.take().ok_or_else(|| self.gone())?;
        reap(child)
    }

    /// Waits for it to exit by itself and reaps it.
    ///
    /// # Errors
    /// [`Error::Io`] if waiting fails or it was already reaped.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        let mut child = self.child.take().ok_or_else(|| self.gone())?;
        child.wait().map_err(|source| Error::Io {
            what: "waiting for",
            path: self.what.clone().into(),
            source,
        })
    }

    /// SIGTERM and a wait of at most `within`; then SIGKILL. Returns how it exited, `None`
    /// when it had to be killed.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be signalled or waited for.
    pub fn terminate(&mut self, within: Duration) -> Result<Option<ExitStatus>, Error> {
        let mut child = self.child.take().ok_or_else(|| self.gone())?;
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(Some(status));
        }
        if let Err(err) = signal(&child, Signal::Term) {
            let _ = reap(child);
            return Err(err);
        }
        let deadline = Instant::now() + within;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(STEP),
                Ok(None) => return reap(child).map(|_| None),
                Err(source) => {
                    let _ = reap(child);
                    return Err(Error::Io {
                        what: "waiting for",
                        path: self.what.clone().into(),
                        source,
                    });
                }
            }
        }
    }

    /// The log file given at [`Process::spawn`].
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The end of the log (empty without one).
    pub fn log_tail(&self) -> String {
        self.log.as_deref().map(log_tail).unwrap_or_default()
    }

    fn gone(&self) -> Error {
        Error::Io {
            what: "signalling",
            path: self.what.clone().into(),
            source: std::io::Error::other("the process was already reaped"),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = reap(child);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn a_ready_line_is_found_and_the_rest_drained() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut p = Process::spawn(
            "echoer",
            sh("echo starting; echo oops >&2; echo 'ready on 42'; sleep 30"),
            Some(&log),
        )
        .unwrap();
        let port: u16 = p
            .wait_line(Duration::from_secs(10), |l| {
                l.strip_prefix("ready on ")?.parse().ok()
            })
            .unwrap();
        assert_eq!(port, 42);
        assert!(p.is_running());
        assert_eq!(
            p.terminate(Duration::from_secs(5))
                .unwrap()
                .map(|s| s.success()),
            Some(false)
        );
        assert!(p.log_tail().contains("oops"));
    }

    #[test]
    fn an_exit_before_the_line_is_an_error_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut p =
            Process::spawn("quitter", sh("echo bad config >&2; exit 3"), Some(&log)).unwrap();
        let err = p
            .wait_line(Duration::from_secs(10), |_| Some(()))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Exited { log, .. } if log.contains("bad config")),
            "{err}"
        );
        let mut p = Process::spawn("sleeper", sh("sleep 30"), None).unwrap();
        let err = p
            .wait_line(Duration::from_millis(50), |_| Some(()))
            .unwrap_err();
        assert!(matches!(err, Error::NotReady { .. }), "{err}");
        assert!(!p.kill().unwrap().success());
    }

    #[test]
    fn the_runner_goes_in_front_of_the_binary() {
        // Only the shape: the environment is the process's, shared with other tests.
        let cmd = bin_command("/bin/true");
        if std::env::var_os(RUNNER_ENV).is_none() {
            assert_eq!(cmd.get_program(), "/bin/true");
        }
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let me = std::process::id();
        let before = cpu_time(me).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(cpu_time(me).unwrap() > before, "300 ms of spinning shows");
        assert!(cpu_time(u32::MAX).is_err());
    }
}
