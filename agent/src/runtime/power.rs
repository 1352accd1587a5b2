//! The ignition state, derived from the bus: the head unit sees no ignition wire, only traffic.
//!
//! Evidence of "on": any broadcast frame (DBC signals, J1939 groups, anything that is not a
//! diagnostic answer), or an OBD-II answer (J1979 ECUs answer mode 01 with the ignition on).
//! Not evidence: UDS answers alone — a cluster may answer a diagnostic request with the ignition
//! off (the agent's off-state odometer check relies on it), and counting that would wake the
//! poller every time it asks. "Off" is no evidence for [`BusActivity::off_after`].
//!
//! With `[ignition] source = "obd"` (a car behind a gateway: no broadcast at all) the state
//! comes from [`ObdIgnition`] instead: the answers to the poller's `01 0C 0D 42` probe.
//!
//! Owns: those rules. Does not own: what the poller does in each state ([`crate::poller`]).

use core::time::Duration;

use crate::can::CanFrame;
use crate::poller::{self, PowerState};
use crate::proto::isotp::{self, RxEvent};
use crate::proto::obd::{self, PidValue};
use embedded_can::Frame as _;

/// How long without evidence before the car counts as off.
pub(crate) const DEFAULT_OFF_AFTER: Duration = Duration::from_secs(5);

/// Tracks bus evidence of the ignition state. Sans-IO: frames and `now` in.
#[derive(Debug, Clone)]
pub(crate) struct BusActivity {
    off_after: Duration,
    uds_responses: Vec<u32>,
    obd_extended: bool,
    last_evidence: Option<Duration>,
    /// `[ignition] source = "obd"`: the state comes from the probe's answers instead.
    probe: Option<ProbeReader>,
}

impl BusActivity {
    /// For what the poller asks (its answers are diagnostic, not evidence).
    pub(crate) fn new(poller: &poller::Settings, off_after: Duration) -> Self {
        Self {
            off_after,
            uds_responses: poller.uds.iter().map(|u| u.response_id).collect(),
            obd_extended: poller.obd.as_ref().is_some_and(|o| o.extended),
            last_evidence: None,
            probe: poller.ignition_probe.map(|p| ProbeReader {
                rule: ObdIgnition::new(
                    p.on_volts,
                    p.off_after_silent,
                    poller.interval_accessory,
                    poller.response_timeout,
                ),
                rx: isotp::Demux::new_passive(poller.isotp, 8),
            }),
        }
    }

    /// A frame received from the bus (not one the agent sent).
    pub(crate) fn on_frame(&mut self, frame: &CanFrame, now: Duration) {
        let id = frame.raw_id();
        if self.uds_responses.contains(&id) {
            return;
        }
        // Physical diagnostic requests from other testers are not ignition evidence either.
        let obd_answer = if self.obd_extended {
            id & 0x1FFF_FF00 == 0x18DA_F100
        } else {
            (0x7E8..=0x7EF).contains(&id)
        };
        let diag_request = (0x7DF..=0x7E7).contains(&id) || (0x700..=0x7FF).contains(&id);
        if let Some(p) = &mut self.probe {
            if obd_answer {
                p.on_frame(frame, now);
            }
            return;
        }
        if obd_answer || !diag_request {
            self.last_evidence = Some(now);
        }
    }

    /// The state now.
    pub(crate) fn state(&self, now: Duration) -> PowerState {
        if let Some(p) = &self.probe {
            return p.rule.state(now);
        }
        match self.last_evidence {
            Some(t) if now.saturating_sub(t) < self.off_after => PowerState::On,
            _ => PowerState::Off,
        }
    }
}

/// The ignition rule for a car whose only traffic is the answers to the agent's own OBD-II
/// requests (a gateway blocks all broadcast, so activity alone would see the car "on" only
/// while the agent asks). Sans-IO: the answers to `01 0C 0D 42` (engine speed, vehicle speed,
/// control module voltage) and `now` in, the state out.
///
/// The rule:
/// - engine speed above 0, or module voltage at or above `on_volts` (13.0 V by default: a
///   charging alternator; a resting battery is at most about 12.8 V), or vehicle speed above
///   0: **on**;
/// - an answer with engine speed 0 and voltage below `on_volts`: **accessory** (J1979 ECUs
///   answer with the key in, engine stopped);
/// - no answer for `off_after_silent` probe periods (the accessory cadence; plus one response
///   timeout): **off** — the probe went unanswered that many times in a row.
///
/// The probe runs at the accessory cadence with the ignition off, so a sleeping bus is woken
/// at most once per `[poller].accessory_ms`; with the ignition on it rides each data round.
#[derive(Debug, Clone)]
pub(crate) struct ObdIgnition {
    on_volts: f32,
    /// How long without an answer means off.
    silence: Duration,
    last_answer: Option<Duration>,
    state: PowerState,
}

impl ObdIgnition {
    /// A rule that counts the car off after `off_after_silent` unanswered probes sent every
    /// `probe_every`, each waited for `timeout`; off until an answer says otherwise.
    pub(crate) fn new(
        on_volts: f32,
        off_after_silent: u32,
        probe_every: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            on_volts,
            silence: probe_every.saturating_mul(off_after_silent.max(1)) + timeout,
            last_answer: None,
            state: PowerState::Off,
        }
    }

    /// A mode 01 answer at `now`: `rpm`, `kmh` and `volts` as far as it carried them.
    pub(crate) fn on_answer(
        &mut self,
        rpm: Option<f32>,
        kmh: Option<f32>,
        volts: Option<f32>,
        now: Duration,
    ) {
        self.last_answer = Some(now);
        let finite = |v: Option<f32>| v.filter(|x| x.is_finite());
        let (rpm, kmh, volts) = (finite(rpm), finite(kmh), finite(volts));
        let running = rpm.is_some_and(|r| r > 0.0)
            || volts.is_some_and(|v| v >= self.on_volts)
            || kmh.is_some_and(|k| k > 0.0);
        let engine_stopped = rpm == Some(0.0) || volts.is_some();
        self.state = if running {
            PowerState::On
        } else if engine_stopped || self.state == PowerState::Off {
            // An ECU answered: at least accessory.
            PowerState::Accessory
        } else {
            self.state
        };
    }

    /// The state at `now`.
    pub(crate) fn state(&self, now: Duration) -> PowerState {
        match self.last_answer {
            Some(t) if now.saturating_sub(t) <= self.silence => self.state,
            _ => PowerState::Off,
        }
    }
}

/// Reads the ignition probe's answers off the bus for [`ObdIgnition`]: OBD-II answer ids only,
/// reassembled passively (the poller sends the flow control), mode 01 answers decoded.
#[derive(Debug, Clone)]
struct ProbeReader {
    rule: ObdIgnition,
    rx: isotp::Demux,
}

impl ProbeReader {
    fn on_frame(&mut self, frame: &CanFrame, now: Duration) {
        let Ok(RxEvent::Complete(payload)) = self.rx.on_frame(frame.raw_id(), frame.data(), now)
        else {
            return;
        };
        let Ok(values) = obd::parse_current_data(payload) else {
            return;
        };
        let (mut rpm, mut kmh, mut volts) = (None, None, None);
        for v in values.flatten() {
            match v {
                PidValue::EngineSpeed { quarter_rpm } => rpm = Some(f32::from(quarter_rpm) / 4.0),
                PidValue::VehicleSpeed { kmh: k } => kmh = Some(f32::from(k)),
                PidValue::ControlModuleVoltage { millivolts } => {
                    volts = Some(f32::from(millivolts) / 1000.0);
                }
                _ => {}
            }
        }
        if rpm.is_some() || kmh.is_some() || volts.is_some() {
            self.rule.on_answer(rpm, kmh, volts, now);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn poller() -> poller::Settings {
        let path = rapport_harness::files::repo_file("config/passenger.toml");
        crate::settings::poller(&crate::config::load(&path).unwrap().config)
    }

    fn frame(id: u32) -> CanFrame {
        CanFrame::from_raw(id, id > 0x7FF, &[0; 8]).unwrap()
    }

    #[test]
    fn broadcast_and_obd_answers_mean_on_uds_answers_do_not() {
        let mut a = BusActivity::new(&poller(), DEFAULT_OFF_AFTER);
        let s = Duration::from_secs;
        assert_eq!(a.state(s(0)), PowerState::Off);
        a.on_frame(&frame(0x77E), s(1)); // the cluster's UDS answer
        assert_eq!(a.state(s(1)), PowerState::Off);
        a.on_frame(&frame(0x7E8), s(2)); // engine ECU OBD answer
        assert_eq!(a.state(s(2)), PowerState::On);
        assert_eq!(a.state(s(6)), PowerState::On);
        assert_eq!(a.state(s(7)), PowerState::Off);
        a.on_frame(&frame(0x3E9), s(10)); // a broadcast message
        assert_eq!(a.state(s(10)), PowerState::On);
        a.on_frame(&frame(0x714), s(20)); // someone's diagnostic request
        assert_eq!(a.state(s(20)), PowerState::Off);
    }

    #[test]
    fn obd_rule_tells_on_accessory_and_off() {
        let s = Duration::from_secs;
        // Probes every 10 s, 150 ms each: off after 3 unanswered = 30.15 s of silence.
        let mut i = ObdIgnition::new(13.0, 3, s(10), Duration::from_millis(150));
        assert_eq!(i.state(s(0)), PowerState::Off);
        // Accessory: the ECUs answer, engine stopped, battery voltage.
        i.on_answer(Some(0.0), Some(0.0), Some(12.4), s(0));
        assert_eq!(i.state(s(0)), PowerState::Accessory);
        // Engine started: rpm; then the alternator's voltage alone is enough.
        i.on_answer(Some(800.0), Some(0.0), Some(14.2), s(10));
        assert_eq!(i.state(s(10)), PowerState::On);
        i.on_answer(None, None, Some(13.0), s(11));
        assert_eq!(i.state(s(11)), PowerState::On);
        // Driving; stopped at a light with the engine idling: on.
        i.on_answer(Some(2000.0), Some(50.0), Some(14.1), s(12));
        i.on_answer(Some(750.0), Some(0.0), Some(14.1), s(13));
        assert_eq!(i.state(s(13)), PowerState::On);
        // Engine off, key still in: accessory.
        i.on_answer(Some(0.0), Some(0.0), Some(12.6), s(14));
        assert_eq!(i.state(s(14)), PowerState::Accessory);
        // Key out: two and a half silent periods are not yet off; three are.
        assert_eq!(i.state(s(44)), PowerState::Accessory);
        assert_eq!(i.state(s(45)), PowerState::Off);
        // One answer is enough to come back.
        i.on_answer(Some(0.0), None, Some(12.4), s(50));
        assert_eq!(i.state(s(50)), PowerState::Accessory);
    }

    #[test]
    fn obd_rule_ignores_nonsense_and_keeps_what_it_knew() {
        let s = Duration::from_secs;
        let mut i = ObdIgnition::new(13.0, 0, s(10), Duration::ZERO); // 0 is taken as 1
        i.on_answer(Some(f32::NAN), Some(f32::INFINITY), Some(f32::NAN), s(0));
        assert_eq!(i.state(s(0)), PowerState::Accessory);
        i.on_answer(Some(900.0), None, None, s(1));
        assert_eq!(i.state(s(1)), PowerState::On);
        // An answer with only the speed (0) does not stop the engine.
        i.on_answer(None, Some(0.0), None, s(2));
        assert_eq!(i.state(s(2)), PowerState::On);
        assert_eq!(i.state(s(13)), PowerState::Off);
    }
}

/// `[ignition] source = "obd"` through a scripted drive of the desk car without a cluster: the
/// only traffic is the answers to the agent's own requests (a car behind a gateway).
#[cfg(all(test, feature = "desk"))]
mod gateway_drive {
    #![allow(clippy::unwrap_used)]
    use embedded_can::Frame as _;
    use std::time::Duration;

    use rapport_shared::{EngineHours, Odometer, Timestamp};

    use super::BusActivity;
    use crate::can::source::TimedFrame;
    use crate::gate::motion::Motion;
    use crate::observe::{Observation, Observer};
    use crate::poller::{IGNITION_PROBE, Poller, PowerState};
    use crate::sim::{Power, Script, Step};

    fn truth(p: Power) -> PowerState {
        match p {
            Power::Off => PowerState::Off,
            Power::Accessory | Power::On => PowerState::Accessory,
            Power::Running => PowerState::On,
        }
    }

    /// `config/passenger.toml` with the ignition taken from OBD-II answers.
    fn passenger_with_obd_ignition() -> crate::config::Loaded {
        let path = rapport_harness::files::repo_file("config/passenger.toml");
        let mut loaded = crate::config::load(&path).unwrap();
        loaded.config.ignition.source = crate::config::IgnitionSource::Obd;
        loaded
    }

    #[test]
    fn parked_driving_on_and_off_are_told_from_obd_answers_alone() {
        // The passenger car (OBD-II, the cluster's UDS, a DBC) with its cluster's broadcast
        // blocked by a gateway, and the ignition taken from OBD-II.
        let loaded = passenger_with_obd_ignition();
        let s = Duration::from_secs;
        let script = Script::new(Odometer::from_km(1000), EngineHours::from_secs(0))
            .power(Power::Off)
            .park(s(60))
            .power(Power::Accessory)
            .park(s(60))
            .power(Power::Running)
            .park(s(60))
            .drive_for(50, s(120))
            .then(Step::Stop(s(30))) // a red light: engine running, not parked
            .drive_for(80, s(60))
            .park(s(60))
            .power(Power::Off)
            .park(s(300));
        let mut car = crate::desk::car_behind_gateway(&loaded, script).unwrap();
        assert!(
            !car.ecu_names().any(|n| n == "cluster"),
            "no broadcast at all"
        );
        let tester = car.attach_tester();
        let poller_settings = crate::settings::poller(&loaded.config);
        let mut activity = BusActivity::new(&poller_settings, super::DEFAULT_OFF_AFTER);
        let mut poller = Poller::new(poller_settings);
        let mut observer = Observer::new(&crate::settings::observer(&loaded));
        let mut motion = Motion::with_thresholds(3.0, 3);
        let (mut obs, mut out) = (Vec::new(), Vec::new());
        // Per second: (truth power, truth km/h, derived power, moving, probes sent so far).
        let mut probes = 0u64;
        let mut log: Vec<(PowerState, u8, PowerState, bool, u64)> = Vec::new();
        let step = Duration::from_millis(5);
        let end = s(750);
        let mut now = Duration::ZERO;
        let ts = |at: Duration| Timestamp::from_millis(at.as_millis() as u64);
        while now < end {
            car.run_until(now);
            let power = activity.state(now);
            poller.set_power(power, now);
            motion.on_power(power == PowerState::On, ts(now));
            while let Some(st) = car.recv(tester) {
                activity.on_frame(&st.frame, st.at);
                poller.on_frame(&st.frame, st.at, &mut out);
                let tf = TimedFrame {
                    frame: st.frame,
                    at: st.at,
                    wall: Some(ts(st.at)),
                };
                observer.on_frame(&tf, &mut obs);
            }
            poller.poll(now, &mut out);
            for f in out.drain(..) {
                let tf = TimedFrame {
                    frame: f,
                    at: now,
                    wall: Some(ts(now)),
                };
                observer.on_frame(&tf, &mut obs);
                if f.raw_id() == 0x7DF && f.data().get(1..5) == Some(&IGNITION_PROBE[..]) {
                    probes += 1;
                }
                car.send(tester, f, now);
            }
            for o in obs.drain(..) {
                if let Observation::Speed { kmh, .. } = o {
                    motion.on_speed(kmh, ts(now));
                }
            }
            if now.subsec_millis() == 0 {
                let st = car.state();
                log.push((
                    truth(st.power),
                    st.speed.kmh(),
                    power,
                    motion.moving(ts(now)),
                    probes,
                ));
            }
            now += step;
        }
        for (t, w) in log.windows(32).enumerate() {
            let t = t + 31; // the second `w` ends at
            let (power, kmh, derived, moving, _) = w[31];
            // On vs off: right once the truth held for 31 s (three 10 s probes and a timeout).
            if w.iter().all(|x| x.0 == power) {
                assert_eq!(derived, power, "at {t} s: {:?}", &w[31]);
            }
            // Driving: never told stopped once the speed has had 2 s to be read.
            if w[29..].iter().all(|x| x.1 > 0) {
                assert!(moving, "at {t} s, {kmh} km/h");
            }
            // Parked or at a light with the engine running: stopped after 5 s at 0 km/h, once
            // the engine has run 16 s (10 s to the next probe, 3 s of stopped readings).
            if w[15..].iter().all(|x| x.0 == PowerState::On) && w[26..].iter().all(|x| x.1 == 0) {
                assert!(!moving, "at {t} s, standing");
            }
        }
        // Both phases happened and were seen.
        assert!(log.iter().any(|x| x.2 == PowerState::Accessory));
        assert!(log.iter().any(|x| x.3) && log.iter().any(|x| x.2 == PowerState::On && !x.3));
        // Off (the last 300 s, minus the 31 s to notice): one probe per 10 s, no more.
        let (start, stop) = (log[450 + 31].4, log[749].4);
        assert!(stop - start <= 27, "{} probes in 268 s off", stop - start);
        assert!(stop - start >= 25, "the probe goes on: {}", stop - start);
    }

    /// The same car through the agent's own runtime pipeline (poller, ignition, observer,
    /// rules): the rules' gate never lets a non-critical prompt through while the car drives.
    #[test]
    fn the_runtime_gates_prompts_while_driving_behind_a_gateway() {
        use std::sync::Arc;

        use crate::clock::ManualClock;
        use crate::runtime::{Core, SimCar};

        let loaded = passenger_with_obd_ignition();
        let s = Duration::from_secs;
        let script = Script::new(Odometer::from_km(1000), EngineHours::from_secs(0))
            .power(Power::Off)
            .park(s(60))
            .power(Power::Running)
            .park(s(60))
            .drive_for(50, s(120))
            .park(s(60))
            .power(Power::Off)
            .park(s(60));
        let car = crate::desk::car_behind_gateway(&loaded, script).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // After the build's floor (`clock_guard::BUILD_FLOOR`): the rules run on this time.
        let t0 = Timestamp::from_millis(1_780_272_000_000);
        let clock = ManualClock::new(t0);
        let core = Arc::new(Core::open(&loaded, dir.path(), Arc::new(clock.clone())).unwrap());
        let mut sim = SimCar::with_car(&loaded, car, Arc::clone(&core), t0);
        let (mut drove, mut stood) = (0, 0);
        for sec in 1..=360u64 {
            sim.run_until(s(sec));
            clock.advance(s(1));
            let kmh = sim.state().speed.kmh();
            let moving = core.with(|rules, _| rules.is_moving(t0.saturating_add(s(sec))));
            // Driving from 120 s to 240 s: gated once the first speed answer is in.
            if (122..240).contains(&sec) {
                assert!(kmh > 0 && moving, "at {sec} s: {kmh} km/h, moving {moving}");
                drove += 1;
            }
            // Parked with the engine running (60–120 s, once the probe saw it; 240–300 s): free.
            if (75..120).contains(&sec) || (245..300).contains(&sec) {
                assert!(!moving, "at {sec} s: parked, engine running");
                stood += 1;
            }
        }
        assert!(drove > 100 && stood > 80);
    }
}
