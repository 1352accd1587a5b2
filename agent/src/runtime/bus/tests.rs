//! The bus loop against a scripted link (no kernel needed): an interface lost and back is
//! reopened without a restart and frames on both sides of the gap reach the agent's memory; an
//! interface missing at start is the run's error; a full transmit queue costs a frame, not the
//! socket; several buses are read, lost and reopened each on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::*;
use crate::can::CanFrame;
use crate::can::source::TimedFrame;
use crate::clock::SystemClock;
use crate::runtime::Core;

/// Linux's errno values the loop meets.
const ENETDOWN: i32 = 100;
const ENOBUFS: i32 = 105;

enum Step {
    Frame(CanFrame),
    Fail(i32),
}

#[derive(Default)]
struct Shared {
    /// One script per successful open; an open with none left fails (no such device).
    sockets: VecDeque<Vec<Step>>,
    /// What `is_up` answers, call after call (then `true`).
    up: VecDeque<bool>,
    /// Every send fails with this errno.
    send_fails: Option<i32>,
    opens: u32,
    is_up_calls: u32,
}

#[derive(Clone, Default)]
struct FakeLink {
    shared: Arc<Mutex<Shared>>,
    done: Arc<tokio::sync::Notify>,
    /// The ids of the frames sent on it.
    sent: Arc<Mutex<Vec<u32>>>,
}

struct FakeSocket {
    steps: VecDeque<Step>,
    send_fails: Option<i32>,
    done: Arc<tokio::sync::Notify>,
    sent: Arc<Mutex<Vec<u32>>>,
}

fn io_error(code: i32) -> crate::Error {
    crate::Error::Io {
        context: "fake CAN interface".into(),
        source: std::io::Error::from_raw_os_error(code),
    }
}

impl FrameSource for FakeSocket {
    async fn recv(&mut self) -> Result<Option<TimedFrame>, crate::Error> {
        match self.steps.pop_front() {
            Some(Step::Frame(frame)) => Ok(Some(TimedFrame {
                frame,
                at: Duration::ZERO,
                wall: None,
            })),
            Some(Step::Fail(code)) => Err(io_error(code)),
            None => {
                self.done.notify_one();
                std::future::pending().await
            }
        }
    }
}

impl FrameSink for FakeSocket {
    async fn send(&mut self, frame: &CanFrame) -> Result<(), crate::Error> {
        match self.send_fails {
            Some(code) => Err(io_error(code)),
            None => {
                self.sent.lock().unwrap().push(frame.raw_id());
                Ok(())
            }
        }
    }
}

impl Link for FakeLink {
    type Socket = FakeSocket;
    fn name(&self) -> &str {
        "fake0"
    }
    fn open(&self) -> Result<FakeSocket, crate::Error> {
        let mut s = self.shared.lock().unwrap();
        s.opens += 1;
        let steps = s.sockets.pop_front().ok_or_else(|| io_error(19))?;
        Ok(FakeSocket {
            steps: steps.into(),
            send_fails: s.send_fails,
            done: Arc::clone(&self.done),
            sent: Arc::clone(&self.sent),
        })
    }
    fn is_up(&self) -> bool {
        let mut s = self.shared.lock().unwrap();
        s.is_up_calls += 1;
        s.up.pop_front().unwrap_or(true)
    }
    fn is_transient(&self, error: &crate::Error) -> bool {
        matches!(error, crate::Error::Io { source, .. } if source.raw_os_error() == Some(ENOBUFS))
    }
}

/// J1939 VD from the engine: total distance `steps` × 0.125 km.
fn vd(steps: u32) -> CanFrame {
    let mut data = [0xFF; 8];
    data[4..].copy_from_slice(&steps.to_le_bytes());
    CanFrame::from_raw(0x18FE_E000, true, &data).unwrap()
}

struct Agent {
    _dir: tempfile::TempDir,
    core: Arc<Core>,
    pipe: Pipeline,
    clock: SystemClock,
}

fn agent() -> Agent {
    agent_for("config/commercial.toml")
}

fn agent_for(config: &str) -> Agent {
    let loaded = crate::config::load(&rapport_harness::files::repo_file(config)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = SystemClock::default();
    let core = Arc::new(Core::open(&loaded, dir.path(), Arc::new(clock.clone())).unwrap());
    let pipe = Pipeline::new(&loaded, Arc::clone(&core));
    Agent {
        _dir: dir,
        core,
        pipe,
        clock,
    }
}

fn odometer_km(core: &Core) -> Option<f64> {
    core.with(|r, _| r.memory().vehicle.odometer.map(|o| o.km()))
}

#[tokio::test(start_paused = true)]
async fn a_lost_interface_is_waited_for_and_reopened() {
    let mut a = agent();
    let link = FakeLink::default();
    {
        let mut s = link.shared.lock().unwrap();
        // 438978.0 km, then the interface goes down; down for three looks, then back with
        // 438978.125 km.
        s.sockets
            .push_back(vec![Step::Frame(vd(3_511_824)), Step::Fail(ENETDOWN)]);
        s.sockets.push_back(vec![Step::Frame(vd(3_511_825))]);
        s.up.extend([false, false, false]);
    }
    // Stop once the second socket has nothing more to read.
    let done = Arc::clone(&link.done);
    let mut waits = 0;
    let counts = run(&link, &mut a.pipe, &a.clock, async {
        // The first socket's script ends in the failure, so only the second one says done.
        done.notified().await;
        waits += 1;
    })
    .await
    .unwrap();
    assert_eq!(waits, 1);
    assert_eq!(counts.frames, 2);
    assert_eq!(counts.lost, 1);
    assert_eq!(counts.reopened, 1);
    let s = link.shared.lock().unwrap();
    assert_eq!(s.opens, 2, "opened at start and once more when it was back");
    assert_eq!(s.is_up_calls, 4, "looked for every second until it was up");
    assert_eq!(odometer_km(&a.core), Some(438_978.125));
}

#[tokio::test(start_paused = true)]
async fn a_missing_interface_at_start_is_the_error() {
    let mut a = agent();
    let link = FakeLink::default();
    let err = run(&link, &mut a.pipe, &a.clock, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No such device"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_full_transmit_queue_costs_frames_not_the_socket() {
    let mut a = agent();
    let link = FakeLink::default();
    {
        let mut s = link.shared.lock().unwrap();
        // Traffic for a while (the ignition comes on, the poller asks for engine hours).
        let frames: Vec<Step> = (0..400).map(|_| Step::Frame(vd(3_511_824))).collect();
        s.sockets.push_back(frames);
        s.send_fails = Some(ENOBUFS);
    }
    let done = Arc::clone(&link.done);
    let counts = run(&link, &mut a.pipe, &a.clock, async {
        done.notified().await;
        // Let the poller's timers run with the bus quiet.
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await
    .unwrap();
    assert_eq!(counts.frames, 400);
    assert_eq!(counts.lost, 0);
    assert_eq!(counts.sent, 0);
    assert!(counts.unsent > 0, "{counts:?}");
    assert_eq!(link.shared.lock().unwrap().opens, 1);
}

/// A frame no config decodes, which every bus carries while the car runs: ignition evidence.
fn broadcast() -> CanFrame {
    CanFrame::from_raw(0x3E8, false, &[0; 8]).unwrap()
}

#[tokio::test(start_paused = true)]
async fn each_bus_is_read_lost_reopened_and_asked_on_its_own() {
    // Two buses: OBD-II and two UDS ECUs on the powertrain bus, the cluster on the body bus.
    let mut a = agent_for("config/multibus.toml");
    let (powertrain, body) = (FakeLink::default(), FakeLink::default());
    {
        let mut s = powertrain.shared.lock().unwrap();
        // One frame, the interface goes down, is down at the first look, back with one more.
        s.sockets
            .push_back(vec![Step::Frame(broadcast()), Step::Fail(ENETDOWN)]);
        s.sockets.push_back(vec![Step::Frame(broadcast())]);
        s.up.push_back(false);
    }
    body.shared
        .lock()
        .unwrap()
        .sockets
        .push_back((0..50).map(|_| Step::Frame(broadcast())).collect());
    let links = [powertrain.clone(), body.clone()];
    let (pt_done, body_done) = (Arc::clone(&powertrain.done), Arc::clone(&body.done));
    let clock = TokioClock(tokio::time::Instant::now());
    let counts = run_all(&links, &mut a.pipe, &clock, async {
        pt_done.notified().await;
        body_done.notified().await;
        // Let the pollers ask for a while (the ignition stays on for 5 s after the last frame).
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await
    .unwrap();
    assert_eq!(
        (counts[0].frames, counts[0].lost, counts[0].reopened),
        (2, 1, 1)
    );
    assert_eq!(
        (counts[1].frames, counts[1].lost, counts[1].reopened),
        (50, 0, 0)
    );
    assert_eq!(powertrain.shared.lock().unwrap().opens, 2);
    assert_eq!(
        body.shared.lock().unwrap().opens,
        1,
        "the body bus was never reopened"
    );
    // Each bus's requests went on that bus's socket.
    let body_sent = body.sent.lock().unwrap().clone();
    assert!(!body_sent.is_empty());
    assert!(
        body_sent.iter().all(|id| *id == 0x714),
        "the cluster only: {body_sent:X?}"
    );
    let pt_sent = powertrain.sent.lock().unwrap().clone();
    for id in [0x7DF, 0x710, 0x714] {
        assert!(
            pt_sent.contains(&id),
            "0x{id:X} asked on the powertrain bus: {pt_sent:X?}"
        );
    }
    assert_eq!(counts[1].sent, body_sent.len() as u64);
}

/// The agent's clock on tokio's (paused) time, so the pollers' timers run as the test
/// advances it.
#[derive(Debug)]
struct TokioClock(tokio::time::Instant);

impl crate::clock::Clock for TokioClock {
    fn wall(&self) -> rapport_shared::Timestamp {
        rapport_shared::Timestamp::from_millis(1_790_000_000_000).saturating_add(self.mono())
    }
    fn mono(&self) -> Duration {
        self.0.elapsed()
    }
}
