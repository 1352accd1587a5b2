//! Reading a whole trace from any [`BufRead`], line by line into one reused buffer, with
//! counts of frames, skipped and bad lines. Owns no parsing rules (see [`super::parse`]).

use std::io::BufRead;

use super::parse::err;
use super::*;

/// Counts kept by [`TraceReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Lines read so far.
    pub lines: u64,
    /// Frames yielded.
    pub frames: u64,
    /// Valid lines without a frame (blank, error frames).
    pub skipped: u64,
    /// Lines that failed to parse (each was yielded as an error).
    pub bad: u64,
}

/// A failure while reading a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// One line did not parse; reading carries on with the next.
    #[error("line {line}, {source}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What was wrong with it.
        source: ParseError,
    },
    /// The underlying reader failed; the iterator ends after this.
    #[error("reading the trace after line {line}: {source}")]
    Io {
        /// Lines read before the failure.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Reads a trace line by line from any [`BufRead`], reusing one line buffer.
///
/// Yields each frame, or the error of each bad line (and carries on); blank lines and error
/// frames are counted in [`TraceStats::skipped`] and not yielded.
#[derive(Debug)]
pub struct TraceReader<R> {
    reader: R,
    buf: Vec<u8>,
    stats: TraceStats,
    failed: bool,
}

impl<R: BufRead> TraceReader<R> {
    /// A reader over `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            stats: TraceStats::default(),
            failed: false,
        }
    }

    /// What has been read so far.
    pub fn stats(&self) -> TraceStats {
        self.stats
    }

    /// Reads one line into `buf` (at most `MAX_LINE_LEN` + 1 bytes kept); `Ok(false)` at end.
    /// Returns whether the line was cut short.
    fn read_line(&mut self) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let limit = (MAX_LINE_LEN + 1) as u64;
        let n = <&mut R as std::io::Read>::take(&mut self.reader, limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.len() > MAX_LINE_LEN && self.buf.last() != Some(&b'\n') {
            // Drop the rest of the overlong line without buffering it.
            loop {
                let chunk = self.reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = chunk.len();
                        self.reader.consume(len);
                    }
                }
            }
            return Ok(Some(true));
        }
        Ok(Some(false))
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<TraceFrame, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let too_long = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(too_long)) => too_long,
                Err(source) => {
                    self.failed = true;
                    return Some(Err(TraceError::Io {
                        line: self.stats.lines,
                        source,
                    }));
                }
            };
            self.stats.lines += 1;
            let line = self.stats.lines;
            let parsed = if too_long {
                Err(err(
                    MAX_LINE_LEN + 1,
                    ParseErrorKind::LineTooLong { max: MAX_LINE_LEN },
                ))
            } else {
                parse_line(&self.buf)
            };
            match parsed {
                Ok(Line::Frame(frame)) => {
                    self.stats.frames += 1;
                    return Some(Ok(frame));
                }
                Ok(Line::Skip(_)) => self.stats.skipped += 1,
                Err(source) => {
                    self.stats.bad += 1;
                    return Some(Err(TraceError::Line { line, source }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use core::time::Duration;

    fn micros(m: u64) -> Duration {
        Duration::from_micros(m)
    }

    #[test]
    fn reader_counts_frames_skips_and_bad_lines() {
        let text = "(1.0) can0 123#00\n\n  vcan0  ERROR\n garbage here\n(2.0) can0 456#0102\n";
        let mut r = TraceReader::new(text.as_bytes());
        assert_eq!(r.next().unwrap().unwrap().frame.raw_id(), 0x123);
        match r.next().unwrap() {
            Err(TraceError::Line { line: 4, source }) => {
                assert_eq!(source.kind, ParseErrorKind::BadIdLength { digits: 4 });
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.next().unwrap().unwrap().frame.data(), &[1, 2]);
        assert!(r.next().is_none());
        let s = r.stats();
        assert_eq!((s.lines, s.frames, s.skipped, s.bad), (5, 2, 2, 1));
    }

    #[test]
    fn reader_rejects_overlong_lines_and_carries_on() {
        let mut text = vec![b'A'; 5000];
        text.extend_from_slice(b"\n(1.0) can0 123#00\n");
        let mut r = TraceReader::new(std::io::BufReader::with_capacity(64, &text[..]));
        assert!(matches!(
            r.next(),
            Some(Err(TraceError::Line { line: 1, source })) if source.kind == ParseErrorKind::LineTooLong { max: MAX_LINE_LEN }
        ));
        assert_eq!(r.next().unwrap().unwrap().frame.raw_id(), 0x123);
        assert!(r.next().is_none());
    }

    fn read_all(relative: &str) -> Option<(Vec<TraceFrame>, TraceStats)> {
        let path = rapport_harness::files::shared_data_file(relative)?;
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = TraceReader::new(file);
        let frames: Vec<TraceFrame> = reader.by_ref().map(|r| r.unwrap()).collect();
        Some((frames, reader.stats()))
    }

    #[test]
    fn whole_truck_trace_parses() {
        let Some((frames, stats)) = read_all("traces/j1939-attack-datasets/normal.log") else {
            return;
        };
        assert_eq!(frames.len(), 19_957);
        assert_eq!((stats.bad, stats.skipped), (0, 0));
        assert!(frames.iter().all(|f| f.frame.is_extended()));
        let last = frames.last().unwrap();
        assert_eq!(
            last.timestamp,
            Some(Timestamp::Relative(micros(29_997_509)))
        );
        assert_eq!(last.frame.raw_id(), 0x0CF0_0203);
        // The 3-byte request frames (PGN 59904) keep their short length.
        assert_eq!(
            frames.iter().filter(|f| f.frame.data().len() == 3).count(),
            13
        );
    }

    #[test]
    fn pretty_j1939_traces_parse() {
        let Some((frames, stats)) = read_all("traces/pretty_j1939/candump.log") else {
            return;
        };
        assert_eq!((frames.len(), stats.bad), (3, 0));
        assert_eq!(frames[1].frame.raw_id(), 0x18FE_E000);
        assert_eq!(
            frames[1].frame.data(),
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xB0, 0x5C, 0x68, 0x00]
        );
        let Some((frames, _)) = read_all("traces/pretty_j1939/test_dm1.log") else {
            return;
        };
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].interface.as_str(), "vcan0");
        assert_eq!(
            frames[1].timestamp,
            Some(Timestamp::Absolute(micros(1_612_543_138_001_000)))
        );
        assert_eq!(frames[1].frame.data()[0], 0x40);
    }
}
