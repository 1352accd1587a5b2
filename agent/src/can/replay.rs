//! A recorded trace (candump, or any format [`super::trace`] reads) as a live [`FrameSource`]:
//! frames come out at the trace's own pace (optionally faster) or as fast as possible. This is
//! how an engineer runs the whole agent on a desk against a drive recorded in the field. Bad
//! records are counted and skipped here; the `replay` command reports them one by one.

use std::io::BufRead;
use std::time::Duration;

use rapport_shared::Timestamp;

use super::candump;
use super::source::{FrameSource, TimedFrame};
use super::trace::{self, ChannelMap, ReadError};
use crate::Error;

/// How fast a trace is played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// No waiting: the next frame as soon as it is asked for.
    AsFastAsPossible,
    /// The trace's own timing, divided by `speedup` (1.0 = real time).
    Original {
        /// How many times faster than recorded (must be > 0).
        speedup: f64,
    },
}

/// A trace file played as a frame source.
pub struct TraceSource<R> {
    reader: trace::Reader<R>,
    pacing: Pacing,
    first: Option<Duration>,
    started: tokio::time::Instant,
}

impl<R: BufRead + Send> TraceSource<R> {
    /// Plays `reader` (either candump form) at `pacing`.
    pub fn new(reader: R, pacing: Pacing) -> Self {
        Self::from_reader(trace::Reader::candump(reader), pacing)
    }

    /// Plays a trace of any format the build reads (found by its content), naming its
    /// channels by `channels`, at `pacing`.
    ///
    /// # Errors
    /// When the start cannot be read or the format is not one this build reads.
    pub fn open(reader: R, channels: ChannelMap, pacing: Pacing) -> Result<Self, ReadError> {
        Ok(Self::from_reader(trace::open(reader, channels)?, pacing))
    }

    fn from_reader(reader: trace::Reader<R>, pacing: Pacing) -> Self {
        Self {
            reader,
            pacing,
            first: None,
            started: tokio::time::Instant::now(),
        }
    }

    /// Lines, frames, skipped and bad lines so far.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> candump::TraceStats {
        self.reader.stats()
    }
}

impl<R: BufRead + Send> FrameSource for TraceSource<R> {
    async fn recv(&mut self) -> Result<Option<TimedFrame>, Error> {
        loop {
            let Some(item) = self.reader.next() else {
                return Ok(None);
            };
            let tf = match item {
                Ok(tf) => tf,
                Err(ReadError::Record { at, reason, .. }) => {
                    tracing::debug!(%at, cause = %reason, "skipping a bad trace record");
                    continue;
                }
                Err(e) => {
                    let source = match e {
                        ReadError::Io { source, .. } => source,
                        other => {
                            std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string())
                        }
                    };
                    return Err(Error::Io {
                        context: "reading the trace".into(),
                        source,
                    });
                }
            };
            // Frames without a timestamp are spaced by nothing: they come as fast as asked.
            let trace_t = tf.timestamp.map(candump::Timestamp::as_duration);
            let first = *self.first.get_or_insert(trace_t.unwrap_or_default());
            let at = trace_t.unwrap_or(first).saturating_sub(first);
            if let Pacing::Original { speedup } = self.pacing
                && speedup > 0.0
            {
                let due = self.started + at.div_f64(speedup);
                tokio::time::sleep_until(due).await;
            }
            let wall = match tf.timestamp {
                Some(candump::Timestamp::Absolute(d)) => Some(Timestamp::from_millis(
                    u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                )),
                _ => None,
            };
            return Ok(Some(TimedFrame {
                frame: tf.frame,
                at,
                wall,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TRACE: &str = "\
(1436509052.000000) can0 7DF#0201A60000000000
garbage that is not a frame
(1436509052.250000) can0 7E8#0641A6000123AA00
(1436509053.000000) can0 18FEF100#FF341700FF6800CF
";

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn plays_at_original_pace_and_skips_bad_lines() {
        let mut src = TraceSource::new(TRACE.as_bytes(), Pacing::Original { speedup: 1.0 });
        let t0 = tokio::time::Instant::now();
        let a = src.recv().await.unwrap().unwrap();
        let b = src.recv().await.unwrap().unwrap();
        assert_eq!(b.at, Duration::from_millis(250));
        assert_eq!(
            t0.elapsed(),
            Duration::from_millis(250),
            "slept to the trace's own time"
        );
        assert_eq!(a.wall, Some(Timestamp::from_millis(1_436_509_052_000)));
        let c = src.recv().await.unwrap().unwrap();
        assert_eq!(c.frame.raw_id(), 0x18FE_F100);
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        assert!(src.recv().await.unwrap().is_none());
        assert_eq!(src.stats().bad, 1);
        assert_eq!(src.stats().frames, 3);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn as_fast_as_possible_does_not_wait() {
        let mut src = TraceSource::new(TRACE.as_bytes(), Pacing::AsFastAsPossible);
        let t0 = tokio::time::Instant::now();
        while src.recv().await.unwrap().is_some() {}
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    #[cfg(feature = "traces")]
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn plays_an_asc_trace_found_by_content() {
        let asc = "date Fri Jul 10 06:17:32.000 2015\nbase hex  timestamps absolute\n\
                   0.000000 1 7DF Rx d 8 02 01 A6 00 00 00 00 00\n\
                   0,250000 1 7E8 Rx d 8 06 41 A6 00 01 23 AA 00\n";
        let mut src = TraceSource::open(
            asc.as_bytes(),
            ChannelMap::default(),
            Pacing::Original { speedup: 1.0 },
        )
        .unwrap();
        let t0 = tokio::time::Instant::now();
        let a = src.recv().await.unwrap().unwrap();
        let b = src.recv().await.unwrap().unwrap();
        assert_eq!(a.wall, Some(Timestamp::from_millis(1_436_509_052_000)));
        assert_eq!(
            (b.at, b.frame.raw_id()),
            (Duration::from_millis(250), 0x7E8)
        );
        assert_eq!(t0.elapsed(), Duration::from_millis(250));
        assert!(src.recv().await.unwrap().is_none());
    }
}
