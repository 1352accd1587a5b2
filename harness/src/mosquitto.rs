//! A real Mosquitto broker for tests: its own process, on a free loopback port, with its own
//! temporary directory for the config, the ACL, the persistence file and the log.
//!
//! It owns the process's life (start, graceful stop, crash, restart on the same port, freeze
//! and thaw, reload, kill on drop) and the generated `mosquitto.conf`: plain or TLS on the main
//! listener, optionally a second TLS listener on a port of its own, extra lines, or a whole
//! config of the test's (a shipped file with the port put in). It does not own certificates
//! (see [`crate::pki`]) nor any MQTT client (see [`crate::mqtt`]).
//!
//! Without the binary, [`Mosquitto::start`] prints `skipping: mosquitto not installed` and
//! returns `Ok(None)`, so the test can return early; with `RAPPORT_REQUIRE_MOSQUITTO=1` (set by
//! `.ci/run`) that skip is an error instead.
//!
//! All calls block (process spawn, a bounded wait for the ports); from async code a start or
//! restart holds the calling thread for a few tens of milliseconds. With a current-thread
//! runtime, client event loops pause meanwhile and simply see a slower broker.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;
use crate::process::{Signal, log_tail, reap, signal};
use crate::wait::{free_port, loopback};

/// The environment variable that turns a skip for a missing binary into an error.
pub const REQUIRE_ENV: &str = "RAPPORT_REQUIRE_MOSQUITTO";

/// How long a start waits for the ports to accept connections.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How long a graceful stop waits before it kills.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Fresh ports tried when a picked one is taken between picking and binding.
const START_ATTEMPTS: usize = 3;

/// A TLS listener's settings.
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

/// A whole config of the test's, written for the port picked (see [`Options::config_file`]).
#[derive(Clone)]
struct Custom(Arc<dyn Fn(u16) -> String + Send + Sync>);

impl std::fmt::Debug for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Custom(..)")
    }
}

/// How to configure the broker. `Options::default()`: plain TCP, anonymous clients allowed,
/// no persistence, no ACL.
#[derive(Debug, Clone)]
pub struct Options {
    allow_anonymous: bool,
    persistence: bool,
    tls: Option<Tls>,
    tls_listener: Option<Tls>,
    acl: Option<String>,
    extra: Vec<String>,
    custom: Option<Custom>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_anonymous: true,
            persistence: false,
            tls: None,
            tls_listener: None,
            acl: None,
            extra: Vec::new(),
            custom: None,
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

    /// Serve TLS instead of plain TCP on the main listener.
    #[must_use]
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A second listener, with TLS, on a port of its own ([`Mosquitto::tls_port`]), beside the
    /// main one (a cloud on mTLS while test cars publish in plain TCP).
    #[must_use]
    pub fn tls_listener(mut self, tls: Tls) -> Self {
        self.tls_listener = Some(tls);
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

    /// The test's own config instead of the harness's (every other option is then ignored):
    /// `write(port)` returns the text for the port picked, e.g. a shipped file whose
    /// `listener` line is replaced by `listener <port> 127.0.0.1`. The harness puts only
    /// `user root` in front (so a broker started as root can read the test's files).
    #[must_use]
    pub fn config_file(mut self, write: impl Fn(u16) -> String + Send + Sync + 'static) -> Self {
        self.custom = Some(Custom(Arc::new(write)));
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
    tls_port: Option<u16>,
    dir: TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port of 127.0.0.1 (and one more for
    /// [`Options::tls_listener`]) and waits until it accepts connections.
    ///
    /// Returns `Ok(None)` after printing `skipping: mosquitto not installed` when there is no
    /// `mosquitto` on PATH nor at `/usr/sbin/mosquitto`.
    ///
    /// # Errors
    /// [`Error::MosquittoMissing`] instead of the skip when `RAPPORT_REQUIRE_MOSQUITTO` is set
    /// (to anything but empty or `0`); [`Error::Io`] if the directory, config or process cannot
    /// be made; [`Error::MosquittoConfig`] for a path with a line break; [`Error::Exited`] or
    /// [`Error::NotReady`], with the end of the broker's log, if it does not come up.
    pub fn start(options: Options) -> Result<Option<Self>, Error> {
        let Some(binary) = find_binary() else {
            return skip_or_fail(require_from_env());
        };
        let dir = crate::files::temp_dir("rapport-mosquitto-", "mosquitto")?;
        if let Some(acl) = &options.acl {
            write(&dir.path().join("acl"), acl, "writing ACL")?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let tls_port = match options.tls_listener {
                Some(_) => Some(free_port()?),
                None => None,
            };
            let config = match &options.custom {
                Some(custom) => format!(
                    "# written by rapport_harness::mosquitto\nuser root\n{}\n",
                    (custom.0)(port)
                ),
                None => render_config(&options, dir.path(), port, tls_port)?,
            };
            write(&dir.path().join("mosquitto.conf"), &config, "writing")?;
            let ports: Vec<u16> = std::iter::once(port).chain(tls_port).collect();
            match spawn(&binary, dir.path(), &ports) {
                Ok(child) => {
                    return Ok(Some(Self {
                        binary,
                        child: Some(child),
                        port,
                        tls_port,
                        dir,
                    }));
                }
                // Someone took a port between our pick and mosquitto's bind: pick again.
                Err(Error::Exited { log, .. })
                    if attempt < START_ATTEMPTS && log.contains("Address already in use") => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The port of the main listener (stays the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The port of the second listener ([`Options::tls_listener`]), if there is one.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The broker's directory: `mosquitto.conf`, `acl`, `mosquitto.db`, `mosquitto.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The end of the broker's log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
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
        // Already gone: the deadline below ends in a reap.
        let _ = signal(&child, Signal::Term);
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => return reap(child).map(drop),
                Err(source) => {
                    let _ = reap(child);
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
            Some(child) => reap(child).map(drop),
            None => Ok(()),
        }
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing is answered.
    ///
    /// # Errors
    /// [`Error::Io`] if it is not running.
    pub fn pause(&self) -> Result<(), Error> {
        self.signal(Signal::Stop)
    }

    /// Thaws the broker after [`Mosquitto::pause`] (SIGCONT).
    ///
    /// # Errors
    /// [`Error::Io`] if it is not running.
    pub fn resume(&self) -> Result<(), Error> {
        self.signal(Signal::Cont)
    }

    /// Asks the broker to reload its config and the files it names, a CRL say (SIGHUP, what
    /// `systemctl reload mosquitto` sends); returns at once.
    ///
    /// # Errors
    /// [`Error::Io`] if it is not running.
    pub fn reload(&self) -> Result<(), Error> {
        self.signal(Signal::Hup)
    }

    /// Stops the broker gracefully if it runs, then starts it again on the same ports with the
    /// same configuration and directory, and waits until it accepts connections.
    ///
    /// # Errors
    /// As [`Mosquitto::stop`], and [`Error::Exited`] or [`Error::NotReady`] if it does not come
    /// back (for instance because another process took a port meanwhile).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop()?;
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        self.child = Some(spawn(&self.binary, self.dir.path(), &ports)?);
        Ok(())
    }

    fn signal(&self, sig: Signal) -> Result<(), Error> {
        match &self.child {
            Some(child) => signal(child, sig),
            None => Err(io_error(
                &self.binary,
                "signalling",
                std::io::Error::other("not running"),
            )),
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // SIGKILL ends a paused (SIGSTOPped) process too.
            let _ = reap(child);
        }
    }
}

fn write(path: &Path, text: &str, what: &'static str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Starts mosquitto on the config in `dir` and waits until every one of `ports` accepts
/// connections; on failure the process is gone and the error carries the end of its log.
fn spawn(binary: &Path, dir: &Path, ports: &[u16]) -> Result<Child, Error> {
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
    let what = || {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        format!("mosquitto on 127.0.0.1:{}", ports.join(" and :"))
    };
    let started = Instant::now();
    let mut waiting: Vec<u16> = ports.to_vec();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(Error::Exited {
                    what: what(),
                    status,
                    log: log_tail(&log_path),
                });
            }
            Ok(None) => {}
            Err(source) => {
                let _ = reap(child);
                return Err(io_error(binary, "waiting for", source));
            }
        }
        waiting.retain(|port| {
            TcpStream::connect_timeout(&loopback(*port), Duration::from_millis(200)).is_err()
        });
        if waiting.is_empty() {
            return Ok(child);
        }
        if started.elapsed() > READY_WAIT {
            let _ = reap(child);
            return Err(Error::NotReady {
                what: what(),
                waited: READY_WAIT,
                log: log_tail(&log_path),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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
    let on_path = path_var
        .map(|paths| {
            std::env::split_paths(paths)
                .map(|dir| dir.join("mosquitto"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(std::iter::once(fallback.to_path_buf()))
        .find(|candidate| candidate.is_file())
}

fn render_config(
    options: &Options,
    dir: &Path,
    port: u16,
    tls_port: Option<u16>,
) -> Result<String, Error> {
    let path = |what: &'static str, p: &Path| -> Result<String, Error> {
        let s = p.display().to_string();
        if s.contains(['\n', '\r']) {
            return Err(Error::MosquittoConfig { what, value: s });
        }
        Ok(s)
    };
    let mut lines = vec![
        "# written by rapport_harness::mosquitto".to_owned(),
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
            return Err(Error::MosquittoConfig {
                what: "config_line",
                value: line.clone(),
            });
        }
        lines.push(line.clone());
    }
    let mut listener = |port: u16, tls: Option<&Tls>| -> Result<(), Error> {
        lines.push(format!("listener {port} 127.0.0.1"));
        if let Some(tls) = tls {
            lines.push(format!("cafile {}", path("cafile", &tls.ca)?));
            lines.push(format!("certfile {}", path("certfile", &tls.cert)?));
            lines.push(format!("keyfile {}", path("keyfile", &tls.key)?));
            lines.push(format!("require_certificate {}", tls.require_certificate));
            lines.push(format!(
                "use_identity_as_username {}",
                tls.use_identity_as_username
            ));
        }
        Ok(())
    };
    listener(port, options.tls.as_ref())?;
    if let (Some(port), Some(tls)) = (tls_port, &options.tls_listener) {
        listener(port, Some(tls))?;
    }
    let mut config = lines.join("\n");
    config.push('\n');
    Ok(config)
}

#[cfg(test)]
mod tests;
