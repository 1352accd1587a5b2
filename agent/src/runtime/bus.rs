//! The live bus loop: frames from the config's CAN interface through the [`Pipeline`], and what
//! the poller asks for back onto the bus — and what happens when the interface goes away.
//!
//! An interface missing at start is the run's error (the agent exits with it). One that goes
//! down or disappears while the agent runs (`ip link set can0 down`, an adapter unplugged, the
//! interface deleted and created again) is said once in the log, looked for every [`RETRY`],
//! and reopened — kernel filters and all — once it is there and up, without a restart; the
//! rules keep their clock meanwhile. A frame the interface will not take (transmit queue full)
//! is dropped and counted. When the loop stops it logs what it read, sent and dropped.
//!
//! Owns: that loop, its reconnect and its counts. Does not own: the socket
//! ([`crate::can::socketcan`], behind [`Link`] so the reconnect is tested without a kernel),
//! the per-frame work ([`Pipeline`]).

use core::future::Future;
use core::time::Duration;

use super::Pipeline;
use crate::can::source::{FrameSink, FrameSource};
use crate::clock::Clock;

/// How often a lost interface is looked for.
pub const RETRY: Duration = Duration::from_secs(1);
/// How often the pipeline steps (poller timers, ignition, the rules' tick).
const STEP: Duration = Duration::from_millis(10);
/// Failed sends logged one by one before the rest are only counted.
const SEND_ERRORS_LOGGED: u64 = 10;

/// The live bus as the loop sees it.
pub(crate) trait Link {
    /// An open socket on the interface.
    type Socket: FrameSource + FrameSink + Send;
    /// The interface's name, for the log.
    fn name(&self) -> &str;
    /// Opens the interface with the config's filters.
    ///
    /// # Errors
    /// The interface cannot be opened (missing, or the socket failed).
    fn open(&self) -> Result<Self::Socket, crate::Error>;
    /// Whether the interface exists and is up (worth opening).
    fn is_up(&self) -> bool;
    /// Whether an error of the socket costs one frame only (not the socket).
    fn is_transient(&self, error: &crate::Error) -> bool;
    /// Error frames the socket received (counted and skipped).
    fn error_frames(&self, _socket: &Self::Socket) -> u64 {
        0
    }
}

/// What the loop did, logged when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BusCounts {
    /// Frames read from the bus.
    pub frames: u64,
    /// Error frames received (bus-off, controller problems): counted, not decoded.
    pub error_frames: u64,
    /// Frames sent (requests, flow control).
    pub sent: u64,
    /// Frames to send that were dropped: the interface refused them or was away.
    pub unsent: u64,
    /// Times the interface was lost.
    pub lost: u64,
    /// Times it was reopened.
    pub reopened: u64,
}

/// Reads `link` into `pipe` until `shutdown` resolves or the socket ends.
///
/// # Errors
/// Only the first open: an interface missing at start is the caller's error. Anything after
/// that is logged and waited out.
pub(super) async fn run<L: Link>(
    link: &L,
    pipe: &mut Pipeline,
    clock: &dyn Clock,
    shutdown: impl Future<Output = ()>,
) -> Result<BusCounts, crate::Error> {
    let mut socket = Some(link.open()?);
    let mut counts = BusCounts::default();
    let mut send_errors = 0u64;
    let mut lost_at = Duration::ZERO;
    let mut step = tokio::time::interval(STEP);
    step.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        let Some(open) = socket.as_mut() else {
            // Lost: step the pipeline, look for the interface every RETRY.
            tokio::select! {
                () = &mut shutdown => break,
                _ = step.tick() => {
                    pipe.step(clock.mono(), clock.wall());
                    counts.unsent += drop_to_send(pipe);
                }
                _ = retry.tick() => {
                    if link.is_up() {
                        match link.open() {
                            Ok(s) => {
                                counts.reopened += 1;
                                let away = clock.mono().saturating_sub(lost_at);
                                tracing::info!(interface = link.name(),
                                    away_s = %format_args!("{:.1}", away.as_secs_f64()),
                                    "CAN interface back: reading again");
                                socket = Some(s);
                            }
                            Err(e) => tracing::debug!(cause = %e, "CAN interface not open yet"),
                        }
                    }
                }
            }
            continue;
        };
        let mut lost = None;
        tokio::select! {
            () = &mut shutdown => break,
            frame = open.recv() => match frame {
                Ok(Some(tf)) => {
                    counts.frames += 1;
                    // One time base for the poller and decoders: the agent's clock.
                    pipe.on_frame(tf.frame, clock.mono(), clock.wall());
                }
                Ok(None) => break,
                Err(e) => lost = Some(e),
            },
            _ = step.tick() => {
                pipe.step(clock.mono(), clock.wall());
            }
        }
        if lost.is_none() {
            for f in std::mem::take(&mut pipe.to_send) {
                if lost.is_some() {
                    counts.unsent += 1;
                    continue;
                }
                match open.send(&f).await {
                    Ok(()) => counts.sent += 1,
                    Err(e) if link.is_transient(&e) => {
                        counts.unsent += 1;
                        send_errors += 1;
                        if send_errors <= SEND_ERRORS_LOGGED {
                            tracing::warn!(cause = %e, count = send_errors, "CAN frame not sent");
                        }
                    }
                    Err(e) => {
                        counts.unsent += 1;
                        lost = Some(e);
                    }
                }
            }
        }
        if let Some(e) = lost {
            counts.lost += 1;
            counts.error_frames += link.error_frames(open);
            lost_at = clock.mono();
            socket = None;
            tracing::warn!(interface = link.name(), cause = %e,
                retry_s = RETRY.as_secs(),
                "CAN interface lost: waiting for it to come back");
        }
    }
    if let Some(open) = &socket {
        counts.error_frames += link.error_frames(open);
    }
    Ok(counts)
}

/// Frames the poller wanted sent while the interface is away: dropped (the poller's own
/// timeouts deal with the missing answers). Returns how many.
fn drop_to_send(pipe: &mut Pipeline) -> u64 {
    let n = pipe.to_send.len();
    pipe.to_send.clear();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The config's SocketCAN interface.
#[cfg(target_os = "linux")]
pub(crate) struct SocketCanLink {
    /// The interface (`can0`).
    pub interface: String,
    /// The kernel filters the config needs.
    pub filters: Vec<crate::can::filters::KernelFilter>,
}

#[cfg(target_os = "linux")]
impl Link for SocketCanLink {
    type Socket = crate::can::socketcan::SocketCan;
    fn name(&self) -> &str {
        &self.interface
    }
    fn open(&self) -> Result<Self::Socket, crate::Error> {
        crate::can::socketcan::SocketCan::open(&self.interface, &self.filters)
    }
    fn is_up(&self) -> bool {
        crate::can::socketcan::interface_is_up(&self.interface)
    }
    fn is_transient(&self, error: &crate::Error) -> bool {
        crate::can::socketcan::is_transient(error)
    }
    fn error_frames(&self, socket: &Self::Socket) -> u64 {
        socket.error_frames()
    }
}

#[cfg(test)]
mod tests;
