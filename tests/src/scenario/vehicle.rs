//! One simulated vehicle: the real agent (its store in sled, its rules, its HMI API, its MQTT
//! sync) reading a simulated car over a virtual bus, and a simulated driver at the screen.
//!
//! The car lives on its own thread (its simulated ECUs are not `Send`) and moves only when the
//! scenario tells it to: "run until t". The agent's clock is a manual clock that thread moves
//! with the car, so prompts, actions and records all carry simulated time. The sync runs on
//! the scenario's tokio runtime, as on a head unit, and carries the outbox to the broker in
//! real time while simulated time stands still between steps.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rapport_agent::clock::{Clock, ManualClock};
use rapport_agent::config::Loaded;
use rapport_agent::hmi::HmiEvent;
use rapport_agent::runtime::{Core, SimCar};
use rapport_agent::sync::{CounterSnapshot, SyncHandle};
use rapport_shared::{Timestamp, Vin};
use tokio::sync::broadcast::error::TryRecvError;

use super::cast::{Cast, T0_MS};
use super::driver::{self, Choice};
use super::rng::Rng;
use super::story::{Event, What};
use crate::Error;

/// How finely the driver looks at the screen while the car is awake.
const GLANCE: Duration = Duration::from_secs(30);

/// What the scenario asks of a vehicle's thread.
enum Cmd {
    RunUntil(Duration),
}

/// What a vehicle's thread answers after a step.
#[derive(Debug, Default)]
pub struct Step {
    /// What its driver saw and did, and faults on its bus.
    pub events: Vec<Event>,
    /// The car's true odometer, metres.
    pub truth_m: u64,
    /// Frames on its bus so far.
    pub frames: u64,
}

/// A vehicle in the testbed.
pub struct Vehicle {
    /// Who it is.
    pub cast: Cast,
    /// The agent's shared core (store, rules).
    pub core: Arc<Core>,
    /// The agent's HMI API.
    pub hmi: std::net::SocketAddr,
    sync: SyncHandle,
    tx: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<Result<Step, String>>,
    stop_sync: Option<tokio::sync::oneshot::Sender<()>>,
    stop_hmi: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Vehicle {
    /// Starts the agent for `cast` with its store under `dir`, syncing to `broker`
    /// (`mqtt://127.0.0.1:port`). Must be called inside the tokio runtime.
    ///
    /// # Errors
    /// The config, the store, the HMI socket or the thread could not be made.
    pub async fn start(cast: Cast, dir: &Path, broker: &str) -> Result<Self, Error> {
        let loaded = load_config(&cast, dir, broker)?;
        let clock = ManualClock::new(Timestamp::from_millis(T0_MS));
        let core = Arc::new(
            Core::open(&loaded, &dir.join("store"), Arc::new(clock.clone()))
                .map_err(|e| Error::Scenario(format!("{}: opening the agent: {e}", cast.driver)))?,
        );
        // The driver agrees (or not) to share data with partners on the head unit, as the
        // registry says the owner did.
        let mut settings = core.settings();
        if settings.partner_sharing != cast.partner_sharing {
            settings.partner_sharing = cast.partner_sharing;
            core.set_settings(settings)
                .map_err(|e| Error::Scenario(format!("{}: consent: {e}", cast.driver)))?;
        }
        let sync_settings = rapport_agent::settings::sync(&loaded.config)
            .map_err(|e| Error::Scenario(format!("{}: {e}", cast.driver)))?
            .ok_or_else(|| Error::Scenario(format!("{}: config has no [sync]", cast.driver)))?;
        let (stop_sync, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sync = rapport_agent::sync::spawn(Arc::clone(&core), sync_settings, async move {
            let _ = stop_rx.await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("binding a vehicle's HMI API", dir, e))?;
        let hmi = listener
            .local_addr()
            .map_err(|e| Error::io("reading a vehicle's HMI address", dir, e))?;
        let (stop_hmi, hmi_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(rapport_agent::runtime::backend::serve(
            listener,
            Arc::clone(&core),
            async move {
                let _ = hmi_rx.await;
            },
        ));

        let (tx, cmd_rx) = mpsc::channel();
        let (step_tx, rx) = mpsc::channel();
        let thread_core = Arc::clone(&core);
        let thread_cast = cast.clone();
        std::thread::Builder::new()
            .name(format!("car-{}", cast.vin))
            .spawn(move || {
                car_thread(&loaded, thread_cast, thread_core, clock, &cmd_rx, &step_tx);
            })
            .map_err(|e| Error::io("starting a vehicle thread", dir, e))?;
        Ok(Self {
            cast,
            core,
            hmi,
            sync,
            tx,
            rx,
            stop_sync: Some(stop_sync),
            stop_hmi: Some(stop_hmi),
        })
    }

    /// The VIN.
    pub fn vin(&self) -> Vin {
        self.cast.vin
    }

    /// Asks the car to run until simulated time `t` (from the story's start).
    ///
    /// # Errors
    /// The thread is gone.
    pub fn start_step(&self, t: Duration) -> Result<(), Error> {
        self.tx
            .send(Cmd::RunUntil(t))
            .map_err(|_| Error::Scenario(format!("{}: the car's thread is gone", self.cast.driver)))
    }

    /// Waits for the step asked with [`Vehicle::start_step`].
    ///
    /// # Errors
    /// The thread is gone or failed.
    pub fn finish_step(&self) -> Result<Step, Error> {
        match self.rx.recv() {
            Ok(Ok(step)) => Ok(step),
            Ok(Err(e)) => Err(Error::Scenario(format!("{}: {e}", self.cast.driver))),
            Err(_) => Err(Error::Scenario(format!(
                "{}: the car's thread is gone",
                self.cast.driver
            ))),
        }
    }

    /// The sync's counters.
    pub fn sync(&self) -> CounterSnapshot {
        self.sync.counters()
    }

    /// (records waiting in the outbox, the last seq written).
    pub fn outbox(&self) -> (u64, u64) {
        self.core
            .with(|_, store| (store.outbox_len(), store.next_seq().saturating_sub(1)))
    }

    /// Stops the sync and the HMI API (the thread ends when the vehicle is dropped).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop_hmi.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.stop_sync.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.sync.join()).await;
        if let Err(e) = self.core.flush() {
            tracing::warn!(cause = %e, "flushing a vehicle's store");
        }
    }
}

/// The agent config for `cast`: the shipped example for its category with the protocols its
/// kind has, its VIN and delivery date, a store under `dir`, and `[sync]` to `broker`.
fn load_config(cast: &Cast, dir: &Path, broker: &str) -> Result<Loaded, Error> {
    use super::cast::Kind;
    let io = |what: &'static str, source| Error::io(what, dir, source);
    std::fs::create_dir_all(dir).map_err(|e| io("creating a vehicle's directory", e))?;
    let template = if cast.kind == Kind::Truck {
        include_str!("../../../config/commercial.toml")
    } else {
        include_str!("../../../config/passenger.toml")
    };
    let mut doc: toml::Table = template
        .parse()
        .map_err(|e| Error::Scenario(format!("the shipped agent config: {e}")))?;
    match cast.kind {
        Kind::NewCar => {
            doc.remove("uds");
            doc.remove("dbc");
        }
        Kind::Anniversary => {
            doc.remove("uds");
            doc.remove("obd");
        }
        Kind::FirstService | Kind::Truck => {}
    }
    if doc.contains_key("dbc") {
        let dbc = dir.join("passenger.dbc");
        std::fs::write(&dbc, include_str!("../../../agent/fixtures/passenger.dbc"))
            .map_err(|e| io("writing the DBC", e))?;
        if let Some(toml::Value::Table(t)) = doc.get_mut("dbc") {
            t.insert("file".into(), dbc.display().to_string().into());
        }
    }
    let delivered = civil_date(cast.delivered_ms);
    if let Some(toml::Value::Table(v)) = doc.get_mut("vehicle") {
        v.insert("vin".into(), cast.vin.to_string().into());
        v.insert("delivered".into(), delivered.into());
    }
    if let Some(toml::Value::Table(h)) = doc.get_mut("hmi") {
        h.insert("listen".into(), "127.0.0.1:0".into());
    }
    let mut sync = toml::Table::new();
    sync.insert("broker".into(), broker.into());
    // Simulated time stands still while the outbox crosses: send at once, retry quickly.
    sync.insert("batch_max_age_ms".into(), 0.into());
    sync.insert("backoff_min_ms".into(), 20.into());
    sync.insert("backoff_max_ms".into(), 500.into());
    sync.insert("heartbeat_s".into(), 86_400.into());
    doc.insert("sync".into(), sync.into());
    let text = toml::to_string(&doc).map_err(|e| Error::Scenario(format!("agent config: {e}")))?;
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).map_err(|e| io("writing the agent config", e))?;
    rapport_agent::config::load(&path)
        .map_err(|e| Error::Scenario(format!("{}: {e}", path.display())))
}

/// `YYYY-MM-DD` of unix ms (UTC).
pub fn civil_date(ms: u64) -> String {
    rapport_shared::Timestamp::from_millis(ms).utc_date_string()
}

/// A reaction the driver has decided on.
struct Pending {
    id: String,
    kind: String,
    action: rapport_agent::rules::DriverAction,
    at: Duration,
}

fn car_thread(
    loaded: &Loaded,
    cast: Cast,
    core: Arc<Core>,
    clock: ManualClock,
    cmds: &mpsc::Receiver<Cmd>,
    out: &mpsc::Sender<Result<Step, String>>,
) {
    let t0 = Timestamp::from_millis(T0_MS);
    let mut desk_car = match rapport_agent::desk::car_for(loaded, cast.script.clone()) {
        Ok(car) => car,
        Err(problems) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let _ = out.send(Err(format!("the drive: {}", text.join("; "))));
            return;
        }
    };
    if cast.kind == super::cast::Kind::NewCar {
        // The body computer's broadcasts, which this config does not decode: a real bus is
        // never silent while the car runs, and the agent takes them as ignition evidence.
        desk_car.add_ecu(Box::new(rapport_agent::sim::ClusterEcu::new()));
    }
    let mut car = SimCar::with_car(loaded, desk_car, Arc::clone(&core), t0);
    let mut screen = core.subscribe();
    let mut rng = Rng::new(cast.rng_stream, cast.index as u64);
    let mut pending: Vec<Pending> = Vec::new();
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    let mut faults = cast.faults.iter().peekable();
    let vin = Some(cast.vin);
    let event = |at: Duration, what: What| Event {
        at: t0.saturating_add(at),
        vin,
        who: cast.driver.clone(),
        what,
    };
    while let Ok(Cmd::RunUntil(until)) = cmds.recv() {
        let mut events = Vec::new();
        while car.now() < until {
            let awake = car.state().power != rapport_agent::sim::Power::Off;
            let mut next = until;
            if awake || !pending.is_empty() {
                next = next.min(car.now() + GLANCE);
            }
            // A tap due on a prompt the gate hides waits for the next glance.
            if let Some(p) = pending
                .iter()
                .map(|p| p.at)
                .filter(|t| *t > car.now())
                .min()
            {
                next = next.min(p);
            }
            if let Some((at, _, _)) = faults.peek() {
                next = next.min((*at).max(car.now()));
            }
            car.run_until(next);
            let now = car.now();
            clock.advance(now.saturating_sub(clock.mono()));
            while let Some((at, name, appeared)) = faults.next_if(|(at, _, _)| *at <= now) {
                events.push(Event {
                    who: "bus".into(),
                    ..event(
                        *at,
                        What::Fault {
                            name: name.clone(),
                            appeared: *appeared,
                        },
                    )
                });
            }
            // What the screen showed.
            loop {
                match screen.try_recv() {
                    Ok(HmiEvent::Prompt(view)) => {
                        // First time on the screen (or again after a snooze): the driver
                        // reads it and decides. Coming back after the car stopped is not news.
                        if view.first_shown_ms.is_none() || !seen.insert(view.id.clone()) {
                            continue;
                        }
                        events.push(event(
                            now,
                            What::PromptShown {
                                id: view.id.clone(),
                                kind: view.kind.clone(),
                                critical: view.critical,
                                title: view.title.clone(),
                                text: view.text.clone(),
                            },
                        ));
                        if view.kind == "service_progress"
                            && let Some(answer) =
                                left_car(&core, &cast, &view.id, t0.saturating_add(now))
                        {
                            events.push(event(now, answer));
                        }
                        if let Choice::Act(action, delay) =
                            driver::decide(cast.persona, &view.kind, view.critical, &mut rng)
                        {
                            pending.retain(|p| p.id != view.id);
                            pending.push(Pending {
                                id: view.id,
                                kind: view.kind,
                                action,
                                at: now + delay,
                            });
                        }
                    }
                    Ok(HmiEvent::Closed { id, state }) => {
                        pending.retain(|p| p.id != id);
                        events.push(event(now, What::PromptClosed { id, state }));
                    }
                    Ok(HmiEvent::Hidden { .. } | HmiEvent::Resync)
                    | Err(TryRecvError::Lagged(_)) => {}
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            // The driver's taps that are due, on prompts still on the screen.
            let visible: Vec<String> = core.visible_prompts().into_iter().map(|p| p.id).collect();
            let mut i = 0;
            while i < pending.len() {
                if pending[i].at > now || !visible.contains(&pending[i].id) {
                    i += 1;
                    continue;
                }
                let p = pending.swap_remove(i);
                let (accepted, action) = match core.act(&p.id, p.action) {
                    Ok(_) => {
                        if matches!(p.action, rapport_agent::rules::DriverAction::Snooze { .. }) {
                            seen.remove(&p.id);
                        }
                        (true, driver::label(p.action))
                    }
                    Err(e) => (false, format!("{} ({e})", driver::label(p.action))),
                };
                events.push(event(
                    now,
                    What::DriverActed {
                        id: p.id,
                        kind: p.kind,
                        action,
                        accepted,
                    },
                ));
            }
        }
        let step = Step {
            events,
            truth_m: car.state().odometer().meters(),
            frames: car.frames(),
        };
        if out.send(Ok(step)).is_err() {
            return;
        }
    }
}

/// A fleet driver told that the technician comes more than 6 h from now leaves the truck at
/// the depot and says so from the screen ("I'm no longer with the car"), once per case; the
/// answer's event, or `None` when there is nothing to say.
fn left_car(core: &Core, cast: &Cast, prompt: &str, now: Timestamp) -> Option<What> {
    use rapport_shared::{DriverAnswer, ServiceStage};
    if cast.persona != super::cast::Persona::Fleet {
        return None;
    }
    let alert: u64 = prompt
        .strip_prefix("service:")?
        .split(':')
        .next()?
        .parse()
        .ok()?;
    let case = core.with(|r, _| r.memory().service_cases.get(&alert).cloned())?;
    let latest = case.history.last()?;
    let far = latest
        .eta
        .is_some_and(|eta| eta.saturating_since(now) > Duration::from_secs(6 * 3600));
    if latest.stage != ServiceStage::Dispatched || !far || !case.answers.is_empty() {
        return None;
    }
    let accepted = core.answer_service(alert, DriverAnswer::LeftCar);
    Some(What::DriverAnswered {
        alert_id: format!("a{alert}"),
        answer: "left_car".into(),
        accepted: accepted.is_ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date(T0_MS), "2026-03-02");
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400_000), "2000-02-29");
    }
}
