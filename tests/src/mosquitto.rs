//! A real Mosquitto broker for tests: its own process, on a free loopback port, with its own
//! temporary directory for the config, the ACL, the persistence file and the log.
//!
//! It owns the process's life (start, graceful stop, crash, restart on the same port, kill on
//! drop) and the generated `mosquitto.conf`. It does not own certificates (see [`crate::pki`])
//! nor any MQTT client: tests bring their own.
//!
//! Without the binary, [`Mosquitto::start`] prints `skipping: mosquitto not installed` and
//! returns `Ok(None)`, so the test can return early; with `RAPPORT_REQUIRE_MOSQUITTO=1` (set by
//! `.ci/run`) that skip is an error instead.
//!
//! All calls block (process spawn, a bounded wait for the port); from async code a start or
//! restart holds the calling thread for a few tens of milliseconds. With a current-thread
//! runtime, client event loops pause meanwhile and simply see a slower broker.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;

/// The environment variable that turns a skip for a missing binary into an error.
pub const REQUIRE_ENV: &str = "RAPPORT_REQUIRE_MOSQUITTO";

/// How long a start waits for the port to accept connections.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How long a graceful stop waits before it kills.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Fresh ports tried when the picked one is taken between picking and binding.
const START_ATTEMPTS: usize = 3;
/// How much of the log an error carries.
const LOG_TAIL: u64 = 4_000;

/// The broker's TLS listener settings.
#[derive(Debug, Clone)]
pub struct Tls {
    /// CA that client certificates must chain to (`cafile`).
    pub ca: PathBuf,
    /// The broker's certificate (`certfile`).
    pub cert: PathBuf,
    /// The broker's private key (`keyfile`).
    pub key: PathBuf,
    /// `require_certificate`: reject clients without a certificate from `ca`.
    pub require_certificate: bool,
    /// `use_identity_as_username`: the client certificate's CN becomes the MQTT username,
    /// which ACL `pattern` lines see as `%u`.
    pub use_identity_as_username: bool,
}

impl Tls {
    /// mTLS as rapport runs it: a client certificate is required and its CN is the username.
    pub fn mutual(ca: &Path, cert: &Path, key: &Path) -> Self {
        Self {
            ca: ca.to_path_buf(),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            require_certificate: true,
            use_identity_as_username: true,
        }
    }
}

/// How to configure the broker. `Options::default()`: plain TCP, anonymous clients allowed,
/// no persistence, no ACL.
#[derive(Debug, Clone)]
pub struct Options {
    allow_anonymous: bool,
    persistence: bool,
    tls: Option<Tls>,
    acl: Option<String>,
    extra: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            persistence: false,
            tls: None,
            acl: None,
            extra: Vec::new(),
        }
    }
}

impl Options {
    /// `allow_anonymous` (default true). Set false with TLS identities or an ACL.
    #[must_use]
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// `persistence` (default false). When on, the persistence file lives in the broker's
    /// directory, is written on a graceful [`Mosquitto::stop`] and read on
    /// [`Mosquitto::restart`], so persistent sessions and their queued QoS 1 messages survive.
    #[must_use]
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// Serve TLS instead of plain TCP on the listener.
    #[must_use]
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// An ACL: the text of a Mosquitto `acl_file` (the harness writes it as `acl` in the
    /// broker's directory). Without one every client may read and write everything.
    #[must_use]
    pub fn acl(mut self, acl: impl Into<String>) -> Self {
        self.acl = Some(acl.into());
        self
    }

    /// One more line for `mosquitto.conf`, written after the harness's global settings and
    /// before the listener (e.g. `max_queued_messages 100000`).
    #[must_use]
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra.push(line.into());
        self
    }
}

/// A running (or stopped) Mosquitto process owned by a test. Dropping it kills the process and
/// removes its directory.
#[derive(Debug)]
pub struct Mosquitto {
    binary: PathBuf,
    /// `None` once stopped or crashed. `Drop` kills it before `dir` is removed.
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port of 127.0.0.1 and waits until it accepts connections.
    ///
    /// Returns `Ok(None)` after printing `skipping: mosquitto not installed` when there is no
    /// `mosquitto` on PATH nor at `/usr/sbin/mosquitto`.
    ///
    /// # Errors
    /// [`Error::MosquittoMissing`] instead of the skip when `RAPPORT_REQUIRE_MOSQUITTO` is set
    /// (to anything but empty or `0`); [`Error::Io`] if the directory, config or process cannot
    /// be made; [`Error::Config`] for a path with a line break; [`Error::Exited`] or
    /// [`Error::NotReady`], with the end of the broker's log, if it does not come up.
    pub fn start(options: Options) -> Result<Option<Self>, Error> {
        let Some(binary) = find_binary() else {
            return skip_or_fail(require_from_env());
        };
        let dir = tempfile::Builder::new()
            .prefix("rapport-mosquitto-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating a directory for",
                path: "mosquitto".into(),
                source,
            })?;
        if let Some(acl) = &options.acl {
            let path = dir.path().join("acl");
            std::fs::write(&path, acl).map_err(|source| Error::Io {
                what: "writing ACL",
                path,
                source,
            })?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let config = render_config(&options, dir.path(), port)?;
            let path = dir.path().join("mosquitto.conf");
            std::fs::write(&path, config).map_err(|source| Error::Io {
                what: "writing",
                path,
                source,
            })?;
            match spawn(&binary, dir.path(), port) {
                Ok(child) => {
                    return Ok(Some(Self {
                        binary,
                        child: Some(child),
                        port,
                        dir,
                    }));
                }
                // Someone took the port between our pick and mosquitto's bind: pick another.
                Err(Error::Exited { log, .. })
                    if attempt < START_ATTEMPTS && log.contains("Address already in use") => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The port it listens on (stays the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The broker's directory: `mosquitto.conf`, `acl`, `mosquitto.db`, `mosquitto.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    /// The end of the broker's log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        read_tail(&self.log_path())
    }

    /// Whether the process is running (started and neither stopped nor crashed nor exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Stops the broker gracefully (SIGTERM, so it writes its persistence file), waits for it,
    /// and kills it if it has not exited within 5 s. Does nothing when it is not running.
    ///
    /// # Errors
    /// [`Error::Io`] if waiting for the process fails.
    pub fn stop(&mut self) -> Result<(), Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SIGTERM through the shell's `kill` builtin: std offers only SIGKILL and this crate
        // forbids `unsafe`. If the shell cannot be run, the deadline below ends in SIGKILL.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", child.id()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => return self.reap(child),
                Err(source) => {
                    let _ = kill(child);
                    return Err(io_error(&self.binary, "waiting for", source));
                }
            }
        }
    }

    /// Kills the broker abruptly (SIGKILL), as a crash would: with persistence on, whatever it
    /// changed since its last save (a graceful stop, or the 30-minute autosave) is lost.
    ///
    /// # Errors
    /// [`Error::Io`] if waiting for the process fails.
    pub fn crash(&mut self) -> Result<(), Error> {
        match self.child.take() {
            Some(child) => self.reap(child),
            None => Ok(()),
        }
    }

    /// Stops the broker gracefully if it runs, then starts it again on the same port with the
    /// same configuration and directory, and waits until it accepts connections.
    ///
    /// # Errors
    /// As [`Mosquitto::stop`], and [`Error::Exited`] or [`Error::NotReady`] if it does not come
    /// back (for instance because another process took the port meanwhile).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop()?;
        self.child = Some(spawn(&self.binary, self.dir.path(), self.port)?);
        Ok(())
    }

    fn reap(&self, child: Child) -> Result<(), Error> {
        kill(child).map_err(|source| io_error(&self.binary, "waiting for", source))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = kill(child);
        }
    }
}

/// Starts mosquitto on the config in `dir` and waits until `port` accepts connections; on
/// failure the process is gone and the error carries the end of its log.
fn spawn(binary: &Path, dir: &Path, port: u16) -> Result<Child, Error> {
    let log_path = dir.join("mosquitto.log");
    let open_log = || {
        File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| Error::Io {
                what: "opening",
                path: log_path.clone(),
                source,
            })
    };
    let mut child = Command::new(binary)
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .spawn()
        .map_err(|source| io_error(binary, "starting", source))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(Error::Exited {
                    port,
                    status,
                    log: read_tail(&log_path),
                });
            }
            Ok(None) => {}
            Err(source) => {
                let _ = kill(child);
                return Err(io_error(binary, "waiting for", source));
            }
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if started.elapsed() > READY_WAIT {
            let _ = kill(child);
            return Err(Error::NotReady {
                port,
                waited: READY_WAIT,
                log: read_tail(&log_path),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILL and reap. `kill` fails only when the process is already gone; `wait` reaps it then.
fn kill(mut child: Child) -> std::io::Result<()> {
    let _ = child.kill();
    child.wait().map(drop)
}

fn io_error(binary: &Path, what: &'static str, source: std::io::Error) -> Error {
    Error::Io {
        what,
        path: binary.to_path_buf(),
        source,
    }
}

fn require_from_env() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

fn skip_or_fail(require: bool) -> Result<Option<Mosquitto>, Error> {
    if require {
        return Err(Error::MosquittoMissing);
    }
    println!("skipping: mosquitto not installed");
    Ok(None)
}

fn find_binary() -> Option<PathBuf> {
    find_binary_in(
        std::env::var_os("PATH").as_deref(),
        Path::new("/usr/sbin/mosquitto"),
    )
}

fn find_binary_in(path_var: Option<&std::ffi::OsStr>, fallback: &Path) -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = path_var
        .map(|paths| {
            std::env::split_paths(paths)
                .map(|dir| dir.join("mosquitto"))
                .collect()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(std::iter::once(fallback.to_path_buf()))
        .find(|candidate| candidate.is_file())
}

/// A port that was free a moment ago: bind port 0, read it, release it. Mosquitto sets
/// `SO_REUSEADDR`, and a lost race is retried by [`Mosquitto::start`].
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            what: "binding",
            path: "127.0.0.1:0".into(),
            source,
        })
}

fn render_config(options: &Options, dir: &Path, port: u16) -> Result<String, Error> {
    let path = |what: &'static str, p: &Path| -> Result<String, Error> {
        let s = p.display().to_string();
        if s.contains(['\n', '\r']) {
            return Err(Error::Config { what, value: s });
        }
        Ok(s)
    };
    let mut lines = vec![
        "# written by rapport_testbed::mosquitto".to_owned(),
        // Run as root (CI containers), mosquitto would drop to user `mosquitto`, who cannot
        // read this 0700 directory. It ignores `user` when not run as root.
        "user root".to_owned(),
        "log_dest stderr".to_owned(),
        "log_type error".to_owned(),
        "log_type warning".to_owned(),
        "log_type notice".to_owned(),
        "log_type information".to_owned(),
        format!("allow_anonymous {}", options.allow_anonymous),
    ];
    if options.persistence {
        lines.push("persistence true".to_owned());
        lines.push(format!("persistence_location {}/", path("directory", dir)?));
        lines.push("persistence_file mosquitto.db".to_owned());
    } else {
        lines.push("persistence false".to_owned());
    }
    if options.acl.is_some() {
        lines.push(format!("acl_file {}", path("acl_file", &dir.join("acl"))?));
    }
    for line in &options.extra {
        if line.contains(['\n', '\r']) {
            return Err(Error::Config {
                what: "config_line",
                value: line.clone(),
            });
        }
        lines.push(line.clone());
    }
    lines.push(format!("listener {port} 127.0.0.1"));
    if let Some(tls) = &options.tls {
        lines.push(format!("cafile {}", path("cafile", &tls.ca)?));
        lines.push(format!("certfile {}", path("certfile", &tls.cert)?));
        lines.push(format!("keyfile {}", path("keyfile", &tls.key)?));
        lines.push(format!("require_certificate {}", tls.require_certificate));
        lines.push(format!(
            "use_identity_as_username {}",
            tls.use_identity_as_username
        ));
    }
    let mut config = lines.join("\n");
    config.push('\n');
    Ok(config)
}

fn read_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_a_skip_unless_required() {
        assert!(matches!(skip_or_fail(false), Ok(None)));
        assert!(matches!(skip_or_fail(true), Err(Error::MosquittoMissing)));
        let message = Error::MosquittoMissing.to_string();
        assert!(message.contains("mosquitto not installed"), "{message}");
        assert!(message.contains(REQUIRE_ENV), "{message}");
    }

    #[test]
    fn the_binary_is_looked_for_on_path_then_at_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("none");
        let fallback = dir.path().join("sbin-mosquitto");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let path_var = std::env::join_paths([&nowhere, &bin]).unwrap();

        assert_eq!(find_binary_in(Some(&path_var), &fallback), None);
        assert_eq!(find_binary_in(None, &fallback), None);
        std::fs::write(&fallback, "").unwrap();
        assert_eq!(
            find_binary_in(Some(&path_var), &fallback),
            Some(fallback.clone())
        );
        std::fs::write(bin.join("mosquitto"), "").unwrap();
        assert_eq!(
            find_binary_in(Some(&path_var), &fallback),
            Some(bin.join("mosquitto"))
        );
    }

    #[test]
    fn the_config_has_the_listener_after_the_global_settings_and_tls_on_the_listener() {
        let dir = Path::new("/tmp/b");
        let plain = render_config(&Options::default(), dir, 4242).unwrap();
        assert!(plain.contains("\nallow_anonymous true\n"), "{plain}");
        assert!(plain.contains("\npersistence false\n"), "{plain}");
        assert!(plain.ends_with("listener 4242 127.0.0.1\n"), "{plain}");
        assert!(
            !plain.contains("acl_file") && !plain.contains("cafile"),
            "{plain}"
        );

        let options = Options::default()
            .allow_anonymous(false)
            .persistence(true)
            .acl("pattern write a/%u")
            .config_line("max_queued_messages 5")
            .tls(Tls::mutual(
                Path::new("/p/ca.crt"),
                Path::new("/p/server.crt"),
                Path::new("/p/server.key"),
            ));
        let config = render_config(&options, dir, 4242).unwrap();
        let expected_order = [
            "allow_anonymous false",
            "persistence true",
            "persistence_location /tmp/b/",
            "persistence_file mosquitto.db",
            "acl_file /tmp/b/acl",
            "max_queued_messages 5",
            "listener 4242 127.0.0.1",
            "cafile /p/ca.crt",
            "certfile /p/server.crt",
            "keyfile /p/server.key",
            "require_certificate true",
            "use_identity_as_username true",
        ];
        let positions: Vec<_> = expected_order
            .iter()
            .map(|line| config.find(&format!("{line}\n")).unwrap_or(usize::MAX))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{config}");
        assert!(!positions.contains(&usize::MAX), "{config}");

        let injected = Options::default().config_line("a\nallow_anonymous true");
        assert!(matches!(
            render_config(&injected, dir, 1),
            Err(Error::Config { .. })
        ));
    }
}
