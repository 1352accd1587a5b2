//! The one small trait every frame source implements — SocketCAN, a replayed trace, the virtual
//! bus — so everything above it (poller, decoders, replay CLI) never knows which it reads.
//!
//! It owns the trait and the timed-frame type only; the sources themselves live beside it.

use core::future::Future;
use core::time::Duration;

use rapport_shared::Timestamp;

use super::CanFrame;

/// A frame and when it was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedFrame {
    /// The frame.
    pub frame: CanFrame,
    /// Monotonic time since the source started (what the sans-IO decoders take as `now`).
    pub at: Duration,
    /// Wall-clock time, where the source knows it (a `candump -l` trace, a live bus).
    pub wall: Option<Timestamp>,
}

/// Where frames come from.
pub trait FrameSource {
    /// The next frame; `Ok(None)` when the source has ended (end of a trace, bus closed).
    ///
    /// # Errors
    /// The source's own error (a bad trace line is *not* an error: sources count and skip it).
    fn recv(&mut self) -> impl Future<Output = Result<Option<TimedFrame>, crate::Error>> + Send;
}

/// Where frames go (requests to ECUs, flow control).
pub(crate) trait FrameSink {
    /// Puts one frame on the bus.
    ///
    /// # Errors
    /// The sink's own error (bus down, buffer full).
    fn send(&mut self, frame: &CanFrame) -> impl Future<Output = Result<(), crate::Error>> + Send;
}
