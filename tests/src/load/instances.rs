//! The cloud instances of a load run: one or several `rapport-cloud` processes on one store,
//! each with its own config, client id, API port and log; what each applied; killing one
//! and starting it again (same config); and noticing one that exited by itself.
//!
//! Owns the instances' slots ([`Instances`]): the running handle, the counters each
//! incarnation last reported (`/metrics`, read by [`Instances::watch`] every
//! [`WATCH_EVERY`]), kills and restarts, and the moments an instance said its store was down
//! or up again (`rapport_store_up`). What an instance applied is the sum over its
//! incarnations of the last counters each reported: exact without kills, a lower bound for
//! an instance that was killed (what it applied after its last report is not counted; the
//! store's own count, [`super::audit`], is exact). Does not own the configs
//! ([`super::cloud`]) nor when to kill ([`super::chaos`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::LoadError;
use super::cloud::{self, CloudHandle, CloudMode, IngestCounters};

/// How often every instance's `/metrics` is read.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long one read of `/metrics` may take (an instance whose store is down may be slow).
const SCRAPE_WAIT: Duration = Duration::from_secs(2);

/// Where an instance is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Running (or starting again).
    Running,
    /// Killed on purpose; restarting or to be restarted.
    Killed,
    /// Exited by itself: when (from the start of the steady window) and the end of its log.
    Exited { at: Duration, log: String },
}

/// One instance.
struct Slot {
    handle: Option<CloudHandle>,
    config: PathBuf,
    log: PathBuf,
    client_id: String,
    api: Option<SocketAddr>,
    state: State,
    /// The last counters of each dead incarnation, summed.
    applied_before: u64,
    duplicates_before: u64,
    outages_before: u64,
    retries_before: u64,
    /// The current incarnation's last counters.
    last: IngestCounters,
    /// Starts (the first one included).
    starts: u32,
    kills: u32,
    /// Moments it reported its store down / up again (from the start of the steady window).
    store_down: Vec<Duration>,
    store_up: Vec<Duration>,
}

/// What an instance did, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFigures {
    /// 1, 2, 3 …
    pub number: usize,
    /// Its MQTT client id.
    pub client_id: String,
    /// Records applied (summed over its incarnations; a lower bound when it was killed).
    pub applied: u64,
    /// Duplicates it skipped (same sum).
    pub duplicates: u64,
    /// Store outages it counted (`rapport_store_outages_total`, same sum).
    pub store_outages: u64,
    /// Ingest groups it tried again on an unavailable store (same sum).
    pub store_retries: u64,
    /// Times it was SIGKILLed.
    pub kills: u32,
    /// Times it was started.
    pub starts: u32,
    /// `Some` when it exited by itself: when and the end of its log.
    pub exited: Option<(Duration, String)>,
    /// When it reported its store down, and up again (from the start of the steady window).
    pub store_down: Vec<Duration>,
    /// See `store_down`.
    pub store_up: Vec<Duration>,
    /// Its log file.
    pub log: PathBuf,
}

/// Every instance of a run; cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct Instances {
    slots: Arc<Vec<Mutex<Slot>>>,
    mode: CloudMode,
    embedded: bool,
    /// What the moments it notes are measured from ([`Instances::set_origin`]).
    origin: Arc<Mutex<Instant>>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Instances {
    /// Starts one instance per config, one after the other (each migrates and imports the
    /// registry as it starts), and waits until each listens.
    ///
    /// # Errors
    /// The first instance that did not start ([`LoadError::CloudStart`] with its log).
    pub(crate) async fn start(
        mode: &CloudMode,
        configs: Vec<(PathBuf, PathBuf, String)>,
        embedded: bool,
    ) -> Result<Self, LoadError> {
        let mut slots = Vec::with_capacity(configs.len());
        for (config, log, client_id) in configs {
            let handle = start_one(mode, &config, &log, embedded).await?;
            slots.push(Mutex::new(Slot {
                api: Some(handle.endpoints.api),
                handle: Some(handle),
                config,
                log,
                client_id,
                state: State::Running,
                applied_before: 0,
                duplicates_before: 0,
                outages_before: 0,
                retries_before: 0,
                last: IngestCounters::default(),
                starts: 1,
                kills: 0,
                store_down: Vec::new(),
                store_up: Vec::new(),
            }));
        }
        Ok(Self {
            slots: Arc::new(slots),
            mode: mode.clone(),
            embedded,
            origin: Arc::new(Mutex::new(Instant::now())),
        })
    }

    /// Measures the moments noted from now on from `origin` (the start of the steady
    /// window, as the chaos does); earlier moments count as 0.
    pub(crate) fn set_origin(&self, origin: Instant) {
        if let Ok(mut o) = self.origin.lock() {
            *o = origin;
        }
    }

    fn elapsed(&self) -> Duration {
        self.origin.lock().map_or(Duration::ZERO, |o| {
            Instant::now().saturating_duration_since(*o)
        })
    }

    /// The first instance's endpoints (its embedded broker, if any).
    pub(crate) fn first_broker(&self) -> Option<SocketAddr> {
        self.slots
            .first()
            .and_then(|s| lock(s).handle.as_ref().and_then(|h| h.endpoints.broker))
    }

    /// How the report names where the cloud ran.
    pub(crate) fn description(&self) -> String {
        let one = self
            .slots
            .first()
            .and_then(|s| lock(s).handle.as_ref().map(|h| h.description.clone()))
            .unwrap_or_default();
        if self.slots.len() > 1 {
            format!("{} instances, each a {one}", self.slots.len())
        } else {
            one
        }
    }

    /// The API addresses of the instances running now.
    pub(crate) fn apis(&self) -> Vec<(usize, SocketAddr)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = lock(s);
                (s.state == State::Running)
                    .then_some(s.api)
                    .flatten()
                    .map(|a| (i, a))
            })
            .collect()
    }

    /// Reads every running instance's `/metrics` once (in parallel) and checks each is
    /// alive; returns the counters summed over instances and incarnations.
    pub(crate) async fn watch(&self) -> IngestCounters {
        let mut reads = tokio::task::JoinSet::new();
        for (i, api) in self.apis() {
            reads.spawn(async move { (i, cloud::scrape(api, SCRAPE_WAIT).await) });
        }
        while let Some(done) = reads.join_next().await {
            let Ok((i, Ok(counters))) = done else {
                continue;
            };
            let at = self.elapsed();
            if let Some(slot) = self.slots.get(i) {
                let mut s = lock(slot);
                if s.state != State::Running {
                    continue;
                }
                match (s.last.store_up, counters.store_up) {
                    (Some(true) | None, Some(false)) => s.store_down.push(at),
                    (Some(false), Some(true)) => s.store_up.push(at),
                    _ => {}
                }
                s.last = counters;
            }
        }
        for slot in self.slots.iter() {
            let mut s = lock(slot);
            if s.state == State::Running
                && let Some(h) = s.handle.as_mut()
                && !h.is_running()
            {
                let log = cloud::tail(&s.log);
                s.state = State::Exited {
                    at: self.elapsed(),
                    log,
                };
            }
        }
        self.total()
    }

    /// The counters summed: every instance's current incarnation, plus what dead
    /// incarnations applied and skipped.
    pub(crate) fn total(&self) -> IngestCounters {
        let mut t = IngestCounters::default();
        let mut subscribed = true;
        for slot in self.slots.iter() {
            let s = lock(slot);
            t.messages += s.last.messages;
            t.applied += s.applied_before + s.last.applied;
            t.duplicates += s.duplicates_before + s.last.duplicates;
            t.rejects += s.last.rejects;
            t.flushes += s.last.flushes;
            t.fleet_errors += s.last.fleet_errors;
            t.vehicles = t.vehicles.max(s.last.vehicles);
            subscribed &= s.last.subscribed;
        }
        t.subscribed = subscribed;
        t
    }

    /// Whether every running instance has subscribed to the uplinks.
    pub(crate) async fn all_subscribed(&self) -> Result<bool, LoadError> {
        for (_, api) in self.apis() {
            if !cloud::scrape(api, SCRAPE_WAIT).await?.subscribed {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// SIGKILLs instance `i`; `Ok(pid)`, or why not (it is not running).
    pub(crate) async fn kill(&self, i: usize) -> Result<u32, String> {
        let slots = Arc::clone(&self.slots);
        tokio::task::spawn_blocking(move || {
            let slot = slots
                .get(i)
                .ok_or_else(|| format!("no instance {}", i + 1))?;
            let mut s = lock(slot);
            if s.state != State::Running {
                return Err(format!("instance {} is not running", i + 1));
            }
            let mut handle = s
                .handle
                .take()
                .ok_or_else(|| format!("instance {} has no process", i + 1))?;
            s.state = State::Killed;
            s.applied_before += s.last.applied;
            s.duplicates_before += s.last.duplicates;
            s.outages_before += s.last.store_outages;
            s.retries_before += s.last.store_retries;
            s.last = IngestCounters::default();
            s.api = None;
            s.kills += 1;
            drop(s);
            let pid = handle.pid().unwrap_or(0);
            handle.kill()?;
            Ok(pid)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Starts killed instance `i` again on its config; the API address it listens on.
    pub(crate) async fn restart(&self, i: usize) -> Result<SocketAddr, String> {
        let (config, log) = {
            let slot = self
                .slots
                .get(i)
                .ok_or_else(|| format!("no instance {}", i + 1))?;
            let s = lock(slot);
            if s.state != State::Killed {
                return Err(format!("instance {} was not killed", i + 1));
            }
            (s.config.clone(), s.log.clone())
        };
        // The log of the killed process is kept beside the new one's.
        let killed_log = log.with_extension(format!(
            "killed-{}.log",
            self.slots.get(i).map_or(0, |s| lock(s).kills)
        ));
        let _ = std::fs::rename(&log, &killed_log);
        let handle = start_one(&self.mode, &config, &log, self.embedded)
            .await
            .map_err(|e| e.to_string())?;
        let api = handle.endpoints.api;
        if let Some(slot) = self.slots.get(i) {
            let mut s = lock(slot);
            s.handle = Some(handle);
            s.api = Some(api);
            s.state = State::Running;
            s.starts += 1;
        }
        Ok(api)
    }

    /// What each instance did.
    pub(crate) fn figures(&self) -> Vec<InstanceFigures> {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let s = lock(slot);
                InstanceFigures {
                    number: i + 1,
                    client_id: s.client_id.clone(),
                    applied: s.applied_before + s.last.applied,
                    duplicates: s.duplicates_before + s.last.duplicates,
                    store_outages: s.outages_before + s.last.store_outages,
                    store_retries: s.retries_before + s.last.store_retries,
                    kills: s.kills,
                    starts: s.starts,
                    exited: match &s.state {
                        State::Exited { at, log } => Some((*at, log.clone())),
                        _ => None,
                    },
                    store_down: s.store_down.clone(),
                    store_up: s.store_up.clone(),
                    log: s.log.clone(),
                }
            })
            .collect()
    }

    /// Stops every instance (SIGTERM, a bounded wait, then SIGKILL); the problems seen.
    pub(crate) async fn stop(&self) -> Vec<String> {
        let slots = Arc::clone(&self.slots);
        tokio::task::spawn_blocking(move || {
            let mut problems = Vec::new();
            for (i, slot) in slots.iter().enumerate() {
                let mut s = lock(slot);
                let Some(mut handle) = s.handle.take() else {
                    continue;
                };
                if let Some(p) = handle.stop() {
                    problems.push(format!("instance {}: {p}", i + 1));
                }
            }
            problems
        })
        .await
        .unwrap_or_else(|e| vec![format!("stopping the instances: {e}")])
    }
}

/// Starts one instance on a blocking thread (the start waits for its ready line).
async fn start_one(
    mode: &CloudMode,
    config: &std::path::Path,
    log: &std::path::Path,
    embedded: bool,
) -> Result<CloudHandle, LoadError> {
    let (mode, config, log) = (mode.clone(), config.to_path_buf(), log.to_path_buf());
    tokio::task::spawn_blocking(move || CloudHandle::start(&mode, &config, &log, embedded))
        .await
        .map_err(|e| LoadError::Broker(e.to_string()))?
}
