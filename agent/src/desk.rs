//! The agent on a desk: its poller and observer against the desk car (simulated ECUs on the
//! virtual bus, moved by a scripted drive), as fast as the CPU goes. An engineer checks a config
//! without a car (`rapport-agent desk`), and the tests and benchmarks drive the real agent code.
//!
//! Owns the wiring only: which simulated ECUs a config implies and on which of the car's buses
//! (one virtual bus per `[[can.buses]]` entry, each ECU on the bus its section names), and the
//! loop that carries frames between the car, the pollers (one per bus) and the observer. The power state comes from the script (on a
//! real car the runtime derives it from the bus).

use std::time::Duration;

use rapport_shared::{EngineHours, Odometer, Timestamp};

use crate::can::candump::{self, format_log_line};
use crate::can::source::TimedFrame;
use crate::config::{Category, DidRole, Loaded};
use crate::observe::{Observation, Observer};
use crate::poller::{Poller, PollerStats, PowerState};
use crate::settings;
use crate::sim::{
    ClusterEcu, DeskCar, Drive, IsoTpAddress, J1939Ecu, J1939EcuConfig, ObdEcu, ObdEcuConfig,
    Power, Script, ScriptError, UdsEcu, UdsEcuConfig, UdsMode,
};

pub use crate::poller::UdsEcuStats;

/// How finely the loop steps time (the poller's timers are tens of milliseconds).
const STEP: Duration = Duration::from_millis(5);

/// The default drive for a vehicle category: a commute with a fault that comes and goes.
pub fn default_script(category: Category) -> Script {
    use crate::sim::{Fault, ObdList, Step};
    use rapport_shared::{Fmi, ObdCode, Spn};
    let min = Duration::from_secs(60);
    let start = Script::new(Odometer::from_km(12_000), EngineHours::from_secs(0))
        .power(Power::Running)
        .drive_for(50, 5 * min)
        .drive_for(100, 15 * min);
    let fault = match category {
        Category::Passenger => Fault::Obd {
            ecu: 0,
            code: ObdCode::new(0x0133),
            mil: true,
            list: ObdList::Stored,
        },
        // SPN 110 (coolant temperature), FMI 0 (above normal, most severe): constants in range.
        #[allow(clippy::expect_used)]
        Category::Commercial => Fault::J1939 {
            source: 0,
            spn: Spn::new(110).expect("19-bit constant"),
            fmi: Fmi::new(0).expect("5-bit constant"),
            lamp: crate::sim::Lamp::RedStop,
        },
    };
    start
        .then(Step::SetFault(fault))
        .drive_for(80, 10 * min)
        .then(Step::ClearFault(fault))
        .drive_for(50, 5 * min)
        .park(5 * min)
        .power(Power::Off)
        .park(5 * min)
}

/// A car parked with the engine running for an hour: what `scan --desk` scans by default (a
/// scan stops at once on a moving car).
pub fn parked_script() -> Script {
    Script::new(Odometer::from_km(12_000), EngineHours::from_secs(0))
        .power(Power::Running)
        .park(Duration::from_secs(3600))
}

/// The desk car a config implies: an OBD engine ECU (and gearbox) if OBD is configured, a UDS
/// ECU on each `[[uds]]` entry's ids and odometer DID (11-bit, normal addressing), the DBC
/// cluster if a DBC is, a J1939 engine if J1939 is — each on the bus its section names.
///
/// # Errors
/// Every problem with the script.
pub fn car_for(loaded: &Loaded, script: Script) -> Result<DeskCar, Vec<ScriptError>> {
    build_car(loaded, script, true, &[])
}

/// As [`car_for`], with the UDS ECUs `modes` names (by their `[[uds]]` name) silent or slow.
///
/// # Errors
/// Every problem with the script.
pub fn car_with_modes(
    loaded: &Loaded,
    script: Script,
    modes: &[(&str, UdsMode)],
) -> Result<DeskCar, Vec<ScriptError>> {
    build_car(loaded, script, true, modes)
}

/// [`car_for`] behind a gateway: no cluster broadcast whatever the config's `[dbc]`, so the
/// only traffic is the answers to the tester's own requests (`[ignition] source = "obd"`).
///
/// # Errors
/// Every problem with the script.
pub fn car_behind_gateway(loaded: &Loaded, script: Script) -> Result<DeskCar, Vec<ScriptError>> {
    build_car(loaded, script, false, &[])
}

fn build_car(
    loaded: &Loaded,
    script: Script,
    cluster: bool,
    modes: &[(&str, UdsMode)],
) -> Result<DeskCar, Vec<ScriptError>> {
    let cfg = &loaded.config;
    let mut car = DeskCar::new(Drive::new(script, Duration::ZERO)?, 8192, Duration::ZERO);
    while car.bus_count() < settings::bus_count(cfg) {
        car.add_bus();
    }
    let bus = |name: &str| settings::bus_index(cfg, name);
    if let Some(o) = &cfg.obd {
        let (engine, gearbox) = if o.id_bits == 29 {
            (
                ObdEcuConfig::engine().extended(0x10),
                ObdEcuConfig::transmission().extended(0x18),
            )
        } else {
            (ObdEcuConfig::engine(), ObdEcuConfig::transmission())
        };
        // The engine ECU answers mode 09 PID 02 with the configured VIN (`scan` reads it).
        let engine = ObdEcuConfig {
            vin: Some(*cfg.vehicle.vin.as_bytes()),
            ..engine
        };
        car.add_ecu_on(bus(&o.bus), Box::new(ObdEcu::new(engine)));
        car.add_ecu_on(bus(&o.bus), Box::new(ObdEcu::new(gearbox)));
    }
    for (i, u) in cfg.uds.iter().enumerate() {
        let (Ok(request), Ok(response)) =
            (u16::try_from(u.request_id), u16::try_from(u.response_id))
        else {
            continue;
        };
        if u.is_extended() || u.address_bytes().is_some() {
            continue;
        }
        let odometer_did = u
            .dids
            .iter()
            .find(|d| d.role == Some(DidRole::Odometer))
            .map_or(0xF1A0, |d| d.did);
        let name = u.label(i);
        let mode = modes
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(UdsMode::Normal, |(_, m)| *m);
        let config = UdsEcuConfig {
            address: IsoTpAddress::pair_11bit(request, response),
            odometer_did,
            name,
            ..UdsEcuConfig::default()
        };
        car.add_ecu_on(bus(&u.bus), Box::new(UdsEcu::new(config.with_mode(mode))));
    }
    if let (true, Some(_), Some(d)) = (cluster, &loaded.dbc, &cfg.dbc) {
        car.add_ecu_on(bus(&d.bus), Box::new(ClusterEcu::new()));
    }
    if let Some(j) = &cfg.j1939 {
        car.add_ecu_on(
            bus(&j.bus),
            Box::new(J1939Ecu::new(J1939EcuConfig::default())),
        );
    }
    Ok(car)
}

/// [`car_for`] for a running agent or simulator: the script's problems as one error.
///
/// # Errors
/// The script's problems, joined by `; `.
pub(crate) fn car_for_run(loaded: &Loaded, script: Script) -> Result<DeskCar, crate::Error> {
    car_for(loaded, script).map_err(|problems| crate::Error::Io {
        context: "the simulated drive".into(),
        source: std::io::Error::other(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    })
}

/// What a desk run did.
#[derive(Debug, Clone)]
pub struct DeskSummary {
    /// The car's odometer at the end (the truth the observations are checked against).
    pub final_odometer: Odometer,
    /// The pollers' counters, summed over the buses.
    pub poller: PollerStats,
    /// Each UDS ECU's counters: (bus index, name, counters), in `[[uds]]` order per bus.
    pub uds: Vec<(usize, String, UdsEcuStats)>,
    /// Frames that went over the virtual buses.
    pub frames: u64,
}

/// Runs the poller and observer against `car` for `duration` of simulated time. Observations go
/// to `on_observation` with their wall time (`wall_start` + simulated time); with `record`, every
/// frame on the bus is appended to it as a `candump -l` line.
pub fn run(
    loaded: &Loaded,
    car: &mut DeskCar,
    duration: Duration,
    wall_start: Timestamp,
    record: Option<&mut String>,
    mut on_observation: impl FnMut(Timestamp, &Observation),
) -> DeskSummary {
    let mut pollers: Vec<Poller> = settings::pollers(&loaded.config)
        .into_iter()
        .map(Poller::new)
        .collect();
    while car.bus_count() < pollers.len() {
        car.add_bus();
    }
    let testers = car.attach_testers();
    if record.is_some() {
        for bus in 0..car.bus_count() {
            car.bus_at(bus).start_tap();
        }
    }
    let mut observer = Observer::new(&settings::observer(loaded));
    let mut observations = Vec::new();
    let mut out = Vec::new();
    let wall = |at: Duration| wall_start.saturating_add(at);
    let mut now = Duration::ZERO;
    let mut emit = |obs: &mut Vec<Observation>, at: Duration| {
        for o in obs.drain(..) {
            on_observation(wall(at), &o);
        }
    };
    while now < duration {
        car.run_until(now);
        for (bus, (poller, tester)) in pollers.iter_mut().zip(&testers).enumerate() {
            poller.set_power(power(car.state().power), now);
            while let Some(st) = car.recv_on(bus, *tester) {
                poller.on_frame(&st.frame, st.at, &mut out);
                let tf = TimedFrame {
                    frame: st.frame,
                    at: st.at,
                    wall: Some(wall(st.at)),
                };
                observer.on_bus_frame(bus, &tf, &mut observations);
                emit(&mut observations, st.at);
            }
            poller.poll(now, &mut out);
            for f in out.drain(..) {
                let tf = TimedFrame {
                    frame: f,
                    at: now,
                    wall: Some(wall(now)),
                };
                observer.on_bus_frame(bus, &tf, &mut observations);
                car.send_on(bus, *tester, f, now);
            }
            emit(&mut observations, now);
        }
        now += STEP;
    }
    observer.finish(now, &mut observations);
    emit(&mut observations, now);
    if let Some(rec) = record {
        // One trace, each frame under its bus's interface name, in time order.
        let mut lines: Vec<(Duration, usize, String)> = Vec::new();
        for bus in 0..car.bus_count() {
            let interface = loaded
                .config
                .can
                .buses
                .get(bus)
                .map_or("can0", |b| b.interface.as_str())
                .to_owned();
            for r in car.bus_at(bus).stop_tap() {
                let ms = wall(r.at).as_millis();
                let ts = candump::Timestamp::Absolute(Duration::from_millis(ms));
                lines.push((r.at, bus, format_log_line(ts, &interface, &r.frame)));
            }
        }
        // Stable: frames of one bus keep their order.
        lines.sort_by_key(|(at, _, _)| *at);
        for (_, _, line) in lines {
            rec.push_str(&line);
            rec.push('\n');
        }
    }
    let mut total = PollerStats::default();
    let mut uds = Vec::new();
    for (bus, p) in pollers.iter().enumerate() {
        let s = p.stats();
        total.requests += s.requests;
        total.answers += s.answers;
        total.timeouts += s.timeouts;
        total.negative += s.negative;
        total.pending += s.pending;
        total.transport_errors += s.transport_errors;
        uds.extend(p.uds_stats().into_iter().map(|(n, st)| (bus, n, st)));
    }
    DeskSummary {
        final_odometer: car.state().odometer(),
        poller: total,
        uds,
        frames: car.frames_sent(),
    }
}

fn power(p: Power) -> PowerState {
    match p {
        Power::Off => PowerState::Off,
        Power::Accessory => PowerState::Accessory,
        Power::On | Power::Running => PowerState::On,
    }
}
