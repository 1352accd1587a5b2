//! `rapport-agent run`: the whole agent — a frame source, the poller, the observer, the rules,
//! the store and the HMI server — wired together until shutdown.
//!
//! Sources: the car's SocketCAN interface, or `--sim` (with the `desk` feature), the desk car
//! (simulated ECUs on the virtual bus following a scripted drive) in accelerated real time, for
//! a head unit on a desk and for the power-loss tests. The ignition state comes from the bus
//! ([`power`]), never from the script.
//!
//! With a `[sync]` section, the sync ([`crate::sync`]) runs beside them and stops with them.
//! The SocketCAN loop, and what it does when an interface goes away, is [`bus`]'s.
//!
//! Several buses: every `[[can.buses]]` entry is read (one socket each), with its own poller
//! and passive decoder; a frame keeps the index of the bus it came from through the
//! [`Pipeline`], and what a bus's poller asks goes back on that bus. The ignition is on when
//! any bus says so.
//!
//! Owns: the loop and its timing. Does not own: any decision or protocol.

pub mod backend;
pub(crate) mod bus;
pub mod core;
pub mod dump;
#[cfg(all(feature = "desk", target_os = "linux"))]
pub mod ecu_sim;
pub(crate) mod power;
#[cfg(feature = "desk")]
pub(crate) mod simcar;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rapport_shared::Timestamp;

use crate::can::CanFrame;
use crate::can::source::TimedFrame;
use crate::clock::Clock;
use crate::config::Loaded;
use crate::observe::{Observation, Observer, WarningKind};
use crate::poller::{Poller, PowerState};
use crate::settings;
#[cfg(feature = "desk")]
use crate::sim::Script;

pub use self::core::{Core, CoreError};
pub(crate) use power::BusActivity;
#[cfg(feature = "desk")]
pub use simcar::SimCar;

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The config's SocketCAN interfaces (every bus).
    SocketCan,
    /// The desk car, following `script`, `speedup` times faster than real time.
    #[cfg(feature = "desk")]
    Sim {
        /// The drive (None: the category's default commute).
        script: Option<Script>,
        /// Simulated seconds per real second.
        speedup: f64,
    },
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory (None: the config's `[store].path`).
    pub data_dir: Option<PathBuf>,
    /// The frame source.
    pub source: Source,
    /// HMI listen address (None: the config's `[hmi].listen`).
    pub hmi: Option<std::net::SocketAddr>,
}

/// How often the rules hear that time passed.
const TICK: Duration = Duration::from_secs(1);
/// Observation warnings (malformed traffic) logged per kind before the rest are only counted.
const WARNINGS_LOGGED: u64 = 10;

/// A clock running `speedup` times faster than real time from `wall_start`.
#[cfg(feature = "desk")]
#[derive(Debug, Clone)]
pub(crate) struct ScaledClock {
    wall_start: Timestamp,
    start: std::time::Instant,
    speedup: f64,
}

#[cfg(feature = "desk")]
impl ScaledClock {
    /// Starts now at the real wall time.
    pub(crate) fn new(speedup: f64) -> Self {
        Self {
            wall_start: crate::clock::wall_now(),
            start: std::time::Instant::now(),
            speedup: if speedup.is_finite() && speedup > 0.0 {
                speedup
            } else {
                1.0
            },
        }
    }
}

#[cfg(feature = "desk")]
impl Clock for ScaledClock {
    fn wall(&self) -> Timestamp {
        self.wall_start.saturating_add(self.mono())
    }
    fn mono(&self) -> Duration {
        self.start.elapsed().mul_f64(self.speedup)
    }
}

/// The per-frame work shared by every source: pollers, observer, ignition, rules. Buses are
/// indices into `[[can.buses]]`.
struct Pipeline {
    /// One per bus.
    pollers: Vec<Poller>,
    observer: Observer,
    /// One per bus.
    activity: Vec<BusActivity>,
    power: PowerState,
    observations: Vec<Observation>,
    /// Frames to send, with the bus each goes on.
    to_send: Vec<(usize, CanFrame)>,
    /// A poller's output before it is tagged with its bus.
    scratch: Vec<CanFrame>,
    next_tick: Duration,
    /// How often the rules hear that time passed with the ignition on, and off.
    tick_on: Duration,
    tick_off: Duration,
    core: Arc<Core>,
    /// Warnings logged so far, per kind (in [`WarningKind::ALL`] order).
    warnings_logged: [u64; WarningKind::ALL.len()],
}

impl Pipeline {
    fn new(loaded: &Loaded, core: Arc<Core>) -> Self {
        let pollers = settings::pollers(&loaded.config);
        Self {
            activity: pollers
                .iter()
                .map(|p| BusActivity::new(p, power::DEFAULT_OFF_AFTER))
                .collect(),
            pollers: pollers.into_iter().map(Poller::new).collect(),
            observer: Observer::new(&settings::observer(loaded)),
            power: PowerState::Off,
            observations: Vec::new(),
            to_send: Vec::new(),
            scratch: Vec::new(),
            next_tick: Duration::ZERO,
            tick_on: TICK,
            tick_off: TICK,
            core,
            warnings_logged: [0; WarningKind::ALL.len()],
        }
    }

    fn deliver(&mut self, at: Duration, wall: Timestamp) {
        for o in self.observations.drain(..) {
            if let Observation::Warning { kind, what } = &o {
                log_warning(&mut self.warnings_logged, *kind, what);
            }
            self.core.observe(&o, wall, at);
        }
    }

    /// Warnings so far by kind, `j1939:3 plausibility:1` (empty: none).
    fn warning_summary(&self) -> String {
        let parts: Vec<String> = self
            .observer
            .warning_counts()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{}:{n}", k.as_str()))
            .collect();
        parts.join(" ")
    }

    /// How many buses it reads.
    #[cfg(feature = "desk")]
    fn buses(&self) -> usize {
        self.pollers.len()
    }

    /// A frame from bus `bus`.
    fn on_frame(&mut self, bus: usize, frame: CanFrame, at: Duration, wall: Timestamp) {
        if let Some(a) = self.activity.get_mut(bus) {
            a.on_frame(&frame, at);
        }
        if let Some(p) = self.pollers.get_mut(bus) {
            p.on_frame(&frame, at, &mut self.scratch);
            self.to_send
                .extend(self.scratch.drain(..).map(|f| (bus, f)));
        }
        let tf = TimedFrame {
            frame,
            at,
            wall: Some(wall),
        };
        self.observer.on_bus_frame(bus, &tf, &mut self.observations);
        self.deliver(at, wall);
    }

    /// The ignition as the buses tell it: the most awake of them.
    fn power_at(&self, at: Duration) -> PowerState {
        let rank = |p: PowerState| match p {
            PowerState::Off => 0,
            PowerState::Accessory => 1,
            PowerState::On => 2,
        };
        self.activity
            .iter()
            .map(|a| a.state(at))
            .max_by_key(|p| rank(*p))
            .unwrap_or(PowerState::Off)
    }

    /// Time moved to `at`: ignition, polling, ticks. Frames to send are left in `to_send`
    /// (the observer has seen them: it pairs requests with answers). Returns when something
    /// is next due (the poller's next timer or the next tick).
    fn step(&mut self, at: Duration, wall: Timestamp) -> Duration {
        let power = self.power_at(at);
        if power != self.power {
            tracing::info!(from = ?self.power, to = ?power, "ignition state from bus activity");
            self.power = power;
            for p in &mut self.pollers {
                p.set_power(power, at);
            }
            self.core.power(power == PowerState::On, wall, at);
        }
        let mut poll_due: Option<Duration> = None;
        let first_new = self.to_send.len();
        for (bus, p) in self.pollers.iter_mut().enumerate() {
            if let Some(t) = p.poll(at, &mut self.scratch) {
                poll_due = Some(poll_due.map_or(t, |d| d.min(t)));
            }
            self.to_send
                .extend(self.scratch.drain(..).map(|f| (bus, f)));
        }
        for (bus, f) in self.to_send.get(first_new..).unwrap_or_default() {
            let tf = TimedFrame {
                frame: *f,
                at,
                wall: Some(wall),
            };
            self.observer
                .on_bus_frame(*bus, &tf, &mut self.observations);
        }
        self.deliver(at, wall);
        if at >= self.next_tick {
            let every = if self.power == PowerState::Off {
                self.tick_off
            } else {
                self.tick_on
            };
            self.next_tick = at + every;
            self.core.tick(wall, at);
        }
        poll_due.map_or(self.next_tick, |t| t.min(self.next_tick))
    }
}

/// Runs the agent until `shutdown` resolves. The HMI's address is sent on `ready` once it
/// listens (tests use port 0).
///
/// # Errors
/// The store, the HMI listener or the CAN interface could not be opened.
pub async fn run(
    loaded: Loaded,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> Result<(), crate::Error> {
    let cfg = &loaded.config;
    let dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| settings::data_dir(cfg));
    std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Io {
        context: format!("creating the data directory {}", dir.display()),
        source,
    })?;
    let clock: Arc<dyn Clock> = match &options.source {
        #[cfg(feature = "desk")]
        Source::Sim { speedup, .. } => Arc::new(ScaledClock::new(*speedup)),
        Source::SocketCan => Arc::new(crate::clock::SystemClock::default()),
    };
    let core = Arc::new(Core::open(&loaded, &dir, Arc::clone(&clock))?);
    tracing::info!(dir = %dir.display(), vin = %cfg.vehicle.vin, "store open");

    let listen = options.hmi.unwrap_or_else(|| settings::hmi_listen(cfg));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| crate::Error::Io {
            context: format!("binding the HMI API to {listen}"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| crate::Error::Io {
        context: "reading the HMI address".into(),
        source,
    })?;
    tracing::info!(%addr, "HMI API listening");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut hmi_stop = stop_rx.clone();
    let hmi = tokio::spawn(backend::serve(listener, Arc::clone(&core), async move {
        let _ = hmi_stop.wait_for(|s| *s).await;
    }));
    let sync = match settings::sync(cfg)? {
        Some(settings) => {
            let mut sync_stop = stop_rx.clone();
            Some(crate::sync::spawn(
                Arc::clone(&core),
                settings,
                async move {
                    let _ = sync_stop.wait_for(|s| *s).await;
                },
            ))
        }
        None => {
            tracing::info!("no [sync] section: records stay in the outbox");
            None
        }
    };
    let bus = match options.source {
        #[cfg(feature = "desk")]
        Source::Sim { script, .. } => {
            run_sim(&loaded, script, Arc::clone(&core), clock, stop_rx).await
        }
        Source::SocketCan => {
            let mut bus_stop = stop_rx;
            let bus_shutdown = async move {
                let _ = bus_stop.wait_for(|s| *s).await;
            };
            run_socketcan(&loaded, Arc::clone(&core), clock, bus_shutdown).await
        }
    };
    let bus_result = shutdown_signal(shutdown, stop_tx, bus).await;
    let _ = hmi.await;
    if let Some(sync) = sync {
        let _ = tokio::time::timeout(Duration::from_secs(2), sync.join()).await;
    }
    core.flush()?;
    tracing::info!("stopped; store flushed");
    // A bus that could not be read (no such interface, a socket error) is the run's failure:
    // the exit status tells systemd so.
    bus_result
}

async fn shutdown_signal(
    shutdown: impl Future<Output = ()>,
    stop: tokio::sync::watch::Sender<bool>,
    bus: tokio::task::JoinHandle<Result<(), crate::Error>>,
) -> Result<(), crate::Error> {
    let abort = bus.abort_handle();
    tokio::pin!(bus);
    let mut bus_done = false;
    let result = tokio::select! {
        () = shutdown => Ok(()),
        r = &mut bus => {
            bus_done = true;
            match r {
                Ok(r) => r,
                Err(e) => Err(crate::Error::Io { context: "bus task".into(), source: std::io::Error::other(e.to_string()) }),
            }
        }
    };
    let _ = stop.send(true);
    // A finished JoinHandle must not be polled again.
    if !bus_done {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut bus).await;
    }
    abort.abort();
    if let Err(e) = &result {
        tracing::error!(cause = %e, "bus loop ended");
    }
    result
}

/// The desk car on its own thread (its simulated ECUs are not `Send`), stepping simulated
/// time to the scaled clock every 10 ms of real time until `stop` turns true.
#[cfg(feature = "desk")]
async fn run_sim(
    loaded: &Loaded,
    script: Option<Script>,
    core: Arc<Core>,
    clock: Arc<dyn Clock>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<(), crate::Error>> {
    let loaded = loaded.clone();
    tokio::task::spawn_blocking(move || {
        let mut script =
            script.unwrap_or_else(|| crate::desk::default_script(loaded.config.vehicle.category));
        // The desk car continues from the odometer the agent remembers, as a real car would
        // after the head unit restarts.
        if let Some(odo) = core.with(|r, _| r.memory().vehicle.odometer)
            && odo.meters() > script.odometer_m
        {
            script.odometer_m = odo.meters();
        }
        let wall_start = clock
            .wall()
            .as_millis()
            .saturating_sub(u64::try_from(clock.mono().as_millis()).unwrap_or(0));
        let mut car = SimCar::new(&loaded, script, core, Timestamp::from_millis(wall_start))?;
        while !*stop.borrow() {
            std::thread::sleep(Duration::from_millis(10));
            car.run_until(clock.mono());
        }
        Ok(())
    })
}

/// Logs the first [`WARNINGS_LOGGED`] warnings of each kind, then says the rest are counted.
fn log_warning(logged: &mut [u64; WarningKind::ALL.len()], kind: WarningKind, what: &str) {
    let Some(n) = WarningKind::ALL
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| logged.get_mut(i))
    else {
        return;
    };
    *n += 1;
    if *n <= WARNINGS_LOGGED {
        tracing::warn!(kind = kind.as_str(), what, "bus warning");
        if *n == WARNINGS_LOGGED {
            tracing::warn!(
                kind = kind.as_str(),
                "further warnings of this kind are counted, not logged"
            );
        }
    }
}

#[cfg(target_os = "linux")]
async fn run_socketcan(
    loaded: &Loaded,
    core: Arc<Core>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), crate::Error>> {
    let loaded = loaded.clone();
    tokio::spawn(async move {
        let cfg = &loaded.config;
        if cfg.can.buses.is_empty() {
            return Err(crate::Error::Io {
                context: "can.buses".into(),
                source: std::io::Error::other("no bus configured"),
            });
        }
        let links: Vec<bus::SocketCanLink> = cfg
            .can
            .buses
            .iter()
            .enumerate()
            .map(|(i, bus)| bus::SocketCanLink {
                interface: bus.interface.clone(),
                filters: settings::kernel_filters(&loaded, i),
            })
            .collect();
        let mut pipe = Pipeline::new(&loaded, core);
        let counts = bus::run_all(&links, &mut pipe, clock.as_ref(), shutdown).await?;
        for (link, counts) in links.iter().zip(&counts) {
            tracing::info!(
                interface = %link.interface,
                frames = counts.frames,
                error_frames = counts.error_frames,
                sent = counts.sent,
                unsent = counts.unsent,
                lost = counts.lost,
                reopened = counts.reopened,
                "bus loop stopped"
            );
        }
        tracing::info!(warnings = %pipe.warning_summary(), "bus warnings");
        Ok(())
    })
}

#[cfg(not(target_os = "linux"))]
async fn run_socketcan(
    _loaded: &Loaded,
    _core: Arc<Core>,
    _clock: Arc<dyn Clock>,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), crate::Error>> {
    tokio::spawn(async {
        Err(crate::Error::Io {
            context: "SocketCAN".into(),
            source: std::io::Error::other("SocketCAN exists on Linux only; use --sim"),
        })
    })
}
