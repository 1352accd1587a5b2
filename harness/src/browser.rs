//! A real headless browser for tests: Debian's `chromium`, driven through its `chromedriver`
//! over WebDriver (W3C), so a test sees the dashboard the way an operator's browser does —
//! scripts run, the Content-Security-Policy is enforced, the console is readable.
//!
//! Owns the two processes (chromedriver on a free loopback port in its own process group;
//! chromium started by it with a fresh profile in a temporary directory, headless, no
//! sandbox, no GPU, no QUIC, no first-run, background or sync traffic), one WebDriver
//! session, and the few commands tests need: open a URL, wait for an element, read text
//! and attributes, click, type, run a script, read the console, save a screenshot under
//! [`artifacts_dir`]. Dropping the [`Browser`] ends the session and kills both.
//!
//! Does not own what a page should show: tests compare it with the API themselves.
//!
//! Without chromium or chromedriver, [`Browser::start`] prints `skipping: …` and returns
//! `Ok(None)`, so a test can return early; with `RAPPORT_REQUIRE_BROWSER=1` (CI) the absence
//! is an error instead.
//!
//! The WebDriver client is a small one over hyper's plain-HTTP client (already in the tree
//! for the cloud) rather than the `fantoccini` crate: fantoccini 0.22 without its TLS
//! features still brings the `webdriver` crate and with it a second, older ICU stack
//! (`icu_segmenter` 1.5 and its data), a third `base64` and two `cookie` versions — about
//! twenty crates for a dozen JSON calls to a driver on loopback, which needs no TLS at all.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::Error;
use crate::process::{Signal, log_tail, reap, signal_group};
use crate::wait::free_port;

/// The environment variable that turns a skip for a missing browser into an error.
pub const REQUIRE_ENV: &str = "RAPPORT_REQUIRE_BROWSER";

/// Where chromium is, if not `/usr/bin/chromium` or on PATH.
pub const CHROMIUM_ENV: &str = "RAPPORT_CHROMIUM";
/// Where chromedriver is, if not `/usr/bin/chromedriver` or on PATH.
pub const DRIVER_ENV: &str = "RAPPORT_CHROMEDRIVER";

/// The key W3C WebDriver gives element references under.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver may take to answer `/status` after it started.
const READY_WAIT: Duration = Duration::from_secs(20);
/// How long one WebDriver command may take (a session start launches chromium).
const COMMAND_WAIT: Duration = Duration::from_secs(60);
/// How often the waits poll.
const POLL: Duration = Duration::from_millis(50);
/// Fresh ports tried when the picked one is taken between picking and binding.
const START_ATTEMPTS: usize = 3;
/// How often a command is tried on an element the page replaced meanwhile.
const STALE_TRIES: usize = 5;
/// The window, so screenshots are the same size everywhere.
const WINDOW: &str = "--window-size=1280,1000";

/// One browser console message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO`, …
    pub level: String,
    /// The text (a CSP violation names the directive it broke).
    pub message: String,
}

/// Where screenshots and other test artifacts go: `$CARGO_TARGET_DIR/artifacts`, or the
/// workspace's `target/artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let workspace = crate::files::workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    target.join("artifacts")
}

/// A headless chromium under chromedriver with one WebDriver session.
#[derive(Debug)]
pub struct Browser {
    /// `None` once killed.
    driver: Option<Child>,
    port: u16,
    session: String,
    http: Client<HttpConnector, Full<Bytes>>,
    /// The profile (`--user-data-dir`) and chromedriver's output; removed after the kill.
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless chromium session.
    ///
    /// Returns `Ok(None)` after printing `skipping: …` when chromium or chromedriver is not
    /// installed: not at `$RAPPORT_CHROMIUM` / `$RAPPORT_CHROMEDRIVER` when those are set,
    /// else neither at `/usr/bin/chromium` / `/usr/bin/chromedriver` nor on PATH.
    ///
    /// # Errors
    /// [`Error::BrowserMissing`] instead of the skip when `RAPPORT_REQUIRE_BROWSER` is set (to
    /// anything but empty or `0`); [`Error::Io`], [`Error::Exited`] or
    /// [`Error::NotReady`] when chromedriver cannot be started; a WebDriver error when
    /// the session (that is, chromium) cannot.
    pub async fn start() -> Result<Option<Self>, Error> {
        let require = std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        let Some(driver) = find_binary(DRIVER_ENV, "chromedriver", &["chromedriver"]) else {
            return skip(require, "chromedriver");
        };
        let Some(chromium) =
            find_binary(CHROMIUM_ENV, "chromium", &["chromium", "chromium-browser"])
        else {
            return skip(require, "chromium");
        };
        let dir = crate::files::temp_dir("rapport-browser-", "the browser profile")?;
        let http = Client::builder(TokioExecutor::new()).build_http();
        let mut attempt = 0;
        let (child, port) = loop {
            attempt += 1;
            let port = free_port()?;
            let child = spawn_driver(&driver, dir.path(), port)?;
            match wait_ready(&http, child, port, dir.path()).await {
                Ok(child) => break (child, port),
                // Someone took the port between our pick and chromedriver's bind.
                Err(Error::Exited { log, .. })
                    if attempt < START_ATTEMPTS && log.contains("ddress already in use") => {}
                Err(e) => return Err(e),
            }
        };
        let mut browser = Self {
            driver: Some(child),
            port,
            session: String::new(),
            http,
            dir,
        };
        let profile = browser.dir.path().join("profile");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            WINDOW.to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": chromium.to_string_lossy(),
                        "args": args,
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        });
        let value = browser
            .command(Method::POST, "/session", Some(capabilities))
            .await?;
        browser.session = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Http {
                command: "POST /session".into(),
                message: format!("no sessionId in {value}"),
            })?
            .to_owned();
        Ok(Some(browser))
    }

    /// Navigates to `url` and waits for the page's load event.
    ///
    /// # Errors
    /// A WebDriver error (an unreachable URL is one).
    pub async fn open(&self, url: &str) -> Result<(), Error> {
        self.session_command(Method::POST, "url", Some(json!({"url": url})))
            .await
            .map(drop)
    }

    /// The address bar's URL.
    ///
    /// # Errors
    /// A WebDriver error.
    pub async fn url(&self) -> Result<String, Error> {
        let v = self.session_command(Method::GET, "url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until an element matching `css` is on the page and displayed.
    ///
    /// # Errors
    /// [`Error::Timeout`], or a WebDriver error.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            for id in self.elements(css).await? {
                match self.element_get(&id, "displayed").await {
                    Ok(Value::Bool(true)) => return Ok(()),
                    // Replaced between finding and asking: look again.
                    Ok(_) | Err(Error::WebDriver { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{css:?} to be displayed"),
                    waited: timeout,
                    last: None,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the text of the first element matching `css` satisfies `pred`; returns it.
    ///
    /// # Errors
    /// [`Error::Timeout`] naming the last text seen, or a WebDriver error.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, Error> {
        poll_value(format!("the text of {css:?}"), timeout, pred, || async {
            self.text(css).await.map(Some)
        })
        .await
    }

    /// Waits until attribute `name` of the first element matching `css` satisfies `pred`.
    ///
    /// # Errors
    /// [`Error::Timeout`] naming the last value seen, or a WebDriver error.
    pub async fn wait_attr(
        &self,
        css: &str,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, Error> {
        poll_value(
            format!("attribute {name} of {css:?}"),
            timeout,
            pred,
            || self.attr(css, name),
        )
        .await
    }

    /// The rendered text of the first element matching `css` (empty if it is hidden).
    ///
    /// # Errors
    /// [`Error::NoSuchElement`], or a WebDriver error.
    pub async fn text(&self, css: &str) -> Result<String, Error> {
        let v = self.first(css, Method::GET, "text", None).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The rendered texts of every element matching `css`, in document order.
    ///
    /// # Errors
    /// A WebDriver error.
    pub async fn texts(&self, css: &str) -> Result<Vec<String>, Error> {
        let values = self.all(css, "text").await?;
        Ok(values
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// Attribute `name` of the first element matching `css` (`None`: the element has none).
    ///
    /// # Errors
    /// [`Error::NoSuchElement`], or a WebDriver error.
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>, Error> {
        let v = self
            .first(css, Method::GET, &format!("attribute/{name}"), None)
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Attribute `name` of every element matching `css`, in document order.
    ///
    /// # Errors
    /// A WebDriver error.
    pub async fn attrs(&self, css: &str, name: &str) -> Result<Vec<Option<String>>, Error> {
        let values = self.all(css, &format!("attribute/{name}")).await?;
        Ok(values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// How many elements match `css`.
    ///
    /// # Errors
    /// A WebDriver error.
    pub async fn count(&self, css: &str) -> Result<usize, Error> {
        Ok(self.elements(css).await?.len())
    }

    /// Clicks the first element matching `css` (an `<option>` click selects it).
    ///
    /// # Errors
    /// [`Error::NoSuchElement`], or a WebDriver error (e.g. not interactable).
    pub async fn click(&self, css: &str) -> Result<(), Error> {
        self.first(css, Method::POST, "click", Some(json!({})))
            .await
            .map(drop)
    }

    /// Types `text` into the first element matching `css` (`"\u{E007}"` is Enter).
    ///
    /// # Errors
    /// [`Error::NoSuchElement`], or a WebDriver error.
    pub async fn type_text(&self, css: &str, text: &str) -> Result<(), Error> {
        self.first(css, Method::POST, "value", Some(json!({"text": text})))
            .await
            .map(drop)
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its result.
    ///
    /// # Errors
    /// A WebDriver error (`javascript error` when the script throws).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, Error> {
        self.session_command(
            Method::POST,
            "execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The console messages since the last call (chromedriver's log endpoint).
    ///
    /// # Errors
    /// A WebDriver error.
    pub async fn console(&self) -> Result<Vec<ConsoleEntry>, Error> {
        let v = self
            .session_command(Method::POST, "se/log", Some(json!({"type": "browser"})))
            .await?;
        Ok(v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| ConsoleEntry {
                        level: e["level"].as_str().unwrap_or_default().to_owned(),
                        message: e["message"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs a test's `steps` in this browser and prints how long they took. When a step
    /// fails, prints what the page shows (its address, the text of each of `shown`, its
    /// console) and saves a screenshot `<failure>.png` before panicking with the error.
    ///
    /// # Panics
    /// With the steps' error.
    pub async fn run_steps<E: std::fmt::Display>(
        &self,
        failure: &str,
        shown: &[&str],
        steps: impl std::future::Future<Output = Result<(), E>>,
    ) {
        let started = Instant::now();
        if let Err(e) = steps.await {
            println!("url: {:?}", self.url().await);
            for css in shown {
                println!("{css}: {:?}", self.text(css).await);
            }
            println!("console: {:#?}", self.console().await);
            if let Ok(path) = self.screenshot(failure).await {
                println!("screenshot: {}", path.display());
            }
            panic!("{e}");
        }
        println!(
            "browser steps took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    /// Saves a PNG of the viewport as `<artifacts_dir>/<name>.png` and returns its path.
    ///
    /// # Errors
    /// A WebDriver error, undecodable base64, or the file cannot be written.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, Error> {
        let v = self
            .session_command(Method::GET, "screenshot", None)
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| Error::Http {
                command: "GET screenshot".into(),
                message: format!("not base64: {e}"),
            })?;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: "creating",
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|source| Error::Io {
            what: "writing",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// One command on the first element matching `css`. A page that re-renders can replace
    /// the element between finding it and the command (`stale element reference`): then it
    /// is found again, a few times.
    async fn first(
        &self,
        css: &str,
        method: Method,
        what: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            let id = self
                .elements(css)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::NoSuchElement(css.to_owned()))?;
            let path = format!("element/{id}/{what}");
            match self
                .session_command(method.clone(), &path, body.clone())
                .await
            {
                Err(Error::WebDriver { error, .. })
                    if error == "stale element reference" && tries < STALE_TRIES => {}
                other => return other,
            }
        }
    }

    /// `GET element/{id}/{what}` of every element matching `css`; if the page replaced one
    /// meanwhile, the whole list is read again (a few times), so the answer is one render's.
    async fn all(&self, css: &str, what: &str) -> Result<Vec<Value>, Error> {
        let mut tries = 0;
        'again: loop {
            tries += 1;
            let mut out = Vec::new();
            for id in self.elements(css).await? {
                match self.element_get(&id, what).await {
                    Ok(v) => out.push(v),
                    Err(Error::WebDriver { error, .. })
                        if error == "stale element reference" && tries < STALE_TRIES =>
                    {
                        continue 'again;
                    }
                    Err(e) => return Err(e),
                }
            }
            return Ok(out);
        }
    }

    async fn elements(&self, css: &str) -> Result<Vec<String>, Error> {
        let v = self
            .session_command(
                Method::POST,
                "elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(v.as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| e.get(ELEMENT_KEY).and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn element_get(&self, id: &str, what: &str) -> Result<Value, Error> {
        self.session_command(Method::GET, &format!("element/{id}/{what}"), None)
            .await
    }

    async fn session_command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let path = format!("/session/{}/{path}", self.session);
        self.command(method, &path, body).await
    }

    /// One WebDriver command: its `value`, or the error it carries.
    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        command(&self.http, self.port, method, path, body).await
    }
}

/// Reads a value with `read` every [`POLL`] until it satisfies `pred` (returned) or `timeout`
/// passes ([`Error::Timeout`] naming `what` and the last value seen). An element not
/// there yet, or a WebDriver error while the page changes, counts as "not yet".
async fn poll_value<F, Fut>(
    what: String,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
    mut read: F,
) -> Result<String, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, Error>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match read().await {
            Ok(Some(v)) if pred(&v) => return Ok(v),
            Ok(v) => last = v,
            Err(Error::NoSuchElement(_) | Error::WebDriver { .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what,
                waited: timeout,
                last,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn command(
    http: &Client<HttpConnector, Full<Bytes>>,
    port: u16,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let name = format!("{method} {path}");
    let failed = |message: String| Error::Http {
        command: name.clone(),
        message,
    };
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    let bytes = match body {
        Some(b) => {
            request = request.header("content-type", "application/json; charset=utf-8");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(bytes))
        .map_err(|e| failed(e.to_string()))?;
    let exchange = async {
        let response = http
            .request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        Ok::<_, Error>((status, body))
    };
    let (status, body) = tokio::time::timeout(COMMAND_WAIT, exchange)
        .await
        .map_err(|_| failed(format!("no answer within {COMMAND_WAIT:?}")))??;
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        failed(format!(
            "{status}, not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    })?;
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    Err(Error::WebDriver {
        command: name,
        error: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
        message: value["message"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(2_000)
            .collect(),
    })
}

impl Drop for Browser {
    /// Ends the session (chromedriver quits chromium and its helpers), then kills
    /// chromedriver's process group, which takes any chromium process still left with it.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            delete_session(self.port, &self.session);
        }
        if let Some(child) = self.driver.take() {
            kill_group(&child);
            let _ = reap(child);
        }
    }
}

/// `DELETE /session/{id}` over a plain blocking socket (Drop cannot await), bounded.
fn delete_session(port: u16, session: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
}

/// SIGKILL to the process group chromedriver leads (it was spawned as its leader).
fn kill_group(child: &Child) {
    let _ = signal_group(child, Signal::Kill);
}

fn skip(require: bool, what: &'static str) -> Result<Option<Browser>, Error> {
    if require {
        return Err(Error::BrowserMissing(what));
    }
    println!("skipping: {what} not installed (apt-get install chromium chromium-driver)");
    Ok(None)
}

/// The path in `env` if that is set (missing if it is no file), else `/usr/bin/<name>`, else
/// the first of `names` on PATH.
fn find_binary(env: &str, name: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let fixed = Path::new("/usr/bin").join(name);
    if fixed.is_file() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn spawn_driver(binary: &Path, dir: &Path, port: u16) -> Result<Child, Error> {
    use std::os::unix::process::CommandExt as _;
    let log_path = dir.join("chromedriver.log");
    let log = std::fs::File::create(&log_path).map_err(|source| Error::Io {
        what: "creating",
        path: log_path.clone(),
        source,
    })?;
    let err = log.try_clone().map_err(|source| Error::Io {
        what: "opening",
        path: log_path,
        source,
    })?;
    Command::new(binary)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        // Its own group, so Drop can kill chromedriver and every chromium it started at once.
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Io {
            what: "starting",
            path: binary.to_path_buf(),
            source,
        })
}

async fn wait_ready(
    http: &Client<HttpConnector, Full<Bytes>>,
    mut child: Child,
    port: u16,
    dir: &Path,
) -> Result<Child, Error> {
    let deadline = Instant::now() + READY_WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Exited {
                what: format!("chromedriver on 127.0.0.1:{port}"),
                status,
                log: log_tail(&dir.join("chromedriver.log")),
            });
        }
        if let Ok(v) = command(http, port, Method::GET, "/status", None).await
            && v["ready"].as_bool() == Some(true)
        {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            kill_group(&child);
            let _ = reap(child);
            return Err(Error::NotReady {
                what: format!("chromedriver on 127.0.0.1:{port}"),
                waited: READY_WAIT,
                log: log_tail(&dir.join("chromedriver.log")),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
