//! The live bus loop: frames from the config's CAN interfaces (one socket per `[[can.buses]]`
//! entry) through the [`Pipeline`], and what each bus's poller asks for back onto that bus —
//! and what happens when an interface goes away (to that bus alone: the others read on).
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

/// Reads `link` into `pipe` as its only bus until `shutdown` resolves or the socket ends.
///
/// # Errors
/// As [`run_all`].
#[cfg(test)]
pub(super) async fn run<L: Link>(
    link: &L,
    pipe: &mut Pipeline,
    clock: &dyn Clock,
    shutdown: impl Future<Output = ()>,
) -> Result<BusCounts, crate::Error> {
    let counts = run_all(core::slice::from_ref(link), pipe, clock, shutdown).await?;
    Ok(counts.into_iter().next().unwrap_or_default())
}

/// Why the loop woke.
enum Wake {
    Shutdown,
    Frame(
        usize,
        Result<Option<crate::can::source::TimedFrame>, crate::Error>,
    ),
    Step,
    Retry,
}

/// Reads every link (`links[i]` is bus `i` of the pipeline) into `pipe` until `shutdown`
/// resolves or a socket ends; each bus is lost and reopened on its own. Returns each bus's
/// counts.
///
/// # Errors
/// Only the first open of each: an interface missing at start is the caller's error. Anything
/// after that is logged and waited out.
pub(super) async fn run_all<L: Link>(
    links: &[L],
    pipe: &mut Pipeline,
    clock: &dyn Clock,
    shutdown: impl Future<Output = ()>,
) -> Result<Vec<BusCounts>, crate::Error> {
    let mut sockets: Vec<Option<L::Socket>> = Vec::with_capacity(links.len());
    for link in links {
        sockets.push(Some(link.open()?));
    }
    let mut counts = vec![BusCounts::default(); links.len()];
    let mut lost_at = vec![Duration::ZERO; links.len()];
    let mut send_errors = 0u64;
    let mut step = tokio::time::interval(STEP);
    step.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        let wake = {
            // One receive per open socket; the first frame on any bus wins, the others are
            // cancelled (a socket's receive loses nothing when cancelled) and asked again.
            let mut receives: Vec<_> = sockets
                .iter_mut()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.as_mut()
                        .map(|s| Box::pin(async move { (i, s.recv().await) }))
                })
                .collect();
            let any_frame = async {
                if receives.is_empty() {
                    std::future::pending().await
                } else {
                    futures_util::future::select_all(receives.iter_mut())
                        .await
                        .0
                }
            };
            tokio::select! {
                () = &mut shutdown => Wake::Shutdown,
                (i, r) = any_frame => Wake::Frame(i, r),
                _ = step.tick() => Wake::Step,
                _ = retry.tick() => Wake::Retry,
            }
        };
        let mut lost: Vec<(usize, crate::Error)> = Vec::new();
        match wake {
            Wake::Shutdown => break,
            Wake::Frame(i, Ok(Some(tf))) => {
                if let Some(c) = counts.get_mut(i) {
                    c.frames += 1;
                }
                // One time base for the poller and decoders: the agent's clock.
                pipe.on_frame(i, tf.frame, clock.mono(), clock.wall());
            }
            Wake::Frame(_, Ok(None)) => break,
            Wake::Frame(i, Err(e)) => lost.push((i, e)),
            Wake::Step => {
                pipe.step(clock.mono(), clock.wall());
            }
            Wake::Retry => {
                for (i, link) in links.iter().enumerate() {
                    let Some(slot) = sockets.get_mut(i).filter(|s| s.is_none()) else {
                        continue;
                    };
                    if !link.is_up() {
                        continue;
                    }
                    match link.open() {
                        Ok(s) => {
                            if let Some(c) = counts.get_mut(i) {
                                c.reopened += 1;
                            }
                            let since = lost_at.get(i).copied().unwrap_or_default();
                            let away = clock.mono().saturating_sub(since);
                            tracing::info!(interface = link.name(),
                                away_s = %format_args!("{:.1}", away.as_secs_f64()),
                                "CAN interface back: reading again");
                            *slot = Some(s);
                        }
                        Err(e) => tracing::debug!(cause = %e, "CAN interface not open yet"),
                    }
                }
            }
        }
        for (bus, f) in std::mem::take(&mut pipe.to_send) {
            let (Some(c), Some(slot)) = (counts.get_mut(bus), sockets.get_mut(bus)) else {
                continue;
            };
            let Some(open) = slot
                .as_mut()
                .filter(|_| !lost.iter().any(|(i, _)| *i == bus))
            else {
                // Away: dropped (the poller's own timeouts deal with the missing answers).
                c.unsent += 1;
                continue;
            };
            match open.send(&f).await {
                Ok(()) => c.sent += 1,
                Err(e) if links.get(bus).is_some_and(|l| l.is_transient(&e)) => {
                    c.unsent += 1;
                    send_errors += 1;
                    if send_errors <= SEND_ERRORS_LOGGED {
                        tracing::warn!(cause = %e, count = send_errors, "CAN frame not sent");
                    }
                }
                Err(e) => {
                    c.unsent += 1;
                    lost.push((bus, e));
                }
            }
        }
        for (i, e) in lost {
            let (Some(link), Some(slot), Some(c)) =
                (links.get(i), sockets.get_mut(i), counts.get_mut(i))
            else {
                continue;
            };
            let Some(open) = slot.take() else {
                continue;
            };
            c.lost += 1;
            c.error_frames += link.error_frames(&open);
            if let Some(t) = lost_at.get_mut(i) {
                *t = clock.mono();
            }
            tracing::warn!(interface = link.name(), cause = %e,
                retry_s = RETRY.as_secs(),
                "CAN interface lost: waiting for it to come back");
        }
    }
    for ((link, socket), c) in links.iter().zip(&sockets).zip(&mut counts) {
        if let Some(open) = socket {
            c.error_frames += link.error_frames(open);
        }
    }
    Ok(counts)
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
