//! The harness's one error type: what its pieces (files, processes, brokers, certificates, the
//! browser, the partner receiver, typed configs) can fail with. It does not cover what a test
//! asserts: the waiting helpers of [`crate::wait`] panic naming what they waited for.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the harness can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing certificate", "starting", ...).
        what: &'static str,
        /// The file, directory, program or address concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rcgen could not generate a key or a certificate.
    #[error("generating {what}: {source}")]
    Pki {
        /// Which key or certificate.
        what: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// An identity that cannot be a certificate subject and a file name at once.
    #[error("identity {0:?} is not usable: use 1-64 characters from A-Z a-z 0-9 . _ -")]
    Identity(String),
    /// The `mosquitto` binary is missing while `RAPPORT_REQUIRE_MOSQUITTO` asks for it.
    #[error(
        "mosquitto not installed (looked for `mosquitto` on PATH and at /usr/sbin/mosquitto) \
         and RAPPORT_REQUIRE_MOSQUITTO is set: install it (apt-get install mosquitto)"
    )]
    MosquittoMissing,
    /// No PostgreSQL at 127.0.0.1:5432 while `RAPPORT_REQUIRE_POSTGRES` asks for one.
    #[error(
        "no PostgreSQL at 127.0.0.1:5432 ({0}) and RAPPORT_REQUIRE_POSTGRES is set: install \
         and start it (apt-get install postgresql; trust auth on loopback for user postgres)"
    )]
    PostgresMissing(String),
    /// `mount -t tmpfs` was refused while `RAPPORT_REQUIRE_MOUNT` asks for it.
    #[error("cannot mount a tmpfs ({0}) and RAPPORT_REQUIRE_MOUNT is set: run the tests as root")]
    MountRefused(String),
    /// The PostgreSQL server refused a test's database work.
    #[error("postgres: {0}")]
    Postgres(String),
    /// chromium or chromedriver is missing while `RAPPORT_REQUIRE_BROWSER` asks for them.
    #[error(
        "{0} not installed and RAPPORT_REQUIRE_BROWSER is set: install it \
         (apt-get install chromium chromium-driver)"
    )]
    BrowserMissing(&'static str),
    /// A value that would break the generated `mosquitto.conf` (a line break in a path).
    #[error("{what} cannot go into mosquitto.conf: {value:?}")]
    MosquittoConfig {
        /// Which setting.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A child process (a broker, chromedriver, a workspace binary) exited before it was ready.
    #[error("{what} exited before it was ready ({status}); the end of its log:\n{log}")]
    Exited {
        /// The process ("mosquitto on 127.0.0.1:4242", "rapport-agent").
        what: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// A child process was not ready within the bounded wait.
    #[error("{what} was not ready within {waited:?}; the end of its log:\n{log}")]
    NotReady {
        /// The process.
        what: String,
        /// How long the harness waited.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
    /// The HTTP exchange with chromedriver failed (connection, timeout, not JSON).
    #[error("WebDriver {command}: {message}")]
    Http {
        /// The command (`POST /session/…/url`).
        command: String,
        /// What went wrong.
        message: String,
    },
    /// chromedriver answered with a WebDriver error.
    #[error("WebDriver {command}: {error}: {message}")]
    WebDriver {
        /// The command.
        command: String,
        /// The W3C error code (`no such element`, `javascript error`, …).
        error: String,
        /// Its message.
        message: String,
    },
    /// No element matches a CSS selector.
    #[error("no element matches {0:?}")]
    NoSuchElement(String),
    /// A browser wait ran out.
    #[error("timed out after {waited:?} waiting for {what}{}", last.as_ref().map(|l| format!(" (last seen: {l})")).unwrap_or_default())]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The last value seen, if any.
        last: Option<String>,
    },
    /// The partner receiver's secret is not `whsec_<base64>`.
    #[error("partner receiver: secret {0}")]
    WebhookSecret(String),
    /// The partner receiver's socket could not be opened.
    #[error("partner receiver: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An MQTT client of a test could not connect or subscribe.
    #[error("MQTT client {id}: {message}")]
    Mqtt {
        /// Its client id.
        id: String,
        /// What went wrong.
        message: String,
    },
    /// A cloud in this process did not start or come up as a test needs it.
    #[error("cloud: {0}")]
    Cloud(String),
    /// A network namespace or its veth link could not be made or changed
    /// ([`crate::netns`]).
    #[error("network namespace: {0}")]
    Netns(String),
    /// A config (an example of `config/`, or one a test built) did not load or validate.
    #[error("config: {0}")]
    Config(String),
}
