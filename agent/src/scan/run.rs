//! The scanner's shells: read → [`Scanner`] → write, and nothing more. Over a live SocketCAN
//! interface ([`socketcan`]) and over the desk car ([`desk`], with the `desk` feature).
//!
//! Does not own: what is asked or when (the [`Scanner`]), nor the output ([`super::report`]).

use std::time::Duration;

use super::{Findings, Scanner, Settings, Status};
use crate::can::CanFrame;

/// A finished (or stopped, or timed-out) scan.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What was found.
    pub findings: Findings,
    /// How it ended ([`Status::Running`]: the time limit came first).
    pub status: Status,
}

fn outcome(scanner: &Scanner) -> Outcome {
    Outcome {
        findings: scanner.findings().clone(),
        status: scanner.status().clone(),
    }
}

/// Scans the live bus `interface` for at most `limit`.
///
/// # Errors
/// The interface cannot be opened, read or written.
pub async fn socketcan(
    interface: &str,
    settings: Settings,
    limit: Duration,
) -> Result<Outcome, crate::Error> {
    use crate::can::socketcan::SocketCan;
    use crate::can::source::{FrameSink, FrameSource};
    let mut bus = SocketCan::open(interface, &[])?;
    let mut scanner = Scanner::new(settings);
    let start = tokio::time::Instant::now();
    let mut out: Vec<CanFrame> = Vec::new();
    loop {
        let now = start.elapsed();
        if now >= limit {
            break;
        }
        let next = scanner.poll(now, &mut out);
        for f in out.drain(..) {
            bus.send(&f).await?;
        }
        if *scanner.status() != Status::Running {
            break;
        }
        let wake = start + next.unwrap_or(limit).min(limit);
        tokio::select! {
            frame = bus.recv() => {
                let Some(tf) = frame? else { break };
                scanner.on_frame(&tf.frame, start.elapsed(), &mut out);
                for f in out.drain(..) {
                    bus.send(&f).await?;
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    Ok(outcome(&scanner))
}

/// Scans the desk car for at most `limit` of simulated time, stepping as the desk loop does.
#[cfg(feature = "desk")]
pub fn desk(car: &mut crate::sim::DeskCar, settings: Settings, limit: Duration) -> Outcome {
    const STEP: Duration = Duration::from_millis(5);
    let tester = car.attach_tester();
    let mut scanner = Scanner::new(settings);
    let mut out = Vec::new();
    let mut now = Duration::ZERO;
    while now < limit && *scanner.status() == Status::Running {
        car.run_until(now);
        while let Some(st) = car.recv(tester) {
            scanner.on_frame(&st.frame, st.at, &mut out);
        }
        scanner.poll(now, &mut out);
        for f in out.drain(..) {
            car.send(tester, f, now);
        }
        now += STEP;
    }
    outcome(&scanner)
}
